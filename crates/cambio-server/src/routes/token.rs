//! The token endpoint (RFC 6749 §3.2): every grant, token exchange included.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use cambio_core::OAuthError;
use cambio_core::dpop::{AcceptedProof, ExchangeBinding};
use cambio_core::exchange::{self, ExchangeInput, ExchangeParams, RequestedType};
use cambio_core::form::FormParams;
use cambio_core::grants::{self, CodeGrant, GrantType, Ids, Login, PresentedRefresh};
use cambio_core::issue::Issued;
use cambio_core::model::Client;
use cambio_core::scope::GrantedScope;
use cambio_core::tokens::{ACCESS_TOKEN_TYP, ID_TOKEN_TYP};
use cambio_proto::TokenResponse;
use cambio_store::{ClientSessionRecord, RefreshTokenRecord, RefreshTokenUse, SessionRecord};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::audit::Event;
use crate::common::{self, authenticate_client, read_form};
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::routes::external::{self, ExternalGrant};
use crate::state::{AppState, RealmRuntime};

pub async fn token(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // One span per token request; exported as an OpenTelemetry span when an exporter is
    // installed, continuing the caller's W3C trace. Its fields name the realm, the grant and
    // the outcome: never a token, secret or password.
    let span = tracing::info_span!(
        "token_request",
        otel.kind = "server",
        realm = %realm,
        grant = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    continue_trace(&span, &headers);
    token_inner(app, realm, peer, uri.path(), headers, body)
        .instrument(span)
        .await
}

/// Makes the caller's trace (`traceparent`, `tracestate`) the OpenTelemetry parent of `span`.
/// Without a trace header, or with no OpenTelemetry layer installed, nothing is done.
fn continue_trace(span: &tracing::Span, headers: &HeaderMap) {
    if span.is_disabled() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    // Fails only when no OpenTelemetry layer is installed: then there is nothing to continue.
    let _ = span.set_parent(parent);
}

/// Reads trace context headers for the OpenTelemetry propagator.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

async fn token_inner(
    app: Arc<AppState>,
    realm: String,
    peer: SocketAddr,
    path: &str,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(rt) = app.active_realm(&realm) else {
        return ApiError::NotFound("Realm does not exist").into_response();
    };
    let now = random::now();
    let started = std::time::Instant::now();
    let mut event = Event {
        realm_id: rt.id().to_owned(),
        event_type: "TOKEN_REQUEST",
        ip_address: Some(peer.ip().to_string()),
        ..Default::default()
    };
    // W3C trace context: a caller's trace id is kept with the audit event, so that a request
    // can be followed from the caller into Cambio.
    if let Some(trace_id) = trace_id(&headers) {
        event.details.insert("trace_id", trace_id);
    }
    let outcome = match common::limit_address(&app, peer) {
        Ok(()) => handle(&app, &rt, peer.ip(), path, &headers, body, now, &mut event).await,
        Err(limited) => Err(limited),
    };
    let outcome_label = match &outcome {
        Ok(_) => "success",
        Err(
            ApiError::OAuth(e)
            | ApiError::UserCredentials(e)
            | ApiError::ClientAuth { error: e, .. },
        ) => e.code.as_str(),
        Err(ApiError::Unavailable) => "temporarily_unavailable",
        Err(ApiError::TooManyRequests(_)) => "too_many_requests",
        Err(ApiError::DpopNonce { .. }) => "use_dpop_nonce",
        Err(_) => "invalid_request",
    };
    tracing::Span::current().record("outcome", outcome_label);
    app.metrics
        .count_token_request(rt.name(), event.event_type, outcome_label);
    app.metrics
        .observe_token_latency(event.event_type, started.elapsed().as_secs_f64());
    // A browser script may read the answer if it runs on one of the client's web origins.
    let cors = event
        .client_id
        .as_deref()
        .and_then(|id| rt.snapshot.client_by_client_id(id))
        .map(|client| crate::cors::CorsPolicy::Client(client.clone()));
    let response = match outcome {
        Ok(response) => {
            app.audit.record(event);
            let mut response = Json(response).into_response();
            let h = response.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            // The next nonce, so that a client keeps one without a refused request (§8.2).
            if crate::dpop::nonce_required(&rt)
                && let Ok(value) = HeaderValue::from_str(&crate::dpop::nonce(&app, &rt, now))
            {
                h.insert("dpop-nonce", value);
            }
            response
        }
        Err(error) => {
            event.event_type = error_type(event.event_type);
            event.error = Some(match &error {
                ApiError::OAuth(e)
                | ApiError::UserCredentials(e)
                | ApiError::ClientAuth { error: e, .. } => {
                    event.details.insert("reason", e.description.to_string());
                    e.code.as_str().to_owned()
                }
                ApiError::Unavailable => "temporarily_unavailable".to_owned(),
                ApiError::DpopNonce { .. } => "use_dpop_nonce".to_owned(),
                _ => "invalid_request".to_owned(),
            });
            app.audit.record(event);
            error.into_response()
        }
    };
    match cors {
        Some(policy) => crate::cors::allow(response, policy),
        None => response,
    }
}

/// The trace id of a valid `traceparent` header (`cambio_proto::trace::TraceParent`).
pub(crate) fn trace_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    let parent = cambio_proto::trace::TraceParent::parse(value).ok()?;
    Some(parent.trace_id().to_owned())
}

