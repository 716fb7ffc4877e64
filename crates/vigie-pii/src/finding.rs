//! A finding: one piece of sensitive data in a text.
use crate::PiiType;

/// One piece of sensitive data found in a text. It holds the masked value only: the raw
/// match never leaves the scanner.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// What was found.
    pub kind: PiiType,
    /// Confidence in 0..1: the validator's verdict adjusted by the context words around it.
    pub score: f64,
    /// First code point of the match (0-based, inclusive).
    pub start: usize,
    /// Code point after the match (exclusive).
    pub end: usize,
    /// First byte of the match in the UTF-8 text (inclusive).
    pub byte_start: usize,
    /// Byte after the match (exclusive).
    pub byte_end: usize,
    /// The value masked by [`crate::mask`] (`****9010`, `a***@acme.fr`).
    pub masked: String,
    /// What exactly matched, when a type has variants (`visa`, `github_token`, `aws_access_key`,
    /// `private_key`, `ipv6`…).
    pub detail: Option<&'static str>,
}
