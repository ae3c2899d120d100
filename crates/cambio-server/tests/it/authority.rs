//! Admin authority follows the present state, and no admin path leads to escalation: each test
//! attacks one rule from a restricted administrator or from a token whose user, client or
//! roles changed after it was issued.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{EXCHANGE, Reply, TestServer, reply};

/// JSON admin calls against `/admin/realms/{realm}` with one bearer token.
pub(crate) struct Admin<'a> {
    server: &'a TestServer,
    realm: &'a str,
    token: String,
}

impl<'a> Admin<'a> {
    pub(crate) fn new(server: &'a TestServer, realm: &'a str, token: &str) -> Self {
        Admin {
            server,
            realm,
            token: token.to_owned(),
        }
    }

    pub(crate) async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let url = format!("{}/admin/realms/{}{path}", self.server.base, self.realm);
        let mut request = self
            .server
            .http
            .request(method, url)
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        reply(request.send().await.unwrap()).await
    }

    pub(crate) async fn status(&self, method: Method, path: &str, body: Option<Value>) -> u16 {
        self.send(method, path, body).await.status.as_u16()
    }

    pub(crate) async fn ok(&self, path: &str) -> Value {
        let reply = self.send(Method::GET, path, None).await;
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.text);
        reply.body
    }

    /// POST that must answer 201; returns the new id (last segment of `Location`).
    pub(crate) async fn create(&self, path: &str, body: Value) -> String {
        let reply = self.send(Method::POST, path, Some(body)).await;
        assert_eq!(reply.status, 201, "POST {path}: {}", reply.text);
        let location = reply.headers["location"].to_str().unwrap();
        location.rsplit('/').next().unwrap().to_owned()
    }

    /// A call that must answer `status`.
    pub(crate) async fn expect(
        &self,
        status: u16,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) {
        let reply = self.send(method.clone(), path, body).await;
        assert_eq!(
            reply.status.as_u16(),
            status,
            "{method} {path}: {}",
            reply.text
        );
    }

    pub(crate) async fn client_uuid(&self, client_id: &str) -> String {
        let list = self.ok(&format!("/clients?clientId={client_id}")).await;
        list[0]["id"].as_str().unwrap().to_owned()
    }

    /// A client role by name, as a one-element mapping body.
    pub(crate) async fn client_role(&self, client_id: &str, name: &str) -> Value {
        let uuid = self.client_uuid(client_id).await;
        let role = self.ok(&format!("/clients/{uuid}/roles/{name}")).await;
        json!([{"id": role["id"], "name": role["name"]}])
    }

    /// Creates an enabled user with a password and the given `realm-management` roles.
    pub(crate) async fn user_with(&self, username: &str, management_roles: &[&str]) -> String {
        let id = self
            .create(
                "/users",
                json!({"username": username, "enabled": true,
                       "credentials": [{"type": "password", "value": format!("{username}-pass")}]}),
            )
            .await;
        self.map_management(&id, management_roles).await;
        id
    }

    pub(crate) async fn map_management(&self, user_id: &str, roles: &[&str]) {
        let management = self.client_uuid("realm-management").await;
        for role in roles {
            let body = self.client_role("realm-management", role).await;
            self.expect(
                204,
                Method::POST,
                &format!("/users/{user_id}/role-mappings/clients/{management}"),
                Some(body),
            )
            .await;
        }
    }
}

/// A password-grant access token: demo users log in through subject-client, master users
/// through admin-cli.
pub(crate) async fn login(server: &TestServer, realm: &str, username: &str) -> String {
    let password = format!("{username}-pass");
    let mut form = vec![
        ("grant_type", "password"),
        ("username", username),
        ("password", password.as_str()),
    ];
    if realm == "master" {
        form.push(("client_id", "admin-cli"));
    } else {
        form.extend([
            ("client_id", "subject-client"),
            ("client_secret", "subject-secret"),
        ]);
    }
    let reply = server
        .post_form(&server.oidc(realm, "token"), &form, None)
        .await;
    reply.access_token()
}

/// A realm role `sneaky` that contains `realm-admin`, made by the superuser.
async fn sneaky_role(root: &Admin<'_>) -> Value {
    root.create("/roles", json!({"name": "sneaky"})).await;
    let realm_admin = root.client_role("realm-management", "realm-admin").await;
    root.expect(
        204,
        Method::POST,
        "/roles/sneaky/composites",
        Some(realm_admin),
    )
    .await;
    root.ok("/roles/sneaky").await
}

