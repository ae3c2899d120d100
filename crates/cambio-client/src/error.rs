//! The SDK's error vocabulary.

use std::fmt;
use std::sync::Arc;

/// An OAuth error answered by the server (RFC 6749 §5.2), kept as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The HTTP status of the answer.
    pub status: u16,
    /// The OAuth `error` code, such as `invalid_grant`.
    pub error: String,
    /// The server's `error_description`, when it sent one.
    pub error_description: Option<String>,
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error_description {
            Some(description) => write!(f, "{}: {description}", self.error),
            None => f.write_str(&self.error),
        }
    }
}

/// Everything an SDK call can fail with.
///
/// Cloneable, because one failed request answers every caller that waited for it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The user must log in again: there is no session, or the server refused the refresh
    /// token (`invalid_grant`: the session ended, was revoked, or the token was reused).
    /// Carries the server's error when there was one.
    #[error("login required{}", .0.as_ref().map(|e| format!(" ({e})")).unwrap_or_default())]
    LoginRequired(Option<OAuthError>),
    /// The server answered with an OAuth error.
    #[error("{0}")]
    OAuth(OAuthError),
    /// The server could not be reached or the connection failed.
    #[error("http: {0}")]
    Http(Arc<reqwest::Error>),
    /// The server answered something that is not what the protocol says it should.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// A token from the server failed verification.
    #[error("token verification failed: {0}")]
    Jwt(#[from] cambio_jose::JwtError),
    /// The client was configured wrongly (a bad issuer URL, a key that cannot sign, ...).
    #[error("configuration: {0}")]
    Config(String),
    /// The token store could not be read or written.
    #[error("token store: {0}")]
    Store(Arc<std::io::Error>),
    /// The browser login failed: the user denied it, the state did not match, or it timed out.
    #[error("browser login: {0}")]
    BrowserLogin(String),
    /// The request itself is invalid (an empty audience, a malformed `traceparent`, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl Error {
    /// The server's OAuth error behind this error, if any (also for [`Error::LoginRequired`]).
    pub fn oauth(&self) -> Option<&OAuthError> {
        match self {
            Error::OAuth(e) | Error::LoginRequired(Some(e)) => Some(e),
            _ => None,
        }
    }

    /// Whether the user has to log in again.
    pub fn is_login_required(&self) -> bool {
        matches!(self, Error::LoginRequired(_))
    }
}

impl From<reqwest::Error> for Error {
    fn from(error: reqwest::Error) -> Self {
        // reqwest names the URL in its errors; ours carry no query strings with secrets.
        Error::Http(Arc::new(error))
    }
}

impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        Error::Store(Arc::new(error))
    }
}

/// The result type of the SDK.
pub type Result<T, E = Error> = std::result::Result<T, E>;
