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
    /// When the key starts signing; until then it is only published, so that every node knows
    /// it before any token signed with it exists. None: from creation.
    #[serde(default)]
    pub active_from: Option<u64>,
    /// When the key stops signing; None while it has no successor.
    pub retired_at: Option<u64>,
    /// Until when the public key stays in the JWKS after retirement.
    pub publish_until: Option<u64>,
    /// Among keys that may sign, the highest priority signs (Keycloak's rule); Cambio's own
    /// keys have 0, imported keys keep the priority Keycloak gave them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i64,
    /// A passive key (Keycloak's `active: false`) is published and verifies, but never signs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub passive: bool,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
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
            active_from: None,
            retired_at: None,
            publish_until: None,
            priority: 0,
            passive: false,
        };
        Ok((stored, key))
    }

    /// Stores `key` (sealed) as it is, under its own `kid`: for keys taken over from another
    /// server.
    pub fn from_key(secrets: &SecretBox, key: &SigningKey, now: u64) -> StoredKey {
        let der = key.pkcs8_der();
        StoredKey {
            kid: key.kid().to_owned(),
            alg: key.algorithm(),
            private_key: secrets.seal(key.kid(), STANDARD.encode(&*der).as_bytes()),
            created_at: now,
            active_from: None,
            retired_at: None,
            publish_until: None,
            priority: 0,
            passive: false,
        }
    }

    pub(crate) fn open(&self, secrets: &SecretBox) -> StoreResult<SigningKey> {
        let b64 = secrets
            .open(&self.kid, &self.private_key)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let der = STANDARD
            .decode(&b64)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let key = SigningKey::from_pkcs8(self.alg, &der)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // The stored kid is the one tokens carry: a thumbprint for Cambio's own keys (which
        // `from_pkcs8` computes again), the original server's for imported ones.
        if key.kid() == self.kid {
            Ok(key)
        } else {
            key.with_kid(&self.kid)
                .map_err(|e| StoreError::Corrupt(e.to_string()))
        }
    }

    fn published(&self, now: u64) -> bool {
        self.retired_at.is_none_or(|r| r > now)
            || self.publish_until.is_some_and(|until| until > now)
    }

    /// Whether the key may sign at `now`.
    fn signs(&self, now: u64) -> bool {
        !self.passive
            && self.active_from.is_none_or(|t| t <= now)
            && self.retired_at.is_none_or(|t| t > now)
    }
}

/// What a key does at a given time, in the words of Keycloak's key list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// The key may sign (the one of highest priority among its algorithm's does).
    Active,
    /// Published and verifying, not signing: an imported passive key, a key whose signing has
    /// not started yet, or a retired key kept until the tokens it signed have expired.
    Passive,
    /// Neither signs nor verifies any more.
    Disabled,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "ACTIVE",
            KeyStatus::Passive => "PASSIVE",
            KeyStatus::Disabled => "DISABLED",
        }
    }
}

impl StoredKey {
    pub fn status(&self, now: u64) -> KeyStatus {
        if self.signs(now) {
            KeyStatus::Active
        } else if self.published(now) {
            KeyStatus::Passive
        } else {
            KeyStatus::Disabled
        }
    }

    /// When the key leaves the JWKS, if that is scheduled: after it, no token it signed is
    /// accepted any more.
    pub fn valid_until(&self) -> Option<u64> {
        self.publish_until
    }

    /// The DER `SubjectPublicKeyInfo` of the public key.
    pub(crate) fn public_key_der(&self, secrets: &SecretBox) -> StoreResult<Vec<u8>> {
        self.open(secrets)?
            .public_key_spki_der()
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

/// The key that signs for `alg` at `now`: among those that may sign, the highest priority,
/// the newest among equals (Keycloak's rule).
pub fn signing_choice(stored: &[StoredKey], alg: Algorithm, now: u64) -> Option<&StoredKey> {
    stored
        .iter()
        .filter(|k| k.alg == alg && k.signs(now))
        .max_by_key(|k| (k.priority, k.created_at))
}

/// Picks the key that signs for `alg` ([`signing_choice`]) and every key still published.
pub fn select(
    secrets: &SecretBox,
    stored: &[StoredKey],
    alg: Algorithm,
    now: u64,
) -> StoreResult<(SigningKey, Vec<VerifyingKey>)> {
    let active = signing_choice(stored, alg, now)
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

/// The next time a key starts or stops signing, if one is scheduled.
pub fn next_change(stored: &[StoredKey], now: u64) -> Option<u64> {
    stored
        .iter()
        .flat_map(|k| [k.active_from, k.retired_at, k.publish_until])
        .flatten()
        .filter(|t| *t > now)
        .min()
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
        .any(|k| k.alg == alg && !k.passive && k.retired_at.is_none_or(|t| t > now))
    {
        return Ok(());
    }
    let (key, _) = StoredKey::generate(&state.secrets, alg, now)?;
    state.insert_key(realm_id, &key).await
}

/// Starts signing with a new key. The new key is published at once and signs only after
/// `activation_delay` seconds, so that every node has it in its JWKS before any token signed
/// with it exists; the old keys sign until then and stay published until every token they
/// signed has expired (`keep_published`: the realm's longest access-token lifetime).
pub async fn rotate(
    state: &AppState,
    realm_id: &str,
    alg: Algorithm,
    keep_published: u64,
    activation_delay: u64,
    now: u64,
) -> StoreResult<String> {
    let stored: Vec<StoredKey> = state
        .store
        .list_objects(realm_id, crate::state::KIND_KEY)
        .await?
        .iter()
        .map(crate::state::decode)
        .collect::<StoreResult<_>>()?;
    let (mut fresh, _) = StoredKey::generate(&state.secrets, alg, now)?;
    let switch = now.saturating_add(activation_delay);
    fresh.active_from = (activation_delay > 0).then_some(switch);
    // Publish the new key first, then schedule the old ones' retirement: a verifier never
    // sees a token signed by a key it cannot find.
    state.insert_key(realm_id, &fresh).await?;
    for mut key in stored.into_iter().filter(|k| k.retired_at.is_none()) {
        key.retired_at = Some(switch);
        key.publish_until = Some(switch.saturating_add(keep_published));
        state.update_key(realm_id, &key).await?;
    }
    Ok(fresh.kid)
}
