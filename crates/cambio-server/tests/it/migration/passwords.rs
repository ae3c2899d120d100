//! Keycloak's password hashes log in with their own parameters and are rehashed.

use base64::Engine as _;
use serde_json::json;

use super::{PASSWORD, SALT, STANDARD, credential, import, jwks_kids, reason, report_paths, user};
use crate::{TestServer, header};

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

/// Until its first login an imported user keeps Keycloak's hash, which costs another time to
/// check than the dummy check an unknown username gets. Every check is padded to the slowest
/// recent one, so a wrong password for an unknown username answers no sooner than one for a
/// user with a costly Keycloak hash: the time does not tell that the user exists.
#[tokio::test]
async fn an_unknown_username_answers_no_sooner_than_a_keycloak_hashed_user() {
    // A costly PBKDF2-SHA512 (600,000 iterations, within the import bound); the stored value
    // does not matter, since only wrong passwords are tried.
    let value = STANDARD.encode([7u8; 64]);
    let realm = json!({
        "id": "hashes-id", "realm": "hashes", "enabled": true,
        "clients": [{"clientId": "app", "secret": "app-secret", "directAccessGrantsEnabled": true}],
        "users": [user("costly", json!([credential("pbkdf2-sha512", 600_000, SALT, &value, json!({}))]))]
    });
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let created = import(&server, &admin, serde_json::to_vec(&realm).unwrap()).await;
    assert_eq!(created.status, 201, "{}", created.text);

    let started = std::time::Instant::now();
    let known = password_login(&server, "costly", "wrong").await;
    let known_took = started.elapsed();
    assert_eq!(known.body["error"], "invalid_grant", "{}", known.text);
    let started = std::time::Instant::now();
    let unknown = password_login(&server, "nobody-by-this-name", "wrong").await;
    let unknown_took = started.elapsed();
    assert_eq!(unknown.body, known.body);
    // The padding is a lower bound (a sleep), so this holds however busy the machine is; the
    // margin is the known login's own HTTP and lookup time around its check.
    assert!(
        unknown_took >= known_took.mul_f64(0.8),
        "unknown {unknown_took:?}, known {known_took:?}"
    );
}
