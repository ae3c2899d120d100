//! Token exchange (RFC 8693) against the demo realm, with Keycloak's standard (V2) semantics.

use serde_json::json;

use crate::*;

#[tokio::test]
async fn exchange_narrows_to_the_requested_audience() {
    let server = TestServer::start().await;
    let subject = server.alice(None).await.access_token();
    let subject_claims = claims(&subject);
    let reply = server
        .exchange(&subject, &[("audience", "orders-api")])
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.headers["cache-control"], "no-store");
    assert_eq!(reply.body["issued_token_type"], ACCESS_TOKEN_TYPE);
    assert_eq!(reply.body["token_type"], "Bearer");
    assert!(reply.body.get("refresh_token").is_none(), "{}", reply.text);
    let token = reply.access_token();
    assert_eq!(header(&token)["typ"], "at+jwt");
    let c = claims(&token);
    assert_eq!(c["aud"], "orders-api");
    assert_eq!(c["azp"], "requester-client");
    assert_eq!(c["client_id"], "requester-client");
    assert_eq!(c["sub"], subject_claims["sub"]);
    assert_eq!(c["sid"], subject_claims["sid"]);
    assert_eq!(
        c["resource_access"],
        json!({"orders-api": {"roles": ["view-orders"]}})
    );
    assert_eq!(c["scope"], "email profile");
    assert_eq!(c["exchanged_from"], json!([subject_claims["jti"]]));
    assert!(c["exp"].as_u64().unwrap() <= subject_claims["exp"].as_u64().unwrap());
    let expires_in = reply.body["expires_in"].as_u64().unwrap();
    assert!((1..=300).contains(&expires_in), "{expires_in}");
    // orders-api sees an active token meant for it.
    let intro = server.introspect(&token).await;
    assert_eq!(intro["active"], true);
    assert_eq!(intro["aud"], "orders-api");
    assert_eq!(intro["username"], "alice");
}

#[tokio::test]
async fn exchange_without_audience_and_with_several() {
    let server = TestServer::start().await;
    let subject = server.alice(None).await.access_token();
    let all = server.exchange(&subject, &[]).await;
    assert_eq!(all.status, 200, "{}", all.text);
    let c = claims(&all.access_token());
    assert_eq!(strings(&c["aud"]), ["billing-api", "orders-api"]);
    let both = server
        .exchange(
            &subject,
            &[("audience", "billing-api"), ("audience", "orders-api")],
        )
        .await;
    let c = claims(&both.access_token());
    assert_eq!(strings(&c["aud"]), ["billing-api", "orders-api"]);
    assert_eq!(
        c["resource_access"],
        json!({"billing-api": {"roles": ["view-invoices"]}, "orders-api": {"roles": ["view-orders"]}})
    );
}

#[tokio::test]
async fn audience_errors() {
    let server = TestServer::start().await;
    let subject = server.alice(None).await.access_token();
    server
        .exchange(&subject, &[("audience", "no-such-client")])
        .await
        .assert_error(400, "invalid_client", "Audience not found");
    // alice holds no role of subject-client: nothing to give it.
    server
        .exchange(&subject, &[("audience", "subject-client")])
        .await
        .assert_error(
            400,
            "invalid_request",
            "Requested audience not available: subject-client",
        );
    // One bad audience among good ones fails the whole request.
    server
        .exchange(
            &subject,
            &[("audience", "orders-api"), ("audience", "subject-client")],
        )
        .await
        .assert_error(
            400,
            "invalid_request",
            "Requested audience not available: subject-client",
        );
}

#[tokio::test]
async fn requester_must_be_allowed_to_exchange() {
    let server = TestServer::start().await;
    let subject = server.alice(None).await.access_token();
    // subject-client is confidential but has no standard token exchange.
    let reply = server
        .token(
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &subject),
                ("audience", "orders-api"),
            ],
            Some(("subject-client", "subject-secret")),
        )
        .await;
    reply.assert_error(
        400,
        "invalid_request",
        "Standard token exchange is not enabled for the requested client",
    );
    // A public client (admin-cli in master) may never exchange.
    let admin = server.admin_token().await;
    let reply = server
        .post_form(
            &server.oidc("master", "token"),
            &[
                ("grant_type", EXCHANGE),
                ("client_id", "admin-cli"),
                ("subject_token", &admin),
            ],
            None,
        )
        .await;
    reply.assert_error(
        400,
        "invalid_client",
        "Public client is not allowed to exchange token",
    );
    // Wrong requester secret.
    let reply = server
        .token(
            &[("grant_type", EXCHANGE), ("subject_token", &subject)],
            Some(("requester-client", "nope")),
        )
        .await;
    assert_eq!(
        (reply.status.as_u16(), reply.error()),
        (401, "invalid_client")
    );
    assert!(reply.headers.contains_key("www-authenticate"));
}

