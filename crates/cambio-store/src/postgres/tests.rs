//! The conformance suite and PostgreSQL-specific behaviour (migrations, timeouts, outages).
//!
//! Tests that need a server take it from `CAMBIO_TEST_POSTGRES_URL` and work in a fresh
//! database each ([`PgTestDatabase`]); without the variable they skip, except in CI where they
//! fail. The tests of unreachable servers need no PostgreSQL and always run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::conformance::{self, PgTestDatabase};

/// A fresh database and a store connected to it; `None` when the tests are skipped.
async fn fresh(test: &str) -> Option<(PgTestDatabase, PgStore)> {
    let db = PgTestDatabase::create(test).await?;
    let store = PgStore::connect(db.url())
        .await
        .expect("connect to test db");
    Some((db, store))
}

/// Runs one conformance check against a store on a fresh database. Multi-threaded, so that
/// the races of the checks really run concurrently on two connections.
macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {
        mod conformance_checks {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some((_db, store)) = super::fresh(stringify!($check)).await else {
                        return;
                    };
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_checks_share_one_store() {
    let Some((_db, store)) = fresh("all_checks").await else {
        return;
    };
    conformance::run_all(&store).await;
    store.close().await;
}

/// The one-email-per-user check reads users through the partial index of migration 0004, in
/// a realm of 5,000 users beside another realm's, once PostgreSQL has statistics.
#[tokio::test]
async fn users_by_email_use_their_index() {
    let Some((_db, store)) = fresh("email_plan").await else {
        return;
    };
    let mut writes = Vec::new();
    for realm in ["big", "other"] {
        for n in 0..5_000 {
            let id = format!("{realm}-{n}");
            writes.push(ObjectWrite::Insert(Object {
                realm_id: realm.to_owned(),
                kind: "user".to_owned(),
                id: id.clone(),
                name: id.clone(),
                doc: format!(r#"{{"id":"{id}","email":"{id}@example.com"}}"#),
            }));
        }
    }
    store.write_objects(&writes).await.expect("users");
    sqlx::query("ANALYZE objects")
        .execute(&store.pool)
        .await
        .expect("analyze");
    let plan: Vec<(String,)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN {USERS_BY_EMAIL}")))
            .bind("big")
            .bind("big-17@example.com")
            .fetch_all(&store.pool)
            .await
            .expect("explain");
    let plan: Vec<String> = plan.into_iter().map(|(line,)| line).collect();
    assert!(
        plan.iter().any(|line| line.contains("objects_user_email")),
        "{plan:#?}"
    );
    let found = store
        .find_users_by_email("big", "big-17@example.com")
        .await
        .expect("find");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, "big-17");
    store.close().await;
}

#[tokio::test]
async fn data_survives_reconnecting_and_migrations_run_once() {
    let Some((db, store)) = fresh("reconnect").await else {
        return;
    };
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

    // Reconnecting re-runs the migrator, which must find version 1 applied with the same
    // checksum.
    let store = PgStore::connect(db.url()).await.expect("reconnect");
    assert_eq!(
        store
            .get_object("reopen", "client", "c1")
            .await
            .expect("get"),
        Some(object)
    );
    assert!(!store.consume_once("code", "v", 1).await.expect("consume"));
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&store.pool)
            .await
            .expect("migrations table");
    let embedded = i64::try_from(super::embedded_migration_count()).expect("a small count");
    assert_eq!(
        versions,
        (1..=embedded).collect::<Vec<_>>(),
        "each migration applied exactly once"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    // Several nodes starting at the same time against an empty database: sqlx's advisory lock
    // makes one of them migrate and the others find the schema in place.
    let Some(db) = PgTestDatabase::create("concurrent_migrations").await else {
        return;
    };
    let (a, b, c) = tokio::join!(
        PgStore::connect(db.url()),
        PgStore::connect(db.url()),
        PgStore::connect(db.url())
    );
    let stores = [a.expect("a"), b.expect("b"), c.expect("c")];
    for store in &stores {
        store.ping().await.expect("ping");
    }
    let session = SessionRecord {
        id: "s1".to_owned(),
        realm_id: "r".to_owned(),
        user_id: "u".to_owned(),
        client_id: "c".to_owned(),
        offline: false,
        created_at: 1,
        last_refresh: 1,
        expires_at: 2,
        revoked_at: None,
    };
    stores[0].insert_session(&session).await.expect("insert");
    assert_eq!(
        stores[2].get_session("s1").await.expect("get"),
        Some(session),
        "all nodes share one database"
    );
    for store in &stores {
        store.close().await;
    }
}

#[tokio::test]
async fn connections_carry_the_statement_timeout() {
    let Some((_db, store)) = fresh("statement_timeout").await else {
        return;
    };
    let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&store.pool)
        .await
        .expect("show");
    assert_eq!(timeout, "10s");
    // A statement that runs into it fails as unavailable.
    let result = sqlx::query("SELECT pg_sleep(11)")
        .execute(&store.pool)
        .db()
        .await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    store.close().await;
}

#[tokio::test]
async fn out_of_range_values_are_refused() {
    let Some((_db, store)) = fresh("out_of_range").await else {
        return;
    };
    let result = store.consume_once("code", "big", u64::MAX).await;
    assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
    sqlx::query("INSERT INTO auth_codes (hash, data, expires_at) VALUES ('neg', '{}', -1)")
        .execute(&store.pool)
        .await
        .expect("insert");
    let result = store.take_auth_code("neg", 0).await;
    assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
    // A batch with one bad time writes nothing.
    let good = EventRecord {
        time: 1,
        realm_id: "r".to_owned(),
        event_type: "LOGIN".to_owned(),
        client_id: None,
        user_id: None,
        session_id: None,
        ip_address: None,
        error: None,
        details: "{}".to_owned(),
    };
    let mut bad = good.clone();
    bad.time = u64::MAX;
    let result = store.insert_events(&[good, bad]).await;
    assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
    let listed = store
        .list_events("r", &EventFilter::default())
        .await
        .expect("list");
    assert_eq!(listed, vec![]);
    store.close().await;
}

#[tokio::test]
async fn bad_urls_are_unavailable_not_panics() {
    for url in [
        "sqlite::memory:",
        "mysql://h/db",
        "postgres://h:notaport/db",
    ] {
        let result = PgStore::connect(url).await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{url}: {result:?}"
        );
    }
}

