//! The admin REST API: create, read, update and delete on both servers.

use serde_json::{Value, json};

use super::*;
use crate::{Reply, reply};

/// One admin call, answered by both servers.
struct AdminCall {
    name: &'static str,
    method: reqwest::Method,
    /// Under `/admin/realms/oracle`; `{client}`, `{user}` and `{scope}` are replaced by the ids
    /// each server gave the objects created earlier in the scenario.
    path: &'static str,
    body: Option<Value>,
}

impl Peer {
    async fn admin_call(&self, token: &str, call: &AdminCall, ids: &[(&str, String)]) -> Reply {
        let mut path = call.path.to_owned();
        for (name, id) in ids {
            path = path.replace(name, id);
        }
        let mut request = self
            .http
            .request(
                call.method.clone(),
                format!("{}/admin/realms/{REALM}{path}", self.base),
            )
            .bearer_auth(token);
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        reply(request.send().await.unwrap()).await
    }
}

/// A Keycloak-style OIDC identity provider's settings (no `cambio.*` keys).
fn idp_config() -> Value {
    let base = "https://idp.example/realms/partner";
    json!({
        "issuer": base,
        "jwksUrl": format!("{base}/protocol/openid-connect/certs"),
        "useJwksUrl": "true",
        "validateSignature": "true",
        "clientId": "cambio",
        "clientSecret": "idp-secret",
        "clientAuthMethod": "client_secret_post",
        "authorizationUrl": format!("{base}/protocol/openid-connect/auth"),
        "tokenUrl": format!("{base}/protocol/openid-connect/token"),
    })
}

