//! Pieces every endpoint shares: reading bounded form bodies, authenticating clients,
//! checking our own tokens against the present state, signing responses.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use cambio_core::OAuthError;
use cambio_core::client_auth::{self, Presented};
use cambio_core::exchange::ActiveToken;
use cambio_core::form::FormParams;
use cambio_core::issue::RefreshData;
use cambio_core::model::{Client, User};
use cambio_core::tokens::{ACCESS_TOKEN_TYP, AccessTokenClaims};
use cambio_jose::{AudienceRule, TypRule, Validation};
use cambio_store::{RefreshTokenRecord, SessionRecord};

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
        // Single use, in a context of its own (RFC 7523 §3 item 7), remembered for as long as
        // the assertion is accepted, the clock-skew leeway included.
        let key = format!("{}:{}:{}", rt.id(), client.id, assertion.jti);
        if !app
            .store
            .consume_once("client-assertion", &key, assertion.acceptable_until)
            .await?
        {
            return Err(fail(OAuthError::invalid_client("Token reuse detected")));
        }
    }
    Ok(client)
}

/// An access token of this realm that is good now, with the present state behind it.
pub struct LiveToken {
    pub token: ActiveToken,
    pub user: Arc<User>,
    pub client: Arc<Client>,
}

/// The one check of an access token that something is about to rely on (a subject or actor
/// token, introspection, userinfo, the admin API): signature, issuer, type and times; neither
/// it, an ancestor, its session nor its client's part of the session revoked; its user (for
/// client credentials, the service account) present and enabled; the client it was issued to
/// (`azp`) present and enabled, and for a service account its own client too, with service
/// accounts on. None when it is not good now; an error only when the store
/// fails. Reads memory only (realm snapshot, revocations, user cache) unless a user is not
/// cached yet.
pub async fn live_access_token(
    app: &AppState,
    rt: &RealmRuntime,
    token: &str,
    now: u64,
) -> ApiResult<Option<LiveToken>> {
    let Some(token) = active_access_token(app, rt, token, now) else {
        return Ok(None);
    };
    let claims = &token.claims;
    let Some(client) = live_client(rt, &claims.azp, claims.iat) else {
        return Ok(None);
    };
    if claims.sid.as_deref().is_some_and(|sid| {
        app.revocations
            .client_part_ended(sid, &client.id, claims.iat)
    }) {
        return Ok(None);
    }
    let Some(user) = live_user(app, rt, &claims.sub).await? else {
        return Ok(None);
    };
    // A service account exists only while its client is present, enabled and keeps service
    // accounts on (its tokens may have been exchanged since, so `azp` may name another client).
    if let Some(owner) = &user.service_account_client_id
        && !rt
            .snapshot
            .client(owner)
            .is_some_and(|c| c.enabled && c.service_accounts_enabled)
    {
        return Ok(None);
    }
    Ok(Some(LiveToken {
        token,
        user,
        client,
    }))
}

/// A live access token presented as the subject of a request that issues something else
/// from it (a Txn-Token, an authorization grant): `invalid_request` when it is not live, and a
/// DPoP-bound token only with a proof by its key that names it, as in every exchange.
pub async fn live_subject_token(
    app: &AppState,
    rt: &RealmRuntime,
    token: &str,
    proof: Option<&cambio_core::dpop::AcceptedProof>,
    now: u64,
) -> ApiResult<LiveToken> {
    let live = live_access_token(app, rt, token, now)
        .await?
        .ok_or_else(|| OAuthError::invalid_request("Invalid token"))?;
    if let Some(bound) = cambio_core::dpop::bound_key(live.token.claims.cnf.as_ref()) {
        cambio_core::dpop::check_presented_token(
            Some(bound),
            proof,
            &cambio_jose::access_token_hash(token),
        )?;
    }
    Ok(live)
}

/// A stored refresh token that is good now (apart from having been used, which the refresh
/// grant turns into reuse detection), with the present state behind it.
pub struct LiveRefresh {
    pub data: RefreshData,
    pub user: Arc<User>,
    pub client: Arc<Client>,
}

/// The refresh-token counterpart of [`live_access_token`], with the same rules: the token
/// unexpired and of this realm; its session present, unexpired and not ended; its client's part
/// of the session not ended since the token was issued; no token it was exchanged from revoked;
/// its user and its client present and enabled. `Err` is the refusal the refresh grant answers.
pub async fn live_refresh_token(
    app: &AppState,
    rt: &RealmRuntime,
    record: &RefreshTokenRecord,
    session: Option<&SessionRecord>,
    now: u64,
) -> ApiResult<Result<LiveRefresh, OAuthError>> {
    if record.realm_id != rt.id() {
        return Ok(Err(OAuthError::invalid_grant("Invalid refresh token")));
    }
    if record.expires_at <= now {
        return Ok(Err(OAuthError::invalid_grant("Refresh token expired")));
    }
    let session_live = session.is_some_and(|s| {
        s.id == record.session_id
            && s.revoked_at.is_none()
            && s.expires_at > now
            && !app.revocations.session_revoked(&s.id)
    });
    if !session_live {
        return Ok(Err(OAuthError::invalid_grant("Session not active")));
    }
    let revocations = &app.revocations;
    if revocations.client_part_ended(&record.session_id, &record.client_id, record.issued_at) {
        return Ok(Err(OAuthError::invalid_grant(
            "Session doesn't have required client",
        )));
    }
    // A refresh token stored before its data could be read is refused rather than refreshed
    // without the ancestry that its data would have named.
    let Ok(data) = serde_json::from_str::<RefreshData>(&record.data) else {
        return Ok(Err(OAuthError::invalid_grant("Invalid refresh token")));
    };
    if data
        .exchanged_from
        .iter()
        .any(|jti| revocations.token_id_revoked(jti))
    {
        return Ok(Err(OAuthError::invalid_grant("Token is not active")));
    }
    let Some(client) = rt
        .snapshot
        .client(&record.client_id)
        .filter(|c| c.enabled && record.issued_at >= c.created_at)
    else {
        return Ok(Err(OAuthError::invalid_grant("Client disabled or removed")));
    };
    let Some(user) = live_user(app, rt, &record.user_id).await? else {
        return Ok(Err(OAuthError::invalid_grant("User disabled")));
    };
    Ok(Ok(LiveRefresh {
        data,
        user,
        client: client.clone(),
    }))
}

