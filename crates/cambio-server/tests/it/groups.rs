//! Groups: the admin API with Keycloak's paths and representations, roles through groups in
//! every place roles are computed (tokens, exchange, userinfo, admin rights), the group
//! membership mapper, realm import and export, and attacks on the escalation guard from a
//! restricted administrator.

use reqwest::Method;
use serde_json::{Value, json};

use crate::authority::{Admin, login};
use crate::{Reply, TestServer, claims, strings};

/// Creates a group (top-level, or under `parent`) and returns its id.
pub(crate) async fn group(root: &Admin<'_>, parent: Option<&str>, name: &str) -> String {
    let path = match parent {
        None => "/groups".to_owned(),
        Some(parent) => format!("/groups/{parent}/children"),
    };
    root.create(&path, json!({ "name": name })).await
}

pub(crate) fn assert_admin_error(reply: &Reply, status: u16, message: &str) {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.text);
    assert_eq!(reply.body["errorMessage"], message, "{}", reply.text);
}

fn usernames(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn groups_api_follows_keycloak_paths_and_representations() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    let staff = group(&root, None, "staff").await;
    let team = group(&root, Some(&staff), "team").await;
    // A new subgroup is answered with its representation, as Keycloak does.
    let night = root
        .send(
            Method::POST,
            &format!("/groups/{team}/children"),
            Some(json!({"name": "night"})),
        )
        .await;
    assert_eq!(night.status, 201, "{}", night.text);
    assert_eq!(night.body["path"], "/staff/team/night");
    assert_eq!(night.body["parentId"], team.as_str());
    let location = night.headers["location"].to_str().unwrap();
    assert!(location.ends_with(night.body["id"].as_str().unwrap()));

    // Siblings may not share a name; groups under different parents may.
    let again = root
        .send(Method::POST, "/groups", Some(json!({"name": "staff"})))
        .await;
    assert_admin_error(&again, 409, "Top level group named 'staff' already exists.");
    let again = root
        .send(
            Method::POST,
            &format!("/groups/{staff}/children"),
            Some(json!({"name": "team"})),
        )
        .await;
    assert_admin_error(&again, 409, "Sibling group named 'team' already exists.");
    group(&root, None, "team").await;
    let blank = root
        .send(Method::POST, "/groups", Some(json!({"name": " "})))
        .await;
    assert_admin_error(&blank, 400, "Group name is missing");

    // The list: top-level groups, brief, subgroups counted but not expanded.
    let list = root.ok("/groups").await;
    assert_eq!(names(&list), ["staff", "team"]);
    assert_eq!(list[0]["path"], "/staff");
    assert_eq!(list[0]["subGroupCount"], 1);
    assert_eq!(list[0]["subGroups"], json!([]));
    assert!(list[0].get("realmRoles").is_none(), "{list}");
    assert_eq!(names(&root.ok("/groups?first=1&max=1").await), ["team"]);
    // A search returns the branches that lead to a match.
    let found = root.ok("/groups?search=NIG").await;
    assert_eq!(names(&found), ["staff"]);
    assert_eq!(found[0]["subGroups"][0]["name"], "team");
    assert_eq!(
        found[0]["subGroups"][0]["subGroups"][0]["path"],
        "/staff/team/night"
    );
    assert_eq!(root.ok("/groups/count").await, json!({"count": 4}));
    assert_eq!(root.ok("/groups/count?top=true").await, json!({"count": 2}));
    assert_eq!(
        root.ok("/groups/count?search=team").await,
        json!({"count": 2})
    );

    // One group: the full representation.
    let one = root.ok(&format!("/groups/{team}")).await;
    assert_eq!(one["path"], "/staff/team");
    assert_eq!(one["parentId"], staff.as_str());
    assert_eq!(one["realmRoles"], json!([]));
    assert_eq!(one["access"]["manage"], true);
    let by_path = root.ok("/group-by-path/staff/team").await;
    assert_eq!(by_path["id"], team.as_str());
    let missing = root
        .send(Method::GET, "/group-by-path/staff/nobody", None)
        .await;
    assert_admin_error(&missing, 404, "Group path does not exist");
    let unknown = root.send(Method::GET, "/groups/no-such-id", None).await;
    assert_admin_error(&unknown, 404, "Could not find group by id");
    assert_eq!(
        names(&root.ok(&format!("/groups/{staff}/children")).await),
        ["team"]
    );
    let alice = user_id(&root, "alice").await;
    let no_group = root
        .send(
            Method::PUT,
            &format!("/users/{alice}/groups/no-such-id"),
            None,
        )
        .await;
    assert_admin_error(&no_group, 404, "Group not found");

    // Rename and attributes; a rename onto a sibling's name is a conflict.
    root.expect(
        204,
        Method::PUT,
        &format!("/groups/{team}"),
        Some(json!({"name": "crew", "attributes": {"floor": ["3"]}})),
    )
    .await;
    let crew = root.ok(&format!("/groups/{team}")).await;
    assert_eq!(crew["path"], "/staff/crew");
    assert_eq!(crew["attributes"], json!({"floor": ["3"]}));
    assert_eq!(
        root.ok("/group-by-path/staff/crew/night").await["name"],
        "night"
    );

    // Moves: to the top, and back under a parent; never under itself or a descendant.
    root.expect(204, Method::POST, "/groups", Some(json!({"id": team})))
        .await;
    assert_eq!(root.ok(&format!("/groups/{team}")).await["path"], "/crew");
    let looped = root
        .send(
            Method::POST,
            &format!("/groups/{team}/children"),
            Some(json!({"id": team})),
        )
        .await;
    assert_eq!(looped.status, 400, "{}", looped.text);
    let night = root.ok("/group-by-path/crew/night").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let looped = root
        .send(
            Method::POST,
            &format!("/groups/{night}/children"),
            Some(json!({"id": team})),
        )
        .await;
    assert_eq!(looped.status, 400, "{}", looped.text);
    assert_eq!(root.ok(&format!("/groups/{team}")).await["path"], "/crew");

    // A hierarchy has at most 32 levels, made or moved.
    let mut deepest = group(&root, None, "level-1").await;
    for level in 2..=32 {
        deepest = group(&root, Some(&deepest), &format!("level-{level}")).await;
    }
    let too_deep = root
        .send(
            Method::POST,
            &format!("/groups/{deepest}/children"),
            Some(json!({"name": "level-33"})),
        )
        .await;
    assert_admin_error(
        &too_deep,
        400,
        "A group hierarchy may have at most 32 levels",
    );
    let moved = root
        .send(
            Method::POST,
            &format!("/groups/{deepest}/children"),
            Some(json!({"id": team})),
        )
        .await;
    assert_admin_error(&moved, 400, "A group hierarchy may have at most 32 levels");
    let level_1 = root.ok("/group-by-path/level-1").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    root.expect(204, Method::DELETE, &format!("/groups/{level_1}"), None)
        .await;

    // Deleting a group deletes its subgroups.
    root.expect(204, Method::DELETE, &format!("/groups/{team}"), None)
        .await;
    root.expect(404, Method::GET, &format!("/groups/{night}"), None)
        .await;
    assert_eq!(root.ok("/groups/count").await, json!({"count": 2}));
}

