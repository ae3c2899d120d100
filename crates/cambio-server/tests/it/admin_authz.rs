//! The fine-grained (V1) token-exchange permission flow of the token handling guide, run over
//! HTTP exactly as written there, plus the management-permission endpoints around it.

use serde_json::{Value, json};

use crate::*;

/// A JSON admin call; returns status, Location header and body.
async fn admin(
    server: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    let url = format!("{}{path}", server.base);
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = server.http.request(method, &url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    (
        status,
        location,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

async fn client_uuid(server: &TestServer, token: &str, client_id: &str) -> String {
    let (status, _, body) = admin(
        server,
        token,
        "GET",
        &format!("/admin/realms/demo/clients?clientId={client_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body[0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no client {client_id}: {body}"))
        .to_owned()
}

/// Sets up the guide's flow: a public source client allowed to exchange to target-api.
/// Returns (source uuid, target uuid, token-exchange permission id).
pub(crate) async fn guide_setup(server: &TestServer, token: &str) -> (String, String, String) {
    for rep in [
        json!({"clientId": "source-app", "name": "", "description": "Source client", "publicClient": true, "directAccessGrantsEnabled": true}),
        json!({"clientId": "target-api", "name": "", "description": "Target client", "rootUrl": ""}),
        json!({"clientId": "intruder-app", "publicClient": true, "directAccessGrantsEnabled": true}),
    ] {
        let (status, location, body) = admin(
            server,
            token,
            "POST",
            "/admin/realms/demo/clients",
            Some(rep),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert!(location.unwrap().contains("/admin/realms/demo/clients/"));
    }
    let source = client_uuid(server, token, "source-app").await;
    let target = client_uuid(server, token, "target-api").await;
    let rm = client_uuid(server, token, "realm-management").await;
    let authz = format!("/admin/realms/demo/clients/{rm}/authz/resource-server");

    // The client policy, in the guide's form (`config.clients`).
    let (status, _, policy) = admin(
        server,
        token,
        "POST",
        &format!("{authz}/policy"),
        Some(json!({"name": "source-exchange", "type": "client", "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS", "config": {"clients": [source]}})),
    )
    .await;
    assert_eq!(status, 201, "{policy}");
    let policy_id = policy["id"].as_str().unwrap().to_owned();
    assert_eq!(policy["clients"], json!([source]));

    // Management permissions on the target (the guide uses POST).
    let (status, _, perms) = admin(
        server,
        token,
        "POST",
        &format!("/admin/realms/demo/clients/{target}/management/permissions"),
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, 200, "{perms}");
    assert_eq!(perms["enabled"], true);
    let scope_permissions = perms["scopePermissions"].as_object().unwrap();
    let mut names: Vec<&String> = scope_permissions.keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "configure",
            "manage",
            "map-roles",
            "map-roles-client-scope",
            "map-roles-composite",
            "token-exchange",
            "view"
        ]
    );
    let permission_id = perms["scopePermissions"]["token-exchange"]
        .as_str()
        .unwrap()
        .to_owned();
    let resource_id = perms["resource"].as_str().unwrap().to_owned();

    let (status, _, scopes) = admin(server, token, "GET", &format!("{authz}/scope"), None).await;
    assert_eq!(status, 200);
    let scope_id = scopes
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "token-exchange")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Attach the policy to the permission: Keycloak answers 201 with no body.
    let (status, _, body) = admin(
        server,
        token,
        "PUT",
        &format!("{authz}/permission/scope/{permission_id}"),
        Some(json!({
            "id": permission_id,
            "name": format!("token-exchange.permission.client.{target}"),
            "type": "scope", "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS",
            "resources": [resource_id], "policies": [policy_id], "scopes": [scope_id],
        })),
    )
    .await;
    assert_eq!((status, body), (201, Value::Null));
    (source, target, permission_id)
}

/// alice's token from a public client with direct grants.
pub(crate) async fn alice_via(server: &TestServer, client_id: &str) -> String {
    server
        .token(
            &[
                ("grant_type", "password"),
                ("client_id", client_id),
                ("username", "alice"),
                ("password", "alice"),
            ],
            None,
        )
        .await
        .access_token()
}

pub(crate) async fn exchange_as(
    server: &TestServer,
    client_id: &str,
    subject: &str,
    audience: &str,
) -> Reply {
    server
        .token(
            &[
                ("grant_type", EXCHANGE),
                ("client_id", client_id),
                ("subject_token", subject),
                ("audience", audience),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
            ],
            None,
        )
        .await
}

#[tokio::test]
async fn token_handling_guide_flow() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let (_, target, permission_id) = guide_setup(&server, &token).await;

    let subject = alice_via(&server, "source-app").await;
    let reply = exchange_as(&server, "source-app", &subject, "target-api").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let c = claims(&reply.access_token());
    assert_eq!(
        (c["aud"].as_str(), c["azp"].as_str()),
        (Some("target-api"), Some("source-app"))
    );
    assert_eq!(c["sub"], claims(&subject)["sub"]);
    // Without requested_token_type the legacy model answers a refresh token too, in the
    // subject's session, as Keycloak's V1 does.
    assert!(reply.body["refresh_token"].is_string(), "{}", reply.text);
    assert_eq!(
        reply.body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:refresh_token"
    );
    let refreshed = server
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "source-app"),
                (
                    "refresh_token",
                    reply.body["refresh_token"].as_str().unwrap(),
                ),
            ],
            None,
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(claims(&refreshed.access_token())["aud"], "target-api");

    // A client the policy does not name.
    let other = alice_via(&server, "intruder-app").await;
    exchange_as(&server, "intruder-app", &other, "target-api")
        .await
        .assert_error(403, "access_denied", "Client not allowed to exchange");
    // A public client may not exchange a token issued to another client.
    exchange_as(&server, "source-app", &other, "target-api")
        .await
        .assert_error(
            403,
            "access_denied",
            "Client is not the holder of the token",
        );
    // No permission on billing-api: the source client has no way to exchange there.
    exchange_as(&server, "source-app", &subject, "billing-api")
        .await
        .assert_error(
            400,
            "invalid_client",
            "Public client is not allowed to exchange token",
        );

    // The permission reads back with the policy attached.
    let rm = client_uuid(&server, &token, "realm-management").await;
    let authz = format!("/admin/realms/demo/clients/{rm}/authz/resource-server");
    let (status, _, perm) = admin(
        &server,
        &token,
        "GET",
        &format!("{authz}/permission/scope/{permission_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        perm["name"],
        format!("token-exchange.permission.client.{target}")
    );
    // Keycloak's shape: the permission names its policies only through `associatedPolicies`.
    assert!(perm.get("policies").is_none(), "{perm}");
    let (_, _, associated) = admin(
        &server,
        &token,
        "GET",
        &format!("{authz}/policy/{permission_id}/associatedPolicies"),
        None,
    )
    .await;
    assert_eq!(associated[0]["name"], "source-exchange");

    // Switching management permissions off removes the permission: exchanges stop.
    let (status, _, off) = admin(
        &server,
        &token,
        "PUT",
        &format!("/admin/realms/demo/clients/{target}/management/permissions"),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!((status, off), (200, json!({"enabled": false})));
    exchange_as(&server, "source-app", &subject, "target-api")
        .await
        .assert_error(
            400,
            "invalid_client",
            "Public client is not allowed to exchange token",
        );
    let (_, _, perm) = admin(
        &server,
        &token,
        "GET",
        &format!("{authz}/permission/scope/{permission_id}"),
        None,
    )
    .await;
    assert_eq!(perm["error"], "Could not find policy");

    // Deleting the source client removes it from client policies; a policy left naming
    // nobody goes too, so a client re-created with the same id regains nothing.
    let source = client_uuid(&server, &token, "source-app").await;
    let (status, _, _) = admin(
        &server,
        &token,
        "DELETE",
        &format!("/admin/realms/demo/clients/{source}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _, _) = admin(
        &server,
        &token,
        "GET",
        &format!("{authz}/policy/search?name=source-exchange"),
        None,
    )
    .await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn policy_endpoints_as_admin_clients_use_them() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let (source, _, _) = guide_setup(&server, &token).await;
    let rm = client_uuid(&server, &token, "realm-management").await;
    let authz = format!("/admin/realms/demo/clients/{rm}/authz/resource-server");
    // python-keycloak: POST policy/client with top-level clients.
    let (status, _, created) = admin(
        &server,
        &token,
        "POST",
        &format!("{authz}/policy/client"),
        Some(json!({"type": "client", "logic": "NEGATIVE", "decisionStrategy": "UNANIMOUS", "name": "deny-source", "clients": [source]})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["logic"], "NEGATIVE");
    // Duplicate names conflict.
    let (status, _, _) = admin(
        &server,
        &token,
        "POST",
        &format!("{authz}/policy/client"),
        Some(json!({"name": "deny-source", "clients": [source]})),
    )
    .await;
    assert_eq!(status, 409);
    // Unknown clients are refused.
    let (status, _, body) = admin(
        &server,
        &token,
        "POST",
        &format!("{authz}/policy/client"),
        Some(json!({"name": "x", "clients": ["no-such-client"]})),
    )
    .await;
    assert_eq!(
        (status, body["errorMessage"].as_str()),
        (400, Some("Client [no-such-client] does not exist"))
    );
    // npm admin client: findPolicyByName.
    let (status, _, found) = admin(
        &server,
        &token,
        "GET",
        &format!("{authz}/policy/search?name=deny-source"),
        None,
    )
    .await;
    assert_eq!((status, found["id"].clone()), (200, created["id"].clone()));
    let (status, _, _) = admin(
        &server,
        &token,
        "GET",
        &format!("{authz}/policy/search?name=nope"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    // Listing: policies only, then permissions only.
    let (_, _, policies) = admin(
        &server,
        &token,
        "GET",
        &format!("{authz}/policy?max=-1&permission=False"),
        None,
    )
    .await;
    let names: Vec<&str> = policies
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["deny-source", "source-exchange"]);
    let (_, _, permissions) = admin(
        &server,
        &token,
        "GET",
        &format!("{authz}/permission?max=-1"),
        None,
    )
    .await;
    assert_eq!(permissions.as_array().unwrap().len(), 7);
    // Deleting a policy detaches it from permissions.
    let pid = found["id"].as_str().unwrap();
    let (status, _, _) = admin(
        &server,
        &token,
        "DELETE",
        &format!("{authz}/policy/{pid}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _, _) = admin(
        &server,
        &token,
        "GET",
        &format!("{authz}/policy/{pid}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    // Authorization endpoints exist only on realm-management.
    let orders = client_uuid(&server, &token, "orders-api").await;
    let (status, _, _) = admin(
        &server,
        &token,
        "GET",
        &format!("/admin/realms/demo/clients/{orders}/authz/resource-server/scope"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    // Non-administrators may not touch policies.
    let alice = server.alice(None).await.access_token();
    let (status, _, _) = admin(&server, &alice, "GET", &format!("{authz}/policy"), None).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn permission_ids_are_stable_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    let token = server.admin_token().await;
    let (_, target, permission_id) = guide_setup(&server, &token).await;
    let path = format!("/admin/realms/demo/clients/{target}/management/permissions");
    let (_, _, before) = admin(&server, &token, "GET", &path, None).await;
    server.stop().await;
    let server = TestServer::start_in(dir.path()).await;
    let token = server.admin_token().await;
    let (_, _, after) = admin(&server, &token, "GET", &path, None).await;
    assert_eq!(before, after);
    assert_eq!(
        after["scopePermissions"]["token-exchange"],
        permission_id.as_str()
    );
    let subject = alice_via(&server, "source-app").await;
    assert_eq!(
        exchange_as(&server, "source-app", &subject, "target-api")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_legacy_refresh_needs_the_permission_still() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    guide_setup(&server, &token).await;
    let subject = alice_via(&server, "source-app").await;
    let reply = exchange_as(&server, "source-app", &subject, "target-api").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let refresh = |refresh_token: String| {
        let server = &server;
        async move {
            server
                .token(
                    &[
                        ("grant_type", "refresh_token"),
                        ("client_id", "source-app"),
                        ("refresh_token", &refresh_token),
                    ],
                    None,
                )
                .await
        }
    };
    let refreshed = refresh(reply.body["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(claims(&refreshed.access_token())["aud"], "target-api");
    // Without the permission, the refresh token refreshes no more (authority follows the
    // present): the policy naming the source is deleted.
    let rm = client_uuid(&server, &token, "realm-management").await;
    let authz = format!("/admin/realms/demo/clients/{rm}/authz/resource-server");
    let (_, _, found) = admin(
        &server,
        &token,
        "GET",
        &format!("{authz}/policy/search?name=source-exchange"),
        None,
    )
    .await;
    let policy_id = found["id"].as_str().unwrap().to_owned();
    let (status, _, _) = admin(
        &server,
        &token,
        "DELETE",
        &format!("{authz}/policy/{policy_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    refresh(refreshed.body["refresh_token"].as_str().unwrap().to_owned())
        .await
        .assert_error(400, "invalid_grant", "Client not allowed to exchange");
}

#[tokio::test]
async fn the_realm_legacy_switch_judges_every_requester_by_permissions() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let (status, _, body) = admin(
        &server,
        &token,
        "POST",
        "/admin/realms/demo/clients",
        Some(json!({"clientId": "lonely-app", "publicClient": true, "directAccessGrantsEnabled": true})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let subject = alice_via(&server, "lonely-app").await;
    // Off (the default): no permission anywhere, so the standard model's refusal.
    exchange_as(&server, "lonely-app", &subject, "orders-api")
        .await
        .assert_error(
            400,
            "invalid_client",
            "Public client is not allowed to exchange token",
        );
    // On: the fine-grained model's, as Keycloak with its token-exchange feature answers.
    let (status, _, body) = admin(
        &server,
        &token,
        "PUT",
        "/admin/realms/demo",
        Some(json!({"attributes": {"cambio.legacyTokenExchange": "true"}})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    exchange_as(&server, "lonely-app", &subject, "orders-api")
        .await
        .assert_error(403, "access_denied", "Client not allowed to exchange");
}
