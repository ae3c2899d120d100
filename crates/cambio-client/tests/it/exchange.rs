//! The exchange cache: hits, forced updates, single flight, keys, trace context.

use std::collections::HashSet;

use cambio_client::{Error, ExchangeRequest};

use crate::harness::{TestServer, audiences, claims};

const EXCHANGE: &str = "TOKEN_EXCHANGE";

#[tokio::test]
async fn a_cached_token_is_returned_without_a_request() {
    let s = TestServer::start().await;
    let client = s.alice().await;
    let first = client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    assert_eq!(s.count(EXCHANGE).await, 1);
    assert_eq!(audiences(first.token()), ["orders-api"]);
    assert_eq!(
        first.issued_token_type(),
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(first.token_type(), "Bearer");
    assert!(first.lifetime().as_secs() > 0);
    assert!(first.expires_at() > std::time::SystemTime::now());

    for _ in 0..10 {
        let again = client
            .exchange(ExchangeRequest::new("orders-api"))
            .await
            .unwrap();
        assert_eq!(again.token(), first.token());
    }
    assert_eq!(s.count(EXCHANGE).await, 1);

    // Neither the client nor the token prints a token.
    let shown = format!("{client:?} {client} {first:?}");
    assert!(!shown.contains(first.token()), "{shown}");
    assert!(!shown.contains("eyJ"), "{shown}");
}

#[tokio::test]
async fn force_update_fetches_anew_and_replaces_the_entry() {
    let s = TestServer::start().await;
    let client = s.alice().await;
    let first = client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    let forced = client
        .exchange(ExchangeRequest::new("orders-api").force_update(true))
        .await
        .unwrap();
    assert_eq!(s.count(EXCHANGE).await, 2);
    assert_ne!(forced.token(), first.token());
    let after = client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    assert_eq!(after.token(), forced.token());
    assert_eq!(s.count(EXCHANGE).await, 2);
}

#[tokio::test]
async fn a_thousand_concurrent_first_callers_cause_one_exchange() {
    let s = TestServer::start().await;
    let client = s.alice().await;
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .exchange(ExchangeRequest::new("orders-api"))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut tokens = HashSet::new();
    for task in tasks {
        tokens.insert(task.await.unwrap().token().to_owned());
    }
    assert_eq!(tokens.len(), 1);
    assert_eq!(s.count(EXCHANGE).await, 1);
}

#[tokio::test]
async fn concurrent_forced_updates_share_one_request() {
    let s = TestServer::start().await;
    let client = s.alice().await;
    client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .exchange(ExchangeRequest::new("orders-api").force_update(true))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // Callers that waited behind a forced fetch take the token it brought.
    assert!(s.count(EXCHANGE).await < 50, "{}", s.count(EXCHANGE).await);
}

#[tokio::test]
async fn tokens_never_cross_audiences_scopes_or_types() {
    let s = TestServer::start().await;
    let client = s.alice().await;
    let orders = client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    let billing = client
        .exchange(ExchangeRequest::new("billing-api"))
        .await
        .unwrap();
    assert_ne!(orders.token(), billing.token());
    assert_eq!(audiences(orders.token()), ["orders-api"]);
    assert_eq!(audiences(billing.token()), ["billing-api"]);
    // Asking again in any order returns each audience's own token.
    for _ in 0..3 {
        let b = client
            .exchange(ExchangeRequest::new("billing-api"))
            .await
            .unwrap();
        let o = client
            .exchange(ExchangeRequest::new("orders-api"))
            .await
            .unwrap();
        assert_eq!(audiences(b.token()), ["billing-api"]);
        assert_eq!(audiences(o.token()), ["orders-api"]);
    }
    assert_eq!(s.count(EXCHANGE).await, 2);

    // A narrower scope is another key.
    let narrow = client
        .exchange(ExchangeRequest::new("orders-api").scope("profile"))
        .await
        .unwrap();
    assert_ne!(narrow.token(), orders.token());
    assert_eq!(s.count(EXCHANGE).await, 3);
    assert!(
        narrow.scope().split(' ').any(|s| s == "profile"),
        "{}",
        claims(narrow.token())
    );
}

#[tokio::test]
async fn server_errors_keep_the_oauth_error_and_are_not_cached() {
    let s = TestServer::start().await;
    let client = s.alice().await;
    let refused = |e: Error| {
        let oauth = e.oauth().cloned().expect("an OAuth error");
        (oauth.status, oauth.error)
    };
    let first = client
        .exchange(ExchangeRequest::new("no-such-api"))
        .await
        .unwrap_err();
    let (status, error) = refused(first.clone());
    assert_eq!(status, 400, "{first}");
    assert!(!error.is_empty());
    assert!(
        first.oauth().unwrap().error_description.is_some(),
        "{first}"
    );
    let second = client
        .exchange(ExchangeRequest::new("no-such-api"))
        .await
        .unwrap_err();
    assert_eq!(refused(second), (status, error.clone()));
    // Both reached the server: a failure is not cached.
    assert_eq!(s.count_outcome(EXCHANGE, &error).await, 2);
    assert!(matches!(
        client.exchange(ExchangeRequest::new("")).await,
        Err(Error::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn the_trace_parent_reaches_the_server() {
    let s = TestServer::start().await;
    let client = s.alice().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    client
        .exchange(ExchangeRequest::new("orders-api").trace(parent, Some("vendor=value".into())))
        .await
        .unwrap();
    let events = s
        .events("TOKEN_EXCHANGE", |events| {
            events.iter().any(|e| e["details"]["trace_id"] == trace_id)
        })
        .await;
    assert!(!events.is_empty());
}

#[tokio::test]
async fn a_malformed_trace_parent_is_refused_even_on_a_cache_hit() {
    let s = TestServer::start().await;
    let client = s.alice().await;
    client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    for bad in [
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    ] {
        let refused = client
            .exchange(ExchangeRequest::new("orders-api").trace(bad, None))
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, Error::InvalidRequest(m) if m.starts_with("traceparent must be 00-")),
            "{refused:?}"
        );
    }
    assert_eq!(s.count(EXCHANGE).await, 1);
}
