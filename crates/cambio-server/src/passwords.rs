//! User passwords: Argon2id hashes in PHC string format (RFC 9106 parameters of the argon2
//! crate's defaults). Hashing is slow by design, so callers run it off the async workers.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    crate::random::fill(&mut salt);
    let salt = match SaltString::encode_b64(&salt) {
        Ok(salt) => salt,
        Err(_) => return String::new(),
    };
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

/// Checks a password against a stored hash; a malformed hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash to verify against when the user does not exist, so that the time taken does not
/// reveal which usernames are registered.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash("cambio-dummy-password"))
}

/// Verifies on the blocking pool.
pub async fn verify_async(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let ok = verify(&password, stored.as_deref().unwrap_or(dummy_hash()));
        known && ok
    })
    .await
    .unwrap_or(false)
}
