//! Cross-origin reads, from each client's `webOrigins` (as Keycloak answers them) and from
//! nowhere else.
//!
//! A handler that knows whose response it is attaches a [`CorsPolicy`] to it: the client it
//! answered (token endpoint, userinfo), or the realm for public metadata (discovery, JWKS),
//! where an origin any of the realm's clients lists may read. The [`apply`] middleware then
//! lets the request's `Origin` read the response only if that policy admits it. A preflight
//! (`OPTIONS`) names no client, so it is answered for origins some client of the realm lists;
//! the response that follows is still checked against the one client it is for.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cambio_core::model::Client;
use cambio_core::redirect::origin_allowed;

use crate::state::{AppState, RealmRuntime};

/// Whose `webOrigins` decide who may read a response.
#[derive(Clone)]
pub enum CorsPolicy {
    Client(Arc<Client>),
    Realm(Arc<RealmRuntime>),
}

impl CorsPolicy {
    fn admits(&self, origin: &str) -> bool {
        match self {
            CorsPolicy::Client(client) => origin_allowed(client, origin),
            CorsPolicy::Realm(rt) => realm_admits(rt, origin),
        }
    }
}

fn realm_admits(rt: &RealmRuntime, origin: &str) -> bool {
    rt.snapshot
        .clients()
        .any(|client| client.enabled && origin_allowed(client, origin))
}

pub(crate) fn origin(headers: &HeaderMap) -> Option<HeaderValue> {
    // Two Origin headers say nothing trustworthy.
    let mut all = headers.get_all(header::ORIGIN).iter();
    let first = all.next()?.clone();
    all.next().is_none().then_some(first)
}

/// Adds the CORS headers a response's policy allows for the request's `origin` (read with
/// [`origin`] before the request was handled).
pub fn apply(mut response: Response, origin: Option<HeaderValue>) -> Response {
    let Some(policy) = response.extensions_mut().remove::<CorsPolicy>() else {
        return response;
    };
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin
        && origin.to_str().is_ok_and(|o| policy.admits(o))
    {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        // keycloak-js sends its token requests with credentials.
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    response
}

/// `OPTIONS` on an endpoint a browser script may call.
pub async fn preflight(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let out = response.headers_mut();
    out.insert(header::VARY, HeaderValue::from_static("Origin"));
    let (Some(rt), Some(origin)) = (app.active_realm(&realm), origin(&headers)) else {
        return response;
    };
    if !origin.to_str().is_ok_and(|o| realm_admits(&rt, o)) {
        return response;
    }
    out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, DPoP"),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("3600"),
    );
    response
}

/// Marks `response` as readable by the origins `policy` admits.
pub fn allow(mut response: Response, policy: CorsPolicy) -> Response {
    response.extensions_mut().insert(policy);
    response
}
