//! DPoP (RFC 9449) at the edge: the `DPoP` header read, its proof verified (`cambio_jose`)
//! and checked against the request (`cambio_core::dpop`), its `jti` used once across nodes
//! (the store's one-time values), and the `Authorization: DPoP` scheme of resource requests.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use cambio_core::OAuthError;
use cambio_core::dpop::{self, AcceptedProof, ProofContext};
use cambio_jose::Algorithm;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, RealmRuntime};

/// The algorithms a proof may be signed with (listed in discovery as
/// `dpop_signing_alg_values_supported`): every asymmetric algorithm Cambio verifies.
pub const ALGORITHMS: [Algorithm; 4] = [
    Algorithm::Es256,
    Algorithm::EdDsa,
    Algorithm::Ps256,
    Algorithm::Rs256,
];

/// The header carrying the proof.
const DPOP_HEADER: &str = "dpop";

/// The one-time-value context of proof `jti`s.
const JTI_CONTEXT: &str = "dpop-jti";

/// Verifies the request's DPoP proof, if it sent one: at most one `DPoP` header, a proof whose
/// signature verifies with its own key, made for this method and URL, recent, naming
/// `access_token` in `ath` when one is presented, and never seen before.
///
/// `path` is the request's path as the client sent it (before any router prefix was taken
/// off), so that the `/auth` alias and the canonical URLs each match their own proofs.
///
/// # Errors
/// `invalid_dpop_proof` for a proof that fails, a storage error for the replay check.
pub async fn request_proof(
    app: &AppState,
    realm: &RealmRuntime,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    now: u64,
    access_token: Option<&str>,
) -> ApiResult<Option<AcceptedProof>> {
    let mut values = headers.get_all(DPOP_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_dpop_proof("Only one DPoP header is allowed").into());
    }
    let text = value
        .to_str()
        .map_err(|_| OAuthError::invalid_dpop_proof("Invalid DPoP proof: not text"))?;
    let proof = cambio_jose::verify_dpop_proof(text, &ALGORITHMS)
        .map_err(|e| OAuthError::invalid_dpop_proof(format!("Invalid DPoP proof: {e}")))?;
    let url = format!("{}{path}", origin(&app.base_url));
    let hash = access_token.map(cambio_jose::access_token_hash);
    let accepted = dpop::check(
        &proof,
        &ProofContext {
            method,
            url: &url,
            now,
            access_token_hash: hash.as_deref(),
        },
    )?;
    if nonce_required(realm)
        && !accepted
            .nonce
            .as_deref()
            .is_some_and(|n| nonce_is_current(app, realm, n, now))
    {
        return Err(ApiError::DpopNonce {
            nonce: nonce(app, realm, now),
            at_resource: access_token.is_some(),
        });
    }
    // One use per proof, across nodes: keyed by the key as well, so that two clients cannot
    // collide on a `jti` they did not coordinate.
    let once = format!("{}:{}", accepted.jkt, accepted.jti);
    if !app
        .store
        .consume_once(JTI_CONTEXT, &once, accepted.remember_until)
        .await?
    {
        return Err(OAuthError::invalid_dpop_proof("DPoP proof has been used before").into());
    }
    Ok(Some(accepted))
}

/// How an access token was presented to a resource endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    Dpop,
}

/// The access token of an `Authorization: Bearer` or `Authorization: DPoP` header (one header,
/// a non-empty token).
pub fn presented_token(headers: &HeaderMap) -> Option<(Scheme, &str)> {
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return None;
    }
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return None;
    };
    Some((scheme, token.trim())).filter(|(_, t)| !t.is_empty())
}