fn event_type(grant: GrantType) -> &'static str {
    match grant {
        GrantType::ClientCredentials => "CLIENT_LOGIN",
        GrantType::Password => "LOGIN",
        GrantType::RefreshToken => "REFRESH_TOKEN",
        GrantType::AuthorizationCode => "CODE_TO_TOKEN",
        GrantType::TokenExchange | GrantType::ExternalAlias => "TOKEN_EXCHANGE",
        GrantType::JwtBearer => "JWT_BEARER",
    }
}

fn error_type(event_type: &'static str) -> &'static str {
    match event_type {
        "CLIENT_LOGIN" => "CLIENT_LOGIN_ERROR",
        "LOGIN" => "LOGIN_ERROR",
        "REFRESH_TOKEN" => "REFRESH_TOKEN_ERROR",
        "CODE_TO_TOKEN" => "CODE_TO_TOKEN_ERROR",
        "TOKEN_EXCHANGE" => "TOKEN_EXCHANGE_ERROR",
        "JWT_BEARER" => "JWT_BEARER_ERROR",
        _ => "TOKEN_REQUEST_ERROR",
    }
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    app: &AppState,
    rt: &RealmRuntime,
    peer: std::net::IpAddr,
    path: &str,
    headers: &HeaderMap,
    body: Body,
    now: u64,
    event: &mut Event,
) -> ApiResult<TokenResponse> {
    let form = read_form(headers, body).await?;
    let grant_type = form.require("grant_type")?;
    let grant = GrantType::parse_in(grant_type, &rt.snapshot)?;
    event.event_type = event_type(grant);
    tracing::Span::current().record("grant", grant.as_str());
    event
        .details
        .insert("grant_type", grant_type.chars().take(128).collect());
    let client = match authenticate_client(app, rt, headers, &form, now).await {
        Ok(client) => client,
        Err(error) => {
            // Audit the failure under the client the request claimed to be. Only on this path:
            // a successful request does not decode its credentials a second time.
            event.client_id = claimed_client_id(headers, &form);
            return Err(error);
        }
    };
    event.client_id = Some(client.client_id.clone());
    if client.bearer_only {
        return Err(
            OAuthError::unauthorized_client("Bearer-only clients cannot request tokens").into(),
        );
    }
    // A DPoP proof binds what this request issues to the proof's key (RFC 9449 §5).
    let proof = crate::dpop::request_proof(app, rt, headers, "POST", path, now, None).await?;
    if proof.is_none() && client.attribute_is_true(cambio_core::dpop::CLIENT_REQUIRES_DPOP) {
        return Err(
            OAuthError::invalid_dpop_proof("DPoP proof is required for this client").into(),
        );
    }
    if let Some(proof) = &proof {
        event.details.insert("dpop_jkt", proof.jkt.clone());
    }
    let proof = proof.as_ref();
    if matches!(grant, GrantType::TokenExchange)
        && let Some(target) = crate::chaining::target(rt, &form)
    {
        return crate::chaining::exchange(app, rt, &client, &target, &form, proof, now, event)
            .await;
    }
    match grant {
        GrantType::ClientCredentials => {
            client_credentials(app, rt, &client, &form, proof, now, event).await
        }
        GrantType::Password => password(app, rt, peer, &client, &form, proof, now, event).await,
        GrantType::RefreshToken => refresh(app, rt, &client, &form, proof, now, event).await,
        GrantType::AuthorizationCode => {
            authorization_code(app, rt, &client, &form, proof, now, event).await
        }
        GrantType::TokenExchange if crate::txn_tokens::is_requested(&form) => {
            crate::txn_tokens::exchange(app, rt, &client, &form, proof, now, event).await
        }
        GrantType::TokenExchange if external::is_external_exchange(rt, &form) => {
            external::exchange(
                app,
                rt,
                &client,
                &form,
                ExternalGrant::TokenExchange,
                grant_type,
                proof,
                now,
                event,
            )
            .await
        }
        GrantType::TokenExchange => {
            token_exchange(app, rt, &client, &form, proof, now, event).await
        }
        GrantType::ExternalAlias => {
            external::exchange(
                app,
                rt,
                &client,
                &form,
                ExternalGrant::Alias,
                grant_type,
                proof,
                now,
                event,
            )
            .await
        }
        GrantType::JwtBearer => {
            external::exchange(
                app,
                rt,
                &client,
                &form,
                ExternalGrant::JwtBearer,
                grant_type,
                proof,
                now,
                event,
            )
            .await
        }
    }
}

/// The client id a request names, unverified (for audit events only), at most 64 characters.
fn claimed_client_id(headers: &HeaderMap, form: &FormParams) -> Option<String> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let presented = cambio_core::client_auth::Presented::extract(authorization, form).ok()??;
    let id = presented.claimed_client_id().ok()?;
    Some(id.chars().filter(|c| !c.is_control()).take(64).collect())
}

