//! JSON Web Keys (RFC 7517) and JWK thumbprints (RFC 7638).

use core::fmt;

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::b64;
use crate::error::JoseError;

/// A JSON Web Key, as found in a JWK set (RFC 7517 section 4).
///
/// Only the public members Cambio needs are modelled; unknown members are
/// ignored on input. The private members (`d`, `p`, `q`, `dp`, `dq`, `qi`,
/// `oth`, and `k` for symmetric keys) are recognised only so that a key
/// carrying them can be refused: a published JWK with private material is a
/// leaked key. They are never serialized back out.
#[derive(Serialize, Deserialize, Clone, PartialEq, Default)]
pub struct Jwk {
    /// Key type: `EC`, `RSA` or `OKP` (RFC 7517 section 4.1).
    pub kty: String,
    /// Key identifier (RFC 7517 section 4.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Public key use; only absent or `sig` is accepted (RFC 7517 section 4.2).
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Permitted operations (RFC 7517 section 4.3); must allow `verify` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ops: Option<Vec<String>>,
    /// The algorithm the key is meant for (RFC 7517 section 4.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Curve: `P-256` for EC, `Ed25519` for OKP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate or OKP public key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus, base64url big-endian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url big-endian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Private member (EC/OKP private key or RSA private exponent); input only.
    #[serde(default, skip_serializing)]
    pub d: Option<serde_json::Value>,
    /// Private RSA member; input only.
    #[serde(default, skip_serializing)]
    pub p: Option<serde_json::Value>,
    /// Private RSA member; input only.
    #[serde(default, skip_serializing)]
    pub q: Option<serde_json::Value>,
    /// Private RSA member; input only.
    #[serde(default, skip_serializing)]
    pub dp: Option<serde_json::Value>,
    /// Private RSA member; input only.
    #[serde(default, skip_serializing)]
    pub dq: Option<serde_json::Value>,
    /// Private RSA member; input only.
    #[serde(default, skip_serializing)]
    pub qi: Option<serde_json::Value>,
    /// Private RSA member (other primes); input only.
    #[serde(default, skip_serializing)]
    pub oth: Option<serde_json::Value>,
    /// Symmetric key value (`kty` `oct`); input only.
    #[serde(default, skip_serializing)]
    pub k: Option<serde_json::Value>,
}

impl Jwk {
    /// Whether any private or symmetric key member is present.
    #[must_use]
    pub fn has_private_members(&self) -> bool {
        [
            &self.d, &self.p, &self.q, &self.dp, &self.dq, &self.qi, &self.oth, &self.k,
        ]
        .iter()
        .any(|member| member.is_some())
    }

    /// The RFC 7638 JWK thumbprint: SHA-256 over the required public members
    /// in lexicographic order without whitespace, base64url without padding.
    ///
    /// The required members are `crv`, `kty`, `x`, `y` for EC (RFC 7638
    /// section 3.2), `e`, `kty`, `n` for RSA (same section) and `crv`,
    /// `kty`, `x` for OKP (RFC 8037 section 2).
    ///
    /// # Errors
    /// [`JoseError::UnsupportedKey`] for another `kty`, [`JoseError::InvalidKey`]
    /// when a required member is missing.
    pub fn thumbprint(&self) -> Result<String, JoseError> {
        let members: [(&str, &Option<String>); 3] = match self.kty.as_str() {
            "EC" => [("crv", &self.crv), ("x", &self.x), ("y", &self.y)],
            "RSA" => [("e", &self.e), ("n", &self.n), ("", &None)],
            "OKP" => [("crv", &self.crv), ("x", &self.x), ("", &None)],
            _ => return Err(JoseError::UnsupportedKey("unsupported kty")),
        };
        let mut json = String::with_capacity(512);
        json.push('{');
        // `kty` sorts after `crv` and `e` and before `n` and `x`, so it is
        // written right after the first member in all three key types.
        let mut first = true;
        for (name, value) in members {
            if name.is_empty() {
                continue;
            }
            let value = value
                .as_deref()
                .ok_or(JoseError::InvalidKey("missing required JWK member"))?;
            if !first {
                json.push(',');
            }
            push_member(&mut json, name, value);
            if first {
                json.push(',');
                push_member(&mut json, "kty", &self.kty);
                first = false;
            }
        }
        json.push('}');
        let hash = digest::digest(&digest::SHA256, json.as_bytes());
        Ok(b64::encode(hash.as_ref()))
    }
}

/// Writes `"name":"value"` with JSON string escaping. Member values are
/// base64url or registered names in practice, but escaping keeps the hash
/// input well defined for any string (RFC 7638 section 3).
fn push_member(out: &mut String, name: &str, value: &str) {
    out.push('"');
    out.push_str(name);
    out.push_str("\":");
    // Serializing a &str to JSON cannot fail; the fallback is unreachable.
    match serde_json::to_string(value) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

/// Private members are redacted so that a key pasted into a log stays secret.
impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |member: &Option<serde_json::Value>| member.as_ref().map(|_| "<redacted>");
        f.debug_struct("Jwk")
            .field("kty", &self.kty)
            .field("kid", &self.kid)
            .field("use", &self.use_)
            .field("key_ops", &self.key_ops)
            .field("alg", &self.alg)
            .field("crv", &self.crv)
            .field("x", &self.x)
            .field("y", &self.y)
            .field("n", &self.n)
            .field("e", &self.e)
            .field("d", &redact(&self.d))
            .field("p", &redact(&self.p))
            .field("q", &redact(&self.q))
            .field("dp", &redact(&self.dp))
            .field("dq", &redact(&self.dq))
            .field("qi", &redact(&self.qi))
            .field("oth", &redact(&self.oth))
            .field("k", &redact(&self.k))
            .finish()
    }
}

/// A JWK set document (RFC 7517 section 5).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct JwkSet {
    /// The keys, in document order.
    pub keys: Vec<Jwk>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example key of RFC 7638 section 3.1 and its published thumbprint.
    #[test]
    fn rfc7638_section_3_1_vector() {
        let jwk: Jwk = serde_json::from_str(
            r#"{
              "kty": "RSA",
              "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
              "e": "AQAB",
              "alg": "RS256",
              "kid": "2011-04-29"
            }"#,
        )
        .unwrap();
        assert_eq!(
            jwk.thumbprint().unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    /// The Ed25519 example of RFC 8037 appendix A.3.
    #[test]
    fn rfc8037_okp_vector() {
        let jwk = Jwk {
            kty: "OKP".into(),
            crv: Some("Ed25519".into()),
            x: Some("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into()),
            ..Jwk::default()
        };
        assert_eq!(
            jwk.thumbprint().unwrap(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn private_members_are_detected_redacted_and_not_serialized() {
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"OKP","crv":"Ed25519","x":"AA","d":"c2VjcmV0","extra":[1,2]}"#,
        )
        .unwrap();
        assert!(jwk.has_private_members());
        assert!(!format!("{jwk:?}").contains("c2VjcmV0"));
        let out = serde_json::to_string(&jwk).unwrap();
        assert_eq!(out, r#"{"kty":"OKP","crv":"Ed25519","x":"AA"}"#);
    }

    #[test]
    fn missing_member_is_an_error() {
        let jwk = Jwk {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            x: Some("AA".into()),
            ..Jwk::default()
        };
        assert!(matches!(jwk.thumbprint(), Err(JoseError::InvalidKey(_))));
    }
}
