//! The `cambio` binary: `cambio serve` runs the server; `cambio realm export|import` move a
//! realm in and out of its database; `cambio login|exchange|claims|logout` are a client of a
//! realm, built on the SDK (`cli.rs`).

mod cli;
mod telemetry;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use tokio::net::TcpListener;

// glibc's allocator showed up as ~8% of an exchange's CPU in profiles; mimalloc's thread-local
// free lists suit the many short-lived allocations of request handling. It is built without
// transparent huge pages (`no_thp`): with them, the idle server's few MiB of heap were backed
// by 2 MiB pages and it held 30 MiB resident instead of 20 (docs/benchmarks.md, "Memory").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How often memory the allocator no longer uses is handed back to the system.
const RELEASE_FREE_MEMORY_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Hands memory mimalloc holds but no longer uses back to the operating system. mimalloc
/// returns freed memory only after a delay and only while it is busy, so the 19 MiB working
/// area of each Argon2id password hash (the bootstrap administrator's at a first start, and
/// every password login's) otherwise stayed resident in an idle server. Cheap enough to call
/// now and then: it walks the allocator's own bookkeeping and nothing else.
#[allow(unsafe_code)]
fn release_free_memory() {
    // SAFETY: `mi_collect` takes no pointer and may be called from any thread at any time; it
    // only frees memory mimalloc itself knows to be unused.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

#[derive(Parser)]
#[command(
    name = "cambio",
    version,
    about = "OAuth 2.0 token exchange server (RFC 8693)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Export or import a realm, working on the database directly (no server needed).
    #[command(subcommand)]
    Realm(RealmCommand),
    /// Log in to a realm (password, or a browser with PKCE) and keep the session in the
    /// state file.
    Login(cli::LoginArgs),
    /// Print a token for one audience, exchanged for the session's internal token.
    Exchange(cli::ExchangeArgs),
    /// Print the verified claims of a fresh internal access token.
    Claims(cli::ClaimsArgs),
    /// Print a DPoP proof (RFC 9449) by the session's key, to send in the `DPoP` header with a
    /// DPoP-bound token (`Authorization: DPoP <token>`).
    Proof(cli::ProofArgs),
    /// Revoke the session at the server and delete the state file.
    Logout(cli::LogoutArgs),
}

#[derive(Subcommand)]
enum RealmCommand {
    /// Write a realm as Keycloak JSON: settings, client scopes, clients with their secrets,
    /// roles, and users with their role mappings and password hashes. Keep the file private.
    Export(RealmExportArgs),
    /// Create a realm from Keycloak JSON (clients, roles, client scopes, users with passwords
    /// in clear or as exported); refuses if the realm exists. A running server sees the new
    /// realm after a restart; to import into a running server use `POST /admin/realms`.
    Import(RealmImportArgs),
}

/// Where the server keeps its data.
#[derive(Args, Debug)]
struct StoreArgs {
    /// Directory for the embedded database and the data-encryption key.
    #[arg(long, env = "CAMBIO_DATA_DIR", default_value = "./cambio-data")]
    data_dir: PathBuf,
    /// Database URL; defaults to SQLite inside the data directory.
    #[arg(long, env = "CAMBIO_DATABASE")]
    database: Option<String>,
}

impl StoreArgs {
    fn config(&self) -> cambio_server::Config {
        cambio_server::Config {
            database_url: self.database.clone().unwrap_or_else(|| {
                format!("sqlite://{}", self.data_dir.join("cambio.db").display())
            }),
            data_dir: Some(self.data_dir.clone()),
            ..Default::default()
        }
    }
}

