//! [`Client`]: the internal session, the exchange cache and the calls built on them.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cambio_jose::{AudienceRule, JwtError, SigningKey, TypRule, Validation, VerifyingKey};
use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};
use reqwest::header::{HeaderMap, HeaderValue};
use zeroize::Zeroizing;

use crate::error::{Error, OAuthError, Result};
use crate::exchange::{CacheKey, ExchangeRequest, ExchangedToken, RenewalMargin};
use crate::http::{self, ACCESS_TOKEN_TYPE, ClientAuth, TOKEN_EXCHANGE, TokenReply, Wire};
use crate::store::{StoredSession, TokenStore};

/// The verified claims of an access token.
pub type Claims = serde_json::Map<String, serde_json::Value>;

/// A client of one realm: it logs in, keeps the internal tokens to itself and hands out
/// tokens exchanged for one audience at a time, cached until they near expiry.
///
/// Cheap to clone; clones share the session and the cache. The internal access and refresh
/// tokens have no getter, are never printed by `Debug` or `Display`, and are wiped from
/// memory when replaced or dropped.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    wire: Wire,
    margin: RenewalMargin,
    /// Bumped by login, logout and a change of user; part of every cache key, so tokens
    /// fetched under an earlier session can never be returned.
    epoch: AtomicU64,
    session: tokio::sync::Mutex<Option<Session>>,
    cache: Cache<CacheKey, ExchangedToken>,
    store: Option<Arc<dyn TokenStore>>,
    keys: tokio::sync::Mutex<Option<Arc<Vec<VerifyingKey>>>>,
}

/// The internal tokens. Never leaves this module.
struct Session {
    access_token: Zeroizing<String>,
    /// When the access token must be refreshed before it is used again.
    renew_at: Instant,
    refresh_token: Option<Zeroizing<String>>,
    subject: Option<String>,
    kind: SessionKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SessionKind {
    /// A user's session, kept alive through the refresh token.
    User,
    /// The client's own (`client_credentials`): renewed by logging in again.
    Service,
}

/// Configures a [`Client`]; [`ClientBuilder::build`] reads the realm's discovery document.
pub struct ClientBuilder {
    issuer: String,
    client_id: String,
    auth: ClientAuth,
    store: Option<Arc<dyn TokenStore>>,
    margin: RenewalMargin,
    cache_capacity: u64,
    timeout: Duration,
    dpop: Option<SigningKey>,
}

impl Client {
    /// Starts configuring a client of the realm whose issuer is `issuer`
    /// (`{base}/realms/{realm}`), as `client_id`. Without credentials it is a public client.
    pub fn builder(issuer: impl Into<String>, client_id: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            issuer: issuer.into(),
            client_id: client_id.into(),
            auth: ClientAuth::None,
            store: None,
            margin: RenewalMargin::default(),
            cache_capacity: 1000,
            timeout: Duration::from_secs(30),
            dpop: None,
        }
    }
}

impl ClientBuilder {
    /// Authenticates with a client secret (`client_secret_basic`).
    #[must_use]
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.auth = ClientAuth::Secret(Zeroizing::new(secret.into()));
        self
    }

    /// Authenticates with `private_key_jwt` (RFC 7523), signing with `key`, whose public
    /// half is registered with the client.
    #[must_use]
    pub fn private_key(mut self, key: SigningKey) -> Self {
        self.auth = ClientAuth::PrivateKeyJwt(key);
        self
    }

    /// Proves possession of `key` (DPoP, RFC 9449) at every token request, so that the
    /// internal tokens and every exchanged token are bound to it: a copy of one is worthless
    /// without the key. A server nonce is picked up and used as the server asks. Use
    /// [`Client::dpop_proof`] to present an exchanged token to a resource server. A public
    /// client's refresh token is bound to the key too, so keep the key with the token store
    /// ([`StoredSession`](crate::StoredSession) does) for [`Client::restore`] to work.
    #[must_use]
    pub fn dpop_key(mut self, key: SigningKey) -> Self {
        self.dpop = Some(key);
        self
    }

    /// Keeps the refresh token in `store` between runs (see [`Client::restore`]).
    #[must_use]
    pub fn token_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// How much life a token must have left to be reused (default: 10 %, at least 30 s).
    #[must_use]
    pub fn renewal_margin(mut self, margin: RenewalMargin) -> Self {
        self.margin = margin;
        self
    }

    /// The most exchanged tokens kept (default 1000).
    #[must_use]
    pub fn cache_capacity(mut self, entries: u64) -> Self {
        self.cache_capacity = entries;
        self
    }

    /// The time limit of one HTTP request (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Fetches the discovery document and builds the client.
    ///
    /// # Errors
    /// [`Error::Config`] if the document cannot be had or names another issuer,
    /// [`Error::Http`] if the server cannot be reached.
    pub async fn build(self) -> Result<Client> {
        let http = http::http_client(self.timeout, http::is_plain_loopback(&self.issuer))?;
        let endpoints = Wire::discover(&http, &self.issuer).await?;
        let cache = Cache::builder()
            .max_capacity(self.cache_capacity)
            .expire_after(UntilExpiry)
            .build();
        Ok(Client {
            inner: Arc::new(Inner {
                wire: Wire {
                    http,
                    endpoints,
                    client_id: self.client_id,
                    auth: self.auth,
                    dpop: std::sync::RwLock::new(
                        self.dpop.map(|key| Arc::new(http::Dpop::new(key))),
                    ),
                },
                margin: self.margin,
                epoch: AtomicU64::new(0),
                session: tokio::sync::Mutex::new(None),
                cache,
                store: self.store,
                keys: tokio::sync::Mutex::new(None),
            }),
        })
    }
}

