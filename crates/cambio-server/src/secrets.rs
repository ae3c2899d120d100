//! Encryption at rest for values that must stay retrievable (client secrets, signing keys):
//! AES-256-GCM with a key held outside the database, in the data directory.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const PREFIX: &str = "v1:";

/// Seals and opens values with the server's data-encryption key.
pub struct SecretBox {
    key: LessSafeKey,
    /// A MAC key derived from the same secret, for values this server mints and later checks
    /// (DPoP nonces), so that every node sharing the data-encryption key accepts them.
    mac: aws_lc_rs::hmac::Key,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("data-encryption key must be 32 bytes")]
    BadKey,
    #[error("stored secret cannot be decrypted (wrong data-encryption key?)")]
    Undecryptable,
}

impl SecretBox {
    pub fn new(key: &[u8]) -> Result<SecretBox, SecretError> {
        let mac = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
        let mac_key = aws_lc_rs::hmac::sign(&mac, b"cambio: minted-value MAC key");
        let key = UnboundKey::new(&AES_256_GCM, key).map_err(|_| SecretError::BadKey)?;
        Ok(SecretBox {
            key: LessSafeKey::new(key),
            mac: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, mac_key.as_ref()),
        })
    }

    /// The MAC of `message` under the derived key.
    pub fn mac(&self, message: &[u8]) -> aws_lc_rs::hmac::Tag {
        aws_lc_rs::hmac::sign(&self.mac, message)
    }

    /// Encrypts `plain`; `context` (such as the object id) is bound as associated data so a
    /// sealed value cannot be moved to another record.
    pub fn seal(&self, context: &str, plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        crate::random::fill(&mut nonce);
        let mut buf = plain.to_vec();
        // Sealing only fails for inputs of gigabytes; secrets are small.
        if self
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .is_err()
        {
            return String::new();
        }
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, SecretError> {
        let data = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .ok_or(SecretError::Undecryptable)?;
        if data.len() < NONCE_LEN {
            return Err(SecretError::Undecryptable);
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| SecretError::Undecryptable)?;
        let mut buf = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| SecretError::Undecryptable)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_context_binding() {
        let sb = SecretBox::new(&[7u8; 32]).unwrap();
        let sealed = sb.seal("client-1", b"s3cret");
        assert!(!sealed.contains("s3cret"));
        assert_eq!(sb.open("client-1", &sealed).unwrap(), b"s3cret");
        assert!(sb.open("client-2", &sealed).is_err());
        let other = SecretBox::new(&[8u8; 32]).unwrap();
        assert!(other.open("client-1", &sealed).is_err());
    }
}
