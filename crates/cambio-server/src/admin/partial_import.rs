//! Keycloak's partial import (`POST /admin/realms/{realm}/partialImport`): realm roles, client
//! roles, clients, identity providers (with their mappers, kept as data) and users of a
//! `PartialImportRepresentation` added to an existing realm, with `ifResourceExists` `FAIL`
//! (the default: nothing is written when anything exists) or `SKIP`. Users keep their Keycloak
//! password hashes as a full import does. Every role mapping, composite, scope mapping and
//! provider role mapping passes the escalation guard as the matching admin request would; a
//! refusal stops the import at that entry, and what came before it stays, as after the same
//! sequence of admin requests. What is not imported or not kept (groups, `OVERWRITE`,
//! credentials Cambio cannot read, provider secrets, fields Cambio has no place for) is in the
//! answer's `notImported`, beside Keycloak's `added`, `skipped`, `overwritten` and `results`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use cambio_core::model::{Role, User};
use cambio_proto::admin::{ClientRep, RoleRep, UserRep};
use serde_json::{Value, json};

use super::escalation::{approve_client, approve_role, approve_user};
use super::{Need, authorize, bad_request, conflict, realm_or_404};
use crate::error::ApiResult;
use crate::import_report::ImportReport;
use crate::keycloak_passwords::{self, Password};
use crate::random;
use crate::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/admin/realms/{realm}/partialImport", post(partial_import))
}

/// One line of Keycloak's `results`.
fn result(action: &str, kind: &str, name: &str, id: &str) -> Value {
    json!({"action": action, "resourceType": kind, "resourceName": name, "id": id})
}

