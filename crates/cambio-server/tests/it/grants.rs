//! The grants that produce tokens: client credentials, password, refresh token and
//! authorization code with PKCE.

use base64::Engine as _;
use serde_json::json;

use crate::*;

const INVALID_CLIENT: &str = "Invalid client or Invalid client credentials";
const REQUESTER: Option<(&str, &str)> = Some(("requester-client", "requester-secret"));
const SUBJECT: Option<(&str, &str)> = Some(("subject-client", "subject-secret"));

fn cc() -> [(&'static str, &'static str); 1] {
    [("grant_type", "client_credentials")]
}

// ---------------------------------------------------------------------------------------------
// client_credentials

#[tokio::test]
async fn client_credentials_issues_a_service_account_token() {
    let s = TestServer::start().await;
    let r = s.token(&cc(), REQUESTER).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(header_value(&r, "cache-control"), "no-store");
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 300);
    assert_eq!(r.body["scope"], "email profile");
    for absent in ["refresh_token", "id_token", "session_state"] {
        assert!(r.body.get(absent).is_none(), "{absent} in {}", r.text);
    }
    // As Keycloak answers: no refresh token, so 0.
    assert_eq!(r.body["refresh_expires_in"], 0);
    let token = r.access_token();
    let c = claims(&token);
    assert_eq!(c["azp"], "requester-client");
    assert_eq!(c["client_id"], "requester-client");
    assert_eq!(c["typ"], "Bearer");
    assert_eq!(c["iss"], s.realm_url("demo"));
    assert_eq!(c["preferred_username"], "service-account-requester-client");
    assert!(c.get("sid").is_none(), "{c}");
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 300);
    // The subject is the service account user.
    let i = s.introspect(&token).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["username"], "service-account-requester-client");
    assert_eq!(i["sub"], c["sub"]);
    assert!(!c["sub"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn client_credentials_refused_without_service_account() {
    let s = TestServer::start().await;
    s.token(&cc(), SUBJECT).await.assert_error(
        400,
        "unauthorized_client",
        "Client not enabled to retrieve service account",
    );
}

#[tokio::test]
async fn client_credentials_wrong_secret_basic_is_401_with_challenge() {
    let s = TestServer::start().await;
    let r = s.token(&cc(), Some(("requester-client", "wrong"))).await;
    r.assert_error(401, "invalid_client", INVALID_CLIENT);
    assert_eq!(
        header_value(&r, "www-authenticate"),
        "Basic realm=\"cambio\""
    );
    assert_eq!(header_value(&r, "cache-control"), "no-store");
}

#[tokio::test]
async fn client_credentials_wrong_secret_post_is_401() {
    let s = TestServer::start().await;
    let r = s
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "requester-client"),
                ("client_secret", "requester-secreT"),
            ],
            None,
        )
        .await;
    r.assert_error(401, "invalid_client", INVALID_CLIENT);
    // No Basic challenge for a client that did not use Basic.
    assert!(r.headers.get("www-authenticate").is_none());
}

#[tokio::test]
async fn client_credentials_post_secret_works() {
    let s = TestServer::start().await;
    let r = s
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "requester-client"),
                ("client_secret", "requester-secret"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(claims(&r.access_token())["azp"], "requester-client");
}

#[tokio::test]
async fn basic_credentials_are_form_url_decoded() {
    let s = TestServer::start().await;
    // RFC 6749 §2.3.1: both parts are form-url-encoded before base64, so `%2D` is `-`.
    let raw = "requester%2Dclient:requester%2Dsecret";
    let authorization = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    let r = s
        .post_form_auth(&s.oidc("demo", "token"), &cc(), &authorization)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(claims(&r.access_token())["azp"], "requester-client");
    // Not decoded twice: `%252D` is the literal `%2D`, which is the wrong secret.
    let raw = "requester-client:requester%252Dsecret";
    let authorization = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    );
    let r = s
        .post_form_auth(&s.oidc("demo", "token"), &cc(), &authorization)
        .await;
    r.assert_error(401, "invalid_client", INVALID_CLIENT);
}

