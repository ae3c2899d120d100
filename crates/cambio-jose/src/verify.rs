//! The one strict JWT verifier (RFC 7515, RFC 7519, RFC 8725).
//!
//! Every token in Cambio is decoded here and nowhere else. The order of the
//! checks is deliberate: the size bound comes before any decoding, header
//! policy before any key lookup, and the signature before the payload is
//! even parsed, so unauthenticated data gets as little processing as
//! possible.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::b64;
use crate::claims;
use crate::error::JwtError;
use crate::header::{self, Header, RegisteredClaims, StrictObject};
use crate::key::VerifyingKey;

/// A sensible default for [`Validation::max_token_bytes`]: far above real
/// tokens, small enough that refusing an oversized one costs nothing.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The largest leeway honoured. Clock skew beyond two minutes is a broken
/// clock, and a larger leeway quietly extends every token's lifetime.
pub const MAX_LEEWAY: u64 = 120;

/// The largest signature accepted: RSA-8192 signatures are 1024 bytes, the
/// top of the accepted modulus range.
const MAX_SIGNATURE_BYTES: usize = 1024;

/// How the `aud` claim is checked (RFC 7519 section 4.1.3).
#[derive(Clone, Copy, Debug)]
pub enum AudienceRule<'a> {
    /// No audience check.
    Skip,
    /// `aud` must contain at least one of these values.
    AnyOf(&'a [&'a str]),
    /// `aud` must be a single value (a string or a one-element array) equal
    /// to one of these. RFC 7523 client assertions use this so that one
    /// assertion cannot be replayed against several servers.
    SingleOf(&'a [&'a str]),
}

/// How the `typ` header is checked (RFC 8725 section 3.11 explicit typing).
#[derive(Clone, Copy, Debug)]
pub enum TypRule<'a> {
    /// No type check.
    Skip,
    /// `typ` must equal this media type, compared case-insensitively with an
    /// optional `application/` prefix on either side (RFC 7515 section 4.1.9).
    Exactly(&'a str),
    /// `typ` must be absent or `JWT` (RFC 7519 section 5.1).
    JwtOrAbsent,
}

/// What a token must satisfy beyond a valid signature.
#[derive(Clone, Copy, Debug)]
pub struct Validation<'a> {
    /// The current time in Unix seconds. The crate reads no clock, which
    /// keeps verification deterministic and testable.
    pub now: u64,
    /// Allowed clock skew in seconds; values above [`MAX_LEEWAY`] are clamped.
    pub leeway: u64,
    /// When set, `iss` must be present and equal to this exactly.
    pub issuer: Option<&'a str>,
    /// The audience rule.
    pub audience: AudienceRule<'a>,
    /// The `typ` header rule.
    pub typ: TypRule<'a>,
    /// Whether `exp` must be present. When present it is always checked.
    pub require_exp: bool,
    /// The size limit, checked before any decoding.
    pub max_token_bytes: usize,
}

impl Validation<'_> {
    /// A validation at `now` with 60 s leeway, required `exp`, the default
    /// size limit and no issuer, audience or type checks: callers are
    /// expected to set the rules that apply to their token type.
    #[must_use]
    pub fn new(now: u64) -> Self {
        Validation {
            now,
            leeway: 60,
            issuer: None,
            audience: AudienceRule::Skip,
            typ: TypRule::Skip,
            require_exp: true,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }
}

/// Finds the key for a token. Implementations return a candidate; the
/// verifier then insists that the candidate's algorithm equals the header's.
pub trait KeyResolver {
    /// The key for this `kid` and header algorithm, if any.
    fn resolve(&self, kid: Option<&str>, alg: Algorithm) -> Option<&VerifyingKey>;
}

/// A key set. With a `kid`, the key with that `kid` is chosen (preferring
/// one whose algorithm matches, so a mismatch is reported as such). Without
/// a `kid`, the key is used only if it is the single key of that algorithm,
/// because trying several keys in turn would make failures ambiguous and
/// multiply verification cost.
impl KeyResolver for [VerifyingKey] {
    fn resolve(&self, kid: Option<&str>, alg: Algorithm) -> Option<&VerifyingKey> {
        match kid {
            Some(kid) => {
                let mut same_kid = None;
                for key in self {
                    if key.kid() == Some(kid) {
                        if key.algorithm() == alg {
                            return Some(key);
                        }
                        same_kid = same_kid.or(Some(key));
                    }
                }
                same_kid
            }
            None => {
                let mut candidates = self.iter().filter(|key| key.algorithm() == alg);
                let only = candidates.next()?;
                candidates.next().is_none().then_some(only)
            }
        }
    }
}

