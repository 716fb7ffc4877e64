//! Generated test data: labelled sentences holding sensitive data, negative texts, and bench corpora.
//!
//! Everything is drawn from a `u64` seed by a small splitmix64 generator, so a seed always gives
//! the same texts, and nothing here does I/O. The values are made valid by this module's own
//! checksum code (the `check` module below), written from the published rules and kept apart
//! from the engine's validators on purpose: it is the oracle `tests/accuracy` measures the engine
//! against. Sentences are in English, French, German, Spanish, Italian and Dutch, with the
//! words people write next to each kind of value; values that speak for themselves (a grouped
//! card number, an e-mail, `+33…`, a prefixed key) also appear without any such word.

use std::borrow::Cow;

use crate::PiiType;

/// Where one sensitive value sits in a [`Sample`]'s text, in Unicode code points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    /// What the value is.
    pub kind: PiiType,
    /// First code point of the value (inclusive).
    pub start: usize,
    /// Code point after the value (exclusive).
    pub end: usize,
}

/// A text and the sensitive values in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// One or two sentences.
    pub text: String,
    /// Every sensitive value in `text`; empty when it holds none.
    pub labels: Vec<Label>,
}

/// The types whose values carry a checksum (or check letter) that [`broken`] breaks.
pub const CHECKSUM_TYPES: [PiiType; 12] = {
    let mut out = [PiiType::CreditCard; 12];
    let (mut i, mut k) = (0, 0);
    while i < PiiType::ALL.len() {
        if PiiType::ALL[i].has_checksum() {
            out[k] = PiiType::ALL[i];
            k += 1;
        }
        i += 1;
    }
    assert!(k == 12, "twelve types carry a checksum");
    out
};

/// For every [`PiiType`], `per_type` sentences each holding one valid value of it, written the
/// way people type it; about one in twelve also holds a second value of another type (an
/// e-mail, an international phone number, an IBAN or an IP address), labelled too.
pub fn labelled(seed: u64, per_type: usize) -> Vec<Sample> {
    let mut rng = Rng::new(seed, 1);
    let mut out = Vec::with_capacity(PiiType::ALL.len() * per_type);
    for kind in PiiType::ALL {
        for _ in 0..per_type {
            let mut sample = sample_of(&mut rng, kind);
            if rng.chance(8) {
                let second = loop {
                    let k = rng.pick(&PAIR_TYPES);
                    if k != kind {
                        break k;
                    }
                };
                let other = loop {
                    // A national phone number (`953 521 713`) could be taken for the first value.
                    let v = value(&mut rng, second);
                    if v.self_evident {
                        break sentence(&mut rng, second, v);
                    }
                };
                append(&mut sample, &other);
            }
            out.push(sample);
        }
    }
    out
}

/// For every type of [`CHECKSUM_TYPES`], `per_type` sentences like those of [`labelled`] whose
/// value has one digit (or letter) changed so that its checksum fails, and that passes no
/// other type's checksum either. The labels are empty: any finding there is a false positive.
pub fn broken(seed: u64, per_type: usize) -> Vec<Sample> {
    broken_with_spans(seed, per_type).into_iter().map(|s| Sample { text: s.text, labels: Vec::new() }).collect()
}

/// `n` texts that hold no sensitive data but look close: order, invoice and tracking numbers,
/// UUIDs, dates and timestamps, versions, hashes, amounts, coordinates, SKUs, ISBNs, code and
/// log lines, long decimals. A text whose digits happen to pass a checksum is drawn again.
pub fn negatives(seed: u64, n: usize) -> Vec<String> {
    let mut rng = Rng::new(seed, 3);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut text = rng.pick(PROSE).to_string();
        for _ in 0..64 {
            let candidate = rng.pick(NEGATIVE_MAKERS)(&mut rng);
            if !holds_valid_number(&candidate) {
                text = candidate;
                break;
            }
        }
        out.push(text);
    }
    out
}

/// Multilingual prose with no sensitive data and almost no digits, at most `bytes` long (cut on
/// a character boundary).
pub fn prose(seed: u64, bytes: usize) -> String {
    let mut rng = Rng::new(seed, 4);
    let mut out = String::with_capacity(bytes + 256);
    while out.len() < bytes {
        push_prose_sentence(&mut rng, &mut out);
    }
    truncate_at(out, bytes)
}

/// Prose like [`prose`] in which about 1 % of the bytes are sensitive values, each in a
/// sentence like those of [`labelled`]; at most `bytes` long.
pub fn prose_with_pii(seed: u64, bytes: usize) -> String {
    prose_with_pii_labelled(seed, bytes).text
}

/// [`prose_with_pii`] with its labels (a value cut by the size limit keeps a clipped label).
fn prose_with_pii_labelled(seed: u64, bytes: usize) -> Sample {
    let mut rng = Rng::new(seed, 5);
    let mut out = Sample { text: String::with_capacity(bytes + 256), labels: Vec::new() };
    let mut sensitive = 0usize;
    while out.text.len() < bytes {
        if sensitive * 100 < out.text.len() {
            let kind = rng.pick(&PiiType::ALL);
            let sample = sample_of(&mut rng, kind);
            let chars: Vec<char> = sample.text.chars().collect();
            sensitive += sample.labels.iter().map(|l| chars[l.start..l.end].iter().map(|c| c.len_utf8()).sum::<usize>()).sum::<usize>();
            if out.text.is_empty() {
                out = sample;
            } else {
                append(&mut out, &sample);
            }
        } else {
            push_prose_sentence(&mut rng, &mut out.text);
        }
    }
    out.text = truncate_at(out.text, bytes);
    let total = out.text.chars().count();
    out.labels.retain(|l| l.start < total);
    for l in &mut out.labels {
        l.end = l.end.min(total);
    }
    out
}

/// Rust, Python and JavaScript source and log lines (timestamps, IP addresses, request ids,
/// durations, hex), at most `bytes` long.
pub fn code_and_logs(seed: u64, bytes: usize) -> String {
    let mut rng = Rng::new(seed, 6);
    let mut out = String::with_capacity(bytes + 256);
    while out.len() < bytes {
        let chunk = if rng.chance(55) { log_line(&mut rng) } else { rng.pick(CODE_MAKERS)(&mut rng) };
        out.push_str(&chunk);
        out.push('\n');
    }
    truncate_at(out, bytes)
}

// ---------------------------------------------------------------------------------------------
// Sentences

/// The types a second value in a two-value sentence is drawn from: their shapes cannot be taken
/// for the first value's, so the sentence stays unambiguous.
const PAIR_TYPES: [PiiType; 4] = [PiiType::Email, PiiType::Phone, PiiType::Iban, PiiType::IpAddress];

/// A value and the sentences it can be written in.
struct Value {
    text: String,
    /// A reader recognises it with no word naming it (a grouped card number, an e-mail, `+33…`).
    self_evident: bool,
    /// Sentences naming it; `{}` is where the value goes.
    context: &'static [&'static str],
    /// Sentences that do not name it, for self-evident values.
    neutral: &'static [&'static str],
    /// An environment-variable name to write it as a configuration line (`OPENAI_API_KEY=…`).
    config_name: Option<&'static str>,
}

impl Value {
    fn evident(text: String, context: &'static [&'static str]) -> Value {
        Value { text, self_evident: true, context, neutral: NEUTRAL, config_name: None }
    }

    fn named(text: String, context: &'static [&'static str]) -> Value {
        Value { text, self_evident: false, context, neutral: NEUTRAL, config_name: None }
    }
}

/// A fresh valid value of `kind` in a sentence.
fn sample_of(rng: &mut Rng, kind: PiiType) -> Sample {
    let v = value(rng, kind);
    sentence(rng, kind, v)
}

fn sentence(rng: &mut Rng, kind: PiiType, value: Value) -> Sample {
    let template: Cow<'static, str> = if value.self_evident && rng.chance(33) {
        Cow::Borrowed(rng.pick(value.neutral))
    } else if let Some(name) = value.config_name
        && rng.chance(30)
    {
        Cow::Owned(rng.pick(CONFIG_LINES).replace("NAME", name))
    } else {
        Cow::Borrowed(rng.pick(value.context))
    };
    fill(&template, &value.text, kind)
}

/// The template with `{}` replaced by the value, labelled.
fn fill(template: &str, value: &str, kind: PiiType) -> Sample {
    let (before, after) = template.split_once("{}").unwrap_or((template, ""));
    let start = before.chars().count();
    let end = start + value.chars().count();
    Sample { text: format!("{before}{value}{after}"), labels: vec![Label { kind, start, end }] }
}

fn append(sample: &mut Sample, other: &Sample) {
    sample.text.push(' ');
    let shift = sample.text.chars().count();
    sample.text.push_str(&other.text);
    sample.labels.extend(other.labels.iter().map(|l| Label { kind: l.kind, start: l.start + shift, end: l.end + shift }));
}

fn value(rng: &mut Rng, kind: PiiType) -> Value {
    match kind {
        PiiType::CreditCard => Value::evident(make::card(rng), CARD_CONTEXT),
        PiiType::Iban => Value::evident(make::iban(rng), IBAN_CONTEXT),
        PiiType::ApiKey => make::api_key(rng),
        PiiType::Ssn => Value::named(make::ssn(rng), SSN_CONTEXT),
        PiiType::FrNir => Value::named(make::nir(rng), NIR_CONTEXT),
        PiiType::FrSiren => Value::named(make::siren(rng), SIREN_CONTEXT),
        PiiType::FrSiret => Value::named(make::siret(rng), SIRET_CONTEXT),
        PiiType::EsDni => Value::named(make::dni(rng), DNI_CONTEXT),
        PiiType::EsNie => Value::named(make::nie(rng), NIE_CONTEXT),
        PiiType::ItFiscalCode => Value::named(make::fiscal_code(rng), FISCAL_CODE_CONTEXT),
        PiiType::NlBsn => Value::named(make::bsn(rng), BSN_CONTEXT),
        PiiType::BeNationalNumber => Value::named(make::be_national(rng), BE_NATIONAL_CONTEXT),
        PiiType::PlPesel => Value::named(make::pesel(rng), PESEL_CONTEXT),
        PiiType::DeTaxId => Value::named(make::de_tax_id(rng), DE_TAX_CONTEXT),
        PiiType::UkNino => Value::named(make::nino(rng), NINO_CONTEXT),
        PiiType::Phone => make::phone(rng),
        PiiType::Email => Value::evident(make::email(rng), EMAIL_CONTEXT),
        PiiType::IpAddress => Value::evident(make::ip(rng), IP_CONTEXT),
    }
}

/// Broken samples with the broken value's span kept in `labels` (for this module's tests).
fn broken_with_spans(seed: u64, per_type: usize) -> Vec<Sample> {
    let mut rng = Rng::new(seed, 2);
    let mut out = Vec::with_capacity(CHECKSUM_TYPES.len() * per_type);
    for kind in CHECKSUM_TYPES {
        for _ in 0..per_type {
            let mut v = value(&mut rng, kind);
            v.text = loop {
                let candidate = corrupt(&mut rng, kind, &v.text);
                if !check::valid(kind, &candidate) && !check::any_checksum_valid(&check::compact(&candidate)) {
                    break candidate;
                }
            };
            out.push(sentence(&mut rng, kind, v));
        }
    }
    out
}

/// The value with one character changed: a digit for another digit, or (in the types whose
/// letters are checked) a letter for another letter. The country code of an IBAN is kept.
fn corrupt(rng: &mut Rng, kind: PiiType, text: &str) -> String {
    let letters_too = matches!(kind, PiiType::EsDni | PiiType::EsNie | PiiType::ItFiscalCode);
    let positions: Vec<usize> =
        text.char_indices().filter(|&(_, c)| c.is_ascii_digit() || (letters_too && c.is_ascii_alphabetic())).map(|(i, _)| i).collect();
    let mut bytes = text.as_bytes().to_vec();
    let at = positions[rng.below(positions.len())];
    let old = bytes[at];
    bytes[at] = loop {
        let new = if old.is_ascii_digit() {
            b'0' + rng.below(10) as u8
        } else if old.is_ascii_uppercase() {
            b'A' + rng.below(26) as u8
        } else {
            b'a' + rng.below(26) as u8
        };
        if new != old {
            break new;
        }
    };
    String::from_utf8(bytes).expect("an ASCII byte was replaced by an ASCII byte")
}

