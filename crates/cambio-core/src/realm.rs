//! An immutable, indexed view of one realm's configuration, built once when the configuration
//! changes and shared by every request. The exchange hot path reads only this.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use cambio_jose::VerifyingKey;

use crate::federation::{IdentityProvider, ProviderTrust};
use crate::model::{ATTR_JWKS, Client, ClientAuthenticator, ClientScope, Realm, Role, User};
use crate::permissions::Permissions;

mod partial;

/// Realm attribute listing extra grant type URIs that mean "exchange an external token".
pub const EXTERNAL_GRANT_TYPES: &str = "cambio.externalGrantTypes";

/// The roles a user holds, resolved through composites: realm role names and, per client
/// (by `client_id`), client role names. Ordered, so tokens are deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleSet {
    pub realm: BTreeSet<String>,
    pub clients: BTreeMap<String, BTreeSet<String>>,
}

/// An upper bound on the roles a token may carry: realm roles (`client` None) and client roles
/// by `client_id`.
pub trait RoleCap {
    fn allows(&self, client: Option<&str>, role: &str) -> bool;
}

impl RoleSet {
    pub fn is_empty(&self) -> bool {
        self.realm.is_empty() && self.clients.is_empty()
    }
}

/// One realm's configuration with lookup indexes.
#[derive(Debug, Clone, Default)]
pub struct RealmSnapshot {
    pub realm: Realm,
    /// The issuer URL, `{public base}/realms/{name}`.
    pub issuer: String,
    // The indexes that grow with the realm are persistent maps ([`Index`]); the small ones
    // (scopes, providers) are copied whole when they change.
    clients: Index<String, Arc<Client>>,
    client_uuid_by_client_id: Index<String, String>,
    roles: Index<String, Arc<Role>>,
    /// Realm role ids by name.
    realm_role_by_name: Index<String, String>,
    /// Client role ids by (client uuid, name).
    client_role_by_name: Index<(String, String), String>,
    scopes: Arc<HashMap<String, ClientScope>>,
    /// Parsed `private_key_jwt` keys by client uuid, so no request parses a JWKS.
    client_keys: Index<String, Arc<[VerifyingKey]>>,
    /// Fine-grained permissions of the `realm-management` authorization server.
    pub permissions: Permissions,
    /// Trusted external identity providers by alias (valid ones only).
    providers: Arc<HashMap<String, ProviderTrust>>,
    /// The realm's groups (see `crate::groups`).
    pub(crate) groups: crate::groups::GroupIndex,
    /// Client uuids by the normalised resource URIs they stand for (`crate::resource`); the
    /// first client listing a URI keeps it.
    client_by_resource: Index<String, String>,
}

/// A snapshot's index: a persistent hash map, whose clone is a pointer copy and whose insert
/// or removal copies only the nodes on the path to that entry. Snapshots are copied on every
/// change; with plain maps, one client created in a realm of 10,000 copied (and later freed)
/// 10,000 entries of each client index. Values are `Arc`s or small, since a copied node
/// clones the values it holds.
type Index<K, V> = imbl::HashMap<K, V>;

impl RealmSnapshot {
    pub fn new(
        realm: Realm,
        issuer: String,
        clients: Vec<Client>,
        roles: Vec<Role>,
        scopes: Vec<ClientScope>,
    ) -> Self {
        let mut snapshot = RealmSnapshot {
            realm,
            issuer,
            ..Default::default()
        };
        for client in clients {
            snapshot.insert_client(client);
        }
        snapshot.index_resources();
        for role in roles {
            snapshot.insert_role(role);
        }
        for scope in scopes {
            Arc::make_mut(&mut snapshot.scopes).insert(scope.name.clone(), scope);
        }
        snapshot
    }

    /// Client uuids by the resource URIs they stand for. When several clients list one URI,
    /// the one with the smallest `clientId` keeps it, whatever order the store lists them in,
    /// so a full rebuild and [`RealmSnapshot::with_client`] always agree.
    fn index_resources(&mut self) {
        let mut index: HashMap<String, (&str, &str)> = HashMap::new();
        for client in self.clients.values() {
            for uri in client
                .attribute(crate::resource::ATTR_RESOURCE_URIS)
                .unwrap_or("")
                .split_whitespace()
                .filter_map(crate::resource::normalise)
            {
                let candidate = (client.client_id.as_str(), client.id.as_str());
                index
                    .entry(uri)
                    .and_modify(|kept| *kept = (*kept).min(candidate))
                    .or_insert(candidate);
            }
        }
        self.client_by_resource = index
            .into_iter()
            .map(|(uri, (_, id))| (uri, id.to_owned()))
            .collect();
    }

