//! `/admin/realms/{realm}/users`: users, credentials, role mappings, sessions, federated
//! identities; and `DELETE /admin/realms/{realm}/sessions/{session}`.
//!
//! Users are read from the store, scoped to the realm of the path (never from the user cache,
//! whose entries are not tied to a realm). An administrator that is not a `master` superuser
//! may neither hand out administrative roles it does not hold (see `roles::may_grant`) nor
//! change, delete, re-password or link a user that holds such roles: taking over that user
//! would be the same escalation.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use cambio_core::model::{FederatedIdentity, User};
use cambio_proto::admin::{
    ClientMappingsRep, CredentialRep, FederatedIdentityRep, MappingsRep, RoleRep, UserRep,
    UserSessionRep,
};
use cambio_store::SessionRecord;
use serde::Deserialize;

use super::escalation::{approve_user, ensure_may_act_as};
use super::roles::{resolve_roles, role_reps};
use super::{
    Admin, Need, authorize, bad_request, conflict, created, no_content, page, parse_json,
    realm_or_404,
};
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::routes::token::end_session;
use crate::state::{AppState, FederatedLink, RealmRuntime};

const USER_NOT_FOUND: &str = "User not found";
const ROLE_NOT_FOUND: &str = "Role not found";
const CLIENT_NOT_FOUND: &str = "Client not found";
/// Keycloak's page size when `max` is not given.
const DEFAULT_MAX: i64 = 100;

pub fn routes() -> Router<Arc<AppState>> {
    let u = "/admin/realms/{realm}/users";
    let m = format!("{u}/{{id}}/role-mappings");
    Router::new()
        .route(u, get(list).post(create))
        .route(&format!("{u}/count"), get(count))
        .route(
            &format!("{u}/{{id}}"),
            get(get_one).put(update).delete(delete_user),
        )
        .route(&format!("{u}/{{id}}/reset-password"), put(reset_password))
        .route(&m, get(role_mappings))
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
        .route(&format!("{u}/{{id}}/sessions"), get(sessions))
        .route(
            &format!("{u}/{{id}}/offline-sessions/{{client}}"),
            get(offline_sessions),
        )
        .route(&format!("{u}/{{id}}/logout"), post(logout))
        .route(
            &format!("{u}/{{id}}/federated-identity"),
            get(federated_identities),
        )
        .route(
            &format!("{u}/{{id}}/federated-identity/{{provider}}"),
            post(link_identity).delete(unlink_identity),
        )
        .route(
            "/admin/realms/{realm}/sessions/{session}",
            delete(delete_session),
        )
}

/// The Keycloak representation of a user (never its password hash).
pub fn to_rep(user: &User) -> UserRep {
    UserRep {
        id: Some(user.id.clone()),
        username: Some(user.username.clone()),
        enabled: Some(user.enabled),
        email: user.email.clone(),
        email_verified: Some(user.email_verified),
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        attributes: (!user.attributes.is_empty()).then(|| user.attributes.clone()),
        created_timestamp: Some(user.created_timestamp),
        required_actions: Some(Vec::new()),
        service_account_client_id: user.service_account_client_id.clone(),
        federated_identities: (!user.federated_identities.is_empty()).then(|| {
            user.federated_identities
                .iter()
                .map(|f| FederatedIdentityRep {
                    identity_provider: Some(f.identity_provider.clone()),
                    user_id: Some(f.user_id.clone()),
                    user_name: Some(f.user_name.clone()),
                })
                .collect()
        }),
        totp: Some(false),
        not_before: Some(0),
        disableable_credential_types: Some(Vec::new()),
        ..Default::default()
    }
}

/// What the caller may do with a user, in Keycloak's `access` member.
fn access(admin: &Admin) -> BTreeMap<String, bool> {
    let manage = admin.has("manage-users");
    BTreeMap::from([
        ("view".to_owned(), true),
        ("manage".to_owned(), manage),
        ("mapRoles".to_owned(), manage),
        ("manageGroupMembership".to_owned(), manage),
        ("impersonate".to_owned(), false),
    ])
}

