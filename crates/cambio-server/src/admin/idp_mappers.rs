//! Identity provider mappers imported with a Keycloak realm (`identityProviderMappers`): kept
//! as Keycloak exported them, served read-only at
//! `/admin/realms/{realm}/identity-provider/instances/{alias}/mappers`, and exported again.
//! Cambio applies none of them: its providers map claims and roles through their `cambio.*`
//! settings (`cambio.rolesClaim`, `cambio.roleMappings`, ...), which an administrator sets
//! after the move; the import report says so for each mapper.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::Value;

use super::{Need, authorize, realm_or_404};
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, decode};

/// The store kind of imported identity provider mappers.
pub const KIND_PROVIDER_MAPPER: &str = "idp-mapper";

/// What the import report says of a kept mapper.
pub const NOT_APPLIED: &str = "kept and exported, but not applied: Cambio maps an identity \
     provider's claims and roles with its cambio.* settings (cambio.rolesClaim, \
     cambio.roleMappings)";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/admin/realms/{realm}/identity-provider/instances/{alias}/mappers",
            get(list),
        )
        .route(
            "/admin/realms/{realm}/identity-provider/instances/{alias}/mappers/{id}",
            get(get_one),
        )
}

/// Every kept mapper of a realm.
pub async fn all(app: &AppState, realm_id: &str) -> cambio_store::StoreResult<Vec<Value>> {
    app.store
        .list_objects(realm_id, KIND_PROVIDER_MAPPER)
        .await?
        .iter()
        .map(decode)
        .collect()
}

async fn of_provider(
    app: &AppState,
    headers: &HeaderMap,
    realm: &str,
    alias: &str,
) -> ApiResult<Vec<Value>> {
    authorize(app, headers, realm, Need::ViewRealm).await?;
    let rt = realm_or_404(app, realm)?;
    if rt.snapshot.provider(alias).is_none() {
        return Err(ApiError::NotFound("Could not find identity provider"));
    }
    Ok(all(app, rt.id())
        .await?
        .into_iter()
        .filter(|m| m["identityProviderAlias"] == alias)
        .collect())
}

pub async fn list(
    State(app): State<Arc<AppState>>,
    Path((realm, alias)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<Value>>> {
    Ok(Json(of_provider(&app, &headers, &realm, &alias).await?))
}

pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Path((realm, alias, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    of_provider(&app, &headers, &realm, &alias)
        .await?
        .into_iter()
        .find(|m| m["id"] == id.as_str())
        .map(Json)
        .ok_or(ApiError::NotFound("Could not find mapper"))
}
