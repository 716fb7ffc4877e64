//! Secrets (API_KEY): provider keys by their documented prefixes, JWTs, private key blocks, and
//! high-entropy values right after a word that names a secret (`password`, `token`, `clé`…).
use crate::PiiType;
use crate::scanner::{LOWER, MAX_CANDIDATE, Scan, UNDERSCORE, UPPER, contextual, is_word};

type Charset = fn(u8) -> bool;

fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
fn upper_digit(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}
fn b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}
fn word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}
fn alnum_dash(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}
fn b64url_dot(c: u8) -> bool {
    b64url(c) || c == b'.'
}
fn url_path(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'/' | b'_' | b'-')
}
fn b64(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=')
}

/// A key format: a literal prefix, then `min..=max` characters of a set.
struct KeyFormat {
    prefix: &'static [u8],
    body: Charset,
    min: usize,
    max: usize,
    detail: &'static str,
}

const fn key(prefix: &'static [u8], body: Charset, min: usize, max: usize, detail: &'static str) -> KeyFormat {
    KeyFormat { prefix, body, min, max, detail }
}

/// Documented key formats. Order matters where prefixes nest (`sk-ant-` before `sk-`).
const FORMATS: &[KeyFormat] = &[
    key(b"AKIA", upper_digit, 16, 16, "aws_access_key"),
    key(b"ASIA", upper_digit, 16, 16, "aws_access_key"),
    key(b"AIza", b64url, 35, 35, "google_api_key"),
    key(b"ghp_", alnum, 36, 255, "github_token"),
    key(b"gho_", alnum, 36, 255, "github_token"),
    key(b"ghu_", alnum, 36, 255, "github_token"),
    key(b"ghs_", alnum, 36, 255, "github_token"),
    key(b"ghr_", alnum, 36, 255, "github_token"),
    key(b"github_pat_", word_char, 22, 255, "github_token"),
    key(b"glpat-", b64url, 20, 64, "gitlab_token"),
    key(b"xoxb-", alnum_dash, 10, 255, "slack_token"),
    key(b"xoxp-", alnum_dash, 10, 255, "slack_token"),
    key(b"xoxa-", alnum_dash, 10, 255, "slack_token"),
    key(b"xoxr-", alnum_dash, 10, 255, "slack_token"),
    key(b"xoxs-", alnum_dash, 10, 255, "slack_token"),
    key(b"xoxe-", alnum_dash, 10, 255, "slack_token"),
    key(b"xapp-", alnum_dash, 10, 255, "slack_token"),
    key(b"sk-ant-", b64url, 32, 255, "anthropic_api_key"),
    key(b"sk-proj-", b64url, 32, 255, "openai_api_key"),
    key(b"sk-svcacct-", b64url, 32, 255, "openai_api_key"),
    key(b"sk-admin-", b64url, 32, 255, "openai_api_key"),
    key(b"sk-", b64url, 32, 255, "openai_api_key"),
    key(b"sk_live_", alnum, 16, 255, "stripe_key"),
    key(b"sk_test_", alnum, 16, 255, "stripe_key"),
    key(b"rk_live_", alnum, 16, 255, "stripe_key"),
    key(b"rk_test_", alnum, 16, 255, "stripe_key"),
    key(b"whsec_", b64, 24, 128, "webhook_signing_secret"),
    key(b"hf_", alnum, 30, 64, "huggingface_token"),
    key(b"npm_", alnum, 36, 36, "npm_token"),
    key(b"gsk_", alnum, 32, 255, "groq_api_key"),
    key(b"xai-", alnum, 32, 255, "xai_api_key"),
    key(b"ya29.", b64url_dot, 20, 2048, "google_oauth_token"),
    key(b"SG.", b64url_dot, 40, 128, "sendgrid_api_key"),
    key(b"hooks.slack.com/services/", url_path, 20, 128, "slack_webhook"),
    key(b"discord.com/api/webhooks/", url_path, 20, 160, "discord_webhook"),
];

