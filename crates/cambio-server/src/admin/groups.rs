//! `/admin/realms/{realm}/groups`: groups, subgroups and members (role mappings are in
//! `group_mappings`), `/users/{id}/groups` (membership) and `/group-by-path/{path}`, with
//! Keycloak's paths and representations.
//!
//! Who may do what follows Keycloak: `query-groups` or a right to view users lists groups,
//! `view-users` reads them, `manage-users` changes them and their memberships. Every change
//! that alters the roles people end up with passes the escalation guard: a group's role
//! mappings and parent (`approve_group`), its deletion (`approve_group_removal`), and a
//! membership, which is a change to the user (`approve_user`, after `ensure_may_act_as`, as
//! for the user's role mappings). Adding a user to a group changes that user's roles only,
//! never the other members': they gain nothing and the caller gains no way to act as them, so
//! who the other members are does not matter to the guard.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use cambio_core::groups::MAX_GROUP_DEPTH;
use cambio_core::model::{Group, User};
use cambio_proto::admin::{GroupRep, UserRep};
use serde::Deserialize;
use serde_json::{Value, json};

use super::escalation::{approve_group, approve_group_removal, approve_user, ensure_may_act_as};
use super::{
    Admin, Need, authorize, bad_request, conflict, created, no_content, page, parse_json,
    realm_or_404,
};
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::state::{AppState, RealmPart, RealmRuntime};

const GROUP_NOT_FOUND: &str = "Could not find group by id";
const USER_NOT_FOUND: &str = "User not found";
const PATH_NOT_FOUND: &str = "Group path does not exist";
/// Keycloak's page size for members when `max` is not given.
const DEFAULT_MAX: i64 = 100;

pub fn routes() -> Router<Arc<AppState>> {
    let g = "/admin/realms/{realm}/groups";
    let one = format!("{g}/{{id}}");
    let u = "/admin/realms/{realm}/users/{id}/groups";
    Router::new()
        .route(g, get(list).post(create_top))
        .route(&format!("{g}/count"), get(count))
        .route(&one, get(get_one).put(update).delete(delete_group))
        .route(&format!("{one}/children"), get(children).post(create_child))
        .route(&format!("{one}/members"), get(members))
        .route("/admin/realms/{realm}/group-by-path/{*path}", get(by_path))
        .merge(super::group_mappings::routes())
        .route(u, get(user_groups))
        .route(&format!("{u}/count"), get(user_group_count))
        .route(&format!("{u}/{{group}}"), put(join).delete(leave))
}

// Representations.

/// Realm role names and client role names (by `clientId`) of role ids, each ordered.
fn role_names(rt: &RealmRuntime, ids: &[String]) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let mut realm = Vec::new();
    let mut clients: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for role in ids.iter().filter_map(|id| rt.snapshot.role(id)) {
        match role.client_id.as_deref().map(|c| rt.snapshot.client(c)) {
            None => realm.push(role.name.clone()),
            Some(Some(owner)) => clients
                .entry(owner.client_id.clone())
                .or_default()
                .push(role.name.clone()),
            Some(None) => {}
        }
    }
    realm.sort();
    clients.values_mut().for_each(|names| names.sort());
    (realm, clients)
}

/// A group in Keycloak's form. The brief form has the name, path and parent only; the full
/// form adds attributes and role mappings by name; `access` (the caller's rights) is there
/// when a caller is given. `subGroups` is empty unless the caller fills it (searches and realm
/// exports), as in Keycloak 23 and later.
pub fn group_rep(rt: &RealmRuntime, group: &Group, brief: bool, admin: Option<&Admin>) -> GroupRep {
    let mut rep = GroupRep {
        id: Some(group.id.clone()),
        name: Some(group.name.clone()),
        path: rt.snapshot.group_path(&group.id).map(str::to_owned),
        parent_id: group.parent_id.clone(),
        sub_group_count: Some(rt.snapshot.subgroups(Some(&group.id)).count() as u64),
        sub_groups: Some(Vec::new()),
        ..Default::default()
    };
    if !brief {
        let (realm, clients) = role_names(rt, &group.role_ids);
        rep.attributes = Some(group.attributes.clone());
        rep.realm_roles = Some(realm);
        rep.client_roles = Some(clients);
    }
    rep.access = admin.map(|admin| {
        let manage = admin.may(Need::ManageUsers);
        let view = admin.may(Need::ViewUsers);
        BTreeMap::from([
            ("view".to_owned(), view),
            ("viewMembers".to_owned(), view),
            ("manage".to_owned(), manage),
            ("manageMembers".to_owned(), manage),
            ("manageMembership".to_owned(), manage),
        ])
    });
    rep
}

