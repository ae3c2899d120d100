//! The PostgreSQL implementation of [`Store`].
//!
//! PostgreSQL is the shared store when several server nodes run side by side. The statements
//! are those of the SQLite backend with `$n` placeholders, and they rely on the same
//! single-statement atomicity: a conditional `UPDATE ... RETURNING` to use a refresh token,
//! `INSERT ... ON CONFLICT DO NOTHING` for one-time values, `DELETE ... RETURNING` to take an
//! authorization code. Under PostgreSQL's default READ COMMITTED isolation, a statement that
//! finds its row locked by a concurrent one waits for it and then re-checks its `WHERE` clause
//! against the committed row, so of two racing uses exactly one wins, as on SQLite.
//!
//! Like the SQLite backend, queries are built at run time (no compile-time checked macros), so
//! a build never needs a live database.
//!
//! A database that is down or unreachable must make calls fail quickly with
//! [`StoreError::Unavailable`] rather than hang request handlers: the pool waits at most 5 s
//! for a connection (connecting included), every connection carries a server-side
//! `statement_timeout` of 10 s, and every round trip is additionally bounded on the client
//! side (20 s) in case the network itself goes silent.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};

use crate::EmbeddedMigration;
use crate::decode::{self, Columns as _};
use crate::{
    ChangeNotice, ClientSessionRecord, DEFAULT_EVENTS_PAGE, EventFilter, EventRecord, JobLock,
    MAX_EVENTS_PAGE, Object, ObjectWrite, RESYNC_MESSAGE, RefreshTokenRecord, RefreshTokenUse,
    SessionRecord, Store, StoreError, StoreResult, from_db, opt_to_db, to_db,
};

/// Connections per node. Each request needs at most one at a time, and PostgreSQL's default
/// `max_connections` of 100 has to serve every node.
const MAX_CONNECTIONS: u32 = 16;

/// How long a call waits for a pooled connection, including opening a new one. When the
/// database is down, this is roughly how long a call takes to fail.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The server-side limit on any one statement, set on every new connection (see
/// [`session_settings`]). Request-path statements take milliseconds; anything near this is
/// stuck behind a lock or a sick database.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a connection may sit idle inside an open transaction. An abandoned transaction (a
/// node frozen mid-transaction) would otherwise hold its row locks until TCP notices.
const IDLE_IN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// The client-side bound on one round trip (acquiring a connection, then one statement): a
/// backstop for a network that silently drops packets, where neither the pool nor the server
/// timeout would ever fire.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// How long `connect` may spend on migrations, including the wait for another node migrating
/// the same database (sqlx holds an advisory lock while it migrates). Migrations run without
/// the statement timeout, which a large table's migration may well exceed; this bounds them
/// only against a database that stopped answering.
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(300);

/// Rows per multi-row `INSERT` of events: 9 parameters each stays far below PostgreSQL's limit
/// of 65535 bound parameters per statement.
const EVENTS_PER_INSERT: usize = 1000;

/// The `LISTEN`/`NOTIFY` channel nodes use to tell each other about changes.
const CHANGES_CHANNEL: &str = "cambio_changes";
/// `NOTIFY` payloads are limited to just under 8000 bytes.
const MAX_NOTIFY_PAYLOAD: usize = 7900;

/// The `SET` statements run on every new connection (times in milliseconds).
fn session_settings() -> String {
    format!(
        "SET statement_timeout = {}; SET idle_in_transaction_session_timeout = {}",
        STATEMENT_TIMEOUT.as_millis(),
        IDLE_IN_TRANSACTION_TIMEOUT.as_millis()
    )
}

