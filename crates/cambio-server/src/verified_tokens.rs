//! Access tokens whose signature was verified recently, so that a token presented
//! again (a service exchanging the same user token for each call, or for several audiences;
//! introspection and userinfo of a token in use) skips the signature check: on this kind of
//! machine the P-256 verification is about half of an exchange's CPU time.
//!
//! What is remembered is exactly what depends only on the token's bytes and the realm's keys:
//! that the signature, header, issuer, type and claim types passed, and the decoded claims.
//! Each entry is tied to the [`crate::state::RealmRuntime`] that verified it (by its
//! generation, a number no other runtime ever gets): a realm's runtime is rebuilt whenever its
//! keys or issuer change, and entries of an older runtime never match the new one, so a removed
//! key stops vouching at once (its entries simply miss until evicted). Everything that depends
//! on time or state is checked on every use: expiry, not-before and issued-at (again, at the
//! current time), and then, by the caller, revocation of the token, its ancestors and its
//! session, and the user's current state.
//!
//! The key is the whole token (a keyed hash map compares the full bytes), so only the very
//! same token can hit; only tokens that passed verification are ever inserted, and only up to
//! [`MAX_REMEMBERED_TOKEN_BYTES`] (real access tokens are 1–2 KiB; a larger one is verified
//! every time rather than let a few huge tokens fill memory). An entry is the token, its
//! decoded claims and three times: at most ~12 KiB, ~3 KiB for a typical token. The map is
//! bounded for the whole server (not per realm, so many realms cannot multiply it): when full,
//! expired entries are dropped, and if that frees less than a quarter of it, it is emptied and refills on demand (the worst case is the cost without a
//! cache, and a full cache does not pay for a sweep on every insert).

use std::collections::HashMap;
use std::sync::RwLock;

use cambio_core::exchange::ActiveToken;
use cambio_jose::{TokenTimes, Validation};

/// The default number of remembered tokens, for the whole server: ~6 MiB of typical tokens,
/// ~24 MiB at most.
pub const DEFAULT_CAPACITY: usize = 2048;

/// Tokens longer than this are not remembered.
pub const MAX_REMEMBERED_TOKEN_BYTES: usize = 4096;

/// A remembered verification: what the verifier established, and the token it produced.
struct Entry {
    /// The realm runtime whose keys verified it.
    generation: u64,
    times: TokenTimes,
    token: ActiveToken,
}

/// A bounded map from token to its verification; capacity 0 turns it off.
pub struct VerifiedTokens {
    capacity: usize,
    entries: RwLock<HashMap<Box<str>, Entry, TokenHasher>>,
}

/// The map's hash: keys are whole tokens (1–2 KiB) hashed on every lookup, where the standard
/// SipHash costs about a microsecond each. foldhash is seeded at random per process; and only
/// tokens this server signed and verified are ever stored, whose bytes (their signatures) no
/// caller can choose, so colliding keys cannot be planted.
type TokenHasher = foldhash::quality::RandomState;

impl VerifiedTokens {
    pub fn new(capacity: usize) -> Self {
        VerifiedTokens {
            capacity,
            entries: RwLock::new(HashMap::default()),
        }
    }

    /// The remembered token, if `token` was verified by the realm runtime of this
    /// `generation` and its times still pass `v`.
    pub fn get(&self, token: &str, generation: u64, v: &Validation<'_>) -> Option<ActiveToken> {
        if self.capacity == 0 || token.len() > MAX_REMEMBERED_TOKEN_BYTES {
            return None;
        }
        let entries = self.entries.read().ok()?;
        let entry = entries.get(token)?;
        if entry.generation != generation {
            return None;
        }
        entry.times.check(v).ok()?;
        Some(entry.token.clone())
    }

