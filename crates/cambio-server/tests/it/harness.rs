//! Starting servers and talking to them.

use std::path::Path;

use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::sync::oneshot;

pub const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const REFRESH_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:refresh_token";
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const ADMIN_PASSWORD: &str = "admin-password";

/// A running server; stopped when dropped.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

/// An HTTP answer: status, headers and the body as JSON (Null when it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// The OAuth `error` code of the body.
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
    pub fn description(&self) -> &str {
        self.body["error_description"].as_str().unwrap_or("")
    }
    pub fn access_token(&self) -> String {
        self.body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token in {}: {}", self.status, self.text))
            .to_owned()
    }
    /// Asserts an OAuth error with its status, code and description.
    pub fn assert_error(&self, status: u16, error: &str, description: &str) {
        assert_eq!(
            (self.status.as_u16(), self.error(), self.description()),
            (status, error, description),
            "{}",
            self.text
        );
    }
}

pub fn demo_config() -> cambio_server::Config {
    cambio_server::Config {
        admin_password: Some(ADMIN_PASSWORD.into()),
        demo: true,
        ..Default::default()
    }
}

impl TestServer {
    /// A server with the demo realm and an in-memory database.
    pub async fn start() -> TestServer {
        Self::start_with(demo_config()).await
    }

    /// A server whose SQLite database and key live in `dir`.
    pub async fn start_in(dir: &Path) -> TestServer {
        let mut config = demo_config();
        config.database_url = format!("sqlite://{}", dir.join("cambio.db").display());
        config.data_dir = Some(dir.to_owned());
        Self::start_with(config).await
    }

    pub async fn start_with(config: cambio_server::Config) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = cambio_server::Server::bind(config, listener).await.unwrap();
        let base = server.base_url().to_owned();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server
                .serve(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        TestServer {
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// Stops the server and waits until it has drained.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap();
        }
    }

    pub fn realm_url(&self, realm: &str) -> String {
        format!("{}/realms/{realm}", self.base)
    }

    pub fn oidc(&self, realm: &str, endpoint: &str) -> String {
        format!(
            "{}/realms/{realm}/protocol/openid-connect/{endpoint}",
            self.base
        )
    }

    /// POSTs a form, optionally with Basic credentials (sent form-url-encoded, as
    /// openid-client does).
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Reply {
        let body = encode_form(form);
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((id, secret)) = basic {
            request = request.header("authorization", basic_header(id, secret));
        }
        reply(request.send().await.unwrap()).await
    }

    pub async fn get(&self, url: &str, bearer: Option<&str>) -> Reply {
        let mut request = self.http.get(url);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        reply(request.send().await.unwrap()).await
    }

