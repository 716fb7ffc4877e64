//! A text sent for scanning: its size checked, hashed, scanned by the detection engine (off the
//! async threads when it is long), and its findings merged with the client's classifications.
//! The text goes no further than this module: what leaves it is the hash, the length and
//! masked findings.
use super::Classification;
use crate::state::{FirewallState, ScanEndpoint, ScanLabels};
use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use std::time::Instant;
use vigie_core::http::ApiError;
use vigie_pii::risk::{RiskInput, score};
use vigie_pii::{Finding, Scanner};

/// Texts up to this size are scanned on the request's own task; longer ones on the blocking
/// pool, so a few large texts cannot stall the async threads (a 1 MiB text takes milliseconds).
pub const INLINE_SCAN_MAX: usize = 64 * 1024;

/// The confidence given to a classification that carries no score.
pub const DEFAULT_CONFIDENCE: f64 = 0.8;

/// What the server learnt from a text: nothing of the text itself remains.
#[derive(Debug, Clone)]
pub struct ScannedText {
    /// SHA-256 of the UTF-8 text, lower-case hex.
    pub content_hash: String,
    /// Length of the text in Unicode code points.
    pub content_length: u64,
    /// What the engine found, values masked.
    pub findings: Vec<Finding>,
}

/// Which endpoint a scan served, for the metrics.
#[derive(Debug, Clone, Copy)]
pub enum ScanOrigin {
    /// `POST /api/v1/interactions`.
    Interactions,
    /// `POST /api/v1/scan`.
    Scan,
}

impl ScanOrigin {
    fn label(self) -> &'static str {
        match self {
            ScanOrigin::Interactions => "interactions",
            ScanOrigin::Scan => "scan",
        }
    }
}

/// Checks the text's size, then hashes and scans it; the text is dropped before this returns.
/// `field` names the text in the request, for the 413 message.
pub async fn scan(st: &FirewallState, text: String, field: &str, origin: ScanOrigin) -> Result<ScannedText, ApiError> {
    let max = st.settings.max_text_bytes;
    if text.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "text_too_large",
            format!(
                "{field} is {} bytes, more than the {max} this server scans (max_text_bytes); send a shorter text, or split it",
                text.len()
            ),
        ));
    }
    let started = Instant::now();
    let scanned = if text.len() > INLINE_SCAN_MAX {
        let scanner = st.scanner.clone();
        // A failed task's error quotes its panic message, which may quote the text: not logged.
        tokio::task::spawn_blocking(move || analyse(&scanner, text)).await.map_err(|_| ApiError::internal("the text scan failed"))?
    } else {
        analyse(&st.scanner, text)
    };
    scanned_one(st, origin, started, &scanned);
    Ok(scanned)
}

/// Hashes and scans `text`, then drops it.
pub fn analyse(scanner: &Scanner, text: String) -> ScannedText {
    let findings = scanner.scan(&text);
    ScannedText { content_hash: format!("{:x}", Sha256::digest(text.as_bytes())), content_length: text.chars().count() as u64, findings }
}

/// The one definition of "a text was scanned": its metrics and its debug line (counts only).
fn scanned_one(st: &FirewallState, origin: ScanOrigin, started: Instant, scanned: &ScannedText) {
    let seconds = started.elapsed().as_secs_f64();
    let endpoint = origin.label();
    let outcome = if scanned.findings.is_empty() { "clean" } else { "findings" };
    st.stats.scans.get_or_create(&ScanLabels { endpoint, outcome }).inc();
    st.stats.scan_seconds.get_or_create(&ScanEndpoint { endpoint }).observe(seconds);
    tracing::debug!(endpoint, length = scanned.content_length, findings = scanned.findings.len(), seconds, "text scanned");
}

/// A finding as a stored classification (value masked, offsets in code points).
pub fn classification(f: &Finding) -> Classification {
    let offset = |n: usize| Some(u32::try_from(n).unwrap_or(u32::MAX));
    Classification {
        kind: f.kind.code().to_owned(),
        value: Some(f.masked.clone()),
        score: Some(f.score),
        start: offset(f.start),
        end: offset(f.end),
        count: None,
    }
}

