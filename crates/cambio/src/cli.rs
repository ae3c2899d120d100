//! The client commands, built on the SDK (`cambio-client`): `login`, `exchange`, `claims` and
//! `logout`. Between invocations the session (issuer, client id and the refresh token, never
//! the client secret) lives in a state file readable by its owner only, and the exchanged
//! tokens in a cache file beside it (`FileTokenCache`, also 0600), so that a second
//! `cambio exchange` within a token's life asks the server nothing.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cambio_client::{
    Client, Error, ExchangeRequest, FileTokenCache, FileTokenStore, RenewalMargin, StoredSession,
    TokenStore,
};
use cambio_proto::trace::TraceParent;
use clap::Args;
use zeroize::Zeroizing;

/// How long `cambio login` waits for the browser.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(300);

/// Where the session is kept and the client's secret, shared by every client command.
#[derive(Args, Debug)]
pub struct SessionArgs {
    /// The session file (created with mode 0600); defaults to
    /// `$HOME/.config/cambio/session.json`.
    #[arg(long, env = "CAMBIO_STATE_FILE")]
    state_file: Option<PathBuf>,
    /// The client secret of a confidential client. It is never stored: give it to every
    /// command that talks to the server.
    #[arg(long, env = "CAMBIO_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Read the client secret from this file instead (its first line; keep the file private).
    /// Takes precedence over CAMBIO_CLIENT_SECRET.
    #[arg(long, value_name = "PATH")]
    client_secret_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    session: SessionArgs,
    /// The realm's issuer URL, such as https://sso.example/realms/demo. HTTPS, or plain HTTP
    /// only to 127.0.0.1, [::1] or localhost (checked before anything is sent).
    #[arg(long, env = "CAMBIO_ISSUER")]
    issuer: String,
    /// The client to log in through.
    #[arg(long, env = "CAMBIO_CLIENT_ID")]
    client_id: String,
    /// Log in with a password (resource owner password grant) as this user. Without it, the
    /// login happens in a browser (authorization code with PKCE and a loopback redirect).
    #[arg(long)]
    username: Option<String>,
    /// The user's password; when absent, typed at the terminal (not echoed) or read from the
    /// first line of standard input when that is not a terminal.
    #[arg(
        long,
        env = "CAMBIO_PASSWORD",
        hide_env_values = true,
        requires = "username"
    )]
    password: Option<String>,
    /// Scopes to request at login, space-separated.
    #[arg(long)]
    scope: Option<String>,
    /// Bind the session and every exchanged token to a new DPoP key (RFC 9449), kept in the
    /// state file beside the refresh token; `cambio proof` signs with it.
    #[arg(long)]
    dpop: bool,
}

#[derive(Args, Debug)]
pub struct ProofArgs {
    #[command(flatten)]
    session: SessionArgs,
    /// The HTTP method of the request the proof is for.
    #[arg(long, default_value = "GET")]
    method: String,
    /// The URL of the request the proof is for.
    #[arg(long)]
    url: String,
    /// The (DPoP-bound) access token the request presents.
    #[arg(long)]
    token: String,
}

#[derive(Args, Debug)]
pub struct ExchangeArgs {
    #[command(flatten)]
    session: SessionArgs,
    /// The backend the token is for.
    #[arg(long)]
    audience: String,
    /// Scopes to narrow the token to, space-separated.
    #[arg(long)]
    scope: Option<String>,
    /// RFC 8693 `requested_token_type`.
    #[arg(long)]
    requested_token_type: Option<String>,
    /// Fetch a new token even when the cache file holds one with enough life left, and
    /// replace the cached one.
    #[arg(long)]
    force_update: bool,
    /// A W3C `traceparent` (00-<trace id>-<parent id>-<flags>) to send with the exchange; not
    /// sent when the token comes from the cache.
    #[arg(long)]
    trace_parent: Option<String>,
    /// Print the whole result as JSON instead of the bare token.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ClaimsArgs {
    #[command(flatten)]
    session: SessionArgs,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    #[command(flatten)]
    session: SessionArgs,
}

