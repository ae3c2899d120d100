//! Identity chaining at the token endpoint (draft-ietf-oauth-identity-chaining): a token
//! exchange asking for `urn:ietf:params:oauth:token-type:jwt` whose `audience` (a client id) or
//! `resource` (its identifier) names a client standing for a trusted foreign authorization
//! server gets a JWT authorization grant for it, decided by `cambio_core::chaining`. The other
//! domain redeems it with the RFC 7523 JWT bearer grant (at Cambio, through an identity
//! provider registered for this realm's issuer).

use std::sync::Arc;

use cambio_core::OAuthError;
use cambio_core::chaining::{self, ChainingRequest};
use cambio_core::dpop::AcceptedProof;
use cambio_core::exchange::{TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT};
use cambio_core::form::FormParams;
use cambio_core::model::Client;
use cambio_proto::TokenResponse;

use crate::audit::Event;
use crate::common;
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::state::{AppState, RealmRuntime};

/// The foreign authorization server a token exchange asks a grant for, if it does: the
/// requested type is a JWT and `audience` or `resource` names such a server.
pub fn target(rt: &RealmRuntime, form: &FormParams) -> Option<Arc<Client>> {
    if form.get("requested_token_type") != Some(TOKEN_TYPE_JWT) {
        return None;
    }
    let by_audience = form
        .all("audience")
        .filter_map(|a| rt.snapshot.client_by_client_id(a));
    let by_resource = form.all("resource").filter_map(|r| {
        rt.snapshot
            .clients()
            .find(|c| chaining::authorization_server(c) == Some(r))
    });
    by_audience
        .chain(by_resource)
        .find(|c| c.enabled && chaining::authorization_server(c).is_some())
        .cloned()
}

/// Answers a grant request from `client` for `target`.
#[allow(clippy::too_many_arguments)]
pub async fn exchange(
    app: &AppState,
    rt: &RealmRuntime,
    client: &Client,
    target: &Client,
    form: &FormParams,
    proof: Option<&AcceptedProof>,
    now: u64,
    event: &mut Event,
) -> ApiResult<TokenResponse> {
    // One domain per grant: the draft recommends a single `aud`, so that the receiving server
    // cannot carry the grant on to a third domain.
    if form.all("audience").count() + form.all("resource").count() > 1 {
        return Err(OAuthError::invalid_request(
            "An authorization grant is for one authorization server",
        )
        .into());
    }
    if form.get("actor_token").is_some() {
        return Err(OAuthError::invalid_request(
            "actor_token is not part of an authorization grant request",
        )
        .into());
    }
    let subject_token = form.require("subject_token")?;
    if form.get("subject_token_type") != Some(TOKEN_TYPE_ACCESS) {
        return Err(OAuthError::invalid_request(
            "An authorization grant is made from an access token of this realm",
        )
        .into());
    }
    let live = common::live_subject_token(app, rt, subject_token, proof, now).await?;
    let jti = random::uuid();
    let grant = chaining::decide(&ChainingRequest {
        issuer: rt.issuer(),
        requester: client,
        target,
        subject: &live.token.claims,
        scope: form.get("scope"),
        now,
        jti: &jti,
    })?;
    event.user_id = Some(live.token.claims.sub.clone());
    event.session_id = live.token.claims.sid.clone();
    event.details.insert("audience", target.client_id.clone());
    event
        .details
        .insert("requested_token_type", TOKEN_TYPE_JWT.to_owned());
    let expires_in = grant
        .get("exp")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(now)
        .saturating_sub(now);
    let scope = grant
        .get("scope")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .to_owned();
    // A plain JWT (RFC 7523 §3): neither an access token's `at+jwt` nor a Txn-Token's type.
    let token = rt
        .signer
        .sign("JWT", &grant)
        .map_err(|_| ApiError::Unavailable)?;
    Ok(TokenResponse {
        access_token: token,
        expires_in,
        token_type: "N_A".into(),
        scope,
        issued_token_type: Some(TOKEN_TYPE_JWT.into()),
        refresh_expires_in: Some(0),
        ..Default::default()
    })
}
