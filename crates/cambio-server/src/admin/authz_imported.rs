//! Authorization settings imported with a Keycloak client (`clients[].authorizationSettings`:
//! resources, scopes, policies, permissions, decision strategy): kept as the data Keycloak
//! exported, served read-only by the admin API under the client's
//! `authz/resource-server` paths, and exported again. Cambio evaluates none of them (it has no
//! UMA or policy-enforcement endpoint; its own permissions are the `realm-management` token
//! exchange model), and the import report says so.

use serde_json::{Map, Value};

use crate::error::ApiResult;
use crate::random;
use crate::state::{AppState, RealmRuntime, decode, object};

/// The store kind of imported authorization settings, one object per client (by its id).
pub const KIND_AUTHZ_SETTINGS: &str = "authz-settings";

/// What the import report says of kept settings.
pub const NOT_EVALUATED: &str = "kept and served by the admin API (authz/resource-server), but \
     Cambio evaluates no UMA or client authorization policies";

/// Gives every resource, scope and policy an id, as Keycloak does on import (exports of
/// hand-written files often carry none), and fills the resources' scope ids.
pub fn normalise(settings: &Value) -> Value {
    let mut settings = settings.clone();
    let Some(object) = settings.as_object_mut() else {
        return settings;
    };
    // Keycloak's defaults for what the settings leave out.
    for (name, default) in [
        ("allowRemoteResourceManagement", Value::Bool(false)),
        ("policyEnforcementMode", Value::String("ENFORCING".into())),
        ("decisionStrategy", Value::String("UNANIMOUS".into())),
    ] {
        object.entry(name).or_insert(default);
    }
    for (list, key) in [("scopes", "id"), ("policies", "id"), ("resources", "_id")] {
        for item in object
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(item) = item.as_object_mut()
                && item
                    .get(key)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                item.insert(key.into(), Value::String(random::uuid()));
            }
        }
    }
    // Scopes named by resources but not listed exist in Keycloak after the import.
    let mut scopes: Vec<Value> = object
        .get("scopes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for resource in object
        .get_mut("resources")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        for scope in resource
            .get_mut("scopes")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(name) = scope.get("name").and_then(Value::as_str).map(str::to_owned) else {
                continue;
            };
            let id = match scopes.iter().find(|s| s["name"] == name.as_str()) {
                Some(known) => known["id"].clone(),
                None => {
                    let id = Value::String(random::uuid());
                    let mut fresh = Map::new();
                    fresh.insert("id".into(), id.clone());
                    fresh.insert("name".into(), Value::String(name));
                    scopes.push(Value::Object(fresh));
                    id
                }
            };
            if let Some(scope) = scope.as_object_mut() {
                scope.insert("id".into(), id);
            }
        }
    }
    object.insert("scopes".into(), Value::Array(scopes));
    settings
}

/// A client's imported settings as a stored object.
pub fn settings_object(
    realm_id: &str,
    client_uuid: &str,
    settings: &Value,
) -> cambio_store::StoreResult<cambio_store::Object> {
    object(
        realm_id,
        KIND_AUTHZ_SETTINGS,
        client_uuid,
        client_uuid,
        settings,
    )
}

/// A client's imported settings, if it has some.
pub async fn settings(
    app: &AppState,
    rt: &RealmRuntime,
    client_uuid: &str,
) -> ApiResult<Option<Value>> {
    if rt.snapshot.client(client_uuid).is_none() {
        return Ok(None);
    }
    match app
        .store
        .get_object(rt.id(), KIND_AUTHZ_SETTINGS, client_uuid)
        .await?
    {
        Some(found) => Ok(Some(decode(&found)?)),
        None => Ok(None),
    }
}

/// The resource server itself, as `GET .../authz/resource-server` shows it.
pub fn resource_server(settings: &Value, client_uuid: &str, client_id: &str) -> Value {
    let mut rep = settings.clone();
    if let Some(object) = rep.as_object_mut() {
        object.insert("id".into(), Value::String(client_uuid.to_owned()));
        object.insert("clientId".into(), Value::String(client_uuid.to_owned()));
        object.insert("name".into(), Value::String(client_id.to_owned()));
    }
    rep
}

/// One of the settings' lists (`resources`, `scopes`, `policies`), filtered by `name`.
pub fn list(settings: &Value, which: &str, name: Option<&str>) -> Vec<Value> {
    settings
        .get(which)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|item| {
            name.is_none_or(|wanted| {
                item.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.to_lowercase().contains(&wanted.to_lowercase()))
            })
        })
        .cloned()
        .collect()
}

/// Whether a policy is a permission (Keycloak's `resource` and `scope` types).
pub fn is_permission(policy: &Value) -> bool {
    matches!(
        policy.get("type").and_then(Value::as_str),
        Some("resource" | "scope")
    )
}
