//! The realm's signing keys: `GET /admin/realms/{realm}/keys` (Keycloak's
//! `KeysMetadataRepresentation`) and rotation.
//!
//! Cambio has no key-provider components: every stored key is its own provider, so a key's
//! `providerId` is its `kid`, and its `providerPriority` is the priority it signs with (0 for
//! Cambio's own keys, Keycloak's for imported ones). Private keys never leave the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Need, authorize, realm_or_404};
use crate::error::{ApiError, ApiResult};
use crate::keys::{StoredKey, signing_choice};
use crate::random;
use crate::state::{AppState, KIND_KEY, decode};

/// Keycloak's `KeysMetadataRepresentation`.
#[derive(Debug, Serialize)]
pub struct KeysMetadata {
    /// For each algorithm, the `kid` of the key that signs with it now.
    active: BTreeMap<String, String>,
    keys: Vec<KeyMetadata>,
}

/// Keycloak's `KeyMetadataRepresentation`, for a signing key.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyMetadata {
    provider_id: String,
    provider_priority: i64,
    kid: String,
    status: &'static str,
    #[serde(rename = "type")]
    key_type: &'static str,
    algorithm: &'static str,
    /// Base64 DER `SubjectPublicKeyInfo`.
    public_key: String,
    #[serde(rename = "use")]
    key_use: &'static str,
    /// Milliseconds since the epoch at which the key leaves the JWKS, when that is scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_to: Option<u64>,
}

/// The realm's keys as they stand now: what signs, what only verifies, what is over. Needs
/// `view-realm`, as in Keycloak.
pub async fn list_keys(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<KeysMetadata>> {
    authorize(&app, &headers, &realm, Need::ViewRealm).await?;
    let rt = realm_or_404(&app, &realm)?;
    let mut stored: Vec<StoredKey> = app
        .store
        .list_objects(rt.id(), KIND_KEY)
        .await?
        .iter()
        .map(decode)
        .collect::<Result<_, _>>()?;
    let now = random::now();
    Ok(Json(metadata(&app, &mut stored, now)?))
}

fn metadata(app: &AppState, stored: &mut [StoredKey], now: u64) -> ApiResult<KeysMetadata> {
    // Keycloak lists keys by provider priority, highest first; the newest first among equals.
    // A retired key is older than any key not retired, even when both were made in the same
    // second (a rotation right after start), so it never comes first by a chance of `kid`s.
    stored.sort_by(|a, b| {
        let rank = |k: &StoredKey| (k.priority, k.retired_at.is_none(), k.created_at);
        (rank(b), &a.kid).cmp(&(rank(a), &b.kid))
    });
    let mut active = BTreeMap::new();
    for key in stored.iter() {
        if let Some(chosen) = signing_choice(stored, key.alg, now) {
            active.insert(key.alg.as_str().to_owned(), chosen.kid.clone());
        }
    }
    let keys = stored
        .iter()
        .map(|key| {
            Ok(KeyMetadata {
                provider_id: key.kid.clone(),
                provider_priority: key.priority,
                kid: key.kid.clone(),
                status: key.status(now).as_str(),
                key_type: key.alg.key_type(),
                algorithm: key.alg.as_str(),
                public_key: STANDARD.encode(key.public_key_der(&app.secrets)?),
                key_use: "SIG",
                valid_to: key.valid_until().map(|t| t.saturating_mul(1000)),
            })
        })
        .collect::<ApiResult<_>>()?;
    Ok(KeysMetadata { active, keys })
}

/// Starts signing with a fresh key; the previous keys stay published until tokens they
/// signed have expired.
pub async fn rotate_keys(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    authorize(&app, &headers, &realm, Need::ManageRealm).await?;
    let rt = realm_or_404(&app, &realm)?;
    let now = random::now();
    let snapshot = &rt.snapshot;
    let longest = snapshot
        .clients()
        .map(|c| c.access_token_lifespan(&snapshot.realm))
        .max()
        .unwrap_or(0)
        .max(snapshot.realm.access_token_lifespan);
    // One rotation at a time across all nodes.
    let Some(_lock) = app
        .store
        .try_lock_job(&format!("cambio.keys.{}", rt.id()))
        .await?
    else {
        return Err(ApiError::Admin {
            status: StatusCode::CONFLICT,
            message: "A key rotation is already in progress".into(),
        });
    };
    let kid = crate::keys::rotate(
        &app,
        rt.id(),
        snapshot.realm.default_signature_algorithm,
        longest + 60,
        app.key_activation_delay,
        now,
    )
    .await?;
    app.reload_realm(rt.id(), now).await?;
    Ok(Json(json!({"kid": kid})))
}