/// The group with, under `subGroups`, only the branches that lead to a match (`None` when
/// nothing at or below it matches). The walk visits each group once and is as deep as the
/// hierarchy, at most `MAX_GROUP_DEPTH`.
fn search_tree(
    rt: &RealmRuntime,
    group: &Group,
    matches: &dyn Fn(&Group) -> bool,
    brief: bool,
    admin: &Admin,
) -> Option<GroupRep> {
    let below: Vec<GroupRep> = rt
        .snapshot
        .subgroups(Some(&group.id))
        .filter_map(|child| search_tree(rt, child, matches, brief, admin))
        .collect();
    if below.is_empty() && !matches(group) {
        return None;
    }
    let mut rep = group_rep(rt, group, brief, Some(admin));
    rep.sub_groups = Some(below);
    Some(rep)
}

fn name_matcher(search: Option<&str>, exact: bool) -> Box<dyn Fn(&Group) -> bool + '_> {
    match search {
        None => Box::new(|_| true),
        Some(s) if exact => Box::new(move |g: &Group| g.name == s),
        Some(s) => {
            let needle = s.to_lowercase();
            Box::new(move |g: &Group| g.name.to_lowercase().contains(&needle))
        }
    }
}

// Lookups and validation.

/// The group ids of the paths a new user's representation names (Keycloak's `groups` on user
/// creation and in a partial import); an unknown path is 404, as in Keycloak. A path written
/// by a Keycloak started with slash escaping (`/a~/b`) is read too. Joining is judged with the
/// user.
pub fn ids_of_paths(rt: &RealmRuntime, paths: Option<&[String]>) -> ApiResult<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    for path in paths.into_iter().flatten() {
        let path = format!("/{}", path.trim_start_matches('/'));
        let group = rt
            .snapshot
            .group_by_path(&path)
            .or_else(|| rt.snapshot.group_by_path(&path.replace("~/", "/")))
            .ok_or_else(|| ApiError::Admin {
                status: axum::http::StatusCode::NOT_FOUND,
                message: format!("Group {path} not found"),
            })?;
        if !ids.contains(&group.id) {
            ids.push(group.id.clone());
        }
    }
    Ok(ids)
}

pub(super) fn group_or_404<'a>(rt: &'a RealmRuntime, id: &str) -> ApiResult<&'a Group> {
    rt.snapshot
        .group(id)
        .ok_or(ApiError::NotFound(GROUP_NOT_FOUND))
}

async fn user_or_404(app: &AppState, rt: &RealmRuntime, id: &str) -> ApiResult<User> {
    app.user_of_realm(rt.id(), id)
        .await?
        .ok_or(ApiError::NotFound(USER_NOT_FOUND))
}

/// Group names: not blank, at most 255 characters, no control characters. A `/` is allowed,
/// as in Keycloak; [`ensure_path_free`] keeps paths unambiguous.
fn valid_group_name(name: Option<&str>) -> ApiResult<String> {
    let name = name.map(str::trim).unwrap_or("");
    if name.is_empty() {
        return Err(bad_request("Group name is missing"));
    }
    if name.chars().count() > 255 || name.chars().any(char::is_control) {
        return Err(bad_request("Invalid group name"));
    }
    Ok(name.to_owned())
}

/// Refuses a name or place that would give `group` (None: a new group), or a group below it,
/// the path of another group: a name holding `/` could otherwise make one path name two
/// groups (see `RealmSnapshot::path_clash`).
fn ensure_path_free(
    rt: &RealmRuntime,
    group: Option<&str>,
    parent: Option<&str>,
    name: &str,
) -> ApiResult<()> {
    match rt.snapshot.path_clash(group, parent, name) {
        Some(path) => Err(path_taken(&path)),
        None => Ok(()),
    }
}

pub(crate) fn path_taken(path: &str) -> ApiError {
    conflict(format!("A group with path '{path}' already exists."))
}

fn too_deep() -> ApiError {
    bad_request(format!(
        "A group hierarchy may have at most {MAX_GROUP_DEPTH} levels"
    ))
}

fn sibling_conflict(parent: Option<&str>, name: &str) -> ApiError {
    match parent {
        None => conflict(format!("Top level group named '{name}' already exists.")),
        Some(_) => conflict(format!("Sibling group named '{name}' already exists.")),
    }
}

/// Whether another group under `parent` already has `name`.
fn name_taken(rt: &RealmRuntime, parent: Option<&str>, name: &str, except: &str) -> bool {
    rt.snapshot
        .subgroups(parent)
        .any(|g| g.name == name && g.id != except)
}

