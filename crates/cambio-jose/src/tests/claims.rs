//! Claim and `typ` validation.

use serde_json::{Value, json};

use super::{NOW, check, craft, good_claims, key, validation};
use crate::{Algorithm, AudienceRule, JwtError, TypRule, Validation};

/// Signs `claims` with the Ed25519 fixture and verifies them under `v`.
fn run(claims: &Value, v: &Validation<'_>) -> Result<(), JwtError> {
    let key = key(Algorithm::EdDsa);
    let token = key.sign("JWT", claims).unwrap();
    check(&token, &[key.verifying_key()], v).map(|_| ())
}

/// `good_claims()` with one member replaced (or removed, for `None`).
fn with(name: &str, value: Option<Value>) -> Value {
    let mut claims = good_claims();
    let object = claims.as_object_mut().unwrap();
    match value {
        Some(value) => object.insert(name.to_owned(), value),
        None => object.remove(name),
    };
    claims
}

#[test]
fn numeric_dates_must_be_numbers() {
    // A string exp must not be mistaken for an absent one (CVE-2026-25537).
    let cases = [
        ("exp", json!("9999999999")),
        ("exp", json!(null)),
        ("exp", json!(true)),
        ("exp", json!([NOW + 300])),
        ("exp", json!(-1)),
        ("exp", json!(-0.5)),
        ("exp", json!(1e30)),
        ("nbf", json!("0")),
        ("nbf", json!(-5)),
        ("iat", json!("0")),
        ("iat", json!({})),
    ];
    for (name, value) in cases {
        let v = Validation {
            require_exp: false,
            ..validation()
        };
        let expected = Err(JwtError::InvalidClaim(match name {
            "exp" => "exp",
            "nbf" => "nbf",
            _ => "iat",
        }));
        assert_eq!(
            run(&with(name, Some(value.clone())), &v),
            expected,
            "{name}: {value}"
        );
    }
    // Fractional NumericDates are legal (RFC 7519 section 2).
    assert_eq!(
        run(&with("exp", Some(json!(NOW as f64 + 0.5))), &validation()),
        Err(JwtError::Expired)
    );
    assert_eq!(
        run(&with("exp", Some(json!(NOW as f64 + 1.5))), &validation()),
        Ok(())
    );
    assert_eq!(
        run(&with("nbf", Some(json!(NOW as f64 - 0.5))), &validation()),
        Ok(())
    );
    assert_eq!(
        run(&with("nbf", Some(json!(NOW as f64 + 0.5))), &validation()),
        Err(JwtError::NotYetValid)
    );
}

#[test]
fn time_windows() {
    let v = |leeway| Validation {
        leeway,
        ..validation()
    };
    let cases: Vec<(&str, Value, u64, Result<(), JwtError>)> = vec![
        // exp: valid while now < exp + leeway.
        ("exp", json!(NOW + 1), 0, Ok(())),
        ("exp", json!(NOW), 0, Err(JwtError::Expired)),
        ("exp", json!(NOW - 1), 0, Err(JwtError::Expired)),
        ("exp", json!(NOW - 29), 30, Ok(())),
        ("exp", json!(NOW - 30), 30, Err(JwtError::Expired)),
        // Leeway is clamped to 120 s.
        ("exp", json!(NOW - 119), 10_000, Ok(())),
        ("exp", json!(NOW - 120), 10_000, Err(JwtError::Expired)),
        ("exp", json!(0), u64::MAX, Err(JwtError::Expired)),
        ("exp", json!(u64::MAX), u64::MAX, Ok(())),
        // nbf: refused while now + leeway < nbf.
        ("nbf", json!(NOW), 0, Ok(())),
        ("nbf", json!(NOW + 1), 0, Err(JwtError::NotYetValid)),
        ("nbf", json!(NOW + 30), 30, Ok(())),
        ("nbf", json!(NOW + 31), 30, Err(JwtError::NotYetValid)),
        ("nbf", json!(NOW + 121), 10_000, Err(JwtError::NotYetValid)),
        // iat: at most leeway in the future.
        ("iat", json!(NOW), 0, Ok(())),
        ("iat", json!(NOW + 1), 0, Err(JwtError::IssuedInFuture)),
        ("iat", json!(NOW + 30), 30, Ok(())),
        ("iat", json!(NOW + 31), 30, Err(JwtError::IssuedInFuture)),
        ("iat", json!(0), 0, Ok(())),
    ];
    for (name, value, leeway, expected) in cases {
        let mut claims = with(name, Some(value.clone()));
        if name != "exp" {
            claims["exp"] = json!(NOW + 300);
        }
        assert_eq!(
            run(&claims, &v(leeway)),
            expected,
            "{name}={value} leeway={leeway}"
        );
    }
}

