//! Writes of configuration objects gathered into one store transaction, so that an import is
//! stored whole or not at all: a store error, a conflict or a request cut off at its deadline
//! in the middle leaves nothing of it behind (`Store::write_objects`). What the writes mean to
//! the running server (cached users forgotten, other nodes told) happens after the commit.
//!
//! Each object is built by the same function as the single write of the same name in
//! `state.rs`, and what changes someone's roles still arrives only as an [`Approved`] value.

use cambio_core::federation::IdentityProvider;
use cambio_core::model::{Client, ClientScope, Group, Realm, Role, User};
use cambio_store::{GLOBAL, Object, ObjectWrite, StoreResult};

use super::groups::GroupRemoval;
use super::{
    AppState, Change, FederatedLink, KIND_CLIENT_SCOPE, KIND_FEDERATED_LINK, KIND_GROUP, KIND_IDP,
    KIND_KEY, KIND_REALM, KIND_ROLE, KIND_USER, decode_all, federated_link_name, object,
};
use crate::admin::Approved;
use crate::keys::StoredKey;

/// Writes to apply together; nothing reaches the store before [`WriteBatch::commit`].
pub struct WriteBatch<'a> {
    app: &'a AppState,
    realm_id: String,
    writes: Vec<ObjectWrite>,
    /// Users whose stored document changed: forgotten here and on the other nodes after the
    /// commit.
    changed_users: Vec<String>,
    /// New users: forgotten here after the commit, in case this node still holds a user of the
    /// same id (a realm deleted and imported again with the same ids).
    new_users: Vec<String>,
}

impl AppState {
    /// An empty batch of writes to one realm's objects (and the realm object itself).
    pub fn write_batch(&self, realm_id: &str) -> WriteBatch<'_> {
        WriteBatch {
            app: self,
            realm_id: realm_id.to_owned(),
            writes: Vec::new(),
            changed_users: Vec::new(),
            new_users: Vec::new(),
        }
    }
}

impl WriteBatch<'_> {
    fn insert(&mut self, stored: StoreResult<Object>) -> StoreResult<()> {
        self.writes.push(ObjectWrite::Insert(stored?));
        Ok(())
    }

    fn update(&mut self, stored: StoreResult<Object>) -> StoreResult<()> {
        self.writes.push(ObjectWrite::Update(stored?));
        Ok(())
    }

    pub fn insert_client(&mut self, client: &Approved<Client>) -> StoreResult<()> {
        self.insert(self.app.client_object(&self.realm_id, client))
    }

    pub fn update_client(&mut self, client: &Approved<Client>) -> StoreResult<()> {
        self.update(self.app.client_object(&self.realm_id, client))
    }

    pub fn insert_user(&mut self, user: &Approved<User>) -> StoreResult<()> {
        self.new_users.push(user.id.clone());
        self.insert(user_object(&self.realm_id, user))
    }

    pub fn update_user(&mut self, user: &Approved<User>) -> StoreResult<()> {
        self.changed_users.push(user.id.clone());
        self.update(user_object(&self.realm_id, user))
    }

    pub fn insert_role(&mut self, role: &Approved<Role>) -> StoreResult<()> {
        self.insert(role_object(&self.realm_id, role))
    }

    pub fn replace_role(&mut self, role: &Approved<Role>) -> StoreResult<()> {
        self.update(role_object(&self.realm_id, role))
    }

    pub fn insert_provider(&mut self, idp: &Approved<IdentityProvider>) -> StoreResult<()> {
        self.insert(provider_object(&self.realm_id, idp))
    }

    pub fn update_provider(&mut self, idp: &Approved<IdentityProvider>) -> StoreResult<()> {
        self.update(provider_object(&self.realm_id, idp))
    }

    pub fn insert_group(&mut self, group: &Approved<Group>) -> StoreResult<()> {
        self.insert(group_object(&self.realm_id, group))
    }

    /// Deletes the groups and every membership of them (see [`AppState::delete_groups`]).
    pub async fn delete_groups(&mut self, removal: &Approved<GroupRemoval>) -> StoreResult<()> {
        for id in &removal.group_ids {
            self.delete_object(KIND_GROUP, id);
        }
        let users: Vec<User> = decode_all(
            &self
                .app
                .store
                .list_objects(&self.realm_id, KIND_USER)
                .await?,
        )?;
        for mut user in users {
            let before = user.groups.len();
            user.groups.retain(|id| !removal.group_ids.contains(id));
            if user.groups.len() != before {
                // Losing memberships hands out nothing; the removal itself was approved.
                self.update_user(&Approved::by_system(user))?;
            }
        }
        Ok(())
    }

    pub fn insert_client_scope(&mut self, scope: &ClientScope) -> StoreResult<()> {
        self.insert(scope_object(&self.realm_id, scope))
    }

    pub fn insert_key(&mut self, key: &StoredKey) -> StoreResult<()> {
        self.insert(key_object(&self.realm_id, key))
    }

    pub fn insert_federated_link(&mut self, link: &FederatedLink) -> StoreResult<()> {
        self.insert(link_object(&self.realm_id, link))
    }

    /// The realm object itself (stored under [`GLOBAL`]).
    pub fn insert_realm(&mut self, realm: &Approved<Realm>) -> StoreResult<()> {
        self.insert(realm_object(realm))
    }

    /// An object no rule looks into (provider mappers, kept as data).
    pub fn insert_object(&mut self, stored: Object) {
        self.writes.push(ObjectWrite::Insert(stored));
    }

    /// An object no rule looks into (not a user: deleting one must forget and announce it).
    pub fn delete_object(&mut self, kind: &str, id: &str) {
        debug_assert_ne!(
            kind, KIND_USER,
            "users are deleted through AppState::delete_user"
        );
        self.writes.push(ObjectWrite::Delete {
            realm_id: self.realm_id.clone(),
            kind: kind.to_owned(),
            id: id.to_owned(),
        });
    }

    /// Stores every write in one transaction, then forgets the changed users here and tells
    /// the other nodes. Nothing is stored when this fails.
    pub async fn commit(self) -> StoreResult<()> {
        self.app.store.write_objects(&self.writes).await?;
        for id in &self.new_users {
            self.app.forget_user(&self.realm_id, id);
        }
        for id in self.changed_users {
            self.app.forget_user(&self.realm_id, &id);
            self.app
                .announce(Change::User {
                    realm: Some(self.realm_id.clone()),
                    id,
                })
                .await;
        }
        Ok(())
    }
}

