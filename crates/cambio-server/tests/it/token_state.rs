//! Authority follows the current state (issue 11, rules 3, 4, 5 and 7), attacked over HTTP:
//! a token is good only while its user, its client, its session, its client's part of the
//! session and every token it came from are; a revocation holds for every descendant as long
//! as any could live, across restarts; revoking one client's refresh token ends only that
//! client's part of the session; a used client assertion stays used while it is acceptable.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::*;

const SUBJECT: (&str, &str) = ("subject-client", "subject-secret");
const REQUESTER: (&str, &str) = ("requester-client", "requester-secret");
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A demo server whose maintenance (purge of expired rows and revocations) runs every 100 ms,
/// so that anything kept too briefly is really forgotten while a test waits.
async fn start_purging(dir: Option<&std::path::Path>) -> TestServer {
    TestServer::start_with(purging_config(dir)).await
}

fn purging_config(dir: Option<&std::path::Path>) -> cambio_server::Config {
    let mut config = demo_config();
    config.maintenance_interval = Duration::from_millis(100);
    if let Some(dir) = dir {
        config.database_url = format!("sqlite://{}", dir.join("cambio.db").display());
        config.data_dir = Some(dir.to_owned());
    }
    config
}

/// Stops `server` and starts it again on the same address and data, so that its issuer (and
/// with it every token it issued) stays the same: a token refused after the restart is refused
/// for its state, not for a changed issuer.
async fn restart_in_place(server: TestServer, dir: &std::path::Path) -> TestServer {
    let address = server.base.trim_start_matches("http://").to_owned();
    server.stop().await;
    let listener = tokio::net::TcpListener::bind(&address).await.unwrap();
    TestServer::start_on(purging_config(Some(dir)), listener).await
}

