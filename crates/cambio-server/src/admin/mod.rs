//! The Keycloak-compatible admin REST API under `/admin/realms`.
//!
//! Callers authenticate with a bearer access token from the `master` realm (realm role
//! `admin`: everything) or from the realm they administer (client roles of that realm's
//! `realm-management` client: `realm-admin`, `manage-clients`, `view-users`...). Every write
//! goes to the store first and then rebuilds the realm's in-memory snapshot.

pub(crate) mod authz;
pub(crate) mod authz_exchange_import;
pub(crate) mod authz_imported;
mod authz_kept;
pub(crate) mod clients;
mod escalation;
mod events;
mod group_mappings;
pub(crate) mod groups;
pub(crate) mod idp_mappers;
pub(crate) mod idps;
mod keys;
mod partial_import;
pub(crate) mod preview;
mod preview_external;
mod protocol_mappers;
mod realms;
mod roles;
pub(crate) mod users;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use crate::bootstrap::{ADMIN_ROLE, MASTER, REALM_MANAGEMENT};
use crate::common::{LiveToken, bearer_token, live_access_token};
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::state::{AppState, RealmRuntime};

pub use escalation::Approved;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .merge(users::routes())
        .merge(roles::routes())
        .merge(realms::routes())
        .merge(authz::routes())
        .merge(idps::routes())
        .merge(idp_mappers::routes())
        .merge(partial_import::routes())
        .merge(groups::routes())
        .route("/admin/realms/{realm}/events", get(events::events))
        .route(
            "/admin/realms/{realm}/client-scopes/{id}/protocol-mappers/models",
            get(protocol_mappers::list).post(protocol_mappers::create),
        )
        .route(
            "/admin/realms/{realm}/client-scopes/{id}/protocol-mappers/models/{mapper}",
            get(protocol_mappers::get_one)
                .put(protocol_mappers::update)
                .delete(protocol_mappers::delete),
        )
        .route("/admin/realms/{realm}/keys", get(keys::list_keys))
        .route("/admin/realms/{realm}/keys/rotate", post(keys::rotate_keys))
        .route(
            "/admin/realms/{realm}/clients",
            get(clients::list).post(clients::create),
        )
        .route(
            "/admin/realms/{realm}/clients/{id}",
            get(clients::get_one)
                .put(clients::update)
                .delete(clients::delete),
        )
        .route(
            "/admin/realms/{realm}/clients/{id}/client-secret",
            get(clients::get_secret).post(clients::regenerate_secret),
        )
        .route(
            "/admin/realms/{realm}/clients/{id}/service-account-user",
            get(clients::service_account_user),
        )
}

/// Admin changes run one at a time on this node, each reading the state it changes after the
/// one before it was stored. Without it a change computed from a stale read (a user's own
/// profile update racing an administrator who removes that user's role mapping, or disables it)
/// writes the old mappings back, and the escalation guard would have judged against the stale
/// state too. Reads are not held up. Several nodes are not covered: their writes can still
/// interleave (a version check in the store would be the next step).
pub async fn serialize_writes(
    State(app): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let _turn = app.admin_writes.lock().await;
    next.run(request).await
}

/// What an admin request needs. `Manage*` includes the matching `View*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    ViewRealm,
    ManageRealm,
    ViewClients,
    ManageClients,
    ViewUsers,
    ManageUsers,
    /// Listing and counting groups (Keycloak: `query-groups`, or a right to view users).
    QueryGroups,
    ViewEvents,
    ViewAuthorization,
    ManageAuthorization,
}

impl Need {
    /// The `realm-management` roles that satisfy this need.
    fn roles(self) -> &'static [&'static str] {
        match self {
            Need::ViewRealm => &["view-realm", "manage-realm"],
            Need::ManageRealm => &["manage-realm"],
            Need::ViewClients => &["view-clients", "manage-clients", "query-clients"],
            Need::ManageClients => &["manage-clients"],
            Need::ViewUsers => &["view-users", "manage-users", "query-users"],
            Need::ManageUsers => &["manage-users"],
            Need::QueryGroups => &["view-users", "manage-users", "query-groups"],
            Need::ViewEvents => &["view-events", "manage-events"],
            Need::ViewAuthorization => &["view-authorization", "manage-authorization"],
            Need::ManageAuthorization => &["manage-authorization"],
        }
    }
}

/// An administrator as the present state makes it: who is asking, and what it may do now.
#[derive(Debug, Clone)]
pub struct Admin {
    /// A `master` administrator may do anything anywhere.
    pub superuser: bool,
    /// The `realm-management` roles held in the target realm (through composites).
    pub roles: BTreeSet<String>,
}

