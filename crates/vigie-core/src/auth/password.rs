//! Password hashing (argon2id, the crate's recommended parameters) and generation.
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use rand::Rng;

/// The shortest password accepted for an account.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Hashes `password` into a PHC string.
pub fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `phc` (constant time in the password).
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash to verify against when the account does not exist, so timing does not reveal which
/// e-mails have accounts.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("decoy password, never matches").unwrap_or_default())
}

/// A random password of 20 letters and digits (~119 bits).
pub fn generate() -> String {
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..20).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// Why a new password is refused, if it is.
pub fn check_strength(password: &str) -> Option<String> {
    (password.chars().count() < MIN_PASSWORD_LEN).then(|| format!("a password needs at least {MIN_PASSWORD_LEN} characters"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_verifies_only_the_same_password() {
        let h = super::hash("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(super::verify("correct horse battery", &h));
        assert!(!super::verify("correct horse batterY", &h));
        assert!(!super::verify("x", "not a phc string"));
    }
}
