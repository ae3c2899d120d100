//! `cambio-bench`: a load generator for Cambio's token endpoint.
//!
//! It starts a real `cambio serve` (the release binary) on a fresh data directory, optionally
//! fills its store with many sessions and refresh tokens first, then keeps `--connections`
//! keep-alive HTTP/1.1 connections busy with token requests for `--duration` seconds after a
//! `--warmup`, and prints throughput, latency percentiles and the server's CPU time per request.
//! It is a measuring tool, not a test: nothing here passes or fails on a number.
//!
//! `--database postgres://…` runs the servers on a fresh PostgreSQL database created for the
//! run (and dropped after it), `--nodes N` starts N servers on it, and the report adds the
//! database's transactions per request and its backends' CPU (docs/benchmarks.md).
//!
//! Build both binaries in release mode first, then run it from the workspace root:
//!
//! ```text
//! cargo build --release -p cambio -p cambio-bench
//! target/release/cambio-bench --alg ES256 --sessions 100000
//! ```
//!
//! Traffic only ever goes to the loopback address the server reports; every loop is bounded by
//! time and by `--max-requests`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use cambio_store::{PgStore, RefreshTokenRecord, SessionRecord, SqliteStore, Store};
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection, Row};
use tokio::net::TcpStream;

mod admin_changes;
mod dpop;

/// How long the server may take to print its listening line (migrations, key generation).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Parser, Debug)]
#[command(
    name = "cambio-bench",
    about = "Load generator for Cambio's token endpoint (build with `cargo build --release -p cambio -p cambio-bench`)"
)]
struct Args {
    /// The `cambio` binary to start; defaults to `cambio` next to this binary, else
    /// `target/release/cambio`.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Signing algorithm of the demo realm.
    #[arg(long, value_enum, default_value_t = Alg::Es256)]
    alg: Alg,
    /// Which grant to load the token endpoint with.
    #[arg(long, value_enum, default_value_t = Grant::TokenExchange)]
    grant: Grant,
    /// Concurrent keep-alive connections, one request in flight on each.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured window, seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured warmup before the window, seconds.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Upper bound on requests sent (warmup included); defaults to 5,000,000, or 100,000 per
    /// second of warmup + duration when that is more (long soak runs).
    #[arg(long)]
    max_requests: Option<u64>,
    /// Sessions (and as many refresh tokens) stored before the server starts.
    #[arg(long, default_value_t = 0)]
    sessions: u64,
    /// Threads of the load generator's runtime; 1 keeps it off the server's second core as
    /// much as possible.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Database URL for `cambio serve --database`; defaults to SQLite in the temporary data
    /// directory. With a `postgres://` URL the bench creates a fresh database
    /// `bench_<random>` on that server (as the URL's user, which needs CREATEDB), points the
    /// servers at it and drops it at the end.
    #[arg(long)]
    database: Option<String>,
    /// Server processes started on the same database and data directory; the connections are
    /// spread round-robin over them. More than one needs a PostgreSQL `--database`.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Passed to every server as `--verified-token-cache`: how many verified access tokens
    /// the server remembers. 0 makes every exchange verify its subject token's signature, as
    /// when each request carries a token the server has not seen; unset, the server's default.
    #[arg(long)]
    verified_token_cache: Option<usize>,
    /// Load a server that is already running at this loopback address instead of starting
    /// Cambio: another implementation measured in the same sitting (Keycloak, with the realm of
    /// `crates/cambio-server/tests/it/keycloak/oracle-realm.json` imported). It must serve
    /// `--realm` with the demo realm's clients and alice.
    #[arg(long)]
    target: Option<SocketAddr>,
    /// The process id of `--target`, for its CPU time and memory.
    #[arg(long, requires = "target")]
    target_pid: Option<u32>,
    /// Token exchange only: this many different subject tokens of alice (one login refreshed
    /// again and again), sent in rotation. With more of them than the server's verified-token
    /// cache holds, every exchange verifies its subject token as one it has not seen, as when
    /// each request comes from another user.
    #[arg(long, default_value_t = 0)]
    distinct_subjects: usize,
    /// The realm to load (Cambio's demo realm unless `--target` serves another).
    #[arg(long, default_value = "demo")]
    realm: String,
    /// `--grant dpop-exchange`: DPoP proofs signed before the load starts, one per request;
    /// requests beyond them (or after 45 s) sign their proof on the spot, which the report
    /// counts.
    #[arg(long, default_value_t = 150_000)]
    dpop_proofs: usize,
    /// Create this many clients in `--realm`, one after the other, through the first server's
    /// admin API while the measured window runs (stopping at its end): exchanges while
    /// configuration changes arrive. With `--target`, the running server's `master`
    /// administrator password is read from `CAMBIO_ADMIN_PASSWORD`.
    #[arg(long, default_value_t = 0)]
    admin_changes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Alg {
    #[value(name = "ES256")]
    Es256,
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "PS256")]
    Ps256,
    #[value(name = "EdDSA")]
    EdDsa,
}

