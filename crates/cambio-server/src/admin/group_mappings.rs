//! `/admin/realms/{realm}/groups/{id}/role-mappings`: a group's realm and client role
//! mappings, and the effective (`composite`) and `available` views, as Keycloak serves them.
//! Every change passes `approve_group`: the caller must be able to grant what the group
//! confers now (unmapping takes it from the members) and what it newly maps.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use cambio_core::model::Group;
use cambio_proto::admin::{MappingsRep, RoleRep};

use super::escalation::approve_group;
use super::groups::group_or_404;
use super::roles::{resolve_roles, role_reps};
use super::users::{mappings_rep, reps_of};
use super::{Admin, Need, authorize, no_content, parse_json, realm_or_404};
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::state::{AppState, RealmPart, RealmRuntime};

const ROLE_NOT_FOUND: &str = "Role not found";
const CLIENT_NOT_FOUND: &str = "Client not found";

pub fn routes() -> Router<Arc<AppState>> {
    let m = "/admin/realms/{realm}/groups/{id}/role-mappings";
    Router::new()
        .route(m, get(all_mappings))
        .route(
            &format!("{m}/realm"),
            get(realm_mappings)
                .post(add_realm_mappings)
                .delete(remove_realm_mappings),
        )
        .route(&format!("{m}/realm/composite"), get(realm_composite))
        .route(&format!("{m}/realm/available"), get(realm_available))
        .route(
            &format!("{m}/clients/{{client}}"),
            get(client_mappings)
                .post(add_client_mappings)
                .delete(remove_client_mappings),
        )
        .route(
            &format!("{m}/clients/{{client}}/composite"),
            get(client_composite),
        )
        .route(
            &format!("{m}/clients/{{client}}/available"),
            get(client_available),
        )
}

/// Authorizes, loads the realm and the group (and checks the client, when one is named).
async fn mapping_context(
    app: &AppState,
    headers: &HeaderMap,
    (realm, id): (&str, &str),
    client: Option<&str>,
    need: Need,
) -> ApiResult<(Admin, Arc<RealmRuntime>, Group)> {
    let admin = authorize(app, headers, realm, need).await?;
    let rt = realm_or_404(app, realm)?;
    let group = group_or_404(&rt, id)?.clone();
    if let Some(client) = client
        && rt.snapshot.client(client).is_none()
    {
        return Err(ApiError::NotFound(CLIENT_NOT_FOUND));
    }
    Ok((admin, rt, group))
}

/// Every role the group's members hold through it: its mappings, those of the groups above
/// it, and everything they contain (Keycloak's effective view of a group).
fn effective(rt: &RealmRuntime, group: &Group) -> BTreeSet<String> {
    rt.snapshot
        .role_closure(rt.snapshot.roles_through_groups([group.id.as_str()]), None)
}

fn available(rt: &RealmRuntime, group: &Group, owner: Option<&str>) -> Vec<RoleRep> {
    let held = effective(rt, group);
    let roles = rt
        .snapshot
        .roles()
        .filter(|r| r.client_id.as_deref() == owner && !held.contains(&r.id));
    role_reps(rt, roles, true)
}

async fn change_mappings(
    app: &AppState,
    headers: &HeaderMap,
    path: (&str, &str),
    client: Option<&str>,
    body: &[u8],
    add: bool,
) -> ApiResult<Response> {
    let (admin, rt, before) =
        mapping_context(app, headers, path, client, Need::ManageUsers).await?;
    let reps: Vec<RoleRep> = parse_json(body)?;
    let ids = resolve_roles(&rt, &reps, Some(client), ROLE_NOT_FOUND)?;
    let mut group = before.clone();
    if add {
        for id in ids {
            if !group.role_ids.contains(&id) {
                group.role_ids.push(id);
            }
        }
    } else {
        group.role_ids.retain(|id| !ids.contains(id));
    }
    let group = approve_group(&admin, &rt, Some(&before), group)?;
    app.update_group(rt.id(), &group).await?;
    app.reload_parts(rt.id(), [RealmPart::Groups], random::now())
        .await?;
    Ok(no_content())
}

pub async fn all_mappings(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<MappingsRep>> {
    let (_, rt, group) =
        mapping_context(&app, &headers, (&realm, &id), None, Need::ViewUsers).await?;
    Ok(Json(mappings_rep(&rt, &group.role_ids)))
}

/// One of the six views of a group's roles: direct, effective or available, for realm roles
/// (`client` None) or one client's.
async fn view(
    app: &AppState,
    headers: &HeaderMap,
    path: (&str, &str),
    client: Option<&str>,
    kind: MappingView,
) -> ApiResult<Json<Vec<RoleRep>>> {
    let (_, rt, group) = mapping_context(app, headers, path, client, Need::ViewUsers).await?;
    Ok(Json(match kind {
        MappingView::Direct => reps_of(&rt, group.role_ids.iter().cloned(), client),
        MappingView::Composite => reps_of(&rt, effective(&rt, &group), client),
        MappingView::Available => available(&rt, &group, client),
    }))
}

#[derive(Debug, Clone, Copy)]
enum MappingView {
    Direct,
    Composite,
    Available,
}

pub async fn realm_mappings(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    view(&app, &headers, (&realm, &id), None, MappingView::Direct).await
}

pub async fn realm_composite(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    view(&app, &headers, (&realm, &id), None, MappingView::Composite).await
}

pub async fn realm_available(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    view(&app, &headers, (&realm, &id), None, MappingView::Available).await
}

pub async fn add_realm_mappings(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    change_mappings(&app, &headers, (&realm, &id), None, &body, true).await
}

pub async fn remove_realm_mappings(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    change_mappings(&app, &headers, (&realm, &id), None, &body, false).await
}

pub async fn client_mappings(
    State(app): State<Arc<AppState>>,
    Path((realm, id, client)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    view(
        &app,
        &headers,
        (&realm, &id),
        Some(&client),
        MappingView::Direct,
    )
    .await
}

pub async fn client_composite(
    State(app): State<Arc<AppState>>,
    Path((realm, id, client)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    view(
        &app,
        &headers,
        (&realm, &id),
        Some(&client),
        MappingView::Composite,
    )
    .await
}

pub async fn client_available(
    State(app): State<Arc<AppState>>,
    Path((realm, id, client)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    view(
        &app,
        &headers,
        (&realm, &id),
        Some(&client),
        MappingView::Available,
    )
    .await
}

pub async fn add_client_mappings(
    State(app): State<Arc<AppState>>,
    Path((realm, id, client)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    change_mappings(&app, &headers, (&realm, &id), Some(&client), &body, true).await
}

pub async fn remove_client_mappings(
    State(app): State<Arc<AppState>>,
    Path((realm, id, client)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    change_mappings(&app, &headers, (&realm, &id), Some(&client), &body, false).await
}
