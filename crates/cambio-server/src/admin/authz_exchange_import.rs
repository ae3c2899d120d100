//! The token-exchange permissions of a Keycloak export (`realm-management`'s
//! `authorizationSettings`, Keycloak's V1 fine-grained model) taken into Cambio's own,
//! evaluated model: for each `token-exchange.permission.client.{uuid}` scope permission, the
//! client's management permissions are enabled and the permission gets the exported client
//! and aggregate policies, with their logic and decision strategies.
//!
//! A permission is taken over whole or not at all: when a policy it names (directly or
//! through an aggregate) is of a type Cambio does not evaluate (role, user, group, time, js,
//! ...), or names a client the realm lacks, the permission is left without policies (so it
//! denies, as an unset permission does) and reported. Leaving one policy out could otherwise
//! widen it (a negative policy gone, or a unanimous set made smaller). Every other policy and
//! permission (fine-grained admin permissions) is reported as not imported.

use std::collections::{BTreeMap, BTreeSet};

use cambio_core::model::Client;
use cambio_core::permissions::{AuthzPolicy, DecisionStrategy, Logic, client_permission_name};
use serde_json::Value;

use super::authz::{AuthzResource, AuthzScope, management_objects, new_management_scopes};
use crate::import_report::ImportReport;
use crate::random;
use crate::state::{KIND_AUTHZ_POLICY, KIND_AUTHZ_RESOURCE, KIND_AUTHZ_SCOPE, WriteBatch, object};

/// How deep aggregates may nest; deeper (or cyclic) ones are refused.
const MAX_DEPTH: usize = 8;

