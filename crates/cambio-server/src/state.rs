//! The server's shared state: the store, the in-memory realm snapshots with their keys, the
//! revocation sets, the user cache and the audit queue.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;
use cambio_core::model::{Client, ClientScope, Group, Realm, Role, User};
use cambio_core::realm::RealmSnapshot;
use cambio_jose::{SigningKey, VerifyingKey};
use cambio_store::{GLOBAL, Object, Store, StoreError, StoreResult};
use serde::{Serialize, de::DeserializeOwned};

use crate::admin::Approved;
use crate::audit::AuditQueue;
use crate::keys::{self, StoredKey};
pub use crate::revocations::Revocations;
use crate::secrets::SecretBox;
use crate::verified_tokens::VerifiedTokens;

mod batch;
mod groups;
mod partial;
pub use batch::WriteBatch;
use batch::{
    key_object, link_object, provider_object, realm_object, role_object, scope_object, user_object,
};
pub use groups::GroupRemoval;
pub use partial::RealmPart;

pub const KIND_REALM: &str = "realm";
pub const KIND_CLIENT: &str = "client";
pub const KIND_USER: &str = "user";
pub const KIND_ROLE: &str = "role";
pub const KIND_CLIENT_SCOPE: &str = "client-scope";
pub const KIND_KEY: &str = "key";
pub const KIND_AUTHZ_POLICY: &str = "authz-policy";
pub const KIND_AUTHZ_RESOURCE: &str = "authz-resource";
pub const KIND_AUTHZ_SCOPE: &str = "authz-scope";
pub const KIND_IDP: &str = "identity-provider";
pub const KIND_GROUP: &str = "group";
/// Links from `(provider alias, external subject)` to a local user id; the object's name is
/// [`federated_link_name`], so the store's unique index keeps one user per external identity.
pub const KIND_FEDERATED_LINK: &str = "federated-link";

/// The unique name of a federated link.
pub fn federated_link_name(alias: &str, external_subject: &str) -> String {
    format!("{alias}:{external_subject}")
}

/// One realm ready to serve: configuration snapshot, signing key, published keys.
pub struct RealmRuntime {
    pub snapshot: RealmSnapshot,
    /// The key new tokens are signed with.
    pub signer: SigningKey,
    /// Every key whose tokens may still be alive (the signer included).
    pub verifiers: Vec<VerifyingKey>,
    /// The JWKS document, serialized once.
    pub jwks_json: String,
    /// URLs derived from the issuer, computed once.
    pub token_endpoint: String,
    /// When the signing key or the published keys next change (a rotation taking effect).
    pub next_key_change: Option<u64>,
    /// A number no other runtime gets: the verified-token cache ties its entries to the
    /// runtime that verified them, so a rebuilt realm (new keys, new issuer) trusts none of them.
    pub generation: u64,
}

impl RealmRuntime {
    /// This realm as it would be with `clients` and `roles` added or replaced, to decide about
    /// a batch of writes (a partial import) before any of them is made. It serves no request.
    pub fn with_planned(&self, clients: &[Client], roles: &[Role]) -> RealmRuntime {
        self.with_snapshot(self.snapshot.clone().with_planned(clients, roles))
    }

    /// The realm as it will be with `groups` as all of its groups, to judge a change to
    /// groups and memberships before any of it is written.
    pub fn with_groups(&self, groups: Vec<Group>) -> RealmRuntime {
        self.with_snapshot(self.snapshot.clone().with_groups(groups))
    }

    pub(crate) fn with_snapshot(&self, snapshot: RealmSnapshot) -> RealmRuntime {
        RealmRuntime {
            snapshot,
            signer: self.signer.clone(),
            verifiers: self.verifiers.clone(),
            jwks_json: self.jwks_json.clone(),
            token_endpoint: self.token_endpoint.clone(),
            next_key_change: self.next_key_change,
            generation: self.generation,
        }
    }
}

/// A fresh [`RealmRuntime::generation`].
pub fn next_runtime_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl RealmRuntime {
    pub fn id(&self) -> &str {
        &self.snapshot.realm.id
    }
    pub fn name(&self) -> &str {
        &self.snapshot.realm.name
    }
    pub fn issuer(&self) -> &str {
        &self.snapshot.issuer
    }
}

