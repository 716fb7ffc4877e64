//! Table-driven checks of the scanner: what each text must yield, type and exact span.
use crate::{PiiType, Scanner};
use std::sync::LazyLock;

static SCANNER: LazyLock<Scanner> = LazyLock::new(Scanner::default);

/// Asserts that `text` yields exactly `expected` (type, matched text), in order.
#[track_caller]
fn check(text: &str, expected: &[(PiiType, &str)]) {
    let found: Vec<(PiiType, &str)> = SCANNER.scan(text).iter().map(|f| (f.kind, &text[f.byte_start..f.byte_end])).collect();
    assert_eq!(found, expected, "in {text:?}");
}

use PiiType::*;

#[test]
fn cards_are_found_in_the_formats_people_type() {
    check("my card 4532015112830366 expires", &[(CreditCard, "4532015112830366")]);
    check("carte 4532 0151 1283 0366.", &[(CreditCard, "4532 0151 1283 0366")]);
    check("Karte: 4532-0151-1283-0366", &[(CreditCard, "4532-0151-1283-0366")]);
    check("amex 3714 496353 98431", &[(CreditCard, "3714 496353 98431")]);
    check("order 4532015112830367", &[]);
    check("card 4532015112830366 y 0612345678", &[(CreditCard, "4532015112830366"), (Phone, "0612345678")]);
}

#[test]
fn bank_accounts_are_found_printed_and_electronic() {
    check("IBAN FR1420041010050500013M02606 merci", &[(Iban, "FR1420041010050500013M02606")]);
    check("IBAN: FR14 2004 1010 0505 0001 3M02 606.", &[(Iban, "FR14 2004 1010 0505 0001 3M02 606")]);
    check("Konto DE89 3704 0044 0532 0130 00", &[(Iban, "DE89 3704 0044 0532 0130 00")]);
    check("GB29NWBK60161331926819", &[(Iban, "GB29NWBK60161331926819")]);
    check("FR1420041010050500013M02607", &[]);
}

#[test]
fn contact_data_is_found() {
    check("write to alice.martin+ai@acme.co.uk, thanks", &[(Email, "alice.martin+ai@acme.co.uk")]);
    check("call +33 6 12 34 56 78 now", &[(Phone, "+33 6 12 34 56 78")]);
    check("appelle-moi au 06 12 34 56 78", &[(Phone, "06 12 34 56 78")]);
    check("Tel. 030 12345678", &[(Phone, "030 12345678")]);
    check("mi móvil es 612 345 678", &[(Phone, "612 345 678")]);
    check("git clone git@github.com:org/repo.git", &[]);
    check("icon@2x.png", &[]);
}

#[test]
fn national_identifiers_are_found_with_their_names() {
    check("NIR 1 85 07 75 056 045 04", &[(FrNir, "1 85 07 75 056 045 04")]);
    check("SIREN 732 829 320", &[(FrSiren, "732 829 320")]);
    check("SIRET: 73282932000074", &[(FrSiret, "73282932000074")]);
    check("SSN 123-45-6789", &[(Ssn, "123-45-6789")]);
    check("mi DNI es 12345678Z", &[(EsDni, "12345678Z")]);
    check("NIE X1234567L", &[(EsNie, "X1234567L")]);
    check("codice fiscale RSSMRA85T10A562S", &[(ItFiscalCode, "RSSMRA85T10A562S")]);
    check("mijn BSN is 111222333", &[(NlBsn, "111222333")]);
    check("rijksregisternummer 85.07.30-033.28", &[(BeNationalNumber, "85.07.30-033.28")]);
    check("PESEL 44051401359", &[(PlPesel, "44051401359")]);
    check("Steuer-ID 86095742719", &[(DeTaxId, "86095742719")]);
    check("NI number AB 12 34 56 C", &[(UkNino, "AB 12 34 56 C")]);
    check("Bestellnummer 732829320", &[]);
}

#[test]
fn addresses_are_found_but_not_versions() {
    check("server 192.168.1.20 is down", &[(IpAddress, "192.168.1.20")]);
    check("ping 2001:db8::8a2e:370:7334.", &[(IpAddress, "2001:db8::8a2e:370:7334")]);
    check("version 1.2.3.4 and v10.0.19041.1 and Chrome 124.0.6367.91", &[]);
    check("use std::fmt; a::b", &[]);
}