#[test]
fn exp_requirement() {
    let without = with("exp", None);
    assert_eq!(
        run(&without, &validation()),
        Err(JwtError::MissingClaim("exp"))
    );
    let optional = Validation {
        require_exp: false,
        ..validation()
    };
    assert_eq!(run(&without, &optional), Ok(()));
    // When present, exp is checked even if not required.
    assert_eq!(
        run(&with("exp", Some(json!(NOW - 1))), &optional),
        Err(JwtError::Expired)
    );
}

#[test]
fn string_claims() {
    for name in ["iss", "sub", "jti"] {
        for bad in [json!(1), json!(null), json!(["x"]), json!({"a": 1})] {
            let name_static = match name {
                "iss" => "iss",
                "sub" => "sub",
                _ => "jti",
            };
            assert_eq!(
                run(&with(name, Some(bad.clone())), &validation()),
                Err(JwtError::InvalidClaim(name_static)),
                "{name}: {bad}"
            );
        }
    }
}

#[test]
fn issuer() {
    let v = |issuer| Validation {
        issuer: Some(issuer),
        ..validation()
    };
    assert_eq!(run(&good_claims(), &v("https://issuer.example")), Ok(()));
    let cases = [
        ("https://issuer.example/", Err(JwtError::WrongIssuer)),
        ("https://ISSUER.example", Err(JwtError::WrongIssuer)),
        ("", Err(JwtError::WrongIssuer)),
    ];
    for (expected_issuer, expected) in cases {
        assert_eq!(
            run(&good_claims(), &v(expected_issuer)),
            expected,
            "{expected_issuer}"
        );
    }
    assert_eq!(
        run(&with("iss", None), &v("https://issuer.example")),
        Err(JwtError::MissingClaim("iss"))
    );
}

#[test]
fn audience() {
    let ours: &[&str] = &["https://cambio.example", "cambio"];
    let any = AudienceRule::AnyOf(ours);
    let single = AudienceRule::SingleOf(ours);
    let cases: Vec<(Option<Value>, AudienceRule<'_>, Result<(), JwtError>)> = vec![
        (Some(json!("cambio")), any, Ok(())),
        (Some(json!(["x", "cambio"])), any, Ok(())),
        (Some(json!(["x", "y"])), any, Err(JwtError::WrongAudience)),
        (Some(json!("CAMBIO")), any, Err(JwtError::WrongAudience)),
        (Some(json!([])), any, Err(JwtError::WrongAudience)),
        (None, any, Err(JwtError::MissingClaim("aud"))),
        (Some(json!("cambio")), single, Ok(())),
        (Some(json!(["cambio"])), single, Ok(())),
        (
            Some(json!(["cambio", "x"])),
            single,
            Err(JwtError::WrongAudience),
        ),
        (
            Some(json!(["cambio", "cambio"])),
            single,
            Err(JwtError::WrongAudience),
        ),
        (Some(json!([])), single, Err(JwtError::WrongAudience)),
        (Some(json!("other")), single, Err(JwtError::WrongAudience)),
        (None, single, Err(JwtError::MissingClaim("aud"))),
        (
            Some(json!("cambio")),
            AudienceRule::AnyOf(&[]),
            Err(JwtError::WrongAudience),
        ),
        (None, AudienceRule::Skip, Ok(())),
        (Some(json!([])), AudienceRule::Skip, Ok(())),
        // The type is checked whatever the rule.
        (
            Some(json!(5)),
            AudienceRule::Skip,
            Err(JwtError::InvalidClaim("aud")),
        ),
        (
            Some(json!({"a": "cambio"})),
            any,
            Err(JwtError::InvalidClaim("aud")),
        ),
        (
            Some(json!(["cambio", 5])),
            any,
            Err(JwtError::InvalidClaim("aud")),
        ),
        (
            Some(json!([["cambio"]])),
            any,
            Err(JwtError::InvalidClaim("aud")),
        ),
        (Some(json!(null)), any, Err(JwtError::InvalidClaim("aud"))),
    ];
    for (aud, rule, expected) in cases {
        let v = Validation {
            audience: rule,
            ..validation()
        };
        assert_eq!(
            run(&with("aud", aud.clone()), &v),
            expected,
            "{aud:?} {rule:?}"
        );
    }

    // The accessor lists every value.
    let key = key(Algorithm::EdDsa);
    let token = key
        .sign("JWT", &with("aud", Some(json!(["a", "b"]))))
        .unwrap();
    let jwt = check(&token, &[key.verifying_key()], &validation()).unwrap();
    assert_eq!(jwt.audience(), ["a".to_owned(), "b".to_owned()]);
}

