//! Log in, get tokens for two backends, read the internal token's claims, log out.
//!
//! Against a server started with `cambio serve --demo`:
//!
//! ```text
//! cargo run -p cambio-client --example exchange -- http://127.0.0.1:8080/realms/demo
//! ```
//!
//! The session is kept in `./example-session.json` (mode 0600): a second run resumes it with
//! the stored refresh token instead of logging in again.

use std::sync::Arc;

use cambio_client::{Client, Error, Event, ExchangeRequest, FileTokenStore, ResultEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let issuer = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:8080/realms/demo".into());
    let client = Client::builder(issuer, "sdk-app")
        .client_secret("sdk-secret")
        .token_store(Arc::new(FileTokenStore::new("example-session.json")))
        .build()
        .await?;

    // Resume the stored session, or log in when there is none (or it ended).
    match client.restore().await {
        Ok(()) => println!("resumed the stored session"),
        Err(e) if e.is_login_required() => {
            client.login_password("alice", "alice").await?;
            println!("logged in as alice");
        }
        Err(e) => return Err(e),
    }

    // A token per backend; the second request for orders-api comes from the cache.
    let orders = client.exchange(ExchangeRequest::new("orders-api")).await?;
    let again = client.exchange(ExchangeRequest::new("orders-api")).await?;
    assert_eq!(orders.token(), again.token());
    let billing = client
        .exchange(ExchangeRequest::new("billing-api").trace(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            None,
        ))
        .await?;
    println!("orders-api: {orders:?}");
    println!("billing-api: {billing:?}");

    // The same through the event API, as an event-loop app would ask.
    let events = client.event_handle();
    if let ResultEvent::ExchangeIamTokenResult(Ok(token)) = events
        .send(Event::ExchangeIamToken {
            audience: "orders-api".into(),
            force_update: false,
            trace_context: None,
        })
        .await
    {
        println!(
            "event API: same token as before: {}",
            token.token() == orders.token()
        );
    }

    // Fresh claims of the internal token (one round trip), never the token itself.
    let claims = client.access_token_claims().await?;
    println!(
        "internal token: user {} with realm roles {}",
        claims["preferred_username"], claims["realm_access"]["roles"]
    );

    if std::env::args().any(|a| a == "--logout") {
        client.logout().await?;
        println!("logged out");
    }
    Ok(())
}
