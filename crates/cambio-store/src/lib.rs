//! Storage for Cambio: one trait, [`Store`], and its implementations: [`SqliteStore`] (the
//! embedded default for one node) and [`PgStore`] (PostgreSQL, shared by several nodes).
//!
//! The trait speaks in plain records (strings, numbers, JSON documents) and knows nothing of
//! SQL; only the implementation modules do. Configuration objects (realms, clients, users,
//! roles, client scopes, signing keys, ...) are stored as JSON documents keyed by
//! `(realm, kind, id)` with a unique `name` per `(realm, kind)`, so the admin API can grow new
//! kinds without new tables. State that is written on the request path and needs atomic
//! updates (sessions, refresh tokens, one-time values, events) has tables of its own.

pub mod conformance;
#[macro_use]
mod decode;
mod postgres;
mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// What can go wrong in a store. Callers map these to HTTP at the edge.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique name (client id, username, realm name...) is taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The object to update does not exist.
    #[error("not found")]
    NotFound,
    /// The database could not be reached or answered with an error.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The largest page of events one `list_events` call returns, so that an admin request cannot
/// make the server load the whole event table into memory.
const MAX_EVENTS_PAGE: u64 = 1000;

/// The page size used when the caller asks for `max == 0`, matching the admin API default.
const DEFAULT_EVENTS_PAGE: u64 = 100;

/// The head of a multi-row audit event insert; [`bind_event`] binds each row.
const INSERT_EVENTS: &str = "INSERT INTO events (time, realm_id, event_type, client_id, \
     user_id, session_id, ip_address, error, details) ";

/// Binds one audit event row of [`INSERT_EVENTS`], in its column order, on either backend.
fn bind_event<'e, DB>(
    mut row: sqlx::query_builder::Separated<'_, DB, &'static str>,
    time: i64,
    event: &'e EventRecord,
) where
    DB: sqlx::Database,
    i64: sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    &'e str: sqlx::Encode<'e, DB> + sqlx::Type<DB>,
    Option<&'e str>: sqlx::Encode<'e, DB> + sqlx::Type<DB>,
{
    row.push_bind(time)
        .push_bind(event.realm_id.as_str())
        .push_bind(event.event_type.as_str())
        .push_bind(event.client_id.as_deref())
        .push_bind(event.user_id.as_deref())
        .push_bind(event.session_id.as_deref())
        .push_bind(event.ip_address.as_deref())
        .push_bind(event.error.as_deref())
        .push_bind(event.details.as_str());
}

/// One migration file embedded in the binary.
struct EmbeddedMigration {
    version: i64,
    description: &'static str,
    sql: &'static str,
}

/// A migrator over migration files embedded in the binary.
fn embedded_migrator(files: &[EmbeddedMigration]) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType};
    sqlx::migrate::Migrator::with_migrations(
        files
            .iter()
            .map(|m| {
                Migration::new(
                    m.version,
                    std::borrow::Cow::Borrowed(m.description),
                    MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(m.sql),
                    false,
                )
            })
            .collect(),
    )
}

/// Converts a time or counter for a signed 64-bit column. Values above `i64::MAX` cannot be
/// stored faithfully; refusing them is better than wrapping into negative times.
fn to_db(value: u64) -> StoreResult<i64> {
    i64::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("{value} does not fit in a BIGINT column")))
}

/// Converts a signed column back; a negative value was never written by this store.
fn from_db(value: i64) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative value {value}")))
}

fn opt_to_db(value: Option<u64>) -> StoreResult<Option<i64>> {
    value.map(to_db).transpose()
}

/// The realm id used for objects that belong to no realm (the realms themselves).
pub const GLOBAL: &str = "";

/// A configuration object stored as a JSON document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// The realm this object lives in; [`GLOBAL`] for realms.
    pub realm_id: String,
    /// The object kind, such as `realm`, `client`, `user`, `role`, `client-scope`, `key`.
    pub kind: String,
    /// Stable id (a UUID for most kinds).
    pub id: String,
    /// Unique within `(realm_id, kind)`: client id, username, realm name, role key...
    pub name: String,
    /// The JSON document.
    pub doc: String,
}

/// One write of [`Store::write_objects`], with the meaning of the single-object call of the
/// same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectWrite {
    Insert(Object),
    Update(Object),
    Delete {
        realm_id: String,
        kind: String,
        id: String,
    },
}

/// A user session created by a login grant (password, authorization code) or an offline grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: String,
    pub realm_id: String,
    pub user_id: String,
    /// The client (uuid) that started the session.
    pub client_id: String,
    /// Offline sessions (scope `offline_access`) survive logout of the online session.
    pub offline: bool,
    pub created_at: u64,
    pub last_refresh: u64,
    /// Absolute end of the session (max lifespan).
    pub expires_at: u64,
    /// Set when the session was ended by logout, revocation or refresh-token reuse.
    pub revoked_at: Option<u64>,
}

