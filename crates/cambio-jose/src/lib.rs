//! Keys, JWK sets, JWT signing and the one strict JWT verifier of Cambio.
//!
//! All cryptography is aws-lc-rs. Keys are parsed once when loaded, and
//! every token is decoded only by [`verify`] (or, for routing without trust,
//! [`peek_unverified`]), which follows the JWT best current practices of
//! RFC 8725: a closed algorithm set, algorithms bound to keys, no
//! token-supplied keys, strict encodings and strictly typed claims.
//!
//! ```
//! use cambio_jose::{Algorithm, AudienceRule, JwkSet, SigningKey, TypRule, Validation};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::generate(Algorithm::Es256)?;
//! let claims = serde_json::json!({"iss": "https://as.example", "aud": "api", "exp": 1_000_300});
//! let token = key.sign("at+jwt", &claims)?;
//!
//! // A relying party loads the published JWK set once...
//! let jwks = serde_json::to_vec(&JwkSet { keys: vec![key.public_jwk()] })?;
//! let keys = cambio_jose::parse_jwks(&jwks, None)?;
//!
//! // ...and verifies each token against it.
//! let v = Validation {
//!     issuer: Some("https://as.example"),
//!     audience: AudienceRule::AnyOf(&["api"]),
//!     typ: TypRule::Exactly("at+jwt"),
//!     ..Validation::new(1_000_000)
//! };
//! let jwt = cambio_jose::verify(&token, &keys, &v)?;
//! assert_eq!(jwt.issuer(), Some("https://as.example"));
//! # Ok(())
//! # }
//! ```
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod alg;
mod b64;
mod claims;
mod dpop;
mod error;
mod header;
mod jwk;
mod key;
mod signing;
mod verify;

#[cfg(test)]
mod tests;

pub use alg::Algorithm;
pub use dpop::{DpopProof, MAX_DPOP_PROOF_BYTES, access_token_hash, verify_dpop_proof};
pub use error::{JoseError, JwtError};
pub use header::Header;
pub use jwk::{Jwk, JwkSet};
pub use key::{MAX_JWKS_BYTES, VerifyingKey, parse_jwks};
pub use signing::SigningKey;
pub use verify::{
    AudienceRule, DEFAULT_MAX_TOKEN_BYTES, KeyResolver, MAX_LEEWAY, TokenTimes, TypRule,
    Validation, VerifiedJwt, peek_unverified, verify, verify_allowing_expired, verify_as,
};
