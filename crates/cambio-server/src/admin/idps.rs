//! `/admin/realms/{realm}/identity-provider/instances`: external identity providers, and
//! their token-exchange management permission.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use cambio_core::federation::{
    IdentityProvider, ProviderTrust, config_keys, idp_permission_name, idp_resource_name,
};
use cambio_core::model::User;
use cambio_core::permissions::{AuthzPolicy, TOKEN_EXCHANGE_SCOPE};
use cambio_proto::admin::ManagementPermissionRep;
use serde::Deserialize;
use serde_json::{Value, json};

use super::escalation::{approve_provider, approve_user, ensure_may_act_as};
use super::{
    Admin, Need, authorize, bad_request, conflict, created, no_content, parse_json, realm_or_404,
};
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::state::{
    AppState, FederatedLink, KIND_AUTHZ_POLICY, KIND_AUTHZ_RESOURCE, KIND_FEDERATED_LINK, KIND_IDP,
    RealmPart, RealmRuntime, decode, object,
};

pub fn routes() -> Router<Arc<AppState>> {
    let base = "/admin/realms/{realm}/identity-provider/instances";
    Router::new()
        .route(base, get(list).post(create))
        .route(
            &format!("{base}/{{alias}}"),
            get(get_one).put(update).delete(delete),
        )
        .route(
            &format!("{base}/{{alias}}/management/permissions"),
            get(get_management).put(set_management).post(set_management),
        )
}

/// `IdentityProviderRepresentation` as clients send it; Cambio's settings live in `config`
/// under `cambio.*` keys (see [`config_keys`]).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdpInput {
    alias: Option<String>,
    display_name: Option<String>,
    provider_id: Option<String>,
    enabled: Option<bool>,
    config: Option<BTreeMap<String, Value>>,
}

pub(crate) fn to_rep(idp: &IdentityProvider) -> Value {
    json!({
        "alias": idp.alias,
        "displayName": idp.display_name,
        "internalId": idp.internal_id,
        "providerId": idp.provider_id,
        "enabled": idp.enabled,
        "updateProfileFirstLoginMode": "on",
        "trustEmail": false,
        "storeToken": false,
        "addReadTokenRoleOnCreate": false,
        "authenticateByDefault": false,
        "linkOnly": false,
        "hideOnLogin": false,
        "config": idp.config,
    })
}

fn valid_alias(alias: &str) -> bool {
    !alias.is_empty()
        && alias.len() <= 64
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Applies a representation and checks the result is a provider Cambio can trust.
fn apply(app: &AppState, idp: &mut IdentityProvider, input: IdpInput) -> ApiResult<()> {
    if let Some(v) = input.display_name {
        idp.display_name = Some(v);
    }
    if let Some(v) = input.provider_id {
        if !matches!(v.as_str(), "oidc" | "keycloak-oidc") {
            return Err(bad_request(format!(
                "Unsupported providerId {v}: only oidc"
            )));
        }
        idp.provider_id = v;
    }
    if let Some(v) = input.enabled {
        idp.enabled = v;
    }
    if let Some(config) = input.config {
        for (key, value) in config {
            let value = match value {
                Value::String(s) => s,
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::Null => {
                    idp.config.remove(&key);
                    continue;
                }
                // An inline JWKS may come as a JSON object rather than a string.
                other if key == config_keys::JWKS => other.to_string(),
                _ => return Err(bad_request(format!("Invalid value for config.{key}"))),
            };
            idp.config.insert(key, value);
        }
    }
    let trust = ProviderTrust::from_provider(idp).map_err(bad_request)?;
    if let cambio_core::federation::KeySource::Url(url) = &trust.keys {
        crate::external_keys::check_url(url, app.external_keys.allows_http_loopback())
            .map_err(|e| bad_request(e.to_string()))?;
    }
    Ok(())
}

/// A provider of a realm import (`identityProviders[i]`), checked as the admin API checks
/// one; the error says why Cambio cannot use it.
pub(crate) fn from_import(app: &AppState, rep: &Value) -> Result<IdentityProvider, String> {
    let mut input: IdpInput =
        serde_json::from_value(rep.clone()).map_err(|e| format!("unreadable: {e}"))?;
    let alias = input
        .alias
        .take()
        .filter(|a| valid_alias(a))
        .ok_or("no valid alias")?;
    let internal_id = rep
        .get("internalId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map_or_else(random::uuid, str::to_owned);
    let mut idp = IdentityProvider {
        alias,
        internal_id,
        ..Default::default()
    };
    apply(app, &mut idp, input).map_err(|e| match e {
        ApiError::Admin { message, .. } => message,
        other => format!("{other:?}"),
    })?;
    Ok(idp)
}

fn find<'a>(idps: &'a [IdentityProvider], alias: &str) -> ApiResult<&'a IdentityProvider> {
    idps.iter()
        .find(|i| i.alias == alias)
        .ok_or(ApiError::NotFound("Could not find identity provider"))
}

