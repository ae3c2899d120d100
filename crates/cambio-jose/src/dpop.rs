//! DPoP proofs (RFC 9449): the one place a JWT is verified with a key it carries itself.
//!
//! Everywhere else a token naming its own key (`jwk`) is refused, because trusting it would let
//! anyone sign tokens (RFC 8725 §3.10). A DPoP proof is different: it does not claim to come
//! from anyone; it only shows that the sender holds the private half of the key in its header,
//! and the token it accompanies names that key (`cnf.jkt`). So this module accepts exactly that
//! shape and nothing more: `typ` `dpop+jwt`, an asymmetric algorithm from the caller's list, a
//! public `jwk` (no private members), no key references (`kid`, `jku`, `x5u`, `x5c`), no `crit`.
//! The protocol checks on the claims (`htm`, `htu`, `iat`, `ath`, `nonce`, `jti` use) are the
//! caller's (`cambio_core::dpop`), which decide with the request and the clock in hand.

use aws_lc_rs::digest;
use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::b64;
use crate::error::JwtError;
use crate::header::StrictObject;
use crate::jwk::Jwk;
use crate::key::VerifyingKey;

/// The largest proof decoded. An RSA 4096 key in the header is under 1 KiB of base64; a proof
/// several times that size is not a proof.
pub const MAX_DPOP_PROOF_BYTES: usize = 8 * 1024;

/// The largest signature decoded (RSA 8192 is 1 KiB).
const MAX_SIGNATURE_BYTES: usize = 1024;

/// A proof whose signature verified with the key in its own header.
#[derive(Debug, Clone)]
pub struct DpopProof {
    /// The RFC 7638 thumbprint of the proof's key: what `cnf.jkt` binds a token to.
    pub jkt: String,
    /// The proof's claims, for the protocol checks.
    pub claims: Map<String, Value>,
}

/// Verifies a DPoP proof's form and signature with the public key it carries.
///
/// # Errors
/// The [`JwtError`] for the first failed check; nothing here echoes the proof.
pub fn verify_dpop_proof(proof: &str, allowed: &[Algorithm]) -> Result<DpopProof, JwtError> {
    if proof.len() > MAX_DPOP_PROOF_BYTES {
        return Err(JwtError::TooLarge);
    }
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("a DPoP proof must be a compact JWS"));
    };
    if header_b64.is_empty() || payload_b64.is_empty() || signature_b64.is_empty() {
        return Err(JwtError::Malformed("empty JWS part"));
    }
    let header_json =
        b64::decode(header_b64.as_bytes()).ok_or(JwtError::Malformed("header is not base64url"))?;
    let header = serde_json::from_slice::<StrictObject>(&header_json)
        .map_err(|_| JwtError::Malformed("header is not a JSON object"))?
        .0;
    let (algorithm, jwk) = proof_header(&header, allowed)?;
    let key = VerifyingKey::from_jwk(&jwk, Some(algorithm))
        .map_err(|_| JwtError::Malformed("the proof's jwk is not a usable public key"))?;
    if key.algorithm() != algorithm {
        return Err(JwtError::AlgorithmMismatch);
    }
    let mut signature = [0u8; MAX_SIGNATURE_BYTES];
    let len = b64::decode_into(signature_b64.as_bytes(), &mut signature)
        .ok_or(JwtError::Malformed("signature is not base64url"))?;
    let signing_input = &proof.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    if !key.verify_signature(signing_input, &signature[..len]) {
        return Err(JwtError::BadSignature);
    }
    let payload = b64::decode(payload_b64.as_bytes())
        .ok_or(JwtError::Malformed("payload is not base64url"))?;
    let claims = serde_json::from_slice::<StrictObject>(&payload)
        .map_err(|_| JwtError::Malformed("payload is not a JSON object"))?
        .0;
    let jkt = jwk
        .thumbprint()
        .map_err(|_| JwtError::Malformed("the proof's jwk has no thumbprint"))?;
    Ok(DpopProof { jkt, claims })
}

