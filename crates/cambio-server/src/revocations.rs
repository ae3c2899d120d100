//! What was revoked, held in memory so that every token use is checked without a database
//! read: sessions, clients' parts of sessions, and access tokens by `jti`.

use std::collections::HashMap;
use std::sync::RwLock;

/// Client uuid → (ended at, kept until): tokens the client was issued in the session up to the
/// end are refused.
type EndedParts = HashMap<String, (u64, u64)>;

/// Sessions, clients' parts of sessions and token ids that were revoked, checked on every token
/// use without a database read. Entries are kept until every token they refuse (the revoked
/// one and everything derived from it) would have expired anyway.
#[derive(Default)]
pub struct Revocations {
    sessions: RwLock<HashMap<String, u64>>,
    token_ids: RwLock<HashMap<String, u64>>,
    /// Session id → its clients' ended parts. Nested so that a lookup allocates nothing.
    client_parts: RwLock<HashMap<String, EndedParts>>,
}

impl Revocations {
    pub fn revoke_session(&self, id: &str, until: u64) {
        if let Ok(mut map) = self.sessions.write() {
            map.insert(id.to_owned(), until);
        }
    }
    pub fn revoke_token_id(&self, jti: &str, until: u64) {
        if let Ok(mut map) = self.token_ids.write() {
            let entry = map.entry(jti.to_owned()).or_insert(until);
            *entry = (*entry).max(until);
        }
    }
    pub fn session_revoked(&self, id: &str) -> bool {
        self.sessions
            .read()
            .map(|m| m.contains_key(id))
            .unwrap_or(true)
    }
    pub fn token_id_revoked(&self, jti: &str) -> bool {
        self.token_ids
            .read()
            .map(|m| m.contains_key(jti))
            .unwrap_or(true)
    }
    /// Ends a client's part of a session at `ended_at`; a later end wins.
    pub fn end_client_part(&self, session_id: &str, client_id: &str, ended_at: u64, until: u64) {
        if let Ok(mut map) = self.client_parts.write() {
            let entry = map
                .entry(session_id.to_owned())
                .or_default()
                .entry(client_id.to_owned())
                .or_insert((ended_at, until));
            *entry = (entry.0.max(ended_at), entry.1.max(until));
        }
    }
    /// Whether a token the client was issued at `issued_at` in the session belongs to a part
    /// that has ended since. Same-second issues count as ended: a token issued in the second
    /// of a revocation may have been issued before it.
    pub fn client_part_ended(&self, session_id: &str, client_id: &str, issued_at: u64) -> bool {
        self.client_parts
            .read()
            .map(|m| {
                m.get(session_id)
                    .and_then(|clients| clients.get(client_id))
                    .is_some_and(|(ended_at, _)| issued_at <= *ended_at)
            })
            .unwrap_or(true)
    }
    /// Forgets entries whose tokens have expired.
    pub fn prune(&self, now: u64) {
        if let Ok(mut map) = self.client_parts.write() {
            map.retain(|_, clients| {
                clients.retain(|_, (_, until)| *until > now);
                !clients.is_empty()
            });
        }
        if let Ok(mut map) = self.sessions.write() {
            map.retain(|_, until| *until > now);
        }
        if let Ok(mut map) = self.token_ids.write() {
            map.retain(|_, until| *until > now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_part_refuses_what_was_issued_up_to_its_end() {
        let revoked = Revocations::default();
        revoked.end_client_part("s", "c", 100, 500);
        // Issued before the end, or in its second (which may have been before it): refused.
        assert!(revoked.client_part_ended("s", "c", 90));
        assert!(revoked.client_part_ended("s", "c", 100));
        // Issued after the end (the client joined again): good.
        assert!(!revoked.client_part_ended("s", "c", 101));
        // Other clients of the session, and the same client in another session: untouched.
        assert!(!revoked.client_part_ended("s", "other", 90));
        assert!(!revoked.client_part_ended("t", "c", 90));
        // A later end wins, an earlier one never shortens it.
        revoked.end_client_part("s", "c", 200, 400);
        revoked.end_client_part("s", "c", 150, 300);
        assert!(revoked.client_part_ended("s", "c", 200));
        // Kept until the latest `until`, then forgotten.
        revoked.prune(499);
        assert!(revoked.client_part_ended("s", "c", 200));
        revoked.prune(500);
        assert!(!revoked.client_part_ended("s", "c", 200));
    }

    #[test]
    fn a_revoked_token_id_keeps_its_latest_until() {
        let revoked = Revocations::default();
        revoked.revoke_token_id("jti", 100);
        revoked.revoke_token_id("jti", 50);
        revoked.prune(99);
        assert!(revoked.token_id_revoked("jti"));
        revoked.prune(100);
        assert!(!revoked.token_id_revoked("jti"));
    }
}