impl KeyResolver for Vec<VerifyingKey> {
    fn resolve(&self, kid: Option<&str>, alg: Algorithm) -> Option<&VerifyingKey> {
        self.as_slice().resolve(kid, alg)
    }
}

impl<const N: usize> KeyResolver for [VerifyingKey; N] {
    fn resolve(&self, kid: Option<&str>, alg: Algorithm) -> Option<&VerifyingKey> {
        self.as_slice().resolve(kid, alg)
    }
}

/// A single key: used unless both sides name different `kid`s.
impl KeyResolver for VerifyingKey {
    fn resolve(&self, kid: Option<&str>, _alg: Algorithm) -> Option<&VerifyingKey> {
        match (kid, self.kid()) {
            (Some(wanted), Some(have)) if wanted != have => None,
            _ => Some(self),
        }
    }
}

/// A token whose signature and claims passed [`verify`] (claims as a JSON object) or
/// [`verify_as`] (claims decoded into `C`). It can only be obtained from those, so holding one
/// is proof of verification.
#[derive(Clone, Debug)]
pub struct VerifiedJwt<C = Map<String, Value>> {
    header: Header,
    claims: C,
    audience: Vec<String>,
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
}

impl<C> VerifiedJwt<C> {
    /// The protected header.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// All claims.
    #[must_use]
    pub fn claims(&self) -> &C {
        &self.claims
    }

    /// `aud` as a list; empty when absent.
    #[must_use]
    pub fn audience(&self) -> &[String] {
        &self.audience
    }

    /// `exp` in Unix seconds (fractions rounded down).
    #[must_use]
    pub fn expires_at(&self) -> Option<u64> {
        self.exp
    }

    /// `nbf` in Unix seconds (fractions rounded up).
    #[must_use]
    pub fn not_before(&self) -> Option<u64> {
        self.nbf
    }

    /// `iat` in Unix seconds (fractions rounded up).
    #[must_use]
    pub fn issued_at(&self) -> Option<u64> {
        self.iat
    }

    /// Takes the claims.
    #[must_use]
    pub fn into_claims(self) -> C {
        self.claims
    }

    /// The same verified token with its claims converted by `convert`.
    fn try_map_claims<D>(
        self,
        convert: impl FnOnce(C) -> Result<D, JwtError>,
    ) -> Result<VerifiedJwt<D>, JwtError> {
        Ok(VerifiedJwt {
            claims: convert(self.claims)?,
            header: self.header,
            audience: self.audience,
            exp: self.exp,
            nbf: self.nbf,
            iat: self.iat,
        })
    }

    /// The time claims, to apply the time rules again later (a caller that remembers
    /// verified tokens must, each time it uses one).
    #[must_use]
    pub fn times(&self) -> TokenTimes {
        TokenTimes {
            exp: self.exp,
            nbf: self.nbf,
            iat: self.iat,
        }
    }
}

/// `exp`, `nbf` and `iat` of a verified token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenTimes {
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
}

impl TokenTimes {
    /// `exp`, if the token has one.
    #[must_use]
    pub fn expires_at(&self) -> Option<u64> {
        self.exp
    }

    /// Applies the time rules of `v` (expiry, not-before, issued-at) at `v.now`, with its
    /// leeway, exactly as [`verify`] did. Signature, issuer, audience and type do not change
    /// with time; a caller that remembers a verification keeps the rules for those fixed.
    ///
    /// # Errors
    /// [`JwtError::Expired`], [`JwtError::NotYetValid`], [`JwtError::IssuedInFuture`] or
    /// [`JwtError::MissingClaim`] for `exp`.
    pub fn check(&self, v: &Validation<'_>) -> Result<(), JwtError> {
        claims::check_times([self.exp, self.nbf, self.iat], v)
    }
}

impl VerifiedJwt<Map<String, Value>> {
    /// `iss`, checked to be a string.
    #[must_use]
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }

    /// `sub`, checked to be a string.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.claims.get("sub").and_then(Value::as_str)
    }

    /// `jti`, checked to be a string.
    #[must_use]
    pub fn jwt_id(&self) -> Option<&str> {
        self.claims.get("jti").and_then(Value::as_str)
    }
}

