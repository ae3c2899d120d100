//! Realm signing keys: generation, storage (private keys sealed with the data-encryption key),
//! selection of the active key, the published JWKS, and rotation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cambio_jose::{Algorithm, JwkSet, SigningKey, VerifyingKey};
use cambio_store::{StoreError, StoreResult};
use serde::{Deserialize, Serialize};

use crate::secrets::SecretBox;
use crate::state::AppState;

/// A signing key as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredKey {
    pub kid: String,
    pub alg: Algorithm,
    /// PKCS#8 DER, sealed.
    pub private_key: String,
    pub created_at: u64,
    /// When the key stopped signing; None while it is active.
    pub retired_at: Option<u64>,
    /// Until when the public key stays in the JWKS after retirement.
    pub publish_until: Option<u64>,
}

impl StoredKey {
    pub fn generate(
        secrets: &SecretBox,
        alg: Algorithm,
        now: u64,
    ) -> StoreResult<(StoredKey, SigningKey)> {
        let key = SigningKey::generate(alg).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let der = key.pkcs8_der();
        let stored = StoredKey {
            kid: key.kid().to_owned(),
            alg,
            private_key: secrets.seal(key.kid(), STANDARD.encode(&*der).as_bytes()),
            created_at: now,
            retired_at: None,
            publish_until: None,
        };
        Ok((stored, key))
    }

    fn open(&self, secrets: &SecretBox) -> StoreResult<SigningKey> {
        let b64 = secrets
            .open(&self.kid, &self.private_key)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let der = STANDARD
            .decode(&b64)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        SigningKey::from_pkcs8(self.alg, &der).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    fn published(&self, now: u64) -> bool {
        self.retired_at.is_none() || self.publish_until.is_some_and(|until| until > now)
    }
}

/// Picks the newest active key of `alg` to sign with, and every key still published.
pub fn select(
    secrets: &SecretBox,
    stored: &[StoredKey],
    alg: Algorithm,
    now: u64,
) -> StoreResult<(SigningKey, Vec<VerifyingKey>)> {
    let active = stored
        .iter()
        .filter(|k| k.alg == alg && k.retired_at.is_none())
        .max_by_key(|k| k.created_at)
        .ok_or_else(|| StoreError::Corrupt(format!("no active {} signing key", alg.as_str())))?;
    let signer = active.open(secrets)?;
    let mut verifiers = Vec::new();
    for key in stored.iter().filter(|k| k.published(now)) {
        verifiers.push(key.open(secrets)?.verifying_key());
    }
    Ok((signer, verifiers))
}

pub fn jwks_json(keys: &[VerifyingKey]) -> String {
    let set = JwkSet {
        keys: keys.iter().map(VerifyingKey::to_jwk).collect(),
    };
    serde_json::to_string(&set).unwrap_or_else(|_| "{\"keys\":[]}".to_owned())
}

/// Makes sure a realm has an active key for `alg`, generating one if needed.
pub async fn ensure_active_key(
    state: &AppState,
    realm_id: &str,
    alg: Algorithm,
    now: u64,
) -> StoreResult<()> {
    let stored: Vec<StoredKey> = state
        .store
        .list_objects(realm_id, crate::state::KIND_KEY)
        .await?
        .iter()
        .map(crate::state::decode)
        .collect::<StoreResult<_>>()?;
    if stored
        .iter()
        .any(|k| k.alg == alg && k.retired_at.is_none())
    {
        return Ok(());
    }
    let (key, _) = StoredKey::generate(&state.secrets, alg, now)?;
    state.insert_key(realm_id, &key).await
}

/// Starts signing with a new key. The old ones stay in the JWKS until every token they signed
/// has expired: `keep_published` should be the longest access-token lifetime of the realm.
pub async fn rotate(
    state: &AppState,
    realm_id: &str,
    alg: Algorithm,
    keep_published: u64,
    now: u64,
) -> StoreResult<String> {
    let stored: Vec<StoredKey> = state
        .store
        .list_objects(realm_id, crate::state::KIND_KEY)
        .await?
        .iter()
        .map(crate::state::decode)
        .collect::<StoreResult<_>>()?;
    let (fresh, _) = StoredKey::generate(&state.secrets, alg, now)?;
    // Publish the new key first, then retire the old ones: a verifier never sees a token
    // signed by a key it cannot find.
    state.insert_key(realm_id, &fresh).await?;
    for mut key in stored.into_iter().filter(|k| k.retired_at.is_none()) {
        key.retired_at = Some(now);
        key.publish_until = Some(now.saturating_add(keep_published));
        state.update_key(realm_id, &key).await?;
    }
    Ok(fresh.kid)
}
