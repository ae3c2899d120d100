//! Pieces every endpoint shares: reading bounded form bodies, authenticating clients,
//! checking our own access tokens, signing responses.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use cambio_core::OAuthError;
use cambio_core::client_auth::{self, Presented};
use cambio_core::exchange::ActiveToken;
use cambio_core::form::FormParams;
use cambio_core::model::Client;
use cambio_core::tokens::{ACCESS_TOKEN_TYP, AccessTokenClaims};
use cambio_jose::{AudienceRule, TypRule, Validation};

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, RealmRuntime};

/// The largest form body accepted (RFC 6749 requests are a few kilobytes at most).
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// Leeway for our own tokens' `exp`/`nbf`/`iat`: clocks of one deployment agree closely.
pub const LEEWAY: u64 = 5;

/// Reads a form body: content type checked, size bounded, duplicates refused.
pub async fn read_form(headers: &HeaderMap, body: Body) -> ApiResult<FormParams> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        )
        .into());
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| OAuthError::invalid_request("Request body is too large or unreadable"))?;
    Ok(FormParams::parse(&bytes)?)
}

/// Authenticates the calling client with whichever single method it used. A client that
/// sends no credentials at all is refused.
pub async fn authenticate_client(
    app: &AppState,
    rt: &RealmRuntime,
    headers: &HeaderMap,
    form: &FormParams,
    now: u64,
) -> ApiResult<Arc<Client>> {
    // Two Authorization headers are ambiguous: which one would the client mean?
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return Err(OAuthError::invalid_request("Multiple Authorization headers").into());
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let presented = Presented::extract(authorization, form).map_err(|error| {
        if error.code == cambio_core::ErrorCode::InvalidClient {
            ApiError::ClientAuth { error, basic: true }
        } else {
            ApiError::OAuth(error)
        }
    })?;
    let Some(presented) = presented else {
        return Err(ApiError::OAuth(OAuthError::invalid_client(
            "Parameter 'client_id' required",
        )));
    };
    let basic = presented.is_basic();
    let fail = |error: OAuthError| ApiError::ClientAuth { error, basic };
    let client_id = presented.claimed_client_id().map_err(fail)?;
    app.client_limits
        .check(
            &format!("{}/{client_id}", rt.id()),
            std::time::Instant::now(),
        )
        .map_err(ApiError::TooManyRequests)?;
    let client = rt
        .snapshot
        .client_by_client_id(&client_id)
        .cloned()
        .ok_or_else(|| {
            fail(OAuthError::invalid_client(
                "Invalid client or Invalid client credentials",
            ))
        })?;
    let audiences = [rt.issuer(), rt.token_endpoint.as_str()];
    let assertion = client_auth::authenticate(
        &client,
        rt.snapshot.client_keys(&client.id),
        &presented,
        &audiences,
        now,
    )
    .map_err(fail)?;
    if let Some(assertion) = assertion {
        // Single use, in a context of its own (RFC 7523 §3 item 7).
        let key = format!("{}:{}:{}", rt.id(), client.id, assertion.jti);
        if !app
            .store
            .consume_once("client-assertion", &key, assertion.expires_at)
            .await?
        {
            return Err(fail(OAuthError::invalid_client("Token reuse detected")));
        }
    }
    Ok(client)
}

/// Verifies one of this realm's access tokens and checks it is still active: signature,
/// issuer, type, expiry, and neither it, its session nor a token it was exchanged from
/// revoked. Returns None for anything else.
pub fn active_access_token(
    app: &AppState,
    rt: &RealmRuntime,
    token: &str,
    now: u64,
) -> Option<ActiveToken> {
    let validation = Validation {
        now,
        leeway: LEEWAY,
        issuer: Some(rt.issuer()),
        audience: AudienceRule::Skip,
        typ: TypRule::Exactly(ACCESS_TOKEN_TYP),
        require_exp: true,
        max_token_bytes: cambio_core::exchange::MAX_SUBJECT_TOKEN_BYTES,
    };
    // The size bound comes first, before the token is even hashed for the cache.
    if token.len() > validation.max_token_bytes {
        return None;
    }
    let active = match app.verified_tokens.get(token, rt.generation, &validation) {
        Some(remembered) => remembered,
        None => {
            // Our own keys signed it, so its claims are our claims type.
            let verified = cambio_jose::verify_as::<AccessTokenClaims>(
                token,
                rt.verifiers.as_slice(),
                &validation,
            )
            .ok()?;
            let times = verified.times();
            let active = ActiveToken::from(verified.into_claims());
            app.verified_tokens
                .insert(token, rt.generation, times, &active, now);
            active
        }
    };
    let claims = &active.claims;
    if claims.exp <= now {
        return None;
    }
    let revoked = &app.revocations;
    if revoked.token_id_revoked(&claims.jti)
        || claims
            .exchanged_from
            .iter()
            .any(|jti| revoked.token_id_revoked(jti))
        || claims
            .sid
            .as_deref()
            .is_some_and(|sid| revoked.session_revoked(sid))
    {
        return None;
    }
    Some(active)
}

/// The bearer token of an `Authorization` header (RFC 6750 §2.1).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return None;
    }
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// An enabled realm for the protocol endpoints, or 404.
pub fn protocol_realm(app: &AppState, realm: &str) -> ApiResult<Arc<RealmRuntime>> {
    app.active_realm(realm)
        .ok_or(ApiError::NotFound("Realm does not exist"))
}

/// Checks a username and password, with the brute-force lockout: the password is always
/// verified (so timing does not tell a locked account), and while an account is locked even
/// the right password fails like a wrong one. Unknown users count failures too, so the answer
/// never tells whether a username exists. Verification waits for a place at the server's
/// hashing gate: 429 when every place is taken, 503 when no turn came in time.
pub async fn check_password_login(
    app: &AppState,
    realm_id: &str,
    username: &str,
    password: &str,
) -> ApiResult<Option<cambio_core::model::User>> {
    let key = format!("{realm_id}/{}", username.to_lowercase());
    let user = app.user_by_name(realm_id, username).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let verified = crate::passwords::verify_async(&app.password_hashing, password.to_owned(), hash)
        .await
        .map_err(|refusal| match refusal {
            // Every place is taken: the client should slow down.
            crate::passwords::GateRefusal::Full => {
                ApiError::TooManyRequests(std::time::Duration::from_secs(1))
            }
            crate::passwords::GateRefusal::TimedOut => ApiError::Unavailable,
        })?;
    let now = std::time::Instant::now();
    if app.logins.locked(&key, now) {
        return Ok(None);
    }
    match user {
        Some(user) if verified && user.enabled => {
            app.logins.succeeded(&key);
            Ok(Some(user))
        }
        _ => {
            app.logins.failed(&key, now);
            Ok(None)
        }
    }
}

/// Applies the per-address rate limit.
pub fn limit_address(app: &AppState, peer: std::net::SocketAddr) -> ApiResult<()> {
    app.ip_limits
        .check(&peer.ip().to_string(), std::time::Instant::now())
        .map_err(ApiError::TooManyRequests)
}
