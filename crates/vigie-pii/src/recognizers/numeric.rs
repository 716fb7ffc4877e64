//! Numbers written in digit groups: payment cards, French NIR, SIREN and SIRET, US SSN, Dutch
//! BSN, Belgian national numbers, PESEL, German tax ids, Spanish DNI (digits and a check
//! letter), IPv4 addresses and phone numbers.
//!
//! A cluster is a run of digit groups joined by short separators (space, `-`, `.`, `/`,
//! parentheses), as people type numbers. A cluster can hold several values ("call 06 12 34 56
//! 78 4532 0151 1283 0366"), so the recognizer tries its sub-spans: from the first group, the
//! longest span that validates wins and the search goes on after it; when none does, it starts
//! again from the next group. Clusters are capped at [`MAX_GROUPS`] groups and [`MAX_DIGITS`]
//! digits, so the work per cluster is bounded.
use super::phone;
use crate::PiiType;
use crate::checksum;
use crate::context::{Context, Signals};
use crate::scanner::{Scan, contextual, is_word};

/// The most groups in one cluster.
pub const MAX_GROUPS: usize = 12;
/// The most digits in one cluster.
pub const MAX_DIGITS: usize = 40;

#[derive(Debug, Clone, Copy, Default)]
struct Group {
    start: usize,
    end: usize,
    /// Digits in the group (a Corsican `2A`/`2B` letter counts as a digit position).
    len: usize,
    /// The separator bytes before the group (0 for none), the first one.
    sep: u8,
}

/// The separator between two digit groups at `i`: its end and its kind (a space for every
/// kind of space). One of space, tab, no-break space (U+00A0), narrow no-break space (U+202F),
/// `-`, `.` or `/`; two spaces; a space-padded `/` or `-` (`089 / 123 456`); or two bytes
/// around a parenthesis (`+33 (0)6`). `. ` ends a sentence, it does not join two numbers.
fn separator(b: &[u8], i: usize) -> Option<(usize, u8)> {
    let space_at = |k: usize| -> Option<usize> {
        match b.get(k..)? {
            [b' ' | b'\t', ..] => Some(k + 1),
            [0xC2, 0xA0, ..] => Some(k + 2),
            [0xE2, 0x80, 0xAF, ..] => Some(k + 3),
            _ => None,
        }
    };
    let digit_at = |k: usize| b.get(k).is_some_and(u8::is_ascii_digit);
    let (j, kind) = if let Some(k) = space_at(i) {
        match b.get(k) {
            Some(b'/' | b'-') if b.get(k + 1) == Some(&b' ') => (k + 2, b[k]),
            Some(b'(') => (k + 1, b' '),
            _ => match space_at(k) {
                Some(k2) if b.get(k) == Some(&b' ') => (k2, b' '),
                _ => (k, b' '),
            },
        }
    } else {
        match b.get(i)? {
            b'-' | b'.' | b'/' => (i + 1, b[i]),
            b')' => (space_at(i + 1).unwrap_or(i + 1), b' '),
            b'(' => (i + 1, b' '),
            _ => return None,
        }
    };
    digit_at(j).then_some((j, kind))
}

/// Loads the phone metadata and compiles the national patterns now, so no scan pays for it.
pub fn warm_up() {
    phone::warm_up(TRUNK_ZERO);
    phone::warm_up(NO_TRUNK);
}