impl Alg {
    fn as_str(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
            Alg::Ps256 => "PS256",
            Alg::EdDsa => "EdDSA",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Grant {
    /// RFC 8693 exchange of alice's access token for one meant for orders-api.
    #[value(name = "token-exchange")]
    TokenExchange,
    /// The same exchange with alice's token DPoP-bound (RFC 9449): every request carries a
    /// fresh proof by its key naming it (`ath`), and the exchanged token is bound again.
    #[value(name = "dpop-exchange")]
    DpopExchange,
    /// requester-client's service account token.
    #[value(name = "client_credentials", alias = "client-credentials")]
    ClientCredentials,
    /// Connections split round-robin over token exchange, client_credentials and orders-api's
    /// introspection of alice's token (a soak mix).
    #[value(name = "mixed")]
    Mixed,
}

impl Grant {
    fn as_str(self) -> &'static str {
        match self {
            Grant::TokenExchange => "token-exchange",
            Grant::DpopExchange => "dpop-exchange",
            Grant::ClientCredentials => "client_credentials",
            Grant::Mixed => "mixed",
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => {
            if args.json {
                println!("{}", report.json());
            } else {
                report.print();
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("cambio-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<Report, String> {
    if args.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    if !(args.duration > 0.0 && args.warmup >= 0.0) {
        return Err("--duration must be positive and --warmup not negative".into());
    }
    let postgres = args.database.as_deref().is_some_and(is_postgres);
    if args.nodes == 0 || (args.nodes > 1 && !postgres) {
        return Err(
            "--nodes must be at least 1, and more than 1 needs a postgres:// --database".into(),
        );
    }
    if let Some(target) = args.target {
        return run_against_target(args, target);
    }
    let server_bin = locate_server(args.server_bin.as_deref())?;
    let runtime = if args.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.client_threads)
            .enable_all()
            .build()
    }
    .map_err(|e| format!("cannot start the runtime: {e}"))?;

    // Dropped in reverse order: the servers are killed before their database is dropped and
    // their directory removed.
    let data = TempDir::create()?;
    let bench_db = match &args.database {
        Some(url) if postgres => Some(runtime.block_on(BenchDatabase::create(url))?),
        _ => None,
    };
    let database_url = match (&bench_db, &args.database) {
        (Some(db), _) => Some(db.url.clone()),
        (None, Some(url)) => Some(url.clone()),
        (None, None) => None,
    };
    let populate = if args.sessions > 0 {
        Some(runtime.block_on(populate(
            data.path(),
            database_url.as_deref(),
            args.sessions,
        ))?)
    } else {
        None
    };
    let node = NodeOptions {
        bin: &server_bin,
        data_dir: data.path(),
        database: database_url.as_deref(),
        // Tokens from one node must be valid on the others: one issuer for all of them.
        public_url: postgres.then_some(BENCH_PUBLIC_URL),
        alg: args.alg,
        verified_token_cache: args.verified_token_cache,
    };
    // The first node creates the data-encryption key and the demo realm; the others start once
    // it listens, so that they find both.
    let mut servers = Vec::with_capacity(args.nodes);
    for _ in 0..args.nodes {
        servers.push(ServerProcess::spawn(&node)?);
    }
    let mut report = runtime.block_on(load(args, &servers, bench_db.as_ref()))?;
    report.server_bin = server_bin.display().to_string();
    report.populate_seconds = populate;
    report.database = match (&bench_db, &args.database) {
        (Some(db), _) => format!("postgres (fresh database {})", db.name),
        (None, Some(_)) => "the given --database".into(),
        (None, None) => "sqlite (in the temporary data directory)".into(),
    };
    drop(servers);
    if let Some(db) = bench_db {
        runtime.block_on(db.drop_database());
    }
    Ok(report)
}

/// Loads a server this tool did not start (`--target`), on loopback only.
fn run_against_target(args: &Args, target: SocketAddr) -> Result<Report, String> {
    if !target.ip().is_loopback() {
        return Err(format!("refusing to load a non-loopback address: {target}"));
    }
    if args.nodes != 1 || args.database.is_some() || args.sessions > 0 {
        return Err(
            "--target loads one running server: no --nodes, --database or --sessions".into(),
        );
    }
    let pid = args
        .target_pid
        .ok_or("--target needs --target-pid, to measure the server's CPU time and memory")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let servers = [ServerProcess {
        child: None,
        pid,
        addr: target,
    }];
    let mut report = runtime.block_on(load(args, &servers, None))?;
    report.server_bin = format!("running server at {target} (pid {pid})");
    // The running server's realm decides how it signs, not `--alg`.
    report.alg = "the target realm's";
    report.database = "the running server's own".into();
    Ok(report)
}

/// The issuer every node gets with a PostgreSQL `--database` (`--public-url`).
const BENCH_PUBLIC_URL: &str = "http://cambio-bench.test";

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A fresh database `bench_<random>` on the server of a PostgreSQL URL, created as that URL's
/// user. [`BenchDatabase::drop_database`] drops it; if the bench fails before that, `Drop`
/// does it on a runtime of its own.
struct BenchDatabase {
    /// The URL the database was created through (its server, user and original database).
    admin_url: String,
    name: String,
    /// The same URL with the database replaced by `name`.
    url: String,
    dropped: bool,
}

/// How long creating or dropping the bench database may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

impl BenchDatabase {
    async fn create(admin_url: &str) -> Result<BenchDatabase, String> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut rng = SplitMix64(nanos ^ (u64::from(std::process::id()) << 32));
        let name = format!("bench_{:016x}", rng.next());
        admin(admin_url, format!("CREATE DATABASE \"{name}\""))
            .await
            .map_err(|e| format!("cannot create database {name} through --database: {e}"))?;
        Ok(BenchDatabase {
            admin_url: admin_url.to_owned(),
            url: with_database(admin_url, &name),
            name,
            dropped: false,
        })
    }

    async fn drop_database(mut self) {
        self.dropped = true;
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        if let Err(e) = admin(&self.admin_url, sql).await {
            eprintln!(
                "cambio-bench: warning: cannot drop database {}: {e}",
                self.name
            );
        }
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Possibly inside a runtime (an error path): block on a thread with its own.
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
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("cambio-bench: warning: cannot drop database {name}");
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

/// Reads the bench database's counters around the measured window: committed plus rolled-back
/// transactions of every backend on it (the servers' and this connection's own), and the CPU
/// time of the backend processes serving it.
struct DbProbe {
    conn: PgConnection,
}

impl DbProbe {
    async fn connect(url: &str) -> Result<DbProbe, String> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| format!("database URL: {e}"))?
            .application_name("cambio-bench");
        let conn = PgConnection::connect_with(&options)
            .await
            .map_err(|e| format!("cannot connect to the bench database: {e}"))?;
        Ok(DbProbe { conn })
    }

    async fn transactions(&mut self) -> Result<i64, String> {
        let row = sqlx::query(
            "SELECT (xact_commit + xact_rollback)::int8 FROM pg_stat_database \
             WHERE datname = current_database()",
        )
        .fetch_one(&mut self.conn)
        .await
        .map_err(|e| format!("reading pg_stat_database: {e}"))?;
        row.try_get::<i64, _>(0)
            .map_err(|e| format!("reading pg_stat_database: {e}"))
    }

    /// Process ids of the backends connected to the bench database, but this one's.
    async fn backend_pids(&mut self) -> Result<Vec<String>, String> {
        let rows = sqlx::query(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut self.conn)
        .await
        .map_err(|e| format!("reading pg_stat_activity: {e}"))?;
        rows.iter()
            .map(|row| {
                row.try_get::<i32, _>(0)
                    .map(|pid| pid.to_string())
                    .map_err(|e| format!("reading pg_stat_activity: {e}"))
            })
            .collect()
    }
}

/// utime + stime by process id, for those still readable.
fn processes_ticks(pids: &[String]) -> BTreeMap<String, u64> {
    pids.iter()
        .filter_map(|pid| cpu_ticks(pid).ok().map(|t| (pid.clone(), t)))
        .collect()
}

fn locate_server(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return if path.is_file() {
            Ok(path.to_owned())
        } else {
            Err(format!("--server-bin {} does not exist", path.display()))
        };
    }
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("cambio")));
    let candidates = sibling
        .into_iter()
        .chain(std::iter::once(PathBuf::from("target/release/cambio")));
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(
        "no cambio binary found; run `cargo build --release -p cambio -p cambio-bench` \
         from the workspace root, or pass --server-bin"
            .into(),
    )
}

