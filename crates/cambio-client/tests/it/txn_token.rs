//! A workload reads a Txn-Token with the SDK's verifier: a gateway obtains one, a second
//! workload replaces it, and a third verifies it (type, trust domain, signature, times).

use cambio_client::{Error, TxnTokenVerifier};
use serde_json::{Value, json};

use crate::harness::TestServer;

const TXN: &str = "urn:ietf:params:oauth:token-type:txn_token";

async fn token(server: &TestServer, basic: (&str, &str), form: &[(&str, &str)]) -> Value {
    let reply = server
        .http
        .post(format!("{}/protocol/openid-connect/token", server.issuer()))
        .basic_auth(basic.0, Some(basic.1))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = reply.status();
    let body: Value = reply.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body
}

#[tokio::test]
async fn a_third_workload_reads_the_transaction_from_a_replaced_txn_token() {
    let server = TestServer::start().await;
    server
        .set_realm_attribute("cambio.txnTokens.trustDomain", "shop.example")
        .await;
    server
        .set_client_attribute("requester-client", "cambio.txnTokens.request", "true")
        .await;
    server
        .set_client_attribute("orders-api", "cambio.txnTokens.replace", "true")
        .await;
    let login = token(
        &server,
        ("sdk-app", "sdk-secret"),
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice"),
            ("scope", "profile email"),
        ],
    )
    .await;
    let access = login["access_token"].as_str().unwrap().to_owned();
    let exchange = "urn:ietf:params:oauth:grant-type:token-exchange";
    let first = token(
        &server,
        ("requester-client", "requester-secret"),
        &[
            ("grant_type", exchange),
            ("requested_token_type", TXN),
            ("subject_token", &access),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("audience", "shop.example"),
            ("scope", "profile email"),
            ("request_details", r#"{"order":"A-17"}"#),
        ],
    )
    .await;
    let first = first["access_token"].as_str().unwrap().to_owned();
    let replaced = token(
        &server,
        ("orders-api", "orders-secret"),
        &[
            ("grant_type", exchange),
            ("requested_token_type", TXN),
            ("subject_token", &first),
            ("subject_token_type", TXN),
            ("audience", "shop.example"),
            ("scope", "profile"),
        ],
    )
    .await;
    let replaced = replaced["access_token"].as_str().unwrap().to_owned();

    let verifier = TxnTokenVerifier::new(&server.issuer(), "shop.example")
        .await
        .unwrap();
    let context = verifier.verify(&replaced).await.unwrap();
    let original = verifier.verify(&first).await.unwrap();
    assert_eq!(context.txn, original.txn);
    assert_eq!(context.sub, original.sub);
    assert_eq!(context.scope, "profile");
    assert_eq!(
        Value::Object(context.tctx.clone()),
        json!({"order": "A-17"})
    );
    assert_eq!(context.req_wl, "orders-api");
    assert_eq!(context.req_wl_chain, ["requester-client"]);

    // An access token is no Txn-Token; another trust domain's verifier refuses it; a token
    // changed in transit fails its signature.
    assert!(matches!(
        verifier.verify(&access).await,
        Err(Error::Jwt(cambio_jose::JwtError::WrongType))
    ));
    let elsewhere = TxnTokenVerifier::new(&server.issuer(), "other.example")
        .await
        .unwrap();
    assert!(matches!(
        elsewhere.verify(&replaced).await,
        Err(Error::Jwt(_))
    ));
    let mut parts: Vec<&str> = replaced.split('.').collect();
    let forged_payload = {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
        claims["scope"] = json!("profile email admin");
        engine.encode(serde_json::to_vec(&claims).unwrap())
    };
    parts[1] = &forged_payload;
    assert!(matches!(
        verifier.verify(&parts.join(".")).await,
        Err(Error::Jwt(cambio_jose::JwtError::BadSignature))
    ));
}
