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