/// The numeric recognizer at `pos`, a digit, `+` or `(`. Returns where the scan resumes.
pub fn at(scan: &mut Scan<'_>, pos: usize) -> Option<usize> {
    let b = scan.text;
    // A number glued to a word (`v1`, `abc123`), an address (`x@123`) or a decimal point
    // belongs to something else.
    if pos > 0 && is_word(b[pos - 1]) {
        return None;
    }
    // The fraction of a time or an amount (`14:50:14.828827Z`, `$37,500,019.72`).
    if pos >= 2 && matches!(b[pos - 1], b':' | b',' | b'.') && b[pos - 2].is_ascii_digit() {
        return None;
    }
    // `(` leads a number only as a trunk-prefixed area code, `(030) 1234567`; otherwise it
    // is punctuation and the digits after it are scanned as a word of their own.
    let lead = match b[pos] {
        b'+' => 1,
        b'(' => {
            let close = b[pos + 1..].iter().take(6).position(|&c| !c.is_ascii_digit()).map(|k| pos + 1 + k);
            if b[pos + 1] != b'0' || close.is_none_or(|k| b[k] != b')') {
                return None;
            }
            1
        }
        _ => 0,
    };
    let mut groups = [Group::default(); MAX_GROUPS];
    let mut n = 0usize;
    let mut digits = 0usize;
    let mut i = pos + lead;
    let mut sep = 0u8;
    let mut suffix: Option<(usize, u8)> = None; // (position, letter) of a DNI check letter
    loop {
        let gs = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        // A Corsican department inside a NIR: 2A / 2B.
        // The department follows the sex, year and month digits: one digit into a spaced group
        // or six into a plain one, and digits follow.
        let then_digit =
            b.get(i + 1).is_some_and(u8::is_ascii_digit) || (b.get(i + 1) == Some(&b' ') && b.get(i + 2).is_some_and(u8::is_ascii_digit));
        if i < b.len() && matches!(b[i], b'A' | b'B') && matches!(i - gs, 1 | 6) && b[i - 1] == b'2' && then_digit {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        let len = i - gs;
        if len == 0 {
            break;
        }
        groups[n] = Group { start: gs, end: i, len, sep };
        n += 1;
        digits += len;
        if n == MAX_GROUPS || digits >= MAX_DIGITS {
            break;
        }
        // A check letter right after the digits (12345678Z), or a capital after a dash or
        // space (12345678-Z); "… 0366 y 06…" is a word, not a check letter.
        // Only after the DNI's eight digits.
        let ends_word = |k: usize| b.get(k).is_none_or(|&c| !is_word(c) && c != b'\'');
        if digits == 8 && i < b.len() && b[i].is_ascii_alphabetic() && ends_word(i + 1) {
            suffix = Some((i, b[i]));
            break;
        }
        if digits == 8 && i + 1 < b.len() && matches!(b[i], b'-' | b' ') && b[i + 1].is_ascii_uppercase() && ends_word(i + 2) {
            suffix = Some((i + 1, b[i + 1]));
            break;
        }
        let Some((j, this_sep)) = separator(b, i) else { break };
        // A group followed by `:` starts an IPv6 address or a time, not more of this number
        // (after dots it is a port: `10.0.0.5:5432`).
        let mut k = j;
        while k < b.len() && b[k].is_ascii_hexdigit() {
            k += 1;
        }
        if b.get(k) == Some(&b':') && this_sep != b'.' {
            break;
        }
        sep = this_sep;
        i = j;
    }
    if n == 0 {
        return None;
    }
    let end = groups[n - 1].end;
    // Glued to a word on the right: the last group is part of something else.
    let glued = suffix.is_none() && end < b.len() && (is_word(b[end]) || b[end] == b'@');
    // Digits inside a hyphenated or dotted token (a UUID, `ID-12345678-x`) are not a number.
    let in_token = |k: usize| k < b.len() && matches!(b[k], b'-' | b'.' | b'/') && b.get(k + 1).is_some_and(|&c| c.is_ascii_alphabetic());
    if (glued && n > 1 && groups[n - 1].sep != b' ')
        || (suffix.is_none() && in_token(end))
        || (pos >= 2 && lead == 0 && matches!(b[pos - 1], b'-' | b'.') && is_word(b[pos - 2]))
    {
        return Some(end);
    }
    let usable = if glued { n - 1 } else { n };
    let resume = suffix.map_or(end, |(p, _)| p + 1);
    if digits < 4 || usable == 0 {
        return Some(resume);
    }
    let cluster = Cluster { groups: &groups[..usable], lead: lead == 1, suffix: if glued { None } else { suffix } };
    let mut signals = Lazy { context: &scan.scanner.context, text: b, from: pos, to: resume, signals: None };
    // A span may start or end between two groups only where the separator differs from those
    // inside the groups on one side (`+39 06 5730 4011 10.61.206.98`) or next to a standalone
    // number of 8 digits or more (`4532015112830366 (19`): the groups of a mistyped card (`3533 0763 5983 1649`) or
    // NIR are not a phone number.
    let groups = &groups[..usable];
    let cut_ok = |i: usize| {
        let sep = groups.get(i).map_or(0, |g| g.sep);
        let unused = |side: &[Group]| side.len() >= 2 && side[1..].iter().all(|g| g.sep != sep);
        i == 0 || i == usable || (groups[i - 1].len >= 8 || groups[i].len >= 8) || unused(&groups[..i]) || unused(&groups[i..])
    };
    let mut s = 0;
    while s < usable {
        let mut matched = None;
        for e in (s + 1..=usable).rev().filter(|&e| cut_ok(s) && cut_ok(e)) {
            if let Some(m) = evaluate(scan, &cluster, s, e, &mut signals) {
                matched = Some((e, m));
                break;
            }
        }
        match matched {
            Some((e, (kind, score, start, end, detail))) => {
                scan.push(kind, score, start, end, detail);
                s = e;
            }
            None => s += 1,
        }
    }
    Some(resume)
}

/// The context words around a cluster, looked up only once a reading validates.
struct Lazy<'a> {
    context: &'a Context,
    text: &'a [u8],
    from: usize,
    to: usize,
    signals: Option<Signals>,
}

