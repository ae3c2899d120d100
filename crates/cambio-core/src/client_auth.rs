//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3, RFC 7523 §2.2 and §3, OpenID Connect Core §9).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cambio_jose::{AudienceRule, TypRule, Validation, VerifiedJwt, VerifyingKey};
use subtle::ConstantTimeEq;

use crate::error::{OAuthError, OAuthResult};
use crate::form::FormParams;
use crate::model::{Client, ClientAuthenticator};

pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest client assertion we decode.
const MAX_ASSERTION_BYTES: usize = 8 * 1024;
/// Client assertions are short-lived by design; refuse ones that claim to live longer.
const MAX_ASSERTION_LIFETIME: u64 = 600;
/// Clock skew allowed on an assertion's `exp`, `nbf` and `iat`: an assertion is accepted until
/// `exp` plus this, so its `jti` must be remembered at least that long.
pub const ASSERTION_LEEWAY: u64 = 10;

/// What the client presented to prove its identity.
#[derive(Clone, PartialEq, Eq)]
pub enum Presented {
    /// `client_secret_basic`.
    Basic { client_id: String, secret: String },
    /// `client_secret_post`.
    Post { client_id: String, secret: String },
    /// `private_key_jwt`: the assertion, and the `client_id` form parameter if sent.
    Assertion {
        assertion: String,
        client_id: Option<String>,
    },
    /// A public client naming itself.
    ClientIdOnly { client_id: String },
}

impl std::fmt::Debug for Presented {
    // Secrets never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Presented::Basic { client_id, .. } => write!(f, "Basic({client_id})"),
            Presented::Post { client_id, .. } => write!(f, "Post({client_id})"),
            Presented::Assertion { client_id, .. } => write!(f, "Assertion({client_id:?})"),
            Presented::ClientIdOnly { client_id } => write!(f, "ClientIdOnly({client_id})"),
        }
    }
}

impl Presented {
    /// Reads the credentials from the `Authorization` header and the form. Exactly one method
    /// may be used (RFC 6749 §2.3: "MUST NOT use more than one authentication method").
    pub fn extract(
        authorization: Option<&str>,
        form: &FormParams,
    ) -> OAuthResult<Option<Presented>> {
        let basic = match authorization {
            Some(value) => parse_basic(value)?,
            None => None,
        };
        let post_secret = form.get("client_secret");
        let assertion = form.get("client_assertion");
        let form_client_id = form.get("client_id");
        let methods = [basic.is_some(), post_secret.is_some(), assertion.is_some()]
            .iter()
            .filter(|m| **m)
            .count();
        if methods > 1 {
            return Err(OAuthError::invalid_request(
                "More than one client authentication method was used",
            ));
        }
        if let Some((client_id, secret)) = basic {
            if form_client_id.is_some_and(|id| id != client_id) {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the Authorization header",
                ));
            }
            return Ok(Some(Presented::Basic { client_id, secret }));
        }
        if let Some(assertion) = assertion {
            match form.get("client_assertion_type") {
                Some(CLIENT_ASSERTION_TYPE) => {}
                _ => {
                    return Err(OAuthError::invalid_request(
                        "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ));
                }
            }
            return Ok(Some(Presented::Assertion {
                assertion: assertion.to_owned(),
                client_id: form_client_id.map(str::to_owned),
            }));
        }
        match (form_client_id, post_secret) {
            (Some(id), Some(secret)) => Ok(Some(Presented::Post {
                client_id: id.to_owned(),
                secret: secret.to_owned(),
            })),
            (None, Some(_)) => Err(OAuthError::invalid_request(
                "Parameter 'client_id' required",
            )),
            (Some(id), None) => Ok(Some(Presented::ClientIdOnly {
                client_id: id.to_owned(),
            })),
            (None, None) => Ok(None),
        }
    }

    /// The client id the credentials claim, before they are checked. For an assertion this
    /// reads its unverified `sub` (RFC 7523 §3: `sub` is the client id).
    pub fn claimed_client_id(&self) -> OAuthResult<String> {
        match self {
            Presented::Basic { client_id, .. }
            | Presented::Post { client_id, .. }
            | Presented::ClientIdOnly { client_id } => Ok(client_id.clone()),
            Presented::Assertion {
                assertion,
                client_id,
            } => {
                let (_, claims) = cambio_jose::peek_unverified(assertion, MAX_ASSERTION_BYTES)
                    .map_err(|_| invalid_client())?;
                let sub = claims
                    .get("sub")
                    .and_then(|v| v.as_str())
                    .ok_or_else(invalid_client)?;
                if client_id.as_deref().is_some_and(|id| id != sub) {
                    return Err(invalid_client());
                }
                Ok(sub.to_owned())
            }
        }
    }

    pub fn is_basic(&self) -> bool {
        matches!(self, Presented::Basic { .. })
    }
}