/// The migrations, embedded in the binary; see the SQLite migrator for why they are listed by
/// hand (no `sqlx::migrate!`, whose `macros` feature this workspace does not enable). Versions
/// and descriptions follow the file names exactly as `migrate!` would derive them. Add a line
/// here for every new file in `migrations/postgres`.
fn migrator() -> Migrator {
    crate::embedded_migrator(&[
        EmbeddedMigration {
            version: 1,
            description: "initial",
            sql: include_str!("../migrations/postgres/0001_initial.sql"),
        },
        EmbeddedMigration {
            version: 2,
            description: "events time",
            sql: include_str!("../migrations/postgres/0002_events_time.sql"),
        },
        EmbeddedMigration {
            version: 3,
            description: "client sessions",
            sql: include_str!("../migrations/postgres/0003_client_sessions.sql"),
        },
        EmbeddedMigration {
            version: 4,
            description: "user email",
            sql: include_str!("../migrations/postgres/0004_user_email.sql"),
        },
    ])
}

/// How many migrations are embedded (the SQLite tests compare it with the files).
#[cfg(test)]
pub(crate) fn embedded_migration_count() -> usize {
    migrator().iter().count()
}

/// A [`Store`] backed by a PostgreSQL database, shareable by several server nodes.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database` or
    /// `postgresql://...`, with the usual libpq query parameters such as `sslmode`) and brings
    /// its schema up to date. The database must exist; its tables are created by the
    /// migrations. Fails with [`StoreError::Unavailable`] within about 5 s when the database
    /// cannot be reached.
    pub async fn connect(url: &str) -> StoreResult<PgStore> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Unavailable(
                "not a PostgreSQL URL (expected postgres://... or postgresql://...)".to_owned(),
            ));
        }
        let mut options = PgConnectOptions::from_str(url).map_err(db_error)?;
        if options.get_application_name().is_none() {
            options = options.application_name("cambio");
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(session_settings()))
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .db()
            .await?;
        match migrate(&pool).await {
            Ok(()) => Ok(PgStore { pool }),
            Err(e) => {
                pool.close().await;
                Err(e)
            }
        }
    }

    /// Closes every connection, waiting for them to be returned. Used on shutdown and by
    /// tests that drop their database afterwards.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Brings the schema up to date on a connection of its own, taken out of the pool so that
/// lifting its statement timeout never leaks into request-path calls; it is closed afterwards
/// (or dropped when the migration fails or times out).
async fn migrate(pool: &PgPool) -> StoreResult<()> {
    let mut conn = pool.acquire().db().await?.detach();
    let work = async {
        sqlx::raw_sql("SET statement_timeout = 0")
            .execute(&mut conn)
            .await
            .map_err(db_error)?;
        migrator()
            .run(&mut conn)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
    };
    match tokio::time::timeout(MIGRATION_TIMEOUT, work).await {
        Ok(Ok(())) => {
            let _ = sqlx::Connection::close(conn).await;
            Ok(())
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(StoreError::Unavailable(format!(
            "migrations did not finish within {} s",
            MIGRATION_TIMEOUT.as_secs()
        ))),
    }
}

/// A connection listening on [`CHANGES_CHANNEL`].
async fn listen(pool: &PgPool) -> StoreResult<sqlx::postgres::PgListener> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).db().await?;
    listener.listen(CHANGES_CHANNEL).db().await?;
    Ok(listener)
}

