//! Groups on both servers: the admin API's statuses, errors and representations, the roles a
//! member holds through its group and the groups above it, the group membership mapper, and
//! what leaving a group or deleting it changes.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};

use super::{Peer, Report, compare_token_answers, normalise, payload, sorted};
use crate::{Reply, reply};

/// One server with its admin token and the ids it gave the objects made so far.
struct Side<'a> {
    peer: &'a Peer,
    token: &'a str,
    ids: HashMap<&'static str, String>,
}

impl Side<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let substitute = |text: &str| {
            let mut text = text.to_owned();
            for (name, id) in &self.ids {
                text = text.replace(name, id);
            }
            text
        };
        let url = format!(
            "{}/admin/realms/{}{}",
            self.peer.base,
            super::REALM,
            substitute(path)
        );
        let mut request = self.peer.http.request(method, url).bearer_auth(self.token);
        if let Some(body) = body {
            // Ids named in the body (`{auditor}`) are this server's.
            request = request
                .header("content-type", "application/json")
                .body(substitute(&body.to_string()));
        }
        reply(request.send().await.unwrap()).await
    }

    /// gina's token through `client`.
    async fn gina(&self, client: &str, secret: &str) -> Reply {
        let form = [
            ("grant_type", "password"),
            ("client_id", client),
            ("client_secret", secret),
            ("username", "gina"),
            ("password", "gina"),
            ("scope", "openid"),
        ];
        self.peer.token(&form, None).await
    }
}

/// The id at the end of a `Location` header.
fn created_id(reply: &Reply) -> String {
    reply
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .and_then(|l| l.rsplit('/').next())
        .unwrap_or("")
        .to_owned()
}

