//! The classification types the engine reports, their wire codes and their sensitivity.

/// The sensitivity of a type code this engine does not know (a client's own `PERSON`…).
pub const UNKNOWN_SENSITIVITY: f64 = 0.5;

/// A kind of sensitive data. The wire code ([`PiiType::code`]) is upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiType {
    /// A payment card number (13–19 digits, Luhn, known issuer range).
    CreditCard,
    /// An International Bank Account Number (ISO 13616, mod 97).
    Iban,
    /// A secret: cloud, forge, chat or AI provider key, payment key, JWT, private key block, or
    /// a high-entropy token next to a word like key, secret, token or password.
    ApiKey,
    /// A US social security number.
    Ssn,
    /// A French social security number (NIR), 13 digits and a 2-digit key.
    FrNir,
    /// A French company number (9 digits, Luhn).
    FrSiren,
    /// A French establishment number (14 digits, Luhn; La Poste's own rule).
    FrSiret,
    /// A Spanish national identity number (8 digits and a check letter).
    EsDni,
    /// A Spanish foreigner identity number (X, Y or Z, 7 digits and a check letter).
    EsNie,
    /// An Italian fiscal code (16 characters with a check character).
    ItFiscalCode,
    /// A Dutch citizen service number (9 digits, 11-test).
    NlBsn,
    /// A Belgian national register number (11 digits, mod 97).
    BeNationalNumber,
    /// A Polish PESEL (11 digits with a check digit).
    PlPesel,
    /// A German tax identification number (Steuer-ID, 11 digits, ISO 7064 check digit).
    DeTaxId,
    /// A UK National Insurance number.
    UkNino,
    /// A telephone number (E.164 or an EU national format), validated with libphonenumber data.
    Phone,
    /// An e-mail address.
    Email,
    /// An IPv4 or IPv6 address.
    IpAddress,
}

impl PiiType {
    /// Every type, most sensitive first.
    pub const ALL: [PiiType; 18] = [
        PiiType::CreditCard,
        PiiType::Iban,
        PiiType::ApiKey,
        PiiType::Ssn,
        PiiType::FrNir,
        PiiType::FrSiren,
        PiiType::FrSiret,
        PiiType::EsDni,
        PiiType::EsNie,
        PiiType::ItFiscalCode,
        PiiType::NlBsn,
        PiiType::BeNationalNumber,
        PiiType::PlPesel,
        PiiType::DeTaxId,
        PiiType::UkNino,
        PiiType::Phone,
        PiiType::Email,
        PiiType::IpAddress,
    ];

    /// Whether a value of this type carries a check digit, letter or character (so a
    /// mistyped one is not the type): cards, IBAN, NIR, SIREN, SIRET, DNI, NIE, codice fiscale,
    /// BSN, Belgian national number, PESEL, Steuer-ID.
    pub const fn has_checksum(self) -> bool {
        matches!(
            self,
            PiiType::CreditCard
                | PiiType::Iban
                | PiiType::FrNir
                | PiiType::FrSiren
                | PiiType::FrSiret
                | PiiType::EsDni
                | PiiType::EsNie
                | PiiType::ItFiscalCode
                | PiiType::NlBsn
                | PiiType::BeNationalNumber
                | PiiType::PlPesel
                | PiiType::DeTaxId
        )
    }

