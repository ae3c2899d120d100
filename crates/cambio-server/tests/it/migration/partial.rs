//! Partial import, and Keycloak's token-exchange permissions carried over.

use serde_json::{Value, json};

use super::{PASSWORD, SALT, credential, import, public_login, reason, report_paths};
use crate::{TestServer, claims, reply};

pub(super) async fn partial_import(
    server: &TestServer,
    token: &str,
    realm: &str,
    body: Value,
) -> crate::Reply {
    let response = server
        .http
        .post(format!(
            "{}/admin/realms/{realm}/partialImport",
            server.base
        ))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    reply(response).await
}

#[tokio::test]
async fn partial_import_adds_skips_and_guards() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let base = json!({
        "realm": "partial", "enabled": true,
        "roles": {"realm": [{"name": "staff"},
                           {"name": "boss", "composites": {"client": {"realm-management": ["realm-admin"]}}}]},
        "users": [
            {"username": "existing", "enabled": true, "credentials": [{"type": "password", "value": "pw"}]},
            {"username": "helper", "enabled": true,
             "credentials": [{"type": "password", "value": "helper-pw"}],
             "clientRoles": {"realm-management": ["manage-realm", "manage-users"]}}
        ]
    });
    let created = import(&server, &admin, serde_json::to_vec(&base).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    // A bare representation without an id or components keeps Cambio's default algorithm.
    let settings = server
        .get(
            &format!("{}/admin/realms/partial", server.base),
            Some(&admin),
        )
        .await;
    assert_eq!(settings.body["defaultSignatureAlgorithm"], "ES256");

    let sha256 =
        "y+rRTfAB+EpmpwZKmK3J781OrwW9fXaJk0hLQuyBE/TMMaRwaDB+ZqQEh7p35+OJQcHdlFAsB0cKQdU7zxZWeg==";
    let body = json!({
        "ifResourceExists": "FAIL",
        "roles": {"realm": [{"name": "auditor", "composites": {"realm": ["staff"]}}]},
        "clients": [{"clientId": "reports", "publicClient": true, "directAccessGrantsEnabled": true,
                     "consentRequired": true}],
        "users": [
            {"username": "existing", "totp": true},
            {"username": "carol", "enabled": true, "realmRoles": ["auditor"],
             "credentials": [credential("pbkdf2-sha256", 27500, SALT, sha256, json!({}))]}
        ],
        "groups": [{"name": "team"}],
        "identityProviders": [
            {"alias": "partner", "providerId": "oidc", "enabled": true,
             "config": {"issuer": "https://idp.partner.example",
                        "jwksUrl": "https://idp.partner.example/jwks", "clientSecret": "s"}}
        ],
        "identityProviderMappers": [
            {"name": "staff", "identityProviderAlias": "partner",
             "identityProviderMapper": "oidc-role-idp-mapper", "config": {"role": "staff"}}
        ]
    });
    // FAIL: something exists, so nothing is written.
    let refused = partial_import(&server, &admin, "partial", body.clone()).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(
        refused.body["errorMessage"],
        "User with user name existing already exists."
    );
    let roles = server
        .get(
            &format!("{}/admin/realms/partial/roles/auditor", server.base),
            Some(&admin),
        )
        .await;
    assert_eq!(roles.status, 404);

    // SKIP: the rest is added, and Keycloak's answer lists it.
    let mut skipping = body.clone();
    skipping["ifResourceExists"] = json!("SKIP");
    let done = partial_import(&server, &admin, "partial", skipping).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["added"], 5, "{}", done.text);
    assert_eq!(done.body["skipped"], 1);
    // What was added but not kept is reported; the skipped user is not.
    let report = &done.body;
    assert!(reason(report, "identityProviders[0].config.clientSecret").starts_with("not kept"));
    assert!(reason(report, "identityProviderMappers[0]").starts_with("kept and exported"));
    let mappers = server
        .get(
            &format!(
                "{}/admin/realms/partial/identity-provider/instances/partner/mappers",
                server.base
            ),
            Some(&admin),
        )
        .await;
    assert_eq!(mappers.body[0]["name"], "staff", "{}", mappers.text);
    assert_eq!(
        reason(report, "clients[0].consentRequired"),
        "not kept: Cambio works with false"
    );
    assert!(
        !report_paths(report)
            .iter()
            .any(|p| p.starts_with("users[0]")),
        "{report}"
    );
    // carol's Keycloak hash logs in, through the new client, with the new composite role.
    let login = public_login(&server, "partial", "reports", "carol", PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let roles = claims(&login.access_token())["realm_access"]["roles"].clone();
    assert!(
        roles.as_array().unwrap().contains(&json!("staff")),
        "{roles}"
    );

    // A restricted administrator cannot hand out a role it could not grant through it.
    let helper = public_login(&server, "partial", "admin-cli", "helper", "helper-pw")
        .await
        .access_token();
    let escalation = partial_import(
        &server,
        &helper,
        "partial",
        json!({"users": [{"username": "mallory", "enabled": true,
                          "clientRoles": {"realm-management": ["realm-admin"]}}]}),
    )
    .await;
    assert_eq!(escalation.status, 403, "{}", escalation.text);
    let mallory = server
        .get(
            &format!(
                "{}/admin/realms/partial/users?username=mallory&exact=true",
                server.base
            ),
            Some(&admin),
        )
        .await;
    assert_eq!(mallory.body, json!([]));
    // Nor a provider that would hand out such a role to everyone it provisions.
    let provider = partial_import(
        &server,
        &helper,
        "partial",
        json!({"identityProviders": [
            {"alias": "evil", "providerId": "oidc", "enabled": true,
             "config": {"issuer": "https://evil.example", "jwksUrl": "https://evil.example/jwks",
                        "cambio.provisioning": "create", "cambio.rolesClaim": "groups",
                        "cambio.roleMappings": "anyone=boss"}}]}),
    )
    .await;
    assert_eq!(provider.status, 403, "{}", provider.text);
    let evil = server
        .get(
            &format!(
                "{}/admin/realms/partial/identity-provider/instances/evil",
                server.base
            ),
            Some(&admin),
        )
        .await;
    assert_eq!(evil.status, 404);
    // ...but may add a user with a role it may grant.
    let allowed = partial_import(
        &server,
        &helper,
        "partial",
        json!({"users": [{"username": "dave", "enabled": true, "realmRoles": ["staff"]}]}),
    )
    .await;
    assert_eq!(allowed.status, 200, "{}", allowed.text);
    server.stop().await;
}

