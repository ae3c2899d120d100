//! Partial reloads of a realm's snapshot. An admin change that touches one kind of object
//! (a role, a client scope, the groups, the fine-grained permissions, the identity providers,
//! a client) reads only what it touched from the store and puts it in place in a copy of the
//! snapshot (`RealmSnapshot::with_role`, `with_scope`, ...): in a realm of 10,000 clients and
//! roles, re-reading everything costs tens of milliseconds per change and slows the exchanges
//! running meanwhile. The realm's own record, its keys and imports still rebuild it whole.
//!
//! Other nodes are told which parts changed (`Change::Realm` with `parts`) and reload the
//! same parts; a node that cannot (an older node, a notice it cannot read, a realm it does
//! not hold, a store error) rebuilds the realm whole instead, so no node keeps stale state.

use std::collections::BTreeSet;
use std::sync::Arc;

use cambio_core::federation::IdentityProvider;
use cambio_core::model::{ClientScope, Group, Role};
use cambio_core::permissions::{AuthzPolicy, Permissions};
use cambio_store::StoreResult;
use serde::{Deserialize, Deserializer, Serialize};

use super::{
    AppState, Change, KIND_AUTHZ_POLICY, KIND_CLIENT, KIND_CLIENT_SCOPE, KIND_GROUP, KIND_IDP,
    KIND_ROLE, decode, decode_all,
};

/// One part of a realm's configuration that an admin change touched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RealmPart {
    /// The realm's own record (its name, settings, default roles and scopes), which the
    /// issuer, the keys and every default derive from: the realm is rebuilt whole.
    Settings,
    /// One client, by uuid.
    Client(String),
    /// One role, by id.
    Role(String),
    /// Every role.
    Roles,
    /// One client scope with its protocol mappers, by id.
    Scope(String),
    /// Every group (paths and inherited roles derive from all of them).
    Groups,
    /// Every authorization policy and permission of the `realm-management` client.
    Permissions,
    /// Every identity provider.
    Providers,
}

/// More single objects than this in one change are read as their whole kind (roles) or
/// rebuild the realm (clients, scopes): reading them one by one would cost more, and the
/// notice to other nodes stays far below PostgreSQL's 8,000-byte payload limit.
const MAX_SINGLE_OBJECTS: usize = 32;

/// The parts to reload, each once, with too many single objects replaced as said above;
/// `None` when the realm is to be rebuilt whole.
fn plan(parts: impl IntoIterator<Item = RealmPart>) -> Option<Vec<RealmPart>> {
    let parts: BTreeSet<RealmPart> = parts.into_iter().collect();
    if parts.contains(&RealmPart::Settings) {
        return None;
    }
    let count = |kind: fn(&RealmPart) -> bool| parts.iter().filter(|p| kind(p)).count();
    let clients = count(|p| matches!(p, RealmPart::Client(_)));
    let scopes = count(|p| matches!(p, RealmPart::Scope(_)));
    if clients > MAX_SINGLE_OBJECTS || scopes > MAX_SINGLE_OBJECTS {
        return None;
    }
    let all_roles = parts.contains(&RealmPart::Roles)
        || count(|p| matches!(p, RealmPart::Role(_))) > MAX_SINGLE_OBJECTS;
    Some(
        parts
            .into_iter()
            .filter(|p| !(all_roles && matches!(p, RealmPart::Role(_))))
            .chain(all_roles.then_some(RealmPart::Roles))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    )
}

/// Reads a notice's `parts` leniently: parts this node cannot read (a newer node's kinds)
/// count as absent, which rebuilds the realm whole, rather than making the notice unreadable.
pub(super) fn lenient_parts<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<RealmPart>>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

impl AppState {
    /// Reloads the parts of a realm that an admin change touched, here and (through the
    /// store's notifications) on every other node; the whole realm when a part asks for it.
    pub async fn reload_parts(
        &self,
        realm_id: &str,
        parts: impl IntoIterator<Item = RealmPart>,
        now: u64,
    ) -> StoreResult<()> {
        let planned = plan(parts);
        match &planned {
            Some(parts) => self.reload_parts_local(realm_id, parts, now).await?,
            None => self.reload_realm_local(realm_id, now).await?,
        }
        self.announce(Change::Realm {
            id: realm_id.to_owned(),
            parts: planned,
        })
        .await;
        Ok(())
    }

    /// Puts one client's stored state in place in its realm's snapshot, here and on every
    /// other node; the realm's keys, issuer and verified-token cache are untouched, since a
    /// client changes none of them.
    pub async fn reload_client(&self, realm_id: &str, client_uuid: &str) -> StoreResult<()> {
        self.reload_parts(
            realm_id,
            [RealmPart::Client(client_uuid.to_owned())],
            crate::random::now(),
        )
        .await
    }

    /// Applies another node's change: its parts when it names them, else a whole rebuild. A
    /// partial reload that fails is retried whole.
    pub(super) async fn apply_realm_change(
        &self,
        realm_id: &str,
        parts: Option<Vec<RealmPart>>,
        now: u64,
    ) -> StoreResult<()> {
        if let Some(parts) = parts.and_then(plan) {
            match self.reload_parts_local(realm_id, &parts, now).await {
                Ok(()) => return Ok(()),
                Err(error) => {
                    tracing::warn!(%error, "partial realm reload failed; rebuilding it whole");
                }
            }
        }
        self.reload_realm_local(realm_id, now).await
    }