/// A client assertion that passed every check but the single-use one, which needs the store:
/// the caller must consume `jti` once (context `client-assertion`) before trusting the client,
/// and remember it until `acceptable_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionUse {
    pub jti: String,
    /// From when on this assertion is refused (`exp` plus the leeway); a `jti` forgotten
    /// before then could be replayed.
    pub acceptable_until: u64,
}

/// Checks presented credentials against the registered client. `audiences` are the values an
/// assertion's `aud` may take (our issuer and token endpoint); `now` is Unix seconds.
pub fn authenticate(
    client: &Client,
    keys: &[VerifyingKey],
    presented: &Presented,
    audiences: &[&str],
    now: u64,
) -> OAuthResult<Option<AssertionUse>> {
    if !client.enabled {
        return Err(invalid_client());
    }
    match presented {
        Presented::ClientIdOnly { .. } => {
            if client.public_client {
                Ok(None)
            } else {
                Err(OAuthError::invalid_client("Client authentication required"))
            }
        }
        Presented::Basic { secret, .. } | Presented::Post { secret, .. } => {
            if client.public_client
                || client.client_authenticator_type != ClientAuthenticator::Secret
            {
                return Err(invalid_client());
            }
            let expected = client.secret.as_deref().ok_or_else(invalid_client)?;
            // Constant time: the time taken must not tell how much of a guess was right.
            if bool::from(expected.as_bytes().ct_eq(secret.as_bytes())) {
                Ok(None)
            } else {
                Err(invalid_client())
            }
        }
        Presented::Assertion { assertion, .. } => {
            if client.public_client
                || client.client_authenticator_type != ClientAuthenticator::PrivateKeyJwt
            {
                return Err(invalid_client());
            }
            let verified = verify_assertion(assertion, keys, &client.client_id, audiences, now)?;
            let jti = verified.jwt_id().ok_or_else(invalid_client)?.to_owned();
            let expires_at = verified.expires_at().ok_or_else(invalid_client)?;
            Ok(Some(AssertionUse {
                jti,
                acceptable_until: expires_at.saturating_add(ASSERTION_LEEWAY),
            }))
        }
    }
}

fn verify_assertion(
    assertion: &str,
    keys: &[VerifyingKey],
    client_id: &str,
    audiences: &[&str],
    now: u64,
) -> OAuthResult<VerifiedJwt> {
    let validation = Validation {
        now,
        leeway: ASSERTION_LEEWAY,
        issuer: Some(client_id),
        // A single audience naming this server: an assertion aimed at several servers, or at
        // another one, could be replayed (OpenID Foundation disclosure of January 2025).
        audience: AudienceRule::SingleOf(audiences),
        typ: TypRule::Skip,
        require_exp: true,
        max_token_bytes: MAX_ASSERTION_BYTES,
    };
    let verified =
        cambio_jose::verify(assertion, keys, &validation).map_err(|_| invalid_client())?;
    if verified.subject() != Some(client_id) {
        return Err(invalid_client());
    }
    let exp = verified.expires_at().unwrap_or(0);
    let start = verified.issued_at().unwrap_or(now);
    if exp.saturating_sub(start) > MAX_ASSERTION_LIFETIME {
        return Err(invalid_client());
    }
    Ok(verified)
}

