//! The wire: discovery, the token and revocation endpoints, JWKS, client authentication.
//!
//! Every server answer is read with a size limit; OAuth errors keep `error` and
//! `error_description` as sent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use cambio_jose::SigningKey;
use cambio_proto::{Discovery, ErrorResponse};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::{Error, OAuthError, Result};

/// RFC 8693 grant type and token types.
pub(crate) const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub(crate) const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Token responses are a few kilobytes; anything far larger is not a token response.
const MAX_BODY_BYTES: usize = 256 * 1024;
/// Client assertions live one minute: long enough for clock skew, short enough to be useless
/// if intercepted (the server also accepts each `jti` once).
const ASSERTION_LIFETIME: u64 = 60;

/// How the client proves who it is at the token endpoint.
pub(crate) enum ClientAuth {
    /// A public client: `client_id` in the form, no secret.
    None,
    /// `client_secret_basic` (RFC 6749 §2.3.1).
    Secret(Zeroizing<String>),
    /// `private_key_jwt` (RFC 7523): a fresh signed assertion per request.
    PrivateKeyJwt(SigningKey),
}

/// The endpoints taken from the discovery document.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    pub issuer: String,
    pub token: String,
    pub revocation: String,
    pub authorization: String,
    pub jwks: String,
}

/// The fields of a token response the SDK uses; tokens are wiped when dropped.
#[derive(Deserialize)]
pub(crate) struct TokenReply {
    pub access_token: Zeroizing<String>,
    #[serde(default)]
    pub expires_in: u64,
    #[serde(default)]
    pub refresh_token: Option<Zeroizing<String>>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub issued_token_type: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
}

/// The HTTP side of a client: connection pool, endpoints, credentials.
pub(crate) struct Wire {
    pub http: reqwest::Client,
    pub endpoints: Endpoints,
    pub client_id: String,
    pub auth: ClientAuth,
    /// The DPoP key token requests prove possession of (RFC 9449), if the client has one; a
    /// restored session brings back the key its tokens are bound to.
    pub dpop: std::sync::RwLock<Option<std::sync::Arc<Dpop>>>,
}

/// A DPoP key and the last nonce the server handed out for it.
pub(crate) struct Dpop {
    pub key: SigningKey,
    nonce: std::sync::Mutex<Option<String>>,
}

impl Dpop {
    pub fn new(key: SigningKey) -> Dpop {
        Dpop {
            key,
            nonce: std::sync::Mutex::new(None),
        }
    }

    /// A fresh proof for one request (RFC 9449 §4.2): `htu` without query or fragment, `ath`
    /// when an access token goes with it, and the server's last nonce for token requests.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: bool,
    ) -> Result<String> {
        let htu = url.split(['?', '#']).next().unwrap_or(url);
        let mut claims = serde_json::json!({
            "jti": random_token(),
            "htm": method,
            "htu": htu,
            "iat": unix_now(),
        });
        if let Some(token) = access_token {
            claims["ath"] = serde_json::json!(cambio_jose::access_token_hash(token));
        }
        if nonce && let Some(nonce) = self.nonce.lock().ok().and_then(|n| n.clone()) {
            claims["nonce"] = serde_json::json!(nonce);
        }
        self.key
            .sign_dpop_proof(&claims)
            .map_err(|e| Error::Protocol(format!("DPoP proof: {e}")))
    }

    /// Keeps the nonce a server answer carried, if any; whether one came.
    fn remember_nonce(&self, headers: &HeaderMap) -> bool {
        let Some(nonce) = headers.get("dpop-nonce").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        if let Ok(mut slot) = self.nonce.lock() {
            *slot = Some(nonce.to_owned());
        }
        true
    }
}

