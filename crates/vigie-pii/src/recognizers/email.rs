//! E-mail addresses, found from their `@`.
use crate::PiiType;
use crate::scanner::{Scan, contextual};

/// File extensions that follow an `@` in asset names (`icon@2x.png`), not top-level domains.
const NOT_TLDS: &[&[u8]] = &[b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"js", b"ts", b"css", b"map", b"json", b"py", b"rs"];

fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// The start of the character that ends just before `pos`, if it is a letter or digit of any
/// script (a local part may be `françois`).
fn letter_before(b: &[u8], pos: usize) -> Option<usize> {
    let mut k = pos.checked_sub(1)?;
    while k > 0 && pos - k < 4 && (b[k] as i8) < -0x40 {
        k -= 1;
    }
    let c = std::str::from_utf8(&b[k..pos]).ok()?.chars().next()?;
    c.is_alphanumeric().then_some(k)
}

/// The address around the `@` at `at`, if there is one; where the scan resumes.
pub fn at(scan: &mut Scan<'_>, at: usize) -> Option<usize> {
    let b = scan.text;
    let mut s = at;
    while s > 0 && at - s < 64 {
        if is_local(b[s - 1]) {
            s -= 1;
        } else if let Some(k) = letter_before(b, s).filter(|_| b[s - 1] >= 0x80) {
            s = k;
        } else {
            break;
        }
    }
    while s < at && matches!(b[s], b'.' | b'-' | b'+') {
        s += 1;
    }
    if s == at || b[at - 1] == b'.' || (s > 0 && b[s - 1] == b'@') {
        return None;
    }
    let mut e = at + 1;
    while e < b.len() && e - at <= 253 && (b[e].is_ascii_alphanumeric() || matches!(b[e], b'-' | b'.')) {
        e += 1;
    }
    while e > at + 1 && matches!(b[e - 1], b'.' | b'-') {
        e -= 1;
    }
    // `scheme://token@host` (a Sentry DSN, `https://<token>@github.com/…`): the user part is
    // a key when it is long and random, and never a mailbox.
    if s >= 3 && &b[s - 3..s] == b"://" {
        let user = &b[s..at];
        let random = user.len() >= 20 && user.iter().any(u8::is_ascii_digit) && user.iter().any(u8::is_ascii_alphabetic);
        if random {
            let sig = scan.signals(s, at);
            scan.push(PiiType::ApiKey, contextual(0.85, 0.1, sig, PiiType::ApiKey), s, at, Some("url_token"));
        }
        return Some(e.max(at + 1));
    }
    // `scheme://user:password@host`: the password is a secret, and the host no mailbox.
    if s >= 2 && b[s - 1] == b':' {
        let mut u = s - 1;
        while u > 0 && is_local(b[u - 1]) {
            u -= 1;
        }
        // Documentation placeholders (`user:pass@`, `a:b@c`) are not credentials.
        let password = &b[s..at];
        let placeholder = password.len() < 4
            || [&b"pass"[..], b"password", b"passwd", b"secret", b"changeme", b"xxxx"].iter().any(|p| password.eq_ignore_ascii_case(p));
        if u >= 3 && &b[u - 3..u] == b"://" && u < s - 1 && !placeholder {
            let sig = scan.signals(s, at);
            scan.push(PiiType::ApiKey, contextual(0.9, 0.05, sig, PiiType::ApiKey), s, at, Some("url_password"));
            return Some(e.max(at + 1));
        }
        if u >= 3 && &b[u - 3..u] == b"://" {
            // A placeholder: no secret, and the host is no mailbox either.
            return Some(e.max(at + 1));
        }
    }
    let domain = &b[at + 1..e];
    let mut labels = domain.split(|&c| c == b'.');
    let valid_labels = domain.split(|&c| c == b'.').all(|l| !l.is_empty() && l.len() <= 63 && l[0] != b'-' && l[l.len() - 1] != b'-');
    let tld = labels.next_back()?;
    if labels.next().is_none() || !valid_labels || tld.len() < 2 || !tld.iter().all(u8::is_ascii_alphabetic) {
        // Not a domain; what follows may be something else (`admin@192.168.1.20`).
        return Some(at + 1);
    }
    if NOT_TLDS.iter().any(|x| tld.eq_ignore_ascii_case(x)) {
        return Some(e);
    }
    // `git@github.com:org/repo.git` is a remote, not a mailbox; `a@b.c@d` is not an address.
    if e < b.len() && ((b[e] == b':' && b.get(e + 1).is_some_and(|c| !c.is_ascii_whitespace())) || b[e] == b'@' || b[e] == b'_') {
        return Some(e);
    }
    let sig = scan.signals(s, e);
    scan.push(PiiType::Email, contextual(0.95, 0.04, sig, PiiType::Email).max(0.6), s, e, None);
    Some(e)
}