impl Admin {
    pub fn has(&self, role: &str) -> bool {
        self.superuser || self.roles.contains("realm-admin") || self.roles.contains(role)
    }

    /// Whether this administrator has `need`.
    pub fn may(&self, need: Need) -> bool {
        need.roles().iter().any(|role| self.has(role))
    }
}

/// Authenticates the bearer token and checks the caller has `need` in `realm` now: 401 without
/// a token that is good now, 403 without the right.
pub async fn authorize(
    app: &AppState,
    headers: &HeaderMap,
    realm: &str,
    need: Need,
) -> ApiResult<Admin> {
    let admin = caller(app, headers, realm).await?;
    if admin.may(need) {
        Ok(admin)
    } else {
        Err(forbidden())
    }
}

/// Who the bearer token names, with the rights the present state gives it in `realm`.
///
/// The token only says who is asking. Its user must exist and be enabled now, and the client
/// it was issued to must exist and be enabled now; the rights are the user's current roles
/// (mappings, composites, default roles) that the client may carry, as Keycloak computes them,
/// and in addition only those the token itself carries, so a token narrowed for another
/// audience administers nothing. A token obtained by exchange is never an admin credential:
/// it was made for a backend, and accepting it would let whoever controls a requester client
/// administer with the tokens of the users it serves.
pub async fn caller(app: &AppState, headers: &HeaderMap, realm: &str) -> ApiResult<Admin> {
    let unauthorized = || ApiError::Bearer {
        status: StatusCode::UNAUTHORIZED,
        error: Some("invalid_token"),
        description: "Admin token missing or invalid",
    };
    let token = bearer_token(headers).ok_or_else(unauthorized)?;
    let now = random::now();
    // Try the master realm first, then the target realm: the issuer decides which verifies.
    let mut found = None;
    for name in [MASTER, realm] {
        let Some(rt) = app.active_realm(name) else {
            continue;
        };
        if let Some(live) = live_access_token(app, &rt, token, now).await? {
            found = Some((name, rt, live));
            break;
        }
    }
    let (issuer_realm, rt, live) = found.ok_or_else(unauthorized)?;
    let LiveToken {
        token: active,
        user,
        client,
    } = live;
    let claims = &active.claims;
    // Exchanged tokens never administer. Nor do DPoP-bound tokens: the admin API takes bearer
    // tokens only, and a bound token used as a bearer token would make its binding worthless.
    if !claims.exchanged_from.is_empty() || claims.act.is_some() || claims.cnf.is_some() {
        return Err(unauthorized());
    }
    let held = rt
        .snapshot
        .roles_in_scope_within(&user, &client, Some(&**claims));
    let superuser = issuer_realm == MASTER && held.realm.contains(ADMIN_ROLE);
    let roles = if issuer_realm == realm {
        held.clients
            .get(REALM_MANAGEMENT)
            .cloned()
            .unwrap_or_default()
    } else {
        BTreeSet::new()
    };
    Ok(Admin { superuser, roles })
}

pub fn forbidden() -> ApiError {
    ApiError::Admin {
        status: StatusCode::FORBIDDEN,
        message: "HTTP 403 Forbidden".into(),
    }
}

pub fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::Admin {
        status: StatusCode::BAD_REQUEST,
        message: message.into(),
    }
}

pub fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::Admin {
        status: StatusCode::CONFLICT,
        message: message.into(),
    }
}

pub fn realm_or_404(app: &AppState, realm: &str) -> ApiResult<Arc<RealmRuntime>> {
    app.realm(realm)
        .ok_or(ApiError::NotFound("Realm not found."))
}

/// Parses a JSON body; malformed JSON is 400 with Keycloak's error shape.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|_| bad_request("unknown_error: invalid JSON body"))
}

/// 201 Created with the new object's URL in `Location`, as Keycloak answers.
pub fn created(location: String) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A boolean query parameter read as Keycloak (Java's `Boolean.parseBoolean`) reads it: `true`
/// in any case is true, anything else false. python-keycloak sends `True` and `False`.
pub fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let raw: Option<String> = serde::Deserialize::deserialize(d)?;
    Ok(raw.map(|v| v.eq_ignore_ascii_case("true")))
}

/// Keycloak's paging: `first` (offset) and `max` (count; negative or absent means all).
pub fn page<T>(items: Vec<T>, first: Option<i64>, max: Option<i64>) -> Vec<T> {
    let first = usize::try_from(first.unwrap_or(0).max(0)).unwrap_or(0);
    let items = items.into_iter().skip(first);
    match max {
        Some(max) if max >= 0 => items
            .take(usize::try_from(max).unwrap_or(usize::MAX))
            .collect(),
        _ => items.collect(),
    }
}
