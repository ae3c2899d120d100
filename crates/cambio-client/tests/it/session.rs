//! The internal session: expiry and refresh, rotation, revocation, claims, logout.

use std::sync::Arc;
use std::time::Duration;

use cambio_client::{Error, ExchangeRequest, MemoryTokenStore, RenewalMargin, TokenStore};

use crate::harness::TestServer;

#[tokio::test]
async fn near_expiry_the_token_is_refreshed_and_exchanged_again() {
    let s = TestServer::start().await;
    // Five-second tokens; reused while more than one second remains.
    s.set_client_attribute("sdk-app", "access.token.lifespan", "5")
        .await;
    let client = s
        .sdk_app()
        .renewal_margin(RenewalMargin {
            minimum: Duration::from_secs(1),
            fraction: 0.1,
        })
        .build()
        .await
        .unwrap();
    client.login_password("alice", "alice").await.unwrap();
    let first = client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    assert_eq!(first.lifetime(), Duration::from_secs(5));
    let hit = client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    assert_eq!(hit.token(), first.token());
    assert_eq!(
        (
            s.count("REFRESH_TOKEN").await,
            s.count("TOKEN_EXCHANGE").await
        ),
        (0, 1)
    );

    tokio::time::sleep(Duration::from_millis(4300)).await;
    let renewed = client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    assert_ne!(renewed.token(), first.token());
    // The internal token was near expiry too: refreshed first, then exchanged.
    assert_eq!(
        (
            s.count("REFRESH_TOKEN").await,
            s.count("TOKEN_EXCHANGE").await
        ),
        (1, 2)
    );
}

#[tokio::test]
async fn the_default_margin_never_hands_out_a_token_with_less_than_30_seconds() {
    let s = TestServer::start().await;
    s.set_client_attribute("sdk-app", "access.token.lifespan", "20")
        .await;
    let client = s.alice().await;
    client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    // Twenty-second tokens are always below the 30 s floor: each call fetches anew.
    assert_eq!(s.count("TOKEN_EXCHANGE").await, 2);
}

#[tokio::test]
async fn rotated_refresh_tokens_are_followed_and_reuse_ends_the_session() {
    let s = TestServer::start().await;
    let store = Arc::new(MemoryTokenStore::new());
    let client = s
        .sdk_app()
        .token_store(store.clone())
        .build()
        .await
        .unwrap();
    client.login_password("alice", "alice").await.unwrap();
    let stored = |store: &MemoryTokenStore| {
        store
            .load()
            .unwrap()
            .unwrap()
            .expose_refresh_token()
            .to_owned()
    };
    let first = stored(&store);
    let claims = client.access_token_claims().await.unwrap();
    assert_eq!(claims["preferred_username"], "alice");
    let second = stored(&store);
    assert_ne!(first, second);
    client.access_token_claims().await.unwrap();
    let third = stored(&store);
    assert_ne!(second, third);
    assert_eq!(s.count("REFRESH_TOKEN").await, 2);

    // Someone replays a rotated token: the server ends the session...
    let replay = s.refresh(&first).await;
    assert_eq!(replay.status(), 400);
    // ...and the SDK learns it at its next refresh.
    let error = client.access_token_claims().await.unwrap_err();
    assert!(error.is_login_required(), "{error}");
    assert_eq!(error.oauth().unwrap().error, "invalid_grant");
    assert!(store.load().unwrap().is_none());
    assert!(!client.is_logged_in().await);
}

#[tokio::test]
async fn a_revoked_session_becomes_login_required() {
    let s = TestServer::start().await;
    let client = s.alice().await;
    client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    let claims = client.access_token_claims().await.unwrap();
    s.end_session(claims["sid"].as_str().unwrap()).await;

    // The cached token is still handed out (the cache does not ask the server)...
    client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    // ...but a new exchange fails: the subject token is refused, the refresh too.
    let error = client
        .exchange(ExchangeRequest::new("orders-api").force_update(true))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::LoginRequired(Some(e)) if e.error == "invalid_grant"),
        "{error:?}"
    );
    assert!(!client.is_logged_in().await);
    let again = client
        .exchange(ExchangeRequest::new("billing-api"))
        .await
        .unwrap_err();
    assert!(matches!(again, Error::LoginRequired(None)), "{again:?}");
}

#[tokio::test]
async fn without_login_everything_is_login_required() {
    let s = TestServer::start().await;
    let client = s.sdk_app().build().await.unwrap();
    assert!(
        client
            .exchange(ExchangeRequest::new("orders-api"))
            .await
            .unwrap_err()
            .is_login_required()
    );
    assert!(
        client
            .access_token_claims()
            .await
            .unwrap_err()
            .is_login_required()
    );
}

#[tokio::test]
async fn claims_are_fresh_and_verified_on_every_call() {
    let s = TestServer::start().await;
    let client = s.alice().await;
    let first = client.access_token_claims().await.unwrap();
    let second = client.access_token_claims().await.unwrap();
    assert_eq!(first["iss"], s.issuer());
    assert_eq!(first["azp"], "sdk-app");
    assert_ne!(first["jti"], second["jti"]);
    assert_eq!(s.count("REFRESH_TOKEN").await, 2);
}

#[tokio::test]
async fn logout_revokes_at_the_server_and_empties_the_cache() {
    let s = TestServer::start().await;
    let store = Arc::new(MemoryTokenStore::new());
    let client = s
        .sdk_app()
        .token_store(store.clone())
        .build()
        .await
        .unwrap();
    client.login_password("alice", "alice").await.unwrap();
    let token = client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    let refresh = store
        .load()
        .unwrap()
        .unwrap()
        .expose_refresh_token()
        .to_owned();
    assert_eq!(s.introspect(&refresh).await["active"], true);

    client.logout().await.unwrap();
    assert_eq!(s.introspect(&refresh).await["active"], false);
    assert_eq!(s.introspect(token.token()).await["active"], false);
    assert!(store.load().unwrap().is_none());
    assert!(
        client
            .exchange(ExchangeRequest::new("orders-api"))
            .await
            .unwrap_err()
            .is_login_required()
    );

    // A new login starts from an empty cache.
    client.login_password("alice", "alice").await.unwrap();
    let fresh = client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    assert_ne!(fresh.token(), token.token());
    assert_eq!(s.count("TOKEN_EXCHANGE").await, 2);
}

#[tokio::test]
async fn a_new_login_empties_the_cache() {
    let s = TestServer::start().await;
    let client = s.alice().await;
    let first = client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    client.login_password("alice", "alice").await.unwrap();
    let second = client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    assert_ne!(first.token(), second.token());
    assert_eq!(s.count("TOKEN_EXCHANGE").await, 2);
}
