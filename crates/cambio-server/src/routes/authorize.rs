//! The authorization endpoint (RFC 6749 §4.1 with PKCE, RFC 7636; OpenID Connect Core §3.1.2):
//! a plain HTML login form that issues an authorization code.
//!
//! The order of the checks is the security: the client and the redirect URI first, and any
//! error about them is shown on a page, never sent anywhere (RFC 6749 §4.1.2.1, RFC 9700
//! §4.11.1); only then are errors sent back to the (now trusted) redirect URI, each with `iss`
//! (RFC 9207). A POST must also come from the browser that fetched the form (its binding
//! cookie), pass the per-address rate limit, and wait for a place at the password gate.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cambio_core::form::FormParams;
use cambio_core::grants::{CodeGrant, valid_pkce_value};
use cambio_core::model::Client;
use cambio_core::redirect::{self, AuthorizationResponse, ResponseMode};
use cambio_core::scope::GrantedScope;
use url::Url;

use crate::common::read_form;
use crate::error::ApiError;
use crate::random;
use crate::routes::pages::{self, Binding, Script, error_page, escape, hidden};
use crate::routes::token::new_session;
use crate::state::{AppState, RealmRuntime};

/// The authorization request parameters the login form carries through.
const CARRIED: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "dpop_jkt",
];

/// A request checked far enough that errors may be sent back to the client's redirect URI.
struct Trusted {
    client: Arc<Client>,
    /// The redirect URI as presented: the token request must present it identically.
    presented_redirect_uri: String,
    /// The same URI normalised: where the browser is sent.
    redirect_uri: Url,
    mode: ResponseMode,
    state: Option<String>,
}

/// A request that passed every check: a form may be shown and a code issued.
struct Checked {
    trusted: Trusted,
    scope: GrantedScope,
    /// The clients the request's `resource` parameters stand for (RFC 8707).
    resources: Vec<String>,
    /// The DPoP key thumbprint the code is bound to (`dpop_jkt`, RFC 9449 §10).
    dpop_jkt: Option<String>,
}

