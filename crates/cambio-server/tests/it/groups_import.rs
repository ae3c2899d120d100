//! Groups in realm import and export, and on PostgreSQL.

use reqwest::Method;
use serde_json::{Value, json};

use crate::authority::Admin;
use crate::groups::{assert_admin_error, group, realm_role, user_id};
use crate::{TestServer, claims, strings};

fn imported_realm() -> Value {
    json!({
        "realm": "imported-groups",
        "enabled": true,
        "roles": {"realm": [{"name": "auditor"}, {"name": "reader"}],
                  "client": {"ledger": [{"name": "post"}]}},
        "clients": [{"clientId": "ledger", "secret": "ledger-secret",
                     "directAccessGrantsEnabled": true}],
        "groups": [{
            "name": "company",
            "realmRoles": ["auditor"],
            "attributes": {"site": ["north"]},
            "subGroups": [{"name": "finance", "clientRoles": {"ledger": ["post"]},
                           "subGroups": [{"name": "payables"}]}]
        }],
        "users": [{"username": "carol", "enabled": true,
                   "credentials": [{"type": "password", "value": "carol-pass"}],
                   "realmRoles": ["reader"],
                   "groups": ["/company/finance/payables"]}]
    })
}

#[tokio::test]
async fn realm_import_and_export_carry_groups_and_memberships() {
    let s = TestServer::start().await;
    let token = s.admin_token().await;
    let url = format!("{}/admin/realms", s.base);
    let created = s
        .http
        .post(&url)
        .bearer_auth(&token)
        .json(&imported_realm())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let root = Admin::new(&s, "imported-groups", &token);
    let payables = root.ok("/group-by-path/company/finance/payables").await;
    assert_eq!(payables["path"], "/company/finance/payables");
    let company = root.ok("/group-by-path/company").await;
    assert_eq!(company["attributes"], json!({"site": ["north"]}));
    assert_eq!(company["realmRoles"], json!(["auditor"]));

    // carol holds the roles of every group above hers.
    let login = s
        .post_form(
            &s.oidc("imported-groups", "token"),
            &[
                ("grant_type", "password"),
                ("client_id", "ledger"),
                ("client_secret", "ledger-secret"),
                ("username", "carol"),
                ("password", "carol-pass"),
            ],
            None,
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let c = claims(&login.access_token());
    let realm_roles = strings(&c["realm_access"]["roles"]);
    assert!(realm_roles.contains(&"auditor".to_owned()), "{c}");
    assert!(realm_roles.contains(&"reader".to_owned()), "{c}");
    assert_eq!(strings(&c["resource_access"]["ledger"]["roles"]), ["post"]);

    // The partial export gives the groups back, nested, with names for roles.
    let export = s
        .http
        .post(format!(
            "{}/admin/realms/imported-groups/partial-export?exportGroupsAndRoles=true",
            s.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(export.status(), 200);
    let export: Value = export.json().await.unwrap();
    let groups = &export["groups"];
    assert_eq!(groups[0]["name"], "company");
    assert_eq!(groups[0]["realmRoles"], json!(["auditor"]));
    assert_eq!(
        groups[0]["subGroups"][0]["clientRoles"],
        json!({"ledger": ["post"]})
    );
    assert_eq!(
        groups[0]["subGroups"][0]["subGroups"][0]["path"],
        "/company/finance/payables"
    );

    // Exported again under another name, the realm imports with the same groups, and the
    // user's membership (by path) follows.
    let mut again = imported_realm();
    again["realm"] = json!("imported-groups-2");
    again["groups"] = groups.clone();
    strip_ids(&mut again["groups"]);
    let created = s
        .http
        .post(&url)
        .bearer_auth(&token)
        .json(&again)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let copy = Admin::new(&s, "imported-groups-2", &token);
    let carol = copy.ok("/users?username=carol&exact=true").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        copy.ok(&format!("/users/{carol}/groups")).await[0]["path"],
        "/company/finance/payables"
    );

    // A membership of a group the representation lacks fails the whole import.
    let mut broken = imported_realm();
    broken["realm"] = json!("imported-groups-3");
    broken["users"][0]["groups"] = json!(["/company/nowhere"]);
    let refused = s
        .http
        .post(&url)
        .bearer_auth(&token)
        .json(&broken)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["errorMessage"], "Group /company/nowhere not found");
    let realms = s.http.get(&url).bearer_auth(&token).send().await.unwrap();
    let realms: Value = realms.json().await.unwrap();
    assert!(!realms.to_string().contains("imported-groups-3"));
}

/// Removes `id` (and `parentId`) at every level of nested group representations.
fn strip_ids(groups: &mut Value) {
    for group in groups.as_array_mut().into_iter().flatten() {
        if let Some(object) = group.as_object_mut() {
            object.remove("id");
            object.remove("parentId");
        }
        strip_ids(&mut group["subGroups"]);
    }
}

/// Groups on PostgreSQL: sibling names are unique in the database too, a move changes the
/// unique key, and groups and memberships come back after a restart (skipped without
/// `CAMBIO_TEST_POSTGRES_URL`, like the other PostgreSQL tests).
#[tokio::test]
async fn groups_on_postgres_survive_a_restart() {
    let Some(db) = cambio_store::conformance::PgTestDatabase::create("server_groups").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut config = crate::demo_config();
        config.database_url = db.url().to_owned();
        config.data_dir = Some(dir.path().to_owned());
        config
    };
    let s = TestServer::start_with(config()).await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    root.create("/roles", json!({"name": "auditor"})).await;
    let company = group(&root, None, "company").await;
    let finance = group(&root, None, "finance").await;
    group(&root, Some(&company), "finance").await;
    root.expect(
        204,
        Method::POST,
        &format!("/groups/{company}/role-mappings/realm"),
        Some(realm_role(&root, "auditor").await),
    )
    .await;
    // Moving the top-level `finance` under `company`, which has a `finance`, is a conflict.
    let moved = root
        .send(
            Method::POST,
            &format!("/groups/{company}/children"),
            Some(json!({"id": finance})),
        )
        .await;
    assert_admin_error(&moved, 409, "Sibling group named 'finance' already exists.");
    root.expect(
        204,
        Method::PUT,
        &format!("/groups/{finance}"),
        Some(json!({"name": "treasury"})),
    )
    .await;
    root.expect(
        204,
        Method::POST,
        &format!("/groups/{company}/children"),
        Some(json!({"id": finance})),
    )
    .await;
    let alice = user_id(&root, "alice").await;
    root.expect(
        204,
        Method::PUT,
        &format!("/users/{alice}/groups/{finance}"),
        None,
    )
    .await;
    let address = s.base.trim_start_matches("http://").to_owned();
    s.stop().await;

    let listener = tokio::net::TcpListener::bind(&address).await.unwrap();
    let s = TestServer::start_on(config(), listener).await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    assert_eq!(
        root.ok(&format!("/groups/{finance}")).await["path"],
        "/company/treasury"
    );
    let c = claims(&s.alice(None).await.access_token());
    assert!(
        strings(&c["realm_access"]["roles"]).contains(&"auditor".to_owned()),
        "{c}"
    );
    s.stop().await;
}

