//! DPoP (RFC 9449) in the SDK: with a key, every token request proves it, so the internal
//! tokens and every exchanged token are bound to it; the server's nonce is picked up when the
//! realm asks for one; `dpop_proof` lets the app present an exchanged token.

use cambio_client::{ExchangeRequest, SigningKey};
use cambio_jose::Algorithm;
use serde_json::json;

use crate::harness::TestServer;

#[tokio::test]
async fn a_dpop_key_binds_the_session_and_every_exchanged_token() {
    let server = TestServer::start().await;
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let thumbprint = key.public_jwk().thumbprint().unwrap();
    let client = server.sdk_app().dpop_key(key).build().await.unwrap();
    client.login_password("alice", "alice").await.unwrap();
    let token = client
        .exchange(ExchangeRequest::new("orders-api").scope("openid"))
        .await
        .unwrap();
    assert_eq!(token.token_type(), "DPoP");
    let introspected = server.introspect(token.token()).await;
    assert_eq!(
        introspected["cnf"],
        json!({"jkt": thumbprint}),
        "{introspected}"
    );

    // The app presents the exchanged token with a proof the SDK makes; without one it fails.
    let userinfo = format!("{}/protocol/openid-connect/userinfo", server.issuer());
    let proof = client
        .dpop_proof("GET", &userinfo, token.token())
        .unwrap()
        .unwrap();
    let with_proof = server
        .http
        .get(&userinfo)
        .header("authorization", format!("DPoP {}", token.token()))
        .header("dpop", proof)
        .send()
        .await
        .unwrap();
    assert_eq!(with_proof.status(), 200);
    let as_bearer = server
        .http
        .get(&userinfo)
        .bearer_auth(token.token())
        .send()
        .await
        .unwrap();
    assert_eq!(as_bearer.status(), 401);
}

#[tokio::test]
async fn the_servers_nonce_is_picked_up_and_used() {
    let server = TestServer::start().await;
    server
        .set_realm_attribute("cambio.dpopNonceRequired", "true")
        .await;
    let key = SigningKey::generate(Algorithm::EdDsa).unwrap();
    let client = server.sdk_app().dpop_key(key).build().await.unwrap();
    // The first request is answered `use_dpop_nonce`, the SDK sends it again with the nonce.
    client.login_password("alice", "alice").await.unwrap();
    let token = client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    assert_eq!(token.token_type(), "DPoP");
    assert_eq!(server.count_outcome("LOGIN", "use_dpop_nonce").await, 1);
}