#[derive(Args, Debug)]
struct RealmExportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The realm to export.
    #[arg(long)]
    realm: String,
    /// Output file (created with mode 0600); standard output when absent.
    #[arg(long)]
    file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct RealmImportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The realm representation (JSON); `-` reads standard input.
    #[arg(long, required_unless_present = "dir", conflicts_with = "dir")]
    file: Option<PathBuf>,
    /// A directory written by Keycloak's `kc.sh export --dir`: `{realm}-realm.json` and its
    /// `{realm}-users-N.json` files.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// With `--dir`: the realm to import, when the directory holds several.
    #[arg(long, requires = "dir")]
    realm: Option<String>,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "CAMBIO_LISTEN")]
    listen: Option<String>,
    /// Directory for the embedded database and the data-encryption key.
    #[arg(long, env = "CAMBIO_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL; defaults to SQLite inside the data directory.
    #[arg(long, env = "CAMBIO_DATABASE")]
    database: Option<String>,
    /// Path prefix for every endpoint, such as /auth for older Keycloak URLs.
    #[arg(long, env = "CAMBIO_HTTP_RELATIVE_PATH")]
    http_relative_path: Option<String>,
    /// Public base URL used in issuers (scheme://host[:port]); defaults to the listen address.
    #[arg(long, env = "CAMBIO_PUBLIC_URL")]
    public_url: Option<String>,
    /// TOML file with the same settings (flags and environment win).
    #[arg(long, env = "CAMBIO_CONFIG")]
    config: Option<PathBuf>,
    /// Create the walkthrough realm `demo` on first start.
    #[arg(long, env = "CAMBIO_DEMO")]
    demo: bool,
    /// Signing algorithm of the demo realm when it is first created (ES256, RS256, PS256, EdDSA).
    #[arg(long, env = "CAMBIO_DEMO_SIGNATURE_ALGORITHM", default_value = "ES256")]
    demo_signature_algorithm: String,
    /// Token, introspection and revocation requests per second per client address, with an
    /// optional burst: `RATE` or `RATE:BURST` (off by default).
    #[arg(long, env = "CAMBIO_RATE_LIMIT_PER_IP")]
    rate_limit_per_ip: Option<String>,
    /// The same limit per client id (off by default).
    #[arg(long, env = "CAMBIO_RATE_LIMIT_PER_CLIENT")]
    rate_limit_per_client: Option<String>,
    /// Failed password logins before an account is locked for a while (0 turns it off).
    #[arg(long, env = "CAMBIO_LOCKOUT_MAX_FAILURES")]
    lockout_max_failures: Option<u32>,
    /// How long a locked account stays locked, in seconds.
    #[arg(long, env = "CAMBIO_LOCKOUT_SECONDS")]
    lockout_seconds: Option<u64>,
    /// Allow identity providers' JWKS from loopback addresses, over HTTPS or plain HTTP
    /// (development only); other internal addresses stay refused whatever this says.
    #[arg(long, env = "CAMBIO_ALLOW_HTTP_LOOPBACK_JWKS")]
    allow_http_loopback_jwks: bool,
    /// How many recently verified access tokens the server remembers, so that a token
    /// presented again skips the signature check (0 turns it off; default 2048).
    #[arg(long, env = "CAMBIO_VERIFIED_TOKEN_CACHE")]
    verified_token_cache: Option<usize>,
    /// Days audit events are kept before the cleanup job deletes them (unset or 0: kept
    /// forever).
    #[arg(long, env = "CAMBIO_EVENTS_RETENTION_DAYS")]
    events_retention_days: Option<u64>,
}

/// Parses `RATE` or `RATE:BURST` (the burst defaults to twice the rate, at least 1).
fn parse_rate(value: &str) -> Result<cambio_server::RateLimit, String> {
    let bad = || format!("invalid rate limit {value:?}: expected RATE or RATE:BURST");
    let (rate, burst) = match value.split_once(':') {
        Some((r, b)) => (
            r.trim().parse::<f64>().map_err(|_| bad())?,
            Some(b.trim().parse::<f64>().map_err(|_| bad())?),
        ),
        None => (value.trim().parse::<f64>().map_err(|_| bad())?, None),
    };
    if !rate.is_finite() || rate < 0.0 {
        return Err(bad());
    }
    let burst = burst.unwrap_or((rate * 2.0).max(1.0));
    if !burst.is_finite() || burst < 1.0 {
        return Err(bad());
    }
    Ok(cambio_server::RateLimit { rate, burst })
}

