//! Check-digit and structure validators. Each takes the value's significant characters only
//! (digits, or upper-case letters and digits), without separators.

/// Luhn (ISO/IEC 7812-1) over ASCII digits.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// The card network of a Luhn-valid number by its issuer identification number and length;
/// `None` for a range no network issues cards in.
pub fn card_network(digits: &[u8]) -> Option<&'static str> {
    let n = digits.len();
    let prefix = |k: usize| -> u32 { digits[..k].iter().fold(0, |a, d| a * 10 + u32::from(d - b'0')) };
    let p2 = prefix(2);
    let p3 = prefix(3);
    let p4 = prefix(4);
    let p6 = prefix(6);
    match digits[0] {
        b'4' if matches!(n, 13 | 16 | 19) => Some("visa"),
        b'5' if (51..=55).contains(&p2) && n == 16 => Some("mastercard"),
        b'2' if (2221..=2720).contains(&p4) && n == 16 => Some("mastercard"),
        b'3' if matches!(p2, 34 | 37) && n == 15 => Some("amex"),
        b'3' if (3528..=3589).contains(&p4) && (16..=19).contains(&n) => Some("jcb"),
        b'3' if (matches!(p2, 36 | 38 | 39) || (300..=305).contains(&p3)) && (14..=19).contains(&n) => Some("diners"),
        b'6' if (p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) || (622126..=622925).contains(&p6)) && (16..=19).contains(&n) => {
            Some("discover")
        }
        b'6' if p2 == 62 && (16..=19).contains(&n) => Some("unionpay"),
        b'5' | b'6' if matches!(p4, 5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761 | 6762 | 6763) && (12..=19).contains(&n) => {
            Some("maestro")
        }
        _ => None,
    }
}

/// ISO 7064 MOD 97-10 over an alphanumeric string (letters count 10..35), as IBANs and the
/// French NIR-style keys use it: the remainder of the number it spells.
fn mod97(chars: impl Iterator<Item = u8>) -> u32 {
    let mut r = 0u32;
    for c in chars {
        if c.is_ascii_digit() {
            r = (r * 10 + u32::from(c - b'0')) % 97;
        } else {
            let v = u32::from(c.to_ascii_uppercase() - b'A') + 10;
            r = (r * 100 + v) % 97;
        }
    }
    r
}

/// The length of an IBAN by its country code (ISO 13616 registry), `None` for a country with
/// no IBAN.
pub fn iban_length(country: [u8; 2]) -> Option<usize> {
    Some(match &country {
        b"NO" => 15,
        b"BE" => 16,
        b"DK" | b"FI" | b"FO" | b"GL" | b"NL" => 18,
        b"MK" | b"SI" => 19,
        b"AT" | b"BA" | b"EE" | b"KZ" | b"LT" | b"LU" | b"XK" => 20,
        b"CH" | b"CR" | b"HR" | b"LI" | b"LV" => 21,
        b"BG" | b"BH" | b"DE" | b"GB" | b"GE" | b"IE" | b"ME" | b"RS" => 22,
        b"AE" | b"GI" | b"IL" | b"TL" => 23,
        b"AD" | b"CZ" | b"ES" | b"MD" | b"PK" | b"RO" | b"SA" | b"SE" | b"SK" | b"TN" | b"VG" => 24,
        b"PT" | b"ST" => 25,
        b"IS" | b"TR" => 26,
        b"FR" | b"GR" | b"IT" | b"MC" | b"MR" | b"SM" => 27,
        b"AL" | b"AZ" | b"BY" | b"CY" | b"DO" | b"GT" | b"HU" | b"LB" | b"PL" | b"SV" => 28,
        b"BR" | b"EG" | b"PS" | b"QA" | b"UA" => 29,
        b"JO" | b"KW" | b"MU" => 30,
        b"MT" | b"SC" => 31,
        b"LC" => 32,
        b"RU" => 33,
        _ => return None,
    })
}

/// An IBAN in electronic form (upper case, no spaces): known country, its length, check
/// digits 02..98, mod 97 = 1.
pub fn iban(s: &[u8]) -> bool {
    if s.len() < 15 || !s[..2].iter().all(u8::is_ascii_uppercase) || !s[2..4].iter().all(u8::is_ascii_digit) {
        return false;
    }
    if iban_length([s[0], s[1]]) != Some(s.len()) || !s[4..].iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    mod97(s[4..].iter().chain(&s[..4]).copied()) == 1
}