impl Trusted {
    /// An authorization response carrying `params`, then `state` and `iss`.
    fn respond(&self, rt: &RealmRuntime, params: &[(&str, &str)]) -> Response {
        let mut all: Vec<(&str, &str)> = params.to_vec();
        if let Some(state) = &self.state {
            all.push(("state", state));
        }
        // RFC 9207: name the issuer on every response, errors included, so that a client
        // talking to several servers can tell which one answered (mix-up attacks).
        all.push(("iss", rt.issuer()));
        match redirect::authorization_response(&self.redirect_uri, self.mode, &all) {
            AuthorizationResponse::Redirect(location) => match HeaderValue::from_str(&location) {
                Ok(location) => {
                    let mut response =
                        (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
                    // A redirect that carries a code is not to be cached or referred onwards.
                    pages::secure_headers(response.headers_mut(), Script::None);
                    response
                }
                // Unreachable: a serialised URL is always a valid header value.
                Err(_) => ApiError::Unavailable.into_response(),
            },
            AuthorizationResponse::FormPost { action, fields } => {
                pages::form_post_page(&action, &fields)
            }
        }
    }

    fn error(&self, rt: &RealmRuntime, error: &str, description: &str) -> Response {
        self.respond(rt, &[("error", error), ("error_description", description)])
    }
}

/// Checks the client and the redirect URI; errors here are pages.
// The error is a complete response; it is built once per failed request, so its size does
// not matter.
#[allow(clippy::result_large_err)]
fn trust(rt: &RealmRuntime, form: &FormParams) -> Result<Trusted, Response> {
    let client = form
        .get("client_id")
        .and_then(|id| rt.snapshot.client_by_client_id(id))
        .filter(|c| c.enabled && c.standard_flow_enabled && !c.bearer_only)
        .cloned()
        .ok_or_else(|| {
            bad_request_page(
                "Unknown client or client not allowed to use the authorization code flow",
            )
        })?;
    let presented = form
        .get("redirect_uri")
        .ok_or_else(|| bad_request_page("Invalid redirect_uri"))?;
    let redirect_uri = redirect::match_presented(&client.redirect_uris, presented)
        .map_err(|_| bad_request_page("Invalid redirect_uri"))?;
    let mut trusted = Trusted {
        client,
        presented_redirect_uri: presented.to_owned(),
        redirect_uri,
        mode: ResponseMode::Query,
        state: form.get("state").map(str::to_owned),
    };
    // An unknown response mode is answered in the default mode.
    trusted.mode = ResponseMode::parse(form.get("response_mode"))
        .map_err(|e| trusted.error(rt, e.code.as_str(), &e.description))?;
    Ok(trusted)
}

/// The remaining checks; errors go back to the redirect URI.
#[allow(clippy::result_large_err)]
fn check(rt: &RealmRuntime, form: &FormParams) -> Result<Checked, Response> {
    let trusted = trust(rt, form)?;
    let back = |error: &str, description: &str| trusted.error(rt, error, description);
    if form.get("response_type") != Some("code") {
        return Err(back(
            "unsupported_response_type",
            "Only response_type=code is supported",
        ));
    }
    match (
        form.get("code_challenge"),
        form.get("code_challenge_method"),
    ) {
        (Some(challenge), Some("S256")) if valid_pkce_value(challenge) => {}
        (Some(_), _) => {
            return Err(back(
                "invalid_request",
                "Invalid code_challenge or code_challenge_method (S256 required)",
            ));
        }
        (None, _) if trusted.client.public_client => {
            return Err(back(
                "invalid_request",
                "PKCE (S256) is required for public clients",
            ));
        }
        (None, _) => {}
    }
    let scope = GrantedScope::resolve(&rt.snapshot, &trusted.client, form.get("scope"))
        .map_err(|e| back(e.code.as_str(), &e.description))?;
    let named: Vec<&str> = form.all("resource").collect();
    let resources = cambio_core::resource::targets(&rt.snapshot, &named, Vec::new())
        .map_err(|e| back(e.code.as_str(), &e.description))?
        .into_iter()
        .map(str::to_owned)
        .collect();
    // A malformed thumbprint is a malformed request (RFC 6749 §4.1.2.1): ignoring it would
    // issue an unbound code to a client that asked for a bound one.
    let dpop_jkt = match form.get("dpop_jkt") {
        Some(value) => Some(
            cambio_core::dpop::parse_code_thumbprint(value)
                .ok_or_else(|| {
                    back(
                        "invalid_request",
                        "Invalid dpop_jkt: the base64url SHA-256 thumbprint of a JWK is required",
                    )
                })?
                .to_owned(),
        ),
        None => None,
    };
    Ok(Checked {
        trusted,
        scope,
        resources,
        dpop_jkt,
    })
}

const TITLE: &str = "Cannot sign in";

fn bad_request_page(message: &str) -> Response {
    error_page(StatusCode::BAD_REQUEST, TITLE, message)
}

fn login_form(
    app: &AppState,
    rt: &RealmRuntime,
    headers: &HeaderMap,
    form: &FormParams,
    status: StatusCode,
    message: Option<&str>,
) -> Response {
    let binding = Binding::for_page(headers, &app.base_url);
    let carried: String = CARRIED
        .iter()
        .filter_map(|name| form.get(name).map(|value| hidden(name, value)))
        .chain(form.all("resource").map(|value| hidden("resource", value)))
        .collect();
    let message = message
        .map(|m| format!("<p role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    let title = escape(
        rt.snapshot
            .realm
            .display_name
            .as_deref()
            .unwrap_or(rt.name()),
    );
    let mut response = pages::html(
        status,
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign in to {title}</title></head>\
             <body><h1>Sign in to {title}</h1>{message}<form method=\"post\">{carried}{binding}\
             <label>Username <input name=\"username\" autocomplete=\"username\" autofocus></label>\
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label>\
             <button type=\"submit\">Sign in</button></form></body></html>",
            binding = binding.field(),
        ),
        Script::None,
    );
    binding.set_cookie(&mut response, &app.base_url);
    response
}

pub async fn form(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let rt = match pages::realm_or_page(&app, &realm, TITLE) {
        Ok(rt) => rt,
        Err(page) => return page,
    };
    let form = match FormParams::parse(query.unwrap_or_default().as_bytes()) {
        Ok(form) => form,
        Err(error) => return bad_request_page(&error.description),
    };
    let checked = match check(&rt, &form) {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    // With no sign-in remembered in the browser, a request that forbids interaction can only
    // be told that a login is needed (OpenID Connect Core §3.1.2.6).
    match redirect::prompt_is_none(form.get("prompt")) {
        Ok(false) => {}
        Ok(true) => {
            return checked.trusted.error(
                &rt,
                "login_required",
                "The user must sign in; prompt=none forbids showing a form",
            );
        }
        Err(e) => return checked.trusted.error(&rt, e.code.as_str(), &e.description),
    }
    login_form(&app, &rt, &headers, &form, StatusCode::OK, None)
}

pub async fn submit(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let rt = match pages::realm_or_page(&app, &realm, TITLE) {
        Ok(rt) => rt,
        Err(page) => return page,
    };
    let form = match read_form(&headers, body).await {
        Ok(form) => form,
        Err(ApiError::OAuth(error)) => return bad_request_page(&error.description),
        Err(error) => return error.into_response(),
    };
    let checked = match check(&rt, &form) {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    if let Err(ApiError::TooManyRequests(wait)) = crate::common::limit_address(&app, peer) {
        return too_many(wait);
    }
    if !pages::binding_holds(&headers, &app.base_url, form.get(pages::BINDING_FIELD)) {
        // No password is looked at: the form was not fetched by this browser (or its cookie
        // is gone). A fresh form lets a real user go on.
        return login_form(
            &app,
            &rt,
            &headers,
            &form,
            StatusCode::BAD_REQUEST,
            Some("This sign-in page has expired or cookies are blocked. Please sign in again."),
        );
    }
    match login(&app, &rt, peer.ip(), &checked, &form).await {
        Ok(Some(response)) => response,
        Ok(None) => login_form(
            &app,
            &rt,
            &headers,
            &form,
            StatusCode::OK,
            Some("Invalid username or password."),
        ),
        Err(ApiError::TooManyRequests(wait)) => too_many(wait),
        Err(_) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            TITLE,
            "The server is busy. Please try again in a moment.",
        ),
    }
}

fn too_many(wait: std::time::Duration) -> Response {
    let mut page = error_page(
        StatusCode::TOO_MANY_REQUESTS,
        TITLE,
        "Too many sign-in attempts. Please wait a moment and try again.",
    );
    let secs = wait.as_secs().max(1);
    if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
        page.headers_mut().insert(header::RETRY_AFTER, value);
    }
    page
}

/// The key under which the session a code created is remembered after the code is gone, so
/// that a second use of the code can end that session (RFC 6749 §4.1.2, RFC 9700 §4.5).
/// Only someone holding the code can compute it.
pub(crate) fn code_session_key(code: &str) -> String {
    random::token_hash(&format!("cambio code session\0{code}"))
}

async fn login(
    app: &AppState,
    rt: &RealmRuntime,
    peer: std::net::IpAddr,
    checked: &Checked,
    form: &FormParams,
) -> Result<Option<Response>, ApiError> {
    let now = random::now();
    let trusted = &checked.trusted;
    let (Some(username), Some(password)) = (form.get("username"), form.get("password")) else {
        return Ok(None);
    };
    let user =
        match crate::common::check_password_login(app, rt.id(), peer, username, password).await? {
            Some(user) => user,
            None => {
                app.audit.record(crate::audit::Event {
                    realm_id: rt.id().to_owned(),
                    event_type: "LOGIN_ERROR",
                    client_id: Some(trusted.client.client_id.clone()),
                    error: Some("invalid_user_credentials".into()),
                    ..Default::default()
                });
                return Ok(None);
            }
        };
    let session = new_session(rt, &trusted.client, &user.id, checked.scope.offline(), now);
    app.store.insert_session(&session).await?;
    let code = random::token();
    let grant = CodeGrant {
        realm_id: rt.id().to_owned(),
        client_id: trusted.client.id.clone(),
        user_id: user.id.clone(),
        session_id: session.id.clone(),
        redirect_uri: trusted.presented_redirect_uri.clone(),
        scope: checked.scope.to_stored(),
        nonce: form.get("nonce").map(str::to_owned),
        code_challenge: form.get("code_challenge").map(str::to_owned),
        auth_time: now,
        resources: checked.resources.clone(),
        dpop_jkt: checked.dpop_jkt.clone(),
    };
    let data = serde_json::to_string(&grant).map_err(|_| ApiError::Unavailable)?;
    // Kept as long as the session can live: a replay at any time ends what the code issued.
    app.store
        .insert_auth_code(&code_session_key(&code), &session.id, session.expires_at)
        .await?;
    let expires_at = now + rt.snapshot.realm.access_code_lifespan;
    app.store
        .insert_auth_code(&random::token_hash(&code), &data, expires_at)
        .await?;
    app.audit.record(crate::audit::Event {
        realm_id: rt.id().to_owned(),
        event_type: "LOGIN",
        client_id: Some(trusted.client.client_id.clone()),
        user_id: Some(user.id.clone()),
        session_id: Some(session.id.clone()),
        ..Default::default()
    });
    Ok(Some(trusted.respond(rt, &[("code", &code)])))
}
