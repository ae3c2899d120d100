//! The client SDK (`cambio-client`) for Kotlin/JVM, through UniFFI's generated bindings.
//!
//! Thin by design: each exported call is one call of the Rust [`cambio_client::Client`]; the
//! cache, its keys and renewal margin, refreshes, transport checks and the trace context's
//! form are the SDK's and nowhere else. Calls are `async`, so Kotlin gets `suspend`
//! functions (UniFFI polls the futures from the coroutine; its `tokio` feature provides
//! Tokio's reactor to them). The internal access and refresh tokens have no way out: only
//! tokens exchanged for an audience cross the boundary, and an [`ExchangedToken`]'s
//! `toString()` leaves the token out.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, UNIX_EPOCH};

use cambio_client as sdk;

uniffi::setup_scaffolding!();

/// Every failure, with the server's OAuth `error` and `error_description` where there was
/// one. In Kotlin: `CambioException.LoginRequired`, `CambioException.OAuth`, ...
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum CambioError {
    /// The user must log in again: there is no session, or the server refused the refresh
    /// token (then its error is kept).
    #[error("login required")]
    LoginRequired {
        error: Option<String>,
        error_description: Option<String>,
    },
    /// The server answered with an OAuth error.
    #[error("{error}: {}", error_description.as_deref().unwrap_or_default())]
    OAuth {
        status: u16,
        error: String,
        error_description: Option<String>,
    },
    /// The request itself is invalid (an empty audience, a malformed `traceparent`, ...).
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },
    /// Anything else: the server cannot be reached, a bad configuration, a token store error.
    #[error("{reason}")]
    Failed { reason: String },
}

impl From<sdk::Error> for CambioError {
    fn from(error: sdk::Error) -> Self {
        match error {
            sdk::Error::LoginRequired(oauth) => CambioError::LoginRequired {
                error: oauth.as_ref().map(|e| e.error.clone()),
                error_description: oauth.and_then(|e| e.error_description),
            },
            sdk::Error::OAuth(e) => CambioError::OAuth {
                status: e.status,
                error: e.error,
                error_description: e.error_description,
            },
            sdk::Error::InvalidRequest(reason) => CambioError::InvalidRequest { reason },
            other => CambioError::Failed {
                reason: other.to_string(),
            },
        }
    }
}

type Result<T, E = CambioError> = std::result::Result<T, E>;

/// A request for a token meant for one audience, the SDK's `ExchangeRequest`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ExchangeRequest {
    /// The client id of the backend the token is for.
    pub audience: String,
    /// Space-separated scopes to narrow the token to.
    #[uniffi(default = None)]
    pub scope: Option<String>,
    /// RFC 8693 `requested_token_type`; an access token when absent.
    #[uniffi(default = None)]
    pub requested_token_type: Option<String>,
    /// Skip the cache: fetch a new token and replace the cached one.
    #[uniffi(default = false)]
    pub force_update: bool,
    /// A W3C `traceparent` sent with the request when one is made.
    #[uniffi(default = None)]
    pub trace_parent: Option<String>,
    /// The W3C `tracestate` that goes with `trace_parent`.
    #[uniffi(default = None)]
    pub trace_state: Option<String>,
}

impl From<ExchangeRequest> for sdk::ExchangeRequest {
    fn from(request: ExchangeRequest) -> Self {
        sdk::ExchangeRequest {
            audience: request.audience,
            scope: request.scope,
            requested_token_type: request.requested_token_type,
            force_update: request.force_update,
            trace_parent: request.trace_parent,
            trace_state: request.trace_state,
        }
    }
}

/// A token issued for one audience. `toString()` leaves the token out.
#[derive(uniffi::Object)]
#[uniffi::export(Display)]
pub struct ExchangedToken(sdk::ExchangedToken);

#[uniffi::export]
impl ExchangedToken {
    /// The token, to send as `Authorization: Bearer <token>` to the audience.
    pub fn token(&self) -> String {
        self.0.token().to_owned()
    }