/// A scratch directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn create() -> Result<TempDir, String> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("cambio-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Stores `n` sessions and `n` refresh tokens, one insert at a time through the [`Store`] trait,
/// in the store the servers will use (`database`, else SQLite in `dir`). Returns how long it
/// took, in seconds.
async fn populate(dir: &Path, database: Option<&str>, n: u64) -> Result<f64, String> {
    let url = match database {
        Some(url) => url.to_owned(),
        None => format!("sqlite://{}", dir.join("cambio.db").display()),
    };
    let seconds = if is_postgres(&url) {
        let store = PgStore::connect(&url)
            .await
            .map_err(|e| format!("cannot open the bench database: {e}"))?;
        let seconds = insert_records(&store, n).await;
        store.close().await;
        seconds?
    } else {
        let store = SqliteStore::connect(&url)
            .await
            .map_err(|e| format!("cannot open {url}: {e}"))?;
        let seconds = insert_records(&store, n).await;
        store.close().await;
        seconds?
    };
    // Flush the freshly written file now, so that the kernel's writeback of it does not compete
    // with the server during the measured window.
    for name in ["cambio.db", "cambio.db-wal"] {
        if let Ok(file) = std::fs::File::open(dir.join(name)) {
            let _ = file.sync_all();
        }
    }
    Ok(seconds)
}

/// The inserts of [`populate`]; returns how long they took, in seconds.
async fn insert_records(store: &dyn Store, n: u64) -> Result<f64, String> {
    let now = unix_now();
    let started = Instant::now();
    let mut rng = SplitMix64(0x00c0_ffee);
    for i in 0..n {
        let session_id = format!("bench-session-{i:08}");
        let user_id = format!("bench-user-{:05}", i % 10_000);
        let session = SessionRecord {
            id: session_id.clone(),
            realm_id: "bench-realm".into(),
            user_id: user_id.clone(),
            client_id: "bench-client".into(),
            offline: false,
            created_at: now,
            last_refresh: now,
            // Far enough ahead that the server's periodic purge keeps every row.
            expires_at: now + 30 * 86_400,
            revoked_at: None,
        };
        store
            .insert_session(&session)
            .await
            .map_err(|e| format!("inserting session {i}: {e}"))?;
        // Refresh tokens are keyed by a hex SHA-256; random hex keeps the B-tree realistic.
        let hash: String = (0..4).map(|_| format!("{:016x}", rng.next())).collect();
        let token = RefreshTokenRecord {
            hash,
            realm_id: "bench-realm".into(),
            session_id,
            client_id: "bench-client".into(),
            user_id,
            scope: "openid profile email".into(),
            data: "{}".into(),
            offline: false,
            issued_at: now,
            expires_at: now + 30 * 86_400,
            used_at: None,
        };
        store
            .insert_refresh_token(&token)
            .await
            .map_err(|e| format!("inserting refresh token {i}: {e}"))?;
    }
    Ok(started.elapsed().as_secs_f64())
}

struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The master realm administrator's password every bench server is started with.
const BENCH_ADMIN_PASSWORD: &str = "cambio-bench-admin";

/// How every node is started.
struct NodeOptions<'a> {
    bin: &'a Path,
    data_dir: &'a Path,
    database: Option<&'a str>,
    public_url: Option<&'a str>,
    alg: Alg,
    verified_token_cache: Option<usize>,
}

/// A running server; killed (and reaped) on drop, whatever happened in between, when this
/// tool started it (`child`), left alone otherwise (`--target`).
struct ServerProcess {
    child: Option<Child>,
    pid: u32,
    addr: SocketAddr,
}

impl ServerProcess {
    fn spawn(node: &NodeOptions<'_>) -> Result<ServerProcess, String> {
        let bin = node.bin;
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(node.data_dir);
        if let Some(database) = node.database {
            command.arg("--database").arg(database);
        }
        if let Some(public_url) = node.public_url {
            command.args(["--public-url", public_url]);
        }
        if let Some(entries) = node.verified_token_cache {
            command.args(["--verified-token-cache", &entries.to_string()]);
        }
        let mut child = command
            .arg("--demo")
            .args(["--demo-signature-algorithm", node.alg.as_str()])
            .env("CAMBIO_LOG", "warn")
            // Known, so that a soak run can lengthen the subject token through the admin API.
            .env("CAMBIO_ADMIN_PASSWORD", BENCH_ADMIN_PASSWORD)
            .env_remove("CAMBIO_DATA_DIR")
            .env_remove("CAMBIO_RATE_LIMIT_PER_IP")
            .env_remove("CAMBIO_RATE_LIMIT_PER_CLIENT")
            .env_remove("CAMBIO_CONFIG")
            .env_remove("CAMBIO_VERIFIED_TOKEN_CACHE")
            .env_remove("CAMBIO_DATABASE")
            .env_remove("CAMBIO_PUBLIC_URL")
            .env_remove("CAMBIO_HTTP_RELATIVE_PATH")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("server stdout not captured".into());
        };
        // Read the first line on a thread so that a hung start times out, then keep draining
        // stdout so that the server never blocks on a full pipe.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let mut server = ServerProcess {
            pid: child.id(),
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let line = match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            Ok(Some(Err(e))) => return Err(format!("reading the server's stdout: {e}")),
            Ok(None) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let status = server
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                return Err(format!("the server exited before listening ({status:?})"));
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "the server did not listen within {STARTUP_TIMEOUT:?}"
                ));
            }
        };
        let addr: SocketAddr = line
            .strip_prefix("listening on http://")
            .and_then(|a| a.trim().parse().ok())
            .ok_or_else(|| format!("unexpected first line from the server: {line:?}"))?;
        if !addr.ip().is_loopback() {
            return Err(format!("refusing to load a non-loopback address: {addr}"));
        }
        server.addr = addr;
        Ok(server)
    }

    fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Clock ticks per second for /proc times: `getconf CLK_TCK`, which is 100 on Linux.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of a process, in clock ticks, from `/proc/<pid>/stat`.
fn cpu_ticks(pid: &str) -> Result<u64, String> {
    stat_ticks(&format!("/proc/{pid}/stat"))
}

/// utime + stime of each thread of a process, by thread id: (thread name, clock ticks).
fn thread_ticks(pid: &str) -> BTreeMap<String, (String, u64)> {
    let mut threads = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return threads;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if let Ok(ticks) = stat_ticks(&dir.join("stat").to_string_lossy()) {
            let tid = entry.file_name().to_string_lossy().into_owned();
            threads.insert(tid, (name.trim().to_owned(), ticks));
        }
    }
    threads
}

/// CPU seconds per thread name between two [`thread_ticks`] samples (threads that exited in
/// between are not seen).
fn thread_cpu(
    before: &BTreeMap<String, (String, u64)>,
    after: &BTreeMap<String, (String, u64)>,
    ticks: f64,
) -> BTreeMap<String, f64> {
    let mut by_name = BTreeMap::new();
    for (tid, (name, t1)) in after {
        let t0 = before.get(tid).map_or(0, |(_, t)| *t);
        *by_name.entry(name.clone()).or_insert(0.0) += t1.saturating_sub(t0) as f64 / ticks;
    }
    by_name
}

fn stat_ticks(path: &str) -> Result<u64, String> {
    let stat = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    // The command name (field 2) may hold spaces; the fields after it start at the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("{path}: unexpected format"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let field = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("{path}: unexpected format"))
    };
    Ok(field(11)? + field(12)?)
}