#[tokio::test]
async fn malformed_basic_header_is_invalid_client() {
    let s = TestServer::start().await;
    let r = s
        .post_form_auth(&s.oidc("demo", "token"), &cc(), "Basic !!!not-base64")
        .await;
    r.assert_error(
        401,
        "invalid_client",
        "Malformed Basic authorization header",
    );
    assert_eq!(
        header_value(&r, "www-authenticate"),
        "Basic realm=\"cambio\""
    );
}

#[tokio::test]
async fn two_client_authentication_methods_are_refused() {
    let s = TestServer::start().await;
    let r = s
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", "requester-secret"),
            ],
            REQUESTER,
        )
        .await;
    r.assert_error(
        400,
        "invalid_request",
        "More than one client authentication method was used",
    );
    // A form client_id that contradicts the Basic header is refused too.
    let r = s
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "orders-api"),
            ],
            REQUESTER,
        )
        .await;
    r.assert_error(
        400,
        "invalid_request",
        "client_id does not match the Authorization header",
    );
}

#[tokio::test]
async fn unknown_client_is_401() {
    let s = TestServer::start().await;
    let r = s.token(&cc(), Some(("no-such-client", "secret"))).await;
    r.assert_error(401, "invalid_client", INVALID_CLIENT);
    assert_eq!(
        header_value(&r, "www-authenticate"),
        "Basic realm=\"cambio\""
    );
    let r = s
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "no-such-client"),
                ("client_secret", "secret"),
            ],
            None,
        )
        .await;
    r.assert_error(401, "invalid_client", INVALID_CLIENT);
}

#[tokio::test]
async fn missing_client_credentials() {
    let s = TestServer::start().await;
    // No client at all: the server answers 400 (there was no authentication attempt to fail).
    s.token(&cc(), None).await.assert_error(
        400,
        "invalid_client",
        "Parameter 'client_id' required",
    );
    // A confidential client naming itself without a secret.
    s.token(
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "requester-client"),
        ],
        None,
    )
    .await
    .assert_error(401, "invalid_client", "Client authentication required");
    // A secret without a client_id.
    s.token(
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", "requester-secret"),
        ],
        None,
    )
    .await
    .assert_error(400, "invalid_request", "Parameter 'client_id' required");
}

// ---------------------------------------------------------------------------------------------
// password

#[tokio::test]
async fn password_grant_with_openid() {
    let s = TestServer::start().await;
    let r = s.alice(Some("openid")).await;
    assert_eq!(header_value(&r, "cache-control"), "no-store");
    assert_eq!(header_value(&r, "pragma"), "no-cache");
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["scope"], "openid email profile");
    assert_eq!(r.body["expires_in"], 300);
    assert_eq!(r.body["refresh_expires_in"], 1800);
    assert!(
        r.body["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{}",
        r.text
    );

    let access = r.access_token();
    assert_eq!(header(&access)["typ"], "at+jwt");
    let a = claims(&access);
    assert_eq!(a["iss"], s.realm_url("demo"));
    assert_eq!(a["azp"], "subject-client");
    assert_eq!(a["typ"], "Bearer");
    assert_eq!(a["scope"], "openid email profile");
    assert_eq!(a["preferred_username"], "alice");
    assert_eq!(a["email"], "alice@example.com");
    assert_eq!(a["email_verified"], true);
    assert_eq!(a["name"], "Alice Liddell");
    // Audience: the mapper's requester-client and the clients whose roles alice holds.
    assert_eq!(
        strings(&a["aud"]),
        ["billing-api", "orders-api", "requester-client"]
    );
    assert_eq!(
        strings(&a["resource_access"]["orders-api"]["roles"]),
        ["view-orders"]
    );
    assert_eq!(
        strings(&a["resource_access"]["billing-api"]["roles"]),
        ["view-invoices"]
    );
    assert_eq!(
        strings(&a["realm_access"]["roles"]),
        ["offline_access", "uma_authorization"]
    );
    let sid = a["sid"].as_str().expect("sid").to_owned();
    assert_eq!(r.body["session_state"], sid.as_str());
    assert_eq!(a["auth_time"], a["iat"]);

    let id_token = r.body["id_token"].as_str().expect("id_token");
    let h = header(id_token);
    assert_eq!(h["typ"], "JWT");
    assert_eq!(h["alg"], "ES256");
    assert_eq!(h["kid"], header(&access)["kid"]);
    let i = claims(id_token);
    assert_eq!(i["aud"], "subject-client");
    assert_eq!(i["azp"], "subject-client");
    assert_eq!(i["typ"], "ID");
    assert_eq!(i["sub"], a["sub"]);
    assert_eq!(i["sid"], sid.as_str());
    assert_eq!(i["iss"], s.realm_url("demo"));
    assert_eq!(i["preferred_username"], "alice");
    assert!(i.get("nonce").is_none(), "{i}");
    assert_ne!(i["jti"], a["jti"]);
}