/// Keycloak lets a group name hold `/` and writes paths without escaping it, so one path could
/// name two groups (`b` under `a`, and a top-level `a/b`). Cambio takes such names, from the
/// admin API and from exports, and refuses the second group of an ambiguous path.
#[tokio::test]
async fn group_names_may_hold_slashes_and_a_path_names_one_group() {
    let s = TestServer::start().await;
    let token = s.admin_token().await;
    let root = Admin::new(&s, "master", &token);
    let platform = group(&root, None, "platform").await;
    group(&root, Some(&platform), "red").await;
    let taken = root
        .send(
            Method::POST,
            "/groups",
            Some(json!({"name": "platform/red"})),
        )
        .await;
    assert_admin_error(
        &taken,
        409,
        "A group with path '/platform/red' already exists.",
    );
    let blue = group(&root, None, "team/blue").await;
    let found = root.ok("/group-by-path/team/blue").await;
    assert_eq!(found["id"], blue.as_str());
    assert_eq!(found["name"], "team/blue");
    assert_eq!(found["path"], "/team/blue");
    // A user created in it by path; moving or renaming onto a taken path is refused, with
    // the group's subgroups counted.
    let member = root
        .create(
            "/users",
            json!({"username": "slash-member", "enabled": true, "groups": ["/team/blue"]}),
        )
        .await;
    let groups = root.ok(&format!("/users/{member}/groups")).await;
    assert_eq!(groups[0]["path"], "/team/blue");
    let renamed = root
        .send(
            Method::PUT,
            &format!("/groups/{blue}"),
            Some(json!({"name": "platform/red"})),
        )
        .await;
    assert_admin_error(
        &renamed,
        409,
        "A group with path '/platform/red' already exists.",
    );
    let team = group(&root, None, "team").await;
    let inner = group(&root, Some(&blue), "inner").await;
    let moved = root
        .send(
            Method::POST,
            &format!("/groups/{team}/children"),
            Some(json!({"id": inner, "name": "inner"})),
        )
        .await;
    assert_eq!(moved.status, 204, "{}", moved.text);
    let clash = root
        .send(Method::POST, "/groups", Some(json!({"name": "team/inner"})))
        .await;
    assert_admin_error(
        &clash,
        409,
        "A group with path '/team/inner' already exists.",
    );

    // An export with such names imports, memberships by plain or Keycloak-escaped path.
    let realm = json!({
        "realm": "slashed-groups",
        "enabled": true,
        "groups": [{"name": "ops/oncall"}, {"name": "ops", "subGroups": [{"name": "day"}]}],
        "users": [
            {"username": "ann", "enabled": true, "groups": ["/ops/oncall"]},
            {"username": "ben", "enabled": true, "groups": ["/ops~/oncall", "/ops/day"]}
        ]
    });
    let url = format!("{}/admin/realms", s.base);
    let created = s
        .http
        .post(&url)
        .bearer_auth(&token)
        .json(&realm)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let imported = Admin::new(&s, "slashed-groups", &token);
    let oncall = imported.ok("/group-by-path/ops/oncall").await;
    assert_eq!(oncall["name"], "ops/oncall");
    let members = imported
        .ok(&format!(
            "/groups/{}/members",
            oncall["id"].as_str().unwrap()
        ))
        .await;
    let mut names: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ann", "ben"]);

    // An export whose paths would name two groups is refused whole, saying which path.
    let ambiguous = json!({
        "realm": "ambiguous-groups",
        "enabled": true,
        "groups": [{"name": "a/b"}, {"name": "a", "subGroups": [{"name": "b"}]}]
    });
    let refused = s
        .http
        .post(&url)
        .bearer_auth(&token)
        .json(&ambiguous)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["errorMessage"],
        "A group with path '/a/b' already exists."
    );
    let gone = s
        .http
        .get(format!("{}/admin/realms/ambiguous-groups", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}
