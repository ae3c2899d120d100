//! Fine-grained permissions: a client's management permissions and the `realm-management`
//! client's authorization resource server (scopes, resources, policies, scope permissions),
//! in the shapes Keycloak's admin clients send and read.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cambio_core::model::Client;
use cambio_core::permissions::{
    AuthzPolicy, DecisionStrategy, Logic, MANAGEMENT_SCOPES, client_permission_name,
    client_resource_name,
};
use cambio_proto::admin::ManagementPermissionRep;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::authz_imported as imported;
use super::{Need, authorize, bad_request, conflict, no_content, page, parse_json, realm_or_404};
use crate::bootstrap::REALM_MANAGEMENT;
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::state::{
    AppState, KIND_AUTHZ_POLICY, KIND_AUTHZ_RESOURCE, KIND_AUTHZ_SCOPE, RealmPart, RealmRuntime,
    decode, object,
};

pub fn routes() -> Router<Arc<AppState>> {
    let base = "/admin/realms/{realm}/clients/{id}/authz/resource-server";
    Router::new()
        .route(
            "/admin/realms/{realm}/clients/{id}/management/permissions",
            get(get_management).put(set_management).post(set_management),
        )
        .route(
            base,
            get(get_resource_server).put(super::authz_kept::update_resource_server),
        )
        .route(
            &format!("{base}/settings"),
            get(super::authz_kept::export_settings),
        )
        .route(
            &format!("{base}/import"),
            post(super::authz_kept::import_settings),
        )
        .route(
            &format!("{base}/scope"),
            get(list_scopes).post(super::authz_kept::refuse_item_write),
        )
        .route(
            &format!("{base}/scope/{{scope}}"),
            get(get_scope)
                .put(super::authz_kept::refuse_item_write_by_id)
                .delete(super::authz_kept::refuse_item_write_by_id),
        )
        .route(
            &format!("{base}/resource"),
            get(list_resources).post(super::authz_kept::refuse_item_write),
        )
        .route(
            &format!("{base}/resource/{{resource}}"),
            get(get_resource)
                .put(super::authz_kept::refuse_item_write_by_id)
                .delete(super::authz_kept::refuse_item_write_by_id),
        )
        .route(
            &format!("{base}/policy"),
            get(list_policies).post(create_policy),
        )
        .route(&format!("{base}/policy/search"), get(search_policy))
        .route(
            &format!("{base}/policy/{{kind}}"),
            get(get_policy_or_list_type)
                .post(create_typed_policy)
                .put(update_policy_by_id)
                .delete(delete_policy_by_id),
        )
        .route(
            &format!("{base}/policy/{{kind}}/{{pid}}"),
            get(get_typed).put(update_typed).delete(delete_typed),
        )
        .route(
            &format!("{base}/permission"),
            get(list_permissions).post(create_policy),
        )
        .route(&format!("{base}/permission/search"), get(search_policy))
        .route(
            &format!("{base}/permission/{{kind}}"),
            get(get_policy_or_list_type)
                .post(create_typed_policy)
                .put(update_policy_by_id)
                .delete(delete_policy_by_id),
        )
        .route(
            &format!("{base}/permission/{{kind}}/{{pid}}"),
            get(get_typed).put(update_typed).delete(delete_typed),
        )
}

/// Keycloak's policy types; a path segment that is none of these is a policy id.
const POLICY_TYPES: &[&str] = &[
    "aggregate",
    "client",
    "client-scope",
    "group",
    "js",
    "regex",
    "resource",
    "role",
    "scope",
    "time",
    "user",
];

/// An authorization scope of the `realm-management` resource server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthzScope {
    pub id: String,
    pub name: String,
}

/// A protected resource (one per client with management permissions enabled).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthzResource {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub scopes: Vec<String>,
}

/// The `realm-management` client: the only resource server Cambio has.
fn resource_server(rt: &RealmRuntime, id: &str) -> ApiResult<Arc<Client>> {
    rt.snapshot
        .client(id)
        .filter(|c| c.client_id == REALM_MANAGEMENT)
        .cloned()
        .ok_or(ApiError::NotFound("Could not find client"))
}