pub async fn login(args: LoginArgs) -> Result<(), String> {
    let store = args.session.store()?;
    let mut builder = Client::builder(&args.issuer, &args.client_id)
        .token_store(Arc::new(store.clone()) as Arc<dyn TokenStore>);
    if let Some(secret) = args.session.secret()? {
        builder = builder.client_secret(secret.as_str());
    }
    if args.dpop {
        let key = cambio_client::SigningKey::generate(cambio_client::Algorithm::Es256)
            .map_err(|e| format!("cannot make a DPoP key: {e}"))?;
        builder = builder.dpop_key(key);
    }
    let client = builder.build().await.map_err(describe)?;
    match &args.username {
        Some(username) => {
            let password = match args.password {
                Some(password) => Zeroizing::new(password),
                None => read_password()?,
            };
            client
                .login_password(username, &password)
                .await
                .map_err(describe)?;
        }
        None => {
            let login = client
                .browser_login(args.scope.as_deref())
                .await
                .map_err(describe)?;
            eprintln!(
                "Open this URL in a browser to sign in:\n{}",
                login.authorization_url()
            );
            login.finish(BROWSER_TIMEOUT).await.map_err(describe)?;
        }
    }
    // Tokens exchanged in the previous session are not this one's.
    forget_cache(&cache_beside(&store));
    print(&format!(
        "logged in to {} through {}; session saved in {}",
        client.issuer(),
        client.client_id(),
        store.path().display()
    ))
}

pub async fn exchange(args: ExchangeArgs) -> Result<(), String> {
    if let Some(parent) = &args.trace_parent {
        TraceParent::parse(parent).map_err(|e| format!("--trace-parent {parent:?}: {e}"))?;
    }
    let request = ExchangeRequest {
        audience: args.audience,
        scope: args.scope,
        requested_token_type: args.requested_token_type,
        force_update: args.force_update,
        trace_parent: args.trace_parent,
        trace_state: None,
    };
    let store = args.session.store()?;
    let stored = args.session.stored(&store)?;
    let cache = cache_beside(&store);
    // The cache is read before anything is sent: a hit needs no refresh and no exchange.
    let cached = if request.force_update {
        None
    } else {
        cache
            .get(
                &stored.issuer,
                &stored.client_id,
                &request,
                &RenewalMargin::default(),
            )
            .unwrap_or_else(|e| {
                eprintln!("cambio: ignoring {}: {e}", cache.path().display());
                None
            })
    };
    let token = match cached {
        Some(token) => token,
        None => {
            let client = args.session.restore(&store, &stored).await?;
            let token = client.exchange(request.clone()).await.map_err(describe)?;
            if let Err(e) = cache.put(client.issuer(), client.client_id(), &request, &token) {
                eprintln!("cambio: cannot write {}: {e}", cache.path().display());
            }
            token
        }
    };
    if args.json {
        let expires_in = token
            .expires_at()
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default()
            .as_secs();
        let json = serde_json::json!({
            "access_token": token.token(),
            "token_type": token.token_type(),
            "issued_token_type": token.issued_token_type(),
            "expires_in": expires_in,
            "scope": token.scope(),
        });
        print(&format!("{json:#}"))
    } else {
        print(token.token())
    }
}

/// Prints a DPoP proof by the session's key for one request, without contacting the server.
pub fn proof(args: ProofArgs) -> Result<(), String> {
    let store = args.session.store()?;
    let stored = args.session.stored(&store)?;
    match stored
        .dpop_proof(&args.method.to_ascii_uppercase(), &args.url, &args.token)
        .map_err(describe)?
    {
        Some(proof) => print(&proof),
        None => Err("the session has no DPoP key (log in with --dpop)".into()),
    }
}

pub async fn claims(args: ClaimsArgs) -> Result<(), String> {
    let store = args.session.store()?;
    let stored = args.session.stored(&store)?;
    let client = args.session.restore(&store, &stored).await?;
    let claims = client.access_token_claims().await.map_err(describe)?;
    print(&format!("{:#}", serde_json::Value::Object(claims)))
}

