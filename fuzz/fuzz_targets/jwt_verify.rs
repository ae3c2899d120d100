//! `verify` with a fixed key and fixed validations, three ways per input: as a whole token
//! (splitting, header policy, key lookup, signature), as the raw header JSON of a token
//! signed by the key (header parsing past the signature check), and as the raw payload of
//! such a token (strict payload parsing and every claim check).
//! Replayed on stable by `cambio-jose/src/tests/fuzz_corpus.rs`.
#![no_main]

use std::sync::OnceLock;

use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cambio_jose::{Algorithm, AudienceRule, SigningKey, TypRule, Validation, VerifyingKey, verify};
use libfuzzer_sys::fuzz_target;

/// The Ed25519 key of RFC 8032 §7.1, test 1, as PKCS#8 v1 DER.
const PKCS8: [u8; 48] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c, 0xc4,
    0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60,
];
/// Its RFC 7638 thumbprint.
const KID: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
const NOW: u64 = 1_700_000_000;
const HEADER: &str =
    r#"{"alg":"EdDSA","typ":"JWT","kid":"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"}"#;
const CLAIMS: &str = r#"{"iss":"https://issuer.example","sub":"alice","aud":"api","exp":1700000300,"iat":1699999990,"jti":"id-1"}"#;

struct Fixture {
    pair: Ed25519KeyPair,
    keys: [VerifyingKey; 1],
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = SigningKey::from_pkcs8(Algorithm::EdDsa, &PKCS8).expect("the fixed key");
        assert_eq!(key.kid(), KID);
        Fixture {
            pair: Ed25519KeyPair::from_pkcs8(&PKCS8).expect("the fixed key"),
            keys: [key.verifying_key()],
        }
    })
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

/// A compact JWS over `header` and `payload`, signed by the fixed key.
fn signed(pair: &Ed25519KeyPair, header: &[u8], payload: &[u8]) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = pair.sign(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
    token
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let as_header = signed(&fixture.pair, data, CLAIMS.as_bytes());
    let as_payload = signed(&fixture.pair, HEADER.as_bytes(), data);
    for v in validations() {
        if let Ok(token) = std::str::from_utf8(data) {
            let _ = verify(token, &fixture.keys[..], &v);
        }
        let _ = verify(&as_header, &fixture.keys[..], &v);
        if let Ok(jwt) = verify(&as_payload, &fixture.keys[..], &v) {
            // Whatever verifies was checked against the rules.
            assert!(jwt.expires_at().is_some() || !v.require_exp);
        }
    }
});
