//! Transaction Tokens (draft-ietf-oauth-transaction-tokens-10): a realm as the Txn-Token
//! Service of its trust domain. A gateway exchanges alice's access token for a Txn-Token, a
//! second workload replaces it (same transaction, narrower, never wider), and neither kind of
//! token is ever taken for the other.

use serde_json::{Value, json};

use crate::migration::import;
use crate::{TestServer, claims, header};

const TXN: &str = "urn:ietf:params:oauth:token-type:txn_token";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

fn realm() -> Value {
    json!({
        "realm": "txn", "enabled": true,
        "attributes": {"cambio.txnTokens.trustDomain": "trust.example"},
        "clientScopes": [{"name": "trade.stocks", "protocol": "openid-connect"},
                         {"name": "trade.read", "protocol": "openid-connect"}],
        "clients": [
            {"clientId": "app", "publicClient": true, "directAccessGrantsEnabled": true,
             "optionalClientScopes": ["trade.stocks", "trade.read"]},
            {"clientId": "gateway", "secret": "gateway-secret",
             "attributes": {"cambio.txnTokens.request": "true"}},
            {"clientId": "orders", "secret": "orders-secret",
             "attributes": {"cambio.txnTokens.replace": "true"}},
            {"clientId": "stranger", "secret": "stranger-secret"}
        ],
        "users": [{"username": "alice", "enabled": true,
                   "credentials": [{"type": "password", "value": "alice-pw"}]}]
    })
}

async fn alice(server: &TestServer) -> String {
    let login = server
        .post_form(
            &server.oidc("txn", "token"),
            &[
                ("grant_type", "password"),
                ("client_id", "app"),
                ("username", "alice"),
                ("password", "alice-pw"),
                ("scope", "openid trade.stocks trade.read"),
            ],
            None,
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    login.access_token()
}

async fn txn_request(
    server: &TestServer,
    client: (&str, &str),
    subject: &str,
    subject_type: &str,
    extra: &[(&str, &str)],
) -> crate::Reply {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("requested_token_type", TXN),
        ("subject_token", subject),
        ("subject_token_type", subject_type),
    ];
    form.extend_from_slice(extra);
    server
        .post_form(&server.oidc("txn", "token"), &form, Some(client))
        .await
}

/// A request that must be refused: client, subject token and type, further parameters, and
/// the error and description expected.
type Refusal<'a> = (
    (&'a str, &'a str),
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a str,
    &'a str,
);

