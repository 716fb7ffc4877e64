//! How a test reads an event's value: numbers from numeric strings, case-insensitive text
//! tests, list fields matching on any element, networks.
use serde_json::Value;
use std::net::IpAddr;

/// A value as a number: a JSON number, or a string holding one.
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}

/// A value as text for the text tests (`CONTAINS`, `STARTSWITH`, `ENDSWITH`, `MATCHES`,
/// `CIDR`): strings only, so every back end reads the same characters.
pub fn text(v: &Value) -> Option<&str> {
    v.as_str()
}

/// A needle for the case-insensitive text tests, lowered once.
#[derive(Debug, Clone)]
pub struct Needle {
    lower: String,
    ascii: bool,
}

impl Needle {
    /// `s`, lowered.
    pub fn new(s: &str) -> Needle {
        Needle { lower: s.to_lowercase(), ascii: s.is_ascii() }
    }

    /// Whether `hay` contains the needle, ignoring case.
    pub fn in_text(&self, hay: &str) -> bool {
        if self.ascii && hay.is_ascii() {
            let (h, n) = (hay.as_bytes(), self.lower.as_bytes());
            return n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
        }
        hay.to_lowercase().contains(&self.lower)
    }

    /// Whether `hay` starts with the needle, ignoring case.
    pub fn starts(&self, hay: &str) -> bool {
        if self.ascii && hay.is_ascii() {
            return hay.len() >= self.lower.len() && hay.as_bytes()[..self.lower.len()].eq_ignore_ascii_case(self.lower.as_bytes());
        }
        hay.to_lowercase().starts_with(&self.lower)
    }

    /// Whether `hay` ends with the needle, ignoring case.
    pub fn ends(&self, hay: &str) -> bool {
        if self.ascii && hay.is_ascii() {
            return hay.len() >= self.lower.len()
                && hay.as_bytes()[hay.len() - self.lower.len()..].eq_ignore_ascii_case(self.lower.as_bytes());
        }
        hay.to_lowercase().ends_with(&self.lower)
    }
}

/// An IP network (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Reads a network; `None` if it is not one.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, p.parse::<u8>().ok()?),
            None => {
                let a = s.trim().parse::<IpAddr>().ok()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { net: addr, prefix })
    }

    /// Whether `addr` is in the network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.net, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }

    /// Whether `v` is an address string in the network.
    pub fn holds(&self, v: &Value) -> bool {
        v.as_str().and_then(|s| s.trim().parse::<IpAddr>().ok()).is_some_and(|a| self.contains(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_read_from_numeric_strings_and_text_tests_ignore_case() {
        assert_eq!(number(&json!("0.95")), Some(0.95));
        assert_eq!(number(&json!(" 7 ")), Some(7.0));
        assert_eq!(number(&json!("seven")), None);
        assert_eq!(number(&json!("inf")), None);
        let n = Needle::new("GMAIL");
        assert!(n.in_text("bob@gmail.com") && !n.in_text("bob@gmx.com"));
        assert!(Needle::new("bob").starts("BOB@x") && Needle::new(".COM").ends("x@y.com"));
        assert!(Needle::new("été").in_text("Un ÉTÉ chaud"));
    }

    #[test]
    fn networks_hold_their_addresses() {
        let n = Cidr::parse("10.0.0.0/8").expect("net");
        assert!(n.holds(&json!("10.200.3.4")) && !n.holds(&json!("11.0.0.1")) && !n.holds(&json!(10)));
        assert!(Cidr::parse("2001:db8::/32").expect("v6").holds(&json!("2001:db8::1")));
        assert!(Cidr::parse("0.0.0.0/0").expect("all").holds(&json!("8.8.8.8")));
        assert!(Cidr::parse("10.0.0.0/33").is_none() && Cidr::parse("ten").is_none());
        assert!(Cidr::parse("192.168.1.7").expect("host").holds(&json!("192.168.1.7")));
    }
}
