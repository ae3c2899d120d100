//! Rows into records, shared by the SQLite and PostgreSQL stores. Only reading one typed
//! column differs between the two (SQLite keeps booleans as integers), which each backend
//! provides through [`Columns`]; the column lists are shared too.

use crate::{
    ClientSessionRecord, EventRecord, Object, RefreshTokenRecord, SessionRecord, StoreResult,
};

/// Typed reads of one row's columns, with each backend's error mapping.
pub(crate) trait Columns {
    fn string(&self, column: &str) -> StoreResult<String>;
    fn opt_string(&self, column: &str) -> StoreResult<Option<String>>;
    /// Times and counters: stored as signed 64-bit integers, refused when negative.
    fn u64(&self, column: &str) -> StoreResult<u64>;
    fn opt_u64(&self, column: &str) -> StoreResult<Option<u64>>;
    fn bool(&self, column: &str) -> StoreResult<bool>;
}

pub(crate) fn object(row: &impl Columns) -> StoreResult<Object> {
    Ok(Object {
        realm_id: row.string("realm_id")?,
        kind: row.string("kind")?,
        id: row.string("id")?,
        name: row.string("name")?,
        doc: row.string("doc")?,
    })
}

pub(crate) fn session(row: &impl Columns) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        id: row.string("id")?,
        realm_id: row.string("realm_id")?,
        user_id: row.string("user_id")?,
        client_id: row.string("client_id")?,
        offline: row.bool("offline")?,
        created_at: row.u64("created_at")?,
        last_refresh: row.u64("last_refresh")?,
        expires_at: row.u64("expires_at")?,
        revoked_at: row.opt_u64("revoked_at")?,
    })
}

pub(crate) fn client_session(row: &impl Columns) -> StoreResult<ClientSessionRecord> {
    Ok(ClientSessionRecord {
        session_id: row.string("session_id")?,
        realm_id: row.string("realm_id")?,
        client_id: row.string("client_id")?,
        joined_at: row.u64("joined_at")?,
        ended_at: row.opt_u64("ended_at")?,
        expires_at: row.u64("expires_at")?,
    })
}

pub(crate) fn refresh_token(row: &impl Columns) -> StoreResult<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        hash: row.string("hash")?,
        realm_id: row.string("realm_id")?,
        session_id: row.string("session_id")?,
        client_id: row.string("client_id")?,
        user_id: row.string("user_id")?,
        scope: row.string("scope")?,
        data: row.string("data")?,
        offline: row.bool("offline")?,
        issued_at: row.u64("issued_at")?,
        expires_at: row.u64("expires_at")?,
        used_at: row.opt_u64("used_at")?,
    })
}

pub(crate) fn event(row: &impl Columns) -> StoreResult<EventRecord> {
    Ok(EventRecord {
        time: row.u64("time")?,
        realm_id: row.string("realm_id")?,
        event_type: row.string("event_type")?,
        client_id: row.opt_string("client_id")?,
        user_id: row.opt_string("user_id")?,
        session_id: row.opt_string("session_id")?,
        ip_address: row.opt_string("ip_address")?,
        error: row.opt_string("error")?,
        details: row.string("details")?,
    })
}

// Column lists as macros rather than constants so that `concat!` can splice them into
// `&'static str` queries, which sqlx accepts as safe SQL without any run-time formatting.
macro_rules! object_select {
    () => {
        "SELECT realm_id, kind, id, name, doc FROM objects"
    };
}
macro_rules! session_select {
    () => {
        "SELECT id, realm_id, user_id, client_id, offline, created_at, last_refresh, \
         expires_at, revoked_at FROM sessions"
    };
}
macro_rules! client_session_select {
    () => {
        "SELECT session_id, realm_id, client_id, joined_at, ended_at, expires_at \
         FROM client_sessions"
    };
}
macro_rules! refresh_token_columns {
    () => {
        "hash, realm_id, session_id, client_id, user_id, scope, data, offline, issued_at, \
         expires_at, used_at"
    };
}
