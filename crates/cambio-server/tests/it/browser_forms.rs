//! The browser forms attacked as an attacker would (issue 19, rules 3 to 5): logout and its
//! confirmation, the login form's binding to the browser, its rate limit, lockout and the
//! bounded password gate.

use std::time::Duration;

use serde_json::{Value, json};

use crate::browser::{
    WEB, WILD_CB, assert_refused_page, assert_secure_html, auth_url, redirect_params, sign_in,
    web_app, web_params,
};
use crate::*;

// ---------------------------------------------------------------------------------------------
// Rule 3: logout

async fn alice_openid(s: &TestServer) -> Reply {
    let r = s
        .token(
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice"),
                ("scope", "openid"),
            ],
            Some(WEB),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r
}

#[tokio::test]
async fn logout_with_an_expired_id_token_hint_ends_the_session() {
    let s = TestServer::start().await;
    web_app(&s).await;
    let admin = s.admin_token().await;
    let list: Value = s
        .http
        .get(format!(
            "{}/admin/realms/demo/clients?clientId=web-app",
            s.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list[0]["id"].as_str().unwrap();
    let r = s
        .http
        .put(format!("{}/admin/realms/demo/clients/{id}", s.base))
        .bearer_auth(&admin)
        .json(&json!({"attributes": {"access.token.lifespan": "1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let tokens = alice_openid(&s).await;
    let id_token = tokens.body["id_token"].as_str().unwrap().to_owned();
    let refresh = tokens.body["refresh_token"].as_str().unwrap().to_owned();
    let exp = claims(&id_token)["exp"].as_u64().unwrap();
    // Past its expiry and the verifier's leeway (5 s).
    while now() < exp + 7 {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let r = s
        .get(
            &format!(
                "{}?{}",
                s.oidc("demo", "logout"),
                encode_form(&[("id_token_hint", &id_token)])
            ),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("You are signed out"), "{}", r.text);
    assert_secure_html(&r);
    assert_eq!(s.introspect(&refresh).await, json!({"active": false}));

    // A hint signed by no key of ours is refused on a page.
    let mut forged = id_token.clone();
    forged.push('A');
    let r = s
        .get(
            &format!(
                "{}?{}",
                s.oidc("demo", "logout"),
                encode_form(&[("id_token_hint", &forged)])
            ),
            None,
        )
        .await;
    assert_refused_page(&r, "Invalid id_token_hint");
}

#[tokio::test]
async fn logout_without_a_hint_or_with_another_clients_hint_asks_first() {
    let s = TestServer::start().await;
    web_app(&s).await;
    let tokens = alice_openid(&s).await;
    let id_token = tokens.body["id_token"].as_str().unwrap().to_owned();
    let refresh = tokens.body["refresh_token"].as_str().unwrap().to_owned();
    let logout = s.oidc("demo", "logout");

    // No hint: a confirmation page, nothing ended.
    let r = s.get(&logout, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("Do you want to sign out?"), "{}", r.text);
    assert_secure_html(&r);

    // The hint of web-app, presented for subject-client: a page; the session lives on.
    let query = encode_form(&[
        ("id_token_hint", &id_token),
        ("client_id", "subject-client"),
    ]);
    let page = s.get(&format!("{logout}?{query}"), None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains("action=\"logout/logout-confirm\""),
        "{}",
        page.text
    );
    assert_eq!(s.introspect(&refresh).await["active"], true);

    // A confirmation posted without this browser's binding (a forged form) ends nothing.
    let confirm = s.oidc("demo", "logout/logout-confirm");
    let form = [
        ("id_token_hint", id_token.as_str()),
        ("client_id", "subject-client"),
    ];
    let r = BrowserBinding::default().post(&s, &confirm, &form).await;
    assert_refused_page(&r, "expired or cookies are blocked");
    let other_browser = BrowserBinding::from_page(&s.get(&logout, None).await, None);
    let mut mixed = BrowserBinding::from_page(&page, None);
    mixed.cookie = other_browser.cookie;
    let r = mixed.post(&s, &confirm, &form).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(s.introspect(&refresh).await["active"], true);

    // The user confirms in the browser that fetched the page.
    let r = BrowserBinding::from_page(&page, None)
        .post(&s, &confirm, &form)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("You are signed out"));
    assert_eq!(s.introspect(&refresh).await, json!({"active": false}));
}

#[tokio::test]
async fn post_logout_redirects_only_to_registered_uris() {
    let s = TestServer::start().await;
    web_app(&s).await;
    let logout = s.oidc("demo", "logout");
    let tokens = alice_openid(&s).await;
    let id_token = tokens.body["id_token"].as_str().unwrap().to_owned();
    let refresh = tokens.body["refresh_token"].as_str().unwrap().to_owned();
    for uri in [
        "https://evil.example/",
        "https://app.example/byebye",
        "https://app.example/wild/../evil",
        "javascript:alert(1)",
    ] {
        let query = encode_form(&[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", uri),
        ]);
        let r = s.get(&format!("{logout}?{query}"), None).await;
        assert_refused_page(&r, "Invalid post_logout_redirect_uri");
    }
    // Without a hint or a client, no redirect URI can be checked.
    let query = encode_form(&[("post_logout_redirect_uri", "https://app.example/bye")]);
    assert_refused_page(
        &s.get(&format!("{logout}?{query}"), None).await,
        "Either client_id or id_token_hint is required",
    );
    assert_eq!(s.introspect(&refresh).await["active"], true);

    // Registered (`https://app.example/bye`, and `+`: the redirect URIs).
    for uri in ["https://app.example/bye", "https://app.example/wild/after"] {
        let tokens = alice_openid(&s).await;
        let id_token = tokens.body["id_token"].as_str().unwrap().to_owned();
        let query = encode_form(&[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", uri),
            ("state", "bye-1"),
        ]);
        let r = s.get(&format!("{logout}?{query}"), None).await;
        let (base, params) = redirect_params(&r, false);
        assert_eq!(base, uri);
        assert_eq!(params, vec![("state".to_owned(), "bye-1".to_owned())]);
    }
}

// ---------------------------------------------------------------------------------------------
// Rules 4 and 5: the login form's limits and its binding to the browser

#[tokio::test]
async fn the_login_form_is_bound_to_the_browser_that_fetched_it() {
    let s = TestServer::start().await;
    web_app(&s).await;
    let params = web_params(WILD_CB, &[]);
    let page = s.get(&auth_url(&s, &params), None).await;
    let cookie = header_value(&page, "set-cookie");
    assert!(cookie.starts_with("CAMBIO_BROWSER_BINDING="), "{cookie}");
    for attribute in ["; HttpOnly", "; SameSite=Lax", "; Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http here: {cookie}");
    let binding = BrowserBinding::from_page(&page, None);
    // The page carries a digest of the cookie, never the cookie itself.
    let value = binding
        .cookie
        .as_deref()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1;
    assert!(!page.text.contains(value));

    let mut form = params.clone();
    form.extend_from_slice(&[("username", "alice"), ("password", "alice")]);
    let url = s.oidc("demo", "auth");
    // A cross-site form post: no cookie, or a cookie of another browser.
    let no_cookie = BrowserBinding {
        cookie: None,
        ..binding.clone()
    };
    let other = BrowserBinding::from_page(&s.get(&auth_url(&s, &params), None).await, None);
    let swapped = BrowserBinding {
        cookie: other.cookie.clone(),
        ..binding.clone()
    };
    let no_field = BrowserBinding {
        field: None,
        ..binding.clone()
    };
    for attempt in [no_cookie, swapped, no_field] {
        let r = attempt.post(&s, &url, &form).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.headers.get("location").is_none());
        assert!(
            r.text.contains("This sign-in page has expired"),
            "{}",
            r.text
        );
        assert_secure_html(&r);
    }
    // The browser that fetched the form signs in; a second page reuses its binding.
    let again = s.get(&auth_url(&s, &params), None).await;
    assert!(again.headers.get("set-cookie").is_some());
    let r = binding.post(&s, &url, &form).await;
    let (base, _) = redirect_params(&r, false);
    assert_eq!(base, WILD_CB);
}

#[tokio::test]
async fn the_binding_cookie_is_secure_when_the_public_url_is_https() {
    let mut config = demo_config();
    config.public_url = Some("https://sso.example".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = format!("http://{}", listener.local_addr().unwrap());
    let s = TestServer::start_on(config, listener).await;
    assert_eq!(s.base, "https://sso.example");
    // The server answers on its bound address; only its public URL is HTTPS.
    let query = encode_form(&[
        ("response_type", "code"),
        ("client_id", "subject-client"),
        ("redirect_uri", "http://127.0.0.1/cb"),
    ]);
    let page = s
        .get(
            &format!("{local}/realms/demo/protocol/openid-connect/auth?{query}"),
            None,
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    let cookie = header_value(&page, "set-cookie");
    // `__Host-`: only this host, over HTTPS, may set it; no sibling domain can plant a value.
    assert!(
        cookie.starts_with("__Host-CAMBIO_BROWSER_BINDING="),
        "{cookie}"
    );
    assert!(
        cookie.ends_with("; Path=/; HttpOnly; SameSite=Lax; Secure"),
        "{cookie}"
    );
    // A planted cookie without the prefix is not the binding: a form posted with it and its
    // digest is refused (the login page is shown again, no password is checked).
    let binding = BrowserBinding::from_page(&page, None);
    let value = binding
        .cookie
        .as_deref()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned();
    let mut form: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", "subject-client"),
        ("redirect_uri", "http://127.0.0.1/cb"),
        ("username", "alice"),
        ("password", "alice"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    form.push(("browser_binding".into(), binding.field.clone().unwrap()));
    let post = |cookie: String| {
        s.http
            .post(format!("{local}/realms/demo/protocol/openid-connect/auth"))
            .header("cookie", cookie)
            .form(&form)
            .send()
    };
    let planted = post(format!("CAMBIO_BROWSER_BINDING={value}"))
        .await
        .unwrap();
    assert_eq!(planted.status(), 400);
    assert!(planted.headers().get("location").is_none());
    let text = planted.text().await.unwrap();
    assert!(text.contains("expired or cookies are blocked"), "{text}");
    // The same value under the `__Host-` name is the browser's own binding: signed in.
    let own = post(format!("__Host-CAMBIO_BROWSER_BINDING={value}"))
        .await
        .unwrap();
    assert_eq!(own.status(), 302);
}

#[tokio::test]
async fn the_login_form_has_the_per_address_limit() {
    let mut config = demo_config();
    config.rate_limit_per_ip = cambio_server::RateLimit {
        rate: 0.01,
        burst: 2.0,
    };
    let s = TestServer::start_with(config).await;
    // subject-client, so that no admin call spends the address's budget first.
    let params = [
        ("response_type", "code"),
        ("client_id", "subject-client"),
        ("redirect_uri", "http://127.0.0.1/cb"),
    ];
    let page = s.get(&auth_url(&s, &params), None).await;
    let binding = BrowserBinding::from_page(&page, None);
    let mut form = params.to_vec();
    form.extend_from_slice(&[("username", "alice"), ("password", "wrong")]);
    let url = s.oidc("demo", "auth");
    for _ in 0..2 {
        let r = binding.post(&s, &url, &form).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = binding.post(&s, &url, &form).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert!(r.text.contains("Too many sign-in attempts"), "{}", r.text);
    assert!(header_value(&r, "retry-after").parse::<u64>().unwrap() >= 1);
    assert_secure_html(&r);
}

#[tokio::test]
async fn the_login_form_has_the_per_account_lockout() {
    let s = TestServer::start().await;
    web_app(&s).await;
    for _ in 0..5 {
        let r = sign_in(&s, &web_params(WILD_CB, &[]), "wrong").await;
        assert_eq!(r.status, 200);
        assert!(r.text.contains("Invalid username or password."));
    }
    // Locked: even the right password fails like a wrong one, and the password grant agrees.
    let r = sign_in(&s, &web_params(WILD_CB, &[]), "alice").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.headers.get("location").is_none());
    assert!(r.text.contains("Invalid username or password."));
    let r = s
        .token(
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice"),
            ],
            Some(WEB),
        )
        .await;
    r.assert_error(400, "invalid_grant", "Invalid user credentials");
}

#[tokio::test]
async fn concurrent_login_posts_are_bounded() {
    let mut config = demo_config();
    config.password_hashing = cambio_server::HashingLimit {
        concurrent: 2,
        queue: 2,
        wait: Duration::from_secs(20),
    };
    let s = TestServer::start_with(config).await;
    web_app(&s).await;
    let params = web_params(WILD_CB, &[]);
    let page = s.get(&auth_url(&s, &params), None).await;
    let binding = BrowserBinding::from_page(&page, None);
    let mut form: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    form.push(("username".into(), "alice".into()));
    form.push(("password".into(), "alice".into()));
    form.push(("browser_binding".into(), binding.field.clone().unwrap()));
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&form)
        .finish();
    let url = s.oidc("demo", "auth");
    let mut posts = tokio::task::JoinSet::new();
    for _ in 0..80 {
        let request = s
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", binding.cookie.clone().unwrap())
            .body(body.clone());
        posts.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let mut statuses = Vec::new();
    while let Some(status) = posts.join_next().await {
        statuses.push(status.unwrap());
    }
    let count = |code: u16| statuses.iter().filter(|s| **s == code).count();
    // Every answer is a sign-in or a refusal, never an error or a hang; with 4 places for 80
    // requests arriving together, most are refused at once.
    assert_eq!(count(302) + count(429) + count(503), 80, "{statuses:?}");
    assert!(count(429) + count(503) >= 60, "{statuses:?}");
    assert!(count(302) >= 1, "{statuses:?}");
    // The server keeps answering.
    let r = s
        .get(
            &format!("{}/.well-known/openid-configuration", s.realm_url("demo")),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = sign_in(&s, &params, "alice").await;
    assert_eq!(r.status, 302, "{}", r.text);
}
