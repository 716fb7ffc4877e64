//! Where a webhook may deliver: `https` URLs whose addresses are public. A URL to a private,
//! loopback or link-local address (an internal admin page, a cloud metadata service at
//! 169.254.169.254) is refused unless the operator allows private webhooks — the tests and the
//! all-in-one server, whose XDR listens on loopback, do.
//!
//! The check is pure: the caller resolves the host and passes the addresses, and must check
//! them again where it connects (a name can resolve differently later: DNS rebinding).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// Why a destination was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    /// Not an absolute URL.
    #[error("not a URL: {0}")]
    Invalid(String),
    /// Not `https` (plain `http` only where private webhooks are allowed).
    #[error("the URL must use https")]
    NotHttps,
    /// User and password in the URL (they would be sent to every redirect and logged).
    #[error("credentials in the URL are refused; use auth_token or headers")]
    Credentials,
    /// The host is, or resolves to, an address that is not public.
    #[error("{0} is a private, loopback or link-local address; webhooks to it need --allow-private-webhooks")]
    NotPublic(IpAddr),
    /// The host resolved to no address.
    #[error("the host has no address")]
    Unresolved,
}

/// Checks a webhook URL's form: absolute, `https` (or `http` when private webhooks are allowed),
/// no credentials, and — when the host is an IP literal — a public address.
pub fn check_url(raw: &str, allow_private: bool) -> Result<Url, DestinationError> {
    let url = Url::parse(raw.trim()).map_err(|e| DestinationError::Invalid(e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(DestinationError::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DestinationError::Credentials);
    }
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(Host::Domain(_)) => None,
        None => return Err(DestinationError::Invalid("the URL has no host".into())),
    };
    if let Some(ip) = literal {
        check_addresses(&[ip], allow_private)?;
    }
    Ok(url)
}

/// Checks the addresses a host resolved to: every one must be public, unless private
/// webhooks are allowed.
pub fn check_addresses(addrs: &[IpAddr], allow_private: bool) -> Result<(), DestinationError> {
    if addrs.is_empty() {
        return Err(DestinationError::Unresolved);
    }
    if allow_private {
        return Ok(());
    }
    match addrs.iter().find(|ip| !is_public(**ip)) {
        Some(ip) => Err(DestinationError::NotPublic(*ip)),
        None => Ok(()),
    }
}

/// Whether `ip` is a globally routable unicast address: not private (RFC 1918, unique local
/// fc00::/7), loopback, link-local, unspecified, shared (100.64/10), benchmarking, documentation,
/// multicast, broadcast or reserved — IPv4 addresses inside IPv6 (mapped, compatible, 6to4,
/// NAT64) judged by their IPv4 part.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let seg = ip.segments();
    // 6to4 (2002::/16) and NAT64 (64:ff9b::/96) carry an IPv4 address.
    if seg[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new((seg[1] >> 8) as u8, seg[1] as u8, (seg[2] >> 8) as u8, seg[2] as u8));
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(Ipv4Addr::new((seg[6] >> 8) as u8, seg[6] as u8, (seg[7] >> 8) as u8, seg[7] as u8));
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00
        || (seg[0] & 0xffc0) == 0xfe80
        || (seg[0] == 0x2001 && seg[1] == 0x0db8)
        || seg[..6] == [0, 0, 0, 0, 0, 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_https_urls_pass_and_the_rest_is_refused_with_the_reason() {
        assert!(check_url("https://hooks.example.com/vigie", false).is_ok());
        assert!(check_url("https://93.184.216.34/x", false).is_ok());
        assert_eq!(check_url("http://hooks.example.com/", false).err(), Some(DestinationError::NotHttps));
        assert_eq!(check_url("ftp://x.example/", true).err(), Some(DestinationError::NotHttps));
        assert_eq!(check_url("https://u:p@hooks.example.com/", false).err(), Some(DestinationError::Credentials));
        assert!(matches!(check_url("not a url", false), Err(DestinationError::Invalid(_))));
        for private in [
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[::ffff:192.168.1.1]/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
        ] {
            assert!(matches!(check_url(private, false), Err(DestinationError::NotPublic(_))), "{private}");
            assert!(check_url(private, true).is_ok(), "{private} with private webhooks allowed");
        }
        assert!(check_url("http://127.0.0.1:8090/api/v1/events", true).is_ok(), "the all-in-one server's own XDR");
    }

    #[test]
    fn resolved_addresses_must_all_be_public() {
        let public: IpAddr = "93.184.216.34".parse().expect("ip");
        let private: IpAddr = "192.168.0.10".parse().expect("ip");
        assert_eq!(check_addresses(&[public], false), Ok(()));
        assert_eq!(check_addresses(&[public, private], false), Err(DestinationError::NotPublic(private)));
        assert_eq!(check_addresses(&[], true), Err(DestinationError::Unresolved));
        assert!(!is_public("2002:c0a8:0101::1".parse().expect("ip")), "6to4 of 192.168.1.1");
        assert!(!is_public("64:ff9b::a00:1".parse().expect("ip")), "NAT64 of 10.0.0.1");
        assert!(is_public("2606:4700::1111".parse().expect("ip")));
    }
}