/// Busy CPU time of the whole machine (every CPU), in clock ticks, from `/proc/stat`.
fn machine_busy_ticks() -> Result<u64, String> {
    let stat = std::fs::read_to_string("/proc/stat").map_err(|e| format!("/proc/stat: {e}"))?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or("/proc/stat: no cpu line")?;
    // user nice system idle iowait irq softirq steal ...: everything but idle and iowait.
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    Ok(values
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4 && *i < 8)
        .map(|(_, v)| v)
        .sum())
}

/// Everything needed to send one token request; built once, cloned cheaply per request.
struct RequestTemplate {
    uri: Uri,
    host: HeaderValue,
    authorization: Option<HeaderValue>,
    body: Bytes,
    /// Bytes a 200 response body must contain to count as a success.
    expect: Option<&'static [u8]>,
    /// Where each request's DPoP proof comes from, for DPoP requests.
    dpop: Option<Arc<dpop::ProofSource>>,
    /// Bodies sent in turn instead of `body`, when not empty (`--distinct-subjects`).
    rotation: Arc<Vec<Bytes>>,
    next: AtomicUsize,
}

impl RequestTemplate {
    fn accepts(&self, body: &[u8]) -> bool {
        self.expect
            .is_none_or(|needle| body.windows(needle.len()).any(|w| w == needle))
    }

    fn build(&self) -> Request<Full<Bytes>> {
        let body = match self.rotation.len() {
            0 => self.body.clone(),
            n => self.rotation[self.next.fetch_add(1, Ordering::Relaxed) % n].clone(),
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        if let Some(auth) = &self.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        // A proof that cannot be signed leaves the header out: the server's refusal is then
        // counted as an error like any other.
        if let Some(proof) = self.dpop.as_ref().and_then(|d| d.next_proof().ok()) {
            headers.insert("dpop", proof);
        }
        request
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("set_nodelay: {e}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("response body: {e}"))?
        .to_bytes();
    Ok((status, body))
}

fn form(pairs: &[(&str, &str)]) -> Bytes {
    let mut serializer = FormSerializer::default();
    for (k, v) in pairs {
        serializer.push(k, v);
    }
    Bytes::from(serializer.0)
}

/// Minimal `application/x-www-form-urlencoded` encoder.
#[derive(Default)]
struct FormSerializer(String);

impl FormSerializer {
    fn push(&mut self, key: &str, value: &str) {
        if !self.0.is_empty() {
            self.0.push('&');
        }
        encode_into(&mut self.0, key);
        self.0.push('=');
        encode_into(&mut self.0, value);
    }
}

fn encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

fn basic(user: &str, password: &str) -> Result<HeaderValue, String> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    HeaderValue::from_str(&format!("Basic {encoded}")).map_err(|e| e.to_string())
}

/// alice's access token from subject-client, by the password grant (bound to the key of
/// `proof` when one is given).
async fn subject_token(
    token_uri: &Uri,
    host: &HeaderValue,
    addr: SocketAddr,
    proof: Option<HeaderValue>,
) -> Result<String, String> {
    let template = RequestTemplate {
        uri: token_uri.clone(),
        host: host.clone(),
        authorization: None,
        expect: None,
        body: form(&[
            ("grant_type", "password"),
            ("client_id", "subject-client"),
            ("client_secret", "subject-secret"),
            ("username", "alice"),
            ("password", "alice"),
        ]),
        dpop: None,
        rotation: Arc::default(),
        next: AtomicUsize::new(0),
    };
    let mut request = template.build();
    if let Some(proof) = proof {
        request.headers_mut().insert("dpop", proof);
    }
    let mut sender = connect(addr).await?;
    let (status, body) = send(&mut sender, request).await?;
    if status != StatusCode::OK {
        return Err(format!(
            "password grant for alice failed: {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("password grant response: {e}"))?;
    json.get("access_token")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| "password grant response has no access_token".into())
}

/// `n` different access tokens of alice: one login through subject-client, refreshed `n - 1`
/// times (each refresh gives a new token and a new refresh token). Sent one after the other
/// before the load starts.
async fn distinct_subject_tokens(
    token_uri: &Uri,
    host: &HeaderValue,
    addr: SocketAddr,
    n: usize,
) -> Result<Vec<String>, String> {
    const MAX: usize = 1_000_000;
    if n > MAX {
        return Err(format!("--distinct-subjects is at most {MAX}"));
    }
    let mut sender = connect(addr).await?;
    let mut tokens = Vec::with_capacity(n);
    let mut refresh_token: Option<String> = None;
    while tokens.len() < n {
        let body = match &refresh_token {
            None => form(&[
                ("grant_type", "password"),
                ("client_id", "subject-client"),
                ("client_secret", "subject-secret"),
                ("username", "alice"),
                ("password", "alice"),
            ]),
            Some(refresh) => form(&[
                ("grant_type", "refresh_token"),
                ("client_id", "subject-client"),
                ("client_secret", "subject-secret"),
                ("refresh_token", refresh),
            ]),
        };
        let template = RequestTemplate {
            uri: token_uri.clone(),
            host: host.clone(),
            authorization: None,
            expect: None,
            body,
            dpop: None,
            rotation: Arc::default(),
            next: AtomicUsize::new(0),
        };
        let (status, body) = send(&mut sender, template.build()).await?;
        if status != StatusCode::OK {
            return Err(format!(
                "subject token {} of {n}: {status}: {}",
                tokens.len() + 1,
                String::from_utf8_lossy(&body)
            ));
        }
        let json: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("token response: {e}"))?;
        let field = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        tokens.push(field("access_token").ok_or("no access_token")?);
        refresh_token = Some(field("refresh_token").ok_or("no refresh_token")?);
    }
    Ok(tokens)
}

#[derive(Default)]
struct WorkerResult {
    /// Latency of every request started inside the measured window, microseconds.
    latencies_us: Vec<u32>,
    errors: u64,
    warmup_requests: u64,
    first_error: Option<String>,
}

struct Clock {
    measure_start: Instant,
    end: Instant,
    issued: AtomicU64,
    max_requests: u64,
}

async fn worker(
    template: Arc<RequestTemplate>,
    addr: SocketAddr,
    clock: Arc<Clock>,
) -> WorkerResult {
    let mut result = WorkerResult::default();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        if Instant::now() >= clock.end
            || clock.issued.fetch_add(1, Ordering::Relaxed) >= clock.max_requests
        {
            break;
        }
        let conn = match sender.as_mut() {
            Some(s) => s,
            None => match connect(addr).await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    // The server is gone or refusing; this connection's share ends here.
                    result.errors += 1;
                    result.first_error.get_or_insert(e);
                    break;
                }
            },
        };
        let request = template.build();
        let started = Instant::now();
        let outcome = send(conn, request).await;
        let elapsed = started.elapsed();
        let measured = started >= clock.measure_start;
        if measured {
            result
                .latencies_us
                .push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
        } else {
            result.warmup_requests += 1;
        }
        match outcome {
            Ok((StatusCode::OK, body)) if template.accepts(&body) => {}
            Ok((status, body)) => {
                if measured {
                    result.errors += 1;
                }
                result
                    .first_error
                    .get_or_insert_with(|| format!("{status}: {}", String::from_utf8_lossy(&body)));
            }
            Err(e) => {
                if measured {
                    result.errors += 1;
                }
                result.first_error.get_or_insert(e);
                sender = None;
            }
        }
    }
    result
}

