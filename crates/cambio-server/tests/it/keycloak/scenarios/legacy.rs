//! The legacy (V1) permission model.

use serde_json::{Value, json};

use super::*;
use crate::{EXCHANGE, Reply};

/// The legacy (V1) model, against a Keycloak started with `token-exchange` and
/// `admin-fine-grained-authz:v1`: the token handling guide's steps (a client policy naming the
/// requester, management permissions on the target, the policy attached to the target's
/// `token-exchange` permission), then exchanges by the permitted client and by another.
pub async fn run_legacy(keycloak_base: &str, cambio: &TestServer, report: &mut Report) {
    use reqwest::Method;
    let kc = Peer::new(keycloak_base);
    let cb = Peer::new(&cambio.base);
    let realm: Value = oracle_realm();
    let kc_admin = kc.admin_token("admin").await;
    let cb_admin = cb.admin_token(crate::ADMIN_PASSWORD).await;
    // Keycloak's V1 is a server feature; Cambio's realm switch stands for it (Keycloak keeps the
    // attribute and ignores it).
    let mut realm = realm;
    realm["attributes"] = json!({"cambio.legacyTokenExchange": "true"});
    let mut before_permissions = Vec::new();
    for (peer, token) in [(&kc, &kc_admin), (&cb, &cb_admin)] {
        let r = peer.import(token, &realm).await;
        assert_eq!(r.status, 201, "{}: {}", peer.base, r.text);
        // Before any permission exists: a public client exchanging its own token, and a
        // confidential one exchanging a token meant for it.
        let own = peer.alice(("public-legacy", None)).await.access_token();
        let public = peer
            .token(
                &[
                    ("grant_type", EXCHANGE),
                    ("client_id", "public-legacy"),
                    ("subject_token", &own),
                    ("subject_token_type", ACCESS_TYPE),
                    ("audience", "orders-api"),
                ],
                None,
            )
            .await;
        let subject = peer
            .alice(("subject-client", Some("subject-secret")))
            .await
            .access_token();
        let confidential = peer
            .token(
                &[
                    ("grant_type", EXCHANGE),
                    ("subject_token", &subject),
                    ("subject_token_type", ACCESS_TYPE),
                    ("audience", "orders-api"),
                ],
                Some(("billing-api", "billing-secret")),
            )
            .await;
        before_permissions.push((public, confidential));
    }
    compare_token_answers(
        report,
        "legacy exchange: public client, no permission yet",
        &before_permissions[0].0,
        &before_permissions[1].0,
    );
    compare_token_answers(
        report,
        "legacy exchange: confidential client, no permission yet",
        &before_permissions[0].1,
        &before_permissions[1].1,
    );
    let mut steps: Vec<(Reply, Reply)> = Vec::new();
    let mut answers = Vec::new();
    for (peer, token) in [(&kc, &kc_admin), (&cb, &cb_admin)] {
        let call = |method: Method, path: String, body: Option<Value>| {
            let mut request = peer
                .http
                .request(method, format!("{}/admin/realms/{REALM}{path}", peer.base))
                .bearer_auth(token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            async move { reply(request.send().await.unwrap()).await }
        };
        let uuid = |list: &Value| list[0]["id"].as_str().unwrap_or("").to_owned();
        let requester = uuid(
            &call(Method::GET, "/clients?clientId=plain-client".into(), None)
                .await
                .body,
        );
        let target = uuid(
            &call(Method::GET, "/clients?clientId=orders-api".into(), None)
                .await
                .body,
        );
        let management = uuid(
            &call(
                Method::GET,
                "/clients?clientId=realm-management".into(),
                None,
            )
            .await
            .body,
        );
        let authz = format!("/clients/{management}/authz/resource-server");
        // The guide's order: permissions on the target first (Keycloak makes the resource
        // server of realm-management then), the policy after.
        let permissions = call(
            Method::PUT,
            format!("/clients/{target}/management/permissions"),
            Some(json!({"enabled": true})),
        )
        .await;
        let policy = call(
            Method::POST,
            format!("{authz}/policy/client"),
            Some(json!({"name": "plain-may-exchange", "logic": "POSITIVE",
                        "decisionStrategy": "UNANIMOUS", "clients": [requester]})),
        )
        .await;
        let permission = permissions.body["scopePermissions"]["token-exchange"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let resource = permissions.body["resource"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let scopes = call(Method::GET, format!("{authz}/scope"), None).await;
        let scope = scopes.body.as_array().and_then(|l| {
            l.iter()
                .find(|s| s["name"] == "token-exchange")
                .and_then(|s| s["id"].as_str())
        });
        let attached = call(
            Method::PUT,
            format!("{authz}/permission/scope/{permission}"),
            Some(json!({
                "id": permission,
                "name": format!("token-exchange.permission.client.{target}"),
                "type": "scope", "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS",
                "resources": [resource], "policies": [policy.body["id"]], "scopes": [scope],
            })),
        )
        .await;
        steps.push((policy, permissions));
        steps.push((attached, scopes));
        // The exchanges: the permitted client, with and without offline_access; another client.
        let subject = peer
            .alice(("subject-client", Some("subject-secret")))
            .await
            .access_token();
        let exchange = |client: (&'static str, &'static str),
                        extra: &'static [(&'static str, &'static str)]| {
            let subject = subject.clone();
            async move {
                let mut form = vec![
                    ("grant_type", EXCHANGE),
                    ("subject_token", subject.as_str()),
                    ("subject_token_type", ACCESS_TYPE),
                    ("audience", "orders-api"),
                ];
                form.extend_from_slice(extra);
                peer.token(&form, Some(client)).await
            }
        };
        answers.push(vec![
            exchange(("plain-client", "plain-secret"), &[]).await,
            exchange(
                ("plain-client", "plain-secret"),
                &[("scope", "offline_access")],
            )
            .await,
            exchange(("billing-api", "billing-secret"), &[]).await,
        ]);
    }
    let names = [
        ("legacy: client policy", "legacy: management permissions"),
        (
            "legacy: permission attached",
            "legacy: authorization scopes",
        ),
    ];
    for (i, (a, b)) in [(&steps[0], &steps[2]), (&steps[1], &steps[3])]
        .into_iter()
        .enumerate()
    {
        let (first, second) = names[i];
        report.compare(
            first,
            "status",
            &json!(a.0.status.as_u16()),
            &json!(b.0.status.as_u16()),
        );
        report.compare(
            second,
            "status",
            &json!(a.1.status.as_u16()),
            &json!(b.1.status.as_u16()),
        );
    }
    report.compare(
        "legacy: management permissions",
        "scope permissions",
        &members(&steps[0].1.body["scopePermissions"]),
        &members(&steps[2].1.body["scopePermissions"]),
    );
    let cases = [
        "legacy exchange: permitted client",
        "legacy exchange: permitted client, offline_access",
        "legacy exchange: client without permission",
    ];
    for (i, name) in cases.iter().enumerate() {
        compare_token_answers(report, name, &answers[0][i], &answers[1][i]);
    }

    // External-to-internal exchange: Keycloak's own `partner` realm is the external issuer.
    let partner = kc.import(&kc_admin, &federation::partner_realm()).await;
    assert_eq!(partner.status, 201, "partner realm: {}", partner.text);
    let issuer = format!("{}/realms/partner", kc.base);
    let carol = |client: &'static str| {
        let url = format!("{issuer}/protocol/openid-connect/token");
        let kc = &kc;
        async move {
            let form = [
                ("grant_type", "password"),
                ("client_id", client),
                ("username", "carol"),
                ("password", "carol"),
                ("scope", "openid"),
            ];
            kc.form(&url, &form, None).await.access_token()
        }
    };
    let tokens = federation::PartnerTokens {
        for_broker: carol("partner-app").await,
        for_other: carol("partner-other").await,
        issuer: issuer.clone(),
    };
    federation::external_exchange([(&kc, &kc_admin), (&cb, &cb_admin)], &tokens, report).await;
    clients::admin_clients(&kc, &cb, report).await;
    authz::policies_and_permissions([(&kc, &kc_admin), (&cb, &cb_admin)], report).await;
}
