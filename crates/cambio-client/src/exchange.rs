//! What an app asks for ([`ExchangeRequest`]) and what it gets ([`ExchangedToken`]), and when
//! a cached token is still good enough to hand out again.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// A request for a token meant for one audience, the SDK's `ExchangeIamTokenEvent`.
///
/// ```
/// use cambio_client::ExchangeRequest;
///
/// let request = ExchangeRequest {
///     audience: "orders-api".into(),
///     force_update: true,
///     ..Default::default()
/// };
/// assert_eq!(request, ExchangeRequest::new("orders-api").force_update(true));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExchangeRequest {
    /// The client id of the backend the token is for (RFC 8693 `audience`).
    pub audience: String,
    /// Space-separated scopes to narrow the token to; the server's default when absent.
    pub scope: Option<String>,
    /// RFC 8693 `requested_token_type`; an access token when absent.
    pub requested_token_type: Option<String>,
    /// Skip the cache: fetch a new token and replace the cached one (for example after a
    /// password change made the old token useless).
    pub force_update: bool,
    /// A W3C `traceparent` to send with the request, so that the server's work joins the
    /// caller's trace. Only sent when the token is fetched, not on a cache hit.
    pub trace_parent: Option<String>,
    /// The W3C `tracestate` that goes with `trace_parent`.
    pub trace_state: Option<String>,
}

impl ExchangeRequest {
    /// A request for `audience` with every option at its default.
    pub fn new(audience: impl Into<String>) -> ExchangeRequest {
        ExchangeRequest {
            audience: audience.into(),
            ..Default::default()
        }
    }

    /// Sets [`ExchangeRequest::scope`].
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> ExchangeRequest {
        self.scope = Some(scope.into());
        self
    }

    /// Sets [`ExchangeRequest::requested_token_type`].
    #[must_use]
    pub fn requested_token_type(mut self, token_type: impl Into<String>) -> ExchangeRequest {
        self.requested_token_type = Some(token_type.into());
        self
    }

    /// Sets [`ExchangeRequest::force_update`].
    #[must_use]
    pub fn force_update(mut self, force: bool) -> ExchangeRequest {
        self.force_update = force;
        self
    }

    /// Sets [`ExchangeRequest::trace_parent`] and [`ExchangeRequest::trace_state`].
    #[must_use]
    pub fn trace(mut self, trace_parent: impl Into<String>, trace_state: Option<String>) -> Self {
        self.trace_parent = Some(trace_parent.into());
        self.trace_state = trace_state;
        self
    }
}

/// A token issued for one audience. Cheap to clone (the data is shared).
///
/// `Debug` leaves the token out, so that logging the value does not leak it.
#[derive(Clone)]
pub struct ExchangedToken(Arc<TokenData>);

struct TokenData {
    token: String,
    token_type: String,
    issued_token_type: String,
    scope: String,
    expires_at: SystemTime,
    lifetime: Duration,
    /// When the token stops being handed out from the cache.
    renew_at: Instant,
    /// When it was received, to tell a token fetched during a call from an older one.
    received_at: Instant,
}

impl ExchangedToken {
    pub(crate) fn new(
        token: String,
        token_type: String,
        issued_token_type: String,
        scope: String,
        lifetime: Duration,
        margin: &RenewalMargin,
    ) -> ExchangedToken {
        let received_at = Instant::now();
        ExchangedToken(Arc::new(TokenData {
            token,
            token_type,
            issued_token_type,
            scope,
            expires_at: SystemTime::now() + lifetime,
            lifetime,
            renew_at: received_at + lifetime.saturating_sub(margin.of(lifetime)),
            received_at,
        }))
    }

    /// A token read back from a [`crate::FileTokenCache`]: the remaining life is counted on
    /// the wall clock from `expires_at`. `None` when the clock says more life remains than
    /// the token ever had (the clock was set back), so no token outlives what the server
    /// granted.
    pub(crate) fn restored(
        token: String,
        token_type: String,
        issued_token_type: String,
        scope: String,
        expires_at: SystemTime,
        lifetime: Duration,
        margin: &RenewalMargin,
    ) -> Option<ExchangedToken> {
        let remaining = expires_at
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        if remaining > lifetime {
            return None;
        }
        let now = Instant::now();
        Some(ExchangedToken(Arc::new(TokenData {
            token,
            token_type,
            issued_token_type,
            scope,
            expires_at,
            lifetime,
            renew_at: now + remaining.saturating_sub(margin.of(lifetime)),
            received_at: now.checked_sub(lifetime - remaining).unwrap_or(now),
        })))
    }

