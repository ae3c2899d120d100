//! The JOSE header of a compact JWS, parsed strictly.

use core::fmt;
use std::borrow::Cow;
use std::collections::HashSet;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::error::JwtError;

/// The header parameters a verifier or router may need.
///
/// Only tokens whose header passed every policy check are ever returned,
/// so `alg` always names a supported algorithm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Header {
    /// The signature algorithm (RFC 7515 section 4.1.1).
    pub alg: String,
    /// The media type of the whole token (RFC 7515 section 4.1.9).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// The key identifier (RFC 7515 section 4.1.4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The content type of the payload (RFC 7515 section 4.1.10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cty: Option<String>,
}

impl Header {
    /// The parsed algorithm. Always `Some` for headers returned by this crate.
    #[must_use]
    pub fn algorithm(&self) -> Option<Algorithm> {
        Algorithm::from_name(&self.alg)
    }
}

/// The raw result of reading the header object, before policy checks.
#[derive(Default)]
struct RawHeader {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<String>,
    cty: Option<String>,
    crit: bool,
    /// The first key-distribution parameter seen, if any.
    forbidden: Option<&'static str>,
    enc: bool,
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RawHeaderVisitor)
    }
}

struct RawHeaderVisitor;

/// Stores a string member, refusing duplicates: RFC 7515 section 4 lets a
/// parser either reject duplicate names or keep the last one, and rejecting
/// removes any chance of two components disagreeing about the header.
fn set_once<'de, A: MapAccess<'de>>(
    slot: &mut Option<String>,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::custom("duplicate header parameter"));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

/// The header parameter names we act on. Deserializing keys into this enum
/// through `visit_str` sees both borrowed and unescaped keys (so `\u0061lg`
/// is still `alg`) without allocating.
enum Field {
    Alg,
    Typ,
    Kid,
    Cty,
    Crit,
    Enc,
    Forbidden(&'static str),
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;

        impl Visitor<'_> for FieldVisitor {
            type Value = Field;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header parameter name")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Field, E> {
                Ok(match name {
                    "alg" => Field::Alg,
                    "typ" => Field::Typ,
                    "kid" => Field::Kid,
                    "cty" => Field::Cty,
                    "crit" => Field::Crit,
                    "enc" => Field::Enc,
                    // These make a verifier fetch (jku, x5u) or trust (jwk,
                    // x5c) a key chosen by the sender, which would let anyone
                    // sign tokens (RFC 8725 sections 2.4 and 3.10).
                    "jku" => Field::Forbidden("jku"),
                    "x5u" => Field::Forbidden("x5u"),
                    "jwk" => Field::Forbidden("jwk"),
                    "x5c" => Field::Forbidden("x5c"),
                    _ => Field::Other,
                })
            }
        }

        deserializer.deserialize_identifier(FieldVisitor)
    }
}

impl<'de> Visitor<'de> for RawHeaderVisitor {
    type Value = RawHeader;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JOSE header object")
    }

    // Only `visit_map` is implemented, so a JSON array or scalar is refused
    // (serde's derived structs would otherwise accept arrays).
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawHeader, A::Error> {
        let mut header = RawHeader::default();
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Alg => set_once(&mut header.alg, &mut map)?,
                Field::Typ => set_once(&mut header.typ, &mut map)?,
                Field::Kid => set_once(&mut header.kid, &mut map)?,
                Field::Cty => set_once(&mut header.cty, &mut map)?,
                Field::Crit | Field::Enc | Field::Forbidden(_) | Field::Other => {
                    map.next_value::<Checked>()?;
                    match field {
                        Field::Crit => header.crit = true,
                        Field::Enc => header.enc = true,
                        Field::Forbidden(name) => {
                            header.forbidden = header.forbidden.or(Some(name))
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(header)
    }
}

/// Parses decoded header bytes and applies the header policy. Returns the
/// header and its algorithm.
pub(crate) fn parse(json: &[u8]) -> Result<(Header, Algorithm), JwtError> {
    let raw: RawHeader = serde_json::from_slice(json)
        .map_err(|_| JwtError::Malformed("header is not a valid JSON object"))?;
    let alg = raw.alg.ok_or(JwtError::Malformed("header has no alg"))?;
    // `none`, HMAC and anything else outside our closed set stop here, so
    // an HS256 token "signed" with a public key never reaches a verifier.
    let algorithm = Algorithm::from_name(&alg).ok_or(JwtError::UnsupportedAlgorithm)?;
    if raw.enc {
        // `enc` only exists in JWE headers (RFC 7516 section 4.1.2).
        return Err(JwtError::Encrypted);
    }
    if raw.crit {
        // RFC 7515 section 4.1.11: a recipient that does not understand a
        // listed extension must reject the JWS; we implement none.
        return Err(JwtError::UnknownCritical);
    }
    if let Some(name) = raw.forbidden {
        return Err(JwtError::ForbiddenHeader(name));
    }
    Ok((
        Header {
            alg,
            typ: raw.typ,
            kid: raw.kid,
            cty: raw.cty,
        },
        algorithm,
    ))
}

/// The registered claims validation reads (`exp`, `nbf`, `iat`, `iss`, `sub`, `jti`, `aud`)
/// of a JSON object whose member names are all checked for duplicates exactly as
/// [`StrictObject`] checks them; every other member is skipped without being built.
pub(crate) struct RegisteredClaims(pub(crate) Map<String, Value>);

/// Names of the claims [`RegisteredClaims`] keeps.
const REGISTERED: [&str; 7] = ["exp", "nbf", "iat", "iss", "sub", "jti", "aud"];

/// Any JSON value, read through (so its strings are decoded and its nesting bounded exactly as
/// when a `Value` is built) and dropped.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CheckedVisitor;

        impl<'de> Visitor<'de> for CheckedVisitor {
            type Value = Checked;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
                while seq.next_element::<Checked>()?.is_some() {}
                Ok(Checked)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
                while map.next_entry::<Checked, Checked>()?.is_some() {}
                Ok(Checked)
            }
        }

        deserializer.deserialize_any(CheckedVisitor)
    }
}

/// A member name, borrowed from the input unless it held escapes.
struct MemberName<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;

        impl<'de> Visitor<'de> for NameVisitor {
            type Value = MemberName<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }

            fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Borrowed(name)))
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(name.to_owned())))
            }
        }

        deserializer.deserialize_str(NameVisitor)
    }
}

impl<'de> Deserialize<'de> for RegisteredClaims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = RegisteredClaims;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RegisteredClaims, A::Error> {
                let mut seen: HashSet<Cow<'de, str>> = HashSet::with_capacity(32);
                let mut registered = Map::new();
                while let Some(MemberName(name)) = map.next_key::<MemberName<'de>>()? {
                    if REGISTERED.contains(&name.as_ref()) {
                        registered.insert(name.to_string(), map.next_value::<Value>()?);
                    } else {
                        map.next_value::<Checked>()?;
                    }
                    if !seen.insert(name) {
                        return Err(de::Error::custom("duplicate claim name"));
                    }
                }
                Ok(RegisteredClaims(registered))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// A JSON object that refuses duplicate member names. RFC 7519 section 4
/// allows either rejecting duplicates or keeping the last; rejecting means
/// every consumer of the claims sees the same value.
pub(crate) struct StrictObject(pub(crate) Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = StrictObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictObject, A::Error> {
                let mut object = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: Value = map.next_value()?;
                    if object.insert(key, value).is_some() {
                        return Err(de::Error::custom("duplicate claim name"));
                    }
                }
                Ok(StrictObject(object))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}
