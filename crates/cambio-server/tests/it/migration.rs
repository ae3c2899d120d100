//! Migration from Keycloak: a realm export imports with its signing keys, its password hashes
//! and Keycloak's defaults, and the import reports what it could not keep.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cambio_jose::{Algorithm, AudienceRule, SigningKey, TypRule, Validation};
use serde_json::{Value, json};

use crate::{TestServer, claims, header, now, reply};

/// POSTs a realm document (raw bytes) as a `master` administrator.
async fn import(server: &TestServer, admin: &str, body: Vec<u8>) -> crate::Reply {
    let response = server
        .http
        .post(format!("{}/admin/realms", server.base))
        .bearer_auth(admin)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    reply(response).await
}

fn report_paths(report: &Value) -> Vec<String> {
    report["notImported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["path"].as_str().unwrap().to_owned())
        .collect()
}

fn reason<'a>(report: &'a Value, path: &str) -> &'a str {
    report["notImported"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["path"] == path)
        .and_then(|entry| entry["reason"].as_str())
        .unwrap_or_else(|| panic!("{path} not reported: {report}"))
}

/// Keycloak's kid: base64url of the SHA-256 of the DER SubjectPublicKeyInfo.
fn keycloak_kid(key: &SigningKey) -> String {
    let spki = key.public_key_spki_der().unwrap();
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &spki).as_ref())
}

/// A 2048-bit RSA key's PKCS#1 `RSAPrivateKey` (what Keycloak exports), cut out of the PKCS#8
/// that aws-lc-rs writes: the OCTET STRING that holds it starts at byte 22.
fn pkcs1(key: &SigningKey) -> String {
    let pkcs8 = key.pkcs8_der();
    assert_eq!(pkcs8[22..24], [0x04, 0x82]);
    STANDARD.encode(&pkcs8[26..])
}

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

/// Keycloak 11+ credential of a password hashed with `algorithm`.
fn credential(algorithm: &str, iterations: u64, salt: &str, value: &str, extra: Value) -> Value {
    json!({
        "id": "cred-1", "type": "password", "userLabel": "My password", "createdDate": 1_700_000_000_000u64,
        "secretData": json!({"value": value, "salt": salt, "additionalParameters": {}}).to_string(),
        "credentialData": json!({"hashIterations": iterations, "algorithm": algorithm,
                                 "additionalParameters": extra}).to_string()
    })
}

fn user(name: &str, credentials: Value) -> Value {
    json!({"id": format!("id-{name}"), "username": name, "enabled": true, "credentials": credentials})
}

/// The password every hashed test user has.
const PASSWORD: &str = "correct horse";
/// The salt of the test vectors, base64 of `keycloak-salt-16`.
const SALT: &str = "a2V5Y2xvYWstc2FsdC0xNg==";

async fn password_login(server: &TestServer, username: &str, password: &str) -> crate::Reply {
    server
        .post_form(
            &server.oidc("hashes", "token"),
            &[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
            ],
            Some(("app", "app-secret")),
        )
        .await
}

