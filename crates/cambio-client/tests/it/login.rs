//! The ways in: password, browser (code + PKCE), client credentials, private_key_jwt, and
//! restoring from a file store.

use std::sync::Arc;
use std::time::Duration;

use cambio_client::{Client, Error, ExchangeRequest, FileTokenStore, TokenStore};
use serde_json::json;

use crate::harness::TestServer;

#[tokio::test]
async fn wrong_credentials_keep_the_servers_error() {
    let s = TestServer::start().await;
    let client = s.sdk_app().build().await.unwrap();
    let error = client.login_password("alice", "wrong").await.unwrap_err();
    let Error::OAuth(oauth) = &error else {
        panic!("{error:?}");
    };
    assert_eq!(oauth.status, 400, "{error}");
    assert_eq!(oauth.error, "invalid_grant");
    assert_eq!(
        oauth.error_description.as_deref(),
        Some("Invalid user credentials")
    );

    let bad_client = Client::builder(s.issuer(), "sdk-app")
        .client_secret("nope")
        .build()
        .await
        .unwrap();
    let error = bad_client
        .login_password("alice", "alice")
        .await
        .unwrap_err();
    assert_eq!(error.oauth().unwrap().error, "invalid_client", "{error}");
}

#[tokio::test]
async fn discovery_must_name_the_issuer() {
    let s = TestServer::start().await;
    let error = Client::builder(format!("{}/realms/nope", s.base), "sdk-app")
        .build()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error:?}");
}

#[tokio::test]
async fn browser_login_with_pkce_and_a_loopback_redirect() {
    let s = TestServer::start().await;
    // The demo realm registers `http://127.0.0.1/*`; the loopback port is ignored (RFC 8252).
    let client = s.sdk_app().build().await.unwrap();
    let login = client.browser_login(Some("openid")).await.unwrap();
    let url = login.authorization_url().to_owned();
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    assert!(login.redirect_uri().starts_with("http://127.0.0.1:"));
    let finished = tokio::spawn(login.finish(Duration::from_secs(30)));

    // The user's browser: the login page, the form, the redirect to the loopback listener.
    let page = s.http.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200, "{url} {:?}", page.text().await);
    let location = submit_login_form(&s.http, &url, "alice", "alice").await;
    let landed = s.http.get(&location).send().await.unwrap();
    assert_eq!(landed.status(), 200);
    finished.await.unwrap().unwrap();

    let token = client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    assert!(!token.token().is_empty());
    let claims = client.access_token_claims().await.unwrap();
    assert_eq!(claims["preferred_username"], "alice");
}

/// Posts the server's login form (its fields are the authorization request's, plus the
/// browser binding of the page, sent back with the page's cookie) and returns the redirect's
/// `Location`.
pub async fn submit_login_form(
    http: &reqwest::Client,
    url: &str,
    username: &str,
    password: &str,
) -> String {
    let page = http.get(url).send().await.unwrap();
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = page.text().await.unwrap();
    let marker = "name=\"browser_binding\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let binding = html[start..start + html[start..].find('"').unwrap()].to_owned();
    let parsed = url::Url::parse(url).unwrap();
    let mut form: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    form.push(("username".into(), username.into()));
    form.push(("password".into(), password.into()));
    form.push(("browser_binding".into(), binding));
    let response = http
        .post(url)
        .header("cookie", cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    response.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_browser_login_that_is_refused_or_abandoned_fails() {
    let s = TestServer::start().await;
    let client = s.sdk_app().build().await.unwrap();
    let login = client.browser_login(None).await.unwrap();
    let redirect = login.redirect_uri().to_owned();
    let state = url::Url::parse(login.authorization_url())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let finished = tokio::spawn(login.finish(Duration::from_secs(30)));
    // A stray request with another state is answered and ignored...
    let stray = s
        .http
        .get(format!("{redirect}?code=x&state=other"))
        .send()
        .await
        .unwrap();
    assert_eq!(stray.status(), 400);
    // ...an error redirect with the right state ends the login.
    let denied = s
        .http
        .get(format!(
            "{redirect}?error=access_denied&error_description=no&state={state}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 200);
    let error = finished.await.unwrap().unwrap_err();
    assert_eq!(error.to_string(), "browser login: access_denied: no");
    assert!(!client.is_logged_in().await);

    let timeout = client
        .browser_login(None)
        .await
        .unwrap()
        .finish(Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(timeout, Error::BrowserLogin(_)), "{timeout:?}");
}

#[tokio::test]
async fn client_credentials_sessions_renew_by_logging_in_again() {
    let s = TestServer::start().await;
    let client = Client::builder(s.issuer(), "requester-client")
        .client_secret("requester-secret")
        .build()
        .await
        .unwrap();
    client.login_client_credentials().await.unwrap();
    let claims = client.access_token_claims().await.unwrap();
    assert_eq!(claims["azp"], "requester-client");
    assert_eq!(s.count("CLIENT_LOGIN").await, 2);
}

#[tokio::test]
async fn private_key_jwt_client_authentication() {
    let s = TestServer::start().await;
    let key = cambio_client::SigningKey::generate(cambio_jose::Algorithm::Es256).unwrap();
    let jwks = serde_json::to_string(&cambio_jose::JwkSet {
        keys: vec![key.public_jwk()],
    })
    .unwrap();
    let created = s
        .http
        .post(format!("{}/admin/realms/demo/clients", s.base))
        .bearer_auth(s.admin_token().await)
        .json(&json!({
            "clientId": "jwt-client",
            "clientAuthenticatorType": "client-jwt",
            "serviceAccountsEnabled": true,
            "standardFlowEnabled": false,
            "attributes": {"jwks.string": jwks},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let client = Client::builder(s.issuer(), "jwt-client")
        .private_key(key)
        .build()
        .await
        .unwrap();
    client.login_client_credentials().await.unwrap();
    // A second grant needs a second assertion (each `jti` is accepted once).
    let claims = client.access_token_claims().await.unwrap();
    assert_eq!(claims["azp"], "jwt-client");
}

#[tokio::test]
async fn a_file_store_keeps_the_session_between_runs() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("session.json");
    let store = Arc::new(FileTokenStore::new(&path));
    let first_run = s
        .sdk_app()
        .token_store(store.clone())
        .build()
        .await
        .unwrap();
    first_run.login_password("alice", "alice").await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("sdk-app"), "{text}");
    drop(first_run);

    let second_run = s
        .sdk_app()
        .token_store(store.clone())
        .build()
        .await
        .unwrap();
    second_run.restore().await.unwrap();
    second_run
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    // Another client may not pick up this client's token.
    let other = Client::builder(s.issuer(), "subject-client")
        .client_secret("subject-secret")
        .token_store(store.clone())
        .build()
        .await
        .unwrap();
    assert!(other.restore().await.unwrap_err().is_login_required());

    second_run.logout().await.unwrap();
    assert!(!path.exists());
    assert!(store.load().unwrap().is_none());
    let third_run = s.sdk_app().token_store(store).build().await.unwrap();
    assert!(third_run.restore().await.unwrap_err().is_login_required());
}
