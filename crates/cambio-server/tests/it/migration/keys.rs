//! Keycloak's signing keys sign and verify as before; the body is read as Keycloak reads it.

use cambio_jose::{Algorithm, AudienceRule, SigningKey, TypRule, Validation};
use serde_json::{Value, json};

use super::{STANDARD, import, keycloak_kid, pkcs1, reason, report_paths};
use crate::{TestServer, claims, header, now};
use base64::Engine as _;

fn legacy_realm(rsa: &SigningKey, ec: &SigningKey) -> Value {
    json!({
        "id": "legacy-realm-id",
        "realm": "legacy",
        "enabled": true,
        "bruteForceProtected": true,
        "clients": [
            {"clientId": "app", "secret": "app-secret", "publicClient": false,
             "directAccessGrantsEnabled": true, "consentRequired": true,
             "attributes": {"standard.token.exchange.enabled": "true"}},
            {"clientId": "api", "secret": "api-secret", "publicClient": false}
        ],
        "roles": {"realm": [{"name": "staff"}]},
        "users": [{"id": "kc-user-1", "username": "alice", "enabled": true,
                   "realmRoles": ["staff"],
                   "credentials": [{"type": "password", "value": "alice-pw"},
                                   {"type": "otp", "secretData": "{}", "credentialData": "{}"}]}],
        "components": {
            "org.keycloak.keys.KeyProvider": [
                {"id": "c1", "name": "rsa-generated", "providerId": "rsa-generated",
                 "subComponents": {},
                 "config": {"privateKey": [pkcs1(rsa)], "certificate": ["MIIC"],
                            "priority": ["100"]}},
                {"id": "c2", "name": "hmac-generated", "providerId": "hmac-generated",
                 "config": {"secret": ["c2VjcmV0"], "priority": ["100"], "algorithm": ["HS256"]}},
                {"id": "c3", "name": "ecdsa", "providerId": "ecdsa-generated",
                 "config": {"ecdsaPrivateKey": [STANDARD.encode(&*ec.pkcs8_der())],
                            "ecdsaEllipticCurveKey": ["P-256"], "priority": ["50"]}},
                {"id": "c4", "name": "rsa-enc-generated", "providerId": "rsa-enc-generated",
                 "config": {"algorithm": ["RSA-OAEP"]}}
            ],
            "org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy": [
                {"name": "Trusted Hosts", "providerId": "trusted-hosts"}
            ]
        }
    })
}

/// An access token as Keycloak issues it, signed with `key` under `kid`.
fn keycloak_token(server: &TestServer, key: &SigningKey, kid: &str, typ: &str) -> String {
    let now = now();
    let claims = json!({
        "exp": now + 300, "iat": now - 10, "auth_time": now - 10,
        "jti": "kc-token-1", "iss": server.realm_url("legacy"), "aud": "account",
        "sub": "kc-user-1", "typ": typ, "azp": "app", "sid": "kc-session-1",
        "session_state": "kc-session-1", "acr": "1", "allowed-origins": ["*"],
        "realm_access": {"roles": ["staff"]}, "scope": "openid profile email",
        "preferred_username": "alice"
    });
    key.clone()
        .with_kid(kid)
        .unwrap()
        .sign("JWT", &claims)
        .unwrap()
}

