//! `POST /admin/realms/{realm}/cambio/exchange-preview`: what a token exchange would issue, or
//! the exact refusal and the rule behind it, without signing or storing anything.
//!
//! The preview runs the token endpoint's own steps in the same order: the requester's state
//! (enabled, not bearer-only), [`ExchangeParams::parse`] on the same form, the subject token's
//! one liveness check ([`live_access_token`]), the same check of a pasted actor token
//! (delegation: `decide` builds the `act` claim and applies `may_act` as the token endpoint
//! does), and [`exchange::decide`]. Only client
//! authentication is assumed to have passed. The subject is either a pasted access token of
//! this realm, which must verify and be good now, or a user, for whom the token a login
//! through a given client would carry is computed by [`grants::login`].
//!
//! Authorization: the caller needs `view-clients` and `view-users` in the realm, because the
//! answer shows client configuration and a user's roles and claims. The answer holds claims
//! only, never a signed token, so a preview can never be used as a credential.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cambio_core::OAuthError;
use cambio_core::exchange::{
    self, ExchangeInput, ExchangeParams, PermissionModel, TOKEN_TYPE_ACCESS,
};
use cambio_core::form::FormParams;
use cambio_core::grants::{self, Ids, Login};
use cambio_core::scope::GrantedScope;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Need, caller, forbidden, parse_json, realm_or_404};
use crate::common::live_access_token;
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::routes::external;
use crate::state::AppState;

/// The question: who asks for what, on behalf of whom.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewRequest {
    /// The requester's `client_id`.
    requester: String,
    /// A user of the realm, whose login token is computed.
    user_id: Option<String>,
    /// The client the user's login went through (default: the requester).
    subject_client: Option<String>,
    /// The scope of that login.
    subject_scope: Option<String>,
    /// Or a real access token of this realm, or an external provider's token.
    subject_token: Option<String>,
    /// The provider alias of an external subject token (`subject_issuer`).
    subject_issuer: Option<String>,
    /// `subject_token_type` as the token endpoint would receive it (default: access token).
    subject_token_type: Option<String>,
    /// An access token of this realm naming who acts for the subject (delegation, RFC 8693
    /// §1.1): `actor_token`. It must be a real token, good now, as at the token endpoint.
    actor_token: Option<String>,
    /// `actor_token_type` (default, when `actorToken` is given: access token).
    actor_token_type: Option<String>,
    #[serde(default)]
    audience: Vec<String>,
    scope: Option<String>,
    requested_token_type: Option<String>,
}

/// Where along the token endpoint's steps a refusal happened.
#[derive(Debug, Clone, Copy)]
pub(super) enum Stage {
    Requester,
    Parameters,
    Subject,
    Actor,
    Decision,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Requester => "requester",
            Stage::Parameters => "parameters",
            Stage::Subject => "subject",
            Stage::Actor => "actor",
            Stage::Decision => "decision",
        }
    }
}

pub(super) struct Refusal {
    pub(super) stage: Stage,
    pub(super) error: OAuthError,
    /// Why an external token did not verify: what the token endpoint writes only into its
    /// audit event (`token_error`), shown here to an administrator who may read events too.
    pub(super) detail: Option<String>,
}

pub(super) fn at(stage: Stage) -> impl Fn(OAuthError) -> Refusal {
    move |error| Refusal {
        stage,
        error,
        detail: None,
    }
}

