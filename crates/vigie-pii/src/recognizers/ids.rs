//! Identifiers written with letters and digits: IBAN (electronic and printed), Spanish NIE,
//! Italian codice fiscale, UK National Insurance numbers.
use crate::PiiType;
use crate::checksum;
use crate::scanner::{Scan, contextual, is_word};

/// The longest IBAN.
const MAX_IBAN: usize = 34;

/// A coded identifier in the word `text[start..end]` (or starting with it); where the scan
/// resumes.
pub fn coded(scan: &mut Scan<'_>, start: usize, end: usize) -> Option<usize> {
    let b = scan.text;
    let w = &b[start..end];
    let n = w.len();
    if n >= 4
        && w[0].is_ascii_alphabetic()
        && w[1].is_ascii_alphabetic()
        && w[2].is_ascii_digit()
        && w[3].is_ascii_digit()
        && let Some(r) = iban(scan, start, end)
    {
        return Some(r);
    }
    if n == 16 {
        let mut up = [0u8; 16];
        up.copy_from_slice(w);
        up.make_ascii_uppercase();
        let consistent = w.iter().all(|c| !c.is_ascii_lowercase()) || w.iter().all(|c| !c.is_ascii_uppercase());
        if consistent && checksum::it_fiscal_code(&up) {
            let sig = scan.signals(start, end);
            scan.push(PiiType::ItFiscalCode, contextual(0.9, 0.09, sig, PiiType::ItFiscalCode), start, end, None);
            return Some(end);
        }
    }
    if matches!(w[0], b'X' | b'Y' | b'Z' | b'x' | b'y' | b'z') {
        // X1234567L, or X1234567-L.
        let (digits, letter, stop) = if n == 9 && w[8].is_ascii_alphabetic() {
            (&w[1..8], w[8], end)
        } else if n == 8
            && b.get(end) == Some(&b'-')
            && b.get(end + 1).is_some_and(u8::is_ascii_alphabetic)
            && b.get(end + 2).is_none_or(|&c| !is_word(c))
        {
            (&w[1..8], b[end + 1], end + 2)
        } else {
            (&w[..0], 0, end)
        };
        if digits.len() == 7 && digits.iter().all(u8::is_ascii_digit) && checksum::es_nie(w[0], digits, letter) {
            let sig = scan.signals(start, stop);
            scan.push(PiiType::EsNie, contextual(0.85, 0.12, sig, PiiType::EsNie), start, stop, None);
            return Some(stop);
        }
    }
    if n == 9
        && w[..2].iter().all(u8::is_ascii_alphabetic)
        && w[2..8].iter().all(u8::is_ascii_digit)
        && checksum::uk_nino([w[0], w[1]], &w[2..8], w[8])
        && !w.iter().any(u8::is_ascii_lowercase)
    {
        let sig = scan.signals(start, end);
        scan.push(PiiType::UkNino, contextual(0.75, 0.2, sig, PiiType::UkNino), start, end, None);
        return Some(end);
    }
    None
}

/// An IBAN starting at `start`, electronic (`FR7630006000011234567890189`) or printed in
/// groups of four (`FR76 3000 6000 0112 3456 7890 189`).
fn iban(scan: &mut Scan<'_>, start: usize, end: usize) -> Option<usize> {
    let b = scan.text;
    // Inside a hyphenated token (a UUID's `be59-feb3…`) there is no IBAN.
    if start >= 2 && matches!(b[start - 1], b'-' | b'.' | b'_') && is_word(b[start - 2]) {
        return None;
    }
    let country = [b[start].to_ascii_uppercase(), b[start + 1].to_ascii_uppercase()];
    let len = checksum::iban_length(country)?;
    let mut buf = [0u8; MAX_IBAN];
    let stop;
    if end - start == len {
        buf[..len].copy_from_slice(&b[start..end]);
        stop = end;
    } else if end - start == 4 {
        // Printed: groups separated by one space (or dash) — of four, the last one shorter, or
        // as a French RIB is grouped (`FR76 30006 00001 12345678901 89`): the length and the
        // checksum decide.
        buf[..4].copy_from_slice(&b[start..end]);
        let mut k = 4;
        let mut i = end;
        loop {
            if k == len {
                break;
            }
            if i + 1 >= b.len() || !matches!(b[i], b' ' | b'-') || !b[i + 1].is_ascii_alphanumeric() {
                return None;
            }
            let gs = i + 1;
            let mut ge = gs;
            while ge < b.len() && b[ge].is_ascii_alphanumeric() && ge - gs <= 12 {
                ge += 1;
            }
            let glen = ge - gs;
            // Dashes join groups of four only (`FR76-3000-6000-…`); spaces also RIB groups.
            if glen > 12 || k + glen > len || (b[i] == b'-' && glen != 4 && k + glen != len) {
                return None;
            }
            buf[k..k + glen].copy_from_slice(&b[gs..ge]);
            k += glen;
            i = ge;
        }
        if i < b.len() && is_word(b[i]) {
            return None;
        }
        stop = i;
    } else {
        return None;
    }
    let v = &mut buf[..len];
    v.make_ascii_uppercase();
    if !checksum::iban(v) {
        // A whole IBAN-shaped value with a wrong check: its groups are not read again as
        // other numbers (a card-like tail of a mistyped IBAN is not a card).
        return Some(stop);
    }
    let sig = scan.signals(start, stop);
    scan.push(PiiType::Iban, contextual(0.95, 0.04, sig, PiiType::Iban).max(0.8), start, stop, None);
    Some(stop)
}

/// A UK National Insurance number printed with spaces (`AB 12 34 56 C`), the two letters at
/// `start`.
pub fn nino_spaced(scan: &mut Scan<'_>, start: usize) -> Option<usize> {
    let b = scan.text;
    let mut digits = [0u8; 6];
    let mut k = 0;
    let mut i = start + 2;
    while k < 6 {
        if i + 1 >= b.len() || b[i] != b' ' || !b[i + 1].is_ascii_digit() {
            return None;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            if k == 6 {
                return None;
            }
            digits[k] = b[i];
            k += 1;
            i += 1;
        }
    }
    if i + 1 >= b.len() || b[i] != b' ' || !b[i + 1].is_ascii_uppercase() || b.get(i + 2).is_some_and(|&c| is_word(c)) {
        return None;
    }
    let suffix = b[i + 1];
    if !checksum::uk_nino([b[start], b[start + 1]], &digits, suffix) {
        return None;
    }
    let stop = i + 2;
    let sig = scan.signals(start, stop);
    scan.push(PiiType::UkNino, contextual(0.8, 0.15, sig, PiiType::UkNino), start, stop, None);
    Some(stop)
}

/// A Spanish NIE written with dashes, `X-1234567-L`, the letter at `start`.
pub fn nie_dashed(scan: &mut Scan<'_>, start: usize) -> Option<usize> {
    let b = scan.text;
    let v = b.get(start..start + 11)?;
    if v[1] != b'-' || v[9] != b'-' || !v[2..9].iter().all(u8::is_ascii_digit) || b.get(start + 11).is_some_and(|&c| is_word(c)) {
        return None;
    }
    if !checksum::es_nie(v[0], &v[2..9], v[10]) {
        return None;
    }
    let stop = start + 11;
    let sig = scan.signals(start, stop);
    scan.push(PiiType::EsNie, contextual(0.85, 0.12, sig, PiiType::EsNie), start, stop, None);
    Some(stop)
}