#[tokio::test]
async fn keycloak_keys_keep_signing_and_verifying() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let rsa = SigningKey::generate(Algorithm::Rs256).unwrap();
    let ec = SigningKey::generate(Algorithm::Es256).unwrap();
    let (rsa_kid, ec_kid) = (keycloak_kid(&rsa), keycloak_kid(&ec));
    let created = import(
        &server,
        &admin,
        serde_json::to_vec(&legacy_realm(&rsa, &ec)).unwrap(),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);

    // What could not be kept is reported, field by field, with its reason.
    let report = &created.body;
    assert!(
        reason(report, "components.org.keycloak.keys.KeyProvider[1]")
            .contains("refresh, offline and action tokens (HS256/HS512) are not accepted"),
        "{report}"
    );
    assert!(
        reason(report, "components.org.keycloak.keys.KeyProvider[3]")
            .starts_with("an encryption key"),
    );
    assert!(
        reason(report, "users[0].credentials[1]").starts_with("a otp credential"),
        "{report}"
    );
    assert_eq!(
        reason(report, "clients[0].consentRequired"),
        "not kept: Cambio works with false"
    );
    let paths = report_paths(report);
    for expected in [
        "bruteForceProtected",
        "clients[0].consentRequired",
        "components.org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy",
    ] {
        assert!(
            paths.contains(&expected.to_owned()),
            "{expected}: {paths:?}"
        );
    }
    // Nothing that was kept is reported.
    for kept in ["realm", "clients[0].secret", "users[0].realmRoles", "roles"] {
        assert!(
            !paths.iter().any(|p| p.starts_with(kept)),
            "{kept}: {paths:?}"
        );
    }

    // An export without `defaultSignatureAlgorithm` signs as Keycloak did: RS256.
    let settings = server
        .get(
            &format!("{}/admin/realms/legacy", server.base),
            Some(&admin),
        )
        .await;
    assert_eq!(settings.body["defaultSignatureAlgorithm"], "RS256");
    let jwks = server.get(&server.oidc("legacy", "certs"), None).await;
    let kids: Vec<&str> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "{}", jwks.text);
    assert!(kids.contains(&rsa_kid.as_str()) && kids.contains(&ec_kid.as_str()));

    // A token the old Keycloak issued verifies: introspection, userinfo, exchange.
    let old = keycloak_token(&server, &rsa, &rsa_kid, "Bearer");
    let introspected = server
        .post_form(
            &server.oidc("legacy", "token/introspect"),
            &[("token", &old)],
            Some(("api", "api-secret")),
        )
        .await;
    assert_eq!(introspected.body["active"], true, "{}", introspected.text);
    assert_eq!(introspected.body["sub"], "kc-user-1");
    let userinfo = server
        .get(&server.oidc("legacy", "userinfo"), Some(&old))
        .await;
    assert_eq!(userinfo.status, 200, "{}", userinfo.text);
    assert_eq!(userinfo.body["sub"], "kc-user-1");
    let exchanged = server
        .post_form(
            &server.oidc("legacy", "token"),
            &[
                ("grant_type", crate::EXCHANGE),
                ("subject_token", &old),
                ("audience", "app"),
            ],
            Some(("app", "app-secret")),
        )
        .await;
    assert_eq!(exchanged.status, 200, "{}", exchanged.text);
    let new_token = exchanged.access_token();
    assert_eq!(header(&new_token)["kid"], rsa_kid.as_str());
    assert_eq!(header(&new_token)["alg"], "RS256");

    // An ID token of the old Keycloak (claim typ ID) is no access token, nor is a token
    // signed by a key the realm does not hold.
    for refused in [
        keycloak_token(&server, &rsa, &rsa_kid, "ID"),
        keycloak_token(
            &server,
            &SigningKey::generate(Algorithm::Rs256).unwrap(),
            &rsa_kid,
            "Bearer",
        ),
    ] {
        let r = server
            .post_form(
                &server.oidc("legacy", "token/introspect"),
                &[("token", &refused)],
                Some(("api", "api-secret")),
            )
            .await;
        assert_eq!(r.body, json!({"active": false}));
    }

    // New tokens are signed by the imported key of the highest priority, and verify with the
    // published JWKS.
    let login = server
        .post_form(
            &server.oidc("legacy", "token"),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice-pw"),
            ],
            Some(("app", "app-secret")),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    let token = login.access_token();
    assert_eq!(header(&token)["kid"], rsa_kid.as_str());
    let keys = cambio_jose::parse_jwks(jwks.text.as_bytes(), None).unwrap();
    let issuer = server.realm_url("legacy");
    let validation = Validation {
        issuer: Some(&issuer),
        audience: AudienceRule::Skip,
        typ: TypRule::Exactly("at+jwt"),
        ..Validation::new(now())
    };
    let verified = cambio_jose::verify(&token, &keys, &validation).unwrap();
    assert_eq!(verified.subject(), Some("kc-user-1"));
    assert_eq!(
        claims(&token)["realm_access"]["roles"],
        json!(["offline_access", "staff", "uma_authorization"])
    );
    server.stop().await;
}

