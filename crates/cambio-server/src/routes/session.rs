//! Introspection (RFC 7662), revocation (RFC 7009) and logout.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cambio_core::OAuthError;
use serde_json::{Value, json};

use crate::common::{active_access_token, authenticate_client, read_form};
use crate::error::ApiResult;
use crate::random;
use crate::routes::token::end_session;
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
        let Some(active) = active_access_token(&app, &rt, token, now) else {
            return Ok(inactive);
        };
        let user = app.user(rt.id(), &active.claims.sub).await?;
        let Some(user) = user.filter(|u| u.enabled) else {
            return Ok(inactive);
        };
        let mut out = match serde_json::to_value(&*active.claims) {
            Ok(Value::Object(map)) => map,
            _ => return Ok(inactive),
        };
        out.insert("active".into(), json!(true));
        out.insert("token_type".into(), json!("Bearer"));
        out.insert("username".into(), json!(user.username));
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
    let session_live = session.is_some_and(|s| {
        s.revoked_at.is_none() && s.expires_at > now && !app.revocations.session_revoked(&s.id)
    });
    if record.realm_id != rt.id()
        || record.used_at.is_some()
        || record.expires_at <= now
        || !session_live
    {
        return Ok(inactive);
    }
    let owner = rt
        .snapshot
        .client(&record.client_id)
        .map(|c| c.client_id.clone());
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

/// RFC 7009. Revoking a refresh token ends its session; revoking an access token refuses it
/// (and everything exchanged from it) until it would have expired.
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
        if let Some(active) = active_access_token(&app, &rt, token, now) {
            if active.claims.azp != client.client_id {
                return Err(unmatching().into());
            }
            app.store
                .revoke_token_id(rt.id(), &active.claims.jti, active.claims.exp)
                .await?;
            app.revoke_token_id_everywhere(&active.claims.jti, active.claims.exp)
                .await;
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
        end_session(&app, &record.session_id, now).await?;
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