/// Takes over the token-exchange permissions of `settings` (realm-management's, at `path`)
/// into a realm being imported: its writes join the realm's own, in `batch`.
pub fn import(
    batch: &mut WriteBatch<'_>,
    realm_id: &str,
    clients: &[Client],
    settings: &Value,
    path: &str,
    report: &mut ImportReport,
) -> Result<(), cambio_store::StoreError> {
    let policies: Vec<&Value> = settings
        .get("policies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let by_name: BTreeMap<&str, &Value> = policies
        .iter()
        .filter_map(|p| Some((p.get("name")?.as_str()?, *p)))
        .collect();
    // Policy names already created, with their ids.
    let mut created: BTreeMap<String, String> = BTreeMap::new();
    // The realm is new: it has no authorization scopes and no client has management
    // permissions yet. Both are made here, once, for the clients a permission names.
    let mut scopes: Vec<AuthzScope> = Vec::new();
    let mut managed: BTreeMap<String, (AuthzResource, Vec<AuthzPolicy>)> = BTreeMap::new();
    // Clients whose token-exchange permission was taken over, and those left denying. Cambio
    // keeps one permission per client: a second one naming the same client could only be
    // merged by guessing how Keycloak's resource server combines them, so both deny.
    let mut granted: BTreeSet<String> = BTreeSet::new();
    let mut denied: BTreeSet<String> = BTreeSet::new();
    let mut used = Vec::new();
    for (at, permission) in policies.iter().enumerate() {
        let here = format!("{path}.policies[{at}]");
        let Some(target) = exchange_target(permission, clients) else {
            continue;
        };
        used.push(at);
        let mut new_policies = Vec::new();
        let mut ids = Vec::new();
        let mut refusal = None;
        for name in string_list(permission, "applyPolicies") {
            match build(&name, &by_name, clients, &created, 0, &mut new_policies) {
                Ok(id) => ids.push(id),
                Err(reason) => {
                    refusal = Some(reason);
                    break;
                }
            }
        }
        if scopes.is_empty() {
            scopes = new_management_scopes();
        }
        let (_, permissions) = managed
            .entry(target.clone())
            .or_insert_with(|| management_objects(&target, &scopes));
        let exchange_name = client_permission_name("token-exchange", &target);
        let Some(cambio_permission) = permissions.iter_mut().find(|p| p.name == exchange_name)
        else {
            continue;
        };
        let refusal = refusal.or_else(|| {
            if denied.contains(&target) {
                Some("another token-exchange permission for the same client was refused".into())
            } else if granted.contains(&target) {
                Some(
                    "another token-exchange permission names the same client; Cambio keeps one \
                     per client, so neither applies"
                        .into(),
                )
            } else {
                None
            }
        });
        if let Some(reason) = refusal {
            // Whatever an earlier permission gave this client is taken back: it denies.
            cambio_permission.policies.clear();
            cambio_permission.logic = Logic::default();
            cambio_permission.decision_strategy = DecisionStrategy::default();
            granted.remove(&target);
            denied.insert(target);
            report.add(
                here,
                format!("imported without its policies, so it denies: {reason}"),
            );
            continue;
        }
        granted.insert(target);
        for policy in new_policies {
            created.insert(policy.name.clone(), policy.id.clone());
            batch.insert_object(object(
                realm_id,
                KIND_AUTHZ_POLICY,
                &policy.id,
                &policy.name,
                &policy,
            )?);
        }
        cambio_permission.policies = ids;
        cambio_permission.logic = logic(permission);
        cambio_permission.decision_strategy = strategy(permission);
    }
    for scope in &scopes {
        batch.insert_object(object(
            realm_id,
            KIND_AUTHZ_SCOPE,
            &scope.id,
            &scope.name,
            scope,
        )?);
    }
    for (resource, permissions) in managed.values() {
        batch.insert_object(object(
            realm_id,
            KIND_AUTHZ_RESOURCE,
            &resource.id,
            &resource.name,
            resource,
        )?);
        for permission in permissions {
            batch.insert_object(object(
                realm_id,
                KIND_AUTHZ_POLICY,
                &permission.id,
                &permission.name,
                permission,
            )?);
        }
    }
    for (at, policy) in policies.iter().enumerate() {
        let name = policy.get("name").and_then(Value::as_str).unwrap_or("");
        if used.contains(&at) || created.contains_key(name) {
            continue;
        }
        report.add(
            format!("{path}.policies[{at}]"),
            "not imported: Cambio takes over realm-management's token-exchange permissions \
             and their client and aggregate policies only; fine-grained admin permissions are \
             set up again through the admin API",
        );
    }
    Ok(())
}

/// The client whose token-exchange permission `permission` is, if it is one.
fn exchange_target(permission: &Value, clients: &[Client]) -> Option<String> {
    if permission.get("type").and_then(Value::as_str) != Some("scope") {
        return None;
    }
    if !string_list(permission, "scopes")
        .iter()
        .any(|s| s == "token-exchange")
    {
        return None;
    }
    string_list(permission, "resources").iter().find_map(|r| {
        let uuid = r.strip_prefix("client.resource.")?;
        clients
            .iter()
            .any(|c| c.id == uuid)
            .then(|| uuid.to_owned())
    })
}

/// A list Keycloak's export writes as a JSON string in `config` (`"[\"a\",\"b\"]"`).
fn string_list(policy: &Value, name: &str) -> Vec<String> {
    match policy.get("config").and_then(|c| c.get(name)) {
        Some(Value::String(text)) => serde_json::from_str(text).unwrap_or_default(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn logic(policy: &Value) -> Logic {
    match policy.get("logic").and_then(Value::as_str) {
        Some("NEGATIVE") => Logic::Negative,
        _ => Logic::Positive,
    }
}

fn strategy(policy: &Value) -> DecisionStrategy {
    match policy.get("decisionStrategy").and_then(Value::as_str) {
        Some("AFFIRMATIVE") => DecisionStrategy::Affirmative,
        Some("CONSENSUS") => DecisionStrategy::Consensus,
        _ => DecisionStrategy::Unanimous,
    }
}

/// The id of the policy `name`, building it (and what it aggregates) into `new` unless it was
/// created already; or why it cannot be taken over.
fn build(
    name: &str,
    by_name: &BTreeMap<&str, &Value>,
    clients: &[Client],
    created: &BTreeMap<String, String>,
    depth: usize,
    new: &mut Vec<AuthzPolicy>,
) -> Result<String, String> {
    if let Some(id) = created.get(name) {
        return Ok(id.clone());
    }
    if let Some(pending) = new.iter().find(|p| p.name == name) {
        return Ok(pending.id.clone());
    }
    if depth >= MAX_DEPTH {
        return Err(format!("policy {name:?} nests too deep (or in a cycle)"));
    }
    let policy = by_name
        .get(name)
        .ok_or_else(|| format!("policy {name:?} is not in the export"))?;
    let kind = policy.get("type").and_then(Value::as_str).unwrap_or("");
    let mut built = AuthzPolicy {
        id: random::uuid(),
        name: name.to_owned(),
        description: policy
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        policy_type: kind.to_owned(),
        logic: logic(policy),
        decision_strategy: strategy(policy),
        ..Default::default()
    };
    match kind {
        "client" => {
            for given in string_list(policy, "clients") {
                let client = clients
                    .iter()
                    .find(|c| c.id == given || c.client_id == given)
                    .ok_or_else(|| {
                        format!("policy {name:?} names client {given:?}, which the realm lacks")
                    })?;
                built.clients.push(client.id.clone());
            }
        }
        "aggregate" => {
            for inner in string_list(policy, "applyPolicies") {
                let id = build(&inner, by_name, clients, created, depth + 1, new)?;
                built.policies.push(id);
            }
        }
        other => {
            return Err(format!(
                "policy {name:?} is of type {other:?}, which Cambio does not evaluate"
            ));
        }
    }
    new.push(built.clone());
    Ok(built.id)
}