/// The three encoded parts of a compact JWS and its parsed header.
struct Parts<'t> {
    header: Header,
    alg: Algorithm,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, the signed bytes
    /// (RFC 7515 section 5.2 step 8); a slice of the token, not a copy.
    signing_input: &'t [u8],
    payload: &'t [u8],
    signature: &'t [u8],
}

/// The size and shape checks shared by [`verify`] and [`peek_unverified`].
fn split(token: &str, max_bytes: usize) -> Result<Parts<'_>, JwtError> {
    // The bound comes first, before any scanning or decoding, so a huge
    // input is refused in constant time and memory.
    if token.len() > max_bytes {
        return Err(JwtError::TooLarge);
    }
    let bytes = token.as_bytes();
    let mut dots = [0usize; 2];
    let mut count = 0usize;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'.' {
            if count < dots.len() {
                dots[count] = i;
            }
            count += 1;
        }
    }
    match count {
        2 => {}
        // Five parts is the JWE compact serialization (RFC 7516 section
        // 7.1). Refusing it outright also means never decompressing
        // anything (`zip`), which avoids decompression bombs.
        4 => return Err(JwtError::Encrypted),
        _ => return Err(JwtError::Malformed("a JWS must have three parts")),
    }
    let header_b64 = &bytes[..dots[0]];
    let payload = &bytes[dots[0] + 1..dots[1]];
    let signature = &bytes[dots[1] + 1..];
    if header_b64.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(JwtError::Malformed("empty JWS part"));
    }
    let header_json =
        b64::decode(header_b64).ok_or(JwtError::Malformed("header is not base64url"))?;
    let (header, alg) = header::parse(&header_json)?;
    Ok(Parts {
        header,
        alg,
        signing_input: &bytes[..dots[1]],
        payload,
        signature,
    })
}

/// Parses a decoded payload into a JSON object.
fn parse_payload(json: &[u8]) -> Result<Map<String, Value>, JwtError> {
    serde_json::from_slice::<StrictObject>(json)
        .map(|object| object.0)
        .map_err(|_| JwtError::Malformed("payload is not a JSON object"))
}

/// Reads a token without verifying it, only to route it (for example to
/// pick an identity provider by `iss`). Applies the same size, shape and
/// header policy checks as [`verify`] so that routing never looks at a
/// token [`verify`] would refuse on sight. Nothing returned here may be
/// trusted.
///
/// # Errors
/// The [`JwtError`] for the first failed check.
pub fn peek_unverified(
    token: &str,
    max_bytes: usize,
) -> Result<(Header, Map<String, Value>), JwtError> {
    let parts = split(token, max_bytes)?;
    let mut signature = [0u8; MAX_SIGNATURE_BYTES];
    b64::decode_into(parts.signature, &mut signature)
        .ok_or(JwtError::Malformed("signature is not base64url"))?;
    let payload =
        b64::decode(parts.payload).ok_or(JwtError::Malformed("payload is not base64url"))?;
    let claims = parse_payload(&payload)?;
    Ok((parts.header, claims))
}

/// Verifies a compact JWS and validates its claims.
///
/// # Errors
/// The [`JwtError`] for the first failed check.
pub fn verify(
    token: &str,
    keys: &(impl KeyResolver + ?Sized),
    v: &Validation<'_>,
) -> Result<VerifiedJwt, JwtError> {
    verify_with(token, keys, v, claims::Expiry::Enforce)
}

/// Verifies a compact JWS exactly as [`verify`] does except that a past `exp` is accepted
/// (a present `exp` must still be well typed, and [`Validation::require_exp`] still applies).
/// Only for a token whose expiry does not matter to its use: an ID token presented as
/// `id_token_hint` to end its session (OpenID Connect RP-Initiated Logout §2).
///
/// # Errors
/// The [`JwtError`] for the first failed check.
pub fn verify_allowing_expired(
    token: &str,
    keys: &(impl KeyResolver + ?Sized),
    v: &Validation<'_>,
) -> Result<VerifiedJwt, JwtError> {
    verify_with(token, keys, v, claims::Expiry::Ignore)
}

fn verify_with(
    token: &str,
    keys: &(impl KeyResolver + ?Sized),
    v: &Validation<'_>,
    expiry: claims::Expiry,
) -> Result<VerifiedJwt, JwtError> {
    let (header, payload) = check_signature(token, keys, v)?;
    // Only now, with the signature checked, is the payload parsed.
    let claims = parse_payload(&payload)?;
    claims::validate(header, claims, v, expiry)
}

