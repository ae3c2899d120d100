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

#[tokio::test]
async fn a_restored_public_session_proves_the_key_its_refresh_token_is_bound_to() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let created = server
        .http
        .post(format!("{}/admin/realms/demo/clients", server.base))
        .bearer_auth(&admin)
        .json(&json!({"clientId": "dpop-public", "publicClient": true,
                      "directAccessGrantsEnabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let dir = tempfile::tempdir().unwrap();
    let store = || {
        std::sync::Arc::new(cambio_client::FileTokenStore::new(
            dir.path().join("session.json"),
        ))
    };
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let thumbprint = key.public_jwk().thumbprint().unwrap();
    let first = cambio_client::Client::builder(server.issuer(), "dpop-public")
        .dpop_key(key)
        .token_store(store())
        .build()
        .await
        .unwrap();
    first.login_password("alice", "alice").await.unwrap();
    drop(first);
    // The next run makes a new key; the restored session brings back the one it is bound to.
    let second = cambio_client::Client::builder(server.issuer(), "dpop-public")
        .dpop_key(SigningKey::generate(Algorithm::Es256).unwrap())
        .token_store(store())
        .build()
        .await
        .unwrap();
    second.restore().await.unwrap();
    let claims = second.access_token_claims().await.unwrap();
    assert_eq!(claims["cnf"]["jkt"], json!(thumbprint));
    // The file keeps the key for the owner only, as it keeps the refresh token.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.path().join("session.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