#[test]
fn secrets_are_found() {
    check("AWS key AKIAIOSFODNN7EXAMPLE ok", &[(ApiKey, "AKIAIOSFODNN7EXAMPLE")]);
    check("token ghp_aBcD1234567890aBcD1234567890aBcD1234", &[(ApiKey, "ghp_aBcD1234567890aBcD1234567890aBcD1234")]);
    check("OPENAI_API_KEY=sk-proj-abcDEF1234567890abcDEF1234567890xyz", &[(ApiKey, "sk-proj-abcDEF1234567890abcDEF1234567890xyz")]);
    check("password: Sommer2024!x", &[(ApiKey, "Sommer2024!x")]);
    check("mon mot de passe est Soleil2024!", &[(ApiKey, "Soleil2024!")]);
    check("the key point is simple", &[]);
    check(
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;",
        &[(ApiKey, "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")],
    );
    check("const clientSecret = \"s3cr3tV4lu3-9fK2mQ8zL1pX\";", &[(ApiKey, "s3cr3tV4lu3-9fK2mQ8zL1pX")]);
    check("a monkey ate 42 bananas", &[]);
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    check(&format!("Authorization: Bearer {jwt}"), &[(ApiKey, jwt)]);
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1234abcdEFGH5678ijklMNOP\n9012qrstUVWX3456yzABcdef==\n-----END RSA PRIVATE KEY-----";
    check(&format!("here:\n{pem}\nthanks"), &[(ApiKey, pem)]);
}

#[test]
fn review_cases_are_found() {
    // A negative word elsewhere in the sentence does not weaken a value it does not name.
    check("Order 12345: ship to Jean, 4532 0151 1283 0366 exp 12/27", &[(CreditCard, "4532 0151 1283 0366")]);
    check("Pour votre commande, appelez le 06 12 34 56 78.", &[(Phone, "06 12 34 56 78")]);
    check("Bestellung 4711, Rückruf unter 0151 23456789", &[(Phone, "0151 23456789")]);
    // Passwords may hold an @; URL credentials are secrets, and their host is no mailbox.
    check("password: P@ssw0rd123", &[(ApiKey, "P@ssw0rd123")]);
    check("DB_PASSWORD=S3cureP@ss!", &[(ApiKey, "S3cureP@ss!")]);
    check("postgres://admin:S3cretPass2024@db.internal:5432/app", &[(ApiKey, "S3cretPass2024")]);
    check("https://user:pa55w0rdXYZ@example.com/", &[(ApiKey, "pa55w0rdXYZ")]);
    check("ssh admin@192.168.1.20", &[(IpAddress, "192.168.1.20")]);
    check("écrire à françois@exemple.fr", &[(Email, "françois@exemple.fr")]);
    check("Card: 4532  0151  1283  0366", &[(CreditCard, "4532  0151  1283  0366")]);
    check("Card: 4532.0151.1283.0366", &[(CreditCard, "4532.0151.1283.0366")]);
    check("IBAN: FR76 30006 00001 12345678901 89", &[(Iban, "FR76 30006 00001 12345678901 89")]);
    check("Le 06 12 2023, 34 56 78 personnes.", &[]);
    // Second review: logs, code and real secret formats.
    check("2024-03-14T21:50:14.828827Z ERROR worker", &[]);
    check("at 14:03:07.123456 and $37,500,019.72 (32.94% YoY)", &[]);
    check("(merge 037714252f) and 02834739-3813-448d-9c1e-5b3a1f2e4d6c", &[]);
    check("#define TIOCSETN 0x8006740a", &[]);
    check("Boston, MA 02110-1301 USA", &[]);
    check("## 0.1.0 (2016-05-06)", &[]);
    check("Kundennummer 0473006684", &[]);
    check("upstream 18.194.151.28:38955 and http://192.168.0.12:8080/admin", &[(IpAddress, "18.194.151.28"), (IpAddress, "192.168.0.12")]);
    check("carte 4532\u{202f}0151\u{202f}1283\u{202f}0366", &[(CreditCard, "4532\u{202f}0151\u{202f}1283\u{202f}0366")]);
    check("Tél. : 06\u{a0}12\u{a0}34\u{a0}56\u{a0}78", &[(Phone, "06\u{a0}12\u{a0}34\u{a0}56\u{a0}78")]);
    check("In case you need me: 06 12 34 56 78", &[(Phone, "06 12 34 56 78")]);
    check("Authorization: Basic YWRtaW46UzNjcjN0UGFzcw==", &[(ApiKey, "YWRtaW46UzNjcjN0UGFzcw==")]);
    check("Bearer ya29.a0AfH6SMBx3kFq9Lz8mQ2wXyZ1234567890abcdef", &[(ApiKey, "ya29.a0AfH6SMBx3kFq9Lz8mQ2wXyZ1234567890abcdef")]);
    check(
        "SECRET_KEY_BASE=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        &[(ApiKey, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")],
    );
    check("password=hunter22", &[(ApiKey, "hunter22")]);
    check("my password for the VPN is Winter2024!", &[(ApiKey, "Winter2024!")]);
    check("user: admin pass: S3cure!Pass", &[(ApiKey, "S3cure!Pass")]);
    check("?api_key=abcdef0123456789XYZ&limit=50", &[(ApiKey, "abcdef0123456789XYZ")]);
    check("pub Token: super::super::Win32::Foundation::HANDLE", &[]);
    check("key = cpp_line_parts[1]; token[tokenize_1.FIELDS.START_LINE]", &[]);
    check("github.com/RustCrypto/password-hashes/pull/458", &[]);
    check("The token expires at 2024-03-12T14:03:22Z", &[]);
    check("REDIS_PASSWORD=$REDIS_PASSWORD_2024 and \"{{ vault_become_pass_2024 }}\"", &[]);
    check("postgres://user:pass@localhost/db", &[]);
    check("data.startswith(b\"-----BEGIN RSA PRIVATE KEY-----\")", &[]);
    check("Idempotency-Key: 3f2504e0-4f89-11d3-9a0c-0305e82c3301", &[]);
    check("const MAX: u64 = 4611686018427387900;", &[]);
    check("Visa 4111111111111111110 (19 chiffres)", &[(CreditCard, "4111111111111111110")]);
    check(
        "SENTRY_DSN=https://e3b0c44298fc1c149afbf4c8996fb924@o123456.ingest.sentry.io/4504",
        &[(ApiKey, "e3b0c44298fc1c149afbf4c8996fb924")],
    );
    check("git clone https://git@example.com/repo.git", &[]);
    // Code after a secret's name is code.
    check("token = get_token(user_id=12345678)", &[]);
    check("apiKey: process.env.OPENAI_API_KEY_2", &[]);
    check("secret = hashlib.sha256(data).hexdigest()", &[]);
    check("cache key: user:12345:profile:v2", &[]);
    check(r#"{"key": "order_2024_000123_reference"}"#, &[]);
}

