//! The fine-grained permission API of `realm-management`'s resource server, the way admin
//! tools drive it: policies and scope permissions created, read (whole and by sub-resource),
//! searched, updated and deleted, each answer's status and members compared.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::Reply;

/// The ids one server gave the objects this scenario works with.
struct Ids {
    authz: String,
    requester: String,
    resource: String,
    scope: Value,
    policy: String,
    permission: String,
}

impl Ids {
    fn fill(&self, path: &str) -> String {
        path.replace("{authz}", &self.authz)
            .replace("{policy}", &self.policy)
            .replace("{permission}", &self.permission)
    }
}

/// The calls after the policy and the permission exist: name, method, path, body.
fn calls(ids: &Ids) -> Vec<(&'static str, Method, String, Option<Value>)> {
    vec![
        (
            "authz: read client policy",
            Method::GET,
            ids.fill("{authz}/policy/client/{policy}"),
            None,
        ),
        (
            "authz: read policy",
            Method::GET,
            ids.fill("{authz}/policy/{policy}"),
            None,
        ),
        (
            "authz: search policy by name",
            Method::GET,
            ids.fill("{authz}/policy/search?name=crud-policy"),
            None,
        ),
        (
            "authz: search unknown policy",
            Method::GET,
            ids.fill("{authz}/policy/search?name=no-such-policy"),
            None,
        ),
        (
            "authz: list policies by name",
            Method::GET,
            ids.fill("{authz}/policy?name=crud-policy"),
            None,
        ),
        (
            "authz: read scope permission",
            Method::GET,
            ids.fill("{authz}/permission/scope/{permission}"),
            None,
        ),
        (
            "authz: permission resources",
            Method::GET,
            ids.fill("{authz}/policy/{permission}/resources"),
            None,
        ),
        (
            "authz: permission scopes",
            Method::GET,
            ids.fill("{authz}/policy/{permission}/scopes"),
            None,
        ),
        (
            "authz: permission policies",
            Method::GET,
            ids.fill("{authz}/policy/{permission}/associatedPolicies"),
            None,
        ),
        (
            "authz: list permissions by name",
            Method::GET,
            ids.fill("{authz}/permission?name=crud-permission"),
            None,
        ),
        (
            "authz: list resources",
            Method::GET,
            ids.fill("{authz}/resource"),
            None,
        ),
        (
            "authz: list scopes",
            Method::GET,
            ids.fill("{authz}/scope"),
            None,
        ),
        (
            "authz: update client policy",
            Method::PUT,
            ids.fill("{authz}/policy/client/{policy}"),
            Some(
                json!({"id": ids.policy, "name": "crud-policy", "type": "client",
                        "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS",
                        "description": "changed", "clients": [ids.requester]}),
            ),
        ),
        (
            "authz: unknown policy",
            Method::GET,
            ids.fill("{authz}/policy/00000000-0000-0000-0000-000000000000"),
            None,
        ),
        (
            "authz: delete permission",
            Method::DELETE,
            ids.fill("{authz}/policy/{permission}"),
            None,
        ),
        (
            "authz: delete policy",
            Method::DELETE,
            ids.fill("{authz}/policy/{policy}"),
            None,
        ),
        (
            "authz: delete deleted policy",
            Method::DELETE,
            ids.fill("{authz}/policy/{policy}"),
            None,
        ),
    ]
}

pub(super) async fn policies_and_permissions(peers: [(&Peer, &str); 2], report: &mut Report) {
    let mut answers: Vec<Vec<(&'static str, Reply)>> = Vec::new();
    for (peer, admin) in peers {
        answers.push(one_server(peer, admin).await);
    }
    for ((name, a), (_, b)) in answers[0].iter().zip(&answers[1]) {
        report.compare(
            name,
            "status",
            &json!(a.status.as_u16()),
            &json!(b.status.as_u16()),
        );
        if a.status.is_success() && b.status.is_success() && !a.text.is_empty() {
            report.compare(name, "members", &members(&a.body), &members(&b.body));
        }
    }
}

async fn one_server(peer: &Peer, admin: &str) -> Vec<(&'static str, Reply)> {
    let first_id = |r: &Reply| r.body[0]["id"].as_str().unwrap_or("").to_owned();
    let management = first_id(
        &peer
            .admin(
                admin,
                Method::GET,
                "/clients?clientId=realm-management",
                None,
            )
            .await,
    );
    let requester = first_id(
        &peer
            .admin(
                admin,
                Method::GET,
                "/clients?clientId=requester-client",
                None,
            )
            .await,
    );
    let target = first_id(
        &peer
            .admin(admin, Method::GET, "/clients?clientId=billing-api", None)
            .await,
    );
    let permissions = peer
        .admin(
            admin,
            Method::PUT,
            &format!("/clients/{target}/management/permissions"),
            Some(json!({"enabled": true})),
        )
        .await;
    let authz = format!("/clients/{management}/authz/resource-server");
    let scopes = peer
        .admin(admin, Method::GET, &format!("{authz}/scope"), None)
        .await;
    let scope = scopes
        .body
        .as_array()
        .and_then(|l| {
            l.iter()
                .find(|s| s["name"] == "token-exchange")
                .map(|s| s["id"].clone())
        })
        .unwrap_or(Value::Null);
    let mut ids = Ids {
        authz,
        requester,
        resource: permissions.body["resource"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        scope,
        policy: String::new(),
        permission: String::new(),
    };
    let mut answers = Vec::new();
    let policy = peer
        .admin(
            admin,
            Method::POST,
            &ids.fill("{authz}/policy/client"),
            Some(
                json!({"name": "crud-policy", "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS",
                        "clients": [ids.requester]}),
            ),
        )
        .await;
    ids.policy = policy.body["id"].as_str().unwrap_or("").to_owned();
    answers.push(("authz: create client policy", policy));
    let permission = peer
        .admin(
            admin,
            Method::POST,
            &ids.fill("{authz}/permission/scope"),
            Some(
                json!({"name": "crud-permission", "type": "scope", "logic": "POSITIVE",
                        "decisionStrategy": "AFFIRMATIVE", "resources": [ids.resource],
                        "scopes": [ids.scope], "policies": [ids.policy]}),
            ),
        )
        .await;
    ids.permission = permission.body["id"].as_str().unwrap_or("").to_owned();
    answers.push(("authz: create scope permission", permission));
    for (name, method, path, body) in calls(&ids) {
        answers.push((name, peer.admin(admin, method, &path, body).await));
    }
    answers
}