/// The writes of a partial import are one transaction: when the store refuses the last of
/// them (a new user under the id of an existing one, which only the store's unique key sees),
/// the clients, roles and groups written before it are not kept either.
#[tokio::test]
async fn partial_import_is_stored_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path()).await;
    let admin = server.admin_token().await;
    let base = json!({"realm": "whole", "enabled": true,
                      "users": [{"username": "existing", "enabled": true}]});
    let created = import(&server, &admin, serde_json::to_vec(&base).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let admin_url = format!("{}/admin/realms/whole", server.base);
    let existing = server
        .get(
            &format!("{admin_url}/users?username=existing&exact=true"),
            Some(&admin),
        )
        .await;
    let taken_id = existing.body[0]["id"].as_str().unwrap().to_owned();

    let body = json!({
        "ifResourceExists": "FAIL",
        "clients": [{"clientId": "half-written", "publicClient": true}],
        "roles": {"realm": [{"name": "half-role"}]},
        "groups": [{"name": "half-group"}],
        "users": [{"username": "newcomer", "id": taken_id, "enabled": true}]
    });
    let refused = partial_import(&server, &admin, "whole", body).await;
    assert_eq!(refused.status, 409, "{}", refused.text);

    let clients = server
        .get(
            &format!("{admin_url}/clients?clientId=half-written"),
            Some(&admin),
        )
        .await;
    assert_eq!(clients.body, json!([]), "no client kept");
    let role = server
        .get(&format!("{admin_url}/roles/half-role"), Some(&admin))
        .await;
    assert_eq!(role.status, 404, "no role kept: {}", role.text);
    let groups = server
        .get(&format!("{admin_url}/groups"), Some(&admin))
        .await;
    assert_eq!(groups.body, json!([]), "no group kept");
    let users = server
        .get(
            &format!("{admin_url}/users?username=newcomer&exact=true"),
            Some(&admin),
        )
        .await;
    assert_eq!(users.body, json!([]), "no user kept");
    // After a restart too: the store, not only the snapshot, holds none of it.
    server.stop().await;
    let server = TestServer::start_in(dir.path()).await;
    let admin = server.admin_token().await;
    let clients = server
        .get(
            &format!(
                "{}/admin/realms/whole/clients?clientId=half-written",
                server.base
            ),
            Some(&admin),
        )
        .await;
    assert_eq!(clients.body, json!([]), "no client stored");
    server.stop().await;
}

