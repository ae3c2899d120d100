//! Audit events (`GET /admin/realms/{realm}/events`) and signing-key rotation.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use cambio_store::EventFilter;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Need, authorize, realm_or_404};
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::state::AppState;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct EventQuery {
    #[serde(rename = "type")]
    event_type: Option<String>,
    client: Option<String>,
    user: Option<String>,
    date_from: Option<String>,
    date_to: Option<String>,
    first: Option<u64>,
    max: Option<u64>,
}

/// Accepts `yyyy-MM-dd` (as Keycloak does) or milliseconds since the epoch.
fn parse_date(value: &str, end_of_day: bool) -> Result<u64, ApiError> {
    let bad = || ApiError::Admin {
        status: StatusCode::BAD_REQUEST,
        message: "Invalid date format".into(),
    };
    if let Ok(ms) = value.parse::<u64>() {
        return Ok(ms);
    }
    let parts: Vec<&str> = value.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm), UTC.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let start = u64::try_from(days).map_err(|_| bad())? * 86_400_000;
    Ok(if end_of_day {
        start + 86_399_999
    } else {
        start
    })
}

pub async fn events(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    Query(query): Query<EventQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<Value>>> {
    authorize(&app, &headers, &realm, Need::ViewEvents)?;
    let rt = realm_or_404(&app, &realm)?;
    let filter = EventFilter {
        types: query
            .event_type
            .map(|t| t.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
        client_id: query.client,
        user_id: query.user,
        date_from: query
            .date_from
            .as_deref()
            .map(|d| parse_date(d, false))
            .transpose()?,
        date_to: query
            .date_to
            .as_deref()
            .map(|d| parse_date(d, true))
            .transpose()?,
        first: query.first.unwrap_or(0),
        max: query.max.unwrap_or(100),
    };
    let events = app.store.list_events(rt.id(), &filter).await?;
    Ok(Json(
        events
            .into_iter()
            .map(|e| {
                let details: Value = serde_json::from_str(&e.details).unwrap_or_else(|_| json!({}));
                json!({
                    "time": e.time,
                    "type": e.event_type,
                    "realmId": e.realm_id,
                    "clientId": e.client_id,
                    "userId": e.user_id,
                    "sessionId": e.session_id,
                    "ipAddress": e.ip_address,
                    "error": e.error,
                    "details": details,
                })
            })
            .collect(),
    ))
}

/// Starts signing with a fresh key; the previous keys stay published until tokens they
/// signed have expired.
pub async fn rotate_keys(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&app, &headers, &realm, Need::ManageRealm)?;
    let rt = realm_or_404(&app, &realm)?;
    let now = random::now();
    let snapshot = &rt.snapshot;
    let longest = snapshot
        .clients()
        .map(|c| c.access_token_lifespan(&snapshot.realm))
        .max()
        .unwrap_or(0)
        .max(snapshot.realm.access_token_lifespan);
    // One rotation at a time across all nodes.
    let Some(_lock) = app
        .store
        .try_lock_job(&format!("cambio.keys.{}", rt.id()))
        .await?
    else {
        return Err(ApiError::Admin {
            status: StatusCode::CONFLICT,
            message: "A key rotation is already in progress".into(),
        });
    };
    let kid = crate::keys::rotate(
        &app,
        rt.id(),
        snapshot.realm.default_signature_algorithm,
        longest + 60,
        app.key_activation_delay,
        now,
    )
    .await?;
    app.reload_realm(rt.id(), now).await?;
    Ok(Json(json!({"kid": kid})))
}
