//! Scanning a text of any size in bounded memory, fed in chunks.
//!
//! [`StreamScanner`] decodes what it is fed as UTF-8, keeps a window of the decoded text and
//! scans the window whenever it holds [`WINDOW`] bytes. Findings that start before the window's
//! last [`OVERLAP`] bytes are reported; the window then drops everything up to `OVERLAP` bytes
//! before that point, so the next scan sees every later candidate with all the context the
//! whole-text scan would give it (the engine keeps no candidate over 16 KiB and reads at most
//! 72 bytes of context before a candidate and 48 after, both well under `OVERLAP`). A finding starting before the point
//! already reported is skipped, so each is reported exactly once.
//!
//! The promise, tested with random chunkings: `feed` over any chunks then `finish` report what
//! [`Scanner::scan_bytes`] reports on the concatenated bytes, with the same offsets. Invalid
//! UTF-8 is read as `String::from_utf8_lossy` reads it (each invalid sequence one U+FFFD), also
//! when a sequence is split across chunks: an incomplete sequence at the end of a chunk (at most
//! three bytes) is held back until the next chunk completes it or `finish` ends the stream.
//! Byte offsets are therefore offsets in that decoded text; they are the input's offsets
//! whenever the input is valid UTF-8. One limit of the promise: the engine validates at most 64
//! phone candidates plus one per 8 bytes of the text it is given (a budget against texts made
//! of digit groups); a stream so dense with phone-like numbers that a window exhausts its budget
//! can check different candidates than a scan of the whole text would.
//!
//! Memory: the window (at most [`WINDOW`] plus the part of a chunk being decoded, three times
//! that for input made only of invalid bytes) whatever the size of the stream or of a chunk.
use crate::{Finding, Scanner};

/// The window is scanned when it holds this many bytes of decoded text (1 MiB).
pub const WINDOW: usize = 1 << 20;
/// Findings in the last this-many bytes of a window wait for the next one, and the next one
/// starts this many bytes before them (64 KiB): more than the longest candidate the engine keeps
/// plus its context on both sides.
pub const OVERLAP: usize = 64 << 10;

/// Where a finding starts in the stream: 1-based line and column. Lines end at `\n`; columns
/// count Unicode code points (a `\r` before the `\n` ends a line's last column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line number, from 1.
    pub line: usize,
    /// Column of the finding's first code point, from 1.
    pub column: usize,
}

/// Scans a stream fed in chunks of any size, in bounded memory, and reports each finding once
/// with offsets counted from the start of the stream.
///
/// ```
/// # use vigie_pii::{Scanner, stream::StreamScanner};
/// let scanner = Scanner::default();
/// let mut stream = StreamScanner::new(&scanner);
/// let mut findings = Vec::new();
/// for chunk in [&b"pay with 4532 01"[..], b"51 1283 0366 today"] {
///     findings.extend(stream.feed(chunk));
/// }
/// findings.extend(stream.finish());
/// assert_eq!(findings, scanner.scan("pay with 4532 0151 1283 0366 today"));
/// ```
#[derive(Debug)]
pub struct StreamScanner<'a> {
    scanner: &'a Scanner,
    window: Window,
}