/// Whether a run of digits in `text` (alone, or groups joined across single spaces, dashes,
/// dots or slashes) passes one of the checksums: such a text is no clean negative.
fn holds_valid_number(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut chains: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            current.push(&text[start..i]);
            let joins = i + 1 < bytes.len() && matches!(bytes[i], b' ' | b'-' | b'.' | b'/') && bytes[i + 1].is_ascii_digit();
            if joins {
                i += 1;
            } else {
                chains.push(std::mem::take(&mut current));
            }
        } else {
            i += 1;
        }
    }
    chains
        .iter()
        .any(|chain| (0..chain.len()).any(|from| (from + 1..=chain.len()).any(|to| check::any_checksum_valid(&chain[from..to].concat()))))
}

fn push_prose_sentence(rng: &mut Rng, out: &mut String) {
    out.push_str(rng.pick(PROSE));
    out.push(if rng.chance(15) { '\n' } else { ' ' });
}

fn truncate_at(mut text: String, bytes: usize) -> String {
    if text.len() > bytes {
        let mut cut = bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Random numbers

/// splitmix64: tiny, fast, and plenty for drawing test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next_u64();
        rng
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// A number in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn pick_byte(&mut self, alphabet: &[u8]) -> char {
        char::from(self.pick(alphabet))
    }

    fn digits(&mut self, n: usize) -> String {
        self.string_from(b"0123456789", n)
    }

    fn string_from(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n).map(|_| self.pick_byte(alphabet)).collect()
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Checksums: the oracle, written from the published rules

mod check {
    use crate::PiiType;

    /// The value without the separators people put in it, upper case.
    pub(super) fn compact(text: &str) -> String {
        text.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '/')).map(|c| c.to_ascii_uppercase()).collect()
    }

    /// Whether `text` (as written, separators allowed) is a valid value of `kind`. Only the
    /// types with a rule here are checked; the others (keys, e-mails, IPs, phones) are `false`.
    pub(super) fn valid(kind: PiiType, text: &str) -> bool {
        let c = compact(text);
        if !c.is_ascii() {
            return false;
        }
        match kind {
            PiiType::CreditCard => card(&c),
            PiiType::Iban => iban(&c),
            PiiType::FrNir => nir(&c),
            PiiType::FrSiren => c.len() == 9 && luhn(&c),
            PiiType::FrSiret => siret(&c),
            PiiType::EsDni => dni(&c),
            PiiType::EsNie => nie(&c),
            PiiType::ItFiscalCode => fiscal_code(&c),
            PiiType::NlBsn => bsn(&c),
            PiiType::BeNationalNumber => be_national(&c),
            PiiType::PlPesel => pesel(&c),
            PiiType::DeTaxId => de_tax_id(&c),
            PiiType::Ssn => ssn(text),
            PiiType::UkNino => nino(&c),
            PiiType::ApiKey | PiiType::Phone | PiiType::Email | PiiType::IpAddress => false,
        }
    }

    /// Whether a compact value passes any of the checksums above.
    pub(super) fn any_checksum_valid(c: &str) -> bool {
        c.is_ascii()
            && ((c.len() >= 13 && c.len() <= 19 && luhn(c))
                || (c.len() == 9 && (luhn(c) || bsn(c)))
                || siret(c)
                || nir(c)
                || pesel(c)
                || de_tax_id(c)
                || be_national(c)
                || dni(c)
                || nie(c)
                || fiscal_code(c)
                || iban(c))
    }

    fn all_digits(c: &str) -> bool {
        !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit())
    }

    fn digit_values(c: &str) -> impl DoubleEndedIterator<Item = u32> + '_ {
        c.bytes().map(|b| u32::from(b - b'0'))
    }

    fn number(c: &str) -> u64 {
        c.bytes().fold(0, |n, b| n * 10 + u64::from(b - b'0'))
    }

    pub(super) fn luhn(c: &str) -> bool {
        all_digits(c)
            && digit_values(c)
                .rev()
                .enumerate()
                .map(|(i, d)| if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d })
                .sum::<u32>()
                % 10
                == 0
    }

    /// A payment card number: 13–19 digits, Luhn, an issuer range we generate.
    pub(super) fn card(c: &str) -> bool {
        if !luhn(c) {
            return false;
        }
        let prefix = |n: usize| c[..n].parse::<u32>().unwrap_or(0);
        match c.len() {
            13 | 19 => c.starts_with('4'),
            14 => c.starts_with("36"),
            15 => c.starts_with("34") || c.starts_with("37"),
            16 => {
                c.starts_with('4')
                    || (51..=55).contains(&prefix(2))
                    || (2221..=2720).contains(&prefix(4))
                    || c.starts_with("6011")
                    || c.starts_with("65")
                    || (3528..=3589).contains(&prefix(4))
            }
            _ => false,
        }
    }

    /// ISO 13616 / ISO 7064 MOD 97-10 remainder of a string of digits and capital letters.
    pub(super) fn mod97(s: &str) -> u32 {
        s.bytes().fold(0u32, |r, b| match b {
            b'0'..=b'9' => (r * 10 + u32::from(b - b'0')) % 97,
            _ => (r * 100 + u32::from(b - b'A') + 10) % 97,
        })
    }

    /// The IBAN length of the countries we generate.
    pub(super) fn iban_length(country: &str) -> Option<usize> {
        Some(match country {
            "FR" | "IT" => 27,
            "DE" | "GB" | "IE" => 22,
            "ES" => 24,
            "NL" => 18,
            "BE" => 16,
            "CH" => 21,
            "PL" => 28,
            "PT" => 25,
            "LU" | "AT" => 20,
            _ => return None,
        })
    }

    pub(super) fn iban(c: &str) -> bool {
        c.len() > 4
            && c.is_char_boundary(2)
            && iban_length(&c[..2]) == Some(c.len())
            && c.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            && c[2..4].bytes().all(|b| b.is_ascii_digit())
            && mod97(&format!("{}{}", &c[4..], &c[..4])) == 1
    }

    /// French NIR: 13 characters and a key, 97 − (number mod 97), Corsica's 2A/2B read as 19/18.
    pub(super) fn nir(c: &str) -> bool {
        if c.len() != 15 || !c.is_char_boundary(5) || !c.is_char_boundary(7) {
            return false;
        }
        let department = &c[5..7];
        let body = match department {
            "2A" => format!("{}19{}", &c[..5], &c[7..13]),
            "2B" => format!("{}18{}", &c[..5], &c[7..13]),
            _ => c[..13].to_string(),
        };
        if !all_digits(&body) || !all_digits(&c[13..]) || !matches!(c.as_bytes()[0], b'1' | b'2') {
            return false;
        }
        let month = number(&c[3..5]);
        (1..=12).contains(&month) && 97 - number(&body) % 97 == number(&c[13..])
    }

    /// French SIRET: Luhn over 14 digits, except La Poste's establishments (SIREN 356000000),
    /// whose digits add up to a multiple of 5; its head office keeps Luhn.
    pub(super) fn siret(c: &str) -> bool {
        if c.len() != 14 || !all_digits(c) {
            return false;
        }
        if c.starts_with("356000000") && c != "35600000000048" { digit_values(c).sum::<u32>() % 5 == 0 } else { luhn(c) }
    }

    pub(super) const DNI_LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";

    pub(super) fn dni(c: &str) -> bool {
        c.len() == 9 && all_digits(&c[..8]) && c.as_bytes()[8] == DNI_LETTERS[(number(&c[..8]) % 23) as usize]
    }

    pub(super) fn nie(c: &str) -> bool {
        if c.len() != 9 || !all_digits(&c[1..8]) {
            return false;
        }
        let lead = match c.as_bytes()[0] {
            b'X' => 0,
            b'Y' => 1,
            b'Z' => 2,
            _ => return false,
        };
        c.as_bytes()[8] == DNI_LETTERS[((lead * 10_000_000 + number(&c[1..8])) % 23) as usize]
    }

    /// Values of a character in an odd (1st, 3rd…) position of an Italian fiscal code or CIN.
    const ODD: [u32; 26] = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23];

    /// The Italian check character (fiscal code, bank CIN) of digits and capital letters.
    pub(super) fn italian_check_char(s: &str) -> char {
        let sum: u32 = s
            .bytes()
            .enumerate()
            .map(|(i, b)| {
                let index = if b.is_ascii_digit() { u32::from(b - b'0') } else { u32::from(b - b'A') };
                if i % 2 == 0 { ODD[index as usize] } else { index }
            })
            .sum();
        char::from(b'A' + (sum % 26) as u8)
    }

    /// Italian fiscal code (no omocodia): 6 letters, 2 digits, month letter, 2 digits, a
    /// cadastral code (letter and 3 digits), the check letter.
    pub(super) fn fiscal_code(c: &str) -> bool {
        let b = c.as_bytes();
        let letter = |i: usize| b[i].is_ascii_uppercase();
        let digit = |i: usize| b[i].is_ascii_digit();
        c.len() == 16
            && (0..6).all(letter)
            && digit(6)
            && digit(7)
            && b"ABCDEHLMPRST".contains(&b[8])
            && digit(9)
            && digit(10)
            && matches!(number(&c[9..11]), 1..=31 | 41..=71)
            && letter(11)
            && (12..15).all(digit)
            && letter(15)
            && italian_check_char(&c[..15]) == char::from(b[15])
    }

    /// Dutch BSN: 9·d1 + 8·d2 + … + 2·d8 − d9 ≡ 0 (mod 11).
    pub(super) fn bsn(c: &str) -> bool {
        c.len() == 9 && all_digits(c) && {
            let sum: i64 = digit_values(c).zip([9, 8, 7, 6, 5, 4, 3, 2, -1]).map(|(d, w)| i64::from(d) * w).sum();
            sum % 11 == 0
        }
    }

    /// Belgian national number: 97 − (first 9 digits mod 97), with a leading 2 for births from 2000.
    pub(super) fn be_national(c: &str) -> bool {
        if c.len() != 11 || !all_digits(c) {
            return false;
        }
        let month = number(&c[2..4]);
        let day = number(&c[4..6]);
        let base = number(&c[..9]);
        let check = number(&c[9..]);
        (1..=12).contains(&month) && (1..=31).contains(&day) && (97 - base % 97 == check || 97 - (2_000_000_000 + base) % 97 == check)
    }

    /// Polish PESEL: a date whose month carries the century, weights 1 3 7 9, check digit.
    pub(super) fn pesel(c: &str) -> bool {
        if c.len() != 11 || !all_digits(c) {
            return false;
        }
        let month = number(&c[2..4]) % 20;
        let day = number(&c[4..6]);
        let sum: u32 = digit_values(&c[..10]).zip([1, 3, 7, 9, 1, 3, 7, 9, 1, 3]).map(|(d, w)| d * w).sum();
        (1..=12).contains(&month) && (1..=31).contains(&day) && (10 - sum % 10) % 10 == u32::from(c.as_bytes()[10] - b'0')
    }

    /// ISO 7064 MOD 11,10 check digit.
    pub(super) fn mod_11_10(c: &str) -> u32 {
        let mut product = 10;
        for d in digit_values(c) {
            let mut sum = (d + product) % 10;
            if sum == 0 {
                sum = 10;
            }
            product = (sum * 2) % 11;
        }
        (11 - product) % 10
    }

    /// German tax id: 11 digits, no leading 0, in the first 10 one digit twice or three times
    /// and the others at most once, MOD 11,10 check digit.
    pub(super) fn de_tax_id(c: &str) -> bool {
        if c.len() != 11 || !all_digits(c) || c.starts_with('0') {
            return false;
        }
        let mut counts = [0u8; 10];
        for d in digit_values(&c[..10]) {
            counts[d as usize] += 1;
        }
        let repeated: Vec<u8> = counts.iter().copied().filter(|&n| n > 1).collect();
        matches!(repeated[..], [2] | [3]) && mod_11_10(&c[..10]) == u32::from(c.as_bytes()[10] - b'0')
    }

    /// US SSN written AAA-GG-SSSS (dashes or spaces): area not 000, 666 or 9xx, group not 00,
    /// serial not 0000.
    pub(super) fn ssn(text: &str) -> bool {
        let parts: Vec<&str> = text.split(['-', ' ']).collect();
        let [area, group, serial] = parts[..] else { return false };
        [area, group, serial].iter().zip([3, 2, 4]).all(|(p, n)| p.len() == n && all_digits(p))
            && !matches!(number(area), 0 | 666 | 900..)
            && number(group) != 0
            && number(serial) != 0
    }

    pub(super) const NINO_FIRST: &[u8] = b"ABCEGHJKLMNOPRSTWXYZ";
    pub(super) const NINO_SECOND: &[u8] = b"ABCEGHJKLMNPRSTWXYZ";
    pub(super) const NINO_BANNED: [&str; 7] = ["BG", "GB", "NK", "KN", "TN", "NT", "ZZ"];

    /// UK National Insurance number: two allowed letters, six digits, A–D.
    pub(super) fn nino(c: &str) -> bool {
        let b = c.as_bytes();
        c.len() == 9
            && NINO_FIRST.contains(&b[0])
            && NINO_SECOND.contains(&b[1])
            && !NINO_BANNED.contains(&&c[..2])
            && all_digits(&c[2..8])
            && matches!(b[8], b'A'..=b'D')
    }
}

