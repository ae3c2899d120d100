//! `/roles`, `/roles-by-id`, client roles, composites, client scopes, and a client's default
//! and optional client scopes.
//!
//! Roles that confer administration are guarded against escalation: the `realm-management`
//! client's roles and, in the `master` realm, the `admin` realm role. An administrator who is
//! not a `master` superuser may only hand out (map to a user, or add as a composite) roles whose
//! administrative content it holds itself, and only a superuser or a `realm-admin` may create,
//! rename, delete or recompose `realm-management` roles (the `master` `admin` role: superusers
//! only). Authorization is by role name in the token, so a rename would otherwise be a grant.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, put};
use axum::{Json, Router};
use cambio_core::model::{ClientScope, ProtocolMapper, Realm, Role};
use cambio_proto::admin::{ClientScopeRep, RoleRep, UserRep};
use cambio_store::GLOBAL;
use serde::Deserialize;

use super::escalation::{approve_client, approve_realm, approve_role, is_management_client};
use super::{
    Admin, Need, authorize, bad_request, conflict, created, forbidden, no_content, page,
    parse_json, realm_or_404,
};
use crate::bootstrap::{ADMIN_ROLE, MASTER};
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::state::{
    AppState, KIND_CLIENT_SCOPE, KIND_REALM, KIND_ROLE, RealmPart, RealmRuntime, decode,
};

const ROLE_NOT_FOUND: &str = "Could not find role";
const COMPOSITE_NOT_FOUND: &str = "Could not find composite role";
const CLIENT_NOT_FOUND: &str = "Could not find client";
const SCOPE_NOT_FOUND: &str = "Could not find client scope";

pub fn routes() -> Router<Arc<AppState>> {
    let r = "/admin/realms/{realm}";
    Router::new()
        .route(
            &format!("{r}/roles"),
            get(list_realm_roles).post(create_realm_role),
        )
        .route(
            &format!("{r}/roles/{{role}}"),
            get(get_realm_role)
                .put(update_realm_role)
                .delete(delete_realm_role),
        )
        .route(
            &format!("{r}/roles/{{role}}/composites"),
            get(realm_role_composites)
                .post(add_realm_role_composites)
                .delete(remove_realm_role_composites),
        )
        .route(
            &format!("{r}/roles/{{role}}/composites/realm"),
            get(realm_role_composites_realm),
        )
        .route(
            &format!("{r}/roles/{{role}}/composites/clients/{{client}}"),
            get(realm_role_composites_client),
        )
        .route(&format!("{r}/roles/{{role}}/users"), get(realm_role_users))
        .route(
            &format!("{r}/roles-by-id/{{id}}"),
            get(get_role_by_id)
                .put(update_role_by_id)
                .delete(delete_role_by_id),
        )
        .route(
            &format!("{r}/roles-by-id/{{id}}/composites"),
            get(role_by_id_composites)
                .post(add_role_by_id_composites)
                .delete(remove_role_by_id_composites),
        )
        .route(
            &format!("{r}/clients/{{client}}/roles"),
            get(list_client_roles).post(create_client_role),
        )
        .route(
            &format!("{r}/clients/{{client}}/roles/{{role}}"),
            get(get_client_role)
                .put(update_client_role)
                .delete(delete_client_role),
        )
        .route(
            &format!("{r}/clients/{{client}}/roles/{{role}}/composites"),
            get(client_role_composites)
                .post(add_client_role_composites)
                .delete(remove_client_role_composites),
        )
        .route(
            &format!("{r}/clients/{{client}}/roles/{{role}}/users"),
            get(client_role_users),
        )
        .route(
            &format!("{r}/client-scopes"),
            get(list_scopes).post(create_scope),
        )
        .route(
            &format!("{r}/client-scopes/{{id}}"),
            get(get_scope).put(update_scope).delete(delete_scope),
        )
        .route(
            &format!("{r}/clients/{{client}}/default-client-scopes"),
            get(client_default_scopes),
        )
        .route(
            &format!("{r}/clients/{{client}}/default-client-scopes/{{scope}}"),
            put(add_client_default_scope).delete(remove_client_default_scope),
        )
        .route(
            &format!("{r}/clients/{{client}}/optional-client-scopes"),
            get(client_optional_scopes),
        )
        .route(
            &format!("{r}/clients/{{client}}/optional-client-scopes/{{scope}}"),
            put(add_client_optional_scope).delete(remove_client_optional_scope),
        )
}

// Representations and shared checks (also used by the user role mappings).

/// The Keycloak representation of a role; `brief` leaves out the attributes, as lists do.
pub fn role_rep(rt: &RealmRuntime, role: &Role, brief: bool) -> RoleRep {
    RoleRep {
        id: Some(role.id.clone()),
        name: Some(role.name.clone()),
        description: role.description.clone(),
        composite: Some(!role.composites.is_empty()),
        client_role: Some(role.client_id.is_some()),
        container_id: Some(role.client_id.clone().unwrap_or_else(|| rt.id().to_owned())),
        attributes: (!brief).then(|| role.attributes.clone()),
        ..Default::default()
    }
}

