//! Login tokens: compact JWTs signed with HS256, with the claims of the compatible API
//! (`sub`, `email`, `tenant_id`, `role`, `iat`, `exp`) plus `ver`, the user's session version,
//! so a role change, deactivation or password change revokes every earlier token.
//!
//! Written here rather than with a JWT crate: only HS256 is needed, and the crates bring RSA
//! and elliptic-curve stacks (or a C crypto library) for algorithms Vigie never accepts.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The claims of a login token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The user's e-mail.
    pub email: String,
    /// The user's tenant.
    pub tenant_id: String,
    /// `admin` or `viewer` at issue time (the current role is read on each use).
    pub role: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// The user's session version at issue time.
    pub ver: i64,
    /// A random id: two logins in the same second are two tokens (logging out of one must not
    /// end the other). Absent from tokens issued before it existed.
    #[serde(default)]
    pub jti: String,
}

const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"; // {"alg":"HS256","typ":"JWT"}

/// Signs `claims`.
pub fn sign(claims: &Claims, key: &[u8; 32]) -> String {
    let payload = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{HEADER}.{payload}");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(signing_input.as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// Verifies the signature (constant time) and the header, and returns the claims. Expiry is
/// the caller's check, against its clock.
pub fn verify(token: &str, key: &[u8; 32]) -> Option<Claims> {
    let mut parts = token.split('.');
    let (header, payload, sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    // Only our own header is accepted: no `alg` negotiation, so no `none` or key confusion.
    let header_json: serde_json::Value = serde_json::from_slice(&B64.decode(header).ok()?).ok()?;
    if header_json.get("alg")?.as_str()? != "HS256" {
        return None;
    }
    let sig = B64.decode(sig).ok()?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    mac.verify_slice(&sig).ok()?;
    serde_json::from_slice(&B64.decode(payload).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            sub: "u".into(),
            email: "a@b.c".into(),
            tenant_id: "t".into(),
            role: "admin".into(),
            iat: 1,
            exp: 2,
            ver: 1,
            jti: "j".into(),
        }
    }

    #[test]
    fn signed_tokens_verify_and_tampering_is_refused() {
        let key = [7u8; 32];
        let t = sign(&claims(), &key);
        assert_eq!(verify(&t, &key), Some(claims()));
        assert_eq!(verify(&t, &[8u8; 32]), None);
        let mut forged = claims();
        forged.role = "admin2".into();
        let parts: Vec<&str> = t.split('.').collect();
        let tampered = format!("{}.{}.{}", parts[0], B64.encode(serde_json::to_vec(&forged).expect("json")), parts[2]);
        assert_eq!(verify(&tampered, &key), None);
        let none_alg = format!("{}.{}.", B64.encode(br#"{"alg":"none"}"#), parts[1]);
        assert_eq!(verify(&none_alg, &key), None);
    }
}