// ---------------------------------------------------------------------------------------------
// Value generators

mod make {
    use super::{Lang, Rng, Value, check};

    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const HEX: &[u8] = b"0123456789abcdef";

    /// `s` cut into groups of these sizes (the last takes the rest), joined by `sep`.
    pub(super) fn grouped(s: &str, sizes: &[usize], sep: &str) -> String {
        let mut parts = Vec::new();
        let mut at = 0;
        for (i, &n) in sizes.iter().enumerate() {
            if at >= s.len() {
                break;
            }
            let end = if i + 1 == sizes.len() { s.len() } else { (at + n).min(s.len()) };
            parts.push(&s[at..end]);
            at = end;
        }
        parts.join(sep)
    }

    /// In groups of four, as on paper.
    fn fours(s: &str) -> String {
        s.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
    }

    /// `body` followed by the digit that makes it pass Luhn.
    fn with_luhn_digit(body: &str) -> String {
        (0..10).map(|d| format!("{body}{d}")).find(|s| check::luhn(s)).expect("one of ten digits completes a Luhn number")
    }

    pub(super) fn card(rng: &mut Rng) -> String {
        let roll = rng.below(100);
        let (prefix, len) = match roll {
            0..=29 => ("4".to_string(), 16),
            30..=33 => ("4".to_string(), 13),
            34..=37 => ("4".to_string(), 19),
            38..=52 => (rng.between(51, 55).to_string(), 16),
            53..=60 => (rng.between(2221, 2720).to_string(), 16),
            61..=72 => (rng.pick(&["34", "37"]).to_string(), 15),
            73..=80 => (rng.pick(&["6011", "65"]).to_string(), 16),
            81..=91 => (rng.between(3528, 3589).to_string(), 16),
            _ => ("36".to_string(), 14),
        };
        let body = format!("{prefix}{}", rng.digits(len - 1 - prefix.len()));
        let number = with_luhn_digit(&body);
        let sizes: &[usize] = match len {
            15 => &[4, 6, 5],
            14 => &[4, 6, 4],
            13 => &[13],
            _ => &[4, 4, 4, 4, 4],
        };
        match rng.below(3) {
            0 => number,
            1 => grouped(&number, sizes, " "),
            _ if len == 16 => grouped(&number, sizes, "-"),
            _ => grouped(&number, sizes, " "),
        }
    }

    /// An IBAN of one of 13 countries, with real national check digits where a country has
    /// them (FR RIB key, BE, ES, IT CIN), electronic or printed.
    pub(super) fn iban(rng: &mut Rng) -> String {
        let country = rng.pick(&["FR", "DE", "ES", "IT", "NL", "BE", "GB", "CH", "PL", "PT", "IE", "LU", "AT"]);
        let bban = match country {
            "FR" => {
                let bank = rng.pick(&["30006", "30004", "30003", "20041", "10278", "10107", "18206"]);
                let branch = rng.digits(5);
                let account = rng.digits(11);
                let sum = 89 * num(bank) + 15 * num(&branch) + 3 * num(&account);
                format!("{bank}{branch}{account}{:02}", 97 - sum % 97)
            }
            "DE" => format!("{}{}", rng.pick(&["37040044", "50010517", "10010010", "70150000", "20041133", "12030000"]), rng.digits(10)),
            "ES" => {
                let bank = rng.pick(&["2100", "0049", "0182", "0081", "2085", "1465"]);
                let branch = rng.digits(4);
                let account = rng.digits(10);
                format!("{bank}{branch}{}{}{account}", es_control(&format!("00{bank}{branch}")), es_control(&account))
            }
            "IT" => {
                let rest = format!("{}{}{}", rng.pick(&["03069", "02008", "05034", "03062"]), rng.digits(5), rng.digits(12));
                format!("{}{rest}", check::italian_check_char(&rest))
            }
            "NL" => format!("{}{}", rng.pick(&["ABNA", "INGB", "RABO", "SNSB", "TRIO", "KNAB"]), rng.digits(10)),
            "BE" => {
                let first = format!("{}{}", rng.pick(&["001", "068", "310", "363", "732", "068"]), rng.digits(7));
                let check = match num(&first) % 97 {
                    0 => 97,
                    r => r,
                };
                format!("{first}{check:02}")
            }
            "GB" => format!("{}{}{}", rng.pick(&["NWBK", "BARC", "LOYD", "HBUK", "MIDL"]), rng.digits(6), rng.digits(8)),
            "IE" => format!("{}{}{}", rng.pick(&["AIBK", "BOFI"]), rng.digits(6), rng.digits(8)),
            "CH" => format!("{}{}", rng.pick(&["00762", "00230", "08390"]), rng.digits(12)),
            "PL" => format!("{}{}", rng.digits(8), rng.digits(16)),
            "PT" => format!("{}{}", rng.pick(&["0002", "0033", "0035", "0010"]), rng.digits(17)),
            "LU" => format!("{}{}", rng.pick(&["001", "019", "030"]), rng.digits(13)),
            _ => format!("{}{}", rng.pick(&["12000", "20111", "14000"]), rng.digits(11)),
        };
        let check = 98 - check::mod97(&format!("{bban}{country}00"));
        let iban = format!("{country}{check:02}{bban}");
        if rng.chance(50) { iban } else { fours(&iban) }
    }

    fn num(s: &str) -> u64 {
        s.parse().expect("generated digits")
    }

    /// A Spanish CCC control digit over ten digits.
    fn es_control(ten: &str) -> u64 {
        let sum: u64 = ten.bytes().zip([1, 2, 4, 8, 5, 10, 9, 7, 3, 6]).map(|(b, w)| u64::from(b - b'0') * w).sum();
        match 11 - sum % 11 {
            11 => 0,
            10 => 1,
            d => d,
        }
    }

    pub(super) fn nir(rng: &mut Rng) -> String {
        let sex = rng.between(1, 2);
        let year = rng.between(0, 99);
        let month = rng.between(1, 12);
        let department = if rng.chance(8) {
            rng.pick(&["2A", "2B"]).to_string()
        } else {
            let d = loop {
                let d = rng.between(1, 95);
                if d != 20 {
                    break d;
                }
            };
            format!("{d:02}")
        };
        let commune = rng.between(1, 990);
        let order = rng.between(1, 999);
        let keyed = department.replace("2A", "19").replace("2B", "18");
        let body = format!("{sex}{year:02}{month:02}{keyed}{commune:03}{order:03}");
        let key = 97 - num(&body) % 97;
        let parts = [
            sex.to_string(),
            format!("{year:02}"),
            format!("{month:02}"),
            department,
            format!("{commune:03}"),
            format!("{order:03}"),
            format!("{key:02}"),
        ];
        if rng.chance(50) { parts.concat() } else { parts.join(" ") }
    }

    fn siren_digits(rng: &mut Rng) -> String {
        with_luhn_digit(&format!("{}{}", rng.between(1, 9), rng.digits(7)))
    }

    pub(super) fn siren(rng: &mut Rng) -> String {
        let siren = siren_digits(rng);
        if rng.chance(50) { siren } else { grouped(&siren, &[3, 3, 3], " ") }
    }

    pub(super) fn siret(rng: &mut Rng) -> String {
        let siret = if rng.chance(6) {
            // La Poste: the digits add up to a multiple of 5.
            loop {
                let body = format!("356000000{}", rng.digits(4));
                let sum: u32 = body.bytes().map(|b| u32::from(b - b'0')).sum();
                let last = (5 - sum % 5) % 5 + if rng.chance(50) { 5 } else { 0 };
                let s = format!("{body}{last}");
                if s != "35600000000048" && !check::luhn(&s) {
                    break s;
                }
            }
        } else {
            with_luhn_digit(&format!("{}{}", siren_digits(rng), rng.digits(4)))
        };
        if rng.chance(50) { siret } else { grouped(&siret, &[3, 3, 3, 5], " ") }
    }

    pub(super) fn dni(rng: &mut Rng) -> String {
        let n = rng.between(100_000, 99_999_999);
        let letter = char::from(check::DNI_LETTERS[(n % 23) as usize]);
        match rng.below(4) {
            0 => format!("{n:08}-{letter}"),
            1 => format!("{n:08} {letter}"),
            _ => format!("{n:08}{letter}"),
        }
    }

    pub(super) fn nie(rng: &mut Rng) -> String {
        let lead = rng.below(3);
        let n = rng.between(0, 9_999_999);
        let letter = char::from(check::DNI_LETTERS[((lead as u64 * 10_000_000 + n) % 23) as usize]);
        let prefix = ["X", "Y", "Z"][lead];
        if rng.chance(25) { format!("{prefix}-{n:07}-{letter}") } else { format!("{prefix}{n:07}{letter}") }
    }

    const SURNAMES: &[&str] = &[
        "ROSSI", "BIANCHI", "RUSSO", "FERRARI", "ESPOSITO", "ROMANO", "COLOMBO", "RICCI", "MARINO", "GRECO", "BRUNO", "GALLO", "CONTI",
        "DE LUCA", "COSTA", "FONTANA", "MORETTI", "BARBIERI", "LOMBARDI", "GIORDANO", "RIZZO", "LEONE", "FO", "D'ANGELO", "BO", "AIELLO",
    ];
    const GIVEN_NAMES: &[(&str, bool)] = &[
        ("MARIO", false),
        ("GIUSEPPE", false),
        ("LUCA", false),
        ("MARCO", false),
        ("ALESSANDRO", false),
        ("PAOLO", false),
        ("LUIGI", false),
        ("ANDREA", false),
        ("MATTEO", false),
        ("GIOVANNI", false),
        ("UGO", false),
        ("ANNA", true),
        ("GIULIA", true),
        ("FRANCESCA", true),
        ("CHIARA", true),
        ("SARA", true),
        ("ELENA", true),
        ("SOFIA", true),
        ("MARIA", true),
        ("ROBERTA", true),
        ("BEATRICE", true),
        ("IDA", true),
    ];
    const CADASTRAL: &[&str] = &[
        "H501", "F205", "L219", "F839", "G273", "D612", "A944", "L736", "C351", "L424", "G224", "E506", "A662", "H294", "B157", "Z404",
        "Z133",
    ];

    fn fiscal_part(word: &str, given_name: bool) -> String {
        let letters: Vec<char> = word.chars().filter(char::is_ascii_alphabetic).collect();
        let consonants: Vec<char> = letters.iter().copied().filter(|c| !"AEIOU".contains(*c)).collect();
        if given_name && consonants.len() >= 4 {
            return [consonants[0], consonants[2], consonants[3]].iter().collect();
        }
        let vowels = letters.iter().copied().filter(|c| "AEIOU".contains(*c));
        consonants.iter().copied().chain(vowels).chain(std::iter::repeat('X')).take(3).collect()
    }

    pub(super) fn fiscal_code(rng: &mut Rng) -> String {
        let (name, female) = rng.pick(GIVEN_NAMES);
        let day = rng.between(1, 28) + if female { 40 } else { 0 };
        let body = format!(
            "{}{}{:02}{}{day:02}{}",
            fiscal_part(rng.pick(SURNAMES), false),
            fiscal_part(name, true),
            rng.between(0, 99),
            rng.pick_byte(b"ABCDEHLMPRST"),
            rng.pick(CADASTRAL)
        );
        let code = format!("{body}{}", check::italian_check_char(&body));
        if rng.chance(15) { code.to_ascii_lowercase() } else { code }
    }

    pub(super) fn bsn(rng: &mut Rng) -> String {
        let bsn = loop {
            let body = format!("{}{}", rng.between(1, 6), rng.digits(7));
            let sum: u32 = body.bytes().zip([9, 8, 7, 6, 5, 4, 3, 2]).map(|(b, w)| u32::from(b - b'0') * w).sum();
            if sum % 11 < 10 {
                break format!("{body}{}", sum % 11);
            }
        };
        if rng.chance(35) { format!("{}.{}.{}", &bsn[..4], &bsn[4..6], &bsn[6..]) } else { bsn }
    }

