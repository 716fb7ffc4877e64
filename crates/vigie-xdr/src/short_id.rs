//! Short ids for people (`AL` + 8 characters for alerts, `CA` + 8 for cases): Crockford's
//! base32, written and read in one place.

/// Crockford's base32: no I, L, O or U, so a short id read aloud or copied by hand survives.
pub const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// `prefix` and 8 characters of [`CROCKFORD`] from the low 40 bits of `bits`.
pub fn from_bits(prefix: &str, bits: u64) -> String {
    let mut s = String::with_capacity(prefix.len() + 8);
    s.push_str(prefix);
    for i in (0..8).rev() {
        s.push(char::from(CROCKFORD[((bits >> (i * 5)) & 31) as usize]));
    }
    s
}

/// A random short id with `prefix` (a clash is one in 2⁴⁰; callers draw again on one).
pub fn random(prefix: &str) -> String {
    from_bits(prefix, rand::random::<u64>())
}

/// The stored form of a reference: a UUID in lower case, a short id with `prefix` (any case;
/// Crockford's look-alikes O, I and L read as 0, 1 and 1) in upper case, else `None`.
pub fn parse(prefix: &str, raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Ok(id) = uuid::Uuid::parse_str(raw) {
        return Some(id.to_string());
    }
    let n = prefix.len();
    if raw.len() == n + 8 && raw.is_char_boundary(n) && raw[..n].eq_ignore_ascii_case(prefix) {
        let tail: String = raw[n..]
            .chars()
            .map(|ch| match ch.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                up => up,
            })
            .collect();
        if tail.bytes().all(|b| CROCKFORD.contains(&b)) {
            return Some(format!("{prefix}{tail}"));
        }
    }
    None
}
