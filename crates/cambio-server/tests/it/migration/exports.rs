//! Real Keycloak exports (kept in `data/keycloak-exports`) import with what they hold.

use serde_json::{Value, json};

use super::{
    exports_dir, import, jwks_kids, kid_of, names_of_aliases, public_login, read_export, reason,
    report_paths,
};
use crate::{TestServer, header};

#[tokio::test]
async fn a_keycloak_10_export_directory_imports_with_its_key_and_passwords() {
    // `kc.sh export --dir` output of Keycloak 10.0.0: the realm file and one users file.
    let document =
        cambio_server::realm_import::read_export_dir(&exports_dir().join("kc10-export-dir"), None)
            .unwrap();
    assert_eq!(document["users"][0]["username"], "admin@example.com");
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let created = import(&server, &admin, serde_json::to_vec(&document).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let report = &created.body;
    let keys = "components.org.keycloak.keys.KeyProvider";
    assert!(reason(report, &format!("{keys}[0]")).starts_with("an AES secret"));
    assert!(reason(report, &format!("{keys}[1]")).starts_with("an HMAC secret"));
    assert!(reason(report, &format!("{keys}[2].config.certificate")).contains("no x5c"));
    let paths = report_paths(report);
    for expected in [
        "authenticationFlows",
        "otpPolicyType",
        "clients[0].defaultRoles",
        "components.org.keycloak.services.clientregistration.policy.ClientRegistrationPolicy",
    ] {
        assert!(
            paths.contains(&expected.to_owned()),
            "{expected}: {paths:?}"
        );
    }

    let settings = server
        .get(
            &format!("{}/admin/realms/oauth2-proxy", server.base),
            Some(&admin),
        )
        .await;
    assert_eq!(settings.body["defaultSignatureAlgorithm"], "RS256");
    let rsa = document["components"]["org.keycloak.keys.KeyProvider"][2]["config"]["privateKey"][0]
        .as_str()
        .unwrap();
    assert_eq!(jwks_kids(&server, "oauth2-proxy").await, [kid_of(rsa)]);

    // The Keycloak PBKDF2-SHA-256 hash of "password" logs in, and the token is signed by
    // Keycloak's key.
    let login = public_login(
        &server,
        "oauth2-proxy",
        "admin-cli",
        "admin@example.com",
        "password",
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(header(&login.access_token())["kid"], kid_of(rsa).as_str());
    public_login(
        &server,
        "oauth2-proxy",
        "admin-cli",
        "admin@example.com",
        "passw0rd",
    )
    .await
    .assert_error(400, "invalid_grant", "Invalid user credentials");
    server.stop().await;
}

#[tokio::test]
async fn keycloak_6_and_1_9_exports_keep_their_keys_and_old_credentials() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;

    // Keycloak 6.0.1: an `rsa` key provider, credentials in the pre-11 form.
    let kc6 = read_export("kc6-nodejs-test.json");
    let created = import(&server, &admin, serde_json::to_vec(&kc6).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    // The service account of `public-client`, exported as `service-account-test-client`, is
    // kept under its client's name, and the report says exactly that.
    assert_eq!(
        reason(&created.body, "users[1].username"),
        "renamed service-account-public-client: a service account is named after its client"
    );
    assert!(!report_paths(&created.body).contains(&"users[1]".to_owned()));
    let provider = kc6["components"]["org.keycloak.keys.KeyProvider"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["providerId"] == "rsa")
        .unwrap();
    let kid = kid_of(provider["config"]["privateKey"][0].as_str().unwrap());
    assert_eq!(
        jwks_kids(&server, "nodejs-test").await,
        std::slice::from_ref(&kid)
    );
    // test-user's password is "tiger" (the connector's own tests use it), PBKDF2-SHA-1.
    let login = public_login(
        &server,
        "nodejs-test",
        "public-client",
        "test-user",
        "tiger",
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(header(&login.access_token())["kid"], kid.as_str());
    assert_eq!(header(&login.access_token())["alg"], "RS256");

    // Keycloak 1.9.3: the realm's key on the realm itself.
    let mut kc19 = read_export("kc1.9-nodejs-test.json");
    kc19["realm"] = json!("nodejs-legacy");
    kc19["id"] = json!("nodejs-legacy");
    let created = import(&server, &admin, serde_json::to_vec(&kc19).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(
        reason(&created.body, "certificate").contains("no x5c"),
        "{}",
        created.text
    );
    assert!(!report_paths(&created.body).contains(&"privateKey".to_owned()));
    let kid = kid_of(kc19["privateKey"].as_str().unwrap());
    assert_eq!(
        jwks_kids(&server, "nodejs-legacy").await,
        std::slice::from_ref(&kid)
    );
    let login = public_login(
        &server,
        "nodejs-legacy",
        "public-client",
        "test-user",
        "tiger",
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(header(&login.access_token())["kid"], kid.as_str());
    server.stop().await;
}

#[tokio::test]
async fn authorization_settings_and_identity_providers_are_kept_and_served() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut document = read_export("quickstart-servlet-authz.json");
    document["identityProviders"] = json!([
        {"alias": "partner", "providerId": "oidc", "enabled": true, "internalId": "idp-1",
         "config": {"issuer": "https://idp.partner.example", "jwksUrl": "https://idp.partner.example/jwks",
                    "useJwksUrl": "true", "clientId": "cambio", "clientSecret": "partner-secret",
                    "validateSignature": "true"}},
        {"alias": "corporate", "providerId": "saml", "enabled": true, "config": {}}
    ]);
    document["identityProviderMappers"] = json!([
        {"id": "m-1", "name": "staff role", "identityProviderAlias": "partner",
         "identityProviderMapper": "oidc-role-idp-mapper",
         "config": {"claim": "groups", "claim.value": "staff", "role": "user"}},
        {"name": "saml role", "identityProviderAlias": "corporate",
         "identityProviderMapper": "saml-role-idp-mapper", "config": {}}
    ]);
    let created = import(&server, &admin, serde_json::to_vec(&document).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let report = &created.body;
    assert!(reason(report, "clients[0].authorizationSettings").contains("evaluates no UMA"));
    assert!(
        reason(report, "identityProviders[1]")
            .starts_with("not imported: Unsupported providerId saml"),
        "{report}"
    );
    assert!(reason(report, "identityProviders[0].config.clientSecret").starts_with("not kept"));
    assert!(reason(report, "identityProviderMappers[0]").starts_with("kept and exported"));
    assert_eq!(
        reason(report, "identityProviderMappers[1]"),
        "not imported: its provider \"corporate\" was not"
    );

    // The client's resource server, resources, scopes, policies and permissions are served.
    let admin_url = format!("{}/admin/realms/quickstart", server.base);
    let clients = server
        .get(
            &format!("{admin_url}/clients?clientId=jakarta-servlet-authz-client"),
            Some(&admin),
        )
        .await;
    let uuid = clients.body[0]["id"].as_str().unwrap().to_owned();
    let base = format!("{admin_url}/clients/{uuid}/authz/resource-server");
    let server_rep = server.get(&base, Some(&admin)).await;
    assert_eq!(server_rep.status, 200, "{}", server_rep.text);
    assert_eq!(server_rep.body["name"], "jakarta-servlet-authz-client");
    assert_eq!(server_rep.body["policyEnforcementMode"], "ENFORCING");
    let names = |reply: &crate::Reply| -> Vec<String> {
        let mut names: Vec<String> = reply
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let resources = server.get(&format!("{base}/resource"), Some(&admin)).await;
    assert_eq!(
        names(&resources),
        [
            "Admin Resource",
            "Main Page",
            "Premium Resource",
            "Protected Resource"
        ]
    );
    assert!(
        resources.body[0]["_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    let scopes = server.get(&format!("{base}/scope"), Some(&admin)).await;
    assert_eq!(names(&scopes).len(), 6, "{}", scopes.text);
    let policies = server.get(&format!("{base}/policy"), Some(&admin)).await;
    assert!(names(&policies).contains(&"Only Premium User Policy".to_owned()));
    let permissions = server
        .get(&format!("{base}/permission"), Some(&admin))
        .await;
    assert_eq!(
        names(&permissions),
        [
            "Administrative Resource Permission",
            "Administrator Action Scope Permission",
            "Premium Resource Permission",
            "Premium User Scope Permission",
            "Protected Resource Permission",
            "User Action Scope Permission"
        ]
    );
    // realm-management keeps Cambio's own (evaluated) model.
    let management = server
        .get(
            &format!("{admin_url}/clients?clientId=realm-management"),
            Some(&admin),
        )
        .await;
    let management = management.body[0]["id"].as_str().unwrap().to_owned();
    let own = server
        .get(
            &format!("{admin_url}/clients/{management}/authz/resource-server/scope"),
            Some(&admin),
        )
        .await;
    assert!(
        names(&own).contains(&"token-exchange".to_owned()),
        "{}",
        own.text
    );

    // The usable provider is imported; its mapper is served; neither the secret nor the SAML
    // provider is.
    let providers = server
        .get(
            &format!("{admin_url}/identity-provider/instances"),
            Some(&admin),
        )
        .await;
    assert_eq!(names_of_aliases(&providers.body), ["partner"]);
    assert!(providers.body[0]["config"].get("clientSecret").is_none());
    let mappers = server
        .get(
            &format!("{admin_url}/identity-provider/instances/partner/mappers"),
            Some(&admin),
        )
        .await;
    assert_eq!(mappers.body[0]["name"], "staff role", "{}", mappers.text);

    // All of it comes back in an export.
    let export = server
        .http
        .post(format!("{admin_url}/partial-export?exportClients=true"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let export: Value = export.json().await.unwrap();
    let client = export["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clientId"] == "jakarta-servlet-authz-client")
        .unwrap();
    assert_eq!(
        client["authorizationSettings"]["resources"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(names_of_aliases(&export["identityProviders"]), ["partner"]);
    // Private keys leave only in a full export.
    assert!(export.get("components").is_none(), "{export}");
    assert_eq!(export["identityProviderMappers"][0]["id"], "m-1");

    // alice (password given in clear) logs in through `admin-cli`, a built-in client the
    // file leaves out and the import created, as Keycloak does.
    let login = public_login(&server, "quickstart", "admin-cli", "alice", "alice").await;
    assert_eq!(login.status, 200, "{}", login.text);
    for builtin in [
        "account",
        "account-console",
        "broker",
        "security-admin-console",
    ] {
        let found = server
            .get(
                &format!("{admin_url}/clients?clientId={builtin}"),
                Some(&admin),
            )
            .await;
        assert_eq!(found.body.as_array().map(Vec::len), Some(1), "{builtin}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_keycloak_26_export_directory_signs_in_with_its_argon2_hash() {
    // Written by Keycloak 26.7.3 itself (`kc.sh import` of `seed.json`, then `kc.sh export
    // --dir`): alice's password "alice-kc26" as Keycloak's Argon2id, its generated RSA and
    // P-256 keys.
    let document =
        cambio_server::realm_import::read_export_dir(&exports_dir().join("kc26-export-dir"), None)
            .unwrap();
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let created = import(&server, &admin, serde_json::to_vec(&document).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let report = &created.body;
    let providers = document["components"]["org.keycloak.keys.KeyProvider"]
        .as_array()
        .unwrap();
    let at = |provider: &str| {
        providers
            .iter()
            .position(|p| p["providerId"] == provider)
            .unwrap()
    };
    let keys = "components.org.keycloak.keys.KeyProvider";
    assert!(reason(report, &format!("{keys}[{}]", at("hmac-generated"))).starts_with("an HMAC"));
    assert!(reason(report, &format!("{keys}[{}]", at("aes-generated"))).starts_with("an AES"));
    assert!(
        reason(report, "identityProviders[0].config.clientSecret").starts_with("not kept"),
        "{report}"
    );
    assert!(
        !report_paths(report)
            .iter()
            .any(|p| p.starts_with("users[0].credentials")),
        "{report}"
    );

    // The RSA key signs (priority 100), the P-256 key (priority 90) is published; both with
    // the kids Keycloak gives them.
    let rsa = &providers[at("rsa-generated")]["config"]["privateKey"][0];
    let rsa_kid = kid_of(rsa.as_str().unwrap());
    let ec = &providers[at("ecdsa-generated")]["config"]["ecdsaPrivateKey"][0];
    let ec_der = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        ec.as_str().unwrap(),
    )
    .unwrap();
    let ec_kid = super::keycloak_kid(
        &cambio_jose::SigningKey::from_private_der(cambio_jose::Algorithm::Es256, &ec_der).unwrap(),
    );
    let mut kids = jwks_kids(&server, "kc26").await;
    kids.sort();
    let mut expected = vec![rsa_kid.clone(), ec_kid];
    expected.sort();
    assert_eq!(kids, expected);

    // Keycloak's Argon2id hash of alice's password, at the password grant...
    let login = server
        .post_form(
            &server.oidc("kc26", "token"),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "alice-kc26"),
            ],
            Some(("app", "app-secret")),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(header(&login.access_token())["kid"], rsa_kid.as_str());
    // ...and at the browser's login form.
    let params = [
        ("response_type", "code"),
        ("client_id", "app"),
        ("redirect_uri", "https://app.example/callback"),
        ("scope", "openid"),
        ("state", "st-1"),
        ("code_challenge", crate::PKCE_CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let url = server.oidc("kc26", "auth");
    let page = server
        .get(&format!("{url}?{}", crate::encode_form(&params)), None)
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    let binding = crate::BrowserBinding::from_page(&page, None);
    let mut form = params.to_vec();
    form.extend_from_slice(&[("username", "alice"), ("password", "alice-kc26")]);
    let signed_in = binding.post(&server, &url, &form).await;
    assert_eq!(signed_in.status, 302, "{}", signed_in.text);
    let location = crate::header_value(&signed_in, "location");
    assert!(
        location.starts_with("https://app.example/callback?"),
        "{location}"
    );
    assert!(location.contains("code="), "{location}");

    // The provider and its mapper, and the client's authorization settings, are there.
    let admin_url = format!("{}/admin/realms/kc26", server.base);
    let providers = server
        .get(
            &format!("{admin_url}/identity-provider/instances"),
            Some(&admin),
        )
        .await;
    assert_eq!(names_of_aliases(&providers.body), ["partner"]);
    let mappers = server
        .get(
            &format!("{admin_url}/identity-provider/instances/partner/mappers"),
            Some(&admin),
        )
        .await;
    assert_eq!(
        mappers.body[0]["identityProviderMapper"],
        "oidc-role-idp-mapper"
    );
    let api = server
        .get(&format!("{admin_url}/clients?clientId=api"), Some(&admin))
        .await;
    let api = api.body[0]["id"].as_str().unwrap().to_owned();
    let resources = server
        .get(
            &format!("{admin_url}/clients/{api}/authz/resource-server/resource"),
            Some(&admin),
        )
        .await;
    assert_eq!(resources.body[0]["name"], "orders", "{}", resources.text);
    server.stop().await;
}
