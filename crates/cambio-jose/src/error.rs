//! Error types. Verification failures ([`JwtError`]) are kept apart from key
//! handling failures ([`JoseError`]) because callers react differently: the
//! first is a client error, the second a configuration or server error.

/// Why a JWT was refused by [`crate::verify`] or [`crate::peek_unverified`].
///
/// The variants carry only static strings so that refusing a token never
/// allocates and never echoes attacker-controlled data into logs.
#[derive(thiserror::Error, Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtError {
    /// The token is longer than the configured maximum; nothing was decoded.
    #[error("token is too large")]
    TooLarge,
    /// The token is not a well-formed compact JWS.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The token has five parts, i.e. it is a JWE (RFC 7516), which is not accepted.
    #[error("encrypted tokens (JWE) are not accepted")]
    Encrypted,
    /// The `alg` header names an algorithm outside ES256, RS256, PS256 and EdDSA.
    #[error("unsupported algorithm")]
    UnsupportedAlgorithm,
    /// A header parameter that would make us fetch or trust a key named by the token.
    #[error("forbidden header parameter: {0}")]
    ForbiddenHeader(&'static str),
    /// A `crit` header is present; no extensions are implemented (RFC 7515 section 4.1.11).
    #[error("unknown critical header extension")]
    UnknownCritical,
    /// No trusted key matches the token's `kid` and `alg`.
    #[error("no matching key")]
    KeyNotFound,
    /// The header `alg` differs from the algorithm the key is bound to.
    #[error("algorithm does not match the key")]
    AlgorithmMismatch,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `exp` has passed, leeway included.
    #[error("token has expired")]
    Expired,
    /// `nbf` is still in the future, leeway included.
    #[error("token is not yet valid")]
    NotYetValid,
    /// `iat` is further in the future than the leeway allows.
    #[error("token was issued in the future")]
    IssuedInFuture,
    /// A required claim is absent.
    #[error("missing claim: {0}")]
    MissingClaim(&'static str),
    /// A claim is present but has the wrong JSON type or an impossible value.
    #[error("invalid claim: {0}")]
    InvalidClaim(&'static str),
    /// `iss` differs from the expected issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not satisfy the audience rule.
    #[error("wrong audience")]
    WrongAudience,
    /// The `typ` header does not satisfy the type rule.
    #[error("wrong token type")]
    WrongType,
}

/// A failure to generate, parse, load or use a key.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum JoseError {
    /// The algorithm name is not one of ES256, RS256, PS256, EdDSA.
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The key is well formed but not usable here (wrong `use`, unsupported
    /// `kty` or curve, RSA modulus outside 2048 to 8192 bits, no algorithm).
    /// [`crate::parse_jwks`] skips such keys instead of failing.
    #[error("unsupported key: {0}")]
    UnsupportedKey(&'static str),
    /// The key material is broken, inconsistent or carries private members.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// The JWK set document exceeds [`crate::MAX_JWKS_BYTES`].
    #[error("JWK set is too large")]
    TooLarge,
    /// The JSON document is malformed.
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The claims did not serialize to a JSON object (RFC 7519 section 7.1 requires one).
    #[error("JWT claims must serialize to a JSON object")]
    ClaimsNotObject,
    /// The cryptographic library reported a failure.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
}

impl JoseError {
    /// Whether this error only says "not for us", which lets a JWK set
    /// containing, say, encryption keys still load its signing keys.
    #[must_use]
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            JoseError::UnsupportedAlgorithm(_) | JoseError::UnsupportedKey(_)
        )
    }
}