fn assert_refused(reply: &crate::Reply, error: &str, description: &str) {
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body["error"], error, "{}", reply.text);
    assert_eq!(
        reply.body["error_description"], description,
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn txn_tokens_are_issued_replaced_and_kept_apart_from_access_tokens() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let created = import(&server, &admin, serde_json::to_vec(&realm()).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let access = alice(&server).await;
    let alice_id = claims(&access)["sub"].as_str().unwrap().to_owned();

    // The gateway's Txn-Token: the draft's response, header type and claims.
    let issued = txn_request(
        &server,
        ("gateway", "gateway-secret"),
        &access,
        ACCESS,
        &[
            ("audience", "trust.example"),
            ("scope", "trade.stocks trade.read"),
            ("request_context", r#"{"req_ip":"192.0.2.7"}"#),
            ("request_details", r#"{"action":"BUY","ticker":"MSFT"}"#),
        ],
    )
    .await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    assert_eq!(issued.body["token_type"], "N_A");
    assert_eq!(issued.body["issued_token_type"], TXN);
    assert!(
        issued.body.get("refresh_token").is_none(),
        "{}",
        issued.text
    );
    let txn_token = issued.access_token();
    assert_eq!(header(&txn_token)["typ"], "txntoken+jwt");
    let c = claims(&txn_token);
    assert_eq!(c["aud"], "trust.example");
    assert_eq!(c["sub"], alice_id.as_str());
    assert_eq!(c["scope"], "trade.read trade.stocks");
    assert_eq!(c["req_wl"], "gateway");
    assert_eq!(c["tctx"], json!({"action": "BUY", "ticker": "MSFT"}));
    assert_eq!(c["rctx"], json!({"req_ip": "192.0.2.7"}));
    let lifetime = c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap();
    assert!(lifetime <= 60, "{c}");
    assert!(c["exp"].as_u64() <= claims(&access)["exp"].as_u64(), "{c}");

    // A second workload replaces it: the same transaction and subject, narrower, with the chain.
    let replaced = txn_request(
        &server,
        ("orders", "orders-secret"),
        &txn_token,
        TXN,
        &[
            ("audience", "trust.example"),
            ("scope", "trade.read"),
            ("request_details", r#"{"venue":"XNAS"}"#),
        ],
    )
    .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    let r = claims(&replaced.access_token());
    assert_eq!((&r["txn"], &r["sub"]), (&c["txn"], &c["sub"]));
    assert_eq!(r["scope"], "trade.read");
    assert_eq!(
        (&r["req_wl"], &r["req_wl_chain"]),
        (&json!("orders"), &json!(["gateway"]))
    );
    assert_eq!(
        r["tctx"],
        json!({"action": "BUY", "ticker": "MSFT", "venue": "XNAS"})
    );

    // Refusals, each with its rule.
    let narrowed = replaced.access_token();
    let orders = ("orders", "orders-secret");
    let gateway = ("gateway", "gateway-secret");
    let refusals: [Refusal<'_>; 5] = [
        (
            orders,
            &narrowed,
            TXN,
            &[("audience", "trust.example"), ("scope", "trade.stocks")],
            "invalid_scope",
            "scope must lie within the subject token's scope",
        ),
        (
            orders,
            &txn_token,
            TXN,
            &[
                ("audience", "trust.example"),
                ("scope", "trade.read"),
                ("request_details", r#"{"ticker":"AAPL"}"#),
            ],
            "invalid_request",
            "A replacement may not change tctx.ticker",
        ),
        (
            ("stranger", "stranger-secret"),
            &access,
            ACCESS,
            &[("audience", "trust.example"), ("scope", "trade.read")],
            "unauthorized_client",
            "Client not allowed to request transaction tokens",
        ),
        (
            gateway,
            &access,
            ACCESS,
            &[("audience", "other.example"), ("scope", "trade.read")],
            "invalid_target",
            "audience must name this trust domain",
        ),
        (
            gateway,
            &access,
            ACCESS,
            &[("audience", "trust.example"), ("scope", "trade.admin")],
            "invalid_scope",
            "scope must lie within the subject token's scope",
        ),
    ];
    for (client, subject, subject_type, extra, error, description) in refusals {
        let reply = txn_request(&server, client, subject, subject_type, extra).await;
        assert_refused(&reply, error, description);
    }

    // Neither token stands for the other: a Txn-Token is no access token (userinfo,
    // introspection, an ordinary exchange), and an access token is no Txn-Token.
    let userinfo = server
        .get(&server.oidc("txn", "userinfo"), Some(&txn_token))
        .await;
    assert_eq!(userinfo.status, 401, "{}", userinfo.text);
    let introspected = server
        .post_form(
            &server.oidc("txn", "token/introspect"),
            &[("token", txn_token.as_str())],
            Some(("gateway", "gateway-secret")),
        )
        .await;
    assert_eq!(introspected.body["active"], false, "{}", introspected.text);
    let as_access = server
        .post_form(
            &server.oidc("txn", "token"),
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", txn_token.as_str()),
                ("subject_token_type", ACCESS),
                ("audience", "orders"),
            ],
            Some(("gateway", "gateway-secret")),
        )
        .await;
    assert_eq!(as_access.status, 400, "{}", as_access.text);
    let as_txn = txn_request(
        &server,
        ("orders", "orders-secret"),
        &access,
        TXN,
        &[("audience", "trust.example"), ("scope", "trade.read")],
    )
    .await;
    assert_refused(&as_txn, "invalid_request", "Invalid token");

    // Authority follows the present: once alice is disabled, her transaction is not replaced.
    let users = server
        .get(
            &format!(
                "{}/admin/realms/txn/users?username=alice&exact=true",
                server.base
            ),
            Some(&admin),
        )
        .await;
    let id = users.body[0]["id"].as_str().unwrap();
    let disabled = server
        .http
        .put(format!("{}/admin/realms/txn/users/{id}", server.base))
        .bearer_auth(&admin)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 204);
    let after = txn_request(
        &server,
        ("orders", "orders-secret"),
        &txn_token,
        TXN,
        &[("audience", "trust.example"), ("scope", "trade.read")],
    )
    .await;
    assert_refused(&after, "invalid_request", "Invalid token");
}

/// A token of a registered identity provider (here another Cambio server's realm) is a
/// subject too: the Txn-Token names the local user the provider links it to, and the purpose
/// must lie within the external token's own `scope`.
#[tokio::test]
async fn a_txn_token_from_an_external_issuers_token() {
    let partner = TestServer::start().await;
    let mut config = crate::harness::demo_config();
    config.allow_http_loopback_jwks = true;
    let server = TestServer::start_with(config).await;
    let admin = server.admin_token().await;
    let created = import(&server, &admin, serde_json::to_vec(&realm()).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let root = crate::authority::Admin::new(&server, "txn", &admin);
    root.create(
        "/identity-provider/instances",
        json!({"alias": "partner", "providerId": "oidc", "enabled": true, "config": {
            "issuer": partner.realm_url("demo"),
            "jwksUrl": partner.oidc("demo", "certs"),
            "cambio.allowedClients": "gateway",
            "cambio.allowedAudiences": "requester-client"}}),
    )
    .await;
    let external = partner.alice(Some("openid profile")).await.access_token();
    let external_sub = claims(&external)["sub"].as_str().unwrap().to_owned();
    let alice = crate::groups::user_id(&root, "alice").await;
    root.expect(
        204,
        reqwest::Method::POST,
        &format!("/users/{alice}/federated-identity/partner"),
        Some(json!({"userId": external_sub, "userName": "alice"})),
    )
    .await;

    let jwt = "urn:ietf:params:oauth:token-type:jwt";
    let issued = txn_request(
        &server,
        ("gateway", "gateway-secret"),
        &external,
        jwt,
        &[("audience", "trust.example"), ("scope", "profile")],
    )
    .await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    let c = claims(&issued.access_token());
    assert_eq!(c["sub"], alice.as_str());
    assert_eq!(c["scope"], "profile");
    let wider = txn_request(
        &server,
        ("gateway", "gateway-secret"),
        &external,
        jwt,
        &[
            ("audience", "trust.example"),
            ("scope", "profile trade.stocks"),
        ],
    )
    .await;
    assert_refused(
        &wider,
        "invalid_scope",
        "scope must lie within the subject token's scope",
    );
    // The provider's client list still applies: orders may not use it.
    let refused = txn_request(
        &server,
        ("orders", "orders-secret"),
        &external,
        jwt,
        &[("audience", "trust.example"), ("scope", "profile")],
    )
    .await;
    assert_eq!(refused.error(), "access_denied", "{}", refused.text);
}