fn invalid_client() -> OAuthError {
    OAuthError::invalid_client("Invalid client or Invalid client credentials")
}

/// Decodes `Basic base64(id:secret)`. Both parts are form-url-decoded after base64
/// (RFC 6749 §2.3.1), as openid-client and the Keycloak admin client encode them.
fn parse_basic(header: &str) -> OAuthResult<Option<(String, String)>> {
    let Some((scheme, rest)) = header.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        // Another scheme (a Bearer token sent by mistake) is not client authentication.
        return Ok(None);
    }
    let malformed = || OAuthError::invalid_client("Malformed Basic authorization header");
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = url_decode(id).ok_or_else(malformed)?;
    let secret = url_decode(secret).ok_or_else(malformed)?;
    if id.is_empty() {
        return Err(malformed());
    }
    Ok(Some((id, secret)))
}

fn url_decode(part: &str) -> Option<String> {
    let mut decoded = String::new();
    for (i, (name, value)) in form_urlencoded::parse(part.as_bytes()).enumerate() {
        // A part is one "name" with no '=' or '&' structure; those characters arrive encoded.
        if i > 0 || !value.is_empty() || name.contains('\u{FFFD}') {
            return None;
        }
        decoded = name.into_owned();
    }
    Some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(raw: &str) -> String {
        format!("Basic {}", STANDARD.encode(raw))
    }

    #[test]
    fn basic_parts_are_form_decoded() {
        let form = FormParams::default();
        let got = Presented::extract(Some(&basic("svc:a+b%2F%2B")), &form).unwrap();
        assert_eq!(
            got,
            Some(Presented::Basic {
                client_id: "svc".into(),
                secret: "a b/+".into()
            })
        );
        let got = Presented::extract(Some(&basic("requester:requester%2Dsecret")), &form).unwrap();
        assert_eq!(
            got,
            Some(Presented::Basic {
                client_id: "requester".into(),
                secret: "requester-secret".into()
            })
        );
    }

    #[test]
    fn one_method_only() {
        let form = FormParams::parse(b"client_id=a&client_secret=s").unwrap();
        let err = Presented::extract(Some(&basic("a:s")), &form).unwrap_err();
        assert_eq!(
            err.description,
            "More than one client authentication method was used"
        );
        let form = FormParams::parse(b"client_id=b").unwrap();
        let err = Presented::extract(Some(&basic("a:s")), &form).unwrap_err();
        assert_eq!(err.code, crate::ErrorCode::InvalidRequest);
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        let form = FormParams::default();
        for header in ["Basic !!!", "Basic Zm9v", "basic ", &basic(":x")] {
            let err = Presented::extract(Some(header), &form).unwrap_err();
            assert_eq!(err.code, crate::ErrorCode::InvalidClient, "{header}");
        }
    }

    #[test]
    fn secrets_are_checked() {
        let client = Client {
            client_id: "c".into(),
            secret: Some("s3cret".into()),
            ..Default::default()
        };
        let ok = Presented::Post {
            client_id: "c".into(),
            secret: "s3cret".into(),
        };
        assert_eq!(authenticate(&client, &[], &ok, &[], 0), Ok(None));
        let bad = Presented::Post {
            client_id: "c".into(),
            secret: "s3cre".into(),
        };
        assert!(authenticate(&client, &[], &bad, &[], 0).is_err());
        let none = Presented::ClientIdOnly {
            client_id: "c".into(),
        };
        assert!(authenticate(&client, &[], &none, &[], 0).is_err());
    }
}