fn ids() -> Ids {
    let (access_jti, id_jti) = random::uuid_pair();
    Ids { access_jti, id_jti }
}

async fn client_credentials(
    app: &AppState,
    rt: &RealmRuntime,
    client: &Client,
    form: &FormParams,
    proof: Option<&AcceptedProof>,
    now: u64,
    event: &mut Event,
) -> ApiResult<TokenResponse> {
    let account = app.cached_service_account(rt.id(), client).await?;
    let Some(account) = account else {
        return Err(OAuthError::unauthorized_client(
            "Client not enabled to retrieve service account",
        )
        .into());
    };
    event.user_id = Some(account.id.clone());
    let resources = requested_resources(rt, form)?;
    let issued = grants::client_credentials(
        &rt.snapshot,
        client,
        &account,
        form.get("scope"),
        resources.as_deref(),
        now,
        ids(),
    )?;
    respond(app, rt, client, issued, None, None, proof, now).await
}

#[allow(clippy::too_many_arguments)]
async fn password(
    app: &AppState,
    rt: &RealmRuntime,
    peer: std::net::IpAddr,
    client: &Client,
    form: &FormParams,
    proof: Option<&AcceptedProof>,
    now: u64,
    event: &mut Event,
) -> ApiResult<TokenResponse> {
    grants::password_allowed(client)?;
    let username = form.require("username")?;
    let password = form.require("password")?;
    event
        .details
        .insert("username", username.chars().take(64).collect());
    let scope = GrantedScope::resolve(&rt.snapshot, client, form.get("scope"))?;
    let resources = requested_resources(rt, form)?;
    let Some(user) = common::check_password_login(app, rt.id(), peer, username, password).await?
    else {
        return Err(ApiError::UserCredentials(grants::invalid_user_credentials()));
    };
    event.user_id = Some(user.id.clone());
    let session = new_session(rt, client, &user.id, scope.offline(), now);
    app.store.insert_session(&session).await?;
    event.session_id = Some(session.id.clone());
    let issued = grants::login(
        &rt.snapshot,
        Login {
            client,
            user: &user,
            scope: &scope,
            session_id: &session.id,
            nonce: None,
            auth_time: now,
            resources: resources.as_deref(),
            now,
        },
        ids(),
    );
    let issued = match issued {
        Ok(issued) => issued,
        Err(refused) => {
            // The session was made for this login only: it goes with the refusal.
            end_session(app, &session.id, now).await?;
            return Err(refused.into());
        }
    };
    respond(app, rt, client, issued, Some(&session), None, proof, now).await
}

