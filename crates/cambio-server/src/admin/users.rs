//! `/admin/realms/{realm}/users`: users, credentials, role mappings, sessions.

use std::sync::Arc;

use axum::Router;
use cambio_core::model::User;
use cambio_proto::admin::{FederatedIdentityRep, UserRep};

use crate::state::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
}

/// The Keycloak representation of a user (never its password hash).
pub fn to_rep(user: &User) -> UserRep {
    UserRep {
        id: Some(user.id.clone()),
        username: Some(user.username.clone()),
        enabled: Some(user.enabled),
        email: user.email.clone(),
        email_verified: Some(user.email_verified),
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        attributes: (!user.attributes.is_empty()).then(|| user.attributes.clone()),
        created_timestamp: Some(user.created_timestamp),
        required_actions: Some(Vec::new()),
        service_account_client_id: user.service_account_client_id.clone(),
        federated_identities: (!user.federated_identities.is_empty()).then(|| {
            user.federated_identities
                .iter()
                .map(|f| FederatedIdentityRep {
                    identity_provider: Some(f.identity_provider.clone()),
                    user_id: Some(f.user_id.clone()),
                    user_name: Some(f.user_name.clone()),
                })
                .collect()
        }),
        totp: Some(false),
        ..Default::default()
    }
}