#[tokio::test]
async fn realm_settings_and_roles_hand_out_nothing_beyond_the_caller() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    sneaky_role(&root).await;
    root.create("/roles", json!({"name": "plain"})).await;
    root.user_with("realmer", &["manage-realm", "view-realm"])
        .await;
    let realmer = Admin::new(&s, "demo", &login(&s, "demo", "realmer").await);

    // Default roles reach every user: one that contains realm-admin is refused...
    let mut defaults: Vec<String> =
        serde_json::from_value(realmer.ok("").await["defaultRoles"].clone()).unwrap();
    let with = |extra: &str| {
        let mut list = defaults.clone();
        list.push(extra.to_owned());
        json!({ "defaultRoles": list })
    };
    realmer
        .expect(403, Method::PUT, "", Some(with("sneaky")))
        .await;
    // ...and so is Keycloak's single composite form of the same setting.
    realmer
        .expect(
            403,
            Method::PUT,
            "",
            Some(json!({"defaultRole": {"name": "sneaky"}})),
        )
        .await;
    let unchanged: Vec<String> =
        serde_json::from_value(root.ok("").await["defaultRoles"].clone()).unwrap();
    assert!(!unchanged.contains(&"sneaky".to_owned()), "{unchanged:?}");
    // A harmless role is the caller's to hand out.
    realmer
        .expect(204, Method::PUT, "", Some(with("plain")))
        .await;
    defaults.push("plain".into());

    // Composites: neither a new role nor an existing one may come to contain realm-admin.
    realmer
        .expect(
            403,
            Method::POST,
            "/roles",
            Some(json!({"name": "wrapper",
                        "composites": {"client": {"realm-management": ["realm-admin"]}}})),
        )
        .await;
    let realm_admin = root.client_role("realm-management", "realm-admin").await;
    realmer
        .expect(
            403,
            Method::POST,
            "/roles/plain/composites",
            Some(realm_admin),
        )
        .await;
    let sneaky = root.ok("/roles/sneaky").await;
    realmer
        .expect(
            403,
            Method::POST,
            "/roles/plain/composites",
            Some(json!([{"id": sneaky["id"]}])),
        )
        .await;
    assert_eq!(root.ok("/roles/plain/composites").await, json!([]));

    // After all of it, alice (who holds the default roles) still administers nothing.
    let alice = Admin::new(&s, "demo", &s.alice(None).await.access_token());
    alice.expect(403, Method::GET, "/users", None).await;
}

#[tokio::test]
async fn a_master_realm_manager_cannot_become_superuser() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "master", &s.admin_token().await);
    root.user_with("keeper", &["manage-realm", "view-realm"])
        .await;
    let keeper = Admin::new(&s, "master", &login(&s, "master", "keeper").await);
    let defaults: Vec<String> =
        serde_json::from_value(keeper.ok("").await["defaultRoles"].clone()).unwrap();
    let mut with_admin = defaults.clone();
    with_admin.push("admin".into());
    keeper
        .expect(
            403,
            Method::PUT,
            "",
            Some(json!({ "defaultRoles": with_admin })),
        )
        .await;
    // An identity provider whose users would be handed `admin`.
    keeper
        .expect(
            403,
            Method::POST,
            "/identity-provider/instances",
            Some(provider("rogue", "staff=admin")),
        )
        .await;
    // Still no superuser: another realm stays out of reach.
    let elsewhere = Admin::new(&s, "demo", &keeper.token);
    elsewhere.expect(403, Method::GET, "/users", None).await;
}

/// An identity provider registration with `cambio.roleMappings`.
fn provider(alias: &str, mappings: &str) -> Value {
    json!({"alias": alias, "providerId": "oidc", "enabled": true, "config": {
        "issuer": format!("https://idp.example/{alias}"),
        "jwksUrl": "https://idp.example/jwks",
        "cambio.provisioning": "create",
        "cambio.rolesClaim": "roles",
        "cambio.roleMappings": mappings,
    }})
}

