//! Txn-Token requests at the token endpoint (a token exchange asking for
//! `urn:ietf:params:oauth:token-type:txn_token`, draft-ietf-oauth-transaction-tokens-10): the
//! subject read as the request names it (a live access token of the realm, a token of a
//! registered identity provider, or a Txn-Token of the realm's trust domain to replace), the decision in `cambio_core::txn_token`, and the
//! answer, `token_type` `N_A` and never a refresh token.

use cambio_core::OAuthError;
use cambio_core::dpop::AcceptedProof;
use cambio_core::exchange::{
    MAX_SUBJECT_TOKEN_BYTES, TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT, TOKEN_TYPE_REFRESH,
};
use cambio_core::form::FormParams;
use cambio_core::model::Client;
use cambio_core::txn_token::{
    self, TXN_TOKEN_TYP, TXN_TOKEN_TYPE, TxnRequest, TxnSubject, TxnTokenClaims,
};
use cambio_jose::{AudienceRule, TypRule, Validation};
use cambio_proto::TokenResponse;

use crate::audit::Event;
use crate::common::{self, LEEWAY};
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::routes::external::ExternalGrant;
use crate::state::{AppState, RealmRuntime};

const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// Whether a token exchange asks for a Txn-Token.
pub fn is_requested(form: &FormParams) -> bool {
    form.get("requested_token_type") == Some(TXN_TOKEN_TYPE)
}

/// A Txn-Token of this realm's trust domain, signed by the realm and unexpired; None for
/// anything else (an access token included: the types never stand in for each other).
pub fn verify(rt: &RealmRuntime, token: &str, now: u64) -> Option<TxnTokenClaims> {
    let domain = txn_token::trust_domain(&rt.snapshot)?;
    let audiences = [domain];
    let validation = Validation {
        now,
        leeway: LEEWAY,
        issuer: Some(rt.issuer()),
        audience: AudienceRule::SingleOf(&audiences),
        typ: TypRule::Exactly(TXN_TOKEN_TYP),
        require_exp: true,
        max_token_bytes: MAX_SUBJECT_TOKEN_BYTES,
    };
    cambio_jose::verify_as::<TxnTokenClaims>(token, rt.verifiers.as_slice(), &validation)
        .ok()
        .map(|verified| verified.into_claims())
}

/// Answers a Txn-Token request from `client`.
pub async fn exchange(
    app: &AppState,
    rt: &RealmRuntime,
    client: &Client,
    form: &FormParams,
    proof: Option<&AcceptedProof>,
    now: u64,
    event: &mut Event,
) -> ApiResult<TokenResponse> {
    if form.get("actor_token").is_some() {
        return Err(OAuthError::invalid_request(
            "actor_token is not part of a transaction token request",
        )
        .into());
    }
    let subject_token = form.require("subject_token")?;
    let subject_type = form.require("subject_token_type")?;
    let invalid = || OAuthError::invalid_request("Invalid token");
    let live;
    let held;
    let foreign;
    let external_scope;
    let external_type = subject_type == TOKEN_TYPE_JWT
        || (subject_type == TOKEN_TYPE_ACCESS
            && crate::routes::external::is_external_exchange(rt, form));
    let subject = match subject_type {
        // A token of a registered identity provider: its user as the provider maps it, and
        // the purpose within the token's own `scope` (none is read as none, never as all).
        _ if external_type => {
            foreign = crate::routes::external::external_subject(
                app,
                rt,
                client,
                form,
                ExternalGrant::TokenExchange,
                TOKEN_EXCHANGE_GRANT,
                subject_token,
                now,
                event,
            )
            .await?;
            external_scope = foreign
                .verified
                .claims()
                .get("scope")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_owned();
            TxnSubject::AccessToken {
                sub: &foreign.user.id,
                scope: &external_scope,
                exp: foreign.external.expires_at,
            }
        }
        TOKEN_TYPE_ACCESS => {
            live = common::live_subject_token(app, rt, subject_token, proof, now).await?;
            let claims = &live.token.claims;
            TxnSubject::AccessToken {
                sub: &claims.sub,
                scope: &claims.scope,
                exp: claims.exp,
            }
        }
        TXN_TOKEN_TYPE => {
            held = verify(rt, subject_token, now).ok_or_else(invalid)?;
            // The transaction's user must still be there and enabled.
            common::live_user(app, rt, &held.sub)
                .await?
                .ok_or_else(invalid)?;
            TxnSubject::TxnToken(&held)
        }
        TOKEN_TYPE_REFRESH => {
            return Err(OAuthError::invalid_request(
                "A refresh token cannot be the subject of a transaction token",
            )
            .into());
        }
        _ => {
            return Err(OAuthError::invalid_request(
                "subject_token_type unsupported for transaction tokens",
            )
            .into());
        }
    };
    let new_txn = random::uuid();
    let claims = txn_token::decide(&TxnRequest {
        realm: &rt.snapshot,
        requester: client,
        audience: form.get("audience"),
        scope: form.get("scope"),
        request_context: form.get("request_context"),
        request_details: form.get("request_details"),
        subject,
        now,
        new_txn: &new_txn,
    })?;
    event.user_id = Some(claims.sub.clone());
    event.details.insert("txn", claims.txn.clone());
    event
        .details
        .insert("requested_token_type", TXN_TOKEN_TYPE.to_owned());
    let token = rt
        .signer
        .sign(TXN_TOKEN_TYP, &claims)
        .map_err(|_| ApiError::Unavailable)?;
    Ok(TokenResponse {
        access_token: token,
        expires_in: claims.exp.saturating_sub(now),
        // Draft §7.5: `N_A`, the token in `access_token`, and never a refresh token.
        token_type: "N_A".into(),
        scope: claims.scope,
        issued_token_type: Some(TXN_TOKEN_TYPE.into()),
        refresh_expires_in: Some(0),
        ..Default::default()
    })
}