    /// The realm with one client put in place (`Some`) or taken out (`None`), every index that
    /// derives from clients updated, and nothing else rebuilt: a client created or changed in
    /// a realm of many clients costs what that client costs, not what the realm does.
    pub fn with_client(mut self, id: &str, client: Option<Client>) -> Self {
        let old = self.clients.remove(id);
        if let Some(old) = &old
            && self
                .client_uuid_by_client_id
                .get(&old.client_id)
                .map(String::as_str)
                == Some(id)
        {
            self.client_uuid_by_client_id.remove(&old.client_id);
        }
        self.client_keys.remove(id);
        // Only clients that list resource URIs take part in the resource index; rebuilding it
        // reads every client, so it is left alone when neither version of this one lists any.
        let lists_resources = |client: &Client| {
            client
                .attribute(crate::resource::ATTR_RESOURCE_URIS)
                .is_some_and(|uris| !uris.trim().is_empty())
        };
        let resources_changed = old.as_deref().is_some_and(lists_resources)
            || client.as_ref().is_some_and(lists_resources);
        if let Some(client) = client {
            self.insert_client(client);
        }
        if resources_changed {
            self.index_resources();
        }
        self
    }

    /// Adds a client and its `clientId` and key indexes (the resource index is the caller's).
    fn insert_client(&mut self, client: Client) {
        if client.client_authenticator_type == ClientAuthenticator::PrivateKeyJwt {
            // A JWKS that does not parse leaves the client without keys: it cannot log in.
            let keys = client
                .attribute(ATTR_JWKS)
                .and_then(|jwks| cambio_jose::parse_jwks(jwks.as_bytes(), None).ok())
                .unwrap_or_default();
            self.client_keys.insert(client.id.clone(), keys.into());
        }
        self.client_uuid_by_client_id
            .insert(client.client_id.clone(), client.id.clone());
        self.clients.insert(client.id.clone(), Arc::new(client));
    }

    /// The realm as it would be with `clients` and `roles` added (or put in place of the ones
    /// with the same id), for deciding about a batch of writes before any is made.
    pub fn with_planned(mut self, clients: &[Client], roles: &[Role]) -> Self {
        for client in clients {
            self.client_uuid_by_client_id
                .insert(client.client_id.clone(), client.id.clone());
            self.clients
                .insert(client.id.clone(), Arc::new(client.clone()));
        }
        for role in roles {
            match &role.client_id {
                None => self
                    .realm_role_by_name
                    .insert(role.name.clone(), role.id.clone()),
                Some(client) => self
                    .client_role_by_name
                    .insert((client.clone(), role.name.clone()), role.id.clone()),
            };
            self.roles.insert(role.id.clone(), Arc::new(role.clone()));
        }
        self
    }

    /// Adds the realm's fine-grained permissions.
    pub fn with_permissions(mut self, permissions: Permissions) -> Self {
        self.permissions = permissions;
        self
    }

    /// The realm with `providers` as all of its identity providers (in place of any it had);
    /// ones whose configuration does not validate are left out (the admin API refuses to
    /// store them, so this only guards old data).
    pub fn with_providers(mut self, providers: &[IdentityProvider]) -> Self {
        Arc::make_mut(&mut self.providers).clear();
        for idp in providers {
            if let Ok(trust) = ProviderTrust::from_provider(idp) {
                Arc::make_mut(&mut self.providers).insert(idp.alias.clone(), trust);
            }
        }
        self
    }

    pub fn provider(&self, alias: &str) -> Option<&ProviderTrust> {
        self.providers.get(alias)
    }

    pub fn providers(&self) -> impl Iterator<Item = &ProviderTrust> {
        self.providers.values()
    }

    /// The provider a grant type selects, when a provider declares it as an alias.
    pub fn provider_for_grant(&self, grant_type: &str) -> Option<&ProviderTrust> {
        self.providers
            .values()
            .find(|p| p.grant_types.iter().any(|g| g == grant_type))
    }