/// Role representations ordered by name.
pub fn role_reps<'a>(
    rt: &RealmRuntime,
    roles: impl IntoIterator<Item = &'a Role>,
    brief: bool,
) -> Vec<RoleRep> {
    let mut roles: Vec<&Role> = roles.into_iter().collect();
    roles.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    roles.into_iter().map(|r| role_rep(rt, r, brief)).collect()
}

/// Whether `admin` may create, rename, delete or recompose a role named `name` owned by
/// `client` (an internal id; None for realm roles).
pub(crate) fn may_edit(admin: &Admin, rt: &RealmRuntime, client: Option<&str>, name: &str) -> bool {
    if admin.superuser {
        return true;
    }
    match client {
        None => !(rt.name() == MASTER && name == ADMIN_ROLE),
        Some(client) => !is_management_client(rt, client) || admin.roles.contains("realm-admin"),
    }
}

/// A URL path segment with everything but unreserved characters percent-encoded.
pub fn path_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// Resolves role references of a request body: by `id`, otherwise by `name` among the
/// realm roles, or among a client's roles when `clientRole` and `containerId` name one.
/// `owner` restricts (and defaults) the container: Some(None) for realm roles only,
/// Some(Some(client)) for that client's roles only, None for any role.
pub fn resolve_roles(
    rt: &RealmRuntime,
    reps: &[RoleRep],
    owner: Option<Option<&str>>,
    not_found: &'static str,
) -> ApiResult<Vec<String>> {
    let mut ids = Vec::with_capacity(reps.len());
    for rep in reps {
        let role = match (&rep.id, &rep.name) {
            (Some(id), _) if !id.is_empty() => rt.snapshot.role(id),
            (_, Some(name)) => {
                let container = match owner {
                    Some(owner) => owner,
                    None if rep.client_role == Some(true) => rep.container_id.as_deref(),
                    None => None,
                };
                match container {
                    None => rt.snapshot.realm_role_id(name),
                    Some(client) => rt.snapshot.client_role_id(client, name),
                }
                .and_then(|id| rt.snapshot.role(id))
            }
            _ => None,
        };
        let role = role.ok_or(ApiError::NotFound(not_found))?;
        if let Some(owner) = owner
            && role.client_id.as_deref() != owner
        {
            return Err(ApiError::NotFound(not_found));
        }
        if rep.name.as_ref().is_some_and(|name| name != &role.name) {
            return Err(ApiError::NotFound(not_found));
        }
        if !ids.contains(&role.id) {
            ids.push(role.id.clone());
        }
    }
    Ok(ids)
}

pub(crate) fn validate_role_name(name: &str) -> ApiResult<()> {
    if name.trim().is_empty() {
        return Err(bad_request("Role name is missing"));
    }
    if name.len() > 255 || name.chars().any(char::is_control) {
        return Err(bad_request("Invalid role name"));
    }
    Ok(())
}

fn duplicate_role(name: &str) -> ApiError {
    conflict(format!("Role with name {name} already exists"))
}

/// Reads the realm document fresh from the store, to change lists that name roles or scopes.
async fn stored_realm(app: &AppState, realm_id: &str) -> ApiResult<Realm> {
    let object = app
        .store
        .get_object(GLOBAL, KIND_REALM, realm_id)
        .await?
        .ok_or(ApiError::NotFound("Realm not found."))?;
    Ok(decode(&object)?)
}

async fn save_realm(
    app: &AppState,
    admin: &Admin,
    rt: &RealmRuntime,
    realm: Realm,
) -> ApiResult<()> {
    app.update_realm(&approve_realm(admin, rt, realm)?).await?;
    Ok(())
}

/// Renames (`Some`) or removes (`None`) a name in a list of names; true when it changed.
fn rename_in(list: &mut Vec<String>, old: &str, new: Option<&str>) -> bool {
    if !list.iter().any(|n| n == old) {
        return false;
    }
    match new {
        Some(new) => {
            for name in list.iter_mut().filter(|n| n.as_str() == old) {
                *name = new.to_owned();
            }
            let mut seen = BTreeSet::new();
            list.retain(|n| seen.insert(n.clone()));
        }
        None => list.retain(|n| n != old),
    }
    true
}

// Roles: the operations, whichever path named the role.

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RoleQuery {
    search: Option<String>,
    first: Option<i64>,
    max: Option<i64>,
    brief_representation: Option<bool>,
}

/// The view and manage needs for roles of a realm (`None`) or a client.
fn needs(client: Option<&str>) -> (Need, Need) {
    match client {
        None => (Need::ViewRealm, Need::ManageRealm),
        Some(_) => (Need::ViewClients, Need::ManageClients),
    }
}