/// The `ath` of an access token: base64url of its SHA-256 over the ASCII text (RFC 9449 §4.2).
#[must_use]
pub fn access_token_hash(token: &str) -> String {
    b64::encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

/// Applies the header rules and returns the algorithm and the key.
fn proof_header(
    header: &Map<String, Value>,
    allowed: &[Algorithm],
) -> Result<(Algorithm, Jwk), JwtError> {
    for name in header.keys() {
        match name.as_str() {
            "typ" | "alg" | "jwk" => {}
            "crit" => return Err(JwtError::UnknownCritical),
            // A proof's key is the one in `jwk`; a reference to another key has no place here.
            "kid" => return Err(JwtError::ForbiddenHeader("kid")),
            "jku" => return Err(JwtError::ForbiddenHeader("jku")),
            "x5u" => return Err(JwtError::ForbiddenHeader("x5u")),
            "x5c" => return Err(JwtError::ForbiddenHeader("x5c")),
            "enc" => return Err(JwtError::Encrypted),
            _ => {}
        }
    }
    let typ = header.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(JwtError::WrongType);
    }
    let algorithm = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Algorithm::from_name)
        .filter(|alg| allowed.contains(alg))
        .ok_or(JwtError::UnsupportedAlgorithm)?;
    let jwk_value = header
        .get("jwk")
        .filter(|v| v.is_object())
        .ok_or(JwtError::Malformed(
            "a DPoP proof carries its public key in jwk",
        ))?;
    let jwk: Jwk = serde_json::from_value(jwk_value.clone())
        .map_err(|_| JwtError::Malformed("the proof's jwk is not a JWK"))?;
    if jwk.has_private_members() {
        return Err(JwtError::Malformed(
            "the proof's jwk contains private key members",
        ));
    }
    Ok((algorithm, jwk))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

    /// Signs `claims` as a proof with `key`, its public JWK in the header, plus `extra` header
    /// members.
    fn proof(key: &SigningKey, typ: &str, extra: &[(&str, Value)], claims: &Value) -> String {
        let mut header = serde_json::json!({"typ": typ, "alg": key.algorithm().as_str(),
                                             "jwk": key.public_jwk()});
        for (name, value) in extra {
            header[*name] = value.clone();
        }
        key.sign_with_header(&header, claims).unwrap()
    }

    fn claims() -> Value {
        serde_json::json!({"jti": "j1", "htm": "POST", "htu": "https://as.example/token", "iat": 1})
    }

    #[test]
    fn a_proof_verifies_with_its_own_key_and_names_its_thumbprint() {
        for alg in [Algorithm::Es256, Algorithm::EdDsa, Algorithm::Ps256] {
            let key = SigningKey::generate(alg).unwrap();
            let p = proof(&key, "dpop+jwt", &[], &claims());
            let verified = verify_dpop_proof(&p, &[alg]).unwrap();
            assert_eq!(verified.jkt, key.public_jwk().thumbprint().unwrap());
            assert_eq!(verified.claims["htm"], "POST");
        }
    }

    #[test]
    fn refusals() {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let other = SigningKey::generate(Algorithm::Es256).unwrap();
        let es = [Algorithm::Es256];
        let check = |p: &str, allowed: &[Algorithm], expected: JwtError| {
            assert_eq!(verify_dpop_proof(p, allowed).unwrap_err(), expected, "{p}");
        };
        check(
            &proof(&key, "JWT", &[], &claims()),
            &es,
            JwtError::WrongType,
        );
        check(
            &proof(&key, "dpop+jwt", &[], &claims()),
            &[Algorithm::EdDsa],
            JwtError::UnsupportedAlgorithm,
        );
        check(
            &proof(
                &key,
                "dpop+jwt",
                &[("kid", serde_json::json!("k"))],
                &claims(),
            ),
            &es,
            JwtError::ForbiddenHeader("kid"),
        );
        check(
            &proof(
                &key,
                "dpop+jwt",
                &[("crit", serde_json::json!(["x"]))],
                &claims(),
            ),
            &es,
            JwtError::UnknownCritical,
        );
        // Another key in the header than the one that signed.
        check(
            &proof(
                &key,
                "dpop+jwt",
                &[("jwk", serde_json::to_value(other.public_jwk()).unwrap())],
                &claims(),
            ),
            &es,
            JwtError::BadSignature,
        );
        // A private member in the header's key.
        let mut private = serde_json::to_value(key.public_jwk()).unwrap();
        private["d"] = serde_json::json!("AAAA");
        check(
            &proof(&key, "dpop+jwt", &[("jwk", private)], &claims()),
            &es,
            JwtError::Malformed("the proof's jwk contains private key members"),
        );
        check(
            "a.b",
            &es,
            JwtError::Malformed("a DPoP proof must be a compact JWS"),
        );
        check(
            &"a".repeat(MAX_DPOP_PROOF_BYTES + 1),
            &es,
            JwtError::TooLarge,
        );
    }

    #[test]
    fn access_token_hash_is_rfc_9449s_example() {
        // RFC 9449 §4.3, figure 6: the access token and its `ath`.
        assert_eq!(
            access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