/// The clients the request's RFC 8707 `resource` parameters stand for, if it names any.
fn requested_resources(rt: &RealmRuntime, form: &FormParams) -> ApiResult<Option<Vec<String>>> {
    let resources: Vec<&str> = form.all("resource").collect();
    if resources.is_empty() {
        return Ok(None);
    }
    let targets = cambio_core::resource::targets(&rt.snapshot, &resources, Vec::new())?;
    Ok(Some(targets.into_iter().map(str::to_owned).collect()))
}

/// A new user session for a login.
pub fn new_session(
    rt: &RealmRuntime,
    client: &Client,
    user_id: &str,
    offline: bool,
    now: u64,
) -> SessionRecord {
    let realm = &rt.snapshot.realm;
    let lifetime = if offline {
        realm
            .offline_session_idle_timeout
            .max(realm.sso_session_max_lifespan)
    } else {
        realm.sso_session_max_lifespan
    };
    SessionRecord {
        id: random::uuid(),
        realm_id: realm.id.clone(),
        user_id: user_id.to_owned(),
        client_id: client.id.clone(),
        offline,
        created_at: now,
        last_refresh: now,
        expires_at: now.saturating_add(lifetime),
        revoked_at: None,
    }
}

async fn refresh(
    app: &AppState,
    rt: &RealmRuntime,
    client: &Client,
    form: &FormParams,
    proof: Option<&AcceptedProof>,
    now: u64,
    event: &mut Event,
) -> ApiResult<TokenResponse> {
    let presented = form.require("refresh_token")?;
    // RFC 8707 §2.2: `resource` narrows this access token within the original grant.
    let resources = requested_resources(rt, form)?;
    let invalid = || OAuthError::invalid_grant("Invalid refresh token");
    if presented.len() > 512 {
        return Err(invalid().into());
    }
    let hash = random::token_hash(presented);
    // Check ownership before marking the token used, so that another client cannot burn it.
    let record = app
        .store
        .get_refresh_token(&hash)
        .await?
        .ok_or_else(invalid)?;
    if record.realm_id != rt.id() {
        return Err(invalid().into());
    }
    if record.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "Invalid refresh token. Token client and authorized client don't match",
        )
        .into());
    }
    event.user_id = Some(record.user_id.clone());
    event.session_id = Some(record.session_id.clone());
    // Likewise a request for more scope than granted is refused before the token is used.
    grants::check_refresh_scope(&record.scope, form.get("scope"))?;
    // The state behind the token is checked before it is used too: a token whose session,
    // client part or ancestor was revoked is refused as it stands, so that presenting it again
    // is not mistaken for reuse (which would end the whole session). The session is read
    // before the use for a second reason: of two requests racing with one token, the loser
    // ends the session (a replay), and reading afterwards could let that revocation also fail
    // the winner, leaving no request served.
    let session = app.store.get_session(&record.session_id).await?;
    let live = common::live_refresh_token(app, rt, &record, session.as_ref(), now)
        .await?
        .map_err(ApiError::OAuth)?;
    // A bound refresh token is used only with a proof by its key, checked before the use so
    // that someone without the key cannot burn it.
    if let Some(jkt) = live.data.jkt.as_deref() {
        cambio_core::dpop::check_binding(Some(jkt), proof.map(|p| p.jkt.as_str()))?;
    }
    // The whole decision is taken before the token is used, so that a refused request (a
    // resource the token cannot carry, a disabled audience) does not burn it; the use below
    // then makes it single-use. The record read above is the token's stored row, the same
    // one the use returns.
    let issued = grants::refresh(
        &rt.snapshot,
        client,
        PresentedRefresh {
            issued_to: &record.client_id,
            expires_at: record.expires_at,
            offline: record.offline,
            stored_scope: &record.scope,
            data: &live.data,
            session_id: &record.session_id,
            // Both checked by live_refresh_token just above.
            session_active: true,
            user: Some(&live.user),
        },
        form.get("scope"),
        resources.as_deref(),
        now,
        ids(),
    )?;
    let record = match app.store.use_refresh_token(&hash, now).await? {
        RefreshTokenUse::Fresh(record) => record,
        RefreshTokenUse::Reused(record) => {
            // A rotated token came back: someone holds a copy. End the whole session.
            end_session(app, &record.session_id, now).await?;
            return Err(
                OAuthError::invalid_grant("Maximum allowed refresh token reuse exceeded").into(),
            );
        }
        RefreshTokenUse::Unknown => return Err(invalid().into()),
    };
    app.store.touch_session(&record.session_id, now).await?;
    respond(app, rt, client, issued, session.as_ref(), None, proof, now).await
}