/// The same call on both servers; compares the status, and the error message on failures.
async fn both(
    sides: &[Side<'_>; 2],
    report: &mut Report,
    scenario: &str,
    (method, path, body): (Method, &str, Option<Value>),
) -> (Reply, Reply) {
    let a = sides[0].call(method.clone(), path, body.as_ref()).await;
    let b = sides[1].call(method, path, body.as_ref()).await;
    report.compare(
        scenario,
        "status",
        &json!(a.status.as_u16()),
        &json!(b.status.as_u16()),
    );
    if !a.status.is_success() || !b.status.is_success() {
        let message = |r: &Reply| r.body.get("errorMessage").or(r.body.get("error")).cloned();
        report.compare(scenario, "error", &json!(message(&a)), &json!(message(&b)));
    }
    (a, b)
}

/// Compares two answers' bodies with ids, hosts and times normalised and lists sorted.
fn compare_bodies(
    report: &mut Report,
    scenario: &str,
    sides: &[Side<'_>; 2],
    a: &Reply,
    b: &Reply,
) {
    report.compare(
        scenario,
        "body",
        &sorted(&normalise(&a.body, &sides[0].peer.base)),
        &sorted(&normalise(&b.body, &sides[1].peer.base)),
    );
}

/// The names (or usernames) of a list of representations, sorted.
fn names(list: &Value, key: &str) -> Value {
    let names: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| item[key].clone())
        .collect();
    sorted(&Value::Array(names))
}

fn group_mapper(name: &str, config: Value) -> Value {
    json!({"name": name, "protocol": "openid-connect",
           "protocolMapper": "oidc-group-membership-mapper", "config": config})
}

pub(super) async fn groups(
    kc: &Peer,
    kc_token: &str,
    cb: &Peer,
    cb_token: &str,
    report: &mut Report,
) {
    let mut sides = [
        Side {
            peer: kc,
            token: kc_token,
            ids: HashMap::new(),
        },
        Side {
            peer: cb,
            token: cb_token,
            ids: HashMap::new(),
        },
    ];
    let post = |path: &'static str, body: Value| (Method::POST, path, Some(body));
    let get = |path: &'static str| (Method::GET, path, None);

    both(
        &sides,
        report,
        "groups: create a role",
        post("/roles", json!({"name": "group-auditor"})),
    )
    .await;
    let company = json!({"name": "company", "attributes": {"site": ["north"]}});
    let (a, b) = both(
        &sides,
        report,
        "groups: create",
        post("/groups", company.clone()),
    )
    .await;
    let location = |r: &Reply, side: &Side| {
        let text = r
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        normalise(&json!(text), &side.peer.base)
    };
    report.compare(
        "groups: create",
        "Location",
        &location(&a, &sides[0]),
        &location(&b, &sides[1]),
    );
    sides[0].ids.insert("{company}", created_id(&a));
    sides[1].ids.insert("{company}", created_id(&b));
    both(
        &sides,
        report,
        "groups: create a taken name",
        post("/groups", company),
    )
    .await;
    let finance = json!({"name": "finance"});
    let children = "/groups/{company}/children";
    let (a, b) = both(
        &sides,
        report,
        "groups: create a subgroup",
        post(children, finance.clone()),
    )
    .await;
    compare_bodies(report, "groups: create a subgroup", &sides, &a, &b);
    sides[0].ids.insert("{finance}", created_id(&a));
    sides[1].ids.insert("{finance}", created_id(&b));
    both(
        &sides,
        report,
        "groups: create a taken subgroup name",
        post(children, finance),
    )
    .await;

    // Roles (Keycloak maps them by id): a realm role on the parent, a client role on the
    // subgroup.
    for side in &mut sides {
        let list = side
            .call(Method::GET, "/clients?clientId=orders-api", None)
            .await;
        let uuid = list.body[0]["id"].as_str().unwrap_or("").to_owned();
        side.ids.insert("{orders}", uuid);
        let role = side.call(Method::GET, "/roles/group-auditor", None).await;
        let id = role.body["id"].as_str().unwrap_or("").to_owned();
        side.ids.insert("{auditor}", id);
        let path = "/clients/{orders}/roles/edit-orders";
        let role = side.call(Method::GET, path, None).await;
        let id = role.body["id"].as_str().unwrap_or("").to_owned();
        side.ids.insert("{edit}", id);
    }
    both(
        &sides,
        report,
        "groups: map a realm role",
        post(
            "/groups/{company}/role-mappings/realm",
            json!([{"id": "{auditor}", "name": "group-auditor"}]),
        ),
    )
    .await;
    both(
        &sides,
        report,
        "groups: map a client role",
        post(
            "/groups/{finance}/role-mappings/clients/{orders}",
            json!([{"id": "{edit}", "name": "edit-orders"}]),
        ),
    )
    .await;
    // A complete profile: Keycloak's user profile refuses a password grant without one.
    let gina = json!({"username": "gina", "enabled": true, "groups": ["/company/finance"],
                      "email": "gina@example.com", "firstName": "Gina", "lastName": "Grey",
                      "credentials": [{"type": "password", "value": "gina", "temporary": false}]});
    let (a, b) = both(
        &sides,
        report,
        "groups: create a member",
        post("/users", gina),
    )
    .await;
    sides[0].ids.insert("{gina}", created_id(&a));
    sides[1].ids.insert("{gina}", created_id(&b));

    let reads = [
        ("groups: list", "/groups"),
        ("groups: search", "/groups?search=fin"),
        ("groups: count", "/groups/count"),
        ("groups: count top", "/groups/count?top=true"),
        ("groups: read", "/groups/{finance}"),
        ("groups: by path", "/group-by-path/company/finance"),
        ("groups: children", "/groups/{company}/children"),
        ("groups: a user's groups", "/users/{gina}/groups"),
        (
            "groups: count a user's groups",
            "/users/{gina}/groups/count",
        ),
        ("groups: role mappings", "/groups/{finance}/role-mappings"),
        (
            "groups: unknown id",
            "/groups/00000000-0000-0000-0000-000000000000",
        ),
        ("groups: unknown path", "/group-by-path/company/nowhere"),
    ];
    for (scenario, path) in reads {
        let (a, b) = both(&sides, report, scenario, get(path)).await;
        if a.status.is_success() && b.status.is_success() {
            compare_bodies(report, scenario, &sides, &a, &b);
        }
    }
    for (scenario, path, key) in [
        ("groups: members", "/groups/{finance}/members", "username"),
        (
            "groups: effective realm roles",
            "/groups/{finance}/role-mappings/realm/composite",
            "name",
        ),
    ] {
        let (a, b) = both(&sides, report, scenario, get(path)).await;
        report.compare(
            scenario,
            "names",
            &names(&a.body, key),
            &names(&b.body, key),
        );
    }

    // Roles through the group and the group above it.
    let (a, b) = (
        sides[0].gina("subject-client", "subject-secret").await,
        sides[1].gina("subject-client", "subject-secret").await,
    );
    compare_token_answers(report, "groups: member's token", &a, &b);

    // The group membership mapper: full paths in the access and ID tokens, names nested.
    let client = json!({"clientId": "groups-client", "secret": "groups-secret",
        "publicClient": false, "standardFlowEnabled": false, "directAccessGrantsEnabled": true,
        "protocolMappers": [
            group_mapper("groups", json!({"claim.name": "groups", "full.path": "true",
                "access.token.claim": "true", "id.token.claim": "true",
                "userinfo.token.claim": "true"})),
            group_mapper("short groups", json!({"claim.name": "org.groups", "full.path": "false",
                "access.token.claim": "true"}))]});
    both(
        &sides,
        report,
        "groups: client with group mappers",
        post("/clients", client),
    )
    .await;
    let (a, b) = (
        sides[0].gina("groups-client", "groups-secret").await,
        sides[1].gina("groups-client", "groups-secret").await,
    );
    let claim = |r: &Reply, token: &str, name: &str| {
        r.body[token]
            .as_str()
            .map(|t| payload(t)[name].clone())
            .unwrap_or(Value::Null)
    };
    for (token, name) in [
        ("access_token", "groups"),
        ("access_token", "org"),
        ("id_token", "groups"),
        ("id_token", "org"),
    ] {
        report.compare(
            "groups: membership mapper",
            &format!("{token} {name}"),
            &claim(&a, token, name),
            &claim(&b, token, name),
        );
    }

    // Names holding `/`: both servers take them; a name that gives an existing path to a
    // second group is a named difference.
    let (a, b) = both(
        &sides,
        report,
        "groups: a name holding a slash",
        post("/groups", json!({"name": "ops/night"})),
    )
    .await;
    sides[0].ids.insert("{ops-night}", created_id(&a));
    sides[1].ids.insert("{ops-night}", created_id(&b));
    let (a, b) = both(
        &sides,
        report,
        "groups: find a name holding a slash by path",
        get("/group-by-path/ops/night"),
    )
    .await;
    compare_bodies(
        report,
        "groups: find a name holding a slash by path",
        &sides,
        &a,
        &b,
    );
    both(
        &sides,
        report,
        "groups: a name giving a second group an existing path",
        post("/groups", json!({"name": "company/finance"})),
    )
    .await;

    // Leaving the group, joining again, deleting the parent.
    let membership = "/users/{gina}/groups/{finance}";
    both(
        &sides,
        report,
        "groups: leave",
        (Method::DELETE, membership, None),
    )
    .await;
    let (a, b) = (
        sides[0].gina("subject-client", "subject-secret").await,
        sides[1].gina("subject-client", "subject-secret").await,
    );
    compare_token_answers(report, "groups: token after leaving", &a, &b);
    both(
        &sides,
        report,
        "groups: join",
        (Method::PUT, membership, None),
    )
    .await;
    both(
        &sides,
        report,
        "groups: join an unknown group",
        (Method::PUT, "/users/{gina}/groups/no-such-group", None),
    )
    .await;
    both(
        &sides,
        report,
        "groups: delete the parent",
        (Method::DELETE, "/groups/{company}", None),
    )
    .await;
    both(
        &sides,
        report,
        "groups: read a deleted subgroup",
        get("/groups/{finance}"),
    )
    .await;
    let (a, b) = both(
        &sides,
        report,
        "groups: a user's groups after deletion",
        get("/users/{gina}/groups"),
    )
    .await;
    compare_bodies(
        report,
        "groups: a user's groups after deletion",
        &sides,
        &a,
        &b,
    );
    let (a, b) = (
        sides[0].gina("subject-client", "subject-secret").await,
        sides[1].gina("subject-client", "subject-secret").await,
    );
    compare_token_answers(report, "groups: token after deletion", &a, &b);

    partial_import(&sides, report).await;
}

/// Groups in a partial import: added with subgroups and members, skipped, replaced. Keycloak
/// finds an existing group by the `path` its exports carry, so the bodies carry it too.
async fn partial_import(sides: &[Side<'_>; 2], report: &mut Report) {
    let summary = |r: &Reply| {
        let mut results: Vec<Value> = r.body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| json!([x["resourceType"], x["action"], x["resourceName"]]))
            .collect();
        results.sort_by_key(|v| v.to_string());
        json!({"added": r.body["added"], "skipped": r.body["skipped"],
               "overwritten": r.body["overwritten"], "results": results})
    };
    let steps = [
        (
            "groups: partial import adds and skips",
            json!({"ifResourceExists": "SKIP",
                   "groups": [{"name": "ops/night", "path": "/ops/night"},
                              {"name": "imported", "path": "/imported",
                               "realmRoles": ["group-auditor"],
                               "subGroups": [{"name": "sub", "path": "/imported/sub"}]}],
                   "users": [{"username": "ivan", "enabled": true,
                              "groups": ["/imported/sub"]}]}),
        ),
        (
            "groups: partial import refuses an existing group",
            json!({"groups": [{"name": "imported", "path": "/imported"}]}),
        ),
        (
            "groups: partial import replaces a group",
            json!({"ifResourceExists": "OVERWRITE",
                   "groups": [{"name": "imported", "path": "/imported",
                               "subGroups": [{"name": "other", "path": "/imported/other"}]}]}),
        ),
    ];
    for (scenario, body) in steps {
        let (a, b) = both(
            sides,
            report,
            scenario,
            (Method::POST, "/partialImport", Some(body)),
        )
        .await;
        if a.status.is_success() && b.status.is_success() {
            report.compare(scenario, "counts and results", &summary(&a), &summary(&b));
        }
    }
    for (scenario, path) in [
        (
            "groups: a replaced subgroup is gone",
            "/group-by-path/imported/sub",
        ),
        (
            "groups: the replacing subgroup",
            "/group-by-path/imported/other",
        ),
    ] {
        let (a, b) = both(sides, report, scenario, (Method::GET, path, None)).await;
        if a.status.is_success() && b.status.is_success() {
            compare_bodies(report, scenario, sides, &a, &b);
        }
    }
}
