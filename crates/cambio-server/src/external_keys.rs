//! Fetching and caching identity providers' JWKS.
//!
//! The rules, each there for a reason: HTTPS only (plain HTTP to a loopback address only when
//! the operator allows it, for tests); never to an internal address, checked on the address
//! actually connected to (see [`crate::outbound`]); short connect and total timeouts and a 256 KiB cap, so
//! a slow or hostile endpoint cannot hold a request or memory; no redirects, so a provider
//! cannot bounce us to another host; keys cached with a TTL and refreshed in the background,
//! so a provider that is down does not stop tokens signed with known keys; an unknown `kid`
//! triggers at most one fetch per provider per 30 s, so a flood of made-up `kid`s cannot turn
//! us into a load generator. Nothing in a token's header (`jku`, `x5u`) is ever fetched: only
//! the URL the administrator registered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cambio_core::address::OutboundPolicy;
use cambio_jose::{Algorithm, MAX_JWKS_BYTES, VerifyingKey};

use crate::outbound::{self, LOOPBACK_FLAG, Refused};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long fetched keys are used before a background refresh.
const TTL: Duration = Duration::from_secs(300);
/// The least time between two fetches caused by unknown `kid`s, unless configured.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("JWKS URL refused: {0}")]
    Url(String),
    #[error("JWKS address refused: {0}")]
    Refused(#[from] Refused),
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
    /// Why the last fetch failed, until one succeeds: for the audit event of a token that
    /// could not be verified.
    last_error: Option<Arc<str>>,
}

#[derive(Default)]
struct ProviderKeys {
    state: RwLock<KeyState>,
    /// Held while fetching: concurrent callers wait for one fetch instead of starting many.
    fetching: tokio::sync::Mutex<()>,
}

/// The cache of every provider's keys, keyed by JWKS URL.
pub struct ExternalKeys {
    /// HTTPS to public addresses (and loopback with the development flag); None only if
    /// the client could not be built.
    https: Option<reqwest::Client>,
    /// Plain HTTP, loopback addresses only; present only with the development flag.
    plain: Option<reqwest::Client>,
    allow_http_loopback: bool,
    refetch_interval: Duration,
    fetched: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
    entries: Mutex<HashMap<String, Arc<ProviderKeys>>>,
}

impl ExternalKeys {
    pub fn new(allow_http_loopback: bool, refetch_interval: Duration) -> ExternalKeys {
        let build = |policy| {
            // Building fails only if the TLS backend cannot start; then every fetch fails,
            // and never through a client without the address guard.
            outbound::client(policy, CONNECT_TIMEOUT, TOTAL_TIMEOUT)
                .inspect_err(|error| {
                    tracing::error!(%error, "the outbound HTTP client cannot be built");
                })
                .ok()
        };
        let https = build(https_policy(allow_http_loopback));
        let plain = allow_http_loopback
            .then(|| build(OutboundPolicy::LOOPBACK_ONLY))
            .flatten();
        ExternalKeys {
            https,
            plain,
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
                state.last_error = None;
            }
            Err(error) => {
                // Keep serving the keys we had: a provider outage must not stop valid tokens.
                tracing::warn!(%error, url, "identity provider JWKS fetch failed");
                state.last_error = Some(error.to_string().into());
            }
        }
        state.keys.clone()
    }

    /// Why the last fetch of `url` failed, if it did and none succeeded since.
    pub fn last_error(&self, url: &str) -> Option<Arc<str>> {
        let entry = self.entry(url);
        let state = entry.state.read().unwrap_or_else(|p| p.into_inner());
        state.last_error.clone()
    }

    async fn fetch(&self, url: &str) -> Result<Vec<VerifyingKey>, FetchError> {
        let parsed = check_target(url, self.allow_http_loopback)?;
        let client = match parsed.scheme() {
            "https" => self.https.as_ref(),
            _ => self.plain.as_ref(),
        }
        .ok_or_else(|| FetchError::Http("no HTTP client".into()))?;
        let failed = |error: reqwest::Error| match outbound::refusal(&error) {
            Some(refused) => FetchError::Refused(refused),
            None => FetchError::Http(error.without_url().to_string()),
        };
        let mut response = client
            .get(parsed)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(failed)?;
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
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        cambio_jose::parse_jwks(&body, None).map_err(|_| FetchError::Invalid)
    }
}

