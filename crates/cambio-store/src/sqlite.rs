//! The SQLite implementation of [`Store`].
//!
//! SQLite is the default backend: a single file next to the server, no service to run. The
//! queries are built at run time with `sqlx::query` (no compile-time checked macros) so that a
//! build never needs a live database, and they stay close to portable SQL so that the
//! PostgreSQL backend can reuse their shape.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use crate::EmbeddedMigration;
use crate::decode::{self, Columns as _};
use crate::{
    ClientSessionRecord, DEFAULT_EVENTS_PAGE, EventFilter, EventRecord, MAX_EVENTS_PAGE, Object,
    ObjectWrite, RefreshTokenRecord, RefreshTokenUse, SessionRecord, Store, StoreError,
    StoreResult, from_db, opt_to_db, to_db,
};

/// How long a connection waits for another writer before giving up with "database is locked".
/// SQLite allows one writer at a time; short waits are normal under concurrent requests.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The migrations, embedded in the binary at compile time so that a deployed server needs no
/// migration files on disk.
///
/// They are listed by hand rather than with `sqlx::migrate!` because that macro needs sqlx's
/// `macros` feature (and its proc-macro build of the SQLite driver), which this workspace does
/// not enable. Versions and descriptions follow the file names exactly as `migrate!` would
/// derive them (`0001_initial.sql` is version 1, "initial"), so switching to the macro later
/// finds the same applied versions and checksums. Add a line here for every new file in
/// `migrations/sqlite`.
const MIGRATIONS: &[EmbeddedMigration] = &[
    EmbeddedMigration {
        version: 1,
        description: "initial",
        sql: include_str!("../migrations/sqlite/0001_initial.sql"),
    },
    EmbeddedMigration {
        version: 2,
        description: "events time",
        sql: include_str!("../migrations/sqlite/0002_events_time.sql"),
    },
    EmbeddedMigration {
        version: 3,
        description: "client sessions",
        sql: include_str!("../migrations/sqlite/0003_client_sessions.sql"),
    },
    EmbeddedMigration {
        version: 4,
        description: "user email",
        sql: include_str!("../migrations/sqlite/0004_user_email.sql"),
    },
];

fn migrator() -> Migrator {
    crate::embedded_migrator(MIGRATIONS)
}

