//! The client commands, built on the SDK (`cambio-client`): `login`, `exchange`, `claims` and
//! `logout`. Between invocations the session (issuer, client id and the refresh token, never
//! the client secret) lives in a state file readable by its owner only.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cambio_client::{Client, Error, ExchangeRequest, FileTokenStore, TokenStore};
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
    /// Accepted for symmetry with the SDK; every invocation fetches a new token anyway,
    /// since the cache lives in memory.
    #[arg(long)]
    force_update: bool,
    /// A W3C `traceparent` to send with the exchange.
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
    if let Some(secret) = &args.session.client_secret {
        builder = builder.client_secret(secret);
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
    println!(
        "logged in to {} through {}; session saved in {}",
        client.issuer(),
        client.client_id(),
        store.path().display()
    );
    Ok(())
}

pub async fn exchange(args: ExchangeArgs) -> Result<(), String> {
    let client = args.session.restore().await?;
    let request = ExchangeRequest {
        audience: args.audience,
        scope: args.scope,
        requested_token_type: args.requested_token_type,
        force_update: args.force_update,
        trace_parent: args.trace_parent,
        trace_state: None,
    };
    let token = client.exchange(request).await.map_err(describe)?;
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
        println!("{json:#}");
    } else {
        println!("{}", token.token());
    }
    Ok(())
}

pub async fn claims(args: ClaimsArgs) -> Result<(), String> {
    let client = args.session.restore().await?;
    let claims = client.access_token_claims().await.map_err(describe)?;
    println!("{:#}", serde_json::Value::Object(claims));
    Ok(())
}

pub async fn logout(args: LogoutArgs) -> Result<(), String> {
    let store = args.session.store()?;
    if store.load().map_err(|e| e.to_string())?.is_none() {
        println!("not logged in");
        return Ok(());
    }
    // A session the server already ended cannot be restored; forgetting it is all there is.
    match args.session.restore().await {
        Ok(client) => client.logout().await.map_err(describe)?,
        Err(_) => store.clear().map_err(|e| e.to_string())?,
    }
    println!("logged out");
    Ok(())
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

    /// A client for the stored session, refreshed once (so the session is known alive).
    async fn restore(&self) -> Result<Client, String> {
        let store = self.store()?;
        let stored = store
            .load()
            .map_err(|e| format!("{}: {e}", store.path().display()))?
            .ok_or("not logged in: run `cambio login` first")?;
        let mut builder = Client::builder(&stored.issuer, &stored.client_id)
            .token_store(Arc::new(store) as Arc<dyn TokenStore>);
        if let Some(secret) = &self.client_secret {
            builder = builder.client_secret(secret);
        }
        let client = builder.build().await.map_err(describe)?;
        client.restore().await.map_err(describe)?;
        Ok(client)
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