    /// Remembers a token that the realm runtime of this `generation` just verified.
    pub fn insert(
        &self,
        token: &str,
        generation: u64,
        times: TokenTimes,
        active: &ActiveToken,
        now: u64,
    ) {
        if self.capacity == 0 || token.len() > MAX_REMEMBERED_TOKEN_BYTES {
            return;
        }
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= self.capacity {
            entries.retain(|_, e| e.times.expires_at().is_some_and(|exp| exp > now));
            // Unless a quarter (at least one entry) was freed, start over.
            let keep_at_most = self.capacity - (self.capacity / 4).max(1);
            if entries.len() > keep_at_most {
                entries.clear();
            }
        }
        entries.insert(
            token.into(),
            Entry {
                generation,
                times,
                token: active.clone(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use cambio_jose::{Algorithm, SigningKey, TypRule};
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_700_000_000;

    /// A signed, verified access token that expires at `exp`, its times and decoded form.
    fn signed_and_verified(
        key: &SigningKey,
        jti: &str,
        exp: u64,
    ) -> (String, TokenTimes, ActiveToken) {
        let claims = json!({
            "exp": exp, "iat": NOW, "jti": jti, "iss": "https://sts/realms/demo", "sub": "alice",
            "typ": "Bearer", "azp": "app", "client_id": "app", "scope": "",
        });
        let token = key.sign("at+jwt", &claims).unwrap();
        let verified = cambio_jose::verify_as::<cambio_core::tokens::AccessTokenClaims>(
            &token,
            &key.verifying_key(),
            &validation(NOW),
        )
        .unwrap();
        let times = verified.times();
        (token, times, ActiveToken::from(verified.into_claims()))
    }

    /// The times of `token`, verified with `key`.
    fn cache_times(token: &str, key: &SigningKey) -> TokenTimes {
        cambio_jose::verify(token, &key.verifying_key(), &validation(NOW))
            .unwrap()
            .times()
    }

    fn validation(now: u64) -> Validation<'static> {
        Validation {
            typ: TypRule::Exactly("at+jwt"),
            leeway: 0,
            ..Validation::new(now)
        }
    }

    #[test]
    fn remembers_only_while_the_times_still_pass() {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let cache = VerifiedTokens::new(8);
        let (token, verified, active) = signed_and_verified(&key, "a", NOW + 60);
        assert!(cache.get(&token, 1, &validation(NOW)).is_none());
        cache.insert(&token, 1, verified, &active, NOW);
        let hit = cache.get(&token, 1, &validation(NOW + 30)).unwrap();
        assert_eq!(hit.claims.jti, "a");
        // The same claims, shared rather than copied.
        assert!(Arc::ptr_eq(&hit.claims, &active.claims));
        // Expired, or not issued yet (a clock that went back): not handed out.
        assert!(cache.get(&token, 1, &validation(NOW + 60)).is_none());
        assert!(cache.get(&token, 1, &validation(NOW - 10)).is_none());
        // Only the very same token hits.
        let mut other = token.clone();
        other.push('A');
        assert!(cache.get(&other, 1, &validation(NOW)).is_none());
    }

    #[test]
    fn capacity_zero_remembers_nothing() {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let cache = VerifiedTokens::new(0);
        let (token, verified, active) = signed_and_verified(&key, "a", NOW + 60);
        cache.insert(&token, 1, verified, &active, NOW);
        assert!(cache.get(&token, 1, &validation(NOW)).is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first_then_everything() {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let cache = VerifiedTokens::new(2);
        let (short, v1, a1) = signed_and_verified(&key, "short", NOW + 10);
        let (long, v2, a2) = signed_and_verified(&key, "long", NOW + 100);
        let (third, v3, a3) = signed_and_verified(&key, "third", NOW + 100);
        cache.insert(&short, 1, v1, &a1, NOW);
        cache.insert(&long, 1, v2, &a2, NOW);
        // Full at NOW + 20: the expired one makes room, the live one stays.
        cache.insert(&third, 1, v3, &a3, NOW + 20);
        let at = validation(NOW + 20);
        assert!(cache.get(&long, 1, &at).is_some());
        assert!(cache.get(&third, 1, &at).is_some());
        // Full with nothing expired: emptied, then the new one is remembered.
        let (fourth, v4, a4) = signed_and_verified(&key, "fourth", NOW + 100);
        cache.insert(&fourth, 1, v4, &a4, NOW + 20);
        assert!(cache.get(&long, 1, &at).is_none());
        assert!(cache.get(&third, 1, &at).is_none());
        assert!(cache.get(&fourth, 1, &at).is_some());
    }

    #[test]
    fn entries_belong_to_the_runtime_that_verified_them() {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let cache = VerifiedTokens::new(2);
        let (token, verified, active) = signed_and_verified(&key, "a", NOW + 60);
        cache.insert(&token, 1, verified, &active, NOW);
        // The realm was rebuilt (new keys, new issuer...): its new runtime does not trust it.
        assert!(cache.get(&token, 2, &validation(NOW)).is_none());
        assert!(cache.get(&token, 1, &validation(NOW)).is_some());
        // Verified again by the new runtime, it belongs to that one from then on.
        let times = cache_times(&token, &key);
        cache.insert(&token, 2, times, &active, NOW);
        assert!(cache.get(&token, 2, &validation(NOW)).is_some());
        assert!(cache.get(&token, 1, &validation(NOW)).is_none());
    }
}
