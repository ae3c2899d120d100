//! Fetching and caching identity providers' JWKS.
//!
//! The rules, each there for a reason: HTTPS only (plain HTTP to a loopback address only when
//! the operator allows it, for tests); short connect and total timeouts and a 256 KiB cap, so
//! a slow or hostile endpoint cannot hold a request or memory; no redirects, so a provider
//! cannot bounce us to another host; keys cached with a TTL and refreshed in the background,
//! so a provider that is down does not stop tokens signed with known keys; an unknown `kid`
//! triggers at most one fetch per provider per 30 s, so a flood of made-up `kid`s cannot turn
//! us into a load generator. Nothing in a token's header (`jku`, `x5u`) is ever fetched: only
//! the URL the administrator registered.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cambio_jose::{Algorithm, MAX_JWKS_BYTES, VerifyingKey};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long fetched keys are used before a background refresh.
const TTL: Duration = Duration::from_secs(300);
/// The least time between two fetches caused by unknown `kid`s, unless configured.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("JWKS URL refused: {0}")]
    Url(&'static str),
    #[error("JWKS fetch failed: {0}")]
    Http(String),
    #[error("JWKS response too large")]
    TooLarge,
    #[error("JWKS document invalid")]
    Invalid,
}

#[derive(Default)]
struct KeyState {
    keys: Arc<Vec<VerifyingKey>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

#[derive(Default)]
struct ProviderKeys {
    state: RwLock<KeyState>,
    /// Held while fetching: concurrent callers wait for one fetch instead of starting many.
    fetching: tokio::sync::Mutex<()>,
}

/// The cache of every provider's keys, keyed by JWKS URL.
pub struct ExternalKeys {
    http: reqwest::Client,
    allow_http_loopback: bool,
    refetch_interval: Duration,
    fetched: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
    entries: Mutex<HashMap<String, Arc<ProviderKeys>>>,
}

impl ExternalKeys {
    pub fn new(allow_http_loopback: bool, refetch_interval: Duration) -> ExternalKeys {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("cambio")
            .build()
            .unwrap_or_default();
        ExternalKeys {
            http,
            allow_http_loopback,
            refetch_interval,
            fetched: std::sync::atomic::AtomicU64::new(0),
            failed: std::sync::atomic::AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Fetches that succeeded and failed, for `/metrics`.
    pub fn fetch_counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.fetched.load(Relaxed), self.failed.load(Relaxed))
    }

    pub fn allows_http_loopback(&self) -> bool {
        self.allow_http_loopback
    }

    fn entry(&self, url: &str) -> Arc<ProviderKeys> {
        let mut entries = match self.entries.lock() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        entries.entry(url.to_owned()).or_default().clone()
    }

    /// The keys to verify a token with header `kid`/`alg`: cached ones when they have the key,
    /// otherwise (at most every 30 s) freshly fetched ones.
    pub async fn keys_for(
        self: &Arc<Self>,
        url: &str,
        kid: Option<&str>,
        alg: Option<Algorithm>,
    ) -> Arc<Vec<VerifyingKey>> {
        let entry = self.entry(url);
        let (keys, fresh, may_refetch) = {
            let state = entry.state.read().unwrap_or_else(|p| p.into_inner());
            let fresh = state.fetched_at.is_some_and(|t| t.elapsed() < TTL);
            let may_refetch = state
                .last_attempt
                .is_none_or(|t| t.elapsed() >= self.refetch_interval);
            (state.keys.clone(), fresh, may_refetch)
        };
        let known = keys.iter().any(|k| match kid {
            Some(kid) => k.kid() == Some(kid),
            None => alg.is_some_and(|a| k.algorithm() == a),
        });
        if known {
            if !fresh && may_refetch {
                // Stale but usable: refresh in the background, answer now.
                let this = self.clone();
                let url = url.to_owned();
                tokio::spawn(async move {
                    this.refresh(&url, None).await;
                });
            }
            return keys;
        }
        if !may_refetch {
            return keys;
        }
        self.refresh(url, Some(Arc::as_ptr(&keys) as usize)).await
    }

    /// Fetches once for all concurrent callers. `seen` is the address of the key set the
    /// caller found lacking: if another caller replaced it meanwhile, that result is used.
    async fn refresh(&self, url: &str, seen: Option<usize>) -> Arc<Vec<VerifyingKey>> {
        let entry = self.entry(url);
        let _guard = entry.fetching.lock().await;
        {
            let state = entry.state.read().unwrap_or_else(|p| p.into_inner());
            let replaced = seen.is_some_and(|p| p != Arc::as_ptr(&state.keys) as usize);
            let recent = state
                .last_attempt
                .is_some_and(|t| t.elapsed() < self.refetch_interval);
            // Background refreshes too: requests that found the keys stale at the same
            // moment each spawn one, and only the first may fetch.
            if replaced || recent {
                return state.keys.clone();
            }
        }
        {
            let mut state = entry.state.write().unwrap_or_else(|p| p.into_inner());
            state.last_attempt = Some(Instant::now());
        }
        let result = self.fetch(url).await;
        let counter = if result.is_ok() {
            &self.fetched
        } else {
            &self.failed
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut state = entry.state.write().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(keys) => {
                state.keys = Arc::new(keys);
                state.fetched_at = Some(Instant::now());
            }
            Err(error) => {
                // Keep serving the keys we had: a provider outage must not stop valid tokens.
                tracing::warn!(%error, url, "identity provider JWKS fetch failed");
            }
        }
        state.keys.clone()
    }

    async fn fetch(&self, url: &str) -> Result<Vec<VerifyingKey>, FetchError> {
        check_url(url, self.allow_http_loopback)?;
        let mut response = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| FetchError::Http(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(FetchError::Http(format!("status {}", response.status())));
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Http(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        cambio_jose::parse_jwks(&body, None).map_err(|_| FetchError::Invalid)
    }
}

/// Checks a registered JWKS URL: HTTPS, or HTTP to a loopback address when allowed.
pub fn check_url(url: &str, allow_http_loopback: bool) -> Result<(), FetchError> {
    let parsed = url::Url::parse(url).map_err(|_| FetchError::Url("not a URL"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(FetchError::Url("credentials in URL"));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_http_loopback => {
            let loopback = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
                Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if loopback {
                Ok(())
            } else {
                Err(FetchError::Url(
                    "plain HTTP is allowed only to loopback addresses",
                ))
            }
        }
        _ => Err(FetchError::Url("HTTPS required")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://idp.example/jwks", false).is_ok());
        assert!(check_url("http://idp.example/jwks", false).is_err());
        assert!(check_url("http://127.0.0.1:8080/jwks", false).is_err());
        assert!(check_url("http://127.0.0.1:8080/jwks", true).is_ok());
        assert!(check_url("http://[::1]:8080/jwks", true).is_ok());
        assert!(check_url("http://10.0.0.1/jwks", true).is_err());
        assert!(check_url("https://user:pw@idp.example/jwks", false).is_err());
        assert!(check_url("file:///etc/passwd", true).is_err());
    }
}