async fn stored_hash(config: &cambio_server::Config, username: &str) -> Option<String> {
    let export = cambio_server::realm_io::export_realm(config, "hashes")
        .await
        .unwrap();
    let export = serde_json::to_value(export).unwrap();
    export["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .and_then(|u| u["credentials"][0]["hashedSaltedValue"].as_str())
        .map(str::to_owned)
}

#[tokio::test]
async fn keycloak_password_hashes_log_in_and_are_rehashed() {
    // PBKDF2 vectors computed independently with Python's hashlib:
    // base64(hashlib.pbkdf2_hmac(alg, b"correct horse", b"keycloak-salt-16", 27500, 64)).
    let sha1 =
        "XzGlYdO3ehvTkJn+LMFNZm+MYF8t6hxOGp6Cr6jq4/ZEuTQiHg0dkG8BrTDu9pq2UvOvzP3cDgZiuVjyibTx0A==";
    let sha256 =
        "y+rRTfAB+EpmpwZKmK3J781OrwW9fXaJk0hLQuyBE/TMMaRwaDB+ZqQEh7p35+OJQcHdlFAsB0cKQdU7zxZWeg==";
    let sha512 =
        "8ku3DUjOV0j+ghRkjd5mw59poAf1c9ui+3tDSNZkoEd4AAZNKQRvkc1PSVr69d1t5TRfdpsdIRB8xucFhwiIAw==";
    // Argon2id with Keycloak 24's defaults (7168 KiB, 5 passes, 1 lane, 32 bytes), computed
    // with the argon2 crate.
    let mut argon = [0u8; 32];
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(7168, 5, 1, Some(32)).unwrap(),
    )
    .hash_password_into(PASSWORD.as_bytes(), b"keycloak-salt-16", &mut argon)
    .unwrap();
    let argon_parameters = json!({"hashLength": ["32"], "memory": ["7168"], "type": ["id"],
                                  "version": ["1.3"], "parallelism": ["1"]});
    let realm = json!({
        "id": "hashes-id", "realm": "hashes", "enabled": true,
        "clients": [{"clientId": "app", "secret": "app-secret", "directAccessGrantsEnabled": true}],
        "users": [
            user("sha1", json!([credential("pbkdf2", 27500, SALT, sha1, json!({}))])),
            user("sha256", json!([credential("pbkdf2-sha256", 27500, SALT, sha256, json!({}))])),
            user("sha512", json!([credential("pbkdf2-sha512", 27500, SALT, sha512, json!({}))])),
            user("argon", json!([credential("argon2", 5, SALT, &STANDARD.encode(argon), argon_parameters)])),
            // Keycloak before 11 put the hash on the credential itself.
            user("legacy", json!([{"type": "password", "hashedSaltedValue": sha256, "salt": SALT,
                                    "hashIterations": 27500, "algorithm": "pbkdf2-sha256",
                                    "counter": 0, "digits": 0, "period": 0, "config": {}}])),
            // A hostile import: every login would cost 50 million HMACs, or 4 GiB of memory.
            user("costly", json!([credential("pbkdf2-sha256", 50_000_000, SALT, sha256, json!({}))])),
            user("greedy", json!([credential("argon2", 5, SALT, &STANDARD.encode(argon),
                json!({"hashLength": ["32"], "memory": ["4194304"], "type": ["id"],
                       "version": ["1.3"], "parallelism": ["1"]}))])),
            user("unknown", json!([credential("bcrypt", 10, SALT, sha256, json!({}))])),
            // Cambio's own export form, with a cost no Cambio server writes.
            user("smuggled", json!([{"type": "password", "hashedSaltedValue":
                format!("$argon2id$v=19$m=4194304,t=1,p=1$a2V5Y2xvYWstc2FsdC0xNg${}",
                        STANDARD.encode(argon).trim_end_matches('='))}]))
        ]
    });
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::demo_config();
    config.database_url = format!("sqlite://{}", dir.path().join("cambio.db").display());
    config.data_dir = Some(dir.path().to_owned());
    let server = TestServer::start_in(dir.path()).await;
    let admin = server.admin_token().await;
    let created = import(&server, &admin, serde_json::to_vec(&realm).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let report = &created.body;
    assert_eq!(
        report_paths(report),
        [
            "users[5].credentials[0]",
            "users[6].credentials[0]",
            "users[7].credentials[0]",
            "users[8].credentials[0]"
        ],
        "{report}"
    );
    assert!(reason(report, "users[5].credentials[0]").contains("exceeds the bound"));
    assert!(reason(report, "users[6].credentials[0]").contains("exceeds the bounds"));
    assert!(reason(report, "users[7].credentials[0]").contains("\"bcrypt\" is unknown"));
    assert!(reason(report, "users[8].credentials[0]").contains("exceeds the bounds"));

    for (username, before) in [
        ("sha1", "$pbkdf2$i=27500$"),
        ("sha256", "$pbkdf2-sha256$i=27500$"),
        ("sha512", "$pbkdf2-sha512$i=27500$"),
        ("argon", "$argon2id$v=19$m=7168,t=5,p=1$"),
        ("legacy", "$pbkdf2-sha256$i=27500$"),
    ] {
        let stored = stored_hash(&config, username).await.unwrap();
        assert!(stored.starts_with(before), "{username}: {stored}");
        password_login(&server, username, "wrong horse")
            .await
            .assert_error(400, "invalid_grant", "Invalid user credentials");
        let login = password_login(&server, username, PASSWORD).await;
        assert_eq!(login.status, 200, "{username}: {}", login.text);
        // Rehashed to Cambio's own Argon2id at the successful login; the password still works
        // and a wrong one still fails.
        let stored = stored_hash(&config, username).await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{username}: {stored}"
        );
        let again = password_login(&server, username, PASSWORD).await;
        assert_eq!(again.status, 200, "{username}: {}", again.text);
        password_login(&server, username, "wrong horse")
            .await
            .assert_error(400, "invalid_grant", "Invalid user credentials");
    }
    // Users whose hash was refused have no password until it is reset.
    for username in ["costly", "greedy", "unknown", "smuggled"] {
        assert_eq!(stored_hash(&config, username).await, None);
        password_login(&server, username, PASSWORD)
            .await
            .assert_error(400, "invalid_grant", "Invalid user credentials");
    }

    // A full export carries the signing keys as Keycloak key providers, so the realm moves on
    // with them: imported again under another name, it publishes and signs with the same key.
    let mut rep = cambio_server::realm_io::export_realm(&config, "hashes")
        .await
        .unwrap();
    let providers = rep.components.as_ref().unwrap()["org.keycloak.keys.KeyProvider"].clone();
    assert_eq!(providers.as_array().unwrap().len(), 1, "{providers}");
    assert_eq!(providers[0]["providerId"], "rsa");
    rep.realm = Some("hashes-copy".into());
    rep.id = None;
    cambio_server::realm_io::import_realm(&config, &rep)
        .await
        .unwrap();
    server.stop().await;
    let server = TestServer::start_in(dir.path()).await;
    let kids = jwks_kids(&server, "hashes").await;
    assert_eq!(kids, jwks_kids(&server, "hashes-copy").await);
    assert_eq!(kids, [providers[0]["config"]["kid"][0].as_str().unwrap()]);
    let copied = server
        .post_form(
            &server.oidc("hashes-copy", "token"),
            &[
                ("grant_type", "password"),
                ("username", "sha512"),
                ("password", PASSWORD),
            ],
            Some(("app", "app-secret")),
        )
        .await;
    assert_eq!(copied.status, 200, "{}", copied.text);
    assert_eq!(header(&copied.access_token())["kid"], kids[0].as_str());
    server.stop().await;
}