impl<'a> StreamScanner<'a> {
    /// A stream scanner using `scanner`, with the default [`WINDOW`] and [`OVERLAP`].
    pub fn new(scanner: &'a Scanner) -> StreamScanner<'a> {
        StreamScanner::with_window(scanner, WINDOW, OVERLAP)
    }

    /// A stream scanner with other thresholds, so tests cross many windows with small texts.
    /// Findings equal the whole-text scan only while `overlap` exceeds the longest candidate
    /// in the text plus its context on both sides.
    ///
    /// # Panics
    /// When `window` is not more than twice `overlap` (the window could not move forward).
    #[doc(hidden)]
    pub fn with_window(scanner: &'a Scanner, window: usize, overlap: usize) -> StreamScanner<'a> {
        StreamScanner { scanner, window: Window::new(window, overlap) }
    }

    /// Reads the next `chunk` of the stream; returns the findings now certain, in order, with
    /// offsets from the start of the stream. Most calls return nothing: findings come out a
    /// window at a time.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Finding> {
        self.feed_located(chunk).into_iter().map(|(f, _)| f).collect()
    }

    /// Ends the stream; returns the findings not reported yet.
    pub fn finish(self) -> Vec<Finding> {
        self.finish_located().into_iter().map(|(f, _)| f).collect()
    }

    /// [`feed`](Self::feed), with the line and column where each finding starts.
    pub fn feed_located(&mut self, chunk: &[u8]) -> Vec<(Finding, Location)> {
        let scanner = self.scanner;
        self.window.feed(chunk, &|text| scanner.scan(text))
    }

    /// [`finish`](Self::finish), with the line and column where each finding starts.
    pub fn finish_located(mut self) -> Vec<(Finding, Location)> {
        let scanner = self.scanner;
        self.window.finish(&|text| scanner.scan(text))
    }

    /// How many bytes were fed so far.
    pub fn bytes_read(&self) -> u64 {
        self.window.input_bytes
    }
}

/// The decoding and windowing, apart from the engine so tests can drive it with a detector
/// whose findings are known.
#[derive(Debug)]
struct Window {
    window: usize,
    overlap: usize,
    /// The decoded text of the window: whole code points only.
    text: String,
    /// An incomplete UTF-8 sequence at the end of the input so far (at most 3 bytes).
    pending: Vec<u8>,
    /// Decoded bytes, code points, line breaks before `text`, and the code points between the
    /// last line break and `text`.
    base_bytes: usize,
    base_chars: usize,
    base_lines: usize,
    base_column: usize,
    /// Absolute decoded byte offset: every finding starting before it was reported.
    reported_to: usize,
    input_bytes: u64,
}

type Detect<'d> = &'d dyn Fn(&str) -> Vec<Finding>;

impl Window {
    fn new(window: usize, overlap: usize) -> Window {
        assert!(window > 2 * overlap, "the window ({window}) must be more than twice the overlap ({overlap})");
        Window {
            window,
            overlap,
            text: String::new(),
            pending: Vec::new(),
            base_bytes: 0,
            base_chars: 0,
            base_lines: 0,
            base_column: 0,
            reported_to: 0,
            input_bytes: 0,
        }
    }

    fn feed(&mut self, mut chunk: &[u8], detect: Detect<'_>) -> Vec<(Finding, Location)> {
        self.input_bytes += chunk.len() as u64;
        let mut out = Vec::new();
        loop {
            chunk = self.complete_pending(chunk);
            if chunk.is_empty() {
                break;
            }
            // Decode no more than fills the window, so a huge chunk never grows it.
            let room = self.window.saturating_sub(self.text.len()).max(1);
            let (piece, rest) = chunk.split_at(room.min(chunk.len()));
            self.decode(piece);
            chunk = rest;
            if self.text.len() >= self.window {
                out.extend(self.scan(false, detect));
            }
        }
        out
    }

    fn finish(&mut self, detect: Detect<'_>) -> Vec<(Finding, Location)> {
        if !self.pending.is_empty() {
            // `from_utf8_lossy` reads an incomplete sequence at the very end as one U+FFFD.
            self.pending.clear();
            self.text.push(char::REPLACEMENT_CHARACTER);
        }
        self.scan(true, detect)
    }

    /// Decodes `bytes` onto the text; an incomplete sequence at their end goes to `pending`.
    fn decode(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.utf8_chunks().peekable();
        while let Some(c) = chunks.next() {
            self.text.push_str(c.valid());
            let invalid = c.invalid();
            if invalid.is_empty() {
                continue;
            }
            let incomplete = matches!(std::str::from_utf8(invalid), Err(e) if e.error_len().is_none());
            if chunks.peek().is_none() && incomplete {
                self.pending.extend_from_slice(invalid);
            } else {
                self.text.push(char::REPLACEMENT_CHARACTER);
            }
        }
    }