    pub(super) fn be_national(rng: &mut Rng) -> String {
        let year = rng.between(1940, 2019);
        let (month, day, seq) = (rng.between(1, 12), rng.between(1, 28), rng.between(1, 997));
        let first = format!("{:02}{month:02}{day:02}{seq:03}", year % 100);
        let base = num(&first) + if year >= 2000 { 2_000_000_000 } else { 0 };
        let check = 97 - base % 97;
        if rng.chance(60) {
            format!("{}.{}.{}-{}.{check:02}", &first[..2], &first[2..4], &first[4..6], &first[6..])
        } else {
            format!("{first}{check:02}")
        }
    }

    pub(super) fn pesel(rng: &mut Rng) -> String {
        let year = rng.between(1935, 2015);
        let month = rng.between(1, 12) + if year >= 2000 { 20 } else { 0 };
        let body = format!("{:02}{month:02}{:02}{}", year % 100, rng.between(1, 28), rng.digits(4));
        let sum: u64 = body.bytes().zip([1, 3, 7, 9, 1, 3, 7, 9, 1, 3]).map(|(b, w)| u64::from(b - b'0') * w).sum();
        format!("{body}{}", (10 - sum % 10) % 10)
    }

    pub(super) fn de_tax_id(rng: &mut Rng) -> String {
        let first10 = loop {
            let mut digits: Vec<u8> = (0..10).collect();
            shuffle(rng, &mut digits);
            // One digit twice (one digit of 0–9 left out), or since 2016 three times (two left out).
            let three = rng.chance(25);
            let kept = if three { 8 } else { 9 };
            digits.truncate(kept);
            let repeated = digits[rng.below(kept)];
            digits.push(repeated);
            if three {
                digits.push(repeated);
            }
            shuffle(rng, &mut digits);
            let in_a_row = digits.windows(3).any(|w| w[0] == w[1] && w[1] == w[2]);
            if digits[0] != 0 && !in_a_row {
                break digits.iter().map(|d| char::from(b'0' + d)).collect::<String>();
            }
        };
        let id = format!("{first10}{}", check::mod_11_10(&first10));
        if rng.chance(40) { grouped(&id, &[2, 3, 3, 3], " ") } else { id }
    }

    fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, rng.below(i + 1));
        }
    }

    pub(super) fn ssn(rng: &mut Rng) -> String {
        let (area, group, serial) = loop {
            let area = rng.between(1, 899);
            let (group, serial) = (rng.between(1, 99), rng.between(1, 9999));
            let famous = matches!((area, group, serial), (78, 5, 1120) | (219, 9, 9999) | (457, 55, 5462) | (123, 45, 6789));
            if area != 666 && !famous {
                break (area, group, serial);
            }
        };
        let sep = if rng.chance(85) { "-" } else { " " };
        format!("{area:03}{sep}{group:02}{sep}{serial:04}")
    }

    pub(super) fn nino(rng: &mut Rng) -> String {
        let prefix = loop {
            let p = format!("{}{}", rng.pick_byte(check::NINO_FIRST), rng.pick_byte(check::NINO_SECOND));
            if !check::NINO_BANNED.contains(&p.as_str()) {
                break p;
            }
        };
        let digits = rng.digits(6);
        let suffix = rng.pick_byte(b"ABCD");
        if rng.chance(50) {
            format!("{prefix} {} {} {} {suffix}", &digits[..2], &digits[2..4], &digits[4..])
        } else {
            format!("{prefix}{digits}{suffix}")
        }
    }

    const FIRST_NAMES: &[&str] =
        &["jean", "marie", "lukas", "anna", "sofia", "giulia", "javier", "pieter", "emma", "thomas", "lucia", "sanne", "matteo", "claire"];
    const LAST_NAMES: &[&str] =
        &["dupont", "mueller", "garcia", "rossi", "dejong", "smith", "martin", "schmidt", "fernandez", "bianchi", "janssens", "lefevre"];
    const MAIL_DOMAINS: &[&str] = &[
        "gmail.com",
        "outlook.fr",
        "orange.fr",
        "free.fr",
        "web.de",
        "gmx.de",
        "posteo.de",
        "yahoo.es",
        "telefonica.es",
        "libero.it",
        "tiscali.it",
        "ziggo.nl",
        "kpn.nl",
        "proximus.be",
        "bbc.co.uk",
        "ox.ac.uk",
        "mail.acme-corp.com",
        "eu.vigie.io",
        "staff.univ-lyon.fr",
        "protonmail.ch",
        "startup.dev",
    ];

    pub(super) fn email(rng: &mut Rng) -> String {
        let first = rng.pick(FIRST_NAMES);
        let last = rng.pick(LAST_NAMES);
        let local = match rng.below(7) {
            0 | 1 => format!("{first}.{last}"),
            2 => format!("{first}{last}"),
            3 => format!("{}.{last}", &first[..1]),
            4 => format!("{first}.{last}+{}", rng.pick(&["news", "shop", "work", "github", "invoices"])),
            5 => format!("{first}_{last}"),
            _ => format!("{first}{}{}", &last[..1], rng.between(10, 99)),
        };
        format!("{local}@{}", rng.pick(MAIL_DOMAINS))
    }

    pub(super) fn ip(rng: &mut Rng) -> String {
        if rng.chance(65) {
            let last = rng.between(1, 254);
            match rng.below(5) {
                0 => format!("10.{}.{}.{last}", rng.between(0, 255), rng.between(0, 255)),
                1 => format!("192.168.{}.{last}", rng.between(0, 255)),
                2 => format!("172.{}.{}.{last}", rng.between(16, 31), rng.between(0, 255)),
                _ => {
                    let first = loop {
                        let f = rng.between(1, 223);
                        if ![10, 100, 127, 169, 172, 192].contains(&f) {
                            break f;
                        }
                    };
                    format!("{first}.{}.{}.{last}", rng.between(0, 255), rng.between(0, 255))
                }
            }
        } else {
            ipv6(rng)
        }
    }

    fn ipv6(rng: &mut Rng) -> String {
        let mut groups: Vec<u64> = (0..8).map(|_| rng.between(1, 0xffff)).collect();
        groups[0] = rng.pick(&[0x2001, 0x2a01, 0x2a02, 0x2600, 0x2804, 0xfe80, 0xfd12]);
        if groups[0] == 0x2001 && rng.chance(50) {
            groups[1] = 0xdb8;
        }
        if rng.chance(30) {
            if rng.chance(50) {
                groups[3] = 0;
                groups[4] = 0;
            }
            return groups.iter().map(|g| format!("{g:04x}")).collect::<Vec<_>>().join(":");
        }
        // A run of zero groups written `::`, never at either end.
        let start = rng.between(1, 5) as usize;
        let len = rng.between(2, 7 - start as u64) as usize;
        let show = |gs: &[u64]| gs.iter().map(|g| format!("{g:x}")).collect::<Vec<_>>().join(":");
        format!("{}::{}", show(&groups[..start]), show(&groups[start + len..]))
    }

    /// A phone number in an international (any language) or national (the country's
    /// language) format, from ranges allocated for mobiles and fixed lines.
    pub(super) fn phone(rng: &mut Rng) -> Value {
        let national = rng.chance(55);
        let (text, lang) = if national {
            match rng.below(7) {
                0 => (phone_fr(rng, true), Lang::Fr),
                1 => (phone_de(rng, true), Lang::De),
                2 => (phone_es(rng, true), Lang::Es),
                3 => (phone_it(rng, true), Lang::It),
                4 => (phone_nl(rng, true), Lang::Nl),
                5 => (phone_be(rng, true), if rng.chance(50) { Lang::Fr } else { Lang::Nl }),
                _ => (phone_gb(rng, true), Lang::En),
            }
        } else {
            let text = match rng.below(14) {
                0 => phone_fr(rng, false),
                1 => phone_de(rng, false),
                2 => phone_es(rng, false),
                3 => phone_it(rng, false),
                4 => phone_nl(rng, false),
                5 => phone_be(rng, false),
                6 => phone_gb(rng, false),
                7 => other_country(rng, "41", &["75", "76", "77", "78", "79"], 7, &[2, 3, 2, 2]),
                8 => other_country(rng, "43", &["664", "660", "676", "699"], 7, &[3, 7]),
                9 => other_country(rng, "48", &["50", "51", "53", "57", "60", "66", "69", "72", "73", "78", "79", "88"], 7, &[3, 3, 3]),
                10 => other_country(rng, "351", &["91", "92", "93", "96"], 7, &[3, 3, 3]),
                11 => other_country(rng, "353", &["83", "85", "86", "87", "89"], 7, &[2, 3, 4]),
                12 => other_country(rng, "352", &["621", "661", "691"], 6, &[3, 3, 3]),
                _ => phone_us(rng),
            };
            (text, rng.pick(&Lang::ALL))
        };
        Value { text, self_evident: !national, context: lang.phone_context(), neutral: super::NEUTRAL, config_name: None }
    }

    /// A mobile number of a country written only internationally here: a prefix and digits.
    fn other_country(rng: &mut Rng, cc: &str, prefixes: &[&str], digits: usize, sizes: &[usize]) -> String {
        let nsn = format!("{}{}", rng.pick(prefixes), rng.digits(digits));
        intl(rng, cc, &nsn, sizes)
    }

    /// `+CC` and the national significant number, grouped or in E.164.
    fn intl(rng: &mut Rng, cc: &str, nsn: &str, sizes: &[usize]) -> String {
        if rng.chance(40) { format!("+{cc}{nsn}") } else { format!("+{cc} {}", grouped(nsn, sizes, " ")) }
    }

    fn phone_fr(rng: &mut Rng, national: bool) -> String {
        let nsn = if rng.chance(65) {
            if rng.chance(75) {
                format!("6{}{}", rng.pick_byte(b"01245678"), rng.digits(7))
            } else {
                format!("7{}{}", rng.pick_byte(b"3456789"), rng.digits(7))
            }
        } else {
            format!("{}{}{}", rng.pick_byte(b"12345"), rng.pick_byte(b"123456789"), rng.digits(7))
        };
        if !national {
            return intl(rng, "33", &nsn, &[1, 2, 2, 2, 2]);
        }
        let full = format!("0{nsn}");
        match rng.below(3) {
            0 => grouped(&full, &[2, 2, 2, 2, 2], " "),
            1 => grouped(&full, &[2, 2, 2, 2, 2], "."),
            _ => full,
        }
    }

    fn phone_de(rng: &mut Rng, national: bool) -> String {
        let (area, subscriber) = if rng.chance(60) {
            let prefix = rng.pick(&[
                "151", "152", "157", "159", "160", "162", "163", "170", "171", "172", "173", "174", "175", "176", "177", "178", "179",
            ]);
            let len = if prefix.starts_with("15") { 8 } else { 7 };
            (prefix, format!("{}{}", rng.between(1, 9), rng.digits(len - 1)))
        } else {
            let (area, len) = rng.pick(&[("30", 8), ("40", 8), ("89", 8), ("69", 8), ("221", 7), ("211", 7), ("711", 7)]);
            (area, format!("{}{}", rng.between(2, 9), rng.digits(len - 1)))
        };
        if !national {
            return intl(rng, "49", &format!("{area}{subscriber}"), &[area.len(), 8]);
        }
        let sep = rng.pick(&[" ", " ", "/"]);
        format!("0{area}{sep}{subscriber}")
    }

    fn phone_es(rng: &mut Rng, national: bool) -> String {
        let mobile = rng.chance(65);
        let nsn = if mobile {
            if rng.chance(80) { format!("6{}", rng.digits(8)) } else { format!("7{}{}", rng.pick_byte(b"1234"), rng.digits(7)) }
        } else {
            format!("9{}{}{}", rng.pick_byte(b"1356"), rng.between(2, 9), rng.digits(6))
        };
        if !national {
            return intl(rng, "34", &nsn, &[3, 3, 3]);
        }
        match rng.below(3) {
            0 => nsn,
            1 if !mobile => grouped(&nsn, &[2, 3, 2, 2], " "),
            _ => grouped(&nsn, &[3, 3, 3], " "),
        }
    }

    fn phone_it(rng: &mut Rng, national: bool) -> String {
        let mobile = rng.chance(65);
        let (nsn, sizes): (String, &[usize]) = if mobile {
            let prefix = rng.pick(&[
                "320", "324", "327", "328", "329", "330", "331", "333", "334", "335", "336", "337", "338", "339", "340", "342", "345",
                "346", "347", "348", "349", "351", "360", "366", "368", "371", "373", "377", "380", "388", "389", "391", "392", "393",
            ]);
            (format!("{prefix}{}", rng.digits(7)), &[3, 3, 4])
        } else {
            (format!("{}{}{}", rng.pick(&["06", "02"]), rng.between(2, 9), rng.digits(7)), &[2, 4, 4])
        };
        if !national {
            return intl(rng, "39", &nsn, sizes);
        }
        if rng.chance(30) { nsn } else { grouped(&nsn, sizes, " ") }
    }

    fn phone_nl(rng: &mut Rng, national: bool) -> String {
        let mobile = rng.chance(65);
        let nsn = if mobile {
            format!("6{}{}", rng.pick_byte(b"123458"), rng.digits(7))
        } else {
            format!("{}{}{}", rng.pick(&["20", "10", "70", "30"]), rng.between(2, 9), rng.digits(6))
        };
        if !national {
            return if mobile { intl(rng, "31", &nsn, &[1, 8]) } else { intl(rng, "31", &nsn, &[2, 3, 4]) };
        }
        let full = format!("0{nsn}");
        if mobile {
            match rng.below(3) {
                0 => format!("06-{}", &nsn[1..]),
                1 => format!("06 {}", &nsn[1..]),
                _ => grouped(&full, &[2, 4, 4], " "),
            }
        } else if rng.chance(50) {
            grouped(&full, &[3, 3, 4], " ")
        } else {
            format!("{}-{}", &full[..3], &full[3..])
        }
    }

    fn phone_be(rng: &mut Rng, national: bool) -> String {
        let mobile = rng.chance(65);
        let nsn = if mobile {
            format!(
                "4{}{}",
                rng.pick(&[
                    "70", "71", "72", "73", "75", "76", "77", "78", "79", "90", "91", "92", "93", "94", "95", "96", "97", "98", "99", "68"
                ]),
                rng.digits(6)
            )
        } else {
            format!("2{}{}", rng.between(2, 8), rng.digits(6))
        };
        if !national {
            return if mobile { intl(rng, "32", &nsn, &[3, 2, 2, 2]) } else { intl(rng, "32", &nsn, &[1, 3, 2, 2]) };
        }
        let full = format!("0{nsn}");
        if !mobile {
            grouped(&full, &[2, 3, 2, 2], " ")
        } else if rng.chance(70) {
            grouped(&full, &[4, 2, 2, 2], " ")
        } else {
            format!("{}/{}", &full[..4], grouped(&full[4..], &[2, 2, 2], "."))
        }
    }

    fn phone_gb(rng: &mut Rng, national: bool) -> String {
        let mobile = rng.chance(60);
        let nsn = if mobile {
            loop {
                let n = format!("7{}{}", rng.pick_byte(b"45789"), rng.digits(8));
                if !n.starts_with("7700900") {
                    break n;
                }
            }
        } else {
            format!("20{}{}", rng.pick_byte(b"378"), rng.digits(7))
        };
        let sizes: &[usize] = if mobile { &[4, 6] } else { &[2, 4, 4] };
        if !national {
            return intl(rng, "44", &nsn, sizes);
        }
        format!("0{}", grouped(&nsn, sizes, " "))
    }

    fn phone_us(rng: &mut Rng) -> String {
        let area = rng.pick(&["212", "415", "646", "617", "312", "202", "305", "206"]);
        let exchange = loop {
            let e = rng.between(200, 999);
            if e % 100 != 11 && e != 555 {
                break e;
            }
        };
        let line = rng.digits(4);
        match rng.below(3) {
            0 => format!("+1{area}{exchange}{line}"),
            1 => format!("+1 ({area}) {exchange}-{line}"),
            _ => format!("+1 {area} {exchange} {line}"),
        }
    }

    /// A secret: a provider key, a JWT, a PEM block, or a high-entropy token after a word
    /// like password.
    pub(super) fn api_key(rng: &mut Rng) -> Value {
        use super::{API_KEY_CONTEXT, MISTRAL_CONTEXT, PEM_CONTEXT, PEM_NEUTRAL, SECRET_CONTEXT};
        let keyed = |text: String, config_name: &'static str| Value {
            text,
            self_evident: true,
            context: API_KEY_CONTEXT,
            neutral: super::NEUTRAL,
            config_name: Some(config_name),
        };
        match rng.below(100) {
            0..=9 => keyed(format!("AKIA{}", rng.string_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)), "AWS_ACCESS_KEY_ID"),
            10..=17 => {
                keyed(format!("{}{}", rng.pick(&["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]), rng.string_from(ALNUM, 36)), "GITHUB_TOKEN")
            }
            18..=21 => keyed(format!("github_pat_{}_{}", rng.string_from(ALNUM, 22), rng.string_from(ALNUM, 59)), "GITHUB_TOKEN"),
            22..=27 => keyed(format!("glpat-{}", edged(rng, URL_SAFE, 20)), "GITLAB_TOKEN"),
            28..=34 => {
                let key = if rng.chance(50) {
                    format!("xoxb-{}-{}-{}", rng.digits(11), rng.digits(13), rng.string_from(ALNUM, 24))
                } else {
                    format!("xoxp-{}-{}-{}-{}", rng.digits(11), rng.digits(11), rng.digits(13), rng.string_from(HEX, 32))
                };
                keyed(key, "SLACK_TOKEN")
            }
            35..=44 => {
                let key = if rng.chance(50) {
                    format!("sk-{}T3BlbkFJ{}", rng.string_from(ALNUM, 20), rng.string_from(ALNUM, 20))
                } else {
                    format!("sk-proj-{}T3BlbkFJ{}", edged(rng, URL_SAFE, 48), edged(rng, URL_SAFE, 48))
                };
                keyed(key, "OPENAI_API_KEY")
            }
            45..=52 => keyed(format!("sk-ant-api03-{}AA", edged(rng, URL_SAFE, 93)), "ANTHROPIC_API_KEY"),
            53..=58 => Value {
                text: mixed_token(rng, 32),
                self_evident: false,
                context: MISTRAL_CONTEXT,
                neutral: super::NEUTRAL,
                config_name: Some("MISTRAL_API_KEY"),
            },
            59..=66 => {
                let prefix = rng.pick(&["sk_live_", "rk_live_", "sk_test_"]);
                let len = rng.pick(&[24, 24, 34, 99]);
                keyed(format!("{prefix}{}", rng.string_from(ALNUM, len)), "STRIPE_SECRET_KEY")
            }
            67..=74 => keyed(format!("AIzaSy{}", edged(rng, URL_SAFE, 33)), "GOOGLE_API_KEY"),
            75..=82 => keyed(jwt(rng), "AUTH_TOKEN"),
            83..=89 => Value { text: pem(rng), self_evident: true, context: PEM_CONTEXT, neutral: PEM_NEUTRAL, config_name: None },
            _ => {
                let len = rng.between(20, 40) as usize;
                Value {
                    text: mixed_token(rng, len),
                    self_evident: false,
                    context: SECRET_CONTEXT,
                    neutral: super::NEUTRAL,
                    config_name: Some(rng.pick(&["DB_PASSWORD", "SECRET_KEY", "API_TOKEN"])),
                }
            }
        }
    }

    /// `n` characters of `alphabet` that begin and end with a letter or digit.
    fn edged(rng: &mut Rng, alphabet: &[u8], n: usize) -> String {
        format!("{}{}{}", rng.pick_byte(ALNUM), rng.string_from(alphabet, n - 2), rng.pick_byte(ALNUM))
    }

    /// Letters of both cases and digits, all three present, no four digits in a row.
    pub(super) fn mixed_token(rng: &mut Rng, n: usize) -> String {
        loop {
            let t = rng.string_from(ALNUM, n);
            let b = t.as_bytes();
            let mixed = b.iter().any(u8::is_ascii_uppercase) && b.iter().any(u8::is_ascii_lowercase) && b.iter().any(u8::is_ascii_digit);
            if mixed && !b.windows(4).any(|w| w.iter().all(u8::is_ascii_digit)) {
                return t;
            }
        }
    }

    fn jwt(rng: &mut Rng) -> String {
        let header = base64(br#"{"alg":"HS256","typ":"JWT"}"#, true);
        let iat = rng.between(1_600_000_000, 1_800_000_000);
        let payload = format!(
            r#"{{"sub":"usr_{}","name":"{}","role":"{}","iat":{iat},"exp":{}}}"#,
            rng.string_from(HEX, 8),
            rng.pick(&["Jane Doe", "Jean Martin", "Lukas Weber", "Ana López"]),
            rng.pick(&["admin", "user", "billing"]),
            iat + 3600
        );
        let signature = rng.bytes(32);
        format!("{header}.{}.{}", base64(payload.as_bytes(), true), base64(&signature, true))
    }

    fn pem(rng: &mut Rng) -> String {
        let (label, prefix, len, width): (&str, &[u8], usize, usize) = match rng.below(3) {
            0 => ("RSA PRIVATE KEY", &[0x30, 0x82, 0x04, 0xa4, 0x02, 0x01, 0x00, 0x02, 0x82, 0x01, 0x01, 0x00], 600, 64),
            1 => ("OPENSSH PRIVATE KEY", b"openssh-key-v1\0\0\0\0\x04none", 400, 70),
            _ => ("EC PRIVATE KEY", &[0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20], 121, 64),
        };
        let mut bytes = prefix.to_vec();
        bytes.extend(rng.bytes(len - prefix.len()));
        let body = base64(&bytes, false);
        let lines: Vec<&str> = body.as_bytes().chunks(width).map(|c| std::str::from_utf8(c).expect("base64 is ASCII")).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----", lines.join("\n"))
    }

    /// Base64 (RFC 4648): padded standard alphabet, or unpadded URL-safe alphabet.
    pub(super) fn base64(bytes: &[u8], url: bool) -> String {
        let alphabet: &[u8] = if url { URL_SAFE } else { b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" };
        let mut out = String::with_capacity(bytes.len() * 4 / 3 + 4);
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            }
            if !url {
                out.push_str(&"=="[..3 - chunk.len()]);
            }
        }
        out
    }

    pub(super) fn hex(rng: &mut Rng, n: usize) -> String {
        rng.string_from(HEX, n)
    }

    pub(super) fn upper(rng: &mut Rng, n: usize) -> String {
        rng.string_from(UPPER, n)
    }

    pub(super) fn uuid(rng: &mut Rng) -> String {
        format!("{}-{}-4{}-{}{}-{}", hex(rng, 8), hex(rng, 4), hex(rng, 3), rng.pick_byte(b"89ab"), hex(rng, 3), hex(rng, 12))
    }
}

// ---------------------------------------------------------------------------------------------
// Negatives, code and logs

const NEGATIVE_MAKERS: &[fn(&mut Rng) -> String] = &[
    order,
    invoice,
    tracking,
    uuid_line,
    timestamp,
    unix_time,
    version,
    hash,
    amount,
    percentage,
    coordinates,
    sku,
    isbn,
    code,
    log_line_clean,
    math,
    package_json,
];

fn year(rng: &mut Rng) -> u64 {
    rng.between(2019, 2026)
}

fn order(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => format!("Your Order #{}{} has shipped and should arrive on Tuesday.", rng.between(1, 5), rng.digits(8)),
        1 => format!("Suivi de la commande n° {}-{} : colis préparé, livraison prévue jeudi.", year(rng), rng.digits(6)),
        2 => format!("Bestellnummer 45{}: die Lieferung verzögert sich um zwei Tage.", rng.digits(8)),
        3 => format!("Tu pedido {} está en camino, llegará mañana.", rng.digits(7)),
        4 => format!("L'ordine n. {}/{} è stato spedito oggi.", rng.between(100, 99_999), year(rng)),
        _ => format!("Bestelling {}-{} is onderweg naar het afhaalpunt.", year(rng), rng.digits(5)),
    }
}

fn invoice(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => format!("Invoice INV-{}-{} is due in thirty days.", year(rng), rng.digits(5)),
        1 => format!(
            "Facture FA{}-{} réglée le {:02}/{:02}/{}.",
            year(rng),
            rng.digits(4),
            rng.between(1, 28),
            rng.between(1, 12),
            year(rng)
        ),
        2 => {
            format!("Rechnung Nr. RE-{} vom {:02}.{:02}.{} ist bezahlt.", rng.digits(6), rng.between(1, 28), rng.between(1, 12), year(rng))
        }
        3 => format!("Factura F{}/{} pendiente de pago.", year(rng), rng.digits(4)),
        4 => format!("Fattura n. {}/{} emessa il {:02}/{:02}.", rng.between(1, 999), year(rng), rng.between(1, 28), rng.between(1, 12)),
        _ => format!("Factuur {}{} staat nog open.", year(rng), rng.digits(4)),
    }
}

