//! The admin console: a browser application served by the binary itself.
//!
//! The console is plain ES modules and one style sheet under `console/assets/`, embedded at
//! compile time, so `cargo build` needs no front-end toolchain and the server needs no second
//! process. It logs in through the public `security-admin-console` client with the
//! authorization code flow and PKCE, keeps its tokens in memory only, and calls the same admin
//! REST API that scripts call; the API decides, the console only hides what the caller's
//! roles would refuse (`whoami`).
//!
//! Every console response carries a Content-Security-Policy that allows scripts, styles and
//! requests from this origin only and no inline script at all.

pub mod client;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::admin::{self, Need};
use crate::bootstrap::{MASTER, REALM_MANAGEMENT_ROLES};
use crate::common::{bearer_token, live_access_token};
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::routes::pages;
use crate::state::AppState;

/// The public client the console logs in with, in every realm that has one (Keycloak's name).
pub const CONSOLE_CLIENT: &str = "security-admin-console";

/// Scripts, styles, images and requests from this origin only; no inline script or style, no
/// plugins, no `<base>`, no framing, forms posted only here.
const CONSOLE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

/// The console's files, embedded in the binary: (name, content type, bytes).
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", JS, include_str!("assets/app.js")),
    ("api.js", JS, include_str!("assets/api.js")),
    ("auth.js", JS, include_str!("assets/auth.js")),
    ("ui.js", JS, include_str!("assets/ui.js")),
    ("realms.js", JS, include_str!("assets/realms.js")),
    ("clients.js", JS, include_str!("assets/clients.js")),
    ("preview.js", JS, include_str!("assets/preview.js")),
    ("users.js", JS, include_str!("assets/users.js")),
    ("permissions.js", JS, include_str!("assets/permissions.js")),
    ("events.js", JS, include_str!("assets/events.js")),
    ("keys.js", JS, include_str!("assets/keys.js")),
    ("idps.js", JS, include_str!("assets/idps.js")),
    ("roles.js", JS, include_str!("assets/roles.js")),
    ("console.css", CSS, include_str!("assets/console.css")),
];
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// The page every console URL answers; the realm and base path are filled in per request.
const INDEX: &str = include_str!("assets/index.html");

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(root))
        .route("/admin", get(root))
        .route("/admin/console", get(master_console))
        .route("/admin/console/assets/{file}", get(asset))
        .route("/admin/{realm}/console", get(realm_console))
        .route("/admin/{realm}/console/whoami", get(whoami))
        .route(
            "/admin/realms/{realm}/cambio/exchange-preview",
            axum::routing::post(crate::admin::preview::preview),
        )
}

/// The path part of the server's base URL (`""` or `/auth`), which the console's own URLs
/// start with.
fn base_path(app: &AppState) -> &str {
    app.base_url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("")
        .trim_end_matches('/')
}

/// `/` and `/admin` lead a newcomer to the console of the `master` realm.
async fn root(State(app): State<Arc<AppState>>) -> Response {
    Redirect::to(&format!("{}/admin/console/", base_path(&app))).into_response()
}

async fn master_console(State(app): State<Arc<AppState>>) -> Response {
    index(&app, MASTER)
}

async fn realm_console(State(app): State<Arc<AppState>>, Path(realm): Path<String>) -> Response {
    index(&app, &realm)
}

/// The console page for logging in to `realm`; an unknown realm is an error page.
fn index(app: &AppState, realm: &str) -> Response {
    if app.realm(realm).is_none() {
        return pages::error_page(
            StatusCode::NOT_FOUND,
            "Realm not found",
            "There is no realm of that name.",
        );
    }
    let page = INDEX
        .replace("{{base}}", &pages::escape(base_path(app)))
        .replace("{{realm}}", &pages::escape(realm));
    let mut response = (StatusCode::OK, page).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    console_headers(headers);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn asset(Path(file): Path<String>) -> Response {
    let Some((_, content_type, body)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return ApiError::NotFound("Not found").into_response();
    };
    let mut response = (StatusCode::OK, *body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    console_headers(headers);
    // The files change with the binary; a browser asks again rather than run a stale module
    // against a newer API.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn console_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONSOLE_CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The console's URL carries the authorization code for a moment; no request passes it on.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhoamiQuery {
    current_realm: Option<String>,
}

/// Who the console's token names and which `realm-management` roles it holds now in the realm
/// being administered, computed by the admin API's own check ([`admin::caller`]), so that the
/// console hides exactly what the API would refuse. Keycloak answers the same path.
async fn whoami(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    Query(query): Query<WhoamiQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let current = query.current_realm.unwrap_or_else(|| realm.clone());
    let rights = admin::caller(&app, &headers, &current).await?;
    let login = app
        .active_realm(&realm)
        .ok_or(ApiError::NotFound("Realm not found."))?;
    let token = bearer_token(&headers).unwrap_or_default();
    let user = live_access_token(&app, &login, token, random::now())
        .await?
        .map(|live| live.user)
        .ok_or(ApiError::Bearer {
            status: StatusCode::UNAUTHORIZED,
            error: Some("invalid_token"),
            description: "Admin token missing or invalid",
        })?;
    let roles: Vec<&str> = std::iter::once("realm-admin")
        .chain(REALM_MANAGEMENT_ROLES.iter().copied())
        .filter(|role| rights.has(role))
        .collect();
    let needs = [
        ("viewRealm", Need::ViewRealm),
        ("manageRealm", Need::ManageRealm),
        ("viewClients", Need::ViewClients),
        ("manageClients", Need::ManageClients),
        ("viewUsers", Need::ViewUsers),
        ("manageUsers", Need::ManageUsers),
        ("viewEvents", Need::ViewEvents),
        ("viewAuthorization", Need::ViewAuthorization),
        ("manageAuthorization", Need::ManageAuthorization),
    ];
    let access: serde_json::Map<String, serde_json::Value> = needs
        .iter()
        .map(|(name, need)| ((*name).to_owned(), rights.may(*need).into()))
        .collect();
    let mut response = axum::Json(json!({
        "userId": user.id,
        "userName": user.username,
        "realm": realm,
        "createRealm": rights.superuser,
        "realm_access": { current.as_str(): roles },
        "access": access,
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