#[test]
fn typ_rules() {
    let key = key(Algorithm::Es256);
    let kid = key.kid();
    let payload = good_claims().to_string();
    let token_with = |typ: Option<&str>| {
        let header = match typ {
            Some(typ) => format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"{typ}"}}"#),
            None => format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#),
        };
        craft(&header, &payload, key)
    };
    let at = TypRule::Exactly("at+jwt");
    let cases = [
        (Some("at+jwt"), at, Ok(())),
        (Some("AT+JWT"), at, Ok(())),
        (Some("application/at+jwt"), at, Ok(())),
        (Some("Application/At+Jwt"), at, Ok(())),
        (Some("JWT"), at, Err(JwtError::WrongType)),
        (Some("at+jwt "), at, Err(JwtError::WrongType)),
        (Some("text/at+jwt"), at, Err(JwtError::WrongType)),
        (None, at, Err(JwtError::WrongType)),
        (
            Some("at+jwt"),
            TypRule::Exactly("application/at+jwt"),
            Ok(()),
        ),
        (None, TypRule::JwtOrAbsent, Ok(())),
        (Some("JWT"), TypRule::JwtOrAbsent, Ok(())),
        (Some("jwt"), TypRule::JwtOrAbsent, Ok(())),
        (Some("application/jwt"), TypRule::JwtOrAbsent, Ok(())),
        (
            Some("at+jwt"),
            TypRule::JwtOrAbsent,
            Err(JwtError::WrongType),
        ),
        (Some("dpop+jwt"), TypRule::Skip, Ok(())),
    ];
    for (typ, rule, expected) in cases {
        let v = Validation {
            typ: rule,
            ..validation()
        };
        let got = check(&token_with(typ), &[key.verifying_key()], &v).map(|_| ());
        assert_eq!(got, expected, "{typ:?} {rule:?}");
    }
    // A non-string typ is malformed.
    let token = craft(
        &format!(r#"{{"alg":"ES256","kid":"{kid}","typ":1}}"#),
        &payload,
        key,
    );
    assert!(matches!(
        check(&token, &[key.verifying_key()], &validation()),
        Err(JwtError::Malformed(_))
    ));
    // And the header of sign() satisfies an Exactly rule.
    let token = key.sign("at+jwt", &good_claims()).unwrap();
    let v = Validation {
        typ: at,
        ..validation()
    };
    check(&token, &[key.verifying_key()], &v).unwrap();
}

#[test]
fn expiry_ignored_only_on_request() {
    let key = key(Algorithm::EdDsa);
    let keys = [key.verifying_key()];
    let expired = key
        .sign("JWT", &with("exp", Some(json!(NOW - 3600))))
        .unwrap();
    assert_eq!(
        crate::verify(&expired, &keys, &validation()).map(|_| ()),
        Err(JwtError::Expired)
    );
    let verified = crate::verify_allowing_expired(&expired, &keys, &validation()).unwrap();
    assert_eq!(verified.expires_at(), Some(NOW - 3600));
    // Everything else is still checked: the type of exp, the other times, the signature.
    for (claims, error) in [
        (with("exp", Some(json!("0"))), JwtError::InvalidClaim("exp")),
        (with("nbf", Some(json!(NOW + 3600))), JwtError::NotYetValid),
        (
            with("iat", Some(json!(NOW + 3600))),
            JwtError::IssuedInFuture,
        ),
        (with("exp", None), JwtError::MissingClaim("exp")),
    ] {
        let token = key.sign("JWT", &claims).unwrap();
        assert_eq!(
            crate::verify_allowing_expired(&token, &keys, &validation()).map(|_| ()),
            Err(error)
        );
    }
    let other = super::key(Algorithm::Es256);
    assert!(
        crate::verify_allowing_expired(&expired, &[other.verifying_key()], &validation()).is_err()
    );
}
