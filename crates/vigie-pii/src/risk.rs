//! The risk score of a set of findings: a documented, deterministic function.
//!
//! Each finding weighs `sensitivity(type) × confidence × ½^k`, where `k` is its rank among the
//! findings of the same type (0 for the most confident): a second e-mail address adds half of
//! what the first did, a third a quarter, so volume counts without a list of addresses ever
//! weighing like a card number. The weights combine as independent chances of harm:
//!
//! ```text
//! risk = 1 − Π (1 − weightᵢ)
//! ```
//!
//! so every further finding raises the score, the worst finding sets its floor, and the
//! result stays within 0..1. An unvetted platform (no data processing agreement, unknown
//! retention) then raises it: `risk = 1 − (1 − risk)^1.25`. No finding means 0.
//!
//! Worked figures: one valid card number (sensitivity 1, confidence 0.97) gives 0.97; one
//! IBAN (0.95 × 0.98) 0.93; one e-mail address (0.25 × 0.95) 0.24 on a vetted platform and
//! 0.29 on an unvetted one (the low band, 0.1–0.3); ten e-mail addresses stay in the medium
//! band (0.40 vetted, 0.48 unvetted).
use crate::PiiType;

/// The factor of each further finding of one type.
pub const REPEAT_DECAY: f64 = 0.5;
/// The exponent applied to `1 − risk` on an unvetted platform.
pub const UNVETTED_EXPONENT: f64 = 1.25;
/// Findings of one type beyond this many add nothing measurable (½^16 ≈ 0.00002).
const MAX_RANK: u32 = 16;

/// One input of the score: a finding, or a client's classification (which may stand for
/// several matches through `count`).
#[derive(Debug, Clone, Copy)]
pub struct RiskInput<'a> {
    /// The type's wire code; unknown codes weigh [`PiiType::sensitivity_of_code`]'s default.
    pub code: &'a str,
    /// Confidence in 0..1 (clamped).
    pub confidence: f64,
    /// How many matches this input stands for (at least 1).
    pub count: u32,
}

/// The risk score of `inputs` on a platform that is `vetted` or not. Deterministic: the same
/// inputs in any order give the same score.
pub fn score<'a>(inputs: impl IntoIterator<Item = RiskInput<'a>>, vetted: bool) -> f64 {
    // (normalised code, sensitivity, confidence, count), sorted so ranks are order-independent.
    let mut items: Vec<(String, f64, f64, u32)> = inputs
        .into_iter()
        .map(|i| {
            let known = PiiType::from_code(i.code);
            let code = known.map_or_else(|| i.code.trim().to_ascii_uppercase(), |t| t.code().to_owned());
            let sensitivity = known.map_or(crate::kind::UNKNOWN_SENSITIVITY, PiiType::sensitivity);
            let confidence = if i.confidence.is_nan() { 0.0 } else { i.confidence.clamp(0.0, 1.0) };
            (code, sensitivity, confidence, i.count.max(1))
        })
        .collect();
    if items.is_empty() {
        return 0.0;
    }
    items.sort_by(|a, b| a.0.cmp(&b.0).then(b.2.total_cmp(&a.2)));
    let mut safe = 1.0_f64;
    let mut rank = 0u32;
    for (i, (code, sensitivity, confidence, count)) in items.iter().enumerate() {
        if i > 0 && items[i - 1].0 != *code {
            rank = 0;
        }
        for _ in 0..*count {
            if rank >= MAX_RANK {
                break;
            }
            safe *= 1.0 - sensitivity * confidence * REPEAT_DECAY.powi(rank as i32);
            rank += 1;
        }
    }
    if !vetted {
        safe = safe.powf(UNVETTED_EXPONENT);
    }
    (1.0 - safe).clamp(0.0, 1.0)
}

/// The score of scanner findings.
pub fn of_findings(findings: &[crate::Finding], vetted: bool) -> f64 {
    score(findings.iter().map(|f| RiskInput { code: f.kind.code(), confidence: f.score, count: 1 }), vetted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(code: &str, confidence: f64, vetted: bool) -> f64 {
        score([RiskInput { code, confidence, count: 1 }], vetted)
    }

    #[test]
    fn the_documented_figures_hold() {
        assert!(one("CREDIT_CARD", 0.97, true) > 0.9);
        assert!(one("IBAN", 0.98, true) > 0.9);
        let email = one("EMAIL", 0.95, true);
        assert!((0.1..0.3).contains(&email), "{email}");
        let email = one("EMAIL", 0.95, false);
        assert!((0.1..0.3).contains(&email), "{email}");
        let ten = score([RiskInput { code: "EMAIL", confidence: 0.95, count: 10 }], false);
        assert!((0.3..0.5).contains(&ten), "{ten}");
        assert_eq!(score([], false), 0.0);
    }

    #[test]
    fn more_and_worse_findings_raise_the_score_and_order_does_not_matter() {
        let a = RiskInput { code: "EMAIL", confidence: 0.9, count: 1 };
        let b = RiskInput { code: "PHONE", confidence: 0.8, count: 1 };
        let c = RiskInput { code: "email", confidence: 0.6, count: 2 };
        let s1 = score([a], true);
        let s2 = score([a, b], true);
        let s3 = score([a, b, c], true);
        assert!(s1 < s2 && s2 < s3);
        assert_eq!(score([c, b, a], true), s3);
        assert!(score([a, b, c], false) > s3);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn input() -> impl Strategy<Value = (String, f64, u32)> {
        (prop::sample::select(vec!["EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "PERSON", "nir", "ssn"]), -0.5..1.5f64, 0..5u32)
            .prop_map(|(c, s, n)| (c.to_owned(), s, n))
    }

    proptest! {
        #[test]
        fn the_score_is_bounded_and_monotone(items in prop::collection::vec(input(), 0..12), extra in input(), vetted: bool) {
            let base = score(items.iter().map(|(c, s, n)| RiskInput { code: c, confidence: *s, count: *n }), vetted);
            prop_assert!((0.0..=1.0).contains(&base));
            let more = score(items.iter().chain([&extra]).map(|(c, s, n)| RiskInput { code: c, confidence: *s, count: *n }), vetted);
            prop_assert!(more >= base - 1e-12, "{more} < {base}");
        }
    }
}
