//! Reading Txn-Tokens in a workload (draft-ietf-oauth-transaction-tokens-10 §8): a service
//! that receives a `Txn-Token` header verifies it against its trust domain's Transaction Token
//! Service (a Cambio realm) and reads the transaction's context in one call.
//!
//! ```no_run
//! use cambio_client::TxnTokenVerifier;
//!
//! # async fn run(header_value: &str) -> Result<(), cambio_client::Error> {
//! let verifier = TxnTokenVerifier::new("https://sso.example/realms/shop", "trust.example").await?;
//! let txn = verifier.verify(header_value).await?;
//! println!("{} for {} ({}), asked by {}", txn.txn, txn.sub, txn.scope, txn.req_wl);
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use cambio_jose::{AudienceRule, JwtError, TypRule, Validation, VerifyingKey};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::http::{self, Wire};

/// The JWT `typ` of a Txn-Token; access tokens (`at+jwt`) never pass as one.
const TXN_TOKEN_TYP: &str = "txntoken+jwt";
/// The least time between two fetches of the keys caused by an unknown `kid`: forged tokens
/// naming made-up keys cannot make the verifier hammer the service.
const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// What a verified Txn-Token says about its transaction.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TxnContext {
    /// The transaction, the same for every token of one call chain.
    pub txn: String,
    /// Its principal, unique within the trust domain.
    pub sub: String,
    /// Its purpose (space-separated).
    pub scope: String,
    /// The transaction's immutable details.
    #[serde(default)]
    pub tctx: Map<String, Value>,
    /// The environment of the request that started it.
    #[serde(default)]
    pub rctx: Map<String, Value>,
    /// The workload that requested this token.
    pub req_wl: String,
    /// The workloads that requested the earlier tokens of the transaction, first first.
    #[serde(default)]
    pub req_wl_chain: Vec<String>,
    /// When the token was issued (seconds since the epoch).
    pub iat: u64,
    /// When it expires; a workload should not start work it cannot finish by then.
    pub exp: u64,
}

/// Verifies Txn-Tokens of one trust domain: the signature by the service's keys (fetched
/// once and kept; fetched again when a token names an unknown key, at most every 30 s), the
/// type, the issuer, the audience (the trust domain) and the times.
#[derive(Debug)]
pub struct TxnTokenVerifier {
    http: reqwest::Client,
    issuer: String,
    jwks_uri: String,
    trust_domain: String,
    keys: tokio::sync::Mutex<Option<(Arc<Vec<VerifyingKey>>, Instant)>>,
}

impl TxnTokenVerifier {
    /// A verifier for the Txn-Tokens that the realm at `issuer` issues for `trust_domain`.
    /// The realm's discovery document is read here (HTTPS, or plain HTTP on loopback).
    ///
    /// # Errors
    /// [`Error::Config`] for an unusable issuer or discovery document; [`Error::Http`].
    pub async fn new(issuer: &str, trust_domain: &str) -> Result<TxnTokenVerifier> {
        if trust_domain.trim().is_empty() {
            return Err(Error::Config("the trust domain is empty".into()));
        }
        let http = http::http_client(Duration::from_secs(10), http::is_plain_loopback(issuer))?;
        let endpoints = Wire::discover(&http, issuer).await?;
        Ok(TxnTokenVerifier {
            http,
            issuer: endpoints.issuer,
            jwks_uri: endpoints.jwks,
            trust_domain: trust_domain.to_owned(),
            keys: tokio::sync::Mutex::new(None),
        })
    }

    /// Verifies `token` (the value of a `Txn-Token` header) and returns its context.
    ///
    /// # Errors
    /// [`Error::Jwt`] when it is not a valid Txn-Token of this trust domain now (an access
    /// token included); [`Error::Http`] or [`Error::Protocol`] when the keys cannot be had.
    pub async fn verify(&self, token: &str) -> Result<TxnContext> {
        match self.check(token, &self.keys(false).await?) {
            // The service may have rotated its keys since they were fetched.
            Err(Error::Jwt(JwtError::KeyNotFound)) => self.check(token, &self.keys(true).await?),
            other => other,
        }
    }

    fn check(&self, token: &str, keys: &[VerifyingKey]) -> Result<TxnContext> {
        let audiences = [self.trust_domain.as_str()];
        let validation = Validation {
            issuer: Some(&self.issuer),
            audience: AudienceRule::SingleOf(&audiences),
            typ: TypRule::Exactly(TXN_TOKEN_TYP),
            ..Validation::new(http::unix_now())
        };
        let verified = cambio_jose::verify_as::<TxnContext>(token, keys, &validation)?;
        Ok(verified.into_claims())
    }

    async fn keys(&self, unknown_kid: bool) -> Result<Arc<Vec<VerifyingKey>>> {
        let mut keys = self.keys.lock().await;
        if let Some((current, fetched_at)) = keys.as_ref()
            && (!unknown_kid || fetched_at.elapsed() < REFETCH_INTERVAL)
        {
            return Ok(current.clone());
        }
        let fetched = Arc::new(http::fetch_jwks(&self.http, &self.jwks_uri).await?);
        *keys = Some((fetched.clone(), Instant::now()));
        Ok(fetched)
    }
}
