//! Authorization settings kept from a Keycloak export change through Keycloak's resource server
//! update and settings import, and are exported with the change; single items are refused
//! with a message saying how to change them.

use reqwest::Method;
use serde_json::json;

use super::{import, public_login, read_export};
use crate::TestServer;
use crate::authority::Admin;

#[tokio::test]
async fn kept_authorization_settings_change_through_their_import() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let document = read_export("quickstart-servlet-authz.json");
    let created = import(&server, &admin, serde_json::to_vec(&document).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let root = Admin::new(&server, "quickstart", &admin);
    let uuid = root.client_uuid("jakarta-servlet-authz-client").await;
    let base = format!("/clients/{uuid}/authz/resource-server");

    let before = root.ok(&format!("{base}/settings")).await;
    let album_id = before["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Premium Resource")
        .map(|r| r["_id"].clone())
        .unwrap();

    // The resource server's own fields.
    root.expect(
        204,
        Method::PUT,
        &base,
        Some(json!({"policyEnforcementMode": "PERMISSIVE"})),
    )
    .await;
    assert_eq!(root.ok(&base).await["policyEnforcementMode"], "PERMISSIVE");
    let bad = root
        .send(
            Method::PUT,
            &base,
            Some(json!({"decisionStrategy": "MAJORITY"})),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_eq!(
        bad.body["errorMessage"],
        "Invalid decisionStrategy: \"MAJORITY\""
    );

    // The import merges by name: a resource replaced keeps its id, a new one is added.
    root.expect(
        204,
        Method::POST,
        &format!("{base}/import"),
        Some(json!({
            "resources": [{"name": "Premium Resource", "uris": ["/premium/*"]},
                          {"name": "Reports", "uris": ["/reports/*"]}],
            "scopes": [{"name": "urn:reports:read"}]
        })),
    )
    .await;
    let resources = root.ok(&format!("{base}/resource?name=Premium")).await;
    assert_eq!(resources[0]["_id"], album_id);
    assert_eq!(resources[0]["uris"], json!(["/premium/*"]));
    let reports = root.ok(&format!("{base}/resource?name=Reports")).await;
    assert_eq!(reports.as_array().unwrap().len(), 1, "{reports}");
    let scopes = root.ok(&format!("{base}/scope?name=urn:reports")).await;
    assert_eq!(scopes[0]["name"], "urn:reports:read");

    // Single items are refused, saying how to change them.
    for (method, path) in [
        (Method::POST, format!("{base}/policy")),
        (Method::POST, format!("{base}/resource")),
        (Method::DELETE, format!("{base}/scope/some-id")),
        (Method::POST, format!("{base}/permission/scope")),
    ] {
        let refused = root
            .send(
                method.clone(),
                &path,
                Some(json!({"name": "x", "type": "js"})),
            )
            .await;
        assert_eq!(refused.status, 405, "{method} {path}: {}", refused.text);
        assert!(
            refused.body["errorMessage"]
                .as_str()
                .unwrap()
                .contains("/authz/resource-server/import"),
            "{}",
            refused.text
        );
    }

    // Viewing is not changing.
    root.user_with("authz-viewer", &["view-authorization"])
        .await;
    let viewer = public_login(
        &server,
        "quickstart",
        "admin-cli",
        "authz-viewer",
        "authz-viewer-pass",
    )
    .await
    .access_token();
    let viewer = Admin::new(&server, "quickstart", &viewer);
    assert_eq!(
        viewer.ok(&format!("{base}/settings")).await["policyEnforcementMode"],
        "PERMISSIVE"
    );
    viewer
        .expect(
            403,
            Method::PUT,
            &base,
            Some(json!({"policyEnforcementMode": "DISABLED"})),
        )
        .await;
    viewer
        .expect(
            403,
            Method::POST,
            &format!("{base}/import"),
            Some(json!({"resources": []})),
        )
        .await;

    // The realm's export carries the change.
    let export = server
        .http
        .post(format!(
            "{}/admin/realms/quickstart/partial-export?exportClients=true",
            server.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let export: serde_json::Value = export.json().await.unwrap();
    let client = export["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clientId"] == "jakarta-servlet-authz-client")
        .unwrap();
    let settings = &client["authorizationSettings"];
    assert_eq!(settings["policyEnforcementMode"], "PERMISSIVE");
    assert!(
        settings["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "Reports"),
        "{settings}"
    );
}

/// The Keycloak data a realm import keeps (here identity providers) is stored in the realm's
/// own transaction: when the store refuses it (two providers under one alias), none of the
/// realm is kept, and the same name imports afterwards.
#[tokio::test]
async fn a_realm_refused_at_its_kept_data_leaves_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let provider = json!({"alias": "twin", "providerId": "oidc", "enabled": true,
                          "config": {"issuer": "https://idp.twin.example",
                                     "jwksUrl": "https://idp.twin.example/jwks"}});
    let mut document = json!({
        "realm": "kept-whole", "enabled": true,
        "users": [{"username": "alice", "enabled": true}],
        "clients": [{"clientId": "app", "publicClient": true}],
        "identityProviders": [provider.clone(), provider.clone()]
    });
    let refused = import(&server, &admin, serde_json::to_vec(&document).unwrap()).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    let realm_url = format!("{}/admin/realms/kept-whole", server.base);
    assert_eq!(server.get(&realm_url, Some(&admin)).await.status, 404);

    document["identityProviders"] = json!([provider]);
    let created = import(&server, &admin, serde_json::to_vec(&document).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let users = server
        .get(
            &format!("{realm_url}/users?username=alice&exact=true"),
            Some(&admin),
        )
        .await;
    assert_eq!(
        users.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        users.text
    );
    server.stop().await;
}
