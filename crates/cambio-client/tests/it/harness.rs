//! A real server in-process, and the few raw HTTP calls tests make beside the SDK.

use std::time::Duration;

use base64::Engine as _;
use cambio_client::{Client, ClientBuilder};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const ADMIN_PASSWORD: &str = "admin-password";

/// A running server with the demo realm and an in-memory database; stopped when dropped.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let config = cambio_server::Config {
            admin_password: Some(ADMIN_PASSWORD.into()),
            demo: true,
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = cambio_server::Server::bind(config, listener).await.unwrap();
        let base = server.base_url().to_owned();
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
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
        }
    }

    pub fn issuer(&self) -> String {
        format!("{}/realms/demo", self.base)
    }

    /// A builder for the demo realm's `sdk-app`.
    pub fn sdk_app(&self) -> ClientBuilder {
        Client::builder(self.issuer(), "sdk-app").client_secret("sdk-secret")
    }

    /// `sdk-app` with alice logged in.
    pub async fn alice(&self) -> Client {
        let client = self.sdk_app().build().await.unwrap();
        client.login_password("alice", "alice").await.unwrap();
        client
    }

    /// `cambio_token_requests_total` of the demo realm for one grant, successes only.
    pub async fn count(&self, grant: &str) -> u64 {
        self.count_outcome(grant, "success").await
    }

    /// `cambio_token_requests_total` of the demo realm for one grant and outcome.
    pub async fn count_outcome(&self, grant: &str, outcome: &str) -> u64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let prefix = format!(
            "cambio_token_requests_total{{realm=\"demo\",grant=\"{grant}\",outcome=\"{outcome}\"}} "
        );
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map(|n| n.trim().parse().unwrap())
            .unwrap_or(0)
    }

    /// An administrator's access token (master realm, admin-cli).
    pub async fn admin_token(&self) -> String {
        let reply: Value = self
            .http
            .post(format!(
                "{}/realms/master/protocol/openid-connect/token",
                self.base
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        reply["access_token"].as_str().unwrap().to_owned()
    }

    /// GET on the demo realm's admin API.
    pub async fn admin_get(&self, path: &str) -> Value {
        let admin = self.admin_token().await;
        let response = self
            .http
            .get(format!("{}/admin/realms/demo{path}", self.base))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.unwrap()
    }

    /// Sets client attributes of a demo client (such as `access.token.lifespan`).
    pub async fn set_client_attribute(&self, client_id: &str, name: &str, value: &str) {
        let clients = self
            .admin_get(&format!("/clients?clientId={client_id}"))
            .await;
        let uuid = clients[0]["id"].as_str().unwrap().to_owned();
        self.admin_put(
            &format!("/clients/{uuid}"),
            json!({"attributes": {name: value}}),
        )
        .await;
    }

    /// Sets an attribute of the demo realm (such as `cambio.dpopNonceRequired`).
    pub async fn set_realm_attribute(&self, name: &str, value: &str) {
        let mut realm = self.admin_get("").await;
        realm["attributes"][name] = json!(value);
        self.admin_put("", realm).await;
    }

    /// PUT on the demo realm's admin API; asserts success.
    async fn admin_put(&self, path: &str, body: Value) {
        let admin = self.admin_token().await;
        let response = self
            .http
            .put(format!("{}/admin/realms/demo{path}", self.base))
            .bearer_auth(admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// Ends a session through the admin API.
    pub async fn end_session(&self, sid: &str) {
        let admin = self.admin_token().await;
        let response = self
            .http
            .delete(format!("{}/admin/realms/demo/sessions/{sid}", self.base))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// The audit events of one type, waiting a little for the asynchronous audit queue.
    pub async fn events(&self, event_type: &str, until: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..50 {
            let events = self
                .admin_get(&format!("/events?type={event_type}"))
                .await
                .as_array()
                .cloned()
                .unwrap_or_default();
            if until(&events) {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no matching {event_type} event");
    }

    /// A raw refresh grant by sdk-app.
    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/protocol/openid-connect/token", self.issuer()))
            .basic_auth("sdk-app", Some("sdk-secret"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Introspection as orders-api.
    pub async fn introspect(&self, token: &str) -> Value {
        self.http
            .post(format!(
                "{}/protocol/openid-connect/token/introspect",
                self.issuer()
            ))
            .basic_auth("orders-api", Some("orders-secret"))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The payload of a JWT, unverified (for assertions).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The values of `aud` as a sorted list.
pub fn audiences(jwt: &str) -> Vec<String> {
    let mut out: Vec<String> = match &claims(jwt)["aud"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
        _ => vec![],
    };
    out.sort();
    out
}