#[tokio::test]
async fn identity_provider_mappings_pass_the_guard() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    sneaky_role(&root).await;
    root.create("/roles", json!({"name": "partner-staff"}))
        .await;
    root.user_with("realmer", &["manage-realm", "view-realm"])
        .await;
    let realmer = Admin::new(&s, "demo", &login(&s, "demo", "realmer").await);
    let instances = "/identity-provider/instances";
    realmer
        .expect(
            403,
            Method::POST,
            instances,
            Some(provider("partner", "staff=sneaky")),
        )
        .await;
    realmer
        .expect(404, Method::GET, &format!("{instances}/partner"), None)
        .await;
    realmer
        .expect(
            201,
            Method::POST,
            instances,
            Some(provider("partner", "staff=partner-staff")),
        )
        .await;
    realmer
        .expect(
            403,
            Method::PUT,
            &format!("{instances}/partner"),
            Some(provider("partner", "staff=partner-staff boss=sneaky")),
        )
        .await;
    let stored = realmer.ok(&format!("{instances}/partner")).await;
    assert_eq!(
        stored["config"]["cambio.roleMappings"],
        "staff=partner-staff"
    );
    // The superuser may.
    root.expect(
        204,
        Method::PUT,
        &format!("{instances}/partner"),
        Some(provider("partner", "staff=sneaky")),
    )
    .await;
}

#[tokio::test]
async fn admin_rights_follow_the_present_roles_and_user() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    let desk_id = root.user_with("helpdesk", &["view-users"]).await;
    let desk = Admin::new(&s, "demo", &login(&s, "demo", "helpdesk").await);
    desk.expect(200, Method::GET, "/users", None).await;

    // Demoted: the same token no longer works.
    let management = root.client_uuid("realm-management").await;
    let view_users = root.client_role("realm-management", "view-users").await;
    let mapping = format!("/users/{desk_id}/role-mappings/clients/{management}");
    root.expect(204, Method::DELETE, &mapping, Some(view_users.clone()))
        .await;
    desk.expect(403, Method::GET, "/users", None).await;

    // Rights that come through a composite end with the composite's change.
    root.create("/roles", json!({"name": "desk"})).await;
    root.expect(
        204,
        Method::POST,
        "/roles/desk/composites",
        Some(view_users.clone()),
    )
    .await;
    root.expect(
        204,
        Method::POST,
        &format!("/users/{desk_id}/role-mappings/realm"),
        Some(json!([{"name": "desk"}])),
    )
    .await;
    // The old token never carried view-users through `desk`... but it did carry view-users
    // itself, and the user holds it again now.
    desk.expect(200, Method::GET, "/users", None).await;
    root.expect(
        204,
        Method::DELETE,
        "/roles/desk/composites",
        Some(view_users),
    )
    .await;
    desk.expect(403, Method::GET, "/users", None).await;

    // A token granted nothing that its roles claim lacks, even if the user holds it now:
    // manage-users was given after the token was issued.
    root.map_management(&desk_id, &["manage-users"]).await;
    desk.expect(403, Method::GET, "/users", None).await;

    // Disabled, then deleted: the token names nobody who may act.
    let fresh = Admin::new(&s, "demo", &login(&s, "demo", "helpdesk").await);
    fresh.expect(200, Method::GET, "/users", None).await;
    root.expect(
        204,
        Method::PUT,
        &format!("/users/{desk_id}"),
        Some(json!({"enabled": false})),
    )
    .await;
    fresh.expect(401, Method::GET, "/users", None).await;
    let other_id = root.user_with("other-desk", &["view-users"]).await;
    let other = Admin::new(&s, "demo", &login(&s, "demo", "other-desk").await);
    other.expect(200, Method::GET, "/users", None).await;
    root.expect(204, Method::DELETE, &format!("/users/{other_id}"), None)
        .await;
    other.expect(401, Method::GET, "/users", None).await;
}

/// A confidential client with a service account holding `roles` of realm-management; returns
/// its internal id and secret.
async fn robot(root: &Admin<'_>, client_id: &str, roles: &[&str]) -> (String, String) {
    let uuid = root
        .create(
            "/clients",
            json!({"clientId": client_id, "serviceAccountsEnabled": true,
                   "publicClient": false, "secret": format!("{client_id}-secret")}),
        )
        .await;
    let account = root
        .ok(&format!("/clients/{uuid}/service-account-user"))
        .await;
    root.map_management(account["id"].as_str().unwrap(), roles)
        .await;
    (uuid, format!("{client_id}-secret"))
}