pub async fn partial_import(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let admin = authorize(&app, &headers, &realm, Need::ManageRealm).await?;
    let document = crate::import_report::parse_document(&body)?;
    let list = |name: &str| -> Vec<Value> {
        document
            .get(name)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let skip = match document.get("ifResourceExists").and_then(Value::as_str) {
        None | Some("FAIL") => false,
        Some("SKIP") => true,
        Some(other) => {
            return Err(bad_request(format!(
                "ifResourceExists {other} is not supported by Cambio (FAIL or SKIP)"
            )));
        }
    };
    let users: Vec<UserRep> = serde_json::from_value(Value::Array(list("users")))
        .map_err(|e| bad_request(format!("Invalid users: {e}")))?;
    let clients: Vec<ClientRep> = serde_json::from_value(Value::Array(list("clients")))
        .map_err(|e| bad_request(format!("Invalid clients: {e}")))?;
    let roles = document.get("roles").cloned().unwrap_or(Value::Null);
    let realm_roles: Vec<RoleRep> =
        serde_json::from_value(roles.get("realm").cloned().unwrap_or(json!([])))
            .map_err(|e| bad_request(format!("Invalid realm roles: {e}")))?;
    let client_roles: std::collections::BTreeMap<String, Vec<RoleRep>> =
        serde_json::from_value(roles.get("client").cloned().unwrap_or(json!({})))
            .map_err(|e| bad_request(format!("Invalid client roles: {e}")))?;
    if !users.is_empty() {
        authorize(&app, &headers, &realm, Need::ManageUsers).await?;
    }
    if !clients.is_empty() {
        authorize(&app, &headers, &realm, Need::ManageClients).await?;
    }
    let mut report = ImportReport::default();
    for part in ["groups"] {
        if document
            .get(part)
            .is_some_and(|v| !v.is_null() && v != &json!([]))
        {
            report.add(
                part,
                "not imported: Cambio's partial import takes roles, clients, identity providers and users",
            );
        }
    }
    let mut results = Vec::new();
    let (mut added, mut skipped) = (0u64, 0u64);
    // The document as far as it was imported: skipped entries are blanked, so that the
    // comparison with the realm afterwards reports only what was added and not kept.
    let mut imported = document.clone();
    let mut blank = |pointer: String| {
        if let Some(entry) = imported.pointer_mut(&pointer) {
            *entry = json!({});
        }
    };

    // First what exists already: with FAIL, nothing is written when anything does.
    let rt = realm_or_404(&app, &realm)?;
    let mut existing = Vec::new();
    for role in &realm_roles {
        let name = role.name.clone().unwrap_or_default();
        if rt.snapshot.realm_role_id(&name).is_some() {
            existing.push(("REALM_ROLE", name));
        }
    }
    for client in &clients {
        let client_id = client.client_id.clone().unwrap_or_default();
        if rt.snapshot.client_by_client_id(&client_id).is_some() {
            existing.push(("CLIENT", client_id));
        }
    }
    for provider in list("identityProviders") {
        if let Some(alias) = provider.get("alias").and_then(Value::as_str)
            && rt.snapshot.provider(alias).is_some()
        {
            existing.push(("IDP", alias.to_owned()));
        }
    }
    for user in &users {
        let name = user.username.clone().unwrap_or_default().to_lowercase();
        if app.user_by_name(rt.id(), &name).await?.is_some() {
            existing.push(("USER", name));
        }
    }
    if let Some((kind, name)) = existing.first()
        && !skip
    {
        return Err(conflict(format!("{kind} {name} already exists")));
    }
    let exists = |kind: &str, name: &str| existing.iter().any(|(k, n)| *k == kind && n == name);

    // Clients, then roles (realm and client), each through the guard.
    let now = random::now();
    for (at, rep) in clients.iter().enumerate() {
        let client_id = rep
            .client_id
            .clone()
            .ok_or_else(|| bad_request("clientId is required"))?;
        if exists("CLIENT", &client_id) {
            blank(format!("/clients/{at}"));
            skipped += 1;
            results.push(result("SKIPPED", "CLIENT", &client_id, ""));
            continue;
        }
        let mut client = crate::bootstrap::new_client(&rt.snapshot.realm, &client_id);
        client.direct_access_grants_enabled = false;
        if let Some(id) = rep.id.clone().filter(|id| !id.is_empty())
            && rt.snapshot.client(&id).is_none()
        {
            client.id = id;
        }
        super::clients::apply_rep(&mut client, rep, &rt)?;
        if client.is_confidential() && client.secret.is_none() {
            client.secret = Some(random::token());
        }
        client.created_at = now;
        let client = approve_client(&admin, &rt, None, client)?;
        app.insert_client(rt.id(), &client).await?;
        if client.service_accounts_enabled {
            let account = crate::bootstrap::service_account(&client, now);
            app.insert_user(rt.id(), &approve_user(&admin, &rt, None, account)?)
                .await?;
        }
        added += 1;
        results.push(result("ADDED", "CLIENT", &client_id, &client.id));
    }
    app.reload_realm(rt.id(), now).await?;
    let rt = realm_or_404(&app, &realm)?;
    let mut new_roles: Vec<(Option<String>, &RoleRep, Role)> = Vec::new();
    for (at, rep) in realm_roles.iter().enumerate() {
        let name = rep
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad_request("Role name is missing"))?;
        if exists("REALM_ROLE", &name) {
            blank(format!("/roles/realm/{at}"));
            skipped += 1;
            results.push(result("SKIPPED", "REALM_ROLE", &name, ""));
            continue;
        }
        new_roles.push((None, rep, role_from(rep, None, name)));
    }
    for (client_id, reps) in &client_roles {
        let owner = rt
            .snapshot
            .client_by_client_id(client_id)
            .ok_or_else(|| bad_request(format!("Client {client_id} not found")))?
            .id
            .clone();
        for (at, rep) in reps.iter().enumerate() {
            let name = rep
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| bad_request("Role name is missing"))?;
            if rt.snapshot.client_role_id(&owner, &name).is_some() {
                if !skip {
                    return Err(conflict(format!("CLIENT_ROLE {name} already exists")));
                }
                blank(format!("/roles/client/{}/{at}", pointer_token(client_id)));
                skipped += 1;
                results.push(result("SKIPPED", "CLIENT_ROLE", &name, ""));
                continue;
            }
            new_roles.push((
                Some(client_id.clone()),
                rep,
                role_from(rep, Some(owner.clone()), name),
            ));
        }
    }
    // Roles first without composites, so that composites may name each other.
    for (_, _, role) in &new_roles {
        let bare = Role {
            composites: Vec::new(),
            ..role.clone()
        };
        app.insert_role(rt.id(), &approve_role(&admin, &rt, bare)?)
            .await?;
    }
    app.reload_realm(rt.id(), now).await?;
    let rt = realm_or_404(&app, &realm)?;
    for (client_id, rep, mut role) in new_roles {
        if let Some(composites) = &rep.composites {
            role.composites = resolve(&rt, composites.realm.as_ref(), composites.client.as_ref())?;
            if !role.composites.is_empty() {
                app.replace_role(rt.id(), &approve_role(&admin, &rt, role.clone())?)
                    .await?;
            }
        }
        let kind = if client_id.is_some() {
            "CLIENT_ROLE"
        } else {
            "REALM_ROLE"
        };
        added += 1;
        results.push(result("ADDED", kind, &role.name, &role.id));
    }
    app.reload_realm(rt.id(), now).await?;
    let rt = realm_or_404(&app, &realm)?;

    // Identity providers (their role mappings through the guard, and the users already
    // linked to their alias as if the provider were re-pointed), then their mappers as data.
    let mut provider_aliases = Vec::new();
    for (at, given) in list("identityProviders").iter().enumerate() {
        let here = format!("identityProviders[{at}]");
        let mut given = given.clone();
        if let Some(config) = given.get_mut("config").and_then(Value::as_object_mut)
            && config.remove("clientSecret").is_some()
        {
            report.add(
                format!("{here}.config.clientSecret"),
                "not kept: Cambio makes no requests to the provider's token endpoint",
            );
        }
        let idp = match super::idps::from_import(&app, &given) {
            Ok(idp) => idp,
            Err(reason) => {
                report.add(here, format!("not imported: {reason}"));
                continue;
            }
        };
        if exists("IDP", &idp.alias) {
            blank(format!("/identityProviders/{at}"));
            skipped += 1;
            results.push(result("SKIPPED", "IDP", &idp.alias, ""));
            continue;
        }
        for user in super::idps::linked_users(&app, &rt, &idp.alias).await? {
            super::escalation::ensure_may_act_as(&admin, &rt, &user)?;
        }
        let idp = super::escalation::approve_provider(&admin, &rt, None, idp)?;
        app.insert_provider(rt.id(), &idp).await?;
        added += 1;
        results.push(result("ADDED", "IDP", &idp.alias, &idp.internal_id));
        provider_aliases.push(idp.alias.clone());
    }
    for (at, mapper) in list("identityProviderMappers").iter().enumerate() {
        let here = format!("identityProviderMappers[{at}]");
        let alias = mapper
            .get("identityProviderAlias")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !provider_aliases.iter().any(|a| a == alias) {
            report.add(
                here,
                format!("not imported: its provider {alias:?} was not added here"),
            );
            continue;
        }
        let mut mapper = mapper.clone();
        let id = random::uuid();
        mapper["id"] = Value::String(id.clone());
        let name = format!("{alias}/{}", mapper["name"].as_str().unwrap_or(&id));
        app.store
            .insert_object(&crate::state::object(
                rt.id(),
                super::idp_mappers::KIND_PROVIDER_MAPPER,
                &id,
                &name,
                &mapper,
            )?)
            .await?;
        report.add(here, super::idp_mappers::NOT_APPLIED);
    }
    if !provider_aliases.is_empty() {
        app.reload_realm(rt.id(), now).await?;
    }
    let rt = realm_or_404(&app, &realm)?;

    // Users, with their role mappings and passwords.
    for (at, rep) in users.iter().enumerate() {
        let username = super::users::valid_username(rep.username.as_deref().unwrap_or(""))?;
        if exists("USER", &username) {
            blank(format!("/users/{at}"));
            skipped += 1;
            results.push(result("SKIPPED", "USER", &username, ""));
            continue;
        }
        let mut user = User {
            id: rep
                .id
                .clone()
                .filter(|id| !id.is_empty())
                .unwrap_or_else(random::uuid),
            username: username.clone(),
            enabled: rep.enabled.unwrap_or(true),
            created_timestamp: rep.created_timestamp.unwrap_or(now * 1000),
            ..Default::default()
        };
        super::users::apply_profile(&mut user, rep)?;
        super::users::check_email_free(&app, &rt, &user).await?;
        user.role_ids = resolve(&rt, rep.realm_roles.as_ref(), rep.client_roles.as_ref())?;
        match keycloak_passwords::password(
            rep.credentials.as_deref(),
            &format!("users[{at}]"),
            &mut report,
        ) {
            Password::Clear(value) => {
                user.password_hash = Some(super::users::hash_password(value).await?);
            }
            Password::Hash(hash) => user.password_hash = Some(hash),
            Password::None => {}
        }
        let user = approve_user(&admin, &rt, None, user)?;
        app.insert_user(rt.id(), &user).await?;
        added += 1;
        results.push(result("ADDED", "USER", &username, &user.id));
    }
    let rt = realm_or_404(&app, &realm)?;
    let kept = crate::realm_io::export(&app, &rt, crate::realm_io::ExportOptions::FULL).await?;
    let kept = serde_json::to_value(kept).map_err(|e| bad_request(e.to_string()))?;
    crate::import_report::compare(&imported, &kept, &mut report);
    Ok(Json(json!({
        "overwritten": 0,
        "added": added,
        "skipped": skipped,
        "results": results,
        "notImported": report.not_imported,
    })))
}

