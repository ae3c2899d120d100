//! `/admin/realms`: realms, partial export and import.
//!
//! Creating a realm takes a full representation (clients, roles, client scopes, users), as
//! Keycloak's import does; the work is in [`crate::realm_io`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use cambio_proto::admin::RealmRep;
use cambio_store::{GLOBAL, StoreError};
use serde::Deserialize;

use super::escalation::approve_realm;
use super::{
    Need, authorize, bad_request, caller, conflict, created, forbidden, no_content, parse_json,
    realm_or_404,
};
use crate::bootstrap::MASTER;
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::realm_io::{self, ExportOptions};
use crate::state::{AppState, KIND_REALM, KIND_USER};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/realms", get(list).post(create))
        .route(
            "/admin/realms/{realm}",
            get(get_one).put(update).delete(delete),
        )
        .route("/admin/realms/{realm}/partial-export", post(partial_export))
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    brief_representation: Option<bool>,
}

fn is_unauthorized(error: &ApiError) -> bool {
    matches!(error, ApiError::Bearer { status, .. } if *status == StatusCode::UNAUTHORIZED)
}

/// For endpoints that belong to no one realm: whether the caller is a `master`
/// administrator. 401 only when no realm accepts the token; any valid token is at least a 403.
async fn caller_is_superuser(app: &AppState, headers: &HeaderMap) -> ApiResult<bool> {
    let error = match caller(app, headers, MASTER).await {
        Ok(admin) => return Ok(admin.superuser),
        Err(e) if !is_unauthorized(&e) => return Err(e),
        Err(e) => e,
    };
    for name in app.realm_names() {
        match caller(app, headers, &name).await {
            Err(e) if is_unauthorized(&e) => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(false),
        }
    }
    Err(error)
}

