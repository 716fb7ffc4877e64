//! Standard Webhooks signatures: secrets, signing, verification.
//!
//! A message is signed as `base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))` and sent as
//! `webhook-signature: v1,<signature>`; several signatures are separated by spaces, which is how
//! a rotated secret keeps signing beside its successor. Verification accepts a message when its
//! timestamp is within the tolerance of the verifier's clock and one `v1` signature matches one
//! of the verifier's secrets (compared in constant time).
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// The prefix of a written secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of a generated secret (Svix uses 24; the specification allows 24 to 64).
pub const SECRET_BYTES: usize = 32;
/// How far a message's timestamp may be from the verifier's clock (the specification's default).
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;

/// Why a secret could not be read or a message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The secret is not `whsec_` followed by base64 of 24 to 64 bytes.
    #[error("a signing secret is `whsec_` followed by the base64 of 24 to 64 bytes")]
    BadSecret,
    /// A required header is missing or empty.
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not whole seconds since the epoch.
    #[error("webhook-timestamp is not a number of seconds since 1970")]
    BadTimestamp,
    /// The timestamp is too far from the verifier's clock (a replay, or a wrong clock).
    #[error("the message timestamp is {0} s away from now, beyond the tolerance")]
    OutsideTolerance(i64),
    /// No `v1` signature matches any of the secrets.
    #[error("no signature matches")]
    NoMatch,
}

/// A webhook signing secret. Its `Debug` form never shows the key.
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningSecret(<{} bytes>)", self.0.len())
    }
}

impl SigningSecret {
    /// A new random secret of [`SECRET_BYTES`] bytes from the operating system's generator.
    pub fn generate() -> SigningSecret {
        // ThreadRng: a CSPRNG seeded from the operating system, reseeded periodically.
        let mut key = vec![0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut key);
        SigningSecret(key)
    }

    /// Reads `whsec_<base64>` (the prefix may be left out, as Standard Webhooks libraries allow).
    pub fn parse(written: &str) -> Result<SigningSecret, SignatureError> {
        let b64 = written.trim().strip_prefix(SECRET_PREFIX).unwrap_or(written.trim());
        let key = STANDARD.decode(b64).map_err(|_| SignatureError::BadSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SignatureError::BadSecret);
        }
        Ok(SigningSecret(key))
    }

    /// The written form, `whsec_<base64>`: shown once to the webhook's owner, stored encrypted.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

/// The three headers of a signed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandardHeaders {
    /// `webhook-id`: the message id, the same on every retry of one event.
    pub id: String,
    /// `webhook-timestamp`: seconds since the epoch when this attempt was signed.
    pub timestamp: i64,
    /// `webhook-signature`: `v1,<base64>` per secret, separated by spaces.
    pub signature: String,
}

impl StandardHeaders {
    /// The headers as (name, value) pairs, ready for an HTTP request.
    pub fn pairs(&self) -> [(&'static str, String); 3] {
        [("webhook-id", self.id.clone()), ("webhook-timestamp", self.timestamp.to_string()), ("webhook-signature", self.signature.clone())]
    }

    /// The headers by name, for a lookup such as [`verify`] takes.
    pub fn map(&self) -> HashMap<&'static str, String> {
        self.pairs().into_iter().collect()
    }
}

/// Signs `body` as message `id` at `timestamp` (seconds since the epoch) with every secret
/// given (the current one and, during a rotation, the previous one).
pub fn sign(id: &str, timestamp: i64, body: &[u8], secrets: &[&SigningSecret]) -> StandardHeaders {
    let signature = secrets.iter().map(|s| format!("v1,{}", STANDARD.encode(s.mac(id, timestamp, body)))).collect::<Vec<_>>().join(" ");
    StandardHeaders { id: id.to_owned(), timestamp, signature }
}

