//! Cambio's client SDK: an app logs in once, the SDK keeps the user's internal access and
//! refresh tokens to itself, and hands out tokens exchanged (RFC 8693) for one backend
//! audience at a time, cached until they near expiry.
//!
//! ```no_run
//! use cambio_client::{Client, ExchangeRequest};
//!
//! # async fn run() -> Result<(), cambio_client::Error> {
//! let client = Client::builder("https://sso.example/realms/demo", "sdk-app")
//!     .client_secret("sdk-secret")
//!     .build()
//!     .await?;
//! client.login_password("alice", "alice").await?;
//!
//! // A token for orders-api only; the second call is answered from the cache.
//! let token = client.exchange(ExchangeRequest::new("orders-api")).await?;
//! let again = client.exchange(ExchangeRequest::new("orders-api")).await?;
//! assert_eq!(token.token(), again.token());
//!
//! // The current claims of the internal token, without the token.
//! let claims = client.access_token_claims().await?;
//! println!("signed in as {}", claims["preferred_username"]);
//! client.logout().await?;
//! # Ok(()) }
//! ```
//!
//! - Login: [`Client::login_password`], [`Client::login_client_credentials`],
//!   [`Client::browser_login`] (authorization code + PKCE, loopback redirect) and
//!   [`Client::restore`] from a [`TokenStore`]; [`Client::logout`] revokes at the server.
//! - Exchange: [`Client::exchange`] with an [`ExchangeRequest`]; the cache key is the
//!   audience, scope and requested type under the current session, concurrent callers share
//!   one request, and an entry is reused while more than its [`RenewalMargin`] remains.
//! - Claims: [`Client::access_token_claims`], verified against the realm's JWKS.
//! - Txn-Tokens: a [`TxnTokenVerifier`] reads a transaction's context in a workload.
//! - Events: [`Client::event_handle`] gives an [`EventHandle`] for event-loop apps.
//! - Between runs: a [`TokenStore`] keeps the refresh token; a [`FileTokenCache`] keeps
//!   exchanged tokens for short-lived programs such as the `cambio` CLI.
//!
//! Errors keep the server's OAuth `error` and `error_description` ([`OAuthError`]); a refused
//! refresh token becomes [`Error::LoginRequired`].
#![cfg_attr(test, allow(clippy::unwrap_used))]
#![warn(missing_docs)]

mod browser;
mod cache_file;
mod client;
mod error;
mod events;
mod exchange;
mod http;
mod store;
mod txn_token;

pub use browser::BrowserLogin;
pub use cache_file::FileTokenCache;
pub use cambio_jose::{Algorithm, SigningKey};
pub use client::{Claims, Client, ClientBuilder};
pub use error::{Error, OAuthError, Result};
pub use events::{Event, EventHandle, ResultEvent, TraceContext};
pub use exchange::{ExchangeRequest, ExchangedToken, RenewalMargin};
pub use store::{FileTokenStore, MemoryTokenStore, StoredSession, TokenStore};
pub use txn_token::{TxnContext, TxnTokenVerifier};
