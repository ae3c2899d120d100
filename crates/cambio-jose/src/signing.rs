//! Signing keys and JWT issuance.

use core::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256, RsaKeyPair, RsaPublicKeyComponents,
};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::alg::Algorithm;
use crate::b64;
use crate::error::JoseError;
use crate::jwk::Jwk;
use crate::key::VerifyingKey;

/// A private signing key, parsed once, with its derived public parts.
///
/// The `kid` is the RFC 7638 thumbprint of the public key, so it is stable
/// across restarts and needs no separate storage.
#[derive(Clone)]
pub struct SigningKey {
    alg: Algorithm,
    pair: Pair,
    /// PKCS#8 v1 DER, kept (and wiped on drop) so that `pkcs8_der` cannot fail.
    pkcs8: Zeroizing<Vec<u8>>,
    kid: String,
    verifying: VerifyingKey,
}

#[derive(Clone)]
enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

impl SigningKey {
    /// Generates a fresh key: P-256 for ES256, Ed25519 for EdDSA and a
    /// 2048-bit RSA key for RS256 and PS256.
    ///
    /// # Errors
    /// [`JoseError::Crypto`] if the library fails to generate or encode the key.
    pub fn generate(alg: Algorithm) -> Result<SigningKey, JoseError> {
        let pair = match alg {
            Algorithm::Es256 => Pair::Ec(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| JoseError::Crypto("EC key generation failed"))?,
            ),
            Algorithm::EdDsa => Pair::Ed(
                Ed25519KeyPair::generate()
                    .map_err(|_| JoseError::Crypto("Ed25519 key generation failed"))?,
            ),
            Algorithm::Rs256 | Algorithm::Ps256 => Pair::Rsa(
                RsaKeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| JoseError::Crypto("RSA key generation failed"))?,
            ),
        };
        SigningKey::from_pair(alg, pair)
    }

    /// Loads an unencrypted PKCS#8 private key for `alg`.
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] if the DER does not hold a key of the right
    /// type (P-256, Ed25519, RSA of 2048 to 8192 bits).
    pub fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Result<SigningKey, JoseError> {
        let pair = match alg {
            Algorithm::Es256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| JoseError::InvalidKey("not a PKCS#8 P-256 private key"))?,
            ),
            Algorithm::EdDsa => Pair::Ed(
                Ed25519KeyPair::from_pkcs8(der)
                    .map_err(|_| JoseError::InvalidKey("not a PKCS#8 Ed25519 private key"))?,
            ),
            Algorithm::Rs256 | Algorithm::Ps256 => Pair::Rsa(
                RsaKeyPair::from_pkcs8(der)
                    .map_err(|_| JoseError::InvalidKey("not a PKCS#8 RSA private key"))?,
            ),
        };
        SigningKey::from_pair(alg, pair)
    }

    /// Loads an unencrypted private key for `alg` in any of the DER forms other servers
    /// store: PKCS#8, or the key type's own structure (PKCS#1 `RSAPrivateKey` for RSA, which
    /// Keycloak's realm exports carry; RFC 5915 `ECPrivateKey` for P-256).
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] if the DER holds no key of the right type.
    pub fn from_private_der(alg: Algorithm, der: &[u8]) -> Result<SigningKey, JoseError> {
        let pair = match alg {
            Algorithm::Es256 => Pair::Ec(
                EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|_| JoseError::InvalidKey("not a P-256 private key"))?,
            ),
            Algorithm::EdDsa => Pair::Ed(
                Ed25519KeyPair::from_pkcs8(der)
                    .map_err(|_| JoseError::InvalidKey("not a PKCS#8 Ed25519 private key"))?,
            ),
            Algorithm::Rs256 | Algorithm::Ps256 => Pair::Rsa(
                RsaKeyPair::from_pkcs8(der)
                    .or_else(|_| RsaKeyPair::from_der(der))
                    .map_err(|_| JoseError::InvalidKey("not an RSA private key"))?,
            ),
        };
        SigningKey::from_pair(alg, pair)
    }

    /// The same key under another `kid`: keys taken over from another server keep the
    /// identifier their tokens already carry.
    ///
    /// # Errors
    /// [`JoseError::InvalidKey`] if `kid` is empty or not printable ASCII (it is written
    /// into every token header without escaping).
    pub fn with_kid(mut self, kid: &str) -> Result<SigningKey, JoseError> {
        if kid.is_empty()
            || kid.len() > 128
            || !kid
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        {
            return Err(JoseError::InvalidKey("kid must be printable ASCII"));
        }
        let mut jwk = self.verifying.to_jwk();
        jwk.kid = Some(kid.to_owned());
        self.verifying = VerifyingKey::from_jwk(&jwk, None)?;
        kid.clone_into(&mut self.kid);
        Ok(self)
    }

    /// The DER `SubjectPublicKeyInfo` of the public key (what Java's `getEncoded` returns,
    /// from which Keycloak derives its key ids).
    ///
    /// # Errors
    /// [`JoseError::Crypto`] if the library fails to encode the key.
    pub fn public_key_spki_der(&self) -> Result<Vec<u8>, JoseError> {
        use aws_lc_rs::encoding::PublicKeyX509Der;
        let failed = |_| JoseError::Crypto("public key encoding failed");
        match &self.pair {
            Pair::Ec(kp) => Ok(AsDer::<PublicKeyX509Der>::as_der(kp.public_key())
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            Pair::Rsa(kp) => Ok(AsDer::<PublicKeyX509Der>::as_der(kp.public_key())
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            Pair::Ed(kp) => Ok(AsDer::<PublicKeyX509Der>::as_der(kp.public_key())
                .map_err(failed)?
                .as_ref()
                .to_vec()),
        }
    }

    fn from_pair(alg: Algorithm, pair: Pair) -> Result<SigningKey, JoseError> {
        let encode_err = |_| JoseError::Crypto("PKCS#8 encoding failed");
        let (pkcs8, mut jwk) = match &pair {
            Pair::Ec(kp) => {
                let der = kp.to_pkcs8v1().map_err(encode_err)?;
                // The public key is the uncompressed SEC1 point 0x04 || x || y.
                let point = kp.public_key().as_ref();
                if point.len() != 65 {
                    return Err(JoseError::Crypto("unexpected P-256 public key encoding"));
                }
                let jwk = Jwk {
                    kty: "EC".to_owned(),
                    crv: Some("P-256".to_owned()),
                    x: Some(b64::encode(&point[1..33])),
                    y: Some(b64::encode(&point[33..])),
                    ..Jwk::default()
                };
                (Zeroizing::new(der.as_ref().to_vec()), jwk)
            }
            Pair::Ed(kp) => {
                let der = kp.to_pkcs8v1().map_err(encode_err)?;
                let jwk = Jwk {
                    kty: "OKP".to_owned(),
                    crv: Some("Ed25519".to_owned()),
                    x: Some(b64::encode(kp.public_key().as_ref())),
                    ..Jwk::default()
                };
                (Zeroizing::new(der.as_ref().to_vec()), jwk)
            }
            Pair::Rsa(kp) => {
                let der =
                    AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(kp).map_err(encode_err)?;
                let components = RsaPublicKeyComponents::<Vec<u8>>::from(kp.public_key());
                let jwk = Jwk {
                    kty: "RSA".to_owned(),
                    n: Some(b64::encode(&components.n)),
                    e: Some(b64::encode(&components.e)),
                    ..Jwk::default()
                };
                (Zeroizing::new(der.as_ref().to_vec()), jwk)
            }
        };
        let kid = jwk.thumbprint()?;
        jwk.kid = Some(kid.clone());
        jwk.alg = Some(alg.as_str().to_owned());
        jwk.use_ = Some("sig".to_owned());
        // Building the verifying key through the JWK path applies the same
        // checks as for foreign keys (RSA size, curve), so a weak stored key
        // is refused at load rather than used to sign.
        let verifying = VerifyingKey::from_jwk(&jwk, None)?;
        Ok(SigningKey {
            alg,
            pair,
            pkcs8,
            kid,
            verifying,
        })
    }

    /// The unencrypted PKCS#8 v1 DER of the private key, for storage.
    /// [`SigningKey::from_pkcs8`] reads it back with the same `kid`.
    #[must_use]
    pub fn pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        self.pkcs8.clone()
    }

    /// The `kid`: the RFC 7638 thumbprint, unless [`SigningKey::with_kid`] named another.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public JWK with `kty`, `kid`, `use` `sig`, `alg` and the key members.
    #[must_use]
    pub fn public_jwk(&self) -> Jwk {
        self.verifying.to_jwk()
    }

    /// The matching verification key (shares the parsed public key).
    #[must_use]
    pub fn verifying_key(&self) -> VerifyingKey {
        self.verifying.clone()
    }

    /// Signs `claims` as a compact JWS whose header is exactly
    /// `{"alg":…,"typ":…,"kid":…}` (RFC 7515 section 7.1).
    ///
    /// # Errors
    /// [`JoseError::Json`] if the claims fail to serialize,
    /// [`JoseError::ClaimsNotObject`] if they are not a JSON object, and
    /// [`JoseError::Crypto`] if signing fails.
    pub fn sign<C: Serialize>(&self, typ: &str, claims: &C) -> Result<String, JoseError> {
        let payload = serde_json::to_vec(claims)?;
        // RFC 7519 section 7.2 step 10: the claims set is a JSON object.
        // serde_json emits no leading whitespace, so the first byte decides.
        if payload.first() != Some(&b'{') {
            return Err(JoseError::ClaimsNotObject);
        }
        let mut header = Vec::with_capacity(40 + typ.len() + self.kid.len());
        header.extend_from_slice(b"{\"alg\":\"");
        header.extend_from_slice(self.alg.as_str().as_bytes());
        header.extend_from_slice(b"\",\"typ\":");
        serde_json::to_writer(&mut header, typ)?;
        // The kid is printable ASCII without quotes or backslashes (`with_kid` checks it),
        // which needs no JSON escaping.
        header.extend_from_slice(b",\"kid\":\"");
        header.extend_from_slice(self.kid.as_bytes());
        header.extend_from_slice(b"\"}");
        self.compact(&header, &payload)
    }

    /// The compact JWS of a serialized header and payload (RFC 7515 §7.1).
    fn compact(&self, header: &[u8], payload: &[u8]) -> Result<String, JoseError> {
        let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 400);
        b64::encode_into(header, &mut token);
        token.push('.');
        b64::encode_into(payload, &mut token);
        let signature = self.sign_bytes(token.as_bytes())?;
        token.push('.');
        b64::encode_into(&signature, &mut token);
        Ok(token)
    }

    /// Signs a DPoP proof (RFC 9449 §4.2): `typ` `dpop+jwt`, this key's algorithm, and its
    /// public JWK in the header (without `kid`, which a proof must not carry).
    ///
    /// # Errors
    /// As [`SigningKey::sign`].
    pub fn sign_dpop_proof<C: Serialize>(&self, claims: &C) -> Result<String, JoseError> {
        let mut jwk = self.public_jwk();
        jwk.kid = None;
        jwk.use_ = None;
        jwk.alg = None;
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": self.alg.as_str(), "jwk": jwk});
        self.sign_with_header(&header, claims)
    }

    /// Signs `claims` under a header given whole. Only for headers this crate (or its tests)
    /// builds: the header is not checked.
    pub(crate) fn sign_with_header<C: Serialize>(
        &self,
        header: &serde_json::Value,
        claims: &C,
    ) -> Result<String, JoseError> {
        let payload = serde_json::to_vec(claims)?;
        if payload.first() != Some(&b'{') {
            return Err(JoseError::ClaimsNotObject);
        }
        self.compact(&serde_json::to_vec(header)?, &payload)
    }

    /// Signs the JWS signing input with the fixed algorithm.
    pub(crate) fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        let failed = |_| JoseError::Crypto("signing failed");
        match &self.pair {
            // The FIXED signing algorithm yields the 64-byte r || s form
            // that RFC 7518 section 3.4 requires, not ASN.1 DER.
            Pair::Ec(kp) => Ok(kp
                .sign(&SystemRandom::new(), message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            Pair::Ed(kp) => Ok(kp.try_sign(message).map_err(failed)?.as_ref().to_vec()),
            Pair::Rsa(kp) => {
                let padding: &'static dyn aws_lc_rs::signature::RsaEncoding = match self.alg {
                    Algorithm::Ps256 => &RSA_PSS_SHA256,
                    _ => &RSA_PKCS1_SHA256,
                };
                let mut signature = vec![0u8; kp.public_modulus_len()];
                kp.sign(padding, &SystemRandom::new(), message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
        }
    }
}

/// Only public facts are shown: the private key never reaches a log.
impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}
