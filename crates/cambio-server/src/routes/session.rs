//! Introspection (RFC 7662), revocation (RFC 7009) and logout.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cambio_core::OAuthError;
use serde_json::{Value, json};

use crate::common::{
    authenticate_client, live_access_token, live_refresh_token, read_form, revocable_access_token,
    revocation_horizon,
};
use crate::error::ApiResult;
use crate::random;
use crate::routes::token::{end_client_session, end_session};
use crate::state::AppState;

/// RFC 7662. Anything unknown, foreign, expired or revoked is `{"active": false}`.
pub async fn introspect(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let rt = crate::common::protocol_realm(&app, &realm)?;
    crate::common::limit_address(&app, peer)?;
    let now = random::now();
    let form = read_form(&headers, body).await?;
    let client = authenticate_client(&app, &rt, &headers, &form, now).await?;
    if client.public_client {
        return Err(OAuthError::invalid_client("Public clients may not introspect tokens").into());
    }
    let token = form.require("token")?;
    let inactive = Json(json!({"active": false}));
    if token.contains('.') {
        let Some(live) = live_access_token(&app, &rt, token, now).await? else {
            return Ok(inactive);
        };
        let mut out = match serde_json::to_value(&*live.token.claims) {
            Ok(Value::Object(map)) => map,
            _ => return Ok(inactive),
        };
        // Mapped claims are not read back from a token; introspection computes them from
        // the present state (the user's groups now), for the token's client and scopes.
        if let Some(client) = rt.snapshot.client_by_client_id(&live.token.claims.azp) {
            let scope = cambio_core::scope::GrantedScope::from_stored(&live.token.claims.scope);
            let mapped = cambio_core::groups::mapped_claims(
                &rt.snapshot,
                client,
                &scope,
                &live.user,
                cambio_core::groups::ClaimTarget::Introspection,
            );
            for (name, value) in mapped {
                out.entry(name).or_insert(value);
            }
        }
        out.insert("active".into(), json!(true));
        // RFC 9449 §6.2: a bound token is introspected with its `cnf` (part of the claims)
        // and the DPoP token type.
        let token_type = if live.token.claims.cnf.is_some() {
            "DPoP"
        } else {
            "Bearer"
        };
        out.insert("token_type".into(), json!(token_type));
        out.insert("username".into(), json!(live.user.username));
        return Ok(Json(Value::Object(out)));
    }
    if token.len() > 512 {
        return Ok(inactive);
    }
    let Some(record) = app
        .store
        .get_refresh_token(&random::token_hash(token))
        .await?
    else {
        return Ok(inactive);
    };
    let session = app.store.get_session(&record.session_id).await?;
    let live = live_refresh_token(&app, &rt, &record, session.as_ref(), now).await?;
    let Ok(live) = live else {
        return Ok(inactive);
    };
    if record.used_at.is_some() {
        return Ok(inactive);
    }
    let owner = &live.client.client_id;
    Ok(Json(json!({
        "active": true,
        "token_type": if record.offline { "Offline" } else { "Refresh" },
        "client_id": owner,
        "sub": record.user_id,
        "sid": record.session_id,
        "scope": record.scope,
        "exp": record.expires_at,
        "iat": record.issued_at,
        "iss": rt.issuer(),
    })))
}

/// RFC 7009. Revoking a refresh token ends its client's part of the session (Keycloak's client
/// session: that client's refresh tokens and access tokens in the session), and the session
/// with its last client; revoking an access token refuses it and everything derived from it
/// (exchanges, refreshes of exchanged refresh tokens) for as long as any of them could live.
pub async fn revoke(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let rt = crate::common::protocol_realm(&app, &realm)?;
    crate::common::limit_address(&app, peer)?;
    let now = random::now();
    let form = read_form(&headers, body).await?;
    let client = authenticate_client(&app, &rt, &headers, &form, now).await?;
    let token = form.require("token")?;
    let unmatching = || {
        OAuthError::new(
            cambio_core::ErrorCode::UnauthorizedClient,
            "Unmatching clients",
        )
    };
    if token.contains('.') {
        // Expired tokens too: what was exchanged from one may outlive it.
        if let Some(claims) = revocable_access_token(&rt, token, now) {
            if claims.azp != client.client_id {
                return Err(unmatching().into());
            }
            // A descendant lives at most until the session's end (refreshes of an exchanged
            // refresh token), or the token's own, plus what exchange chains may add.
            let session_end = match &claims.sid {
                Some(sid) => app.store.get_session(sid).await?.map(|s| s.expires_at),
                None => None,
            };
            let ends_at = claims.exp.max(session_end.unwrap_or(0));
            let until = revocation_horizon(&rt, ends_at);
            if until > now {
                app.store
                    .revoke_token_id(rt.id(), &claims.jti, until)
                    .await?;
                app.revoke_token_id_everywhere(&claims.jti, until).await;
            }
        }
    } else if token.len() <= 512
        && let Some(record) = app
            .store
            .get_refresh_token(&random::token_hash(token))
            .await?
    {
        if record.client_id != client.id {
            return Err(unmatching().into());
        }
        if record.realm_id == rt.id() {
            end_client_session(&app, &rt, &record.session_id, &record.client_id, now).await?;
        }
    }
    app.audit.record(crate::audit::Event {
        realm_id: rt.id().to_owned(),
        event_type: "REVOKE_GRANT",
        client_id: Some(client.client_id.clone()),
        ..Default::default()
    });
    Ok(StatusCode::OK.into_response())
}

/// Back-channel logout with a refresh token (POST), or browser logout with `id_token_hint`.
pub async fn logout_post(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let rt = crate::common::protocol_realm(&app, &realm)?;
    crate::common::limit_address(&app, peer)?;
    let now = random::now();
    let form = read_form(&headers, body).await?;
    let client = authenticate_client(&app, &rt, &headers, &form, now).await?;
    let token = form.require("refresh_token")?;
    let invalid = || OAuthError::invalid_grant("Invalid refresh token");
    let record = app
        .store
        .get_refresh_token(&random::token_hash(token))
        .await?
        .filter(|r| r.realm_id == rt.id())
        .ok_or_else(invalid)?;
    if record.client_id != client.id {
        return Err(invalid().into());
    }
    end_session(&app, &record.session_id, now).await?;
    app.audit.record(crate::audit::Event {
        realm_id: rt.id().to_owned(),
        event_type: "LOGOUT",
        client_id: Some(client.client_id.clone()),
        user_id: Some(record.user_id.clone()),
        session_id: Some(record.session_id.clone()),
        ..Default::default()
    });
    Ok(StatusCode::NO_CONTENT.into_response())
}