impl Lazy<'_> {
    fn get(&mut self) -> Signals {
        if let Some(s) = self.signals {
            return s;
        }
        let s = self.context.around(self.text, self.from, self.to);
        self.signals = Some(s);
        s
    }
}

struct Cluster<'g> {
    groups: &'g [Group],
    /// Starts with `+` or `(`.
    lead: bool,
    suffix: Option<(usize, u8)>,
}

type Match = (PiiType, f64, usize, usize, Option<&'static str>);

/// The best validated reading of groups `s..e`, if any scores at least the threshold.
fn evaluate(scan: &mut Scan<'_>, c: &Cluster<'_>, s: usize, e: usize, sig: &mut Lazy<'_>) -> Option<Match> {
    let b = scan.text;
    let groups = &c.groups[s..e];
    let first = groups[0];
    let last = groups[groups.len() - 1];
    let lead = s == 0 && c.lead;
    let start = if lead { first.start - 1 } else { first.start };
    let end = last.end;
    let n: usize = groups.iter().map(|g| g.len).sum();
    if n > 19 {
        // Longer than any number read here (a single group can be any length).
        return None;
    }
    // Separators between the groups of the span (the first group's own is outside it).
    let seps = || groups[1..].iter().map(|g| g.sep);
    let one_sep = |want: u8| groups.len() > 1 && seps().all(|x| x == want);
    let plain = groups.len() == 1;
    let dotted_neighbour = (s > 0 && first.sep == b'.') || (e < c.groups.len() && c.groups[e].sep == b'.');
    let mut digits = [0u8; MAX_DIGITS + 2];
    let mut k = 0;
    for g in groups {
        for &d in &b[g.start..g.end] {
            digits[k] = d;
            k += 1;
        }
    }
    let d = &digits[..k];
    let all_digits = d.iter().all(u8::is_ascii_digit);
    let lens: lens::Lens = lens::of(groups);
    let min = scan.scanner.options().min_score;
    let mut best: Option<Match> = None;
    // Of two valid readings, the one whose name is written nearest wins (a 14-digit SIRET
    // next to "SIRET" is not a Diners card); without names, the more harmful one.
    let rank = |m: &Match, sig: Signals| (sig.has(m.0), std::cmp::Reverse(sig.distance(m.0)), m.1 * m.0.sensitivity());
    let offer = |m: Match, best: &mut Option<Match>, sig: Signals| {
        if m.1 >= min && best.is_none_or(|b| rank(&m, sig) > rank(&b, sig)) {
            *best = Some(m);
        }
    };

    // IPv4: exactly four dot-separated groups, each 0..=255 without leading zeros.
    if groups.len() == 4 && one_sep(b'.') && !lead && !dotted_neighbour && !followed_by_dot_digit(b, end) {
        let ok = groups.iter().all(|g| {
            let v = &b[g.start..g.end];
            v.len() <= 3 && v.iter().all(u8::is_ascii_digit) && (v.len() == 1 || v[0] != b'0') && atoi(v) <= 255
        });
        let version = start > 0 && matches!(b[start - 1], b'v' | b'V');
        // Logs put request, port and session words next to addresses: only a version word
        // counts against one.
        if ok && !version && !sig.get().version {
            offer(
                (
                    PiiType::IpAddress,
                    contextual(0.85, 0.1, Signals { negative: false, ..sig.get() }, PiiType::IpAddress),
                    start,
                    end,
                    Some("ipv4"),
                ),
                &mut best,
                sig.get(),
            );
        }
        if ok || groups.iter().any(|g| g.len < 4) {
            // An address, or a dotted quad that is none (a version): nothing else to read.
            return best;
        }
    }
    // A US ZIP+4 code (`02110-1301`).
    if lens.is(&[5, 4]) && one_sep(b'-') {
        return None;
    }
    let date = matches!(groups.len(), 3)
        && (lens.is(&[2, 2, 4]) || lens.is(&[4, 2, 2]) || lens.is(&[2, 2, 2]))
        && (seps().all(|x| matches!(x, b'.' | b'/' | b'-')) || (!lens.is(&[2, 2, 2]) && one_sep(b' ')));
    if dotted_neighbour || date {
        // Part of a longer dotted number (decimals, a version), or a date.
        return None;
    }
    if let Some((p, letter)) = c.suffix
        && e == c.groups.len()
    {
        // Digits and their check letter: a Spanish DNI — or digits glued to a letter that is
        // no check letter (`037714252f`, `…-78-9A`), which are nothing.
        if n == 8 && all_digits && checksum::es_dni(d, letter) {
            offer((PiiType::EsDni, contextual(0.85, 0.12, sig.get(), PiiType::EsDni), start, p + 1, None), &mut best, sig.get());
        }
        return best;
    }
    if !all_digits {
        if n == 15 && (plain || lens.is(&[1, 2, 2, 2, 3, 3, 2])) && checksum::fr_nir(d) {
            offer((PiiType::FrNir, contextual(0.85, 0.14, sig.get(), PiiType::FrNir), start, end, Some("corsica")), &mut best, sig.get());
        }
        return best;
    }
    // An unformatted number of 17 to 19 digits is more often a 64-bit integer in code
    // (`4611686018427387900`) or an id than one of the rare long cards: it needs the word.
    let card_base = if plain && n >= 17 { 0.45 } else { 0.95 };
    let grouped4 = groups.len() > 1
        && groups[..groups.len() - 1].iter().all(|g| g.len == 4)
        && last.len <= 4
        && (one_sep(b' ') || one_sep(b'-') || one_sep(b'.'));
    if (13..=19).contains(&n)
        && !lead
        && (plain || grouped4 || lens.is(&[4, 6, 5]) || lens.is(&[4, 6, 4]))
        && checksum::luhn(d)
        && let Some(network) = checksum::card_network(d)
    {
        offer(
            (
                PiiType::CreditCard,
                contextual(card_base, if card_base < 0.9 { 0.5 } else { 0.04 }, sig.get(), PiiType::CreditCard),
                start,
                end,
                Some(network),
            ),
            &mut best,
            sig.get(),
        );
    }
    match n {
        15 if !lead && (plain || lens.is(&[1, 2, 2, 2, 3, 3, 2]) || lens.is(&[13, 2])) && checksum::fr_nir(d) => {
            offer((PiiType::FrNir, contextual(0.8, 0.19, sig.get(), PiiType::FrNir), start, end, None), &mut best, sig.get());
        }
        14 if !lead && (plain || lens.is(&[3, 3, 3, 5]) || lens.is(&[9, 5])) && checksum::fr_siret(d) => {
            let base = if plain { 0.4 } else { 0.55 };
            offer((PiiType::FrSiret, contextual(base, 0.42, sig.get(), PiiType::FrSiret), start, end, None), &mut best, sig.get());
        }
        11 if !lead => {
            let be_format = lens.is(&[2, 2, 2, 3, 2]) && seps().any(|x| x == b'-') || lens.is(&[6, 3, 2]);
            if (plain || be_format || lens.is(&[2, 2, 2, 5])) && checksum::be_national_number(d) {
                let base = if be_format { 0.8 } else { 0.4 };
                offer(
                    (PiiType::BeNationalNumber, contextual(base, 0.45, sig.get(), PiiType::BeNationalNumber), start, end, None),
                    &mut best,
                    sig.get(),
                );
            }
            if (plain || lens.is(&[6, 5])) && checksum::pl_pesel(d) {
                offer((PiiType::PlPesel, contextual(0.4, 0.5, sig.get(), PiiType::PlPesel), start, end, None), &mut best, sig.get());
            }
            if (plain || lens.is(&[2, 3, 3, 3])) && checksum::de_tax_id(d) {
                offer((PiiType::DeTaxId, contextual(0.4, 0.5, sig.get(), PiiType::DeTaxId), start, end, None), &mut best, sig.get());
            }
        }
        9 if !lead => {
            if (plain || lens.is(&[3, 3, 3])) && checksum::fr_siren(d) {
                offer((PiiType::FrSiren, contextual(0.35, 0.5, sig.get(), PiiType::FrSiren), start, end, None), &mut best, sig.get());
            }
            if (plain || lens.is(&[4, 2, 3]) || lens.is(&[3, 3, 3])) && checksum::nl_bsn(d) {
                let base = if lens.is(&[4, 2, 3]) { 0.45 } else { 0.35 };
                offer((PiiType::NlBsn, contextual(base, 0.5, sig.get(), PiiType::NlBsn), start, end, None), &mut best, sig.get());
            }
            if (plain || lens.is(&[3, 2, 4])) && checksum::us_ssn(d) {
                let base = if lens.is(&[3, 2, 4]) && one_sep(b'-') {
                    0.6
                } else if lens.is(&[3, 2, 4]) {
                    0.45
                } else {
                    0.2
                };
                offer((PiiType::Ssn, contextual(base, 0.35, sig.get(), PiiType::Ssn), start, end, None), &mut best, sig.get());
            }
        }
        _ => {}
    }
    // People write a phone number with one kind of separator (or `/` then dots, in Belgium);
    // `.` mixed with `-` is a version, a date or a range.
    let mixed = seps().any(|x| x == b'.') && seps().any(|x| x == b'-');
    if (8..=15).contains(&n)
        && !mixed
        && best.as_ref().is_none_or(|m| m.1 < 0.9)
        && let Some(score) = phone(scan, start, &b[start..end], d, lead, groups.len(), sig)
    {
        offer((PiiType::Phone, score, start, end, None), &mut best, sig.get());
    }
    best
}

/// EU (and neighbouring) regions whose national numbers start with a trunk `0`, most
/// populous first.
pub const TRUNK_ZERO: &[&str] = &["DE", "FR", "IT", "NL", "BE", "AT", "GB", "IE", "SE", "FI", "RO", "HU", "HR", "SK", "SI", "BG", "CH"];
/// EU regions whose national numbers have no trunk prefix.
pub const NO_TRUNK: &[&str] = &["ES", "IT", "PL", "PT", "GR", "CZ", "DK", "LU", "LV", "EE", "MT", "CY"];

/// A phone number's score when it is a valid number: international (`+` or `00`), national
/// with a trunk `0` in an EU country, or — next to a phone word only — an EU national number
/// without a trunk prefix.
fn phone(scan: &mut Scan<'_>, start: usize, raw: &[u8], d: &[u8], lead: bool, groups: usize, sig: &mut Lazy<'_>) -> Option<f64> {
    let formatted = groups > 1;
    let digits = std::str::from_utf8(d).ok()?;
    let (base, regions): (f64, &[&str]) = if raw.starts_with(b"+") || d.starts_with(b"00") {
        (0.85, &[])
    } else if raw.starts_with(b"(") {
        (0.65, TRUNK_ZERO)
    } else if d[0] == b'0' && d[1] != b'0' && (d.len() >= 9 || sig.get().has(PiiType::Phone)) {
        // Eight digits with a trunk 0 (`[01380208]`) are a phone number only when named one.
        (if formatted { 0.7 } else { 0.6 }, TRUNK_ZERO)
    } else if !lead && sig.get().has(PiiType::Phone) {
        (0.45, NO_TRUNK)
    } else {
        return None;
    };
    // A national number named as something else ("SIREN 035 593 781", "DNI 06225910L") is
    // not a phone number, even when that something else fails its check.
    let named = sig.get();
    let other_word = PiiType::ALL
        .into_iter()
        .filter(|t| !matches!(t, PiiType::Phone | PiiType::Email | PiiType::IpAddress | PiiType::ApiKey))
        .map(|t| named.distance(t))
        .min()
        .unwrap_or(u16::MAX);
    // …unless a finding stands between that name and this number ("card 4532… y 0612…").
    let name_used = scan.found.last().is_some_and(|f| f.start + usize::from(other_word) >= start);
    if !raw.starts_with(b"+") && other_word < named.distance(PiiType::Phone) && !name_used {
        return None;
    }
    let valid = if regions.is_empty() {
        spend(scan, 1) && phone::valid_international(digits.strip_prefix("00").unwrap_or(digits))
    } else {
        regions.iter().any(|r| spend(scan, 1) && phone::valid_national(r, digits))
    };
    valid.then(|| contextual(base, 0.25, sig.get(), PiiType::Phone))
}

/// Takes `n` phone validations from the scan's budget; false when it is spent.
fn spend(scan: &mut Scan<'_>, n: usize) -> bool {
    if scan.phone_budget < n {
        return false;
    }
    scan.phone_budget -= n;
    true
}

fn followed_by_dot_digit(b: &[u8], end: usize) -> bool {
    end + 1 < b.len() && b[end] == b'.' && b[end + 1].is_ascii_digit()
}

fn atoi(v: &[u8]) -> u32 {
    v.iter().fold(0, |a, d| a * 10 + u32::from(d - b'0'))
}

/// The group lengths of a span, to compare with the formats people write.
mod lens {
    use super::{Group, MAX_GROUPS};

    pub struct Lens {
        lens: [u8; MAX_GROUPS],
        n: usize,
    }

    pub fn of(groups: &[Group]) -> Lens {
        let mut lens = [0u8; MAX_GROUPS];
        for (i, g) in groups.iter().enumerate() {
            lens[i] = g.len as u8;
        }
        Lens { lens, n: groups.len() }
    }

    impl Lens {
        pub fn is(&self, want: &[u8]) -> bool {
            self.lens[..self.n] == *want
        }
    }
}
