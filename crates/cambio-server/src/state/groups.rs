//! Stored groups. A group changes the roles of its members, so it reaches the store only as an
//! [`Approved`] value (`admin::escalation::approve_group` and `approve_group_removal`, or
//! [`Approved::by_system`] for imports).

use cambio_core::model::{Group, User};
use cambio_store::StoreResult;

use super::{AppState, KIND_GROUP, KIND_USER, decode_all, object};
use crate::admin::Approved;

/// The groups to delete: one group and everything below it, with the users who lose a
/// membership.
#[derive(Debug, Clone)]
pub struct GroupRemoval {
    pub group_ids: Vec<String>,
}

/// A group's unique name in the store: siblings may not share a name, groups under different
/// parents may. Parent ids hold no `/`, so `parent/name` cannot be read two ways.
fn unique_name(group: &Group) -> String {
    format!(
        "{}/{}",
        group.parent_id.as_deref().unwrap_or(""),
        group.name
    )
}

impl AppState {
    /// Stores a new group; `Conflict` when a sibling has its name.
    pub async fn insert_group(&self, realm_id: &str, group: &Approved<Group>) -> StoreResult<()> {
        self.store
            .insert_object(&object(
                realm_id,
                KIND_GROUP,
                &group.id,
                &unique_name(group),
                &**group,
            )?)
            .await
    }

    /// Replaces a stored group (its unique key follows a rename or a move).
    pub async fn update_group(&self, realm_id: &str, group: &Approved<Group>) -> StoreResult<()> {
        self.store
            .update_object(&object(
                realm_id,
                KIND_GROUP,
                &group.id,
                &unique_name(group),
                &**group,
            )?)
            .await
    }

    /// Deletes the groups and then every membership of them. The realm snapshot ignores
    /// memberships of groups it does not hold, so the roles are gone as soon as the snapshot
    /// is rebuilt even if a user could not be rewritten; the rewrite keeps the documents
    /// clean (and a group imported later under a reused id gains no old members).
    pub async fn delete_groups(
        &self,
        realm_id: &str,
        removal: &Approved<GroupRemoval>,
    ) -> StoreResult<()> {
        for id in &removal.group_ids {
            self.store.delete_object(realm_id, KIND_GROUP, id).await?;
        }
        let users: Vec<User> = decode_all(&self.store.list_objects(realm_id, KIND_USER).await?)?;
        for mut user in users {
            let before = user.groups.len();
            user.groups.retain(|id| !removal.group_ids.contains(id));
            if user.groups.len() != before {
                // Losing memberships hands out nothing; the removal itself was approved.
                self.update_user(realm_id, &Approved::by_system(user))
                    .await?;
            }
        }
        Ok(())
    }
}