/// A French NIR: 13 characters (digits, with `2A`/`2B` for Corsica at the department) and a
/// 2-digit key = 97 − (number mod 97), with plausible sex and month fields.
pub fn fr_nir(s: &[u8]) -> bool {
    if s.len() != 15 || !matches!(s[0], b'1' | b'2' | b'3' | b'4' | b'7' | b'8') {
        return false;
    }
    if !(s[3].is_ascii_digit() && s[4].is_ascii_digit()) {
        return false;
    }
    let month = u32::from(s[3] - b'0') * 10 + u32::from(s[4] - b'0');
    if !matches!(month, 1..=12 | 20 | 30..=42 | 50..=99) {
        return false;
    }
    // Corsica: 2A counts as 19, 2B as 18 (the official rule: subtract 1,000,000 or 2,000,000).
    let (dept_adjust, body): (u64, [u8; 13]) = {
        let mut b = [0u8; 13];
        b.copy_from_slice(&s[..13]);
        match (s[5], s[6]) {
            (b'2', b'A') => {
                b[6] = b'0';
                (1_000_000, b)
            }
            (b'2', b'B') => {
                b[6] = b'0';
                (2_000_000, b)
            }
            _ => (0, b),
        }
    };
    if !body.iter().all(u8::is_ascii_digit) || !s[13..].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let n = body.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0'));
    let n = if dept_adjust > 0 { n - dept_adjust } else { n };
    let key = u64::from(s[13] - b'0') * 10 + u64::from(s[14] - b'0');
    key == 97 - n % 97
}

/// A SIREN: 9 digits, Luhn.
pub fn fr_siren(d: &[u8]) -> bool {
    d.len() == 9 && d != b"000000000" && luhn(d)
}

/// A SIRET: 14 digits, Luhn; La Poste's establishments (SIREN 356000000) use a digit sum that
/// is a multiple of 5 instead.
pub fn fr_siret(d: &[u8]) -> bool {
    if d.len() != 14 || d[..9] == *b"000000000" {
        return false;
    }
    if &d[..9] == b"356000000" {
        return d.iter().map(|c| u32::from(c - b'0')).sum::<u32>().is_multiple_of(5);
    }
    luhn(d)
}

const DNI_LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";

/// A Spanish DNI: 8 digits and the check letter of their value mod 23.
pub fn es_dni(digits: &[u8], letter: u8) -> bool {
    digits.len() == 8 && DNI_LETTERS[(number(digits) % 23) as usize] == letter.to_ascii_uppercase()
}

/// A Spanish NIE: X, Y or Z (0, 1, 2), 7 digits and the DNI check letter.
pub fn es_nie(prefix: u8, digits: &[u8], letter: u8) -> bool {
    let lead = match prefix.to_ascii_uppercase() {
        b'X' => 0,
        b'Y' => 1,
        b'Z' => 2,
        _ => return false,
    };
    digits.len() == 7 && DNI_LETTERS[((lead * 10_000_000 + number(digits)) % 23) as usize] == letter.to_ascii_uppercase()
}

fn number(digits: &[u8]) -> u64 {
    digits.iter().fold(0u64, |a, d| a * 10 + u64::from(d - b'0'))
}

/// An Italian codice fiscale (16 characters, upper case): the shape, with omocodia letters in
/// digit positions, and the check character from the odd/even tables.
pub fn it_fiscal_code(s: &[u8]) -> bool {
    const DIGIT_POS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];
    const OMOCODIA: &[u8] = b"LMNPQRSTUV";
    const MONTHS: &[u8] = b"ABCDEHLMPRST";
    const ODD: [u32; 26] = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23];
    if s.len() != 16 {
        return false;
    }
    for (i, &c) in s.iter().enumerate() {
        let ok = if DIGIT_POS.contains(&i) {
            c.is_ascii_digit() || OMOCODIA.contains(&c)
        } else if i == 8 {
            MONTHS.contains(&c)
        } else {
            c.is_ascii_uppercase()
        };
        if !ok {
            return false;
        }
    }
    let mut sum = 0u32;
    for (i, &c) in s[..15].iter().enumerate() {
        let v = if c.is_ascii_digit() { u32::from(c - b'0') } else { u32::from(c - b'A') };
        // Positions are 1-based in the specification: odd positions are even indexes here.
        sum += if i % 2 == 0 { ODD[v as usize] } else { v };
    }
    s[15] == b'A' + (sum % 26) as u8
}

/// A Dutch BSN: 9 digits passing the 11-test (the last digit weighs −1).
pub fn nl_bsn(d: &[u8]) -> bool {
    if d.len() != 9 || d == b"000000000" {
        return false;
    }
    let sum: i64 = d.iter().take(8).enumerate().map(|(i, c)| (9 - i as i64) * i64::from(c - b'0')).sum::<i64>() - i64::from(d[8] - b'0');
    sum % 11 == 0
}

/// A Belgian national register number: YYMMDD, a 3-digit serial, and 97 − (first nine mod
/// 97) — with 2 prepended for people born from 2000.
pub fn be_national_number(d: &[u8]) -> bool {
    if d.len() != 11 {
        return false;
    }
    let month = number(&d[2..4]);
    let day = number(&d[4..6]);
    // Month 0 / day 0 occur for unknown dates; bis numbers add 20 or 40 to the month.
    if !matches!(month % 20, 0..=12) || month > 52 || day > 31 {
        return false;
    }
    let base = number(&d[..9]);
    let check = number(&d[9..]);
    check == 97 - base % 97 || check == 97 - (2_000_000_000 + base) % 97
}