/// Everything the handlers share.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub secrets: SecretBox,
    /// The public base URL including the relative path, without a trailing slash.
    pub base_url: String,
    realms: ArcSwap<HashMap<String, Arc<RealmRuntime>>>,
    pub revocations: Revocations,
    /// Cached users by realm id and user id: ids are unique only within a realm (a realm
    /// import keeps the ids it is given), so nothing here is looked up by id alone.
    users: RwLock<RealmKeyed<Arc<User>>>,
    pub audit: AuditQueue,
    pub metrics: crate::metrics::Metrics,
    /// This node's random id, carried in change notices so it ignores its own.
    pub node_id: String,
    /// How long a rotated-in key is published before it signs (so every node knows it first).
    pub key_activation_delay: u64,
    /// Token-bucket limits by client address and by client id, and password lockout.
    pub ip_limits: crate::limits::RateLimiter,
    pub client_limits: crate::limits::RateLimiter,
    pub logins: crate::limits::LoginGuard,
    /// Bounds concurrent password verifications (login form and password grant).
    pub password_hashing: crate::passwords::HashingGate,
    /// Admin changes on this node, one at a time (`admin::serialize_writes`).
    pub admin_writes: tokio::sync::Mutex<()>,
    /// Realm rebuilds on this node, one at a time: a rebuild reads the store and then replaces
    /// the runtime, so two at once could let the one that read first replace the later one.
    realm_rebuilds: tokio::sync::Mutex<()>,
    /// Service account user ids by realm id and client uuid, so client credentials read no
    /// database.
    service_accounts: RwLock<RealmKeyed<String>>,
    /// Identity providers' fetched keys.
    pub external_keys: Arc<crate::external_keys::ExternalKeys>,
    /// Access tokens verified recently, by any realm's runtime.
    pub verified_tokens: VerifiedTokens,
}

/// The most users kept in the cache before it is emptied and refilled on demand.
const USER_CACHE_LIMIT: usize = 200_000;

/// A bounded cache keyed by realm id and then by an id unique within that realm. Looking up
/// by `&str` pairs needs no allocation, which matters on the exchange path.
#[derive(Default)]
pub struct RealmKeyed<T> {
    by_realm: HashMap<String, HashMap<String, T>>,
    len: usize,
}

impl<T> RealmKeyed<T> {
    pub fn get(&self, realm_id: &str, id: &str) -> Option<&T> {
        self.by_realm.get(realm_id)?.get(id)
    }

    /// Inserts, emptying the whole cache first when it is full.
    pub fn insert(&mut self, realm_id: &str, id: &str, value: T) {
        if self.len >= USER_CACHE_LIMIT {
            self.by_realm.clear();
            self.len = 0;
        }
        let realm = self.by_realm.entry(realm_id.to_owned()).or_default();
        if realm.insert(id.to_owned(), value).is_none() {
            self.len += 1;
        }
    }

    pub fn remove(&mut self, realm_id: &str, id: &str) {
        if let Some(realm) = self.by_realm.get_mut(realm_id)
            && realm.remove(id).is_some()
        {
            self.len -= 1;
        }
    }

    pub fn remove_everywhere(&mut self, id: &str) {
        for realm in self.by_realm.values_mut() {
            if realm.remove(id).is_some() {
                self.len -= 1;
            }
        }
    }

