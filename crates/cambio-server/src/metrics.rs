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

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A Prometheus histogram: cumulative counts are computed when rendering.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, seconds: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }
}

#[derive(Default)]
pub struct Metrics {
    token_requests: RwLock<Counters>,
    /// Token endpoint latency by grant (event type).
    latency: RwLock<BTreeMap<String, Histogram>>,
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

    pub fn observe_token_latency(&self, grant: &str, seconds: f64) {
        if let Ok(map) = self.latency.read()
            && let Some(h) = map.get(grant)
        {
            h.observe(seconds);
            return;
        }
        if let Ok(mut map) = self.latency.write() {
            map.entry(grant.to_owned()).or_default().observe(seconds);
        }
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(
        &self,
        audit_queue_depth: usize,
        audit_dropped: u64,
        jwks_fetches: (u64, u64),
    ) -> String {
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
        out.push_str(
            "# HELP cambio_token_request_duration_seconds Token endpoint latency by grant.\n",
        );
        out.push_str("# TYPE cambio_token_request_duration_seconds histogram\n");
        if let Ok(map) = self.latency.read() {
            for (grant, h) in map.iter() {
                let grant = escape(grant);
                let mut cumulative = 0;
                for (bound, bucket) in BUCKETS.iter().zip(&h.buckets) {
                    cumulative += bucket.load(Ordering::Relaxed);
                    let _ = writeln!(
                        out,
                        "cambio_token_request_duration_seconds_bucket{{grant=\"{grant}\",le=\"{bound}\"}} {cumulative}"
                    );
                }
                let count = h.count.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "cambio_token_request_duration_seconds_bucket{{grant=\"{grant}\",le=\"+Inf\"}} {count}"
                );
                let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
                let _ = writeln!(
                    out,
                    "cambio_token_request_duration_seconds_sum{{grant=\"{grant}\"}} {sum}"
                );
                let _ = writeln!(
                    out,
                    "cambio_token_request_duration_seconds_count{{grant=\"{grant}\"}} {count}"
                );
            }
        }
        out.push_str(
            "# HELP cambio_jwks_fetches_total Identity provider JWKS fetches by outcome.\n",
        );
        out.push_str("# TYPE cambio_jwks_fetches_total counter\n");
        let _ = writeln!(
            out,
            "cambio_jwks_fetches_total{{outcome=\"success\"}} {}",
            jwks_fetches.0
        );
        let _ = writeln!(
            out,
            "cambio_jwks_fetches_total{{outcome=\"failure\"}} {}",
            jwks_fetches.1
        );
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
        let text = m.render(3, 1, (0, 0));
        assert!(text.contains(
            "cambio_token_requests_total{realm=\"demo\",grant=\"TOKEN_EXCHANGE\",outcome=\"success\"} 2\n"
        ));
        assert!(text.contains(
            "cambio_token_requests_total{realm=\"demo\",grant=\"LOGIN\",outcome=\"invalid_grant\"} 1\n"
        ));
        assert!(text.contains("cambio_audit_queue_depth 3\n"));
        m.observe_token_latency("LOGIN", 0.003);
        m.observe_token_latency("LOGIN", 0.2);
        let text = m.render(0, 0, (4, 1));
        assert!(
            text.contains(
                "cambio_token_request_duration_seconds_bucket{grant=\"LOGIN\",le=\"0.005\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "cambio_token_request_duration_seconds_bucket{grant=\"LOGIN\",le=\"+Inf\"} 2\n"
        ));
        assert!(text.contains("cambio_token_request_duration_seconds_count{grant=\"LOGIN\"} 2\n"));
        assert!(text.contains("cambio_jwks_fetches_total{outcome=\"success\"} 4\n"));
        assert!(text.contains("cambio_jwks_fetches_total{outcome=\"failure\"} 1\n"));
        assert!(text.contains("cambio_audit_events_dropped_total 0\n"));
    }
}
