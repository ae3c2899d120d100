//! Every structural and header refusal of the verifier.

use aws_lc_rs::hmac;

use super::{check, craft, good_claims, header_for, key, other_key, validation};
use crate::{Algorithm, JwtError, VerifyingKey, b64, peek_unverified};

/// The verification keys of all four shared keys.
fn all_keys() -> Vec<VerifyingKey> {
    Algorithm::ALL
        .iter()
        .map(|alg| key(*alg).verifying_key())
        .collect()
}

fn payload() -> String {
    good_claims().to_string()
}

/// Replaces one part of a token.
fn with_part(token: &str, index: usize, part: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[index] = part;
    parts.join(".")
}

#[test]
fn size_is_checked_before_anything_else() {
    let dots = ".".repeat(1 << 20);
    assert_eq!(
        check(&dots, &all_keys(), &validation()).unwrap_err(),
        JwtError::TooLarge
    );
    assert_eq!(
        peek_unverified(&dots, 16 * 1024).unwrap_err(),
        JwtError::TooLarge
    );

    // The limit is inclusive and configurable.
    let token = key(Algorithm::Es256).sign("JWT", &good_claims()).unwrap();
    let mut v = validation();
    v.max_token_bytes = token.len();
    assert!(check(&token, &all_keys(), &v).is_ok());
    v.max_token_bytes = token.len() - 1;
    assert_eq!(
        check(&token, &all_keys(), &v).unwrap_err(),
        JwtError::TooLarge
    );
}