    /// Whether a grant type maps to the external exchange flow: declared by a provider, or
    /// by the realm attribute `cambio.externalGrantTypes`.
    pub fn is_external_grant(&self, grant_type: &str) -> bool {
        self.provider_for_grant(grant_type).is_some()
            || self
                .realm
                .attributes
                .get(EXTERNAL_GRANT_TYPES)
                .is_some_and(|v| v.split([' ', ',']).any(|g| g == grant_type))
    }

    pub fn name(&self) -> &str {
        &self.realm.name
    }

    pub fn client(&self, uuid: &str) -> Option<&Arc<Client>> {
        self.clients.get(uuid)
    }

    pub fn client_by_client_id(&self, client_id: &str) -> Option<&Arc<Client>> {
        self.client_uuid_by_client_id
            .get(client_id)
            .and_then(|uuid| self.clients.get(uuid))
    }

    /// The client standing for a resource URI (normalised by `crate::resource::normalise`).
    pub fn client_by_resource(&self, uri: &str) -> Option<&Arc<Client>> {
        self.client_by_resource
            .get(uri)
            .and_then(|uuid| self.clients.get(uuid))
    }

    /// Every normalised resource URI with the client standing for it, in no particular order.
    pub fn resources(&self) -> impl Iterator<Item = (&str, &Arc<Client>)> {
        self.client_by_resource
            .iter()
            .filter_map(|(uri, uuid)| Some((uri.as_str(), self.clients.get(uuid)?)))
    }

    /// The registered `private_key_jwt` keys of a client (empty when it has none).
    pub fn client_keys(&self, uuid: &str) -> &[VerifyingKey] {
        self.client_keys
            .get(uuid)
            .map(|keys| &**keys)
            .unwrap_or(&[])
    }