/// A [`Store`] backed by an SQLite database file (or an in-memory database for tests).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` and brings its schema up to date.
    ///
    /// `url` is `sqlite://path/to/file.db` or `sqlite::memory:`. File databases use WAL so that
    /// readers never wait for the writer, and `synchronous=NORMAL`, which in WAL mode can lose
    /// the last transactions on power loss but never corrupts the file: an acceptable trade for
    /// sessions and tokens. An in-memory database exists only as long as a connection to it is
    /// open, so it gets a pool of exactly one connection that is never retired; otherwise each
    /// pooled connection would see its own empty database or lose it when it idles out.
    pub async fn connect(url: &str) -> StoreResult<SqliteStore> {
        // The driver would take any other string as a file name, so that a mistyped
        // `postgres://...` would quietly create a local file named after it.
        if !url.starts_with("sqlite:") {
            return Err(StoreError::Unavailable(format!(
                "not an SQLite URL (expected sqlite://path or sqlite::memory:): {url}"
            )));
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(db_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        // SQLite creates a missing file but not a missing directory; creating it here lets a
        // fresh deployment point at `sqlite://data/cambio.db` without a setup step.
        if !in_memory
            && let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let pool_options = if in_memory {
            SqlitePoolOptions::new()
                .min_connections(1)
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(8)
        };
        let pool = pool_options.connect_with(options).await.map_err(db_error)?;
        migrator()
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        Ok(SqliteStore { pool })
    }

    /// Closes every connection, waiting for them to be returned. Used on shutdown so that the
    /// WAL is checkpointed, and by tests that reopen a file.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Maps a driver error to a [`StoreError`]: unique violations become conflicts (a name or key
/// is taken), undecodable values become corrupt records, and everything else means the
/// database did not do what was asked.
/// The insertion of one object, bound.
/// Users by email, with the same expression as the partial index `objects_user_email`
/// (migration 0004); a test reads this statement's query plan.
const USERS_BY_EMAIL: &str = concat!(
    object_select!(),
    " WHERE realm_id = ? AND kind = 'user' AND json_extract(doc, '$.email') = ?"
);

fn insert_query(object: &Object) -> sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments> {
    sqlx::query("INSERT INTO objects (realm_id, kind, id, name, doc) VALUES (?, ?, ?, ?, ?)")
        .bind(&object.realm_id)
        .bind(&object.kind)
        .bind(&object.id)
        .bind(&object.name)
        .bind(&object.doc)
}

fn update_query(object: &Object) -> sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments> {
    sqlx::query("UPDATE objects SET name = ?, doc = ? WHERE realm_id = ? AND kind = ? AND id = ?")
        .bind(&object.name)
        .bind(&object.doc)
        .bind(&object.realm_id)
        .bind(&object.kind)
        .bind(&object.id)
}

fn delete_query<'q>(
    realm_id: &'q str,
    kind: &'q str,
    id: &'q str,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments> {
    sqlx::query("DELETE FROM objects WHERE realm_id = ? AND kind = ? AND id = ?")
        .bind(realm_id)
        .bind(kind)
        .bind(id)
}

fn db_error(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Database(e) if e.is_unique_violation() => {
            StoreError::Conflict(e.message().to_owned())
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(error.to_string())
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

impl decode::Columns for SqliteRow {
    fn string(&self, column: &str) -> StoreResult<String> {
        self.try_get::<String, _>(column).map_err(db_error)
    }

    fn opt_string(&self, column: &str) -> StoreResult<Option<String>> {
        self.try_get::<Option<String>, _>(column).map_err(db_error)
    }

    fn u64(&self, column: &str) -> StoreResult<u64> {
        from_db(self.try_get::<i64, _>(column).map_err(db_error)?)
    }

    fn opt_u64(&self, column: &str) -> StoreResult<Option<u64>> {
        self.try_get::<Option<i64>, _>(column)
            .map_err(db_error)?
            .map(from_db)
            .transpose()
    }

    /// SQLite has no boolean type: the schema keeps them as INTEGER 0/1.
    fn bool(&self, column: &str) -> StoreResult<bool> {
        Ok(self.try_get::<i64, _>(column).map_err(db_error)? != 0)
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn insert_object(&self, object: &Object) -> StoreResult<()> {
        insert_query(object)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn write_objects(&self, writes: &[ObjectWrite]) -> StoreResult<()> {
        // Dropped before the commit (an error, or a caller that stopped waiting), the
        // transaction rolls back.
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        for write in writes {
            match write {
                ObjectWrite::Insert(object) => {
                    insert_query(object)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
                ObjectWrite::Update(object) => {
                    let done = update_query(object)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                }
                ObjectWrite::Delete { realm_id, kind, id } => {
                    delete_query(realm_id, kind, id)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_error)?;
                }
            }
        }
        tx.commit().await.map_err(db_error)
    }

    async fn update_object(&self, object: &Object) -> StoreResult<()> {
        let done = update_query(object)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_object(&self, realm_id: &str, kind: &str, id: &str) -> StoreResult<bool> {
        let done = delete_query(realm_id, kind, id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_realm_data(&self, realm_id: &str) -> StoreResult<()> {
        // One transaction, so that a failure halfway never leaves a realm with users but no
        // clients, or sessions whose tokens are gone.
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        for sql in [
            "DELETE FROM objects WHERE realm_id = ?",
            "DELETE FROM sessions WHERE realm_id = ?",
            "DELETE FROM client_sessions WHERE realm_id = ?",
            "DELETE FROM refresh_tokens WHERE realm_id = ?",
            "DELETE FROM revoked_tokens WHERE realm_id = ?",
            "DELETE FROM events WHERE realm_id = ?",
        ] {
            sqlx::query(sql)
                .bind(realm_id)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn get_object(
        &self,
        realm_id: &str,
        kind: &str,
        id: &str,
    ) -> StoreResult<Option<Object>> {
        let sql = concat!(
            object_select!(),
            " WHERE realm_id = ? AND kind = ? AND id = ?"
        );
        let row = sqlx::query(sql)
            .bind(realm_id)
            .bind(kind)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref().map(decode::object).transpose()
    }

    async fn find_object(
        &self,
        realm_id: &str,
        kind: &str,
        name: &str,
    ) -> StoreResult<Option<Object>> {
        let sql = concat!(
            object_select!(),
            " WHERE realm_id = ? AND kind = ? AND name = ?"
        );
        let row = sqlx::query(sql)
            .bind(realm_id)
            .bind(kind)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref().map(decode::object).transpose()
    }

    async fn find_users_by_email(&self, realm_id: &str, email: &str) -> StoreResult<Vec<Object>> {
        let rows = sqlx::query(USERS_BY_EMAIL)
            .bind(realm_id)
            .bind(email)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(decode::object).collect()
    }

    async fn list_objects(&self, realm_id: &str, kind: &str) -> StoreResult<Vec<Object>> {
        let sql = concat!(
            object_select!(),
            " WHERE realm_id = ? AND kind = ? ORDER BY name"
        );
        let rows = sqlx::query(sql)
            .bind(realm_id)
            .bind(kind)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(decode::object).collect()
    }

    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        sqlx::query(
            "INSERT INTO sessions (id, realm_id, user_id, client_id, offline, created_at, \
             last_refresh, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&session.id)
        .bind(&session.realm_id)
        .bind(&session.user_id)
        .bind(&session.client_id)
        .bind(i64::from(session.offline))
        .bind(to_db(session.created_at)?)
        .bind(to_db(session.last_refresh)?)
        .bind(to_db(session.expires_at)?)
        .bind(opt_to_db(session.revoked_at)?)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query(
            "INSERT INTO client_sessions (session_id, client_id, realm_id, joined_at, ended_at, \
             expires_at) VALUES (?, ?, ?, ?, NULL, ?)",
        )
        .bind(&session.id)
        .bind(&session.client_id)
        .bind(&session.realm_id)
        .bind(to_db(session.created_at)?)
        .bind(to_db(session.expires_at)?)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    async fn join_client_session(&self, part: &ClientSessionRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO client_sessions (session_id, client_id, realm_id, joined_at, ended_at, \
             expires_at) VALUES (?, ?, ?, ?, NULL, ?) \
             ON CONFLICT (session_id, client_id) DO UPDATE SET joined_at = excluded.joined_at, \
             expires_at = MAX(client_sessions.expires_at, excluded.expires_at)",
        )
        .bind(&part.session_id)
        .bind(&part.client_id)
        .bind(&part.realm_id)
        .bind(to_db(part.joined_at)?)
        .bind(to_db(part.expires_at)?)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn end_client_session(
        &self,
        realm_id: &str,
        session_id: &str,
        client_id: &str,
        at: u64,
        until: u64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // An unknown part is recorded as ended since the beginning of time (joined_at 0), so
        // that it never counts as live.
        sqlx::query(
            "INSERT INTO client_sessions (session_id, client_id, realm_id, joined_at, ended_at, \
             expires_at) VALUES (?, ?, ?, 0, ?, ?) \
             ON CONFLICT (session_id, client_id) DO UPDATE SET ended_at = excluded.ended_at, \
             expires_at = MAX(client_sessions.expires_at, excluded.expires_at)",
        )
        .bind(session_id)
        .bind(client_id)
        .bind(realm_id)
        .bind(to_db(at)?)
        .bind(to_db(until)?)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS live FROM client_sessions WHERE session_id = ? \
             AND client_id <> ? AND (ended_at IS NULL OR joined_at > ended_at)",
        )
        .bind(session_id)
        .bind(client_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        let live: i64 = row.try_get("live").map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(live > 0)
    }

    async fn list_ended_client_sessions(&self, now: u64) -> StoreResult<Vec<ClientSessionRecord>> {
        let sql = concat!(
            client_session_select!(),
            " WHERE ended_at IS NOT NULL AND expires_at > ? ORDER BY session_id, client_id"
        );
        let rows = sqlx::query(sql)
            .bind(to_db(now)?)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(decode::client_session).collect()
    }

    async fn get_session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        let sql = concat!(session_select!(), " WHERE id = ?");
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref().map(decode::session).transpose()
    }

    async fn touch_session(&self, id: &str, last_refresh: u64) -> StoreResult<()> {
        let done = sqlx::query("UPDATE sessions SET last_refresh = ? WHERE id = ?")
            .bind(to_db(last_refresh)?)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn revoke_session(&self, id: &str, at: u64) -> StoreResult<bool> {
        // Only where revoked_at is NULL: the first revocation time is the one that counts, and
        // the return value tells the caller whether this call ended the session.
        let done =
            sqlx::query("UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(to_db(at)?)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_user_sessions(
        &self,
        realm_id: &str,
        user_id: &str,
        include_offline: bool,
        at: u64,
    ) -> StoreResult<Vec<String>> {
        // RETURNING gives exactly the ids this statement ended, even when another request
        // revokes some of the same sessions concurrently.
        let sql = if include_offline {
            "UPDATE sessions SET revoked_at = ? WHERE realm_id = ? AND user_id = ? \
             AND revoked_at IS NULL RETURNING id"
        } else {
            "UPDATE sessions SET revoked_at = ? WHERE realm_id = ? AND user_id = ? \
             AND revoked_at IS NULL AND offline = 0 RETURNING id"
        };
        let rows = sqlx::query(sql)
            .bind(to_db(at)?)
            .bind(realm_id)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        let mut ids = rows
            .iter()
            .map(|row| row.string("id"))
            .collect::<StoreResult<Vec<_>>>()?;
        ids.sort();
        Ok(ids)
    }

    async fn list_user_sessions(
        &self,
        realm_id: &str,
        user_id: &str,
    ) -> StoreResult<Vec<SessionRecord>> {
        let sql = concat!(
            session_select!(),
            " WHERE realm_id = ? AND user_id = ? ORDER BY created_at, id"
        );
        let rows = sqlx::query(sql)
            .bind(realm_id)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(decode::session).collect()
    }

    async fn list_revoked_sessions(&self, now: u64) -> StoreResult<Vec<SessionRecord>> {
        let sql = concat!(
            session_select!(),
            " WHERE revoked_at IS NOT NULL AND expires_at > ? ORDER BY id"
        );
        let rows = sqlx::query(sql)
            .bind(to_db(now)?)
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(decode::session).collect()
    }

    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()> {
        let sql = concat!(
            "INSERT INTO refresh_tokens (",
            refresh_token_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        );
        sqlx::query(sql)
            .bind(&token.hash)
            .bind(&token.realm_id)
            .bind(&token.session_id)
            .bind(&token.client_id)
            .bind(&token.user_id)
            .bind(&token.scope)
            .bind(&token.data)
            .bind(i64::from(token.offline))
            .bind(to_db(token.issued_at)?)
            .bind(to_db(token.expires_at)?)
            .bind(opt_to_db(token.used_at)?)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn use_refresh_token(&self, hash: &str, now: u64) -> StoreResult<RefreshTokenUse> {
        // The conditional UPDATE is the whole atomicity argument: the database applies it to
        // the row under its write lock, so of two concurrent uses exactly one finds used_at
        // NULL and gets the row back. The loser falls through to the plain read below.
        let sql = concat!(
            "UPDATE refresh_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL RETURNING ",
            refresh_token_columns!()
        );
        let fresh = sqlx::query(sql)
            .bind(to_db(now)?)
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        if let Some(row) = fresh {
            return Ok(RefreshTokenUse::Fresh(decode::refresh_token(&row)?));
        }
        Ok(match self.get_refresh_token(hash).await? {
            Some(record) => RefreshTokenUse::Reused(record),
            None => RefreshTokenUse::Unknown,
        })
    }

    async fn get_refresh_token(&self, hash: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        let sql = concat!(
            "SELECT ",
            refresh_token_columns!(),
            " FROM refresh_tokens WHERE hash = ?"
        );
        let row = sqlx::query(sql)
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        row.as_ref().map(decode::refresh_token).transpose()
    }

    async fn revoke_token_id(&self, realm_id: &str, jti: &str, expires_at: u64) -> StoreResult<()> {
        // An upsert, so that revoking twice is harmless; the later expiry wins so that a
        // second revocation can never shorten how long the token is refused.
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, realm_id, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (jti) DO UPDATE SET expires_at = CASE \
             WHEN excluded.expires_at > revoked_tokens.expires_at THEN excluded.expires_at \
             ELSE revoked_tokens.expires_at END",
        )
        .bind(jti)
        .bind(realm_id)
        .bind(to_db(expires_at)?)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn list_revoked_token_ids(&self, now: u64) -> StoreResult<Vec<(String, u64)>> {
        let rows = sqlx::query(
            "SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > ? ORDER BY jti",
        )
        .bind(to_db(now)?)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| Ok((row.string("jti")?, row.u64("expires_at")?)))
            .collect()
    }

    async fn consume_once(&self, context: &str, value: &str, expires_at: u64) -> StoreResult<bool> {
        // The store reads no clock, so an existing row counts as a replay even if its expiry
        // has passed; purge_expired removes old rows, and callers refuse expired values
        // (assertions, codes) on their own before they get here.
        let done = sqlx::query(
            "INSERT INTO one_time_values (context, value, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(context)
        .bind(value)
        .bind(to_db(expires_at)?)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_auth_code(&self, hash: &str, data: &str, expires_at: u64) -> StoreResult<()> {
        sqlx::query("INSERT INTO auth_codes (hash, data, expires_at) VALUES (?, ?, ?)")
            .bind(hash)
            .bind(data)
            .bind(to_db(expires_at)?)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn take_auth_code(&self, hash: &str, now: u64) -> StoreResult<Option<String>> {
        // Delete-returning: the delete is the claim, so of two concurrent takes only one gets
        // the row. An expired code is deleted as well, then refused.
        let row = sqlx::query("DELETE FROM auth_codes WHERE hash = ? RETURNING data, expires_at")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)?;
        let Some(row) = row else {
            return Ok(None);
        };
        if row.u64("expires_at")? <= now {
            return Ok(None);
        }
        row.string("data").map(Some)
    }

    async fn insert_events(&self, events: &[EventRecord]) -> StoreResult<()> {
        // One transaction for the batch: SQLite commits are the expensive part (a WAL sync
        // each), and the event writer flushes in batches precisely to pay it once.
        // Several rows per statement: each statement is a round trip to the SQLite worker
        // thread, and with one per event the writer cost more than the requests it records.
        // 100 rows of 9 values stay far below SQLite's limit on bound variables.
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        for chunk in events.chunks(100) {
            let mut times = Vec::with_capacity(chunk.len());
            for event in chunk {
                times.push(to_db(event.time)?);
            }
            let mut query = QueryBuilder::<Sqlite>::new(crate::INSERT_EVENTS);
            query.push_values(chunk.iter().zip(times), |row, (event, time)| {
                crate::bind_event(row, time, event);
            });
            query.build().execute(&mut *tx).await.map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn list_events(
        &self,
        realm_id: &str,
        filter: &EventFilter,
    ) -> StoreResult<Vec<EventRecord>> {
        let max = match filter.max {
            0 => DEFAULT_EVENTS_PAGE,
            max => max.min(MAX_EVENTS_PAGE),
        };
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT time, realm_id, event_type, client_id, user_id, session_id, ip_address, \
             error, details FROM events WHERE realm_id = ",
        );
        query.push_bind(realm_id.to_owned());
        if !filter.types.is_empty() {
            query.push(" AND event_type IN (");
            let mut types = query.separated(", ");
            for event_type in &filter.types {
                types.push_bind(event_type.clone());
            }
            query.push(")");
        }
        if let Some(client_id) = &filter.client_id {
            query.push(" AND client_id = ").push_bind(client_id.clone());
        }
        if let Some(user_id) = &filter.user_id {
            query.push(" AND user_id = ").push_bind(user_id.clone());
        }
        if let Some(from) = filter.date_from {
            query.push(" AND time >= ").push_bind(to_db(from)?);
        }
        if let Some(to) = filter.date_to {
            query.push(" AND time <= ").push_bind(to_db(to)?);
        }
        query
            .push(" ORDER BY time DESC, seq DESC LIMIT ")
            .push_bind(to_db(max)?)
            .push(" OFFSET ")
            .push_bind(to_db(filter.first)?);
        let rows = query
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(decode::event).collect()
    }

    async fn purge_expired(&self, now: u64) -> StoreResult<u64> {
        let now = to_db(now)?;
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        let mut deleted = 0;
        for sql in [
            "DELETE FROM sessions WHERE expires_at <= ?",
            "DELETE FROM client_sessions WHERE expires_at <= ?",
            "DELETE FROM refresh_tokens WHERE expires_at <= ?",
            "DELETE FROM revoked_tokens WHERE expires_at <= ?",
            "DELETE FROM one_time_values WHERE expires_at <= ?",
            "DELETE FROM auth_codes WHERE expires_at <= ?",
        ] {
            let done = sqlx::query(sql)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            deleted += done.rows_affected();
        }
        tx.commit().await.map_err(db_error)?;
        Ok(deleted)
    }

    async fn purge_events(&self, before_ms: u64, limit: u64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM events WHERE seq IN \
             (SELECT seq FROM events WHERE time < ? ORDER BY time LIMIT ?)",
        )
        .bind(to_db(before_ms)?)
        .bind(to_db(limit)?)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests;