/// Authorizes and loads the realm, checking that the owning client exists.
async fn context(
    app: &AppState,
    headers: &HeaderMap,
    realm: &str,
    client: Option<&str>,
    manage: bool,
) -> ApiResult<(Admin, Arc<RealmRuntime>)> {
    let (view, manage_need) = needs(client);
    let admin = authorize(app, headers, realm, if manage { manage_need } else { view }).await?;
    let rt = realm_or_404(app, realm)?;
    if let Some(client) = client
        && rt.snapshot.client(client).is_none()
    {
        return Err(ApiError::NotFound(CLIENT_NOT_FOUND));
    }
    Ok((admin, rt))
}

fn named_role(rt: &RealmRuntime, client: Option<&str>, name: &str) -> ApiResult<Role> {
    match client {
        None => rt.snapshot.realm_role_id(name),
        Some(client) => rt.snapshot.client_role_id(client, name),
    }
    .and_then(|id| rt.snapshot.role(id))
    .cloned()
    .ok_or(ApiError::NotFound(ROLE_NOT_FOUND))
}

fn list_roles(rt: &RealmRuntime, client: Option<&str>, query: RoleQuery) -> Vec<RoleRep> {
    let search = query.search.map(|s| s.to_lowercase());
    let roles = rt
        .snapshot
        .roles()
        .filter(|r| r.client_id.as_deref() == client)
        .filter(|r| {
            search
                .as_ref()
                .is_none_or(|s| r.name.to_lowercase().contains(s.as_str()))
        });
    let reps = role_reps(rt, roles, query.brief_representation.unwrap_or(true));
    page(reps, query.first, query.max)
}

async fn create_role(
    app: &AppState,
    headers: &HeaderMap,
    realm: &str,
    client: Option<&str>,
    body: &[u8],
) -> ApiResult<Response> {
    let (admin, rt) = context(app, headers, realm, client, true).await?;
    let rep: RoleRep = parse_json(body)?;
    let name = rep.name.clone().unwrap_or_default();
    validate_role_name(&name)?;
    if !may_edit(&admin, &rt, client, &name) {
        return Err(forbidden());
    }
    if named_role(&rt, client, &name).is_ok() {
        return Err(duplicate_role(&name));
    }
    let mut composites = Vec::new();
    if let Some(given) = &rep.composites {
        let mut refs: Vec<RoleRep> = Vec::new();
        for name in given.realm.iter().flatten() {
            refs.push(RoleRep {
                name: Some(name.clone()),
                ..Default::default()
            });
        }
        for (client_id, names) in given.client.iter().flatten() {
            let owner = rt
                .snapshot
                .client_by_client_id(client_id)
                .ok_or(ApiError::NotFound(CLIENT_NOT_FOUND))?;
            for name in names {
                refs.push(RoleRep {
                    name: Some(name.clone()),
                    client_role: Some(true),
                    container_id: Some(owner.id.clone()),
                    ..Default::default()
                });
            }
        }
        composites = resolve_roles(&rt, &refs, None, COMPOSITE_NOT_FOUND)?;
    }
    let role = Role {
        id: random::uuid(),
        name: name.clone(),
        description: rep.description.clone().filter(|d| !d.is_empty()),
        client_id: client.map(str::to_owned),
        composites,
        attributes: rep.attributes.clone().unwrap_or_default(),
    };
    let role = approve_role(&admin, &rt, role)?;
    app.insert_role(rt.id(), &role).await.map_err(|e| match e {
        cambio_store::StoreError::Conflict(_) => duplicate_role(&name),
        other => other.into(),
    })?;
    app.reload_parts(rt.id(), [RealmPart::Role(role.id.clone())], random::now())
        .await?;
    let base = format!("{}/admin/realms/{realm}", app.base_url);
    Ok(created(match client {
        None => format!("{base}/roles/{}", path_segment(&name)),
        Some(client) => format!("{base}/clients/{client}/roles/{}", path_segment(&name)),
    }))
}

async fn update_role(
    app: &AppState,
    admin: &Admin,
    rt: &RealmRuntime,
    current: Role,
    body: &[u8],
) -> ApiResult<Response> {
    let rep: RoleRep = parse_json(body)?;
    let mut role = current.clone();
    if let Some(name) = &rep.name {
        validate_role_name(name)?;
        role.name = name.clone();
    }
    let client = role.client_id.as_deref();
    if !may_edit(admin, rt, client, &current.name) || !may_edit(admin, rt, client, &role.name) {
        return Err(forbidden());
    }
    if role.name != current.name && named_role(rt, client, &role.name).is_ok() {
        return Err(duplicate_role(&role.name));
    }
    if let Some(description) = &rep.description {
        role.description = Some(description.clone()).filter(|d| !d.is_empty());
    }
    if let Some(attributes) = &rep.attributes {
        role.attributes = attributes.clone();
    }
    let role = approve_role(admin, rt, role)?;
    app.replace_role(rt.id(), &role)
        .await
        .map_err(|e| match e {
            cambio_store::StoreError::Conflict(_) => duplicate_role(&role.name),
            other => other.into(),
        })?;
    let mut changed = vec![RealmPart::Role(role.id.clone())];
    if role.client_id.is_none() && role.name != current.name {
        let mut realm = stored_realm(app, rt.id()).await?;
        if rename_in(&mut realm.default_roles, &current.name, Some(&role.name)) {
            save_realm(app, admin, rt, realm).await?;
            changed.push(RealmPart::Settings);
        }
    }
    app.reload_parts(rt.id(), changed, random::now()).await?;
    Ok(no_content())
}

