//! Parsing of `application/x-www-form-urlencoded` request bodies (RFC 6749 §3.2, Appendix B),
//! strict where looseness has bitten token servers: repeated parameters are refused, except the
//! ones RFC 8693 and RFC 8707 allow to repeat, and bytes that are not UTF-8 are refused.

use crate::error::{OAuthError, OAuthResult};

/// Parameters that RFC 8693 (§2.1) and RFC 8707 allow more than once.
const REPEATABLE: &[&str] = &["audience", "resource"];

/// The most parameters one request may carry; far above any real client.
const MAX_PARAMS: usize = 64;

/// A parsed form. Empty values count as absent (RFC 6749 §3.2), which is also what lets
/// python-keycloak's empty `code=` and `redirect_uri=` through.
#[derive(Debug, Clone, Default)]
pub struct FormParams {
    pairs: Vec<(String, String)>,
}

impl FormParams {
    pub fn parse(body: &[u8]) -> OAuthResult<FormParams> {
        // Percent-decoding happens below; the raw body of a form is ASCII by definition, so
        // anything else is a broken client or an attack.
        if !body.is_ascii() {
            return Err(OAuthError::invalid_request(
                "Request body is not a valid form",
            ));
        }
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(body) {
            // The decoder replaces invalid UTF-8 with U+FFFD; a real client never sends it.
            if name.contains('\u{FFFD}') || value.contains('\u{FFFD}') {
                return Err(OAuthError::invalid_request(
                    "Request body is not valid UTF-8",
                ));
            }
            if value.is_empty() {
                continue;
            }
            if !REPEATABLE.contains(&name.as_ref()) && pairs.iter().any(|(n, _)| *n == name) {
                return Err(OAuthError::invalid_request(format!(
                    "Parameter '{}' is repeated",
                    printable(&name)
                )));
            }
            pairs.push((name.into_owned(), value.into_owned()));
            if pairs.len() > MAX_PARAMS {
                return Err(OAuthError::invalid_request("Too many parameters"));
            }
        }
        Ok(FormParams { pairs })
    }

    /// The value of a parameter that appears at most once.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a required parameter.
    pub fn require(&self, name: &'static str) -> OAuthResult<&str> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("Parameter '{name}' required")))
    }

    /// Every value of a repeatable parameter, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n == name)
    }
}

/// A parameter name safe to echo in an error description.
fn printable(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, expected: Result<&[(&str, &str)], &str>) {
        let got = FormParams::parse(body.as_bytes());
        match expected {
            Ok(pairs) => {
                let form = got.unwrap_or_else(|e| panic!("{body}: {e}"));
                let got: Vec<(&str, &str)> = form
                    .pairs
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                assert_eq!(got, pairs, "{body}");
            }
            Err(description) => {
                let err = got.expect_err(body);
                assert_eq!(err.code, crate::ErrorCode::InvalidRequest, "{body}");
                assert_eq!(err.description, description, "{body}");
            }
        }
    }

    #[test]
    fn parses_forms_strictly() {
        check("a=1&b=x+y%2B", Ok(&[("a", "1"), ("b", "x y+")]));
        check("code=&redirect_uri=&a=1", Ok(&[("a", "1")]));
        check(
            "audience=a&audience=b",
            Ok(&[("audience", "a"), ("audience", "b")]),
        );
        check("a=1&a=2", Err("Parameter 'a' is repeated"));
        check("a=%FF", Err("Request body is not valid UTF-8"));
        check("a=\u{e9}", Err("Request body is not a valid form"));
        check("a=%C3%A9", Ok(&[("a", "\u{e9}")]));
    }

    #[test]
    fn too_many_parameters() {
        let body: String = (0..100).map(|i| format!("p{i}=v&")).collect();
        check(&body, Err("Too many parameters"));
    }
}