/// One client's part of a user session (Keycloak's client session). Every token the client
/// was issued in the session up to `ended_at` is refused; a later join (`joined_at >
/// ended_at`) makes the part live again for new tokens only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSessionRecord {
    pub session_id: String,
    pub realm_id: String,
    /// The client (uuid).
    pub client_id: String,
    /// When the client last joined the session.
    pub joined_at: u64,
    /// When the client's part last ended.
    pub ended_at: Option<u64>,
    /// How long the record is kept: as long as any token it refuses could live.
    pub expires_at: u64,
}

/// A refresh token, stored only as a hash of its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshTokenRecord {
    /// Hex SHA-256 of the opaque token value.
    pub hash: String,
    pub realm_id: String,
    pub session_id: String,
    /// The client (uuid) the token was issued to; it is bound to it.
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    /// JSON with whatever the issuer needs to refresh (audience filter, exchange origin...).
    pub data: String,
    pub offline: bool,
    pub issued_at: u64,
    pub expires_at: u64,
    /// Set when the token was rotated (used once).
    pub used_at: Option<u64>,
}

/// The outcome of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshTokenUse {
    /// First use: the token is now marked used, the caller may issue a successor.
    Fresh(RefreshTokenRecord),
    /// The token had already been used: a replay, the session should be revoked.
    Reused(RefreshTokenRecord),
    /// No such token.
    Unknown,
}

/// An audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Milliseconds since the Unix epoch.
    pub time: u64,
    pub realm_id: String,
    /// `LOGIN`, `CLIENT_LOGIN`, `REFRESH_TOKEN`, `TOKEN_EXCHANGE`, `..._ERROR`, ...
    pub event_type: String,
    /// Client id (not uuid) of the requesting client, when known.
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub ip_address: Option<String>,
    /// The OAuth error or reason for refusals.
    pub error: Option<String>,
    /// Free-form details (grant type, audience, reason...), a JSON object of strings.
    pub details: String,
}

/// Filters for listing events, as the admin API takes them.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub types: Vec<String>,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    /// Inclusive lower bound, milliseconds.
    pub date_from: Option<u64>,
    /// Inclusive upper bound, milliseconds.
    pub date_to: Option<u64>,
    pub first: u64,
    pub max: u64,
}

/// What a subscription delivers: another node's change, or word that changes may have been
/// missed (the connection was lost), after which everything should be reloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeNotice {
    Message(String),
    Resync,
}

/// The message that asks every node to reload everything.
pub const RESYNC_MESSAGE: &str = "{\"t\":\"resync\"}";

/// A held job lock; the job may run while it is alive. Dropping it releases the lock.
pub struct JobLock(#[allow(dead_code)] Box<dyn Send + Sync>);

impl JobLock {
    /// A lock that guards nothing, for stores used by a single node.
    pub fn local() -> JobLock {
        JobLock(Box::new(()))
    }

    pub fn holding<T: Send + Sync + 'static>(guard: T) -> JobLock {
        JobLock(Box::new(guard))
    }
}

impl std::fmt::Debug for JobLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobLock")
    }
}