// Lookups, validation and guards.

async fn user_or_404(app: &AppState, rt: &RealmRuntime, id: &str) -> ApiResult<User> {
    app.user_of_realm(rt.id(), id)
        .await?
        .ok_or(ApiError::NotFound(USER_NOT_FOUND))
}

/// Refuses changes to a user who holds administrative roles the caller does not.
fn guard(admin: &Admin, rt: &RealmRuntime, user: &User) -> ApiResult<()> {
    ensure_may_act_as(admin, rt, user)
}

/// Keycloak's username rules: lowercased, at most 255 characters, no prohibited characters.
pub(crate) fn valid_username(raw: &str) -> ApiResult<String> {
    let name = raw.trim().to_lowercase();
    if name.is_empty() {
        return Err(bad_request("User name is missing"));
    }
    if name.chars().count() > 255 {
        return Err(bad_request("error-invalid-length"));
    }
    let prohibited = |c: char| {
        c.is_control() || c.is_whitespace() || "<>&\"'$%!#?§,;:*~/\\|^=[]{}()`".contains(c)
    };
    if name.chars().any(prohibited) {
        return Err(bad_request("error-username-invalid-character"));
    }
    Ok(name)
}

/// An email address, lowercased as Keycloak stores it; empty means none.
fn valid_email(raw: &str) -> ApiResult<Option<String>> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Ok(None);
    }
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if ok {
        Ok(Some(email))
    } else {
        Err(bad_request("error-invalid-email"))
    }
}

/// The new password among credentials (type `password`, or no type with a value).
fn password_in(credentials: Option<&Vec<CredentialRep>>) -> ApiResult<Option<String>> {
    let Some(credential) = credentials.into_iter().flatten().find(|c| {
        c.value.is_some() && c.credential_type.as_deref().is_none_or(|t| t == "password")
    }) else {
        return Ok(None);
    };
    let value = credential.value.clone().unwrap_or_default();
    if value.trim().is_empty() {
        return Err(bad_request("Empty password not allowed"));
    }
    Ok(Some(value))
}

/// Argon2 on the blocking pool.
pub(crate) async fn hash_password(password: String) -> ApiResult<String> {
    let hash = tokio::task::spawn_blocking(move || crate::passwords::hash(&password))
        .await
        .map_err(|_| ApiError::Unavailable)?;
    if hash.is_empty() {
        Err(ApiError::Unavailable)
    } else {
        Ok(hash)
    }
}

/// Applies the profile fields a representation names (not the username, not credentials).
pub(crate) fn apply_profile(user: &mut User, rep: &UserRep) -> ApiResult<()> {
    if let Some(email) = &rep.email {
        user.email = valid_email(email)?;
    }
    if let Some(v) = &rep.first_name {
        user.first_name = Some(v.clone()).filter(|v| !v.is_empty());
    }
    if let Some(v) = &rep.last_name {
        user.last_name = Some(v.clone()).filter(|v| !v.is_empty());
    }
    if let Some(v) = rep.enabled {
        user.enabled = v;
    }
    if let Some(v) = rep.email_verified {
        user.email_verified = v;
    }
    if let Some(attributes) = &rep.attributes {
        user.attributes = attributes.clone();
    }
    Ok(())
}

fn same_username() -> ApiError {
    conflict("User exists with same username")
}

/// 409 when another user of the realm has this email (Keycloak's default: no duplicates).
pub(crate) async fn check_email_free(
    app: &AppState,
    rt: &RealmRuntime,
    user: &User,
) -> ApiResult<()> {
    let Some(email) = &user.email else {
        return Ok(());
    };
    // An indexed lookup (`Store::find_users_by_email`): the check costs the same in a realm of
    // any size.
    let taken = app
        .store
        .find_users_by_email(rt.id(), email)
        .await?
        .iter()
        .any(|holder| holder.id != user.id);
    if taken {
        Err(conflict("User exists with same email"))
    } else {
        Ok(())
    }
}