/// A key with a documented prefix at the word `text[start..end]` (followed by `next`).
pub fn prefixed(scan: &mut Scan<'_>, start: usize, end: usize, next: u8) -> Option<usize> {
    let b = scan.text;
    // Every format is at least 20 characters, and its first word is either that long or ends
    // at the `-` or `.` of its prefix: plain prose words stop here.
    if end - start < 20 && next != b'-' && next != b'.' {
        return None;
    }
    if b[start..].starts_with(b"eyJ") {
        return jwt(scan, start);
    }
    if !matches!(b[start], b'A' | b'g' | b'x' | b's' | b'r' | b'w' | b'h' | b'n' | b'y' | b'S' | b'd') {
        return None;
    }
    for f in FORMATS {
        if !b[start..].starts_with(f.prefix) {
            continue;
        }
        let body = start + f.prefix.len();
        let mut e = body;
        while e < b.len() && e - body <= f.max && (f.body)(b[e]) {
            e += 1;
        }
        let len = e - body;
        // On a miss the scan resumes after what was read, so `sk-sk-sk-…` costs one pass.
        if len < f.min || len > f.max || (e < b.len() && is_word(b[e])) {
            return Some(e);
        }
        // A real key mixes letters with digits or capitals; `sk-this-is-a-long-sentence` does not.
        let v = &b[body..e];
        if f.min != f.max && (!v.iter().any(|c| c.is_ascii_digit() || c.is_ascii_uppercase()) || !v.iter().any(u8::is_ascii_alphabetic)) {
            return Some(e);
        }
        let sig = scan.signals(start, e);
        scan.push(PiiType::ApiKey, contextual(0.95, 0.04, sig, PiiType::ApiKey).max(0.85), start, e, Some(f.detail));
        return Some(e);
    }
    None
}