impl Client {
    /// A DPoP proof for presenting `access_token` (an exchanged token of this client, bound to
    /// its DPoP key) in a `method` request to `url`: send it in the `DPoP` header, with
    /// `Authorization: DPoP {token}`. `None` when the client has no DPoP key.
    ///
    /// # Errors
    /// [`Error::Protocol`] if the proof cannot be signed.
    pub fn dpop_proof(
        &self,
        method: &str,
        url: &str,
        access_token: &str,
    ) -> Result<Option<String>> {
        self.inner
            .wire
            .dpop()
            .map(|dpop| dpop.proof(method, url, Some(access_token), false))
            .transpose()
    }

    /// The realm's issuer URL.
    pub fn issuer(&self) -> &str {
        &self.inner.wire.endpoints.issuer
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.inner.wire.client_id
    }

    /// Whether there is a session (it may still turn out to be ended at the server).
    pub async fn is_logged_in(&self) -> bool {
        self.inner.session.lock().await.is_some()
    }

    /// Logs a user in with the resource owner password grant. Replaces any current session
    /// and empties the exchange cache.
    ///
    /// # Errors
    /// [`Error::OAuth`] with the server's error (`invalid_grant` for wrong credentials).
    pub async fn login_password(&self, username: &str, password: &str) -> Result<()> {
        let reply = self
            .inner
            .wire
            .token(
                &[
                    ("grant_type", "password"),
                    ("username", username),
                    ("password", password),
                ],
                None,
            )
            .await?;
        self.start_session(reply, SessionKind::User).await
    }

    /// Logs the client itself in (`client_credentials`); the session is renewed by logging in
    /// again, since no refresh token is issued.
    ///
    /// # Errors
    /// [`Error::OAuth`] with the server's error.
    pub async fn login_client_credentials(&self) -> Result<()> {
        let reply = self
            .inner
            .wire
            .token(&[("grant_type", "client_credentials")], None)
            .await?;
        self.start_session(reply, SessionKind::Service).await
    }

    /// Resumes the session whose refresh token the [`TokenStore`] holds, refreshing it once
    /// (which also proves it is still alive).
    ///
    /// # Errors
    /// [`Error::LoginRequired`] if nothing is stored, the stored token belongs to another
    /// issuer or client, or the server refuses it.
    pub async fn restore(&self) -> Result<()> {
        let Some(store) = &self.inner.store else {
            return Err(Error::Config("no token store configured".into()));
        };
        let stored = store.load()?.ok_or(Error::LoginRequired(None))?;
        if stored.issuer != self.issuer() || stored.client_id != self.client_id() {
            return Err(Error::LoginRequired(None));
        }
        // The stored session's tokens are bound to the key it was made with.
        if let Some(key) = stored.dpop_key() {
            self.inner.wire.set_dpop(key);
        }
        let reply = self
            .refresh_grant(stored.expose_refresh_token(), None)
            .await;
        match reply {
            Ok(reply) => self.start_session(reply, SessionKind::User).await,
            Err(error) => {
                if error.is_login_required() {
                    store.clear()?;
                }
                Err(error)
            }
        }
    }