/// A stable 64-bit advisory-lock key for a job name (FNV-1a: the same on every node).
fn job_key(job: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in job.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Maps a driver error to a [`StoreError`]: unique violations become conflicts (a name or key
/// is taken), undecodable values become corrupt records, and everything else (connection
/// refused, pool timeout, statement timeout...) means the database did not do what was asked.
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

/// The insertion of one object, bound.
/// Users by email, with the same expression as the partial index `objects_user_email`
/// (migration 0004); a test reads this statement's query plan.
const USERS_BY_EMAIL: &str = concat!(
    object_select!(),
    " WHERE realm_id = $1 AND kind = 'user' AND ((doc::jsonb) ->> 'email') = $2"
);

fn insert_query(
    object: &Object,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query("INSERT INTO objects (realm_id, kind, id, name, doc) VALUES ($1, $2, $3, $4, $5)")
        .bind(&object.realm_id)
        .bind(&object.kind)
        .bind(&object.id)
        .bind(&object.name)
        .bind(&object.doc)
}

fn update_query(
    object: &Object,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(
        "UPDATE objects SET name = $1, doc = $2 WHERE realm_id = $3 AND kind = $4 AND id = $5",
    )
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
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query("DELETE FROM objects WHERE realm_id = $1 AND kind = $2 AND id = $3")
        .bind(realm_id)
        .bind(kind)
        .bind(id)
}

/// Awaits one database round trip within [`CALL_TIMEOUT`] and maps its error.
trait Bounded<T> {
    fn db(self) -> impl Future<Output = StoreResult<T>> + Send;
}

impl<T, F> Bounded<T> for F
where
    F: Future<Output = Result<T, sqlx::Error>> + Send,
{
    async fn db(self) -> StoreResult<T> {
        match tokio::time::timeout(CALL_TIMEOUT, self).await {
            Ok(result) => result.map_err(db_error),
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer from the database within {} s",
                CALL_TIMEOUT.as_secs()
            ))),
        }
    }
}

impl decode::Columns for PgRow {
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