// The stored form of each kind of object, shared by the single writes in `state.rs`.

/// A user, found by its lower-cased name.
pub(super) fn user_object(realm_id: &str, user: &User) -> StoreResult<Object> {
    object(
        realm_id,
        KIND_USER,
        &user.id,
        &user.username.to_lowercase(),
        user,
    )
}

/// A role, unique by name among the realm's roles or its client's.
pub(super) fn role_object(realm_id: &str, role: &Role) -> StoreResult<Object> {
    let name = match &role.client_id {
        Some(client) => format!("{client}/{}", role.name),
        None => role.name.clone(),
    };
    object(realm_id, KIND_ROLE, &role.id, &name, role)
}

pub(super) fn provider_object(realm_id: &str, idp: &IdentityProvider) -> StoreResult<Object> {
    object(realm_id, KIND_IDP, &idp.internal_id, &idp.alias, idp)
}

/// A group's unique name in the store: siblings may not share a name, groups under different
/// parents may. Parent ids hold no `/`, so `parent/name` cannot be read two ways.
pub(super) fn group_object(realm_id: &str, group: &Group) -> StoreResult<Object> {
    let name = format!(
        "{}/{}",
        group.parent_id.as_deref().unwrap_or(""),
        group.name
    );
    object(realm_id, KIND_GROUP, &group.id, &name, group)
}

pub(super) fn scope_object(realm_id: &str, scope: &ClientScope) -> StoreResult<Object> {
    object(realm_id, KIND_CLIENT_SCOPE, &scope.id, &scope.name, scope)
}

pub(super) fn key_object(realm_id: &str, key: &StoredKey) -> StoreResult<Object> {
    object(realm_id, KIND_KEY, &key.kid, &key.kid, key)
}

/// A link from an external identity to a user; its name keeps one user per external identity.
pub(super) fn link_object(realm_id: &str, link: &FederatedLink) -> StoreResult<Object> {
    let name = federated_link_name(&link.identity_provider, &link.external_subject);
    let id = format!("{}:{}", link.user_id, link.identity_provider);
    object(realm_id, KIND_FEDERATED_LINK, &id, &name, link)
}

pub(super) fn realm_object(realm: &Realm) -> StoreResult<Object> {
    object(GLOBAL, KIND_REALM, &realm.id, &realm.name, realm)
}
