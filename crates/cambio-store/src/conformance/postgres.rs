//! Fresh PostgreSQL databases for tests, on the server named by [`POSTGRES_URL_ENV`].
//!
//! Tests against PostgreSQL need a running server; `scripts/pg-test-cluster.sh` starts a
//! throwaway one and `scripts/test.sh` exports its URL. Each test gets a database of its own,
//! created through that URL (whose role must have `CREATEDB`) and dropped when the
//! [`PgTestDatabase`] is dropped, so that tests run in parallel without seeing each other's
//! rows and every one starts from an empty schema.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Connection};

/// The environment variable with the URL of a PostgreSQL database whose role may create
/// databases, such as `postgres://cambio@127.0.0.1:5432/cambio`.
pub const POSTGRES_URL_ENV: &str = "CAMBIO_TEST_POSTGRES_URL";

/// How long the test helper waits to create or drop a database.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// An empty database created for one test; dropped (with `FORCE`, closing any connection
/// still open to it) when this value is dropped, also when the test panics.
#[derive(Debug)]
pub struct PgTestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgTestDatabase {
    /// Creates a fresh database for the test `test` (a label that goes into its name).
    ///
    /// Returns `None` after printing a notice when [`POSTGRES_URL_ENV`] is not set, so that
    /// the caller can skip; panics instead when the `CI` environment variable is set, because
    /// in CI a missing PostgreSQL must fail the build rather than silently skip its tests.
    /// Panics as well when the server cannot be reached or refuses to create the database.
    pub async fn create(test: &str) -> Option<PgTestDatabase> {
        let admin_url = match std::env::var(POSTGRES_URL_ENV) {
            Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => {
                if std::env::var_os("CI").is_some_and(|ci| !ci.is_empty()) {
                    panic!(
                        "{POSTGRES_URL_ENV} is not set, but CI is: the PostgreSQL tests must \
                         not be skipped in CI (scripts/test.sh starts a cluster and sets it)"
                    );
                }
                eprintln!(
                    "skipping {test}: {POSTGRES_URL_ENV} is not set (run \
                     `scripts/pg-test-cluster.sh start` and export \
                     {POSTGRES_URL_ENV}=$(scripts/pg-test-cluster.sh url), or use \
                     scripts/test-postgres.sh)"
                );
                return None;
            }
        };
        let name = unique_name(test);
        let url = with_database(&admin_url, &name);
        let sql = format!("CREATE DATABASE \"{name}\"");
        if let Err(e) = admin(&admin_url, sql).await {
            panic!("cannot create test database {name} through {POSTGRES_URL_ENV}: {e}");
        }
        Some(PgTestDatabase {
            admin_url,
            name,
            url,
        })
    }

    /// The URL of this database, for `PgStore::connect` or a server's `database_url`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PgTestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, where blocking on a future is not allowed, so
        // the database is dropped from a thread with a runtime of its own.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(admin(&admin_url, sql))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: cannot drop test database {name}: {e}"),
            Err(_) => eprintln!("warning: cannot drop test database {name}: thread panicked"),
        }
    }
}

/// Runs one statement on its own connection to `url`, within [`ADMIN_TIMEOUT`].
async fn admin(url: &str, sql: String) -> Result<(), String> {
    let work = async {
        let mut conn = PgConnection::connect(url).await?;
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await?;
        conn.close().await
    };
    match tokio::time::timeout(ADMIN_TIMEOUT, work).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!("timed out after {} s", ADMIN_TIMEOUT.as_secs())),
    }
}

/// `test_<label>_<pid>_<seq>_<nanos>`: lower-case letters, digits and underscores only (so it
/// needs no escaping), unique per process and call, and within PostgreSQL's 63 bytes.
fn unique_name(test: &str) -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let label: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(24)
        .collect();
    format!("test_{label}_{}_{seq}_{nanos:x}", std::process::id())
}

/// `url` with its database (the path) replaced by `database`, keeping any query parameters.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{database}?{query}"),
        None => format!("{root}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://cambio@127.0.0.1:5432/cambio", "t1"),
            "postgres://cambio@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "t1"),
            "postgresql://u:p@h/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "t1"), "postgres://h:1/t1");
        assert_eq!(
            with_database("postgres://h?application_name=x", "t1"),
            "postgres://h/t1?application_name=x"
        );
    }

    #[test]
    fn names_are_safe_and_short() {
        let a = unique_name("Some::Long-Test name with ünïcode and more and more");
        let b = unique_name("Some::Long-Test name with ünïcode and more and more");
        assert_ne!(a, b);
        assert!(a.len() <= 63, "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{a}"
        );
    }
}