    /// Ends the session: revokes the refresh token at the server (RFC 7009, which ends the
    /// server's session), forgets the internal tokens, clears the store and the cache.
    /// Local state is cleared even when the server cannot be reached; that error is returned.
    ///
    /// # Errors
    /// The revocation's error, or the store's.
    pub async fn logout(&self) -> Result<()> {
        let session = self.inner.session.lock().await.take();
        self.new_epoch();
        let cleared = match &self.inner.store {
            Some(store) => store.clear().map_err(Error::from),
            None => Ok(()),
        };
        let revoked = match &session {
            Some(Session {
                refresh_token: Some(refresh),
                ..
            }) => self.inner.wire.revoke(refresh, "refresh_token").await,
            Some(session) => {
                self.inner
                    .wire
                    .revoke(&session.access_token, "access_token")
                    .await
            }
            None => Ok(()),
        };
        revoked.and(cleared)
    }

    /// A token for one audience, from the cache when one with enough life left is there
    /// (see [`RenewalMargin`]), otherwise exchanged for the internal access token (RFC 8693).
    ///
    /// Concurrent calls for the same audience, scope and type share one request. A failed
    /// request is not cached. The internal access token is refreshed first if it is near
    /// expiry, and once more if the server refuses it.
    ///
    /// # Errors
    /// [`Error::LoginRequired`] when there is no session or it ended; [`Error::OAuth`] with
    /// the server's refusal; [`Error::InvalidRequest`] for an empty audience, a malformed
    /// `traceparent` (refused even when the cache could answer) or a `tracestate` that is
    /// not a valid header value.
    pub async fn exchange(&self, request: ExchangeRequest) -> Result<ExchangedToken> {
        let ExchangeRequest {
            audience,
            scope,
            requested_token_type,
            force_update,
            trace_parent,
            trace_state,
        } = request;
        if audience.is_empty() {
            return Err(Error::InvalidRequest("the audience is empty".into()));
        }
        if let Some(parent) = &trace_parent {
            cambio_proto::trace::TraceParent::parse(parent)
                .map_err(|e| Error::InvalidRequest(e.to_string()))?;
        }
        let key = CacheKey {
            epoch: self.inner.epoch.load(Ordering::Acquire),
            audience,
            scope,
            requested_token_type,
        };
        let started = Instant::now();
        let cache = &self.inner.cache;
        if !force_update {
            match cache.get(&key).await {
                Some(token) if token.fresh(started) => return Ok(token),
                Some(_) => {}
                None => {
                    let trace = trace_headers(trace_parent.as_deref(), trace_state.as_deref())?;
                    let token = cache
                        .try_get_with_by_ref(&key, self.fetch(&key, trace))
                        .await
                        .map_err(|shared| (*shared).clone())?;
                    if token.fresh(Instant::now()) {
                        return Ok(token);
                    }
                }
            }
        }
        // A stale entry or a forced update: replace the entry. Calls on one key are
        // serialized here; one that finds a token received after it started uses that token
        // (another caller just fetched it), so concurrent refreshers still share one request.
        let trace = trace_headers(trace_parent.as_deref(), trace_state.as_deref())?;
        let result = cache
            .entry_by_ref(&key)
            .and_try_compute_with(|entry| async {
                if let Some(entry) = entry {
                    let token = entry.value();
                    if token.received_at() >= started
                        || (!force_update && token.fresh(Instant::now()))
                    {
                        return Ok(Op::Nop);
                    }
                }
                self.fetch(&key, trace).await.map(Op::Put)
            })
            .await?;
        match result {
            CompResult::Inserted(entry)
            | CompResult::ReplacedWith(entry)
            | CompResult::Unchanged(entry) => Ok(entry.into_value()),
            CompResult::StillNone(_) | CompResult::Removed(_) => {
                Err(Error::Protocol("the cache lost a token just stored".into()))
            }
        }
    }

