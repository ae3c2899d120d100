//! Shared fixtures for the in-crate tests.
//!
//! RSA key generation is slow in debug builds, so each key is generated
//! once per test binary; RS256 and PS256 share one RSA key pair, which also
//! gives the key-confusion tests two keys with the same `kid` but different
//! algorithms.

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::{
    Algorithm, JwtError, SigningKey, Validation, VerifiedJwt, VerifyingKey, b64, verify, verify_as,
};

mod claims;
mod fuzz_corpus;
mod jwks;
mod refusals;
mod roundtrip;

/// A fixed "now" for every test.
pub(crate) const NOW: u64 = 1_700_000_000;

/// The shared signing key for `alg`.
pub(crate) fn key(alg: Algorithm) -> &'static SigningKey {
    static RSA_PKCS8: OnceLock<Vec<u8>> = OnceLock::new();
    static KEYS: [OnceLock<SigningKey>; 4] = [const { OnceLock::new() }; 4];
    let index = Algorithm::ALL.iter().position(|a| *a == alg).unwrap();
    KEYS[index].get_or_init(|| match alg {
        Algorithm::Rs256 | Algorithm::Ps256 => {
            let der = RSA_PKCS8.get_or_init(|| {
                SigningKey::generate(Algorithm::Rs256)
                    .unwrap()
                    .pkcs8_der()
                    .to_vec()
            });
            SigningKey::from_pkcs8(alg, der).unwrap()
        }
        _ => SigningKey::generate(alg).unwrap(),
    })
}

/// A second, unrelated key for the fast algorithms.
pub(crate) fn other_key(alg: Algorithm) -> SigningKey {
    assert!(matches!(alg, Algorithm::Es256 | Algorithm::EdDsa));
    SigningKey::generate(alg).unwrap()
}

/// Claims valid at [`NOW`].
pub(crate) fn good_claims() -> Value {
    json!({
        "iss": "https://issuer.example",
        "sub": "alice",
        "aud": "https://cambio.example",
        "exp": NOW + 300,
        "nbf": NOW - 10,
        "iat": NOW - 10,
        "jti": "id-1",
    })
}

/// A validation at [`NOW`] with no leeway.
pub(crate) fn validation() -> Validation<'static> {
    Validation {
        leeway: 0,
        ..Validation::new(NOW)
    }
}

/// Builds a token from raw header and payload JSON text, signed by `key`.
/// This bypasses [`SigningKey::sign`] so tests can craft hostile headers.
pub(crate) fn craft(header: &str, payload: &str, key: &SigningKey) -> String {
    let mut token = b64::encode(header.as_bytes());
    token.push('.');
    token.push_str(&b64::encode(payload.as_bytes()));
    let signature = key.sign_bytes(token.as_bytes()).unwrap();
    token.push('.');
    token.push_str(&b64::encode(&signature));
    token
}

/// A standard header for `key`.
pub(crate) fn header_for(key: &SigningKey) -> String {
    format!(
        r#"{{"alg":"{}","typ":"JWT","kid":"{}"}}"#,
        key.algorithm(),
        key.kid()
    )
}

/// Verifies against `keys` and returns only the outcome. Every token the tests verify also
/// goes through [`verify_as`], which must reach the same verdict: the typed path may skip
/// building a JSON object, never a check.
pub(crate) fn check(
    token: &str,
    keys: &[VerifyingKey],
    v: &Validation<'_>,
) -> Result<VerifiedJwt, JwtError> {
    let strict = verify(token, keys, v);
    let typed = verify_as::<serde_json::Map<String, Value>>(token, keys, v);
    match (&strict, &typed) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.claims(), b.claims(), "{token}");
            assert_eq!(a.audience(), b.audience(), "{token}");
            assert_eq!(
                [a.expires_at(), a.not_before(), a.issued_at()],
                [b.expires_at(), b.not_before(), b.issued_at()]
            );
        }
        (a, b) => assert_eq!(
            a.as_ref().err(),
            b.as_ref().err(),
            "verify and verify_as disagree on {token}"
        ),
    }
    strict
}

#[test]
fn public_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SigningKey>();
    assert_send_sync::<VerifyingKey>();
    assert_send_sync::<VerifiedJwt>();
    assert_send_sync::<JwtError>();
    assert_send_sync::<crate::JoseError>();
}

/// Rough timings; run with
/// `cargo test -p cambio-jose --release -- --ignored --nocapture timings`.
#[test]
#[ignore = "timing report, meaningful only in release builds"]
fn timings() {
    use std::time::Instant;
    const N: u32 = 2_000;
    for alg in Algorithm::ALL {
        let key = key(alg);
        let keys = [key.verifying_key()];
        let claims = good_claims();
        let started = Instant::now();
        for _ in 0..N {
            std::hint::black_box(key.sign("JWT", &claims).unwrap());
        }
        let sign = started.elapsed() / N;
        let token = key.sign("JWT", &claims).unwrap();
        let v = validation();
        let started = Instant::now();
        for _ in 0..N {
            std::hint::black_box(verify(&token, &keys[..], &v).unwrap());
        }
        let verify_time = started.elapsed() / N;
        let started = Instant::now();
        for _ in 0..N {
            std::hint::black_box(crate::peek_unverified(&token, 1 << 14).unwrap());
        }
        let peek = started.elapsed() / N;
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = b64::decode(sig.as_bytes()).unwrap();
        let started = Instant::now();
        for _ in 0..N {
            assert!(keys[0].verify_signature(input.as_bytes(), &sig));
        }
        let raw = started.elapsed() / N;
        println!("{alg}: raw verify {raw:?}");
        println!("{alg}: sign {sign:?}, verify {verify_time:?}, peek (non-crypto part) {peek:?}");
    }
}