/// The resource server a policy or permission is written to: `realm-management`. Another
/// client's kept settings answer that they change through their import (see `authz_kept`).
async fn writable_resource_server(
    app: &AppState,
    rt: &RealmRuntime,
    id: &str,
) -> ApiResult<Arc<Client>> {
    match resource_server(rt, id) {
        Ok(client) => Ok(client),
        Err(not_found) => match imported::settings(app, rt, id).await? {
            Some(_) => Err(super::authz_kept::item_writes_refused()),
            None => Err(not_found),
        },
    }
}

/// The resource server's scopes, created on first use with ids that then stay stable.
pub(super) async fn scopes(app: &AppState, realm_id: &str) -> ApiResult<Vec<AuthzScope>> {
    let mut found: Vec<AuthzScope> = app
        .store
        .list_objects(realm_id, KIND_AUTHZ_SCOPE)
        .await?
        .iter()
        .map(decode)
        .collect::<Result<_, _>>()?;
    for name in MANAGEMENT_SCOPES {
        if !found.iter().any(|s| s.name == *name) {
            let scope = new_scope(name);
            match app
                .store
                .insert_object(&object(
                    realm_id,
                    KIND_AUTHZ_SCOPE,
                    &scope.id,
                    &scope.name,
                    &scope,
                )?)
                .await
            {
                Ok(()) => found.push(scope),
                // Another request created it meanwhile: read it back.
                Err(cambio_store::StoreError::Conflict(_)) => {
                    if let Some(obj) = app
                        .store
                        .find_object(realm_id, KIND_AUTHZ_SCOPE, name)
                        .await?
                    {
                        found.push(decode(&obj)?);
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

async fn policies(app: &AppState, realm_id: &str) -> ApiResult<Vec<AuthzPolicy>> {
    Ok(app
        .store
        .list_objects(realm_id, KIND_AUTHZ_POLICY)
        .await?
        .iter()
        .map(decode)
        .collect::<Result<_, _>>()?)
}

async fn find_policy(app: &AppState, realm_id: &str, pid: &str) -> ApiResult<AuthzPolicy> {
    let object = app
        .store
        .get_object(realm_id, KIND_AUTHZ_POLICY, pid)
        .await?
        .ok_or(ApiError::NotFound("Could not find policy"))?;
    Ok(decode(&object)?)
}

fn logic_str(logic: Logic) -> &'static str {
    match logic {
        Logic::Positive => "POSITIVE",
        Logic::Negative => "NEGATIVE",
    }
}

fn strategy_str(strategy: DecisionStrategy) -> &'static str {
    match strategy {
        DecisionStrategy::Unanimous => "UNANIMOUS",
        DecisionStrategy::Affirmative => "AFFIRMATIVE",
        DecisionStrategy::Consensus => "CONSENSUS",
    }
}

/// Keycloak's `PolicyRepresentation` (and `ScopePermissionRepresentation`).
/// Which representation of a policy an endpoint answers with. Keycloak's differ by endpoint,
/// and admin tools read each the way Keycloak writes it (the differential suite compares them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PolicyView {
    /// Lists, search, `policy/{id}`, `associatedPolicies`: the settings in `config` (a client
    /// policy's clients as a JSON string there), `config` left out when empty.
    Generic,
    /// `GET policy/{type}/{id}`: typed fields (a client policy's `clients`), no `config`; a
    /// permission names no resources, scopes or policies here (its sub-resources do).
    Typed,
    /// The answer to a create: the typed representation with what was associated.
    Created,
}

fn policy_rep(policy: &AuthzPolicy, view: PolicyView) -> Value {
    let mut rep = json!({
        "id": policy.id,
        "name": policy.name,
        "type": policy.policy_type,
        "logic": logic_str(policy.logic),
        "decisionStrategy": strategy_str(policy.decision_strategy),
    });
    let Some(map) = rep.as_object_mut() else {
        return rep;
    };
    if let Some(d) = &policy.description {
        map.insert("description".into(), json!(d));
    }
    if view == PolicyView::Generic {
        let mut config: BTreeMap<String, String> = policy.config.clone();
        if policy.policy_type == "client" {
            config.insert(
                "clients".into(),
                serde_json::to_string(&policy.clients).unwrap_or_default(),
            );
        }
        if !config.is_empty() {
            map.insert("config".into(), json!(config));
        }
        return rep;
    }
    if policy.policy_type == "client" {
        map.insert("clients".into(), json!(policy.clients));
    }
    if policy.policy_type == "aggregate" || (view == PolicyView::Created && policy.is_permission())
    {
        map.insert("policies".into(), json!(policy.policies));
    }
    if view == PolicyView::Created && policy.is_permission() {
        map.insert("resources".into(), json!(policy.resources));
        map.insert("scopes".into(), json!(policy.scopes));
    }
    rep
}

/// A policy or permission as clients send it: `clients` may come top-level (python-keycloak,
/// the npm admin client) or in `config` as a list or a JSON string (Keycloak's own form).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyInput {
    id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    #[serde(rename = "type")]
    policy_type: Option<String>,
    logic: Option<String>,
    decision_strategy: Option<String>,
    clients: Option<Vec<String>>,
    resources: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
    policies: Option<Vec<String>>,
    config: Option<BTreeMap<String, Value>>,
}

/// Ids of existing objects, given as ids or names (Keycloak accepts both for policies).
fn resolve_ids(given: &[String], known: &[(String, String)], what: &str) -> ApiResult<Vec<String>> {
    given
        .iter()
        .map(|g| {
            known
                .iter()
                .find(|(id, name)| id == g || name == g)
                .map(|(id, _)| id.clone())
                .ok_or_else(|| bad_request(format!("{what} [{g}] does not exist")))
        })
        .collect()
}

async fn apply_input(
    app: &AppState,
    rt: &RealmRuntime,
    policy: &mut AuthzPolicy,
    input: PolicyInput,
) -> ApiResult<()> {
    if let Some(name) = input.name {
        if name.trim().is_empty() {
            return Err(bad_request("Policy name must not be empty"));
        }
        policy.name = name;
    }
    if let Some(d) = input.description {
        policy.description = Some(d);
    }
    if let Some(logic) = input.logic {
        policy.logic = match logic.as_str() {
            "POSITIVE" => Logic::Positive,
            "NEGATIVE" => Logic::Negative,
            _ => return Err(bad_request(format!("Invalid logic: {logic}"))),
        };
    }
    if let Some(strategy) = input.decision_strategy {
        policy.decision_strategy = match strategy.as_str() {
            "UNANIMOUS" => DecisionStrategy::Unanimous,
            "AFFIRMATIVE" => DecisionStrategy::Affirmative,
            "CONSENSUS" => DecisionStrategy::Consensus,
            _ => {
                return Err(bad_request(format!(
                    "Invalid decision strategy: {strategy}"
                )));
            }
        };
    }
    let mut config = input.config.unwrap_or_default();
    let config_clients = match config.remove("clients") {
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        Some(Value::String(s)) => Some(
            serde_json::from_str::<Vec<String>>(&s).map_err(|_| bad_request("Invalid clients"))?,
        ),
        _ => None,
    };
    if let Some(clients) = input.clients.or(config_clients) {
        // Clients are named by uuid; a clientId is accepted too, as Keycloak does.
        let known: Vec<(String, String)> = rt
            .snapshot
            .clients()
            .map(|c| (c.id.clone(), c.client_id.clone()))
            .collect();
        policy.clients = resolve_ids(&clients, &known, "Client")?;
    }
    for (key, value) in config {
        if let Value::String(s) = value {
            policy.config.insert(key, s);
        }
    }
    if let Some(given) = input.policies {
        let known: Vec<(String, String)> = policies(app, rt.id())
            .await?
            .into_iter()
            .filter(|p| p.id != policy.id)
            .map(|p| (p.id, p.name))
            .collect();
        policy.policies = resolve_ids(&given, &known, "Policy")?;
    }
    if let Some(given) = input.scopes {
        let known: Vec<(String, String)> = scopes(app, rt.id())
            .await?
            .into_iter()
            .map(|s| (s.id, s.name))
            .collect();
        policy.scopes = resolve_ids(&given, &known, "Scope")?;
    }
    if let Some(given) = input.resources {
        let known: Vec<(String, String)> = app
            .store
            .list_objects(rt.id(), KIND_AUTHZ_RESOURCE)
            .await?
            .into_iter()
            .map(|o| (o.id, o.name))
            .collect();
        policy.resources = resolve_ids(&given, &known, "Resource")?;
    }
    Ok(())
}

async fn save_new(app: &AppState, rt: &RealmRuntime, policy: &AuthzPolicy) -> ApiResult<()> {
    let obj = object(rt.id(), KIND_AUTHZ_POLICY, &policy.id, &policy.name, policy)?;
    app.store.insert_object(&obj).await.map_err(|e| match e {
        cambio_store::StoreError::Conflict(_) => {
            conflict(format!("Policy with name [{}] already exists", policy.name))
        }
        other => other.into(),
    })?;
    app.reload_parts(rt.id(), [RealmPart::Permissions], random::now())
        .await?;
    Ok(())
}

async fn create(
    app: &AppState,
    realm: &str,
    id: &str,
    headers: &HeaderMap,
    kind: Option<String>,
    body: &[u8],
) -> ApiResult<Response> {
    authorize(app, headers, realm, Need::ManageAuthorization).await?;
    let rt = realm_or_404(app, realm)?;
    writable_resource_server(app, &rt, id).await?;
    let input: PolicyInput = parse_json(body)?;
    let policy_type = kind
        .or_else(|| input.policy_type.clone())
        .ok_or_else(|| bad_request("Policy type is required"))?;
    if input.name.is_none() {
        return Err(bad_request("Policy name is required"));
    }
    let mut policy = AuthzPolicy {
        id: input
            .id
            .clone()
            .filter(|i| !i.is_empty())
            .unwrap_or_else(random::uuid),
        policy_type,
        ..Default::default()
    };
    apply_input(app, &rt, &mut policy, input).await?;
    save_new(app, &rt, &policy).await?;
    Ok((
        StatusCode::CREATED,
        Json(policy_rep(&policy, PolicyView::Created)),
    )
        .into_response())
}

async fn update(
    app: &AppState,
    realm: &str,
    id: &str,
    headers: &HeaderMap,
    pid: &str,
    body: &[u8],
) -> ApiResult<Response> {
    authorize(app, headers, realm, Need::ManageAuthorization).await?;
    let rt = realm_or_404(app, realm)?;
    writable_resource_server(app, &rt, id).await?;
    let mut policy = find_policy(app, rt.id(), pid).await?;
    let input: PolicyInput = parse_json(body)?;
    apply_input(app, &rt, &mut policy, input).await?;
    let obj = object(
        rt.id(),
        KIND_AUTHZ_POLICY,
        &policy.id,
        &policy.name,
        &policy,
    )?;
    app.store.update_object(&obj).await.map_err(|e| match e {
        cambio_store::StoreError::Conflict(_) => {
            conflict(format!("Policy with name [{}] already exists", policy.name))
        }
        other => other.into(),
    })?;
    app.reload_parts(rt.id(), [RealmPart::Permissions], random::now())
        .await?;
    // Keycloak answers updates of policies and permissions with 201 and no body, and
    // python-keycloak expects exactly that.
    Ok(StatusCode::CREATED.into_response())
}

async fn delete(
    app: &AppState,
    realm: &str,
    id: &str,
    headers: &HeaderMap,
    pid: &str,
) -> ApiResult<Response> {
    authorize(app, headers, realm, Need::ManageAuthorization).await?;
    let rt = realm_or_404(app, realm)?;
    writable_resource_server(app, &rt, id).await?;
    find_policy(app, rt.id(), pid).await?;
    delete_policies(app, rt.id(), &[pid.to_owned()]).await?;
    app.reload_parts(rt.id(), [RealmPart::Permissions], random::now())
        .await?;
    Ok(no_content())
}

/// Deletes policies and removes them from every permission or aggregate that names them.
pub(super) async fn delete_policies(
    app: &AppState,
    realm_id: &str,
    ids: &[String],
) -> ApiResult<()> {
    for id in ids {
        app.store
            .delete_object(realm_id, KIND_AUTHZ_POLICY, id)
            .await?;
    }
    for mut other in policies(app, realm_id).await? {
        let before = other.policies.len();
        other.policies.retain(|p| !ids.contains(p));
        if other.policies.len() != before {
            app.store
                .update_object(&object(
                    realm_id,
                    KIND_AUTHZ_POLICY,
                    &other.id,
                    &other.name,
                    &other,
                )?)
                .await?;
        }
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    name: Option<String>,
    #[serde(rename = "type")]
    policy_type: Option<String>,
    permission: Option<String>,
    first: Option<i64>,
    max: Option<i64>,
}

async fn list(
    app: &AppState,
    realm: &str,
    id: &str,
    headers: &HeaderMap,
    query: ListQuery,
    only_permissions: Option<bool>,
    view: PolicyView,
) -> ApiResult<Json<Vec<Value>>> {
    authorize(app, headers, realm, Need::ViewAuthorization).await?;
    let rt = realm_or_404(app, realm)?;
    let wanted_permission = only_permissions.or(match query.permission.as_deref() {
        Some(p) if p.eq_ignore_ascii_case("true") => Some(true),
        Some(p) if p.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    });
    if let Some(stored) = imported::settings(app, &rt, id).await? {
        let mut reps = imported::list(&stored, "policies", query.name.as_deref());
        reps.retain(|p| wanted_permission.is_none_or(|w| imported::is_permission(p) == w));
        return Ok(Json(page(reps, query.first, query.max)));
    }
    resource_server(&rt, id)?;
    let mut found = policies(app, rt.id()).await?;
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found.retain(|p| {
        wanted_permission.is_none_or(|w| p.is_permission() == w)
            && query
                .policy_type
                .as_ref()
                .is_none_or(|t| &p.policy_type == t)
            && query
                .name
                .as_ref()
                .is_none_or(|n| p.name.to_lowercase().contains(&n.to_lowercase()))
    });
    let reps = found.iter().map(|p| policy_rep(p, view)).collect();
    Ok(Json(page(reps, query.first, query.max)))
}

pub async fn list_policies(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<Value>>> {
    list(
        &app,
        &realm,
        &id,
        &headers,
        query,
        None,
        PolicyView::Generic,
    )
    .await
}

pub async fn list_permissions(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<Value>>> {
    list(
        &app,
        &realm,
        &id,
        &headers,
        query,
        Some(true),
        PolicyView::Generic,
    )
    .await
}

pub async fn create_policy(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    create(&app, &realm, &id, &headers, None, &body).await
}

pub async fn create_typed_policy(
    State(app): State<Arc<AppState>>,
    Path((realm, id, kind)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    create(&app, &realm, &id, &headers, Some(kind), &body).await
}

/// `GET .../policy/search?name=` answers the policy, or 204 with no body when there is none.
pub async fn search_policy(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    authorize(&app, &headers, &realm, Need::ViewAuthorization).await?;
    let rt = realm_or_404(&app, &realm)?;
    resource_server(&rt, &id)?;
    let name = query.name.unwrap_or_default();
    let found = policies(&app, rt.id())
        .await?
        .into_iter()
        .find(|p| p.name == name);
    Ok(match found {
        Some(policy) => Json(policy_rep(&policy, PolicyView::Generic)).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// `GET .../policy/{x}`: a policy by id, or (when `x` is a type) the list of that type.
pub async fn get_policy_or_list_type(
    State(app): State<Arc<AppState>>,
    Path((realm, id, kind)): Path<(String, String, String)>,
    Query(mut query): Query<ListQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    authorize(&app, &headers, &realm, Need::ViewAuthorization).await?;
    let rt = realm_or_404(&app, &realm)?;
    resource_server(&rt, &id)?;
    if let Some(obj) = app
        .store
        .get_object(rt.id(), KIND_AUTHZ_POLICY, &kind)
        .await?
    {
        let policy: AuthzPolicy = decode(&obj)?;
        return Ok(Json(policy_rep(&policy, PolicyView::Generic)).into_response());
    }
    if !POLICY_TYPES.contains(&kind.as_str()) {
        return Err(ApiError::NotFound("Could not find policy"));
    }
    query.policy_type = Some(kind);
    Ok(
        list(&app, &realm, &id, &headers, query, None, PolicyView::Typed)
            .await?
            .into_response(),
    )
}

pub async fn update_policy_by_id(
    State(app): State<Arc<AppState>>,
    Path((realm, id, pid)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    update(&app, &realm, &id, &headers, &pid, &body).await
}

pub async fn delete_policy_by_id(
    State(app): State<Arc<AppState>>,
    Path((realm, id, pid)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    delete(&app, &realm, &id, &headers, &pid).await
}

/// `GET .../policy/{type}/{id}` and the sub-resources `associatedPolicies`, `resources`,
/// `scopes` of `.../policy/{id}/...`.
pub async fn get_typed(
    State(app): State<Arc<AppState>>,
    Path((realm, id, first, second)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&app, &headers, &realm, Need::ViewAuthorization).await?;
    let rt = realm_or_404(&app, &realm)?;
    resource_server(&rt, &id)?;
    match second.as_str() {
        "associatedPolicies" => {
            let policy = find_policy(&app, rt.id(), &first).await?;
            let all = policies(&app, rt.id()).await?;
            let reps: Vec<Value> = all
                .iter()
                .filter(|p| policy.policies.contains(&p.id))
                .map(|p| policy_rep(p, PolicyView::Generic))
                .collect();
            Ok(Json(json!(reps)))
        }
        "scopes" => {
            let policy = find_policy(&app, rt.id(), &first).await?;
            let reps: Vec<Value> = scopes(&app, rt.id())
                .await?
                .into_iter()
                .filter(|s| policy.scopes.contains(&s.id))
                .map(|s| json!({"id": s.id, "name": s.name}))
                .collect();
            Ok(Json(json!(reps)))
        }
        "resources" => {
            let policy = find_policy(&app, rt.id(), &first).await?;
            let mut reps = Vec::new();
            for rid in &policy.resources {
                if let Some(obj) = app
                    .store
                    .get_object(rt.id(), KIND_AUTHZ_RESOURCE, rid)
                    .await?
                {
                    let r: AuthzResource = decode(&obj)?;
                    reps.push(json!({"_id": r.id, "name": r.name}));
                }
            }
            Ok(Json(json!(reps)))
        }
        _ => {
            let policy = find_policy(&app, rt.id(), &second).await?;
            if policy.policy_type != first {
                return Err(ApiError::NotFound("Could not find policy"));
            }
            Ok(Json(policy_rep(&policy, PolicyView::Typed)))
        }
    }
}

pub async fn update_typed(
    State(app): State<Arc<AppState>>,
    Path((realm, id, _kind, pid)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    update(&app, &realm, &id, &headers, &pid, &body).await
}

pub async fn delete_typed(
    State(app): State<Arc<AppState>>,
    Path((realm, id, _kind, pid)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    delete(&app, &realm, &id, &headers, &pid).await
}

pub async fn get_resource_server(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&app, &headers, &realm, Need::ViewAuthorization).await?;
    let rt = realm_or_404(&app, &realm)?;
    if let (Some(stored), Some(client)) = (
        imported::settings(&app, &rt, &id).await?,
        rt.snapshot.client(&id),
    ) {
        return Ok(Json(imported::resource_server(
            &stored,
            &id,
            &client.client_id,
        )));
    }
    let client = resource_server(&rt, &id)?;
    Ok(Json(json!({
        "id": client.id,
        "clientId": client.id,
        "name": client.client_id,
        "allowRemoteResourceManagement": false,
        "policyEnforcementMode": "ENFORCING",
        "decisionStrategy": "UNANIMOUS",
    })))
}

#[derive(Debug, Default, Deserialize)]
pub struct NameQuery {
    name: Option<String>,
    first: Option<i64>,
    max: Option<i64>,
}

pub async fn list_scopes(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    Query(query): Query<NameQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<Value>>> {
    authorize(&app, &headers, &realm, Need::ViewAuthorization).await?;
    let rt = realm_or_404(&app, &realm)?;
    if let Some(stored) = imported::settings(&app, &rt, &id).await? {
        let reps = imported::list(&stored, "scopes", query.name.as_deref());
        return Ok(Json(page(reps, query.first, query.max)));
    }
    resource_server(&rt, &id)?;
    let reps = scopes(&app, rt.id())
        .await?
        .into_iter()
        .filter(|s| {
            query
                .name
                .as_ref()
                .is_none_or(|n| s.name.contains(n.as_str()))
        })
        .map(|s| json!({"id": s.id, "name": s.name}))
        .collect();
    Ok(Json(page(reps, query.first, query.max)))
}

pub async fn get_scope(
    State(app): State<Arc<AppState>>,
    Path((realm, id, scope)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&app, &headers, &realm, Need::ViewAuthorization).await?;
    let rt = realm_or_404(&app, &realm)?;
    resource_server(&rt, &id)?;
    scopes(&app, rt.id())
        .await?
        .into_iter()
        .find(|s| s.id == scope)
        .map(|s| Json(json!({"id": s.id, "name": s.name})))
        .ok_or(ApiError::NotFound("Could not find scope"))
}

fn resource_rep(r: &AuthzResource, scopes: &[AuthzScope], owner: &str) -> Value {
    let scope_reps: Vec<Value> = scopes
        .iter()
        .filter(|s| r.scopes.contains(&s.id))
        .map(|s| json!({"id": s.id, "name": s.name}))
        .collect();
    // Every resource here belongs to the resource server itself, `realm-management`.
    json!({"_id": r.id, "name": r.name, "type": r.resource_type, "scopes": scope_reps,
           "ownerManagedAccess": false, "uris": [], "attributes": {},
           "owner": {"id": owner, "name": "realm-management"}})
}

pub async fn list_resources(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    Query(query): Query<NameQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<Value>>> {
    authorize(&app, &headers, &realm, Need::ViewAuthorization).await?;
    let rt = realm_or_404(&app, &realm)?;
    if let Some(stored) = imported::settings(&app, &rt, &id).await? {
        let reps = imported::list(&stored, "resources", query.name.as_deref());
        return Ok(Json(page(reps, query.first, query.max)));
    }
    resource_server(&rt, &id)?;
    let all_scopes = scopes(&app, rt.id()).await?;
    let mut reps = Vec::new();
    for obj in app.store.list_objects(rt.id(), KIND_AUTHZ_RESOURCE).await? {
        let r: AuthzResource = decode(&obj)?;
        if query
            .name
            .as_ref()
            .is_none_or(|n| r.name.contains(n.as_str()))
        {
            reps.push(resource_rep(&r, &all_scopes, &id));
        }
    }
    Ok(Json(page(reps, query.first, query.max)))
}

pub async fn get_resource(
    State(app): State<Arc<AppState>>,
    Path((realm, id, resource)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&app, &headers, &realm, Need::ViewAuthorization).await?;
    let rt = realm_or_404(&app, &realm)?;
    resource_server(&rt, &id)?;
    let obj = app
        .store
        .get_object(rt.id(), KIND_AUTHZ_RESOURCE, &resource)
        .await?
        .ok_or(ApiError::NotFound("Could not find resource"))?;
    let r: AuthzResource = decode(&obj)?;
    Ok(Json(resource_rep(&r, &scopes(&app, rt.id()).await?, &id)))
}

/// The management permission state of a client.
async fn management_state(
    app: &AppState,
    rt: &RealmRuntime,
    client_uuid: &str,
) -> ApiResult<ManagementPermissionRep> {
    let Some(resource) = app
        .store
        .find_object(
            rt.id(),
            KIND_AUTHZ_RESOURCE,
            &client_resource_name(client_uuid),
        )
        .await?
    else {
        return Ok(ManagementPermissionRep::default());
    };
    let mut permissions = BTreeMap::new();
    for scope in MANAGEMENT_SCOPES {
        if let Some(obj) = app
            .store
            .find_object(
                rt.id(),
                KIND_AUTHZ_POLICY,
                &client_permission_name(scope, client_uuid),
            )
            .await?
        {
            permissions.insert((*scope).to_owned(), obj.id);
        }
    }
    Ok(ManagementPermissionRep {
        enabled: true,
        resource: Some(resource.id),
        scope_permissions: Some(permissions),
    })
}

pub async fn get_management(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<ManagementPermissionRep>> {
    authorize(&app, &headers, &realm, Need::ViewClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    rt.snapshot
        .client(&id)
        .ok_or(ApiError::NotFound("Could not find client"))?;
    Ok(Json(management_state(&app, &rt, &id).await?))
}

/// `PUT` (or `POST`, as some guides write it) `{"enabled": true|false}`.
pub async fn set_management(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ManagementPermissionRep>> {
    authorize(&app, &headers, &realm, Need::ManageAuthorization).await?;
    let rt = realm_or_404(&app, &realm)?;
    rt.snapshot
        .client(&id)
        .ok_or(ApiError::NotFound("Could not find client"))?;
    let wanted: ManagementPermissionRep = parse_json(&body)?;
    let current = management_state(&app, &rt, &id).await?;
    if wanted.enabled && !current.enabled {
        enable_management(&app, rt.id(), &id).await?;
    } else if !wanted.enabled && current.enabled {
        remove_client_permissions(&app, rt.id(), &id).await?;
    }
    app.reload_parts(rt.id(), [RealmPart::Permissions], random::now())
        .await?;
    Ok(Json(management_state(&app, &rt, &id).await?))
}

/// The `realm-management` authorization scopes of a realm that has none yet (a realm being
/// imported), to be stored with it.
pub(crate) fn new_management_scopes() -> Vec<AuthzScope> {
    MANAGEMENT_SCOPES
        .iter()
        .map(|name| new_scope(name))
        .collect()
}

/// A scope of the resource server, with the id it keeps from then on.
fn new_scope(name: &str) -> AuthzScope {
    AuthzScope {
        id: random::uuid(),
        name: name.to_owned(),
    }
}

/// A client's management permissions: its resource, and one scope permission (without
/// policies, so denying) for each of `scopes`.
pub(crate) fn management_objects(
    client_uuid: &str,
    scopes: &[AuthzScope],
) -> (AuthzResource, Vec<AuthzPolicy>) {
    let resource = AuthzResource {
        id: random::uuid(),
        name: client_resource_name(client_uuid),
        resource_type: "Client".into(),
        scopes: scopes.iter().map(|s| s.id.clone()).collect(),
    };
    let permissions = scopes
        .iter()
        .map(|scope| AuthzPolicy {
            id: random::uuid(),
            name: client_permission_name(&scope.name, client_uuid),
            policy_type: "scope".into(),
            resources: vec![resource.id.clone()],
            scopes: vec![scope.id.clone()],
            ..Default::default()
        })
        .collect();
    (resource, permissions)
}

async fn enable_management(app: &AppState, realm_id: &str, client_uuid: &str) -> ApiResult<()> {
    let all_scopes = scopes(app, realm_id).await?;
    let (resource, permissions) = management_objects(client_uuid, &all_scopes);
    app.store
        .insert_object(&object(
            realm_id,
            KIND_AUTHZ_RESOURCE,
            &resource.id,
            &resource.name,
            &resource,
        )?)
        .await?;
    for permission in &permissions {
        app.store
            .insert_object(&object(
                realm_id,
                KIND_AUTHZ_POLICY,
                &permission.id,
                &permission.name,
                permission,
            )?)
            .await?;
    }
    Ok(())
}

/// Removes a client's resource and scope permissions (management permissions off, or the
/// client deleted).
pub async fn remove_client_permissions(
    app: &AppState,
    realm_id: &str,
    client_uuid: &str,
) -> ApiResult<()> {
    let mut ids = Vec::new();
    for scope in MANAGEMENT_SCOPES {
        if let Some(obj) = app
            .store
            .find_object(
                realm_id,
                KIND_AUTHZ_POLICY,
                &client_permission_name(scope, client_uuid),
            )
            .await?
        {
            ids.push(obj.id);
        }
    }
    delete_policies(app, realm_id, &ids).await?;
    if let Some(obj) = app
        .store
        .find_object(
            realm_id,
            KIND_AUTHZ_RESOURCE,
            &client_resource_name(client_uuid),
        )
        .await?
    {
        app.store
            .delete_object(realm_id, KIND_AUTHZ_RESOURCE, &obj.id)
            .await?;
        // Other permissions that named the resource keep existing without it, as in Keycloak.
        for mut other in policies(app, realm_id).await? {
            if other.resources.contains(&obj.id) {
                other.resources.retain(|r| *r != obj.id);
                app.store
                    .update_object(&object(
                        realm_id,
                        KIND_AUTHZ_POLICY,
                        &other.id,
                        &other.name,
                        &other,
                    )?)
                    .await?;
            }
        }
    }
    Ok(())
}

/// Forgets a deleted client everywhere in the authorization data: its own permissions and
/// resource, and its uuid in client policies (a policy left naming nobody is deleted).
/// Otherwise a client re-created with the same uuid would silently regain old permissions.
pub async fn forget_client(app: &AppState, realm_id: &str, client_uuid: &str) -> ApiResult<()> {
    remove_client_permissions(app, realm_id, client_uuid).await?;
    app.store
        .delete_object(realm_id, imported::KIND_AUTHZ_SETTINGS, client_uuid)
        .await?;
    let mut emptied = Vec::new();
    for mut policy in policies(app, realm_id).await? {
        if policy.policy_type == "client" && policy.clients.iter().any(|c| c == client_uuid) {
            policy.clients.retain(|c| c != client_uuid);
            if policy.clients.is_empty() {
                emptied.push(policy.id.clone());
            } else {
                app.store
                    .update_object(&object(
                        realm_id,
                        KIND_AUTHZ_POLICY,
                        &policy.id,
                        &policy.name,
                        &policy,
                    )?)
                    .await?;
            }
        }
    }
    delete_policies(app, realm_id, &emptied).await
}
