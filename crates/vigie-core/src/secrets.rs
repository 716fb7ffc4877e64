//! The instance's master key: 32 random bytes in `<data dir>/secret.key` (mode 0600) unless one
//! is given (e.g. from `VIGIE_SECRET_KEY`), and the keys derived from it for one purpose each.
use crate::error::StoreError;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::path::Path;

/// The instance's root secret. Never logged; `Debug` prints nothing of it.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Parses a base64 key of exactly 32 bytes.
    pub fn from_base64(s: &str) -> Result<MasterKey, String> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim()).map_err(|e| format!("the secret key is not base64: {e}"))?;
        let arr: [u8; 32] = bytes.try_into().map_err(|v: Vec<u8>| format!("the secret key must be 32 bytes, got {}", v.len()))?;
        Ok(MasterKey(arr))
    }

    /// Loads `<dir>/secret.key`, creating it with fresh random bytes (mode 0600) on first start.
    pub fn load_or_create(dir: &Path) -> Result<MasterKey, StoreError> {
        let path = dir.join("secret.key");
        let io = |context: String| move |source| StoreError::Io { context, source };
        crate::db::create_private_dir(dir)?;
        match std::fs::read_to_string(&path) {
            Ok(s) => MasterKey::from_base64(&s).map_err(|e| StoreError::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                let text = base64::engine::general_purpose::STANDARD.encode(key);
                write_private(&path, text.as_bytes()).map_err(io(format!("cannot write {}", path.display())))?;
                Ok(MasterKey(key))
            }
            Err(e) => Err(io(format!("cannot read {}", path.display()))(e)),
        }
    }

    /// A key for one purpose, so a leak of one derived key exposes nothing else.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not something [`SecretBox::seal`] wrote (bad base64, unknown version, too short).
    #[error("not a sealed value")]
    Malformed,
    /// The value was sealed with another key or for another record, or was altered.
    #[error("the sealed value does not open with this key for this record")]
    Rejected,
}

/// Encryption at rest for secrets the server must read back (webhook signing secrets and auth
/// tokens, destination credentials): XChaCha20-Poly1305 under a key derived from the master key
/// for one purpose. Each value is bound to its record by associated data (say, the webhook id and
/// the column), so a sealed value copied onto another row does not open. The stored form is
/// base64 of a version byte, a random 24-byte nonce and the ciphertext with its tag.
#[derive(Clone)]
pub struct SecretBox(chacha20poly1305::XChaCha20Poly1305);

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

const SEAL_VERSION: u8 = 1;

impl SecretBox {
    /// The box for `purpose` (e.g. `"webhook-secrets"`).
    pub fn new(master: &MasterKey, purpose: &str) -> SecretBox {
        use chacha20poly1305::KeyInit;
        let key = master.derive(&format!("secret-box:{purpose}"));
        SecretBox(chacha20poly1305::XChaCha20Poly1305::new(&key.into()))
    }

    /// Seals `plaintext` for the record named by `associated`.
    pub fn seal(&self, plaintext: &[u8], associated: &[u8]) -> String {
        use chacha20poly1305::aead::{Aead, Payload};
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .0
            .encrypt(&nonce.into(), Payload { msg: plaintext, aad: associated })
            .expect("XChaCha20-Poly1305 encrypts any message that fits in memory");
        let mut out = Vec::with_capacity(1 + nonce.len() + sealed.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    /// Opens a value sealed for the record named by `associated`.
    pub fn open(&self, sealed: &str, associated: &[u8]) -> Result<Vec<u8>, SealError> {
        use chacha20poly1305::aead::{Aead, Payload};
        let raw = base64::engine::general_purpose::STANDARD.decode(sealed.trim()).map_err(|_| SealError::Malformed)?;
        if raw.len() < 1 + 24 + 16 || raw[0] != SEAL_VERSION {
            return Err(SealError::Malformed);
        }
        let nonce: [u8; 24] = raw[1..25].try_into().map_err(|_| SealError::Malformed)?;
        self.0.decrypt(&nonce.into(), Payload { msg: &raw[25..], aad: associated }).map_err(|_| SealError::Rejected)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(byte: u8) -> MasterKey {
        MasterKey([byte; 32])
    }

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_purpose_and_record() {
        let b = SecretBox::new(&master(7), "webhook-secrets");
        let sealed = b.seal(b"whsec_abc", b"whk_1:signing_secret");
        assert!(!sealed.contains("whsec"), "the stored form hides the value");
        assert_eq!(b.open(&sealed, b"whk_1:signing_secret").as_deref(), Ok(&b"whsec_abc"[..]));
        assert_eq!(b.open(&sealed, b"whk_2:signing_secret"), Err(SealError::Rejected), "copied onto another row");
        assert_eq!(SecretBox::new(&master(8), "webhook-secrets").open(&sealed, b"whk_1:signing_secret"), Err(SealError::Rejected));
        assert_eq!(SecretBox::new(&master(7), "other").open(&sealed, b"whk_1:signing_secret"), Err(SealError::Rejected));
        assert_ne!(b.seal(b"whsec_abc", b"a"), b.seal(b"whsec_abc", b"a"), "a fresh nonce each time");
        let mut tampered = base64::engine::general_purpose::STANDARD.decode(&sealed).expect("base64");
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let tampered = base64::engine::general_purpose::STANDARD.encode(tampered);
        assert_eq!(b.open(&tampered, b"whk_1:signing_secret"), Err(SealError::Rejected));
        assert_eq!(b.open("not base64!", b""), Err(SealError::Malformed));
        assert_eq!(b.open("AQID", b""), Err(SealError::Malformed));
        assert_eq!(format!("{b:?}"), "SecretBox(..)");
    }
}