    /// Reloads `parts` (planned) of one realm on this node only. A realm this node does not
    /// hold is built whole from the store.
    async fn reload_parts_local(
        &self,
        realm_id: &str,
        parts: &[RealmPart],
        now: u64,
    ) -> StoreResult<()> {
        let turn = self.realm_rebuilds.lock().await;
        let Some(current) = self.realm_by_id(realm_id) else {
            drop(turn);
            return self.reload_realm_local(realm_id, now).await;
        };
        let mut snapshot = current.snapshot.clone();
        for part in parts {
            snapshot = self.read_part(realm_id, part, snapshot).await?;
        }
        self.put_runtime(realm_id, Some(Arc::new(current.with_snapshot(snapshot))));
        Ok(())
    }

    /// `snapshot` with one part read again from the store.
    async fn read_part(
        &self,
        realm_id: &str,
        part: &RealmPart,
        snapshot: cambio_core::realm::RealmSnapshot,
    ) -> StoreResult<cambio_core::realm::RealmSnapshot> {
        let store = &self.store;
        Ok(match part {
            RealmPart::Client(id) => {
                let client = match store.get_object(realm_id, KIND_CLIENT, id).await? {
                    Some(object) => Some(self.decode_client(&object)?),
                    None => None,
                };
                snapshot.with_client(id, client)
            }
            RealmPart::Role(id) => {
                let role: Option<Role> = match store.get_object(realm_id, KIND_ROLE, id).await? {
                    Some(object) => Some(decode(&object)?),
                    None => None,
                };
                snapshot.with_role(id, role)
            }
            RealmPart::Roles => {
                snapshot.with_roles(decode_all(&store.list_objects(realm_id, KIND_ROLE).await?)?)
            }
            RealmPart::Scope(id) => {
                let scope: Option<ClientScope> =
                    match store.get_object(realm_id, KIND_CLIENT_SCOPE, id).await? {
                        Some(object) => Some(decode(&object)?),
                        None => None,
                    };
                snapshot.with_scope(id, scope)
            }
            RealmPart::Groups => {
                let groups: Vec<Group> =
                    decode_all(&store.list_objects(realm_id, KIND_GROUP).await?)?;
                snapshot.with_groups(groups)
            }
            RealmPart::Permissions => {
                let policies: Vec<AuthzPolicy> =
                    decode_all(&store.list_objects(realm_id, KIND_AUTHZ_POLICY).await?)?;
                snapshot.with_permissions(Permissions::new(policies))
            }
            RealmPart::Providers => {
                let providers: Vec<IdentityProvider> =
                    decode_all(&store.list_objects(realm_id, KIND_IDP).await?)?;
                snapshot.with_providers(&providers)
            }
            // `plan` turns the realm's own record into a whole rebuild before this is reached;
            // read again, it is the whole realm (`reload_parts_local` is not asked for it).
            RealmPart::Settings => snapshot,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_merge_parts_and_give_up_where_one_by_one_costs_more() {
        let role = |i: usize| RealmPart::Role(format!("r{i}"));
        assert_eq!(
            plan([role(1), RealmPart::Groups, role(1)]),
            Some(vec![role(1), RealmPart::Groups])
        );
        assert_eq!(plan([role(1), RealmPart::Settings]), None);
        assert_eq!(
            plan(
                (0..=MAX_SINGLE_OBJECTS)
                    .map(role)
                    .chain([RealmPart::Providers])
            ),
            Some(vec![RealmPart::Roles, RealmPart::Providers])
        );
        assert_eq!(
            plan([role(1), RealmPart::Roles]),
            Some(vec![RealmPart::Roles])
        );
        let clients = (0..=MAX_SINGLE_OBJECTS).map(|i| RealmPart::Client(i.to_string()));
        assert_eq!(plan(clients), None);
    }

    fn notice(text: &str) -> Change {
        serde_json::from_str::<super::super::Notice>(text)
            .unwrap()
            .change
    }

    #[test]
    fn realm_notices_name_their_parts_and_old_or_unknown_ones_rebuild_whole() {
        // What a node that predates partial reloads sends.
        assert_eq!(
            notice(r#"{"node":"n","t":"realm","id":"r1"}"#),
            Change::Realm {
                id: "r1".into(),
                parts: None
            }
        );
        let change = Change::Realm {
            id: "r1".into(),
            parts: Some(vec![RealmPart::Role("x".into()), RealmPart::Groups]),
        };
        let text = serde_json::to_string(&super::super::Notice {
            node: "n".into(),
            change: change.clone(),
        })
        .unwrap();
        assert_eq!(
            text,
            r#"{"node":"n","t":"realm","id":"r1","parts":[{"role":"x"},"groups"]}"#
        );
        assert_eq!(notice(&text), change);
        // A part this node does not know: the notice still reads, as a whole rebuild.
        assert_eq!(
            notice(r#"{"node":"n","t":"realm","id":"r1","parts":["groups",{"widget":"w"}]}"#),
            Change::Realm {
                id: "r1".into(),
                parts: None
            }
        );
    }
}