fn store_conflict(
    parent: Option<&str>,
    name: &str,
) -> impl Fn(cambio_store::StoreError) -> ApiError {
    let parent = parent.map(str::to_owned);
    let name = name.to_owned();
    move |e| match e {
        cambio_store::StoreError::Conflict(_) => sibling_conflict(parent.as_deref(), &name),
        other => other.into(),
    }
}

// Groups.

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GroupQuery {
    search: Option<String>,
    #[serde(default, deserialize_with = "super::lenient_bool")]
    exact: Option<bool>,
    first: Option<i64>,
    max: Option<i64>,
    #[serde(default, deserialize_with = "super::lenient_bool")]
    brief_representation: Option<bool>,
    #[serde(default, deserialize_with = "super::lenient_bool")]
    top: Option<bool>,
}

/// Top-level groups, paged; with `search`, the branches leading to groups whose name
/// contains it.
pub async fn list(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    Query(query): Query<GroupQuery>,
) -> ApiResult<Json<Vec<GroupRep>>> {
    let admin = authorize(&app, &headers, &realm, Need::QueryGroups).await?;
    let rt = realm_or_404(&app, &realm)?;
    let brief = query.brief_representation.unwrap_or(true);
    let matches = name_matcher(query.search.as_deref(), query.exact.unwrap_or(false));
    let reps: Vec<GroupRep> = rt
        .snapshot
        .subgroups(None)
        .filter_map(|g| match query.search {
            Some(_) => search_tree(&rt, g, &*matches, brief, &admin),
            None => Some(group_rep(&rt, g, brief, Some(&admin))),
        })
        .collect();
    Ok(Json(page(reps, query.first, query.max)))
}

/// `{"count": n}`: groups matching `search`, else the top-level groups with `top=true`, else
/// every group.
pub async fn count(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    Query(query): Query<GroupQuery>,
) -> ApiResult<Json<Value>> {
    authorize(&app, &headers, &realm, Need::QueryGroups).await?;
    let rt = realm_or_404(&app, &realm)?;
    let count = if query.search.is_some() {
        let matches = name_matcher(query.search.as_deref(), false);
        rt.snapshot
            .groups()
            .into_iter()
            .filter(|g| matches(g))
            .count()
    } else if query.top.unwrap_or(false) {
        rt.snapshot.subgroups(None).count()
    } else {
        rt.snapshot.groups().len()
    };
    Ok(Json(json!({ "count": count })))
}

pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<GroupRep>> {
    let admin = authorize(&app, &headers, &realm, Need::ViewUsers).await?;
    let rt = realm_or_404(&app, &realm)?;
    let group = group_or_404(&rt, &id)?;
    Ok(Json(group_rep(&rt, group, false, Some(&admin))))
}

