//! The scanner: one pass over a text, validators on candidates only.
//!
//! The pass walks the bytes with a 256-entry class table. Between words it only looks at a few
//! trigger bytes (`@` for e-mail addresses, `+` and `(` before digits for phone numbers, `-`
//! for a private key block, `::` for IPv6). At each word (a run of ASCII letters, digits and
//! `_`) it has the word's shape from the same loop — has digits, upper, lower, underscore,
//! length — and hands the word to a recognizer only when the shape admits one: a word starting
//! with a digit to the numeric recognizer (cards, IBAN-less national numbers, phones, IPv4…),
//! a letter word holding digits to the coded-identifier recognizers (IBAN, NIE, codice fiscale,
//! NINO), a word starting with a known key prefix to the secret recognizer, a word that names a
//! secret (`password`, `token`, `clé`…) to the high-entropy look-ahead. Plain prose words take
//! a handful of comparisons each. Recognizers validate only their candidate and return where
//! the pass resumes, so no byte is scanned twice except inside a candidate.
use crate::context::{Context, Signals};
use crate::recognizers::{email, ids, ip, numeric, secrets};
use crate::{Finding, PiiType, mask};

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
/// loads the phone metadata and compiles the context-word automaton.
#[derive(Debug, Clone)]
pub struct Scanner {
    options: ScannerOptions,
    pub(crate) context: Context,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner::new(ScannerOptions::default())
    }
}

/// The longest candidate kept (a private key block); longer ones are cut there.
pub const MAX_CANDIDATE: usize = 16 * 1024;

pub(crate) const WORD: u8 = 1;
pub(crate) const DIGIT: u8 = 2;
pub(crate) const UPPER: u8 = 4;
pub(crate) const LOWER: u8 = 8;
pub(crate) const UNDERSCORE: u8 = 16;

/// Byte classes: every ASCII letter, digit and `_` has `WORD` and its own bit; others are 0.
pub(crate) static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c.is_ascii_digit() {
            WORD | DIGIT
        } else if c.is_ascii_uppercase() {
            WORD | UPPER
        } else if c.is_ascii_lowercase() {
            WORD | LOWER
        } else if c == b'_' {
            WORD | UNDERSCORE
        } else {
            0
        };
        i += 1;
    }
    t
};

/// Whether `b` is an ASCII letter, digit or `_`.
#[inline]
pub(crate) fn is_word(b: u8) -> bool {
    CLASS[b as usize] & WORD != 0
}

/// A finding before offsets and masking.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Raw {
    pub kind: PiiType,
    pub score: f64,
    pub start: usize,
    pub end: usize,
    pub detail: Option<&'static str>,
}

/// The state of one scan.
pub(crate) struct Scan<'a> {
    pub text: &'a [u8],
    pub scanner: &'a Scanner,
    pub found: Vec<Raw>,
    /// Phone-number validations left (one per region tried), so a text made of digit groups
    /// cannot make the scan slow: 64, plus one per 8 bytes — far more than real text uses.
    pub phone_budget: usize,
}

impl Scan<'_> {
    /// Records a candidate that scored at least the threshold.
    pub fn push(&mut self, kind: PiiType, score: f64, start: usize, end: usize, detail: Option<&'static str>) {
        if score >= self.scanner.options.min_score {
            self.found.push(Raw { kind, score: score.clamp(0.0, 1.0), start, end, detail });
        }
    }

    /// The context words around `text[start..end]`.
    pub fn signals(&self, start: usize, end: usize) -> Signals {
        self.scanner.context.around(self.text, start, end)
    }
}

/// A validated candidate's score after its context: `boost` when a word of its type is near,
/// minus 0.35 when only a negative word (order, invoice, version…) is.
pub(crate) fn contextual(base: f64, boost: f64, s: Signals, kind: PiiType) -> f64 {
    if s.has(kind) {
        (base + boost).min(0.99)
    } else if s.negative {
        base - 0.35
    } else {
        base
    }
}

impl Scanner {
    /// A scanner with these options.
    pub fn new(options: ScannerOptions) -> Scanner {
        numeric::warm_up();
        Scanner { options, context: Context::new() }
    }

    /// The options it was built with.
    pub fn options(&self) -> &ScannerOptions {
        &self.options
    }

