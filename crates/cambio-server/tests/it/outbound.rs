//! No outbound request to internal addresses (issue 11, rule 6), attacked as a realm
//! administrator would: an identity provider whose JWKS URL points at the cloud metadata
//! service, at the server's own loopback interface (directly, as an IPv4-mapped IPv6 address,
//! or through a name), or at the private network.
//!
//! The admin API refuses such URLs when they are registered, naming the flag that would allow
//! loopback. Providers stored by an earlier version bypass that check, so the tests also write
//! them straight into the database and show that the fetch itself refuses them: the exchange
//! fails, the audit event says why (naming the flag), and a listener on 127.0.0.1 that stands
//! for an internal service is never connected to. No test sends traffic off this machine: the
//! non-loopback addresses are refused before any connection is attempted.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cambio_core::federation::IdentityProvider;
use cambio_jose::{Algorithm, SigningKey};
use cambio_store::Store as _;
use serde_json::{Value, json};

use crate::*;

const REQUESTER: (&str, &str) = ("requester-client", "requester-secret");
const LOOPBACK_HINT: &str = "allowed only with --allow-http-loopback-jwks \
     (CAMBIO_ALLOW_HTTP_LOOPBACK_JWKS), for development";
const NO_SETTING: &str =
    "outbound requests never go to internal addresses, and no setting allows it";

/// A listener on 127.0.0.1 standing for an internal service the server must not reach.
struct Trap {
    listener: std::net::TcpListener,
    port: u16,
}

impl Trap {
    fn new() -> Trap {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        Trap { listener, port }
    }

    /// Whether a connection is waiting. The kernel completes the handshake of any connection
    /// the server opened before its request was answered, so this needs no waiting.
    fn was_connected(&self) -> bool {
        match self.listener.accept() {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(e) => panic!("accept on the trap listener: {e}"),
        }
    }
}

/// A server on the SQLite database in `dir`, with or without the development flag.
async fn server_in(dir: &Path, allow_loopback: bool) -> TestServer {
    let mut config = demo_config();
    config.database_url = database_url(dir);
    config.data_dir = Some(dir.to_owned());
    config.allow_http_loopback_jwks = allow_loopback;
    TestServer::start_with(config).await
}

fn database_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("cambio.db").display())
}

fn issuer(alias: &str) -> String {
    format!("https://{alias}.partner.example")
}

/// The provider configuration the tests use: requester-client may exchange, audience `cambio`.
fn provider_config(alias: &str, jwks_url: &str) -> Value {
    json!({
        "issuer": issuer(alias),
        "jwksUrl": jwks_url,
        "cambio.allowedClients": "requester-client",
        "cambio.allowedAudiences": "cambio",
    })
}

/// Writes providers into the database of a stopped server, as an earlier version without the
/// registration check could have stored them.
async fn plant_providers(dir: &Path, realm_id: &str, providers: &[(&str, String)]) {
    let store = cambio_store::SqliteStore::connect(&database_url(dir))
        .await
        .unwrap();
    for (alias, jwks_url) in providers {
        let config = provider_config(alias, jwks_url);
        let idp = IdentityProvider {
            alias: (*alias).to_owned(),
            internal_id: format!("planted-{alias}"),
            config: config
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect(),
            ..Default::default()
        };
        store
            .insert_object(&cambio_store::Object {
                realm_id: realm_id.to_owned(),
                kind: "identity-provider".into(),
                id: idp.internal_id.clone(),
                name: idp.alias.clone(),
                doc: serde_json::to_string(&idp).unwrap(),
            })
            .await
            .unwrap();
    }
}

/// Starts a server in `dir` once to create the database, and returns the demo realm's id.
async fn demo_realm_id(dir: &Path) -> String {
    let server = server_in(dir, false).await;
    let admin = server.admin_token().await;
    let realm = server
        .get(&format!("{}/admin/realms/demo", server.base), Some(&admin))
        .await;
    assert_eq!(realm.status, 200, "{}", realm.text);
    let id = realm.body["id"].as_str().unwrap().to_owned();
    server.stop().await;
    id
}

/// A token as the provider `alias` would issue it for its user `ext-alice`.
fn partner_token(alias: &str) -> String {
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    key.sign(
        "JWT",
        &json!({"iss": issuer(alias), "sub": "ext-alice", "aud": "cambio", "iat": now, "exp": now + 300}),
    )
    .unwrap()
}