    fn bool(&self, column: &str) -> StoreResult<bool> {
        self.try_get::<bool, _>(column).map_err(db_error)
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).db().await?;
        Ok(())
    }

    async fn insert_object(&self, object: &Object) -> StoreResult<()> {
        insert_query(object).execute(&self.pool).db().await?;
        Ok(())
    }

    async fn write_objects(&self, writes: &[ObjectWrite]) -> StoreResult<()> {
        // Dropped before the commit (an error, or a caller that stopped waiting), the
        // transaction rolls back.
        let mut tx = self.pool.begin().db().await?;
        for write in writes {
            match write {
                ObjectWrite::Insert(object) => {
                    insert_query(object).execute(&mut *tx).db().await?;
                }
                ObjectWrite::Update(object) => {
                    let done = update_query(object).execute(&mut *tx).db().await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                }
                ObjectWrite::Delete { realm_id, kind, id } => {
                    delete_query(realm_id, kind, id)
                        .execute(&mut *tx)
                        .db()
                        .await?;
                }
            }
        }
        tx.commit().db().await
    }

    async fn update_object(&self, object: &Object) -> StoreResult<()> {
        let done = update_query(object).execute(&self.pool).db().await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_object(&self, realm_id: &str, kind: &str, id: &str) -> StoreResult<bool> {
        let done = delete_query(realm_id, kind, id)
            .execute(&self.pool)
            .db()
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_realm_data(&self, realm_id: &str) -> StoreResult<()> {
        // One transaction, so that a failure halfway never leaves a realm with users but no
        // clients, or sessions whose tokens are gone. Dropped on error, it rolls back.
        let mut tx = self.pool.begin().db().await?;
        for sql in [
            "DELETE FROM objects WHERE realm_id = $1",
            "DELETE FROM sessions WHERE realm_id = $1",
            "DELETE FROM client_sessions WHERE realm_id = $1",
            "DELETE FROM refresh_tokens WHERE realm_id = $1",
            "DELETE FROM revoked_tokens WHERE realm_id = $1",
            "DELETE FROM events WHERE realm_id = $1",
        ] {
            sqlx::query(sql)
                .bind(realm_id)
                .execute(&mut *tx)
                .db()
                .await?;
        }
        tx.commit().db().await
    }

    async fn get_object(
        &self,
        realm_id: &str,
        kind: &str,
        id: &str,
    ) -> StoreResult<Option<Object>> {
        let sql = concat!(
            object_select!(),
            " WHERE realm_id = $1 AND kind = $2 AND id = $3"
        );
        let row = sqlx::query(sql)
            .bind(realm_id)
            .bind(kind)
            .bind(id)
            .fetch_optional(&self.pool)
            .db()
            .await?;
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
            " WHERE realm_id = $1 AND kind = $2 AND name = $3"
        );
        let row = sqlx::query(sql)
            .bind(realm_id)
            .bind(kind)
            .bind(name)
            .fetch_optional(&self.pool)
            .db()
            .await?;
        row.as_ref().map(decode::object).transpose()
    }

    async fn find_users_by_email(&self, realm_id: &str, email: &str) -> StoreResult<Vec<Object>> {
        let rows = sqlx::query(USERS_BY_EMAIL)
            .bind(realm_id)
            .bind(email)
            .fetch_all(&self.pool)
            .db()
            .await?;
        rows.iter().map(decode::object).collect()
    }

    async fn list_objects(&self, realm_id: &str, kind: &str) -> StoreResult<Vec<Object>> {
        // `name` has the "C" collation (see the migration): byte order, as on SQLite.
        let sql = concat!(
            object_select!(),
            " WHERE realm_id = $1 AND kind = $2 ORDER BY name"
        );
        let rows = sqlx::query(sql)
            .bind(realm_id)
            .bind(kind)
            .fetch_all(&self.pool)
            .db()
            .await?;
        rows.iter().map(decode::object).collect()
    }

    async fn insert_session(&self, session: &SessionRecord) -> StoreResult<()> {
        let mut tx = self.pool.begin().db().await?;
        sqlx::query(
            "INSERT INTO sessions (id, realm_id, user_id, client_id, offline, created_at, \
             last_refresh, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&session.id)
        .bind(&session.realm_id)
        .bind(&session.user_id)
        .bind(&session.client_id)
        .bind(session.offline)
        .bind(to_db(session.created_at)?)
        .bind(to_db(session.last_refresh)?)
        .bind(to_db(session.expires_at)?)
        .bind(opt_to_db(session.revoked_at)?)
        .execute(&mut *tx)
        .db()
        .await?;
        sqlx::query(
            "INSERT INTO client_sessions (session_id, client_id, realm_id, joined_at, ended_at, \
             expires_at) VALUES ($1, $2, $3, $4, NULL, $5)",
        )
        .bind(&session.id)
        .bind(&session.client_id)
        .bind(&session.realm_id)
        .bind(to_db(session.created_at)?)
        .bind(to_db(session.expires_at)?)
        .execute(&mut *tx)
        .db()
        .await?;
        tx.commit().db().await?;
        Ok(())
    }

    async fn join_client_session(&self, part: &ClientSessionRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO client_sessions (session_id, client_id, realm_id, joined_at, ended_at, \
             expires_at) VALUES ($1, $2, $3, $4, NULL, $5) \
             ON CONFLICT (session_id, client_id) DO UPDATE SET joined_at = excluded.joined_at, \
             expires_at = GREATEST(client_sessions.expires_at, excluded.expires_at)",
        )
        .bind(&part.session_id)
        .bind(&part.client_id)
        .bind(&part.realm_id)
        .bind(to_db(part.joined_at)?)
        .bind(to_db(part.expires_at)?)
        .execute(&self.pool)
        .db()
        .await?;
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
        let mut tx = self.pool.begin().db().await?;
        // Ends of two clients of one session are serialised on the session's row, so that
        // each sees the other's end and the last one reports that no client remains.
        sqlx::query("SELECT id FROM sessions WHERE id = $1 FOR UPDATE")
            .bind(session_id)
            .fetch_optional(&mut *tx)
            .db()
            .await?;
        // An unknown part is recorded as ended since the beginning of time (joined_at 0), so
        // that it never counts as live.
        sqlx::query(
            "INSERT INTO client_sessions (session_id, client_id, realm_id, joined_at, ended_at, \
             expires_at) VALUES ($1, $2, $3, 0, $4, $5) \
             ON CONFLICT (session_id, client_id) DO UPDATE SET ended_at = excluded.ended_at, \
             expires_at = GREATEST(client_sessions.expires_at, excluded.expires_at)",
        )
        .bind(session_id)
        .bind(client_id)
        .bind(realm_id)
        .bind(to_db(at)?)
        .bind(to_db(until)?)
        .execute(&mut *tx)
        .db()
        .await?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS live FROM client_sessions WHERE session_id = $1 \
             AND client_id <> $2 AND (ended_at IS NULL OR joined_at > ended_at)",
        )
        .bind(session_id)
        .bind(client_id)
        .fetch_one(&mut *tx)
        .db()
        .await?;
        let live: i64 = row.try_get("live").map_err(db_error)?;
        tx.commit().db().await?;
        Ok(live > 0)
    }

    async fn list_ended_client_sessions(&self, now: u64) -> StoreResult<Vec<ClientSessionRecord>> {
        let sql = concat!(
            client_session_select!(),
            " WHERE ended_at IS NOT NULL AND expires_at > $1 ORDER BY session_id, client_id"
        );
        let rows = sqlx::query(sql)
            .bind(to_db(now)?)
            .fetch_all(&self.pool)
            .db()
            .await?;
        rows.iter().map(decode::client_session).collect()
    }

    async fn get_session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        let sql = concat!(session_select!(), " WHERE id = $1");
        let row = sqlx::query(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .db()
            .await?;
        row.as_ref().map(decode::session).transpose()
    }

    async fn touch_session(&self, id: &str, last_refresh: u64) -> StoreResult<()> {
        let done = sqlx::query("UPDATE sessions SET last_refresh = $1 WHERE id = $2")
            .bind(to_db(last_refresh)?)
            .bind(id)
            .execute(&self.pool)
            .db()
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn revoke_session(&self, id: &str, at: u64) -> StoreResult<bool> {
        // Only where revoked_at is NULL: the first revocation time is the one that counts, and
        // the return value tells the caller whether this call ended the session.
        let done =
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(to_db(at)?)
                .bind(id)
                .execute(&self.pool)
                .db()
                .await?;
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
        // (possibly on another node) revokes some of the same sessions concurrently.
        let sql = if include_offline {
            "UPDATE sessions SET revoked_at = $1 WHERE realm_id = $2 AND user_id = $3 \
             AND revoked_at IS NULL RETURNING id"
        } else {
            "UPDATE sessions SET revoked_at = $1 WHERE realm_id = $2 AND user_id = $3 \
             AND revoked_at IS NULL AND NOT offline RETURNING id"
        };
        let rows = sqlx::query(sql)
            .bind(to_db(at)?)
            .bind(realm_id)
            .bind(user_id)
            .fetch_all(&self.pool)
            .db()
            .await?;
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
            " WHERE realm_id = $1 AND user_id = $2 ORDER BY created_at, id"
        );
        let rows = sqlx::query(sql)
            .bind(realm_id)
            .bind(user_id)
            .fetch_all(&self.pool)
            .db()
            .await?;
        rows.iter().map(decode::session).collect()
    }

    async fn list_revoked_sessions(&self, now: u64) -> StoreResult<Vec<SessionRecord>> {
        let sql = concat!(
            session_select!(),
            " WHERE revoked_at IS NOT NULL AND expires_at > $1 ORDER BY id"
        );
        let rows = sqlx::query(sql)
            .bind(to_db(now)?)
            .fetch_all(&self.pool)
            .db()
            .await?;
        rows.iter().map(decode::session).collect()
    }

    async fn insert_refresh_token(&self, token: &RefreshTokenRecord) -> StoreResult<()> {
        let sql = concat!(
            "INSERT INTO refresh_tokens (",
            refresh_token_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        sqlx::query(sql)
            .bind(&token.hash)
            .bind(&token.realm_id)
            .bind(&token.session_id)
            .bind(&token.client_id)
            .bind(&token.user_id)
            .bind(&token.scope)
            .bind(&token.data)
            .bind(token.offline)
            .bind(to_db(token.issued_at)?)
            .bind(to_db(token.expires_at)?)
            .bind(opt_to_db(token.used_at)?)
            .execute(&self.pool)
            .db()
            .await?;
        Ok(())
    }

    async fn use_refresh_token(&self, hash: &str, now: u64) -> StoreResult<RefreshTokenUse> {
        // The conditional UPDATE is the whole atomicity argument: a concurrent use of the same
        // token blocks on the row lock, then re-evaluates `used_at IS NULL` against the
        // committed row and updates nothing. The loser falls through to the plain read below,
        // which sees the winner's committed use time.
        let sql = concat!(
            "UPDATE refresh_tokens SET used_at = $1 WHERE hash = $2 AND used_at IS NULL \
             RETURNING ",
            refresh_token_columns!()
        );
        let fresh = sqlx::query(sql)
            .bind(to_db(now)?)
            .bind(hash)
            .fetch_optional(&self.pool)
            .db()
            .await?;
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
            " FROM refresh_tokens WHERE hash = $1"
        );
        let row = sqlx::query(sql)
            .bind(hash)
            .fetch_optional(&self.pool)
            .db()
            .await?;
        row.as_ref().map(decode::refresh_token).transpose()
    }

    async fn revoke_token_id(&self, realm_id: &str, jti: &str, expires_at: u64) -> StoreResult<()> {
        // An upsert, so that revoking twice is harmless; the later expiry wins so that a
        // second revocation can never shorten how long the token is refused.
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, realm_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti) DO UPDATE \
             SET expires_at = GREATEST(revoked_tokens.expires_at, excluded.expires_at)",
        )
        .bind(jti)
        .bind(realm_id)
        .bind(to_db(expires_at)?)
        .execute(&self.pool)
        .db()
        .await?;
        Ok(())
    }

    async fn list_revoked_token_ids(&self, now: u64) -> StoreResult<Vec<(String, u64)>> {
        let rows = sqlx::query(
            "SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > $1 ORDER BY jti",
        )
        .bind(to_db(now)?)
        .fetch_all(&self.pool)
        .db()
        .await?;
        rows.iter()
            .map(|row| Ok((row.string("jti")?, row.u64("expires_at")?)))
            .collect()
    }

    async fn consume_once(&self, context: &str, value: &str, expires_at: u64) -> StoreResult<bool> {
        // A concurrent insert of the same key waits for the first one to commit and then does
        // nothing, so exactly one caller sees a row inserted. As on SQLite, an existing row is a
        // replay even if its expiry has passed; purge_expired removes old rows.
        let done = sqlx::query(
            "INSERT INTO one_time_values (context, value, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(context)
        .bind(value)
        .bind(to_db(expires_at)?)
        .execute(&self.pool)
        .db()
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_auth_code(&self, hash: &str, data: &str, expires_at: u64) -> StoreResult<()> {
        sqlx::query("INSERT INTO auth_codes (hash, data, expires_at) VALUES ($1, $2, $3)")
            .bind(hash)
            .bind(data)
            .bind(to_db(expires_at)?)
            .execute(&self.pool)
            .db()
            .await?;
        Ok(())
    }

    async fn take_auth_code(&self, hash: &str, now: u64) -> StoreResult<Option<String>> {
        // Delete-returning: the delete is the claim, so of two concurrent takes only one gets
        // the row (the other waits on the row lock, then finds it gone). An expired code is
        // deleted as well, then refused.
        let row = sqlx::query("DELETE FROM auth_codes WHERE hash = $1 RETURNING data, expires_at")
            .bind(hash)
            .fetch_optional(&self.pool)
            .db()
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        if row.u64("expires_at")? <= now {
            return Ok(None);
        }
        row.string("data").map(Some)
    }

    async fn insert_events(&self, events: &[EventRecord]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        // Convert every time first, so that an out-of-range value fails before anything is
        // written; then one multi-row INSERT per chunk, in one transaction for the batch.
        let times = events
            .iter()
            .map(|event| to_db(event.time))
            .collect::<StoreResult<Vec<_>>>()?;
        let mut tx = self.pool.begin().db().await?;
        for (chunk, times) in events
            .chunks(EVENTS_PER_INSERT)
            .zip(times.chunks(EVENTS_PER_INSERT))
        {
            let mut query = QueryBuilder::<Postgres>::new(crate::INSERT_EVENTS);
            query.push_values(chunk.iter().zip(times), |row, (event, time)| {
                crate::bind_event(row, *time, event);
            });
            query.build().execute(&mut *tx).db().await?;
        }
        tx.commit().db().await
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
        let mut query = QueryBuilder::<Postgres>::new(
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
        let rows = query.build().fetch_all(&self.pool).db().await?;
        rows.iter().map(decode::event).collect()
    }

    async fn publish(&self, message: &str) -> StoreResult<()> {
        if message.len() > MAX_NOTIFY_PAYLOAD {
            // Too large to carry: ask every node to reload instead.
            return Box::pin(self.publish(RESYNC_MESSAGE)).await;
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANGES_CHANNEL)
            .bind(message)
            .execute(&self.pool)
            .db()
            .await?;
        Ok(())
    }

    async fn subscribe(&self) -> StoreResult<Option<tokio::sync::mpsc::Receiver<ChangeNotice>>> {
        let mut listener = listen(&self.pool).await?;
        let pool = self.pool.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        tokio::spawn(async move {
            loop {
                // `try_recv` answers `None` (or an error) when the connection was lost. Whatever
                // was sent meanwhile is gone, so everything must be reloaded, but only once the
                // node listens again: a reload before that could miss a change made between it
                // and the new `LISTEN`, and one while the database is still down would only
                // fail (and throw away the caches that keep requests working meanwhile).
                let notice = match listener.try_recv().await {
                    Ok(Some(notification)) => {
                        ChangeNotice::Message(notification.payload().to_owned())
                    }
                    Ok(None) | Err(_) => {
                        listener = loop {
                            if tx.is_closed() {
                                return;
                            }
                            match listen(&pool).await {
                                Ok(listener) => break listener,
                                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                            }
                        };
                        ChangeNotice::Resync
                    }
                };
                if tx.send(notice).await.is_err() {
                    return;
                }
            }
        });
        Ok(Some(rx))
    }

    async fn try_lock_job(&self, job: &str) -> StoreResult<Option<JobLock>> {
        // A session-level advisory lock on a connection of its own, taken out of the pool: it
        // is released when the guard (and so the connection) is dropped, also if this node
        // dies, because the server ends the session.
        let key = job_key(job);
        let mut conn = self.pool.acquire().db().await?.detach();
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(key)
            .fetch_one(&mut conn)
            .db()
            .await?;
        Ok(locked.then(|| JobLock::holding(std::sync::Mutex::new(conn))))
    }

    async fn purge_expired(&self, now: u64) -> StoreResult<u64> {
        let now = to_db(now)?;
        let mut tx = self.pool.begin().db().await?;
        let mut deleted = 0;
        for sql in [
            "DELETE FROM sessions WHERE expires_at <= $1",
            "DELETE FROM client_sessions WHERE expires_at <= $1",
            "DELETE FROM refresh_tokens WHERE expires_at <= $1",
            "DELETE FROM revoked_tokens WHERE expires_at <= $1",
            "DELETE FROM one_time_values WHERE expires_at <= $1",
            "DELETE FROM auth_codes WHERE expires_at <= $1",
        ] {
            let done = sqlx::query(sql).bind(now).execute(&mut *tx).db().await?;
            deleted += done.rows_affected();
        }
        tx.commit().db().await?;
        Ok(deleted)
    }

    async fn purge_events(&self, before_ms: u64, limit: u64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM events WHERE seq IN \
             (SELECT seq FROM events WHERE time < $1 ORDER BY time LIMIT $2)",
        )
        .bind(to_db(before_ms)?)
        .bind(to_db(limit)?)
        .execute(&self.pool)
        .db()
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests;