async fn client_token(server: &TestServer, client_id: &str, secret: &str) -> String {
    server
        .token(
            &[("grant_type", "client_credentials")],
            Some((client_id, secret)),
        )
        .await
        .access_token()
}

#[tokio::test]
async fn service_account_rights_follow_its_client() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    let (uuid, secret) = robot(&root, "robot", &["view-users"]).await;
    let bot = Admin::new(&s, "demo", &client_token(&s, "robot", &secret).await);
    bot.expect(200, Method::GET, "/users", None).await;
    let client = format!("/clients/{uuid}");

    root.expect(204, Method::PUT, &client, Some(json!({"enabled": false})))
        .await;
    bot.expect(401, Method::GET, "/users", None).await;
    root.expect(204, Method::PUT, &client, Some(json!({"enabled": true})))
        .await;
    bot.expect(200, Method::GET, "/users", None).await;

    root.expect(
        204,
        Method::PUT,
        &client,
        Some(json!({"serviceAccountsEnabled": false})),
    )
    .await;
    bot.expect(401, Method::GET, "/users", None).await;
    root.expect(
        204,
        Method::PUT,
        &client,
        Some(json!({"serviceAccountsEnabled": true})),
    )
    .await;
    bot.expect(200, Method::GET, "/users", None).await;

    root.expect(204, Method::DELETE, &client, None).await;
    bot.expect(401, Method::GET, "/users", None).await;
}

#[tokio::test]
async fn exchanged_tokens_are_not_admin_credentials() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    let alice_id = root.ok("/users?username=alice&exact=true").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    root.map_management(&alice_id, &["view-users"]).await;
    let subject = s.alice(None).await.access_token();
    Admin::new(&s, "demo", &subject)
        .expect(200, Method::GET, "/users", None)
        .await;
    let exchanged = s
        .token(
            &[("grant_type", EXCHANGE), ("subject_token", &subject)],
            Some(("requester-client", "requester-secret")),
        )
        .await
        .access_token();
    Admin::new(&s, "demo", &exchanged)
        .expect(401, Method::GET, "/users", None)
        .await;
}

#[tokio::test]
async fn a_more_powerful_client_stays_out_of_reach() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    let (boss, _) = robot(&root, "boss-robot", &["realm-admin"]).await;
    let (minion, _) = robot(&root, "minion-robot", &["view-users"]).await;
    root.user_with("clientdesk", &["manage-clients", "view-clients"])
        .await;
    root.user_with("viewer", &["view-clients"]).await;
    let desk = Admin::new(&s, "demo", &login(&s, "demo", "clientdesk").await);
    let viewer = Admin::new(&s, "demo", &login(&s, "demo", "viewer").await);

    // Whoever holds the boss robot's credentials is realm-admin: no secret, no change.
    let boss_path = format!("/clients/{boss}");
    for caller in [&desk, &viewer] {
        caller
            .expect(
                403,
                Method::GET,
                &format!("{boss_path}/client-secret"),
                None,
            )
            .await;
    }
    desk.expect(
        403,
        Method::POST,
        &format!("{boss_path}/client-secret"),
        None,
    )
    .await;
    desk.expect(
        403,
        Method::PUT,
        &boss_path,
        Some(json!({"secret": "known-to-me"})),
    )
    .await;
    desk.expect(403, Method::DELETE, &boss_path, None).await;
    // A client whose service account holds only what the caller could grant is fine... but
    // view-users is administration the client desk does not hold.
    desk.expect(
        403,
        Method::GET,
        &format!("/clients/{minion}/client-secret"),
        None,
    )
    .await;
    let requester = desk.client_uuid("requester-client").await;
    let secret = desk
        .ok(&format!("/clients/{requester}/client-secret"))
        .await;
    assert_eq!(secret["value"], "requester-secret");
    assert_eq!(
        desk.status(
            Method::POST,
            &format!("/clients/{requester}/client-secret"),
            None
        )
        .await,
        200
    );
    // The superuser may do everything.
    root.expect(
        200,
        Method::GET,
        &format!("{boss_path}/client-secret"),
        None,
    )
    .await;
}

/// A realm whose one user and one client have fixed ids, as an export from elsewhere has.
fn realm_with_fixed_ids(name: &str, password: &str) -> Value {
    json!({
        "realm": name,
        "clients": [{"id": "shared-client-id", "clientId": "app", "secret": "app-secret",
                     "directAccessGrantsEnabled": true}],
        "users": [{"id": "shared-user-id", "username": "sam", "enabled": true,
                   "credentials": [{"type": "password", "value": password}]}]
    })
}

