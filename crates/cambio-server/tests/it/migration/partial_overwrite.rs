//! Partial import decided whole (a refusal anywhere writes nothing), and `OVERWRITE`.

use serde_json::{Value, json};

use super::partial::partial_import;
use super::{import, public_login};
use crate::TestServer;

/// A realm with a restricted administrator `helper` (manage-realm, manage-users and
/// manage-clients, not realm-admin), a user `root` holding realm-admin, a plain user `plain`,
/// a role `staff`, a client `app` with a role `viewer`, and a provider `partner`.
pub(super) async fn realm_with_helper(server: &TestServer, admin: &str) {
    let document = json!({
        "realm": "whole", "enabled": true,
        "roles": {"realm": [{"name": "staff", "description": "old"}],
                  "client": {"app": [{"name": "viewer"}]}},
        "clients": [{"clientId": "app", "publicClient": true, "redirectUris": ["https://old.example/cb"]}],
        "identityProviders": [
            {"alias": "partner", "providerId": "oidc", "enabled": true,
             "config": {"issuer": "https://old.partner.example",
                        "jwksUrl": "https://old.partner.example/jwks"}}],
        "identityProviderMappers": [
            {"name": "staff", "identityProviderAlias": "partner",
             "identityProviderMapper": "oidc-role-idp-mapper", "config": {"role": "staff"}},
            {"name": "gone", "identityProviderAlias": "partner",
             "identityProviderMapper": "oidc-role-idp-mapper", "config": {"role": "staff"}}],
        "users": [
            {"username": "helper", "enabled": true,
             "credentials": [{"type": "password", "value": "helper-pw"}],
             "clientRoles": {"realm-management": ["manage-realm", "manage-users", "manage-clients"]}},
            {"username": "root", "enabled": true, "firstName": "Root",
             "clientRoles": {"realm-management": ["realm-admin"]}},
            {"username": "plain", "enabled": true, "firstName": "Plain",
             "credentials": [{"type": "password", "value": "plain-pw"}]}
        ]
    });
    let created = import(server, admin, serde_json::to_vec(&document).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);
}

pub(super) async fn helper_token(server: &TestServer) -> String {
    public_login(server, "whole", "admin-cli", "helper", "helper-pw")
        .await
        .access_token()
}

pub(super) async fn admin_get(server: &TestServer, admin: &str, path: &str) -> crate::Reply {
    server
        .get(
            &format!("{}/admin/realms/whole/{path}", server.base),
            Some(admin),
        )
        .await
}

pub(super) async fn user(server: &TestServer, admin: &str, username: &str) -> Value {
    let found = admin_get(
        server,
        admin,
        &format!("users?username={username}&exact=true"),
    )
    .await;
    assert_eq!(found.status, 200, "{}", found.text);
    found.body[0].clone()
}