/// A JSON Web Token: three base64url segments whose header decodes to a JSON object naming
/// `alg` or `typ`.
fn jwt(scan: &mut Scan<'_>, start: usize) -> Option<usize> {
    let b = scan.text;
    let seg = |from: usize| -> usize {
        let mut e = from;
        while e < b.len() && e - from < MAX_CANDIDATE && b64url(b[e]) {
            e += 1;
        }
        e
    };
    let h = seg(start);
    if h - start < 10 || b.get(h) != Some(&b'.') {
        return None;
    }
    let p = seg(h + 1);
    if p - h - 1 < 10 || b.get(p) != Some(&b'.') {
        return None;
    }
    let s = seg(p + 1);
    let header = decode_b64url(&b[start..h.min(start + 64)]);
    if !(contains(&header, b"\"alg\"") || contains(&header, b"\"typ\"")) {
        return None;
    }
    let sig = scan.signals(start, s);
    scan.push(PiiType::ApiKey, contextual(0.95, 0.04, sig, PiiType::ApiKey).max(0.85), start, s, Some("jwt"));
    Some(s)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Decodes base64url (no padding), stopping at the first character outside the alphabet; a
/// trailing partial quantum is dropped.
fn decode_b64url(s: &[u8]) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in s {
        let Some(v) = val(c) else { break };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// A private key block at the `-` at `pos`: from `-----BEGIN … PRIVATE KEY-----` to the end of
/// its `-----END … -----` line (or of its body, when the end was not pasted).
pub fn pem(scan: &mut Scan<'_>, pos: usize) -> Option<usize> {
    let b = scan.text;
    if !b[pos..].starts_with(b"-----BEGIN ") {
        return None;
    }
    let label_start = pos + 11;
    let label_end = label_start + b[label_start..b.len().min(label_start + 64)].windows(5).position(|w| w == b"-----")?;
    let label = &b[label_start..label_end];
    if !contains(label, b"PRIVATE KEY") {
        return None;
    }
    let body = label_end + 5;
    // The cap must fall between two characters of the (UTF-8) text.
    let mut limit = b.len().min(pos + MAX_CANDIDATE);
    while limit < b.len() && (b[limit] as i8) < -0x40 {
        limit -= 1;
    }
    let end = match b[body..limit].windows(9).position(|w| w == b"-----END ") {
        Some(i) => {
            let after = body + i + 9;
            match b[after..limit].windows(5).position(|w| w == b"-----") {
                Some(j) => after + j + 5,
                None => limit,
            }
        }
        None => {
            // No end pasted: the body runs while it is base64, line breaks (also `\n` escaped
            // inside JSON) or header fields.
            let mut e = body;
            while e < limit && (b64(b[e]) || b[e].is_ascii_whitespace() || matches!(b[e], b':' | b'-' | b',' | b'\\')) {
                e += 1;
            }
            while e > body && (b[e - 1].is_ascii_whitespace() || b[e - 1] == b'\\') {
                e -= 1;
            }
            e
        }
    };
    // A header quoted in code or prose (`starts_with(b"-----BEGIN RSA PRIVATE KEY-----")`,
    // "<your key here>") holds no key: a real body has dozens of base64 characters.
    let material = b[body..end].iter().filter(|&&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/').count();
    if material < 48 {
        return Some(body);
    }
    scan.push(PiiType::ApiKey, 0.99, pos, end, Some("private_key"));
    Some(end)
}

/// How long a value after a secret word must be.
#[derive(Clone, Copy, PartialEq)]
enum Named {
    /// A password: 8 characters or more.
    Password,
    /// A key, token or secret: 16 characters or more.
    Key,
}

/// Words that name a secret, by length, and what they name. Accented words are matched by
/// their ASCII stem and the bytes that must follow it.
fn secret_word(w: &[u8], after: &[u8]) -> Option<(Named, usize)> {
    let is = |x: &[u8]| w.eq_ignore_ascii_case(x);
    let named = match w.len() {
        2 if is(b"cl") && after.starts_with("é".as_bytes()) => return Some((Named::Key, 2)),
        3 if is(b"key") => Named::Key,
        3 if is(b"pwd") => Named::Password,
        4 if is(b"schl") && after.starts_with("üssel".as_bytes()) => return Some((Named::Key, 6)),
        4 if is(b"pass") => Named::Password,
        5 if is(b"token") || is(b"clave") => Named::Key,
        5 if is(b"passe") => Named::Password,
        6 if is(b"secret") || is(b"apikey") || is(b"chiave") || is(b"bearer") => Named::Key,
        6 if is(b"passwd") => Named::Password,
        7 if is(b"sleutel") || is(b"api_key") => Named::Key,
        8 if is(b"password") || is(b"passwort") || is(b"kennwort") => Named::Password,
        8 if is(b"contrase") && after.starts_with("ña".as_bytes()) => return Some((Named::Password, 3)),
        10 if is(b"wachtwoord") || is(b"passphrase") => Named::Password,
        11 if is(b"credentials") => Named::Key,
        _ => return None,
    };
    Some((named, 0))
}

/// After a word that names a secret (`password`, `api_key`, `AWS_SECRET_ACCESS_KEY`, `clé`…),
/// the first of the next few values that looks like one: long enough, mixing letters with
/// digits or symbols, and (for keys) of high entropy. The scan resumes after the word, so the
/// value still meets the specific recognizers (a card after "key" stays a card).
pub fn keyword(scan: &mut Scan<'_>, start: usize, end: usize, shape: u8) -> Option<usize> {
    let b = scan.text;
    let w = &b[start..end];
    let (named, extra) = if shape & UNDERSCORE != 0 {
        identifier_secret(w)?
    } else if let Some(named) = (shape & UPPER != 0 && shape & LOWER != 0).then(|| camel_case_secret(w)).flatten() {
        (named, 0)
    } else if w.len() > 8 && (ends_with_ci(w, b"password") || ends_with_ci(w, b"passwd")) {
        // PGPASSWORD, dbpassword.
        (Named::Password, 0)
    } else if w.eq_ignore_ascii_case(b"basic") {
        return basic_auth(scan, end);
    } else {
        if w.len() > 11 {
            return None;
        }
        let (named, extra) = secret_word(w, &b[end..])?;
        // `pass` names a password only as a label: `pass: …`, `pass=…`.
        if w.eq_ignore_ascii_case(b"pass") && !matches!(b.get(end), Some(b':' | b'=')) {
            return None;
        }
        (named, extra)
    };
    // The value is assigned or announced (`token: …`, `password = …`, `clé est …`), not reached
    // through the name (`token[i]`, `key.len()`, `password-hashes`, `token(…)`).
    if matches!(b.get(end + extra), Some(b'[' | b'.' | b'-' | b'(' | b'/' | b'&' | b'<')) {
        return None;
    }
    let mut i = end + extra;
    let limit = b.len().min(i + 80);
    for _ in 0..6 {
        while i < limit && matches!(b[i], b' ' | b'\t' | b':' | b'=' | b'"' | b'\'' | b'`' | b'>' | b')' | b']' | b'}' | b'\r') {
            i += 1;
        }
        if i >= limit || b[i] == b'\n' {
            return None;
        }
        let ts = i;
        while i < b.len()
            && i - ts < 4096
            && !b[i].is_ascii_whitespace()
            && !matches!(b[i], b'"' | b'\'' | b'`' | b',' | b';' | b')' | b']' | b'}' | b'<' | b'&' | b'#')
        {
            i += 1;
        }
        let mut te = i;
        while te > ts && matches!(b[te - 1], b'.' | b':' | b'?') {
            te -= 1;
        }
        let token = &b[ts..te];
        if let Some(score) = secret_value(token, named) {
            let detail = if mentions(&b[start.saturating_sub(72)..start], b"mistral") { "mistral_api_key" } else { "secret" };
            let detail = if named == Named::Password { "password" } else { detail };
            scan.push(PiiType::ApiKey, score, ts, te, Some(detail));
            return None;
        }
        // Short words ("is", "est", "lautet", "my") may stand between the name and the value.
        if token.is_empty() || token.len() > 7 || !token.iter().all(|c| c.is_ascii_alphabetic() || *c >= 0x80) {
            return None;
        }
    }
    None
}

/// What a camel-case identifier ending in a secret word names: `AccountKey`, `apiKey`,
/// `clientSecret`, `accessToken`, `dbPassword` (not `monkey`: the word must start a hump).
fn camel_case_secret(w: &[u8]) -> Option<Named> {
    const SUFFIXES: [(&[u8], Named); 5] =
        [(b"Key", Named::Key), (b"Secret", Named::Key), (b"Token", Named::Key), (b"Password", Named::Password), (b"Pwd", Named::Password)];
    if w.len() > 40 {
        return None;
    }
    SUFFIXES.iter().find_map(|(suffix, named)| {
        let cut = w.len().checked_sub(suffix.len())?;
        (cut > 0 && w[cut..].eq_ignore_ascii_case(suffix) && w[cut].is_ascii_uppercase() && w[cut - 1].is_ascii_lowercase())
            .then_some(*named)
    })
}

/// What an identifier (`AWS_SECRET_ACCESS_KEY`, `SECRET_KEY_BASE`, `db_password_prod`)
/// names, from any of its parts — except a key that is a database or cache key, or a key's
/// id, name or path (`primary_key`, `sort_key`, `key_id`).
fn identifier_secret(w: &[u8]) -> Option<(Named, usize)> {
    let parts: Vec<&[u8]> = w.split(|&c| c == b'_').filter(|p| !p.is_empty()).collect();
    let is = |p: &[u8], x: &[u8]| p.eq_ignore_ascii_case(x);
    const NOT_SECRET_BEFORE: [&[u8]; 11] =
        [b"primary", b"foreign", b"sort", b"partition", b"cache", b"unique", b"hash", b"range", b"idempotency", b"public", b"pub"];
    const NOT_SECRET_AFTER: [&[u8]; 12] =
        [b"id", b"ids", b"name", b"path", b"file", b"type", b"size", b"len", b"length", b"prefix", b"count", b"field"];
    if parts.iter().any(|p| is(p, b"password") || is(p, b"passwd") || is(p, b"pwd") || is(p, b"pass")) {
        return Some((Named::Password, 0));
    }
    for (k, p) in parts.iter().enumerate() {
        let keyish = is(p, b"key") || is(p, b"secret") || is(p, b"token") || is(p, b"apikey") || is(p, b"credentials");
        if !keyish {
            continue;
        }
        let before = k.checked_sub(1).map(|j| parts[j]);
        let after = parts.get(k + 1);
        let excluded = before.is_some_and(|x| NOT_SECRET_BEFORE.iter().any(|n| is(x, n)))
            || after.is_some_and(|x| NOT_SECRET_AFTER.iter().any(|n| is(x, n)));
        if !excluded {
            return Some((Named::Key, 0));
        }
    }
    None
}

fn ends_with_ci(w: &[u8], suffix: &[u8]) -> bool {
    w.len() >= suffix.len() && w[w.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// `Basic <base64 of user:password>` (HTTP basic authentication).
fn basic_auth(scan: &mut Scan<'_>, end: usize) -> Option<usize> {
    let b = scan.text;
    if b.get(end) != Some(&b' ') {
        return None;
    }
    let ts = end + 1;
    let mut te = ts;
    while te < b.len() && te - ts < 1024 && b64(b[te]) {
        te += 1;
    }
    if te - ts < 8 {
        return None;
    }
    let decoded = decode_b64url(&b[ts..te]);
    let credentials = decoded.iter().position(|&c| c == b':').is_some_and(|k| k > 0 && k + 1 < decoded.len())
        && decoded.iter().all(|c| c.is_ascii_graphic() || *c == b' ');
    if credentials {
        scan.push(PiiType::ApiKey, 0.9, ts, te, Some("basic_auth"));
        return Some(te);
    }
    None
}

fn mentions(hay: &[u8], word: &[u8]) -> bool {
    hay.windows(word.len()).any(|x| x.eq_ignore_ascii_case(word))
}

/// The score of `v` as a secret value after a secret word, if it looks like one.
fn secret_value(v: &[u8], named: Named) -> Option<f64> {
    let min = if named == Named::Password { 8 } else { 16 };
    if v.len() < min || v.len() > 4096 || looks_like_email(v) || contains(v, b"://") || !v.iter().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    // Not a value but a reference to one or to code: a placeholder (`$VAR`, `${VAR}`,
    // `{{ var }}`), a type or path (`super::Foo`, `&x`, `*p`, `@host`, `/path`), a constant's
    // name (`MSV1_0_CREDENTIAL_KEY`), an ARN, a UUID or an address (`0x…`), a date.
    if matches!(v[0], b'$' | b'{' | b'&' | b'*' | b'|' | b'@' | b'/' | b':' | b'[' | b'<' | b'%')
        || contains(v, b"{{")
        || contains(v, b"::")
        || v.starts_with(b"arn:")
        || v.starts_with(b"0x")
        || is_constant_name(v)
        || is_uuid(v)
        || is_iso_date(v)
    {
        return None;
    }
    // Code, not a value: a call (`get_token(user_id=1)`), a property path
    // (`process.env.OPENAI_API_KEY`), or words and numbers joined by separators
    // (`order_2024_000123_reference`, `user:12345:profile:v2`).
    if v.iter().any(|c| matches!(c, b'(' | b')' | b'[' | b']')) || is_property_path(v) || is_joined_words(v) {
        return None;
    }
    let lower = v.iter().any(u8::is_ascii_lowercase);
    let upper = v.iter().any(u8::is_ascii_uppercase);
    let digit = v.iter().any(u8::is_ascii_digit);
    let symbol = v.iter().any(|c| !c.is_ascii_alphanumeric());
    let classes = usize::from(lower) + usize::from(upper) + usize::from(digit) + usize::from(symbol);
    if !digit || !(lower || upper) {
        return None;
    }
    match named {
        // After an explicit password label, letters and digits are enough (`hunter22`).
        Named::Password if classes >= 2 => Some(0.75),
        Named::Key if classes >= 2 && entropy(v) >= 3.0 => Some(if entropy(v) >= 3.5 { 0.85 } else { 0.7 }),
        _ => None,
    }
}

/// `A_CONSTANT_NAME2`: capitals, digits and underscores, with an underscore.
fn is_constant_name(v: &[u8]) -> bool {
    v.contains(&b'_') && v.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
}

/// `8-4-4-4-12` hexadecimal.
fn is_uuid(v: &[u8]) -> bool {
    v.len() == 36 && v.iter().enumerate().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() })
}

/// Starts with `YYYY-MM-DD`.
fn is_iso_date(v: &[u8]) -> bool {
    v.len() >= 10 && v[..4].iter().all(u8::is_ascii_digit) && v[4] == b'-' && v[5..7].iter().all(u8::is_ascii_digit) && v[7] == b'-'
}

/// `local@domain.tld`.
fn looks_like_email(v: &[u8]) -> bool {
    let Some(at) = v.iter().position(|&c| c == b'@') else { return false };
    let domain = &v[at + 1..];
    at > 0
        && domain.contains(&b'.')
        && domain.rsplit(|&c| c == b'.').next().is_some_and(|tld| tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic))
}

/// `a.b.c` of identifiers.
fn is_property_path(v: &[u8]) -> bool {
    let ident =
        |p: &[u8]| !p.is_empty() && !p[0].is_ascii_digit() && p.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$');
    v.contains(&b'.') && v.split(|&c| c == b'.').all(ident)
}

/// Parts joined by `_ - : . / =` that are each a word, a number or at most two characters.
fn is_joined_words(v: &[u8]) -> bool {
    let parts: Vec<&[u8]> = v.split(|&c| matches!(c, b'_' | b'-' | b':' | b'.' | b'/' | b'=')).collect();
    parts.len() >= 2 && parts.iter().all(|p| p.len() <= 2 || p.iter().all(u8::is_ascii_alphabetic) || p.iter().all(u8::is_ascii_digit))
}

/// Shannon entropy of `v` in bits per byte.
fn entropy(v: &[u8]) -> f64 {
    let mut counts = [0u16; 256];
    for &c in v {
        counts[c as usize] += 1;
    }
    let n = v.len() as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| f64::from(c) / n).map(|p| -p * p.log2()).sum()
}
