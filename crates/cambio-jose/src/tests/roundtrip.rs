//! Signing, key storage and verification round trips.

use serde_json::{Value, json};

use super::{NOW, check, good_claims, key, validation};
use crate::{Algorithm, JoseError, Jwk, SigningKey, b64, peek_unverified};

#[test]
fn sign_and_verify_each_algorithm() {
    for alg in Algorithm::ALL {
        let key = key(alg);
        let token = key.sign("JWT", &good_claims()).unwrap();
        let jwt = check(&token, &[key.verifying_key()], &validation())
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(jwt.header().alg, alg.as_str());
        assert_eq!(jwt.header().algorithm(), Some(alg));
        assert_eq!(jwt.header().kid.as_deref(), Some(key.kid()));
        assert_eq!(jwt.header().typ.as_deref(), Some("JWT"));
        assert_eq!(jwt.issuer(), Some("https://issuer.example"));
        assert_eq!(jwt.subject(), Some("alice"));
        assert_eq!(jwt.audience(), ["https://cambio.example".to_owned()]);
        assert_eq!(jwt.expires_at(), Some(NOW + 300));
        assert_eq!(jwt.not_before(), Some(NOW - 10));
        assert_eq!(jwt.issued_at(), Some(NOW - 10));
        assert_eq!(jwt.jwt_id(), Some("id-1"));
        assert_eq!(Value::Object(jwt.clone().into_claims()), good_claims());
        assert_eq!(jwt.claims().len(), 7);
    }
}

#[test]
fn signature_sizes_match_the_jws_encodings() {
    // ES256 must be the 64-byte r || s form of RFC 7518 section 3.4, not DER.
    for (alg, len) in [
        (Algorithm::Es256, 64),
        (Algorithm::EdDsa, 64),
        (Algorithm::Rs256, 256),
        (Algorithm::Ps256, 256),
    ] {
        let token = key(alg).sign("JWT", &good_claims()).unwrap();
        let signature = token.rsplit('.').next().unwrap();
        assert_eq!(
            b64::decode(signature.as_bytes()).unwrap().len(),
            len,
            "{alg}"
        );
    }
}

#[test]
fn header_is_exactly_alg_typ_kid() {
    let key = key(Algorithm::Es256);
    let token = key.sign("at+jwt", &json!({"a": 1})).unwrap();
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&b64::decode(header.as_bytes()).unwrap()).unwrap();
    assert_eq!(
        header,
        json!({"alg": "ES256", "typ": "at+jwt", "kid": key.kid()})
    );

    // A typ needing escapes still yields valid JSON.
    let token = key.sign("we\"ird", &json!({})).unwrap();
    let (header, _) = peek_unverified(&token, 1 << 14).unwrap();
    assert_eq!(header.typ.as_deref(), Some("we\"ird"));
}

#[test]
fn claims_must_be_an_object() {
    let key = key(Algorithm::EdDsa);
    for claims in [json!([1, 2]), json!("text"), json!(null), json!(5)] {
        assert!(matches!(
            key.sign("JWT", &claims),
            Err(JoseError::ClaimsNotObject)
        ));
    }
}

#[test]
fn pkcs8_round_trip_keeps_the_kid() {
    for alg in Algorithm::ALL {
        let original = key(alg);
        let loaded = SigningKey::from_pkcs8(alg, &original.pkcs8_der()).unwrap();
        assert_eq!(loaded.kid(), original.kid());
        assert_eq!(loaded.algorithm(), alg);
        assert_eq!(loaded.public_jwk(), original.public_jwk());
        // The reloaded key signs tokens the original's public key accepts.
        let token = loaded.sign("JWT", &good_claims()).unwrap();
        check(&token, &[original.verifying_key()], &validation()).unwrap();
    }
}

#[test]
fn pkcs8_of_the_wrong_type_is_refused() {
    let ec = key(Algorithm::Es256).pkcs8_der();
    let ed = key(Algorithm::EdDsa).pkcs8_der();
    let rsa = key(Algorithm::Rs256).pkcs8_der();
    for (alg, der) in [
        (Algorithm::Es256, &ed),
        (Algorithm::EdDsa, &ec),
        (Algorithm::Rs256, &ec),
        (Algorithm::Es256, &rsa),
    ] {
        assert!(matches!(
            SigningKey::from_pkcs8(alg, der),
            Err(JoseError::InvalidKey(_))
        ));
    }
    assert!(SigningKey::from_pkcs8(Algorithm::Es256, b"garbage").is_err());
}