#[tokio::test]
async fn password_grant_without_openid_has_no_id_token() {
    let s = TestServer::start().await;
    let r = s.alice(None).await;
    assert!(r.body.get("id_token").is_none(), "{}", r.text);
    assert_eq!(r.body["scope"], "email profile");
    assert!(r.body["refresh_token"].is_string());
}

#[tokio::test]
async fn password_grant_bad_credentials() {
    let s = TestServer::start().await;
    let form = |user: &'static str, password: &'static str| {
        [
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ]
    };
    // Keycloak answers 401 here, and its clients rely on it.
    s.token(&form("alice", "wrong"), SUBJECT)
        .await
        .assert_error(400, "invalid_grant", "Invalid user credentials");
    // An unknown user gets exactly the same answer.
    s.token(&form("nobody", "alice"), SUBJECT)
        .await
        .assert_error(400, "invalid_grant", "Invalid user credentials");
    // Usernames are case-insensitive.
    let r = s.token(&form("ALICE", "alice"), SUBJECT).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(claims(&r.access_token())["preferred_username"], "alice");
}

#[tokio::test]
async fn password_grant_missing_parameters() {
    let s = TestServer::start().await;
    s.token(
        &[("grant_type", "password"), ("username", "alice")],
        SUBJECT,
    )
    .await
    .assert_error(400, "invalid_request", "Parameter 'password' required");
    s.token(
        &[("grant_type", "password"), ("password", "alice")],
        SUBJECT,
    )
    .await
    .assert_error(400, "invalid_request", "Parameter 'username' required");
}

#[tokio::test]
async fn password_grant_refused_for_client_without_direct_grants() {
    let s = TestServer::start().await;
    let r = s
        .token(
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice"),
            ],
            REQUESTER,
        )
        .await;
    r.assert_error(
        400,
        "unauthorized_client",
        "Client not allowed for direct access grants",
    );
}

#[tokio::test]
async fn password_grant_accepts_python_keycloak_empty_parameters() {
    let s = TestServer::start().await;
    let body = "grant_type=password&client_id=subject-client&client_secret=subject-secret\
                &username=alice&password=alice&scope=openid&code=&redirect_uri=";
    let r = s
        .post_raw(
            &s.oidc("demo", "token"),
            "application/x-www-form-urlencoded",
            body.into(),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["id_token"].is_string(), "{}", r.text);
    assert_eq!(claims(&r.access_token())["preferred_username"], "alice");
}

#[tokio::test]
async fn password_grant_unknown_scope() {
    let s = TestServer::start().await;
    let r = s
        .token(
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice"),
                ("scope", "openid bogus"),
            ],
            SUBJECT,
        )
        .await;
    r.assert_error(400, "invalid_scope", "Invalid scopes: bogus");
}

