//! Where the SDK sends credentials (issue 19, rule 8): HTTPS only, except loopback; the
//! discovery document names its issuer and only endpoints on the issuer's origin; the browser
//! login listener waits out stray and idle connections for the real redirect.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cambio_client::{Client, Error};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::harness::TestServer;
use crate::login::submit_login_form;

const PLAIN_HTTP_REFUSED: &str = "is not HTTPS: plain HTTP is allowed only to 127.0.0.1, [::1] \
     or localhost, so that no secret, password or token crosses a network in clear";

#[tokio::test]
async fn plain_http_issuer_on_another_host_is_refused_before_any_request() {
    // `.invalid` never resolves (RFC 2606): had the SDK tried a lookup or a connection, the
    // error would be an HTTP error, not this one.
    for issuer in [
        "http://example.invalid/realms/demo",
        "http://127.0.0.1.example.invalid/realms/demo",
        "http://localhost.example.invalid:8080/realms/demo",
    ] {
        let error = Client::builder(issuer, "sdk-app")
            .client_secret("sdk-secret")
            .build()
            .await
            .unwrap_err();
        let Error::Config(message) = &error else {
            panic!("{issuer}: {error:?}");
        };
        assert_eq!(message, &format!("issuer {issuer} {PLAIN_HTTP_REFUSED}"));
    }
    let error = Client::builder("https://user:pw@example.invalid/realms/demo", "sdk-app")
        .build()
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "configuration: issuer https://user:pw@example.invalid/realms/demo must not carry \
         credentials"
    );
}

#[tokio::test]
async fn loopback_issuers_over_plain_http_work() {
    let s = TestServer::start().await;
    assert!(s.issuer().starts_with("http://127.0.0.1:"));
    let client = s.alice().await;
    assert!(client.is_logged_in().await);
}

/// A stand-in for a server whose discovery document was tampered with: it serves `doc` for
/// every request and counts the requests.
async fn serve_document(
    doc: impl Fn(&str) -> Value + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let body = doc(&base).to_string();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            counted.fetch_add(1, Ordering::SeqCst);
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    (base, requests)
}

#[tokio::test]
async fn discovery_endpoints_must_be_https_on_the_issuers_origin() {
    let s = TestServer::start().await;
    let real: Value = s
        .http
        .get(format!("{}/.well-known/openid-configuration", s.issuer()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // (field, value with {base} for the stand-in's own origin, expected error)
    let cases = [
        (
            "token_endpoint",
            "http://idp.example/token".to_owned(),
            format!("token_endpoint http://idp.example/token {PLAIN_HTTP_REFUSED}"),
        ),
        (
            "token_endpoint",
            "https://idp.example/token".to_owned(),
            "the discovery document's token_endpoint https://idp.example/token is not on the \
             issuer's origin {base}"
                .to_owned(),
        ),
        (
            "revocation_endpoint",
            "http://127.0.0.1:1/revoke".to_owned(),
            "the discovery document's revocation_endpoint http://127.0.0.1:1/revoke is not on \
             the issuer's origin {base}"
                .to_owned(),
        ),
        (
            "jwks_uri",
            "http://localhost:1/certs".to_owned(),
            "the discovery document's jwks_uri http://localhost:1/certs is not on the \
             issuer's origin {base}"
                .to_owned(),
        ),
        (
            "authorization_endpoint",
            "javascript:alert(1)".to_owned(),
            format!("authorization_endpoint javascript:alert(1) {PLAIN_HTTP_REFUSED}"),
        ),
        // The issuer check (OpenID Connect Discovery §4.3) holds as before.
        (
            "issuer",
            "https://idp.example/realms/demo".to_owned(),
            "discovery names issuer https://idp.example/realms/demo instead of {base}/realms/demo"
                .to_owned(),
        ),
    ];
    for (field, value, expected) in cases {
        let tampered = real.clone();
        let (base, requests) = serve_document(move |base| {
            let mut doc = tampered.clone();
            for (name, v) in doc.as_object_mut().unwrap() {
                if let Some(url) = v.as_str()
                    && url.starts_with("http")
                {
                    let own = url.replace(&real_base(url), base);
                    *v = Value::String(own);
                }
                if name == field {
                    *v = Value::String(value.clone());
                }
            }
            doc
        })
        .await;
        let error = Client::builder(format!("{base}/realms/demo"), "sdk-app")
            .client_secret("sdk-secret")
            .build()
            .await
            .unwrap_err();
        let Error::Config(message) = &error else {
            panic!("{field}: {error:?}");
        };
        assert_eq!(message, &expected.replace("{base}", &base), "{field}");
        // Only the discovery document was asked for: no credentials went anywhere.
        assert_eq!(requests.load(Ordering::SeqCst), 1, "{field}");
    }
}

/// The scheme, host and port of `url`.
fn real_base(url: &str) -> String {
    let parsed = url::Url::parse(url).unwrap();
    parsed.origin().ascii_serialization()
}

#[tokio::test]
async fn browser_listener_waits_out_stray_and_idle_connections() {
    let s = TestServer::start().await;
    let client = s.sdk_app().build().await.unwrap();
    let login = client.browser_login(None).await.unwrap();
    let url = login.authorization_url().to_owned();
    let redirect = login.redirect_uri().to_owned();
    let listener = url::Url::parse(&redirect).unwrap();
    let address = format!(
        "{}:{}",
        listener.host_str().unwrap(),
        listener.port().unwrap()
    );
    // Less than the 10 s a silent connection is given to send its request: a listener that
    // served one connection at a time would still be waiting on the idle one below.
    let finished = tokio::spawn(login.finish(Duration::from_secs(8)));

    // A browser's preconnect that never sends anything, held open until the end.
    let idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    let origin = real_base(&redirect);
    let favicon = s
        .http
        .get(format!("{origin}/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(favicon.status(), 404);
    for stray in [
        format!("{redirect}?code=forged&state=another"),
        format!("{redirect}?code=forged"),
        format!("{redirect}?error=access_denied&state=another"),
    ] {
        let answer = s.http.get(&stray).send().await.unwrap();
        assert_eq!(answer.status(), 400, "{stray}");
    }
    // Not a GET: answered 400 and ignored as well.
    let posted = s.http.post(&redirect).send().await.unwrap();
    assert_eq!(posted.status(), 400);

    // The real redirect still completes the login.
    let location = submit_login_form(&s.http, &url, "alice", "alice").await;
    let landed = s.http.get(&location).send().await.unwrap();
    assert_eq!(landed.status(), 200);
    finished.await.unwrap().unwrap();
    drop(idle);
    let claims = client.access_token_claims().await.unwrap();
    assert_eq!(claims["preferred_username"], "alice");
    // The listener is gone with the login: a second redirect finds nobody.
    assert!(s.http.get(&location).send().await.is_err());
}