pub(crate) async fn all(app: &AppState, rt: &RealmRuntime) -> ApiResult<Vec<IdentityProvider>> {
    Ok(app
        .store
        .list_objects(rt.id(), KIND_IDP)
        .await?
        .iter()
        .map(decode)
        .collect::<Result<_, _>>()?)
}

pub async fn list(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<Value>>> {
    authorize(&app, &headers, &realm, Need::ViewRealm).await?;
    let rt = realm_or_404(&app, &realm)?;
    Ok(Json(all(&app, &rt).await?.iter().map(to_rep).collect()))
}

pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Path((realm, alias)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&app, &headers, &realm, Need::ViewRealm).await?;
    let rt = realm_or_404(&app, &realm)?;
    let idps = all(&app, &rt).await?;
    Ok(Json(to_rep(find(&idps, &alias)?)))
}

pub async fn create(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let admin = authorize(&app, &headers, &realm, Need::ManageRealm).await?;
    let rt = realm_or_404(&app, &realm)?;
    let mut input: IdpInput = parse_json(&body)?;
    let alias = input
        .alias
        .take()
        .filter(|a| valid_alias(a))
        .ok_or_else(|| {
            bad_request("alias is required (letters, digits, '-', '_', '.'; at most 64)")
        })?;
    let mut idp = IdentityProvider {
        alias: alias.clone(),
        internal_id: random::uuid(),
        ..Default::default()
    };
    apply(&app, &mut idp, input)?;
    // Links made before the provider existed (an import, an older version) count as if the
    // provider had been re-pointed: the registrant must be allowed to act as each linked user.
    for user in linked_users(&app, &rt, &alias).await? {
        ensure_may_act_as(&admin, &rt, &user)?;
    }
    let idp = approve_provider(&admin, &rt, None, idp)?;
    app.insert_provider(rt.id(), &idp)
        .await
        .map_err(|e| match e {
            cambio_store::StoreError::Conflict(_) => {
                conflict(format!("Identity Provider {alias} already exists"))
            }
            other => other.into(),
        })?;
    app.reload_parts(rt.id(), [RealmPart::Providers], random::now())
        .await?;
    Ok(created(format!(
        "{}/admin/realms/{realm}/identity-provider/instances/{alias}",
        app.base_url
    )))
}

