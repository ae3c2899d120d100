//! Keycloak's partial import (`POST /admin/realms/{realm}/partialImport`): realm roles, client
//! roles, clients, identity providers (with their mappers, kept as data), groups (top-level
//! groups with their subgroups) and users of a `PartialImportRepresentation` added to an
//! existing realm, with `ifResourceExists` `FAIL` (the default: nothing is written when
//! anything exists, with Keycloak's message for the first), `SKIP` or `OVERWRITE` (an
//! existing entry of the same name is replaced, keeping its id so that what refers to it stays
//! valid; a group is replaced whole, with its memberships, as Keycloak replaces it). Users
//! keep their Keycloak password hashes as a full import does, and join groups by path.
//!
//! The import is decided whole before anything is written: every entry is built and every role
//! mapping, composite, scope mapping, provider role mapping and group (its roles, its
//! replacement, who joins it) passes the escalation guard as the matching admin request would
//! (an overwrite as an update, and only by an administrator who may act as the user or service
//! account it replaces), against the realm as it will be with the import's own clients, roles
//! and groups. A refusal, a conflict or a bad entry anywhere writes nothing. What is not kept
//! (credentials Cambio cannot read, provider secrets, fields Cambio has no place for) is in the
//! answer's `notImported`, beside Keycloak's `added`, `skipped`, `overwritten` and `results`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use cambio_core::model::{Group, Role, User};
use cambio_proto::admin::{ClientRep, GroupRep, RoleRep, UserRep};
use serde_json::{Value, json};

use super::escalation::{
    approve_client, approve_group, approve_group_removal, approve_role, approve_user,
};
use super::{Need, authorize, bad_request, conflict, forbidden, realm_or_404};
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

/// What `ifResourceExists` asks for when an entry's name is taken.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    Fail,
    Skip,
    Overwrite,
}

/// Keycloak's counts and `results`, as the entries are decided.
#[derive(Default)]
struct Outcome {
    results: Vec<Value>,
    added: u64,
    skipped: u64,
    overwritten: u64,
}

impl Outcome {
    fn record(&mut self, overwrite: bool, kind: &str, name: &str, id: &str) {
        if overwrite {
            self.overwritten += 1;
            self.results.push(result("OVERWRITTEN", kind, name, id));
        } else {
            self.added += 1;
            self.results.push(result("ADDED", kind, name, id));
        }
    }

    fn skip(&mut self, kind: &str, name: &str) {
        self.skipped += 1;
        self.results.push(result("SKIPPED", kind, name, ""));
    }
}