    /// Decodes the units that start in `pending`, taking what they need from `chunk`; returns
    /// the rest of `chunk`.
    fn complete_pending<'c>(&mut self, chunk: &'c [u8]) -> &'c [u8] {
        if self.pending.is_empty() || chunk.is_empty() {
            return chunk;
        }
        let held = self.pending.len();
        // Three more bytes give every unit starting in `pending` the four bytes that decide it.
        let taken = chunk.len().min(3);
        let mut head = std::mem::take(&mut self.pending);
        head.extend_from_slice(&chunk[..taken]);
        let mut pos = 0;
        while pos < held {
            let unit = &head[pos..head.len().min(pos + 4)];
            match std::str::from_utf8(unit) {
                Err(e) if e.valid_up_to() == 0 => match e.error_len() {
                    Some(n) => {
                        self.text.push(char::REPLACEMENT_CHARACTER);
                        pos += n;
                    }
                    None => {
                        self.pending.extend_from_slice(&head[pos..]);
                        return &chunk[taken..];
                    }
                },
                ok => {
                    let valid = ok.map_or_else(|e| &unit[..e.valid_up_to()], str::as_bytes);
                    let c = std::str::from_utf8(valid).ok().and_then(|s| s.chars().next()).unwrap_or(char::REPLACEMENT_CHARACTER);
                    self.text.push(c);
                    pos += c.len_utf8();
                }
            }
        }
        &chunk[pos - held..]
    }

    /// Scans the window and reports the findings it settles; unless `last`, then drops the
    /// text the next window does not need.
    fn scan(&mut self, last: bool, detect: Detect<'_>) -> Vec<(Finding, Location)> {
        let found = detect(&self.text);
        let from = self.reported_to - self.base_bytes;
        let limit = if last { self.text.len() } else { self.text.len() - self.overlap };
        let mut at = Cursor { byte: 0, lines: self.base_lines, column: self.base_column };
        let mut out = Vec::new();
        for mut f in found {
            if f.byte_start < from || (f.byte_start >= limit && !last) {
                continue;
            }
            at.advance(&self.text, f.byte_start);
            let location = Location { line: at.lines + 1, column: at.column + 1 };
            f.start += self.base_chars;
            f.end += self.base_chars;
            f.byte_start += self.base_bytes;
            f.byte_end += self.base_bytes;
            out.push((f, location));
        }
        self.reported_to = self.base_bytes + limit;
        if !last {
            let mut cut = limit - self.overlap;
            while !self.text.is_char_boundary(cut) {
                cut -= 1;
            }
            let dropped = &self.text[..cut];
            let mut end = Cursor { byte: 0, lines: self.base_lines, column: self.base_column };
            end.advance(&self.text, cut);
            self.base_chars += dropped.chars().count();
            self.base_bytes += cut;
            self.base_lines = end.lines;
            self.base_column = end.column;
            self.text.drain(..cut);
        }
        out
    }
}

/// A position in the window's text, with the line breaks and column reached there.
struct Cursor {
    byte: usize,
    lines: usize,
    column: usize,
}

