//! Audit events leave the request path through a bounded queue; one task writes them to the
//! store in batches. A full queue drops events (and counts them) rather than slowing requests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cambio_store::{EventRecord, Store};
use tokio::sync::mpsc;

const QUEUE_CAPACITY: usize = 16_384;
const BATCH: usize = 512;
const LINGER: std::time::Duration = std::time::Duration::from_millis(50);

/// The sending side, held by the handlers.
#[derive(Clone)]
pub struct AuditQueue {
    sender: mpsc::Sender<EventRecord>,
    dropped: Arc<AtomicU64>,
}

/// One event under construction.
#[derive(Debug, Default)]
pub struct Event {
    pub realm_id: String,
    pub event_type: &'static str,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub ip_address: Option<String>,
    pub error: Option<String>,
    pub details: BTreeMap<&'static str, String>,
}

impl AuditQueue {
    /// Starts the writer task and returns the queue and a handle that completes once every
    /// queued event was written after all senders are dropped.
    pub fn start(store: Arc<dyn Store>) -> (AuditQueue, tokio::task::JoinHandle<()>) {
        let (sender, mut receiver) = mpsc::channel::<EventRecord>(QUEUE_CAPACITY);
        let writer = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while receiver.recv_many(&mut batch, BATCH).await > 0 {
                // Let a batch fill for a moment: under load this turns thousands of small
                // writes per second into a few large ones. Events still land within ~50 ms.
                if batch.len() < BATCH {
                    tokio::time::sleep(LINGER).await;
                    while batch.len() < BATCH {
                        match receiver.try_recv() {
                            Ok(event) => batch.push(event),
                            Err(_) => break,
                        }
                    }
                }
                if let Err(error) = store.insert_events(&batch).await {
                    tracing::warn!(%error, lost = batch.len(), "audit events could not be written");
                }
                batch.clear();
            }
        });
        (
            AuditQueue {
                sender,
                dropped: Arc::new(AtomicU64::new(0)),
            },
            writer,
        )
    }

    pub fn record(&self, event: Event) {
        let record = EventRecord {
            time: crate::random::now_ms(),
            realm_id: event.realm_id,
            event_type: event.event_type.to_owned(),
            client_id: event.client_id,
            user_id: event.user_id,
            session_id: event.session_id,
            ip_address: event.ip_address,
            error: event.error,
            details: serde_json::to_string(&event.details).unwrap_or_else(|_| "{}".into()),
        };
        if self.sender.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events lost because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events waiting to be written.
    pub fn depth(&self) -> usize {
        QUEUE_CAPACITY - self.sender.capacity()
    }
}