async fn authorization_code(
    app: &AppState,
    rt: &RealmRuntime,
    client: &Client,
    form: &FormParams,
    proof: Option<&AcceptedProof>,
    now: u64,
    event: &mut Event,
) -> ApiResult<TokenResponse> {
    let code = form.require("code")?;
    let invalid = || OAuthError::invalid_grant("Code not valid");
    if code.len() > 512 {
        return Err(invalid().into());
    }
    let Some(data) = app
        .store
        .take_auth_code(&random::token_hash(code), now)
        .await?
    else {
        // A code that was issued but is gone was used before (or expired unused): someone
        // else may hold it, so the session it created ends, and every token issued from it
        // with it (RFC 6749 §4.1.2, RFC 9700 §4.5). The session belongs to this code alone.
        let replayed = crate::routes::authorize::code_session_key(code);
        if let Some(session_id) = app.store.take_auth_code(&replayed, now).await? {
            end_session(app, &session_id, now).await?;
            event.session_id = Some(session_id);
        }
        return Err(invalid().into());
    };
    let grant: CodeGrant = serde_json::from_str(&data).map_err(|_| invalid())?;
    if grant.realm_id != rt.id() {
        return Err(invalid().into());
    }
    event.user_id = Some(grant.user_id.clone());
    event.session_id = Some(grant.session_id.clone());
    grants::check_code(
        &grant,
        client,
        form.get("redirect_uri"),
        form.get("code_verifier"),
    )?;
    cambio_core::dpop::check_code_binding(grant.dpop_jkt.as_deref(), proof)?;
    let session = app.store.get_session(&grant.session_id).await?;
    let session = session
        .filter(|s| s.revoked_at.is_none() && s.expires_at > now)
        .ok_or_else(|| OAuthError::invalid_grant("Session not active"))?;
    // The client joins the session (a browser login may reuse one another client started).
    join_session(app, rt, &session, client, now).await?;
    let user = app
        .user(rt.id(), &grant.user_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("User not found"))?;
    let scope = GrantedScope::from_stored(&grant.scope);
    let resources = grants::code_resources(&grant, requested_resources(rt, form)?)?;
    let issued = grants::login(
        &rt.snapshot,
        Login {
            client,
            user: &user,
            scope: &scope,
            session_id: &session.id,
            nonce: grant.nonce.as_deref(),
            auth_time: grant.auth_time,
            resources: resources.as_deref(),
            now,
        },
        ids(),
    )?;
    respond(app, rt, client, issued, Some(&session), None, proof, now).await
}