impl Wire {
    /// Fetches `{issuer}/.well-known/openid-configuration` and checks that it names `issuer`
    /// (OpenID Connect Discovery §4.3), so endpoints cannot be redirected to another realm.
    ///
    /// Before anything is sent, the issuer must be HTTPS (or plain HTTP on loopback); so must
    /// every endpoint the document names, on the issuer's own origin (see [`check_endpoint`]).
    pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Endpoints> {
        let issuer = issuer.trim_end_matches('/');
        let issuer_url = check_transport("issuer", issuer)?;
        let url = format!("{issuer}/.well-known/openid-configuration");
        let response = http.get(&url).send().await?;
        let status = response.status();
        let body = read_limited(response).await?;
        if !status.is_success() {
            return Err(Error::Config(format!(
                "discovery at {url} answered {status}"
            )));
        }
        let doc: Discovery = serde_json::from_slice(&body)
            .map_err(|e| Error::Protocol(format!("discovery document: {e}")))?;
        if doc.issuer != issuer {
            return Err(Error::Config(format!(
                "discovery names issuer {} instead of {issuer}",
                doc.issuer
            )));
        }
        check_endpoint(&issuer_url, "token_endpoint", &doc.token_endpoint)?;
        check_endpoint(&issuer_url, "revocation_endpoint", &doc.revocation_endpoint)?;
        check_endpoint(
            &issuer_url,
            "authorization_endpoint",
            &doc.authorization_endpoint,
        )?;
        check_endpoint(&issuer_url, "jwks_uri", &doc.jwks_uri)?;
        Ok(Endpoints {
            issuer: doc.issuer,
            token: doc.token_endpoint,
            revocation: doc.revocation_endpoint,
            authorization: doc.authorization_endpoint,
            jwks: doc.jwks_uri,
        })
    }

    /// The client's DPoP key, if it has one.
    pub fn dpop(&self) -> Option<std::sync::Arc<Dpop>> {
        self.dpop.read().ok().and_then(|d| d.clone())
    }

    /// Makes `key` the client's DPoP key (a restored session's).
    pub fn set_dpop(&self, key: SigningKey) {
        if let Ok(mut slot) = self.dpop.write() {
            *slot = Some(std::sync::Arc::new(Dpop::new(key)));
        }
    }

