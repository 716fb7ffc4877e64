//! IPv6 addresses (IPv4 ones are digit groups: see the numeric recognizer).
use crate::PiiType;
use crate::context::Signals;
use crate::scanner::{Scan, contextual, is_word};
use std::net::Ipv6Addr;

/// The IPv6 address starting at `pos`, if there is one; where the scan resumes.
pub fn v6(scan: &mut Scan<'_>, pos: usize) -> Option<usize> {
    let b = scan.text;
    if pos > 0 && (is_word(b[pos - 1]) || matches!(b[pos - 1], b':' | b'.')) {
        return None;
    }
    let mut e = pos;
    while e < b.len() && e - pos < 45 && (b[e].is_ascii_hexdigit() || matches!(b[e], b':' | b'.')) {
        e += 1;
    }
    while e > pos && b[e - 1] == b'.' {
        e -= 1;
    }
    if e < b.len() && (is_word(b[e]) || b[e] == b':' || (b[e] == b'.' && b.get(e + 1).is_some_and(u8::is_ascii_alphanumeric))) {
        return None;
    }
    let mut s = std::str::from_utf8(&b[pos..e]).ok()?;
    if s.ends_with(':') && !s.ends_with("::") {
        s = &s[..s.len() - 1];
    }
    s.parse::<Ipv6Addr>().ok()?;
    let colons = s.bytes().filter(|&c| c == b':').count();
    let hex = s.bytes().filter(u8::is_ascii_hexdigit).count();
    let has_digit = s.bytes().any(|c| c.is_ascii_digit());
    // `a::b` is a Rust path and `12:30::` a typo more often than an address: a compressed
    // address needs four hex digits (or is the loopback `::1`).
    if !has_digit || !(colons == 7 || (s.contains("::") && (hex >= 4 || s == "::1"))) {
        return None;
    }
    let end = pos + s.len();
    let sig = scan.signals(pos, end);
    let sig = Signals { negative: sig.version, ..sig };
    scan.push(PiiType::IpAddress, contextual(0.85, 0.1, sig, PiiType::IpAddress), pos, end, Some("ipv6"));
    Some(end)
}