async fn token_exchange(
    app: &AppState,
    rt: &RealmRuntime,
    client: &Client,
    form: &FormParams,
    proof: Option<&AcceptedProof>,
    now: u64,
    event: &mut Event,
) -> ApiResult<TokenResponse> {
    let params = ExchangeParams::parse(form, client, &rt.snapshot)?;
    if !params.audiences.is_empty() {
        event.details.insert("audience", params.audiences.join(" "));
    }
    let invalid_token = || OAuthError::invalid_request("Invalid token");
    let subject = common::live_access_token(app, rt, params.subject_token, now)
        .await?
        .ok_or_else(invalid_token)?;
    event.user_id = Some(subject.token.claims.sub.clone());
    event.session_id = subject.token.claims.sid.clone();
    event
        .details
        .insert("subject_client", subject.client.client_id.clone());
    let actor = match params.actor_token {
        Some(token) => Some(
            common::live_access_token(app, rt, token, now)
                .await?
                .ok_or_else(|| OAuthError::invalid_request("Invalid actor token"))?,
        ),
        None => None,
    };
    let Ids { access_jti, id_jti } = ids();
    let decision = exchange::decide(ExchangeInput {
        realm: &rt.snapshot,
        requester: client,
        params: &params,
        subject: &subject.token,
        subject_user: &subject.user,
        actor: actor.as_ref().map(|a| &a.token),
        proof,
        now,
        access_jti,
        id_jti,
    })?;
    let session = match (&decision.issued.refresh, &subject.token.claims.sid) {
        (Some(_), Some(sid)) => app.store.get_session(sid).await?,
        _ => None,
    };
    if decision.issued.refresh.is_some() {
        let Some(session) = &session else {
            return Err(OAuthError::invalid_request(
                "Refresh token not valid as requested_token_type because creating a new session is needed",
            )
            .into());
        };
        // A refresh token makes the requester a client of the session (Keycloak's client
        // session), whose part it can later end by revoking that token.
        join_session(app, rt, session, client, now).await?;
    }
    // The proof binds the new token unless the realm and every audience asked for a bearer
    // token (the presented tokens were proven by it all the same).
    let binding_proof = match decision.binding {
        ExchangeBinding::ProofKey => proof,
        ExchangeBinding::Bearer => {
            event.details.insert("dpop_unbound", "true".into());
            None
        }
    };
    respond(
        app,
        rt,
        client,
        decision.issued,
        session.as_ref(),
        Some(decision.issued_token_type),
        binding_proof,
        now,
    )
    .await
}

/// Signs the tokens, stores the refresh token, and shapes the response.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn respond(
    app: &AppState,
    rt: &RealmRuntime,
    client: &Client,
    issued: Issued,
    session: Option<&SessionRecord>,
    exchanged: Option<RequestedType>,
    proof: Option<&AcceptedProof>,
    now: u64,
) -> ApiResult<TokenResponse> {
    let sign_error = |_| ApiError::Unavailable;
    let mut issued = issued;
    if let Some(proof) = proof {
        // The access token names the proof's key; only its holder can use it (RFC 9449 §6).
        issued.access.cnf = Some(cambio_core::dpop::confirmation(&proof.jkt));
        // A public client's refresh token is bound too: it cannot prove who presents it
        // otherwise (§5). A confidential client's is bound to its credentials already.
        if let Some(plan) = issued.refresh.as_mut()
            && !client.is_confidential()
        {
            plan.data.jkt = Some(proof.jkt.clone());
        }
    }
    if let Some(session) = session {
        // No token outlives its session: the session's revocation is remembered only until
        // the session's end (plus what exchanges may add), and nobody checks it after that.
        cap_at(&mut issued, session.expires_at, now);
    }
    let id_token = match &issued.id_token {
        Some(claims) => Some(rt.signer.sign(ID_TOKEN_TYP, claims).map_err(sign_error)?),
        None => None,
    };
    if exchanged == Some(RequestedType::IdToken) {
        // RFC 8693 §2.2.1: a token that is not an access token comes back in `access_token`
        // with `token_type` N_A.
        return Ok(TokenResponse {
            access_token: id_token.ok_or(ApiError::Unavailable)?,
            expires_in: issued.expires_in,
            token_type: "N_A".into(),
            scope: issued.scope,
            issued_token_type: Some(RequestedType::IdToken.urn().into()),
            // Keycloak always answers `refresh_expires_in`, 0 when no refresh token comes.
            refresh_expires_in: Some(0),
            ..Default::default()
        });
    }
    let access_token = rt
        .signer
        .sign(ACCESS_TOKEN_TYP, &issued.access)
        .map_err(sign_error)?;
    let mut response = TokenResponse {
        access_token,
        expires_in: issued.expires_in,
        token_type: if proof.is_some() { "DPoP" } else { "Bearer" }.into(),
        id_token,
        session_state: issued.access.sid.clone(),
        scope: issued.scope.clone(),
        issued_token_type: exchanged.map(|t| t.urn().to_owned()),
        // Keycloak always answers `refresh_expires_in`, 0 when no refresh token comes.
        refresh_expires_in: Some(0),
        ..Default::default()
    };
    if let (Some(plan), Some(session)) = (issued.refresh, session) {
        let value = random::token();
        // A refresh token never outlives its session.
        let expires_at = now.saturating_add(plan.lifetime).min(session.expires_at);
        let record = RefreshTokenRecord {
            hash: random::token_hash(&value),
            realm_id: rt.id().to_owned(),
            session_id: session.id.clone(),
            client_id: client.id.clone(),
            user_id: issued.access.sub.clone(),
            scope: plan.scope,
            data: serde_json::to_string(&plan.data).unwrap_or_else(|_| "{}".into()),
            offline: plan.offline,
            issued_at: now,
            expires_at,
            used_at: None,
        };
        app.store.insert_refresh_token(&record).await?;
        response.refresh_token = Some(value);
        response.refresh_expires_in = Some(if plan.offline {
            0
        } else {
            expires_at.saturating_sub(now)
        });
    }
    Ok(response)
}