/// Creates, reads, updates and deletes clients, roles, users and client scopes on both servers
/// and compares the statuses, the `Location` shapes and the representations' members.
pub(super) async fn admin_api(
    kc: &Peer,
    kc_token: &str,
    cb: &Peer,
    cb_token: &str,
    report: &mut Report,
) {
    use reqwest::Method;
    let creates = [
        (
            "client",
            "/clients",
            json!({"clientId": "crud-client", "publicClient": false,
                                      "secret": "crud-secret", "redirectUris": ["https://crud.example/cb"]}),
        ),
        (
            "user",
            "/users",
            json!({"username": "crud-user", "enabled": true, "email": "crud@example.com"}),
        ),
        (
            "scope",
            "/client-scopes",
            json!({"name": "crud-scope", "protocol": "openid-connect"}),
        ),
        (
            "role",
            "/roles",
            json!({"name": "crud-role", "description": "made by the suite"}),
        ),
        // An identity provider registered the Keycloak way (Keycloak's own settings only).
        (
            "identity provider",
            "/identity-provider/instances",
            json!({"alias": "crud-idp", "providerId": "oidc", "enabled": true, "config": idp_config()}),
        ),
    ];
    let mut kc_ids: Vec<(&str, String)> = Vec::new();
    let mut cb_ids: Vec<(&str, String)> = Vec::new();
    for (what, path, body) in creates {
        let call = AdminCall {
            name: "create",
            method: Method::POST,
            path,
            body: Some(body.clone()),
        };
        let (a, b) = (
            kc.admin_call(kc_token, &call, &[]).await,
            cb.admin_call(cb_token, &call, &[]).await,
        );
        let scenario = format!("admin: create {what}");
        report.compare(
            &scenario,
            "status",
            &json!(a.status.as_u16()),
            &json!(b.status.as_u16()),
        );
        let location = |r: &Reply, base: &str| {
            let text = r
                .headers
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            normalise(&json!(text), base)
        };
        report.compare(
            &scenario,
            "Location",
            &location(&a, &kc.base),
            &location(&b, &cb.base),
        );
        let id = |r: &Reply| {
            r.headers
                .get("location")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.rsplit('/').next())
                .unwrap_or("")
                .to_owned()
        };
        let key = match what {
            "client" => "{client}",
            "user" => "{user}",
            "scope" => "{scope}",
            _ => "{role}",
        };
        kc_ids.push((key, id(&a)));
        cb_ids.push((key, id(&b)));
        // Creating it again is a conflict.
        let (a, b) = (
            kc.admin_call(kc_token, &call, &[]).await,
            cb.admin_call(cb_token, &call, &[]).await,
        );
        report.compare(
            &scenario,
            "again: status",
            &json!(a.status.as_u16()),
            &json!(b.status.as_u16()),
        );
    }
    let reads = [
        ("admin: read client", "/clients/{client}"),
        (
            "admin: list clients by clientId",
            "/clients?clientId=crud-client",
        ),
        ("admin: client secret", "/clients/{client}/client-secret"),
        ("admin: read user", "/users/{user}"),
        ("admin: list users", "/users?username=crud-user&exact=true"),
        ("admin: count users", "/users/count"),
        ("admin: read client scope", "/client-scopes/{scope}"),
        ("admin: read realm role", "/roles/crud-role"),
        (
            "admin: read identity provider",
            "/identity-provider/instances/crud-idp",
        ),
        (
            "admin: list identity providers",
            "/identity-provider/instances",
        ),
        (
            "admin: unknown identity provider",
            "/identity-provider/instances/no-such-idp",
        ),
        ("admin: realm", ""),
        (
            "admin: unknown client",
            "/clients/00000000-0000-0000-0000-000000000000",
        ),
        (
            "admin: unknown user",
            "/users/00000000-0000-0000-0000-000000000000",
        ),
        ("admin: unknown role", "/roles/no-such-role"),
    ];
    for (name, path) in reads {
        let call = AdminCall {
            name,
            method: Method::GET,
            path,
            body: None,
        };
        let (a, b) = (
            kc.admin_call(kc_token, &call, &kc_ids).await,
            cb.admin_call(cb_token, &call, &cb_ids).await,
        );
        report.compare(
            call.name,
            "status",
            &json!(a.status.as_u16()),
            &json!(b.status.as_u16()),
        );
        if a.status == 200 && b.status == 200 {
            report.compare(call.name, "members", &members(&a.body), &members(&b.body));
        }
    }
    let changes = [
        AdminCall {
            name: "admin: update client",
            method: Method::PUT,
            path: "/clients/{client}",
            body: Some(json!({"clientId": "crud-client", "description": "changed"})),
        },
        AdminCall {
            name: "admin: update user",
            method: Method::PUT,
            path: "/users/{user}",
            body: Some(json!({"firstName": "Crud"})),
        },
        AdminCall {
            name: "admin: reset password",
            method: Method::PUT,
            path: "/users/{user}/reset-password",
            body: Some(json!({"type": "password", "value": "crud-pass", "temporary": false})),
        },
        AdminCall {
            name: "admin: map realm role",
            method: Method::POST,
            path: "/users/{user}/role-mappings/realm",
            body: Some(json!([{"name": "crud-role"}])),
        },
        AdminCall {
            name: "admin: invalid JSON",
            method: Method::POST,
            path: "/users",
            body: Some(json!("not an object")),
        },
        AdminCall {
            name: "admin: update identity provider",
            method: Method::PUT,
            path: "/identity-provider/instances/crud-idp",
            body: Some(
                json!({"alias": "crud-idp", "providerId": "oidc", "enabled": false,
                              "config": idp_config()}),
            ),
        },
        AdminCall {
            name: "admin: delete identity provider",
            method: Method::DELETE,
            path: "/identity-provider/instances/crud-idp",
            body: None,
        },
        AdminCall {
            name: "admin: delete client scope",
            method: Method::DELETE,
            path: "/client-scopes/{scope}",
            body: None,
        },
        AdminCall {
            name: "admin: delete user",
            method: Method::DELETE,
            path: "/users/{user}",
            body: None,
        },
        AdminCall {
            name: "admin: delete client",
            method: Method::DELETE,
            path: "/clients/{client}",
            body: None,
        },
        AdminCall {
            name: "admin: delete deleted client",
            method: Method::DELETE,
            path: "/clients/{client}",
            body: None,
        },
    ];
    for call in &changes {
        let (a, b) = (
            kc.admin_call(kc_token, call, &kc_ids).await,
            cb.admin_call(cb_token, call, &cb_ids).await,
        );
        report.compare(
            call.name,
            "status",
            &json!(a.status.as_u16()),
            &json!(b.status.as_u16()),
        );
    }
}
