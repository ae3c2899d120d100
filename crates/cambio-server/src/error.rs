//! The one place where errors become HTTP responses.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cambio_core::{ErrorCode, OAuthError};
use cambio_store::StoreError;
use serde_json::json;

/// Every error a handler can return.
#[derive(Debug)]
pub enum ApiError {
    /// An OAuth error answered with 400 (or 403 for `access_denied`).
    OAuth(OAuthError),
    /// Wrong user credentials at the password grant: 401, as Keycloak answers (its clients
    /// tell a failed login from a malformed request by the status).
    UserCredentials(OAuthError),
    /// Client authentication failed: 401, with a Basic challenge when Basic was used.
    ClientAuth { error: OAuthError, basic: bool },
    /// A bearer token was missing or invalid at a resource endpoint (RFC 6750 §3).
    Bearer {
        status: StatusCode,
        error: Option<&'static str>,
        description: &'static str,
    },
    /// A resource request whose DPoP binding or proof failed (RFC 9449 §7.1): 401 with a
    /// `DPoP` challenge naming the algorithms proofs may use.
    Dpop {
        error: &'static str,
        description: String,
    },
    /// A DPoP proof without the server's current nonce in a realm that asks for one
    /// (RFC 9449 §8, §9): the answer carries a fresh nonce in `DPoP-Nonce`.
    DpopNonce { nonce: String, at_resource: bool },
    /// Unknown realm or path.
    NotFound(&'static str),
    /// Admin API errors, in Keycloak's shape `{"error", "errorMessage"}`.
    Admin { status: StatusCode, message: String },
    /// The store failed; the request may be retried.
    Unavailable,
    /// A rate limit was hit: 429 with `Retry-After`.
    TooManyRequests(std::time::Duration),
}

impl From<OAuthError> for ApiError {
    fn from(e: OAuthError) -> Self {
        ApiError::OAuth(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => ApiError::Admin {
                status: StatusCode::CONFLICT,
                message: what,
            },
            StoreError::NotFound => ApiError::NotFound("Not found"),
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::Unavailable
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

fn oauth_body(error: &OAuthError) -> Json<serde_json::Value> {
    Json(json!({"error": error.code.as_str(), "error_description": error.description}))
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::OAuth(error) => {
                let status = match error.code {
                    ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
                    ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::BAD_REQUEST,
                };
                no_store((status, oauth_body(&error)).into_response())
            }
            // Keycloak 26 answers a wrong username or password with 400 (observed by the
            // differential suite), as RFC 6749 §5.2 has it for `invalid_grant`.
            ApiError::UserCredentials(error) => {
                no_store((StatusCode::BAD_REQUEST, oauth_body(&error)).into_response())
            }
            ApiError::ClientAuth { error, basic } => {
                let mut response = (StatusCode::UNAUTHORIZED, oauth_body(&error)).into_response();
                if basic {
                    response.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"cambio\""),
                    );
                }
                no_store(response)
            }
            ApiError::Bearer {
                status,
                error,
                description,
            } => {
                let challenge = match error {
                    Some(code) => format!("Bearer realm=\"cambio\", error=\"{code}\", error_description=\"{description}\""),
                    None => "Bearer realm=\"cambio\"".to_owned(),
                };
                let body = Json(json!({"error": error.unwrap_or("invalid_request"), "error_description": description}));
                let mut response = (status, body).into_response();
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            ApiError::Dpop { error, description } => {
                // The description goes into a quoted header parameter: keep it to safe text.
                let safe: String = description
                    .chars()
                    .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
                    .collect();
                let algs = crate::dpop::ALGORITHMS.map(|a| a.as_str()).join(" ");
                let challenge = format!(
                    "DPoP algs=\"{algs}\", error=\"{error}\", error_description=\"{safe}\""
                );
                let body = Json(json!({"error": error, "error_description": description}));
                let mut response = (StatusCode::UNAUTHORIZED, body).into_response();
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
                }
                no_store(response)
            }
            ApiError::DpopNonce { nonce, at_resource } => {
                let description = "Authorization server requires nonce in DPoP proof";
                let body = Json(json!({"error": "use_dpop_nonce", "error_description": description}));
                let status = if at_resource { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
                let mut response = (status, body).into_response();
                let headers = response.headers_mut();
                if let Ok(value) = HeaderValue::from_str(&nonce) {
                    headers.insert("dpop-nonce", value);
                }
                if at_resource {
                    let algs = crate::dpop::ALGORITHMS.map(|a| a.as_str()).join(" ");
                    let challenge = format!("DPoP algs=\"{algs}\", error=\"use_dpop_nonce\", error_description=\"{description}\"");
                    if let Ok(value) = HeaderValue::from_str(&challenge) {
                        headers.insert(header::WWW_AUTHENTICATE, value);
                    }
                }
                no_store(response)
            }
            ApiError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                Json(json!({"error": what, "errorMessage": what})),
            )
                .into_response(),
            ApiError::Admin { status, message } => (
                status,
                Json(json!({"error": message, "errorMessage": message})),
            )
                .into_response(),
            ApiError::TooManyRequests(wait) => {
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({"error": "temporarily_unavailable", "error_description": "Too many requests; retry later"})),
                )
                    .into_response();
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                if let Ok(value) = HeaderValue::from_str(&secs.max(1).to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                no_store(response)
            }
            ApiError::Unavailable => no_store(
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "temporarily_unavailable", "error_description": "The server cannot complete the request now; retry later"})),
                )
                    .into_response(),
            ),
        }
    }
}

/// Errors produced by the framework rather than by a handler (unknown path, wrong method, body
/// over the limit, timeout) come without a JSON body; give them one, so every error a client
/// sees has the same shape. Handler errors already carry JSON and pass through untouched.
pub fn json_for_framework_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // Extractor rejections (a query that does not parse, a bad path parameter) are plain text.
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if !plain {
        return response;
    }
    let (error, description) = match status {
        StatusCode::NOT_FOUND => ("not_found", "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("invalid_request", "Method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => ("invalid_request", "Request body too large"),
        StatusCode::SERVICE_UNAVAILABLE => ("temporarily_unavailable", "The request took too long"),
        s if s.is_server_error() => ("server_error", "The server could not complete the request"),
        _ => ("invalid_request", "Invalid request"),
    };
    let mut out = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    // Keep headers the framework set for a reason, such as `Allow` on 405.
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}
