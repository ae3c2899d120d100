//! Resource indicators (RFC 8707): `resource` names a client by the URIs its
//! `cambio.resourceUris` attribute lists, at the token endpoint and in token exchange; the
//! token is narrowed to it, it never widens what the subject or the user allows, and anything
//! unknown, malformed or unreachable is `invalid_target`.

use serde_json::json;

use crate::{TestServer, browser, claims, strings};

const ORDERS: &str = "https://orders.example/api";
const BILLING: &str = "https://billing.example/";
const INVENTORY: &str = "https://inventory.example/";

/// The demo realm with resource URIs on orders-api and billing-api, and an inventory-api no
/// one holds roles in.
async fn server() -> TestServer {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let http = reqwest::Client::new();
    let clients = format!("{}/admin/realms/demo/clients", server.base);
    for (client_id, uri) in [("orders-api", ORDERS), ("billing-api", BILLING)] {
        let list = server
            .get(&format!("{clients}?clientId={client_id}"), Some(&admin))
            .await;
        let mut rep = list.body[0].clone();
        rep["attributes"]["cambio.resourceUris"] = json!(uri);
        let id = rep["id"].as_str().unwrap().to_owned();
        let status = http
            .put(format!("{clients}/{id}"))
            .bearer_auth(&admin)
            .json(&rep)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 204);
    }
    let status = http
        .post(&clients)
        .bearer_auth(&admin)
        .json(
            &json!({"clientId": "inventory-api", "secret": "inventory-secret",
                      "attributes": {"cambio.resourceUris": INVENTORY}}),
        )
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 201);
    server
}

#[tokio::test]
async fn an_exchange_is_narrowed_to_the_named_resources() {
    let server = server().await;
    let subject = server.alice(None).await.access_token();
    for resource in [ORDERS, "HTTPS://Orders.Example:443/api"] {
        let reply = server.exchange(&subject, &[("resource", resource)]).await;
        assert_eq!(reply.status, 200, "{resource}: {}", reply.text);
        let c = claims(&reply.access_token());
        assert_eq!(strings(&c["aud"]), ["orders-api"], "{c}");
        let granted: Vec<&String> = c["resource_access"].as_object().unwrap().keys().collect();
        assert_eq!(granted, ["orders-api"], "{c}");
    }
    // With `audience` too: the common target, or nothing.
    let both = server
        .exchange(
            &subject,
            &[
                ("resource", ORDERS),
                ("resource", BILLING),
                ("audience", "billing-api"),
            ],
        )
        .await;
    assert_eq!(
        strings(&claims(&both.access_token())["aud"]),
        ["billing-api"]
    );
    server
        .exchange(
            &subject,
            &[("resource", ORDERS), ("audience", "billing-api")],
        )
        .await
        .assert_error(
            400,
            "invalid_target",
            "The audience and resource parameters name no common target",
        );
    let invalid = "Invalid resource: an absolute URI without a fragment is required";
    for (resource, description) in [
        ("https://unknown.example/", "Unknown resource"),
        ("orders", invalid),
        ("https://orders.example/api#x", invalid),
        ("urn:example:orders", invalid),
    ] {
        server
            .exchange(&subject, &[("resource", resource)])
            .await
            .assert_error(400, "invalid_target", description);
    }
    // A resource never widens: alice holds nothing in inventory-api.
    server
        .exchange(&subject, &[("resource", INVENTORY)])
        .await
        .assert_error(
            400,
            "invalid_target",
            "Requested audience not available: inventory-api",
        );
}

/// alice's password grant by subject-client, naming `resource`.
async fn login_for(server: &TestServer, resource: &str) -> crate::Reply {
    let form = [
        ("grant_type", "password"),
        ("client_id", "subject-client"),
        ("client_secret", "subject-secret"),
        ("username", "alice"),
        ("password", "alice"),
        ("resource", resource),
    ];
    server.token(&form, None).await
}

/// A refresh by subject-client of `refresh_token`, naming `resources`.
async fn refresh_for(server: &TestServer, refresh_token: &str, resources: &[&str]) -> crate::Reply {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    form.extend(resources.iter().map(|r| ("resource", *r)));
    server
        .token(&form, Some(("subject-client", "subject-secret")))
        .await
}

fn audiences(reply: &crate::Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.text);
    let mut aud = strings(&claims(&reply.access_token())["aud"]);
    aud.sort();
    aud
}

