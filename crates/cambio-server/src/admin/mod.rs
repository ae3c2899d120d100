//! The Keycloak-compatible admin REST API under `/admin/realms`.
//!
//! Callers authenticate with a bearer access token from the `master` realm (realm role
//! `admin`: everything) or from the realm they administer (client roles of that realm's
//! `realm-management` client: `realm-admin`, `manage-clients`, `view-users`...). Every write
//! goes to the store first and then rebuilds the realm's in-memory snapshot.

mod authz;
pub(crate) mod clients;
mod events;
mod idps;
mod realms;
mod roles;
pub(crate) mod users;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use crate::bootstrap::{ADMIN_ROLE, MASTER, REALM_MANAGEMENT};
use crate::common::{active_access_token, bearer_token};
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::state::{AppState, RealmRuntime};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .merge(users::routes())
        .merge(roles::routes())
        .merge(realms::routes())
        .merge(authz::routes())
        .merge(idps::routes())
        .route("/admin/realms/{realm}/events", get(events::events))
        .route(
            "/admin/realms/{realm}/keys/rotate",
            post(events::rotate_keys),
        )
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

/// What an admin request needs. `Manage*` includes the matching `View*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    ViewRealm,
    ManageRealm,
    ViewClients,
    ManageClients,
    ViewUsers,
    ManageUsers,
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
            Need::ViewEvents => &["view-events", "manage-events"],
            Need::ViewAuthorization => &["view-authorization", "manage-authorization"],
            Need::ManageAuthorization => &["manage-authorization"],
        }
    }
}

/// An authenticated administrator.
#[derive(Debug, Clone)]
pub struct Admin {
    /// A `master` administrator may do anything anywhere.
    pub superuser: bool,
    /// The `realm-management` roles held in the target realm.
    pub roles: BTreeSet<String>,
}

impl Admin {
    pub fn has(&self, role: &str) -> bool {
        self.superuser || self.roles.contains("realm-admin") || self.roles.contains(role)
    }
}

/// Authenticates the bearer token and checks it grants `need` in `realm`: 401 without a valid
/// token, 403 without the role.
pub fn authorize(app: &AppState, headers: &HeaderMap, realm: &str, need: Need) -> ApiResult<Admin> {
    let unauthorized = || ApiError::Bearer {
        status: StatusCode::UNAUTHORIZED,
        error: Some("invalid_token"),
        description: "Admin token missing or invalid",
    };
    let token = bearer_token(headers).ok_or_else(unauthorized)?;
    let now = random::now();
    // Try the master realm first, then the target realm: the issuer decides which verifies.
    let candidates = [MASTER, realm];
    let (issuer_realm, active) = candidates
        .iter()
        .filter_map(|name| app.realm(name).map(|rt| (*name, rt)))
        .find_map(|(name, rt)| active_access_token(app, &rt, token, now).map(|a| (name, a)))
        .ok_or_else(unauthorized)?;
    let realm_roles = active.claims.realm_access.as_ref().map(|r| &r.roles);
    let superuser = issuer_realm == MASTER && realm_roles.is_some_and(|r| r.contains(ADMIN_ROLE));
    let roles: BTreeSet<String> = if issuer_realm == realm {
        active
            .claims
            .resource_access
            .as_ref()
            .and_then(|m| m.get(REALM_MANAGEMENT))
            .map(|r| r.roles.clone())
            .unwrap_or_default()
    } else {
        BTreeSet::new()
    };
    let admin = Admin { superuser, roles };
    if need.roles().iter().any(|role| admin.has(role)) {
        Ok(admin)
    } else {
        Err(forbidden())
    }
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