/// Every check before the claims: size, shape, header policy, key and signature. Returns the
/// header and the decoded (still unparsed) payload of a token whose signature is good.
fn check_signature(
    token: &str,
    keys: &(impl KeyResolver + ?Sized),
    v: &Validation<'_>,
) -> Result<(Header, Vec<u8>), JwtError> {
    let parts = split(token, v.max_token_bytes)?;
    check_typ(parts.header.typ.as_deref(), v.typ)?;

    let key = keys
        .resolve(parts.header.kid.as_deref(), parts.alg)
        .ok_or(JwtError::KeyNotFound)?;
    // The key's algorithm was fixed when it was loaded; the header may not
    // choose another one (RFC 8725 section 3.1).
    if key.algorithm() != parts.alg {
        return Err(JwtError::AlgorithmMismatch);
    }
    let mut signature = [0u8; MAX_SIGNATURE_BYTES];
    let len = b64::decode_into(parts.signature, &mut signature)
        .ok_or(JwtError::Malformed("signature is not base64url"))?;
    if !key.verify_signature(parts.signing_input, &signature[..len]) {
        return Err(JwtError::BadSignature);
    }
    let payload =
        b64::decode(parts.payload).ok_or(JwtError::Malformed("payload is not base64url"))?;
    Ok((parts.header, payload))
}

/// Verifies a compact JWS as [`verify`] does (the same header, signature and claim checks, and
/// the same refusal of duplicate member names), then reads the claims into `C`. Members that
/// neither the claim checks nor `C` read are only checked for JSON syntax.
///
/// # Errors
/// The [`JwtError`] of [`verify`]; [`JwtError::Malformed`] when the verified claims do not
/// fit `C`.
pub fn verify_as<C: DeserializeOwned>(
    token: &str,
    keys: &(impl KeyResolver + ?Sized),
    v: &Validation<'_>,
) -> Result<VerifiedJwt<C>, JwtError> {
    let (header, payload) = check_signature(token, keys, v)?;
    // The payload is read twice, neither time into a tree of values: once for the duplicate
    // check and the registered claims validation reads (the rest skipped), once straight
    // into `C`. Building a whole JSON object first and converting it cost more than both.
    let registered = serde_json::from_slice::<RegisteredClaims>(&payload)
        .map_err(|_| JwtError::Malformed("payload is not a JSON object"))?;
    let verified = claims::validate(header, registered.0, v, claims::Expiry::Enforce)?;
    let claims = serde_json::from_slice::<C>(&payload)
        .map_err(|_| JwtError::Malformed("payload does not match the expected claims"))?;
    verified.try_map_claims(|_| Ok(claims))
}

/// Builds a [`VerifiedJwt`]; only the claims module calls this, after the
/// claims passed validation.
pub(crate) fn verified(
    header: Header,
    claims: Map<String, Value>,
    audience: Vec<String>,
    times: [Option<u64>; 3],
) -> VerifiedJwt {
    let [exp, nbf, iat] = times;
    VerifiedJwt {
        header,
        claims,
        audience,
        exp,
        nbf,
        iat,
    }
}

/// Applies the `typ` rule.
fn check_typ(typ: Option<&str>, rule: TypRule<'_>) -> Result<(), JwtError> {
    let ok = match rule {
        TypRule::Skip => true,
        TypRule::Exactly(expected) => typ.is_some_and(|typ| media_type_eq(typ, expected)),
        TypRule::JwtOrAbsent => typ.is_none_or(|typ| media_type_eq(typ, "JWT")),
    };
    if ok { Ok(()) } else { Err(JwtError::WrongType) }
}

/// Compares media types as RFC 7515 section 4.1.9 prescribes: a value
/// without `/` stands for `application/` plus the value, and media types
/// compare case-insensitively (RFC 2045 section 5.1).
fn media_type_eq(a: &str, b: &str) -> bool {
    fn short(media_type: &str) -> &str {
        const PREFIX: &str = "application/";
        match media_type.get(..PREFIX.len()) {
            Some(head) if head.eq_ignore_ascii_case(PREFIX) => {
                let rest = &media_type[PREFIX.len()..];
                if rest.contains('/') { media_type } else { rest }
            }
            _ => media_type,
        }
    }
    short(a).eq_ignore_ascii_case(short(b))
}
