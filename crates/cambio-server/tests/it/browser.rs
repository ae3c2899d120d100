//! The browser-facing surface attacked as an attacker would (issue 19): redirect URIs, codes,
//! the HTML headers, prompt, response modes, `iss`, caching and CORS. Logout, the login form's
//! limits and the browser binding are in `browser_forms.rs`, with the helpers from here.

use serde_json::{Value, json};

use crate::*;

pub const WEB: (&str, &str) = ("web-app", "web-secret");
pub const WILD_CB: &str = "https://app.example/wild/cb";

/// Registers `web-app`: wildcard redirect URIs, a web origin and post-logout URIs.
pub async fn web_app(s: &TestServer) {
    let admin = s.admin_token().await;
    let r = s
        .http
        .post(format!("{}/admin/realms/demo/clients", s.base))
        .bearer_auth(&admin)
        .json(&json!({
            "clientId": "web-app",
            "secret": "web-secret",
            "directAccessGrantsEnabled": true,
            "redirectUris": ["https://app.example/wild/*", "https://pfx.example*", "http://127.0.0.1/*"],
            "webOrigins": ["https://spa.example"],
            "attributes": {"post.logout.redirect.uris": "+##https://app.example/bye"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
}

pub fn auth_url(s: &TestServer, params: &[(&str, &str)]) -> String {
    format!("{}?{}", s.oidc("demo", "auth"), encode_form(params))
}

pub fn web_params<'a>(
    redirect_uri: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", "web-app"),
        ("redirect_uri", redirect_uri),
        ("scope", "openid"),
        ("state", "st-1"),
        ("code_challenge", PKCE_CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    params
}

/// Asserts a page refusing the request: 400 HTML, never a redirect.
pub fn assert_refused_page(r: &Reply, message: &str) {
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.headers.get("location").is_none(), "{:?}", r.headers);
    assert!(header_value(r, "content-type").starts_with("text/html"));
    assert!(r.text.contains(message), "{}", r.text);
    assert_secure_html(r);
}

/// The headers of rule 6, on any HTML page.
pub fn assert_secure_html(r: &Reply) {
    let csp = header_value(r, "content-security-policy");
    assert!(csp.contains("frame-ancestors 'self'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(header_value(r, "x-frame-options"), "SAMEORIGIN");
    assert_eq!(header_value(r, "x-content-type-options"), "nosniff");
    assert_eq!(header_value(r, "referrer-policy"), "no-referrer");
    assert_eq!(header_value(r, "cache-control"), "no-store");
}

/// The parameters of a redirect's query (or, with `fragment`, of its fragment).
pub fn redirect_params(r: &Reply, fragment: bool) -> (String, Vec<(String, String)>) {
    assert_eq!(r.status, 302, "{}", r.text);
    let location = url::Url::parse(header_value(r, "location")).unwrap();
    let params = if fragment {
        url::form_urlencoded::parse(location.fragment().unwrap_or("").as_bytes())
            .into_owned()
            .collect()
    } else {
        location.query_pairs().into_owned().collect()
    };
    let mut base = location.clone();
    base.set_query(None);
    base.set_fragment(None);
    (base.to_string(), params)
}

pub fn get_param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Fetches the login form, then posts it with alice's credentials from the same browser.
pub async fn sign_in(s: &TestServer, params: &[(&str, &str)], password: &str) -> Reply {
    let page = s.get(&auth_url(s, params), None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let binding = BrowserBinding::from_page(&page, None);
    let mut form = params.to_vec();
    form.extend_from_slice(&[("username", "alice"), ("password", password)]);
    binding.post(s, &s.oidc("demo", "auth"), &form).await
}

async fn redeem(s: &TestServer, code: &str, redirect_uri: &str) -> Reply {
    s.token(
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", PKCE_VERIFIER),
        ],
        Some(WEB),
    )
    .await
}

async fn code_tokens(s: &TestServer) -> Reply {
    let r = sign_in(s, &web_params(WILD_CB, &[]), "alice").await;
    let (_, params) = redirect_params(&r, false);
    let code = get_param(&params, "code").unwrap().to_owned();
    let tokens = redeem(s, &code, WILD_CB).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    tokens
}

// ---------------------------------------------------------------------------------------------
// Rule 1: redirect URIs

#[tokio::test]
async fn wildcard_does_not_admit_dot_segments() {
    let s = TestServer::start().await;
    web_app(&s).await;
    for uri in [
        "https://app.example/wild/../evil",
        "https://app.example/wild/%2e%2e/evil",
        "https://app.example/wild/.%2E/evil",
        "https://app.example/wild/..%2Fevil",
        "https://app.example/wild/..\\evil",
    ] {
        let r = s.get(&auth_url(&s, &web_params(uri, &[])), None).await;
        assert_refused_page(&r, "Invalid redirect_uri");
    }
    // A path under the wildcard, dot segments resolved, still matches.
    let r = s
        .get(
            &auth_url(&s, &web_params("https://app.example/wild/a/../cb", &[])),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn prefix_wildcard_does_not_admit_other_hosts_or_userinfo() {
    let s = TestServer::start().await;
    web_app(&s).await;
    for uri in [
        "https://pfx.example.evil.com/cb",
        "https://pfx.example@evil.com",
        "https://pfx.example@evil.com/cb",
        "https://pfx.example:8443/cb",
        "http://pfx.example/cb",
    ] {
        let r = s.get(&auth_url(&s, &web_params(uri, &[])), None).await;
        assert_refused_page(&r, "Invalid redirect_uri");
    }
    let r = s
        .get(
            &auth_url(&s, &web_params("https://pfx.example/cb", &[])),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn an_invalid_request_with_a_bad_redirect_uri_is_not_redirected() {
    let s = TestServer::start().await;
    web_app(&s).await;
    // Before the fix, an invalid request was answered with a redirect to the unchecked URI,
    // without any login: an open redirect.
    for uri in [
        "https://app.example/wild/../evil",
        "https://pfx.example.evil.com/",
    ] {
        let params = web_params(uri, &[]);
        let mut params: Vec<(&str, &str)> = params
            .into_iter()
            .map(|(k, v)| {
                if k == "response_type" {
                    (k, "token")
                } else {
                    (k, v)
                }
            })
            .collect();
        params.push(("prompt", "none"));
        let r = s.get(&auth_url(&s, &params), None).await;
        assert_refused_page(&r, "Invalid redirect_uri");
    }
    // An unknown client is a page too.
    let r = s
        .get(
            &auth_url(&s, &[("client_id", "nobody"), ("redirect_uri", WILD_CB)]),
            None,
        )
        .await;
    assert_refused_page(&r, "Unknown client");
}

#[tokio::test]
async fn registration_refuses_dangerous_redirect_uris_and_origins() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let clients = format!("{}/admin/realms/demo/clients", s.base);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"redirectUris": ["*"]}),
            "Invalid redirect URI \"*\": it is a bare wildcard",
        ),
        (
            json!({"redirectUris": ["javascript:alert(document.cookie)"]}),
            "Invalid redirect URI \"javascript:alert(document.cookie)\": it uses a forbidden scheme",
        ),
        (
            json!({"redirectUris": ["data:text/html,x"]}),
            "uses a forbidden scheme",
        ),
        (
            json!({"redirectUris": ["relative/*"]}),
            "is not an absolute URI",
        ),
        (
            json!({"redirectUris": ["//other.example/cb"]}),
            "is not an absolute URI",
        ),
        (
            json!({"redirectUris": ["https://u@app.example/cb"]}),
            "contains user information",
        ),
        (
            json!({"redirectUris": ["https://app.example/cb#x"]}),
            "contains a fragment",
        ),
        (
            json!({"redirectUris": ["http://127.0.0.1/c\r\nb"]}),
            "contains control characters",
        ),
        (
            json!({"redirectUris": ["https://*.example/cb"]}),
            "has a wildcard that does not end it",
        ),
        (
            json!({"webOrigins": ["https://spa.example/path"]}),
            "Invalid web origin",
        ),
        (
            json!({"webOrigins": ["javascript:x"]}),
            "Invalid web origin",
        ),
        (
            json!({"attributes": {"post.logout.redirect.uris": "javascript:x"}}),
            "Invalid post logout redirect URI",
        ),
    ];
    for (i, (fields, message)) in cases.iter().enumerate() {
        let mut rep = json!({"clientId": format!("bad-{i}")});
        for (k, v) in fields.as_object().unwrap() {
            rep[k] = v.clone();
        }
        let r = s
            .http
            .post(&clients)
            .bearer_auth(&admin)
            .json(&rep)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{rep}");
        let body: Value = r.json().await.unwrap();
        let error = body["errorMessage"].as_str().unwrap();
        assert!(error.contains(message), "{rep}: {body}");
        assert_eq!(body["error"], body["errorMessage"]);
        // Nothing was stored.
        let found: Value = s
            .http
            .get(format!("{clients}?clientId=bad-{i}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(found, json!([]));
    }
    // An update is checked the same way.
    let list: Value = s
        .http
        .get(format!("{clients}?clientId=subject-client"))
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
        .put(format!("{clients}/{id}"))
        .bearer_auth(&admin)
        .json(&json!({"redirectUris": ["*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn loopback_redirects_keep_any_port_and_refuse_control_characters_before_login() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let users: Value = s
        .http
        .get(format!("{}/admin/realms/demo/users?username=alice", s.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sessions_url = format!(
        "{}/admin/realms/demo/users/{}/sessions",
        s.base,
        users[0]["id"].as_str().unwrap()
    );
    let sessions = || async {
        let list: Value = s
            .http
            .get(&sessions_url)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list.as_array().map_or(0, Vec::len)
    };
    let params = |uri: &'static str| {
        vec![
            ("response_type", "code"),
            ("client_id", "subject-client"),
            ("redirect_uri", uri),
            ("state", "s"),
        ]
    };
    // RFC 8252 §7.3: any port on a loopback redirect.
    let r = s
        .get(&auth_url(&s, &params("http://127.0.0.1:53117/cb")), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // A CR LF in a loopback redirect URI is refused at once, even with good credentials.
    let bad = params("http://127.0.0.1:53117/cb\r\nSet-Cookie: x=1");
    let r = s.get(&auth_url(&s, &bad), None).await;
    assert_refused_page(&r, "Invalid redirect_uri");
    let good_page = s
        .get(&auth_url(&s, &params("http://127.0.0.1:53117/cb")), None)
        .await;
    let binding = BrowserBinding::from_page(&good_page, None);
    let mut form = bad.clone();
    form.extend_from_slice(&[("username", "alice"), ("password", "alice")]);
    let r = binding.post(&s, &s.oidc("demo", "auth"), &form).await;
    assert_refused_page(&r, "Invalid redirect_uri");
    assert_eq!(sessions().await, 0, "no session may be created");
}

// ---------------------------------------------------------------------------------------------
// Rule 2: codes

#[tokio::test]
async fn a_replayed_code_revokes_the_tokens_of_its_first_use() {
    let s = TestServer::start().await;
    web_app(&s).await;
    let r = sign_in(&s, &web_params(WILD_CB, &[]), "alice").await;
    let (_, params) = redirect_params(&r, false);
    let code = get_param(&params, "code").unwrap().to_owned();
    let first = redeem(&s, &code, WILD_CB).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let access = first.access_token();
    let refresh = first.body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(s.introspect(&access).await["active"], true);

    redeem(&s, &code, WILD_CB)
        .await
        .assert_error(400, "invalid_grant", "Code not valid");

    assert_eq!(s.introspect(&access).await, json!({"active": false}));
    assert_eq!(s.introspect(&refresh).await, json!({"active": false}));
    let r = s
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            Some(WEB),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.error()),
        (400, "invalid_grant"),
        "{}",
        r.text
    );
    // A made-up code ends nothing.
    redeem(&s, "made-up", WILD_CB)
        .await
        .assert_error(400, "invalid_grant", "Code not valid");
}

// ---------------------------------------------------------------------------------------------
// Rule 6: HTML responses

#[tokio::test]
async fn every_html_page_carries_the_security_headers() {
    let s = TestServer::start().await;
    web_app(&s).await;
    let params = web_params(WILD_CB, &[]);
    let form = s.get(&auth_url(&s, &params), None).await;
    assert_eq!(form.status, 200);
    assert!(
        !form.text.contains("<script"),
        "no script on the login page"
    );
    let pages = [
        form,
        s.get(
            &auth_url(&s, &web_params("https://evil.example/", &[])),
            None,
        )
        .await,
        s.get(&auth_url(&s, &[("client_id", "nobody")]), None).await,
        s.get(
            &format!("{}?client_id=web-app", s.oidc("nowhere", "auth")),
            None,
        )
        .await,
        sign_in(&s, &params, "wrong").await,
        s.get(&s.oidc("demo", "logout"), None).await,
        sign_in(
            &s,
            &web_params(WILD_CB, &[("response_mode", "form_post")]),
            "alice",
        )
        .await,
    ];
    for page in &pages {
        assert!(
            header_value(page, "content-type").starts_with("text/html"),
            "{}",
            page.text
        );
        assert_secure_html(page);
    }
    // The redirect that carries a code is not cached either.
    let r = sign_in(&s, &params, "alice").await;
    assert_eq!(r.status, 302);
    assert_eq!(header_value(&r, "cache-control"), "no-store");
    assert_eq!(header_value(&r, "referrer-policy"), "no-referrer");
}

// ---------------------------------------------------------------------------------------------
// Rule 7: protocol details

#[tokio::test]
async fn prompt_none_answers_login_required_without_a_form() {
    let s = TestServer::start().await;
    web_app(&s).await;
    let r = s
        .get(
            &auth_url(&s, &web_params(WILD_CB, &[("prompt", "none")])),
            None,
        )
        .await;
    assert!(!r.text.contains("<form"), "{}", r.text);
    let (base, params) = redirect_params(&r, false);
    assert_eq!(base, WILD_CB);
    assert_eq!(get_param(&params, "error"), Some("login_required"));
    assert_eq!(get_param(&params, "state"), Some("st-1"));
    assert_eq!(
        get_param(&params, "iss"),
        Some(s.realm_url("demo").as_str())
    );
    // `none` with another value is invalid (OpenID Connect Core §3.1.2.1).
    let r = s
        .get(
            &auth_url(&s, &web_params(WILD_CB, &[("prompt", "none login")])),
            None,
        )
        .await;
    let (_, params) = redirect_params(&r, false);
    assert_eq!(get_param(&params, "error"), Some("invalid_request"));
    // Other prompts show the form.
    let r = s
        .get(
            &auth_url(&s, &web_params(WILD_CB, &[("prompt", "login")])),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn response_modes_query_fragment_and_form_post() {
    let s = TestServer::start().await;
    web_app(&s).await;
    let issuer = s.realm_url("demo");

    let r = sign_in(
        &s,
        &web_params(WILD_CB, &[("response_mode", "fragment")]),
        "alice",
    )
    .await;
    assert!(
        !header_value(&r, "location").contains("?code="),
        "{:?}",
        r.headers
    );
    let (base, params) = redirect_params(&r, true);
    assert_eq!(base, WILD_CB);
    let code = get_param(&params, "code").unwrap().to_owned();
    assert_eq!(get_param(&params, "state"), Some("st-1"));
    assert_eq!(get_param(&params, "iss"), Some(issuer.as_str()));
    assert_eq!(redeem(&s, &code, WILD_CB).await.status, 200);

    let r = sign_in(
        &s,
        &web_params(WILD_CB, &[("response_mode", "form_post")]),
        "alice",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.headers.get("location").is_none());
    assert!(
        r.text
            .contains(&format!("<form method=\"post\" action=\"{WILD_CB}\">")),
        "{}",
        r.text
    );
    assert!(
        r.text
            .contains("<input type=\"hidden\" name=\"state\" value=\"st-1\">")
    );
    assert!(r.text.contains(&format!(
        "<input type=\"hidden\" name=\"iss\" value=\"{issuer}\">"
    )));
    assert!(
        r.text.contains("<button type=\"submit\">"),
        "works without script"
    );
    // The one script is allowed by its hash; no other inline script could run.
    let csp = header_value(&r, "content-security-policy");
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    let marker = "name=\"code\" value=\"";
    let start = r.text.find(marker).unwrap() + marker.len();
    let code = &r.text[start..start + r.text[start..].find('"').unwrap()];
    assert_eq!(redeem(&s, code, WILD_CB).await.status, 200);

    // Errors travel the same way.
    let r = s
        .get(
            &auth_url(
                &s,
                &web_params(
                    WILD_CB,
                    &[("response_mode", "form_post"), ("prompt", "none")],
                ),
            ),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.text.contains("name=\"error\" value=\"login_required\""),
        "{}",
        r.text
    );

    // Other modes are refused, in the default mode, with iss.
    for mode in ["query.jwt", "jwt", "web_message"] {
        let r = s
            .get(
                &auth_url(&s, &web_params(WILD_CB, &[("response_mode", mode)])),
                None,
            )
            .await;
        let (_, params) = redirect_params(&r, false);
        assert_eq!(get_param(&params, "error"), Some("invalid_request"));
        assert_eq!(
            get_param(&params, "error_description"),
            Some("Invalid parameter: response_mode")
        );
        assert_eq!(get_param(&params, "iss"), Some(issuer.as_str()));
    }
}

#[tokio::test]
async fn iss_is_on_every_authorization_response_and_advertised() {
    let s = TestServer::start().await;
    web_app(&s).await;
    let issuer = s.realm_url("demo");
    let mut unsupported = web_params(WILD_CB, &[]);
    unsupported[0].1 = "token";
    let mut bad_scope = web_params(WILD_CB, &[]);
    bad_scope[3].1 = "openid bogus";
    let mut no_pkce = web_params(WILD_CB, &[]);
    no_pkce[6].1 = "plain";
    for (params, error) in [
        (unsupported, "unsupported_response_type"),
        (bad_scope, "invalid_scope"),
        (no_pkce, "invalid_request"),
    ] {
        let r = s.get(&auth_url(&s, &params), None).await;
        let (_, query) = redirect_params(&r, false);
        assert_eq!(get_param(&query, "error"), Some(error));
        assert_eq!(get_param(&query, "iss"), Some(issuer.as_str()), "{query:?}");
        assert_eq!(get_param(&query, "state"), Some("st-1"));
    }
    let r = sign_in(&s, &web_params(WILD_CB, &[]), "alice").await;
    let (_, query) = redirect_params(&r, false);
    assert_eq!(get_param(&query, "iss"), Some(issuer.as_str()));

    let discovery = s
        .get(&format!("{issuer}/.well-known/openid-configuration"), None)
        .await;
    assert_eq!(
        discovery.body["authorization_response_iss_parameter_supported"],
        true
    );
    assert_eq!(
        discovery.body["response_modes_supported"],
        json!(["query", "fragment", "form_post"])
    );
}

#[tokio::test]
async fn userinfo_and_introspection_are_not_cached() {
    let s = TestServer::start().await;
    let tokens = s.alice(Some("openid")).await;
    let access = tokens.access_token();
    let userinfo = s.get(&s.oidc("demo", "userinfo"), Some(&access)).await;
    assert_eq!(userinfo.status, 200, "{}", userinfo.text);
    assert_eq!(header_value(&userinfo, "cache-control"), "no-store");
    let introspection = s.introspect_reply(&access).await;
    assert_eq!(introspection.status, 200);
    assert_eq!(header_value(&introspection, "cache-control"), "no-store");
    assert_eq!(introspection.body["active"], true);
}

#[tokio::test]
async fn cors_only_for_the_clients_web_origins() {
    let s = TestServer::start().await;
    web_app(&s).await;
    let token_url = s.oidc("demo", "token");
    let form = encode_form(&[
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "alice"),
        ("scope", "openid"),
    ]);
    let token_from = |origin: &'static str| {
        s.http
            .post(&token_url)
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", basic_header(WEB.0, WEB.1))
            .body(form.clone())
            .send()
    };
    let allowed = token_from("https://spa.example").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://spa.example"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    let access = allowed.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = token_from("https://evil.example").await.unwrap();
    assert_eq!(refused.status(), 200);
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // Another client's token request does not open web-app's origins.
    let r = s
        .http
        .post(&token_url)
        .header("origin", "https://spa.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            basic_header("subject-client", "subject-secret"),
        )
        .body(form.clone())
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // Preflight: only for origins a client of the realm lists.
    for (origin, expected) in [
        ("https://spa.example", true),
        ("https://evil.example", false),
    ] {
        let r = s
            .http
            .request(reqwest::Method::OPTIONS, &token_url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        assert_eq!(
            r.headers().get("access-control-allow-origin").is_some(),
            expected,
            "{origin}"
        );
    }
    // Userinfo, for the token's client; discovery and keys, for the realm's web origins.
    for (url, bearer) in [
        (s.oidc("demo", "userinfo"), Some(access.as_str())),
        (
            format!("{}/.well-known/openid-configuration", s.realm_url("demo")),
            None,
        ),
        (s.oidc("demo", "certs"), None),
    ] {
        for (origin, expected) in [
            ("https://spa.example", true),
            ("https://evil.example", false),
        ] {
            let mut request = s.http.get(&url).header("origin", origin);
            if let Some(token) = bearer {
                request = request.bearer_auth(token);
            }
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), 200, "{url}");
            assert_eq!(
                r.headers()
                    .get("access-control-allow-origin")
                    .and_then(|v| v.to_str().ok()),
                expected.then_some(origin),
                "{url} {origin}"
            );
        }
    }
    // Nowhere else: the admin API and the login page never answer CORS.
    let admin = s.admin_token().await;
    let r = s
        .http
        .get(format!("{}/admin/realms/demo/clients", s.base))
        .bearer_auth(&admin)
        .header("origin", "https://spa.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = s
        .http
        .get(auth_url(&s, &web_params(WILD_CB, &[])))
        .header("origin", "https://spa.example")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_code_flow_still_works_end_to_end() {
    let s = TestServer::start().await;
    web_app(&s).await;
    let tokens = code_tokens(&s).await;
    assert_eq!(claims(&tokens.access_token())["azp"], "web-app");
}