/// The realms the caller may see: all of them for a `master` administrator, otherwise those
/// where it holds `view-realm` (full) or any other admin role (brief). 403 when none.
pub async fn list(
    State(app): State<Arc<AppState>>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RealmRep>>> {
    let brief_wanted = query.brief_representation.unwrap_or(false);
    let brief = |rep: RealmRep| RealmRep {
        id: rep.id,
        realm: rep.realm,
        display_name: rep.display_name,
        enabled: rep.enabled,
        ..Default::default()
    };
    let mut realms: Vec<_> = app.realm_names();
    realms.sort();
    let superuser = caller_is_superuser(&app, &headers).await?;
    let mut out = Vec::new();
    for name in realms {
        let Some(rt) = app.realm(&name) else {
            continue;
        };
        let rep = realm_io::settings_rep(&rt.snapshot.realm);
        if superuser {
            out.push(if brief_wanted { brief(rep) } else { rep });
            continue;
        }
        let admin = match caller(&app, &headers, &name).await {
            Ok(admin) => admin,
            Err(e) if is_unauthorized(&e) => continue,
            Err(e) => return Err(e),
        };
        if admin.may(Need::ViewRealm) {
            out.push(if brief_wanted { brief(rep) } else { rep });
        } else if [Need::ViewClients, Need::ViewUsers, Need::ViewEvents]
            .into_iter()
            .any(|need| admin.may(need))
        {
            // Any other administrative role in the realm shows its name only.
            out.push(brief(rep));
        }
    }
    if out.is_empty() {
        return Err(forbidden());
    }
    Ok(Json(out))
}

/// Creates a realm from a representation, with everything it contains, and answers what it
/// could not keep. Only a `master` administrator may.
pub async fn create(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    if !caller_is_superuser(&app, &headers).await? {
        return Err(forbidden());
    }
    let document = crate::import_report::parse_document(&body)?;
    let now = random::now();
    // The import runs to its end on a task of its own: its writes are one transaction, but a
    // request cut off at its deadline between that commit and the realm's loading would leave
    // a stored realm that this node does not serve until it restarts.
    let importer = app.clone();
    let (realm, report) = tokio::spawn(async move {
        crate::realm_import::import_document(&importer, &document, now).await
    })
    .await
    .map_err(|_| ApiError::Unavailable)??;
    // Keycloak answers 201 without a body; Cambio adds the report of what it could not keep
    // (clients that read no body are unaffected).
    let mut response = created(format!("{}/admin/realms/{}", app.base_url, realm.name));
    *response.body_mut() =
        axum::body::Body::from(serde_json::to_vec(&report).unwrap_or_else(|_| b"{}".to_vec()));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<RealmRep>> {
    authorize(&app, &headers, &realm, Need::ViewRealm).await?;
    let rt = realm_or_404(&app, &realm)?;
    Ok(Json(realm_io::settings_rep(&rt.snapshot.realm)))
}

/// Changes the settings the representation names; `realm` renames. Clients, roles and users
/// in the body are ignored, as Keycloak ignores them here.
pub async fn update(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let admin = authorize(&app, &headers, &realm, Need::ManageRealm).await?;
    let rt = realm_or_404(&app, &realm)?;
    let rep: RealmRep = parse_json(&body)?;
    let current = &rt.snapshot.realm;
    let mut updated = current.clone();
    realm_io::apply_settings(&mut updated, &rep)?;
    realm_io::check_defaults(
        &updated,
        Some(current),
        |s| rt.snapshot.client_scope(s).is_some(),
        |r| rt.snapshot.realm_role_id(r).is_some(),
    )?;
    if let Some(id) = rep.id.as_deref().filter(|id| !id.is_empty())
        && id != current.id
    {
        return Err(bad_request("Realm id cannot be changed"));
    }
    if let Some(name) = rep.realm.as_deref().filter(|n| *n != current.name) {
        if current.name == MASTER {
            return Err(bad_request("The master realm cannot be renamed"));
        }
        realm_io::validate_name(name)?;
        updated.name = name.to_owned();
    }
    if current.name == MASTER && !updated.enabled {
        return Err(bad_request("The master realm cannot be disabled"));
    }
    let now = random::now();
    if updated.default_signature_algorithm != current.default_signature_algorithm {
        crate::keys::ensure_active_key(&app, rt.id(), updated.default_signature_algorithm, now)
            .await?;
    }
    let updated = approve_realm(&admin, &rt, updated)?;
    app.update_realm(&updated).await.map_err(|e| match e {
        StoreError::Conflict(_) => conflict("Realm with same name exists"),
        other => other.into(),
    })?;
    app.reload_realm(rt.id(), now).await?;
    Ok(no_content())
}

/// Deletes a realm and everything in it. `master` cannot be deleted.
pub async fn delete(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    authorize(&app, &headers, &realm, Need::ManageRealm).await?;
    let rt = realm_or_404(&app, &realm)?;
    if rt.name() == MASTER {
        return Err(bad_request("The master realm cannot be deleted"));
    }
    let users = app.store.list_objects(rt.id(), KIND_USER).await?;
    app.store.delete_realm_data(rt.id()).await?;
    app.store.delete_object(GLOBAL, KIND_REALM, rt.id()).await?;
    for user in &users {
        app.forget_user(rt.id(), &user.id);
    }
    app.reload_realm(rt.id(), random::now()).await?;
    Ok(no_content())
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExportQuery {
    export_clients: Option<bool>,
    export_groups_and_roles: Option<bool>,
}

/// Keycloak's partial export: settings and client scopes, clients (secrets masked) with their
/// service accounts, roles. Never other users.
pub async fn partial_export(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    Query(query): Query<ExportQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<RealmRep>> {
    authorize(&app, &headers, &realm, Need::ViewRealm).await?;
    let clients = query.export_clients.unwrap_or(false);
    if clients {
        authorize(&app, &headers, &realm, Need::ViewClients).await?;
    }
    let rt = realm_or_404(&app, &realm)?;
    let options = ExportOptions {
        clients,
        roles: query.export_groups_and_roles.unwrap_or(false),
        users: false,
        secrets: false,
    };
    Ok(Json(realm_io::export(&app, &rt, options).await?))
}
