//! Groups in a partial import: added with their subgroups and members, skipped, or replaced
//! whole as Keycloak replaces them, every role they hand out through the escalation guard.

use serde_json::json;

use super::partial::partial_import;
use super::partial_overwrite::{admin_get, helper_token, realm_with_helper, user};
use super::public_login;
use crate::{TestServer, claims, strings};

fn results_of(reply: &crate::Reply, kind: &str) -> Vec<(String, String)> {
    reply.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resourceType"] == kind)
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["resourceName"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn partial_import_takes_groups_and_their_members() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    realm_with_helper(&server, &admin).await;

    let added = partial_import(
        &server,
        &admin,
        "whole",
        json!({
            "groups": [{"name": "ops", "realmRoles": ["staff"],
                        "subGroups": [{"name": "night"}]}],
            "users": [{"username": "dora", "enabled": true, "groups": ["/ops/night"],
                       "credentials": [{"type": "password", "value": "dora-pw"}]}]
        }),
    )
    .await;
    assert_eq!(added.status, 200, "{}", added.text);
    assert_eq!(added.body["added"], 2, "{}", added.text);
    assert_eq!(
        results_of(&added, "GROUP"),
        [("ADDED".into(), "ops".into())]
    );
    assert_eq!(added.body["notImported"], json!([]), "{}", added.text);
    // dora holds the role of the group above hers.
    let login = public_login(&server, "whole", "admin-cli", "dora", "dora-pw").await;
    let roles = strings(&claims(&login.access_token())["realm_access"]["roles"]);
    assert!(roles.contains(&"staff".to_owned()), "{roles:?}");

    // FAIL refuses on the existing top-level group; SKIP leaves it.
    let failed = partial_import(
        &server,
        &admin,
        "whole",
        json!({"groups": [{"name": "ops"}]}),
    )
    .await;
    assert_eq!(failed.status, 409, "{}", failed.text);
    assert_eq!(failed.body["errorMessage"], "Group '/ops' already exists");
    let skipped = partial_import(
        &server,
        &admin,
        "whole",
        json!({"ifResourceExists": "SKIP", "groups": [{"name": "ops"}]}),
    )
    .await;
    assert_eq!(skipped.body["skipped"], 1, "{}", skipped.text);
    assert_eq!(
        admin_get(&server, &admin, "group-by-path/ops/night")
            .await
            .status,
        200
    );

    // OVERWRITE replaces the group and the groups below it, with their memberships.
    let dora = user(&server, &admin, "dora").await;
    let replaced = partial_import(
        &server,
        &admin,
        "whole",
        json!({
            "ifResourceExists": "OVERWRITE",
            "groups": [{"name": "ops", "subGroups": [{"name": "day"}]}],
            "users": [{"username": "erin", "enabled": true, "groups": ["/ops/day"]}]
        }),
    )
    .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    assert_eq!(
        results_of(&replaced, "GROUP"),
        [("OVERWRITTEN".into(), "ops".into())]
    );
    assert_eq!(
        admin_get(&server, &admin, "group-by-path/ops/night")
            .await
            .status,
        404
    );
    let day = admin_get(&server, &admin, "group-by-path/ops/day").await;
    assert_eq!(day.status, 200, "{}", day.text);
    let members = admin_get(
        &server,
        &admin,
        &format!("groups/{}/members", day.body["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(members.body[0]["username"], "erin", "{}", members.text);
    let dora_groups = admin_get(
        &server,
        &admin,
        &format!("users/{}/groups", dora["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(dora_groups.body, json!([]), "{}", dora_groups.text);
    let ops = admin_get(&server, &admin, "group-by-path/ops").await;
    assert_eq!(ops.body["realmRoles"], json!([]), "{}", ops.text);

    // A group whose path another group already has is refused, nothing written.
    let clash = partial_import(
        &server,
        &admin,
        "whole",
        json!({"groups": [{"name": "ops/day"}, {"name": "fresh"}]}),
    )
    .await;
    assert_eq!(clash.status, 409, "{}", clash.text);
    assert_eq!(
        clash.body["errorMessage"],
        "A group with path '/ops/day' already exists."
    );
    assert_eq!(
        admin_get(&server, &admin, "group-by-path/fresh")
            .await
            .status,
        404
    );

    // A restricted administrator cannot hand out, through a group it imports, a role it
    // could not grant; nothing of that import is written. A harmless group it may add.
    let helper = helper_token(&server).await;
    let escalation = partial_import(
        &server,
        &helper,
        "whole",
        json!({
            "groups": [{"name": "admins", "clientRoles": {"realm-management": ["realm-admin"]}}],
            "users": [{"username": "mole", "enabled": true, "groups": ["/admins"]}]
        }),
    )
    .await;
    assert_eq!(escalation.status, 403, "{}", escalation.text);
    assert_eq!(
        admin_get(&server, &admin, "group-by-path/admins")
            .await
            .status,
        404
    );
    let mole = admin_get(&server, &admin, "users?username=mole&exact=true").await;
    assert_eq!(mole.body, json!([]));
    let harmless = partial_import(
        &server,
        &helper,
        "whole",
        json!({"groups": [{"name": "helpers"}]}),
    )
    .await;
    assert_eq!(harmless.status, 200, "{}", harmless.text);
    // Nor may it replace a group that confers a role it could not grant.
    let root_group = partial_import(
        &server,
        &admin,
        "whole",
        json!({"groups": [{"name": "root-only",
                           "clientRoles": {"realm-management": ["realm-admin"]}}]}),
    )
    .await;
    assert_eq!(root_group.status, 200, "{}", root_group.text);
    let takeover = partial_import(
        &server,
        &helper,
        "whole",
        json!({"ifResourceExists": "OVERWRITE", "groups": [{"name": "root-only"}]}),
    )
    .await;
    assert_eq!(takeover.status, 403, "{}", takeover.text);
}