fn next_refresh(reply: &crate::Reply) -> String {
    reply.body["refresh_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_refresh_narrows_to_resources_within_the_original_grant() {
    let server = server().await;
    // A login narrowed to two resources: a refresh may name one of them; its access token is
    // for that one, its refresh token keeps both.
    let form = [
        ("grant_type", "password"),
        ("client_id", "subject-client"),
        ("client_secret", "subject-secret"),
        ("username", "alice"),
        ("password", "alice"),
        ("resource", ORDERS),
        ("resource", BILLING),
    ];
    let login = server.token(&form, None).await;
    assert_eq!(audiences(&login), ["billing-api", "orders-api"]);
    let narrowed = refresh_for(&server, &next_refresh(&login), &[ORDERS]).await;
    assert_eq!(audiences(&narrowed), ["orders-api"]);
    let granted: Vec<String> = claims(&narrowed.access_token())["resource_access"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(granted, ["orders-api"]);
    let whole = refresh_for(&server, &next_refresh(&narrowed), &[]).await;
    assert_eq!(audiences(&whole), ["billing-api", "orders-api"]);
    // Never wider: a resource outside the login's is refused before the token is used, so
    // the same token still refreshes afterwards.
    let token = next_refresh(&whole);
    for resource in [INVENTORY, "https://orders.example/other"] {
        let refused = refresh_for(&server, &token, &[BILLING, resource]).await;
        if resource == INVENTORY {
            refused.assert_error(
                400,
                "invalid_target",
                "The resource is outside the original grant",
            );
        } else {
            refused.assert_error(400, "invalid_target", "Unknown resource");
        }
    }
    let billing = refresh_for(&server, &token, &[BILLING]).await;
    assert_eq!(audiences(&billing), ["billing-api"]);

    // A login not narrowed at all: a refresh may narrow to a resource its token carries, not
    // to one the user cannot reach (and that refusal does not burn the token either).
    let login = server.alice(None).await;
    let token = next_refresh(&login);
    refresh_for(&server, &token, &[INVENTORY])
        .await
        .assert_error(
            400,
            "invalid_target",
            "Requested audience not available: inventory-api",
        );
    let narrowed = refresh_for(&server, &token, &[BILLING]).await;
    assert_eq!(audiences(&narrowed), ["billing-api"]);
    let whole = refresh_for(&server, &next_refresh(&narrowed), &[]).await;
    assert!(audiences(&whole).len() > 1, "{}", whole.text);

    // An exchanged refresh token for orders-api: billing-api is outside what was exchanged.
    let subject = server.alice(None).await.access_token();
    let exchanged = server
        .exchange(
            &subject,
            &[
                ("audience", "orders-api"),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                ),
            ],
        )
        .await;
    assert_eq!(exchanged.status, 200, "{}", exchanged.text);
    let exchanged_refresh = next_refresh(&exchanged);
    let by_requester = |resource: &'static str| {
        let token = exchanged_refresh.clone();
        let server = &server;
        async move {
            server
                .token(
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", &token),
                        ("resource", resource),
                    ],
                    Some(("requester-client", "requester-secret")),
                )
                .await
        }
    };
    by_requester(BILLING).await.assert_error(
        400,
        "invalid_target",
        "The resource is outside the original grant",
    );
    assert_eq!(audiences(&by_requester(ORDERS).await), ["orders-api"]);
}

#[tokio::test]
async fn a_login_and_its_refreshes_are_narrowed_to_the_named_resource() {
    let server = server().await;
    let login = login_for(&server, BILLING).await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(
        strings(&claims(&login.access_token())["aud"]),
        ["billing-api"]
    );
    let refresh_token = login.body["refresh_token"].as_str().unwrap().to_owned();
    let refreshed = server.refresh(&refresh_token).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(
        strings(&claims(&refreshed.access_token())["aud"]),
        ["billing-api"]
    );
    // Unreachable or unknown resources are refused for logins and service accounts alike.
    login_for(&server, INVENTORY).await.assert_error(
        400,
        "invalid_target",
        "Requested audience not available: inventory-api",
    );
    server
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://unknown.example/"),
            ],
            Some(("requester-client", "requester-secret")),
        )
        .await
        .assert_error(400, "invalid_target", "Unknown resource");
}

/// The code of a browser sign-in of alice at web-app, with `extra` authorization parameters.
async fn code_for(server: &TestServer, extra: &[(&str, &str)]) -> String {
    let params = browser::web_params(browser::WILD_CB, extra);
    let signed_in = browser::sign_in(server, &params, "alice").await;
    let (_, params) = browser::redirect_params(&signed_in, false);
    browser::get_param(&params, "code").unwrap().to_owned()
}

