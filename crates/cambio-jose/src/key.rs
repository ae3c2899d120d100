//! Verification keys: parsed once from a JWK, then shared cheaply.

use core::fmt;
use std::sync::Arc;

use aws_lc_rs::signature::{ParsedPublicKey, RsaPublicKeyComponents};

use crate::alg::Algorithm;
use crate::b64;
use crate::error::JoseError;
use crate::jwk::{Jwk, JwkSet};

/// The largest JWK set document [`parse_jwks`] accepts. Real sets are a few
/// KiB; the bound keeps a hostile or broken identity provider from making us
/// buffer and parse arbitrary amounts of JSON.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// RFC 7518 section 3.3 requires RSA keys of at least 2048 bits; 8192 is the
/// upper bound of the aws-lc-rs verification parameters.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// A public key bound to exactly one algorithm.
///
/// Binding the algorithm at load time, and comparing it with the token
/// header, is what prevents algorithm confusion (for example an RSA public
/// key being used as an HMAC secret, or a PS256 key accepting RS256).
/// The key is parsed once; clones share it.
#[derive(Clone)]
pub struct VerifyingKey {
    inner: Arc<Inner>,
}

struct Inner {
    alg: Algorithm,
    key: ParsedPublicKey,
    /// The canonical public JWK (with `kid`, `use` and `alg`), kept so that
    /// the key can be republished without re-encoding.
    jwk: Jwk,
}

impl VerifyingKey {
    /// Parses a public JWK.
    ///
    /// The algorithm is `jwk.alg` when present, else `fallback_alg`; a key
    /// with neither is refused rather than guessed. The key type and curve
    /// must fit the algorithm, RSA moduli must have 2048 to 8192 bits,
    /// `use` must be absent or `sig`, `key_ops` (if present) must allow
    /// `verify`, and keys carrying private members are refused.
    ///
    /// # Errors
    /// [`JoseError::UnsupportedKey`] / [`JoseError::UnsupportedAlgorithm`] when
    /// the key is not for JWS verification with our algorithms,
    /// [`JoseError::InvalidKey`] when the key material is broken or private.
    pub fn from_jwk(jwk: &Jwk, fallback_alg: Option<Algorithm>) -> Result<VerifyingKey, JoseError> {
        // Private material is checked first: whatever else is wrong, a
        // published private key is the more important finding.
        if jwk.has_private_members() {
            return Err(JoseError::InvalidKey("JWK contains private key members"));
        }
        // RFC 7517 section 4.2: "enc" keys are for encryption only.
        if jwk.use_.as_deref().is_some_and(|use_| use_ != "sig") {
            return Err(JoseError::UnsupportedKey("JWK use is not sig"));
        }
        // RFC 7517 section 4.3: key_ops restricts the operations allowed.
        let allows_verify = |ops: &Vec<String>| ops.iter().any(|op| op == "verify");
        if jwk.key_ops.as_ref().is_some_and(|ops| !allows_verify(ops)) {
            return Err(JoseError::UnsupportedKey(
                "JWK key_ops does not allow verify",
            ));
        }
        let alg = match (&jwk.alg, fallback_alg) {
            (Some(name), _) => Algorithm::from_name(name)
                .ok_or_else(|| JoseError::UnsupportedAlgorithm(name.clone()))?,
            (None, Some(alg)) => alg,
            (None, None) => return Err(JoseError::UnsupportedKey("JWK has no alg")),
        };
        if jwk.kty != alg.key_type() {
            return Err(JoseError::UnsupportedKey(
                "JWK kty does not fit the algorithm",
            ));
        }
        let key = match alg {
            Algorithm::Es256 => parse_ec_p256(jwk)?,
            Algorithm::EdDsa => parse_ed25519(jwk)?,
            Algorithm::Rs256 | Algorithm::Ps256 => parse_rsa(jwk, alg)?,
        };
        let public = Jwk {
            kty: jwk.kty.clone(),
            kid: jwk.kid.clone(),
            use_: Some("sig".to_owned()),
            key_ops: None,
            alg: Some(alg.as_str().to_owned()),
            crv: jwk.crv.clone(),
            x: jwk.x.clone(),
            y: jwk.y.clone(),
            n: jwk.n.clone(),
            e: jwk.e.clone(),
            ..Jwk::default()
        };
        Ok(VerifyingKey {
            inner: Arc::new(Inner {
                alg,
                key,
                jwk: public,
            }),
        })
    }

    /// The key identifier, if the JWK had one.
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.inner.jwk.kid.as_deref()
    }

    /// The one algorithm this key verifies.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.inner.alg
    }

    /// The public JWK, with `use` `sig` and `alg` set.
    #[must_use]
    pub fn to_jwk(&self) -> Jwk {
        self.inner.jwk.clone()
    }

    /// Verifies `signature` over `message` with the pre-parsed key.
    pub(crate) fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        self.inner.key.verify_sig(message, signature).is_ok()
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.inner.alg)
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