#[test]
fn offsets_are_code_points() {
    let text = "é€ alice@acme.fr";
    let f = &SCANNER.scan(text)[0];
    assert_eq!((f.start, f.end), (3, 16));
    assert_eq!(f.masked, "a***@acme.fr");
}

#[test]
fn invalid_utf8_is_read_lossily() {
    let mut bytes = b"\xff\xfe card 4532015112830366 \xc3".to_vec();
    bytes.extend_from_slice(b" end");
    let f = SCANNER.scan_bytes(&bytes);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].start, 8);
}

#[test]
fn an_unterminated_private_key_block_is_cut_on_a_character_boundary() {
    // Found in review: the 16 KiB cap fell inside a two-byte character and the slice panicked.
    let body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7";
    let text = format!("card 4532015112830366 -----BEGIN PRIVATE KEY-----{body}-----END x{}", "é".repeat(10_000));
    let found = SCANNER.scan(&text);
    assert_eq!(found.iter().map(|f| f.kind).collect::<Vec<_>>(), [CreditCard, ApiKey]);
    assert!(text.is_char_boundary(found[1].byte_end));
}

#[test]
fn long_digit_runs_are_skipped_not_overflowed() {
    // Found by the fuzzer: one group longer than the digit buffer.
    check("pass192.13655555555555555;555555555555555555555.1.1 NIR 1 85 0756 14 20055555555555075555555555555555556 C", &[]);
    check(&"7".repeat(10_000), &[]);
    check(&"1 ".repeat(5_000), &[]);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Filler words: prose in the six languages, no digits.
    fn filler() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!["the", "rapport", "über", "mañana", "perché", "graag", "très", "und", "é", "—"]),
            0..12,
        )
        .prop_map(|w| w.join(" "))
    }

    proptest! {
        #[test]
        fn a_value_between_words_is_found_whole(before in filler(), after in filler(), which in 0..5usize) {
            let (value, kind) = [
                ("4532 0151 1283 0366", CreditCard),
                ("FR14 2004 1010 0505 0001 3M02 606", Iban),
                ("jean.dupont@example.fr", Email),
                ("+33 6 12 34 56 78", Phone),
                ("AKIAIOSFODNN7EXAMPLE", ApiKey),
            ][which];
            let text = format!("{before} {value} {after}");
            let found = SCANNER.scan(&text);
            prop_assert_eq!(found.len(), 1, "{:?} in {:?}", found, text);
            prop_assert_eq!(found[0].kind, kind);
            prop_assert_eq!(&text[found[0].byte_start..found[0].byte_end], value);
            prop_assert_eq!(found[0].start, before.chars().count() + 1);
        }

        #[test]
        fn any_text_scans_without_panic_and_findings_are_ordered(text in "\\PC{0,300}") {
            let found = SCANNER.scan(&text);
            for w in found.windows(2) {
                prop_assert!(w[0].byte_end <= w[1].byte_start);
            }
            for f in &found {
                prop_assert_eq!(f.start, text[..f.byte_start].chars().count());
            }
        }
    }
}

#[test]
fn one_card_or_iban_is_critical_and_a_lone_email_is_low() {
    use crate::risk::of_findings;
    for (text, band) in [
        ("4532015112830366", 0.9..=1.0),
        ("please pay FR1420041010050500013M02606 today", 0.9..=1.0),
        ("DE89 3704 0044 0532 0130 00", 0.9..=1.0),
        ("write to alice@acme.fr", 0.1..=0.3),
    ] {
        let found = SCANNER.scan(text);
        for vetted in [true, false] {
            let risk = of_findings(&found, vetted);
            assert!(band.contains(&risk), "{text:?} (vetted {vetted}) scored {risk}");
        }
    }
}