    /// The upper-case wire code (`CREDIT_CARD`, `FR_NIR`…).
    pub const fn code(self) -> &'static str {
        match self {
            PiiType::CreditCard => "CREDIT_CARD",
            PiiType::Iban => "IBAN",
            PiiType::ApiKey => "API_KEY",
            PiiType::Ssn => "SSN",
            PiiType::FrNir => "FR_NIR",
            PiiType::FrSiren => "FR_SIREN",
            PiiType::FrSiret => "FR_SIRET",
            PiiType::EsDni => "ES_DNI",
            PiiType::EsNie => "ES_NIE",
            PiiType::ItFiscalCode => "IT_FISCAL_CODE",
            PiiType::NlBsn => "NL_BSN",
            PiiType::BeNationalNumber => "BE_NATIONAL_NUMBER",
            PiiType::PlPesel => "PL_PESEL",
            PiiType::DeTaxId => "DE_TAX_ID",
            PiiType::UkNino => "UK_NINO",
            PiiType::Phone => "PHONE",
            PiiType::Email => "EMAIL",
            PiiType::IpAddress => "IP_ADDRESS",
        }
    }

    /// The type of a wire code, in any case, with the aliases clients use (`NIR`, `SIRET`,
    /// `SECRET`, `US_SSN`, `PHONE_NUMBER`…). `None` for a code this engine does not produce.
    pub fn from_code(code: &str) -> Option<PiiType> {
        let up = code.trim().to_ascii_uppercase().replace(['-', ' '], "_");
        if let Some(t) = PiiType::ALL.into_iter().find(|t| t.code() == up) {
            return Some(t);
        }
        Some(match up.as_str() {
            "NIR" => PiiType::FrNir,
            "SIRET" => PiiType::FrSiret,
            "SIREN" => PiiType::FrSiren,
            "SECRET" | "APIKEY" | "TOKEN" | "PRIVATE_KEY" => PiiType::ApiKey,
            "CARD" | "CREDITCARD" | "CC" => PiiType::CreditCard,
            "PHONE_NUMBER" => PiiType::Phone,
            "EMAIL_ADDRESS" => PiiType::Email,
            "IP" => PiiType::IpAddress,
            "US_SSN" => PiiType::Ssn,
            "DNI" | "ES_NIF" => PiiType::EsDni,
            "NIE" => PiiType::EsNie,
            "CODICE_FISCALE" | "IT_CF" => PiiType::ItFiscalCode,
            "BSN" => PiiType::NlBsn,
            "PESEL" => PiiType::PlPesel,
            "NINO" => PiiType::UkNino,
            "STEUER_ID" | "DE_STEUER_ID" => PiiType::DeTaxId,
            "BE_NRN" | "BE_NN" => PiiType::BeNationalNumber,
            _ => return None,
        })
    }

    /// How much harm the exposure of one value of this type can do, in 0..1: payment data and
    /// secrets 1 (money moves, systems open), bank accounts and national identifiers 0.9–0.95
    /// (identity theft, fraud), contact data 0.25–0.35, company numbers and IP addresses 0.2
    /// (often public). This is the first factor of [`crate::risk::score`].
    pub const fn sensitivity(self) -> f64 {
        match self {
            PiiType::CreditCard | PiiType::ApiKey => 1.0,
            PiiType::Iban => 0.95,
            PiiType::Ssn | PiiType::FrNir | PiiType::EsDni | PiiType::EsNie | PiiType::ItFiscalCode | PiiType::NlBsn => 0.9,
            PiiType::BeNationalNumber | PiiType::PlPesel | PiiType::DeTaxId | PiiType::UkNino => 0.9,
            PiiType::Phone => 0.35,
            PiiType::Email => 0.25,
            PiiType::FrSiren | PiiType::FrSiret | PiiType::IpAddress => 0.2,
        }
    }

    /// The sensitivity of a wire code a client sent; codes this engine does not know (a
    /// client's own `PERSON`, `MEDICAL`…) count as 0.5.
    pub fn sensitivity_of_code(code: &str) -> f64 {
        PiiType::from_code(code).map_or(UNKNOWN_SENSITIVITY, PiiType::sensitivity)
    }
}

impl std::fmt::Display for PiiType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::PiiType;

    #[test]
    fn codes_round_trip_and_aliases_are_read() {
        for t in PiiType::ALL {
            assert_eq!(PiiType::from_code(t.code()), Some(t));
            assert_eq!(PiiType::from_code(&t.code().to_ascii_lowercase()), Some(t));
        }
        assert_eq!(PiiType::from_code("nir"), Some(PiiType::FrNir));
        assert_eq!(PiiType::from_code("credit-card"), Some(PiiType::CreditCard));
        assert_eq!(PiiType::from_code("PERSON"), None);
        assert!((PiiType::sensitivity_of_code("PERSON") - 0.5).abs() < 1e-9);
    }
}