async fn load(
    args: &Args,
    servers: &[ServerProcess],
    bench_db: Option<&BenchDatabase>,
) -> Result<Report, String> {
    let first = servers.first().ok_or("no server")?;
    let addr = first.addr;
    let host = HeaderValue::from_str(&addr.to_string()).map_err(|e| e.to_string())?;
    let realm = &args.realm;
    let token_uri: Uri = format!("/realms/{realm}/protocol/openid-connect/token")
        .parse()
        .map_err(|e| format!("{e}"))?;
    let introspect_uri: Uri = format!("/realms/{realm}/protocol/openid-connect/token/introspect")
        .parse()
        .map_err(|e| format!("{e}"))?;
    // alice's token from subject-client lives 300 s by default: longer runs first raise
    // subject-client's access-token lifespan through the admin API so that the shared template
    // stays valid for the whole run.
    let long_run = args.grant == Grant::Mixed || args.duration + args.warmup > 250.0;
    if long_run && args.target.is_some() {
        return Err(
            "--target runs are limited to 250 s of token-exchange or client credentials".into(),
        );
    }
    if long_run && args.grant != Grant::ClientCredentials {
        lengthen_subject_tokens(&host, addr).await?;
    }
    // The DPoP mode's key: alice's token is bound to it, and each exchange proves it.
    let mut proofs = match args.grant {
        Grant::DpopExchange => {
            let origin = match (
                args.target,
                args.database.as_deref().is_some_and(is_postgres),
            ) {
                (None, true) => BENCH_PUBLIC_URL.to_owned(),
                _ => format!("http://{addr}"),
            };
            Some(dpop::ProofSource::new(format!("{origin}{token_uri}"))?)
        }
        _ => None,
    };
    let subject = match args.grant {
        Grant::ClientCredentials => None,
        _ => {
            let proof = proofs.as_ref().map(|p| p.sign_now()).transpose()?;
            Some(subject_token(&token_uri, &host, addr, proof).await?)
        }
    };
    if let (Some(proofs), Some(subject)) = (proofs.as_mut(), &subject) {
        proofs.set_access_token(subject);
        // Signed here, before the measured window, so that the load generator's signing
        // does not compete with the server for the cores while it is measured.
        proofs.fill_pool(args.dpop_proofs)?;
    }
    let proofs = proofs.map(Arc::new);
    if let Some(subject) = &subject {
        // Fail now rather than with errors halfway through the run.
        let needed = (args.warmup + args.duration).ceil() as u64 + 30;
        let left = token_exp(subject)?.saturating_sub(unix_now());
        if left < needed {
            return Err(format!(
                "alice's subject token expires in {left} s, the run needs {needed} s"
            ));
        }
    }
    let requester = basic("requester-client", "requester-secret")?;
    let exchange_body = |subject: &str| {
        form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", subject),
            // Keycloak's standard exchange requires it; Cambio takes it as given.
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("audience", "orders-api"),
        ])
    };
    let distinct: Arc<Vec<Bytes>> = match args.grant {
        Grant::TokenExchange if args.distinct_subjects > 0 => Arc::new(
            distinct_subject_tokens(&token_uri, &host, addr, args.distinct_subjects)
                .await?
                .iter()
                .map(|token| exchange_body(token))
                .collect(),
        ),
        _ => Arc::default(),
    };
    let exchange = || RequestKind {
        name: "token-exchange",
        uri: token_uri.clone(),
        authorization: requester.clone(),
        body: exchange_body(subject.as_deref().unwrap_or_default()),
        expect: None,
        dpop: false,
        rotation: distinct.clone(),
    };
    let dpop_exchange = || RequestKind {
        name: "dpop-exchange",
        // Only a bound answer counts: a bearer token would mean the proof was not used.
        expect: Some(br#""token_type":"DPoP""#.as_slice()),
        dpop: true,
        rotation: Arc::default(),
        ..exchange()
    };
    let client_credentials = || RequestKind {
        name: "client_credentials",
        uri: token_uri.clone(),
        authorization: requester.clone(),
        body: form(&[("grant_type", "client_credentials")]),
        expect: None,
        dpop: false,
        rotation: Arc::default(),
    };
    let kinds: Vec<RequestKind> = match args.grant {
        Grant::TokenExchange => vec![exchange()],
        Grant::DpopExchange => vec![dpop_exchange()],
        Grant::ClientCredentials => vec![client_credentials()],
        Grant::Mixed => vec![
            exchange(),
            client_credentials(),
            RequestKind {
                name: "introspection",
                uri: introspect_uri,
                authorization: basic("orders-api", "orders-secret")?,
                body: form(&[("token", subject.as_deref().unwrap_or_default())]),
                // A 200 with `"active":false` would hide an expired subject token.
                expect: Some(br#""active":true"#),
                dpop: false,
                rotation: Arc::default(),
            },
        ],
    };
    // One template per node and kind (the Host header differs); the subject token is node 1's,
    // valid on every node since they share the issuer and the keys.
    let mut targets: Vec<Vec<(Arc<RequestTemplate>, SocketAddr)>> = Vec::new();
    for kind in &kinds {
        let mut per_node = Vec::with_capacity(servers.len());
        for server in servers {
            let template = Arc::new(RequestTemplate {
                uri: kind.uri.clone(),
                host: HeaderValue::from_str(&server.addr.to_string()).map_err(|e| e.to_string())?,
                authorization: Some(kind.authorization.clone()),
                body: kind.body.clone(),
                expect: kind.expect,
                dpop: kind.dpop.then(|| proofs.clone()).flatten(),
                rotation: kind.rotation.clone(),
                next: AtomicUsize::new(0),
            });
            // One probe request per node and kind, so that a misconfiguration fails loudly
            // before the load starts.
            let mut sender = connect(server.addr).await?;
            let (status, body) = send(&mut sender, template.build()).await?;
            if status != StatusCode::OK || !template.accepts(&body) {
                return Err(format!(
                    "probe {} request to {} failed: {status}: {}",
                    kind.name,
                    server.addr,
                    String::from_utf8_lossy(&body)
                ));
            }
            per_node.push((template, server.addr));
        }
        targets.push(per_node);
    }
    let mut probe = match bench_db {
        Some(db) => Some(DbProbe::connect(&db.url).await?),
        None => None,
    };

    let pids: Vec<String> = servers.iter().map(|s| s.pid().to_string()).collect();
    let self_pid = std::process::id().to_string();
    let ticks = clock_ticks();
    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(args.warmup);
    let clock = Arc::new(Clock {
        measure_start,
        end: measure_start + Duration::from_secs_f64(args.duration),
        issued: AtomicU64::new(0),
        max_requests: args.max_requests.unwrap_or_else(|| {
            let by_time = (100_000.0 * (args.warmup + args.duration)) as u64;
            by_time.max(5_000_000)
        }),
    });
    // Connection i goes to node i mod N and, with several kinds, to kind (i / N) mod K.
    let handles: Vec<_> = (0..args.connections)
        .map(|i| {
            let kind = (i / servers.len()) % kinds.len();
            let (template, addr) = &targets[kind][i % servers.len()];
            (
                kind,
                tokio::spawn(worker(template.clone(), *addr, clock.clone())),
            )
        })
        .collect();

    let changes = if args.admin_changes > 0 {
        let password = match args.target {
            Some(_) => std::env::var("CAMBIO_ADMIN_PASSWORD")
                .map_err(|_| "--admin-changes with --target needs CAMBIO_ADMIN_PASSWORD")?,
            None => BENCH_ADMIN_PASSWORD.to_owned(),
        };
        let bearer = admin_changes::admin_bearer(addr, &host, &password).await?;
        Some(tokio::spawn(admin_changes::create_clients(
            addr,
            host.clone(),
            realm.clone(),
            bearer,
            args.admin_changes,
            measure_start,
            clock.end,
        )))
    } else {
        None
    };
    let all_cpu_ticks =
        |pids: &[String]| -> Result<u64, String> { pids.iter().map(|pid| cpu_ticks(pid)).sum() };
    let all_thread_ticks = |pids: &[String]| -> BTreeMap<String, (String, u64)> {
        // Thread ids are unique across processes.
        pids.iter().flat_map(|pid| thread_ticks(pid)).collect()
    };
    tokio::time::sleep_until(measure_start.into()).await;
    // The database figures are read first at the start and last at the end, so that the
    // window they cover contains the CPU window.
    let db_before = match probe.as_mut() {
        Some(probe) => {
            let pids = probe.backend_pids().await?;
            let backends = processes_ticks(&pids);
            Some((probe.transactions().await?, backends))
        }
        None => None,
    };
    let server_cpu_before = all_cpu_ticks(&pids)?;
    let threads_before = all_thread_ticks(&pids);
    let self_cpu_before = cpu_ticks(&self_pid)?;
    let machine_before = machine_busy_ticks()?;
    let window_start = Instant::now();
    // Resident memory of the servers (summed over nodes): at the start of the window, every
    // RSS_INTERVAL while the load runs, and at the end.
    let mut rss = vec![(0.0, servers_rss_kb(&pids)?)];
    let mut next_sample = window_start + RSS_INTERVAL;
    while next_sample + Duration::from_secs(1) < clock.end {
        tokio::time::sleep_until(next_sample.into()).await;
        rss.push((window_start.elapsed().as_secs_f64(), servers_rss_kb(&pids)?));
        next_sample += RSS_INTERVAL;
    }
    let mut results = Vec::with_capacity(handles.len());
    for (kind, handle) in handles {
        results.push((
            kind,
            handle.await.map_err(|e| format!("load task failed: {e}"))?,
        ));
    }
    let window = window_start.elapsed().as_secs_f64();
    rss.push((window, servers_rss_kb(&pids)?));
    let changes = match changes {
        Some(task) => Some(
            task.await
                .map_err(|e| format!("admin changes failed: {e}"))??,
        ),
        None => None,
    };
    let server_cpu = (all_cpu_ticks(&pids)? - server_cpu_before) as f64 / ticks;
    let server_threads: Vec<(String, f64)> =
        thread_cpu(&threads_before, &all_thread_ticks(&pids), ticks)
            .into_iter()
            .map(|(name, seconds)| (name, seconds * 100.0 / window))
            .collect();
    let self_cpu = (cpu_ticks(&self_pid)? - self_cpu_before) as f64 / ticks;
    let machine = machine_busy_ticks()?.saturating_sub(machine_before) as f64 / ticks;
    let db = match (probe.as_mut(), db_before) {
        (Some(probe), Some((transactions_before, backends_before))) => {
            // Backends that appeared during the window count from zero, those that went away
            // are not seen.
            let pids = probe.backend_pids().await?;
            let backend_ticks: u64 = processes_ticks(&pids)
                .iter()
                .map(|(pid, t1)| t1.saturating_sub(backends_before.get(pid).copied().unwrap_or(0)))
                .sum();
            let transactions = probe.transactions().await? - transactions_before;
            Some(DbFigures {
                transactions,
                backend_cpu_seconds: backend_ticks as f64 / ticks,
                backends: pids.len(),
            })
        }
        _ => None,
    };
    let db_cpu = db.as_ref().map_or(0.0, |d| d.backend_cpu_seconds);
    // Whatever else ran on the machine meanwhile (builds, tests, PostgreSQL's own background
    // processes) competes for the same cores.
    let other_cpu = (machine - server_cpu - self_cpu - db_cpu).max(0.0);

    let mut latencies: Vec<u32> =
        Vec::with_capacity(results.iter().map(|(_, r)| r.latencies_us.len()).sum());
    let mut errors = 0;
    let mut warmup_requests = 0;
    let mut first_error = None;
    let mut by_kind: Vec<(Vec<u32>, u64, usize)> = vec![(Vec::new(), 0, 0); kinds.len()];
    for (kind, result) in results {
        latencies.extend_from_slice(&result.latencies_us);
        errors += result.errors;
        warmup_requests += result.warmup_requests;
        let entry = &mut by_kind[kind];
        entry.0.extend_from_slice(&result.latencies_us);
        entry.1 += result.errors;
        entry.2 += 1;
        if first_error.is_none() {
            first_error = result
                .first_error
                .map(|e| format!("{}: {e}", kinds[kind].name));
        }
    }
    let kind_figures: Vec<KindFigures> = kinds
        .iter()
        .zip(by_kind)
        .map(|(kind, (mut lat, errors, connections))| {
            lat.sort_unstable();
            let requests = lat.len() as u64;
            KindFigures {
                name: kind.name,
                connections,
                requests,
                errors,
                throughput: requests.saturating_sub(errors) as f64 / window,
                p50_ms: percentile_ms(&lat, 0.50),
                p99_ms: percentile_ms(&lat, 0.99),
            }
        })
        .collect();
    if latencies.is_empty() {
        return Err(format!(
            "no request completed in the measured window{}",
            first_error
                .map(|e| format!("; first error: {e}"))
                .unwrap_or_default()
        ));
    }
    latencies.sort_unstable();
    let requests = latencies.len() as u64;
    let ok = requests.saturating_sub(errors);
    let percentile = |q: f64| percentile_ms(&latencies, q);
    let db_per_request = db.as_ref().map(|d| {
        if ok > 0 {
            d.transactions as f64 / ok as f64
        } else {
            0.0
        }
    });
    Ok(Report {
        dpop_proofs: proofs.as_ref().map(|p| p.live_and_pooled()),
        admin_changes: changes,
        server_bin: String::new(),
        database: String::new(),
        nodes: servers.len(),
        verified_token_cache: args.verified_token_cache,
        db_transactions: db.as_ref().map(|d| d.transactions),
        db_transactions_per_request: db_per_request,
        db_backends: db.as_ref().map(|d| d.backends),
        db_cpu_percent: db.as_ref().map(|d| d.backend_cpu_seconds * 100.0 / window),
        alg: args.alg.as_str(),
        grant: args.grant.as_str(),
        distinct_subjects: args.distinct_subjects,
        connections: args.connections,
        client_threads: args.client_threads.max(1),
        warmup: args.warmup,
        duration: window,
        sessions: args.sessions,
        populate_seconds: None,
        warmup_requests,
        requests,
        errors,
        first_error,
        throughput: ok as f64 / window,
        p50_ms: percentile(0.50),
        p90_ms: percentile(0.90),
        p99_ms: percentile(0.99),
        max_ms: percentile(1.0),
        server_cpu_seconds: server_cpu,
        server_cpu_per_request_us: if ok > 0 {
            server_cpu * 1e6 / ok as f64
        } else {
            0.0
        },
        server_cpu_percent: server_cpu * 100.0 / window,
        server_threads,
        bench_cpu_percent: self_cpu * 100.0 / window,
        other_cpu_percent: other_cpu * 100.0 / window,
        kinds: kind_figures,
        rss_kb: rss,
    })
}

/// How often the servers' resident memory is sampled during the measured window.
const RSS_INTERVAL: Duration = Duration::from_secs(60);

/// The `q` quantile of sorted latencies in microseconds, in milliseconds (0 when empty).
fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len());
    f64::from(sorted_us[rank - 1]) / 1000.0
}