/// Deletes a role and takes it out of other roles' composites, clients' scope mappings and the
/// realm's default roles. User mappings to it are left: the snapshot ignores unknown roles.
async fn delete_role(
    app: &AppState,
    admin: &Admin,
    rt: &RealmRuntime,
    role: Role,
) -> ApiResult<Response> {
    if !may_edit(admin, rt, role.client_id.as_deref(), &role.name) {
        return Err(forbidden());
    }
    let mut changed = vec![RealmPart::Role(role.id.clone())];
    for other in rt
        .snapshot
        .roles()
        .filter(|r| r.composites.contains(&role.id))
    {
        let mut other = other.clone();
        other.composites.retain(|id| id != &role.id);
        changed.push(RealmPart::Role(other.id.clone()));
        app.replace_role(rt.id(), &approve_role(admin, rt, other)?)
            .await?;
    }
    for client in rt
        .snapshot
        .clients()
        .filter(|c| c.scope_role_ids.contains(&role.id))
    {
        let mut narrowed = (**client).clone();
        narrowed.scope_role_ids.retain(|id| id != &role.id);
        let narrowed = approve_client(admin, rt, Some(client), narrowed)?;
        app.update_client(rt.id(), &narrowed).await?;
        changed.push(RealmPart::Client(client.id.clone()));
    }
    if role.client_id.is_none() {
        let mut realm = stored_realm(app, rt.id()).await?;
        if rename_in(&mut realm.default_roles, &role.name, None) {
            save_realm(app, admin, rt, realm).await?;
            changed.push(RealmPart::Settings);
        }
    }
    if !app
        .store
        .delete_object(rt.id(), KIND_ROLE, &role.id)
        .await?
    {
        return Err(ApiError::NotFound(ROLE_NOT_FOUND));
    }
    app.reload_parts(rt.id(), changed, random::now()).await?;
    Ok(no_content())
}

/// The direct composites of a role, optionally only those of one container.
fn composites_of(rt: &RealmRuntime, role: &Role, only: Option<Option<&str>>) -> Vec<RoleRep> {
    let roles = role
        .composites
        .iter()
        .filter_map(|id| rt.snapshot.role(id))
        .filter(|r| only.is_none_or(|owner| r.client_id.as_deref() == owner));
    role_reps(rt, roles, true)
}