    /// The claims of a fresh internal access token, verified against the realm's keys. The
    /// token itself is not exposed.
    ///
    /// Every call asks the server for a new access token through the refresh token (one
    /// round trip; the realm's keys are fetched once and then only when they change), so
    /// the claims reflect the user's current roles. Do not call it in a loop.
    ///
    /// # Errors
    /// [`Error::LoginRequired`] when there is no session or it ended; [`Error::Jwt`] if the
    /// token fails verification.
    pub async fn access_token_claims(&self) -> Result<Claims> {
        let token = {
            let mut session = self.inner.session.lock().await;
            self.renew(&mut session, None).await?
        };
        self.verify(&token).await
    }

    /// The internal access token, refreshed first when near expiry or when `force` is set.
    async fn subject_token(
        &self,
        force: bool,
        trace: Option<&HeaderMap>,
    ) -> Result<Zeroizing<String>> {
        let mut session = self.inner.session.lock().await;
        match session.as_ref() {
            None => Err(Error::LoginRequired(None)),
            Some(current) if !force && Instant::now() < current.renew_at => {
                Ok(current.access_token.clone())
            }
            Some(_) => self.renew(&mut session, trace).await,
        }
    }

    /// Gets a new internal access token (refresh grant, or `client_credentials` for the
    /// client's own session), installs it and returns a copy.
    async fn renew(
        &self,
        session: &mut Option<Session>,
        trace: Option<&HeaderMap>,
    ) -> Result<Zeroizing<String>> {
        let Some(current) = session.as_ref() else {
            return Err(Error::LoginRequired(None));
        };
        let reply = match (&current.refresh_token, current.kind) {
            (Some(refresh), _) => self.refresh_grant(refresh, trace).await,
            (None, SessionKind::Service) => {
                self.inner
                    .wire
                    .token(&[("grant_type", "client_credentials")], trace.cloned())
                    .await
            }
            (None, SessionKind::User) => Err(Error::LoginRequired(None)),
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => {
                if error.is_login_required() {
                    // The session is over at the server: forget it here too.
                    *session = None;
                    self.new_epoch();
                    if let Some(store) = &self.inner.store {
                        store.clear()?;
                    }
                }
                return Err(error);
            }
        };
        let kind = current.kind;
        let previous_subject = current.subject.clone();
        let mut next = self.session_from(reply, kind);
        // Refresh tokens rotate; the server may also keep the old one (then none is sent).
        if next.refresh_token.is_none() {
            next.refresh_token = session.as_mut().and_then(|s| s.refresh_token.take());
        }
        if next.subject != previous_subject {
            self.new_epoch();
        }
        let token = next.access_token.clone();
        self.save(&next)?;
        *session = Some(next);
        Ok(token)
    }