/// Ends every session of a user, online and offline, in the store and in memory.
pub(crate) async fn end_user_sessions(
    app: &AppState,
    rt: &RealmRuntime,
    user_id: &str,
) -> ApiResult<()> {
    let now = random::now();
    for id in app
        .store
        .revoke_user_sessions(rt.id(), user_id, true, now)
        .await?
    {
        end_session(app, &id, now).await?;
    }
    Ok(())
}

// Listing and searching.

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    search: Option<String>,
    username: Option<String>,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    // Read as Keycloak reads them: python-keycloak's `get_user_id` sends `exact=True`.
    #[serde(default, deserialize_with = "super::lenient_bool")]
    exact: Option<bool>,
    #[serde(default, deserialize_with = "super::lenient_bool")]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "super::lenient_bool")]
    email_verified: Option<bool>,
    idp_alias: Option<String>,
    idp_user_id: Option<String>,
    /// Attribute filters, `key:value key2:value2`.
    q: Option<String>,
    first: Option<i64>,
    max: Option<i64>,
    #[allow(dead_code)]
    #[serde(default, deserialize_with = "super::lenient_bool")]
    brief_representation: Option<bool>,
}

/// `*` matches any run of characters; everything else literally (both sides lowercased).
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == text;
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Keycloak's `search`: every whitespace-separated term must match the username, email, first
/// or last name; `"term"` exactly, `a*b` as a pattern, a bare term as a prefix.
fn search_matches(user: &User, search: &str) -> bool {
    let fields = [
        Some(user.username.as_str()),
        user.email.as_deref(),
        user.first_name.as_deref(),
        user.last_name.as_deref(),
    ]
    .map(|f| f.map(str::to_lowercase));
    search.split_whitespace().all(|term| {
        let term = term.to_lowercase();
        if term == "*" {
            return true;
        }
        let quoted = term.len() >= 2 && term.starts_with('"') && term.ends_with('"');
        fields.iter().flatten().any(|field| {
            if quoted {
                field == &term[1..term.len() - 1]
            } else if term.contains('*') {
                glob(&term, field)
            } else {
                field.starts_with(&term)
            }
        })
    })
}

fn field_matches(value: Option<&str>, wanted: Option<&String>, exact: bool) -> bool {
    let Some(wanted) = wanted else {
        return true;
    };
    let value = value.unwrap_or("").to_lowercase();
    let wanted = wanted.to_lowercase();
    if exact {
        value == wanted
    } else {
        value.contains(&wanted)
    }
}

fn matches(user: &User, q: &ListQuery) -> bool {
    let exact = q.exact.unwrap_or(false);
    let by_field = q.username.is_some()
        || q.email.is_some()
        || q.first_name.is_some()
        || q.last_name.is_some();
    // Keycloak leaves service accounts out of plain lists and searches.
    if user.service_account_client_id.is_some() && !by_field {
        return false;
    }
    if let Some(search) = &q.search
        && !search_matches(user, search.trim())
    {
        return false;
    }
    let attributes_match = q.q.as_deref().is_none_or(|q| {
        q.split_whitespace().all(|pair| match pair.split_once(':') {
            Some((key, value)) => user
                .attributes
                .get(key)
                .is_some_and(|vs| vs.iter().any(|v| v == value)),
            None => true,
        })
    });
    let idp_match = (q.idp_alias.is_none() && q.idp_user_id.is_none())
        || user.federated_identities.iter().any(|f| {
            q.idp_alias
                .as_ref()
                .is_none_or(|a| a == &f.identity_provider)
                && q.idp_user_id.as_ref().is_none_or(|id| id == &f.user_id)
        });
    field_matches(Some(&user.username), q.username.as_ref(), exact)
        && field_matches(user.email.as_deref(), q.email.as_ref(), exact)
        && field_matches(user.first_name.as_deref(), q.first_name.as_ref(), exact)
        && field_matches(user.last_name.as_deref(), q.last_name.as_ref(), exact)
        && q.enabled.is_none_or(|e| user.enabled == e)
        && q.email_verified.is_none_or(|e| user.email_verified == e)
        && attributes_match
        && idp_match
}