#[tokio::test]
async fn token_endpoint_request_errors() {
    let s = TestServer::start().await;
    let url = s.oidc("demo", "token");
    let form_type = "application/x-www-form-urlencoded";

    s.token(&[("grant_type", "implicit")], SUBJECT)
        .await
        .assert_error(400, "unsupported_grant_type", "Unsupported grant_type");

    s.token(&[("username", "alice"), ("password", "alice")], SUBJECT)
        .await
        .assert_error(400, "invalid_request", "Parameter 'grant_type' required");

    s.token(
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("username", "bob"),
            ("password", "alice"),
        ],
        SUBJECT,
    )
    .await
    .assert_error(400, "invalid_request", "Parameter 'username' is repeated");

    let json = json!({"grant_type": "client_credentials"}).to_string();
    s.post_raw(&url, "application/json", json, REQUESTER)
        .await
        .assert_error(
            400,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );

    // A form with a charset parameter is still a form.
    let r = s
        .post_raw(
            &url,
            "application/x-www-form-urlencoded; charset=UTF-8",
            "grant_type=client_credentials".into(),
            REQUESTER,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Over 64 KiB: refused as a bad request, not 413 or 500.
    let big = format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(70 * 1024)
    );
    s.post_raw(&url, form_type, big, REQUESTER)
        .await
        .assert_error(
            400,
            "invalid_request",
            "Request body is too large or unreadable",
        );
    // Just under the limit is fine.
    let fits = format!(
        "grant_type=client_credentials&pad={}",
        "a".repeat(60 * 1024)
    );
    let r = s.post_raw(&url, form_type, fits, REQUESTER).await;
    assert_eq!(r.status, 200, "{}", r.text);

    s.post_raw(
        &url,
        form_type,
        "grant_type=client_credentials&x=%FF".into(),
        REQUESTER,
    )
    .await
    .assert_error(400, "invalid_request", "Request body is not valid UTF-8");

    let r = s.token(&cc(), None).await;
    assert_eq!(r.error(), "invalid_client");
    assert_eq!(
        s.post_form(&s.oidc("nowhere", "token"), &cc(), REQUESTER)
            .await
            .status,
        404
    );
}

// ---------------------------------------------------------------------------------------------
// refresh_token

#[tokio::test]
async fn refresh_rotates_and_reuse_ends_the_session() {
    let s = TestServer::start().await;
    let login = s.alice(None).await;
    let first = login.body["refresh_token"].as_str().unwrap().to_owned();
    let sid = claims(&login.access_token())["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = s.refresh(&first).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let second = r.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(r.body["session_state"], sid.as_str());
    let refreshed_access = r.access_token();
    let c = claims(&refreshed_access);
    assert_eq!(c["sid"], sid.as_str());
    assert_eq!(c["preferred_username"], "alice");
    assert_eq!(c["scope"], "email profile");
    assert_ne!(c["jti"], claims(&login.access_token())["jti"]);
    assert_eq!(s.introspect(&refreshed_access).await["active"], true);

    // The rotated-out token comes back: someone holds a copy, the session ends.
    s.refresh(&first).await.assert_error(
        400,
        "invalid_grant",
        "Maximum allowed refresh token reuse exceeded",
    );
    s.refresh(&second)
        .await
        .assert_error(400, "invalid_grant", "Session not active");
    assert_eq!(
        s.introspect(&refreshed_access).await,
        json!({"active": false})
    );
    assert_eq!(
        s.introspect(&login.access_token()).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn refresh_by_another_client_does_not_burn_the_token() {
    let s = TestServer::start().await;
    let login = s.alice(None).await;
    let refresh = login.body["refresh_token"].as_str().unwrap();
    let r = s
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
            REQUESTER,
        )
        .await;
    r.assert_error(
        400,
        "invalid_grant",
        "Invalid refresh token. Token client and authorized client don't match",
    );
    // The owner can still use it, once.
    let r = s.refresh(refresh).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn refresh_with_garbage() {
    let s = TestServer::start().await;
    s.refresh("not-a-refresh-token").await.assert_error(
        400,
        "invalid_grant",
        "Invalid refresh token",
    );
    s.refresh(&"x".repeat(600))
        .await
        .assert_error(400, "invalid_grant", "Invalid refresh token");
    // A JWT access token is not a refresh token.
    let access = s.service_token().await.access_token();
    s.refresh(&access)
        .await
        .assert_error(400, "invalid_grant", "Invalid refresh token");
    s.token(&[("grant_type", "refresh_token")], SUBJECT)
        .await
        .assert_error(400, "invalid_request", "Parameter 'refresh_token' required");
}

#[tokio::test]
async fn refresh_may_narrow_but_not_widen_scope() {
    let s = TestServer::start().await;
    let login = s.alice(None).await;
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    let r = s
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("scope", "openid"),
            ],
            SUBJECT,
        )
        .await;
    r.assert_error(
        400,
        "invalid_scope",
        "Invalid scopes: scope exceeds the original grant",
    );
    let r = s
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("scope", "email phone"),
            ],
            SUBJECT,
        )
        .await;
    r.assert_error(
        400,
        "invalid_scope",
        "Invalid scopes: scope exceeds the original grant",
    );
    // A refused request does not burn the token: the same token narrows the scope.
    let r = s
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("scope", "email"),
            ],
            SUBJECT,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["scope"], "email");
    let c = claims(&r.access_token());
    assert_eq!(c["scope"], "email");
    assert_eq!(c["email"], "alice@example.com");
    assert!(c.get("preferred_username").is_none(), "{c}");
}

