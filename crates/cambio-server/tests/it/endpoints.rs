//! The token endpoint's companions: discovery, JWKS, introspection, revocation, userinfo,
//! logout, health, persistence across restarts and the admin endpoints.

use std::time::Duration;

use cambio_jose::{AudienceRule, TypRule, Validation};
use serde_json::{Value, json};

use crate::*;

const SUBJECT: Option<(&str, &str)> = Some(("subject-client", "subject-secret"));
const REQUESTER: Option<(&str, &str)> = Some(("requester-client", "requester-secret"));

fn inactive() -> Value {
    json!({"active": false})
}

// ---------------------------------------------------------------------------------------------
// Discovery

fn assert_discovery(d: &Reply, issuer: &str) {
    assert_eq!(d.status, 200, "{}", d.text);
    let b = &d.body;
    assert_eq!(b["issuer"], issuer);
    let oidc = format!("{issuer}/protocol/openid-connect");
    for (field, path) in [
        ("authorization_endpoint", "auth"),
        ("token_endpoint", "token"),
        ("introspection_endpoint", "token/introspect"),
        ("userinfo_endpoint", "userinfo"),
        ("end_session_endpoint", "logout"),
        ("jwks_uri", "certs"),
        ("revocation_endpoint", "revoke"),
    ] {
        assert_eq!(b[field], format!("{oidc}/{path}"), "{field}");
    }
    assert_eq!(
        strings(&b["grant_types_supported"]),
        [
            "authorization_code",
            "client_credentials",
            "password",
            "refresh_token",
            EXCHANGE
        ]
    );
    let methods = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ];
    assert_eq!(
        strings(&b["token_endpoint_auth_methods_supported"]),
        methods
    );
    assert_eq!(
        strings(&b["introspection_endpoint_auth_methods_supported"]),
        methods
    );
    assert_eq!(
        strings(&b["revocation_endpoint_auth_methods_supported"]),
        methods
    );
    assert_eq!(b["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(b["response_types_supported"], json!(["code"]));
    assert_eq!(b["id_token_signing_alg_values_supported"], json!(["ES256"]));
    let scopes = strings(&b["scopes_supported"]);
    for scope in ["openid", "profile", "email", "offline_access"] {
        assert!(
            scopes.iter().any(|s| s == scope),
            "{scope} not in {scopes:?}"
        );
    }
}

#[tokio::test]
async fn discovery_documents() {
    let s = TestServer::start().await;
    let issuer = s.realm_url("demo");
    assert_eq!(issuer, format!("{}/realms/demo", s.base));
    assert!(s.base.starts_with("http://127.0.0.1:"), "{}", s.base);

    let oidc = s
        .get(&format!("{issuer}/.well-known/openid-configuration"), None)
        .await;
    assert_discovery(&oidc, &issuer);
    assert!(header_value(&oidc, "content-type").starts_with("application/json"));

    // RFC 8414 §3: the well-known segment goes between host and path.
    let rfc8414 = s
        .get(
            &format!(
                "{}/.well-known/oauth-authorization-server/realms/demo",
                s.base
            ),
            None,
        )
        .await;
    assert_discovery(&rfc8414, &issuer);
    assert_eq!(rfc8414.body, oidc.body);

    // Each realm has its own issuer.
    let master = s
        .get(
            &format!("{}/.well-known/openid-configuration", s.realm_url("master")),
            None,
        )
        .await;
    assert_discovery(&master, &s.realm_url("master"));

    for url in [
        format!(
            "{}/.well-known/openid-configuration",
            s.realm_url("nowhere")
        ),
        format!(
            "{}/.well-known/oauth-authorization-server/realms/nowhere",
            s.base
        ),
        s.oidc("nowhere", "certs"),
    ] {
        let r = s.get(&url, None).await;
        assert_eq!(r.status, 404, "{url}: {}", r.text);
        assert_eq!(r.body["error"], "Realm does not exist", "{url}");
    }
}

#[tokio::test]
async fn legacy_auth_prefix_is_also_served() {
    let s = TestServer::start().await;
    let issuer = s.realm_url("demo");
    // Same document (issuer without /auth) under the old Keycloak prefix.
    let d = s
        .get(
            &format!(
                "{}/auth/realms/demo/.well-known/openid-configuration",
                s.base
            ),
            None,
        )
        .await;
    assert_discovery(&d, &issuer);
    let d = s
        .get(
            &format!(
                "{}/auth/.well-known/oauth-authorization-server/realms/demo",
                s.base
            ),
            None,
        )
        .await;
    assert_discovery(&d, &issuer);
    // The token endpoint answers there too and issues tokens with the canonical issuer.
    let r = s
        .post_form(
            &format!("{}/auth/realms/demo/protocol/openid-connect/token", s.base),
            &[("grant_type", "client_credentials")],
            REQUESTER,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(claims(&r.access_token())["iss"], issuer);
    assert_eq!(
        s.get(&format!("{}/auth/health/live", s.base), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn relative_path_server_serves_only_under_it() {
    let mut config = demo_config();
    config.http_relative_path = "/auth".into();
    let s = TestServer::start_with(config).await;
    let root = s
        .base
        .strip_suffix("/auth")
        .expect("base ends with /auth")
        .to_owned();
    assert!(root.starts_with("http://127.0.0.1:"), "{root}");
    let issuer = format!("{root}/auth/realms/demo");
    assert_eq!(s.realm_url("demo"), issuer);

    let d = s
        .get(&format!("{issuer}/.well-known/openid-configuration"), None)
        .await;
    assert_discovery(&d, &issuer);
    let d = s
        .get(
            &format!("{root}/auth/.well-known/oauth-authorization-server/realms/demo"),
            None,
        )
        .await;
    assert_discovery(&d, &issuer);

    // Nothing is served outside the prefix.
    for path in [
        "/realms/demo/.well-known/openid-configuration",
        "/realms/demo/protocol/openid-connect/certs",
        "/health/live",
    ] {
        let r = s.get(&format!("{root}{path}"), None).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
    }
    let r = s
        .post_form(
            &format!("{root}/realms/demo/protocol/openid-connect/token"),
            &[("grant_type", "client_credentials")],
            REQUESTER,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);

    let r = s.service_token().await;
    assert_eq!(claims(&r.access_token())["iss"], issuer);
    assert_eq!(
        s.get(&format!("{root}/auth/health/ready"), None)
            .await
            .status,
        200
    );
}

// ---------------------------------------------------------------------------------------------
// JWKS

#[tokio::test]
async fn jwks_publishes_the_signing_key() {
    let s = TestServer::start().await;
    let jwks = s.jwks().await;
    assert_eq!(header_value(&jwks, "content-type"), "application/json");
    let keys = jwks.body["keys"].as_array().expect("keys").clone();
    assert_eq!(keys.len(), 1, "{}", jwks.text);
    for key in &keys {
        assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()), "{key}");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "ES256");
        assert_eq!(key["kty"], "EC");
        assert_eq!(key["crv"], "P-256");
        assert!(
            key.get("d").is_none(),
            "private key material published: {key}"
        );
    }

    let token = s.service_token().await.access_token();
    let h = header(&token);
    assert_eq!(h["typ"], "at+jwt");
    assert_eq!(h["alg"], "ES256");
    assert!(
        keys.iter().any(|k| k["kid"] == h["kid"]),
        "{h} not in {}",
        jwks.text
    );

    let verifiers = cambio_jose::parse_jwks(jwks.text.as_bytes(), None).unwrap();
    let issuer = s.realm_url("demo");
    let validation = Validation {
        issuer: Some(&issuer),
        typ: TypRule::Exactly("at+jwt"),
        audience: AudienceRule::Skip,
        ..Validation::new(now())
    };
    let verified = cambio_jose::verify(&token, &verifiers, &validation).unwrap();
    assert_eq!(verified.claims()["azp"], "requester-client");
    assert_eq!(verified.subject(), claims(&token)["sub"].as_str());

    // The master realm has its own key, which does not verify demo tokens.
    let master = s.get(&s.oidc("master", "certs"), None).await;
    assert_eq!(master.status, 200);
    assert_ne!(master.body["keys"][0]["kid"], h["kid"]);
    let master_keys = cambio_jose::parse_jwks(master.text.as_bytes(), None).unwrap();
    let no_issuer = Validation {
        typ: TypRule::Exactly("at+jwt"),
        ..Validation::new(now())
    };
    assert!(cambio_jose::verify(&token, &master_keys, &no_issuer).is_err());
}

// ---------------------------------------------------------------------------------------------
// Introspection

/// The token with one character of its signature changed.
fn flip_signature(token: &str) -> String {
    let dot = token.rfind('.').unwrap();
    let mut bytes = token.as_bytes().to_vec();
    let i = dot + 10;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn introspection_requires_client_authentication() {
    let s = TestServer::start().await;
    let token = s.service_token().await.access_token();
    let url = s.oidc("demo", "token/introspect");
    s.post_form(&url, &[("token", &token)], None)
        .await
        .assert_error(400, "invalid_client", "Parameter 'client_id' required");
    let r = s
        .post_form(&url, &[("token", &token)], Some(("orders-api", "wrong")))
        .await;
    r.assert_error(
        401,
        "invalid_client",
        "Invalid client or Invalid client credentials",
    );
    assert_eq!(
        header_value(&r, "www-authenticate"),
        "Basic realm=\"cambio\""
    );
    s.post_form(
        &url,
        &[("token", &token), ("client_id", "orders-api")],
        None,
    )
    .await
    .assert_error(401, "invalid_client", "Client authentication required");
    s.post_form(&url, &[], Some(("orders-api", "orders-secret")))
        .await
        .assert_error(400, "invalid_request", "Parameter 'token' required");
}

#[tokio::test]
async fn introspection_of_active_and_inactive_tokens() {
    let s = TestServer::start().await;
    let login = s.alice(None).await;
    let token = login.access_token();
    let c = claims(&token);

    let i = s.introspect(&token).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["sub"], c["sub"]);
    assert_eq!(i["client_id"], "subject-client");
    assert_eq!(i["scope"], "email profile");
    assert_eq!(i["username"], "alice");
    assert_eq!(i["exp"], c["exp"]);
    assert_eq!(i["iat"], c["iat"]);
    assert_eq!(i["jti"], c["jti"]);
    assert_eq!(i["iss"], s.realm_url("demo"));
    assert_eq!(i["token_type"], "Bearer");
    assert_eq!(i["sid"], c["sid"]);

    // A refresh token introspects as one.
    let refresh = login.body["refresh_token"].as_str().unwrap();
    let i = s.introspect(refresh).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["token_type"], "Refresh");
    assert_eq!(i["client_id"], "subject-client");
    assert_eq!(i["sub"], c["sub"]);
    assert_eq!(i["sid"], c["sid"]);

    let truncated = &token[..token.len() - 5];
    let admin = s.admin_token().await;
    for (what, bad) in [
        ("garbage", "garbage".to_owned()),
        ("garbage with dots", "a.b.c".to_owned()),
        ("truncated", truncated.to_owned()),
        ("flipped signature", flip_signature(&token)),
        ("master realm token", admin.clone()),
        (
            "ID token",
            s.alice(Some("openid")).await.body["id_token"]
                .as_str()
                .unwrap()
                .to_owned(),
        ),
    ] {
        let r = s.introspect_reply(&bad).await;
        assert_eq!(r.status, 200, "{what}: {}", r.text);
        assert_eq!(r.body, inactive(), "{what}");
        assert_eq!(r.text, r#"{"active":false}"#, "{what}");
    }
    // Revoked: inactive.
    let r = s
        .post_form(&s.oidc("demo", "revoke"), &[("token", &token)], SUBJECT)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.introspect(&token).await, inactive());
}

// ---------------------------------------------------------------------------------------------
// Revocation

#[tokio::test]
async fn revoking_an_access_token() {
    let s = TestServer::start().await;
    let login = s.alice(Some("openid")).await;
    let token = login.access_token();
    let url = s.oidc("demo", "revoke");

    // Another client may not revoke it.
    s.post_form(&url, &[("token", &token)], REQUESTER)
        .await
        .assert_error(400, "unauthorized_client", "Unmatching clients");
    assert_eq!(s.introspect(&token).await["active"], true);
    assert_eq!(
        s.get(&s.oidc("demo", "userinfo"), Some(&token))
            .await
            .status,
        200
    );

    let r = s.post_form(&url, &[("token", &token)], SUBJECT).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, "");
    assert_eq!(s.introspect(&token).await, inactive());
    let r = s.get(&s.oidc("demo", "userinfo"), Some(&token)).await;
    assert_eq!(r.status, 401, "{}", r.text);

    // Only that token: the session and its refresh token live on.
    let r = s
        .refresh(login.body["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.introspect(&r.access_token()).await["active"], true);

    // Revoking again, or revoking something unknown, is fine (RFC 7009 §2.2).
    for unknown in [token.as_str(), "unknown-token", "a.b.c"] {
        let r = s.post_form(&url, &[("token", unknown)], SUBJECT).await;
        assert_eq!(r.status, 200, "{unknown}: {}", r.text);
    }
    // Revocation needs client authentication.
    s.post_form(&url, &[("token", "x")], None)
        .await
        .assert_error(400, "invalid_client", "Parameter 'client_id' required");
    s.post_form(&url, &[("token", "x")], Some(("subject-client", "nope")))
        .await
        .assert_error(
            401,
            "invalid_client",
            "Invalid client or Invalid client credentials",
        );
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_the_session() {
    let s = TestServer::start().await;
    let login = s.alice(None).await;
    let token = login.access_token();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    let url = s.oidc("demo", "revoke");

    s.post_form(&url, &[("token", &refresh)], REQUESTER)
        .await
        .assert_error(400, "unauthorized_client", "Unmatching clients");
    assert_eq!(s.introspect(&token).await["active"], true);

    let r = s
        .post_form(
            &url,
            &[("token", &refresh), ("token_type_hint", "refresh_token")],
            SUBJECT,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.introspect(&token).await, inactive());
    assert_eq!(s.introspect(&refresh).await, inactive());
    s.refresh(&refresh)
        .await
        .assert_error(400, "invalid_grant", "Session not active");
    // A new login is a new session.
    let again = s.alice(None).await;
    assert_eq!(s.introspect(&again.access_token()).await["active"], true);
}

// ---------------------------------------------------------------------------------------------
// userinfo

#[tokio::test]
async fn userinfo_answers_standard_claims() {
    let s = TestServer::start().await;
    let token = s.alice(Some("openid")).await.access_token();
    let sub = claims(&token)["sub"].clone();
    let expected = json!({
        "sub": sub,
        "preferred_username": "alice",
        "name": "Alice Liddell",
        "given_name": "Alice",
        "family_name": "Liddell",
        "email": "alice@example.com",
        "email_verified": true,
    });
    let r = s.get(&s.oidc("demo", "userinfo"), Some(&token)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, expected);
    // POST works as well (OpenID Connect Core §5.3.1).
    let r = s
        .http
        .post(s.oidc("demo", "userinfo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), expected);
}

#[tokio::test]
async fn userinfo_bearer_errors() {
    let s = TestServer::start().await;
    let url = s.oidc("demo", "userinfo");
    let r = s.get(&url, None).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        header_value(&r, "www-authenticate"),
        "Bearer realm=\"cambio\""
    );

    let r = s.get(&url, Some("not-a-token")).await;
    assert_eq!(r.status, 401, "{}", r.text);
    let challenge = header_value(&r, "www-authenticate");
    assert!(
        challenge.starts_with("Bearer realm=\"cambio\""),
        "{challenge}"
    );
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(r.error(), "invalid_token");

    // A token of another realm is not valid here.
    let admin = s.admin_token().await;
    let r = s.get(&url, Some(&admin)).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(header_value(&r, "www-authenticate").contains("error=\"invalid_token\""));
    // ...but is in its own, where a token without `openid` is refused for its scope (OpenID
    // Connect Core §5.3; Keycloak answers the same).
    let r = s.get(&s.oidc("master", "userinfo"), Some(&admin)).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(header_value(&r, "www-authenticate").contains("error=\"insufficient_scope\""));
}

// ---------------------------------------------------------------------------------------------
// Logout

#[tokio::test]
async fn post_logout_ends_the_session() {
    let s = TestServer::start().await;
    let login = s.alice(None).await;
    let token = login.access_token();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    let url = s.oidc("demo", "logout");

    // Another client cannot log the session out.
    s.post_form(&url, &[("refresh_token", &refresh)], REQUESTER)
        .await
        .assert_error(400, "invalid_grant", "Invalid refresh token");
    s.post_form(&url, &[("refresh_token", "garbage")], SUBJECT)
        .await
        .assert_error(400, "invalid_grant", "Invalid refresh token");
    s.post_form(&url, &[], SUBJECT).await.assert_error(
        400,
        "invalid_request",
        "Parameter 'refresh_token' required",
    );
    assert_eq!(s.introspect(&token).await["active"], true);

    let r = s
        .post_form(&url, &[("refresh_token", &refresh)], SUBJECT)
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(r.text, "");
    assert_eq!(s.introspect(&token).await, inactive());
    assert_eq!(s.introspect(&refresh).await, inactive());
    s.refresh(&refresh)
        .await
        .assert_error(400, "invalid_grant", "Session not active");
    assert_eq!(
        s.get(&s.oidc("demo", "userinfo"), Some(&token))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn get_logout_with_id_token_hint() {
    let s = TestServer::start().await;
    let login = s.alice(Some("openid")).await;
    let token = login.access_token();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    let id_token = login.body["id_token"].as_str().unwrap().to_owned();
    let url = s.oidc("demo", "logout");

    // A bad hint ends nothing; a browser reads the error on a page.
    let refused = |r: &Reply| {
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(header_value(r, "content-type").starts_with("text/html"));
        assert!(r.text.contains("Invalid id_token_hint"), "{}", r.text);
    };
    refused(&s.get(&format!("{url}?id_token_hint=garbage"), None).await);
    // An access token is not an ID token.
    refused(&s.get(&format!("{url}?id_token_hint={token}"), None).await);
    assert_eq!(s.introspect(&token).await["active"], true);

    let r = s
        .get(&format!("{url}?id_token_hint={id_token}"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(header_value(&r, "content-type").starts_with("text/html"));
    assert!(r.text.contains("You are signed out."), "{}", r.text);
    assert_eq!(s.introspect(&token).await, inactive());
    s.refresh(&refresh)
        .await
        .assert_error(400, "invalid_grant", "Session not active");

    // Without a hint a confirmation page is shown and nothing else happens (browser_forms.rs).
    let r = s.get(&url, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("Do you want to sign out?"), "{}", r.text);
}

// ---------------------------------------------------------------------------------------------
// Health

#[tokio::test]
async fn health_probes() {
    let s = TestServer::start().await;
    for probe in ["live", "ready"] {
        let r = s.get(&format!("{}/health/{probe}", s.base), None).await;
        assert_eq!(r.status, 200, "{probe}: {}", r.text);
        assert_eq!(r.body, json!({"status": "UP"}), "{probe}");
    }
}

// ---------------------------------------------------------------------------------------------
// Persistence across restarts

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path()).await;
    let login = s.alice(None).await;
    let kid = header(&login.access_token())["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    // A second session that is not revoked.
    let kept = s.alice(None).await;
    let kept_refresh = kept.body["refresh_token"].as_str().unwrap().to_owned();
    let r = s
        .post_form(&s.oidc("demo", "revoke"), &[("token", &refresh)], SUBJECT)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    s.stop().await;

    let key_file = dir.path().join("secret.key");
    let meta = std::fs::metadata(&key_file).unwrap();
    assert_eq!(meta.len(), 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    let key_before = std::fs::read(&key_file).unwrap();

    let s = TestServer::start_in(dir.path()).await;
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        key_before,
        "the key must not be regenerated"
    );
    // The signing key was kept.
    let jwks = s.jwks().await;
    assert_eq!(jwks.body["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks.body["keys"][0]["kid"], kid.as_str());
    // The revoked session stays revoked; the other one still refreshes.
    s.refresh(&refresh)
        .await
        .assert_error(400, "invalid_grant", "Session not active");
    let r = s.refresh(&kept_refresh).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(header(&r.access_token())["kid"], kid.as_str());
    // Client secrets (sealed at rest) still work, and so does a fresh login.
    let fresh = s.alice(None).await;
    assert_eq!(header(&fresh.access_token())["kid"], kid.as_str());
    assert_eq!(s.introspect(&fresh.access_token()).await["active"], true);
    s.stop().await;
}

#[tokio::test]
async fn revoked_access_token_stays_revoked_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path()).await;
    let revoked = s.service_token().await.access_token();
    let kept = s.service_token().await.access_token();
    let r = s
        .post_form(&s.oidc("demo", "revoke"), &[("token", &revoked)], REQUESTER)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let address = s.base.trim_start_matches("http://").to_owned();
    s.stop().await;

    // The same port again, so that the issuer (and with it the tokens) stays valid.
    let listener = tokio::net::TcpListener::bind(&address).await.unwrap();
    let mut config = demo_config();
    config.database_url = format!("sqlite://{}", dir.path().join("cambio.db").display());
    config.data_dir = Some(dir.path().to_owned());
    let s = TestServer::start_on(config, listener).await;
    assert_eq!(s.introspect(&kept).await["active"], true);
    assert_eq!(s.introspect(&revoked).await, inactive());
    assert_eq!(
        s.get(&s.oidc("demo", "userinfo"), Some(&revoked))
            .await
            .status,
        401
    );
    s.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Admin: events and key rotation

async fn events(s: &TestServer, query: &str, token: &str) -> Reply {
    s.get(
        &format!("{}/admin/realms/demo/events{query}", s.base),
        Some(token),
    )
    .await
}

/// Polls the event list until `done` holds (events are written asynchronously).
async fn events_until(
    s: &TestServer,
    query: &str,
    token: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let mut last = Vec::new();
    for _ in 0..40 {
        let r = events(s, query, token).await;
        assert_eq!(r.status, 200, "{}", r.text);
        last = r.body.as_array().expect("a list").clone();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("events never matched: {last:?}");
}

/// Events older than the retention are deleted by the cleanup job; newer ones stay.
#[tokio::test]
async fn old_events_are_purged_after_the_retention() {
    let s = TestServer::start_with(cambio_server::Config {
        events_retention: Some(Duration::from_secs(2)),
        maintenance_interval: Duration::from_millis(200),
        ..demo_config()
    })
    .await;
    let admin = s.admin_token().await;
    let bad = s
        .token(
            &[("grant_type", "client_credentials")],
            Some(("requester-client", "wrong")),
        )
        .await;
    assert_eq!(bad.status, 401, "{}", bad.text);
    let first = events_until(&s, "?type=CLIENT_LOGIN_ERROR", &admin, |e| e.len() == 1).await;
    // A second event a little later: when the first is purged, this one is still young.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let ok = s.service_token().await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    events_until(&s, "?type=CLIENT_LOGIN", &admin, |e| e.len() == 1).await;
    // Past 2 s (and a round of the job) after the first, only the second is left.
    let mut left = Vec::new();
    for _ in 0..120 {
        let r = events(&s, "?type=CLIENT_LOGIN,CLIENT_LOGIN_ERROR", &admin).await;
        left = r.body.as_array().expect("a list").clone();
        if left.len() < 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["type"], "CLIENT_LOGIN");
    assert_ne!(left[0]["time"], first[0]["time"]);
    s.stop().await;
}

#[tokio::test]
async fn admin_events_require_an_administrator() {
    let s = TestServer::start().await;
    let url = format!("{}/admin/realms/demo/events", s.base);
    let r = s.get(&url, None).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(header_value(&r, "www-authenticate").starts_with("Bearer realm=\"cambio\""));
    let r = s.get(&url, Some("garbage")).await;
    assert_eq!(r.status, 401, "{}", r.text);
    // A valid token without any administrative role: 403.
    let alice = s.alice(None).await.access_token();
    let r = s.get(&url, Some(&alice)).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["error"], "HTTP 403 Forbidden");
    let r = s
        .http
        .post(format!("{}/admin/realms/demo/keys/rotate", s.base))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A demo token is not even a valid token for another realm.
    let r = s
        .get(
            &format!("{}/admin/realms/master/events", s.base),
            Some(&alice),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text);
    // An administrator's token for an unknown realm.
    let admin = s.admin_token().await;
    let r = s
        .get(
            &format!("{}/admin/realms/nowhere/events", s.base),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
}

#[tokio::test]
async fn admin_events_list_logins_and_failures() {
    let s = TestServer::start().await;
    let alice = s.alice(None).await.access_token();
    let alice_id = claims(&alice)["sub"].as_str().unwrap().to_owned();
    let sid = claims(&alice)["sid"].as_str().unwrap().to_owned();
    s.token(
        &[("grant_type", "client_credentials")],
        Some(("requester-client", "wrong")),
    )
    .await
    .assert_error(
        401,
        "invalid_client",
        "Invalid client or Invalid client credentials",
    );
    s.token(
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wrong"),
        ],
        SUBJECT,
    )
    .await
    .assert_error(400, "invalid_grant", "Invalid user credentials");
    let admin = s.admin_token().await;

    let list = events_until(&s, "", &admin, |events| {
        ["LOGIN", "CLIENT_LOGIN_ERROR", "LOGIN_ERROR"]
            .iter()
            .all(|t| events.iter().any(|e| e["type"] == *t))
    })
    .await;
    let login = list.iter().find(|e| e["type"] == "LOGIN").unwrap();
    assert_eq!(login["userId"], alice_id.as_str());
    assert_eq!(login["clientId"], "subject-client");
    assert_eq!(login["sessionId"], sid.as_str());
    assert_eq!(login["ipAddress"], "127.0.0.1");
    assert_eq!(login["details"]["username"], "alice");
    assert_eq!(login["details"]["grant_type"], "password");
    assert_eq!(login["error"], Value::Null);
    assert!(login["realmId"].as_str().is_some_and(|r| !r.is_empty()));

    let failure = list
        .iter()
        .find(|e| e["type"] == "CLIENT_LOGIN_ERROR")
        .unwrap();
    assert_eq!(failure["error"], "invalid_client");
    // The client it claimed to be, although it failed to authenticate.
    assert_eq!(failure["clientId"], "requester-client");
    assert_eq!(failure["userId"], Value::Null);
    assert_eq!(failure["details"]["grant_type"], "client_credentials");
    assert_eq!(
        failure["details"]["reason"],
        "Invalid client or Invalid client credentials"
    );
    let bad_password = list.iter().find(|e| e["type"] == "LOGIN_ERROR").unwrap();
    assert_eq!(bad_password["error"], "invalid_grant");
    assert_eq!(bad_password["clientId"], "subject-client");
    assert_eq!(bad_password["details"]["username"], "alice");
    assert_eq!(
        bad_password["details"]["reason"],
        "Invalid user credentials"
    );
    assert_eq!(bad_password["userId"], Value::Null);
    // Only demo events: the administrator's login to master is not listed.
    assert!(
        list.iter().all(|e| e["realmId"] == login["realmId"]),
        "{list:?}"
    );
    assert!(
        list.iter().all(|e| e["details"]["username"] != "admin"),
        "{list:?}"
    );

    let only_logins = events(&s, "?type=LOGIN", &admin).await;
    assert_eq!(only_logins.status, 200, "{}", only_logins.text);
    let only_logins = only_logins.body.as_array().unwrap();
    assert!(!only_logins.is_empty());
    assert!(
        only_logins.iter().all(|e| e["type"] == "LOGIN"),
        "{only_logins:?}"
    );

    let one = events(&s, "?max=1", &admin).await;
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(one.body.as_array().unwrap().len(), 1, "{}", one.text);

    let by_user = events(&s, &format!("?user={alice_id}"), &admin).await;
    assert!(
        by_user
            .body
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["userId"] == alice_id.as_str())
    );
    let r = events(&s, "?dateFrom=yesterday", &admin).await;
    assert_eq!(r.status, 400, "{}", r.text);
}

#[tokio::test]
async fn key_rotation() {
    let s = TestServer::start().await;
    let before = s.service_token().await.access_token();
    let old_kid = header(&before)["kid"].as_str().unwrap().to_owned();
    let url = format!("{}/admin/realms/demo/keys/rotate", s.base);

    let r = s.http.post(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let admin = s.admin_token().await;
    let r = s.http.post(&url).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let new_kid = body["kid"].as_str().expect("kid").to_owned();
    assert_ne!(new_kid, old_kid);

    let jwks = s.jwks().await;
    let mut kids: Vec<String> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    let mut expected = vec![old_kid.clone(), new_kid.clone()];
    expected.sort();
    assert_eq!(kids, expected);

    // Tokens signed before rotation stay valid until they expire.
    assert_eq!(s.introspect(&before).await["active"], true);
    // New tokens carry the new key and verify against the published set.
    let after = s.service_token().await.access_token();
    assert_eq!(header(&after)["kid"], new_kid.as_str());
    assert_eq!(s.introspect(&after).await["active"], true);
    let verifiers = cambio_jose::parse_jwks(jwks.text.as_bytes(), None).unwrap();
    let issuer = s.realm_url("demo");
    let validation = Validation {
        issuer: Some(&issuer),
        typ: TypRule::Exactly("at+jwt"),
        ..Validation::new(now())
    };
    for token in [&before, &after] {
        cambio_jose::verify(token, &verifiers, &validation).unwrap();
    }
    // The discovery document is unaffected; the master realm's key is not rotated.
    let master = s.get(&s.oidc("master", "certs"), None).await;
    assert_eq!(master.body["keys"].as_array().unwrap().len(), 1);
}