/// A Polish PESEL: a birth date with the century in the month, and a check digit.
pub fn pl_pesel(d: &[u8]) -> bool {
    const W: [u32; 10] = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];
    if d.len() != 11 {
        return false;
    }
    let month = number(&d[2..4]) % 20;
    let day = number(&d[4..6]);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    let sum: u32 = d.iter().zip(W).map(|(c, w)| u32::from(c - b'0') * w).sum();
    (10 - sum % 10) % 10 == u32::from(d[10] - b'0')
}

/// A German tax id (Steuer-ID): 11 digits, no leading 0, in the first ten one digit twice or
/// three times and as many others missing, and the ISO 7064 MOD 11,10 check digit.
pub fn de_tax_id(d: &[u8]) -> bool {
    if d.len() != 11 || d[0] == b'0' {
        return false;
    }
    let mut counts = [0u8; 10];
    for c in &d[..10] {
        counts[usize::from(c - b'0')] += 1;
    }
    let repeated = counts.iter().filter(|&&c| c > 1).count();
    let max = counts.iter().copied().max().unwrap_or(0);
    if repeated != 1 || max > 3 {
        return false;
    }
    let mut product = 10u32;
    for c in &d[..10] {
        let mut sum = (u32::from(c - b'0') + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let check = (11 - product) % 10;
    check == u32::from(d[10] - b'0')
}

/// A US SSN by its issued ranges: area not 000, 666 or 900–999; group not 00; serial not 0000.
pub fn us_ssn(d: &[u8]) -> bool {
    if d.len() != 9 {
        return false;
    }
    let area = number(&d[..3]);
    area != 0 && area != 666 && area < 900 && number(&d[3..5]) != 0 && number(&d[5..]) != 0
}

/// A UK National Insurance number: two prefix letters from the allowed set, six digits, a
/// suffix A–D.
pub fn uk_nino(prefix: [u8; 2], digits: &[u8], suffix: u8) -> bool {
    let [a, b] = [prefix[0].to_ascii_uppercase(), prefix[1].to_ascii_uppercase()];
    let bad_first = b"DFIQUV";
    let bad_second = b"DFIQUVO";
    a.is_ascii_uppercase()
        && b.is_ascii_uppercase()
        && !bad_first.contains(&a)
        && !bad_second.contains(&b)
        && !matches!(&[a, b], b"BG" | b"GB" | b"NK" | b"KN" | b"TN" | b"NT" | b"ZZ")
        && digits.len() == 6
        && digits.iter().all(u8::is_ascii_digit)
        && matches!(suffix.to_ascii_uppercase(), b'A'..=b'D')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_valid_values_pass_and_one_changed_character_fails() {
        type Check = fn(&[u8]) -> bool;
        let cases: &[(&str, Check)] = &[
            ("4532015112830366", |d| luhn(d) && card_network(d) == Some("visa")),
            ("FR1420041010050500013M02606", iban),
            ("DE89370400440532013000", iban),
            ("GB29NWBK60161331926819", iban),
            ("185077505604504", fr_nir),
            ("732829320", fr_siren),
            ("73282932000074", fr_siret),
            ("35600000049837", fr_siret),
            ("111222333", nl_bsn),
            ("85073003328", be_national_number),
            ("44051401359", pl_pesel),
            ("86095742719", de_tax_id),
            ("RSSMRA85T10A562S", it_fiscal_code),
        ];
        for (value, check) in cases {
            assert!(check(value.as_bytes()), "{value} should pass");
            let mut broken = value.as_bytes().to_vec();
            let last = broken.len() - 1;
            broken[last] = if broken[last] == b'1' {
                b'2'
            } else if broken[last].is_ascii_digit() {
                b'1'
            } else {
                b'Z'
            };
            assert!(!check(&broken), "{} should fail", String::from_utf8_lossy(&broken));
        }
        assert!(es_dni(b"12345678", b'Z'));
        assert!(!es_dni(b"12345678", b'A'));
        assert!(es_nie(b'X', b"1234567", b'L'));
        assert!(us_ssn(b"123456789") && !us_ssn(b"666123456") && !us_ssn(b"900123456") && !us_ssn(b"123006789"));
        assert!(uk_nino(*b"AB", b"123456", b'C') && !uk_nino(*b"GB", b"123456", b'C') && !uk_nino(*b"AB", b"123456", b'E'));
    }

    #[test]
    fn corsican_nir_keys_follow_the_official_rule() {
        // 2A: the number with 2A replaced by 19 (i.e. minus 1,000,000 from "20"), key on that.
        let n: u64 = 1_850_719_001_007;
        let s = format!("185072A001007{:02}", 97 - n % 97);
        assert!(fr_nir(s.as_bytes()), "{s}");
        let n: u64 = 1_850_718_001_007;
        let s = format!("185072B001007{:02}", 97 - n % 97);
        assert!(fr_nir(s.as_bytes()), "{s}");
    }
}
