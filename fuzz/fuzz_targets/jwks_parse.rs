//! `parse_jwks` on arbitrary documents; every key it accepts must survive its own JWK.
//! Replayed on stable by `cambio-jose/src/tests/fuzz_corpus.rs`.
#![no_main]

use cambio_jose::{Algorithm, VerifyingKey, parse_jwks};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
