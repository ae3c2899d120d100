//! JWK and JWK set loading.

use serde_json::{Value, json};

use super::{check, good_claims, key, validation};
use crate::{Algorithm, JoseError, Jwk, JwkSet, MAX_JWKS_BYTES, VerifyingKey, b64, parse_jwks};

fn jwk(value: Value) -> Jwk {
    serde_json::from_value(value).unwrap()
}

/// A public JWK of one of the fixtures, as JSON, for mutation.
fn fixture_json(alg: Algorithm) -> Value {
    serde_json::to_value(key(alg).public_jwk()).unwrap()
}

#[test]
fn jwks_round_trip_verifies_tokens() {
    let set = JwkSet {
        keys: Algorithm::ALL
            .iter()
            .map(|alg| key(*alg).public_jwk())
            .collect(),
    };
    let json = serde_json::to_vec(&set).unwrap();
    let keys = parse_jwks(&json, None).unwrap();
    assert_eq!(keys.len(), 4);
    for alg in Algorithm::ALL {
        let token = key(alg).sign("JWT", &good_claims()).unwrap();
        let jwt = check(&token, &keys, &validation()).unwrap();
        assert_eq!(jwt.header().alg, alg.as_str());
    }
    for (parsed, alg) in keys.iter().zip(Algorithm::ALL) {
        assert_eq!(parsed.algorithm(), alg);
        assert_eq!(parsed.kid(), Some(key(alg).kid()));
        assert_eq!(parsed.to_jwk(), key(alg).public_jwk());
    }
    // Deserializing the set gives back the same JWKs.
    assert_eq!(serde_json::from_slice::<JwkSet>(&json).unwrap(), set);
}

#[test]
fn fallback_algorithm_applies_only_without_alg() {
    let mut rsa = fixture_json(Algorithm::Rs256);
    rsa.as_object_mut().unwrap().remove("alg");
    let rsa = jwk(rsa);
    assert!(matches!(
        VerifyingKey::from_jwk(&rsa, None),
        Err(JoseError::UnsupportedKey(_))
    ));
    let key_ps = VerifyingKey::from_jwk(&rsa, Some(Algorithm::Ps256)).unwrap();
    assert_eq!(key_ps.algorithm(), Algorithm::Ps256);
    // A fallback of the wrong family does not fit the key type.
    assert!(matches!(
        VerifyingKey::from_jwk(&rsa, Some(Algorithm::Es256)),
        Err(JoseError::UnsupportedKey(_))
    ));
    // An explicit alg wins over the fallback.
    let explicit = jwk(fixture_json(Algorithm::Es256));
    let key_es = VerifyingKey::from_jwk(&explicit, Some(Algorithm::Rs256)).unwrap();
    assert_eq!(key_es.algorithm(), Algorithm::Es256);

    // In a set, keys that the fallback does not fit are skipped.
    let mut es = fixture_json(Algorithm::Es256);
    es.as_object_mut().unwrap().remove("alg");
    let mut rs = fixture_json(Algorithm::Rs256);
    rs.as_object_mut().unwrap().remove("alg");
    let set = json!({"keys": [es, rs]}).to_string();
    let keys = parse_jwks(set.as_bytes(), Some(Algorithm::Rs256)).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].algorithm(), Algorithm::Rs256);
    assert!(parse_jwks(set.as_bytes(), None).unwrap().is_empty());
}

/// A syntactically valid RSA JWK whose modulus has `bits` bits.
fn rsa_jwk_with_bits(bits: usize) -> Value {
    let mut n = vec![0xC3u8; bits.div_ceil(8)];
    n[0] = 0xFF >> (n.len() * 8 - bits);
    *n.last_mut().unwrap() |= 1;
    json!({"kty": "RSA", "alg": "RS256", "kid": "weak", "n": b64::encode(&n), "e": "AQAB"})
}