    /// The token, to send as `Authorization: Bearer {token}` to the audience.
    pub fn token(&self) -> &str {
        &self.0.token
    }

    /// The `token_type` of the response (`Bearer`, or `DPoP` for a client with a DPoP key).
    pub fn token_type(&self) -> &str {
        &self.0.token_type
    }

    /// RFC 8693 `issued_token_type`.
    pub fn issued_token_type(&self) -> &str {
        &self.0.issued_token_type
    }

    /// The scopes the token carries, space-separated.
    pub fn scope(&self) -> &str {
        &self.0.scope
    }

    /// When the token expires (from the response's `expires_in`, counted from its receipt).
    pub fn expires_at(&self) -> SystemTime {
        self.0.expires_at
    }

    /// How long the token was valid for when it was issued.
    pub fn lifetime(&self) -> Duration {
        self.0.lifetime
    }

    /// Whether the cache may still hand this token out: more than the [`RenewalMargin`] of
    /// its lifetime remains. The one rule for the memory cache and the file cache.
    pub(crate) fn fresh(&self, now: Instant) -> bool {
        now < self.0.renew_at
    }

    pub(crate) fn received_at(&self) -> Instant {
        self.0.received_at
    }

    /// How long the cache should keep the entry at all.
    pub(crate) fn time_to_expiry(&self) -> Duration {
        self.0
            .expires_at
            .duration_since(SystemTime::now())
            .unwrap_or_default()
    }
}

impl fmt::Debug for ExchangedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExchangedToken")
            .field("token", &"[redacted]")
            .field("issued_token_type", &self.0.issued_token_type)
            .field("scope", &self.0.scope)
            .field("expires_at", &self.0.expires_at)
            .finish()
    }
}

/// How much life a token must have left to be used again: at least `fraction` of its
/// lifetime and at least `minimum` (by default 10 % and 30 s). The same rule decides when
/// the internal access token is refreshed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenewalMargin {
    /// The least remaining life, whatever the lifetime.
    pub minimum: Duration,
    /// The least remaining share of the lifetime, between 0 and 1.
    pub fraction: f64,
}

impl Default for RenewalMargin {
    fn default() -> Self {
        RenewalMargin {
            minimum: Duration::from_secs(30),
            fraction: 0.1,
        }
    }
}

impl RenewalMargin {
    /// The remaining life below which a token of `lifetime` is renewed.
    pub fn of(&self, lifetime: Duration) -> Duration {
        lifetime
            .mul_f64(self.fraction.clamp(0.0, 1.0))
            .max(self.minimum)
    }
}

/// A cache key: the request's identity under one internal session (`epoch`), so a token for
/// one audience, scope or type is never returned for another, nor across sessions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub epoch: u64,
    pub audience: String,
    pub scope: Option<String>,
    pub requested_token_type: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_ten_percent_but_at_least_thirty_seconds() {
        let margin = RenewalMargin::default();
        let check = |lifetime: u64, expected: u64| {
            assert_eq!(
                margin.of(Duration::from_secs(lifetime)),
                Duration::from_secs(expected),
                "lifetime {lifetime}"
            );
        };
        check(5, 30);
        check(300, 30);
        check(600, 60);
        check(3600, 360);
    }

    #[test]
    fn debug_hides_the_token() {
        let token = ExchangedToken::new(
            "secret-token-value".into(),
            "Bearer".into(),
            "urn:ietf:params:oauth:token-type:access_token".into(),
            "profile".into(),
            Duration::from_secs(300),
            &RenewalMargin::default(),
        );
        assert!(!format!("{token:?}").contains("secret-token-value"));
        assert!(token.fresh(Instant::now()));
        assert!(!token.fresh(Instant::now() + Duration::from_secs(271)));
    }
}