#[tokio::test]
async fn the_same_ids_in_two_realms_never_collide() {
    let s = TestServer::start().await;
    let token = s.admin_token().await;
    for (realm, password) in [("one", "sam-one"), ("two", "sam-two")] {
        let reply = s
            .http
            .post(format!("{}/admin/realms", s.base))
            .bearer_auth(&token)
            .json(&realm_with_fixed_ids(realm, password))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 201, "{}", reply.text().await.unwrap());
    }
    // Each realm's sam logs in, and its token works at userinfo and introspection, however the
    // requests interleave (the caches are filled by one realm, then read by the other).
    for _ in 0..2 {
        for (realm, password) in [("one", "sam-one"), ("two", "sam-two")] {
            let form = [
                ("grant_type", "password"),
                ("client_id", "app"),
                ("client_secret", "app-secret"),
                ("username", "sam"),
                ("password", password),
                ("scope", "openid"),
            ];
            let reply = s.post_form(&s.oidc(realm, "token"), &form, None).await;
            assert_eq!(reply.status, 200, "{realm}: {}", reply.text);
            let access = reply.access_token();
            let userinfo = s.get(&s.oidc(realm, "userinfo"), Some(&access)).await;
            assert_eq!(
                (userinfo.status.as_u16(), userinfo.body["sub"].as_str()),
                (200, Some("shared-user-id")),
                "{realm}: {}",
                userinfo.text
            );
            let introspected = s
                .post_form(
                    &s.oidc(realm, "token/introspect"),
                    &[("token", &access)],
                    Some(("app", "app-secret")),
                )
                .await;
            assert_eq!(introspected.body["active"], true, "{realm}");
            assert_eq!(introspected.body["username"], "sam", "{realm}");
            // The other realm knows neither the token nor the password.
            let other = if realm == "one" { "two" } else { "one" };
            let foreign = s.get(&s.oidc(other, "userinfo"), Some(&access)).await;
            assert_eq!(foreign.status, 401, "{}", foreign.text);
        }
    }
    // Disabling one realm's sam leaves the other's alone.
    let one = Admin::new(&s, "one", &token);
    one.expect(
        204,
        Method::PUT,
        "/users/shared-user-id",
        Some(json!({"enabled": false})),
    )
    .await;
    let form = [
        ("grant_type", "password"),
        ("client_id", "app"),
        ("client_secret", "app-secret"),
        ("username", "sam"),
        ("password", "sam-two"),
        ("scope", "openid"),
    ];
    let reply = s.post_form(&s.oidc("two", "token"), &form, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let access = reply.access_token();
    let userinfo = s.get(&s.oidc("two", "userinfo"), Some(&access)).await;
    assert_eq!(userinfo.status, 200, "{}", userinfo.text);
}

#[tokio::test]
async fn a_provider_that_vouches_for_an_administrator_is_out_of_reach() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    root.create("/roles", json!({"name": "partner-staff"}))
        .await;
    root.user_with("realmer", &["manage-realm", "view-realm"])
        .await;
    let realmer = Admin::new(&s, "demo", &login(&s, "demo", "realmer").await);
    let instances = "/identity-provider/instances";
    for alias in ["corp", "partner"] {
        realmer
            .expect(
                201,
                Method::POST,
                instances,
                Some(provider(alias, "staff=partner-staff")),
            )
            .await;
    }
    // An administrator signs in through corp; an ordinary user through partner.
    let boss = root.user_with("boss", &["realm-admin"]).await;
    let alice = root.ok("/users?username=alice&exact=true").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (user, alias) in [(&boss, "corp"), (&alice, "partner")] {
        root.expect(
            204,
            Method::POST,
            &format!("/users/{user}/federated-identity/{alias}"),
            Some(json!({"userId": format!("ext-{alias}"), "userName": "x"})),
        )
        .await;
    }
    // Re-pointing corp at keys of one's own would sign in as the administrator.
    let mut repointed = provider("corp", "staff=partner-staff");
    repointed["config"]["jwksUrl"] = json!("https://attacker.example/jwks");
    realmer
        .expect(
            403,
            Method::PUT,
            &format!("{instances}/corp"),
            Some(repointed),
        )
        .await;
    let stored = realmer.ok(&format!("{instances}/corp")).await;
    assert_eq!(stored["config"]["jwksUrl"], "https://idp.example/jwks");
    // partner vouches only for alice, whom a realm manager may act as.
    let mut repointed = provider("partner", "staff=partner-staff");
    repointed["config"]["jwksUrl"] = json!("https://other.example/jwks");
    realmer
        .expect(
            204,
            Method::PUT,
            &format!("{instances}/partner"),
            Some(repointed),
        )
        .await;
}