#[test]
fn jwk_refusals() {
    let with = |alg: Algorithm, name: &str, value: Value| {
        let mut v = fixture_json(alg);
        v[name] = value;
        v
    };
    let unsupported = |e: &JoseError| {
        matches!(
            e,
            JoseError::UnsupportedKey(_) | JoseError::UnsupportedAlgorithm(_)
        )
    };
    let invalid = |e: &JoseError| matches!(e, JoseError::InvalidKey(_));
    type Class = fn(&JoseError) -> bool;
    let (unsupported, invalid): (Class, Class) = (unsupported, invalid);
    let cases: Vec<(&str, Value, Class)> = vec![
        ("RSA-1024", rsa_jwk_with_bits(1024), unsupported),
        ("RSA-2047", rsa_jwk_with_bits(2047), unsupported),
        ("RSA-16384", rsa_jwk_with_bits(16384), unsupported),
        (
            "use enc",
            with(Algorithm::Es256, "use", json!("enc")),
            unsupported,
        ),
        (
            "key_ops encrypt",
            with(Algorithm::Es256, "key_ops", json!(["encrypt"])),
            unsupported,
        ),
        (
            "alg HS256",
            with(Algorithm::Es256, "alg", json!("HS256")),
            unsupported,
        ),
        (
            "alg none",
            with(Algorithm::Es256, "alg", json!("none")),
            unsupported,
        ),
        (
            "kty oct",
            json!({"kty": "oct", "alg": "ES256"}),
            unsupported,
        ),
        (
            "EC with RS256",
            with(Algorithm::Es256, "alg", json!("RS256")),
            unsupported,
        ),
        (
            "RSA with EdDSA",
            with(Algorithm::Rs256, "alg", json!("EdDSA")),
            unsupported,
        ),
        (
            "P-384",
            with(Algorithm::Es256, "crv", json!("P-384")),
            unsupported,
        ),
        (
            "X25519",
            with(Algorithm::EdDsa, "crv", json!("X25519")),
            unsupported,
        ),
        (
            "private d",
            with(Algorithm::Es256, "d", json!("AAAA")),
            invalid,
        ),
        (
            "private p",
            with(Algorithm::Rs256, "p", json!("AAAA")),
            invalid,
        ),
        (
            "symmetric k",
            json!({"kty": "oct", "k": "c2VjcmV0"}),
            invalid,
        ),
        (
            "short x",
            with(Algorithm::Es256, "x", json!("AAAA")),
            invalid,
        ),
        (
            "padded x",
            with(
                Algorithm::EdDsa,
                "x",
                json!(format!(
                    "{}=",
                    fixture_json(Algorithm::EdDsa)["x"].as_str().unwrap()
                )),
            ),
            invalid,
        ),
        (
            "off-curve point",
            with(Algorithm::Es256, "y", json!(b64::encode(&[7u8; 32]))),
            invalid,
        ),
        (
            "missing n",
            json!({"kty": "RSA", "alg": "RS256", "e": "AQAB"}),
            invalid,
        ),
        (
            "even e",
            with(Algorithm::Rs256, "e", json!("AQAA")),
            invalid,
        ),
        ("e = 1", with(Algorithm::Rs256, "e", json!("AQ")), invalid),
        (
            "huge e",
            with(Algorithm::Rs256, "e", json!(b64::encode(&[1u8; 9]))),
            invalid,
        ),
    ];
    for (name, value, class) in cases {
        let err = VerifyingKey::from_jwk(&jwk(value.clone()), None).unwrap_err();
        assert!(class(&err), "{name}: {err:?}");
        // In a set, unsupported keys are skipped and invalid ones fail the set.
        let set = json!({"keys": [value, fixture_json(Algorithm::EdDsa)]}).to_string();
        match parse_jwks(set.as_bytes(), None) {
            Ok(keys) => {
                assert!(unsupported(&err), "{name} should fail the set");
                assert_eq!(keys.len(), 1, "{name}");
                assert_eq!(keys[0].algorithm(), Algorithm::EdDsa);
            }
            Err(set_err) => assert!(invalid(&set_err), "{name}: {set_err:?}"),
        }
    }
}

#[test]
fn leading_zero_in_modulus_is_tolerated() {
    let mut value = fixture_json(Algorithm::Rs256);
    let n = b64::decode(value["n"].as_str().unwrap().as_bytes()).unwrap();
    value["n"] = json!(b64::encode(&[&[0u8][..], &n].concat()));
    let parsed = VerifyingKey::from_jwk(&jwk(value), None).unwrap();
    let token = key(Algorithm::Rs256).sign("JWT", &good_claims()).unwrap();
    check(&token, &[parsed], &validation()).unwrap();
}

#[test]
fn jwks_document_refusals() {
    let big = format!(r#"{{"keys":[],"pad":"{}"}}"#, "a".repeat(MAX_JWKS_BYTES));
    assert!(matches!(
        parse_jwks(big.as_bytes(), None),
        Err(JoseError::TooLarge)
    ));
    for bad in [
        "",
        "{",
        "[]",
        r#"[[]]"#,
        r#"{"keys": {}}"#,
        r#"{"nokeys": []}"#,
        r#"{"keys": [{"kid": "no kty"}]}"#,
        r#"{"keys": [{"kty": "EC", "kid": 5}]}"#,
        r#"{"keys": []} x"#,
    ] {
        assert!(
            matches!(parse_jwks(bad.as_bytes(), None), Err(JoseError::Json(_))),
            "{bad:?}"
        );
    }
    // Unknown members and unknown key types are fine.
    let ok = r#"{"keys": [{"kty": "AKP", "alg": "ML-DSA-44", "pub": "AA"}], "extra": 1}"#;
    assert!(parse_jwks(ok.as_bytes(), None).unwrap().is_empty());
}

#[test]
fn verifying_key_debug_is_short() {
    let debug = format!("{:?}", key(Algorithm::Ps256).verifying_key());
    assert!(debug.starts_with("VerifyingKey"));
    assert!(debug.len() < 120, "{debug}");
}
