//! Changing the authorization settings kept from a Keycloak import (`authz_imported`): the
//! resource server's own fields (`PUT .../authz/resource-server`), the whole settings as
//! Keycloak exports them (`GET .../settings`) and Keycloak's settings import
//! (`POST .../import`), which merges resources, scopes and policies by name. Cambio evaluates
//! none of these settings; it keeps them so that they can be maintained here and carried back
//! to Keycloak. Single resources, scopes and policies are changed through the import, not one
//! by one: writing Keycloak's typed policy forms back into its export form is a conversion
//! Cambio does not make for policies it never evaluates.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value};

use super::authz_imported::{KIND_AUTHZ_SETTINGS, normalise, settings};
use super::{Need, authorize, bad_request, no_content, parse_json, realm_or_404};
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, RealmRuntime, object};

/// The resource server's own fields that `PUT` and the import change.
const SERVER_FIELDS: &[&str] = &[
    "allowRemoteResourceManagement",
    "policyEnforcementMode",
    "decisionStrategy",
];

/// What a write to one resource, scope, policy or permission of kept settings answers.
pub fn item_writes_refused() -> ApiError {
    ApiError::Admin {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: "Cambio keeps this client's authorization settings as Keycloak exported them \
                  and evaluates none of them; change them with POST \
                  .../authz/resource-server/import (merged by name) or PUT \
                  .../authz/resource-server"
            .to_owned(),
    }
}

/// `POST .../resource` and `.../scope`: refused. Kept settings change through their import;
/// `realm-management`'s resources and scopes are Cambio's own (one resource per client with
/// management permissions, and the fixed management scopes).
pub async fn refuse_item_write(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    refuse(&app, &realm, &id, &headers).await
}

/// `PUT` and `DELETE` of one resource or scope: refused, as [`refuse_item_write`].
pub async fn refuse_item_write_by_id(
    State(app): State<Arc<AppState>>,
    Path((realm, id, _item)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    refuse(&app, &realm, &id, &headers).await
}

async fn refuse(app: &AppState, realm: &str, id: &str, headers: &HeaderMap) -> ApiResult<Response> {
    authorize(app, headers, realm, Need::ManageAuthorization).await?;
    let rt = realm_or_404(app, realm)?;
    match rt.snapshot.client(id) {
        None => Err(ApiError::NotFound("Could not find client")),
        Some(client) if client.client_id == crate::bootstrap::REALM_MANAGEMENT => {
            Err(ApiError::Admin {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: "realm-management's resources and scopes are Cambio's own: a \
                          resource per client with management permissions, and the fixed \
                          management scopes"
                    .to_owned(),
            })
        }
        Some(_) if settings(app, &rt, id).await?.is_some() => Err(item_writes_refused()),
        Some(_) => Err(ApiError::NotFound("Could not find client")),
    }
}

/// A client other than `realm-management` (whose resource server is Cambio's own model), or
/// 404.
fn other_client<'a>(rt: &'a RealmRuntime, id: &str) -> ApiResult<&'a str> {
    match rt.snapshot.client(id) {
        Some(client) if client.client_id != crate::bootstrap::REALM_MANAGEMENT => {
            Ok(client.client_id.as_str())
        }
        Some(_) => Err(bad_request(
            "realm-management's permissions are Cambio's own: change them through the policy \
             and permission endpoints",
        )),
        None => Err(ApiError::NotFound("Could not find client")),
    }
}

/// `GET .../authz/resource-server/settings`: the kept settings as Keycloak exports them.
pub async fn export_settings(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&app, &headers, &realm, Need::ViewAuthorization).await?;
    let rt = realm_or_404(&app, &realm)?;
    other_client(&rt, &id)?;
    settings(&app, &rt, &id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("Could not find client"))
}

