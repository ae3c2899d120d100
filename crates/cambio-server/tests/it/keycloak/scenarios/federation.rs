//! External-to-internal exchange through an identity provider registered the Keycloak way,
//! under the legacy (V1) model: Keycloak's own `partner` realm is the external issuer both
//! servers trust, so the subject token is a real Keycloak token, verified by each server
//! through the partner realm's JWKS.

use reqwest::Method;
use serde_json::{Value, json};

use super::*;
use crate::{EXCHANGE, Reply};

const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The external realm, imported into Keycloak only: one public client and carol.
pub(super) fn partner_realm() -> Value {
    json!({
        "realm": "partner",
        "enabled": true,
        "clients": [{
            "clientId": "partner-app", "publicClient": true,
            "directAccessGrantsEnabled": true, "standardFlowEnabled": false,
            // Its tokens name the client the oracle realm registered at the partner.
            "protocolMappers": [{
                "name": "broker audience", "protocol": "openid-connect",
                "protocolMapper": "oidc-audience-mapper",
                "config": {"included.custom.audience": "oracle-broker",
                           "access.token.claim": "true", "id.token.claim": "false"}
            }]
        }, {
            "clientId": "partner-other", "publicClient": true,
            "directAccessGrantsEnabled": true, "standardFlowEnabled": false
        }],
        "users": [{
            "username": "carol", "enabled": true, "emailVerified": true,
            "email": "carol@partner.example", "firstName": "Carol", "lastName": "Partner",
            "credentials": [{"type": "password", "value": "carol", "temporary": false}]
        }]
    })
}

/// The `partner` provider as a Keycloak administrator registers it: Keycloak's settings only,
/// plus `extra` (Cambio's own keys, which Keycloak stores and ignores).
fn provider(partner: &str, extra: &[(&str, &str)]) -> Value {
    let mut config = json!({
        "issuer": partner,
        "jwksUrl": format!("{partner}/protocol/openid-connect/certs"),
        "useJwksUrl": "true",
        "validateSignature": "true",
        "clientId": "oracle-broker",
        "clientSecret": "broker-secret",
        "clientAuthMethod": "client_secret_post",
        "authorizationUrl": format!("{partner}/protocol/openid-connect/auth"),
        "tokenUrl": format!("{partner}/protocol/openid-connect/token"),
        "userInfoUrl": format!("{partner}/protocol/openid-connect/userinfo"),
        "syncMode": "IMPORT",
    });
    for (key, value) in extra {
        config[*key] = json!(value);
    }
    json!({"alias": "partner", "providerId": "oidc", "enabled": true, "config": config})
}

/// Every answer one server gave, in the order of [`CASES`].
type Answers = Vec<Reply>;

const CASES: [&str; 8] = [
    "external exchange: provider registered",
    "external exchange: before any permission",
    "external exchange: provider permissions enabled",
    "external exchange: unlinked user, permitted client",
    "external exchange: provider set to create users",
    "external exchange: permitted client, jwt token type",
    "external exchange: unknown subject_issuer",
    "external exchange: token meant for another client",
];

/// Carol's access tokens from the partner realm: one naming `oracle-broker` in its audience, one
/// for another partner client only.
pub(super) struct PartnerTokens {
    pub issuer: String,
    pub for_broker: String,
    pub for_other: String,
}

/// Registers the provider, then exchanges carol's partner token before and after the provider's
/// `token-exchange` permission names `plain-client` (through the client policy the legacy
/// scenario made), as an unknown user and once users are created on first use.
pub(super) async fn external_exchange(
    peers: [(&Peer, &str); 2],
    partner: &PartnerTokens,
    report: &mut Report,
) {
    let mut answers: Vec<Answers> = Vec::new();
    for (peer, admin) in peers {
        answers.push(one_server(peer, admin, partner).await);
    }
    let (kc, cb) = (&answers[0], &answers[1]);
    for (i, name) in CASES.iter().enumerate() {
        match i {
            // Admin steps: the status (and for the permissions, which scopes they name).
            0 | 2 => {
                report.compare(
                    name,
                    "status",
                    &json!(kc[i].status.as_u16()),
                    &json!(cb[i].status.as_u16()),
                );
                if i == 2 {
                    report.compare(
                        name,
                        "scope permissions",
                        &members(&kc[i].body["scopePermissions"]),
                        &members(&cb[i].body["scopePermissions"]),
                    );
                }
            }
            _ => compare_token_answers(report, name, &kc[i], &cb[i]),
        }
    }
}