/// A client of the realm by `client_id`, if it exists, is enabled, and existed when a token
/// issued at `issued_at` was issued (a client deleted and made again under the same name does
/// not revive the tokens of the old one).
fn live_client(rt: &RealmRuntime, client_id: &str, issued_at: u64) -> Option<Arc<Client>> {
    rt.snapshot
        .client_by_client_id(client_id)
        .filter(|c| c.enabled && issued_at >= c.created_at)
        .cloned()
}

/// A user of the realm, if it exists and is enabled (through the user cache).
pub(crate) async fn live_user(
    app: &AppState,
    rt: &RealmRuntime,
    user_id: &str,
) -> ApiResult<Option<Arc<User>>> {
    Ok(app.user(rt.id(), user_id).await?.filter(|u| u.enabled))
}

/// Until when a revocation of something that ends at `ends_at` (a token's `exp`, or its
/// session's end when later) must be remembered: as long as any token derived from it could
/// live, whatever the revoked token's own expiry.
pub fn revocation_horizon(rt: &RealmRuntime, ends_at: u64) -> u64 {
    ends_at.saturating_add(cambio_core::exchange::descendant_overhang(&rt.snapshot))
}

/// How this realm's own access tokens are verified (`typ` `at+jwt`, our issuer, bounded size).
fn access_token_validation(rt: &RealmRuntime, now: u64) -> Validation<'_> {
    Validation {
        now,
        leeway: LEEWAY,
        issuer: Some(rt.issuer()),
        audience: AudienceRule::Skip,
        typ: TypRule::Exactly(ACCESS_TOKEN_TYP),
        require_exp: true,
        max_token_bytes: cambio_core::exchange::MAX_SUBJECT_TOKEN_BYTES,
    }
}

/// One of this realm's access tokens, as far as revocation needs it: signed by the realm,
/// of our type and issuer, expired or not (an expired token's descendants may still live, and
/// revoking it must reach them). None when it is not ours.
pub fn revocable_access_token(
    rt: &RealmRuntime,
    token: &str,
    now: u64,
) -> Option<AccessTokenClaims> {
    let validation = access_token_validation(rt, now);
    match cambio_jose::verify_allowing_expired(token, rt.verifiers.as_slice(), &validation) {
        Ok(verified) => {
            serde_json::from_value(serde_json::Value::Object(verified.into_claims())).ok()
        }
        // A token Keycloak issued with a key the realm imported.
        Err(cambio_jose::JwtError::WrongType) => {
            crate::keycloak_keys::verify_keycloak_access_token(
                token,
                rt.verifiers.as_slice(),
                &validation,
                true,
            )
            .map(|(claims, _)| claims)
        }
        Err(_) => None,
    }
}

/// Verifies one of this realm's access tokens and checks it is still active: signature,
/// issuer, type, expiry, and neither it, its session nor a token it was exchanged from
/// revoked. Returns None for anything else. This is not the state check (see
/// [`live_access_token`]): only revocation uses it alone, since a token whose user or client
/// was disabled can still be revoked.
pub fn active_access_token(
    app: &AppState,
    rt: &RealmRuntime,
    token: &str,
    now: u64,
) -> Option<ActiveToken> {
    let validation = access_token_validation(rt, now);
    // The size bound comes first, before the token is even hashed for the cache.
    if token.len() > validation.max_token_bytes {
        return None;
    }
    let active = match app.verified_tokens.get(token, rt.generation, &validation) {
        Some(remembered) => remembered,
        None => {
            // Our own keys signed it, so its claims are our claims type; or Keycloak signed
            // it, with a key the realm imported, in Keycloak's form.
            let (times, claims) = match cambio_jose::verify_as::<AccessTokenClaims>(
                token,
                rt.verifiers.as_slice(),
                &validation,
            ) {
                Ok(verified) => (verified.times(), verified.into_claims()),
                Err(cambio_jose::JwtError::WrongType) => {
                    let (claims, times) = crate::keycloak_keys::verify_keycloak_access_token(
                        token,
                        rt.verifiers.as_slice(),
                        &validation,
                        false,
                    )?;
                    (times, claims)
                }
                Err(_) => return None,
            };
            let active = ActiveToken::from(claims);
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
    peer: std::net::IpAddr,
    username: &str,
    password: &str,
) -> ApiResult<Option<cambio_core::model::User>> {
    let key = format!("{realm_id}/{}", username.to_lowercase());
    let user = app.user_by_name(realm_id, username).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let verified =
        crate::passwords::verify_async(&app.password_hashing, peer, password.to_owned(), hash)
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
        Some(user) if verified.ok && user.enabled => {
            app.logins.succeeded(&key);
            if let (Some(new), Some(old)) = (verified.rehashed, user.password_hash.as_deref())
                && let Err(error) =
                    crate::passwords::store_rehashed(app, realm_id, &user.id, old, new).await
            {
                // The login stands; the old hash keeps working until a later login stores it.
                tracing::warn!(%error, "could not store a rehashed password");
            }
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