#[test]
fn shape_refusals() {
    let key = key(Algorithm::EdDsa);
    let good = key.sign("JWT", &good_claims()).unwrap();
    let (h, p, s) = {
        let mut it = good.split('.');
        (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
    };
    let malformed = |what| Err(JwtError::Malformed(what));
    let cases: Vec<(String, Result<(), JwtError>)> = vec![
        (good.clone(), Ok(())),
        (String::new(), malformed("a JWS must have three parts")),
        (format!("{h}.{p}"), malformed("a JWS must have three parts")),
        (
            format!("{h}.{p}.{s}.x"),
            malformed("a JWS must have three parts"),
        ),
        // Five parts is a JWE: refused without decoding, let alone decompressing.
        (format!("{h}.{p}.{s}.x.y"), Err(JwtError::Encrypted)),
        (format!("{h}..{s}"), malformed("empty JWS part")),
        (format!("{h}.{p}."), malformed("empty JWS part")),
        (format!(".{p}.{s}"), malformed("empty JWS part")),
        // Padding, the standard alphabet and whitespace are all refused.
        (
            format!("{h}=.{p}.{s}"),
            malformed("header is not base64url"),
        ),
        (
            format!("{h}.{p}.{s}="),
            malformed("signature is not base64url"),
        ),
        (format!("{h}.{p}=.{s}"), Err(JwtError::BadSignature)),
        (
            format!("{h}.{p}.{}", s.replace('-', "+").replace('_', "/") + "+/"),
            malformed("signature is not base64url"),
        ),
        (
            format!(" {h}.{p}.{s}"),
            malformed("header is not base64url"),
        ),
        (
            format!("{h}.{p}.{s}\n"),
            malformed("signature is not base64url"),
        ),
    ];
    for (token, expected) in cases {
        let got = check(&token, &[key.verifying_key()], &validation()).map(|_| ());
        assert_eq!(got, expected, "{token:?}");
    }
}

#[test]
fn signed_payload_must_still_be_strict_base64url_and_json() {
    // Signed bad payloads get past the signature, then fail to decode.
    let key = key(Algorithm::Es256);
    let mut token = b64::encode(header_for(key).as_bytes());
    token.push_str(".e30=");
    let signature = key.sign_bytes(token.as_bytes()).unwrap();
    let token = format!("{token}.{}", b64::encode(&signature));
    assert_eq!(
        check(&token, &[key.verifying_key()], &validation()).unwrap_err(),
        JwtError::Malformed("payload is not base64url")
    );

    let header = header_for(key);
    for payload in [
        "[1]",
        "\"s\"",
        "null",
        "{",
        "{\"a\":1}x",
        r#"{"sub":"a","sub":"b"}"#,
    ] {
        let token = craft(&header, payload, key);
        assert_eq!(
            check(&token, &[key.verifying_key()], &validation()).unwrap_err(),
            JwtError::Malformed("payload is not a JSON object"),
            "{payload}"
        );
    }
}

#[test]
fn header_refusals() {
    let key = key(Algorithm::Es256);
    let kid = key.kid();
    let cases: Vec<(String, JwtError)> = vec![
        (
            "[\"ES256\"]".into(),
            JwtError::Malformed("header is not a valid JSON object"),
        ),
        (
            "\"ES256\"".into(),
            JwtError::Malformed("header is not a valid JSON object"),
        ),
        (
            "{\"alg\":\"ES256\"".into(),
            JwtError::Malformed("header is not a valid JSON object"),
        ),
        (
            r#"{"typ":"JWT"}"#.into(),
            JwtError::Malformed("header has no alg"),
        ),
        (
            r#"{"alg":256}"#.into(),
            JwtError::Malformed("header is not a valid JSON object"),
        ),
        (
            r#"{"alg":null}"#.into(),
            JwtError::Malformed("header is not a valid JSON object"),
        ),
        (
            r#"{"alg":"ES256","kid":7}"#.into(),
            JwtError::Malformed("header is not a valid JSON object"),
        ),
        // Duplicate names could be read differently by two parsers.
        (
            r#"{"alg":"ES256","alg":"ES256"}"#.into(),
            JwtError::Malformed("header is not a valid JSON object"),
        ),
        (r#"{"alg":"none"}"#.into(), JwtError::UnsupportedAlgorithm),
        (r#"{"alg":"None"}"#.into(), JwtError::UnsupportedAlgorithm),
        (r#"{"alg":"NONE"}"#.into(), JwtError::UnsupportedAlgorithm),
        (r#"{"alg":"HS256"}"#.into(), JwtError::UnsupportedAlgorithm),
        (r#"{"alg":"es256"}"#.into(), JwtError::UnsupportedAlgorithm),
        (r#"{"alg":"ES384"}"#.into(), JwtError::UnsupportedAlgorithm),
        (r#"{"alg":""}"#.into(), JwtError::UnsupportedAlgorithm),
        (
            format!(r#"{{"alg":"ES256","kid":"{kid}","crit":["exp"],"exp":1}}"#),
            JwtError::UnknownCritical,
        ),
        (
            format!(r#"{{"alg":"ES256","kid":"{kid}","crit":[]}}"#),
            JwtError::UnknownCritical,
        ),
        (
            format!(r#"{{"alg":"ES256","kid":"{kid}","b64":false,"crit":["b64"]}}"#),
            JwtError::UnknownCritical,
        ),
        (
            format!(r#"{{"alg":"ES256","kid":"{kid}","jku":"https://evil.example/jwks"}}"#),
            JwtError::ForbiddenHeader("jku"),
        ),
        (
            format!(r#"{{"alg":"ES256","kid":"{kid}","x5u":"https://evil.example/cert"}}"#),
            JwtError::ForbiddenHeader("x5u"),
        ),
        (
            format!(r#"{{"alg":"ES256","kid":"{kid}","x5c":["MIIB"]}}"#),
            JwtError::ForbiddenHeader("x5c"),
        ),
        (
            format!(r#"{{"alg":"ES256","kid":"{kid}","jwk":null}}"#),
            JwtError::ForbiddenHeader("jwk"),
        ),
        (
            format!(r#"{{"alg":"ES256","kid":"{kid}","enc":"A256GCM"}}"#),
            JwtError::Encrypted,
        ),
        // Escaped names are still recognised.
        (
            format!(r#"{{"alg":"ES256","kid":"{kid}","\u006aku":"x"}}"#),
            JwtError::ForbiddenHeader("jku"),
        ),
    ];
    for (header, expected) in cases {
        let token = craft(&header, &payload(), key);
        assert_eq!(
            check(&token, &[key.verifying_key()], &validation()).unwrap_err(),
            expected,
            "{header}"
        );
        assert_eq!(
            peek_unverified(&token, 1 << 14).unwrap_err(),
            expected,
            "peek {header}"
        );
    }
    // Unknown, harmless parameters are ignored and an escaped `alg` is `alg`.
    let header = format!(r#"{{"\u0061lg":"ES256","kid":"{kid}","x5t#S256":"abc","foo":{{}}}}"#);
    let token = craft(&header, &payload(), key);
    check(&token, &[key.verifying_key()], &validation()).unwrap();
}

#[test]
fn embedded_jwk_is_never_trusted() {
    // The attacker signs with their own key and embeds its public JWK,
    // reusing the kid of a trusted key.
    let trusted = key(Algorithm::Es256);
    let attacker = other_key(Algorithm::Es256);
    let jwk = serde_json::to_string(&attacker.public_jwk()).unwrap();
    let header = format!(r#"{{"alg":"ES256","kid":"{}","jwk":{jwk}}}"#, trusted.kid());
    let token = craft(&header, &payload(), &attacker);
    assert_eq!(
        check(&token, &[trusted.verifying_key()], &validation()).unwrap_err(),
        JwtError::ForbiddenHeader("jwk")
    );
}

#[test]
fn hmac_with_the_public_key_as_secret_is_refused() {
    // The classic key-confusion attack: HS256 keyed with bytes of the
    // public key, which the attacker knows.
    for alg in Algorithm::ALL {
        let key = key(alg);
        let jwk = key.public_jwk();
        let public_json = serde_json::to_vec(&jwk).unwrap();
        for secret in [public_json.as_slice(), key.kid().as_bytes()] {
            let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#, key.kid());
            let input = format!(
                "{}.{}",
                b64::encode(header.as_bytes()),
                b64::encode(payload().as_bytes())
            );
            let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
            let token = format!("{input}.{}", b64::encode(mac.as_ref()));
            assert_eq!(
                check(&token, &[key.verifying_key()], &validation()).unwrap_err(),
                JwtError::UnsupportedAlgorithm
            );
        }
    }
}

#[test]
fn alg_none_with_empty_signature_is_refused() {
    let key = key(Algorithm::EdDsa);
    let header = b64::encode(br#"{"alg":"none"}"#);
    let body = b64::encode(payload().as_bytes());
    for token in [format!("{header}.{body}."), format!("{header}.{body}.AA")] {
        let err = check(&token, &[key.verifying_key()], &validation()).unwrap_err();
        assert!(
            matches!(err, JwtError::UnsupportedAlgorithm | JwtError::Malformed(_)),
            "{err:?}"
        );
    }
}

#[test]
fn header_alg_must_equal_the_key_algorithm() {
    // RS256 and PS256 fixtures share one RSA key, hence one kid: a token
    // signed RS256 must not be accepted by the PS256-bound key.
    let rs = key(Algorithm::Rs256);
    let ps = key(Algorithm::Ps256);
    assert_eq!(rs.kid(), ps.kid());
    let token = rs.sign("JWT", &good_claims()).unwrap();
    assert_eq!(
        check(&token, &[ps.verifying_key()], &validation()).unwrap_err(),
        JwtError::AlgorithmMismatch
    );
    // With both keys available the matching one is chosen.
    check(
        &token,
        &[ps.verifying_key(), rs.verifying_key()],
        &validation(),
    )
    .unwrap();

    // A header naming EdDSA with the kid of the ES256 key.
    let es = key(Algorithm::Es256);
    let header = format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, es.kid());
    let token = craft(&header, &payload(), key(Algorithm::EdDsa));
    assert_eq!(
        check(&token, &[es.verifying_key()], &validation()).unwrap_err(),
        JwtError::AlgorithmMismatch
    );
}

#[test]
fn signature_refusals() {
    for alg in Algorithm::ALL {
        let key = key(alg);
        let keys = [key.verifying_key()];
        let token = key.sign("JWT", &good_claims()).unwrap();
        let parts: Vec<&str> = token.split('.').collect();

        // Tampered payload.
        let mut claims = good_claims();
        claims["sub"] = "mallory".into();
        let tampered = with_part(&token, 1, &b64::encode(claims.to_string().as_bytes()));
        assert_eq!(
            check(&tampered, &keys, &validation()).unwrap_err(),
            JwtError::BadSignature
        );

        // Tampered header (the header is part of the signing input).
        let header = format!(r#"{{"alg":"{alg}","typ":"at+jwt","kid":"{}"}}"#, key.kid());
        let tampered = with_part(&token, 0, &b64::encode(header.as_bytes()));
        assert_eq!(
            check(&tampered, &keys, &validation()).unwrap_err(),
            JwtError::BadSignature
        );

        // Flipped, truncated and extended signatures.
        let mut signature = b64::decode(parts[2].as_bytes()).unwrap();
        signature[5] ^= 1;
        let flipped = with_part(&token, 2, &b64::encode(&signature));
        assert_eq!(
            check(&flipped, &keys, &validation()).unwrap_err(),
            JwtError::BadSignature
        );
        signature[5] ^= 1;
        let truncated = with_part(&token, 2, &b64::encode(&signature[..signature.len() - 1]));
        assert_eq!(
            check(&truncated, &keys, &validation()).unwrap_err(),
            JwtError::BadSignature
        );
        signature.push(0);
        let extended = with_part(&token, 2, &b64::encode(&signature));
        assert_eq!(
            check(&extended, &keys, &validation()).unwrap_err(),
            JwtError::BadSignature
        );

        // A signature longer than any accepted key could produce.
        let huge = with_part(&token, 2, &b64::encode(&[1u8; 2000]));
        assert!(check(&huge, &keys, &validation()).is_err());
    }
}

#[test]
fn der_encoded_ecdsa_signature_is_refused() {
    // Wrap the fixed r || s signature in ASN.1 DER: valid ECDSA, wrong JWS encoding.
    let key = key(Algorithm::Es256);
    let token = key.sign("JWT", &good_claims()).unwrap();
    let fixed = b64::decode(token.rsplit('.').next().unwrap().as_bytes()).unwrap();
    let int = |half: &[u8]| {
        let trimmed: Vec<u8> = half.iter().copied().skip_while(|b| *b == 0).collect();
        let mut out = vec![0x02];
        if trimmed[0] & 0x80 != 0 {
            out.push(trimmed.len() as u8 + 1);
            out.push(0);
        } else {
            out.push(trimmed.len() as u8);
        }
        out.extend_from_slice(&trimmed);
        out
    };
    let body = [int(&fixed[..32]), int(&fixed[32..])].concat();
    let der = [vec![0x30, body.len() as u8], body].concat();
    let token = with_part(&token, 2, &b64::encode(&der));
    assert_eq!(
        check(&token, &[key.verifying_key()], &validation()).unwrap_err(),
        JwtError::BadSignature
    );
}

#[test]
fn another_key_with_the_same_kid_is_refused() {
    for alg in [Algorithm::Es256, Algorithm::EdDsa] {
        let trusted = key(alg);
        let attacker = other_key(alg);
        let token = craft(&header_for(trusted), &payload(), &attacker);
        assert_eq!(
            check(&token, &[trusted.verifying_key()], &validation()).unwrap_err(),
            JwtError::BadSignature
        );
    }
}

#[test]
fn signature_is_checked_before_claims() {
    // Expired claims with a bad signature report the signature, proving
    // the claims were not looked at first.
    let key = key(Algorithm::Es256);
    let mut claims = good_claims();
    claims["exp"] = 1.into();
    let token = key.sign("JWT", &claims).unwrap();
    let forged = with_part(&token, 1, &b64::encode(br#"{"exp":"soon"}"#));
    assert_eq!(
        check(&forged, &[key.verifying_key()], &validation()).unwrap_err(),
        JwtError::BadSignature
    );
    let not_json = with_part(&token, 1, &b64::encode(b"\xff\xfe"));
    assert_eq!(
        check(&not_json, &[key.verifying_key()], &validation()).unwrap_err(),
        JwtError::BadSignature
    );
}

#[test]
fn key_resolution() {
    let es = key(Algorithm::Es256);
    let second = other_key(Algorithm::Es256);
    let token = es.sign("JWT", &good_claims()).unwrap();
    let no_kid = craft(r#"{"alg":"ES256"}"#, &payload(), es);

    // Unknown kid.
    assert_eq!(
        check(&token, &[second.verifying_key()], &validation()).unwrap_err(),
        JwtError::KeyNotFound
    );
    assert_eq!(
        check(&token, &[], &validation()).unwrap_err(),
        JwtError::KeyNotFound
    );
    // No kid: the single key of that algorithm is used...
    check(&no_kid, &all_keys(), &validation()).unwrap();
    // ...but two candidates are ambiguous.
    let two = [second.verifying_key(), es.verifying_key()];
    assert_eq!(
        check(&no_kid, &two, &validation()).unwrap_err(),
        JwtError::KeyNotFound
    );
    // A kid picks the right key among several.
    check(&token, &two, &validation()).unwrap();

    // A single VerifyingKey and a Vec also resolve.
    let single = es.verifying_key();
    crate::verify(&token, &single, &validation()).unwrap();
    crate::verify(&no_kid, &single, &validation()).unwrap();
    assert_eq!(
        crate::verify(&token, &second.verifying_key(), &validation()).unwrap_err(),
        JwtError::KeyNotFound
    );
    crate::verify(&token, &two.to_vec(), &validation()).unwrap();
}

#[test]
fn peek_reads_without_keys_but_keeps_the_shape_checks() {
    let key = key(Algorithm::Ps256);
    let token = key.sign("JWT", &good_claims()).unwrap();
    let (header, claims) = peek_unverified(&token, 1 << 14).unwrap();
    assert_eq!(header.kid.as_deref(), Some(key.kid()));
    assert_eq!(claims["iss"], "https://issuer.example");

    // Peeking does not check signatures or times, only the form.
    let forged = with_part(&token, 2, "AAAA");
    assert!(peek_unverified(&forged, 1 << 14).is_ok());
    assert_eq!(peek_unverified(&token, 10).unwrap_err(), JwtError::TooLarge);
    let padded = with_part(&token, 2, "AA==");
    assert_eq!(
        peek_unverified(&padded, 1 << 14).unwrap_err(),
        JwtError::Malformed("signature is not base64url")
    );
    let five = format!("{token}.a.b");
    assert_eq!(
        peek_unverified(&five, 1 << 14).unwrap_err(),
        JwtError::Encrypted
    );
    let array = craft(&header_for(key), "[]", key);
    assert_eq!(
        peek_unverified(&array, 1 << 14).unwrap_err(),
        JwtError::Malformed("payload is not a JSON object")
    );
}

#[test]
fn typed_claims_are_decoded_strictly() {
    #[derive(serde::Deserialize, Debug)]
    struct Claims {
        sub: String,
        scope: String,
    }
    let key = key(Algorithm::Es256);
    let header = header_for(key);
    let keys = [key.verifying_key()];
    let exp = super::NOW + 60;
    let verify = |payload: &str| {
        crate::verify_as::<Claims>(&craft(&header, payload, key), &keys, &validation())
    };

    let good = verify(&format!(
        r#"{{"sub":"a","scope":"s","exp":{exp},"extra":[1]}}"#
    ))
    .unwrap();
    assert_eq!(
        (good.claims().sub.as_str(), good.claims().scope.as_str()),
        ("a", "s")
    );
    assert_eq!(good.expires_at(), Some(exp));

    // Everything `verify` refuses, `verify_as` refuses the same way: duplicates (of a field of
    // the target type or of a member it ignores), broken strings in ignored members, deep
    // nesting, and the registered claims' rules.
    for (payload, error) in [
        (
            format!(r#"{{"sub":"a","scope":"s","scope":"t","exp":{exp}}}"#),
            JwtError::Malformed("payload is not a JSON object"),
        ),
        (
            format!(r#"{{"sub":"a","scope":"s","x":1,"x":2,"exp":{exp}}}"#),
            JwtError::Malformed("payload is not a JSON object"),
        ),
        (
            format!(r#"{{"sub":"a","scope":"s","x":"\ud800","exp":{exp}}}"#),
            JwtError::Malformed("payload is not a JSON object"),
        ),
        (
            format!(
                r#"{{"sub":"a","scope":"s","x":{}{},"exp":{exp}}}"#,
                "[".repeat(5000),
                "]".repeat(5000)
            ),
            JwtError::Malformed("payload is not a JSON object"),
        ),
        (
            format!(r#"{{"sub":"a","scope":"s","exp":{exp},"exp":{exp}}}"#),
            JwtError::Malformed("payload is not a JSON object"),
        ),
        (
            r#"{"sub":"a","scope":"s","exp":null}"#.to_owned(),
            JwtError::InvalidClaim("exp"),
        ),
        (
            format!(r#"{{"sub":"a","scope":"s","exp":"{exp}"}}"#),
            JwtError::InvalidClaim("exp"),
        ),
        (
            r#"{"sub":"a","scope":"s","exp":1}"#.to_owned(),
            JwtError::Expired,
        ),
        (
            format!(r#"{{"sub":"a","scope":"s","exp":{exp},"aud":7}}"#),
            JwtError::InvalidClaim("aud"),
        ),
        (
            format!(r#"["a","s",{exp}]"#),
            JwtError::Malformed("payload is not a JSON object"),
        ),
        // Verified, but not the shape of the target type: mistyped or missing fields.
        (
            format!(r#"{{"sub":"a","scope":1,"exp":{exp}}}"#),
            JwtError::Malformed("payload does not match the expected claims"),
        ),
        (
            format!(r#"{{"sub":"a","exp":{exp}}}"#),
            JwtError::Malformed("payload does not match the expected claims"),
        ),
    ] {
        let token = craft(&header, &payload, key);
        assert_eq!(verify(&payload).unwrap_err(), error, "{payload}");
        // The same verdict as `verify`, except for the last two, which it accepts.
        if !matches!(error, JwtError::Malformed(m) if m.starts_with("payload does not")) {
            assert_eq!(
                crate::verify(&token, &keys, &validation()).unwrap_err(),
                error,
                "{payload}"
            );
        }
    }
}
