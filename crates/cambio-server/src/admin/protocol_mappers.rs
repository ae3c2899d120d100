//! A client scope's protocol mappers, at Keycloak's paths:
//! `/admin/realms/{realm}/client-scopes/{id}/protocol-mappers/models[/{mapper}]`.
//!
//! Like Keycloak, reading needs `view-clients` and changing needs `manage-clients` (client
//! scopes are managed with clients). Mappers of kinds Cambio does not implement are kept as
//! given and change no token; an audience mapper (`oidc-audience-mapper`) adds its client to
//! the `aud` of every token the scope is applied to.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use cambio_core::model::{ClientScope, ProtocolMapper};
use cambio_proto::admin::ProtocolMapperRep;

use super::roles::scope_by_id;
use super::{
    Need, authorize, bad_request, conflict, created, no_content, parse_json, realm_or_404,
};
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::state::{AppState, RealmPart};

const MAPPER_NOT_FOUND: &str = "Model not found";

/// The longest mapper name, type or setting accepted (Keycloak's columns hold 255).
const MAX_TEXT: usize = 255;
/// The most settings one mapper holds; Keycloak's own mappers have fewer than twenty.
const MAX_SETTINGS: usize = 64;

pub fn mapper_rep(mapper: &ProtocolMapper) -> ProtocolMapperRep {
    ProtocolMapperRep {
        id: Some(mapper.id.clone()),
        name: mapper.name.clone(),
        protocol: mapper.protocol.clone(),
        protocol_mapper: mapper.protocol_mapper.clone(),
        config: mapper.config.clone(),
    }
}

/// Checks a mapper as given: a name and a type, bounded settings, the scope's protocol.
fn checked(rep: &ProtocolMapperRep, scope: &ClientScope) -> ApiResult<ProtocolMapperRep> {
    if rep.name.trim().is_empty() {
        return Err(bad_request("Protocol mapper name is missing"));
    }
    if rep.protocol_mapper.is_empty() {
        return Err(bad_request("Protocol mapper type is missing"));
    }
    let too_long = [&rep.name, &rep.protocol, &rep.protocol_mapper]
        .into_iter()
        .chain(rep.config.keys())
        .any(|text| text.len() > MAX_TEXT);
    if too_long || rep.config.len() > MAX_SETTINGS || rep.config.values().any(|v| v.len() > 4096) {
        return Err(bad_request("Protocol mapper is too large"));
    }
    let protocol = if rep.protocol.is_empty() {
        scope.protocol.clone()
    } else {
        rep.protocol.clone()
    };
    if protocol != scope.protocol {
        return Err(bad_request(format!(
            "Protocol mapper of protocol {protocol} on a {} client scope",
            scope.protocol
        )));
    }
    Ok(ProtocolMapperRep {
        protocol,
        ..rep.clone()
    })
}

fn duplicate() -> ApiError {
    conflict("Protocol mapper exists with same name")
}

pub async fn list(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<ProtocolMapperRep>>> {
    authorize(&app, &headers, &realm, Need::ViewClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    let scope = scope_by_id(&rt, &id)?;
    Ok(Json(
        scope.protocol_mappers.iter().map(mapper_rep).collect(),
    ))
}

pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Path((realm, id, mapper)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<ProtocolMapperRep>> {
    authorize(&app, &headers, &realm, Need::ViewClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    let scope = scope_by_id(&rt, &id)?;
    scope
        .protocol_mappers
        .iter()
        .find(|m| m.id == mapper)
        .map(|m| Json(mapper_rep(m)))
        .ok_or(ApiError::NotFound(MAPPER_NOT_FOUND))
}

pub async fn create(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    authorize(&app, &headers, &realm, Need::ManageClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    let mut scope = scope_by_id(&rt, &id)?.clone();
    let rep = checked(&parse_json(&body)?, &scope)?;
    if scope
        .protocol_mappers
        .iter()
        .any(|m| m.name == rep.name && m.protocol == rep.protocol)
    {
        return Err(duplicate());
    }
    let mapper = ProtocolMapper {
        id: random::uuid(),
        name: rep.name,
        protocol: rep.protocol,
        protocol_mapper: rep.protocol_mapper,
        config: rep.config,
    };
    let mapper_id = mapper.id.clone();
    scope.protocol_mappers.push(mapper);
    app.replace_client_scope(rt.id(), &scope).await?;
    app.reload_parts(rt.id(), [RealmPart::Scope(scope.id.clone())], random::now())
        .await?;
    Ok(created(format!(
        "{}/admin/realms/{realm}/client-scopes/{id}/protocol-mappers/models/{mapper_id}",
        app.base_url
    )))
}

/// Replaces a mapper's name and settings; its type is fixed once created, as in Keycloak.
pub async fn update(
    State(app): State<Arc<AppState>>,
    Path((realm, id, mapper)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    authorize(&app, &headers, &realm, Need::ManageClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    let mut scope = scope_by_id(&rt, &id)?.clone();
    let given: ProtocolMapperRep = parse_json(&body)?;
    let at = scope
        .protocol_mappers
        .iter()
        .position(|m| m.id == mapper)
        .ok_or(ApiError::NotFound(MAPPER_NOT_FOUND))?;
    let current = &scope.protocol_mappers[at];
    let rep = checked(
        &ProtocolMapperRep {
            name: if given.name.is_empty() {
                current.name.clone()
            } else {
                given.name.clone()
            },
            protocol_mapper: current.protocol_mapper.clone(),
            ..given
        },
        &scope,
    )?;
    if scope
        .protocol_mappers
        .iter()
        .any(|m| m.id != mapper && m.name == rep.name && m.protocol == rep.protocol)
    {
        return Err(duplicate());
    }
    let stored = &mut scope.protocol_mappers[at];
    stored.name = rep.name;
    stored.protocol = rep.protocol;
    stored.config = rep.config;
    app.replace_client_scope(rt.id(), &scope).await?;
    app.reload_parts(rt.id(), [RealmPart::Scope(scope.id.clone())], random::now())
        .await?;
    Ok(no_content())
}

pub async fn delete(
    State(app): State<Arc<AppState>>,
    Path((realm, id, mapper)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    authorize(&app, &headers, &realm, Need::ManageClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    let mut scope = scope_by_id(&rt, &id)?.clone();
    let before = scope.protocol_mappers.len();
    scope.protocol_mappers.retain(|m| m.id != mapper);
    if scope.protocol_mappers.len() == before {
        return Err(ApiError::NotFound(MAPPER_NOT_FOUND));
    }
    app.replace_client_scope(rt.id(), &scope).await?;
    app.reload_parts(rt.id(), [RealmPart::Scope(scope.id.clone())], random::now())
        .await?;
    Ok(no_content())
}