/// A port on which nothing listens (bound, then released).
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test]
async fn a_server_that_is_down_fails_promptly() {
    let port = closed_port().await;
    let started = Instant::now();
    let result = PgStore::connect(&format!("postgres://cambio@127.0.0.1:{port}/cambio")).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_fails_promptly() {
    // Accepts connections and then says nothing, like a hung server or a black-holed network.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let result = PgStore::connect(&format!("postgres://cambio@127.0.0.1:{port}/cambio")).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    silent.abort();
}

/// A TCP proxy in front of the test server that can go silent (stop forwarding while keeping
/// every socket open) or go down (close every socket and stop listening).
struct Proxy {
    port: u16,
    silent: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: (String, u16)) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let silent = Arc::new(AtomicBool::new(false));
        let flag = silent.clone();
        let task = tokio::spawn(async move {
            // Connection tasks live in a JoinSet, so that aborting the proxy closes them all.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect((upstream.0.as_str(), upstream.1)).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                connections.spawn(pipe(client_read, server_write, flag.clone()));
                connections.spawn(pipe(server_read, client_write, flag.clone()));
            }
        });
        Proxy { port, silent, task }
    }

    /// The test database's URL with the proxy as host and port.
    fn url(&self, db: &PgTestDatabase) -> String {
        let (scheme, rest) = db.url().split_once("://").expect("scheme in the test URL");
        let (authority, path) = rest.split_once('/').expect("database in the test URL");
        let user = authority
            .rsplit_once('@')
            .map(|(user, _)| format!("{user}@"))
            .unwrap_or_default();
        format!("{scheme}://{user}127.0.0.1:{}/{path}", self.port)
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    silent: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while silent.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The host and port of the test server.
fn upstream(db: &PgTestDatabase) -> (String, u16) {
    let options = PgConnectOptions::from_str(db.url()).expect("test URL");
    (options.get_host().to_owned(), options.get_port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_promptly_when_the_database_goes_down_and_recover() {
    let Some(db) = PgTestDatabase::create("goes_down").await else {
        return;
    };
    let proxy = Proxy::start(upstream(&db)).await;
    let store = PgStore::connect(&proxy.url(&db)).await.expect("connect");
    store.ping().await.expect("ping through the proxy");

    // Down: every socket closed, nothing listening.
    proxy.task.abort();
    let _ = proxy.task.await;
    let started = Instant::now();
    let result = store.get_session("s").await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_promptly_when_the_network_goes_silent() {
    let Some(db) = PgTestDatabase::create("goes_silent").await else {
        return;
    };
    let proxy = Proxy::start(upstream(&db)).await;
    let store = PgStore::connect(&proxy.url(&db)).await.expect("connect");
    store.ping().await.expect("ping through the proxy");

    proxy.silent.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let result = store.get_session("s").await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(25), "took {elapsed:?}");

    // The network comes back: the store recovers without being reopened.
    proxy.silent.store(false, Ordering::Relaxed);
    let mut recovered = false;
    for _ in 0..50 {
        if store.ping().await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the store must recover once the network is back");
    proxy.task.abort();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_recovers_when_its_connections_are_killed() {
    // A database restart or failover ends every session; the pool must replace the dead
    // connections instead of failing forever.
    let Some((db, store)) = fresh("killed").await else {
        return;
    };
    store.ping().await.expect("ping");
    let admin = PgStore::connect(db.url()).await.expect("admin store");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND application_name = 'cambio'",
    )
    .execute(&admin.pool)
    .await
    .expect("terminate");
    admin.close().await;
    store
        .ping()
        .await
        .expect("a fresh connection replaces the dead one");
    store.close().await;
}