/// Refuses a name the document gives twice for the same kind of entry: the second would
/// silently replace the first.
fn once(seen: &mut HashSet<String>, kind: &str, name: &str) -> ApiResult<()> {
    if seen.insert(format!("{kind}/{name}")) {
        Ok(())
    } else {
        Err(bad_request(format!("{kind} {name} appears twice")))
    }
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
    let policy = match document.get("ifResourceExists").and_then(Value::as_str) {
        None | Some("FAIL") => Policy::Fail,
        Some("SKIP") => Policy::Skip,
        Some("OVERWRITE") => Policy::Overwrite,
        Some(other) => {
            return Err(bad_request(format!(
                "ifResourceExists {other} is not one of FAIL, SKIP, OVERWRITE"
            )));
        }
    };
    let users: Vec<UserRep> = serde_json::from_value(Value::Array(list("users")))
        .map_err(|e| bad_request(format!("Invalid users: {e}")))?;
    let clients: Vec<ClientRep> = serde_json::from_value(Value::Array(list("clients")))
        .map_err(|e| bad_request(format!("Invalid clients: {e}")))?;
    let group_reps: Vec<GroupRep> =
        serde_json::from_value(document.get("groups").cloned().unwrap_or(json!([])))
            .map_err(|e| bad_request(format!("Invalid groups: {e}")))?;
    if !group_reps.is_empty() {
        authorize(&app, &headers, &realm, Need::ManageUsers).await?;
    }
    let roles = document.get("roles").cloned().unwrap_or(Value::Null);
    let realm_roles: Vec<RoleRep> =
        serde_json::from_value(roles.get("realm").cloned().unwrap_or(json!([])))
            .map_err(|e| bad_request(format!("Invalid realm roles: {e}")))?;
    let client_roles: BTreeMap<String, Vec<RoleRep>> =
        serde_json::from_value(roles.get("client").cloned().unwrap_or(json!({})))
            .map_err(|e| bad_request(format!("Invalid client roles: {e}")))?;
    if !users.is_empty() {
        authorize(&app, &headers, &realm, Need::ManageUsers).await?;
    }
    if !clients.is_empty() {
        authorize(&app, &headers, &realm, Need::ManageClients).await?;
    }
    let mut report = ImportReport::default();
    let mut outcome = Outcome::default();
    let mut seen = HashSet::new();
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
    let current_providers = if list("identityProviders").is_empty() {
        Vec::new()
    } else {
        super::idps::all(&app, &rt).await?
    };
    if policy == Policy::Fail {
        // Keycloak's messages, in the order it checks: clients, roles, providers, groups,
        // users.
        let mut existing: Vec<String> = Vec::new();
        for client in &clients {
            let client_id = client.client_id.clone().unwrap_or_default();
            if rt.snapshot.client_by_client_id(&client_id).is_some() {
                existing.push(format!("Client id '{client_id}' already exists"));
            }
        }
        for role in &realm_roles {
            let name = role.name.clone().unwrap_or_default();
            if rt.snapshot.realm_role_id(&name).is_some() {
                existing.push(format!("Realm role '{name}' already exists."));
            }
        }
        for (client_id, reps) in &client_roles {
            if let Some(owner) = rt.snapshot.client_by_client_id(client_id) {
                for role in reps {
                    let name = role.name.clone().unwrap_or_default();
                    if rt.snapshot.client_role_id(&owner.id, &name).is_some() {
                        existing.push(format!(
                            "Client role '{name}' for client '{client_id}' already exists."
                        ));
                    }
                }
            }
        }
        for provider in list("identityProviders") {
            if let Some(alias) = provider.get("alias").and_then(Value::as_str)
                && current_providers.iter().any(|p| p.alias == alias)
            {
                existing.push(format!("Identity Provider '{alias}' already exists."));
            }
        }
        for rep in &group_reps {
            let name = rep.name.as_deref().unwrap_or_default().trim();
            if rt.snapshot.subgroups(None).any(|g| g.name == name) {
                existing.push(format!("Group '/{name}' already exists"));
            }
        }
        for user in &users {
            let name = user.username.clone().unwrap_or_default().to_lowercase();
            if app.user_by_name(rt.id(), &name).await?.is_some() {
                existing.push(format!("User with user name {name} already exists."));
            }
        }
        if let Some(message) = existing.into_iter().next() {
            return Err(conflict(message));
        }
    }

    // Clients, each through the guard as a creation or (overwriting) an update.
    let now = random::now();
    let mut planned_clients = Vec::new();
    for (at, rep) in clients.iter().enumerate() {
        let client_id = rep
            .client_id
            .clone()
            .ok_or_else(|| bad_request("clientId is required"))?;
        once(&mut seen, "CLIENT", &client_id)?;
        let current = rt.snapshot.client_by_client_id(&client_id).cloned();
        if current.is_some() && policy == Policy::Skip {
            blank(format!("/clients/{at}"));
            outcome.skip("CLIENT", &client_id);
            continue;
        }
        let mut client = crate::bootstrap::new_client(&rt.snapshot.realm, &client_id);
        client.direct_access_grants_enabled = false;
        client.created_at = now;
        let mut account = None;
        match &current {
            Some(current) => {
                client.id = current.id.clone();
                client.created_at = current.created_at;
                // Replacing a client is changing it: the same rule as an update (whoever sets
                // its secret can act as its service account; the clients administrators sign
                // in through need realm-admin).
                super::clients::ensure_may_manage_client(&app, &admin, &rt, current).await?;
                account = app.cached_service_account(rt.id(), current).await?;
            }
            None => {
                if let Some(id) = rep.id.clone().filter(|id| !id.is_empty())
                    && rt.snapshot.client(&id).is_none()
                {
                    client.id = id;
                }
            }
        }
        super::clients::apply_rep(&mut client, rep, &rt)?;
        if client.is_confidential() && client.secret.is_none() {
            client.secret = Some(random::token());
        }
        let client = approve_client(&admin, &rt, current.as_deref(), client)?;
        let new_account = if client.service_accounts_enabled && account.is_none() {
            let account = crate::bootstrap::service_account(&client, now);
            Some(approve_user(&admin, &rt, None, account)?)
        } else {
            None
        };
        outcome.record(current.is_some(), "CLIENT", &client_id, &client.id);
        planned_clients.push((client, new_account, current.is_some()));
    }
    let client_values: Vec<_> = planned_clients
        .iter()
        .map(|(client, _, _)| (**client).clone())
        .collect();
    let with_clients = rt.with_planned(&client_values, &[]);

    // Roles (realm and client), first without composites, so that composites may name each
    // other; each role's composites then pass the guard as if the role had none before.
    let mut planned_roles: Vec<(&RoleRep, Role, bool)> = Vec::new();
    for (at, rep) in realm_roles.iter().enumerate() {
        let name = rep
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad_request("Role name is missing"))?;
        once(&mut seen, "REALM_ROLE", &name)?;
        super::roles::validate_role_name(&name)?;
        if !super::roles::may_edit(&admin, &rt, None, &name) {
            return Err(forbidden());
        }
        let current = rt.snapshot.realm_role_id(&name).map(str::to_owned);
        if current.is_some() && policy == Policy::Skip {
            blank(format!("/roles/realm/{at}"));
            outcome.skip("REALM_ROLE", &name);
            continue;
        }
        let mut role = role_from(rep, None, name);
        if let Some(id) = &current {
            role.id = id.clone();
        }
        planned_roles.push((rep, role, current.is_some()));
    }
    for (client_id, reps) in &client_roles {
        let owner = with_clients
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
            once(&mut seen, &format!("CLIENT_ROLE {client_id}"), &name)?;
            super::roles::validate_role_name(&name)?;
            if !super::roles::may_edit(&admin, &with_clients, Some(&owner), &name) {
                return Err(forbidden());
            }
            let current = with_clients
                .snapshot
                .client_role_id(&owner, &name)
                .map(str::to_owned);
            if current.is_some() && policy == Policy::Skip {
                blank(format!("/roles/client/{}/{at}", pointer_token(client_id)));
                outcome.skip("CLIENT_ROLE", &name);
                continue;
            }
            let mut role = role_from(rep, Some(owner.clone()), name);
            if let Some(id) = &current {
                role.id = id.clone();
            }
            planned_roles.push((rep, role, current.is_some()));
        }
    }
    let bare: Vec<Role> = planned_roles
        .iter()
        .map(|(_, role, _)| Role {
            composites: Vec::new(),
            ..role.clone()
        })
        .collect();
    let with_bare_roles = with_clients.with_planned(&[], &bare);
    let mut approved_roles = Vec::new();
    for (rep, mut role, overwrite) in planned_roles {
        if let Some(composites) = &rep.composites {
            role.composites = resolve(
                &with_bare_roles,
                composites.realm.as_ref(),
                composites.client.as_ref(),
            )?;
        }
        let kind = if role.client_id.is_some() {
            "CLIENT_ROLE"
        } else {
            "REALM_ROLE"
        };
        outcome.record(overwrite, kind, &role.name, &role.id);
        approved_roles.push((approve_role(&admin, &with_bare_roles, role)?, overwrite));
    }
    let role_values: Vec<Role> = approved_roles
        .iter()
        .map(|(role, _)| (**role).clone())
        .collect();
    let planned = with_clients.with_planned(&[], &role_values);

    // Identity providers (their role mappings through the guard, and the users already
    // linked to their alias as if the provider were re-pointed), then their mappers as data.
    let mut planned_providers = Vec::new();
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
        let mut idp = match super::idps::from_import(&app, &given) {
            Ok(idp) => idp,
            Err(reason) => {
                report.add(here, format!("not imported: {reason}"));
                continue;
            }
        };
        once(&mut seen, "IDP", &idp.alias)?;
        let current = current_providers.iter().find(|p| p.alias == idp.alias);
        if current.is_some() && policy == Policy::Skip {
            blank(format!("/identityProviders/{at}"));
            outcome.skip("IDP", &idp.alias);
            continue;
        }
        if let Some(current) = current {
            idp.internal_id = current.internal_id.clone();
        }
        for user in super::idps::linked_users(&app, &rt, &idp.alias).await? {
            super::escalation::ensure_may_act_as(&admin, &rt, &user)?;
        }
        let idp = super::escalation::approve_provider(&admin, &planned, current, idp)?;
        outcome.record(current.is_some(), "IDP", &idp.alias, &idp.internal_id);
        planned_providers.push((idp, current.is_some()));
    }
    // A replaced provider's mappers go with it, as when Keycloak deletes it to replace it.
    let mut replaced_mappers = Vec::new();
    if planned_providers.iter().any(|(_, overwrite)| *overwrite) {
        for mapper in super::idp_mappers::all(&app, rt.id()).await? {
            let alias = mapper["identityProviderAlias"].as_str().unwrap_or_default();
            if planned_providers
                .iter()
                .any(|(idp, overwrite)| *overwrite && idp.alias == alias)
                && let Some(id) = mapper["id"].as_str()
            {
                replaced_mappers.push(id.to_owned());
            }
        }
    }
    let mut planned_mappers = Vec::new();
    for (at, mapper) in list("identityProviderMappers").iter().enumerate() {
        let here = format!("identityProviderMappers[{at}]");
        let alias = mapper
            .get("identityProviderAlias")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !planned_providers.iter().any(|(idp, _)| idp.alias == alias) {
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
        once(&mut seen, "IDP_MAPPER", &name)?;
        planned_mappers.push(crate::state::object(
            rt.id(),
            super::idp_mappers::KIND_PROVIDER_MAPPER,
            &id,
            &name,
            &mapper,
        )?);
        report.add(here, super::idp_mappers::NOT_APPLIED);
    }

    // Groups: a top-level group of the same name, with the groups below it, is the existing
    // entry. Overwriting it deletes it with its memberships and creates the imported one, as
    // Keycloak does; removing it and every role the new groups hand out pass the guard.
    let mut removals = Vec::new();
    let mut new_group_reps = Vec::new();
    for (at, rep) in group_reps.iter().enumerate() {
        let name = rep.name.as_deref().unwrap_or_default().trim().to_owned();
        once(&mut seen, "GROUP", &name)?;
        let current = planned.snapshot.subgroups(None).find(|g| g.name == name);
        if current.is_some() && policy == Policy::Skip {
            blank(format!("/groups/{at}"));
            outcome.skip("GROUP", &name);
            continue;
        }
        if let Some(current) = current {
            removals.push(approve_group_removal(&admin, &planned, current)?);
        }
        new_group_reps.push((rep.clone(), current.is_some()));
    }
    let reps: Vec<GroupRep> = new_group_reps.iter().map(|(rep, _)| rep.clone()).collect();
    let mut built = crate::realm_io::groups::build(&reps, |realm_names, client_names| {
        resolve(&planned, realm_names, client_names)
    })?;
    let removed: HashSet<&str> = removals
        .iter()
        .flat_map(|r| r.group_ids.iter().map(String::as_str))
        .collect();
    fresh_group_ids(&mut built.groups, |id| {
        planned.snapshot.group(id).is_some() && !removed.contains(id)
    });
    for path in built.by_path.keys() {
        if let Some(other) = planned.snapshot.group_by_path(path)
            && !removed.contains(other.id.as_str())
        {
            return Err(super::groups::path_taken(path));
        }
    }
    let mut all_groups: Vec<Group> = planned
        .snapshot
        .groups()
        .into_iter()
        .filter(|g| !removed.contains(g.id.as_str()))
        .cloned()
        .collect();
    all_groups.extend(built.groups.iter().cloned());
    let planned = planned.with_groups(all_groups);
    let mut approved_groups = Vec::new();
    for group in built.groups {
        if group.parent_id.is_none()
            && let Some((_, overwrite)) = new_group_reps
                .iter()
                .find(|(rep, _)| rep.name.as_deref().map(str::trim) == Some(group.name.as_str()))
        {
            outcome.record(*overwrite, "GROUP", &group.name, &group.id);
        }
        approved_groups.push(approve_group(&admin, &planned, None, group)?);
    }

    // Users, with their role mappings, groups and passwords. Replacing a user is acting as it.
    let mut planned_users = Vec::new();
    for (at, rep) in users.iter().enumerate() {
        let username = super::users::valid_username(rep.username.as_deref().unwrap_or(""))?;
        once(&mut seen, "USER", &username)?;
        let current = app.user_by_name(rt.id(), &username).await?;
        if current.is_some() && policy == Policy::Skip {
            blank(format!("/users/{at}"));
            outcome.skip("USER", &username);
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
        if let Some(current) = &current {
            super::escalation::ensure_may_act_as(&admin, &rt, current)?;
            user.id = current.id.clone();
            user.service_account_client_id = current.service_account_client_id.clone();
        }
        super::users::apply_profile(&mut user, rep)?;
        super::users::check_email_free(&app, &rt, &user).await?;
        user.role_ids = resolve(
            &planned,
            rep.realm_roles.as_ref(),
            rep.client_roles.as_ref(),
        )?;
        user.groups = super::groups::ids_of_paths(&planned, rep.groups.as_deref())?;
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
        let user = approve_user(&admin, &planned, current.as_ref(), user)?;
        outcome.record(current.is_some(), "USER", &username, &user.id);
        planned_users.push((user, current.is_some()));
    }

    // Everything passed: now the writes, in one transaction. A store error, a conflict with
    // a concurrent change or a request cut off at its deadline leaves none of them stored.
    // Keycloak replaces a user by deleting it, which ends its sessions; the replaced users'
    // sessions end first, so that a failure leaves them signed out rather than the new
    // document beside the old sessions, and again after the commit, for a sign-in with the
    // old document in between.
    for (user, overwrite) in &planned_users {
        if *overwrite {
            super::users::end_user_sessions(&app, &rt, &user.id).await?;
        }
    }
    let mut batch = app.write_batch(rt.id());
    for (client, account, overwrite) in &planned_clients {
        if *overwrite {
            batch.update_client(client)?;
        } else {
            batch.insert_client(client)?;
        }
        if let Some(account) = account {
            batch.insert_user(account)?;
        }
    }
    for (role, overwrite) in &approved_roles {
        if *overwrite {
            batch.replace_role(role)?;
        } else {
            batch.insert_role(role)?;
        }
    }
    for (idp, overwrite) in &planned_providers {
        if *overwrite {
            batch.update_provider(idp)?;
        } else {
            batch.insert_provider(idp)?;
        }
    }
    for id in &replaced_mappers {
        batch.delete_object(super::idp_mappers::KIND_PROVIDER_MAPPER, id);
    }
    for mapper in planned_mappers {
        batch.insert_object(mapper);
    }
    for removal in &removals {
        batch.delete_groups(removal).await?;
    }
    for group in &approved_groups {
        batch.insert_group(group)?;
    }
    for (user, overwrite) in &planned_users {
        if *overwrite {
            batch.update_user(user)?;
        } else {
            batch.insert_user(user)?;
        }
    }
    batch.commit().await?;
    for (user, overwrite) in &planned_users {
        if *overwrite {
            super::users::end_user_sessions(&app, &rt, &user.id).await?;
        }
    }
    app.reload_realm(rt.id(), now).await?;
    let rt = realm_or_404(&app, &realm)?;
    // What the realm kept, for the report: the realm without its users, and the users this
    // import wrote, as an export writes them. Reading every user back instead made each
    // partial import cost what the whole realm holds, in time and in memory (roles also carry
    // the groups; clients their service accounts).
    let options = crate::realm_io::ExportOptions {
        clients: document.get("clients").is_some(),
        roles: true,
        users: false,
        secrets: true,
    };
    let mut kept = crate::realm_io::export(&app, &rt, options).await?;
    if document.get("users").is_some() {
        let written = crate::realm_io::ExportOptions {
            users: true,
            ..options
        };
        let mut users = kept.users.take().unwrap_or_default();
        users.extend(
            planned_users
                .iter()
                .map(|(user, _)| crate::realm_io::user_rep(&rt.snapshot, user, written)),
        );
        kept.users = Some(users);
    }
    let kept = serde_json::to_value(kept).map_err(|e| bad_request(e.to_string()))?;
    crate::import_report::compare(&imported, &kept, &mut report);
    Ok(Json(json!({
        "overwritten": outcome.overwritten,
        "added": outcome.added,
        "skipped": outcome.skipped,
        "results": outcome.results,
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
    client_names: Option<&BTreeMap<String, Vec<String>>>,
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

/// Gives a new id to every group whose id `taken` says is in use, and points its subgroups at
/// the new id: an export's ids may belong to groups the realm keeps.
fn fresh_group_ids(groups: &mut [Group], taken: impl Fn(&str) -> bool) {
    let mut renamed: BTreeMap<String, String> = BTreeMap::new();
    for group in groups.iter_mut() {
        if taken(&group.id) {
            let fresh = random::uuid();
            renamed.insert(std::mem::replace(&mut group.id, fresh.clone()), fresh);
        }
    }
    for group in groups.iter_mut() {
        if let Some(fresh) = group.parent_id.as_ref().and_then(|p| renamed.get(p)) {
            group.parent_id = Some(fresh.clone());
        }
    }
}
