//! `/admin/realms/{realm}/clients`: clients, their secrets and service accounts.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use cambio_core::model::{ATTR_JWKS, Client, ClientAuthenticator, ProtocolMapper};
use cambio_core::redirect;
use cambio_proto::admin::{ClientRep, ProtocolMapperRep, UserRep};
use serde::Deserialize;
use serde_json::{Value, json};

use super::escalation::{approve_client, approve_user, ensure_may_act_as};
use super::{
    Admin, Need, authorize, bad_request, conflict, created, forbidden, no_content, page,
    parse_json, realm_or_404,
};
use crate::bootstrap::{MASTER, REALM_MANAGEMENT, service_account};
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::state::{AppState, KIND_CLIENT, KIND_ROLE, RealmPart, RealmRuntime};

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    client_id: Option<String>,
    search: Option<bool>,
    first: Option<i64>,
    max: Option<i64>,
}

/// The Keycloak representation of a client.
pub fn to_rep(client: &Client) -> ClientRep {
    ClientRep {
        id: Some(client.id.clone()),
        client_id: Some(client.client_id.clone()),
        name: client.name.clone(),
        description: client.description.clone(),
        enabled: Some(client.enabled),
        client_authenticator_type: Some(
            match client.client_authenticator_type {
                ClientAuthenticator::Secret => "client-secret",
                ClientAuthenticator::PrivateKeyJwt => "client-jwt",
            }
            .to_owned(),
        ),
        secret: if client.public_client {
            None
        } else {
            client.secret.clone()
        },
        redirect_uris: Some(client.redirect_uris.clone()),
        web_origins: Some(client.web_origins.clone()),
        bearer_only: Some(client.bearer_only),
        consent_required: Some(false),
        standard_flow_enabled: Some(client.standard_flow_enabled),
        implicit_flow_enabled: Some(false),
        direct_access_grants_enabled: Some(client.direct_access_grants_enabled),
        service_accounts_enabled: Some(client.service_accounts_enabled),
        // As Keycloak: absent while off, and no overrides of the authentication flows.
        authorization_services_enabled: None,
        authentication_flow_binding_overrides: Some(BTreeMap::new()),
        public_client: Some(client.public_client),
        frontchannel_logout: Some(false),
        protocol: Some("openid-connect".into()),
        attributes: Some(
            client
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        ),
        full_scope_allowed: Some(client.full_scope_allowed),
        default_client_scopes: Some(client.default_client_scopes.clone()),
        optional_client_scopes: Some(client.optional_client_scopes.clone()),
        // Keycloak leaves the member out when a client has no mappers of its own.
        protocol_mappers: (!client.protocol_mappers.is_empty()).then(|| {
            client
                .protocol_mappers
                .iter()
                .map(|m| ProtocolMapperRep {
                    id: Some(m.id.clone()),
                    name: m.name.clone(),
                    protocol: m.protocol.clone(),
                    protocol_mapper: m.protocol_mapper.clone(),
                    config: m.config.clone(),
                })
                .collect()
        }),
        not_before: Some(0),
        surrogate_auth_required: Some(false),
        always_display_in_console: Some(false),
        node_re_registration_timeout: Some(-1),
        access: Some(BTreeMap::from([
            ("view".to_owned(), true),
            ("configure".to_owned(), true),
            ("manage".to_owned(), true),
        ])),
        ..Default::default()
    }
}

/// Keycloak reads a redirect URI that starts with `/` as relative to the client's `rootUrl`,
/// or to the server's own base URL without one (its built-in `account` client has
/// `/realms/{realm}/account/*`). Cambio stores the absolute URI, so that matching only ever
/// compares absolute URIs; anything else is returned as given, for validation.
fn absolute_redirect_uri(uri: &str, root_url: Option<&str>, realm: &RealmRuntime) -> String {
    if !uri.starts_with('/') || uri.starts_with("//") {
        return uri.to_owned();
    }
    let server_base = realm
        .issuer()
        .strip_suffix(&format!("/realms/{}", realm.name()))
        .unwrap_or(realm.issuer());
    let base = root_url
        .filter(|root| root.starts_with("https://") || root.starts_with("http://"))
        .unwrap_or(server_base);
    format!("{}{uri}", base.trim_end_matches('/'))
}