fn tracking(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!("UPS tracking number: 1Z{}{}{}.", make::upper(rng, 3), rng.digits(3), rng.digits(10)),
        1 => format!("FedEx tracking 7{} — delivered to the front desk.", rng.digits(11)),
        _ => {
            let first = rng.pick(&["1", "2", "4", "5", "6", "8", "9"]);
            format!("DHL Sendungsnummer {first}{} — Zustellung heute zwischen neun und zwölf Uhr.", rng.digits(9))
        }
    }
}

fn uuid_line(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!("request_id={} completed", make::uuid(rng)),
        1 => format!("Correlation-ID: {}", make::uuid(rng)),
        _ => format!("L'identifiant de la session est {}.", make::uuid(rng)),
    }
}

fn timestamp(rng: &mut Rng) -> String {
    let (y, mo, d, h, mi, s) =
        (year(rng), rng.between(1, 12), rng.between(1, 28), rng.between(0, 23), rng.between(0, 59), rng.between(0, 59));
    match rng.below(6) {
        0 => format!("Last login: {y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        1 => format!("Créé le {y}-{mo:02}-{d:02} à {h:02}:{mi:02}:{s:02}."),
        2 => format!("Stand: {d:02}.{mo:02}.{y}, {h:02}:{mi:02} Uhr"),
        3 => format!("Fecha de emisión: {d:02}/{mo:02}/{y}"),
        4 => format!("Aggiornato il {d:02}/{mo:02}/{y} alle {h:02}:{mi:02}."),
        _ => format!("Bijgewerkt op {d:02}-{mo:02}-{y} om {h:02}:{mi:02}."),
    }
}

fn unix_time(rng: &mut Rng) -> String {
    let t = rng.between(1_500_000_000, 1_799_999_999);
    if rng.chance(50) { format!("created_at: {t}") } else { format!("{{\"ts\": {t}{}, \"level\": \"info\"}}", rng.digits(3)) }
}

fn version(rng: &mut Rng) -> String {
    match rng.below(7) {
        0 => format!(
            "Please update to version {}.{}.{}.{} before Monday.",
            rng.between(1, 9),
            rng.between(0, 20),
            rng.between(0, 20),
            rng.between(0, 99)
        ),
        1 => format!("Windows build v10.0.{}.{}", rng.between(17_000, 26_000), rng.between(1, 4000)),
        2 => format!("Chrome {}.0.{}.{}", rng.between(100, 130), rng.between(5000, 6999), rng.between(1, 200)),
        3 => format!("Firefox {}.0.{} est disponible.", rng.between(100, 130), rng.between(1, 3)),
        4 => format!("Kernel {}.{}.0-{}-generic", rng.between(5, 6), rng.between(0, 15), rng.between(10, 120)),
        5 => format!("Python {}.{}.{} wird empfohlen.", 3, rng.between(8, 13), rng.between(0, 12)),
        _ => format!("Versión {}.{}.{} publicada.", rng.between(0, 9), rng.between(0, 30), rng.between(0, 30)),
    }
}

fn hash(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!("commit {} fixes the build", make::hex(rng, 7)),
        1 => format!("git checkout {}", make::hex(rng, 40)),
        2 => format!("sha256: {}", make::hex(rng, 64)),
        _ => format!("Merge pull request from feature/cache ({})", make::hex(rng, 12)),
    }
}

fn amount(rng: &mut Rng) -> String {
    let (a, b, cents) = (rng.between(1, 999), rng.between(0, 999), rng.between(0, 99));
    match rng.below(6) {
        0 => format!("Total : {a} {b:03} {:03},{cents:02} €", rng.between(0, 999)),
        1 => format!("Betrag: {a}.{b:03},{cents:02} EUR"),
        2 => format!("Importe total: {a}.{b:03},{cents:02} €"),
        3 => format!("Price: ${a},{b:03}.{cents:02}"),
        4 => format!("Totale: € {a}.{b:03},{cents:02}"),
        _ => format!("Totaal te betalen: € {a},{cents:02}"),
    }
}

fn percentage(rng: &mut Rng) -> String {
    let (a, b) = (rng.between(0, 99), rng.between(0, 9));
    match rng.below(4) {
        0 => format!("Die Inflation lag im März bei {a},{b} %."),
        1 => format!("Growth was {a}.{b}% year over year."),
        2 => format!("Taux de réussite : {a},{b} %"),
        _ => format!("La disoccupazione è scesa al {a},{b}%."),
    }
}

fn coordinates(rng: &mut Rng) -> String {
    let lat = format!("{}.{}", rng.between(35, 60), rng.digits(4));
    let lon = format!("{}.{}", rng.between(0, 25), rng.digits(4));
    match rng.below(3) {
        0 => format!("GPS: {lat}, {lon}"),
        1 => format!("Koordinaten {lat}° N, {lon}° E"),
        _ => format!("Le point de rendez-vous est à {lat} / {lon}."),
    }
}

fn sku(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!("SKU {}-{}-XL-{}", make::upper(rng, 3), make::upper(rng, 3), rng.digits(4)),
        1 => format!("Art.-Nr. {} (Farbe: blau)", rng.digits(7)),
        _ => format!("Réf. produit : {}-{}", make::upper(rng, 2), rng.digits(5)),
    }
}

fn isbn(rng: &mut Rng) -> String {
    let body = format!("978{}{}{}", rng.between(0, 3), rng.digits(2), rng.digits(6));
    let sum: u32 = body.bytes().enumerate().map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 }).sum();
    let check = (10 - sum % 10) % 10;
    format!("ISBN {}-{}-{}-{}-{check}", &body[..3], &body[3..4], &body[4..6], &body[6..])
}

fn code(rng: &mut Rng) -> String {
    rng.pick(CODE_MAKERS)(rng)
}

const CODE_MAKERS: &[fn(&mut Rng) -> String] = &[
    |rng| format!("let timeout = Duration::from_millis({});\nlet retries: u32 = {};", rng.between(10, 60_000), rng.between(1, 9)),
    |rng| format!("for i in range(0, {}, 16):\n    buf[i] = 0x{}", rng.between(64, 65_536), make::hex(rng, 2)),
    |rng| format!("const MAX_RETRIES = {};\nsetTimeout(retry, {});", rng.between(1, 9), rng.between(100, 30_000)),
    |rng| format!("if (res.status === {}) {{ return res.json({{ error: \"not found\" }}); }}", rng.pick(&[400, 404, 409, 500])),
    |_| "<img src=\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9hAAAA\" alt=\"logo\">".to_string(),
    |_| "fn area(r: f64) -> f64 {\n    std::f64::consts::PI * r * r\n}".to_string(),
    |rng| format!("x = np.linspace(0, 1, {})\ny = np.sin(2 * np.pi * x)", rng.between(10, 10_000)),
    |rng| {
        format!(
            "SELECT id, total FROM orders WHERE created_at > now() - interval '{} days' LIMIT {};",
            rng.between(1, 90),
            rng.between(10, 500)
        )
    },
    |rng| format!("let mask: u64 = 0x{};\nassert_eq!(mask.count_ones(), {});", make::hex(rng, 16), rng.between(1, 64)),
    |rng| format!("export const theme = {{ primary: \"#{}\", spacing: {} }};", make::hex(rng, 6), rng.between(2, 32)),
];

/// A log line with no IP address (for negatives).
fn log_line_clean(rng: &mut Rng) -> String {
    let ts = format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{}Z",
        year(rng),
        rng.between(1, 12),
        rng.between(1, 28),
        rng.between(0, 23),
        rng.between(0, 59),
        rng.between(0, 59),
        rng.digits(3)
    );
    match rng.below(4) {
        0 => format!("{ts} INFO worker[{}]: job {} finished in {}ms", rng.between(100, 65_000), make::uuid(rng), rng.between(1, 9999)),
        1 => format!("{ts} INFO listening on port {} (pid {})", rng.pick(&[80, 443, 3000, 8080, 8443, 9090]), rng.between(100, 65_000)),
        2 => format!(
            "{ts} GET /api/v1/orders/{} {} {}.{}ms",
            rng.between(1, 999_999),
            rng.pick(&[200, 201, 304, 404]),
            rng.between(0, 999),
            rng.between(0, 9)
        ),
        _ => format!("{ts} WARN retry {}/5 after {} ms (attempt {})", rng.between(1, 5), rng.between(50, 5000), rng.between(1, 5)),
    }
}

/// A log line, some with client IP addresses (for the benchmark corpus).
fn log_line(rng: &mut Rng) -> String {
    let line = log_line_clean(rng);
    if rng.chance(50) {
        let client = if rng.chance(50) {
            format!("10.{}.{}.{}", rng.between(0, 255), rng.between(0, 255), rng.between(1, 254))
        } else {
            make::ip(rng)
        };
        format!("{line} client={client} request_id={} bytes={}", make::hex(rng, 16), rng.between(0, 1_000_000))
    } else {
        line
    }
}

fn math(rng: &mut Rng) -> String {
    rng.pick(&[
        "π ≈ 3.14159265358979, assez pour la plupart des calculs.",
        "e = 2.718281828459045",
        "√2 ≈ 1.4142135623730951",
        "The golden ratio is about 1.618033988749895.",
        "Die Lichtgeschwindigkeit beträgt 299 792 458 m/s.",
        "ln(2) = 0.6931471805599453",
    ])
    .to_string()
}

fn package_json(rng: &mut Rng) -> String {
    format!(
        "\"dependencies\": {{ \"react\": \"^{}.{}.0\", \"lodash\": \"4.17.{}\", \"typescript\": \"~5.{}.{}\" }}",
        rng.between(16, 19),
        rng.between(0, 3),
        rng.between(10, 21),
        rng.between(0, 6),
        rng.between(0, 9)
    )
}

// ---------------------------------------------------------------------------------------------
// Languages and sentences. `{}` is the value; no template holds a digit.

#[derive(Clone, Copy)]
enum Lang {
    En,
    Fr,
    De,
    Es,
    It,
    Nl,
}

impl Lang {
    const ALL: [Lang; 6] = [Lang::En, Lang::Fr, Lang::De, Lang::Es, Lang::It, Lang::Nl];

    fn phone_context(self) -> &'static [&'static str] {
        match self {
            Lang::En => &[
                "Call me at {}.",
                "My phone number is {}.",
                "{} is my mobile, text me anytime.",
                "Phone: {}",
                "(mobile {})",
                "You can reach me on {}, thanks.",
            ],
            Lang::Fr => &[
                "Appelez-moi au {}.",
                "Mon numéro de portable : {}",
                "{} — c'est mon numéro de téléphone.",
                "Vous pouvez me joindre au {}, merci.",
                "Tél. : {}",
            ],
            Lang::De => &[
                "Ruf mich unter {} an.",
                "Meine Handynummer ist {}.",
                "Telefon: {}",
                "{} ist meine Telefonnummer, erreichbar ab Mittag.",
                "(Tel. {})",
            ],
            Lang::Es => &[
                "Llámame al {}.",
                "Mi teléfono es {}.",
                "Móvil: {}",
                "{} es mi número de teléfono.",
                "Mi número de móvil es el {}, gracias.",
            ],
            Lang::It => &[
                "Chiamami al {}.",
                "Il mio cellulare è {}.",
                "Telefono: {}",
                "{} è il mio numero di telefono.",
                "Il mio numero è {}, grazie.",
            ],
            Lang::Nl => &[
                "Bel me op {}.",
                "Mijn telefoonnummer is {}.",
                "Mobiel: {}",
                "{} is mijn mobiele nummer.",
                "Je kunt me bereiken op {}, bedankt.",
            ],
        }
    }
}

/// Sentences that name nothing: a self-evident value is recognisable in them on its own.
const NEUTRAL: &[&str] = &[
    "{}",
    "See {} above.",
    "Here it is: {}",
    "{} — can you check?",
    "I copied this from the old ticket: {}.",
    "Could you double-check {} before Friday?",
    "Voilà : {}",
    "Tu peux vérifier {} avant vendredi ?",
    "C'est {}, merci de confirmer.",
    "Je l'ai noté ici ({}) hier soir.",
    "« {} », comme prévu.",
    "Hier ist es: {}",
    "Kannst du {} bis Freitag prüfen?",
    "Das war {}, glaube ich.",
    "Bitte an Jürgen weiterleiten: {}",
    "Aquí está: {}",
    "¿Puedes revisar {} antes del viernes?",
    "Es {}, gracias.",
    "Te lo mandé ayer ({}).",
    "Eccolo: {}",
    "Puoi controllare {} entro venerdì?",
    "È \"{}\", grazie.",
    "Te l'ho mandato ieri ({}).",
    "Hier is het: {}",
    "Kun je {} vóór vrijdag nakijken?",
    "Het is {}, bedankt.",
    "Ik heb het gisteren gestuurd ({}).",
];