#[tokio::test]
async fn client_representations_carry_no_secret_the_caller_may_not_read() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    let (boss, _) = robot(&root, "boss-robot", &["realm-admin"]).await;
    root.user_with("querier", &["query-clients"]).await;
    root.user_with("viewer", &["view-clients"]).await;
    let querier = Admin::new(&s, "demo", &login(&s, "demo", "querier").await);
    let viewer = Admin::new(&s, "demo", &login(&s, "demo", "viewer").await);
    for caller in [&querier, &viewer] {
        let one = caller.ok(&format!("/clients/{boss}")).await;
        assert_eq!(one["clientId"], "boss-robot");
        assert!(one.get("secret").is_none(), "{one}");
        let listed = caller.ok("/clients?clientId=boss-robot").await;
        assert!(listed[0].get("secret").is_none(), "{listed}");
        let all = caller.ok("/clients").await;
        let listed_boss = all
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["clientId"] == "boss-robot")
            .unwrap();
        assert!(listed_boss.get("secret").is_none());
    }
    // view-clients reads an ordinary client's secret; query-clients reads none.
    let requester = root.client_uuid("requester-client").await;
    let seen = viewer.ok(&format!("/clients/{requester}")).await;
    assert_eq!(seen["secret"], "requester-secret");
    let queried = querier.ok(&format!("/clients/{requester}")).await;
    assert!(queried.get("secret").is_none(), "{queried}");
    querier
        .expect(
            403,
            Method::GET,
            &format!("/clients/{requester}/client-secret"),
            None,
        )
        .await;
    // The superuser sees them all.
    assert_eq!(
        root.ok(&format!("/clients/{boss}")).await["secret"],
        "boss-robot-secret"
    );
}

#[tokio::test]
async fn concurrent_changes_never_write_back_a_stale_state() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    let management = root.client_uuid("realm-management").await;
    let manage_users = root.client_role("realm-management", "manage-users").await;
    for delay in [0u64, 2, 5, 10] {
        let name = format!("racer{delay}");
        let id = root.user_with(&name, &["manage-users"]).await;
        let racer = Admin::new(&s, "demo", &login(&s, "demo", &name).await);
        // The user updates itself (a password makes the update slow) while an administrator
        // takes its role away.
        let own_path = format!("/users/{id}");
        let own_update = racer.send(
            Method::PUT,
            &own_path,
            Some(json!({"firstName": "x",
                        "credentials": [{"type": "password", "value": format!("{name}-pass")}]})),
        );
        let demotion = async {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            root.send(
                Method::DELETE,
                &format!("/users/{id}/role-mappings/clients/{management}"),
                Some(manage_users.clone()),
            )
            .await
        };
        let (_, demoted) = tokio::join!(own_update, demotion);
        assert_eq!(demoted.status, 204, "{}", demoted.text);
        let after = root
            .ok(&format!("/users/{id}/role-mappings/clients/{management}"))
            .await;
        assert_eq!(after, json!([]), "delay {delay}");
    }
}

#[tokio::test]
async fn the_clients_administrators_sign_in_with_are_reserved() {
    let s = TestServer::start().await;
    let master = Admin::new(&s, "master", &s.admin_token().await);
    master
        .user_with("clerk", &["manage-clients", "view-clients"])
        .await;
    let clerk = Admin::new(&s, "master", &login(&s, "master", "clerk").await);
    let cli = master.client_uuid("admin-cli").await;
    for (method, body) in [
        (Method::PUT, Some(json!({"fullScopeAllowed": false}))),
        (Method::PUT, Some(json!({"enabled": false}))),
        (Method::DELETE, None),
    ] {
        clerk
            .expect(403, method, &format!("/clients/{cli}"), body)
            .await;
    }
    // The superuser still signs in and administers.
    let fresh = s.admin_token().await;
    Admin::new(&s, "demo", &fresh)
        .expect(200, Method::GET, "/users", None)
        .await;
    // In another realm, the realm-management client is for realm-admin only.
    let root = Admin::new(&s, "demo", &fresh);
    root.user_with("clerk", &["manage-clients", "view-clients"])
        .await;
    let demo_clerk = Admin::new(&s, "demo", &login(&s, "demo", "clerk").await);
    let management = root.client_uuid("realm-management").await;
    demo_clerk
        .expect(
            403,
            Method::PUT,
            &format!("/clients/{management}"),
            Some(json!({"description": "mine"})),
        )
        .await;
    let orders = root.client_uuid("orders-api").await;
    demo_clerk
        .expect(
            204,
            Method::PUT,
            &format!("/clients/{orders}"),
            Some(json!({"description": "mine"})),
        )
        .await;
}