    pub fn clear(&mut self) {
        self.by_realm.clear();
        self.len = 0;
    }
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        secrets: SecretBox,
        base_url: String,
        audit: AuditQueue,
    ) -> AppState {
        AppState {
            store,
            secrets,
            base_url,
            realms: ArcSwap::from_pointee(HashMap::new()),
            revocations: Revocations::default(),
            users: RwLock::new(RealmKeyed::default()),
            audit,
            metrics: crate::metrics::Metrics::default(),
            node_id: crate::random::uuid(),
            key_activation_delay: 0,
            ip_limits: crate::limits::RateLimiter::new(crate::limits::RateLimit::OFF),
            client_limits: crate::limits::RateLimiter::new(crate::limits::RateLimit::OFF),
            logins: crate::limits::LoginGuard::new(crate::limits::Lockout::default()),
            password_hashing: crate::passwords::HashingGate::new(
                crate::passwords::HashingLimit::default(),
            ),
            admin_writes: tokio::sync::Mutex::new(()),
            realm_rebuilds: tokio::sync::Mutex::new(()),
            service_accounts: RwLock::new(RealmKeyed::default()),
            verified_tokens: VerifiedTokens::new(crate::verified_tokens::DEFAULT_CAPACITY),
            external_keys: Arc::new(crate::external_keys::ExternalKeys::new(
                false,
                crate::external_keys::DEFAULT_REFETCH_INTERVAL,
            )),
        }
    }

    /// Configures identity-provider key fetching: plain HTTP to loopback addresses (tests and
    /// local development only) and the least time between refetches for unknown `kid`s.
    pub fn configure_external_keys(
        &mut self,
        allow_http_loopback: bool,
        refetch_interval: std::time::Duration,
    ) {
        self.external_keys = Arc::new(crate::external_keys::ExternalKeys::new(
            allow_http_loopback,
            refetch_interval,
        ));
    }

    /// An enabled realm: what the protocol endpoints serve. A disabled realm answers 404
    /// there, while administrators still reach it.
    pub fn active_realm(&self, name: &str) -> Option<Arc<RealmRuntime>> {
        self.realm(name).filter(|rt| rt.snapshot.realm.enabled)
    }

    /// Sets the request rate limits and the password lockout.
    pub fn configure_limits(
        &mut self,
        per_ip: crate::limits::RateLimit,
        per_client: crate::limits::RateLimit,
        lockout: crate::limits::Lockout,
    ) {
        self.ip_limits = crate::limits::RateLimiter::new(per_ip);
        self.client_limits = crate::limits::RateLimiter::new(per_client);
        self.logins = crate::limits::LoginGuard::new(lockout);
    }

    /// A realm by id (the store's records name realms by id).
    pub fn realm_by_id(&self, id: &str) -> Option<Arc<RealmRuntime>> {
        self.realms
            .load()
            .values()
            .find(|rt| rt.id() == id)
            .cloned()
    }

    pub fn realm(&self, name: &str) -> Option<Arc<RealmRuntime>> {
        self.realms.load().get(name).cloned()
    }

    pub fn issuer_for(&self, realm_name: &str) -> String {
        format!("{}/realms/{}", self.base_url, realm_name)
    }

    /// Loads every realm from the store and the revocation state, replacing what is in memory.
    pub async fn load_all(&self, now: u64) -> StoreResult<()> {
        let mut map = HashMap::new();
        for object in self.store.list_objects(GLOBAL, KIND_REALM).await? {
            let realm: Realm = decode(&object)?;
            let runtime = self.build_realm(realm, now).await?;
            map.insert(runtime.name().to_owned(), Arc::new(runtime));
        }
        self.realms.store(Arc::new(map));
        for session in self.store.list_revoked_sessions(now).await? {
            self.revocations
                .revoke_session(&session.id, session.expires_at);
        }
        for (jti, until) in self.store.list_revoked_token_ids(now).await? {
            // A session's revocation kept past the session's end, for its descendants.
            match jti.strip_prefix(crate::routes::token::REVOKED_SESSION_PREFIX) {
                Some(session) => self.revocations.revoke_session(session, until),
                None => self.revocations.revoke_token_id(&jti, until),
            }
        }
        for part in self.store.list_ended_client_sessions(now).await? {
            if let Some(ended_at) = part.ended_at {
                self.revocations.end_client_part(
                    &part.session_id,
                    &part.client_id,
                    ended_at,
                    part.expires_at,
                );
            }
        }
        Ok(())
    }

    /// Rebuilds one realm's snapshot after its configuration changed, here and (through the
    /// store's notifications) on every other node. A change to only some kinds of objects
    /// reloads just those ([`AppState::reload_parts`]).
    pub async fn reload_realm(&self, realm_id: &str, now: u64) -> StoreResult<()> {
        self.reload_parts(realm_id, [RealmPart::Settings], now)
            .await
    }

    /// A stored client with its secret opened.
    fn decode_client(&self, object: &Object) -> StoreResult<Client> {
        let mut client: Client = decode(object)?;
        if let Some(sealed) = client.secret.take() {
            let plain = self
                .secrets
                .open(&client.id, &sealed)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            client.secret =
                Some(String::from_utf8(plain).map_err(|e| StoreError::Corrupt(e.to_string()))?);
        }
        Ok(client)
    }

    /// Rebuilds one realm's snapshot on this node only.
    pub async fn reload_realm_local(&self, realm_id: &str, now: u64) -> StoreResult<()> {
        let _turn = self.realm_rebuilds.lock().await;
        let object = self.store.get_object(GLOBAL, KIND_REALM, realm_id).await?;
        let runtime = match object {
            Some(object) => Some(Arc::new(self.build_realm(decode(&object)?, now).await?)),
            None => None,
        };
        self.put_runtime(realm_id, runtime);
        Ok(())
    }

    /// Puts `runtime` in place of the realm's present one (None: the realm is gone).
    fn put_runtime(&self, realm_id: &str, runtime: Option<Arc<RealmRuntime>>) {
        let mut map: HashMap<String, Arc<RealmRuntime>> = (**self.realms.load()).clone();
        map.retain(|_, r| r.id() != realm_id);
        if let Some(runtime) = runtime {
            map.insert(runtime.name().to_owned(), runtime);
        }
        self.realms.store(Arc::new(map));
    }

    async fn build_realm(&self, realm: Realm, now: u64) -> StoreResult<RealmRuntime> {
        let id = realm.id.clone();
        let mut clients: Vec<Client> = Vec::new();
        for object in self.store.list_objects(&id, KIND_CLIENT).await? {
            clients.push(self.decode_client(&object)?);
        }
        let roles: Vec<Role> = decode_all(&self.store.list_objects(&id, KIND_ROLE).await?)?;
        let scopes: Vec<ClientScope> =
            decode_all(&self.store.list_objects(&id, KIND_CLIENT_SCOPE).await?)?;
        let stored_keys: Vec<StoredKey> =
            decode_all(&self.store.list_objects(&id, KIND_KEY).await?)?;
        let issuer = self.issuer_for(&realm.name);
        let alg = realm.default_signature_algorithm;
        let providers: Vec<cambio_core::federation::IdentityProvider> =
            decode_all(&self.store.list_objects(&id, KIND_IDP).await?)?;
        let policies: Vec<cambio_core::permissions::AuthzPolicy> =
            decode_all(&self.store.list_objects(&id, KIND_AUTHZ_POLICY).await?)?;
        let groups: Vec<cambio_core::model::Group> =
            decode_all(&self.store.list_objects(&id, KIND_GROUP).await?)?;
        let snapshot = RealmSnapshot::new(realm, issuer.clone(), clients, roles, scopes)
            .with_permissions(cambio_core::permissions::Permissions::new(policies))
            .with_providers(&providers)
            .with_groups(groups);
        let (signer, verifiers) = keys::select(&self.secrets, &stored_keys, alg, now)?;
        let jwks_json = keys::jwks_json(&verifiers);
        Ok(RealmRuntime {
            next_key_change: keys::next_change(&stored_keys, now),
            token_endpoint: format!("{issuer}/protocol/openid-connect/token"),
            snapshot,
            signer,
            verifiers,
            jwks_json,
            generation: next_runtime_generation(),
        })
    }

    /// A user by id, from the cache or the store.
    pub async fn user(&self, realm_id: &str, user_id: &str) -> StoreResult<Option<Arc<User>>> {
        let cached = self
            .users
            .read()
            .ok()
            .and_then(|m| m.get(realm_id, user_id).cloned());
        if let Some(user) = cached {
            return Ok(Some(user));
        }
        let Some(object) = self.store.get_object(realm_id, KIND_USER, user_id).await? else {
            return Ok(None);
        };
        let user: Arc<User> = Arc::new(decode(&object)?);
        if let Ok(mut map) = self.users.write() {
            map.insert(realm_id, user_id, user.clone());
        }
        Ok(Some(user))
    }

    /// A client's service account user, through the caches.
    pub async fn cached_service_account(
        &self,
        realm_id: &str,
        client: &Client,
    ) -> StoreResult<Option<Arc<User>>> {
        let known = self
            .service_accounts
            .read()
            .ok()
            .and_then(|m| m.get(realm_id, &client.id).cloned());
        if let Some(user_id) = known
            && let Some(user) = self.user(realm_id, &user_id).await?
            && user.service_account_client_id.as_deref() == Some(client.id.as_str())
        {
            return Ok(Some(user));
        }
        let Some(user) = self.service_account_of(realm_id, client).await? else {
            return Ok(None);
        };
        if let Ok(mut map) = self.service_accounts.write() {
            map.insert(realm_id, &client.id, user.id.clone());
        }
        Ok(Some(Arc::new(user)))
    }

    /// A user by username (case-insensitive, as Keycloak stores usernames lowercased).
    pub async fn user_by_name(&self, realm_id: &str, username: &str) -> StoreResult<Option<User>> {
        match self
            .store
            .find_object(realm_id, KIND_USER, &username.to_lowercase())
            .await?
        {
            Some(object) => Ok(Some(decode(&object)?)),
            None => Ok(None),
        }
    }

    // Writes of configuration objects. Client secrets are sealed on the way in.

    pub async fn insert_client(
        &self,
        realm_id: &str,
        client: &Approved<Client>,
    ) -> StoreResult<()> {
        self.store
            .insert_object(&self.client_object(realm_id, client)?)
            .await
    }

    fn client_object(&self, realm_id: &str, client: &Client) -> StoreResult<Object> {
        let mut stored = client.clone();
        stored.secret = client
            .secret
            .as_ref()
            .map(|s| self.secrets.seal(&client.id, s.as_bytes()));
        object(
            realm_id,
            KIND_CLIENT,
            &client.id,
            &client.client_id,
            &stored,
        )
    }

    pub async fn update_client(
        &self,
        realm_id: &str,
        client: &Approved<Client>,
    ) -> StoreResult<()> {
        self.store
            .update_object(&self.client_object(realm_id, client)?)
            .await
    }

    pub async fn update_user(&self, realm_id: &str, user: &Approved<User>) -> StoreResult<()> {
        let result = self
            .store
            .update_object(&user_object(realm_id, user)?)
            .await;
        self.forget_user(realm_id, &user.id);
        self.announce(Change::User {
            realm: Some(realm_id.to_owned()),
            id: user.id.clone(),
        })
        .await;
        result
    }

    pub async fn delete_user(&self, realm_id: &str, user_id: &str) -> StoreResult<bool> {
        let deleted = self.store.delete_object(realm_id, KIND_USER, user_id).await;
        self.forget_user(realm_id, user_id);
        self.announce(Change::User {
            realm: Some(realm_id.to_owned()),
            id: user_id.to_owned(),
        })
        .await;
        deleted
    }

    /// Forgets a cached user after it changed.
    pub fn forget_user(&self, realm_id: &str, user_id: &str) {
        if let Ok(mut map) = self.users.write() {
            map.remove(realm_id, user_id);
        }
    }

    /// The service account user of a client, if it has one.
    pub async fn service_account_of(
        &self,
        realm_id: &str,
        client: &Client,
    ) -> StoreResult<Option<User>> {
        Ok(self
            .user_by_name(realm_id, &format!("service-account-{}", client.client_id))
            .await?
            .filter(|u| u.service_account_client_id.as_deref() == Some(client.id.as_str())))
    }

    pub async fn insert_user(&self, realm_id: &str, user: &Approved<User>) -> StoreResult<()> {
        self.store
            .insert_object(&user_object(realm_id, user)?)
            .await
    }

    pub async fn insert_role(&self, realm_id: &str, role: &Approved<Role>) -> StoreResult<()> {
        self.store
            .insert_object(&role_object(realm_id, role)?)
            .await
    }

    pub async fn insert_client_scope(
        &self,
        realm_id: &str,
        scope: &ClientScope,
    ) -> StoreResult<()> {
        self.store
            .insert_object(&scope_object(realm_id, scope)?)
            .await
    }

    pub async fn insert_realm(&self, realm: &Approved<Realm>) -> StoreResult<()> {
        self.store.insert_object(&realm_object(realm)?).await
    }

    pub async fn insert_key(&self, realm_id: &str, key: &StoredKey) -> StoreResult<()> {
        self.store.insert_object(&key_object(realm_id, key)?).await
    }

    pub async fn update_key(&self, realm_id: &str, key: &StoredKey) -> StoreResult<()> {
        self.store.update_object(&key_object(realm_id, key)?).await
    }
}