const CONFIG_LINES: &[&str] = &["NAME={}", "export NAME=\"{}\"", "NAME: '{}'", "os.environ[\"NAME\"] = \"{}\""];

const CARD_CONTEXT: &[&str] = &[
    "My card number is {}.",
    "Card: {}, expires next year.",
    "{} is the Visa I used for the booking.",
    "Please charge the credit card {} for the invoice.",
    "(credit card {})",
    "Can you refund the card \"{}\"?",
    "Mon numéro de carte bancaire est {}.",
    "Carte bleue : {}, date d'expiration à la fin de l'année.",
    "{} — c'est la carte de crédit de l'entreprise.",
    "Le paiement a échoué avec la carte {} hier soir.",
    "Meine Kreditkartennummer lautet {}.",
    "Bitte belasten Sie die Karte {} für die Bestellung.",
    "{} ist die Kreditkarte für Geschäftsreisen.",
    "Kartennummer: {} (gültig bis Ende des Jahres)",
    "Mi número de tarjeta es {}.",
    "Tarjeta de crédito: {}, caduca pronto.",
    "{} es la tarjeta que usé para la reserva.",
    "¿Puedes cobrar en la tarjeta {} mañana?",
    "Il numero della mia carta di credito è {}.",
    "Carta: {}, scade il mese prossimo.",
    "{} è la carta aziendale, usala per il viaggio.",
    "Ho pagato con la carta ({}) ieri.",
    "Mijn creditcardnummer is {}.",
    "Kaartnummer: {}, verloopt binnenkort.",
    "{} is de creditcard van de zaak.",
    "Betaald met de kaart {} gisteren.",
];

const IBAN_CONTEXT: &[&str] = &[
    "My IBAN is {}.",
    "Please wire the money to IBAN {} by Friday.",
    "{} is the IBAN for the refund.",
    "Bank details (IBAN): {}",
    "IBAN: \"{}\"",
    "Mon IBAN : {}",
    "Voici mon RIB, IBAN {}, pour le virement.",
    "{} est l'IBAN du compte joint.",
    "Merci de faire le virement sur l'IBAN « {} ».",
    "Meine IBAN lautet {}.",
    "Bankverbindung: IBAN {}, Kontoinhaber Jürgen Müller.",
    "{} ist die IBAN für die Überweisung.",
    "Bitte überweisen Sie den Betrag auf das Konto ({}).",
    "Mi IBAN es {}.",
    "Haz la transferencia a la cuenta {}, por favor.",
    "{} es el IBAN de la cuenta de nómina.",
    "Número de cuenta (IBAN): {}",
    "Il mio IBAN è {}.",
    "Fai il bonifico sull'IBAN {} entro venerdì.",
    "{} è l'IBAN del conto corrente.",
    "Coordinate bancarie: IBAN {}",
    "Mijn IBAN is {}.",
    "Maak het bedrag over naar rekeningnummer {}, graag.",
    "{} is het IBAN van de vereniging.",
    "Rekening (IBAN): {}",
];

const SSN_CONTEXT: &[&str] = &[
    "My SSN is {}.",
    "SSN: {}",
    "Social Security number {} (on file).",
    "{} is my social security number.",
    "Please verify the SSN \"{}\" on the tax form.",
    "Son numéro SSN américain est {}.",
    "SSN (Social Security, États-Unis) : {}",
    "Die US-Sozialversicherungsnummer (SSN) lautet {}.",
    "SSN: {}, bitte prüfen.",
    "Mi SSN de Estados Unidos es {}.",
    "Número de Social Security (SSN): {}",
    "Il suo SSN americano è {}.",
    "SSN: {} (previdenza sociale USA).",
    "Zijn Amerikaanse SSN is {}.",
    "SSN: {}, graag controleren.",
];

const NIR_CONTEXT: &[&str] = &[
    "Mon numéro de sécurité sociale est {}.",
    "N° de sécu : {}",
    "{} est le NIR indiqué sur la carte Vitale.",
    "Numéro INSEE (NIR) : « {} »",
    "Pour le remboursement, mon numéro de Sécurité sociale : {}, merci.",
    "My French social security number (NIR) is {}.",
    "NIR: {}",
    "Meine französische Sozialversicherungsnummer (NIR) lautet {}.",
    "Mi número de la seguridad social francesa (NIR) es {}.",
    "Il mio numero di previdenza sociale francese (NIR) è {}.",
    "Mijn Franse sofinummer (NIR) is {}.",
];

const SIREN_CONTEXT: &[&str] = &[
    "Le SIREN de la société est {}.",
    "SIREN : {}",
    "{} (numéro SIREN) figure sur le Kbis.",
    "Notre numéro SIREN est le {}, merci de l'indiquer sur la facture.",
    "Entreprise immatriculée sous le n° SIREN {}.",
    "Company SIREN number: {}.",
    "The French SIREN {} belongs to the supplier.",
    "Die SIREN-Nummer der Firma ist {}.",
    "El número SIREN de la empresa es {}.",
    "Il numero SIREN della società è {}.",
    "Het SIREN-nummer van het bedrijf is {}.",
];

const SIRET_CONTEXT: &[&str] = &[
    "Le SIRET de l'établissement est {}.",
    "SIRET : {}",
    "{} (numéro SIRET) figure sur la facture.",
    "Notre numéro SIRET est le {}, merci.",
    "Établissement enregistré sous le n° SIRET {}.",
    "Company SIRET number: {}.",
    "The supplier's SIRET is {}.",
    "Die SIRET-Nummer des Standorts lautet {}.",
    "El número SIRET del establecimiento es {}.",
    "Il numero SIRET della sede è {}.",
    "Het SIRET-nummer van de vestiging is {}.",
];

const DNI_CONTEXT: &[&str] = &[
    "Mi DNI es {}.",
    "DNI: {}",
    "{} es el número de mi DNI.",
    "Necesito el NIF del titular ({}) para la factura.",
    "Con DNI «{}», nacido en Sevilla.",
    "My Spanish ID (DNI) is {}.",
    "DNI number {}, please check.",
    "Son DNI espagnol : {}.",
    "Die spanische Ausweisnummer (DNI) lautet {}.",
    "Il DNI spagnolo del cliente è {}.",
    "Het Spaanse DNI-nummer is {}.",
];

const NIE_CONTEXT: &[&str] = &[
    "Mi NIE es {}.",
    "NIE: {}",
    "{} es mi número de identidad de extranjero (NIE).",
    "Tarjeta de residencia con NIE «{}».",
    "My NIE (Spanish foreigner number) is {}.",
    "Mon NIE espagnol est le {}.",
    "Meine NIE-Nummer in Spanien: {}.",
    "Il mio NIE spagnolo è {}.",
    "Mijn NIE-nummer is {}.",
];

const FISCAL_CODE_CONTEXT: &[&str] = &[
    "Il mio codice fiscale è {}.",
    "Codice fiscale: {}",
    "{} è il codice fiscale del titolare.",
    "C.F. {} (per la fattura)",
    "Inserisci il CF «{}» nel modulo.",
    "My Italian tax code (codice fiscale) is {}.",
    "Son code fiscal italien : {}.",
    "Die italienische Steuernummer (Codice Fiscale) lautet {}.",
    "Su código fiscal italiano es {}.",
    "Mijn Italiaanse fiscale code is {}.",
];

const BSN_CONTEXT: &[&str] = &[
    "Mijn BSN is {}.",
    "BSN: {}",
    "{} is het burgerservicenummer van de aanvrager.",
    "Vul je burgerservicenummer ({}) in op het formulier.",
    "Sofinummer/BSN «{}»",
    "My Dutch BSN is {}.",
    "Son BSN néerlandais est {}.",
    "Die niederländische BSN lautet {}.",
    "Mi BSN holandés es {}.",
    "Il mio BSN olandese è {}.",
];

const BE_NATIONAL_CONTEXT: &[&str] = &[
    "Mon numéro de registre national est {}.",
    "Numéro national : {}",
    "{} est le numéro national inscrit sur ma carte d'identité belge.",
    "Mijn rijksregisternummer is {}.",
    "Rijksregisternummer: {}",
    "{} is het rijksregisternummer van de patiënt.",
    "My Belgian national register number is {}.",
    "Meine belgische Nationalregisternummer lautet {}.",
    "Mi número nacional belga es {}.",
    "Il mio numero di registro nazionale belga è {}.",
];

const PESEL_CONTEXT: &[&str] = &[
    "PESEL: {}",
    "My PESEL number is {}.",
    "{} (PESEL)",
    "Numer PESEL: {}",
    "Son numéro PESEL est {}.",
    "Die PESEL-Nummer lautet {}.",
    "Mi PESEL es {}.",
    "Il codice PESEL del paziente è {}.",
    "Zijn PESEL-nummer is {}.",
];

const DE_TAX_CONTEXT: &[&str] = &[
    "Meine Steuer-ID lautet {}.",
    "Steuerliche Identifikationsnummer: {}",
    "{} ist die Steueridentifikationsnummer für die Lohnabrechnung.",
    "Bitte tragen Sie die IdNr. ({}) im Formular ein.",
    "Steuer-ID «{}», bitte prüfen.",
    "My German tax ID (Steuer-ID) is {}.",
    "Mon identifiant fiscal allemand (Steuer-ID) est {}.",
    "Mi número de identificación fiscal alemán (Steuer-ID) es {}.",
    "Il mio numero fiscale tedesco (Steuer-ID) è {}.",
    "Mijn Duitse fiscale nummer (Steuer-ID) is {}.",
];

const NINO_CONTEXT: &[&str] = &[
    "My National Insurance number is {}.",
    "NI number: {}",
    "{} is the NINO on the payslip.",
    "National Insurance No. ({})",
    "Please quote your NI number \"{}\" on the form.",
    "Son numéro National Insurance britannique est {}.",
    "Die britische National-Insurance-Nummer lautet {}.",
    "Mi número de National Insurance del Reino Unido es {}.",
    "Il mio National Insurance number britannico è {}.",
    "Mijn Britse National Insurance-nummer is {}.",
];

const EMAIL_CONTEXT: &[&str] = &[
    "Email me at {}.",
    "My email address is {}, thanks.",
    "{} is the best address to reach me.",
    "Contact: {}",
    "(reply to {})",
    "Mon adresse mail : {}",
    "Écrivez-moi à {}, s'il vous plaît.",
    "{} est mon adresse électronique pro.",
    "Meine E-Mail-Adresse lautet {}.",
    "Schreib mir an {}, danke!",
    "{} ist meine private E-Mail.",
    "Mi correo es {}.",
    "Escríbeme a {}, por favor.",
    "{} es mi correo electrónico del trabajo.",
    "Il mio indirizzo email è {}.",
    "Scrivimi a {}, grazie.",
    "{} è la mia email personale.",
    "Mijn e-mailadres is {}.",
    "Mail me op {}, bedankt.",
    "{} is mijn werkmail.",
];

const IP_CONTEXT: &[&str] = &[
    "The server at {} is down.",
    "Connect to {} over SSH.",
    "IP address: {}",
    "{} keeps timing out since this morning.",
    "Whitelist the address ({}) in the firewall.",
    "Le serveur {} ne répond plus.",
    "Connecte-toi à {} en SSH.",
    "Adresse IP : {}",
    "Der Server unter {} antwortet nicht.",
    "Verbinde dich mit {} per SSH.",
    "IP-Adresse: {}",
    "El servidor en {} no responde.",
    "Conéctate a {} por SSH.",
    "Dirección IP: {}",
    "Il server su {} non risponde.",
    "Connettiti a {} via SSH.",
    "Indirizzo IP: {}",
    "De server op {} reageert niet.",
    "Maak verbinding met {} via SSH.",
    "IP-adres: {}",
];

const API_KEY_CONTEXT: &[&str] = &[
    "Here is my API key: {}",
    "The token is {}, don't share it.",
    "api key {}",
    "Use this access token ({}) for the deploy.",
    "{} is the key for the staging account.",
    "Authorization: Bearer {}",
    "Voici ma clé API : {}",
    "Le jeton d'accès est {}, ne le partage pas.",
    "Hier ist mein API-Schlüssel: {}",
    "Das Zugriffstoken lautet {}.",
    "Esta es mi clave API: {}",
    "El token de acceso es {}.",
    "Ecco la mia chiave API: {}",
    "Il token di accesso è {}.",
    "Hier is mijn API-sleutel: {}",
    "Het toegangstoken is {}.",
];