/// Storage operations. Every implementation passes the same conformance tests.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the database answers (readiness probe).
    async fn ping(&self) -> StoreResult<()>;

    // Configuration objects.
    async fn insert_object(&self, object: &Object) -> StoreResult<()>;
    /// Applies many writes, in order, in one transaction: all of them, or none when any fails
    /// (an insert that conflicts, an update of an object that is gone). For imports, which
    /// must never stay half-written, and where one commit per object would dominate. A caller
    /// that stops waiting (a request past its deadline) drops the transaction, which rolls it
    /// back.
    async fn write_objects(&self, writes: &[ObjectWrite]) -> StoreResult<()>;
    /// Replaces the document and name of an existing object.
    async fn update_object(&self, object: &Object) -> StoreResult<()>;
    /// Returns whether an object was deleted.
    async fn delete_object(&self, realm_id: &str, kind: &str, id: &str) -> StoreResult<bool>;
    /// Deletes every object, session, client session, refresh token, revoked token id and event
    /// of a realm, in one transaction. The realm object itself (under [`GLOBAL`]) is left to the
    /// caller; authorization codes and one-time values carry no realm and simply expire.
    async fn delete_realm_data(&self, realm_id: &str) -> StoreResult<()>;
    async fn get_object(&self, realm_id: &str, kind: &str, id: &str)
    -> StoreResult<Option<Object>>;
    async fn find_object(
        &self,
        realm_id: &str,
        kind: &str,
        name: &str,
    ) -> StoreResult<Option<Object>>;
    /// All objects of one kind in a realm, ordered by name.
    async fn list_objects(&self, realm_id: &str, kind: &str) -> StoreResult<Vec<Object>>;
    /// The users of a realm whose document's `email` member is exactly `email` (kind `user`,
    /// through an index, so that checking an email costs the same in a realm of any size).
    async fn find_users_by_email(&self, realm_id: &str, email: &str) -> StoreResult<Vec<Object>>;

    // Sessions.
    /// Stores a new session together with the part of the client that started it.
    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()>;
    async fn get_session(&self, id: &str) -> StoreResult<Option<SessionRecord>>;
    /// Records a refresh of the session; [`StoreError::NotFound`] when it does not exist.
    async fn touch_session(&self, id: &str, last_refresh: u64) -> StoreResult<()>;
    /// Ends a session; returns false when it was unknown or already ended.
    async fn revoke_session(&self, id: &str, at: u64) -> StoreResult<bool>;
    /// Ends every session of a user (both online and offline when `include_offline`).
    /// Returns the ids ended.
    async fn revoke_user_sessions(
        &self,
        realm_id: &str,
        user_id: &str,
        include_offline: bool,
        at: u64,
    ) -> StoreResult<Vec<String>>;
    async fn list_user_sessions(
        &self,
        realm_id: &str,
        user_id: &str,
    ) -> StoreResult<Vec<SessionRecord>>;
    /// Sessions ended but not yet expired, so that nodes can refuse their tokens from memory.
    async fn list_revoked_sessions(&self, now: u64) -> StoreResult<Vec<SessionRecord>>;

    // Client sessions: each client's part of a user session.
    /// Adds a client to a session, or makes its ended part live again from `joined_at` on
    /// (the end time is kept, so tokens issued before it stay refused). The later expiry wins.
    async fn join_client_session(&self, part: &ClientSessionRecord) -> StoreResult<()>;
    /// Ends one client's part of a session at `at`, keeping the record at least until `until`
    /// (a part unknown so far is recorded as ended). Returns whether another client still
    /// holds a live part of the session, atomically with the end.
    async fn end_client_session(
        &self,
        realm_id: &str,
        session_id: &str,
        client_id: &str,
        at: u64,
        until: u64,
    ) -> StoreResult<bool>;
    /// Client parts that were ended and are still kept (`expires_at > now`), so that nodes can
    /// refuse their tokens from memory.
    async fn list_ended_client_sessions(&self, now: u64) -> StoreResult<Vec<ClientSessionRecord>>;

    // Refresh tokens.
    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()>;
    /// Marks the token used, atomically: of two concurrent uses exactly one sees `Fresh`.
    async fn use_refresh_token(&self, hash: &str, now: u64) -> StoreResult<RefreshTokenUse>;
    async fn get_refresh_token(&self, hash: &str) -> StoreResult<Option<RefreshTokenRecord>>;

    // Revoked access tokens (by `jti`), kept until they would have expired anyway.
    /// Idempotent; when a `jti` is revoked again the later expiry is kept.
    async fn revoke_token_id(&self, realm_id: &str, jti: &str, expires_at: u64) -> StoreResult<()>;
    async fn list_revoked_token_ids(&self, now: u64) -> StoreResult<Vec<(String, u64)>>;

    /// Records a one-time value (client assertion `jti`, authorization code...) in its own
    /// context. Returns true the first time, false on every replay. Contexts never mix.
    async fn consume_once(&self, context: &str, value: &str, expires_at: u64) -> StoreResult<bool>;

    // Authorization codes: data stored under the code's hash, taken exactly once.
    async fn insert_auth_code(&self, hash: &str, data: &str, expires_at: u64) -> StoreResult<()>;
    /// Removes the code and returns its data; `None` when unknown, already taken or expired
    /// (`expires_at <= now`). Of two concurrent takes at most one gets the data.
    async fn take_auth_code(&self, hash: &str, now: u64) -> StoreResult<Option<String>>;

    // Audit events.
    async fn insert_events(&self, events: &[EventRecord]) -> StoreResult<()>;
    /// Newest first. `filter.max` of 0 means 100 and is capped at 1000.
    async fn list_events(
        &self,
        realm_id: &str,
        filter: &EventFilter,
    ) -> StoreResult<Vec<EventRecord>>;

    /// Tells the other nodes sharing this store about a change (PostgreSQL `NOTIFY`). A store
    /// that serves a single node has nobody to tell.
    async fn publish(&self, _message: &str) -> StoreResult<()> {
        Ok(())
    }

    /// Starts receiving other nodes' changes (PostgreSQL `LISTEN`); `None` for a single-node
    /// store. The receiver ends when the store is closed.
    async fn subscribe(&self) -> StoreResult<Option<tokio::sync::mpsc::Receiver<ChangeNotice>>> {
        Ok(None)
    }

    /// Takes a lock that at most one node holds at a time (a PostgreSQL advisory lock), for
    /// jobs such as cleanup and key rotation; `None` when another node holds it.
    async fn try_lock_job(&self, _job: &str) -> StoreResult<Option<JobLock>> {
        Ok(Some(JobLock::local()))
    }

    /// Deletes sessions, client sessions, refresh tokens, revoked token ids, codes and one-time
    /// values whose `expires_at <= now`. Returns rows deleted. Events are kept; they have their
    /// own retention.
    async fn purge_expired(&self, now: u64) -> StoreResult<u64>;

    /// Deletes at most `limit` audit events, of any realm, whose time (milliseconds) is before
    /// `before_ms`, oldest first. Returns rows deleted; the caller repeats while it gets
    /// `limit`, so that no single statement holds the database for long.
    async fn purge_events(&self, before_ms: u64, limit: u64) -> StoreResult<u64>;
}
