//! `/admin/realms`: creating a realm from a full representation, reading and changing its
//! settings, deleting it, partial export; and the offline export/import round trip.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{Reply, TestServer, claims, header, header_value, strings};

async fn send(
    server: &TestServer,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut request = server.http.request(method, url);
    if let Some(token) = token {
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

fn realms_url(server: &TestServer) -> String {
    format!("{}/admin/realms", server.base)
}

fn acme() -> Value {
    json!({
        "realm": "acme",
        "displayName": "Acme",
        "accessTokenLifespan": 600,
        "roles": {
            "realm": [
                {"name": "staff", "description": "Staff"},
                {"name": "manager", "composite": true, "composites": {"realm": ["staff"]}},
                {
                    "name": "default-roles-acme",
                    "composite": true,
                    "composites": {"realm": ["offline_access", "uma_authorization"]}
                }
            ],
            "client": {
                "acme-api": [
                    {"name": "read"},
                    {"name": "write", "composite": true, "composites": {"client": {"acme-api": ["read"]}}}
                ]
            }
        },
        "clients": [
            {
                "clientId": "acme-app",
                "secret": "acme-secret",
                "directAccessGrantsEnabled": true,
                "standardFlowEnabled": false
            },
            {"clientId": "acme-api", "bearerOnly": true},
            {
                "clientId": "narrow-app",
                "secret": "narrow-secret",
                "directAccessGrantsEnabled": true,
                "fullScopeAllowed": false
            }
        ],
        "defaultRole": {"name": "default-roles-acme"},
        "scopeMappings": [{"client": "narrow-app", "roles": ["staff"]}],
        "users": [
            {
                "username": "Bob",
                "email": "bob@acme.test",
                "enabled": true,
                "credentials": [{"type": "password", "value": "bob-pass", "temporary": false}],
                "realmRoles": ["manager"],
                "federatedIdentities": [{"identityProvider": "corp", "userId": "b-1", "userName": "bob"}],
                "clientRoles": {"acme-api": ["write"]}
            }
        ]
    })
}

async fn bob(server: &TestServer) -> Reply {
    server
        .post_form(
            &server.oidc("acme", "token"),
            &[
                ("grant_type", "password"),
                ("client_id", "acme-app"),
                ("client_secret", "acme-secret"),
                ("username", "bob"),
                ("password", "bob-pass"),
            ],
            None,
        )
        .await
}

#[tokio::test]
async fn realm_lifecycle() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let url = realms_url(&server);

    let created = send(&server, Method::POST, &url, Some(&admin), Some(acme())).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(header_value(&created, "location"), format!("{url}/acme"));

    // The imported user logs in; the token carries the mapped roles through composites.
    let token = bob(&server).await;
    assert_eq!(token.status, 200, "{}", token.text);
    assert_eq!(token.body["expires_in"], 600);
    let access = claims(&token.access_token());
    assert_eq!(access["iss"], server.realm_url("acme"));
    let realm_roles = strings(&access["realm_access"]["roles"]);
    assert!(realm_roles.contains(&"manager".to_owned()), "{access}");
    assert!(realm_roles.contains(&"staff".to_owned()), "{access}");
    assert!(
        realm_roles.contains(&"offline_access".to_owned()),
        "{access}"
    );
    assert_eq!(
        strings(&access["resource_access"]["acme-api"]["roles"]),
        ["read", "write"]
    );

    assert!(
        realm_roles.contains(&"default-roles-acme".to_owned()),
        "{access}"
    );
    // A client without full scope gets only its scope mappings.
    let narrow = server
        .post_form(
            &server.oidc("acme", "token"),
            &[
                ("grant_type", "password"),
                ("username", "bob"),
                ("password", "bob-pass"),
            ],
            Some(("narrow-app", "narrow-secret")),
        )
        .await;
    let narrow = claims(&narrow.access_token());
    assert_eq!(
        strings(&narrow["realm_access"]["roles"]),
        ["staff"],
        "{narrow}"
    );
    assert!(narrow.get("resource_access").is_none(), "{narrow}");

    let realm = send(
        &server,
        Method::GET,
        &format!("{url}/acme"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(realm.status, 200, "{}", realm.text);
    assert_eq!(realm.body["realm"], "acme");
    assert_eq!(realm.body["displayName"], "Acme");
    assert_eq!(realm.body["accessTokenLifespan"], 600);
    assert_eq!(realm.body["defaultSignatureAlgorithm"], "ES256");
    assert!(realm.body.get("clients").is_none() && realm.body.get("users").is_none());

    let list = send(&server, Method::GET, &url, Some(&admin), None).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let names = strings(&Value::Array(
        list.body
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["realm"].clone())
            .collect(),
    ));
    assert_eq!(names, ["acme", "demo", "master"]);

    // Settings changes reach new tokens.
    let put = send(
        &server,
        Method::PUT,
        &format!("{url}/acme"),
        Some(&admin),
        Some(json!({"accessTokenLifespan": 120})),
    )
    .await;
    assert_eq!(put.status, 204, "{}", put.text);
    assert_eq!(bob(&server).await.body["expires_in"], 120);

    let put = send(
        &server,
        Method::PUT,
        &format!("{url}/acme"),
        Some(&admin),
        Some(json!({"defaultSignatureAlgorithm": "EdDSA"})),
    )
    .await;
    assert_eq!(put.status, 204, "{}", put.text);
    let jwks = server.get(&server.oidc("acme", "certs"), None).await;
    let kinds: Vec<&str> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kty"].as_str())
        .collect();
    assert!(kinds.contains(&"OKP"), "{}", jwks.text);
    let token = bob(&server).await.access_token();
    assert_eq!(header(&token)["alg"], "EdDSA");

    let bad = send(
        &server,
        Method::PUT,
        &format!("{url}/acme"),
        Some(&admin),
        Some(json!({"defaultSignatureAlgorithm": "HS256"})),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    for body in [
        json!({"defaultRoles": ["no-such-role"]}),
        json!({"defaultDefaultClientScopes": ["no-such-scope"]}),
        json!({"accessTokenLifespan": -5}),
    ] {
        let bad = send(
            &server,
            Method::PUT,
            &format!("{url}/acme"),
            Some(&admin),
            Some(body),
        )
        .await;
        assert_eq!(bad.status, 400, "{}", bad.text);
    }

    // Same name again.
    let again = send(&server, Method::POST, &url, Some(&admin), Some(acme())).await;
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(
        again.body["errorMessage"],
        "Conflict detected. See logs for details"
    );
    let invalid = send(
        &server,
        Method::POST,
        &url,
        Some(&admin),
        Some(json!({"realm": "a/b"})),
    )
    .await;
    assert_eq!(invalid.status, 400, "{}", invalid.text);
    let nameless = send(
        &server,
        Method::POST,
        &url,
        Some(&admin),
        Some(json!({"displayName": "x"})),
    )
    .await;
    assert_eq!(nameless.status, 400, "{}", nameless.text);

    // Partial export: clients with masked secrets, roles with composites, no users.
    let export = send(
        &server,
        Method::POST,
        &format!("{url}/acme/partial-export?exportClients=true&exportGroupsAndRoles=true"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(export.status, 200, "{}", export.text);
    let clients = export.body["clients"].as_array().unwrap();
    let app = clients
        .iter()
        .find(|c| c["clientId"] == "acme-app")
        .expect("acme-app exported");
    assert_eq!(app["secret"], "**********");
    assert!(!export.text.contains("acme-secret"));
    let manager = export.body["roles"]["realm"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "manager")
        .unwrap();
    assert_eq!(manager["composites"]["realm"], json!(["staff"]));
    assert!(export.body["roles"]["client"]["acme-api"].is_array());
    assert_eq!(
        export.body["scopeMappings"],
        json!([{"client": "narrow-app", "roles": ["staff"]}])
    );
    assert_eq!(export.body["defaultRoles"], json!(["default-roles-acme"]));
    let users = export.body["users"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(users, 0, "{}", export.text);
    let bare = send(
        &server,
        Method::POST,
        &format!("{url}/acme/partial-export"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(bare.status, 200, "{}", bare.text);
    assert!(bare.body.get("clients").is_none() && bare.body.get("roles").is_none());

    // Renaming moves the realm's URLs.
    let put = send(
        &server,
        Method::PUT,
        &format!("{url}/acme"),
        Some(&admin),
        Some(json!({"realm": "demo"})),
    )
    .await;
    assert_eq!(put.status, 409, "{}", put.text);
    let put = send(
        &server,
        Method::PUT,
        &format!("{url}/acme"),
        Some(&admin),
        Some(json!({"realm": "acme2"})),
    )
    .await;
    assert_eq!(put.status, 204, "{}", put.text);
    assert_eq!(
        send(
            &server,
            Method::GET,
            &format!("{url}/acme"),
            Some(&admin),
            None
        )
        .await
        .status,
        404
    );
    let renamed = send(
        &server,
        Method::GET,
        &format!("{url}/acme2"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(renamed.body["realm"], "acme2");

    let deleted = send(
        &server,
        Method::DELETE,
        &format!("{url}/acme2"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let gone = server
        .post_form(
            &server.oidc("acme2", "token"),
            &[("grant_type", "client_credentials")],
            Some(("acme-app", "acme-secret")),
        )
        .await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    assert_eq!(
        send(
            &server,
            Method::GET,
            &format!("{url}/acme2"),
            Some(&admin),
            None
        )
        .await
        .status,
        404
    );

    // The same representation can be imported again once the realm is gone.
    let recreated = send(&server, Method::POST, &url, Some(&admin), Some(acme())).await;
    assert_eq!(recreated.status, 201, "{}", recreated.text);
    assert_eq!(bob(&server).await.status, 200);

    let master = send(
        &server,
        Method::DELETE,
        &format!("{url}/master"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(master.status, 400, "{}", master.text);
    server.stop().await;
}

#[tokio::test]
async fn realm_endpoints_need_an_administrator() {
    let server = TestServer::start().await;
    let url = realms_url(&server);
    let alice = server.alice(None).await.access_token();

    assert_eq!(
        send(&server, Method::GET, &url, None, None).await.status,
        401
    );
    assert_eq!(
        send(&server, Method::POST, &url, None, Some(acme()))
            .await
            .status,
        401
    );
    assert_eq!(
        send(&server, Method::GET, &format!("{url}/demo"), None, None)
            .await
            .status,
        401
    );
    assert_eq!(
        send(&server, Method::GET, &url, Some("not-a-token"), None)
            .await
            .status,
        401
    );

    assert_eq!(
        send(&server, Method::GET, &url, Some(&alice), None)
            .await
            .status,
        403
    );
    assert_eq!(
        send(&server, Method::POST, &url, Some(&alice), Some(acme()))
            .await
            .status,
        403
    );
    assert_eq!(
        send(
            &server,
            Method::GET,
            &format!("{url}/demo"),
            Some(&alice),
            None
        )
        .await
        .status,
        403
    );
    assert_eq!(
        send(
            &server,
            Method::PUT,
            &format!("{url}/demo"),
            Some(&alice),
            Some(json!({"accessTokenLifespan": 1}))
        )
        .await
        .status,
        403
    );
    assert_eq!(
        send(
            &server,
            Method::DELETE,
            &format!("{url}/demo"),
            Some(&alice),
            None
        )
        .await
        .status,
        403
    );
    assert_eq!(
        send(
            &server,
            Method::POST,
            &format!("{url}/demo/partial-export"),
            Some(&alice),
            None
        )
        .await
        .status,
        403
    );
    // Nothing was created or changed.
    let admin = server.admin_token().await;
    assert_eq!(
        send(
            &server,
            Method::GET,
            &format!("{url}/acme"),
            Some(&admin),
            None
        )
        .await
        .status,
        404
    );
    let demo = send(
        &server,
        Method::GET,
        &format!("{url}/demo"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(demo.body["accessTokenLifespan"], 300);
    server.stop().await;
}

#[tokio::test]
async fn export_import_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::demo_config();
    config.database_url = format!("sqlite://{}", dir.path().join("cambio.db").display());
    config.data_dir = Some(dir.path().to_owned());
    let server = TestServer::start_in(dir.path()).await;

    let mut rep = cambio_server::realm_io::export_realm(&config, "demo")
        .await
        .unwrap();
    let text = serde_json::to_string(&rep).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let alice = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .unwrap();
    let hash = alice["credentials"][0]["hashedSaltedValue"]
        .as_str()
        .unwrap();
    assert!(hash.starts_with("$argon2"), "{alice}");
    assert_eq!(
        strings(&alice["clientRoles"]["orders-api"]),
        ["view-orders"]
    );
    let subject = doc["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clientId"] == "subject-client")
        .unwrap();
    assert_eq!(subject["secret"], "subject-secret");
    let account = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "service-account-requester-client")
        .unwrap();
    assert_eq!(account["serviceAccountClientId"], "requester-client");

    // Into the same database under another name (and a fresh id), while the server runs.
    rep.realm = Some("copy".into());
    rep.id = None;
    cambio_server::realm_io::import_realm(&config, &rep)
        .await
        .unwrap();
    let again = cambio_server::realm_io::import_realm(&config, &rep).await;
    assert!(
        matches!(
            again,
            Err(cambio_server::realm_io::RealmIoError::Conflict(_))
        ),
        "{again:?}"
    );
    server.stop().await;

    let server = TestServer::start_in(dir.path()).await;
    let login = server
        .post_form(
            &server.oidc("copy", "token"),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice"),
            ],
            Some(("subject-client", "subject-secret")),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let access = claims(&login.access_token());
    assert_eq!(access["iss"], server.realm_url("copy"));
    assert_eq!(
        strings(&access["resource_access"]["orders-api"]["roles"]),
        ["view-orders"]
    );
    assert!(
        strings(&access["aud"]).contains(&"requester-client".to_owned()),
        "{access}"
    );
    let service = server
        .post_form(
            &server.oidc("copy", "token"),
            &[("grant_type", "client_credentials")],
            Some(("requester-client", "requester-secret")),
        )
        .await;
    assert_eq!(service.status, 200, "{}", service.text);
    // The exchange the demo realm exists for works in the copy too.
    let exchanged = server
        .post_form(
            &server.oidc("copy", "token"),
            &[
                ("grant_type", crate::EXCHANGE),
                ("subject_token", &login.access_token()),
                ("audience", "orders-api"),
            ],
            Some(("requester-client", "requester-secret")),
        )
        .await;
    assert_eq!(exchanged.status, 200, "{}", exchanged.text);
    server.stop().await;
}

#[tokio::test]
async fn a_disabled_realm_serves_no_protocol_endpoint() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let url = format!("{}/demo", realms_url(&server));
    let reply = send(
        &server,
        Method::PUT,
        &url,
        Some(&admin),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let token = server
        .token(
            &[("grant_type", "client_credentials")],
            Some(("requester-client", "requester-secret")),
        )
        .await;
    assert_eq!(token.status, 404, "{}", token.text);
    let discovery = server
        .get(
            &format!(
                "{}/.well-known/openid-configuration",
                server.realm_url("demo")
            ),
            None,
        )
        .await;
    assert_eq!(discovery.status, 404);
    // Administrators still reach it, and can turn it back on.
    let reply = send(&server, Method::GET, &url, Some(&admin), None).await;
    assert_eq!(
        (reply.status.as_u16(), reply.body["enabled"].as_bool()),
        (200, Some(false))
    );
    let reply = send(
        &server,
        Method::PUT,
        &url,
        Some(&admin),
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(reply.status, 204);
    let token = server
        .token(
            &[("grant_type", "client_credentials")],
            Some(("requester-client", "requester-secret")),
        )
        .await;
    assert_eq!(token.status, 200, "{}", token.text);
}