/// Redeems `code` at the token endpoint, with `extra` token request parameters.
async fn redeem(server: &TestServer, code: &str, extra: &[(&str, &str)]) -> crate::Reply {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", browser::WILD_CB),
        ("code_verifier", crate::PKCE_VERIFIER),
    ];
    form.extend_from_slice(extra);
    server.token(&form, Some(browser::WEB)).await
}

#[tokio::test]
async fn resources_named_at_authorization_narrow_the_code_token() {
    let server = server().await;
    browser::web_app(&server).await;
    let code = code_for(&server, &[("resource", ORDERS)]).await;
    let tokens = redeem(&server, &code, &[]).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    assert_eq!(
        strings(&claims(&tokens.access_token())["aud"]),
        ["orders-api"]
    );
    // The token request may repeat an authorized resource, not add another.
    let code = code_for(&server, &[("resource", ORDERS)]).await;
    redeem(&server, &code, &[("resource", BILLING)])
        .await
        .assert_error(
            400,
            "invalid_target",
            "The resource was not named in the authorization request",
        );
    // An unknown resource is answered at the redirect URI, before any sign-in.
    let params = browser::web_params(
        browser::WILD_CB,
        &[("resource", "https://unknown.example/")],
    );
    let refused = server.get(&browser::auth_url(&server, &params), None).await;
    let (_, params) = browser::redirect_params(&refused, false);
    assert_eq!(browser::get_param(&params, "error"), Some("invalid_target"));
    assert_eq!(
        browser::get_param(&params, "error_description"),
        Some("Unknown resource")
    );
}

/// Sets `attributes[name] = value` on the representation at `url` (a realm or a client) through
/// the admin API.
async fn set_attribute(server: &TestServer, admin: &str, url: &str, name: &str, value: &str) {
    let mut rep = server.get(url, Some(admin)).await.body;
    rep["attributes"][name] = json!(value);
    let status = reqwest::Client::new()
        .put(url)
        .bearer_auth(admin)
        .json(&rep)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204, "{url}");
}

#[tokio::test]
async fn discovery_and_the_admin_api_expose_the_resources() {
    let server = server().await;
    let admin = server.admin_token().await;
    // The admin API shows each client's resource URIs, as set.
    let clients = format!("{}/admin/realms/demo/clients", server.base);
    let billing = server
        .get(&format!("{clients}?clientId=billing-api"), Some(&admin))
        .await
        .body[0]
        .clone();
    assert_eq!(billing["attributes"]["cambio.resourceUris"], BILLING);
    let billing_url = format!("{clients}/{}", billing["id"].as_str().unwrap());

    // Discovery says resource indicators are accepted, and lists no URI by default.
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        server.realm_url("demo")
    );
    let discovery = server.get(&discovery_url, None).await.body;
    assert_eq!(discovery["cambio_resource_indicators_supported"], true);
    assert!(
        discovery.get("cambio_resource_uris").is_none(),
        "{discovery}"
    );

    // A realm that publishes them lists the enabled clients' URIs (normalised, sorted), never
    // the clients behind them.
    let realm_url = format!("{}/admin/realms/demo", server.base);
    set_attribute(
        &server,
        &admin,
        &realm_url,
        "cambio.publishResourceUris",
        "true",
    )
    .await;
    let listed = |discovery: serde_json::Value| strings(&discovery["cambio_resource_uris"]);
    assert_eq!(
        listed(server.get(&discovery_url, None).await.body),
        [BILLING, INVENTORY, ORDERS]
    );
    let mut rep = server.get(&billing_url, Some(&admin)).await.body;
    rep["enabled"] = json!(false);
    let status = reqwest::Client::new()
        .put(&billing_url)
        .bearer_auth(&admin)
        .json(&rep)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
    let discovery = server.get(&discovery_url, None).await;
    assert_eq!(listed(discovery.body.clone()), [INVENTORY, ORDERS]);
    assert!(!discovery.text.contains("orders-api"), "{}", discovery.text);
    // Another realm publishes nothing of this one's.
    let master = server
        .get(
            &format!(
                "{}/.well-known/openid-configuration",
                server.realm_url("master")
            ),
            None,
        )
        .await
        .body;
    assert!(master.get("cambio_resource_uris").is_none(), "{master}");
}
