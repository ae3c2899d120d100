//! Counters exposed at `/metrics` in the Prometheus text format.
//!
//! Token requests are counted by realm, grant type and outcome. The hot path takes a read
//! lock and bumps an atomic; the write lock is taken only the first time a label set appears.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters by realm name, then grant (event type), then outcome (`success` or the error).
/// Nested maps so that a lookup borrows the labels instead of building a key.
type Counters = BTreeMap<String, BTreeMap<String, BTreeMap<String, AtomicU64>>>;

#[derive(Default)]
pub struct Metrics {
    token_requests: RwLock<Counters>,
}

impl Metrics {
    pub fn count_token_request(&self, realm: &str, grant: &str, outcome: &str) {
        if let Ok(map) = self.token_requests.read()
            && let Some(counter) = map
                .get(realm)
                .and_then(|g| g.get(grant))
                .and_then(|o| o.get(outcome))
        {
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Ok(mut map) = self.token_requests.write() {
            map.entry(realm.to_owned())
                .or_default()
                .entry(grant.to_owned())
                .or_default()
                .entry(outcome.to_owned())
                .or_default()
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self, audit_queue_depth: usize, audit_dropped: u64) -> String {
        let mut out = String::new();
        out.push_str("# HELP cambio_token_requests_total Token endpoint requests by realm, grant and outcome.\n");
        out.push_str("# TYPE cambio_token_requests_total counter\n");
        if let Ok(map) = self.token_requests.read() {
            let all = map.iter().flat_map(|(realm, grants)| {
                grants.iter().flat_map(move |(grant, outcomes)| {
                    outcomes
                        .iter()
                        .map(move |(outcome, count)| (realm, grant, outcome, count))
                })
            });
            for (realm, grant, outcome, count) in all {
                let _ = writeln!(
                    out,
                    "cambio_token_requests_total{{realm=\"{}\",grant=\"{}\",outcome=\"{}\"}} {}",
                    escape(realm),
                    escape(grant),
                    escape(outcome),
                    count.load(Ordering::Relaxed)
                );
            }
        }
        out.push_str("# HELP cambio_audit_queue_depth Audit events waiting to be written.\n");
        out.push_str("# TYPE cambio_audit_queue_depth gauge\n");
        let _ = writeln!(out, "cambio_audit_queue_depth {audit_queue_depth}");
        out.push_str(
            "# HELP cambio_audit_events_dropped_total Audit events lost to a full queue.\n",
        );
        out.push_str("# TYPE cambio_audit_events_dropped_total counter\n");
        let _ = writeln!(out, "cambio_audit_events_dropped_total {audit_dropped}");
        out
    }
}

/// Label values escaped as the exposition format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders() {
        let m = Metrics::default();
        m.count_token_request("demo", "TOKEN_EXCHANGE", "success");
        m.count_token_request("demo", "TOKEN_EXCHANGE", "success");
        m.count_token_request("demo", "LOGIN", "invalid_grant");
        let text = m.render(3, 1);
        assert!(text.contains(
            "cambio_token_requests_total{realm=\"demo\",grant=\"TOKEN_EXCHANGE\",outcome=\"success\"} 2\n"
        ));
        assert!(text.contains(
            "cambio_token_requests_total{realm=\"demo\",grant=\"LOGIN\",outcome=\"invalid_grant\"} 1\n"
        ));
        assert!(text.contains("cambio_audit_queue_depth 3\n"));
        assert!(text.contains("cambio_audit_events_dropped_total 1\n"));
    }
}