pub fn object<T: Serialize>(
    realm_id: &str,
    kind: &str,
    id: &str,
    name: &str,
    value: &T,
) -> StoreResult<Object> {
    Ok(Object {
        realm_id: realm_id.to_owned(),
        kind: kind.to_owned(),
        id: id.to_owned(),
        name: name.to_owned(),
        doc: serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

pub fn decode<T: DeserializeOwned>(object: &Object) -> StoreResult<T> {
    serde_json::from_str(&object.doc)
        .map_err(|e| StoreError::Corrupt(format!("{} {}: {e}", object.kind, object.id)))
}

fn decode_all<T: DeserializeOwned>(objects: &[Object]) -> StoreResult<Vec<T>> {
    objects.iter().map(decode).collect()
}

// Admin API helpers for users, roles and client scopes.
impl AppState {
    /// A user of one realm, read from the store (never from the cache, whose entries are not
    /// tied to a realm): the admin API must not reach into another realm by user id.
    pub async fn user_of_realm(&self, realm_id: &str, user_id: &str) -> StoreResult<Option<User>> {
        match self.store.get_object(realm_id, KIND_USER, user_id).await? {
            Some(object) => Ok(Some(decode(&object)?)),
            None => Ok(None),
        }
    }

    /// Every user of a realm (service accounts included), ordered by username.
    pub async fn users_of_realm(&self, realm_id: &str) -> StoreResult<Vec<User>> {
        decode_all(&self.store.list_objects(realm_id, KIND_USER).await?)
    }

    /// Replaces a stored role (its unique key follows a rename).
    pub async fn replace_role(&self, realm_id: &str, role: &Approved<Role>) -> StoreResult<()> {
        self.store
            .update_object(&role_object(realm_id, role)?)
            .await
    }

    /// Replaces a stored client scope (its unique key follows a rename).
    pub async fn replace_client_scope(
        &self,
        realm_id: &str,
        scope: &ClientScope,
    ) -> StoreResult<()> {
        self.store
            .update_object(&scope_object(realm_id, scope)?)
            .await
    }
}

// Realm administration (admin/realms.rs, realm_io.rs).
impl AppState {
    /// The names of the realms loaded in memory.
    pub fn realm_names(&self) -> Vec<String> {
        self.realms.load().keys().cloned().collect()
    }

    /// Replaces a realm's stored settings (and name: a rename that is taken is a conflict).
    pub async fn update_realm(&self, realm: &Approved<Realm>) -> StoreResult<()> {
        self.store.update_object(&realm_object(realm)?).await
    }
}

// Identity providers (admin/idps.rs): their role mappings pass the escalation guard.
impl AppState {
    /// Stores a new identity provider; `Conflict` when its alias is taken.
    pub async fn insert_provider(
        &self,
        realm_id: &str,
        idp: &Approved<cambio_core::federation::IdentityProvider>,
    ) -> StoreResult<()> {
        self.store
            .insert_object(&provider_object(realm_id, idp)?)
            .await
    }

    /// Replaces a stored identity provider.
    pub async fn update_provider(
        &self,
        realm_id: &str,
        idp: &Approved<cambio_core::federation::IdentityProvider>,
    ) -> StoreResult<()> {
        self.store
            .update_object(&provider_object(realm_id, idp)?)
            .await
    }
}

/// A federated link's document.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedLink {
    pub user_id: String,
    pub identity_provider: String,
    pub external_subject: String,
}

impl AppState {
    /// The local user linked to an external identity.
    pub async fn user_by_federated_identity(
        &self,
        realm_id: &str,
        alias: &str,
        external_subject: &str,
    ) -> StoreResult<Option<Arc<User>>> {
        let Some(link) = self
            .store
            .find_object(
                realm_id,
                KIND_FEDERATED_LINK,
                &federated_link_name(alias, external_subject),
            )
            .await?
        else {
            return Ok(None);
        };
        let link: FederatedLink = decode(&link)?;
        self.user(realm_id, &link.user_id).await
    }

    /// Records the link of an external identity to a user; `Conflict` when the external
    /// identity is already linked.
    pub async fn insert_federated_link(
        &self,
        realm_id: &str,
        link: &FederatedLink,
    ) -> StoreResult<()> {
        self.store
            .insert_object(&link_object(realm_id, link)?)
            .await
    }

    /// Removes a user's link to a provider.
    pub async fn delete_federated_link(
        &self,
        realm_id: &str,
        user_id: &str,
        alias: &str,
    ) -> StoreResult<bool> {
        self.store
            .delete_object(realm_id, KIND_FEDERATED_LINK, &format!("{user_id}:{alias}"))
            .await
    }
}

/// A change one node tells the others about, so that their in-memory state follows the store.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Change {
    /// A realm's configuration changed (or the realm was deleted): reload the parts named,
    /// or rebuild its snapshot whole when none are (notices from nodes that predate parts,
    /// and parts this node cannot read).
    Realm {
        id: String,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "partial::lenient_parts"
        )]
        parts: Option<Vec<RealmPart>>,
    },
    /// A session ended: refuse its tokens until `until`.
    Session { id: String, until: u64 },
    /// An access token was revoked.
    Jti { id: String, until: u64 },
    /// A client's part of a session ended at `ended_at`.
    ClientSession {
        session: String,
        client: String,
        ended_at: u64,
        until: u64,
    },
    /// A user changed: drop it from the cache. Notices from nodes that predate `realm` name
    /// no realm; the user is then forgotten in every realm.
    User {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        realm: Option<String>,
        id: String,
    },
    /// Something was missed: reload everything.
    Resync,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Notice {
    /// The node that made the change; it has already applied it.
    node: String,
    #[serde(flatten)]
    change: Change,
}