/// Where the real exports are kept (see the README there for their sources).
fn exports_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/data/keycloak-exports")
}

fn read_export(name: &str) -> Value {
    let bytes = std::fs::read(exports_dir().join(name)).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The kid Keycloak gives the RSA key in `private_key` (base64 PKCS#1).
fn kid_of(private_key: &str) -> String {
    let der = STANDARD.decode(private_key).unwrap();
    keycloak_kid(&SigningKey::from_private_der(Algorithm::Rs256, &der).unwrap())
}

/// A password grant in `realm` through a public client.
async fn public_login(
    server: &TestServer,
    realm: &str,
    client: &str,
    username: &str,
    password: &str,
) -> crate::Reply {
    server
        .post_form(
            &server.oidc(realm, "token"),
            &[
                ("grant_type", "password"),
                ("client_id", client),
                ("username", username),
                ("password", password),
            ],
            None,
        )
        .await
}

async fn jwks_kids(server: &TestServer, realm: &str) -> Vec<String> {
    let jwks = server.get(&server.oidc(realm, "certs"), None).await;
    jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

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

fn names_of_aliases(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p["alias"].as_str().unwrap().to_owned())
        .collect()
}

async fn partial_import(
    server: &TestServer,
    token: &str,
    realm: &str,
    body: Value,
) -> crate::Reply {
    let response = server
        .http
        .post(format!(
            "{}/admin/realms/{realm}/partialImport",
            server.base
        ))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    reply(response).await
}

#[tokio::test]
async fn partial_import_adds_skips_and_guards() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let base = json!({
        "realm": "partial", "enabled": true,
        "roles": {"realm": [{"name": "staff"}]},
        "users": [
            {"username": "existing", "enabled": true, "credentials": [{"type": "password", "value": "pw"}]},
            {"username": "helper", "enabled": true,
             "credentials": [{"type": "password", "value": "helper-pw"}],
             "clientRoles": {"realm-management": ["manage-realm", "manage-users"]}}
        ]
    });
    let created = import(&server, &admin, serde_json::to_vec(&base).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    // A bare representation without an id or components keeps Cambio's default algorithm.
    let settings = server
        .get(
            &format!("{}/admin/realms/partial", server.base),
            Some(&admin),
        )
        .await;
    assert_eq!(settings.body["defaultSignatureAlgorithm"], "ES256");

    let sha256 =
        "y+rRTfAB+EpmpwZKmK3J781OrwW9fXaJk0hLQuyBE/TMMaRwaDB+ZqQEh7p35+OJQcHdlFAsB0cKQdU7zxZWeg==";
    let body = json!({
        "ifResourceExists": "FAIL",
        "roles": {"realm": [{"name": "auditor", "composites": {"realm": ["staff"]}}]},
        "clients": [{"clientId": "reports", "publicClient": true, "directAccessGrantsEnabled": true}],
        "users": [
            {"username": "existing"},
            {"username": "carol", "enabled": true, "realmRoles": ["auditor"],
             "credentials": [credential("pbkdf2-sha256", 27500, SALT, sha256, json!({}))]}
        ],
        "groups": [{"name": "team"}]
    });
    // FAIL: something exists, so nothing is written.
    let refused = partial_import(&server, &admin, "partial", body.clone()).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.body["errorMessage"], "USER existing already exists");
    let roles = server
        .get(
            &format!("{}/admin/realms/partial/roles/auditor", server.base),
            Some(&admin),
        )
        .await;
    assert_eq!(roles.status, 404);

    // SKIP: the rest is added, and Keycloak's answer lists it.
    let mut skipping = body.clone();
    skipping["ifResourceExists"] = json!("SKIP");
    let done = partial_import(&server, &admin, "partial", skipping).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.body["added"], 3, "{}", done.text);
    assert_eq!(done.body["skipped"], 1);
    assert_eq!(done.body["notImported"][0]["path"], "groups");
    // carol's Keycloak hash logs in, through the new client, with the new composite role.
    let login = public_login(&server, "partial", "reports", "carol", PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let roles = claims(&login.access_token())["realm_access"]["roles"].clone();
    assert!(
        roles.as_array().unwrap().contains(&json!("staff")),
        "{roles}"
    );

    // A restricted administrator cannot hand out a role it could not grant through it.
    let helper = public_login(&server, "partial", "admin-cli", "helper", "helper-pw")
        .await
        .access_token();
    let escalation = partial_import(
        &server,
        &helper,
        "partial",
        json!({"users": [{"username": "mallory", "enabled": true,
                          "clientRoles": {"realm-management": ["realm-admin"]}}]}),
    )
    .await;
    assert_eq!(escalation.status, 403, "{}", escalation.text);
    let mallory = server
        .get(
            &format!(
                "{}/admin/realms/partial/users?username=mallory&exact=true",
                server.base
            ),
            Some(&admin),
        )
        .await;
    assert_eq!(mallory.body, json!([]));
    // ...but may add a user with a role it may grant.
    let allowed = partial_import(
        &server,
        &helper,
        "partial",
        json!({"users": [{"username": "dave", "enabled": true, "realmRoles": ["staff"]}]}),
    )
    .await;
    assert_eq!(allowed.status, 200, "{}", allowed.text);
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

#[tokio::test]
async fn keycloak_token_exchange_permissions_carry_over() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let permission = |target: &str, scope: &str, policies: &str| {
        json!({"name": format!("{scope}.permission.client.{target}"), "type": "scope",
               "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS",
               "config": {"resources": format!("[\"client.resource.{target}\"]"),
                          "scopes": format!("[\"{scope}\"]"), "applyPolicies": policies}})
    };
    let document = json!({
        "id": "v1", "realm": "v1", "enabled": true,
        "roles": {"realm": [{"name": "staff"}]},
        "clients": [
            {"clientId": "source-app", "publicClient": true, "directAccessGrantsEnabled": true},
            {"clientId": "other-app", "publicClient": true, "directAccessGrantsEnabled": true},
            {"id": "target-uuid", "clientId": "target-api", "secret": "target-secret"},
            {"id": "other-target", "clientId": "other-api", "secret": "other-secret"},
            {"clientId": "realm-management", "bearerOnly": true, "authorizationSettings": {
                "allowRemoteResourceManagement": false, "policyEnforcementMode": "ENFORCING",
                "resources": [{"name": "client.resource.target-uuid", "type": "Client",
                               "scopes": [{"name": "view"}, {"name": "token-exchange"}]}],
                "policies": [
                    {"name": "source-exchange", "type": "client", "logic": "POSITIVE",
                     "decisionStrategy": "UNANIMOUS", "config": {"clients": "[\"source-app\"]"}},
                    {"name": "either", "type": "aggregate", "logic": "POSITIVE",
                     "decisionStrategy": "AFFIRMATIVE", "config": {"applyPolicies": "[\"source-exchange\"]"}},
                    {"name": "staff-only", "type": "role", "logic": "POSITIVE",
                     "decisionStrategy": "UNANIMOUS", "config": {"roles": "[{\"id\":\"staff\"}]"}},
                    permission("target-uuid", "token-exchange", "[\"either\"]"),
                    permission("target-uuid", "manage", "[\"staff-only\"]"),
                    permission("other-target", "token-exchange", "[\"source-exchange\",\"staff-only\"]")
                ],
                "scopes": [{"name": "view"}, {"name": "token-exchange"}],
                "decisionStrategy": "UNANIMOUS"}}
        ],
        "users": [{"username": "alice", "enabled": true, "realmRoles": ["staff"],
                   "credentials": [{"type": "password", "value": "alice-pw"}]}]
    });
    let created = import(&server, &admin, serde_json::to_vec(&document).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let report = &created.body;
    let settings = "clients[4].authorizationSettings";
    assert!(reason(report, &format!("{settings}.policies[2]")).starts_with("not imported"));
    assert!(reason(report, &format!("{settings}.policies[4]")).starts_with("not imported"));
    assert_eq!(
        reason(report, &format!("{settings}.policies[5]")),
        "imported without its policies, so it denies: policy \"staff-only\" is of type \"role\", \
         which Cambio does not evaluate"
    );
    assert!(
        !report_paths(report)
            .iter()
            .any(|p| p.starts_with(&format!("{settings}.policies[0]"))
                || p.starts_with(&format!("{settings}.policies[1]"))
                || p.starts_with(&format!("{settings}.policies[3]"))),
        "{report}"
    );

    let exchange = |requester: &'static str, subject: String, audience: &'static str| {
        let server = &server;
        async move {
            server
                .post_form(
                    &server.oidc("v1", "token"),
                    &[
                        ("grant_type", crate::EXCHANGE),
                        ("client_id", requester),
                        ("subject_token", &subject),
                        ("subject_token_type", crate::ACCESS_TOKEN_TYPE),
                        ("audience", audience),
                    ],
                    None,
                )
                .await
        }
    };
    // The permission names source-app (through the aggregate): its exchange to target-api works.
    let own = public_login(&server, "v1", "source-app", "alice", "alice-pw")
        .await
        .access_token();
    let allowed = exchange("source-app", own.clone(), "target-api").await;
    assert_eq!(allowed.status, 200, "{}", allowed.text);
    assert_eq!(claims(&allowed.access_token())["azp"], "source-app");
    // Another client is not named; a permission whose policies could not be taken over denies.
    let other = public_login(&server, "v1", "other-app", "alice", "alice-pw")
        .await
        .access_token();
    exchange("other-app", other, "target-api")
        .await
        .assert_error(403, "access_denied", "Client not allowed to exchange");
    exchange("source-app", own, "other-api").await.assert_error(
        403,
        "access_denied",
        "Client not allowed to exchange",
    );
    server.stop().await;
}