/// Verifies a received message: `header(name)` returns a header's value (any case of name is
/// the caller's business), `now` is the verifier's clock in seconds since the epoch.
pub fn verify<'h>(
    header: impl Fn(&str) -> Option<&'h str>,
    body: &[u8],
    secrets: &[&SigningSecret],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let get = |name: &'static str| header(name).map(str::trim).filter(|v| !v.is_empty()).ok_or(SignatureError::MissingHeader(name));
    let id = get("webhook-id")?;
    let timestamp: i64 = get("webhook-timestamp")?.parse().map_err(|_| SignatureError::BadTimestamp)?;
    let signatures = get("webhook-signature")?;
    let skew = timestamp.saturating_sub(now);
    if skew.abs() > tolerance_secs {
        return Err(SignatureError::OutsideTolerance(skew));
    }
    let expected: Vec<[u8; 32]> = secrets.iter().map(|s| s.mac(id, timestamp, body)).collect();
    for candidate in signatures.split(' ') {
        let Some(("v1", b64)) = candidate.split_once(',') else { continue };
        let Ok(given) = STANDARD.decode(b64) else { continue };
        if expected.iter().any(|e| bool::from(e.as_slice().ct_eq(&given))) {
            return Ok(());
        }
    }
    Err(SignatureError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_specifications_example_signs_and_verifies() {
        let secret = SigningSecret::parse(SECRET).expect("valid");
        let h = sign(ID, TS, BODY, &[&secret]);
        assert_eq!(h.signature, SIGNATURE);
        let m = h.map();
        let get = |name: &str| m.get(name).map(String::as_str);
        assert_eq!(verify(get, BODY, &[&secret], TS + 10, DEFAULT_TOLERANCE_SECS), Ok(()));
    }

    #[test]
    fn tampering_replay_a_wrong_secret_and_missing_headers_are_refused() {
        let secret = SigningSecret::parse(SECRET).expect("valid");
        let other = SigningSecret::generate();
        let h = sign(ID, TS, BODY, &[&secret]);
        let m = h.map();
        let get = |name: &str| m.get(name).map(String::as_str);
        assert_eq!(verify(get, br#"{"test": 2432232315}"#, &[&secret], TS, 300), Err(SignatureError::NoMatch));
        assert_eq!(verify(get, BODY, &[&other], TS, 300), Err(SignatureError::NoMatch));
        assert_eq!(verify(get, BODY, &[&secret], TS + 301, 300), Err(SignatureError::OutsideTolerance(-301)));
        assert_eq!(verify(|_| None, BODY, &[&secret], TS, 300), Err(SignatureError::MissingHeader("webhook-id")));
        let bad_ts = |name: &str| if name == "webhook-timestamp" { Some("soon") } else { get(name) };
        assert_eq!(verify(bad_ts, BODY, &[&secret], TS, 300), Err(SignatureError::BadTimestamp));
    }

    #[test]
    fn during_a_rotation_both_secrets_sign_and_either_verifies() {
        let old = SigningSecret::generate();
        let new = SigningSecret::generate();
        let h = sign(ID, TS, BODY, &[&new, &old]);
        assert_eq!(h.signature.split(' ').count(), 2);
        let m = h.map();
        let get = |name: &str| m.get(name).map(String::as_str);
        assert_eq!(verify(get, BODY, &[&old], TS, 300), Ok(()), "a receiver not yet updated");
        assert_eq!(verify(get, BODY, &[&new], TS, 300), Ok(()), "a receiver already updated");
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_are_refused_and_never_printed() {
        let s = SigningSecret::generate();
        let written = s.expose();
        assert!(written.starts_with(SECRET_PREFIX));
        assert_eq!(SigningSecret::parse(&written).expect("valid").expose(), written);
        assert!(!format!("{s:?}").contains(&written[6..]));
        for bad in ["whsec_", "whsec_!!!", "whsec_c2hvcnQ=", ""] {
            assert_eq!(SigningSecret::parse(bad).err(), Some(SignatureError::BadSecret), "{bad}");
        }
    }
}