async fn change_composites(
    app: &AppState,
    admin: &Admin,
    rt: &RealmRuntime,
    mut role: Role,
    body: &[u8],
    add: bool,
) -> ApiResult<Response> {
    let reps: Vec<RoleRep> = parse_json(body)?;
    let ids = resolve_roles(rt, &reps, None, COMPOSITE_NOT_FOUND)?;
    let changed = RealmPart::Role(role.id.clone());
    if !may_edit(admin, rt, role.client_id.as_deref(), &role.name) {
        return Err(forbidden());
    }
    if add {
        for id in ids {
            if id != role.id && !role.composites.contains(&id) {
                role.composites.push(id);
            }
        }
    } else {
        role.composites.retain(|id| !ids.contains(id));
    }
    app.replace_role(rt.id(), &approve_role(admin, rt, role)?)
        .await?;
    app.reload_parts(rt.id(), [changed], random::now()).await?;
    Ok(no_content())
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct UsersQuery {
    first: Option<i64>,
    max: Option<i64>,
}

/// Users mapped directly to a role, ordered by username (Keycloak's default page is 100).
async fn users_in_role(
    app: &AppState,
    headers: &HeaderMap,
    realm: &str,
    rt: &RealmRuntime,
    role: &Role,
    query: UsersQuery,
) -> ApiResult<Json<Vec<UserRep>>> {
    authorize(app, headers, realm, Need::ViewUsers).await?;
    let users: Vec<UserRep> = app
        .users_of_realm(rt.id())
        .await?
        .iter()
        .filter(|u| u.role_ids.contains(&role.id))
        .map(super::users::to_rep)
        .collect();
    Ok(Json(page(
        users,
        query.first,
        Some(query.max.unwrap_or(100)),
    )))
}

// Realm roles.

pub async fn list_realm_roles(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    Query(query): Query<RoleQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    let (_, rt) = context(&app, &headers, &realm, None, false).await?;
    Ok(Json(list_roles(&rt, None, query)))
}

pub async fn create_realm_role(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    create_role(&app, &headers, &realm, None, &body).await
}

pub async fn get_realm_role(
    State(app): State<Arc<AppState>>,
    Path((realm, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<RoleRep>> {
    let (_, rt) = context(&app, &headers, &realm, None, false).await?;
    Ok(Json(role_rep(&rt, &named_role(&rt, None, &name)?, false)))
}

pub async fn update_realm_role(
    State(app): State<Arc<AppState>>,
    Path((realm, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (admin, rt) = context(&app, &headers, &realm, None, true).await?;
    let role = named_role(&rt, None, &name)?;
    update_role(&app, &admin, &rt, role, &body).await
}

pub async fn delete_realm_role(
    State(app): State<Arc<AppState>>,
    Path((realm, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (admin, rt) = context(&app, &headers, &realm, None, true).await?;
    let role = named_role(&rt, None, &name)?;
    delete_role(&app, &admin, &rt, role).await
}

pub async fn realm_role_composites(
    State(app): State<Arc<AppState>>,
    Path((realm, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    let (_, rt) = context(&app, &headers, &realm, None, false).await?;
    Ok(Json(composites_of(
        &rt,
        &named_role(&rt, None, &name)?,
        None,
    )))
}

pub async fn realm_role_composites_realm(
    State(app): State<Arc<AppState>>,
    Path((realm, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    let (_, rt) = context(&app, &headers, &realm, None, false).await?;
    Ok(Json(composites_of(
        &rt,
        &named_role(&rt, None, &name)?,
        Some(None),
    )))
}

pub async fn realm_role_composites_client(
    State(app): State<Arc<AppState>>,
    Path((realm, name, client)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    let (_, rt) = context(&app, &headers, &realm, None, false).await?;
    if rt.snapshot.client(&client).is_none() {
        return Err(ApiError::NotFound(CLIENT_NOT_FOUND));
    }
    let role = named_role(&rt, None, &name)?;
    Ok(Json(composites_of(&rt, &role, Some(Some(&client)))))
}

pub async fn add_realm_role_composites(
    State(app): State<Arc<AppState>>,
    Path((realm, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (admin, rt) = context(&app, &headers, &realm, None, true).await?;
    let role = named_role(&rt, None, &name)?;
    change_composites(&app, &admin, &rt, role, &body, true).await
}

pub async fn remove_realm_role_composites(
    State(app): State<Arc<AppState>>,
    Path((realm, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (admin, rt) = context(&app, &headers, &realm, None, true).await?;
    let role = named_role(&rt, None, &name)?;
    change_composites(&app, &admin, &rt, role, &body, false).await
}

pub async fn realm_role_users(
    State(app): State<Arc<AppState>>,
    Path((realm, name)): Path<(String, String)>,
    Query(query): Query<UsersQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<UserRep>>> {
    let (_, rt) = context(&app, &headers, &realm, None, false).await?;
    let role = named_role(&rt, None, &name)?;
    users_in_role(&app, &headers, &realm, &rt, &role, query).await
}

// Roles by id: realm or client roles, authorized by where the role lives.

async fn role_by_id(
    app: &AppState,
    headers: &HeaderMap,
    realm: &str,
    id: &str,
    manage: bool,
) -> ApiResult<(Admin, Arc<RealmRuntime>, Role)> {
    let rt = app.realm(realm);
    let role = rt.as_ref().and_then(|rt| rt.snapshot.role(id).cloned());
    let client = role.as_ref().and_then(|r| r.client_id.clone());
    let (admin, rt) = context(app, headers, realm, client.as_deref(), manage).await?;
    let role = role.ok_or(ApiError::NotFound("Could not find role with id"))?;
    Ok((admin, rt, role))
}

pub async fn get_role_by_id(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<RoleRep>> {
    let (_, rt, role) = role_by_id(&app, &headers, &realm, &id, false).await?;
    Ok(Json(role_rep(&rt, &role, false)))
}

pub async fn update_role_by_id(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (admin, rt, role) = role_by_id(&app, &headers, &realm, &id, true).await?;
    update_role(&app, &admin, &rt, role, &body).await
}

pub async fn delete_role_by_id(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (admin, rt, role) = role_by_id(&app, &headers, &realm, &id, true).await?;
    delete_role(&app, &admin, &rt, role).await
}

pub async fn role_by_id_composites(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    let (_, rt, role) = role_by_id(&app, &headers, &realm, &id, false).await?;
    Ok(Json(composites_of(&rt, &role, None)))
}

pub async fn add_role_by_id_composites(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (admin, rt, role) = role_by_id(&app, &headers, &realm, &id, true).await?;
    change_composites(&app, &admin, &rt, role, &body, true).await
}

pub async fn remove_role_by_id_composites(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (admin, rt, role) = role_by_id(&app, &headers, &realm, &id, true).await?;
    change_composites(&app, &admin, &rt, role, &body, false).await
}

// Client roles.

pub async fn list_client_roles(
    State(app): State<Arc<AppState>>,
    Path((realm, client)): Path<(String, String)>,
    Query(query): Query<RoleQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    let (_, rt) = context(&app, &headers, &realm, Some(&client), false).await?;
    Ok(Json(list_roles(&rt, Some(&client), query)))
}

pub async fn create_client_role(
    State(app): State<Arc<AppState>>,
    Path((realm, client)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    create_role(&app, &headers, &realm, Some(&client), &body).await
}

pub async fn get_client_role(
    State(app): State<Arc<AppState>>,
    Path((realm, client, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<RoleRep>> {
    let (_, rt) = context(&app, &headers, &realm, Some(&client), false).await?;
    Ok(Json(role_rep(
        &rt,
        &named_role(&rt, Some(&client), &name)?,
        false,
    )))
}

pub async fn update_client_role(
    State(app): State<Arc<AppState>>,
    Path((realm, client, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (admin, rt) = context(&app, &headers, &realm, Some(&client), true).await?;
    let role = named_role(&rt, Some(&client), &name)?;
    update_role(&app, &admin, &rt, role, &body).await
}

pub async fn delete_client_role(
    State(app): State<Arc<AppState>>,
    Path((realm, client, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (admin, rt) = context(&app, &headers, &realm, Some(&client), true).await?;
    let role = named_role(&rt, Some(&client), &name)?;
    delete_role(&app, &admin, &rt, role).await
}

pub async fn client_role_composites(
    State(app): State<Arc<AppState>>,
    Path((realm, client, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    let (_, rt) = context(&app, &headers, &realm, Some(&client), false).await?;
    Ok(Json(composites_of(
        &rt,
        &named_role(&rt, Some(&client), &name)?,
        None,
    )))
}

pub async fn add_client_role_composites(
    State(app): State<Arc<AppState>>,
    Path((realm, client, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (admin, rt) = context(&app, &headers, &realm, Some(&client), true).await?;
    let role = named_role(&rt, Some(&client), &name)?;
    change_composites(&app, &admin, &rt, role, &body, true).await
}

pub async fn remove_client_role_composites(
    State(app): State<Arc<AppState>>,
    Path((realm, client, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (admin, rt) = context(&app, &headers, &realm, Some(&client), true).await?;
    let role = named_role(&rt, Some(&client), &name)?;
    change_composites(&app, &admin, &rt, role, &body, false).await
}

pub async fn client_role_users(
    State(app): State<Arc<AppState>>,
    Path((realm, client, name)): Path<(String, String, String)>,
    Query(query): Query<UsersQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<UserRep>>> {
    let (_, rt) = context(&app, &headers, &realm, Some(&client), false).await?;
    let role = named_role(&rt, Some(&client), &name)?;
    users_in_role(&app, &headers, &realm, &rt, &role, query).await
}

// Client scopes.

const INCLUDE_IN_TOKEN_SCOPE: &str = "include.in.token.scope";

/// The Keycloak representation of a client scope.
pub fn scope_rep(scope: &ClientScope) -> ClientScopeRep {
    let mut attributes = scope.attributes.clone();
    attributes.insert(
        INCLUDE_IN_TOKEN_SCOPE.to_owned(),
        scope.include_in_token_scope.to_string(),
    );
    ClientScopeRep {
        id: Some(scope.id.clone()),
        name: Some(scope.name.clone()),
        description: scope.description.clone(),
        protocol: Some(scope.protocol.clone()),
        attributes: Some(attributes),
        protocol_mappers: (!scope.protocol_mappers.is_empty()).then(|| {
            scope
                .protocol_mappers
                .iter()
                .map(super::protocol_mappers::mapper_rep)
                .collect()
        }),
    }
}

/// Applies a representation. A scope name must be a valid OAuth scope token (RFC 6749 §3.3).
fn apply_scope_rep(scope: &mut ClientScope, rep: &ClientScopeRep, creating: bool) -> ApiResult<()> {
    if let Some(name) = &rep.name {
        let valid = !name.is_empty()
            && name.len() <= 255
            && name
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !valid {
            return Err(bad_request(format!(
                "Unexpected name \"{name}\" for ClientScope"
            )));
        }
        scope.name = name.clone();
    }
    if let Some(description) = &rep.description {
        scope.description = Some(description.clone()).filter(|d| !d.is_empty());
    }
    if let Some(protocol) = &rep.protocol {
        if protocol != "openid-connect" && protocol != "saml" {
            return Err(bad_request(format!("Unexpected protocol \"{protocol}\"")));
        }
        scope.protocol = protocol.clone();
    }
    if let Some(attributes) = &rep.attributes {
        for (key, value) in attributes {
            if key == INCLUDE_IN_TOKEN_SCOPE {
                scope.include_in_token_scope = value.trim().eq_ignore_ascii_case("true");
            } else {
                scope.attributes.insert(key.clone(), value.clone());
            }
        }
    }
    // Keycloak reads mappers only at creation; later they have their own endpoints.
    if creating && let Some(mappers) = &rep.protocol_mappers {
        scope.protocol_mappers = mappers
            .iter()
            .map(|m| ProtocolMapper {
                id: random::uuid(),
                name: m.name.clone(),
                protocol: if m.protocol.is_empty() {
                    scope.protocol.clone()
                } else {
                    m.protocol.clone()
                },
                protocol_mapper: m.protocol_mapper.clone(),
                config: m.config.clone(),
            })
            .collect();
    }
    Ok(())
}

pub(super) fn scope_by_id<'a>(rt: &'a RealmRuntime, id: &str) -> ApiResult<&'a ClientScope> {
    rt.snapshot
        .client_scopes()
        .find(|s| s.id == id)
        .ok_or(ApiError::NotFound(SCOPE_NOT_FOUND))
}

fn duplicate_scope(name: &str) -> ApiError {
    conflict(format!("Client Scope {name} already exists"))
}

/// Renames (`Some`) or removes (`None`) a scope name wherever clients and the realm list it.
async fn rename_scope_everywhere(
    app: &AppState,
    admin: &Admin,
    rt: &RealmRuntime,
    old: &str,
    new: Option<&str>,
) -> ApiResult<Vec<RealmPart>> {
    let mut changed = Vec::new();
    for current in rt.snapshot.clients() {
        let mut client = (**current).clone();
        let a = rename_in(&mut client.default_client_scopes, old, new);
        let b = rename_in(&mut client.optional_client_scopes, old, new);
        if a || b {
            let client = approve_client(admin, rt, Some(current), client)?;
            app.update_client(rt.id(), &client).await?;
            changed.push(RealmPart::Client(client.id.clone()));
        }
    }
    let mut realm = stored_realm(app, rt.id()).await?;
    let a = rename_in(&mut realm.default_default_client_scopes, old, new);
    let b = rename_in(&mut realm.default_optional_client_scopes, old, new);
    if a || b {
        save_realm(app, admin, rt, realm).await?;
        changed.push(RealmPart::Settings);
    }
    Ok(changed)
}

pub async fn list_scopes(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<ClientScopeRep>>> {
    authorize(&app, &headers, &realm, Need::ViewClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    let mut scopes: Vec<&ClientScope> = rt.snapshot.client_scopes().collect();
    scopes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(scopes.into_iter().map(scope_rep).collect()))
}

pub async fn create_scope(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    authorize(&app, &headers, &realm, Need::ManageClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    let rep: ClientScopeRep = parse_json(&body)?;
    if rep.name.is_none() {
        return Err(bad_request("Client scope name is missing"));
    }
    let mut scope = ClientScope {
        id: random::uuid(),
        ..Default::default()
    };
    apply_scope_rep(&mut scope, &rep, true)?;
    if let Some(id) = rep.id.clone().filter(|id| !id.is_empty()) {
        if rt.snapshot.client_scopes().any(|s| s.id == id) {
            return Err(duplicate_scope(&scope.name));
        }
        scope.id = id;
    }
    if rt.snapshot.client_scope(&scope.name).is_some() {
        return Err(duplicate_scope(&scope.name));
    }
    app.insert_client_scope(rt.id(), &scope)
        .await
        .map_err(|e| match e {
            cambio_store::StoreError::Conflict(_) => duplicate_scope(&scope.name),
            other => other.into(),
        })?;
    app.reload_parts(rt.id(), [RealmPart::Scope(scope.id.clone())], random::now())
        .await?;
    Ok(created(format!(
        "{}/admin/realms/{realm}/client-scopes/{}",
        app.base_url, scope.id
    )))
}

pub async fn get_scope(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<ClientScopeRep>> {
    authorize(&app, &headers, &realm, Need::ViewClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    Ok(Json(scope_rep(scope_by_id(&rt, &id)?)))
}

pub async fn update_scope(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let admin = authorize(&app, &headers, &realm, Need::ManageClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    let current = scope_by_id(&rt, &id)?.clone();
    let rep: ClientScopeRep = parse_json(&body)?;
    let mut scope = current.clone();
    apply_scope_rep(&mut scope, &rep, false)?;
    if scope.name != current.name && rt.snapshot.client_scope(&scope.name).is_some() {
        return Err(duplicate_scope(&scope.name));
    }
    app.replace_client_scope(rt.id(), &scope)
        .await
        .map_err(|e| match e {
            cambio_store::StoreError::Conflict(_) => duplicate_scope(&scope.name),
            other => other.into(),
        })?;
    let mut changed = vec![RealmPart::Scope(scope.id.clone())];
    if scope.name != current.name {
        changed.extend(
            rename_scope_everywhere(&app, &admin, &rt, &current.name, Some(&scope.name)).await?,
        );
    }
    app.reload_parts(rt.id(), changed, random::now()).await?;
    Ok(no_content())
}

/// Deletes a client scope and takes it off every client and the realm's default lists.
pub async fn delete_scope(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let admin = authorize(&app, &headers, &realm, Need::ManageClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    let scope = scope_by_id(&rt, &id)?.clone();
    let mut changed = rename_scope_everywhere(&app, &admin, &rt, &scope.name, None).await?;
    app.store
        .delete_object(rt.id(), KIND_CLIENT_SCOPE, &scope.id)
        .await?;
    changed.push(RealmPart::Scope(scope.id.clone()));
    app.reload_parts(rt.id(), changed, random::now()).await?;
    Ok(no_content())
}

// A client's default and optional client scopes.

/// The brief representation Keycloak lists a client's scopes with.
fn brief_scopes(rt: &RealmRuntime, names: &[String]) -> Vec<ClientScopeRep> {
    names
        .iter()
        .filter_map(|name| rt.snapshot.client_scope(name))
        .map(|s| ClientScopeRep {
            id: Some(s.id.clone()),
            name: Some(s.name.clone()),
            ..Default::default()
        })
        .collect()
}

async fn client_scopes_get(
    app: &AppState,
    headers: &HeaderMap,
    realm: &str,
    client: &str,
    default: bool,
) -> ApiResult<Json<Vec<ClientScopeRep>>> {
    authorize(app, headers, realm, Need::ViewClients).await?;
    let rt = realm_or_404(app, realm)?;
    let client = rt
        .snapshot
        .client(client)
        .ok_or(ApiError::NotFound(CLIENT_NOT_FOUND))?;
    let names = if default {
        &client.default_client_scopes
    } else {
        &client.optional_client_scopes
    };
    Ok(Json(brief_scopes(&rt, names)))
}

/// Adds (`add`) or removes a scope as a default (`default`) or optional scope of a client. A
/// scope is in at most one of the two lists, so adding it to one takes it off the other.
async fn client_scopes_change(
    app: &AppState,
    headers: &HeaderMap,
    realm: &str,
    (client, scope): (&str, &str),
    default: bool,
    add: bool,
) -> ApiResult<Response> {
    let admin = authorize(app, headers, realm, Need::ManageClients).await?;
    let rt = realm_or_404(app, realm)?;
    let current = rt
        .snapshot
        .client(client)
        .ok_or(ApiError::NotFound(CLIENT_NOT_FOUND))?;
    super::clients::ensure_may_manage_client(app, &admin, &rt, current).await?;
    let mut client = (**current).clone();
    let name = rt
        .snapshot
        .client_scopes()
        .find(|s| s.id == scope)
        .map(|s| s.name.clone())
        .ok_or(ApiError::NotFound("Client scope not found."))?;
    let (this, other) = if default {
        (
            &mut client.default_client_scopes,
            &mut client.optional_client_scopes,
        )
    } else {
        (
            &mut client.optional_client_scopes,
            &mut client.default_client_scopes,
        )
    };
    if add {
        other.retain(|n| n != &name);
        if !this.contains(&name) {
            this.push(name);
        }
    } else {
        this.retain(|n| n != &name);
    }
    let client = approve_client(&admin, &rt, Some(current), client)?;
    app.update_client(rt.id(), &client).await?;
    app.reload_client(rt.id(), &client.id).await?;
    Ok(no_content())
}

pub async fn client_default_scopes(
    State(app): State<Arc<AppState>>,
    Path((realm, client)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<ClientScopeRep>>> {
    client_scopes_get(&app, &headers, &realm, &client, true).await
}

pub async fn client_optional_scopes(
    State(app): State<Arc<AppState>>,
    Path((realm, client)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<ClientScopeRep>>> {
    client_scopes_get(&app, &headers, &realm, &client, false).await
}

pub async fn add_client_default_scope(
    State(app): State<Arc<AppState>>,
    Path((realm, client, scope)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    client_scopes_change(&app, &headers, &realm, (&client, &scope), true, true).await
}

pub async fn remove_client_default_scope(
    State(app): State<Arc<AppState>>,
    Path((realm, client, scope)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    client_scopes_change(&app, &headers, &realm, (&client, &scope), true, false).await
}

pub async fn add_client_optional_scope(
    State(app): State<Arc<AppState>>,
    Path((realm, client, scope)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    client_scopes_change(&app, &headers, &realm, (&client, &scope), false, true).await
}

pub async fn remove_client_optional_scope(
    State(app): State<Arc<AppState>>,
    Path((realm, client, scope)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    client_scopes_change(&app, &headers, &realm, (&client, &scope), false, false).await
}