/// Decodes a required base64url member.
fn member(value: &Option<String>) -> Result<Vec<u8>, JoseError> {
    let value = value
        .as_deref()
        .ok_or(JoseError::InvalidKey("missing required JWK member"))?;
    b64::decode(value.as_bytes()).ok_or(JoseError::InvalidKey("JWK member is not base64url"))
}

fn parse_ec_p256(jwk: &Jwk) -> Result<ParsedPublicKey, JoseError> {
    if jwk.crv.as_deref() != Some("P-256") {
        return Err(JoseError::UnsupportedKey("EC key is not on P-256"));
    }
    // RFC 7518 section 6.2.1.2: coordinates are the full 32 octets, never
    // shortened, so the uncompressed SEC1 point is exactly 65 bytes.
    let (x, y) = (member(&jwk.x)?, member(&jwk.y)?);
    if x.len() != 32 || y.len() != 32 {
        return Err(JoseError::InvalidKey("EC coordinates must be 32 bytes"));
    }
    let mut point = [0u8; 65];
    point[0] = 0x04;
    point[1..33].copy_from_slice(&x);
    point[33..].copy_from_slice(&y);
    // Parsing checks that the point is on the curve.
    ParsedPublicKey::new(Algorithm::Es256.verification(), point)
        .map_err(|_| JoseError::InvalidKey("EC point is not on P-256"))
}

fn parse_ed25519(jwk: &Jwk) -> Result<ParsedPublicKey, JoseError> {
    if jwk.crv.as_deref() != Some("Ed25519") {
        return Err(JoseError::UnsupportedKey("OKP key is not Ed25519"));
    }
    let x = member(&jwk.x)?;
    // The raw key is 32 bytes (RFC 8037 section 2); checking here also stops
    // the parser from trying to read other lengths as SubjectPublicKeyInfo.
    if x.len() != 32 {
        return Err(JoseError::InvalidKey("Ed25519 public key must be 32 bytes"));
    }
    ParsedPublicKey::new(Algorithm::EdDsa.verification(), x)
        .map_err(|_| JoseError::InvalidKey("invalid Ed25519 public key"))
}

fn parse_rsa(jwk: &Jwk, alg: Algorithm) -> Result<ParsedPublicKey, JoseError> {
    let params = alg
        .rsa_parameters()
        .ok_or(JoseError::UnsupportedKey("not an RSA algorithm"))?;
    let (n, e) = (member(&jwk.n)?, member(&jwk.e)?);
    // RFC 7518 section 6.3.1 asks for minimal encodings, but some publishers
    // prepend a zero octet; stripping it changes no value and aws-lc-rs
    // rejects leading zeros.
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    let bits = bit_length(n);
    if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        return Err(JoseError::UnsupportedKey(
            "RSA modulus must have 2048 to 8192 bits",
        ));
    }
    // A sane public exponent is odd, at least 3 and small; aws-lc refuses
    // exponents above 33 bits at verification time anyway, so refusing them
    // here surfaces the problem at load instead of on every token.
    let e_is_sane = (1..=4).contains(&e.len())
        && e.last().is_some_and(|last| last & 1 == 1)
        && !(e.len() == 1 && e[0] < 3);
    if !e_is_sane {
        return Err(JoseError::InvalidKey("unacceptable RSA public exponent"));
    }
    RsaPublicKeyComponents { n, e }
        .to_parsed_public_key(params)
        .map_err(|_| JoseError::InvalidKey("invalid RSA public key"))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn bit_length(big_endian: &[u8]) -> usize {
    match big_endian.first() {
        Some(&first) => big_endian.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// Parses a JWK set into verification keys.
///
/// Keys that are simply not for us are skipped: `use` other than `sig`,
/// `key_ops` without `verify`, unsupported `kty`, curve or `alg`, RSA moduli
/// outside 2048 to 8192 bits, and keys whose algorithm is neither stated nor
/// given as `fallback_alg`. A document over [`MAX_JWKS_BYTES`], malformed
/// JSON, or a key that claims to be usable but has broken or private
/// material fails the whole set, because that signals a misconfigured or
/// compromised publisher rather than a harmless extra key.
///
/// # Errors
/// [`JoseError::TooLarge`], [`JoseError::Json`] or [`JoseError::InvalidKey`].
pub fn parse_jwks(
    json: &[u8],
    fallback_alg: Option<Algorithm>,
) -> Result<Vec<VerifyingKey>, JoseError> {
    if json.len() > MAX_JWKS_BYTES {
        return Err(JoseError::TooLarge);
    }
    // serde would also accept a JSON array in place of the object (structs
    // deserialize from sequences); RFC 7517 section 5 requires an object.
    let first = json.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(JoseError::Json(serde::de::Error::custom(
            "a JWK set must be a JSON object",
        )));
    }
    let set: JwkSet = serde_json::from_slice(json)?;
    let mut keys = Vec::with_capacity(set.keys.len());
    for jwk in &set.keys {
        match VerifyingKey::from_jwk(jwk, fallback_alg) {
            Ok(key) => keys.push(key),
            Err(err) if err.is_unsupported() => {}
            Err(err) => return Err(err),
        }
    }
    Ok(keys)
}