/// VmRSS of the server processes, summed, in kB (`/proc/<pid>/status`).
fn servers_rss_kb(pids: &[String]) -> Result<u64, String> {
    pids.iter().map(|pid| rss_kb(pid)).sum()
}

fn rss_kb(pid: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path}: no VmRSS"))
}

/// One kind of request of a run: where it goes, with which credentials and body.
struct RequestKind {
    name: &'static str,
    uri: Uri,
    authorization: HeaderValue,
    body: Bytes,
    expect: Option<&'static [u8]>,
    /// Whether each request carries a fresh DPoP proof.
    dpop: bool,
    /// Bodies sent in turn instead of `body` (distinct subject tokens), when not empty.
    rotation: Arc<Vec<Bytes>>,
}

/// Per-kind figures of the measured window.
struct KindFigures {
    name: &'static str,
    connections: usize,
    requests: u64,
    errors: u64,
    throughput: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Gives subject-client (and so alice's subject token) a one-hour access-token lifespan, as
/// the master realm's administrator: password grant through admin-cli, look the client up by
/// its clientId, then a partial update of its attributes.
async fn lengthen_subject_tokens(host: &HeaderValue, addr: SocketAddr) -> Result<(), String> {
    let bearer = admin_changes::admin_bearer(addr, host, BENCH_ADMIN_PASSWORD).await?;
    let (status, body) = call(
        addr,
        host,
        Method::GET,
        "/admin/realms/demo/clients?clientId=subject-client",
        Some(bearer.clone()),
        None,
        Bytes::new(),
    )
    .await?;
    let uuid = json_field(status, &body, "subject-client lookup", |v| {
        v.get(0)?.get("id")?.as_str().map(str::to_owned)
    })?;
    let (status, body) = call(
        addr,
        host,
        Method::PUT,
        &format!("/admin/realms/demo/clients/{uuid}"),
        Some(bearer),
        Some("application/json"),
        Bytes::from_static(br#"{"attributes":{"access.token.lifespan":"3600"}}"#),
    )
    .await?;
    if !status.is_success() {
        return Err(format!(
            "updating subject-client's lifespan failed: {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(())
}

/// The `exp` claim of a JWT (its signature is not checked: the server issued it).
fn token_exp(jwt: &str) -> Result<u64, String> {
    let payload = jwt.split('.').nth(1).ok_or("subject token is not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| format!("subject token payload: {e}"))?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("subject token payload: {e}"))?;
    claims
        .get("exp")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| "subject token has no exp".into())
}

/// Extracts a field from a 200 JSON response, or says what went wrong.
fn json_field(
    status: StatusCode,
    body: &[u8],
    what: &str,
    pick: impl Fn(&serde_json::Value) -> Option<String>,
) -> Result<String, String> {
    if status != StatusCode::OK {
        return Err(format!(
            "{what} failed: {status}: {}",
            String::from_utf8_lossy(body)
        ));
    }
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("{what} response: {e}"))?;
    pick(&json).ok_or_else(|| format!("{what}: unexpected response {json}"))
}

/// One request on a fresh connection, for the setup steps.
async fn call(
    addr: SocketAddr,
    host: &HeaderValue,
    method: Method,
    path: &str,
    authorization: Option<HeaderValue>,
    content_type: Option<&'static str>,
    body: Bytes,
) -> Result<(StatusCode, Bytes), String> {
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = path.parse().map_err(|e| format!("{path}: {e}"))?;
    let headers = request.headers_mut();
    headers.insert(HOST, host.clone());
    if let Some(content_type) = content_type {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if let Some(auth) = authorization {
        headers.insert(AUTHORIZATION, auth);
    }
    let mut sender = connect(addr).await?;
    send(&mut sender, request).await
}

/// What the bench database's counters say about the measured window.
struct DbFigures {
    /// Committed + rolled-back transactions (`pg_stat_database`).
    transactions: i64,
    /// CPU time of the backends serving the bench database.
    backend_cpu_seconds: f64,
    /// Backends connected at the end of the window (the bench's own not counted).
    backends: usize,
}

struct Report {
    server_bin: String,
    /// Which store the servers used.
    database: String,
    nodes: usize,
    verified_token_cache: Option<usize>,
    db_transactions: Option<i64>,
    db_transactions_per_request: Option<f64>,
    db_backends: Option<usize>,
    /// CPU of the PostgreSQL backends serving the bench database, % of one core.
    db_cpu_percent: Option<f64>,
    alg: &'static str,
    grant: &'static str,
    /// Subject tokens sent in rotation (0: one token, over and over).
    distinct_subjects: usize,
    connections: usize,
    client_threads: usize,
    warmup: f64,
    /// The measured window as it actually lasted, seconds.
    duration: f64,
    sessions: u64,
    populate_seconds: Option<f64>,
    warmup_requests: u64,
    /// Requests started inside the measured window.
    requests: u64,
    errors: u64,
    first_error: Option<String>,
    /// Successful requests per second.
    throughput: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    server_cpu_seconds: f64,
    server_cpu_per_request_us: f64,
    server_cpu_percent: f64,
    bench_cpu_percent: f64,
    /// CPU used by every other process on the machine during the window.
    other_cpu_percent: f64,
    /// Server CPU by thread name, % of one core.
    server_threads: Vec<(String, f64)>,
    /// Figures per kind of request (one entry unless `--grant mixed`).
    kinds: Vec<KindFigures>,
    /// Servers' VmRSS in kB (summed over nodes), by seconds into the measured window.
    rss_kb: Vec<(f64, u64)>,
    /// `dpop-exchange`: proofs signed while the load ran (beyond the pool), and the pool's size.
    dpop_proofs: Option<(u64, usize)>,
    /// `--admin-changes`: the clients created during the window.
    admin_changes: Option<admin_changes::ChangeFigures>,
}

impl Report {
    /// Last RSS sample minus the first (taken when the measured window starts), kB.
    fn rss_growth_kb(&self) -> i64 {
        match (self.rss_kb.first(), self.rss_kb.last()) {
            (Some((_, first)), Some((_, last))) => *last as i64 - *first as i64,
            _ => 0,
        }
    }

    fn print(&self) {
        let per = if self.grant.ends_with("exchange") {
            "exchange"
        } else {
            "request"
        };
        println!("cambio-bench ({})", self.server_bin);
        println!("  grant                 {}", self.grant);
        println!("  algorithm             {}", self.alg);
        println!("  database              {}", self.database);
        println!("  nodes                 {}", self.nodes);
        match self.verified_token_cache {
            Some(0) => {
                println!("  verified-token cache  off (every subject token's signature checked)")
            }
            Some(n) => println!("  verified-token cache  {n} tokens"),
            None => println!("  verified-token cache  server default"),
        }
        if self.distinct_subjects > 0 {
            println!(
                "  subject tokens        {} distinct, in rotation",
                self.distinct_subjects
            );
        }
        println!(
            "  connections           {} (load generator threads: {})",
            self.connections, self.client_threads
        );
        println!(
            "  duration              {:.2} s measured after {:.1} s warmup",
            self.duration, self.warmup
        );
        match self.populate_seconds {
            Some(s) => println!(
                "  stored sessions       {} (+ as many refresh tokens, inserted in {s:.1} s)",
                self.sessions
            ),
            None => println!("  stored sessions       0"),
        }
        println!(
            "  requests              {} (+ {} in warmup)",
            self.requests, self.warmup_requests
        );
        println!("  errors                {}", self.errors);
        if let Some(e) = &self.first_error {
            println!("  first error           {e}");
        }
        println!("  {:<22}{:.0}", format!("{per}s/s"), self.throughput);
        println!(
            "  latency ms            p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms
        );
        println!(
            "  server CPU/{per}   {:.1} µs",
            self.server_cpu_per_request_us
        );
        println!(
            "  server CPU            {:.0} % of one core{}",
            self.server_cpu_percent,
            if self.nodes > 1 { " (all nodes)" } else { "" }
        );
        if let (Some(n), Some(ratio)) = (self.db_transactions, self.db_transactions_per_request) {
            println!("  database transactions {n} ({ratio:.4} per {per})");
        }
        if let (Some(cpu), Some(backends)) = (self.db_cpu_percent, self.db_backends) {
            println!(
                "  PostgreSQL CPU        {cpu:.0} % of one core ({backends} backends on the bench database)"
            );
        }
        println!(
            "  load generator CPU    {:.0} % of one core",
            self.bench_cpu_percent
        );
        println!(
            "  other processes CPU   {:.0} % of one core (should be near 0 for a clean run)",
            self.other_cpu_percent
        );
        let threads: Vec<String> = self
            .server_threads
            .iter()
            .map(|(name, percent)| format!("{name} {percent:.0} %"))
            .collect();
        println!("  server CPU by thread  {}", threads.join(", "));
        if let Some((live, pooled)) = self.dpop_proofs {
            println!(
                "  DPoP proofs           {pooled} signed before the load, {live} signed during it"
            );
        }
        if self.kinds.len() > 1 {
            for kind in &self.kinds {
                println!(
                    "  {:<22}{} requests, {} errors, {:.0}/s, p50 {:.2} ms, p99 {:.2} ms ({} connections)",
                    kind.name,
                    kind.requests,
                    kind.errors,
                    kind.throughput,
                    kind.p50_ms,
                    kind.p99_ms,
                    kind.connections
                );
            }
        }
        if let Some(changes) = &self.admin_changes {
            println!(
                "  admin changes         {} clients created in {:.2} s ({:.0}/s), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                changes.made,
                changes.seconds,
                changes.per_second(),
                changes.p50_ms,
                changes.p99_ms,
                changes.max_ms
            );
        }
        let series: Vec<String> = self
            .rss_kb
            .iter()
            .map(|(t, kb)| format!("{t:.0}s {:.1}", *kb as f64 / 1024.0))
            .collect();
        println!("  server RSS MiB        {}", series.join(", "));
        println!(
            "  server RSS growth     {:+.1} MiB (end minus start of the measured window)",
            self.rss_growth_kb() as f64 / 1024.0
        );
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "server_bin": self.server_bin,
            "database": self.database,
            "nodes": self.nodes,
            "verified_token_cache": self.verified_token_cache,
            "database_transactions": self.db_transactions,
            "database_transactions_per_request": self.db_transactions_per_request,
            "database_backends": self.db_backends,
            "database_backend_cpu_percent_of_one_core": self.db_cpu_percent,
            "grant": self.grant,
            "distinct_subjects": self.distinct_subjects,
            "algorithm": self.alg,
            "connections": self.connections,
            "client_threads": self.client_threads,
            "warmup_s": self.warmup,
            "duration_s": self.duration,
            "stored_sessions": self.sessions,
            "populate_s": self.populate_seconds,
            "warmup_requests": self.warmup_requests,
            "requests": self.requests,
            "errors": self.errors,
            "first_error": self.first_error,
            "requests_per_s": self.throughput,
            "latency_ms": {
                "p50": self.p50_ms,
                "p90": self.p90_ms,
                "p99": self.p99_ms,
                "max": self.max_ms,
            },
            "server_cpu_s": self.server_cpu_seconds,
            "server_cpu_per_request_us": self.server_cpu_per_request_us,
            "server_cpu_percent_of_one_core": self.server_cpu_percent,
            "load_generator_cpu_percent_of_one_core": self.bench_cpu_percent,
            "other_processes_cpu_percent_of_one_core": self.other_cpu_percent,
            "server_cpu_percent_by_thread": self
                .server_threads
                .iter()
                .map(|(name, percent)| (name.clone(), serde_json::json!(percent)))
                .collect::<serde_json::Map<String, serde_json::Value>>(),
            "kinds": self
                .kinds
                .iter()
                .map(|k| serde_json::json!({
                    "kind": k.name,
                    "connections": k.connections,
                    "requests": k.requests,
                    "errors": k.errors,
                    "requests_per_s": k.throughput,
                    "latency_ms": { "p50": k.p50_ms, "p99": k.p99_ms },
                }))
                .collect::<Vec<_>>(),
            "server_rss_kb": self
                .rss_kb
                .iter()
                .map(|(t, kb)| serde_json::json!({ "t_s": t, "kb": kb }))
                .collect::<Vec<_>>(),
            "server_rss_growth_kb": self.rss_growth_kb(),
            "admin_changes": self.admin_changes.as_ref().map(|c| serde_json::json!({
                "made": c.made,
                "seconds": c.seconds,
                "per_s": c.per_second(),
                "latency_ms": { "p50": c.p50_ms, "p99": c.p99_ms, "max": c.max_ms },
            })),
            "dpop_proofs": self.dpop_proofs.map(|(live, pooled)| serde_json::json!({
                "signed_before_load": pooled,
                "signed_during_load": live,
            })),
        })
    }
}