#[tokio::test]
async fn missing_or_bad_subject_tokens_never_fall_through() {
    let server = TestServer::start().await;
    let requester = Some(("requester-client", "requester-secret"));
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            vec![],
            "Parameter 'subject_token' required for standard token exchange",
        ),
        (
            vec![("subject_token", String::new())],
            "Parameter 'subject_token' required for standard token exchange",
        ),
        (
            vec![("subject_token", "x".repeat(5 * 1024))],
            "Invalid token",
        ),
        (
            vec![("subject_token", "x".repeat(50 * 1024))],
            "Invalid token",
        ),
        (vec![("subject_token", "a.b.c".into())], "Invalid token"),
    ];
    for (extra, description) in cases {
        let mut form: Vec<(&str, &str)> =
            vec![("grant_type", EXCHANGE), ("audience", "orders-api")];
        form.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
        server
            .token(&form, requester)
            .await
            .assert_error(400, "invalid_request", description);
    }
}

#[tokio::test]
async fn subject_token_checks() {
    let server = TestServer::start().await;
    let subject = server.alice(None).await.access_token();
    // A flipped signature character.
    let mut tampered = subject.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    server
        .exchange(&tampered, &[])
        .await
        .assert_error(400, "invalid_request", "Invalid token");
    // A token of another realm.
    let admin = server.admin_token().await;
    server
        .exchange(&admin, &[])
        .await
        .assert_error(400, "invalid_request", "Invalid token");
    // Only access tokens are taken as subjects.
    for kind in [
        REFRESH_TOKEN_TYPE,
        ID_TOKEN_TYPE,
        "urn:ietf:params:oauth:token-type:jwt",
        "urn:x",
    ] {
        server
            .exchange(&subject, &[("subject_token_type", kind)])
            .await
            .assert_error(
                400,
                "invalid_request",
                "Parameter 'subject_token' supports access tokens only",
            );
    }
    // An explicit access-token type is fine; a missing one too (python-keycloak omits it).
    let reply = server
        .exchange(&subject, &[("subject_token_type", ACCESS_TOKEN_TYPE)])
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    // An ID token is not an access token, even with the access-token type.
    let id_token = server.alice(Some("openid")).await.body["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    server
        .exchange(&id_token, &[])
        .await
        .assert_error(400, "invalid_request", "Invalid token");
    // Repeated parameters are refused, as is a `resource` no client stands for.
    server
        .exchange(&subject, &[("subject_token", &subject)])
        .await
        .assert_error(
            400,
            "invalid_request",
            "Parameter 'subject_token' is repeated",
        );
    let reply = server
        .exchange(&subject, &[("resource", "https://orders.example")])
        .await;
    assert_eq!(
        (reply.status.as_u16(), reply.error()),
        (400, "invalid_target")
    );
}

#[tokio::test]
async fn requested_token_types() {
    let server = TestServer::start().await;
    let subject = server.alice(None).await.access_token();
    // A refresh token, in the subject's session, narrowed to the audience on every refresh.
    let reply = server
        .exchange(
            &subject,
            &[
                ("audience", "orders-api"),
                ("requested_token_type", REFRESH_TOKEN_TYPE),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["issued_token_type"], REFRESH_TOKEN_TYPE);
    let refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    assert!(reply.body["refresh_expires_in"].as_u64().unwrap() > 0);
    assert_eq!(
        claims(&reply.access_token())["sid"],
        claims(&subject)["sid"]
    );
    let refreshed = server
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            Some(("requester-client", "requester-secret")),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let c = claims(&refreshed.access_token());
    assert_eq!(c["aud"], "orders-api");
    assert_eq!(
        c["resource_access"],
        json!({"orders-api": {"roles": ["view-orders"]}})
    );
    assert_eq!(c["exchanged_from"], json!([claims(&subject)["jti"]]));

    // An ID token comes back in access_token with token_type N_A.
    let reply = server
        .exchange(&subject, &[("requested_token_type", ID_TOKEN_TYPE)])
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["token_type"], "N_A");
    assert_eq!(reply.body["issued_token_type"], ID_TOKEN_TYPE);
    assert!(reply.body.get("id_token").is_none() && reply.body.get("refresh_token").is_none());
    let id = claims(&reply.access_token());
    assert_eq!(
        (id["typ"].as_str(), id["aud"].as_str()),
        (Some("ID"), Some("requester-client"))
    );
    assert_eq!(header(&reply.access_token())["typ"], "JWT");

    server
        .exchange(
            &subject,
            &[(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:saml2",
            )],
        )
        .await
        .assert_error(400, "invalid_request", "requested_token_type unsupported");
}

#[tokio::test]
async fn refresh_tokens_need_an_online_session() {
    let server = TestServer::start().await;
    let no_session =
        "Refresh token not valid as requested_token_type because creating a new session is needed";
    // Offline subject.
    let offline = server.alice(Some("offline_access")).await.access_token();
    server
        .exchange(&offline, &[("requested_token_type", REFRESH_TOKEN_TYPE)])
        .await
        .assert_error(400, "invalid_request", no_session);
    // Client credentials subject: no session at all. requester-client exchanges its own token.
    let own = server
        .token(
            &[("grant_type", "client_credentials")],
            Some(("requester-client", "requester-secret")),
        )
        .await
        .access_token();
    server
        .exchange(&own, &[("requested_token_type", REFRESH_TOKEN_TYPE)])
        .await
        .assert_error(400, "invalid_request", no_session);
    // Its own token as an access token is fine ("exchanging a token issued to itself").
    let reply = server.exchange(&own, &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test]
async fn scope_never_widens() {
    let server = TestServer::start().await;
    let subject = server.alice(None).await.access_token();
    // phone is an optional scope of the requester, but the subject token lacks it.
    server
        .exchange(&subject, &[("scope", "phone")])
        .await
        .assert_error(400, "invalid_scope", "Invalid scopes: phone");
    server
        .exchange(&subject, &[("scope", "unknown-scope")])
        .await
        .assert_error(400, "invalid_scope", "Invalid scopes: unknown-scope");
    // A scope the subject has narrows; openid adds an ID token.
    let reply = server
        .exchange(&subject, &[("scope", "openid email")])
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["scope"], "openid email profile");
    assert!(reply.body["id_token"].is_string());
    // A subject with fewer scopes limits the defaults.
    let email_only = server.alice(Some("email")).await.access_token();
    assert_eq!(claims(&email_only)["scope"], "email profile");
}

#[tokio::test]
async fn revoking_the_subject_revokes_what_was_exchanged() {
    let server = TestServer::start().await;
    let subject = server.alice(None).await.access_token();
    let exchanged = server
        .exchange(&subject, &[("audience", "orders-api")])
        .await
        .access_token();
    // A second hop: the requester exchanges its own exchanged token.
    let second = server
        .exchange(&exchanged, &[("audience", "orders-api")])
        .await;
    assert_eq!(second.status, 200, "{}", second.text);
    let second = second.access_token();
    assert_eq!(
        claims(&second)["exchanged_from"].as_array().unwrap().len(),
        2
    );
    assert_eq!(server.introspect(&second).await["active"], true);

    revoke_as_subject_client(&server, &subject).await;
    assert_eq!(server.introspect(&subject).await, json!({"active": false}));
    assert_eq!(
        server.introspect(&exchanged).await,
        json!({"active": false})
    );
    assert_eq!(server.introspect(&second).await, json!({"active": false}));
    let userinfo = server
        .get(&server.oidc("demo", "userinfo"), Some(&exchanged))
        .await;
    assert_eq!(userinfo.status, 401);
    server
        .exchange(&subject, &[])
        .await
        .assert_error(400, "invalid_request", "Invalid token");
}

#[tokio::test]
async fn logout_ends_exchanged_tokens_and_refresh_tokens() {
    let server = TestServer::start().await;
    let login = server.alice(None).await;
    let subject = login.access_token();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    let reply = server
        .exchange(
            &subject,
            &[
                ("audience", "orders-api"),
                ("requested_token_type", REFRESH_TOKEN_TYPE),
            ],
        )
        .await;
    let exchanged = reply.access_token();
    let exchanged_refresh = reply.body["refresh_token"].as_str().unwrap().to_owned();
    let logout = server
        .post_form(
            &server.oidc("demo", "logout"),
            &[("refresh_token", &refresh)],
            Some(("subject-client", "subject-secret")),
        )
        .await;
    assert_eq!(logout.status, 204, "{}", logout.text);
    assert_eq!(
        server.introspect(&exchanged).await,
        json!({"active": false})
    );
    server
        .token(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &exchanged_refresh),
            ],
            Some(("requester-client", "requester-secret")),
        )
        .await
        .assert_error(400, "invalid_grant", "Session not active");
}