#[tokio::test]
async fn keycloak_token_exchange_permissions_carry_over() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let permission = |target: &str, scope: &str, policies: &str| {
        json!({"name": format!("{scope}.permission.client.{target}"), "type": "scope",
               "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS",
               "config": {"resources": format!("[\"client.resource.{target}\"]"),
                          "scopes": format!("[\"{scope}\"]"), "applyPolicies": policies}})
    };
    let document = json!({
        "id": "v1", "realm": "v1", "enabled": true,
        "roles": {"realm": [{"name": "staff"}]},
        "clients": [
            {"clientId": "source-app", "publicClient": true, "directAccessGrantsEnabled": true},
            {"clientId": "other-app", "publicClient": true, "directAccessGrantsEnabled": true},
            {"id": "target-uuid", "clientId": "target-api", "secret": "target-secret"},
            {"id": "other-target", "clientId": "other-api", "secret": "other-secret"},
            {"clientId": "realm-management", "bearerOnly": true, "authorizationSettings": {
                "allowRemoteResourceManagement": false, "policyEnforcementMode": "ENFORCING",
                "resources": [{"name": "client.resource.target-uuid", "type": "Client",
                               "scopes": [{"name": "view"}, {"name": "token-exchange"}]}],
                "policies": [
                    {"name": "source-exchange", "type": "client", "logic": "POSITIVE",
                     "decisionStrategy": "UNANIMOUS", "config": {"clients": "[\"source-app\"]"}},
                    {"name": "either", "type": "aggregate", "logic": "POSITIVE",
                     "decisionStrategy": "AFFIRMATIVE", "config": {"applyPolicies": "[\"source-exchange\"]"}},
                    {"name": "staff-only", "type": "role", "logic": "POSITIVE",
                     "decisionStrategy": "UNANIMOUS", "config": {"roles": "[{\"id\":\"staff\"}]"}},
                    permission("target-uuid", "token-exchange", "[\"either\"]"),
                    permission("target-uuid", "manage", "[\"staff-only\"]"),
                    permission("other-target", "token-exchange", "[\"source-exchange\",\"staff-only\"]")
                ],
                "scopes": [{"name": "view"}, {"name": "token-exchange"}],
                "decisionStrategy": "UNANIMOUS"}}
        ],
        "users": [{"username": "alice", "enabled": true, "realmRoles": ["staff"],
                   "credentials": [{"type": "password", "value": "alice-pw"}]}]
    });
    let created = import(&server, &admin, serde_json::to_vec(&document).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let report = &created.body;
    let settings = "clients[4].authorizationSettings";
    assert!(reason(report, &format!("{settings}.policies[2]")).starts_with("not imported"));
    assert!(reason(report, &format!("{settings}.policies[4]")).starts_with("not imported"));
    assert_eq!(
        reason(report, &format!("{settings}.policies[5]")),
        "imported without its policies, so it denies: policy \"staff-only\" is of type \"role\", \
         which Cambio does not evaluate"
    );
    assert!(
        !report_paths(report)
            .iter()
            .any(|p| p.starts_with(&format!("{settings}.policies[0]"))
                || p.starts_with(&format!("{settings}.policies[1]"))
                || p.starts_with(&format!("{settings}.policies[3]"))),
        "{report}"
    );

    let exchange = |requester: &'static str, subject: String, audience: &'static str| {
        let server = &server;
        async move {
            server
                .post_form(
                    &server.oidc("v1", "token"),
                    &[
                        ("grant_type", crate::EXCHANGE),
                        ("client_id", requester),
                        ("subject_token", &subject),
                        ("subject_token_type", crate::ACCESS_TOKEN_TYPE),
                        ("audience", audience),
                    ],
                    None,
                )
                .await
        }
    };
    // The permission names source-app (through the aggregate): its exchange to target-api works.
    let own = public_login(&server, "v1", "source-app", "alice", "alice-pw")
        .await
        .access_token();
    let allowed = exchange("source-app", own.clone(), "target-api").await;
    assert_eq!(allowed.status, 200, "{}", allowed.text);
    assert_eq!(claims(&allowed.access_token())["azp"], "source-app");
    // Another client is not named; a permission whose policies could not be taken over denies.
    let other = public_login(&server, "v1", "other-app", "alice", "alice-pw")
        .await
        .access_token();
    exchange("other-app", other, "target-api")
        .await
        .assert_error(403, "access_denied", "Client not allowed to exchange");
    exchange("source-app", own, "other-api").await.assert_error(
        403,
        "access_denied",
        "Client not allowed to exchange",
    );
    server.stop().await;
}