/// The TOML configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database: Option<String>,
    http_relative_path: Option<String>,
    public_url: Option<String>,
    demo: Option<bool>,
    verified_token_cache: Option<usize>,
    events_retention_days: Option<u64>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cambio: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Logs, and for `serve` OpenTelemetry traces when an OTLP endpoint is configured; set up
    // inside the runtime, where the span exporter runs.
    let telemetry = {
        let _runtime = runtime.enter();
        telemetry::init(matches!(cli.command, Command::Serve(_)) && telemetry::traces_configured())
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Realm(RealmCommand::Export(args)) => runtime.block_on(realm_export(args)),
        Command::Realm(RealmCommand::Import(args)) => runtime.block_on(realm_import(args)),
        Command::Login(args) => runtime.block_on(cli::login(args)),
        Command::Exchange(args) => runtime.block_on(cli::exchange(args)),
        Command::Claims(args) => runtime.block_on(cli::claims(args)),
        Command::Proof(args) => cli::proof(args),
        Command::Logout(args) => runtime.block_on(cli::logout(args)),
    };
    // The last spans, exported while the runtime still runs.
    telemetry.shutdown();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cambio: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let data_dir = args
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from("./cambio-data"));
    std::fs::create_dir_all(&data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let database = args
        .database
        .or(file.database)
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("cambio.db").display()));
    let config = cambio_server::Config {
        database_url: database,
        data_dir: Some(data_dir),
        public_url: args.public_url.or(file.public_url),
        http_relative_path: args
            .http_relative_path
            .or(file.http_relative_path)
            .unwrap_or_else(|| "/".into()),
        admin_user: std::env::var("CAMBIO_ADMIN_USER").unwrap_or_else(|_| "admin".into()),
        admin_password: std::env::var("CAMBIO_ADMIN_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty()),
        demo: args.demo || file.demo.unwrap_or(false),
        demo_signature_algorithm: args.demo_signature_algorithm.parse().map_err(|_| {
            format!(
                "unknown signature algorithm: {}",
                args.demo_signature_algorithm
            )
        })?,
        rate_limit_per_ip: args
            .rate_limit_per_ip
            .as_deref()
            .map(parse_rate)
            .transpose()?
            .unwrap_or(cambio_server::RateLimit::OFF),
        rate_limit_per_client: args
            .rate_limit_per_client
            .as_deref()
            .map(parse_rate)
            .transpose()?
            .unwrap_or(cambio_server::RateLimit::OFF),
        lockout: {
            let mut lockout = cambio_server::Lockout::default();
            if let Some(n) = args.lockout_max_failures {
                lockout.max_failures = n;
            }
            if let Some(secs) = args.lockout_seconds {
                lockout.lock_for = std::time::Duration::from_secs(secs);
            }
            lockout
        },
        allow_http_loopback_jwks: args.allow_http_loopback_jwks,
        verified_token_cache: args
            .verified_token_cache
            .or(file.verified_token_cache)
            .unwrap_or(cambio_server::DEFAULT_VERIFIED_TOKEN_CACHE),
        events_retention: match args.events_retention_days.or(file.events_retention_days) {
            None | Some(0) => None,
            // Beyond a thousand years the retention is "forever" in all but name.
            Some(days) => Some(std::time::Duration::from_secs(days.min(365_000) * 86_400)),
        },
        ..Default::default()
    };
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let server = cambio_server::Server::bind(config.clone(), listener)
        .await
        .map_err(|e| e.to_string())?;
    let address = server.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{address}");
    println!("realms under {}/realms/", server.base_url());
    if let Some(password) = &server.bootstrapped().generated_admin_password {
        println!(
            "created administrator '{}' in realm master with generated password: {password}\n\
             (shown once; set CAMBIO_ADMIN_PASSWORD to choose it)",
            config.admin_user
        );
    }
    println!("admin console at {}/admin/console/", server.base_url());
    if config.demo {
        print_walkthrough(server.base_url());
    }
    tokio::spawn(async {
        let mut every = tokio::time::interval(RELEASE_FREE_MEMORY_EVERY);
        loop {
            // The first tick is at once: the bootstrap's password hashes are just done.
            every.tick().await;
            release_free_memory();
        }
    });
    server
        .serve(shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn realm_export(args: RealmExportArgs) -> Result<(), String> {
    // Never create a fresh data-encryption key here: secrets sealed with the real one would
    // not open.
    let key = args.store.data_dir.join("secret.key");
    if !key.exists() {
        return Err(format!("{} not found: is --data-dir right?", key.display()));
    }
    let rep = cambio_server::realm_io::export_realm(&args.store.config(), &args.realm)
        .await
        .map_err(|e| e.to_string())?;
    let mut json = serde_json::to_string_pretty(&rep).map_err(|e| e.to_string())?;
    json.push('\n');
    match &args.file {
        Some(path) => {
            write_private(path, json.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(json.as_bytes())
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

async fn realm_import(args: RealmImportArgs) -> Result<(), String> {
    let document = match (&args.file, &args.dir) {
        (_, Some(dir)) => cambio_server::realm_import::read_export_dir(dir, args.realm.as_deref())?,
        (Some(file), None) => {
            let bytes = if file.as_os_str() == "-" {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                    .map_err(|e| e.to_string())?;
                bytes
            } else {
                std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?
            };
            cambio_server::import_report::parse_document(&bytes)
                .map_err(|e| format!("{}: {e}", file.display()))?
        }
        (None, None) => return Err("--file or --dir is required".into()),
    };
    std::fs::create_dir_all(&args.store.data_dir)
        .map_err(|e| format!("{}: {e}", args.store.data_dir.display()))?;
    // `kc.sh export --file` writes every realm into one array; each is imported in turn.
    let documents = match document {
        serde_json::Value::Array(list) => list,
        one => vec![one],
    };
    for document in documents {
        let (id, report) =
            cambio_server::realm_import::import_offline(&args.store.config(), &document)
                .await
                .map_err(|e| e.to_string())?;
        println!(
            "imported realm '{}' (id {id})",
            document["realm"].as_str().unwrap_or_default()
        );
        if !report.not_imported.is_empty() {
            println!("not imported ({}):", report.not_imported.len());
            for entry in &report.not_imported {
                println!("  {}: {}", entry.path, entry.reason);
            }
        }
    }
    Ok(())
}

/// Writes a new or replaced file readable by its owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

fn print_walkthrough(base: &str) {
    let token = format!("{base}/realms/demo/protocol/openid-connect/token");
    println!(
        r#"
demo realm ready. Try the whole flow:

  # 1. alice logs in through subject-client
  SUBJECT=$(curl -s {token} -d grant_type=password -d client_id=subject-client \
    -d client_secret=subject-secret -d username=alice -d password=alice | jq -r .access_token)

  # 2. requester-client exchanges it for a token meant only for orders-api
  EXCHANGED=$(curl -s {token} -u requester-client:requester-secret \
    -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
    -d subject_token="$SUBJECT" -d audience=orders-api | jq -r .access_token)

  # 3. orders-api introspects what it received
  curl -s {token}/introspect -u orders-api:orders-secret -d token="$EXCHANGED" | jq
"#
    );
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