    /// POSTs a grant to the token endpoint with client authentication.
    pub async fn token(
        &self,
        form: &[(&str, &str)],
        extra_headers: Option<HeaderMap>,
    ) -> Result<TokenReply> {
        let body = self
            .post(&self.endpoints.token, form, extra_headers)
            .await?;
        serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("token response: {e}")))
    }

    /// RFC 7009 revocation of `token`.
    pub async fn revoke(&self, token: &str, hint: &str) -> Result<()> {
        self.post(
            &self.endpoints.revocation,
            &[("token", token), ("token_type_hint", hint)],
            None,
        )
        .await
        .map(drop)
    }

    /// The realm's signature keys.
    pub async fn jwks(&self) -> Result<Vec<cambio_jose::VerifyingKey>> {
        fetch_jwks(&self.http, &self.endpoints.jwks).await
    }

    async fn post(
        &self,
        url: &str,
        form: &[(&str, &str)],
        extra_headers: Option<HeaderMap>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        // Token requests prove the DPoP key; a server that wants a nonce says so once
        // (`use_dpop_nonce` with the nonce), and the request is sent again with it (§8).
        let proving = self.dpop().filter(|_| url == self.endpoints.token);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut headers = extra_headers.clone().unwrap_or_default();
            if let Some(dpop) = &proving {
                // A bound subject token is accepted only with a proof naming it (`ath`).
                let subject = form
                    .iter()
                    .find(|(name, _)| *name == "subject_token")
                    .map(|(_, value)| *value);
                let proof = dpop.proof("POST", url, subject, true)?;
                let value = HeaderValue::from_str(&proof)
                    .map_err(|_| Error::Protocol("DPoP proof is not a header value".into()))?;
                headers.insert("dpop", value);
            }
            let body = self.authenticated_form(form, &mut headers)?;
            let response = self
                .http
                .post(url)
                .headers(headers)
                .body(body.as_bytes().to_vec())
                .send()
                .await?;
            let status = response.status();
            let fresh_nonce = proving
                .as_ref()
                .is_some_and(|d| d.remember_nonce(response.headers()));
            let bytes = read_limited(response).await?;
            if status.is_success() {
                return Ok(bytes);
            }
            let error = oauth_error(status, &bytes);
            if error.error == "use_dpop_nonce" && fresh_nonce && attempts == 1 {
                continue;
            }
            return Err(Error::OAuth(error));
        }
    }

    /// The form body with the client's authentication added, to the body or to `headers`.
    /// (A separate function because the serializer is not `Send` and may not live across
    /// an await.)
    fn authenticated_form(
        &self,
        form: &[(&str, &str)],
        headers: &mut HeaderMap,
    ) -> Result<Zeroizing<String>> {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        serializer.extend_pairs(form);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        match &self.auth {
            ClientAuth::None => {
                serializer.append_pair("client_id", &self.client_id);
            }
            ClientAuth::Secret(secret) => {
                let mut value = HeaderValue::from_str(&basic(&self.client_id, secret))
                    .map_err(|_| Error::Config("client credentials are not valid".into()))?;
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
            ClientAuth::PrivateKeyJwt(key) => {
                let assertion = self.assertion(key)?;
                serializer
                    .append_pair("client_id", &self.client_id)
                    .append_pair("client_assertion_type", CLIENT_ASSERTION_TYPE)
                    .append_pair("client_assertion", &assertion);
            }
        }
        Ok(Zeroizing::new(serializer.finish()))
    }

    /// An RFC 7523 client assertion for the token endpoint.
    fn assertion(&self, key: &SigningKey) -> Result<String> {
        let now = unix_now();
        let claims = serde_json::json!({
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.endpoints.token,
            "jti": random_token(),
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        key.sign("JWT", &claims)
            .map_err(|e| Error::Config(format!("cannot sign the client assertion: {e}")))
    }
}

/// Parses `url` and checks that credentials sent to it cannot be read on the way: HTTPS, or
/// plain HTTP to this machine's loopback interface (`127.0.0.0/8`, `[::1]`, `localhost`),
/// where nothing crosses a network. A plain `http://` URL on any other host is refused before
/// a single request, so no secret, password or refresh token ever travels in clear.
pub(crate) fn check_transport(what: &str, url: &str) -> Result<url::Url> {
    let parsed = url::Url::parse(url).map_err(|e| Error::Config(format!("{what} {url:?}: {e}")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::Config(format!(
            "{what} {url} must not carry credentials"
        )));
    }
    let loopback = is_loopback(&parsed);
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => Err(Error::Config(format!(
            "{what} {url} is not HTTPS: plain HTTP is allowed only to 127.0.0.1, [::1] or \
             localhost, so that no secret, password or token crosses a network in clear"
        ))),
    }
}

/// Checks an endpoint named by the discovery document: HTTPS (or loopback) like the issuer,
/// and on the issuer's origin (scheme, host and port).
///
/// The same origin is required because the client secret, the user's password and the refresh
/// token go to these endpoints: the origin the application was configured with is the one
/// whose TLS certificate it checks, and a document that names another host (a tampering proxy
/// or cache, a misconfigured server) must not be able to send credentials there. Cambio
/// publishes every endpoint under its issuer, so this costs nothing with Cambio; providers that
/// spread endpoints over several hosts are not what this SDK is for.
fn check_endpoint(issuer: &url::Url, what: &str, url: &str) -> Result<()> {
    let parsed = check_transport(what, url)?;
    if parsed.origin() != issuer.origin() {
        return Err(Error::Config(format!(
            "the discovery document's {what} {url} is not on the issuer's origin {}",
            issuer.origin().ascii_serialization()
        )));
    }
    Ok(())
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Whether `issuer` is plain HTTP to loopback: then every request goes there (endpoints are on
/// the issuer's origin), and must go straight there.
pub(crate) fn is_plain_loopback(issuer: &str) -> bool {
    url::Url::parse(issuer).is_ok_and(|u| u.scheme() == "http" && is_loopback(&u))
}

/// A reqwest client with the SDK's limits: no redirects (a token endpoint never redirects,
/// and following one would resend credentials), bounded connect and request times. `direct`
/// (a plain-HTTP loopback issuer) turns off proxies from the environment: plain HTTP is allowed
/// only because loopback traffic never leaves the machine, and an `HTTP_PROXY` would carry the
/// password, the client secret and the refresh token across the network in clear.
/// The signature keys published at `url` (a realm's `jwks_uri`).
pub(crate) async fn fetch_jwks(
    http: &reqwest::Client,
    url: &str,
) -> Result<Vec<cambio_jose::VerifyingKey>> {
    let response = http.get(url).send().await?;
    let status = response.status();
    let body = read_limited(response).await?;
    if !status.is_success() {
        return Err(Error::Protocol(format!("JWKS answered {status}")));
    }
    cambio_jose::parse_jwks(&body, None).map_err(|e| Error::Protocol(format!("JWKS: {e}")))
}

pub(crate) fn http_client(timeout: Duration, direct: bool) -> Result<reqwest::Client> {
    let builder = reqwest::Client::builder();
    let builder = if direct { builder.no_proxy() } else { builder };
    builder
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout)
        .build()
        .map_err(Error::from)
}

/// Reads a body up to [`MAX_BODY_BYTES`]; the copy is wiped when dropped.
/// The OAuth error of a refusal, as the server sent it.
fn oauth_error(status: reqwest::StatusCode, bytes: &[u8]) -> OAuthError {
    match serde_json::from_slice::<ErrorResponse>(bytes) {
        Ok(e) => OAuthError {
            status: status.as_u16(),
            error: e.error,
            error_description: e.error_description,
        },
        Err(_) => OAuthError {
            status: status.as_u16(),
            error: "server_error".into(),
            error_description: Some(format!("HTTP {status} without an OAuth error body")),
        },
    }
}

async fn read_limited(mut response: reqwest::Response) -> Result<Zeroizing<Vec<u8>>> {
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Error::Protocol("response body too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// RFC 6749 §2.3.1: both parts form-url-encoded, then base64.
fn basic(id: &str, secret: &str) -> Zeroizing<String> {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = Zeroizing::new(format!("{}:{}", encode(id), encode(secret)));
    Zeroizing::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
    ))
}

/// 32 random bytes, base64url: PKCE verifiers, `state` values, assertion and proof ids.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // aws-lc-rs reads the operating system's generator; it fails only if that is broken,
    // and then no secure value can be made at all.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        panic!("the system random number generator failed");
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Unix seconds now.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports() {
        let table = [
            ("https://sso.example/realms/demo", true),
            ("https://10.0.0.1/realms/demo", true),
            ("http://127.0.0.1:8080/realms/demo", true),
            ("http://127.1.2.3/realms/demo", true),
            ("http://[::1]:8080/realms/demo", true),
            ("http://localhost:8080/realms/demo", true),
            ("http://LOCALHOST/realms/demo", true),
            ("http://sso.example/realms/demo", false),
            ("http://10.0.0.1/realms/demo", false),
            ("http://[::ffff:127.0.0.1]/realms/demo", false),
            ("http://localhost.sso.example/realms/demo", false),
            ("http://127.0.0.1.sso.example/realms/demo", false),
            ("ftp://127.0.0.1/realms/demo", false),
            ("https://user:pw@sso.example/realms/demo", false),
            ("/realms/demo", false),
        ];
        for (url, allowed) in table {
            assert_eq!(check_transport("issuer", url).is_ok(), allowed, "{url}");
        }
    }

    #[test]
    fn endpoints_stay_on_the_issuers_origin() {
        let issuer = check_transport("issuer", "https://sso.example/realms/demo").unwrap();
        let table = [
            ("https://sso.example/realms/demo/token", true),
            ("https://sso.example:443/realms/demo/token", true),
            ("https://sso.example:8443/realms/demo/token", false),
            ("https://evil.example/token", false),
            ("http://sso.example/realms/demo/token", false),
            ("https://SSO.example/realms/demo/token", true),
        ];
        for (url, allowed) in table {
            assert_eq!(
                check_endpoint(&issuer, "token_endpoint", url).is_ok(),
                allowed,
                "{url}"
            );
        }
    }
}