/// Makes an issuance end at `ends_at` at the latest.
fn cap_at(issued: &mut Issued, ends_at: u64, now: u64) {
    if issued.access.exp > ends_at {
        issued.access.exp = ends_at;
        issued.expires_in = ends_at.saturating_sub(now);
    }
    if let Some(id_token) = &mut issued.id_token {
        id_token.exp = id_token.exp.min(ends_at);
    }
}

/// Records `client` as a client of `session` from `now` on.
async fn join_session(
    app: &AppState,
    rt: &RealmRuntime,
    session: &SessionRecord,
    client: &Client,
    now: u64,
) -> ApiResult<()> {
    app.store
        .join_client_session(&ClientSessionRecord {
            session_id: session.id.clone(),
            realm_id: rt.id().to_owned(),
            client_id: client.id.clone(),
            joined_at: now,
            ended_at: None,
            expires_at: common::revocation_horizon(rt, session.expires_at),
        })
        .await?;
    Ok(())
}

/// Ends one client's part of a user session (its refresh tokens, and its access tokens issued
/// in the session until now), in the store and in memory; the user session ends with its last
/// client.
pub async fn end_client_session(
    app: &AppState,
    rt: &RealmRuntime,
    session_id: &str,
    client_id: &str,
    now: u64,
) -> ApiResult<()> {
    let session_end = app
        .store
        .get_session(session_id)
        .await?
        .map_or(now, |s| s.expires_at.max(now));
    let until = common::revocation_horizon(rt, session_end);
    let others_remain = app
        .store
        .end_client_session(rt.id(), session_id, client_id, now, until)
        .await?;
    app.end_client_part_everywhere(session_id, client_id, now, until)
        .await;
    if !others_remain {
        end_session(app, session_id, now).await?;
    }
    Ok(())
}

/// Ends a session in the store and in memory, remembering it for as long as a token issued in
/// it, or derived from one, could live.
pub async fn end_session(app: &AppState, session_id: &str, now: u64) -> ApiResult<()> {
    app.store.revoke_session(session_id, now).await?;
    let (realm_id, until) = match app.store.get_session(session_id).await? {
        Some(session) => {
            let session_end = session.expires_at.max(now);
            let until = match app.realm_by_id(&session.realm_id) {
                Some(rt) => common::revocation_horizon(&rt, session_end),
                None => session_end,
            };
            (Some(session.realm_id), until)
        }
        // A session no longer stored has no tokens left but exchanged ones; an hour covers
        // those under the default lifespans.
        None => (None, now.saturating_add(3600)),
    };
    // The session row is purged at the session's end, but exchanged tokens may outlive it
    // (realms that do not cap them by the subject): the revocation is also kept as a revoked
    // id until its horizon, which restarts and resyncs load back (`AppState::load_all`).
    if let Some(realm_id) = realm_id {
        app.store
            .revoke_token_id(&realm_id, &revoked_session_id(session_id), until)
            .await?;
    }
    app.revoke_session_everywhere(session_id, until).await;
    Ok(())
}

/// The revoked-id entry that keeps a session's revocation until its horizon.
pub fn revoked_session_id(session_id: &str) -> String {
    format!("{REVOKED_SESSION_PREFIX}{session_id}")
}

/// The prefix of [`revoked_session_id`]s; token ids are UUIDs and never start with it.
pub const REVOKED_SESSION_PREFIX: &str = "session:";