/// The addresses HTTPS fetches may reach.
fn https_policy(allow_loopback: bool) -> OutboundPolicy {
    if allow_loopback {
        OutboundPolicy::PUBLIC_AND_LOOPBACK
    } else {
        OutboundPolicy::PUBLIC
    }
}

/// Checks a JWKS URL when it is registered: what [`check_target`] checks, and a `localhost`
/// name as the loopback address it is.
pub fn check_url(url: &str, allow_http_loopback: bool) -> Result<url::Url, FetchError> {
    let parsed = check_target(url, allow_http_loopback)?;
    if let Some(host) = parsed.host() {
        outbound::check_name(&host, https_policy(allow_http_loopback))?;
    }
    Ok(parsed)
}

/// Checks a JWKS URL before each fetch: HTTPS, or HTTP to a loopback address when allowed; a
/// host given as an IP address must be one the fetch may reach. Names are checked on every
/// connection, on the addresses they resolve to.
fn check_target(url: &str, allow_http_loopback: bool) -> Result<url::Url, FetchError> {
    let parsed = url::Url::parse(url).map_err(|_| FetchError::Url("not a URL".into()))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(FetchError::Url("credentials in URL".into()));
    }
    let host = parsed
        .host()
        .ok_or_else(|| FetchError::Url("no host".into()))?;
    match parsed.scheme() {
        "https" => outbound::check_host(&host, https_policy(allow_http_loopback))?,
        "http" if allow_http_loopback => {
            outbound::check_host(&host, OutboundPolicy::LOOPBACK_ONLY)?;
            // A name other than localhost could resolve anywhere; plain HTTP stays on
            // addresses that cannot leave the machine, named as such (and the plain client's
            // resolver admits loopback addresses only).
            if matches!(host, url::Host::Domain(name) if !outbound::is_localhost(name)) {
                return Err(FetchError::Url(
                    "plain HTTP is allowed only to loopback addresses".into(),
                ));
            }
        }
        _ => {
            return Err(FetchError::Url(format!(
                "HTTPS required (plain HTTP only to loopback addresses, with {LOOPBACK_FLAG})"
            )));
        }
    }
    Ok(parsed)
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
        // Literal internal addresses are refused before any connection, loopback too unless
        // the development flag is on; other internal ranges whatever the flag says.
        assert!(check_url("https://127.0.0.1:8443/jwks", true).is_ok());
        assert!(check_url("https://localhost/jwks", true).is_ok());
        assert!(check_url("http://localhost:8080/jwks", true).is_ok());
        assert!(check_url("http://idp.example/jwks", true).is_err());
        for (url, allow) in [
            ("https://169.254.169.254/latest/meta-data", true),
            ("https://10.0.0.1/jwks", true),
            ("https://[fd00::1]/jwks", true),
            ("https://[::ffff:127.0.0.1]/jwks", false),
            ("https://[64:ff9b::a9fe:a9fe]/jwks", true),
            ("https://127.0.0.1/jwks", false),
            ("https://localhost/jwks", false),
            ("https://0.0.0.0/jwks", true),
        ] {
            assert!(
                matches!(check_url(url, allow), Err(FetchError::Refused(_))),
                "{url}"
            );
        }
        // At fetch time a name goes to the guarded resolver.
        assert!(check_target("https://localhost/jwks", false).is_ok());
        let message = check_url("https://127.0.0.1/jwks", false)
            .unwrap_err()
            .to_string();
        assert!(message.contains("--allow-http-loopback-jwks"), "{message}");
        let message = check_url("http://idp.example/jwks", false)
            .unwrap_err()
            .to_string();
        assert!(message.contains("--allow-http-loopback-jwks"), "{message}");
    }
}