impl AppState {
    /// Tells the other nodes. A failure is logged, not returned: the change itself is stored,
    /// and nodes resynchronise whenever their notification connection comes back.
    pub async fn announce(&self, change: Change) {
        let notice = Notice {
            node: self.node_id.clone(),
            change,
        };
        let Ok(text) = serde_json::to_string(&notice) else {
            return;
        };
        if let Err(error) = self.store.publish(&text).await {
            tracing::warn!(%error, "could not notify the other nodes of a change");
        }
    }

    /// Applies another node's change.
    pub async fn apply_notice(&self, text: &str, now: u64) {
        let Ok(notice) = serde_json::from_str::<Notice>(text) else {
            tracing::warn!("unreadable change notice ignored");
            return;
        };
        if notice.node == self.node_id {
            return;
        }
        let result = match notice.change {
            Change::Realm { id, parts } => self.apply_realm_change(&id, parts, now).await,
            Change::Session { id, until } => {
                self.revocations.revoke_session(&id, until);
                Ok(())
            }
            Change::Jti { id, until } => {
                self.revocations.revoke_token_id(&id, until);
                Ok(())
            }
            Change::ClientSession {
                session,
                client,
                ended_at,
                until,
            } => {
                self.revocations
                    .end_client_part(&session, &client, ended_at, until);
                Ok(())
            }
            Change::User { realm, id } => {
                if let Ok(mut map) = self.users.write() {
                    match realm {
                        Some(realm) => map.remove(&realm, &id),
                        None => map.remove_everywhere(&id),
                    }
                }
                Ok(())
            }
            Change::Resync => self.resync(now).await,
        };
        if let Err(error) = result {
            tracing::warn!(%error, "could not apply a change from another node");
        }
    }

