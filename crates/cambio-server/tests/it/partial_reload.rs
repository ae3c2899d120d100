//! Admin changes that reload only part of a realm's snapshot (a role, a client scope, the
//! groups, the fine-grained permissions, the identity providers) take effect at once: the
//! very next token or exchange after the admin call reflects them, with nothing stale left
//! behind (a renamed role is not found under its old name, a deleted permission grants
//! nothing).

use reqwest::Method;
use serde_json::{Value, json};

use crate::*;

/// Calls the demo realm's admin API as the master administrator.
async fn admin(s: &TestServer, method: Method, path: &str, body: Option<Value>) -> Reply {
    let token = s.admin_token().await;
    let mut request = s
        .http
        .request(method, format!("{}/admin/realms/demo{path}", s.base))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    reply(request.send().await.unwrap()).await
}

/// The id at the end of a `201 Created` answer's `Location`.
fn created_id(reply: &Reply) -> String {
    assert_eq!(reply.status, 201, "{}", reply.text);
    header_value(reply, "location")
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

async fn id_of(s: &TestServer, path: &str) -> String {
    let found = admin(s, Method::GET, path, None).await;
    assert_eq!(found.status, 200, "{}", found.text);
    let found = if found.body.is_array() {
        found.body[0].clone()
    } else {
        found.body
    };
    found["id"].as_str().unwrap().to_owned()
}

async fn alice_id(s: &TestServer) -> String {
    id_of(s, "/users?username=alice&exact=true").await
}

fn realm_roles(jwt: &str) -> Vec<String> {
    strings(&claims(jwt)["realm_access"]["roles"])
}

async fn expect(reply: Reply, status: u16) -> Reply {
    assert_eq!(reply.status, status, "{}", reply.text);
    reply
}

#[tokio::test]
async fn role_changes_reach_the_next_exchange() {
    let s = TestServer::start().await;
    let alice = alice_id(&s).await;
    for name in ["auditor", "bundle"] {
        expect(
            admin(&s, Method::POST, "/roles", Some(json!({"name": name}))).await,
            201,
        )
        .await;
    }
    let auditor = id_of(&s, "/roles/auditor").await;
    let bundle = id_of(&s, "/roles/bundle").await;
    expect(
        admin(
            &s,
            Method::POST,
            "/roles/bundle/composites",
            Some(json!([{"id": auditor}])),
        )
        .await,
        204,
    )
    .await;
    expect(
        admin(
            &s,
            Method::POST,
            &format!("/users/{alice}/role-mappings/realm"),
            Some(json!([{"id": bundle, "name": "bundle"}])),
        )
        .await,
        204,
    )
    .await;
    let subject = s.alice(None).await.access_token();
    let held = realm_roles(&subject);
    assert!(held.contains(&"bundle".into()) && held.contains(&"auditor".into()));
    let exchanged = expect(s.exchange(&subject, &[]).await, 200).await;
    assert!(realm_roles(&exchanged.access_token()).contains(&"auditor".into()));

    // Taken out of the composite: the next exchange of the same subject token lacks it.
    expect(
        admin(
            &s,
            Method::DELETE,
            "/roles/bundle/composites",
            Some(json!([{"id": auditor}])),
        )
        .await,
        204,
    )
    .await;
    let exchanged = expect(s.exchange(&subject, &[]).await, 200).await;
    let roles = realm_roles(&exchanged.access_token());
    assert!(roles.contains(&"bundle".into()), "{roles:?}");
    assert!(!roles.contains(&"auditor".into()), "{roles:?}");

    // Renamed: found under the new name only, and tokens carry the new name.
    expect(
        admin(
            &s,
            Method::PUT,
            "/roles/bundle",
            Some(json!({"name": "package"})),
        )
        .await,
        204,
    )
    .await;
    let old = admin(&s, Method::GET, "/roles/bundle", None).await;
    assert_eq!(old.status, 404, "{}", old.text);
    assert_eq!(id_of(&s, "/roles/package").await, bundle);
    let fresh = realm_roles(&s.alice(None).await.access_token());
    assert!(fresh.contains(&"package".into()), "{fresh:?}");
    assert!(!fresh.contains(&"bundle".into()), "{fresh:?}");

    // Deleted: gone from the next token of a user still mapped to it.
    expect(admin(&s, Method::DELETE, "/roles/package", None).await, 204).await;
    let fresh = realm_roles(&s.alice(None).await.access_token());
    assert!(!fresh.contains(&"package".into()), "{fresh:?}");
    let gone = admin(&s, Method::GET, "/roles/package", None).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
}

#[tokio::test]
async fn scope_and_mapper_changes_reach_the_next_token() {
    let s = TestServer::start().await;
    expect(
        admin(
            &s,
            Method::POST,
            "/clients",
            Some(json!({"clientId": "reports-api"})),
        )
        .await,
        201,
    )
    .await;
    let scope = created_id(
        &admin(
            &s,
            Method::POST,
            "/client-scopes",
            Some(json!({"name": "billing", "protocol": "openid-connect"})),
        )
        .await,
    );
    let mapper = created_id(
        &admin(
            &s,
            Method::POST,
            &format!("/client-scopes/{scope}/protocol-mappers/models"),
            Some(json!({
                "name": "billing audience", "protocol": "openid-connect",
                "protocolMapper": "oidc-audience-mapper",
                "config": {"included.client.audience": "sdk-app",
                           "access.token.claim": "true"},
            })),
        )
        .await,
    );
    let subject_client = id_of(&s, "/clients?clientId=subject-client").await;
    expect(
        admin(
            &s,
            Method::PUT,
            &format!("/clients/{subject_client}/optional-client-scopes/{scope}"),
            None,
        )
        .await,
        204,
    )
    .await;
    let audiences = |reply: &Reply| strings(&claims(&reply.access_token())["aud"]);
    let token = s.alice(None).await;
    assert!(
        !audiences(&token).contains(&"sdk-app".into()),
        "{}",
        token.text
    );
    let token = s.alice(Some("billing")).await;
    assert!(
        audiences(&token).contains(&"sdk-app".into()),
        "{}",
        token.text
    );

    // The mapper changed: the next token names the new audience only.
    expect(
        admin(
            &s,
            Method::PUT,
            &format!("/client-scopes/{scope}/protocol-mappers/models/{mapper}"),
            Some(json!({
                "id": mapper, "name": "billing audience", "protocol": "openid-connect",
                "protocolMapper": "oidc-audience-mapper",
                "config": {"included.client.audience": "reports-api",
                           "access.token.claim": "true"},
            })),
        )
        .await,
        204,
    )
    .await;
    let token = s.alice(Some("billing")).await;
    let aud = audiences(&token);
    assert!(aud.contains(&"reports-api".into()), "{aud:?}");
    assert!(!aud.contains(&"sdk-app".into()), "{aud:?}");

    // Renamed: the client's optional scope follows, the old name is no scope any more.
    expect(
        admin(
            &s,
            Method::PUT,
            &format!("/client-scopes/{scope}"),
            Some(json!({"name": "invoices"})),
        )
        .await,
        204,
    )
    .await;
    let token = s.alice(Some("invoices")).await;
    assert!(
        audiences(&token).contains(&"reports-api".into()),
        "{}",
        token.text
    );
    let scopes = claims(&token.access_token())["scope"].clone();
    assert!(scopes.as_str().unwrap().contains("invoices"), "{scopes}");
    s.token(
        &[
            ("grant_type", "password"),
            ("client_id", "subject-client"),
            ("client_secret", "subject-secret"),
            ("username", "alice"),
            ("password", "alice"),
            ("scope", "billing"),
        ],
        None,
    )
    .await
    .assert_error(400, "invalid_scope", "Invalid scopes: billing");

    // The mapper deleted: gone from the next token.
    expect(
        admin(
            &s,
            Method::DELETE,
            &format!("/client-scopes/{scope}/protocol-mappers/models/{mapper}"),
            None,
        )
        .await,
        204,
    )
    .await;
    let token = s.alice(Some("invoices")).await;
    assert!(
        !audiences(&token).contains(&"reports-api".into()),
        "{}",
        token.text
    );
}

#[tokio::test]
async fn group_changes_reach_the_next_exchange() {
    let s = TestServer::start().await;
    let alice = alice_id(&s).await;
    expect(
        admin(&s, Method::POST, "/roles", Some(json!({"name": "auditor"}))).await,
        201,
    )
    .await;
    let auditor = id_of(&s, "/roles/auditor").await;
    let group =
        created_id(&admin(&s, Method::POST, "/groups", Some(json!({"name": "audit"}))).await);
    expect(
        admin(
            &s,
            Method::POST,
            &format!("/groups/{group}/role-mappings/realm"),
            Some(json!([{"id": auditor, "name": "auditor"}])),
        )
        .await,
        204,
    )
    .await;
    expect(
        admin(
            &s,
            Method::PUT,
            &format!("/users/{alice}/groups/{group}"),
            None,
        )
        .await,
        204,
    )
    .await;
    let subject = s.alice(None).await.access_token();
    assert!(realm_roles(&subject).contains(&"auditor".into()));

    // The group's role mapping removed: the next exchange of the same token lacks the role.
    expect(
        admin(
            &s,
            Method::DELETE,
            &format!("/groups/{group}/role-mappings/realm"),
            Some(json!([{"id": auditor, "name": "auditor"}])),
        )
        .await,
        204,
    )
    .await;
    let exchanged = expect(s.exchange(&subject, &[]).await, 200).await;
    assert!(!realm_roles(&exchanged.access_token()).contains(&"auditor".into()));

    // Mapped again, then the group deleted: the same.
    expect(
        admin(
            &s,
            Method::POST,
            &format!("/groups/{group}/role-mappings/realm"),
            Some(json!([{"id": auditor, "name": "auditor"}])),
        )
        .await,
        204,
    )
    .await;
    let exchanged = expect(s.exchange(&subject, &[]).await, 200).await;
    assert!(realm_roles(&exchanged.access_token()).contains(&"auditor".into()));
    expect(
        admin(&s, Method::DELETE, &format!("/groups/{group}"), None).await,
        204,
    )
    .await;
    let exchanged = expect(s.exchange(&subject, &[]).await, 200).await;
    assert!(!realm_roles(&exchanged.access_token()).contains(&"auditor".into()));
}

#[tokio::test]
async fn a_deleted_permission_policy_refuses_the_next_v1_exchange() {
    let s = TestServer::start().await;
    let token = s.admin_token().await;
    let (_, _, _) = crate::admin_authz::guide_setup(&s, &token).await;
    let subject = crate::admin_authz::alice_via(&s, "source-app").await;
    let allowed = crate::admin_authz::exchange_as(&s, "source-app", &subject, "target-api").await;
    assert_eq!(allowed.status, 200, "{}", allowed.text);

    let rm = id_of(&s, "/clients?clientId=realm-management").await;
    let authz = format!("/clients/{rm}/authz/resource-server");
    let policy = id_of(&s, &format!("{authz}/policy/search?name=source-exchange")).await;
    expect(
        admin(
            &s,
            Method::DELETE,
            &format!("{authz}/policy/{policy}"),
            None,
        )
        .await,
        204,
    )
    .await;
    crate::admin_authz::exchange_as(&s, "source-app", &subject, "target-api")
        .await
        .assert_error(403, "access_denied", "Client not allowed to exchange");
}

#[tokio::test]
async fn identity_provider_changes_reach_the_next_exchange() {
    let s = TestServer::start().await;
    let key = cambio_jose::SigningKey::generate(cambio_jose::Algorithm::Es256).unwrap();
    let config = |audience: &str| {
        json!({"alias": "partner", "providerId": "oidc", "enabled": true, "config": {
            "issuer": "https://partner.example",
            "cambio.jwks": json!({"keys": [key.public_jwk()]}).to_string(),
            "cambio.allowedAudiences": audience,
            "cambio.allowedAlgorithms": "ES256",
            "cambio.allowedClients": "requester-client",
            "cambio.provisioning": "create",
        }})
    };
    expect(
        admin(
            &s,
            Method::POST,
            "/identity-provider/instances",
            Some(config("cambio")),
        )
        .await,
        201,
    )
    .await;
    let now = crate::now();
    let external = key
        .sign(
            "JWT",
            &json!({"iss": "https://partner.example", "sub": "ext-bob", "aud": "cambio",
                    "iat": now, "exp": now + 300}),
        )
        .unwrap();
    let exchange = async || {
        s.token(
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", external.as_str()),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("subject_issuer", "partner"),
            ],
            Some(("requester-client", "requester-secret")),
        )
        .await
    };
    expect(exchange().await, 200).await;

    // The provider now accepts another audience only: the same token is refused at once.
    expect(
        admin(
            &s,
            Method::PUT,
            "/identity-provider/instances/partner",
            Some(config("elsewhere")),
        )
        .await,
        204,
    )
    .await;
    exchange()
        .await
        .assert_error(400, "invalid_request", "Invalid token");

    // Back, then deleted: the provider is unknown at once.
    expect(
        admin(
            &s,
            Method::PUT,
            "/identity-provider/instances/partner",
            Some(config("cambio")),
        )
        .await,
        204,
    )
    .await;
    expect(exchange().await, 200).await;
    expect(
        admin(
            &s,
            Method::DELETE,
            "/identity-provider/instances/partner",
            None,
        )
        .await,
        204,
    )
    .await;
    exchange()
        .await
        .assert_error(403, "access_denied", "Client not allowed to exchange");
}
