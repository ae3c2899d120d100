//! The conformance suite every [`Store`] implementation must pass.
//!
//! The checks live in the library rather than in a `#[cfg(test)]` module so that each backend
//! (SQLite and PostgreSQL) runs the very same assertions from its own tests: the server
//! relies on these exact semantics (who wins a refresh-token race, what counts as a replay,
//! which sessions are listed as revoked), not on what one database happens to do.
//!
//! Each check panics on the first failed assertion, like a test. Each uses its own realm ids,
//! session ids, hashes and values, so that all of them can share one store (see [`run_all`]).
//! Times are seconds around [`NOW`], except in [`check_purge`], which uses small times of its
//! own so that purging never touches what the other checks wrote.
//!
//! [`PgTestDatabase`] gives PostgreSQL tests (of this crate and of the server) a fresh
//! database each.

#![allow(clippy::unwrap_used)]

mod objects;
mod postgres;
mod sessions;

pub use objects::{check_event_purge, check_events, check_objects, check_realm_delete};
pub use postgres::{POSTGRES_URL_ENV, PgTestDatabase};
pub use sessions::{
    check_auth_codes, check_client_sessions, check_one_time_values, check_purge,
    check_refresh_tokens, check_revocations, check_sessions,
};

use crate::{EventRecord, Object, RefreshTokenRecord, SessionRecord, Store, StoreError};

/// The "current time" the checks pass to the store, in seconds.
pub const NOW: u64 = 1_700_000_000;

/// Runs every check against one store, in sequence. The store should be empty.
pub async fn run_all(store: &dyn Store) {
    check_objects(store).await;
    check_sessions(store).await;
    check_client_sessions(store).await;
    check_refresh_tokens(store).await;
    check_one_time_values(store).await;
    check_auth_codes(store).await;
    check_events(store).await;
    check_event_purge(store).await;
    check_revocations(store).await;
    check_purge(store).await;
    check_realm_delete(store).await;
}

fn object(realm_id: &str, kind: &str, id: &str, name: &str) -> Object {
    Object {
        realm_id: realm_id.to_owned(),
        kind: kind.to_owned(),
        id: id.to_owned(),
        name: name.to_owned(),
        doc: format!(r#"{{"id":"{id}","name":"{name}"}}"#),
    }
}

fn session(
    realm_id: &str,
    id: &str,
    user_id: &str,
    offline: bool,
    created_at: u64,
) -> SessionRecord {
    SessionRecord {
        id: id.to_owned(),
        realm_id: realm_id.to_owned(),
        user_id: user_id.to_owned(),
        client_id: "client-uuid".to_owned(),
        offline,
        created_at,
        last_refresh: created_at,
        expires_at: created_at + 3600,
        revoked_at: None,
    }
}

fn token(realm_id: &str, hash: &str, session_id: &str, expires_at: u64) -> RefreshTokenRecord {
    RefreshTokenRecord {
        hash: hash.to_owned(),
        realm_id: realm_id.to_owned(),
        session_id: session_id.to_owned(),
        client_id: "client-uuid".to_owned(),
        user_id: "user-1".to_owned(),
        scope: "openid profile".to_owned(),
        data: r#"{"aud":["api"]}"#.to_owned(),
        offline: false,
        issued_at: NOW - 10,
        expires_at,
        used_at: None,
    }
}

fn event(
    realm_id: &str,
    time: u64,
    event_type: &str,
    client_id: &str,
    user_id: Option<&str>,
) -> EventRecord {
    EventRecord {
        time,
        realm_id: realm_id.to_owned(),
        event_type: event_type.to_owned(),
        client_id: Some(client_id.to_owned()),
        user_id: user_id.map(str::to_owned),
        session_id: None,
        ip_address: Some("192.0.2.1".to_owned()),
        error: event_type
            .ends_with("_ERROR")
            .then(|| "invalid_grant".to_owned()),
        details: r#"{"grant_type":"password"}"#.to_owned(),
    }
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "{what}: expected Conflict, got {result:?}"
    );
}
