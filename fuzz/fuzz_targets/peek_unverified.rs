//! `peek_unverified` on arbitrary tokens, and on tokens whose header or payload is the input.
//! Replayed on stable by `cambio-jose/src/tests/fuzz_corpus.rs`.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cambio_jose::{DEFAULT_MAX_TOKEN_BYTES, peek_unverified};
use libfuzzer_sys::fuzz_target;

const HEADER: &[u8] = br#"{"alg":"EdDSA","typ":"JWT"}"#;

fn compact(header: &[u8], payload: &[u8]) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode([0u8; 64]));
    token
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = peek_unverified(token, DEFAULT_MAX_TOKEN_BYTES);
    }
    let _ = peek_unverified(&compact(data, b"{}"), DEFAULT_MAX_TOKEN_BYTES);
    let _ = peek_unverified(&compact(HEADER, data), DEFAULT_MAX_TOKEN_BYTES);
});
