//! Identity chaining across two trust domains (draft-ietf-oauth-identity-chaining), with two
//! Cambio servers: domain A issues a JWT authorization grant for domain B's authorization
//! server, and B redeems it with the RFC 7523 JWT bearer grant, naming the A-side subject as
//! its provider mapping says. Each refusal is shown on the side that makes it.

use reqwest::Method;
use serde_json::json;

use crate::authority::Admin;
use crate::harness::demo_config;
use crate::{EXCHANGE, TestServer, claims, header};

const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const REQUESTER: (&str, &str) = ("requester-client", "requester-secret");

async fn grant_request(a: &TestServer, subject: &str, extra: &[(&str, &str)]) -> crate::Reply {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("subject_token_type", ACCESS),
        ("requested_token_type", JWT),
    ];
    form.extend_from_slice(extra);
    a.token(&form, Some(REQUESTER)).await
}

#[tokio::test]
async fn a_grant_from_domain_a_gets_a_token_from_domain_b() {
    let a = TestServer::start().await;
    let mut config = demo_config();
    config.allow_http_loopback_jwks = true;
    let b = TestServer::start_with(config).await;
    let b_issuer = b.realm_url("demo");

    // Domain A trusts B's authorization server: requester-client may ask for grants for it,
    // the subject crosses as its username, and of the other claims only `email` does.
    let a_admin = a.admin_token().await;
    let a_root = Admin::new(&a, "demo", &a_admin);
    a_root
        .create(
            "/clients",
            json!({"clientId": "domain-b", "bearerOnly": true, "attributes": {
                "cambio.chaining.authorizationServer": b_issuer,
                "cambio.chaining.requesters": "requester-client",
                "cambio.chaining.subjectClaim": "preferred_username",
                "cambio.chaining.claims": "email"}}),
        )
        .await;
    // Domain B trusts A's issuer for grants addressed to B, from requester-client, and knows
    // A's alice as its own alice.
    let b_admin = b.admin_token().await;
    let b_root = Admin::new(&b, "demo", &b_admin);
    b_root
        .create(
            "/identity-provider/instances",
            json!({"alias": "domain-a", "providerId": "oidc", "enabled": true, "config": {
                "issuer": a.realm_url("demo"),
                "jwksUrl": a.oidc("demo", "certs"),
                "cambio.allowedClients": "requester-client",
                "cambio.allowedAudiences": b_issuer}}),
        )
        .await;
    let b_alice = crate::groups::user_id(&b_root, "alice").await;
    b_root
        .expect(
            204,
            Method::POST,
            &format!("/users/{b_alice}/federated-identity/domain-a"),
            Some(json!({"userId": "alice", "userName": "alice"})),
        )
        .await;

    let discovery = a
        .get(
            &format!("{}/.well-known/openid-configuration", a.realm_url("demo")),
            None,
        )
        .await;
    assert_eq!(
        discovery.body["identity_chaining_requested_token_types_supported"],
        json!([JWT])
    );

    // A: alice's token becomes a grant for B.
    let subject = a.alice(None).await.access_token();
    let grant = grant_request(&a, &subject, &[("audience", "domain-b")]).await;
    assert_eq!(grant.status, 200, "{}", grant.text);
    assert_eq!(grant.body["token_type"], "N_A");
    assert_eq!(grant.body["issued_token_type"], JWT);
    assert!(grant.body.get("refresh_token").is_none());
    let assertion = grant.access_token();
    assert_eq!(header(&assertion)["typ"], "JWT");
    let g = claims(&assertion);
    assert_eq!(g["iss"], a.realm_url("demo"));
    assert_eq!(g["aud"], b_issuer.as_str());
    assert_eq!(g["sub"], "alice");
    assert_eq!(g["client_id"], "requester-client");
    assert_eq!(g["email"], claims(&subject)["email"]);
    assert!(g.get("realm_access").is_none(), "{g}");
    assert!(g["exp"].as_u64().unwrap() - g["iat"].as_u64().unwrap() <= 60);
    // The same through `resource`, naming B's authorization server itself.
    let by_resource = grant_request(&a, &subject, &[("resource", &b_issuer)]).await;
    assert_eq!(by_resource.status, 200, "{}", by_resource.text);

    // B: the grant buys a token of B's alice, once.
    let redeem = |assertion: String| {
        let b = &b;
        async move {
            b.token(
                &[("grant_type", JWT_BEARER), ("assertion", &assertion)],
                Some(REQUESTER),
            )
            .await
        }
    };
    let token = redeem(assertion.clone()).await;
    assert_eq!(token.status, 200, "{}", token.text);
    let t = claims(&token.access_token());
    assert_eq!(t["iss"], b_issuer.as_str());
    assert_eq!(t["sub"], b_alice.as_str());
    assert_eq!(t["preferred_username"], "alice");
    assert!(token.body.get("refresh_token").is_none(), "{}", token.text);
    redeem(assertion.clone()).await.assert_error(
        400,
        "invalid_grant",
        "The assertion has already been used",
    );
    // An access token of A is no grant at B (its audience is not B), and a grant is no
    // access token at A.
    redeem(subject.clone())
        .await
        .assert_error(400, "invalid_grant", "Invalid token");
    let userinfo = a.get(&a.oidc("demo", "userinfo"), Some(&assertion)).await;
    assert_eq!(userinfo.status, 401, "{}", userinfo.text);

    // A's refusals: a client the domain policy does not name, a scope beyond the subject's,
    // two domains at once; a domain A does not trust gets no grant at all.
    let outsider = a
        .token(
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS),
                ("requested_token_type", JWT),
                ("audience", "domain-b"),
            ],
            Some(("subject-client", "subject-secret")),
        )
        .await;
    outsider.assert_error(403, "access_denied", "Client not allowed to exchange");
    grant_request(
        &a,
        &subject,
        &[("audience", "domain-b"), ("scope", "admin")],
    )
    .await
    .assert_error(
        400,
        "invalid_scope",
        "scope must lie within the subject token's scope",
    );
    grant_request(
        &a,
        &subject,
        &[("audience", "domain-b"), ("resource", &b_issuer)],
    )
    .await
    .assert_error(
        400,
        "invalid_request",
        "An authorization grant is for one authorization server",
    );
    let untrusted = grant_request(&a, &subject, &[("audience", "orders-api")]).await;
    assert_eq!(untrusted.status, 400, "{}", untrusted.text);
    assert_eq!(untrusted.error(), "invalid_request", "{}", untrusted.text);
    let elsewhere = grant_request(&a, &subject, &[("resource", "https://c.example/")]).await;
    assert_eq!(elsewhere.status, 400, "{}", elsewhere.text);
}