pub async fn preview(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let admin = caller(&app, &headers, &realm).await?;
    if !(admin.may(Need::ViewClients) && admin.may(Need::ViewUsers)) {
        return Err(forbidden());
    }
    let rt = realm_or_404(&app, &realm)?;
    let request: PreviewRequest = parse_json(&body)?;
    let answer = match (&request.user_id, &request.subject_token) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(super::bad_request(
                "Give either userId or subjectToken, not both",
            ));
        }
        (Some(_), None) if request.subject_issuer.is_some() => {
            return Err(super::bad_request(
                "subjectIssuer names the provider of a pasted subjectToken",
            ));
        }
        // An external token shows how a provider's settings map it: those are realm settings.
        (None, Some(_)) if request.subject_issuer.is_some() && !admin.may(Need::ViewRealm) => {
            return Err(forbidden());
        }
        _ => run(&app, &rt, &request).await?,
    };
    let body = match answer {
        Ok(outcome) => outcome,
        Err(Refusal {
            stage,
            error,
            detail,
        }) => {
            let status = match error.code {
                cambio_core::ErrorCode::AccessDenied => 403,
                _ => 400,
            };
            json!({
                "outcome": "refused",
                "stage": stage.as_str(),
                "status": status,
                "error": error.code.as_str(),
                "error_description": error.description,
                "rule": rule(&error.description),
                "detail": detail,
            })
        }
    };
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The token endpoint's steps for a token exchange, up to the decision.
async fn run(
    app: &AppState,
    rt: &crate::state::RealmRuntime,
    request: &PreviewRequest,
) -> ApiResult<Result<Value, Refusal>> {
    let snapshot = &rt.snapshot;
    let not_found = |what: &str| ApiError::Admin {
        status: StatusCode::NOT_FOUND,
        message: format!("{what} not found"),
    };
    let requester = snapshot
        .client_by_client_id(&request.requester)
        .cloned()
        .ok_or_else(|| not_found("Requester client"))?;
    // What client authentication and the token endpoint answer for such a requester.
    if !requester.enabled {
        return Ok(Err(at(Stage::Requester)(OAuthError::invalid_client(
            "Invalid client or Invalid client credentials",
        ))));
    }
    if requester.bearer_only {
        return Ok(Err(at(Stage::Requester)(OAuthError::unauthorized_client(
            "Bearer-only clients cannot request tokens",
        ))));
    }
    // The same form the token endpoint would parse. A user's token is computed below, so its
    // place in the form holds a stand-in that only the length check sees.
    let form = match FormParams::parse(token_form(request).as_bytes()) {
        Ok(form) => form,
        Err(error) => return Ok(Err(at(Stage::Parameters)(error))),
    };
    // The token endpoint's own switch between our tokens and external providers' tokens.
    if request.subject_token.is_some() && external::is_external_exchange(rt, &form) {
        return super::preview_external::run(app, rt, &requester, &form).await;
    }
    let params = match ExchangeParams::parse(&form, &requester, snapshot) {
        Ok(params) => params,
        Err(error) => return Ok(Err(at(Stage::Parameters)(error))),
    };
    let now = random::now();
    let (subject, user) = match &request.subject_token {
        Some(token) => match live_access_token(app, rt, token, now).await? {
            Some(live) => (live.token, live.user),
            None => {
                return Ok(Err(at(Stage::Subject)(OAuthError::invalid_request(
                    "Invalid token",
                ))));
            }
        },
        None => {
            let user_id = request.user_id.as_deref().unwrap_or_default();
            let user = app
                .user(rt.id(), user_id)
                .await?
                .ok_or_else(|| not_found("User"))?;
            let subject_client = match &request.subject_client {
                Some(id) => snapshot
                    .client_by_client_id(id)
                    .cloned()
                    .ok_or_else(|| not_found("Subject client"))?,
                None => requester.clone(),
            };
            let login =
                GrantedScope::resolve(snapshot, &subject_client, request.subject_scope.as_deref())
                    .and_then(|scope| {
                        let (access_jti, id_jti) = random::uuid_pair();
                        grants::login(
                            snapshot,
                            Login {
                                client: &subject_client,
                                user: &user,
                                scope: &scope,
                                session_id: "preview-session",
                                nonce: None,
                                auth_time: now,
                                resources: None,
                                now,
                            },
                            Ids { access_jti, id_jti },
                        )
                    });
            match login {
                Ok(issued) => (exchange::ActiveToken::from(issued.access), user),
                Err(error) => return Ok(Err(at(Stage::Subject)(error))),
            }
        }
    };
    // The actor token passes the same liveness check as at the token endpoint.
    let actor = match params.actor_token {
        Some(token) => match live_access_token(app, rt, token, now).await? {
            Some(live) => Some(live.token),
            None => {
                return Ok(Err(at(Stage::Actor)(OAuthError::invalid_request(
                    "Invalid actor token",
                ))));
            }
        },
        None => None,
    };
    let (access_jti, id_jti) = random::uuid_pair();
    let decision = exchange::decide(ExchangeInput {
        realm: snapshot,
        requester: &requester,
        params: &params,
        subject: &subject,
        subject_user: &user,
        actor: actor.as_ref(),
        // A preview carries no DPoP proof: a bound subject token is refused as the token
        // endpoint refuses it without one.
        proof: None,
        now,
        access_jti,
        id_jti,
    });
    let decision = match decision {
        Ok(decision) => decision,
        Err(error) => return Ok(Err(at(Stage::Decision)(error))),
    };
    // A refresh token joins the subject's session; the token endpoint refuses when it is gone.
    if decision.issued.refresh.is_some()
        && request.subject_token.is_some()
        && let Some(sid) = &subject.claims.sid
        && app.store.get_session(sid).await?.is_none()
    {
        return Ok(Err(at(Stage::Decision)(OAuthError::invalid_request(
            "Refresh token not valid as requested_token_type because creating a new session is needed",
        ))));
    }
    let issued = decision.issued;
    Ok(Ok(json!({
        "outcome": "issued",
        "permissionModel": match params.mode {
            PermissionModel::Standard => json!({"kind": "standard"}),
            PermissionModel::Legacy { target } => json!({"kind": "legacy", "target": target}),
        },
        "issued_token_type": decision.issued_token_type.urn(),
        "scope": issued.scope,
        "expires_in": issued.expires_in,
        "refreshToken": issued.refresh.as_ref().map(|plan| json!({
            "lifetime": plan.lifetime,
            "scope": plan.scope,
        })),
        "accessToken": issued.access,
        "idToken": issued.id_token,
        "subject": &*subject.claims,
    })))
}

