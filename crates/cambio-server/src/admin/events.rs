//! Audit events (`GET /admin/realms/{realm}/events`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use cambio_store::EventFilter;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Need, authorize, realm_or_404};
use crate::error::{ApiError, ApiResult};
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

/// Accepts `yyyy-MM-dd` (as Keycloak does; a UTC day, from its first millisecond or to its
/// last with `end_of_day`) or milliseconds since the epoch. Dates that do not exist
/// (`2026-02-30`) are refused.
fn parse_date(value: &str, end_of_day: bool) -> Result<u64, ApiError> {
    let bad = || ApiError::Admin {
        status: StatusCode::BAD_REQUEST,
        message: "Invalid date format".into(),
    };
    if let Ok(ms) = value.parse::<u64>() {
        // Beyond what the store's signed 64-bit columns hold is no date at all.
        return i64::try_from(ms).map(|_| ms).map_err(|_| bad());
    }
    // Four-digit year, then month and day of one or two digits (Keycloak's `yyyy-MM-dd`
    // parsing takes `2026-1-5` too); the calendar says whether the day exists.
    let mut parts = value.split('-');
    let (Some(year), Some(month), Some(day), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let date = (|| {
        let month = time::Month::try_from(digits::<u8>(month, 1..=2)?).ok()?;
        time::Date::from_calendar_date(digits(year, 4..=4)?, month, digits(day, 1..=2)?).ok()
    })()
    .ok_or_else(bad)?;
    let start = date.midnight().assume_utc().unix_timestamp();
    let start = u64::try_from(start).map_err(|_| bad())? * 1000;
    Ok(if end_of_day {
        start + 86_399_999
    } else {
        start
    })
}

/// `s` as a number, if it is made of ASCII digits only and its length is in `len`.
fn digits<T: std::str::FromStr>(s: &str, len: std::ops::RangeInclusive<usize>) -> Option<T> {
    (len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The most events one request lists (Keycloak's paging with `first` reaches the rest).
const MAX_EVENTS: u64 = 10_000;

pub async fn events(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    Query(query): Query<EventQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<Value>>> {
    authorize(&app, &headers, &realm, Need::ViewEvents).await?;
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
        // Within the store's signed 64-bit range, and at most MAX_EVENTS in one answer.
        first: query.first.unwrap_or(0).min(i64::MAX as u64),
        max: query.max.unwrap_or(100).min(MAX_EVENTS),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::parse_date;

    #[test]
    fn dates_are_utc_days_or_milliseconds() {
        assert_eq!(parse_date("1970-01-01", false).unwrap(), 0);
        assert_eq!(parse_date("1970-01-01", true).unwrap(), 86_399_999);
        assert_eq!(parse_date("2026-11-22", false).unwrap(), 1_795_305_600_000);
        assert_eq!(parse_date("2024-02-29", false).unwrap(), 1_709_164_800_000);
        assert_eq!(
            parse_date("2026-1-5", false).unwrap(),
            parse_date("2026-01-05", false).unwrap()
        );
        assert_eq!(
            parse_date("1795305600000", true).unwrap(),
            1_795_305_600_000
        );
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2023-02-29",
            "1969-12-31",
            "26-11-22",
            "2026/11/22",
            "+2026-11-22",
            "2026-011-22",
            "2026-11-22-1",
            "",
            "x",
        ] {
            assert!(parse_date(bad, false).is_err(), "{bad}");
        }
    }
}