    /// A refresh grant; `invalid_grant` means the session is gone and becomes
    /// [`Error::LoginRequired`].
    async fn refresh_grant(
        &self,
        refresh_token: &str,
        trace: Option<&HeaderMap>,
    ) -> Result<TokenReply> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        match self.inner.wire.token(&form, trace.cloned()).await {
            Err(Error::OAuth(e)) if e.error == "invalid_grant" => {
                Err(Error::LoginRequired(Some(e)))
            }
            other => other,
        }
    }

    /// Installs the tokens of a login: a new session, an empty cache.
    async fn start_session(&self, reply: TokenReply, kind: SessionKind) -> Result<()> {
        let next = self.session_from(reply, kind);
        let mut session = self.inner.session.lock().await;
        self.new_epoch();
        self.save(&next)?;
        *session = Some(next);
        Ok(())
    }

    fn session_from(&self, reply: TokenReply, kind: SessionKind) -> Session {
        let lifetime = Duration::from_secs(reply.expires_in);
        // The token comes straight from the token endpoint over the connection we opened, so
        // its subject can be read without verification (OpenID Connect Core §3.1.3.7 makes
        // the same allowance for ID tokens); it only decides whether the user changed.
        let subject = cambio_jose::peek_unverified(&reply.access_token, 64 * 1024)
            .ok()
            .and_then(|(_, claims)| claims.get("sub")?.as_str().map(str::to_owned));
        Session {
            renew_at: Instant::now() + lifetime.saturating_sub(self.inner.margin.of(lifetime)),
            access_token: reply.access_token,
            refresh_token: reply.refresh_token,
            subject,
            kind,
        }
    }

    fn save(&self, session: &Session) -> Result<()> {
        if let (Some(store), Some(refresh)) = (&self.inner.store, &session.refresh_token) {
            let mut record = StoredSession::new(self.issuer(), self.client_id(), refresh);
            if let Some(dpop) = self.inner.wire.dpop() {
                record = record.with_dpop_key(&dpop.key);
            }
            store.save(&record)?;
        }
        Ok(())
    }

    /// Starts a new cache generation: nothing cached before is returned again.
    fn new_epoch(&self) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.cache.invalidate_all();
    }

    /// One RFC 8693 exchange of the internal access token; retried once with a refreshed
    /// token if the server refuses the subject token (revoked, or expired meanwhile).
    async fn fetch(&self, key: &CacheKey, trace: HeaderMap) -> Result<ExchangedToken> {
        let mut force_refresh = false;
        loop {
            let subject = self.subject_token(force_refresh, Some(&trace)).await?;
            let mut form = vec![
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", subject.as_str()),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("audience", key.audience.as_str()),
            ];
            if let Some(scope) = &key.scope {
                form.push(("scope", scope));
            }
            if let Some(requested) = &key.requested_token_type {
                form.push(("requested_token_type", requested));
            }
            match self.inner.wire.token(&form, Some(trace.clone())).await {
                Ok(reply) => {
                    return Ok(ExchangedToken::new(
                        // The exchanged token is the app's to use: it leaves the wiping wrapper.
                        reply.access_token.to_string(),
                        reply.token_type.unwrap_or_else(|| "Bearer".into()),
                        reply
                            .issued_token_type
                            .unwrap_or_else(|| ACCESS_TOKEN_TYPE.into()),
                        reply.scope.unwrap_or_default(),
                        Duration::from_secs(reply.expires_in),
                        &self.inner.margin,
                    ));
                }
                Err(Error::OAuth(e)) if !force_refresh && subject_refused(&e) => {
                    force_refresh = true;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn verify(&self, token: &str) -> Result<Claims> {
        let issuer = self.issuer().to_owned();
        let check = |keys: &[VerifyingKey]| {
            let validation = Validation {
                issuer: Some(&issuer),
                audience: AudienceRule::Skip,
                typ: TypRule::Exactly("at+jwt"),
                ..Validation::new(http::unix_now())
            };
            cambio_jose::verify(token, keys, &validation).map(|jwt| jwt.into_claims())
        };
        let keys = self.keys(false).await?;
        match check(&keys) {
            // The realm may have rotated its keys since they were fetched.
            Err(JwtError::KeyNotFound) => Ok(check(&self.keys(true).await?)?),
            other => Ok(other?),
        }
    }

    async fn keys(&self, refetch: bool) -> Result<Arc<Vec<VerifyingKey>>> {
        let mut keys = self.inner.keys.lock().await;
        if let Some(current) = keys.as_ref().filter(|_| !refetch) {
            return Ok(current.clone());
        }
        let fetched = Arc::new(self.inner.wire.jwks().await?);
        *keys = Some(fetched.clone());
        Ok(fetched)
    }

    pub(crate) fn wire(&self) -> &Wire {
        &self.inner.wire
    }

    pub(crate) async fn start_user_session(&self, reply: TokenReply) -> Result<()> {
        self.start_session(reply, SessionKind::User).await
    }
}

/// Whether an exchange failed because the subject token is no longer accepted (Keycloak and
/// Cambio answer `invalid_request` "Invalid token"; others `invalid_grant`/`invalid_token`).
fn subject_refused(error: &OAuthError) -> bool {
    match error.error.as_str() {
        "invalid_grant" | "invalid_token" => true,
        "invalid_request" => error.error_description.as_deref() == Some("Invalid token"),
        _ => false,
    }
}

fn trace_headers(trace_parent: Option<&str>, trace_state: Option<&str>) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for (name, value) in [("traceparent", trace_parent), ("tracestate", trace_state)] {
        if let Some(value) = value {
            let value = HeaderValue::from_str(value)
                .map_err(|_| Error::InvalidRequest(format!("{name} is not a valid header")))?;
            headers.insert(name, value);
        }
    }
    Ok(headers)
}

/// Cache entries leave the cache when their token expires; before that, `fresh` decides
/// whether they are handed out.
struct UntilExpiry;

impl moka::Expiry<CacheKey, ExchangedToken> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &ExchangedToken,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.time_to_expiry())
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        value: &ExchangedToken,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.time_to_expiry())
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("issuer", &self.issuer())
            .field("client_id", &self.client_id())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.client_id(), self.issuer())
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}
