//! Masking of classification values. Runs before anything is stored or emitted: only the
//! masked form (`****9010`, `a***@acme.fr`) ever reaches the database, the outbox or a log.
//!
//! Rules: an e-mail keeps its first character and its domain (only when the domain is a plain
//! host name, so nothing else can ride along after an `@`); any other value keeps its last
//! four letters or digits when it has at least twelve (enough to recognise a card or IBAN,
//! too few to rebuild it), its last two when it has eight to eleven, and nothing otherwise.

/// The masked form of `value` of classification type `kind`.
pub fn mask(kind: &str, value: &str) -> String {
    if kind == "EMAIL"
        && let Some((local, domain)) = value.trim().rsplit_once('@')
        && let Some(first) = local.chars().next().filter(char::is_ascii_alphanumeric)
        && is_host_name(domain)
    {
        return format!("{first}***@{}", domain.to_ascii_lowercase());
    }
    let alnum: Vec<char> = value.chars().filter(|c| c.is_alphanumeric()).collect();
    let keep = match alnum.len() {
        n if n >= 12 => 4,
        n if n >= 8 => 2,
        _ => 0,
    };
    let mut out = String::from("****");
    out.extend(&alnum[alnum.len() - keep..]);
    out
}

/// A plain host name with an alphabetic top-level domain and fewer than six digits in all, so a
/// card or phone number cannot pass for a domain, however it is split.
fn is_host_name(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    s.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
        })
        && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
        && digit_count(s) < 6
}

/// How many digits `s` holds in all: separators of any kind cannot split a number past it.
pub fn digit_count(s: &str) -> usize {
    s.chars().filter(char::is_ascii_digit).count()
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn values_are_masked_by_kind() {
        assert_eq!(mask("CREDIT_CARD", "4532-1234-5678-9010"), "****9010");
        assert_eq!(mask("IBAN", "FR14 2004 1010 0505 0001 3M02 606"), "****2606");
        assert_eq!(mask("EMAIL", "alice@acme.fr"), "a***@acme.fr");
        assert_eq!(mask("PHONE", "+33612345678"), "****78");
        assert_eq!(mask("FR_SIREN", "732829320"), "****20");
        assert_eq!(mask("SSN", "123-45"), "****");
        assert_eq!(mask("EMAIL", "not-an-email"), "****il");
        // Nothing rides along after an `@`.
        assert_eq!(mask("EMAIL", "jean@acme.fr card 4532015112830366"), "****0366");
        assert_eq!(mask("EMAIL", "jean@4532015112830366"), "****0366");
        assert_eq!(mask("EMAIL", "jean@4532015112830366.com"), "****6com");
        assert_eq!(mask("EMAIL", "jean@acme.123"), "****23");
        assert_eq!(mask("EMAIL", "jean@mail2.acme-42.fr"), "j***@mail2.acme-42.fr");
        assert_eq!(mask("EMAIL", "jean@4532.0151.1283.0366.com"), "****6com");
        assert_eq!(mask("EMAIL", "jean@4532x0151x1283x0366.com"), "****6com");
    }

    #[test]
    fn an_already_masked_value_reveals_nothing_more() {
        assert_eq!(mask("CREDIT_CARD", "****9010"), "****");
    }
}

#[cfg(test)]
mod properties {
    use super::mask;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_masked_value_keeps_at_most_four_of_its_characters(
            kind in prop::sample::select(vec!["CREDIT_CARD", "IBAN", "PHONE", "API_KEY", "SSN", "FR_NIR"]),
            value in "\\PC{0,80}",
        ) {
            let m = mask(kind, &value);
            prop_assert!(m.starts_with("****"));
            prop_assert!(m.chars().count() <= 8, "{m}");
            let alnum: String = value.chars().filter(|c| c.is_alphanumeric()).collect();
            if alnum.chars().count() > 4 {
                prop_assert!(!m.contains(&alnum), "{m} reveals {alnum}");
            }
        }

        #[test]
        fn a_masked_email_keeps_one_character_of_its_local_part(local in "[a-z0-9][a-z0-9._%+-]{1,29}", domain in "[a-z0-9][a-z0-9-]{0,19}\\.[a-z]{2,6}") {
            prop_assume!(super::digit_count(&domain) < 6);
            let m = mask("EMAIL", &format!("{local}@{domain}"));
            let kept_local = m.split('@').next().unwrap_or_default();
            prop_assert_eq!(kept_local, format!("{}***", &local[..1]));
            let suffix = format!("@{domain}");
            prop_assert!(m.ends_with(&suffix), "{}", m);
        }
    }
}