async fn one_server(peer: &Peer, admin: &str, tokens: &PartnerTokens) -> Answers {
    let (subject, partner) = (tokens.for_broker.as_str(), tokens.issuer.as_str());
    let mut answers = Vec::new();
    let registered = peer
        .admin(
            admin,
            Method::POST,
            "/identity-provider/instances",
            Some(provider(partner, &[])),
        )
        .await;
    assert_eq!(registered.status, 201, "{}: {}", peer.base, registered.text);
    answers.push(registered);
    let exchange = |token_type: &'static str, issuer: &'static str| {
        let form = [
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", token_type),
            ("subject_issuer", issuer),
        ];
        async move {
            peer.token(&form, Some(("plain-client", "plain-secret")))
                .await
        }
    };
    answers.push(exchange(ACCESS_TYPE, "partner").await);

    // The provider's permission, with the client policy the legacy scenario created.
    let permissions = peer
        .admin(
            admin,
            Method::PUT,
            "/identity-provider/instances/partner/management/permissions",
            Some(json!({"enabled": true})),
        )
        .await;
    let management = peer
        .admin(
            admin,
            Method::GET,
            "/clients?clientId=realm-management",
            None,
        )
        .await;
    let authz = format!(
        "/clients/{}/authz/resource-server",
        management.body[0]["id"].as_str().unwrap_or("")
    );
    let policy = peer
        .admin(
            admin,
            Method::GET,
            &format!("{authz}/policy/search?name=plain-may-exchange"),
            None,
        )
        .await;
    let scopes = peer
        .admin(admin, Method::GET, &format!("{authz}/scope"), None)
        .await;
    let scope = scopes.body.as_array().and_then(|l| {
        l.iter()
            .find(|s| s["name"] == "token-exchange")
            .map(|s| s["id"].clone())
    });
    let permission = permissions.body["scopePermissions"]["token-exchange"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    // Both servers find the permission by its name, so the update keeps the name it was given.
    let current = peer
        .admin(
            admin,
            Method::GET,
            &format!("{authz}/permission/scope/{permission}"),
            None,
        )
        .await;
    let attached = peer
        .admin(
            admin,
            Method::PUT,
            &format!("{authz}/permission/scope/{permission}"),
            Some(json!({
                "id": permission,
                "name": current.body["name"],
                "type": "scope", "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS",
                "resources": [permissions.body["resource"]], "policies": [policy.body["id"]],
                "scopes": [scope],
            })),
        )
        .await;
    assert!(
        attached.status.is_success(),
        "{}: attaching the provider permission: {} {}",
        peer.base,
        attached.status,
        attached.text
    );
    answers.push(permissions);
    answers.push(exchange(ACCESS_TYPE, "partner").await);

    // Users created on first use: Cambio's `cambio.provisioning` (Keycloak always creates).
    let updated = provider(partner, &[("cambio.provisioning", "create")]);
    let update = peer
        .admin(
            admin,
            Method::PUT,
            "/identity-provider/instances/partner",
            Some(updated),
        )
        .await;
    assert!(
        update.status.is_success(),
        "{}: {} {}",
        peer.base,
        update.status,
        update.text
    );
    answers.push(exchange(ACCESS_TYPE, "partner").await);
    answers.push(exchange(JWT_TYPE, "partner").await);
    answers.push(exchange(JWT_TYPE, "elsewhere").await);
    let other = [
        ("grant_type", EXCHANGE),
        ("subject_token", tokens.for_other.as_str()),
        ("subject_token_type", ACCESS_TYPE),
        ("subject_issuer", "partner"),
    ];
    answers.push(
        peer.token(&other, Some(("plain-client", "plain-secret")))
            .await,
    );
    answers
}