pub async fn update(
    State(app): State<Arc<AppState>>,
    Path((realm, alias)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let admin = authorize(&app, &headers, &realm, Need::ManageRealm).await?;
    let rt = realm_or_404(&app, &realm)?;
    let idps = all(&app, &rt).await?;
    let current = find(&idps, &alias)?;
    let mut idp = current.clone();
    let input: IdpInput = parse_json(&body)?;
    if input.alias.as_ref().is_some_and(|a| *a != alias) {
        return Err(bad_request(
            "The alias of an identity provider cannot be changed",
        ));
    }
    apply(&app, &mut idp, input)?;
    // Whoever decides which tokens the provider vouches for can sign in as every user linked
    // to it (by exchanging a token of its own making), so it must be allowed to act as each.
    for user in linked_users(&app, &rt, &alias).await? {
        ensure_may_act_as(&admin, &rt, &user)?;
    }
    let idp = approve_provider(&admin, &rt, Some(current), idp)?;
    app.update_provider(rt.id(), &idp).await?;
    app.reload_parts(rt.id(), [RealmPart::Providers], random::now())
        .await?;
    Ok(no_content())
}

pub async fn delete(
    State(app): State<Arc<AppState>>,
    Path((realm, alias)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let admin = authorize(&app, &headers, &realm, Need::ManageRealm).await?;
    let rt = realm_or_404(&app, &realm)?;
    let idps = all(&app, &rt).await?;
    let idp = find(&idps, &alias)?.clone();
    remove_permissions(&app, rt.id(), &idp.internal_id).await?;
    remove_links(&app, &admin, &rt, &idp.alias).await?;
    app.store
        .delete_object(rt.id(), KIND_IDP, &idp.internal_id)
        .await?;
    app.reload_parts(
        rt.id(),
        [RealmPart::Providers, RealmPart::Permissions],
        random::now(),
    )
    .await?;
    Ok(no_content())
}

/// The users linked to a provider.
pub(crate) async fn linked_users(
    app: &AppState,
    rt: &RealmRuntime,
    alias: &str,
) -> ApiResult<Vec<User>> {
    let mut users = Vec::new();
    for object in app.store.list_objects(rt.id(), KIND_FEDERATED_LINK).await? {
        let link: FederatedLink = decode(&object)?;
        if link.identity_provider == alias
            && let Some(user) = app.user_of_realm(rt.id(), &link.user_id).await?
        {
            users.push(user);
        }
    }
    Ok(users)
}

/// Removes every user's link to the provider, as Keycloak does: a provider registered later
/// under the same alias, possibly for another issuer, must not inherit them.
async fn remove_links(
    app: &AppState,
    admin: &Admin,
    rt: &RealmRuntime,
    alias: &str,
) -> ApiResult<()> {
    let realm_id = rt.id();
    for object in app
        .store
        .list_objects(realm_id, KIND_FEDERATED_LINK)
        .await?
    {
        let link: FederatedLink = decode(&object)?;
        if link.identity_provider != alias {
            continue;
        }
        if let Some(user) = app.user(realm_id, &link.user_id).await? {
            let mut unlinked = (*user).clone();
            unlinked
                .federated_identities
                .retain(|f| f.identity_provider != alias);
            let unlinked = approve_user(admin, rt, Some(&user), unlinked)?;
            app.update_user(realm_id, &unlinked).await?;
        }
        app.delete_federated_link(realm_id, &link.user_id, alias)
            .await?;
    }
    Ok(())
}

async fn management_state(
    app: &AppState,
    realm_id: &str,
    internal_id: &str,
) -> ApiResult<ManagementPermissionRep> {
    let Some(resource) = app
        .store
        .find_object(
            realm_id,
            KIND_AUTHZ_RESOURCE,
            &idp_resource_name(internal_id),
        )
        .await?
    else {
        return Ok(ManagementPermissionRep::default());
    };
    let mut permissions = BTreeMap::new();
    if let Some(p) = app
        .store
        .find_object(
            realm_id,
            KIND_AUTHZ_POLICY,
            &idp_permission_name(internal_id),
        )
        .await?
    {
        permissions.insert(TOKEN_EXCHANGE_SCOPE.to_owned(), p.id);
    }
    Ok(ManagementPermissionRep {
        enabled: true,
        resource: Some(resource.id),
        scope_permissions: Some(permissions),
    })
}

async fn remove_permissions(app: &AppState, realm_id: &str, internal_id: &str) -> ApiResult<()> {
    if let Some(p) = app
        .store
        .find_object(
            realm_id,
            KIND_AUTHZ_POLICY,
            &idp_permission_name(internal_id),
        )
        .await?
    {
        super::authz::delete_policies(app, realm_id, &[p.id]).await?;
    }
    if let Some(r) = app
        .store
        .find_object(
            realm_id,
            KIND_AUTHZ_RESOURCE,
            &idp_resource_name(internal_id),
        )
        .await?
    {
        app.store
            .delete_object(realm_id, KIND_AUTHZ_RESOURCE, &r.id)
            .await?;
    }
    Ok(())
}

pub async fn get_management(
    State(app): State<Arc<AppState>>,
    Path((realm, alias)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<ManagementPermissionRep>> {
    authorize(&app, &headers, &realm, Need::ViewRealm).await?;
    let rt = realm_or_404(&app, &realm)?;
    let idps = all(&app, &rt).await?;
    let idp = find(&idps, &alias)?;
    Ok(Json(
        management_state(&app, rt.id(), &idp.internal_id).await?,
    ))
}

/// `{"enabled": true}` creates the provider's resource and its `token-exchange` permission
/// (to be given policies through the authorization endpoints); `false` removes them.
pub async fn set_management(
    State(app): State<Arc<AppState>>,
    Path((realm, alias)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ManagementPermissionRep>> {
    authorize(&app, &headers, &realm, Need::ManageAuthorization).await?;
    let rt = realm_or_404(&app, &realm)?;
    let idps = all(&app, &rt).await?;
    let idp = find(&idps, &alias)?;
    let wanted: ManagementPermissionRep = parse_json(&body)?;
    let current = management_state(&app, rt.id(), &idp.internal_id).await?;
    if wanted.enabled && !current.enabled {
        let scope = super::authz::scopes(&app, rt.id())
            .await?
            .into_iter()
            .find(|s| s.name == TOKEN_EXCHANGE_SCOPE)
            .ok_or(ApiError::Unavailable)?;
        let resource = super::authz::AuthzResource {
            id: random::uuid(),
            name: idp_resource_name(&idp.internal_id),
            resource_type: "IdentityProvider".into(),
            scopes: vec![scope.id.clone()],
        };
        app.store
            .insert_object(&object(
                rt.id(),
                KIND_AUTHZ_RESOURCE,
                &resource.id,
                &resource.name,
                &resource,
            )?)
            .await?;
        let permission = AuthzPolicy {
            id: random::uuid(),
            name: idp_permission_name(&idp.internal_id),
            policy_type: "scope".into(),
            resources: vec![resource.id.clone()],
            scopes: vec![scope.id],
            ..Default::default()
        };
        app.store
            .insert_object(&object(
                rt.id(),
                KIND_AUTHZ_POLICY,
                &permission.id,
                &permission.name,
                &permission,
            )?)
            .await?;
    } else if !wanted.enabled && current.enabled {
        remove_permissions(&app, rt.id(), &idp.internal_id).await?;
    }
    app.reload_parts(rt.id(), [RealmPart::Permissions], random::now())
        .await?;
    Ok(Json(
        management_state(&app, rt.id(), &idp.internal_id).await?,
    ))
}
