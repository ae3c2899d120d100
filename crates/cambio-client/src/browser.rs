//! Authorization code login with PKCE (RFC 7636) and a loopback redirect (RFC 8252 §7.3):
//! for command-line tools and desktop apps, where the user signs in in a browser.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use zeroize::Zeroizing;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::http::random_token;

/// The largest redirect request read; a browser's GET with a code fits easily.
const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// The path of the redirect URI on the loopback listener.
const CALLBACK_PATH: &str = "/callback";
/// The most connections read at once while waiting for the redirect.
const MAX_CONNECTIONS: usize = 16;

/// A browser login in progress: show [`BrowserLogin::authorization_url`] to the user (or open
/// it), then await [`BrowserLogin::finish`], which takes the redirect on a loopback port and
/// redeems the code.
///
/// ```no_run
/// # async fn run(client: cambio_client::Client) -> Result<(), cambio_client::Error> {
/// let login = client.browser_login(None).await?;
/// eprintln!("Open {} to sign in", login.authorization_url());
/// login.finish(std::time::Duration::from_secs(300)).await?;
/// # Ok(()) }
/// ```
pub struct BrowserLogin {
    client: Client,
    listener: TcpListener,
    authorization_url: String,
    redirect_uri: String,
    state: String,
    verifier: Zeroizing<String>,
}

impl Client {
    /// Starts a browser login: binds a listener on `127.0.0.1` (any free port) for the
    /// redirect and prepares the authorization URL with a PKCE S256 challenge and a `state`.
    ///
    /// # Errors
    /// [`Error::Store`] if no loopback port can be bound.
    pub async fn browser_login(&self, scope: Option<&str>) -> Result<BrowserLogin> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let redirect_uri = format!("http://127.0.0.1:{port}{CALLBACK_PATH}");
        let verifier = Zeroizing::new(random_token());
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(digest(&SHA256, verifier.as_bytes()));
        let state = random_token();
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", self.client_id())
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(scope) = scope {
            query.append_pair("scope", scope);
        }
        let endpoint = &self.wire().endpoints.authorization;
        let separator = if endpoint.contains('?') { '&' } else { '?' };
        Ok(BrowserLogin {
            client: self.clone(),
            listener,
            authorization_url: format!("{endpoint}{separator}{}", query.finish()),
            redirect_uri,
            state,
            verifier,
        })
    }
}

impl BrowserLogin {
    /// The URL the user opens to sign in.
    pub fn authorization_url(&self) -> &str {
        &self.authorization_url
    }

    /// The loopback redirect URI (`http://127.0.0.1:{port}/callback`).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Waits up to `timeout` for the browser's redirect, answers it with a short page, and
    /// redeems the code for the session. Requests for other paths or with another `state`
    /// are answered and otherwise ignored, and several connections are served at once, so an
    /// idle or stray one cannot hold up the redirect.
    ///
    /// # Errors
    /// [`Error::BrowserLogin`] on timeout, on an error redirect (the user refused) or an
    /// issuer mismatch (RFC 9207); [`Error::OAuth`] if the code is refused.
    pub async fn finish(self, timeout: Duration) -> Result<()> {
        let code = tokio::time::timeout(timeout, self.wait_for_code())
            .await
            .map_err(|_| Error::BrowserLogin("timed out waiting for the browser".into()))??;
        let reply = self
            .client
            .wire()
            .token(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", &self.redirect_uri),
                    ("code_verifier", &self.verifier),
                ],
                None,
            )
            .await?;
        self.client.start_user_session(reply).await
    }

    /// Serves the listener's connections side by side until one brings the redirect of this
    /// login. A browser opens connections it may never use (preconnects), asks for a favicon,
    /// and other programs on this machine can connect too: none of that may hold up the real
    /// redirect, so each connection is read on its own task (at most [`MAX_CONNECTIONS`] at
    /// once, each with its own read deadline) and only the right `state` ends the wait.
    async fn wait_for_code(&self) -> Result<Zeroizing<String>> {
        let expected = Arc::new(Expected {
            state: self.state.clone(),
            issuer: self.client.issuer().to_owned(),
        });
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept(), if connections.len() < MAX_CONNECTIONS => {
                    let (stream, _) = accepted?;
                    let expected = expected.clone();
                    connections.spawn(async move { serve(stream, &expected).await });
                }
                Some(served) = connections.join_next() => {
                    // `None`: a stray request, answered and ignored. A task cannot panic
                    // short of a bug; its connection is then simply gone.
                    if let Ok(Some(outcome)) = served {
                        return outcome;
                    }
                }
            }
        }
    }
}

/// What the redirect of this login carries.
struct Expected {
    state: String,
    issuer: String,
}

/// Answers one connection. `None` when the request is not this login's redirect (another
/// path, another or no `state`, not a `GET`, nothing sent in time).
async fn serve(mut stream: TcpStream, expected: &Expected) -> Option<Result<Zeroizing<String>>> {
    let Some(target) = read_request_target(&mut stream).await else {
        respond(&mut stream, "400 Bad Request", "Bad request.").await;
        return None;
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if path != CALLBACK_PATH {
        respond(&mut stream, "404 Not Found", "Not found.").await;
        return None;
    }
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    let mut issuer = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "code" => code = Some(Zeroizing::new(value.into_owned())),
            "state" => state = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            "error_description" => description = Some(value.into_owned()),
            "iss" => issuer = Some(value.into_owned()),
            _ => {}
        }
    }
    if state.as_deref() != Some(expected.state.as_str()) {
        respond(&mut stream, "400 Bad Request", "Unknown login request.").await;
        return None;
    }
    if let Some(error) = error {
        respond(
            &mut stream,
            "200 OK",
            "Sign-in failed; you can close this window.",
        )
        .await;
        return Some(Err(Error::BrowserLogin(match description {
            Some(description) => format!("{error}: {description}"),
            None => error,
        })));
    }
    // RFC 9207: a redirect naming another issuer is a mix-up attack.
    if issuer.as_deref().is_some_and(|iss| iss != expected.issuer) {
        respond(&mut stream, "400 Bad Request", "Wrong issuer.").await;
        return Some(Err(Error::BrowserLogin(
            "the redirect names another issuer".into(),
        )));
    }
    let Some(code) = code else {
        respond(&mut stream, "400 Bad Request", "No code.").await;
        return Some(Err(Error::BrowserLogin(
            "the redirect carries no code".into(),
        )));
    };
    respond(
        &mut stream,
        "200 OK",
        "Signed in; you can close this window.",
    )
    .await;
    Some(Ok(code))
}

impl fmt::Debug for BrowserLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserLogin")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// Reads the request head and returns the target of a `GET` request line. One deadline covers
/// the whole head: a connection that trickles a byte at a time cannot hold its slot longer.
async fn read_request_target(stream: &mut TcpStream) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(10), read_head(stream))
        .await
        .ok()
        .flatten()
}

async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 || head.len() + read > MAX_REQUEST_BYTES {
            return None;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Some(target.to_owned()),
        _ => None,
    }
}

async fn respond(stream: &mut TcpStream, status: &str, message: &str) {
    let body = format!("<!doctype html><title>Cambio</title><p>{message}</p>");
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // The browser may have gone; the login's outcome does not depend on this page.
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
