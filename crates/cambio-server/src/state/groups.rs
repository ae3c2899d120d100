//! Stored groups. A group changes the roles of its members, so it reaches the store only as an
//! [`Approved`] value (`admin::escalation::approve_group` and `approve_group_removal`, or
//! [`Approved::by_system`] for imports).

use cambio_core::model::Group;
use cambio_store::StoreResult;

use super::AppState;
use super::batch::group_object;
use crate::admin::Approved;

/// The groups to delete: one group and everything below it, with the users who lose a
/// membership.
#[derive(Debug, Clone)]
pub struct GroupRemoval {
    pub group_ids: Vec<String>,
}

impl AppState {
    /// Stores a new group; `Conflict` when a sibling has its name.
    pub async fn insert_group(&self, realm_id: &str, group: &Approved<Group>) -> StoreResult<()> {
        self.store
            .insert_object(&group_object(realm_id, group)?)
            .await
    }

    /// Replaces a stored group (its unique key follows a rename or a move).
    pub async fn update_group(&self, realm_id: &str, group: &Approved<Group>) -> StoreResult<()> {
        self.store
            .update_object(&group_object(realm_id, group)?)
            .await
    }

    /// Deletes the groups and every membership of them, in one transaction. The realm
    /// snapshot ignores memberships of groups it does not hold, so the roles are gone as soon
    /// as the snapshot is rebuilt; rewriting the members keeps their documents clean (and a
    /// group imported later under a reused id gains no old members).
    pub async fn delete_groups(
        &self,
        realm_id: &str,
        removal: &Approved<GroupRemoval>,
    ) -> StoreResult<()> {
        let mut batch = self.write_batch(realm_id);
        batch.delete_groups(removal).await?;
        batch.commit().await
    }
}
