//! Small helpers for the plain HTML forms and links the pages build.

/// Percent-encodes a query-string component (everything but unreserved characters).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_reserved_and_non_ascii_bytes() {
        assert_eq!(super::encode("/a b?c=é&d"), "%2Fa%20b%3Fc%3D%C3%A9%26d");
    }
}
