//! Untrusted input: any bytes, scanned as the firewall scans a prompt (lossy UTF-8). Must never
//! panic, and what it reports must be consistent: ordered, non-overlapping findings inside the
//! text, with code-point offsets that agree with the byte offsets, scores in 0..1, and masked
//! values that never hold more than four characters of the match.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use vigie_pii::Scanner;

static SCANNER: LazyLock<Scanner> = LazyLock::new(Scanner::default);

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let findings = SCANNER.scan(&text);
    let mut last_end = 0;
    for f in &findings {
        assert!(f.byte_start < f.byte_end && f.byte_end <= text.len());
        assert!(f.byte_start >= last_end, "overlap");
        last_end = f.byte_end;
        assert!(text.is_char_boundary(f.byte_start) && text.is_char_boundary(f.byte_end));
        assert_eq!(f.start, text[..f.byte_start].chars().count());
        assert_eq!(f.end, text[..f.byte_end].chars().count());
        assert!((0.0..=1.0).contains(&f.score));
        let kept = f.masked.trim_start_matches('*');
        assert!(f.masked.contains('@') || kept.chars().count() <= 4, "{}", f.masked);
    }
    let risk = vigie_pii::risk::of_findings(&findings, false);
    assert!((0.0..=1.0).contains(&risk));
});