/// The form body the token endpoint would receive for this question.
fn token_form(request: &PreviewRequest) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", exchange::GRANT_TYPE);
    form.append_pair(
        "subject_token",
        request.subject_token.as_deref().unwrap_or("preview"),
    );
    form.append_pair(
        "subject_token_type",
        request
            .subject_token_type
            .as_deref()
            .unwrap_or(TOKEN_TYPE_ACCESS),
    );
    if let Some(actor) = &request.actor_token {
        form.append_pair("actor_token", actor);
        form.append_pair(
            "actor_token_type",
            request
                .actor_token_type
                .as_deref()
                .unwrap_or(TOKEN_TYPE_ACCESS),
        );
    } else if let Some(kind) = &request.actor_token_type {
        form.append_pair("actor_token_type", kind);
    }
    if let Some(alias) = &request.subject_issuer {
        form.append_pair("subject_issuer", alias);
    }
    for audience in &request.audience {
        form.append_pair("audience", audience);
    }
    if let Some(scope) = &request.scope {
        form.append_pair("scope", scope);
    }
    if let Some(requested) = &request.requested_token_type {
        form.append_pair("requested_token_type", requested);
    }
    form.finish()
}

/// The rule behind a refusal, in words an administrator can act on. The descriptions are the
/// ones the token endpoint answers; an unknown one gets no explanation rather than a guess.
fn rule(description: &str) -> &'static str {
    const RULES: &[(&str, &str)] = &[
        (
            "Standard token exchange is not enabled",
            "Standard token exchange (V2) is off for the requester, and no token-exchange \
             permission (V1) exists on the target.",
        ),
        (
            "Public client is not allowed to exchange",
            "A public client may exchange only under a token-exchange permission (V1).",
        ),
        (
            "Client is not within the token audience",
            "Standard token exchange (V2): the requester must be in the subject token's aud \
             (an audience mapper on the subject's client) or be the client it was issued to.",
        ),
        (
            "Client not allowed to exchange",
            "Fine-grained permissions (V1): the target's token-exchange permission has no \
             policy that names the requester.",
        ),
        (
            "Client is not the holder of the token",
            "A public requester may exchange only tokens that were issued to it.",
        ),
        (
            "Requested audience not available",
            "The audience is not a client whose roles or audience mappers the user and the \
             requester's scope can reach.",
        ),
        (
            "Invalid token",
            "The subject token does not verify, has expired, was revoked, or its user or \
             client is disabled.",
        ),
        (
            "requested_token_type unsupported",
            "A refresh token needs \"Allow refresh token in standard token exchange\" set to \
             Same session on the requester.",
        ),
        (
            "creating a new session is needed",
            "A refresh token can only join the subject token's online session.",
        ),
        (
            "Invalid scopes",
            "A requested scope is not a default or optional client scope of the requester, \
             or the subject token lacks it.",
        ),
        (
            "Bearer-only clients",
            "Bearer-only clients cannot request tokens.",
        ),
        ("Invalid client", "The requester is disabled."),
        (
            "Invalid actor token",
            "The actor token does not verify in this realm, has expired, was revoked, or its \
             user or client is disabled.",
        ),
        (
            "actor_token was not issued to the requesting client",
            "Delegation: the actor token must have been issued to the requester itself (its \
             azp), so a client can only name itself as the actor.",
        ),
        (
            "Actor is not allowed to act for the subject",
            "Delegation: the subject token's may_act claim names another actor (sub, and \
             client_id when given).",
        ),
        (
            "actor_token is required",
            "Delegation: the subject token carries may_act, so it can only be exchanged by \
             the actor it names, with that actor's token.",
        ),
        (
            "actor_token_type",
            "An actor token is an access token of this realm \
             (urn:ietf:params:oauth:token-type:access_token).",
        ),
    ];
    RULES
        .iter()
        .find(|(needle, _)| description.contains(needle))
        .map(|(_, rule)| *rule)
        .unwrap_or("")
}
