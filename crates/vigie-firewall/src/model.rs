//! The firewall's vocabulary: interaction enums, classification type codes, risk bands and
//! policy actions. Pure types, no I/O.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),* }
        /// Read case-insensitively: `Block`, `BLOCK` and `block` are the same value.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s.to_ascii_lowercase())
                    .ok_or_else(|| serde::de::Error::custom(format!("unknown value (not shown), expected one of {}", $name::expected())))
            }
        }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            /// The wire and stored spelling.
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $s),* } }
            /// Parses the wire spelling.
            pub fn parse(s: &str) -> Option<$name> { match s { $($s => Some($name::$variant),)* _ => None } }
            /// The accepted spellings, for error messages.
            pub fn expected() -> String { [$($s),*].join(", ") }
        }
    };
}

wire_enum!(
    /// What kind of content an interaction carried.
    InteractionType { /// A user's prompt.
        Prompt = "prompt", /// A model's answer.
        Completion = "completion", /// A tool call.
        ToolCall = "tool_call", /// An embedding request.
        Embedding = "embedding" }
);
wire_enum!(
    /// Which way the content went.
    Direction { /// User to AI.
        Outbound = "outbound", /// AI to user.
        Inbound = "inbound" }
);
wire_enum!(
    /// What recorded the interaction.
    Source { /// The browser extension.
        BrowserExtension = "browser_extension", /// A forward proxy.
        Proxy = "proxy", /// An endpoint agent.
        EndpointAgent = "endpoint_agent", /// A direct API client.
        Api = "api" }
);
wire_enum!(
    /// What a policy does to a matching interaction.
    Action { /// Stop it before it reaches the AI service.
        Block = "block", /// Warn the user, who may go on.
        Coach = "coach", /// Record it silently.
        Log = "log" }
);
wire_enum!(
    /// The risk band of a score: minimal < 0.1 ≤ low < 0.3 ≤ medium < 0.7 ≤ high < 0.9 ≤ critical.
    RiskLevel { /// Below 0.1.
        Minimal = "minimal", /// 0.1 to 0.3.
        Low = "low", /// 0.3 to 0.7.
        Medium = "medium", /// 0.7 to 0.9.
        High = "high", /// 0.9 and above.
        Critical = "critical" }
);
wire_enum!(
    /// Severity of an alert the firewall raises.
    Severity { /// Low.
        Low = "low", /// Medium.
        Medium = "medium", /// High.
        High = "high", /// Critical.
        Critical = "critical" }
);

impl RiskLevel {
    /// The band of `score` (0..1).
    pub fn of(score: f64) -> RiskLevel {
        match score {
            s if s >= 0.9 => RiskLevel::Critical,
            s if s >= 0.7 => RiskLevel::High,
            s if s >= 0.3 => RiskLevel::Medium,
            s if s >= 0.1 => RiskLevel::Low,
            _ => RiskLevel::Minimal,
        }
    }
}

impl Severity {
    /// The alert severity of a risk score: its band, with minimal counted as low.
    pub fn of(score: f64) -> Severity {
        match RiskLevel::of(score) {
            RiskLevel::Critical => Severity::Critical,
            RiskLevel::High => Severity::High,
            RiskLevel::Medium => Severity::Medium,
            RiskLevel::Low | RiskLevel::Minimal => Severity::Low,
        }
    }
}

/// Normalises a classification type code: upper case, known aliases mapped (`nir` → `FR_NIR`,
/// `SIRET` → `FR_SIRET`, `SECRET` → `API_KEY`…). `None` when it cannot be a type code.
pub fn normalize_type(raw: &str) -> Option<String> {
    if let Some(t) = vigie_pii::PiiType::from_code(raw) {
        return Some(t.code().to_owned());
    }
    let up = raw.trim().to_ascii_uppercase().replace(['-', ' '], "_");
    // A code holds at most three digits (`PHONE_E164`): more would let a number ride in the type, which is
    // stored and emitted as it is (`card 4532015112830366` is no type).
    let valid = !up.is_empty()
        && up.chars().filter(char::is_ascii_digit).count() <= 3
        && up.len() <= 48
        && up.starts_with(|c: char| c.is_ascii_uppercase())
        && up.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    valid.then_some(up)
}

/// Normalises a platform id (lower case); `None` when it is not a plausible id.
pub fn normalize_platform(raw: &str) -> Option<String> {
    let id = raw.trim().to_ascii_lowercase();
    let valid = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    valid.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_bands_have_the_documented_edges() {
        let cases = [
            (0.0, RiskLevel::Minimal),
            (0.099, RiskLevel::Minimal),
            (0.1, RiskLevel::Low),
            (0.3, RiskLevel::Medium),
            (0.69, RiskLevel::Medium),
            (0.7, RiskLevel::High),
            (0.9, RiskLevel::Critical),
            (1.0, RiskLevel::Critical),
        ];
        for (s, l) in cases {
            assert_eq!(RiskLevel::of(s), l, "score {s}");
        }
        assert_eq!(Severity::of(0.05), Severity::Low);
    }

    #[test]
    fn type_codes_are_normalised_and_aliases_mapped() {
        assert_eq!(normalize_type("nir").as_deref(), Some("FR_NIR"));
        assert_eq!(normalize_type("SIRET").as_deref(), Some("FR_SIRET"));
        assert_eq!(normalize_type("credit_card").as_deref(), Some("CREDIT_CARD"));
        assert_eq!(normalize_type("Secret").as_deref(), Some("API_KEY"));
        assert_eq!(normalize_type("medical_term").as_deref(), Some("MEDICAL_TERM"));
        assert_eq!(normalize_type("1abc"), None);
        assert_eq!(normalize_type("a;b"), None);
        // Every alias the engine knows, and no number riding in a type.
        assert_eq!(normalize_type("codice fiscale").as_deref(), Some("IT_FISCAL_CODE"));
        assert_eq!(normalize_type("private_key").as_deref(), Some("API_KEY"));
        assert_eq!(normalize_type("card 4532015112830366"), None);
        assert_eq!(normalize_type("ISO27001"), None);
        assert_eq!(normalize_type("PHONE_E164").as_deref(), Some("PHONE_E164"));
    }
}