/// The server's findings, then the client's classifications that do not repeat one of them.
/// A client classification repeats a finding when it has the same type and its span overlaps
/// the finding's, or, when it gives no span, the same masked value.
///
/// The finding keeps the higher of the two confidences: sending the text must never lower the
/// risk below what the client's classifications alone would give.
pub fn merge(mut server: Vec<Classification>, client: Vec<Classification>) -> Vec<Classification> {
    let repeats = |s: &Classification, c: &Classification| {
        s.kind == c.kind
            && match (c.start, c.end, s.start, s.end) {
                (Some(cs), Some(ce), Some(ss), Some(se)) => cs < se && ss < ce.max(cs + 1),
                _ => c.value.is_some() && c.value == s.value,
            }
    };
    let mut kept = Vec::new();
    for c in client {
        match server.iter_mut().find(|s| repeats(s, &c)) {
            Some(s) => {
                if let Some(cs) = c.score {
                    s.score = Some(s.score.map_or(cs, |ss| ss.max(cs)));
                }
            }
            None => kept.push(c),
        }
    }
    server.extend(kept);
    server
}

/// The server's risk score of `classifications` ([`vigie_pii::risk::score`]: sensitivity of
/// each type, its confidence or [`DEFAULT_CONFIDENCE`], its count), rounded to 4 decimals.
pub fn risk_of(classifications: &[Classification], vetted: bool) -> f64 {
    let inputs = classifications.iter().map(|c| RiskInput {
        code: &c.kind,
        confidence: c.score.unwrap_or(DEFAULT_CONFIDENCE),
        count: c.count.unwrap_or(1),
    });
    (score(inputs, vetted) * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sending_the_text_never_lowers_the_clients_confidence() {
        // Found in review: the server's weaker duplicate replaced the client's 0.99 card.
        let server = vec![c("CREDIT_CARD", Some("****0366"), Some((7, 26)))];
        let mut client = c("CREDIT_CARD", Some("****0366"), Some((7, 26)));
        client.score = Some(0.99);
        let merged = merge(server, vec![client]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].score, Some(0.99));
        assert!(risk_of(&merged, false) > 0.99);
    }

    fn c(kind: &str, value: Option<&str>, span: Option<(u32, u32)>) -> Classification {
        Classification {
            kind: kind.into(),
            value: value.map(str::to_owned),
            score: Some(0.9),
            start: span.map(|s| s.0),
            end: span.map(|s| s.1),
            count: None,
        }
    }

    #[test]
    fn a_client_classification_repeating_a_finding_gives_way_to_it() {
        let server = vec![c("CREDIT_CARD", Some("****0366"), Some((8, 27))), c("EMAIL", Some("a***@acme.fr"), Some((40, 53)))];
        let client = vec![
            c("CREDIT_CARD", Some("****0366"), Some((10, 20))), // overlaps: dropped
            c("CREDIT_CARD", Some("****1111"), Some((27, 43))), // touches the end only: kept
            c("EMAIL", None, Some((0, 8))),                     // same type, elsewhere: kept
            c("PHONE", None, Some((40, 53))),                   // another type on the same span: kept
            c("EMAIL", Some("a***@acme.fr"), None),             // no span, same masked value: dropped
            c("EMAIL", Some("b***@acme.fr"), None),             // no span, another value: kept
        ];
        let merged = merge(server.clone(), client);
        let kinds: Vec<_> = merged.iter().map(|m| (m.kind.as_str(), m.value.as_deref(), m.start)).collect();
        assert_eq!(
            kinds,
            [
                ("CREDIT_CARD", Some("****0366"), Some(8)),
                ("EMAIL", Some("a***@acme.fr"), Some(40)),
                ("CREDIT_CARD", Some("****1111"), Some(27)),
                ("EMAIL", None, Some(0)),
                ("PHONE", None, Some(40)),
                ("EMAIL", Some("b***@acme.fr"), None),
            ]
        );
    }

    #[test]
    fn the_risk_of_classifications_follows_the_engine_formula() {
        assert_eq!(risk_of(&[], false), 0.0);
        let card = [c("CREDIT_CARD", None, None)];
        assert!(risk_of(&card, true) > 0.89 && risk_of(&card, false) > risk_of(&card, true));
        let unscored = [Classification { score: None, ..c("CREDIT_CARD", None, None) }];
        assert_eq!(risk_of(&unscored, true), 0.8, "an unscored classification counts with confidence 0.8");
        let many = [Classification { count: Some(3), ..c("EMAIL", None, None) }];
        assert!(risk_of(&many, true) > risk_of(&[c("EMAIL", None, None)], true));
    }

    #[test]
    fn a_text_is_hashed_and_measured_in_code_points() {
        let s = analyse(&Scanner::default(), "héllo".into());
        assert_eq!(s.content_hash, "3c48591d8d098a4538f5e013dfcf406e948eac4d3277b10bf614e295d6068179");
        assert_eq!(s.content_length, 5);
    }
}