/// Whether a verified access token may be used as it was presented (RFC 9449 §7): a bound
/// token only with the DPoP scheme and a proof by its key naming it; the DPoP scheme only for
/// a bound token. A bound token sent as a bearer token is refused, which is what makes a
/// stolen one worthless.
///
/// # Errors
/// [`ApiError::Dpop`] (401 with a `DPoP` challenge) saying what is wrong.
pub async fn check_resource_request(
    app: &AppState,
    realm: &RealmRuntime,
    headers: &HeaderMap,
    request: (&str, &str),
    now: u64,
    presented: (Scheme, &str),
    cnf: Option<&Value>,
) -> ApiResult<()> {
    let bound = dpop::bound_key(cnf);
    let (method, path) = request;
    let refuse = |error: &'static str, description: String| ApiError::Dpop { error, description };
    match (presented.0, bound) {
        (Scheme::Bearer, None) => Ok(()),
        (Scheme::Bearer, Some(_)) => Err(refuse(
            "invalid_token",
            "The token is DPoP-bound: present it with the DPoP scheme and a proof".into(),
        )),
        (Scheme::Dpop, None) => Err(refuse(
            "invalid_token",
            "The DPoP scheme is for DPoP-bound tokens".into(),
        )),
        (Scheme::Dpop, Some(bound)) => {
            let proof = request_proof(app, realm, headers, method, path, now, Some(presented.1))
                .await
                .map_err(|e| match e {
                    ApiError::OAuth(e) => refuse("invalid_dpop_proof", e.description.into_owned()),
                    other => other,
                })?
                .ok_or_else(|| refuse("invalid_dpop_proof", "DPoP proof is missing".into()))?;
            dpop::check_binding(Some(bound), Some(&proof.jkt))
                .map_err(|e| refuse("invalid_dpop_proof", e.description.into_owned()))
        }
    }
}

/// How long one nonce window lasts; a nonce is accepted in its window and the next, so for one
/// to two windows.
const NONCE_WINDOW: u64 = 60;
/// The bytes of a nonce's MAC kept (128 bits).
const NONCE_TAG_BYTES: usize = 16;

/// Whether the realm makes every proof carry a server nonce (RFC 9449 §8).
pub fn nonce_required(realm: &RealmRuntime) -> bool {
    realm
        .snapshot
        .realm
        .attributes
        .get(dpop::REALM_REQUIRES_NONCE)
        .is_some_and(|v| v == "true")
}

/// The realm's current nonce: the time window and a MAC over it and the realm, so that any
/// node (they share the data-encryption key the MAC key comes from) can check it without
/// storing anything, and a nonce of one realm is worthless in another.
pub fn nonce(app: &AppState, realm: &RealmRuntime, now: u64) -> String {
    let window = now / NONCE_WINDOW;
    let tag = app.secrets.mac(&nonce_message(realm, window));
    let mut bytes = window.to_be_bytes().to_vec();
    bytes.extend_from_slice(&tag.as_ref()[..NONCE_TAG_BYTES]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn nonce_is_current(app: &AppState, realm: &RealmRuntime, nonce: &str, now: u64) -> bool {
    use base64::Engine as _;
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(nonce) else {
        return false;
    };
    let Some((window, tag)) = bytes.split_first_chunk::<8>() else {
        return false;
    };
    let window = u64::from_be_bytes(*window);
    let current = now / NONCE_WINDOW;
    let recent = window == current || window.saturating_add(1) == current;
    recent
        && tag.len() == NONCE_TAG_BYTES
        && truncated_mac_matches(app, &nonce_message(realm, window), tag)
}

/// Compares a truncated MAC in constant time.
fn truncated_mac_matches(app: &AppState, message: &[u8], tag: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    let full = app.secrets.mac(message);
    bool::from(full.as_ref()[..NONCE_TAG_BYTES].ct_eq(tag))
}

fn nonce_message(realm: &RealmRuntime, window: u64) -> Vec<u8> {
    format!("dpop-nonce:{}:{window}", realm.id()).into_bytes()
}

/// The scheme, host and port of the public base URL: request paths are appended to it to
/// rebuild the URL a client addressed.
fn origin(base_url: &str) -> String {
    url::Url::parse(base_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| base_url.trim_end_matches('/').to_owned())
}