/// `PUT .../authz/resource-server`: the resource server's policy enforcement mode, decision
/// strategy and remote resource management.
pub async fn update_resource_server(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    authorize(&app, &headers, &realm, Need::ManageAuthorization).await?;
    let rt = realm_or_404(&app, &realm)?;
    other_client(&rt, &id)?;
    let Some(kept) = settings(&app, &rt, &id).await? else {
        return Err(ApiError::NotFound("Could not find client"));
    };
    let incoming: Value = parse_json(&body)?;
    let fields = incoming
        .as_object()
        .ok_or_else(|| bad_request("Invalid resource server: an object is expected"))?;
    // Only the resource server's own fields: its representation also lists resources and
    // policies, which this request does not change.
    let own: Map<String, Value> = fields
        .iter()
        .filter(|(name, _)| SERVER_FIELDS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let changed = merge(&kept, &Value::Object(own))?;
    save(&app, &rt, &id, &changed, true).await?;
    Ok(no_content())
}

/// `POST .../authz/resource-server/import`: Keycloak's settings import. Scopes, resources and
/// policies replace those of the same name (keeping their ids, so that what names them stays
/// valid) or are added; the resource server's fields are taken when given.
pub async fn import_settings(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    authorize(&app, &headers, &realm, Need::ManageAuthorization).await?;
    let rt = realm_or_404(&app, &realm)?;
    other_client(&rt, &id)?;
    let incoming: Value = parse_json(&body)?;
    let kept = settings(&app, &rt, &id).await?;
    let exists = kept.is_some();
    let merged = merge(
        &kept.unwrap_or_else(|| normalise(&Value::Object(Map::new()))),
        &incoming,
    )?;
    save(&app, &rt, &id, &normalise(&merged), exists).await?;
    Ok(no_content())
}

async fn save(
    app: &AppState,
    rt: &RealmRuntime,
    client_uuid: &str,
    settings: &Value,
    exists: bool,
) -> ApiResult<()> {
    let stored = object(
        rt.id(),
        KIND_AUTHZ_SETTINGS,
        client_uuid,
        client_uuid,
        settings,
    )?;
    if exists {
        app.store.update_object(&stored).await?;
    } else {
        app.store.insert_object(&stored).await?;
    }
    Ok(())
}

fn check_server_field(name: &str, value: &Value) -> ApiResult<()> {
    let valid = match name {
        "allowRemoteResourceManagement" => value.is_boolean(),
        "policyEnforcementMode" => matches!(
            value.as_str(),
            Some("ENFORCING" | "PERMISSIVE" | "DISABLED")
        ),
        _ => matches!(
            value.as_str(),
            Some("UNANIMOUS" | "AFFIRMATIVE" | "CONSENSUS")
        ),
    };
    if valid {
        Ok(())
    } else {
        Err(bad_request(format!("Invalid {name}: {value}")))
    }
}

/// `incoming` merged into `kept` by name, as Keycloak's settings import does.
pub fn merge(kept: &Value, incoming: &Value) -> ApiResult<Value> {
    let incoming = incoming
        .as_object()
        .ok_or_else(|| bad_request("Invalid authorization settings: an object is expected"))?;
    let mut merged = kept.clone();
    for name in SERVER_FIELDS {
        if let Some(value) = incoming.get(*name) {
            check_server_field(name, value)?;
            merged[*name] = value.clone();
        }
    }
    for (list, id_key) in [("scopes", "id"), ("resources", "_id"), ("policies", "id")] {
        let Some(items) = incoming.get(list) else {
            continue;
        };
        let items = items
            .as_array()
            .ok_or_else(|| bad_request(format!("Invalid {list}: an array is expected")))?;
        let target = merged
            .as_object_mut()
            .ok_or_else(|| bad_request("Invalid authorization settings"))?
            .entry(list)
            .or_insert_with(|| Value::Array(Vec::new()));
        let Some(target) = target.as_array_mut() else {
            return Err(bad_request(format!("Invalid {list}")));
        };
        for (at, item) in items.iter().enumerate() {
            let name = item
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| bad_request(format!("{list}[{at}]: a name is required")))?;
            let mut item = item.clone();
            match target.iter_mut().find(|t| t["name"] == name) {
                Some(existing) => {
                    if let Some(id) = existing.get(id_key).cloned() {
                        item[id_key] = id;
                    }
                    *existing = item;
                }
                None => target.push(item),
            }
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_import_merges_by_name_and_keeps_ids() {
        let kept = json!({
            "policyEnforcementMode": "ENFORCING",
            "resources": [{"_id": "r-1", "name": "Album", "uris": ["/album"]}],
            "policies": [{"id": "p-1", "name": "Owner", "type": "js"}]
        });
        let incoming = json!({
            "policyEnforcementMode": "PERMISSIVE",
            "resources": [{"name": "Album", "uris": ["/album/*"]}, {"name": "Photo"}],
            "scopes": [{"name": "view"}]
        });
        let merged = merge(&kept, &incoming).unwrap();
        assert_eq!(merged["policyEnforcementMode"], "PERMISSIVE");
        assert_eq!(
            merged["resources"],
            json!([{"_id": "r-1", "name": "Album", "uris": ["/album/*"]}, {"name": "Photo"}])
        );
        assert_eq!(merged["policies"], kept["policies"]);
        assert_eq!(merged["scopes"], json!([{"name": "view"}]));
        for bad in [
            json!([]),
            json!({"policyEnforcementMode": "LAX"}),
            json!({"resources": {"name": "x"}}),
            json!({"policies": [{"type": "js"}]}),
        ] {
            assert!(merge(&kept, &bad).is_err(), "{bad}");
        }
    }
}