    /// The findings in `text`, in order of their start, none overlapping.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let b = text.as_bytes();
        let mut scan = Scan { text: b, scanner: self, found: Vec::new(), phone_budget: 64 + b.len() / 8 };
        let mut i = 0;
        let n = b.len();
        while i < n {
            let c = b[i];
            if CLASS[c as usize] & WORD == 0 {
                i = match c {
                    b'@' => email::at(&mut scan, i),
                    b'-' => secrets::pem(&mut scan, i),
                    b'+' | b'(' if i + 1 < n && b[i + 1].is_ascii_digit() && (i == 0 || !is_word(b[i - 1])) => numeric::at(&mut scan, i),
                    b':' if i + 1 < n && b[i + 1] == b':' && (i == 0 || !is_word(b[i - 1])) => ip::v6(&mut scan, i),
                    _ => None,
                }
                .unwrap_or(i + 1);
                continue;
            }
            let start = i;
            let mut shape = 0u8;
            while i < n {
                let k = CLASS[b[i] as usize];
                if k & WORD == 0 {
                    break;
                }
                shape |= k;
                i += 1;
            }
            // A recognizer may consume more than the word, never less: resuming inside it
            // would read its tail as a word of its own (`0x8006740a` → `x8006740a`).
            if let Some(resume) = self.word(&mut scan, start, i, shape) {
                i = resume.max(i);
            }
        }
        self.finish(text, scan.found)
    }

    /// Hands the word `text[start..end]` of this `shape` to the recognizers its shape admits;
    /// the position to resume at when one consumed more than the word.
    fn word(&self, scan: &mut Scan<'_>, start: usize, end: usize, shape: u8) -> Option<usize> {
        let b = scan.text;
        let first = b[start];
        let next = b.get(end).copied().unwrap_or(0);
        if first.is_ascii_digit() {
            if next == b':'
                && end - start <= 4
                && let Some(r) = ip::v6(scan, start)
            {
                return Some(r);
            }
            return numeric::at(scan, start);
        }
        if let Some(r) = secrets::prefixed(scan, start, end, next) {
            return Some(r);
        }
        if shape & DIGIT != 0 {
            if next == b':'
                && end - start <= 4
                && b[start..end].iter().all(u8::is_ascii_hexdigit)
                && let Some(r) = ip::v6(scan, start)
            {
                return Some(r);
            }
            if let Some(r) = ids::coded(scan, start, end) {
                return Some(r);
            }
        } else if next == b':' && end - start <= 4 && b[start..end].iter().all(u8::is_ascii_hexdigit) {
            if let Some(r) = ip::v6(scan, start) {
                return Some(r);
            }
        } else if end - start == 1 && next == b'-' && matches!(first, b'X' | b'Y' | b'Z') {
            if let Some(r) = ids::nie_dashed(scan, start) {
                return Some(r);
            }
        } else if end - start == 2 && shape == WORD | UPPER && next == b' ' {
            if let Some(r) = ids::nino_spaced(scan, start) {
                return Some(r);
            }
        } else if end - start == 16
            && let Some(r) = ids::coded(scan, start, end)
        {
            return Some(r);
        }
        secrets::keyword(scan, start, end, shape)
    }

    /// Resolves overlaps (the stronger of two overlapping findings stays), then computes
    /// code-point offsets and masked values in one forward walk.
    fn finish(&self, text: &str, mut raw: Vec<Raw>) -> Vec<Finding> {
        if raw.is_empty() {
            return Vec::new();
        }
        raw.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let mut kept: Vec<Raw> = Vec::with_capacity(raw.len());
        for r in raw {
            match kept.last_mut() {
                Some(last) if r.start < last.end => {
                    if weight(&r) > weight(last) {
                        *last = r;
                    }
                }
                _ => kept.push(r),
            }
        }
        let b = text.as_bytes();
        let mut pos = 0usize;
        let mut chars = 0usize;
        let mut out = Vec::with_capacity(kept.len());
        let advance = |to: usize, pos: &mut usize, chars: &mut usize| {
            *chars += b[*pos..to].iter().filter(|&&c| (c as i8) >= -0x40).count();
            *pos = to;
        };
        for r in kept {
            // Every recognizer ends its candidates on character boundaries; a candidate that
            // did not would be dropped here rather than panic on the slice.
            let Some(value) = text.get(r.start..r.end) else {
                debug_assert!(false, "a candidate off a character boundary");
                continue;
            };
            advance(r.start, &mut pos, &mut chars);
            let start = chars;
            advance(r.end, &mut pos, &mut chars);
            out.push(Finding {
                kind: r.kind,
                score: (r.score * 100.0).round() / 100.0,
                start,
                end: chars,
                byte_start: r.start,
                byte_end: r.end,
                masked: mask(r.kind.code(), value),
                detail: r.detail,
            });
        }
        out
    }

    /// The findings in `bytes`, read as UTF-8 where it is valid: each invalid sequence counts
    /// as one code point (U+FFFD, as `String::from_utf8_lossy` has it) and never matches. Byte
    /// offsets refer to that lossy text.
    pub fn scan_bytes(&self, bytes: &[u8]) -> Vec<Finding> {
        self.scan(&String::from_utf8_lossy(bytes))
    }
}

fn weight(r: &Raw) -> f64 {
    r.kind.sensitivity() * r.score
}
