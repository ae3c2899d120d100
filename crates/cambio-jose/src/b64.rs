//! Strict base64url handling.
//!
//! JWS compact serialization uses base64url without padding (RFC 7515
//! section 2 and appendix C). The `URL_SAFE_NO_PAD` engine refuses padding,
//! the standard alphabet (`+`, `/`), whitespace and non-canonical trailing
//! bits, so every token has exactly one accepted encoding.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Decodes strict base64url into a fresh vector.
pub(crate) fn decode(input: &[u8]) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(input).ok()
}

/// Decodes strict base64url into `out`, returning the decoded length, or
/// `None` when the input is invalid or does not fit.
pub(crate) fn decode_into(input: &[u8], out: &mut [u8]) -> Option<usize> {
    URL_SAFE_NO_PAD.decode_slice(input, out).ok()
}

/// Appends the base64url encoding of `input` to `out`.
pub(crate) fn encode_into(input: &[u8], out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(input, out);
}

/// Encodes `input` as base64url without padding.
pub(crate) fn encode(input: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_decoding() {
        // "ab" is YWI in base64url; each variant below is a non-canonical
        // spelling that a lenient decoder might accept.
        assert_eq!(decode(b"YWI").unwrap(), b"ab");
        for bad in ["YWI=", "YW I", "YWJ", "+/8", "Y", "YWI\n"] {
            assert!(decode(bad.as_bytes()).is_none(), "{bad:?} must be refused");
        }
        assert_eq!(decode(b"-_8").unwrap(), [0xfb, 0xff]);
    }

    #[test]
    fn decode_into_fills_an_exact_buffer() {
        // An RSA-8192 signature is 1024 bytes; the verifier's stack buffer
        // has exactly that size, so an exact fit must decode.
        let data: Vec<u8> = (0..1024u32).map(|i| i as u8).collect();
        let encoded = encode(&data);
        let mut out = [0u8; 1024];
        assert_eq!(decode_into(encoded.as_bytes(), &mut out), Some(1024));
        assert_eq!(out.as_slice(), data.as_slice());
        let too_long = encode(&[0u8; 1025]);
        assert_eq!(decode_into(too_long.as_bytes(), &mut out), None);
    }
}