    /// Token endpoint of the demo realm.
    pub async fn token(&self, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Reply {
        self.post_form(&self.oidc("demo", "token"), form, basic)
            .await
    }

    /// alice's token from subject-client (password grant).
    pub async fn alice(&self, scope: Option<&str>) -> Reply {
        let mut form = vec![
            ("grant_type", "password"),
            ("client_id", "subject-client"),
            ("client_secret", "subject-secret"),
            ("username", "alice"),
            ("password", "alice"),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let reply = self.token(&form, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply
    }

    /// A token exchange by requester-client with extra parameters.
    pub async fn exchange(&self, subject: &str, extra: &[(&str, &str)]) -> Reply {
        let mut form = vec![("grant_type", EXCHANGE), ("subject_token", subject)];
        form.extend_from_slice(extra);
        self.token(&form, Some(("requester-client", "requester-secret")))
            .await
    }

    pub async fn introspect(&self, token: &str) -> Value {
        let reply = self
            .post_form(
                &self.oidc("demo", "token/introspect"),
                &[("token", token)],
                Some(("orders-api", "orders-secret")),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.body
    }

    /// An administrator's access token from the master realm.
    pub async fn admin_token(&self) -> String {
        let reply = self
            .post_form(
                &self.oidc("master", "token"),
                &[
                    ("grant_type", "password"),
                    ("client_id", "admin-cli"),
                    ("username", "admin"),
                    ("password", ADMIN_PASSWORD),
                ],
                None,
            )
            .await;
        reply.access_token()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Reads a whole response into a [`Reply`].
pub async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
        text,
    }
}

pub fn encode_form(form: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        s.append_pair(k, v);
    }
    s.finish()
}

/// RFC 6749 §2.3.1: both parts form-url-encoded, then base64.
pub fn basic_header(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let raw = format!("{}:{}", enc(id), enc(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// The payload of a JWT, read without verification (for assertions on claims).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The protected header of a JWT.
pub fn header(jwt: &str) -> Value {
    let part = jwt.split('.').next().expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The values of a JSON array of strings, sorted (or one string as a one-element list).
pub fn strings(value: &Value) -> Vec<String> {
    let mut out: Vec<String> = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => vec![],
    };
    out.sort();
    out
}

// Helpers for grants.rs and endpoints.rs.

/// The RFC 7636 Appendix B verifier and its S256 challenge.
pub const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const PKCE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

impl TestServer {
    /// POSTs `body` as is, with any content type, optionally with Basic credentials.
    pub async fn post_raw(
        &self,
        url: &str,
        content_type: &str,
        body: String,
        basic: Option<(&str, &str)>,
    ) -> Reply {
        let mut request = self
            .http
            .post(url)
            .header("content-type", content_type)
            .body(body);
        if let Some((id, secret)) = basic {
            request = request.header("authorization", basic_header(id, secret));
        }
        reply(request.send().await.unwrap()).await
    }

    /// POSTs a form with a ready-made `Authorization` header value.
    pub async fn post_form_auth(
        &self,
        url: &str,
        form: &[(&str, &str)],
        authorization: &str,
    ) -> Reply {
        let request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", authorization)
            .body(encode_form(form));
        reply(request.send().await.unwrap()).await
    }

    /// A client_credentials token of requester-client (no password hashing involved).
    pub async fn service_token(&self) -> Reply {
        let reply = self
            .token(
                &[("grant_type", "client_credentials")],
                Some(("requester-client", "requester-secret")),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply
    }

    /// Introspection as orders-api, returning the whole reply.
    pub async fn introspect_reply(&self, token: &str) -> Reply {
        self.post_form(
            &self.oidc("demo", "token/introspect"),
            &[("token", token)],
            Some(("orders-api", "orders-secret")),
        )
        .await
    }

    /// A refresh_token grant by subject-client.
    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            Some(("subject-client", "subject-secret")),
        )
        .await
    }

    /// The demo realm's JWKS.
    pub async fn jwks(&self) -> Reply {
        let reply = self.get(&self.oidc("demo", "certs"), None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A header's value as a string ("" when absent).
pub fn header_value<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

impl TestServer {
    /// Like [`TestServer::start_with`], on a listener the caller bound (to reuse a port).
    pub async fn start_on(
        config: cambio_server::Config,
        listener: tokio::net::TcpListener,
    ) -> TestServer {
        let server = cambio_server::Server::bind(config, listener).await.unwrap();
        let base = server.base_url().to_owned();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server
                .serve(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        TestServer {
            base,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }
}

/// What a browser keeps from a login or logout page to post its form: the binding cookie the
/// page set (or the one the browser already had) and the binding field the form carries.
#[derive(Debug, Clone, Default)]
pub struct BrowserBinding {
    pub cookie: Option<String>,
    pub field: Option<String>,
}

impl BrowserBinding {
    /// Reads the binding from a page; `previous` is the cookie the browser already holds.
    pub fn from_page(page: &Reply, previous: Option<&str>) -> BrowserBinding {
        let cookie = page
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|pair| {
                pair.starts_with("CAMBIO_BROWSER_BINDING=")
                    || pair.starts_with("__Host-CAMBIO_BROWSER_BINDING=")
            })
            .map(str::to_owned)
            .or_else(|| previous.map(str::to_owned));
        let marker = "name=\"browser_binding\" value=\"";
        let field = page.text.find(marker).map(|i| {
            let rest = &page.text[i + marker.len()..];
            rest[..rest.find('"').unwrap_or(rest.len())].to_owned()
        });
        BrowserBinding { cookie, field }
    }

    /// Posts `form` (plus the binding field) with the binding cookie.
    pub async fn post(&self, s: &TestServer, url: &str, form: &[(&str, &str)]) -> Reply {
        let mut form = form.to_vec();
        if let Some(field) = &self.field {
            form.push(("browser_binding", field));
        }
        let mut request = s
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode_form(&form));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        reply(request.send().await.unwrap()).await
    }
}