/// Applies the fields a representation names to a client, validating them.
pub fn apply_rep(client: &mut Client, rep: &ClientRep, realm: &RealmRuntime) -> ApiResult<()> {
    if let Some(client_id) = &rep.client_id {
        if client_id.is_empty() || client_id.len() > 255 || client_id.chars().any(char::is_control)
        {
            return Err(bad_request("Invalid clientId"));
        }
        client.client_id = client_id.clone();
    }
    if let Some(v) = &rep.name {
        client.name = Some(v.clone());
    }
    if let Some(v) = &rep.description {
        client.description = Some(v.clone());
    }
    if let Some(v) = rep.enabled {
        client.enabled = v;
    }
    if let Some(kind) = &rep.client_authenticator_type {
        client.client_authenticator_type = match kind.as_str() {
            "client-secret" => ClientAuthenticator::Secret,
            "client-jwt" => ClientAuthenticator::PrivateKeyJwt,
            other => {
                return Err(bad_request(format!(
                    "Unsupported client authenticator: {other}"
                )));
            }
        };
    }
    if let Some(v) = &rep.secret {
        client.secret = Some(v.clone());
    }
    // Redirect URIs and web origins are checked when stored (RFC 9700 §2.1, §4.1.3): a code
    // can then only ever be sent where the registration clearly says.
    if let Some(v) = &rep.redirect_uris {
        let mut uris = Vec::with_capacity(v.len());
        for uri in v {
            let uri = absolute_redirect_uri(uri, rep.root_url.as_deref(), realm);
            redirect::check_registered(&uri)
                .map_err(|e| bad_request(format!("Invalid redirect URI {uri:?}: it {e}")))?;
            uris.push(uri);
        }
        client.redirect_uris = uris;
    }
    if let Some(v) = &rep.web_origins {
        for origin in v {
            redirect::check_web_origin(origin)
                .map_err(|e| bad_request(format!("Invalid web origin {origin:?}: it {e}")))?;
        }
        client.web_origins = v.clone();
    }
    if let Some(v) = rep.bearer_only {
        client.bearer_only = v;
    }
    if let Some(v) = rep.standard_flow_enabled {
        client.standard_flow_enabled = v;
    }
    if let Some(v) = rep.direct_access_grants_enabled {
        client.direct_access_grants_enabled = v;
    }
    if let Some(v) = rep.service_accounts_enabled {
        client.service_accounts_enabled = v;
    }
    if let Some(v) = rep.public_client {
        client.public_client = v;
    }
    if let Some(v) = rep.full_scope_allowed {
        client.full_scope_allowed = v;
    }
    if let Some(attributes) = &rep.attributes {
        for (name, value) in attributes {
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::Null => {
                    client.attributes.remove(name);
                    continue;
                }
                _ => return Err(bad_request(format!("Invalid value for attribute {name}"))),
            };
            client.attributes.insert(name.clone(), value);
        }
    }
    if let Some(uris) = client.attribute(redirect::ATTR_POST_LOGOUT_REDIRECT_URIS) {
        redirect::check_post_logout_attribute(uris)
            .map_err(|e| bad_request(format!("Invalid post logout redirect URI: it {e}")))?;
    }
    if let Some(jwks) = client.attribute(ATTR_JWKS) {
        cambio_jose::parse_jwks(jwks.as_bytes(), None)
            .map_err(|_| bad_request("Invalid jwks.string"))?;
    }
    for (scopes, given) in [
        (
            &mut client.default_client_scopes,
            &rep.default_client_scopes,
        ),
        (
            &mut client.optional_client_scopes,
            &rep.optional_client_scopes,
        ),
    ] {
        if let Some(given) = given {
            if let Some(unknown) = given
                .iter()
                .find(|s| realm.snapshot.client_scope(s).is_none())
            {
                return Err(bad_request(format!("Client scope {unknown} not found")));
            }
            *scopes = given.clone();
        }
    }
    if let Some(mappers) = &rep.protocol_mappers {
        client.protocol_mappers = mappers
            .iter()
            .map(|m| ProtocolMapper {
                id: m.id.clone().unwrap_or_else(random::uuid),
                name: m.name.clone(),
                protocol: if m.protocol.is_empty() {
                    "openid-connect".into()
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

/// The clients administrators sign in with: whoever may change them may lock every
/// administrator out (disable them, narrow their scope) or collect their codes (redirect URIs).
const ADMIN_SIGN_IN_CLIENTS: [&str; 3] = ["admin-cli", "security-admin-console", REALM_MANAGEMENT];

/// Refuses to let `admin` manage, or read the secret of, a client it could use to become more
/// than it is: one whose service account holds roles the caller could not grant (whoever holds
/// the client's credentials acts as that account), one of the clients administrators sign in
/// with unless the caller is `realm-admin`, and any client of `master` (where the superusers
/// sign in) unless the caller is a superuser.
pub(crate) async fn ensure_may_manage_client(
    app: &AppState,
    admin: &Admin,
    rt: &RealmRuntime,
    client: &Client,
) -> ApiResult<()> {
    if rt.name() == MASTER && !admin.superuser {
        return Err(forbidden());
    }
    if ADMIN_SIGN_IN_CLIENTS.contains(&client.client_id.as_str()) && !admin.has("realm-admin") {
        return Err(forbidden());
    }
    // Through the caches: a client list asks this of every client it shows.
    match app.cached_service_account(rt.id(), client).await? {
        Some(account) => ensure_may_act_as(admin, rt, &account),
        None => Ok(()),
    }
}

fn client_or_404(rt: &RealmRuntime, id: &str) -> ApiResult<Arc<Client>> {
    rt.snapshot
        .client(id)
        .cloned()
        .ok_or(ApiError::NotFound("Could not find client"))
}

pub async fn list(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<ClientRep>>> {
    let admin = authorize(&app, &headers, &realm, Need::ViewClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    let mut clients: Vec<&Arc<Client>> = rt.snapshot.clients().collect();
    clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    if let Some(wanted) = &query.client_id {
        if query.search.unwrap_or(false) {
            let wanted = wanted.to_lowercase();
            clients.retain(|c| c.client_id.to_lowercase().contains(&wanted));
        } else {
            clients.retain(|c| &c.client_id == wanted);
        }
    }
    let mut reps = Vec::new();
    for client in page(clients, query.first, query.max) {
        reps.push(shown(&app, &admin, &rt, client).await?);
    }
    Ok(Json(reps))
}

pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<ClientRep>> {
    let admin = authorize(&app, &headers, &realm, Need::ViewClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    let client = client_or_404(&rt, &id)?;
    Ok(Json(shown(&app, &admin, &rt, &client).await?))
}

/// A client as `admin` may see it: the secret only for a `view-clients` or `manage-clients`
/// holder who may also act as the client's service account (see [`ensure_may_manage_client`]);
/// `query-clients` never sees it.
async fn shown(
    app: &AppState,
    admin: &Admin,
    rt: &RealmRuntime,
    client: &Client,
) -> ApiResult<ClientRep> {
    let mut rep = to_rep(client);
    if rep.secret.is_some() {
        let may_read = (admin.has("view-clients") || admin.has("manage-clients"))
            && ensure_may_manage_client(app, admin, rt, client)
                .await
                .is_ok();
        if !may_read {
            rep.secret = None;
        }
    }
    Ok(rep)
}

pub async fn create(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let admin = authorize(&app, &headers, &realm, Need::ManageClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    let rep: ClientRep = parse_json(&body)?;
    let client_id = rep
        .client_id
        .clone()
        .ok_or_else(|| bad_request("clientId is required"))?;
    if rt.snapshot.client_by_client_id(&client_id).is_some() {
        return Err(conflict(format!("Client {client_id} already exists")));
    }
    let mut client = crate::bootstrap::new_client(&rt.snapshot.realm, &client_id);
    client.direct_access_grants_enabled = false;
    if let Some(id) = rep.id.clone().filter(|id| !id.is_empty()) {
        if rt.snapshot.client(&id).is_some() {
            return Err(conflict(format!("Client {id} already exists")));
        }
        client.id = id;
    }
    apply_rep(&mut client, &rep, &rt)?;
    if client.is_confidential() && client.secret.is_none() {
        client.secret = Some(random::token());
    }
    let now = random::now();
    client.created_at = now;
    let client = approve_client(&admin, &rt, None, client)?;
    app.insert_client(rt.id(), &client)
        .await
        .map_err(|e| match e {
            cambio_store::StoreError::Conflict(_) => {
                conflict(format!("Client {client_id} already exists"))
            }
            other => other.into(),
        })?;
    if client.service_accounts_enabled {
        let account = approve_user(&admin, &rt, None, service_account(&client, now))?;
        app.insert_user(rt.id(), &account).await?;
    }
    app.reload_client(rt.id(), &client.id).await?;
    Ok(created(format!(
        "{}/admin/realms/{realm}/clients/{}",
        app.base_url, client.id
    )))
}

pub async fn update(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let admin = authorize(&app, &headers, &realm, Need::ManageClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    let current = client_or_404(&rt, &id)?;
    ensure_may_manage_client(&app, &admin, &rt, &current).await?;
    let rep: ClientRep = parse_json(&body)?;
    let mut client = (*current).clone();
    apply_rep(&mut client, &rep, &rt)?;
    // Admin roles are read from `resource_access["realm-management"]`: renaming that client,
    // or another one to its name, would move administration.
    if current.client_id == REALM_MANAGEMENT && client.client_id != REALM_MANAGEMENT {
        return Err(bad_request("The realm-management client cannot be renamed"));
    }
    if let Some(other) = rt.snapshot.client_by_client_id(&client.client_id)
        && other.id != client.id
    {
        return Err(conflict(format!(
            "Client {} already exists",
            client.client_id
        )));
    }
    if client.is_confidential() && client.secret.is_none() {
        client.secret = Some(random::token());
    }
    // The service account follows the client's name; a taken name would leave it behind, found
    // by no lookup (and so by no guard), so the rename is refused before anything is written.
    if current.client_id != client.client_id
        && app
            .user_by_name(rt.id(), &format!("service-account-{}", client.client_id))
            .await?
            .is_some()
    {
        return Err(conflict(format!(
            "User service-account-{} already exists",
            client.client_id
        )));
    }
    let now = random::now();
    let client = approve_client(&admin, &rt, Some(&current), client)?;
    app.update_client(rt.id(), &client).await?;
    let account = app.service_account_of(rt.id(), &current).await?;
    match account {
        Some(account) if current.client_id != client.client_id => {
            let mut renamed = account.clone();
            renamed.username = format!("service-account-{}", client.client_id);
            let renamed = approve_user(&admin, &rt, Some(&account), renamed)?;
            app.update_user(rt.id(), &renamed).await?;
        }
        None if client.service_accounts_enabled => {
            let account = approve_user(&admin, &rt, None, service_account(&client, now))?;
            app.insert_user(rt.id(), &account).await?;
        }
        _ => {}
    }
    app.reload_client(rt.id(), &client.id).await?;
    Ok(no_content())
}

pub async fn delete(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let admin = authorize(&app, &headers, &realm, Need::ManageClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    let client = client_or_404(&rt, &id)?;
    ensure_may_manage_client(&app, &admin, &rt, &client).await?;
    if client.client_id == REALM_MANAGEMENT {
        return Err(bad_request("The realm-management client cannot be deleted"));
    }
    if let Some(account) = app.service_account_of(rt.id(), &client).await? {
        app.delete_user(rt.id(), &account.id).await?;
    }
    // The client, its roles and the permissions naming it go; roles of other clients that
    // hold its roles as composites, and scope mappings to them, are left (the snapshot ignores
    // ids of roles it does not have, as for any deleted role).
    let mut changed = vec![RealmPart::Client(client.id.clone()), RealmPart::Permissions];
    for role in rt
        .snapshot
        .roles()
        .filter(|r| r.client_id.as_deref() == Some(client.id.as_str()))
    {
        app.store
            .delete_object(rt.id(), KIND_ROLE, &role.id)
            .await?;
        changed.push(RealmPart::Role(role.id.clone()));
    }
    super::authz::forget_client(&app, rt.id(), &client.id).await?;
    app.store
        .delete_object(rt.id(), KIND_CLIENT, &client.id)
        .await?;
    app.reload_parts(rt.id(), changed, random::now()).await?;
    Ok(no_content())
}

fn secret_body(client: &Client) -> Json<Value> {
    Json(json!({"type": "secret", "value": client.secret}))
}

pub async fn get_secret(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let admin = authorize(&app, &headers, &realm, Need::ViewClients).await?;
    if !(admin.has("view-clients") || admin.has("manage-clients")) {
        return Err(forbidden());
    }
    let rt = realm_or_404(&app, &realm)?;
    let client = client_or_404(&rt, &id)?;
    ensure_may_manage_client(&app, &admin, &rt, &client).await?;
    Ok(secret_body(&client))
}

pub async fn regenerate_secret(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let admin = authorize(&app, &headers, &realm, Need::ManageClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    let current = client_or_404(&rt, &id)?;
    ensure_may_manage_client(&app, &admin, &rt, &current).await?;
    let mut client = (*current).clone();
    if !client.is_confidential() {
        return Err(bad_request("Public and bearer-only clients have no secret"));
    }
    client.secret = Some(random::token());
    let client = approve_client(&admin, &rt, Some(&current), client)?;
    app.update_client(rt.id(), &client).await?;
    app.reload_client(rt.id(), &client.id).await?;
    Ok(secret_body(&client))
}

pub async fn service_account_user(
    State(app): State<Arc<AppState>>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Json<UserRep>> {
    authorize(&app, &headers, &realm, Need::ViewClients).await?;
    let rt = realm_or_404(&app, &realm)?;
    let client = client_or_404(&rt, &id)?;
    let account = app
        .service_account_of(rt.id(), &client)
        .await?
        .filter(|_| client.service_accounts_enabled)
        .ok_or_else(|| bad_request("Service account not enabled for the client"))?;
    Ok(Json(super::users::to_rep(&account)))
}