/// Calls the demo realm's admin API as the master administrator.
async fn admin(server: &TestServer, method: Method, path: &str, body: Option<Value>) -> Reply {
    let token = server.admin_token().await;
    let mut request = server
        .http
        .request(method, format!("{}/admin/realms/demo{path}", server.base))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Reply {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// Changes a demo client through the admin API.
async fn update_client(server: &TestServer, client_id: &str, change: Value) {
    let list = admin(
        server,
        Method::GET,
        &format!("/clients?clientId={client_id}"),
        None,
    )
    .await;
    let uuid = list.body[0]["id"].as_str().unwrap().to_owned();
    let reply = admin(
        server,
        Method::PUT,
        &format!("/clients/{uuid}"),
        Some(change),
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
}

/// Enables or disables a demo user through the admin API.
async fn set_user_enabled(server: &TestServer, username: &str, enabled: bool) {
    let list = admin(
        server,
        Method::GET,
        &format!("/users?username={username}&exact=true"),
        None,
    )
    .await;
    let id = list.body[0]["id"].as_str().unwrap().to_owned();
    let reply = admin(
        server,
        Method::PUT,
        &format!("/users/{id}"),
        Some(json!({"enabled": enabled})),
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
}

fn inactive() -> Value {
    json!({"active": false})
}

/// The refresh token of a token response.
fn refresh_token(reply: &Reply) -> String {
    reply.body["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh_token: {}", reply.text))
        .to_owned()
}

/// A refresh token exchanged by requester-client from `subject`, in the subject's session.
async fn exchanged_refresh(server: &TestServer, subject: &str) -> Reply {
    let reply = server
        .exchange(
            subject,
            &[
                ("audience", "orders-api"),
                ("requested_token_type", REFRESH_TOKEN_TYPE),
            ],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply
}

/// A refresh grant by requester-client.
async fn refresh_as_requester(server: &TestServer, refresh: &str) -> Reply {
    server
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
            Some(REQUESTER),
        )
        .await
}

/// Revokes a token at the revocation endpoint as `client`; RFC 7009 answers 200.
async fn revoke(server: &TestServer, token: &str, client: (&str, &str)) {
    let reply = server
        .post_form(
            &server.oidc("demo", "revoke"),
            &[("token", token)],
            Some(client),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

async fn userinfo_status(server: &TestServer, token: &str) -> u16 {
    server
        .get(&server.oidc("demo", "userinfo"), Some(token))
        .await
        .status
        .as_u16()
}

// Rule 3: a token is good only while the client it was issued to is enabled.
#[tokio::test]
async fn a_disabled_clients_tokens_are_refused_everywhere() {
    let server = TestServer::start().await;
    let login = server.alice(Some("openid")).await;
    let subject = login.access_token();
    let refresh = refresh_token(&login);
    assert_eq!(server.exchange(&subject, &[]).await.status, 200);
    assert_eq!(userinfo_status(&server, &subject).await, 200);

    update_client(&server, "subject-client", json!({"enabled": false})).await;
    server
        .exchange(&subject, &[])
        .await
        .assert_error(400, "invalid_request", "Invalid token");
    assert_eq!(server.introspect(&subject).await, inactive());
    assert_eq!(server.introspect(&refresh).await, inactive());
    assert_eq!(userinfo_status(&server, &subject).await, 401);

    // The state is read now, not remembered: enabled again, the same token is good again.
    update_client(&server, "subject-client", json!({"enabled": true})).await;
    assert_eq!(server.exchange(&subject, &[]).await.status, 200);
    assert_eq!(server.introspect(&subject).await["active"], true);
    assert_eq!(server.introspect(&refresh).await["active"], true);
}

// Rule 3: a client-credentials token used as an actor token is good only while its user (the
// service account) is enabled.
#[tokio::test]
async fn an_actor_token_whose_user_is_disabled_is_refused() {
    let server = TestServer::start().await;
    let subject = server.alice(None).await.access_token();
    let actor = server.service_token().await.access_token();
    let with_actor = [
        ("actor_token", actor.as_str()),
        ("actor_token_type", ACCESS_TOKEN_TYPE),
    ];
    let reply = server.exchange(&subject, &with_actor).await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    set_user_enabled(&server, "service-account-requester-client", false).await;
    server.exchange(&subject, &with_actor).await.assert_error(
        400,
        "invalid_request",
        "Invalid actor token",
    );
    assert_eq!(server.introspect(&actor).await, inactive());
    assert_eq!(userinfo_status(&server, &actor).await, 401);
}

// Rule 3: a disabled user's tokens, refresh tokens included, are refused.
#[tokio::test]
async fn a_disabled_users_tokens_are_refused_everywhere() {
    let server = TestServer::start().await;
    let login = server.alice(None).await;
    let subject = login.access_token();
    let exchanged = exchanged_refresh(&server, &subject).await;

    set_user_enabled(&server, "alice", false).await;
    server
        .exchange(&subject, &[])
        .await
        .assert_error(400, "invalid_request", "Invalid token");
    assert_eq!(server.introspect(&subject).await, inactive());
    assert_eq!(
        server.introspect(&exchanged.access_token()).await,
        inactive()
    );
    assert_eq!(server.introspect(&refresh_token(&login)).await, inactive());
    assert_eq!(userinfo_status(&server, &subject).await, 401);
    // Disabling a user also ends its sessions, so refreshing fails on the session first.
    server.refresh(&refresh_token(&login)).await.assert_error(
        400,
        "invalid_grant",
        "Session not active",
    );
    refresh_as_requester(&server, &refresh_token(&exchanged))
        .await
        .assert_error(400, "invalid_grant", "Session not active");
}

// Rule 4: revoking a subject token stops the refresh tokens exchanged from it, and the tokens
// those refreshes issued.
#[tokio::test]
async fn revoking_a_subject_stops_refreshes_of_exchanged_refresh_tokens() {
    let server = TestServer::start().await;
    let subject = server.alice(None).await.access_token();
    let exchanged = exchanged_refresh(&server, &subject).await;
    let refreshed = refresh_as_requester(&server, &refresh_token(&exchanged)).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(
        claims(&refreshed.access_token())["exchanged_from"],
        json!([claims(&subject)["jti"]])
    );

    revoke(&server, &subject, SUBJECT).await;
    refresh_as_requester(&server, &refresh_token(&refreshed))
        .await
        .assert_error(400, "invalid_grant", "Token is not active");
    assert_eq!(
        server.introspect(&refreshed.access_token()).await,
        inactive()
    );
    assert_eq!(
        server.introspect(&refresh_token(&refreshed)).await,
        inactive()
    );
    // The refused refresh token was not used up: presenting it again is refused the same way,
    // not taken for a replay that would end the user's session.
    refresh_as_requester(&server, &refresh_token(&refreshed))
        .await
        .assert_error(400, "invalid_grant", "Token is not active");
}

// Rule 4: the revocation outlives the revoked token's own expiry (and the purge that follows
// it), and a restart on the same database.
#[tokio::test]
async fn a_revocation_outlives_the_revoked_token_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_purging(Some(dir.path())).await;
    // Subject tokens live 2 s; what the requester refreshes lives the realm's 5 minutes.
    update_client(
        &server,
        "subject-client",
        json!({"attributes": {"access.token.lifespan": "2"}}),
    )
    .await;
    let subject = server.alice(None).await.access_token();
    let subject_exp = claims(&subject)["exp"].as_u64().unwrap();
    let exchanged = exchanged_refresh(&server, &subject).await;
    let refreshed = refresh_as_requester(&server, &refresh_token(&exchanged)).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let descendant = refreshed.access_token();
    assert!(claims(&descendant)["exp"].as_u64().unwrap() > subject_exp + 60);
    revoke(&server, &subject, SUBJECT).await;
    assert_eq!(server.introspect(&descendant).await, inactive());

    // Past the subject's expiry (and its leeway), with purges running meanwhile.
    while now() <= subject_exp + 6 {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(server.introspect(&descendant).await, inactive());
    refresh_as_requester(&server, &refresh_token(&refreshed))
        .await
        .assert_error(400, "invalid_grant", "Token is not active");

    let server = restart_in_place(server, dir.path()).await;
    // The same issuer after the restart: alice's fresh token is good, the descendant is not.
    let fresh = server.alice(None).await.access_token();
    assert_eq!(server.introspect(&fresh).await["active"], true);
    assert_eq!(server.introspect(&descendant).await, inactive());
    assert_eq!(userinfo_status(&server, &descendant).await, 401);
    refresh_as_requester(&server, &refresh_token(&refreshed))
        .await
        .assert_error(400, "invalid_grant", "Token is not active");
}

// Rule 5: a requester that revokes its exchanged refresh token ends its own part of the user
// session only; the client that logged the user in keeps its tokens.
#[tokio::test]
async fn revoking_an_exchanged_refresh_token_ends_only_the_requesters_part() {
    let server = TestServer::start().await;
    let login = server.alice(Some("openid")).await;
    let subject = login.access_token();
    let exchanged = exchanged_refresh(&server, &subject).await;

    revoke(&server, &refresh_token(&exchanged), REQUESTER).await;
    let ended = "Session doesn't have required client";
    refresh_as_requester(&server, &refresh_token(&exchanged))
        .await
        .assert_error(400, "invalid_grant", ended);
    assert_eq!(
        server.introspect(&exchanged.access_token()).await,
        inactive()
    );
    // Presented again, the ended token is still just refused (no replay detection that
    // would end the whole session).
    refresh_as_requester(&server, &refresh_token(&exchanged))
        .await
        .assert_error(400, "invalid_grant", ended);

    // The login client's part is untouched.
    assert_eq!(server.introspect(&subject).await["active"], true);
    let refreshed = server.refresh(&refresh_token(&login)).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(
        server.introspect(&refreshed.access_token()).await["active"],
        true
    );
    assert_eq!(userinfo_status(&server, &subject).await, 200);

    // The requester may join again later, with new tokens only (a token issued in the second
    // of the end counts as issued before it).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = exchanged_refresh(&server, &refreshed.access_token()).await;
    assert_eq!(
        server.introspect(&again.access_token()).await["active"],
        true
    );
    assert_eq!(
        server.introspect(&exchanged.access_token()).await,
        inactive()
    );
    let renewed = refresh_as_requester(&server, &refresh_token(&again)).await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);
}

// Rule 5: the user session ends when its last client leaves, not before.
#[tokio::test]
async fn the_user_session_ends_with_its_last_client() {
    let server = TestServer::start().await;
    let login = server.alice(None).await;
    let exchanged = exchanged_refresh(&server, &login.access_token()).await;
    let user = claims(&login.access_token())["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let sessions_path = format!("/users/{user}/sessions");
    let sessions = || admin(&server, Method::GET, &sessions_path, None);

    // The login client leaves first: the requester still holds its part.
    revoke(&server, &refresh_token(&login), SUBJECT).await;
    assert_eq!(server.introspect(&login.access_token()).await, inactive());
    assert_eq!(
        server.introspect(&exchanged.access_token()).await["active"],
        true
    );
    let listed = sessions().await;
    assert_eq!(
        listed.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.text
    );
    let renewed = refresh_as_requester(&server, &refresh_token(&exchanged)).await;
    assert_eq!(renewed.status, 200, "{}", renewed.text);

    // The last client leaves: the session is over.
    revoke(&server, &refresh_token(&renewed), REQUESTER).await;
    assert_eq!(sessions().await.body, json!([]));
    assert_eq!(server.introspect(&renewed.access_token()).await, inactive());
}

// Rule 5, as Keycloak does: logout (with a refresh token of any client of the session) ends
// the whole user session.
#[tokio::test]
async fn logout_by_a_client_of_the_session_ends_the_user_session() {
    let server = TestServer::start().await;
    let login = server.alice(None).await;
    let exchanged = exchanged_refresh(&server, &login.access_token()).await;
    let reply = server
        .post_form(
            &server.oidc("demo", "logout"),
            &[("refresh_token", &refresh_token(&exchanged))],
            Some(REQUESTER),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(server.introspect(&login.access_token()).await, inactive());
    server.refresh(&refresh_token(&login)).await.assert_error(
        400,
        "invalid_grant",
        "Session not active",
    );
}

// Rule 7: a client assertion's jti stays used for as long as the assertion is accepted, the
// clock-skew leeway after its exp included, even with purges running.
#[tokio::test]
async fn a_used_assertion_stays_used_through_the_leeway() {
    let server = start_purging(None).await;
    let key = cambio_jose::SigningKey::generate(cambio_jose::Algorithm::Es256).unwrap();
    let jwks = serde_json::to_string(&cambio_jose::JwkSet {
        keys: vec![key.public_jwk()],
    })
    .unwrap();
    let created = admin(
        &server,
        Method::POST,
        "/clients",
        Some(json!({
            "clientId": "jwt-client",
            "clientAuthenticatorType": "client-jwt",
            "serviceAccountsEnabled": true,
            "standardFlowEnabled": false,
            "attributes": {"jwks.string": jwks},
        })),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let issued_at = now();
    let assertion = key
        .sign(
            "JWT",
            &json!({
                "iss": "jwt-client",
                "sub": "jwt-client",
                "aud": server.oidc("demo", "token"),
                "jti": "short-lived",
                "iat": issued_at,
                "exp": issued_at + 1,
            }),
        )
        .unwrap();
    let present = || async {
        server
            .token(
                &[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", ASSERTION_TYPE),
                    ("client_assertion", &assertion),
                ],
                None,
            )
            .await
    };
    let first = present().await;
    assert_eq!(first.status, 200, "{}", first.text);
    // Past exp, well inside the 10 s leeway, after several purges.
    while now() <= issued_at + 3 {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    present()
        .await
        .assert_error(401, "invalid_client", "Token reuse detected");
}

// Revoking a token that has already expired still reaches what was exchanged from it, which
// can outlive it when the realm does not cap exchanged lifetimes by the subject's.
#[tokio::test]
async fn revoking_an_expired_subject_still_reaches_its_descendants() {
    let server = TestServer::start().await;
    let realm = admin(
        &server,
        Method::PUT,
        "",
        Some(json!({"exchangeLifetimeCappedBySubject": false})),
    )
    .await;
    assert_eq!(realm.status, 204, "{}", realm.text);
    update_client(
        &server,
        "subject-client",
        json!({"attributes": {"access.token.lifespan": "1"}}),
    )
    .await;
    let subject = server.alice(None).await.access_token();
    let subject_exp = claims(&subject)["exp"].as_u64().unwrap();
    let exchanged = server.exchange(&subject, &[]).await.access_token();
    assert!(claims(&exchanged)["exp"].as_u64().unwrap() > subject_exp + 60);
    // Past the subject's expiry and the verifier's leeway.
    while now() <= subject_exp + 6 {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(server.introspect(&subject).await, inactive());
    assert_eq!(server.introspect(&exchanged).await["active"], true);
    revoke(&server, &subject, SUBJECT).await;
    assert_eq!(server.introspect(&exchanged).await, inactive());
}

// A logout's revocation outlives the session's own end for as long as tokens exchanged in it
// can live (realms that do not cap them by the subject), across a restart on the same issuer,
// with the session row itself purged meanwhile.
#[tokio::test]
async fn a_logout_outlives_its_session_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_purging(Some(dir.path())).await;
    let realm = admin(
        &server,
        Method::PUT,
        "",
        Some(json!({"exchangeLifetimeCappedBySubject": false, "ssoSessionMaxLifespan": 3})),
    )
    .await;
    assert_eq!(realm.status, 204, "{}", realm.text);
    let login = server.alice(None).await;
    let exchanged = server
        .exchange(&login.access_token(), &[])
        .await
        .access_token();
    let session_end = now() + 3;
    assert!(claims(&exchanged)["exp"].as_u64().unwrap() > session_end + 60);
    let reply = server
        .post_form(
            &server.oidc("demo", "logout"),
            &[("refresh_token", &refresh_token(&login))],
            Some(SUBJECT),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(server.introspect(&exchanged).await, inactive());
    // Past the session's end (its row purged), then restarted on the same address.
    while now() <= session_end + 2 {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let server = restart_in_place(server, dir.path()).await;
    let fresh = server
        .exchange(&server.alice(None).await.access_token(), &[])
        .await;
    assert_eq!(
        server.introspect(&fresh.access_token()).await["active"],
        true
    );
    assert_eq!(server.introspect(&exchanged).await, inactive());
}