const MISTRAL_CONTEXT: &[&str] = &[
    "My Mistral API key is {}.",
    "mistral key: {}",
    "Clé API Mistral : {}",
    "Mistral-API-Schlüssel: {}",
    "Mi clave de Mistral: {}",
    "La chiave di Mistral è {}.",
    "Mijn Mistral-sleutel: {}",
];

const SECRET_CONTEXT: &[&str] = &[
    "password: {}",
    "My password is {}",
    "secret={}",
    "The token is {}.",
    "api key {}",
    "Mot de passe : {}",
    "mon mot de passe est {}",
    "Passwort: {}",
    "Mein Passwort lautet {}.",
    "contraseña: {}",
    "Mi contraseña es {}.",
    "chiave: {}",
    "La password è {}.",
    "wachtwoord: {}",
    "Mijn wachtwoord is {}.",
];

const PEM_CONTEXT: &[&str] = &[
    "Here is the private key:\n{}\nPlease rotate it.",
    "Voici la clé privée du serveur :\n{}",
    "Der private Schlüssel:\n{}\nBitte nicht weitergeben.",
    "Mi clave privada:\n{}",
    "La chiave privata è questa:\n{}\nGrazie.",
    "De private key staat hieronder:\n{}",
];

const PEM_NEUTRAL: &[&str] = &["{}", "Can you check this?\n{}", "Voilà :\n{}\nMerci.", "{}\nDanke!"];

/// Prose without sensitive data or digits.
const PROSE: &[&str] = &[
    "The meeting was moved to the afternoon because half of the team was travelling.",
    "We reviewed the onboarding guide and rewrote the section about permissions.",
    "Could you summarise the main risks of the migration in a short paragraph?",
    "The customer asked whether the report could be exported as a spreadsheet.",
    "Our new office is close to the station, which makes commuting much easier.",
    "Please draft a polite answer explaining that the feature is planned for next quarter.",
    "La réunion a été déplacée à jeudi, car plusieurs collègues sont en congé.",
    "Pouvez-vous résumer ce document en trois points clés pour la direction ?",
    "Le rapport annuel présente une hausse sensible de la fréquentation des musées.",
    "Nous avons décidé de réécrire le module de facturation l'été prochain.",
    "Merci de relire la proposition commerciale avant l'envoi au client.",
    "Die Präsentation für den Vorstand muss bis Freitag überarbeitet werden.",
    "Könnten Sie bitte eine kurze Zusammenfassung des Vertrags schreiben?",
    "Über die Feiertage bleibt der Kundendienst nur vormittags erreichbar.",
    "Wir müssen die Schulungsunterlagen für die neuen Mitarbeiter aktualisieren.",
    "El equipo de diseño presentará las nuevas maquetas la próxima semana.",
    "¿Podrías traducir este correo al inglés manteniendo un tono formal?",
    "La reunión con el proveedor se aplazó hasta que tengamos el presupuesto.",
    "Necesitamos mejorar la documentación antes de lanzar la versión pública.",
    "Il cliente ha chiesto una proposta più dettagliata per il progetto.",
    "Puoi scrivere una breve introduzione per la newsletter di questo mese?",
    "La conferenza si terrà a Bologna e durerà tutta la settimana.",
    "Abbiamo deciso di rinviare il lancio per migliorare la qualità.",
    "De vergadering is verplaatst naar volgende week vanwege de vakantie.",
    "Kun je deze tekst samenvatten in een paar duidelijke zinnen?",
    "Het nieuwe beleid over thuiswerken gaat na de zomer in.",
    "We hebben de klantenservice gevraagd om de klacht opnieuw te bekijken.",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(text: &str, label: &Label) -> String {
        text.chars().skip(label.start).take(label.end - label.start).collect()
    }

    /// Checks the types without a checksum here by shape; phones with libphonenumber's data.
    fn valid(kind: PiiType, value: &str) -> bool {
        match kind {
            PiiType::Email => {
                let Some((local, domain)) = value.split_once('@') else { return false };
                let tld = domain.rsplit('.').next().unwrap_or("");
                !local.is_empty() && domain.contains('.') && tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_lowercase())
            }
            PiiType::IpAddress => value.parse::<std::net::IpAddr>().is_ok(),
            PiiType::Phone => phone_valid(value),
            PiiType::ApiKey => api_key_shaped(value),
            _ => check::valid(kind, value),
        }
    }

    fn phone_valid(value: &str) -> bool {
        use phonenumber::country::Id;
        if value.starts_with('+') {
            return phonenumber::parse(None, value).is_ok_and(|n| phonenumber::is_valid(&n));
        }
        [Id::FR, Id::DE, Id::ES, Id::IT, Id::NL, Id::BE, Id::GB]
            .into_iter()
            .any(|id| phonenumber::parse(Some(id), value).is_ok_and(|n| phonenumber::is_valid(&n)))
    }

    fn api_key_shaped(value: &str) -> bool {
        let alnum = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
        let url_safe = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if value.starts_with("-----BEGIN ") {
            return value.ends_with(" PRIVATE KEY-----") && value.contains("\n-----END ");
        }
        let parts: Vec<&str> = value.split('.').collect();
        if let [header, _, _] = parts[..] {
            return header == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" && parts.iter().all(|p| url_safe(p));
        }
        let prefixed = [
            "AKIA",
            "ghp_",
            "gho_",
            "ghu_",
            "ghs_",
            "ghr_",
            "github_pat_",
            "glpat-",
            "xoxb-",
            "xoxp-",
            "sk-",
            "sk_live_",
            "rk_live_",
            "sk_test_",
            "AIza",
        ];
        if let Some(p) = prefixed.iter().find(|p| value.starts_with(**p)) {
            return value.len() >= p.len() + 16 && url_safe(value);
        }
        (20..=40).contains(&value.len()) && alnum(value)
    }

    #[test]
    fn every_labelled_value_passes_its_validator() {
        // The seeds and sizes of tests/accuracy, and one more.
        let samples: Vec<Sample> = labelled(1, 300).into_iter().chain(labelled(11, 60)).collect();
        for sample in &samples {
            assert!(!sample.labels.is_empty());
            for label in &sample.labels {
                let v = slice(&sample.text, label);
                assert_eq!(v.trim(), v, "{}: span has spaces around it in {:?}", label.kind, sample.text);
                assert!(valid(label.kind, &v), "{}: {v:?} fails its validator in {:?}", label.kind, sample.text);
            }
        }
    }

    #[test]
    fn every_type_has_its_samples_and_some_offsets_differ_from_bytes() {
        let samples = labelled(12, 25);
        for kind in PiiType::ALL {
            let n = samples.iter().filter(|s| s.labels[0].kind == kind).count();
            assert_eq!(n, 25, "{kind}");
        }
        let shifted =
            samples.iter().filter(|s| s.text.char_indices().nth(s.labels[0].start).is_some_and(|(b, _)| b != s.labels[0].start)).count();
        assert!(shifted > samples.len() / 10, "only {shifted} samples have accents before the value");
        assert!(samples.iter().any(|s| s.labels.len() == 2));
    }

    #[test]
    fn generators_are_deterministic_for_a_seed() {
        assert_eq!(labelled(5, 10), labelled(5, 10));
        assert_ne!(labelled(5, 10), labelled(6, 10));
        assert_eq!(broken(5, 10), broken(5, 10));
        assert_eq!(negatives(5, 100), negatives(5, 100));
        assert_eq!(prose_with_pii(5, 5000), prose_with_pii(5, 5000));
        assert_eq!(code_and_logs(5, 5000), code_and_logs(5, 5000));
    }

    #[test]
    fn broken_values_fail_every_checksum() {
        let samples = broken_with_spans(13, 80);
        assert_eq!(samples.len(), CHECKSUM_TYPES.len() * 80);
        for sample in &samples {
            let label = sample.labels[0];
            let v = slice(&sample.text, &label);
            assert!(!check::valid(label.kind, &v), "{}: {v:?} still valid", label.kind);
            assert!(!check::any_checksum_valid(&check::compact(&v)), "{}: {v:?} valid as something else", label.kind);
        }
        assert!(broken(13, 3).iter().all(|s| s.labels.is_empty()));
    }

    #[test]
    fn negatives_hold_no_number_that_passes_a_checksum() {
        for text in negatives(14, 2000) {
            assert!(!holds_valid_number(&text), "{text:?}");
            assert!(!text.contains('@'), "{text:?}");
        }
    }

    #[test]
    fn bench_corpora_have_the_asked_size() {
        let p = prose(15, 20_000);
        assert!(p.len() <= 20_000 && p.len() > 19_000);
        assert!(!p.bytes().any(|b| b.is_ascii_digit()));
        let with_pii = prose_with_pii_labelled(15, 200_000);
        assert!(with_pii.text.len() <= 200_000 && with_pii.text.len() > 199_000);
        let chars: Vec<char> = with_pii.text.chars().collect();
        let sensitive: usize = with_pii.labels.iter().map(|l| chars[l.start..l.end].iter().map(|c| c.len_utf8()).sum::<usize>()).sum();
        let share = sensitive as f64 / with_pii.text.len() as f64;
        assert!((0.008..0.02).contains(&share), "sensitive share {share}");
        assert_eq!(prose_with_pii(15, 200_000), with_pii.text);
        let code = code_and_logs(15, 20_000);
        assert!(code.len() <= 20_000 && code.len() > 19_000);
    }

    #[test]
    fn known_values_pass_the_oracle() {
        // Published examples: Luhn test card, IBAN registry examples, stdnum doc examples.
        assert!(check::valid(PiiType::CreditCard, "4111 1111 1111 1111"));
        assert!(check::valid(PiiType::Iban, "GB82 WEST 1234 5698 7654 32"));
        assert!(check::valid(PiiType::Iban, "FR1420041010050500013M02606"));
        assert!(check::valid(PiiType::Iban, "BE68539007547034"));
        assert!(check::valid(PiiType::FrSiren, "732 829 320"));
        assert!(check::valid(PiiType::FrSiret, "732 829 320 00074"));
        assert!(check::valid(PiiType::EsDni, "54362315K"));
        assert!(check::valid(PiiType::EsNie, "X2482300W"));
        assert!(check::valid(PiiType::ItFiscalCode, "RCCMNL83S18D969H"));
        assert!(check::valid(PiiType::NlBsn, "1112.22.333"));
        assert!(check::valid(PiiType::BeNationalNumber, "85.07.30-033.28"));
        assert!(check::valid(PiiType::PlPesel, "44051401359"));
        assert!(check::valid(PiiType::DeTaxId, "36 574 261 809"));
        assert!(check::valid(PiiType::FrNir, "295109912611193"));
        assert!(check::valid(PiiType::UkNino, "AB 12 34 56 C"));
        assert!(!check::valid(PiiType::UkNino, "GB 12 34 56 C"));
        assert!(!check::valid(PiiType::Ssn, "666-12-3456"));
        assert_eq!(make::base64(br#"{"alg":"HS256","typ":"JWT"}"#, true), "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9");
        assert_eq!(make::base64(b"ab", false), "YWI=");
    }

    #[test]
    fn templates_hold_no_digit_and_one_slot() {
        let lists: [&[&str]; 21] = [
            NEUTRAL,
            CARD_CONTEXT,
            IBAN_CONTEXT,
            SSN_CONTEXT,
            NIR_CONTEXT,
            SIREN_CONTEXT,
            SIRET_CONTEXT,
            DNI_CONTEXT,
            NIE_CONTEXT,
            FISCAL_CODE_CONTEXT,
            BSN_CONTEXT,
            BE_NATIONAL_CONTEXT,
            PESEL_CONTEXT,
            DE_TAX_CONTEXT,
            NINO_CONTEXT,
            EMAIL_CONTEXT,
            IP_CONTEXT,
            API_KEY_CONTEXT,
            MISTRAL_CONTEXT,
            SECRET_CONTEXT,
            PEM_CONTEXT,
        ];
        let phones = Lang::ALL.map(Lang::phone_context);
        for t in lists.iter().chain(phones.iter()).flat_map(|l| l.iter()).chain(PEM_NEUTRAL).chain(CONFIG_LINES) {
            assert!(!t.bytes().any(|b| b.is_ascii_digit()), "{t:?}");
            assert_eq!(t.matches("{}").count(), 1, "{t:?}");
        }
    }
}
