//! Replays the seed corpora of the fuzz targets in `fuzz/` (which need nightly and
//! cargo-fuzz) on stable: every file of `fuzz/corpus/<target>` goes through the same code as
//! `fuzz/fuzz_targets/<target>.rs`, and none may panic. Add a file there to pin a case.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use crate::{
    Algorithm, AudienceRule, DEFAULT_MAX_TOKEN_BYTES, SigningKey, TypRule, Validation,
    VerifyingKey, b64, parse_jwks, peek_unverified, verify,
};

/// The Ed25519 key of RFC 8032 §7.1, test 1, as PKCS#8 v1 DER (as in the fuzz target).
const PKCS8: [u8; 48] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
const KID: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
const NOW: u64 = 1_700_000_000;
const HEADER: &str =
    r#"{"alg":"EdDSA","typ":"JWT","kid":"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"}"#;
const CLAIMS: &str = r#"{"iss":"https://issuer.example","sub":"alice","aud":"api","exp":1700000300,"iat":1699999990,"jti":"id-1"}"#;

/// Every file of `fuzz/corpus/<target>`, by name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
}

/// Runs `run` on every file of the corpus; fails naming each file that panicked.
fn replay(target: &str, run: impl Fn(&[u8])) {
    let panicked: Vec<String> = corpus(target)
        .into_iter()
        .filter(|(_, data)| catch_unwind(AssertUnwindSafe(|| run(data))).is_err())
        .map(|(name, _)| name)
        .collect();
    assert!(
        panicked.is_empty(),
        "fuzz/corpus/{target}: panicked on {panicked:?}"
    );
}

fn key() -> SigningKey {
    let key = SigningKey::from_pkcs8(Algorithm::EdDsa, &PKCS8).unwrap();
    assert_eq!(key.kid(), KID);
    key
}

fn validations() -> [Validation<'static>; 3] {
    [
        Validation {
            issuer: Some("https://issuer.example"),
            audience: AudienceRule::AnyOf(&["api"]),
            typ: TypRule::JwtOrAbsent,
            ..Validation::new(NOW)
        },
        Validation {
            leeway: 0,
            audience: AudienceRule::SingleOf(&["api"]),
            typ: TypRule::Exactly("at+jwt"),
            ..Validation::new(NOW)
        },
        Validation {
            require_exp: false,
            leeway: 10_000,
            ..Validation::new(NOW)
        },
    ]
}

fn signed(key: &SigningKey, header: &[u8], payload: &[u8]) -> String {
    let mut token = b64::encode(header);
    token.push('.');
    token.push_str(&b64::encode(payload));
    let signature = key.sign_bytes(token.as_bytes()).unwrap();
    token.push('.');
    token.push_str(&b64::encode(&signature));
    token
}

fn compact_unsigned(header: &[u8], payload: &[u8]) -> String {
    let mut token = b64::encode(header);
    token.push('.');
    token.push_str(&b64::encode(payload));
    token.push('.');
    token.push_str(&b64::encode(&[0u8; 64]));
    token
}

#[test]
fn jwt_verify_corpus() {
    let key = key();
    let keys: [VerifyingKey; 1] = [key.verifying_key()];
    replay("jwt_verify", |data| {
        let as_header = signed(&key, data, CLAIMS.as_bytes());
        let as_payload = signed(&key, HEADER.as_bytes(), data);
        for v in validations() {
            if let Ok(token) = std::str::from_utf8(data) {
                let _ = verify(token, &keys[..], &v);
            }
            let _ = verify(&as_header, &keys[..], &v);
            if let Ok(jwt) = verify(&as_payload, &keys[..], &v) {
                assert!(jwt.expires_at().is_some() || !v.require_exp);
            }
        }
    });
    // The corpus and the fixed key agree: its valid token verifies under the strictest rules.
    let valid = corpus("jwt_verify")
        .into_iter()
        .find(|(name, _)| name == "valid_eddsa")
        .expect("fuzz/corpus/jwt_verify/valid_eddsa");
    let token = String::from_utf8(valid.1).unwrap();
    let jwt = verify(&token, &keys[..], &validations()[0]).unwrap();
    assert_eq!(jwt.subject(), Some("alice"));
}

#[test]
fn peek_unverified_corpus() {
    replay("peek_unverified", |data| {
        if let Ok(token) = std::str::from_utf8(data) {
            let _ = peek_unverified(token, DEFAULT_MAX_TOKEN_BYTES);
        }
        let _ = peek_unverified(&compact_unsigned(data, b"{}"), DEFAULT_MAX_TOKEN_BYTES);
        let header = br#"{"alg":"EdDSA","typ":"JWT"}"#;
        let _ = peek_unverified(&compact_unsigned(header, data), DEFAULT_MAX_TOKEN_BYTES);
    });
}

#[test]
fn jwks_parse_corpus() {
    replay("jwks_parse", |data| {
        for fallback in [None, Some(Algorithm::Rs256), Some(Algorithm::Es256)] {
            let Ok(keys) = parse_jwks(data, fallback) else {
                continue;
            };
            for key in keys {
                let again = VerifyingKey::from_jwk(&key.to_jwk(), None)
                    .expect("an accepted key's own JWK is accepted");
                assert_eq!(again.algorithm(), key.algorithm());
                assert_eq!(again.kid(), key.kid());
            }
        }
    });
    // The valid sample is accepted whole.
    let (_, valid) = corpus("jwks_parse")
        .into_iter()
        .find(|(name, _)| name == "valid_mixed")
        .expect("fuzz/corpus/jwks_parse/valid_mixed");
    assert_eq!(parse_jwks(&valid, None).unwrap().len(), 3);
}