#[tokio::test]
async fn partial_import_refused_at_its_last_entry_writes_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    realm_with_helper(&server, &admin).await;
    let helper = helper_token(&server).await;

    // Everything before the last user is allowed; the last user would get realm-admin.
    let refused = partial_import(
        &server,
        &helper,
        "whole",
        json!({
            "roles": {"realm": [{"name": "auditor", "composites": {"realm": ["staff"]}}]},
            "clients": [{"clientId": "reports", "publicClient": true}],
            "identityProviders": [
                {"alias": "second", "providerId": "oidc", "enabled": true,
                 "config": {"issuer": "https://second.example",
                            "jwksUrl": "https://second.example/jwks"}}],
            "users": [
                {"username": "carol", "enabled": true, "realmRoles": ["auditor"]},
                {"username": "mallory", "enabled": true,
                 "clientRoles": {"realm-management": ["realm-admin"]}}
            ]
        }),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(
        admin_get(&server, &admin, "roles/auditor").await.status,
        404
    );
    let reports = admin_get(&server, &admin, "clients?clientId=reports").await;
    assert_eq!(reports.body, json!([]), "{}", reports.text);
    let second = admin_get(&server, &admin, "identity-provider/instances/second").await;
    assert_eq!(second.status, 404);
    assert_eq!(user(&server, &admin, "carol").await, Value::Null);
    assert_eq!(user(&server, &admin, "mallory").await, Value::Null);

    // FAIL with a conflict found late (a client role of an existing client) writes nothing
    // either, not even the new client listed before it.
    let conflicting = partial_import(
        &server,
        &admin,
        "whole",
        json!({
            "clients": [{"clientId": "fresh", "publicClient": true}],
            "roles": {"client": {"app": [{"name": "viewer"}]}}
        }),
    )
    .await;
    assert_eq!(conflicting.status, 409, "{}", conflicting.text);
    assert_eq!(
        conflicting.body["errorMessage"],
        "Client role 'viewer' for client 'app' already exists."
    );
    let fresh = admin_get(&server, &admin, "clients?clientId=fresh").await;
    assert_eq!(fresh.body, json!([]), "{}", fresh.text);

    // A bad entry at the end (a role that does not exist) also leaves the realm as it was.
    let bad = partial_import(
        &server,
        &admin,
        "whole",
        json!({
            "roles": {"realm": [{"name": "early"}]},
            "users": [{"username": "dora", "realmRoles": ["no-such-role"]}]
        }),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_eq!(admin_get(&server, &admin, "roles/early").await.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn partial_import_overwrite_replaces_by_name_through_the_guard() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    realm_with_helper(&server, &admin).await;
    let staff_id = admin_get(&server, &admin, "roles/staff").await.body["id"].clone();
    let app_id = admin_get(&server, &admin, "clients?clientId=app")
        .await
        .body[0]["id"]
        .clone();
    let plain_id = user(&server, &admin, "plain").await["id"].clone();
    let before = public_login(&server, "whole", "admin-cli", "plain", "plain-pw").await;
    assert_eq!(before.status, 200, "{}", before.text);
    let refresh_token = before.body["refresh_token"].as_str().unwrap().to_owned();

    let done = partial_import(
        &server,
        &admin,
        "whole",
        json!({
            "ifResourceExists": "OVERWRITE",
            "roles": {"realm": [{"name": "staff", "description": "new"}, {"name": "added"}]},
            "clients": [{"clientId": "app", "publicClient": true, "redirectUris": ["https://new.example/cb"]}],
            "identityProviders": [
                {"alias": "partner", "providerId": "oidc", "enabled": true,
                 "config": {"issuer": "https://new.partner.example",
                            "jwksUrl": "https://new.partner.example/jwks"}}],
            "identityProviderMappers": [
                {"name": "staff", "identityProviderAlias": "partner",
                 "identityProviderMapper": "oidc-role-idp-mapper", "config": {"role": "added"}}],
            "users": [{"username": "plain", "enabled": true, "firstName": "Replaced",
                       "realmRoles": ["staff"],
                       "credentials": [{"type": "password", "value": "new-pw"}]}]
        }),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["overwritten"], 4, "{}", done.text);
    assert_eq!(done.body["added"], 1);
    assert_eq!(done.body["skipped"], 0);
    let action = |kind: &str, name: &str| -> Value {
        done.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resourceType"] == kind && r["resourceName"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(action("REALM_ROLE", "staff")["action"], "OVERWRITTEN");
    assert_eq!(action("REALM_ROLE", "staff")["id"], staff_id);
    assert_eq!(action("REALM_ROLE", "added")["action"], "ADDED");
    assert_eq!(action("CLIENT", "app")["action"], "OVERWRITTEN");
    assert_eq!(action("CLIENT", "app")["id"], app_id);
    assert_eq!(action("IDP", "partner")["action"], "OVERWRITTEN");
    assert_eq!(action("USER", "plain")["action"], "OVERWRITTEN");
    assert_eq!(action("USER", "plain")["id"], plain_id);

    // Replaced in place, ids kept.
    let staff = admin_get(&server, &admin, "roles/staff").await;
    assert_eq!(staff.body["description"], "new");
    assert_eq!(staff.body["id"], staff_id);
    let app = admin_get(&server, &admin, "clients?clientId=app").await;
    assert_eq!(
        app.body[0]["redirectUris"],
        json!(["https://new.example/cb"]),
        "{}",
        app.text
    );
    assert_eq!(app.body[0]["id"], app_id);
    let partner = admin_get(&server, &admin, "identity-provider/instances/partner").await;
    assert_eq!(
        partner.body["config"]["issuer"], "https://new.partner.example",
        "{}",
        partner.text
    );
    // The replaced provider's mappers are the document's, not the old ones beside them.
    let mappers = admin_get(
        &server,
        &admin,
        "identity-provider/instances/partner/mappers",
    )
    .await;
    assert_eq!(
        mappers.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        mappers.text
    );
    assert_eq!(
        mappers.body[0]["config"]["role"], "added",
        "{}",
        mappers.text
    );
    let plain = user(&server, &admin, "plain").await;
    assert_eq!(plain["firstName"], "Replaced");
    assert_eq!(plain["id"], plain_id);
    assert_eq!(
        public_login(&server, "whole", "admin-cli", "plain", "new-pw")
            .await
            .status,
        200
    );
    let old_password = public_login(&server, "whole", "admin-cli", "plain", "plain-pw").await;
    assert_eq!(old_password.status, 400);
    assert_eq!(old_password.body["error"], "invalid_grant");
    // The replaced user's sessions end, as when Keycloak deletes it to replace it.
    let refreshed = server
        .post_form(
            &server.oidc("whole", "token"),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "admin-cli"),
                ("refresh_token", &refresh_token),
            ],
            None,
        )
        .await;
    assert_eq!(refreshed.status, 400, "{}", refreshed.text);
    assert_eq!(refreshed.body["error"], "invalid_grant");

    // A restricted administrator cannot replace a user holding roles it could not grant
    // (that would set the password of a realm administrator)...
    let helper = helper_token(&server).await;
    let take_over = partial_import(
        &server,
        &helper,
        "whole",
        json!({"ifResourceExists": "OVERWRITE",
               "users": [{"username": "root", "enabled": true, "firstName": "Owned",
                          "credentials": [{"type": "password", "value": "owned"}]}]}),
    )
    .await;
    assert_eq!(take_over.status, 403, "{}", take_over.text);
    assert_eq!(user(&server, &admin, "root").await["firstName"], "Root");
    // ...nor give roles it could not grant through a replacement...
    let escalate = partial_import(
        &server,
        &helper,
        "whole",
        json!({"ifResourceExists": "OVERWRITE",
               "users": [{"username": "plain", "enabled": true, "firstName": "Boss",
                          "clientRoles": {"realm-management": ["realm-admin"]}}]}),
    )
    .await;
    assert_eq!(escalate.status, 403, "{}", escalate.text);
    assert_eq!(
        user(&server, &admin, "plain").await["firstName"],
        "Replaced"
    );
    // ...nor through a replaced role's composites...
    let composite = partial_import(
        &server,
        &helper,
        "whole",
        json!({"ifResourceExists": "OVERWRITE",
               "roles": {"realm": [{"name": "staff",
                                    "composites": {"client": {"realm-management": ["realm-admin"]}}}]}}),
    )
    .await;
    assert_eq!(composite.status, 403, "{}", composite.text);
    let staff = admin_get(&server, &admin, "roles/staff").await;
    assert_eq!(staff.body["description"], "new");
    assert_eq!(staff.body["composite"], false, "{}", staff.text);
    // ...nor replace the client administrators sign in through, nor the roles of
    // realm-management.
    let sign_in_client = partial_import(
        &server,
        &helper,
        "whole",
        json!({"ifResourceExists": "OVERWRITE",
               "clients": [{"clientId": "admin-cli", "publicClient": true,
                            "redirectUris": ["https://evil.example/*"]}]}),
    )
    .await;
    assert_eq!(sign_in_client.status, 403, "{}", sign_in_client.text);
    let admin_cli = admin_get(&server, &admin, "clients?clientId=admin-cli").await;
    assert_eq!(
        admin_cli.body[0]["redirectUris"],
        json!([]),
        "{}",
        admin_cli.text
    );
    let management_role = partial_import(
        &server,
        &helper,
        "whole",
        json!({"ifResourceExists": "OVERWRITE",
               "roles": {"client": {"realm-management": [
                   {"name": "view-users", "composites": {"client": {"realm-management": ["manage-realm"]}}}]}}}),
    )
    .await;
    assert_eq!(management_role.status, 403, "{}", management_role.text);
    // ...but may replace a user with roles it may grant.
    let allowed = partial_import(
        &server,
        &helper,
        "whole",
        json!({"ifResourceExists": "OVERWRITE",
               "users": [{"username": "plain", "enabled": true, "firstName": "Helped",
                          "realmRoles": ["staff"]}]}),
    )
    .await;
    assert_eq!(allowed.status, 200, "{}", allowed.text);
    assert_eq!(allowed.body["overwritten"], 1);
    assert_eq!(user(&server, &admin, "plain").await["firstName"], "Helped");
    server.stop().await;
}
