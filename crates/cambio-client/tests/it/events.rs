//! The event API over the async API.

use cambio_client::{Event, ResultEvent, TraceContext};

use crate::harness::{TestServer, audiences};

#[tokio::test]
async fn events_exchange_tokens_and_return_claims() {
    let s = TestServer::start().await;
    let client = s.alice().await;
    let handle = client.event_handle();

    let exchange = |force_update| Event::ExchangeIamToken {
        audience: "orders-api".into(),
        force_update,
        trace_context: Some(TraceContext {
            trace_parent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            trace_state: None,
        }),
    };
    let ResultEvent::ExchangeIamTokenResult(first) = handle.send(exchange(false)).await else {
        panic!("wrong result kind");
    };
    let first = first.unwrap();
    assert_eq!(audiences(first.token()), ["orders-api"]);
    let ResultEvent::ExchangeIamTokenResult(cached) = handle.send(exchange(false)).await else {
        panic!("wrong result kind");
    };
    assert_eq!(cached.unwrap().token(), first.token());
    let ResultEvent::ExchangeIamTokenResult(forced) = handle.send(exchange(true)).await else {
        panic!("wrong result kind");
    };
    assert_ne!(forced.unwrap().token(), first.token());
    assert_eq!(s.count("TOKEN_EXCHANGE").await, 2);

    let ResultEvent::GetIamAccessTokenClaimsResult(claims) =
        handle.send(Event::GetIamAccessTokenClaims).await
    else {
        panic!("wrong result kind");
    };
    assert_eq!(claims.unwrap()["preferred_username"], "alice");

    // From a thread that is not async, as a UI event loop would.
    let blocking = handle.clone();
    let result = tokio::task::spawn_blocking(move || {
        blocking.send_blocking(Event::ExchangeIamToken {
            audience: "billing-api".into(),
            force_update: false,
            trace_context: None,
        })
    })
    .await
    .unwrap();
    let ResultEvent::ExchangeIamTokenResult(billing) = result else {
        panic!("wrong result kind");
    };
    assert_eq!(audiences(billing.unwrap().token()), ["billing-api"]);
}