/// The role of `client_id` named `name`, as a mapping body.
pub(crate) async fn realm_role(root: &Admin<'_>, name: &str) -> Value {
    let role = root.ok(&format!("/roles/{name}")).await;
    json!([{"id": role["id"], "name": role["name"]}])
}

pub(crate) async fn user_id(root: &Admin<'_>, username: &str) -> String {
    let list = root
        .ok(&format!("/users?username={username}&exact=true"))
        .await;
    list[0]["id"].as_str().unwrap().to_owned()
}

/// Adds a protocol mapper to a client through `PUT /clients/{id}`, keeping its others.
async fn add_mapper(root: &Admin<'_>, client_id: &str, mapper: Value) {
    let uuid = root.client_uuid(client_id).await;
    let mut rep = root.ok(&format!("/clients/{uuid}")).await;
    let mut mappers = rep["protocolMappers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    mappers.push(mapper);
    rep["protocolMappers"] = Value::Array(mappers);
    root.expect(204, Method::PUT, &format!("/clients/{uuid}"), Some(rep))
        .await;
}

fn group_mapper(name: &str, config: Value) -> Value {
    json!({"name": name, "protocol": "openid-connect",
           "protocolMapper": "oidc-group-membership-mapper", "config": config})
}

#[tokio::test]
async fn roles_through_groups_reach_tokens_exchange_and_userinfo() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    root.create("/roles", json!({"name": "auditor"})).await;
    let company = group(&root, None, "company").await;
    let finance = group(&root, Some(&company), "finance").await;
    // The parent carries a realm role; the subgroup a client role of billing-api... which
    // alice already holds directly, so the subgroup gets orders-api's instead via a new role.
    root.expect(
        204,
        Method::POST,
        &format!("/groups/{company}/role-mappings/realm"),
        Some(realm_role(&root, "auditor").await),
    )
    .await;
    let orders = root.client_uuid("orders-api").await;
    root.create(
        &format!("/clients/{orders}/roles"),
        json!({"name": "approve-orders"}),
    )
    .await;
    let approve = root.client_role("orders-api", "approve-orders").await;
    root.expect(
        204,
        Method::POST,
        &format!("/groups/{finance}/role-mappings/clients/{orders}"),
        Some(approve),
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
    let members = root.ok(&format!("/groups/{finance}/members")).await;
    assert_eq!(usernames(&members), ["alice"]);
    let mine = root.ok(&format!("/users/{alice}/groups")).await;
    assert_eq!(mine[0]["path"], "/company/finance");
    assert_eq!(
        root.ok(&format!("/users/{alice}/groups/count")).await,
        json!({"count": 1})
    );
    // The effective views of the group and the user include the ancestor's role.
    let composite = root
        .ok(&format!("/groups/{finance}/role-mappings/realm/composite"))
        .await;
    assert_eq!(names(&composite), ["auditor"]);
    let user_composite = root
        .ok(&format!("/users/{alice}/role-mappings/realm/composite"))
        .await;
    assert!(names(&user_composite).contains(&"auditor".to_owned()));

    // Tokens: the ancestor's realm role and the subgroup's client role.
    let subject = s.alice(Some("openid")).await;
    let token = subject.access_token();
    let c = claims(&token);
    assert!(
        strings(&c["realm_access"]["roles"]).contains(&"auditor".to_owned()),
        "{c}"
    );
    assert_eq!(
        strings(&c["resource_access"]["orders-api"]["roles"]),
        ["approve-orders", "view-orders"]
    );
    assert!(c.get("groups").is_none(), "no mapper, no claim: {c}");

    // Exchange: the subject's group roles pass, narrowed to the audience.
    let exchanged = s.exchange(&token, &[("audience", "orders-api")]).await;
    assert_eq!(exchanged.status, 200, "{}", exchanged.text);
    let e = claims(&exchanged.access_token());
    assert_eq!(
        strings(&e["resource_access"]["orders-api"]["roles"]),
        ["approve-orders", "view-orders"]
    );
    assert!(strings(&e["realm_access"]["roles"]).contains(&"auditor".to_owned()));

    // Leaving the group: the old subject token is exchanged for the present roles only.
    root.expect(
        204,
        Method::DELETE,
        &format!("/users/{alice}/groups/{finance}"),
        None,
    )
    .await;
    let narrowed = s.exchange(&token, &[("audience", "orders-api")]).await;
    assert_eq!(narrowed.status, 200, "{}", narrowed.text);
    let n = claims(&narrowed.access_token());
    assert_eq!(
        strings(&n["resource_access"]["orders-api"]["roles"]),
        ["view-orders"]
    );
    assert!(
        !strings(&n["realm_access"]["roles"]).contains(&"auditor".to_owned()),
        "{n}"
    );

    // The group membership mapper: on the subject client, full paths in the access token and
    // userinfo, not in the ID token unless asked.
    root.expect(
        204,
        Method::PUT,
        &format!("/users/{alice}/groups/{finance}"),
        None,
    )
    .await;
    add_mapper(
        &root,
        "subject-client",
        group_mapper(
            "groups",
            json!({"claim.name": "groups", "full.path": "true",
                   "access.token.claim": "true", "id.token.claim": "false",
                   "userinfo.token.claim": "true"}),
        ),
    )
    .await;
    let subject = s.alice(Some("openid")).await;
    let token = subject.access_token();
    assert_eq!(claims(&token)["groups"], json!(["/company/finance"]));
    let id_token = subject.body["id_token"].as_str().unwrap();
    assert!(claims(id_token).get("groups").is_none());
    let info = s.get(&s.oidc("demo", "userinfo"), Some(&token)).await;
    assert_eq!(info.status, 200, "{}", info.text);
    assert_eq!(info.body["groups"], json!(["/company/finance"]));
    assert_eq!(
        s.introspect(&token).await["groups"],
        json!(["/company/finance"])
    );

    // An exchanged token carries the claim only if the client it is issued to has the mapper.
    let exchanged = s.exchange(&token, &[("audience", "orders-api")]).await;
    assert!(claims(&exchanged.access_token()).get("groups").is_none());
    add_mapper(
        &root,
        "requester-client",
        group_mapper(
            "short groups",
            json!({"claim.name": "org.groups", "full.path": "false"}),
        ),
    )
    .await;
    let exchanged = s.exchange(&token, &[("audience", "orders-api")]).await;
    assert_eq!(
        claims(&exchanged.access_token())["org"],
        json!({"groups": ["finance"]})
    );
}

#[tokio::test]
async fn admin_rights_through_a_group_follow_the_present_group() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    let desk = root.user_with("group-desk", &[]).await;
    let admins = group(&root, None, "desk-admins").await;
    let inner = group(&root, Some(&admins), "inner").await;
    let management = root.client_uuid("realm-management").await;
    let view_users = root.client_role("realm-management", "view-users").await;
    let mapping = format!("/groups/{admins}/role-mappings/clients/{management}");
    root.expect(204, Method::POST, &mapping, Some(view_users.clone()))
        .await;
    // Rights through the parent of the group the user is in.
    let membership = format!("/users/{desk}/groups/{inner}");
    root.expect(204, Method::PUT, &membership, None).await;
    let token = login(&s, "demo", "group-desk").await;
    let as_desk = Admin::new(&s, "demo", &token);
    as_desk.expect(200, Method::GET, "/users", None).await;
    assert!(
        strings(&claims(&token)["resource_access"]["realm-management"]["roles"])
            .contains(&"view-users".to_owned())
    );

    // The group loses the mapping: the same token administers nothing; back again, it does.
    root.expect(204, Method::DELETE, &mapping, Some(view_users.clone()))
        .await;
    as_desk.expect(403, Method::GET, "/users", None).await;
    root.expect(204, Method::POST, &mapping, Some(view_users))
        .await;
    as_desk.expect(200, Method::GET, "/users", None).await;

    // The user leaves the group: the same token administers nothing.
    root.expect(204, Method::DELETE, &membership, None).await;
    as_desk.expect(403, Method::GET, "/users", None).await;
    root.expect(204, Method::PUT, &membership, None).await;
    as_desk.expect(200, Method::GET, "/users", None).await;

    // The parent is deleted: the subgroup goes with it, and so do the memberships.
    root.expect(204, Method::DELETE, &format!("/groups/{admins}"), None)
        .await;
    as_desk.expect(403, Method::GET, "/users", None).await;
    assert_eq!(root.ok(&format!("/users/{desk}/groups")).await, json!([]));
    root.expect(404, Method::GET, &format!("/groups/{inner}/members"), None)
        .await;
    // A group made again with the same name confers nothing on the old members.
    let again = group(&root, None, "desk-admins").await;
    assert_ne!(again, admins);
    as_desk.expect(403, Method::GET, "/users", None).await;
}