#[tokio::test]
async fn offline_token_survives_logout_of_online_session() {
    let s = TestServer::start().await;
    let offline = s.alice(Some("offline_access")).await;
    assert_eq!(offline.body["scope"], "email offline_access profile");
    assert_eq!(offline.body["refresh_expires_in"], 0);
    let offline_refresh = offline.body["refresh_token"].as_str().unwrap().to_owned();
    let i = s.introspect(&offline_refresh).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["token_type"], "Offline");
    assert_eq!(i["client_id"], "subject-client");

    let online = s.alice(None).await;
    let online_refresh = online.body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(s.introspect(&online_refresh).await["token_type"], "Refresh");
    assert_ne!(
        claims(&online.access_token())["sid"],
        claims(&offline.access_token())["sid"]
    );

    let r = s
        .post_form(
            &s.oidc("demo", "logout"),
            &[("refresh_token", &online_refresh)],
            SUBJECT,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    s.refresh(&online_refresh)
        .await
        .assert_error(400, "invalid_grant", "Session not active");
    assert_eq!(
        s.introspect(&online.access_token()).await,
        json!({"active": false})
    );

    // The offline session is another session and lives on.
    assert_eq!(s.introspect(&offline.access_token()).await["active"], true);
    let r = s.refresh(&offline_refresh).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["refresh_expires_in"], 0);
    let next = r.body["refresh_token"].as_str().unwrap();
    assert_eq!(s.introspect(next).await["token_type"], "Offline");
}

// ---------------------------------------------------------------------------------------------
// authorization_code with PKCE

const REDIRECT: &str = "http://127.0.0.1/cb";

fn auth_params(challenge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", "subject-client".into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "openid".into()),
        ("state", "xyz".into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
        ("nonce", "n1".into()),
    ]
}

fn pairs<'a>(params: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn authorize_get(s: &TestServer, params: &[(&'static str, String)]) -> Reply {
    let url = format!("{}?{}", s.oidc("demo", "auth"), encode_form(&pairs(params)));
    s.get(&url, None).await
}