pub async fn logout(args: LogoutArgs) -> Result<(), String> {
    let store = args.session.store()?;
    forget_cache(&cache_beside(&store));
    let Some(stored) = store.load().map_err(|e| e.to_string())? else {
        return print("not logged in");
    };
    // A session the server already ended cannot be restored; forgetting it is all there is.
    match args.session.restore(&store, &stored).await {
        Ok(client) => client.logout().await.map_err(describe)?,
        Err(_) => store.clear().map_err(|e| e.to_string())?,
    }
    print("logged out")
}

impl SessionArgs {
    fn store(&self) -> Result<FileTokenStore, String> {
        let path = match &self.state_file {
            Some(path) => path.clone(),
            None => {
                let home = std::env::var_os("HOME")
                    .ok_or("HOME is not set; give --state-file or CAMBIO_STATE_FILE")?;
                PathBuf::from(home).join(".config/cambio/session.json")
            }
        };
        Ok(FileTokenStore::new(path))
    }

    /// The stored session; an error saying to log in when there is none.
    fn stored(&self, store: &FileTokenStore) -> Result<StoredSession, String> {
        store
            .load()
            .map_err(|e| format!("{}: {e}", store.path().display()))?
            .ok_or_else(|| "not logged in: run `cambio login` first".to_owned())
    }

    /// The client secret from `--client-secret-file`, else `--client-secret` or the
    /// environment.
    fn secret(&self) -> Result<Option<Zeroizing<String>>, String> {
        let Some(path) = &self.client_secret_file else {
            return Ok(self.client_secret.clone().map(Zeroizing::new));
        };
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| format!("--client-secret-file {}: {e}", path.display()))?,
        );
        let secret = text.lines().next().unwrap_or_default();
        if secret.is_empty() {
            return Err(format!(
                "--client-secret-file {}: the first line is empty",
                path.display()
            ));
        }
        Ok(Some(Zeroizing::new(secret.to_owned())))
    }

    /// A client for the stored session, refreshed once (so the session is known alive).
    async fn restore(
        &self,
        store: &FileTokenStore,
        stored: &StoredSession,
    ) -> Result<Client, String> {
        let mut builder = Client::builder(&stored.issuer, &stored.client_id)
            .token_store(Arc::new(store.clone()) as Arc<dyn TokenStore>);
        if let Some(secret) = self.secret()? {
            builder = builder.client_secret(secret.as_str());
        }
        let client = builder.build().await.map_err(describe)?;
        if let Err(error) = client.restore().await {
            if error.is_login_required() {
                // The session is over: so are the tokens exchanged in it.
                forget_cache(&cache_beside(store));
            }
            return Err(describe(error));
        }
        Ok(client)
    }
}

/// The exchanged-token cache beside the session file: `session.json` → `session.cache.json`.
fn cache_beside(store: &FileTokenStore) -> FileTokenCache {
    FileTokenCache::new(store.path().with_extension(cache_extension(store.path())))
}

fn cache_extension(session: &Path) -> String {
    match session.extension() {
        Some(extension) => format!("cache.{}", extension.to_string_lossy()),
        None => "cache".to_owned(),
    }
}

/// Clears the cache; a failure is reported but stops nothing.
fn forget_cache(cache: &FileTokenCache) {
    if let Err(e) = cache.clear() {
        eprintln!("cambio: cannot remove {}: {e}", cache.path().display());
    }
}

/// Writes one line to standard output. A reader that went away (`cambio exchange | head -c
/// 10`) is not an error: there is no one left to tell, so the command ends quietly.
fn print(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write to standard output: {e}"))
        }
        _ => Ok(()),
    }
}

/// One line for the user; a dead session says what to do about it.
fn describe(error: Error) -> String {
    if error.is_login_required() {
        format!("{error}: run `cambio login` again")
    } else {
        error.to_string()
    }
}

/// The password, typed at the terminal without echo; from a pipe (scripts), the first line of
/// standard input.
fn read_password() -> Result<Zeroizing<String>, String> {
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Password: ")
            .map_err(|e| format!("cannot read the password: {e}"))?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password: {e}"))?;
        line
    };
    let password = Zeroizing::new(password);
    Ok(Zeroizing::new(
        password.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}