#[tokio::test]
async fn event_paging_and_dates_out_of_range_are_bad_requests() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    for query in [
        "/events?dateFrom=18446744073709551615",
        "/events?dateTo=9223372036854775808",
    ] {
        root.expect(400, Method::GET, query, None).await;
    }
    for query in [
        "/events?first=9223372036854775808",
        "/events?max=18446744073709551615",
    ] {
        root.expect(200, Method::GET, query, None).await;
    }
}

#[tokio::test]
async fn a_client_made_again_does_not_revive_the_old_ones_tokens() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    let body = json!({"clientId": "phoenix", "serviceAccountsEnabled": true,
                      "publicClient": false, "secret": "phoenix-secret"});
    let first = root.create("/clients", body.clone()).await;
    let old = client_token(&s, "phoenix", "phoenix-secret").await;
    assert_eq!(s.introspect(&old).await["active"], true);
    root.expect(204, Method::DELETE, &format!("/clients/{first}"), None)
        .await;
    assert_eq!(s.introspect(&old).await["active"], false);
    // Same name, same id, same secret: still another client.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut again = body;
    again["id"] = json!(first);
    root.create("/clients", again).await;
    assert_eq!(s.introspect(&old).await["active"], false);
    let new = client_token(&s, "phoenix", "phoenix-secret").await;
    assert_eq!(s.introspect(&new).await["active"], true);
}

#[tokio::test]
async fn relative_redirect_uris_are_read_as_keycloak_reads_them() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    // Keycloak's built-in account client, as realm exports carry it: relative to the server.
    let account = root
        .create(
            "/clients",
            json!({"clientId": "account", "publicClient": true,
                   "redirectUris": ["/realms/demo/account/*"]}),
        )
        .await;
    let stored = root.ok(&format!("/clients/{account}")).await;
    assert_eq!(
        stored["redirectUris"],
        json!([format!("{}/realms/demo/account/*", s.base)])
    );
    // With a root URL, relative to it.
    let app = root
        .create(
            "/clients",
            json!({"clientId": "portal", "publicClient": true,
                   "rootUrl": "https://portal.example", "redirectUris": ["/callback"]}),
        )
        .await;
    let stored = root.ok(&format!("/clients/{app}")).await;
    assert_eq!(
        stored["redirectUris"],
        json!(["https://portal.example/callback"])
    );
    // A scheme-relative URI is no path: refused like any non-absolute URI.
    root.expect(
        400,
        Method::POST,
        "/clients",
        Some(json!({"clientId": "odd", "redirectUris": ["//evil.example/cb"]})),
    )
    .await;
}

#[tokio::test]
async fn a_client_rename_never_leaves_its_service_account_behind() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    let (boss, _) = robot(&root, "boss-robot", &["realm-admin"]).await;
    // Someone took the name the service account would move to.
    root.create(
        "/users",
        json!({"username": "service-account-renamed-robot", "enabled": true}),
    )
    .await;
    let reply = root
        .send(
            Method::PUT,
            &format!("/clients/{boss}"),
            Some(json!({"clientId": "renamed-robot"})),
        )
        .await;
    assert_eq!(reply.status, 409, "{}", reply.text);
    // Nothing moved: the client keeps its name and its account, so the guard still finds it.
    assert_eq!(
        root.ok(&format!("/clients/{boss}")).await["clientId"],
        "boss-robot"
    );
    let account = root
        .ok(&format!("/clients/{boss}/service-account-user"))
        .await;
    assert_eq!(account["username"], "service-account-boss-robot");
}
