//! The server on PostgreSQL: the demo realm in a fresh database of the server named by
//! `CAMBIO_TEST_POSTGRES_URL` (skipped without it, except in CI where that fails).

use cambio_store::conformance::PgTestDatabase;

use crate::*;

#[tokio::test]
async fn demo_on_postgres_logs_in_exchanges_and_survives_a_restart() {
    let Some(db) = PgTestDatabase::create("server_demo").await else {
        return;
    };
    // The data key must survive the restart too: client secrets are sealed with it.
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut config = demo_config();
        config.database_url = db.url().to_owned();
        config.data_dir = Some(dir.path().to_owned());
        config
    };

    let s = TestServer::start_with(config()).await;
    let login = s.alice(None).await;
    let subject = login.access_token();
    let kid = header(&subject)["kid"].as_str().unwrap().to_owned();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    let exchanged = s.exchange(&subject, &[("audience", "orders-api")]).await;
    assert_eq!(exchanged.status, 200, "{}", exchanged.text);
    let exchanged = exchanged.access_token();
    let c = claims(&exchanged);
    assert_eq!(c["aud"], "orders-api");
    assert_eq!(c["azp"], "requester-client");
    assert_eq!(c["sub"], claims(&subject)["sub"]);
    let intro = s.introspect(&exchanged).await;
    assert_eq!(intro["active"], true, "{intro}");
    assert_eq!(intro["username"], "alice");
    // A revoked session, to check that revocations are stored too.
    let ended = s.alice(None).await;
    let ended_refresh = ended.body["refresh_token"].as_str().unwrap().to_owned();
    let r = s
        .post_form(
            &s.oidc("demo", "revoke"),
            &[("token", &ended_refresh)],
            Some(("subject-client", "subject-secret")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let address = s.base.trim_start_matches("http://").to_owned();
    s.stop().await;

    // The same port again, so that the issuer (and with it the tokens) stays valid; the realm,
    // keys, sessions and revocations come from the database.
    let listener = tokio::net::TcpListener::bind(&address).await.unwrap();
    let s = TestServer::start_on(config(), listener).await;
    let jwks = s.jwks().await;
    assert_eq!(jwks.body["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks.body["keys"][0]["kid"], kid.as_str());
    let intro = s.introspect(&exchanged).await;
    assert_eq!(intro["active"], true, "{intro}");
    assert_eq!(intro["aud"], "orders-api");
    let r = s.refresh(&refresh).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.introspect(&r.access_token()).await["active"], true);
    // Replaying the rotated-out token is detected in the database and ends the session.
    s.refresh(&refresh).await.assert_error(
        400,
        "invalid_grant",
        "Maximum allowed refresh token reuse exceeded",
    );
    s.refresh(&ended_refresh)
        .await
        .assert_error(400, "invalid_grant", "Session not active");
    let fresh = s.alice(None).await;
    assert_eq!(s.introspect(&fresh.access_token()).await["active"], true);
    s.stop().await;
}