impl Cursor {
    /// Moves forward to `byte` (ignored if it is behind or not a code point boundary).
    fn advance(&mut self, text: &str, byte: usize) {
        let Some(segment) = text.get(self.byte..byte) else { return };
        match segment.rfind('\n') {
            Some(i) => {
                self.lines += segment.as_bytes()[..=i].iter().filter(|b| **b == b'\n').count();
                self.column = segment[i + 1..].chars().count();
            }
            None => self.column += segment.chars().count(),
        }
        self.byte = byte;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PiiType;
    use proptest::prelude::*;
    use std::sync::LazyLock;

    static SCANNER: LazyLock<Scanner> = LazyLock::new(Scanner::default);

    const CARD: &str = "4532 0151 1283 0366";
    const EMAIL: &str = "alice@acme.fr";

    /// A detector with the engine's locality: literal values, not glued to a letter or digit,
    /// scored higher when the word "card" is within 32 bytes before them.
    fn fake(text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        for (value, kind) in [(CARD, PiiType::CreditCard), (EMAIL, PiiType::Email)] {
            for (b, _) in text.match_indices(value) {
                let e = b + value.len();
                let glued = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
                if glued(text[..b].chars().next_back()) || glued(text[e..].chars().next()) {
                    continue;
                }
                let mut ctx = b.saturating_sub(32);
                while !text.is_char_boundary(ctx) {
                    ctx -= 1;
                }
                let start = text[..b].chars().count();
                out.push(Finding {
                    kind,
                    score: if text[ctx..b].contains("card") { 0.9 } else { 0.6 },
                    start,
                    end: start + value.chars().count(),
                    byte_start: b,
                    byte_end: e,
                    masked: crate::mask(kind.code(), value),
                    detail: None,
                });
            }
        }
        out.sort_by_key(|f| f.byte_start);
        out
    }

    fn feed_in(window: &mut Window, bytes: &[u8], sizes: &[usize]) -> Vec<(Finding, Location)> {
        let mut out = Vec::new();
        let mut rest = bytes;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(1).clamp(1, rest.len());
            let (chunk, tail) = rest.split_at(n);
            out.extend(window.feed(chunk, &fake));
            rest = tail;
            i += 1;
        }
        out.extend(window.finish(&fake));
        out
    }

    fn location_in(text: &str, start: usize) -> Location {
        let before: String = text.chars().take(start).collect();
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Location { line, column }
    }

    #[test]
    fn a_value_split_across_windows_and_chunks_is_reported_once_with_absolute_offsets() {
        let mut text = "é".repeat(150);
        text.push_str("\nmy card ");
        text.push_str(CARD);
        text.push_str(" and ");
        text.push_str(EMAIL);
        text.push('\n');
        text.push_str(&"日本".repeat(100));
        text.push(' ');
        text.push_str(EMAIL);
        for sizes in [vec![1], vec![2], vec![3, 5], vec![7, 1, 64], vec![1000]] {
            let mut w = Window::new(200, 64);
            let got = feed_in(&mut w, text.as_bytes(), &sizes);
            let want = fake(&text);
            assert_eq!(got.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>(), want, "chunks of {sizes:?}");
            assert_eq!(got[0].1, Location { line: 2, column: 9 });
            assert_eq!(got[1].1, Location { line: 2, column: 33 });
            assert_eq!(got[2].1, Location { line: 3, column: 202 }, "{sizes:?}");
            assert!(w.base_bytes > 0, "the test crossed no window");
        }
    }

    #[test]
    fn invalid_and_split_sequences_count_as_from_utf8_lossy_counts_them() {
        // A truncated 3-byte sequence, a lone continuation byte, an overlong lead, a 4-byte
        // char cut in the middle, and an incomplete sequence at the very end.
        let mut bytes = Vec::new();
        for _ in 0..4 {
            bytes.extend_from_slice(b"\xE2\x82x ");
            bytes.extend_from_slice(EMAIL.as_bytes());
            bytes.extend_from_slice(b" \x80\xC0\xAF\xF0\x9F\xA6\x80 ");
            bytes.extend_from_slice(EMAIL.as_bytes());
        }
        bytes.extend_from_slice(b" \xF0\x9F\xA6");
        let lossy = String::from_utf8_lossy(&bytes);
        for n in 1..=bytes.len() {
            let mut w = Window::new(120, 50);
            let got: Vec<Finding> = feed_in(&mut w, &bytes, &[n]).into_iter().map(|(f, _)| f).collect();
            assert_eq!(got, fake(&lossy), "chunks of {n}");
        }
    }

    #[test]
    fn a_huge_chunk_does_not_grow_the_window() {
        let text = format!("{}{EMAIL} ", "word ".repeat(10_000));
        let mut w = Window::new(1000, 100);
        let got = w.feed(text.as_bytes(), &fake);
        assert!(w.text.len() < 1100, "window grew to {}", w.text.len());
        assert!(got.is_empty());
        assert_eq!(w.finish(&fake).len(), 1);
    }

    #[test]
    fn an_empty_stream_reports_nothing_and_counts_bytes() {
        let mut s = StreamScanner::new(&SCANNER);
        assert!(s.feed(b"").is_empty());
        assert!(s.feed(b"hello").is_empty());
        assert_eq!(s.bytes_read(), 5);
        assert!(s.finish().is_empty());
    }