/// A name as one token of a JSON pointer (RFC 6901).
fn pointer_token(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn role_from(rep: &RoleRep, client: Option<String>, name: String) -> Role {
    Role {
        id: rep
            .id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(random::uuid),
        name,
        description: rep.description.clone(),
        client_id: client,
        attributes: rep.attributes.clone().unwrap_or_default(),
        ..Default::default()
    }
}

/// Role ids by name, in the realm as it is now.
fn resolve(
    rt: &crate::state::RealmRuntime,
    realm_names: Option<&Vec<String>>,
    client_names: Option<&std::collections::BTreeMap<String, Vec<String>>>,
) -> ApiResult<Vec<String>> {
    let mut ids = Vec::new();
    for name in realm_names.into_iter().flatten() {
        let id = rt
            .snapshot
            .realm_role_id(name)
            .ok_or_else(|| bad_request(format!("Role {name} not found")))?;
        ids.push(id.to_owned());
    }
    for (client_id, names) in client_names.into_iter().flatten() {
        let owner = rt
            .snapshot
            .client_by_client_id(client_id)
            .ok_or_else(|| bad_request(format!("Client {client_id} not found")))?;
        for name in names {
            let id = rt.snapshot.client_role_id(&owner.id, name).ok_or_else(|| {
                bad_request(format!("Role {name} of client {client_id} not found"))
            })?;
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}