    pub fn clients(&self) -> impl Iterator<Item = &Arc<Client>> {
        self.clients.values()
    }

    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.get(id).map(|role| &**role)
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values().map(|role| &**role)
    }

    pub fn realm_role_id(&self, name: &str) -> Option<&str> {
        self.realm_role_by_name.get(name).map(String::as_str)
    }

    pub fn client_role_id(&self, client_uuid: &str, name: &str) -> Option<&str> {
        self.client_role_by_name
            .get(&(client_uuid.to_owned(), name.to_owned()))
            .map(String::as_str)
    }

    pub fn client_scope(&self, name: &str) -> Option<&ClientScope> {
        self.scopes.get(name)
    }

    pub fn client_scopes(&self) -> impl Iterator<Item = &ClientScope> {
        self.scopes.values()
    }

    /// Every role id the user holds: direct mappings, the roles of its groups and of every
    /// group above them, the realm's default roles, and everything reachable through
    /// composites (cycles are harmless).
    pub fn effective_role_ids(&self, user: &User) -> BTreeSet<String> {
        self.effective_roles(user)
            .into_iter()
            .map(|(id, _)| id.to_owned())
            .collect()
    }

    /// The roles `user` holds, through its groups (Keycloak: a member holds the roles of its
    /// group and of every ancestor group), composites and the realm's default roles, each once
    /// (in no particular order), with their ids. Mappings to deleted roles and memberships of
    /// deleted groups are ignored. Every role decision (tokens, exchange narrowing, the admin
    /// caller, the escalation guard) comes through here.
    fn effective_roles<'s>(&'s self, user: &'s User) -> Vec<(&'s str, &'s Role)> {
        let mut pending: Vec<&str> = user.role_ids.iter().map(String::as_str).collect();
        pending.extend(self.roles_through_groups(user.groups.iter().map(String::as_str)));
        // Service accounts do not get the realm's default roles in Cambio: a machine identity
        // holds only what was given to it.
        if user.service_account_client_id.is_none() {
            pending.extend(
                self.realm
                    .default_roles
                    .iter()
                    .filter_map(|name| self.realm_role_id(name)),
            );
        }
        let mut seen: HashSet<&str> = HashSet::with_capacity(pending.len() * 2);
        let mut found = Vec::with_capacity(pending.len());
        while let Some(id) = pending.pop() {
            if !seen.insert(id) {
                continue;
            }
            if let Some((id, role)) = self.roles.get_key_value(id) {
                pending.extend(role.composites.iter().map(String::as_str));
                found.push((id.as_str(), &**role));
            }
        }
        found
    }

    /// The roles `user` holds that `client` may put in a token: all of them with full scope,
    /// otherwise the client's own roles and its scope mappings.
    pub fn roles_in_scope(&self, user: &User, client: &Client) -> RoleSet {
        self.roles_in_scope_within(user, client, None)
    }

    /// [`Self::roles_in_scope`], keeping only roles also in `ceiling` when one is given (an
    /// exchange never issues more than its subject token carried). The same as intersecting
    /// afterwards, without building the larger set first.
    pub fn roles_in_scope_within(
        &self,
        user: &User,
        client: &Client,
        ceiling: Option<&dyn RoleCap>,
    ) -> RoleSet {
        let mut set = RoleSet::default();
        for (id, role) in self.effective_roles(user) {
            let in_scope = client.full_scope_allowed
                || role.client_id.as_deref() == Some(client.id.as_str())
                || client.scope_role_ids.iter().any(|s| s == id);
            if !in_scope {
                continue;
            }
            match &role.client_id {
                None => {
                    if ceiling.is_none_or(|c| c.allows(None, &role.name)) {
                        set.realm.insert(role.name.clone());
                    }
                }
                Some(owner) => {
                    let Some(owner) = self.clients.get(owner) else {
                        continue;
                    };
                    let allowed =
                        ceiling.is_none_or(|c| c.allows(Some(&owner.client_id), &role.name));
                    if allowed {
                        set.clients
                            .entry(owner.client_id.clone())
                            .or_default()
                            .insert(role.name.clone());
                    }
                }
            }
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A role for test realms (also used by `partial`'s tests).
    pub(super) fn role(id: &str, name: &str, client: Option<&str>, composites: &[&str]) -> Role {
        Role {
            id: id.into(),
            name: name.into(),
            client_id: client.map(String::from),
            composites: composites.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    /// What a snapshot says about its clients: each client by uuid, by clientId, its keys, and
    /// which client each resource URI names.
    fn client_view(snapshot: &RealmSnapshot) -> Vec<String> {
        let mut view: Vec<String> = snapshot
            .clients()
            .map(|c| {
                format!(
                    "{} {} keys={} by_id={}",
                    c.id,
                    c.client_id,
                    snapshot.client_keys(&c.id).len(),
                    snapshot
                        .client_by_client_id(&c.client_id)
                        .map(|found| found.id.as_str())
                        .unwrap_or("-")
                )
            })
            .collect();
        view.extend(
            snapshot
                .resources()
                .map(|(uri, client)| format!("{uri} -> {}", client.id)),
        );
        view.sort();
        view
    }

    #[test]
    fn one_client_put_in_place_gives_the_realm_a_full_rebuild_would() {
        let client = |id: &str, client_id: &str, resources: &str| {
            let mut c = Client {
                id: id.into(),
                client_id: client_id.into(),
                ..Default::default()
            };
            c.attributes
                .insert(crate::resource::ATTR_RESOURCE_URIS.into(), resources.into());
            c
        };
        let a = client(
            "c-a",
            "zeta",
            "https://api.example/ https://shared.example/",
        );
        let b = client("c-b", "alpha", "https://shared.example/");
        let c = client("c-c", "mid", "https://mid.example/");
        let base = RealmSnapshot::new(
            Realm::default(),
            String::new(),
            vec![a.clone(), b.clone(), c.clone()],
            vec![],
            vec![],
        );
        // The smallest clientId keeps a shared URI, in any store order.
        assert_eq!(
            base.client_by_resource("https://shared.example/")
                .map(|x| x.id.as_str()),
            Some("c-b")
        );
        let renamed = client("c-b", "omega", "https://other.example/");
        let added = client("c-d", "beta", "https://shared.example/");
        let changed = base
            .clone()
            .with_client("c-b", Some(renamed.clone()))
            .with_client("c-d", Some(added.clone()))
            .with_client("c-c", None);
        let rebuilt = RealmSnapshot::new(
            Realm::default(),
            String::new(),
            vec![added, renamed, a],
            vec![],
            vec![],
        );
        assert_eq!(client_view(&changed), client_view(&rebuilt));
        assert!(changed.client_by_client_id("alpha").is_none());
        assert!(changed.client("c-c").is_none());
        assert_eq!(
            changed
                .client_by_resource("https://shared.example/")
                .map(|x| x.id.as_str()),
            Some("c-d")
        );
        // A client that stops listing URIs gives them up; one that lists none (which leaves
        // the resource index as it is) changes nothing in it.
        let quiet = changed
            .with_client("c-a", Some(client("c-a", "zeta", " ")))
            .with_client("c-e", Some(client("c-e", "aaa-plain", "")));
        assert!(quiet.client_by_resource("https://api.example/").is_none());
        assert_eq!(
            quiet
                .client_by_resource("https://shared.example/")
                .map(|x| x.id.as_str()),
            Some("c-d")
        );
        let mut uris: Vec<&str> = quiet.resources().map(|(uri, _)| uri).collect();
        uris.sort();
        assert_eq!(uris, ["https://other.example/", "https://shared.example/"]);
    }

    #[test]
    fn planned_roles_and_clients_are_found_and_replace_by_id() {
        let current = snapshot();
        let planned = current.clone().with_planned(
            &[Client {
                id: "c-new".into(),
                client_id: "new-app".into(),
                ..Default::default()
            }],
            &[
                role("r-new", "auditor", None, &["r-user"]),
                role("r-admin", "admin", None, &[]),
                role("r-view", "view", Some("c-new"), &[]),
            ],
        );
        assert_eq!(planned.client_by_client_id("new-app").unwrap().id, "c-new");
        assert_eq!(planned.realm_role_id("auditor"), Some("r-new"));
        assert_eq!(planned.client_role_id("c-new", "view"), Some("r-view"));
        // A replaced role keeps its id and loses what it contained before.
        assert_eq!(
            planned.role("r-admin").unwrap().composites,
            Vec::<String>::new()
        );
        assert!(planned.role_closure(["r-new"], None).contains("r-user"));
        // The realm it was planned from is unchanged.
        assert_eq!(current.role("r-admin").unwrap().composites.len(), 2);
        assert!(current.client_by_client_id("new-app").is_none());
    }

    fn snapshot() -> RealmSnapshot {
        let clients = vec![
            Client {
                id: "c-orders".into(),
                client_id: "orders-api".into(),
                ..Default::default()
            },
            Client {
                id: "c-narrow".into(),
                client_id: "narrow".into(),
                full_scope_allowed: false,
                scope_role_ids: vec!["r-user".into()],
                ..Default::default()
            },
        ];
        let roles = vec![
            role("r-user", "user", None, &[]),
            role("r-admin", "admin", None, &["r-user", "r-read"]),
            role("r-read", "read", Some("c-orders"), &["r-admin"]),
            role("r-offline", "offline_access", None, &[]),
        ];
        let realm = Realm {
            default_roles: vec!["offline_access".into()],
            ..Default::default()
        };
        RealmSnapshot::new(realm, "http://x/realms/r".into(), clients, roles, vec![])
    }

    #[test]
    fn composites_resolve_through_cycles() {
        let snap = snapshot();
        let user = User {
            role_ids: vec!["r-admin".into(), "r-deleted".into()],
            ..Default::default()
        };
        let ids: Vec<_> = snap.effective_role_ids(&user).into_iter().collect();
        assert_eq!(ids, ["r-admin", "r-offline", "r-read", "r-user"]);
    }

    #[test]
    fn scope_limits_roles_without_full_scope() {
        let snap = snapshot();
        let user = User {
            role_ids: vec!["r-admin".into()],
            ..Default::default()
        };
        let narrow = snap.client_by_client_id("narrow").unwrap().clone();
        let set = snap.roles_in_scope(&user, &narrow);
        assert_eq!(set.realm.iter().collect::<Vec<_>>(), ["user"]);
        assert!(set.clients.is_empty());
        let orders = snap.client_by_client_id("orders-api").unwrap().clone();
        let set = snap.roles_in_scope(&user, &orders);
        assert_eq!(set.realm.len(), 3);
        assert_eq!(
            set.clients["orders-api"].iter().collect::<Vec<_>>(),
            ["read"]
        );
    }

    #[test]
    fn service_accounts_get_no_default_roles() {
        let snap = snapshot();
        let user = User {
            service_account_client_id: Some("c-orders".into()),
            ..Default::default()
        };
        assert!(snap.effective_role_ids(&user).is_empty());
    }
}