/// The attacks of a restricted administrator (`manage-users` only) on the escalation guard:
/// each is refused with 403 and leaves the state as it was, read back afterwards.
#[tokio::test]
async fn a_restricted_admin_cannot_escalate_through_groups() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    let desk = root.user_with("escalating-desk", &["manage-users"]).await;
    let boss = root.user_with("boss", &[]).await;
    let bob = root.user_with("bob", &[]).await;
    let management = root.client_uuid("realm-management").await;
    let realm_admin = root.client_role("realm-management", "realm-admin").await;
    let manage_clients = root.client_role("realm-management", "manage-clients").await;
    // `admins` carries realm-admin, boss is in it; `clients` carries manage-clients, which
    // desk does not hold; `plain` carries nothing; `sneaky` (a realm role) contains realm-admin.
    let admins = group(&root, None, "admins").await;
    let clients = group(&root, None, "clients").await;
    let plain = group(&root, None, "plain").await;
    let to_management = |g: &str| format!("/groups/{g}/role-mappings/clients/{management}");
    root.expect(
        204,
        Method::POST,
        &to_management(&admins),
        Some(realm_admin.clone()),
    )
    .await;
    root.expect(
        204,
        Method::POST,
        &to_management(&clients),
        Some(manage_clients.clone()),
    )
    .await;
    root.expect(
        204,
        Method::PUT,
        &format!("/users/{boss}/groups/{admins}"),
        None,
    )
    .await;
    root.expect(
        204,
        Method::PUT,
        &format!("/users/{boss}/groups/{plain}"),
        None,
    )
    .await;
    root.create("/roles", json!({"name": "sneaky"})).await;
    root.expect(
        204,
        Method::POST,
        "/roles/sneaky/composites",
        Some(realm_admin.clone()),
    )
    .await;
    let d = Admin::new(&s, "demo", &login(&s, "demo", "escalating-desk").await);

    // Joining a group that carries realm-admin, or a management role desk lacks: himself
    // or anyone else.
    for (user, target) in [(&desk, &admins), (&bob, &admins), (&desk, &clients)] {
        d.expect(
            403,
            Method::PUT,
            &format!("/users/{user}/groups/{target}"),
            None,
        )
        .await;
        assert_eq!(root.ok(&format!("/users/{user}/groups")).await, json!([]));
    }
    // Creating a user already in such a group.
    let created = d
        .send(
            Method::POST,
            "/users",
            Some(json!({"username": "mole", "enabled": true, "groups": ["/admins"]})),
        )
        .await;
    assert_eq!(created.status, 403, "{}", created.text);
    assert_eq!(root.ok("/users?username=mole&exact=true").await, json!([]));

    // Mapping realm-admin, or a role that contains it, onto a group desk may manage.
    d.expect(
        403,
        Method::POST,
        &to_management(&plain),
        Some(realm_admin.clone()),
    )
    .await;
    d.expect(
        403,
        Method::POST,
        &format!("/groups/{plain}/role-mappings/realm"),
        Some(realm_role(&root, "sneaky").await),
    )
    .await;
    assert_eq!(
        root.ok(&format!("/groups/{plain}/role-mappings")).await,
        json!({})
    );

    // Moving a group under a parent that carries realm-admin, or making a subgroup there.
    let placed = format!("/groups/{admins}/children");
    d.expect(403, Method::POST, &placed, Some(json!({"id": plain})))
        .await;
    assert_eq!(root.ok(&format!("/groups/{plain}")).await["path"], "/plain");
    d.expect(403, Method::POST, &placed, Some(json!({"name": "annex"})))
        .await;
    assert_eq!(
        root.ok(&format!("/groups/{admins}")).await["subGroupCount"],
        0
    );

    // Holding realm-admin through a group puts boss out of reach as a direct mapping would:
    // no new password, no profile change, no deletion.
    d.expect(
        403,
        Method::PUT,
        &format!("/users/{boss}/reset-password"),
        Some(json!({"type": "password", "value": "taken-over", "temporary": false})),
    )
    .await;
    d.expect(
        403,
        Method::PUT,
        &format!("/users/{boss}"),
        Some(json!({"email": "x@example.com"})),
    )
    .await;
    d.expect(403, Method::DELETE, &format!("/users/{boss}"), None)
        .await;
    assert_eq!(
        root.ok(&format!("/users/{boss}")).await["email"],
        Value::Null
    );

    // Taking realm-admin away from its holders: removing boss, unmapping the role, renaming,
    // moving or deleting the group.
    d.expect(
        403,
        Method::DELETE,
        &format!("/users/{boss}/groups/{admins}"),
        None,
    )
    .await;
    d.expect(
        403,
        Method::DELETE,
        &to_management(&admins),
        Some(realm_admin.clone()),
    )
    .await;
    d.expect(
        403,
        Method::PUT,
        &format!("/groups/{admins}"),
        Some(json!({"name": "x"})),
    )
    .await;
    d.expect(
        403,
        Method::POST,
        &format!("/groups/{plain}/children"),
        Some(json!({"id": admins})),
    )
    .await;
    d.expect(403, Method::DELETE, &format!("/groups/{admins}"), None)
        .await;
    let still = root.ok(&format!("/groups/{admins}")).await;
    assert_eq!(still["path"], "/admins");
    assert_eq!(
        still["clientRoles"]["realm-management"],
        json!(["realm-admin"])
    );
    assert_eq!(
        usernames(&root.ok(&format!("/groups/{admins}/members")).await),
        ["boss"]
    );

    // What desk may do: groups with roles it can grant, and members it may act on. Adding bob
    // to `plain`, whose member boss desk may not act on, is allowed: joining changes bob's
    // roles only, and gives desk no way to act as boss.
    let helpers = group(&d, None, "helpers").await;
    let orders = root.client_uuid("orders-api").await;
    let view_orders = root.client_role("orders-api", "view-orders").await;
    d.expect(
        204,
        Method::POST,
        &format!("/groups/{helpers}/role-mappings/clients/{orders}"),
        Some(view_orders),
    )
    .await;
    d.expect(
        204,
        Method::PUT,
        &format!("/users/{bob}/groups/{helpers}"),
        None,
    )
    .await;
    d.expect(
        204,
        Method::PUT,
        &format!("/users/{bob}/groups/{plain}"),
        None,
    )
    .await;
    assert_eq!(
        names(&root.ok(&format!("/users/{bob}/groups")).await),
        ["helpers", "plain"]
    );
    let bob_token = login(&s, "demo", "bob").await;
    assert_eq!(
        strings(&claims(&bob_token)["resource_access"]["orders-api"]["roles"]),
        ["view-orders"]
    );
    // Reading needs a right to view users (or query-groups for the list).
    let reader = root.user_with("group-reader", &["query-groups"]).await;
    let r = Admin::new(&s, "demo", &login(&s, "demo", "group-reader").await);
    r.expect(200, Method::GET, "/groups", None).await;
    r.expect(200, Method::GET, "/groups/count", None).await;
    r.expect(403, Method::GET, &format!("/groups/{admins}"), None)
        .await;
    r.expect(403, Method::POST, "/groups", Some(json!({"name": "nope"})))
        .await;
    r.expect(
        403,
        Method::PUT,
        &format!("/users/{reader}/groups/{plain}"),
        None,
    )
    .await;
}