pub async fn by_path(
    State(app): State<Arc<AppState>>,
    Path((realm, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<GroupRep>> {
    authorize(&app, &headers, &realm, Need::ViewUsers).await?;
    let rt = realm_or_404(&app, &realm)?;
    let path = format!("/{}", path.trim_start_matches('/'));
    let group = rt
        .snapshot
        .group_by_path(&path)
        .ok_or(ApiError::NotFound(PATH_NOT_FOUND))?;
    // Keycloak leaves the caller's rights out here (the differential suite shows it).
    Ok(Json(group_rep(&rt, group, false, None)))
}

/// Renames a group and replaces its attributes (each only when given).
pub async fn update(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let admin = authorize(&app, &headers, &realm, Need::ManageUsers).await?;
    let rt = realm_or_404(&app, &realm)?;
    let current = group_or_404(&rt, &id)?.clone();
    let rep: GroupRep = parse_json(&body)?;
    let mut group = current.clone();
    if rep.name.is_some() {
        group.name = valid_group_name(rep.name.as_deref())?;
    }
    if let Some(attributes) = &rep.attributes {
        group.attributes = attributes.clone();
    }
    let parent = group.parent_id.clone();
    if name_taken(&rt, parent.as_deref(), &group.name, &group.id) {
        return Err(sibling_conflict(parent.as_deref(), &group.name));
    }
    ensure_path_free(&rt, Some(&group.id), parent.as_deref(), &group.name)?;
    let group = approve_group(&admin, &rt, Some(&current), group)?;
    app.update_group(rt.id(), &group)
        .await
        .map_err(store_conflict(parent.as_deref(), &group.name))?;
    app.reload_parts(rt.id(), [RealmPart::Groups], random::now())
        .await?;
    Ok(no_content())
}

/// Deletes a group, the groups below it, and every membership of them.
pub async fn delete_group(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let admin = authorize(&app, &headers, &realm, Need::ManageUsers).await?;
    let rt = realm_or_404(&app, &realm)?;
    let group = group_or_404(&rt, &id)?;
    let removal = approve_group_removal(&admin, &rt, group)?;
    app.delete_groups(rt.id(), &removal).await?;
    app.reload_parts(rt.id(), [RealmPart::Groups], random::now())
        .await?;
    Ok(no_content())
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    search: Option<String>,
    #[serde(default, deserialize_with = "super::lenient_bool")]
    exact: Option<bool>,
    first: Option<i64>,
    max: Option<i64>,
    #[serde(default, deserialize_with = "super::lenient_bool")]
    brief_representation: Option<bool>,
}

/// The subgroups of a group, paged (full representations unless `briefRepresentation`).
pub async fn children(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Vec<GroupRep>>> {
    let admin = authorize(&app, &headers, &realm, Need::ViewUsers).await?;
    let rt = realm_or_404(&app, &realm)?;
    group_or_404(&rt, &id)?;
    let brief = query.brief_representation.unwrap_or(false);
    let matches = name_matcher(query.search.as_deref(), query.exact.unwrap_or(false));
    let reps: Vec<GroupRep> = rt
        .snapshot
        .subgroups(Some(&id))
        .filter(|g| matches(g))
        .map(|g| group_rep(&rt, g, brief, Some(&admin)))
        .collect();
    Ok(Json(page(reps, query.first, query.max)))
}

/// `POST /groups`: a new top-level group, or (with the `id` of an existing group) that group
/// moved to the top.
pub async fn create_top(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    place(&app, &headers, &realm, None, &body).await
}

/// `POST /groups/{id}/children`: a new subgroup, or an existing group moved under this one.
pub async fn create_child(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    place(&app, &headers, &realm, Some(&id), &body).await
}

async fn place(
    app: &AppState,
    headers: &HeaderMap,
    realm: &str,
    parent: Option<&str>,
    body: &[u8],
) -> ApiResult<Response> {
    let admin = authorize(app, headers, realm, Need::ManageUsers).await?;
    let rt = realm_or_404(app, realm)?;
    if let Some(parent) = parent {
        group_or_404(&rt, parent)?;
    }
    let rep: GroupRep = parse_json(body)?;
    let existing = rep.id.as_deref().filter(|id| !id.is_empty());
    if let Some(id) = existing {
        let current = group_or_404(&rt, id)?.clone();
        if parent.is_some_and(|p| rt.snapshot.would_loop(id, p)) {
            return Err(bad_request(
                "Cannot move group to itself or one of its subgroups",
            ));
        }
        if name_taken(&rt, parent, &current.name, id) {
            return Err(sibling_conflict(parent, &current.name));
        }
        ensure_path_free(&rt, Some(id), parent, &current.name)?;
        if rt.snapshot.group_depth(parent) + rt.snapshot.group_height(id) > MAX_GROUP_DEPTH {
            return Err(too_deep());
        }
        let mut group = current.clone();
        group.parent_id = parent.map(str::to_owned);
        let group = approve_group(&admin, &rt, Some(&current), group)?;
        app.update_group(rt.id(), &group)
            .await
            .map_err(store_conflict(parent, &group.name))?;
        app.reload_parts(rt.id(), [RealmPart::Groups], random::now())
            .await?;
        return Ok(no_content());
    }
    let name = valid_group_name(rep.name.as_deref())?;
    if name_taken(&rt, parent, &name, "") {
        return Err(sibling_conflict(parent, &name));
    }
    ensure_path_free(&rt, None, parent, &name)?;
    if rt.snapshot.group_depth(parent) + 1 > MAX_GROUP_DEPTH {
        return Err(too_deep());
    }
    let group = Group {
        id: random::uuid(),
        name: name.clone(),
        parent_id: parent.map(str::to_owned),
        attributes: rep.attributes.clone().unwrap_or_default(),
        role_ids: Vec::new(),
    };
    let group = approve_group(&admin, &rt, None, group)?;
    app.insert_group(rt.id(), &group)
        .await
        .map_err(store_conflict(parent, &name))?;
    app.reload_parts(rt.id(), [RealmPart::Groups], random::now())
        .await?;
    let location = format!("{}/admin/realms/{realm}/groups/{}", app.base_url, group.id);
    // Keycloak answers a new subgroup with its representation (read from the rebuilt
    // snapshot, which knows its path), a new top-level group without.
    let fresh = realm_or_404(app, realm)?;
    match fresh.snapshot.group(&group.id).filter(|_| parent.is_some()) {
        Some(stored) => {
            let mut rep = group_rep(&fresh, stored, false, Some(&admin));
            rep.sub_group_count = None;
            let mut response = Json(rep).into_response();
            *response.status_mut() = axum::http::StatusCode::CREATED;
            if let Ok(value) = axum::http::HeaderValue::from_str(&location) {
                response
                    .headers_mut()
                    .insert(axum::http::header::LOCATION, value);
            }
            Ok(response)
        }
        None => Ok(created(location)),
    }
}

/// The direct members of a group, ordered by username.
pub async fn members(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Vec<UserRep>>> {
    authorize(&app, &headers, &realm, Need::ViewUsers).await?;
    let rt = realm_or_404(&app, &realm)?;
    group_or_404(&rt, &id)?;
    let users: Vec<UserRep> = app
        .users_of_realm(rt.id())
        .await?
        .iter()
        .filter(|u| u.groups.contains(&id))
        .map(super::users::to_rep)
        .collect();
    Ok(Json(page(
        users,
        query.first,
        Some(query.max.unwrap_or(DEFAULT_MAX)),
    )))
}

// Membership.

/// A user's groups, ordered by path (brief unless `briefRepresentation=false`).
pub async fn user_groups(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Vec<GroupRep>>> {
    authorize(&app, &headers, &realm, Need::ViewUsers).await?;
    let rt = realm_or_404(&app, &realm)?;
    let user = user_or_404(&app, &rt, &id).await?;
    let brief = query.brief_representation.unwrap_or(true);
    let matches = name_matcher(query.search.as_deref(), query.exact.unwrap_or(false));
    let mut groups: Vec<&Group> = user
        .groups
        .iter()
        .filter_map(|id| rt.snapshot.group(id))
        .filter(|g| matches(g))
        .collect();
    groups.sort_by(|a, b| {
        rt.snapshot
            .group_path(&a.id)
            .cmp(&rt.snapshot.group_path(&b.id))
    });
    groups.dedup_by(|a, b| a.id == b.id);
    // Keycloak lists a user's groups without the caller's rights or subgroup counts.
    let reps = groups
        .into_iter()
        .map(|g| GroupRep {
            sub_group_count: None,
            ..group_rep(&rt, g, brief, None)
        })
        .collect();
    Ok(Json(page(reps, query.first, query.max)))
}

pub async fn user_group_count(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> ApiResult<Json<Value>> {
    authorize(&app, &headers, &realm, Need::ViewUsers).await?;
    let rt = realm_or_404(&app, &realm)?;
    let user = user_or_404(&app, &rt, &id).await?;
    let matches = name_matcher(query.search.as_deref(), false);
    let count = rt
        .snapshot
        .groups()
        .into_iter()
        .filter(|g| user.groups.contains(&g.id) && matches(g))
        .count();
    Ok(Json(json!({ "count": count })))
}

pub async fn join(
    State(app): State<Arc<AppState>>,
    Path((realm, id, group)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    change_membership(&app, &headers, (&realm, &id, &group), true).await
}

pub async fn leave(
    State(app): State<Arc<AppState>>,
    Path((realm, id, group)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    change_membership(&app, &headers, (&realm, &id, &group), false).await
}

/// Joins or leaves a group. The user must be one the caller may act on (a user holding
/// roles the caller could not grant is out of its reach, and leaving a group takes roles
/// away); joining hands out the group's roles and those of every group above it, which the
/// caller must be able to grant.
async fn change_membership(
    app: &AppState,
    headers: &HeaderMap,
    (realm, user_id, group_id): (&str, &str, &str),
    join: bool,
) -> ApiResult<Response> {
    let admin = authorize(app, headers, realm, Need::ManageUsers).await?;
    let rt = realm_or_404(app, realm)?;
    let before = user_or_404(app, &rt, user_id).await?;
    if rt.snapshot.group(group_id).is_none() {
        return Err(ApiError::NotFound("Group not found"));
    }
    let member = before.groups.iter().any(|g| g == group_id);
    if member == join {
        return Ok(no_content());
    }
    ensure_may_act_as(&admin, &rt, &before)?;
    let mut user = before.clone();
    if join {
        user.groups.push(group_id.to_owned());
    } else {
        user.groups.retain(|g| g != group_id);
    }
    let user = approve_user(&admin, &rt, Some(&before), user)?;
    app.update_user(rt.id(), &user).await?;
    Ok(no_content())
}
