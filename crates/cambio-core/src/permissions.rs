//! Keycloak's fine-grained admin permissions (the "V1" token exchange model): policies and
//! scope permissions held by the `realm-management` client's authorization server.
//!
//! A requester may exchange a token for target client T when T's permission
//! `token-exchange.permission.client.<T uuid>` grants it: the permission's policies are
//! evaluated with the requesting client as the identity and combined by the permission's
//! decision strategy. A permission without policies denies.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Whether a policy's outcome is used as is or inverted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Logic {
    #[default]
    Positive,
    Negative,
}

/// How the outcomes of several policies combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DecisionStrategy {
    /// Every policy must grant (and there must be at least one).
    #[default]
    Unanimous,
    /// At least one policy must grant.
    Affirmative,
    /// More policies grant than deny.
    Consensus,
}

/// A policy or a permission (Keycloak stores both as policies; permissions have type
/// `scope` or `resource` and name other policies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct AuthzPolicy {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// `client`, `aggregate`, `scope`, `resource`, or a type Cambio stores but does not
    /// evaluate (such a policy never grants).
    #[serde(rename = "type")]
    pub policy_type: String,
    pub logic: Logic,
    pub decision_strategy: DecisionStrategy,
    /// Client uuids, for `client` policies.
    pub clients: Vec<String>,
    /// Resource ids, for permissions.
    pub resources: Vec<String>,
    /// Scope ids, for scope permissions.
    pub scopes: Vec<String>,
    /// Policy ids, for permissions and aggregate policies.
    pub policies: Vec<String>,
    /// Other configuration kept as Keycloak sent it.
    pub config: std::collections::BTreeMap<String, String>,
}

impl AuthzPolicy {
    pub fn is_permission(&self) -> bool {
        matches!(self.policy_type.as_str(), "scope" | "resource")
    }
}

/// The name Keycloak gives the permission of `scope` on client `client_uuid`.
pub fn client_permission_name(scope: &str, client_uuid: &str) -> String {
    format!("{scope}.permission.client.{client_uuid}")
}

/// The name of a client's resource in the `realm-management` authorization server.
pub fn client_resource_name(client_uuid: &str) -> String {
    format!("client.resource.{client_uuid}")
}

/// The scopes of the `realm-management` authorization server.
pub const MANAGEMENT_SCOPES: &[&str] = &[
    "view",
    "manage",
    "configure",
    "map-roles",
    "map-roles-client-scope",
    "map-roles-composite",
    "token-exchange",
];

pub const TOKEN_EXCHANGE_SCOPE: &str = "token-exchange";

/// The policies of one realm, indexed.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    by_id: HashMap<String, AuthzPolicy>,
    id_by_name: HashMap<String, String>,
}

/// How deep aggregate policies may nest before evaluation gives up (and denies).
const MAX_DEPTH: usize = 8;

impl Permissions {
    pub fn new(policies: Vec<AuthzPolicy>) -> Permissions {
        let mut out = Permissions::default();
        for policy in policies {
            out.id_by_name
                .insert(policy.name.clone(), policy.id.clone());
            out.by_id.insert(policy.id.clone(), policy);
        }
        out
    }

    pub fn get(&self, id: &str) -> Option<&AuthzPolicy> {
        self.by_id.get(id)
    }

    pub fn by_name(&self, name: &str) -> Option<&AuthzPolicy> {
        self.id_by_name.get(name).and_then(|id| self.by_id.get(id))
    }

    /// The token-exchange permission of a target client, when management permissions are
    /// enabled on it.
    pub fn exchange_permission(&self, target_uuid: &str) -> Option<&AuthzPolicy> {
        self.by_name(&client_permission_name(TOKEN_EXCHANGE_SCOPE, target_uuid))
    }

    /// Whether `permission` grants the requesting client.
    pub fn grants(&self, permission: &AuthzPolicy, requester_uuid: &str) -> bool {
        self.combine(permission, requester_uuid, 0)
    }

    fn combine(&self, holder: &AuthzPolicy, requester: &str, depth: usize) -> bool {
        if depth > MAX_DEPTH || holder.policies.is_empty() {
            return false;
        }
        let outcomes: Vec<bool> = holder
            .policies
            .iter()
            .map(|id| {
                self.by_id
                    .get(id)
                    .is_some_and(|p| self.evaluate(p, requester, depth + 1))
            })
            .collect();
        let granted = outcomes.iter().filter(|o| **o).count();
        match holder.decision_strategy {
            DecisionStrategy::Unanimous => granted == outcomes.len(),
            DecisionStrategy::Affirmative => granted > 0,
            DecisionStrategy::Consensus => granted * 2 > outcomes.len(),
        }
    }

    fn evaluate(&self, policy: &AuthzPolicy, requester: &str, depth: usize) -> bool {
        let raw = match policy.policy_type.as_str() {
            "client" => policy.clients.iter().any(|c| c == requester),
            "aggregate" => self.combine(policy, requester, depth),
            // Types Cambio does not evaluate never grant, whatever their logic says.
            _ => return false,
        };
        match policy.logic {
            Logic::Positive => raw,
            Logic::Negative => !raw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_policy(id: &str, clients: &[&str], logic: Logic) -> AuthzPolicy {
        AuthzPolicy {
            id: id.into(),
            name: id.into(),
            policy_type: "client".into(),
            logic,
            clients: clients.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn permission(policies: &[&str], strategy: DecisionStrategy) -> AuthzPolicy {
        AuthzPolicy {
            id: "perm".into(),
            name: client_permission_name(TOKEN_EXCHANGE_SCOPE, "target"),
            policy_type: "scope".into(),
            decision_strategy: strategy,
            policies: policies.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn check(policies: &[&str], strategy: DecisionStrategy, requester: &str, expected: bool) {
        use Logic::*;
        let all = vec![
            client_policy("allow-a", &["a"], Positive),
            client_policy("allow-b", &["b"], Positive),
            client_policy("not-a", &["a"], Negative),
            AuthzPolicy {
                id: "agg".into(),
                policy_type: "aggregate".into(),
                decision_strategy: DecisionStrategy::Affirmative,
                policies: vec!["allow-a".into(), "allow-b".into()],
                ..Default::default()
            },
            AuthzPolicy {
                id: "role".into(),
                policy_type: "role".into(),
                logic: Negative,
                ..Default::default()
            },
            permission(policies, strategy),
        ];
        let perms = Permissions::new(all);
        let perm = perms.exchange_permission("target").unwrap();
        assert_eq!(
            perms.grants(perm, requester),
            expected,
            "{policies:?} {strategy:?} {requester}"
        );
    }

    #[test]
    fn decisions() {
        use DecisionStrategy::*;
        check(&[], Unanimous, "a", false);
        check(&[], Affirmative, "a", false);
        check(&["allow-a"], Unanimous, "a", true);
        check(&["allow-a"], Unanimous, "b", false);
        check(&["not-a"], Unanimous, "a", false);
        check(&["not-a"], Unanimous, "b", true);
        check(&["allow-a", "allow-b"], Unanimous, "a", false);
        check(&["allow-a", "allow-b"], Affirmative, "b", true);
        check(&["allow-a", "allow-b", "not-a"], Consensus, "b", true);
        check(&["allow-a", "allow-b", "not-a"], Consensus, "c", false);
        check(&["agg"], Unanimous, "b", true);
        check(&["agg"], Unanimous, "c", false);
        check(&["role"], Affirmative, "a", false);
        check(&["missing"], Affirmative, "a", false);
    }
}
