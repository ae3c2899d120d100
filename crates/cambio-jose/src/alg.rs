//! The closed set of JWS algorithms Cambio signs and verifies with.

use core::fmt;
use core::str::FromStr;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256,
    VerificationAlgorithm,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::JoseError;

/// A JWS signature algorithm (RFC 7518 section 3.1, RFC 8037 section 3.1).
///
/// The set is deliberately closed: `none`, the HMAC family and everything
/// else are not representable, so a token naming them can never reach a
/// verification routine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA with P-256 and SHA-256, fixed 64-byte `r || s` signatures (RFC 7518 section 3.4).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 section 3.3).
    Rs256,
    /// RSASSA-PSS with SHA-256 and MGF1 with SHA-256 (RFC 7518 section 3.5).
    Ps256,
    /// EdDSA with Ed25519 (RFC 8037 section 3.1).
    EdDsa,
}

impl Algorithm {
    /// Every supported algorithm, in a stable order.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Es256,
        Algorithm::Rs256,
        Algorithm::Ps256,
        Algorithm::EdDsa,
    ];

    /// The registered JWS `alg` name (case-sensitive, RFC 7515 section 4.1.1).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::Rs256 => "RS256",
            Algorithm::Ps256 => "PS256",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// Maps an `alg` value to a supported algorithm without allocating.
    ///
    /// The comparison is exact because RFC 7515 section 4.1.1 makes `alg` a
    /// case-sensitive string; accepting `es256` or `NONE` would only widen
    /// the attack surface.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "ES256" => Some(Algorithm::Es256),
            "RS256" => Some(Algorithm::Rs256),
            "PS256" => Some(Algorithm::Ps256),
            "EdDSA" => Some(Algorithm::EdDsa),
            _ => None,
        }
    }

    /// The JWK key type this algorithm needs (RFC 7518 section 6.1, RFC 8037 section 2).
    #[must_use]
    pub const fn key_type(self) -> &'static str {
        match self {
            Algorithm::Es256 => "EC",
            Algorithm::Rs256 | Algorithm::Ps256 => "RSA",
            Algorithm::EdDsa => "OKP",
        }
    }

    /// The aws-lc-rs verification parameters. Each one pins the curve or the
    /// RSA modulus range (2048 to 8192 bits) and, for ECDSA, the fixed-width
    /// signature encoding that JWS mandates (RFC 7518 section 3.4).
    pub(crate) fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Algorithm::Es256 => &ECDSA_P256_SHA256_FIXED,
            Algorithm::Rs256 => &RSA_PKCS1_2048_8192_SHA256,
            Algorithm::Ps256 => &RSA_PSS_2048_8192_SHA256,
            Algorithm::EdDsa => &ED25519,
        }
    }

    /// The RSA parameters for the RSA algorithms, `None` otherwise.
    pub(crate) fn rsa_parameters(self) -> Option<&'static aws_lc_rs::signature::RsaParameters> {
        match self {
            Algorithm::Rs256 => Some(&RSA_PKCS1_2048_8192_SHA256),
            Algorithm::Ps256 => Some(&RSA_PSS_2048_8192_SHA256),
            Algorithm::Es256 | Algorithm::EdDsa => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = JoseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::from_name(s).ok_or_else(|| JoseError::UnsupportedAlgorithm(s.to_owned()))
    }
}

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;

        impl serde::de::Visitor<'_> for NameVisitor {
            type Value = Algorithm;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one of ES256, RS256, PS256, EdDSA")
            }

            // A visitor sees the string without allocating it first.
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Algorithm, E> {
                Algorithm::from_name(name)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(name), &self))
            }
        }

        deserializer.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_exactly() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>().unwrap(), alg);
            assert_eq!(alg.to_string(), alg.as_str());
            let json = serde_json::to_string(&alg).unwrap();
            assert_eq!(json, format!("\"{}\"", alg.as_str()));
            assert_eq!(serde_json::from_str::<Algorithm>(&json).unwrap(), alg);
        }
    }

    #[test]
    fn refuses_other_names() {
        for name in [
            "none", "None", "HS256", "es256", "EDDSA", "ES384", "RS512", "", "ES256 ",
        ] {
            assert!(
                name.parse::<Algorithm>().is_err(),
                "{name:?} must be refused"
            );
            assert!(serde_json::from_str::<Algorithm>(&format!("\"{name}\"")).is_err());
        }
    }
}