#[test]
fn kid_is_the_rfc7638_thumbprint() {
    for alg in Algorithm::ALL {
        let key = key(alg);
        let jwk = key.public_jwk();
        assert_eq!(jwk.thumbprint().unwrap(), key.kid());
        assert_eq!(jwk.kid.as_deref(), Some(key.kid()));
        // SHA-256 is 32 bytes, 43 characters of base64url.
        assert_eq!(key.kid().len(), 43);
    }
}

#[test]
fn public_jwk_members() {
    let members = |jwk: &Jwk| {
        let value = serde_json::to_value(jwk).unwrap();
        let mut names: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        names.sort();
        names
    };
    let expect = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let ec = key(Algorithm::Es256).public_jwk();
    assert_eq!(
        members(&ec),
        expect(&["alg", "crv", "kid", "kty", "use", "x", "y"])
    );
    assert_eq!((ec.kty.as_str(), ec.crv.as_deref()), ("EC", Some("P-256")));
    let rsa = key(Algorithm::Ps256).public_jwk();
    assert_eq!(
        members(&rsa),
        expect(&["alg", "e", "kid", "kty", "n", "use"])
    );
    assert_eq!(
        (rsa.alg.as_deref(), rsa.e.as_deref()),
        (Some("PS256"), Some("AQAB"))
    );
    let okp = key(Algorithm::EdDsa).public_jwk();
    assert_eq!(
        members(&okp),
        expect(&["alg", "crv", "kid", "kty", "use", "x"])
    );
    assert_eq!(okp.use_.as_deref(), Some("sig"));
}

#[test]
fn debug_output_has_no_key_material() {
    for alg in Algorithm::ALL {
        let key = key(alg);
        let debug = format!("{key:?}");
        assert!(debug.contains(key.kid()));
        let der = key.pkcs8_der();
        // No run of the private key, in hex or base64, shows up.
        let hex: String = der[der.len() - 16..]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!debug.to_lowercase().contains(&hex), "{alg}");
        assert!(
            !debug.contains(&b64::encode(&der[der.len() - 16..])),
            "{alg}"
        );
        assert!(debug.len() < 200, "{alg}: {debug}");
    }
}

#[test]
fn fast_generation_gives_distinct_keys() {
    for alg in [Algorithm::Es256, Algorithm::EdDsa] {
        let a = SigningKey::generate(alg).unwrap();
        let b = SigningKey::generate(alg).unwrap();
        assert_ne!(a.kid(), b.kid());
    }
}

/// A key read from another server's DER (PKCS#1 for RSA, as Keycloak exports it) under the
/// `kid` that server gave it signs tokens with that `kid`, which verify with its public JWK.
#[test]
fn foreign_keys_keep_their_kid() {
    let rsa = key(Algorithm::Rs256);
    let pkcs8 = rsa.pkcs8_der();
    // The PKCS#1 RSAPrivateKey inside a 2048-bit key's PKCS#8 starts at byte 26.
    assert_eq!(pkcs8[22..24], [0x04, 0x82]);
    let foreign = SigningKey::from_private_der(Algorithm::Rs256, &pkcs8[26..])
        .unwrap()
        .with_kid("kc-kid_1")
        .unwrap();
    assert_eq!(foreign.kid(), "kc-kid_1");
    assert_eq!(foreign.public_jwk().kid.as_deref(), Some("kc-kid_1"));
    assert_eq!(foreign.public_jwk().n, rsa.public_jwk().n);
    let token = foreign
        .sign("at+jwt", &serde_json::json!({"exp": NOW + 60}))
        .unwrap();
    let keys = vec![foreign.verifying_key()];
    let verified = crate::verify(&token, &keys, &crate::Validation::new(NOW)).unwrap();
    assert_eq!(verified.header().kid.as_deref(), Some("kc-kid_1"));
    // The SubjectPublicKeyInfo is the same for either form of the private key.
    assert_eq!(
        foreign.public_key_spki_der().unwrap(),
        rsa.public_key_spki_der().unwrap()
    );
    // A kid that would need escaping in the header, or none, is refused.
    for bad in ["", "a\"b", "a\\b", "tab\tkid", "é"] {
        assert!(foreign.clone().with_kid(bad).is_err(), "{bad:?}");
    }
    // An EC key in PKCS#8 form keeps its thumbprint kid.
    let ec = key(Algorithm::Es256);
    let again = SigningKey::from_private_der(Algorithm::Es256, &ec.pkcs8_der()).unwrap();
    assert_eq!(again.kid(), ec.kid());
}