    /// The `token_type` of the response (`Bearer`).
    pub fn token_type(&self) -> String {
        self.0.token_type().to_owned()
    }

    /// RFC 8693 `issued_token_type`.
    pub fn issued_token_type(&self) -> String {
        self.0.issued_token_type().to_owned()
    }

    /// The scopes the token carries, space-separated.
    pub fn scope(&self) -> String {
        self.0.scope().to_owned()
    }

    /// When the token expires, in seconds since the Unix epoch.
    pub fn expires_at_epoch_seconds(&self) -> u64 {
        self.0
            .expires_at()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    }

    /// How long the token was valid for when issued, in seconds.
    pub fn lifetime_seconds(&self) -> u64 {
        self.0.lifetime().as_secs()
    }
}

impl fmt::Display for ExchangedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// The event API's requests, the SDK's `Event`.
#[derive(Debug, Clone, uniffi::Enum)]
pub enum Event {
    /// A token for `audience` (cached unless `force_update`).
    ExchangeIamToken {
        audience: String,
        force_update: bool,
        trace_parent: Option<String>,
        trace_state: Option<String>,
    },
    /// The claims of a fresh internal access token.
    GetIamAccessTokenClaims,
}

/// The event API's answers, of the kind the event asked for.
#[derive(uniffi::Enum)]
pub enum ResultEvent {
    ExchangeIamTokenResult {
        token: Arc<ExchangedToken>,
    },
    /// The claims as a JSON object's text.
    GetIamAccessTokenClaimsResult {
        claims_json: String,
    },
}

/// A client of one realm. Thread-safe; every call suspends instead of blocking.
#[derive(uniffi::Object)]
pub struct CambioClient {
    client: sdk::Client,
    events: sdk::EventHandle,
}

#[uniffi::export(async_runtime = "tokio")]
impl CambioClient {
    /// Reads the realm's discovery document (`issuer` is `{base}/realms/{realm}`). With
    /// `token_file`, the refresh token is kept there (mode 0600) for [`CambioClient::restore`].
    /// With `dpop`, the client holds a DPoP key (RFC 9449), generated here and never exported:
    /// its tokens are bound to it, and [`CambioClient::dpop_proof`] signs with it.
    #[uniffi::constructor(default(client_secret = None, token_file = None, dpop = false))]
    pub async fn connect(
        issuer: String,
        client_id: String,
        client_secret: Option<String>,
        token_file: Option<String>,
        dpop: bool,
    ) -> Result<Arc<CambioClient>> {
        let mut builder = sdk::Client::builder(issuer, client_id);
        if let Some(secret) = client_secret {
            builder = builder.client_secret(secret);
        }
        if dpop {
            let key = sdk::SigningKey::generate(sdk::Algorithm::Es256).map_err(|e| {
                CambioError::Failed {
                    reason: format!("DPoP key: {e}"),
                }
            })?;
            builder = builder.dpop_key(key);
        }
        if let Some(path) = token_file {
            builder = builder.token_store(Arc::new(sdk::FileTokenStore::new(path)));
        }
        let client = builder.build().await?;
        let events = client.event_handle();
        Ok(Arc::new(CambioClient { client, events }))
    }

    /// The realm's issuer URL.
    pub fn issuer(&self) -> String {
        self.client.issuer().to_owned()
    }

    /// The client id.
    pub fn client_id(&self) -> String {
        self.client.client_id().to_owned()
    }

    /// A DPoP proof for sending `token` (an exchanged token of this client) in a `method`
    /// request to `url`: put it in the `DPoP` header, with `Authorization: DPoP <token>`.
    /// Null when the client was connected without `dpop`.
    pub fn dpop_proof(&self, method: String, url: String, token: String) -> Result<Option<String>> {
        Ok(self.client.dpop_proof(&method, &url, &token)?)
    }

    /// Whether there is a session (it may still turn out to be ended at the server).
    pub async fn is_logged_in(&self) -> bool {
        self.client.is_logged_in().await
    }