    /// Needs the engine: a card and an e-mail address fed a byte at a time, across windows.
    #[test]
    fn the_engine_finds_a_card_and_an_email_fed_a_byte_at_a_time() {
        let text = format!("{}\nmy card {CARD}, mail {EMAIL}\n", "é ".repeat(400));
        let mut s = StreamScanner::with_window(&SCANNER, 1024, 300);
        let mut got = Vec::new();
        for b in text.as_bytes() {
            got.extend(s.feed_located(std::slice::from_ref(b)));
        }
        got.extend(s.finish_located());
        let kinds: Vec<_> = got.iter().map(|(f, _)| f.kind).collect();
        assert_eq!(kinds, [PiiType::CreditCard, PiiType::Email]);
        let (card, at) = &got[0];
        assert_eq!((card.start, card.byte_start), (809, 1209));
        assert_eq!(*at, Location { line: 2, column: 9 });
        assert_eq!(card.masked, "****0366");
    }

    fn piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            CARD,
            EMAIL,
            "card",
            "carte bancaire",
            "mail",
            "lorem",
            "ipsum",
            "é",
            "日本語",
            "🦀",
            "naïve",
            "\n",
            " ",
            ", ",
            "x",
            "\u{FFFD}",
        ])
    }

    /// The pieces above and more values the engine finds, with the words that score them.
    fn engine_piece() -> impl Strategy<Value = &'static str> {
        let more = ["FR14 2004 1010 0505 0001 3M02 606", "IBAN", "+33 6 12 34 56 78", "tél", "192.168.1.20", "IP", "SIREN 732 829 320"];
        // Phone numbers stay sparse: the engine parses at most one per 128 bytes of a text, and
        // past that budget the whole text and its windows would check different ones.
        prop_oneof![8 => piece(), 1 => prop::sample::select(more.to_vec())]
    }

    fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
        prop::collection::vec(prop_oneof![Just(1usize), 1..8usize, 1..400usize], 1..6)
    }

    proptest! {
        #[test]
        fn any_chunking_reports_what_the_whole_text_scan_reports(
            pieces in prop::collection::vec(piece(), 0..400),
            bad in prop::collection::vec((0..400usize, prop::sample::select(vec![&b"\xFF"[..], b"\xE2\x82", b"\xF0\x9F", b"\xC3"])), 0..4),
            sizes in chunk_sizes(),
        ) {
            let mut bytes = Vec::new();
            for (i, p) in pieces.iter().enumerate() {
                for (at, b) in &bad {
                    if *at == i {
                        bytes.extend_from_slice(b);
                    }
                }
                bytes.extend_from_slice(p.as_bytes());
            }
            let lossy = String::from_utf8_lossy(&bytes);
            let mut w = Window::new(300, 100);
            let got = feed_in(&mut w, &bytes, &sizes);
            let want = fake(&lossy);
            prop_assert_eq!(got.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>(), want);
            for (f, at) in &got {
                prop_assert_eq!(*at, location_in(&lossy, f.start));
            }
        }

        /// The same with the engine: meaningful once it finds things, and true of the stub.
        #[test]
        fn the_engine_streamed_agrees_with_the_engine_on_the_whole_text(
            pieces in prop::collection::vec(engine_piece(), 0..300),
            sizes in chunk_sizes(),
        ) {
            // Separators keep every token short, as the small overlap needs.
            let text = pieces.join(" and ");
            let mut s = StreamScanner::with_window(&SCANNER, 1024, 300);
            let mut got = Vec::new();
            let mut rest = text.as_bytes();
            let mut i = 0;
            while !rest.is_empty() {
                let (chunk, tail) = rest.split_at(sizes[i % sizes.len()].clamp(1, rest.len()));
                got.extend(s.feed(chunk));
                rest = tail;
                i += 1;
            }
            got.extend(s.finish());
            prop_assert_eq!(got, SCANNER.scan(&text));
        }
    }
}