/// Two token-exchange permissions naming one client: Cambio keeps one permission per client,
/// so neither applies (the client denies), in either order, whether the other one was refused
/// or taken over; a repeated realm-management entry gives way to the last one.
#[tokio::test]
async fn two_exchange_permissions_for_one_client_deny() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let permission = |name: &str, policies: &str| {
        json!({"name": name, "type": "scope", "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS",
               "config": {"resources": "[\"client.resource.target-uuid\"]",
                          "scopes": "[\"token-exchange\"]", "applyPolicies": policies}})
    };
    let settings = |permissions: Vec<Value>| {
        let mut policies = vec![
            json!({"name": "source-exchange", "type": "client", "logic": "POSITIVE",
                   "decisionStrategy": "UNANIMOUS", "config": {"clients": "[\"source-app\"]"}}),
            json!({"name": "staff-only", "type": "role", "logic": "POSITIVE",
                   "decisionStrategy": "UNANIMOUS", "config": {"roles": "[{\"id\":\"staff\"}]"}}),
        ];
        policies.extend(permissions);
        json!({"clientId": "realm-management", "bearerOnly": true, "authorizationSettings": {
            "policies": policies, "decisionStrategy": "UNANIMOUS"}})
    };
    let granting = permission("grants", "[\"source-exchange\"]");
    let refused = permission("refused", "[\"staff-only\"]");
    let also_granting = permission("also-grants", "[\"source-exchange\"]");
    // Each realm with what the exchange answers: the one permission alone grants; two deny.
    let denied = (403, "access_denied", "Client not allowed to exchange");
    let cases = [
        ("granted-once", vec![settings(vec![granting.clone()])], None),
        (
            "granted-then-refused",
            vec![settings(vec![granting.clone(), refused.clone()])],
            Some(denied),
        ),
        (
            "refused-then-granted",
            vec![settings(vec![refused, granting.clone()])],
            Some(denied),
        ),
        (
            "granted-twice",
            vec![settings(vec![granting.clone(), also_granting])],
            Some(denied),
        ),
        // The first entry would grant; the last one, which replaces it, has no permission, so
        // the realm has none and the standard rules refuse a public requester.
        (
            "replaced-entry",
            vec![settings(vec![granting]), settings(vec![])],
            Some((
                400,
                "invalid_client",
                "Public client is not allowed to exchange token",
            )),
        ),
    ];
    for (realm, realm_management, refusal) in cases {
        let mut clients = vec![
            json!({"clientId": "source-app", "publicClient": true, "directAccessGrantsEnabled": true}),
            json!({"id": "target-uuid", "clientId": "target-api", "secret": "target-secret"}),
        ];
        clients.extend(realm_management);
        let document = json!({
            "realm": realm, "enabled": true, "roles": {"realm": [{"name": "staff"}]},
            "clients": clients,
            "users": [{"username": "alice", "enabled": true, "realmRoles": ["staff"],
                       "credentials": [{"type": "password", "value": "alice-pw"}]}]
        });
        let created = import(&server, &admin, serde_json::to_vec(&document).unwrap()).await;
        assert_eq!(created.status, 201, "{realm}: {}", created.text);
        let subject = public_login(&server, realm, "source-app", "alice", "alice-pw")
            .await
            .access_token();
        let answer = server
            .post_form(
                &server.oidc(realm, "token"),
                &[
                    ("grant_type", crate::EXCHANGE),
                    ("client_id", "source-app"),
                    ("subject_token", &subject),
                    ("subject_token_type", crate::ACCESS_TOKEN_TYPE),
                    ("audience", "target-api"),
                ],
                None,
            )
            .await;
        match refusal {
            None => assert_eq!(answer.status, 200, "{realm}: {}", answer.text),
            Some((status, error, description)) => {
                answer.assert_error(status, error, description);
            }
        }
    }
    server.stop().await;
}