pub async fn list(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<UserRep>>> {
    let admin = authorize(&app, &headers, &realm, Need::ViewUsers).await?;
    let rt = realm_or_404(&app, &realm)?;
    let access = access(&admin);
    let reps: Vec<UserRep> = app
        .users_of_realm(rt.id())
        .await?
        .iter()
        .filter(|u| matches(u, &query))
        .map(|user| UserRep {
            access: Some(access.clone()),
            ..to_rep(user)
        })
        .collect();
    Ok(Json(page(
        reps,
        query.first,
        Some(query.max.unwrap_or(DEFAULT_MAX)),
    )))
}

pub async fn count(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<usize>> {
    authorize(&app, &headers, &realm, Need::ViewUsers).await?;
    let rt = realm_or_404(&app, &realm)?;
    let users = app.users_of_realm(rt.id()).await?;
    Ok(Json(users.iter().filter(|u| matches(u, &query)).count()))
}

// One user.

/// Creates a user. As in Keycloak, a user is disabled unless `enabled` is true, and
/// `realmRoles`/`clientRoles` are ignored (map roles with the role-mapping endpoints). A
/// temporary password is stored like any other: Cambio has no required actions.
pub async fn create(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let admin = authorize(&app, &headers, &realm, Need::ManageUsers).await?;
    let rt = realm_or_404(&app, &realm)?;
    let rep: UserRep = parse_json(&body)?;
    let username = valid_username(rep.username.as_deref().unwrap_or(""))?;
    let now = random::now();
    let mut user = User {
        id: random::uuid(),
        username,
        enabled: false,
        created_timestamp: rep.created_timestamp.unwrap_or(now * 1000),
        ..Default::default()
    };
    apply_profile(&mut user, &rep)?;
    user.groups = super::groups::ids_of_paths(&rt, rep.groups.as_deref())?;
    let password = password_in(rep.credentials.as_ref())?;
    if app.user_by_name(rt.id(), &user.username).await?.is_some() {
        return Err(same_username());
    }
    check_email_free(&app, &rt, &user).await?;
    if let Some(password) = password {
        user.password_hash = Some(hash_password(password).await?);
    }
    let user = approve_user(&admin, &rt, None, user)?;
    app.insert_user(rt.id(), &user).await.map_err(|e| match e {
        cambio_store::StoreError::Conflict(_) => same_username(),
        other => other.into(),
    })?;
    Ok(created(format!(
        "{}/admin/realms/{realm}/users/{}",
        app.base_url, user.id
    )))
}

pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<UserRep>> {
    let admin = authorize(&app, &headers, &realm, Need::ViewUsers).await?;
    let rt = realm_or_404(&app, &realm)?;
    let user = user_or_404(&app, &rt, &id).await?;
    let mut rep = to_rep(&user);
    rep.access = Some(access(&admin));
    Ok(Json(rep))
}

/// Partial update. Disabling a user also ends its sessions, so that its tokens stop working
/// at once (Keycloak refuses a disabled user's tokens at introspection and refresh).
pub async fn update(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let admin = authorize(&app, &headers, &realm, Need::ManageUsers).await?;
    let rt = realm_or_404(&app, &realm)?;
    let current = user_or_404(&app, &rt, &id).await?;
    guard(&admin, &rt, &current)?;
    let rep: UserRep = parse_json(&body)?;
    let mut user = current.clone();
    if let Some(username) = &rep.username {
        let username = valid_username(username)?;
        if username != current.username {
            if current.service_account_client_id.is_some() {
                return Err(bad_request("Service account usernames cannot be changed"));
            }
            if app.user_by_name(rt.id(), &username).await?.is_some() {
                return Err(same_username());
            }
            user.username = username;
        }
    }
    apply_profile(&mut user, &rep)?;
    if user.email != current.email {
        check_email_free(&app, &rt, &user).await?;
    }
    if let Some(password) = password_in(rep.credentials.as_ref())? {
        user.password_hash = Some(hash_password(password).await?);
    }
    let user = approve_user(&admin, &rt, Some(&current), user)?;
    app.update_user(rt.id(), &user).await.map_err(|e| match e {
        cambio_store::StoreError::Conflict(_) => same_username(),
        other => other.into(),
    })?;
    if current.enabled && !user.enabled {
        end_user_sessions(&app, &rt, &user.id).await?;
    }
    Ok(no_content())
}

/// Deletes a user and ends all its sessions, offline ones included.
pub async fn delete_user(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let admin = authorize(&app, &headers, &realm, Need::ManageUsers).await?;
    let rt = realm_or_404(&app, &realm)?;
    let user = user_or_404(&app, &rt, &id).await?;
    guard(&admin, &rt, &user)?;
    end_user_sessions(&app, &rt, &user.id).await?;
    if !app.delete_user(rt.id(), &user.id).await? {
        return Err(ApiError::NotFound(USER_NOT_FOUND));
    }
    for link in &user.federated_identities {
        app.delete_federated_link(rt.id(), &user.id, &link.identity_provider)
            .await?;
    }
    Ok(no_content())
}

pub async fn reset_password(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let admin = authorize(&app, &headers, &realm, Need::ManageUsers).await?;
    let rt = realm_or_404(&app, &realm)?;
    let current = user_or_404(&app, &rt, &id).await?;
    guard(&admin, &rt, &current)?;
    let mut user = current.clone();
    let credential: CredentialRep = parse_json(&body)?;
    let Some(value) = credential.value else {
        return Err(bad_request("No password provided"));
    };
    if value.trim().is_empty() {
        return Err(bad_request("Empty password not allowed"));
    }
    user.password_hash = Some(hash_password(value).await?);
    let user = approve_user(&admin, &rt, Some(&current), user)?;
    app.update_user(rt.id(), &user).await?;
    Ok(no_content())
}

// Role mappings.

/// Authorizes, loads the realm and the user (and checks the client, when one is named).
async fn mapping_context(
    app: &AppState,
    headers: &HeaderMap,
    (realm, id): (&str, &str),
    client: Option<&str>,
    need: Need,
) -> ApiResult<(Admin, Arc<RealmRuntime>, User)> {
    let admin = authorize(app, headers, realm, need).await?;
    let rt = realm_or_404(app, realm)?;
    let user = user_or_404(app, &rt, id).await?;
    if let Some(client) = client
        && rt.snapshot.client(client).is_none()
    {
        return Err(ApiError::NotFound(CLIENT_NOT_FOUND));
    }
    Ok((admin, rt, user))
}

/// Role reps of the given ids that belong to `owner` (None: realm roles).
pub(crate) fn reps_of(
    rt: &RealmRuntime,
    ids: impl IntoIterator<Item = String>,
    owner: Option<&str>,
) -> Vec<RoleRep> {
    let ids: Vec<String> = ids.into_iter().collect();
    let roles = ids
        .iter()
        .filter_map(|id| rt.snapshot.role(id))
        .filter(|r| r.client_id.as_deref() == owner);
    role_reps(rt, roles, true)
}

/// Roles of `owner` the user does not hold, even through composites.
fn available(rt: &RealmRuntime, user: &User, owner: Option<&str>) -> Vec<RoleRep> {
    let held = rt.snapshot.effective_role_ids(user);
    let roles = rt
        .snapshot
        .roles()
        .filter(|r| r.client_id.as_deref() == owner && !held.contains(&r.id));
    role_reps(rt, roles, true)
}

/// Adds or removes mappings. Removing needs the same right as adding, as in Keycloak.
async fn change_mappings(
    app: &AppState,
    headers: &HeaderMap,
    path: (&str, &str),
    client: Option<&str>,
    body: &[u8],
    add: bool,
) -> ApiResult<Response> {
    let (admin, rt, mut user) =
        mapping_context(app, headers, path, client, Need::ManageUsers).await?;
    let reps: Vec<RoleRep> = parse_json(body)?;
    let ids = resolve_roles(&rt, &reps, Some(client), ROLE_NOT_FOUND)?;
    guard(&admin, &rt, &user)?;
    let before = user.clone();
    if add {
        for id in ids {
            if !user.role_ids.contains(&id) {
                user.role_ids.push(id);
            }
        }
    } else {
        user.role_ids.retain(|id| !ids.contains(id));
    }
    let user = approve_user(&admin, &rt, Some(&before), user)?;
    app.update_user(rt.id(), &user).await?;
    Ok(no_content())
}

pub async fn role_mappings(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<MappingsRep>> {
    let (_, rt, user) =
        mapping_context(&app, &headers, (&realm, &id), None, Need::ViewUsers).await?;
    Ok(Json(mappings_rep(&rt, &user.role_ids)))
}

/// Keycloak's summary of direct role mappings (a user's or a group's): realm roles, and each
/// client's roles under its `clientId`.
pub(crate) fn mappings_rep(rt: &RealmRuntime, role_ids: &[String]) -> MappingsRep {
    let realm_mappings = reps_of(rt, role_ids.iter().cloned(), None);
    let mut by_client: BTreeMap<String, ClientMappingsRep> = BTreeMap::new();
    for role in role_ids.iter().filter_map(|id| rt.snapshot.role(id)) {
        let Some(client) = role
            .client_id
            .as_deref()
            .and_then(|c| rt.snapshot.client(c))
        else {
            continue;
        };
        by_client
            .entry(client.client_id.clone())
            .or_insert_with(|| ClientMappingsRep {
                id: client.id.clone(),
                client: client.client_id.clone(),
                mappings: reps_of(rt, role_ids.iter().cloned(), Some(&client.id)),
            });
    }
    MappingsRep {
        realm_mappings: (!realm_mappings.is_empty()).then_some(realm_mappings),
        client_mappings: (!by_client.is_empty()).then_some(by_client),
    }
}

pub async fn realm_mappings(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    let (_, rt, user) =
        mapping_context(&app, &headers, (&realm, &id), None, Need::ViewUsers).await?;
    Ok(Json(reps_of(&rt, user.role_ids.iter().cloned(), None)))
}

pub async fn realm_composite(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    let (_, rt, user) =
        mapping_context(&app, &headers, (&realm, &id), None, Need::ViewUsers).await?;
    Ok(Json(reps_of(
        &rt,
        rt.snapshot.effective_role_ids(&user),
        None,
    )))
}

pub async fn realm_available(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    let (_, rt, user) =
        mapping_context(&app, &headers, (&realm, &id), None, Need::ViewUsers).await?;
    Ok(Json(available(&rt, &user, None)))
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
    let (_, rt, user) = mapping_context(
        &app,
        &headers,
        (&realm, &id),
        Some(&client),
        Need::ViewUsers,
    )
    .await?;
    Ok(Json(reps_of(
        &rt,
        user.role_ids.iter().cloned(),
        Some(&client),
    )))
}

pub async fn client_composite(
    State(app): State<Arc<AppState>>,
    Path((realm, id, client)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    let (_, rt, user) = mapping_context(
        &app,
        &headers,
        (&realm, &id),
        Some(&client),
        Need::ViewUsers,
    )
    .await?;
    Ok(Json(reps_of(
        &rt,
        rt.snapshot.effective_role_ids(&user),
        Some(&client),
    )))
}

pub async fn client_available(
    State(app): State<Arc<AppState>>,
    Path((realm, id, client)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<RoleRep>>> {
    let (_, rt, user) = mapping_context(
        &app,
        &headers,
        (&realm, &id),
        Some(&client),
        Need::ViewUsers,
    )
    .await?;
    Ok(Json(available(&rt, &user, Some(&client))))
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

// Sessions.

fn session_active(app: &AppState, session: &SessionRecord, now: u64) -> bool {
    session.revoked_at.is_none()
        && session.expires_at > now
        && !app.revocations.session_revoked(&session.id)
}

fn session_rep(rt: &RealmRuntime, user: &User, session: &SessionRecord) -> UserSessionRep {
    let clients = rt
        .snapshot
        .client(&session.client_id)
        .map(|c| BTreeMap::from([(c.id.clone(), c.client_id.clone())]))
        .unwrap_or_default();
    UserSessionRep {
        id: session.id.clone(),
        username: user.username.clone(),
        user_id: user.id.clone(),
        ip_address: String::new(),
        start: session.created_at * 1000,
        last_access: session.last_refresh * 1000,
        remember_me: false,
        clients,
    }
}

/// The user's active online sessions.
pub async fn sessions(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<UserSessionRep>>> {
    let (_, rt, user) =
        mapping_context(&app, &headers, (&realm, &id), None, Need::ViewUsers).await?;
    let now = random::now();
    let reps = app
        .store
        .list_user_sessions(rt.id(), &user.id)
        .await?
        .iter()
        .filter(|s| !s.offline && session_active(&app, s, now))
        .map(|s| session_rep(&rt, &user, s))
        .collect();
    Ok(Json(reps))
}

/// The user's active offline sessions started by one client.
pub async fn offline_sessions(
    State(app): State<Arc<AppState>>,
    Path((realm, id, client)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<UserSessionRep>>> {
    let (_, rt, user) = mapping_context(
        &app,
        &headers,
        (&realm, &id),
        Some(&client),
        Need::ViewUsers,
    )
    .await?;
    let now = random::now();
    let reps = app
        .store
        .list_user_sessions(rt.id(), &user.id)
        .await?
        .iter()
        .filter(|s| s.offline && s.client_id == client && session_active(&app, s, now))
        .map(|s| session_rep(&rt, &user, s))
        .collect();
    Ok(Json(reps))
}

/// Signs the user out everywhere. Keycloak removes the online sessions and sets the user's
/// "not before" to now, which also invalidates every token issued earlier, offline refresh
/// tokens included (the offline session records stay but cannot be used). Cambio has no
/// per-user "not before", so it gets the same effect by ending offline sessions too.
pub async fn logout(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (_, rt, user) =
        mapping_context(&app, &headers, (&realm, &id), None, Need::ManageUsers).await?;
    end_user_sessions(&app, &rt, &user.id).await?;
    Ok(no_content())
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SessionQuery {
    is_offline: Option<bool>,
}

/// Ends one session (an offline one only with `isOffline=true`, as in Keycloak).
pub async fn delete_session(
    State(app): State<Arc<AppState>>,
    Path((realm, session_id)): Path<(String, String)>,
    Query(query): Query<SessionQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    authorize(&app, &headers, &realm, Need::ManageUsers).await?;
    let rt = realm_or_404(&app, &realm)?;
    let now = random::now();
    let session = app
        .store
        .get_session(&session_id)
        .await?
        .filter(|s| s.realm_id == rt.id() && s.offline == query.is_offline.unwrap_or(false))
        .filter(|s| session_active(&app, s, now))
        .ok_or(ApiError::NotFound("Session not found"))?;
    end_session(&app, &session.id, now).await?;
    Ok(no_content())
}

// Federated identities.

pub async fn federated_identities(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<FederatedIdentityRep>>> {
    let (_, _, user) =
        mapping_context(&app, &headers, (&realm, &id), None, Need::ViewUsers).await?;
    Ok(Json(to_rep(&user).federated_identities.unwrap_or_default()))
}

pub async fn link_identity(
    State(app): State<Arc<AppState>>,
    Path((realm, id, provider)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let (admin, rt, current) =
        mapping_context(&app, &headers, (&realm, &id), None, Need::ManageUsers).await?;
    guard(&admin, &rt, &current)?;
    // A link to a provider that does not exist yet would let whoever registers that alias
    // later sign in as this user (Keycloak refuses it too).
    if rt.snapshot.provider(&provider).is_none() {
        return Err(ApiError::NotFound("Identity Provider not found"));
    }
    let mut user = current.clone();
    let rep: FederatedIdentityRep = parse_json(&body)?;
    let external_id = rep
        .user_id
        .clone()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad_request("userId is required"))?;
    if user
        .federated_identities
        .iter()
        .any(|f| f.identity_provider == provider)
    {
        return Err(conflict("User is already linked with provider"));
    }
    // The link object's unique name keeps one local user per external identity.
    let link = FederatedLink {
        user_id: user.id.clone(),
        identity_provider: provider.clone(),
        external_subject: external_id.clone(),
    };
    app.insert_federated_link(rt.id(), &link)
        .await
        .map_err(|e| match e {
            cambio_store::StoreError::Conflict(_) => conflict(format!(
                "Identity {external_id} of {provider} is already linked to a user"
            )),
            other => other.into(),
        })?;
    user.federated_identities.push(FederatedIdentity {
        identity_provider: provider.clone(),
        user_id: external_id.clone(),
        user_name: rep.user_name.unwrap_or(external_id),
    });
    let user = approve_user(&admin, &rt, Some(&current), user)?;
    if let Err(e) = app.update_user(rt.id(), &user).await {
        app.delete_federated_link(rt.id(), &user.id, &provider)
            .await?;
        return Err(e.into());
    }
    Ok(no_content())
}

pub async fn unlink_identity(
    State(app): State<Arc<AppState>>,
    Path((realm, id, provider)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (admin, rt, current) =
        mapping_context(&app, &headers, (&realm, &id), None, Need::ManageUsers).await?;
    guard(&admin, &rt, &current)?;
    let mut user = current.clone();
    let before = user.federated_identities.len();
    user.federated_identities
        .retain(|f| f.identity_provider != provider);
    if user.federated_identities.len() == before {
        return Err(ApiError::NotFound("Link not found"));
    }
    let user = approve_user(&admin, &rt, Some(&current), user)?;
    app.update_user(rt.id(), &user).await?;
    app.delete_federated_link(rt.id(), &user.id, &provider)
        .await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_search() {
        assert!(glob("*ali*", "alice"));
        assert!(glob("al*", "alice"));
        assert!(glob("*ce", "alice"));
        assert!(!glob("*bob*", "alice"));
        assert!(glob("a*i*e", "alice"));
        let user = User {
            username: "alice".into(),
            email: Some("alice@example.com".into()),
            last_name: Some("Liddell".into()),
            ..Default::default()
        };
        assert!(search_matches(&user, "ali"));
        assert!(search_matches(&user, "lidd"));
        assert!(!search_matches(&user, "ice"));
        assert!(search_matches(&user, "*ice*"));
        assert!(search_matches(&user, "\"alice\""));
        assert!(!search_matches(&user, "\"ali\""));
        assert!(search_matches(&user, "ali lid"));
    }

    #[test]
    fn usernames_and_emails() {
        assert_eq!(valid_username(" Bob ").ok(), Some("bob".to_owned()));
        assert!(valid_username("").is_err());
        assert!(valid_username("a b").is_err());
        assert!(valid_username("a/b").is_err());
        assert_eq!(valid_email("A@B.c").ok(), Some(Some("a@b.c".to_owned())));
        assert_eq!(valid_email("").ok(), Some(None));
        assert!(valid_email("nope").is_err());
    }
}