    /// Reloads everything from the store: realms, revocations, and an empty user cache. While
    /// the store is unavailable, the cached users are kept: they are what lets requests that
    /// write nothing (token exchanges) go on being served meanwhile.
    pub async fn resync(&self, now: u64) -> StoreResult<()> {
        let loaded = self.load_all(now).await;
        if !matches!(loaded, Err(StoreError::Unavailable(_)))
            && let Ok(mut users) = self.users.write()
        {
            users.clear();
        }
        loaded
    }

    /// Ends a session in memory here and on every node (the caller stored it).
    pub async fn revoke_session_everywhere(&self, id: &str, until: u64) {
        self.revocations.revoke_session(id, until);
        self.announce(Change::Session {
            id: id.to_owned(),
            until,
        })
        .await;
    }

    /// Refuses an access token here and on every node (the caller stored it).
    pub async fn revoke_token_id_everywhere(&self, jti: &str, until: u64) {
        self.revocations.revoke_token_id(jti, until);
        self.announce(Change::Jti {
            id: jti.to_owned(),
            until,
        })
        .await;
    }

    /// Ends a client's part of a session in memory here and on every node (the caller stored
    /// it).
    pub async fn end_client_part_everywhere(
        &self,
        session_id: &str,
        client_id: &str,
        ended_at: u64,
        until: u64,
    ) {
        self.revocations
            .end_client_part(session_id, client_id, ended_at, until);
        self.announce(Change::ClientSession {
            session: session_id.to_owned(),
            client: client_id.to_owned(),
            ended_at,
            until,
        })
        .await;
    }

    /// Realms whose keys change at or before `now` (a rotation taking effect).
    pub fn realms_with_key_changes_due(&self, now: u64) -> Vec<String> {
        self.realms
            .load()
            .values()
            .filter(|rt| rt.next_key_change.is_some_and(|t| t <= now))
            .map(|rt| rt.id().to_owned())
            .collect()
    }
}