#[tokio::test]
async fn delegation_with_an_actor_token() {
    let server = TestServer::start().await;
    let subject = server.alice(None).await.access_token();
    let actor = server
        .token(
            &[("grant_type", "client_credentials")],
            Some(("requester-client", "requester-secret")),
        )
        .await
        .access_token();
    let reply = server
        .exchange(
            &subject,
            &[
                ("audience", "orders-api"),
                ("actor_token", &actor),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let act = &claims(&reply.access_token())["act"];
    assert_eq!(act["sub"], claims(&actor)["sub"]);
    assert_eq!(act["client_id"], "requester-client");
    assert!(act.get("exp").is_none() && act.get("aud").is_none());
    // The delegation marker survives a further exchange, nested under a new actor.
    let again = server
        .exchange(
            &reply.access_token(),
            &[
                ("actor_token", &actor),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
            ],
        )
        .await;
    let act = &claims(&again.access_token())["act"];
    assert_eq!(act["act"]["client_id"], "requester-client");

    // An actor token issued to another client is refused.
    server
        .exchange(
            &subject,
            &[
                ("actor_token", &subject),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
            ],
        )
        .await
        .assert_error(
            400,
            "invalid_request",
            "actor_token was not issued to the requesting client",
        );
    server
        .exchange(&subject, &[("actor_token", &actor)])
        .await
        .assert_error(
            400,
            "invalid_request",
            "Parameter 'actor_token_type' required",
        );
    server
        .exchange(
            &subject,
            &[
                ("actor_token", "junk"),
                ("actor_token_type", ACCESS_TOKEN_TYPE),
            ],
        )
        .await
        .assert_error(400, "invalid_request", "Invalid actor token");
}

#[tokio::test]
async fn exchange_under_the_auth_prefix() {
    let server = TestServer::start().await;
    let subject = server.alice(None).await.access_token();
    let url = format!(
        "{}/auth/realms/demo/protocol/openid-connect/token",
        server.base
    );
    let reply = server
        .post_form(
            &url,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &subject),
                ("audience", "billing-api"),
            ],
            Some(("requester-client", "requester-secret")),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(claims(&reply.access_token())["aud"], "billing-api");
}

#[tokio::test]
async fn exchanges_and_refusals_are_audited() {
    let server = TestServer::start().await;
    let subject = server.alice(None).await.access_token();
    let user = claims(&subject)["sub"].as_str().unwrap().to_owned();
    assert_eq!(
        server
            .exchange(&subject, &[("audience", "orders-api")])
            .await
            .status,
        200
    );
    assert_eq!(
        server
            .exchange(&subject, &[("audience", "nope")])
            .await
            .status,
        400
    );
    let admin = server.admin_token().await;
    let url = format!(
        "{}/admin/realms/demo/events?type=TOKEN_EXCHANGE,TOKEN_EXCHANGE_ERROR",
        server.base
    );
    let mut events = serde_json::Value::Null;
    for _ in 0..40 {
        events = server.get(&url, Some(&admin)).await.body;
        if events.as_array().is_some_and(|e| e.len() >= 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let events = events.as_array().expect("a list of events");
    assert_eq!(events.len(), 2, "{events:?}");
    // Newest first.
    assert_eq!(events[0]["type"], "TOKEN_EXCHANGE_ERROR");
    assert_eq!(events[0]["error"], "invalid_client");
    assert_eq!(events[0]["details"]["reason"], "Audience not found");
    assert_eq!(events[1]["type"], "TOKEN_EXCHANGE");
    assert_eq!(events[1]["clientId"], "requester-client");
    assert_eq!(events[1]["userId"], user.as_str());
    assert_eq!(events[1]["details"]["audience"], "orders-api");
    assert_eq!(events[1]["details"]["subject_client"], "subject-client");
}

#[tokio::test]
async fn requester_lifetime_overrides_apply() {
    let server = TestServer::start().await;
    set_client_attributes(
        &server,
        "requester-client",
        json!({"access.token.lifespan": "60", "client.session.idle.timeout": "600"}),
    )
    .await;
    let subject = server.alice(None).await.access_token();
    let reply = server
        .exchange(
            &subject,
            &[
                ("audience", "orders-api"),
                ("requested_token_type", REFRESH_TOKEN_TYPE),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["expires_in"], 60);
    let c = claims(&reply.access_token());
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 60);
    let refresh_expires_in = reply.body["refresh_expires_in"].as_u64().unwrap();
    assert!(
        (595..=600).contains(&refresh_expires_in),
        "{refresh_expires_in}"
    );
}

#[tokio::test]
async fn exchanges_are_counted_and_carry_the_callers_trace() {
    let server = TestServer::start().await;
    let subject = server.alice(None).await.access_token();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let reply = server
        .http
        .post(server.oidc("demo", "token"))
        .header(
            "authorization",
            basic_header("requester-client", "requester-secret"),
        )
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .form(&[
            ("grant_type", EXCHANGE),
            ("subject_token", &subject),
            ("audience", "orders-api"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    // A malformed traceparent is ignored, not an error.
    let reply = server
        .http
        .post(server.oidc("demo", "token"))
        .header(
            "authorization",
            basic_header("requester-client", "requester-secret"),
        )
        .header("traceparent", "00-zz-00f067aa0ba902b7-01")
        .form(&[
            ("grant_type", EXCHANGE),
            ("subject_token", &subject),
            ("audience", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400);
    let metrics = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cambio_token_requests_total{realm=\"demo\",grant=\"TOKEN_EXCHANGE\",outcome=\"success\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("cambio_token_requests_total{realm=\"demo\",grant=\"TOKEN_EXCHANGE\",outcome=\"invalid_client\"} 1\n"));
    assert!(metrics.contains(
        "cambio_token_requests_total{realm=\"demo\",grant=\"LOGIN\",outcome=\"success\"} 1\n"
    ));
    let admin = server.admin_token().await;
    let url = format!(
        "{}/admin/realms/demo/events?type=TOKEN_EXCHANGE,TOKEN_EXCHANGE_ERROR",
        server.base
    );
    let mut events = serde_json::Value::Null;
    for _ in 0..40 {
        events = server.get(&url, Some(&admin)).await.body;
        if events.as_array().is_some_and(|e| e.len() >= 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(events[1]["details"]["trace_id"], trace);
    assert!(events[0]["details"].get("trace_id").is_none());
}

/// Replaces attributes of a demo realm client through the admin API.
async fn set_client_attributes(
    server: &TestServer,
    client_id: &str,
    attributes: serde_json::Value,
) {
    let admin = server.admin_token().await;
    let clients = server
        .http
        .get(format!(
            "{}/admin/realms/demo/clients?clientId={client_id}",
            server.base
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let id = clients[0]["id"].as_str().unwrap().to_owned();
    let status = server
        .http
        .put(format!("{}/admin/realms/demo/clients/{id}", server.base))
        .bearer_auth(&admin)
        .json(&json!({ "attributes": attributes }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);
}

/// A subject token verified once is remembered, so presenting it again skips the signature
/// check; its expiry and revocation are still checked on every use. The answers are the same
/// with the cache turned off.
#[tokio::test]
async fn remembered_subject_tokens_still_expire_and_are_revoked() {
    for cache in [cambio_server::DEFAULT_VERIFIED_TOKEN_CACHE, 0] {
        let server = TestServer::start_with(cambio_server::Config {
            verified_token_cache: cache,
            ..demo_config()
        })
        .await;
        // Revocation: the subject token is verified (and remembered), then revoked.
        let subject = server.alice(None).await.access_token();
        for _ in 0..3 {
            let reply = server
                .exchange(&subject, &[("audience", "orders-api")])
                .await;
            assert_eq!(reply.status, 200, "cache {cache}: {}", reply.text);
        }
        revoke_as_subject_client(&server, &subject).await;
        server
            .exchange(&subject, &[("audience", "orders-api")])
            .await
            .assert_error(400, "invalid_request", "Invalid token");

        // Expiry: a token that lives 3 seconds stops being accepted after them, although it
        // was verified (and remembered) while it lived.
        set_client_attributes(
            &server,
            "subject-client",
            json!({"access.token.lifespan": "3"}),
        )
        .await;
        let short = server.alice(None).await.access_token();
        let c = claims(&short);
        assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 3);
        for _ in 0..2 {
            let reply = server.exchange(&short, &[("audience", "orders-api")]).await;
            assert_eq!(reply.status, 200, "cache {cache}: {}", reply.text);
        }
        assert_eq!(server.introspect(&short).await["active"], true);
        tokio::time::sleep(std::time::Duration::from_millis(4200)).await;
        server
            .exchange(&short, &[("audience", "orders-api")])
            .await
            .assert_error(400, "invalid_request", "Invalid token");
        assert_eq!(server.introspect(&short).await, json!({"active": false}));
    }
}

/// Revokes a token of subject-client at the revocation endpoint.
async fn revoke_as_subject_client(server: &TestServer, token: &str) {
    let revoke = server
        .post_form(
            &server.oidc("demo", "revoke"),
            &[("token", token)],
            Some(("subject-client", "subject-secret")),
        )
        .await;
    assert_eq!(revoke.status, 200, "{}", revoke.text);
}