    /// Logs a user in with the password grant; replaces any session, empties the cache.
    pub async fn login_password(&self, username: String, password: String) -> Result<()> {
        Ok(self.client.login_password(&username, &password).await?)
    }

    /// Logs the client itself in (client credentials).
    pub async fn login_client_credentials(&self) -> Result<()> {
        Ok(self.client.login_client_credentials().await?)
    }

    /// Resumes the session kept in the token file; `LoginRequired` when there is none.
    pub async fn restore(&self) -> Result<()> {
        Ok(self.client.restore().await?)
    }

    /// Starts a browser login (authorization code with PKCE, loopback redirect).
    #[uniffi::method(default(scope = None))]
    pub async fn browser_login(&self, scope: Option<String>) -> Result<Arc<BrowserLogin>> {
        let login = self.client.browser_login(scope.as_deref()).await?;
        Ok(Arc::new(BrowserLogin {
            authorization_url: login.authorization_url().to_owned(),
            redirect_uri: login.redirect_uri().to_owned(),
            login: Mutex::new(Some(login)),
        }))
    }

    /// A token for one audience: from the cache while it has enough life left, else
    /// exchanged for the internal token (RFC 8693).
    pub async fn exchange(&self, request: ExchangeRequest) -> Result<Arc<ExchangedToken>> {
        let token = self.client.exchange(request.into()).await?;
        Ok(Arc::new(ExchangedToken(token)))
    }

    /// The verified claims of a fresh internal access token, as a JSON object's text (one
    /// round trip each call).
    pub async fn claims_json(&self) -> Result<String> {
        let claims = self.client.access_token_claims().await?;
        Ok(serde_json::Value::Object(claims).to_string())
    }

    /// Revokes the session at the server and forgets it here (and in the token file).
    pub async fn logout(&self) -> Result<()> {
        Ok(self.client.logout().await?)
    }

    /// The event API: an [`Event`] in, the matching [`ResultEvent`] out.
    pub async fn send(&self, event: Event) -> Result<ResultEvent> {
        let event = match event {
            Event::ExchangeIamToken {
                audience,
                force_update,
                trace_parent,
                trace_state,
            } => sdk::Event::ExchangeIamToken {
                audience,
                force_update,
                trace_context: trace_parent.map(|trace_parent| sdk::TraceContext {
                    trace_parent,
                    trace_state,
                }),
            },
            Event::GetIamAccessTokenClaims => sdk::Event::GetIamAccessTokenClaims,
        };
        match self.events.send(event).await {
            sdk::ResultEvent::ExchangeIamTokenResult(token) => {
                Ok(ResultEvent::ExchangeIamTokenResult {
                    token: Arc::new(ExchangedToken(token?)),
                })
            }
            sdk::ResultEvent::GetIamAccessTokenClaimsResult(claims) => {
                Ok(ResultEvent::GetIamAccessTokenClaimsResult {
                    claims_json: serde_json::Value::Object(claims?).to_string(),
                })
            }
        }
    }
}

/// A browser login under way: open `authorizationUrl()` in a browser, then `finish()`.
#[derive(uniffi::Object)]
pub struct BrowserLogin {
    authorization_url: String,
    redirect_uri: String,
    login: Mutex<Option<sdk::BrowserLogin>>,
}

#[uniffi::export(async_runtime = "tokio")]
impl BrowserLogin {
    /// The URL to open in the browser.
    pub fn authorization_url(&self) -> String {
        self.authorization_url.clone()
    }

    /// Where the browser comes back to, on this machine.
    pub fn redirect_uri(&self) -> String {
        self.redirect_uri.clone()
    }

    /// Waits up to `timeout_seconds` for the redirect, then starts the session.
    pub async fn finish(&self, timeout_seconds: u32) -> Result<()> {
        let login = self
            .login
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| CambioError::Failed {
                reason: "this browser login was already finished".into(),
            })?;
        Ok(login
            .finish(Duration::from_secs(timeout_seconds.into()))
            .await?)
    }
}
