//! A client scope's protocol mappers at Keycloak's paths
//! (`/client-scopes/{id}/protocol-mappers/models`): listed for view-clients, changed for
//! manage-clients, and an audience mapper adds its client to the `aud` of tokens the scope is
//! applied to, so a standard exchange by that client follows.

use reqwest::Method;
use serde_json::{Value, json};

use crate::authority::{Admin, login};
use crate::{TestServer, claims, strings};

fn audience_mapper(name: &str, audience: &str) -> Value {
    json!({"name": name, "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
           "config": {"included.client.audience": audience, "access.token.claim": "true",
                      "id.token.claim": "false"}})
}

#[tokio::test]
async fn a_scope_audience_mapper_names_its_client_in_aud() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    let scope = root
        .create(
            "/client-scopes",
            json!({"name": "sdk-audience", "protocol": "openid-connect"}),
        )
        .await;
    let subject_client = root.client_uuid("subject-client").await;
    root.expect(
        204,
        Method::PUT,
        &format!("/clients/{subject_client}/default-client-scopes/{scope}"),
        None,
    )
    .await;
    let before = claims(&s.alice(None).await.access_token());
    assert!(!strings(&before["aud"]).contains(&"sdk-app".to_owned()));
    // Without the mapper, sdk-app is not in the token's audience and may not exchange it.
    let alice = s.alice(None).await.access_token();
    let refused = s
        .token(
            &[
                ("grant_type", crate::EXCHANGE),
                ("subject_token", alice.as_str()),
            ],
            Some(("sdk-app", "sdk-secret")),
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);

    let models = format!("/client-scopes/{scope}/protocol-mappers/models");
    let mapper = root
        .create(&models, audience_mapper("sdk-app audience", "sdk-app"))
        .await;
    let listed = root.ok(&models).await;
    assert_eq!(
        listed,
        json!([{"id": mapper, "name": "sdk-app audience", "protocol": "openid-connect",
                "protocolMapper": "oidc-audience-mapper",
                "config": {"included.client.audience": "sdk-app", "access.token.claim": "true",
                           "id.token.claim": "false"}}])
    );
    assert_eq!(root.ok(&format!("{models}/{mapper}")).await, listed[0]);
    // The scope's representation lists it too.
    assert_eq!(
        root.ok(&format!("/client-scopes/{scope}")).await["protocolMappers"],
        listed
    );

    let alice = s.alice(None).await.access_token();
    assert!(strings(&claims(&alice)["aud"]).contains(&"sdk-app".to_owned()));
    let exchanged = s
        .token(
            &[
                ("grant_type", crate::EXCHANGE),
                ("subject_token", alice.as_str()),
            ],
            Some(("sdk-app", "sdk-secret")),
        )
        .await;
    // sdk-app has no standard token exchange switched on: the audience rule is passed, the
    // switch is the next refusal.
    assert_ne!(
        exchanged.description(),
        "Client is not within the token audience",
        "{}",
        exchanged.text
    );

    // A second mapper of the same name is refused; a renamed one is kept.
    let duplicate = root
        .send(
            Method::POST,
            &models,
            Some(audience_mapper("sdk-app audience", "orders-api")),
        )
        .await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.text);
    assert_eq!(
        duplicate.body["errorMessage"],
        "Protocol mapper exists with same name"
    );
    root.expect(
        204,
        Method::PUT,
        &format!("{models}/{mapper}"),
        Some(audience_mapper("renamed", "orders-api")),
    )
    .await;
    let renamed = root.ok(&format!("{models}/{mapper}")).await;
    assert_eq!(
        (
            &renamed["name"],
            &renamed["config"]["included.client.audience"]
        ),
        (&json!("renamed"), &json!("orders-api"))
    );

    // Deleting the mapper takes sdk-app out of the audience again.
    root.expect(204, Method::DELETE, &format!("{models}/{mapper}"), None)
        .await;
    assert_eq!(root.ok(&models).await, json!([]));
    let after = claims(&s.alice(None).await.access_token());
    assert!(!strings(&after["aud"]).contains(&"sdk-app".to_owned()));
    root.expect(404, Method::DELETE, &format!("{models}/{mapper}"), None)
        .await;
    root.expect(404, Method::GET, &format!("{models}/{mapper}"), None)
        .await;
    root.expect(
        404,
        Method::GET,
        "/client-scopes/no-such-scope/protocol-mappers/models",
        None,
    )
    .await;
}

#[tokio::test]
async fn scope_mappers_need_view_clients_to_read_and_manage_clients_to_change() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    let scope = root
        .create("/client-scopes", json!({"name": "guarded"}))
        .await;
    let models = format!("/client-scopes/{scope}/protocol-mappers/models");
    let mapper = root
        .create(&models, audience_mapper("kept", "orders-api"))
        .await;
    root.user_with("scope-viewer", &["view-clients"]).await;
    root.user_with("realm-viewer", &["view-realm", "manage-realm"])
        .await;
    let viewer = Admin::new(&s, "demo", &login(&s, "demo", "scope-viewer").await);
    assert_eq!(viewer.ok(&models).await[0]["name"], "kept");
    viewer
        .expect(
            403,
            Method::POST,
            &models,
            Some(audience_mapper("more", "sdk-app")),
        )
        .await;
    viewer
        .expect(403, Method::DELETE, &format!("{models}/{mapper}"), None)
        .await;
    viewer
        .expect(
            403,
            Method::PUT,
            &format!("{models}/{mapper}"),
            Some(audience_mapper("kept", "sdk-app")),
        )
        .await;
    let realm_admin = Admin::new(&s, "demo", &login(&s, "demo", "realm-viewer").await);
    realm_admin.expect(403, Method::GET, &models, None).await;
    Admin::new(&s, "demo", "not-a-token")
        .expect(401, Method::GET, &models, None)
        .await;
    // Bad bodies: Keycloak's error shape, nothing stored.
    for (body, status) in [
        (json!({"protocolMapper": "oidc-audience-mapper"}), 400),
        (json!({"name": "typeless"}), 400),
        (
            json!({"name": "saml", "protocol": "saml", "protocolMapper": "x"}),
            400,
        ),
        (json!("not an object"), 400),
    ] {
        let reply = root.send(Method::POST, &models, Some(body)).await;
        assert_eq!(reply.status.as_u16(), status, "{}", reply.text);
        assert!(reply.body["errorMessage"].is_string(), "{}", reply.text);
    }
    assert_eq!(root.ok(&models).await.as_array().unwrap().len(), 1);
}