/// Exchanges a token of `alias` and asserts the caller hears only that it is invalid.
async fn exchange_is_refused(server: &TestServer, alias: &str) {
    let reply = server
        .token(
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &partner_token(alias)),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("provider", alias),
            ],
            Some(REQUESTER),
        )
        .await;
    reply.assert_error(400, "invalid_request", "Invalid token");
}

/// The `jwks_error` of the failed exchange with each provider, from the audit events (which
/// reach the store within moments; the loop is bounded).
async fn jwks_errors(server: &TestServer, aliases: &[&str]) -> Vec<String> {
    let admin = server.admin_token().await;
    let url = format!(
        "{}/admin/realms/demo/events?type=TOKEN_EXCHANGE_ERROR&max=100",
        server.base
    );
    for _ in 0..100 {
        let events = server.get(&url, Some(&admin)).await.body;
        let found: Vec<Option<String>> = aliases
            .iter()
            .map(|alias| {
                events.as_array().unwrap().iter().find_map(|e| {
                    (e["details"]["provider"] == *alias)
                        .then(|| e["details"]["jwks_error"].as_str().unwrap_or("").to_owned())
                })
            })
            .collect();
        if found.iter().all(Option::is_some) {
            return found.into_iter().flatten().collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the exchange errors of {aliases:?} were not recorded");
}

#[tokio::test]
async fn internal_jwks_addresses_are_refused_at_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let realm_id = demo_realm_id(dir.path()).await;
    let trap = Trap::new();
    let port = trap.port;
    let cases: Vec<(&str, String, String)> = vec![
        (
            "metadata",
            "https://169.254.169.254/latest/meta-data/jwks".into(),
            format!("JWKS address refused: 169.254.169.254 is a link-local address; {NO_SETTING}"),
        ),
        (
            "loopback",
            format!("https://127.0.0.1:{port}/jwks"),
            format!("JWKS address refused: 127.0.0.1 is a loopback address; {LOOPBACK_HINT}"),
        ),
        (
            "mapped",
            format!("https://[::ffff:127.0.0.1]:{port}/jwks"),
            format!(
                "JWKS address refused: ::ffff:127.0.0.1 is a loopback address; {LOOPBACK_HINT}"
            ),
        ),
        (
            "private",
            "http://10.0.0.1/jwks".into(),
            "JWKS URL refused: HTTPS required (plain HTTP only to loopback addresses, with \
             --allow-http-loopback-jwks (CAMBIO_ALLOW_HTTP_LOOPBACK_JWKS))"
                .into(),
        ),
        // A name is checked on what it resolves to, where the connection is made.
        (
            "named",
            format!("https://localhost:{port}/jwks"),
            format!(
                "JWKS address refused: localhost resolves to 127.0.0.1 is a loopback address; {LOOPBACK_HINT}"
            ),
        ),
    ];
    let planted: Vec<(&str, String)> = cases.iter().map(|(a, u, _)| (*a, u.clone())).collect();
    plant_providers(dir.path(), &realm_id, &planted).await;

    let server = server_in(dir.path(), false).await;
    let aliases: Vec<&str> = cases.iter().map(|(alias, _, _)| *alias).collect();
    for alias in &aliases {
        exchange_is_refused(&server, alias).await;
    }
    let errors = jwks_errors(&server, &aliases).await;
    for ((alias, url, expected), error) in cases.iter().zip(&errors) {
        assert_eq!(error, expected, "{alias} ({url})");
    }
    assert!(
        !trap.was_connected(),
        "a refused JWKS URL reached the listener"
    );
}

#[tokio::test]
async fn development_flag_opens_loopback_only() {
    let dir = tempfile::tempdir().unwrap();
    let realm_id = demo_realm_id(dir.path()).await;
    let trap = Trap::new();
    let port = trap.port;
    let refused: Vec<(&str, String, String)> = vec![
        (
            "metadata",
            "https://169.254.169.254/latest/meta-data/jwks".into(),
            format!("JWKS address refused: 169.254.169.254 is a link-local address; {NO_SETTING}"),
        ),
        (
            "private",
            "http://10.0.0.1/jwks".into(),
            format!("JWKS address refused: 10.0.0.1 is a private address; {NO_SETTING}"),
        ),
        (
            "cgnat",
            "https://100.64.0.1/jwks".into(),
            format!(
                "JWKS address refused: 100.64.0.1 is a shared (carrier-grade NAT) address; {NO_SETTING}"
            ),
        ),
        (
            "nat64",
            "https://[64:ff9b::a9fe:a9fe]/jwks".into(),
            format!(
                "JWKS address refused: 64:ff9b::a9fe:a9fe is a link-local address; {NO_SETTING}"
            ),
        ),
        (
            "unique-local",
            "https://[fd00::1]/jwks".into(),
            format!("JWKS address refused: fd00::1 is a unique-local address; {NO_SETTING}"),
        ),
        (
            "plain-name",
            "http://idp.partner.example/jwks".into(),
            "JWKS URL refused: plain HTTP is allowed only to loopback addresses".into(),
        ),
    ];
    let mut planted: Vec<(&str, String)> =
        refused.iter().map(|(a, u, _)| (*a, u.clone())).collect();
    planted.push(("named", format!("https://localhost:{port}/jwks")));
    plant_providers(dir.path(), &realm_id, &planted).await;

    let server = server_in(dir.path(), true).await;
    let aliases: Vec<&str> = refused.iter().map(|(alias, _, _)| *alias).collect();
    for alias in &aliases {
        exchange_is_refused(&server, alias).await;
    }
    let errors = jwks_errors(&server, &aliases).await;
    for ((alias, url, expected), error) in refused.iter().zip(&errors) {
        assert_eq!(error, expected, "{alias} ({url})");
    }
    assert!(
        !trap.was_connected(),
        "an internal address was connected to"
    );

    // Loopback through a name is allowed now: the fetch reaches the listener (which speaks no
    // TLS, so the fetch then fails, and the reason is not a refusal).
    let accepted = tokio::net::TcpListener::from_std(trap.listener).unwrap();
    let reached = tokio::spawn(async move {
        // Dropping the connection at once makes the TLS handshake fail without waiting.
        accepted.accept().await.map(drop).is_ok()
    });
    exchange_is_refused(&server, "named").await;
    assert!(
        reached.await.unwrap(),
        "the loopback listener was not reached"
    );
    let named = jwks_errors(&server, &["named"]).await;
    assert!(named[0].starts_with("JWKS fetch failed"), "{}", named[0]);
}

#[tokio::test]
async fn registration_refuses_internal_jwks_addresses() {
    let plain = TestServer::start().await;
    let mut config = demo_config();
    config.allow_http_loopback_jwks = true;
    let development = TestServer::start_with(config).await;
    let cases: [(&TestServer, &str, &str, Option<String>); 9] = [
        (
            &plain,
            "metadata",
            "https://169.254.169.254/latest/meta-data/jwks",
            Some(format!(
                "JWKS address refused: 169.254.169.254 is a link-local address; {NO_SETTING}"
            )),
        ),
        (
            &plain,
            "loopback",
            "https://127.0.0.1:8443/jwks",
            Some(format!(
                "JWKS address refused: 127.0.0.1 is a loopback address; {LOOPBACK_HINT}"
            )),
        ),
        (
            &plain,
            "mapped",
            "https://[::ffff:127.0.0.1]:8443/jwks",
            Some(format!(
                "JWKS address refused: ::ffff:127.0.0.1 is a loopback address; {LOOPBACK_HINT}"
            )),
        ),
        (
            &plain,
            "named",
            "https://localhost:8443/jwks",
            Some(format!(
                "JWKS address refused: localhost resolves to 127.0.0.1 is a loopback address; \
                 {LOOPBACK_HINT}"
            )),
        ),
        (
            &plain,
            "private",
            "http://10.0.0.1/jwks",
            Some(
                "JWKS URL refused: HTTPS required (plain HTTP only to loopback addresses, with \
                 --allow-http-loopback-jwks (CAMBIO_ALLOW_HTTP_LOOPBACK_JWKS))"
                    .into(),
            ),
        ),
        (
            &development,
            "private",
            "https://10.0.0.1/jwks",
            Some(format!(
                "JWKS address refused: 10.0.0.1 is a private address; {NO_SETTING}"
            )),
        ),
        (
            &development,
            "loopback",
            "https://127.0.0.1:8443/jwks",
            None,
        ),
        (&development, "named", "https://localhost:8443/jwks", None),
        (&plain, "public", "https://idp.partner.example/jwks", None),
    ];
    for (server, alias, url, expected) in cases {
        let admin = server.admin_token().await;
        let response = server
            .http
            .post(format!(
                "{}/admin/realms/demo/identity-provider/instances",
                server.base
            ))
            .bearer_auth(&admin)
            .json(&json!({
                "alias": alias, "providerId": "oidc", "enabled": true,
                "config": provider_config(alias, url),
            }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match expected {
            Some(message) => {
                assert_eq!(status, 400, "{url}: {body}");
                assert_eq!(body["errorMessage"], message.as_str(), "{url}");
            }
            None => assert_eq!(status, 201, "{url}: {body}"),
        }
    }
}
