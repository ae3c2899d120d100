//! The server's source of randomness (the protocol core takes random values as inputs).

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn fill(buf: &mut [u8]) {
    // The system generator only fails when the OS has no entropy source at all, which would
    // make every token unsafe: stopping is the only correct answer.
    #[allow(clippy::expect_used)]
    SystemRandom::new()
        .fill(buf)
        .expect("the operating system's random generator failed");
}

/// A random token of 32 bytes, base64url: refresh tokens, codes, session ids.
pub fn token() -> String {
    let mut buf = [0u8; 32];
    fill(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A random (version 4) UUID string, the id format Keycloak clients expect.
pub fn uuid() -> String {
    let mut bytes = [0u8; 16];
    fill(&mut bytes);
    uuid_of(bytes)
}

/// Two random UUID strings from one call to the generator (a token request needs ids for its
/// access and ID tokens; each call into the generator has a fixed cost).
pub fn uuid_pair() -> (String, String) {
    let mut bytes = [0u8; 32];
    fill(&mut bytes);
    // Both halves are exactly 16 bytes; the conversions cannot fail.
    let (a, b) = bytes.split_at(16);
    (
        uuid_of(a.try_into().unwrap_or_default()),
        uuid_of(b.try_into().unwrap_or_default()),
    )
}

fn uuid_of(bytes: [u8; 16]) -> String {
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Hex SHA-256 of a token: how refresh tokens and codes are stored.
pub fn token_hash(token: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|x| format!("{x:02x}")).collect()
}

/// Unix time in seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