#[tokio::test]
async fn a_body_reads_as_keycloak_reads_it() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    // A repeated key takes its last value, as Jackson does (some generated exports repeat
    // `users`).
    let repeated = br#"{"id": "twice", "realm": "twice", "users": [{"username": "first"}],
        "enabled": true, "users": [{"username": "second", "enabled": true}]}"#;
    let created = import(&server, &admin, repeated.to_vec()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let users = server
        .get(
            &format!("{}/admin/realms/twice/users", server.base),
            Some(&admin),
        )
        .await;
    let names: Vec<&str> = users
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["second"]);
    // An export (it has an id) without defaultSignatureAlgorithm signs with RS256.
    let settings = server
        .get(&format!("{}/admin/realms/twice", server.base), Some(&admin))
        .await;
    assert_eq!(settings.body["defaultSignatureAlgorithm"], "RS256");

    // A malformed body says where.
    let broken = b"{\n  \"realm\": \"broken\",\n  \"enabled\": true,\n  \"users\": [\n    {\"username\": \"x\"}\n    {\"username\": \"y\"}\n  ]\n}";
    let refused = import(&server, &admin, broken.to_vec()).await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(
        refused.body["errorMessage"],
        "Invalid JSON at line 6 column 5: expected `,` or `]`"
    );
    // A value of the wrong type names its path.
    let mistyped = import(
        &server,
        &admin,
        br#"{"realm": "typed", "clients": [{"clientId": "a"}, {"clientId": "b", "enabled": "yes"}]}"#
            .to_vec(),
    )
    .await;
    assert_eq!(mistyped.status, 400, "{}", mistyped.text);
    assert_eq!(
        mistyped.body["errorMessage"],
        "Invalid value at clients[1].enabled: invalid type: string \"yes\", expected a boolean"
    );
    server.stop().await;
}

/// The admin key list shows imported keys as Keycloak listed them: their `kid`, their priority,
/// and the one of highest priority active for its algorithm.
#[tokio::test]
async fn imported_keys_are_listed_with_their_priority() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let rsa = SigningKey::generate(Algorithm::Rs256).unwrap();
    let ec = SigningKey::generate(Algorithm::Es256).unwrap();
    let (rsa_kid, ec_kid) = (keycloak_kid(&rsa), keycloak_kid(&ec));
    let created = import(
        &server,
        &admin,
        serde_json::to_vec(&legacy_realm(&rsa, &ec)).unwrap(),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let listed = server
        .get(
            &format!("{}/admin/realms/legacy/keys", server.base),
            Some(&admin),
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(
        listed.body["active"],
        json!({"RS256": rsa_kid, "ES256": ec_kid})
    );
    let summary: Vec<Value> = listed.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            json!([
                k["kid"],
                k["providerPriority"],
                k["status"],
                k["type"],
                k["algorithm"]
            ])
        })
        .collect();
    assert_eq!(
        summary,
        [
            json!([rsa_kid, 100, "ACTIVE", "RSA", "RS256"]),
            json!([ec_kid, 50, "ACTIVE", "EC", "ES256"]),
        ]
    );
    let rsa_public = STANDARD.encode(rsa.public_key_spki_der().unwrap());
    assert_eq!(listed.body["keys"][0]["publicKey"], rsa_public.as_str());
}
