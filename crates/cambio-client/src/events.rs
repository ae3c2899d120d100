//! An event interface over the async API, for apps built around an event loop: send an
//! [`Event`], get back a [`ResultEvent`]. It mirrors KOBIL Master Controller's
//! `ExchangeIamTokenEvent` / `ExchangeIamTokenResultEvent` and `GetIamAccessTokenClaimsEvent`.

use tokio::sync::{mpsc, oneshot};

use crate::client::{Claims, Client};
use crate::error::{Error, Result};
use crate::exchange::{ExchangeRequest, ExchangedToken};

/// A request to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A token for `audience` (cached unless `force_update`), with an optional W3C trace
    /// context to continue.
    ExchangeIamToken {
        /// The backend the token is for.
        audience: String,
        /// Fetch a new token even if a cached one is good.
        force_update: bool,
        /// The caller's trace context.
        trace_context: Option<TraceContext>,
    },
    /// The claims of a fresh internal access token (one round trip each time).
    GetIamAccessTokenClaims,
}

/// A W3C trace context (`traceparent` and `tracestate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// The `traceparent` header value.
    pub trace_parent: String,
    /// The `tracestate` header value.
    pub trace_state: Option<String>,
}

/// The answer to an [`Event`], of the matching kind.
#[derive(Debug, Clone)]
pub enum ResultEvent {
    /// The answer to [`Event::ExchangeIamToken`].
    ExchangeIamTokenResult(Result<ExchangedToken>),
    /// The answer to [`Event::GetIamAccessTokenClaims`].
    GetIamAccessTokenClaimsResult(Result<Claims>),
}

type Envelope = (Event, oneshot::Sender<ResultEvent>);

/// A handle to send events to a client. Cheap to clone; the worker stops when the last
/// handle is dropped. Events are handled concurrently, each by the async API.
#[derive(Debug, Clone)]
pub struct EventHandle {
    sender: mpsc::Sender<Envelope>,
}

impl Client {
    /// Starts a worker on the current Tokio runtime that answers events with this client.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn event_handle(&self) -> EventHandle {
        let (sender, mut receiver) = mpsc::channel::<Envelope>(256);
        let client = self.clone();
        tokio::spawn(async move {
            while let Some((event, reply)) = receiver.recv().await {
                let client = client.clone();
                tokio::spawn(async move {
                    // The sender may have given up waiting; nothing else to do then.
                    let _ = reply.send(client.handle(event).await);
                });
            }
        });
        EventHandle { sender }
    }

    async fn handle(&self, event: Event) -> ResultEvent {
        match event {
            Event::ExchangeIamToken {
                audience,
                force_update,
                trace_context,
            } => {
                let (trace_parent, trace_state) = match trace_context {
                    Some(t) => (Some(t.trace_parent), t.trace_state),
                    None => (None, None),
                };
                ResultEvent::ExchangeIamTokenResult(
                    self.exchange(ExchangeRequest {
                        audience,
                        force_update,
                        trace_parent,
                        trace_state,
                        ..Default::default()
                    })
                    .await,
                )
            }
            Event::GetIamAccessTokenClaims => {
                ResultEvent::GetIamAccessTokenClaimsResult(self.access_token_claims().await)
            }
        }
    }
}

impl EventHandle {
    /// Sends `event` and waits for its result.
    pub async fn send(&self, event: Event) -> ResultEvent {
        let failed = failure_for(&event);
        let (reply, answer) = oneshot::channel();
        if self.sender.send((event, reply)).await.is_err() {
            return failed;
        }
        answer.await.unwrap_or(failed)
    }

    /// Sends `event` from a thread outside the runtime (a UI or event-loop thread) and
    /// blocks it until the result is there.
    ///
    /// # Panics
    /// When called from inside an async context (Tokio refuses to block there).
    pub fn send_blocking(&self, event: Event) -> ResultEvent {
        let failed = failure_for(&event);
        let (reply, answer) = oneshot::channel();
        if self.sender.blocking_send((event, reply)).is_err() {
            return failed;
        }
        answer.blocking_recv().unwrap_or(failed)
    }
}

/// The result when the worker is gone (its runtime shut down).
fn failure_for(event: &Event) -> ResultEvent {
    let error = Error::Config("the event worker has stopped".into());
    match event {
        Event::ExchangeIamToken { .. } => ResultEvent::ExchangeIamTokenResult(Err(error)),
        Event::GetIamAccessTokenClaims => ResultEvent::GetIamAccessTokenClaimsResult(Err(error)),
    }
}
