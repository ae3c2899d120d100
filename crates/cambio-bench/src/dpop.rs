//! DPoP proofs (RFC 9449) for the `dpop-exchange` mode: one ES256 key for the run, alice's
//! subject token bound to it, and a fresh proof (its own `jti`, `ath` naming the subject token)
//! for every exchange.
//!
//! Signing a proof costs the load generator about as much as verifying it costs the server, on
//! the same two cores. So that the server's figures are not diluted by it, the proofs for the
//! run are signed before the load starts (a pool, `--dpop-proofs`); a request takes the next
//! one. When the pool runs out, or its proofs grow too old for the server's `iat` window, a
//! proof is signed on the spot and counted, so that the report says how much of that happened.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cambio_jose::{Algorithm, SigningKey};
use hyper::header::HeaderValue;
use serde_json::json;

/// How long pooled proofs are used after they were signed: the server accepts a proof whose
/// `iat` is at most 60 s old, and a margin keeps slow requests inside that window.
const POOL_LIFETIME: Duration = Duration::from_secs(45);

/// The run's DPoP key and the proofs it signs for one request target (`htu`).
pub struct ProofSource {
    key: SigningKey,
    /// The token endpoint's URL as the server sees it (its public URL and the path).
    htu: String,
    /// `ath` for the subject token (RFC 9449 §4.2), once it is known.
    ath: Option<String>,
    /// Distinguishes this run's `jti`s from any other's; the counter makes each unique.
    prefix: String,
    counter: AtomicU64,
    pool: Vec<HeaderValue>,
    pool_signed_at: Instant,
    next: AtomicUsize,
    /// Proofs signed while the load ran (the pool was exhausted or too old).
    signed_live: AtomicU64,
}

impl ProofSource {
    /// A new ES256 key for proofs to `htu`.
    pub fn new(htu: String) -> Result<ProofSource, String> {
        let key = SigningKey::generate(Algorithm::Es256)
            .map_err(|e| format!("DPoP key generation: {e}"))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Ok(ProofSource {
            key,
            htu,
            ath: None,
            prefix: format!("bench-{nanos:x}"),
            counter: AtomicU64::new(0),
            pool: Vec::new(),
            pool_signed_at: Instant::now(),
            next: AtomicUsize::new(0),
            signed_live: AtomicU64::new(0),
        })
    }

    /// Names `token` in every later proof's `ath`.
    pub fn set_access_token(&mut self, token: &str) {
        self.ath = Some(cambio_jose::access_token_hash(token));
    }

    /// Signs `count` proofs now, for the requests to come.
    pub fn fill_pool(&mut self, count: usize) -> Result<(), String> {
        let mut pool = Vec::with_capacity(count);
        for _ in 0..count {
            pool.push(self.sign_now()?);
        }
        self.pool = pool;
        self.pool_signed_at = Instant::now();
        self.next.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// The proof for the next request: the pool's next one while it lasts and is fresh, else
    /// one signed now.
    pub fn next_proof(&self) -> Result<HeaderValue, String> {
        if self.pool_signed_at.elapsed() < POOL_LIFETIME {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            if let Some(proof) = self.pool.get(index) {
                return Ok(proof.clone());
            }
        }
        self.signed_live.fetch_add(1, Ordering::Relaxed);
        self.sign_now()
    }

    /// Proofs signed while the load ran, and the pool's size.
    pub fn live_and_pooled(&self) -> (u64, usize) {
        (self.signed_live.load(Ordering::Relaxed), self.pool.len())
    }

    /// A proof signed now (with `ath` once the access token is known).
    pub fn sign_now(&self) -> Result<HeaderValue, String> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let iat = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut claims = json!({
            "jti": format!("{}-{n}", self.prefix),
            "htm": "POST",
            "htu": self.htu,
            "iat": iat,
        });
        if let Some(ath) = &self.ath {
            claims["ath"] = json!(ath);
        }
        let proof = self
            .key
            .sign_dpop_proof(&claims)
            .map_err(|e| format!("DPoP proof: {e}"))?;
        HeaderValue::from_str(&proof).map_err(|e| format!("DPoP proof header: {e}"))
    }
}
