//! The conformance suite and SQLite-specific behaviour (files, WAL, reopening, URLs).

use super::*;
use crate::conformance;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A database file in the system temp directory, removed (with its WAL files) on drop.
/// The name is unique per process and test so that parallel tests never share a file.
struct TempDb {
    path: PathBuf,
}

impl TempDb {
    fn new() -> Self {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "cambio-store-test-{}-{nanos}-{seq}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDb {
            path: dir.join("nested").join("cambio.db"),
        }
    }

    fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        if let Some(dir) = self.path.parent().and_then(|p| p.parent()) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn memory() -> SqliteStore {
    SqliteStore::connect("sqlite::memory:")
        .await
        .expect("open memory store")
}

/// Opens the file store; the database sits in a directory that does not exist yet, which
/// `connect` creates.
async fn file(db: &TempDb) -> SqliteStore {
    SqliteStore::connect(&db.url())
        .await
        .expect("open file store")
}

/// Runs one conformance check against a fresh in-memory store and a fresh file store.
macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $check() {
                    let store = super::memory().await;
                    super::conformance::$check(&store).await;
                }
            )*
        }
        mod file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let db = super::TempDb::new();
                    let store = super::file(&db).await;
                    super::conformance::$check(&store).await;
                    store.close().await;
                }
            )*
        }
    };
}

conformance_tests!(
    check_objects,
    check_sessions,
    check_client_sessions,
    check_refresh_tokens,
    check_one_time_values,
    check_auth_codes,
    check_events,
    check_event_purge,
    check_revocations,
    check_purge,
    check_realm_delete,
);

#[tokio::test]
async fn all_checks_share_one_memory_store() {
    let store = memory().await;
    conformance::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_checks_share_one_file_store() {
    let db = TempDb::new();
    let store = file(&db).await;
    conformance::run_all(&store).await;
    store.close().await;
}

#[tokio::test]
async fn file_store_survives_reopening() {
    let db = TempDb::new();
    let store = file(&db).await;
    let object = Object {
        realm_id: "reopen".to_owned(),
        kind: "client".to_owned(),
        id: "c1".to_owned(),
        name: "app".to_owned(),
        doc: "{}".to_owned(),
    };
    store.insert_object(&object).await.expect("insert");
    assert!(
        store
            .consume_once("code", "v", u64::MAX >> 1)
            .await
            .expect("consume")
    );
    store.close().await;

    // Reopening also re-runs the migrator, which must find version 1 applied.
    let store = file(&db).await;
    assert_eq!(
        store
            .get_object("reopen", "client", "c1")
            .await
            .expect("get"),
        Some(object)
    );
    assert!(!store.consume_once("code", "v", 1).await.expect("consume"));
    store.close().await;
}

#[tokio::test]
async fn file_store_uses_wal() {
    let db = TempDb::new();
    let store = file(&db).await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&store.pool)
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
    store.close().await;
}

#[tokio::test]
async fn out_of_range_values_are_refused() {
    let store = memory().await;
    let result = store.consume_once("code", "big", u64::MAX).await;
    assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
    sqlx::query("INSERT INTO auth_codes (hash, data, expires_at) VALUES ('neg', '{}', -1)")
        .execute(&store.pool)
        .await
        .expect("insert");
    let result = store.take_auth_code("neg", 0).await;
    assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
}

#[tokio::test]
async fn bad_urls_are_unavailable_not_panics() {
    let result = SqliteStore::connect("postgres://nope").await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
}

/// The client-sessions migration gives sessions that existed before it their clients: the one
/// that started each session and every client holding a refresh token in it.
#[tokio::test]
async fn client_sessions_migration_backfills_existing_sessions() {
    let db = TempDb::new();
    let store = file(&db).await;
    store.close().await;
    std::fs::remove_file(&db.path).expect("fresh file");
    // The schema as it was before the migration, with one session and two clients' tokens.
    let options = SqliteConnectOptions::from_str(&db.url())
        .expect("url")
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("open");
    crate::embedded_migrator(&MIGRATIONS[..2])
        .run(&pool)
        .await
        .expect("old migrations");
    for sql in [
        "INSERT INTO sessions VALUES ('s', 'r', 'u', 'login-client', 0, 100, 100, 5000, NULL)",
        "INSERT INTO refresh_tokens VALUES ('h1', 'r', 's', 'login-client', 'u', '', '{}', 0, \
         100, 4000, NULL)",
        "INSERT INTO refresh_tokens VALUES ('h2', 'r', 's', 'requester', 'u', '', '{}', 0, \
         200, 4000, NULL)",
    ] {
        sqlx::query(sql).execute(&pool).await.expect("old rows");
    }
    pool.close().await;

    let store = file(&db).await;
    assert!(
        store
            .end_client_session("r", "s", "login-client", 300, 5000)
            .await
            .expect("end"),
        "the requester, backfilled from its refresh token, remains"
    );
    assert!(
        !store
            .end_client_session("r", "s", "requester", 300, 5000)
            .await
            .expect("end"),
        "nobody remains"
    );
    store.close().await;
}

/// Every file in `migrations/sqlite` and `migrations/postgres` is embedded: they are listed by
/// hand (see `MIGRATIONS`), and a file left out is silently never applied.
#[test]
fn every_migration_file_is_embedded() {
    for (dir, embedded) in [
        ("sqlite", migrator().iter().count()),
        ("postgres", crate::postgres::embedded_migration_count()),
    ] {
        let path = format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR"));
        let files = std::fs::read_dir(&path)
            .expect("read the migrations directory")
            .filter(|entry| {
                entry
                    .as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
            })
            .count();
        assert_eq!(files, embedded, "{path}");
    }
}

/// Looking users up by email uses the partial index, not a scan of the realm's users.
#[tokio::test]
async fn users_by_email_use_their_index() {
    let store = memory().await;
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "EXPLAIN QUERY PLAN {USERS_BY_EMAIL}"
    )))
    .bind("realm")
    .bind("ann@example.com")
    .fetch_all(&store.pool)
    .await
    .expect("explain");
    let detail: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
    assert!(
        detail.iter().any(|d| d.contains("objects_user_email")),
        "{detail:?}"
    );
}