async fn authorize_post(
    s: &TestServer,
    params: &[(&'static str, String)],
    password: &str,
) -> Reply {
    // The browser fetches the form first: the POST must carry the page's binding.
    let page = authorize_get(s, params).await;
    let binding = BrowserBinding::from_page(&page, None);
    let mut form = pairs(params);
    form.push(("username", "alice"));
    form.push(("password", password));
    binding.post(s, &s.oidc("demo", "auth"), &form).await
}

/// The query of a redirect, as pairs.
fn location_query(r: &Reply) -> (String, Vec<(String, String)>) {
    let location = header_value(r, "location");
    let url = url::Url::parse(location).unwrap_or_else(|e| panic!("{location}: {e}"));
    let base = format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.path()
    );
    (base, url.query_pairs().into_owned().collect())
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Logs alice in at the authorization endpoint and returns the code.
async fn code(s: &TestServer) -> String {
    let r = authorize_post(s, &auth_params(PKCE_CHALLENGE), "alice").await;
    assert_eq!(r.status, 302, "{}", r.text);
    let (base, query) = location_query(&r);
    assert_eq!(base, REDIRECT);
    param(&query, "code").expect("code").to_owned()
}

async fn redeem(s: &TestServer, code: &str, verifier: &str, redirect: &str) -> Reply {
    s.token(
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ],
        SUBJECT,
    )
    .await
}

#[tokio::test]
async fn authorization_code_with_pkce() {
    let s = TestServer::start().await;
    let params = auth_params(PKCE_CHALLENGE);

    let form = authorize_get(&s, &params).await;
    assert_eq!(form.status, 200, "{}", form.text);
    assert!(header_value(&form, "content-type").starts_with("text/html"));
    assert!(
        form.text.contains("<form method=\"post\">"),
        "{}",
        form.text
    );
    assert!(
        form.text
            .contains("<input type=\"hidden\" name=\"state\" value=\"xyz\">")
    );
    assert!(form.text.contains(&format!(
        "<input type=\"hidden\" name=\"code_challenge\" value=\"{PKCE_CHALLENGE}\">"
    )));
    assert!(form.text.contains("name=\"password\" type=\"password\""));
    assert!(form.text.contains("Sign in to Cambio demo"));

    let r = authorize_post(&s, &params, "alice").await;
    assert_eq!(r.status, 302, "{}", r.text);
    let (base, query) = location_query(&r);
    assert_eq!(base, REDIRECT);
    assert_eq!(param(&query, "state"), Some("xyz"));
    assert_eq!(param(&query, "iss"), Some(s.realm_url("demo").as_str()));
    assert_eq!(query.len(), 3, "{query:?}");
    let code = param(&query, "code").expect("code").to_owned();

    let tokens = redeem(&s, &code, PKCE_VERIFIER, REDIRECT).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    assert_eq!(tokens.body["scope"], "openid email profile");
    assert!(tokens.body["refresh_token"].is_string());
    let access = claims(&tokens.access_token());
    assert_eq!(access["azp"], "subject-client");
    assert_eq!(access["preferred_username"], "alice");
    let id = claims(tokens.body["id_token"].as_str().expect("id_token"));
    assert_eq!(id["nonce"], "n1");
    assert_eq!(id["aud"], "subject-client");
    assert_eq!(id["sub"], access["sub"]);
    assert_eq!(id["sid"], access["sid"]);
    assert_eq!(tokens.body["session_state"], access["sid"]);
    assert!(
        id["auth_time"]
            .as_u64()
            .is_some_and(|t| t <= id["iat"].as_u64().unwrap())
    );

    // The session it created works.
    let refreshed = s
        .refresh(tokens.body["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    // A code is good once; a second use ends what the first one issued (see browser.rs).
    redeem(&s, &code, PKCE_VERIFIER, REDIRECT)
        .await
        .assert_error(400, "invalid_grant", "Code not valid");
    let after_replay = s
        .refresh(refreshed.body["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(after_replay.status, 400, "{}", after_replay.text);
}

#[tokio::test]
async fn authorization_code_wrong_verifier_burns_the_code() {
    let s = TestServer::start().await;
    let code = code(&s).await;
    let wrong = "x".repeat(43);
    redeem(&s, &code, &wrong, REDIRECT).await.assert_error(
        400,
        "invalid_grant",
        "PKCE verification failed",
    );
    redeem(&s, &code, PKCE_VERIFIER, REDIRECT)
        .await
        .assert_error(400, "invalid_grant", "Code not valid");
}

#[tokio::test]
async fn authorization_code_checks_redirect_verifier_and_client() {
    let s = TestServer::start().await;
    let code1 = code(&s).await;
    redeem(&s, &code1, PKCE_VERIFIER, "http://127.0.0.1/other")
        .await
        .assert_error(400, "invalid_grant", "Incorrect redirect_uri");

    let code2 = code(&s).await;
    s.token(
        &[
            ("grant_type", "authorization_code"),
            ("code", &code2),
            ("redirect_uri", REDIRECT),
        ],
        SUBJECT,
    )
    .await
    .assert_error(400, "invalid_grant", "PKCE code verifier not specified");

    let code3 = code(&s).await;
    s.token(
        &[
            ("grant_type", "authorization_code"),
            ("code", &code3),
            ("redirect_uri", REDIRECT),
            ("code_verifier", PKCE_VERIFIER),
        ],
        REQUESTER,
    )
    .await
    .assert_error(400, "invalid_grant", "Code was issued to another client");

    redeem(&s, "made-up-code", PKCE_VERIFIER, REDIRECT)
        .await
        .assert_error(400, "invalid_grant", "Code not valid");
}

#[tokio::test]
async fn authorization_endpoint_errors() {
    let s = TestServer::start().await;

    // An unregistered redirect_uri is shown, never redirected to.
    let mut params = auth_params(PKCE_CHALLENGE);
    params[2].1 = "http://evil.example/cb".into();
    let r = authorize_get(&s, &params).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.headers.get("location").is_none());
    assert!(header_value(&r, "content-type").starts_with("text/html"));
    assert!(r.text.contains("Invalid redirect_uri"), "{}", r.text);
    // The same for the POST, even with good credentials (no password is checked).
    let r = authorize_post(&s, &params, "alice").await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.headers.get("location").is_none());

    // Unknown client, and a client without the standard flow.
    for client in ["nobody", "requester-client"] {
        let mut params = auth_params(PKCE_CHALLENGE);
        params[1].1 = client.into();
        let r = authorize_get(&s, &params).await;
        assert_eq!(r.status, 400, "{client}: {}", r.text);
        assert!(
            r.text.contains(
                "Unknown client or client not allowed to use the authorization code flow"
            )
        );
    }

    // Errors after the redirect URI is trusted go back to it.
    let mut params = auth_params(PKCE_CHALLENGE);
    params[0].1 = "token".into();
    let r = authorize_get(&s, &params).await;
    assert_eq!(r.status, 302, "{}", r.text);
    let (base, query) = location_query(&r);
    assert_eq!(base, REDIRECT);
    assert_eq!(param(&query, "error"), Some("unsupported_response_type"));
    assert_eq!(param(&query, "state"), Some("xyz"));

    let mut params = auth_params(PKCE_CHALLENGE);
    params[6].1 = "plain".into();
    let r = authorize_get(&s, &params).await;
    assert_eq!(r.status, 302, "{}", r.text);
    let (_, query) = location_query(&r);
    assert_eq!(param(&query, "error"), Some("invalid_request"));
    assert_eq!(
        param(&query, "error_description"),
        Some("Invalid code_challenge or code_challenge_method (S256 required)")
    );

    let mut params = auth_params(PKCE_CHALLENGE);
    params[3].1 = "openid bogus".into();
    let r = authorize_get(&s, &params).await;
    assert_eq!(r.status, 302, "{}", r.text);
    let (_, query) = location_query(&r);
    assert_eq!(param(&query, "error"), Some("invalid_scope"));
    assert_eq!(
        param(&query, "error_description"),
        Some("Invalid scopes: bogus")
    );

    // A wrong password shows the form again, with a message.
    let r = authorize_post(&s, &auth_params(PKCE_CHALLENGE), "wrong").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.headers.get("location").is_none());
    assert!(
        r.text
            .contains("<p role=\"alert\">Invalid username or password.</p>"),
        "{}",
        r.text
    );
    assert!(r.text.contains("<form method=\"post\">"));
    assert!(r.text.contains("name=\"nonce\" value=\"n1\""));

    // Realm unknown.
    let url = format!(
        "{}?{}",
        s.oidc("nowhere", "auth"),
        encode_form(&pairs(&auth_params(PKCE_CHALLENGE)))
    );
    assert_eq!(s.get(&url, None).await.status, 404);
}

#[tokio::test]
async fn authorization_form_escapes_parameters() {
    let s = TestServer::start().await;
    let mut params = auth_params(PKCE_CHALLENGE);
    params[4].1 = "\"><script>alert(1)</script>".into();
    let r = authorize_get(&s, &params).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!r.text.contains("<script>"), "{}", r.text);
    assert!(
        r.text
            .contains("value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\"")
    );
}

// ---------------------------------------------------------------------------------------------
// private_key_jwt (RFC 7523 §2.2), with a client created through the admin API

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[tokio::test]
async fn private_key_jwt_client_authentication() {
    let s = TestServer::start().await;
    let key = cambio_jose::SigningKey::generate(cambio_jose::Algorithm::Es256).unwrap();
    let jwks = serde_json::to_string(&cambio_jose::JwkSet {
        keys: vec![key.public_jwk()],
    })
    .unwrap();
    let admin = s.admin_token().await;
    let r = s
        .http
        .post(format!("{}/admin/realms/demo/clients", s.base))
        .bearer_auth(&admin)
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
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    let token_endpoint = s.oidc("demo", "token");
    let issuer = s.realm_url("demo");
    let sign = |key: &cambio_jose::SigningKey, claims: serde_json::Value| {
        key.sign("JWT", &claims).unwrap()
    };
    let claims_for = |jti: &str, aud: serde_json::Value, lifetime: u64| {
        json!({
            "iss": "jwt-client",
            "sub": "jwt-client",
            "aud": aud,
            "jti": jti,
            "iat": now(),
            "exp": now() + lifetime,
        })
    };
    let present = |assertion: String| {
        let s = &s;
        async move {
            s.token(
                &[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", &assertion),
                ],
                None,
            )
            .await
        }
    };
    let invalid = "Invalid client or Invalid client credentials";

    // The token endpoint as audience.
    let good = sign(&key, claims_for("jti-1", json!(token_endpoint), 60));
    let r = present(good.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let c = claims(&r.access_token());
    assert_eq!(c["azp"], "jwt-client");
    assert_eq!(c["preferred_username"], "service-account-jwt-client");
    // An assertion is single use.
    present(good)
        .await
        .assert_error(401, "invalid_client", "Token reuse detected");
    // The issuer as audience, with client_id also in the form.
    let by_issuer = sign(&key, claims_for("jti-2", json!(issuer), 60));
    let r = s
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "jwt-client"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", &by_issuer),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Refused: several audiences, a foreign audience, a long lifetime, another key, another
    // subject, and a client_id that contradicts the assertion.
    let other_key = cambio_jose::SigningKey::generate(cambio_jose::Algorithm::Es256).unwrap();
    for (what, assertion) in [
        (
            "two audiences",
            sign(
                &key,
                claims_for("jti-3", json!([issuer, "https://other.example"]), 60),
            ),
        ),
        (
            "foreign audience",
            sign(
                &key,
                claims_for("jti-4", json!("https://other.example"), 60),
            ),
        ),
        (
            "one hour lifetime",
            sign(&key, claims_for("jti-5", json!(token_endpoint), 3600)),
        ),
        (
            "unregistered key",
            sign(&other_key, claims_for("jti-6", json!(token_endpoint), 60)),
        ),
        ("expired", {
            let mut c = claims_for("jti-7", json!(token_endpoint), 60);
            c["iat"] = json!(now() - 600);
            c["exp"] = json!(now() - 300);
            sign(&key, c)
        }),
        ("not a JWT", "not-a-jwt".to_owned()),
    ] {
        let r = present(assertion).await;
        assert_eq!(
            (r.status.as_u16(), r.error(), r.description()),
            (401, "invalid_client", invalid),
            "{what}: {}",
            r.text
        );
    }
    let mut wrong_sub = claims_for("jti-8", json!(token_endpoint), 60);
    wrong_sub["sub"] = json!("requester-client");
    present(sign(&key, wrong_sub))
        .await
        .assert_error(401, "invalid_client", invalid);
    let ok = sign(&key, claims_for("jti-9", json!(token_endpoint), 60));
    s.token(
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "subject-client"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", &ok),
        ],
        None,
    )
    .await
    .assert_error(401, "invalid_client", invalid);
    // A wrong assertion type is a malformed request.
    s.token(
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:example:other"),
            ("client_assertion", &ok),
        ],
        None,
    )
    .await
    .assert_error(
        400,
        "invalid_request",
        "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    );
    // A private_key_jwt client cannot fall back to a secret, even the one it was given.
    let listed = s
        .get(
            &format!("{}/admin/realms/demo/clients?clientId=jwt-client", s.base),
            Some(&admin),
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let secret = listed.body[0]["secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    s.token(
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "jwt-client"),
            ("client_secret", &secret),
        ],
        None,
    )
    .await
    .assert_error(401, "invalid_client", invalid);
    // And a secret client cannot use an assertion.
    let mut as_requester = claims_for("jti-10", json!(token_endpoint), 60);
    as_requester["iss"] = json!("requester-client");
    as_requester["sub"] = json!("requester-client");
    present(sign(&key, as_requester))
        .await
        .assert_error(401, "invalid_client", invalid);
}
