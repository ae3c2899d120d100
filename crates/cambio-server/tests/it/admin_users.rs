//! Admin API for users, role mappings, sessions, roles and client scopes (demo realm).

use reqwest::Method;
use serde_json::{Value, json};

use crate::{Reply, TestServer, claims, header_value, strings};

/// JSON admin calls against `/admin/realms/demo` with one bearer token.
struct AdminApi<'a> {
    server: &'a TestServer,
    token: Option<String>,
}

impl<'a> AdminApi<'a> {
    fn new(server: &'a TestServer, token: &str) -> Self {
        AdminApi {
            server,
            token: Some(token.to_owned()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/admin/realms/demo{path}", self.server.base)
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.server.http.request(method, self.url(path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Reply {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }
    async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }
    async fn delete(&self, path: &str, body: Option<Value>) -> Reply {
        self.send(Method::DELETE, path, body).await
    }

    /// GET that must succeed.
    async fn ok(&self, path: &str) -> Value {
        let reply = self.get(path).await;
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.text);
        reply.body
    }

    /// POST that must answer 201; returns the new id (last segment of `Location`).
    async fn create(&self, path: &str, body: Value) -> String {
        let reply = self.post(path, body).await;
        assert_eq!(reply.status, 201, "POST {path}: {}", reply.text);
        let location = header_value(&reply, "location");
        assert!(location.starts_with(&self.url(path)), "{location}");
        location.rsplit('/').next().unwrap().to_owned()
    }

    /// The internal id of a demo client.
    async fn client_uuid(&self, client_id: &str) -> String {
        let list = self.ok(&format!("/clients?clientId={client_id}")).await;
        list[0]["id"].as_str().unwrap().to_owned()
    }

    async fn user_id(&self, username: &str) -> String {
        let list = self
            .ok(&format!("/users?username={username}&exact=true"))
            .await;
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        list[0]["id"].as_str().unwrap().to_owned()
    }

    /// A client role by name, as `[{"id", "name"}]` for a mapping body.
    async fn client_role(&self, client_uuid: &str, name: &str) -> Value {
        let role = self
            .ok(&format!("/clients/{client_uuid}/roles/{name}"))
            .await;
        json!([{"id": role["id"], "name": role["name"]}])
    }
}

fn assert_status(reply: &Reply, status: u16) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.text);
}

fn assert_admin_error(reply: &Reply, status: u16, message: &str) {
    assert_eq!(
        (reply.status.as_u16(), reply.body["errorMessage"].as_str()),
        (status, Some(message)),
        "{}",
        reply.text
    );
}

/// A password grant by subject-client in the demo realm.
async fn login(server: &TestServer, username: &str, password: &str) -> Reply {
    server
        .token(
            &[
                ("grant_type", "password"),
                ("client_id", "subject-client"),
                ("client_secret", "subject-secret"),
                ("username", username),
                ("password", password),
            ],
            None,
        )
        .await
}

#[tokio::test]
async fn user_lifecycle_password_and_role_mappings() {
    let s = TestServer::start().await;
    let admin = AdminApi::new(&s, &s.admin_token().await);

    let id = admin
        .create(
            "/users",
            json!({
                "username": "Bob",
                "enabled": true,
                "email": "Bob@Example.com",
                "firstName": "Bob",
                "lastName": "Builder",
                "attributes": {"team": ["blue"]},
                "realmRoles": ["offline_access"],
                "credentials": [{"type": "password", "value": "bob-pass", "temporary": false}]
            }),
        )
        .await;
    let bob = admin.ok(&format!("/users/{id}")).await;
    assert_eq!(bob["id"], id.as_str());
    assert_eq!(bob["username"], "bob");
    assert_eq!(bob["email"], "bob@example.com");
    assert_eq!(bob["enabled"], true);
    assert_eq!(bob["attributes"]["team"], json!(["blue"]));
    assert!(bob.get("credentials").is_none() && !bob.to_string().contains("argon2"));

    // Duplicates, unknown ids, bad bodies.
    assert_admin_error(
        &admin
            .post("/users", json!({"username": "BOB", "enabled": true}))
            .await,
        409,
        "User exists with same username",
    );
    assert_admin_error(
        &admin
            .post(
                "/users",
                json!({"username": "bob2", "email": "bob@example.com"}),
            )
            .await,
        409,
        "User exists with same email",
    );
    let missing = admin.get("/users/no-such-user").await;
    assert_admin_error(&missing, 404, "User not found");
    assert_eq!(missing.body["error"], "User not found");
    assert_admin_error(
        &admin.post("/users", json!({"enabled": true})).await,
        400,
        "User name is missing",
    );
    let bad = s
        .http
        .post(admin.url("/users"))
        .bearer_auth(admin.token.as_deref().unwrap())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // Searching and counting (service accounts are left out of plain lists).
    let found = admin.ok("/users?search=bo").await;
    assert_eq!(
        strings(&json!(
            found
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["username"].clone())
                .collect::<Vec<_>>()
        )),
        ["bob"]
    );
    assert_eq!(
        admin
            .ok("/users?search=*uild*")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        admin
            .ok("/users?username=bo")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        admin
            .ok("/users?username=bo&exact=true")
            .await
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        admin.ok("/users?email=bob@example.com").await[0]["id"],
        id.as_str()
    );
    assert_eq!(
        admin
            .ok("/users?q=team:blue")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(admin.ok("/users/count").await, 2, "alice and bob");
    assert_eq!(
        admin
            .ok("/users?first=1&max=1")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // The password works; reset-password replaces it.
    assert_status(&login(&s, "bob", "bob-pass").await, 200);
    assert_admin_error(
        &admin
            .put(
                &format!("/users/{id}/reset-password"),
                json!({"type": "password", "value": ""}),
            )
            .await,
        400,
        "Empty password not allowed",
    );
    let reset = admin
        .put(
            &format!("/users/{id}/reset-password"),
            json!({"type": "password", "value": "new-pass", "temporary": false}),
        )
        .await;
    assert_status(&reset, 204);
    assert_eq!(login(&s, "bob", "bob-pass").await.error(), "invalid_grant");
    let token = login(&s, "bob", "new-pass").await.access_token();
    assert!(
        claims(&token)["resource_access"]
            .get("orders-api")
            .is_none()
    );

    // A client role mapping shows in the mappings and in the next token; removal too.
    let orders = admin.client_uuid("orders-api").await;
    let view_orders = admin.client_role(&orders, "view-orders").await;
    let mapping = format!("/users/{id}/role-mappings/clients/{orders}");
    assert_status(&admin.post(&mapping, view_orders.clone()).await, 204);
    let mappings = admin.ok(&format!("/users/{id}/role-mappings")).await;
    assert_eq!(
        mappings["clientMappings"]["orders-api"]["id"],
        orders.as_str()
    );
    assert_eq!(
        mappings["clientMappings"]["orders-api"]["client"],
        "orders-api"
    );
    assert_eq!(
        mappings["clientMappings"]["orders-api"]["mappings"][0]["name"],
        "view-orders"
    );
    assert_eq!(admin.ok(&mapping).await[0]["name"], "view-orders");
    assert_eq!(
        admin.ok(&format!("{mapping}/composite")).await[0]["name"],
        "view-orders"
    );
    assert_eq!(admin.ok(&format!("{mapping}/available")).await, json!([]));
    let token = login(&s, "bob", "new-pass").await.access_token();
    assert_eq!(
        strings(&claims(&token)["resource_access"]["orders-api"]["roles"]),
        ["view-orders"]
    );
    assert_status(&admin.delete(&mapping, Some(view_orders)).await, 204);
    let token = login(&s, "bob", "new-pass").await.access_token();
    assert!(
        claims(&token)["resource_access"]
            .get("orders-api")
            .is_none()
    );
    assert_eq!(admin.ok(&mapping).await, json!([]));
    assert_admin_error(
        &admin
            .post(&mapping, json!([{"name": "no-such-role"}]))
            .await,
        404,
        "Role not found",
    );

    // Realm mappings: direct ones, and effective ones with the default roles.
    let realm_mapping = format!("/users/{id}/role-mappings/realm");
    assert_eq!(
        admin.ok(&realm_mapping).await,
        json!([]),
        "realmRoles are ignored on create"
    );
    let effective = admin.ok(&format!("{realm_mapping}/composite")).await;
    let names: Vec<Value> = effective
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(
        strings(&json!(names)),
        ["offline_access", "uma_authorization"]
    );

    // Partial update; usernames stay unique.
    assert_status(
        &admin
            .put(&format!("/users/{id}"), json!({"firstName": "Robert"}))
            .await,
        204,
    );
    let bob = admin.ok(&format!("/users/{id}")).await;
    assert_eq!(
        (bob["firstName"].as_str(), bob["email"].as_str()),
        (Some("Robert"), Some("bob@example.com"))
    );
    assert_admin_error(
        &admin
            .put(&format!("/users/{id}"), json!({"username": "alice"}))
            .await,
        409,
        "User exists with same username",
    );
    assert_status(
        &admin
            .put(&format!("/users/{id}"), json!({"username": "robert"}))
            .await,
        204,
    );
    assert_status(&login(&s, "robert", "new-pass").await, 200);

    // Federated identities: to a provider that exists (404 before it does).
    let link = format!("/users/{id}/federated-identity/github");
    assert_status(
        &admin
            .post(&link, json!({"userId": "gh-1", "userName": "rob"}))
            .await,
        404,
    );
    admin
        .create(
            "/identity-provider/instances",
            json!({"alias": "github", "providerId": "oidc", "enabled": true,
                   "config": {"issuer": "https://github.example", "jwksUrl": "https://github.example/jwks"}}),
        )
        .await;
    assert_status(
        &admin
            .post(&link, json!({"userId": "gh-1", "userName": "rob"}))
            .await,
        204,
    );
    assert_admin_error(
        &admin
            .post(&link, json!({"userId": "gh-2", "userName": "rob"}))
            .await,
        409,
        "User is already linked with provider",
    );
    let alice = admin.user_id("alice").await;
    let other = admin
        .post(
            &format!("/users/{alice}/federated-identity/github"),
            json!({"userId": "gh-1"}),
        )
        .await;
    assert_status(&other, 409);
    let links = admin.ok(&format!("/users/{id}/federated-identity")).await;
    assert_eq!(
        links,
        json!([{"identityProvider": "github", "userId": "gh-1", "userName": "rob"}])
    );
    assert_eq!(
        admin.ok("/users?idpAlias=github").await[0]["id"],
        id.as_str()
    );
    assert_status(&admin.delete(&link, None).await, 204);
    assert_status(&admin.delete(&link, None).await, 404);

    // Deleting (a DELETE may carry a JSON body) ends the user.
    let token = login(&s, "robert", "new-pass").await.access_token();
    assert_status(
        &admin
            .delete(&format!("/users/{id}/"), Some(json!({})))
            .await,
        204,
    );
    assert_status(&admin.get(&format!("/users/{id}")).await, 404);
    assert_eq!(
        login(&s, "robert", "new-pass").await.error(),
        "invalid_grant"
    );
    assert_eq!(s.introspect(&token).await["active"], false);
}

#[tokio::test]
async fn restricted_admin_cannot_escalate() {
    let s = TestServer::start().await;
    let root = AdminApi::new(&s, &s.admin_token().await);
    let management = root.client_uuid("realm-management").await;
    let orders = root.client_uuid("orders-api").await;

    // A helpdesk user holding only manage-users and view-users of realm-management.
    let helpdesk = root
        .create(
            "/users",
            json!({"username": "helpdesk", "enabled": true,
                   "credentials": [{"type": "password", "value": "helpdesk-pass"}]}),
        )
        .await;
    let mut roles = root.client_role(&management, "manage-users").await;
    let view_users = root.client_role(&management, "view-users").await;
    roles.as_array_mut().unwrap().push(view_users[0].clone());
    let mapping = format!("/users/{helpdesk}/role-mappings/clients/{management}");
    assert_status(&root.post(&mapping, roles).await, 204);
    let token = login(&s, "helpdesk", "helpdesk-pass").await.access_token();
    assert_eq!(
        strings(&claims(&token)["resource_access"]["realm-management"]["roles"]),
        ["manage-users", "view-users"]
    );
    let desk = AdminApi::new(&s, &token);

    // It manages users...
    let carol = desk
        .create("/users", json!({"username": "carol", "enabled": true}))
        .await;
    assert_eq!(
        desk.ok(&format!("/users/{carol}")).await["username"],
        "carol"
    );
    // ...but cannot hand out administration it lacks, to others or to itself.
    let carol_management = format!("/users/{carol}/role-mappings/clients/{management}");
    for role in ["realm-admin", "manage-clients", "manage-realm"] {
        let body = root.client_role(&management, role).await;
        assert_status(&desk.post(&carol_management, body.clone()).await, 403);
        assert_status(&desk.post(&mapping, body).await, 403);
    }
    // Roles it holds, and application roles, it may grant.
    let body = root.client_role(&management, "view-users").await;
    assert_status(&desk.post(&carol_management, body).await, 204);
    let view_orders = root.client_role(&orders, "view-orders").await;
    assert_status(
        &desk
            .post(
                &format!("/users/{carol}/role-mappings/clients/{orders}"),
                view_orders,
            )
            .await,
        204,
    );
    // A realm role that contains realm-admin is administration too.
    root.create("/roles", json!({"name": "sneaky"})).await;
    let realm_admin = root.client_role(&management, "realm-admin").await;
    assert_status(
        &root.post("/roles/sneaky/composites", realm_admin).await,
        204,
    );
    let sneaky = root.ok("/roles/sneaky").await;
    assert_status(
        &desk
            .post(
                &format!("/users/{carol}/role-mappings/realm"),
                json!([{"id": sneaky["id"]}]),
            )
            .await,
        403,
    );
    // Nor may it take over a user with more rights than its own.
    let boss = root
        .create("/users", json!({"username": "boss", "enabled": true}))
        .await;
    assert_status(
        &root
            .post(
                &format!("/users/{boss}/role-mappings/realm"),
                json!([{"name": "sneaky"}]),
            )
            .await,
        204,
    );
    assert_status(
        &desk
            .put(
                &format!("/users/{boss}/reset-password"),
                json!({"type": "password", "value": "mine"}),
            )
            .await,
        403,
    );
    assert_status(
        &desk
            .put(
                &format!("/users/{boss}"),
                json!({"email": "me@example.com"}),
            )
            .await,
        403,
    );
    assert_status(&desk.delete(&format!("/users/{boss}"), None).await, 403);
    assert_status(
        &root
            .put(
                &format!("/users/{boss}/reset-password"),
                json!({"value": "boss-pass"}),
            )
            .await,
        204,
    );
    // Realm roles are beyond manage-users.
    assert_status(&desk.get("/roles").await, 403);
    assert_status(&desk.post("/roles", json!({"name": "x"})).await, 403);

    // A token without realm-management roles, and no token at all.
    let alice = AdminApi::new(&s, &s.alice(None).await.access_token());
    assert_status(&alice.get("/users").await, 403);
    assert_status(&alice.post("/users", json!({"username": "eve"})).await, 403);
    let anonymous = AdminApi {
        server: &s,
        token: None,
    };
    assert_status(&anonymous.get("/users").await, 401);
    assert_status(
        &anonymous.post("/users", json!({"username": "eve"})).await,
        401,
    );
}

#[tokio::test]
async fn sessions_can_be_listed_and_ended() {
    let s = TestServer::start().await;
    let admin = AdminApi::new(&s, &s.admin_token().await);
    let alice = admin.user_id("alice").await;
    let subject = admin.client_uuid("subject-client").await;

    let login = s.alice(None).await;
    let token = login.access_token();
    let sessions = admin.ok(&format!("/users/{alice}/sessions")).await;
    let list = sessions.as_array().unwrap();
    assert_eq!(list.len(), 1, "{sessions}");
    assert_eq!(list[0]["userId"], alice.as_str());
    assert_eq!(list[0]["username"], "alice");
    assert_eq!(list[0]["clients"][&subject], "subject-client");
    assert_eq!(list[0]["id"], claims(&token)["sid"]);
    assert_eq!(s.introspect(&token).await["active"], true);

    let sid = list[0]["id"].as_str().unwrap().to_owned();
    assert_status(
        &admin
            .delete(&format!("/sessions/{sid}"), Some(json!({})))
            .await,
        204,
    );
    assert_eq!(s.introspect(&token).await["active"], false);
    let refreshed = s
        .refresh(login.body["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(refreshed.status, 400, "{}", refreshed.text);
    assert_eq!(
        admin.ok(&format!("/users/{alice}/sessions")).await,
        json!([])
    );
    assert_status(&admin.delete(&format!("/sessions/{sid}"), None).await, 404);
    assert_status(&admin.delete("/sessions/no-such-session", None).await, 404);

    // Offline sessions are listed per client; logout ends online and offline sessions.
    let online = s.alice(None).await.access_token();
    let offline = s.alice(Some("offline_access")).await;
    let offline_list = admin
        .ok(&format!("/users/{alice}/offline-sessions/{subject}"))
        .await;
    assert_eq!(offline_list.as_array().unwrap().len(), 1, "{offline_list}");
    assert_eq!(
        admin
            .ok(&format!("/users/{alice}/sessions"))
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_status(
        &admin
            .send(Method::POST, &format!("/users/{alice}/logout"), None)
            .await,
        204,
    );
    assert_eq!(s.introspect(&online).await["active"], false);
    assert_eq!(s.introspect(&offline.access_token()).await["active"], false);
    assert_eq!(
        admin.ok(&format!("/users/{alice}/sessions")).await,
        json!([])
    );
    assert_eq!(
        admin
            .ok(&format!("/users/{alice}/offline-sessions/{subject}"))
            .await,
        json!([])
    );
    assert_status(
        &admin
            .get(&format!("/users/{alice}/offline-sessions/no-such-client"))
            .await,
        404,
    );
}

#[tokio::test]
async fn realm_and_client_roles_with_composites() {
    let s = TestServer::start().await;
    let admin = AdminApi::new(&s, &s.admin_token().await);

    let created = admin
        .post(
            "/roles",
            json!({"name": "auditor", "description": "Reads logs"}),
        )
        .await;
    assert_status(&created, 201);
    assert_eq!(
        header_value(&created, "location"),
        admin.url("/roles/auditor")
    );
    assert_admin_error(
        &admin.post("/roles", json!({"name": "auditor"})).await,
        409,
        "Role with name auditor already exists",
    );
    assert_admin_error(&admin.get("/roles/nope").await, 404, "Could not find role");
    assert_status(
        &admin
            .post("/roles", json!({"description": "no name"}))
            .await,
        400,
    );
    let auditor = admin.ok("/roles/auditor").await;
    assert_eq!(auditor["description"], "Reads logs");
    assert_eq!(auditor["composite"], false);
    assert_eq!(auditor["clientRole"], false);
    let auditor_id = auditor["id"].as_str().unwrap().to_owned();
    assert_eq!(
        admin.ok(&format!("/roles-by-id/{auditor_id}")).await["name"],
        "auditor"
    );
    let names: Vec<Value> = admin
        .ok("/roles")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert!(strings(&json!(names)).contains(&"auditor".to_owned()));

    // Composites, by id or name.
    admin.create("/roles", json!({"name": "reader"})).await;
    let reader = admin.ok("/roles/reader").await;
    assert_status(
        &admin
            .post("/roles/auditor/composites", json!([{"id": reader["id"]}]))
            .await,
        204,
    );
    let orders = admin.client_uuid("orders-api").await;
    let view_orders = admin.client_role(&orders, "view-orders").await;
    assert_status(
        &admin
            .post("/roles/auditor/composites", view_orders.clone())
            .await,
        204,
    );
    assert_admin_error(
        &admin
            .post("/roles/auditor/composites", json!([{"id": "missing"}]))
            .await,
        404,
        "Could not find composite role",
    );
    let composites = admin.ok("/roles/auditor/composites").await;
    assert_eq!(composites.as_array().unwrap().len(), 2, "{composites}");
    assert_eq!(
        admin.ok("/roles/auditor/composites/realm").await[0]["name"],
        "reader"
    );
    assert_eq!(
        admin
            .ok(&format!("/roles/auditor/composites/clients/{orders}"))
            .await[0]["name"],
        "view-orders"
    );
    assert_eq!(admin.ok("/roles/auditor").await["composite"], true);

    // A user mapped to the composite holds what it contains.
    let alice = admin.user_id("alice").await;
    assert_status(
        &admin
            .post(
                &format!("/users/{alice}/role-mappings/realm"),
                json!([{"name": "auditor"}]),
            )
            .await,
        204,
    );
    let effective = admin
        .ok(&format!("/users/{alice}/role-mappings/realm/composite"))
        .await;
    let names: Vec<Value> = effective
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(
        strings(&json!(names)),
        ["auditor", "offline_access", "reader", "uma_authorization"]
    );
    let token = s.alice(None).await.access_token();
    assert!(strings(&claims(&token)["realm_access"]["roles"]).contains(&"reader".to_owned()));
    assert_eq!(
        admin.ok("/roles/auditor/users").await[0]["username"],
        "alice"
    );

    // Rename, remove a composite, delete a contained role.
    assert_status(
        &admin
            .put(
                "/roles/auditor",
                json!({"name": "auditors", "description": "Audit"}),
            )
            .await,
        204,
    );
    assert_status(&admin.get("/roles/auditor").await, 404);
    assert_eq!(admin.ok("/roles/auditors").await["id"], auditor_id.as_str());
    assert_admin_error(
        &admin
            .put("/roles/auditors", json!({"name": "reader"}))
            .await,
        409,
        "Role with name reader already exists",
    );
    assert_status(
        &admin
            .delete("/roles/auditors/composites", Some(view_orders))
            .await,
        204,
    );
    assert_status(&admin.delete("/roles/reader", Some(json!({}))).await, 204);
    assert_eq!(admin.ok("/roles/auditors/composites").await, json!([]));
    assert_status(
        &admin
            .delete(&format!("/roles-by-id/{auditor_id}"), None)
            .await,
        204,
    );
    assert_status(&admin.get(&format!("/roles-by-id/{auditor_id}")).await, 404);

    // Client roles.
    let created = admin
        .post(
            &format!("/clients/{orders}/roles"),
            json!({"name": "edit-orders"}),
        )
        .await;
    assert_status(&created, 201);
    assert_eq!(
        header_value(&created, "location"),
        admin.url(&format!("/clients/{orders}/roles/edit-orders"))
    );
    assert_admin_error(
        &admin
            .post(
                &format!("/clients/{orders}/roles"),
                json!({"name": "edit-orders"}),
            )
            .await,
        409,
        "Role with name edit-orders already exists",
    );
    let roles = admin.ok(&format!("/clients/{orders}/roles")).await;
    let names: Vec<Value> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(strings(&json!(names)), ["edit-orders", "view-orders"]);
    let edit = admin
        .ok(&format!("/clients/{orders}/roles/edit-orders"))
        .await;
    assert_eq!(
        (edit["clientRole"].as_bool(), edit["containerId"].as_str()),
        (Some(true), Some(orders.as_str()))
    );
    assert_status(
        &admin
            .post(
                &format!("/clients/{orders}/roles/edit-orders/composites"),
                json!([{"name": "view-orders", "clientRole": true, "containerId": orders}]),
            )
            .await,
        204,
    );
    assert_eq!(
        admin
            .ok(&format!("/clients/{orders}/roles/edit-orders/composites"))
            .await[0]["name"],
        "view-orders"
    );
    assert_status(
        &admin
            .put(
                &format!("/clients/{orders}/roles/edit-orders"),
                json!({"description": "Edits"}),
            )
            .await,
        204,
    );
    assert_eq!(
        admin
            .ok(&format!("/clients/{orders}/roles/edit-orders"))
            .await["description"],
        "Edits"
    );
    assert_status(
        &admin
            .delete(&format!("/clients/{orders}/roles/edit-orders"), None)
            .await,
        204,
    );
    assert_status(
        &admin
            .get(&format!("/clients/{orders}/roles/edit-orders"))
            .await,
        404,
    );
    assert_admin_error(
        &admin.get("/clients/no-such-client/roles").await,
        404,
        "Could not find client",
    );
}

#[tokio::test]
async fn client_scopes_and_client_assignment() {
    let s = TestServer::start().await;
    let admin = AdminApi::new(&s, &s.admin_token().await);

    let id = admin
        .create(
            "/client-scopes",
            json!({"name": "orders.read", "description": "Read orders", "protocol": "openid-connect",
                   "attributes": {"include.in.token.scope": "true", "display.on.consent.screen": "false"}}),
        )
        .await;
    let scope = admin.ok(&format!("/client-scopes/{id}")).await;
    assert_eq!(scope["name"], "orders.read");
    assert_eq!(scope["attributes"]["include.in.token.scope"], "true");
    assert_eq!(scope["attributes"]["display.on.consent.screen"], "false");
    assert_admin_error(
        &admin
            .post("/client-scopes", json!({"name": "orders.read"}))
            .await,
        409,
        "Client Scope orders.read already exists",
    );
    assert_status(
        &admin
            .post("/client-scopes", json!({"name": "two words"}))
            .await,
        400,
    );
    assert_admin_error(
        &admin.get("/client-scopes/nope").await,
        404,
        "Could not find client scope",
    );
    let all = admin.ok("/client-scopes").await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "profile")
    );

    // Assigned as an optional scope of subject-client, it can be requested.
    let subject = admin.client_uuid("subject-client").await;
    let optional = format!("/clients/{subject}/optional-client-scopes");
    assert_status(
        &admin.put(&format!("{optional}/{id}"), json!({})).await,
        204,
    );
    let list = admin.ok(&optional).await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id.as_str() && s["name"] == "orders.read"),
        "{list}"
    );
    let client = admin.ok(&format!("/clients/{subject}")).await;
    assert!(strings(&client["optionalClientScopes"]).contains(&"orders.read".to_owned()));
    let token = s.alice(Some("orders.read")).await.access_token();
    assert!(
        claims(&token)["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "orders.read")
    );

    // Renaming follows into the client; deleting takes it off.
    assert_status(
        &admin
            .put(
                &format!("/client-scopes/{id}"),
                json!({"name": "orders.view"}),
            )
            .await,
        204,
    );
    let client = admin.ok(&format!("/clients/{subject}")).await;
    assert!(strings(&client["optionalClientScopes"]).contains(&"orders.view".to_owned()));
    assert_status(
        &admin
            .put(
                &format!("/clients/{subject}/default-client-scopes/{id}"),
                json!({}),
            )
            .await,
        204,
    );
    let client = admin.ok(&format!("/clients/{subject}")).await;
    assert!(strings(&client["defaultClientScopes"]).contains(&"orders.view".to_owned()));
    assert!(!strings(&client["optionalClientScopes"]).contains(&"orders.view".to_owned()));
    assert_status(
        &admin
            .delete(
                &format!("/clients/{subject}/default-client-scopes/{id}"),
                None,
            )
            .await,
        204,
    );
    assert_status(
        &admin.put(&format!("{optional}/{id}"), json!({})).await,
        204,
    );
    assert_status(
        &admin.delete(&format!("/client-scopes/{id}"), None).await,
        204,
    );
    assert_status(&admin.get(&format!("/client-scopes/{id}")).await, 404);
    let client = admin.ok(&format!("/clients/{subject}")).await;
    assert!(!strings(&client["optionalClientScopes"]).contains(&"orders.view".to_owned()));
    assert_status(
        &admin.put(&format!("{optional}/{id}"), json!({})).await,
        404,
    );
}
