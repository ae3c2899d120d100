//! The authorization endpoint (RFC 6749 §4.1 with PKCE, RFC 7636): a plain HTML login form
//! that issues an authorization code.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use cambio_core::form::FormParams;
use cambio_core::grants::{CodeGrant, valid_pkce_value};
use cambio_core::model::Client;
use cambio_core::scope::GrantedScope;
use serde::Deserialize;

use crate::common::read_form;
use crate::error::ApiError;
use crate::random;
use crate::routes::token::new_session;
use crate::state::{AppState, RealmRuntime};

/// The parameters of an authorization request, carried through the login form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthRequest {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

impl AuthRequest {
    fn from_form(form: &FormParams) -> AuthRequest {
        let get = |name: &str| form.get(name).map(str::to_owned);
        AuthRequest {
            response_type: get("response_type"),
            client_id: get("client_id"),
            redirect_uri: get("redirect_uri"),
            scope: get("scope"),
            state: get("state"),
            nonce: get("nonce"),
            code_challenge: get("code_challenge"),
            code_challenge_method: get("code_challenge_method"),
        }
    }
}

/// A request checked far enough that errors may be sent back to the client's redirect URI.
struct Checked {
    client: Arc<Client>,
    redirect_uri: String,
    scope: GrantedScope,
}

fn page(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}

fn error_page(message: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        format!(
            "<!doctype html><title>Error</title><h1>Cannot sign in</h1><p>{}</p>",
            escape(message)
        ),
    )
}

/// Errors about the client or redirect URI are shown, never redirected (RFC 6749 §4.1.2.1).
// The error is a complete response (an error page or a redirect); it is built once per
// failed request, so its size does not matter.
#[allow(clippy::result_large_err)]
fn check(rt: &RealmRuntime, req: &AuthRequest) -> Result<Checked, Response> {
    let client = req
        .client_id
        .as_deref()
        .and_then(|id| rt.snapshot.client_by_client_id(id))
        .filter(|c| c.enabled && c.standard_flow_enabled && !c.bearer_only)
        .cloned()
        .ok_or_else(|| {
            error_page("Unknown client or client not allowed to use the authorization code flow")
        })?;
    let redirect_uri = req
        .redirect_uri
        .clone()
        .filter(|uri| redirect_allowed(&client, uri))
        .ok_or_else(|| error_page("Invalid redirect_uri"))?;
    let back = |error: &str, description: &str| {
        redirect_error(&redirect_uri, req.state.as_deref(), error, description)
    };
    if req.response_type.as_deref() != Some("code") {
        return Err(back(
            "unsupported_response_type",
            "Only response_type=code is supported",
        ));
    }
    match (&req.code_challenge, req.code_challenge_method.as_deref()) {
        (Some(challenge), Some("S256")) if valid_pkce_value(challenge) => {}
        (Some(_), _) => {
            return Err(back(
                "invalid_request",
                "Invalid code_challenge or code_challenge_method (S256 required)",
            ));
        }
        (None, _) if client.public_client => {
            return Err(back(
                "invalid_request",
                "PKCE (S256) is required for public clients",
            ));
        }
        (None, _) => {}
    }
    let scope = GrantedScope::resolve(&rt.snapshot, &client, req.scope.as_deref())
        .map_err(|e| back(e.code.as_str(), &e.description))?;
    Ok(Checked {
        client,
        redirect_uri,
        scope,
    })
}

/// Exact match, or a registered pattern ending in `*` matching by prefix (Keycloak's rule).
fn redirect_allowed(client: &Client, uri: &str) -> bool {
    if uri.contains('#') {
        return false;
    }
    // Native apps listen on a loopback port they pick at run time: for loopback redirects the
    // port is ignored (RFC 8252 §7.3), so `http://127.0.0.1/*` admits `http://127.0.0.1:53117/cb`.
    let candidates = [Some(uri.to_owned()), without_loopback_port(uri)];
    client.redirect_uris.iter().any(|allowed| {
        candidates
            .iter()
            .flatten()
            .any(|uri| match allowed.strip_suffix('*') {
                Some(prefix) => uri.starts_with(prefix),
                None => allowed == uri,
            })
    })
}

/// `http://127.0.0.1:PORT/...` (or `[::1]`, `localhost`) without its port.
fn without_loopback_port(uri: &str) -> Option<String> {
    let mut parsed = url::Url::parse(uri).ok()?;
    let loopback = match parsed.host()? {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(d) => d == "localhost",
    };
    if parsed.scheme() != "http" || !loopback || parsed.port().is_none() {
        return None;
    }
    parsed.set_port(None).ok()?;
    Some(parsed.to_string())
}

fn redirect_error(
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("error", error)
        .append_pair("error_description", description);
    if let Some(state) = state {
        query.append_pair("state", state);
    }
    redirect(redirect_uri, &query.finish())
}

fn redirect(uri: &str, query: &str) -> Response {
    let separator = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{separator}{query}");
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

fn login_form(rt: &RealmRuntime, req: &AuthRequest, message: Option<&str>) -> Response {
    let hidden: String = [
        ("response_type", &req.response_type),
        ("client_id", &req.client_id),
        ("redirect_uri", &req.redirect_uri),
        ("scope", &req.scope),
        ("state", &req.state),
        ("nonce", &req.nonce),
        ("code_challenge", &req.code_challenge),
        ("code_challenge_method", &req.code_challenge_method),
    ]
    .iter()
    .filter_map(|(name, value)| {
        value.as_ref().map(|v| {
            format!(
                "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
                escape(v)
            )
        })
    })
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
    page(
        StatusCode::OK,
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign in to {title}</title></head>\
             <body><h1>Sign in to {title}</h1>{message}<form method=\"post\">{hidden}\
             <label>Username <input name=\"username\" autocomplete=\"username\" autofocus></label>\
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\"></label>\
             <button type=\"submit\">Sign in</button></form></body></html>"
        ),
    )
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub async fn form(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    Query(req): Query<AuthRequest>,
) -> Response {
    let Some(rt) = app.active_realm(&realm) else {
        return ApiError::NotFound("Realm does not exist").into_response();
    };
    match check(&rt, &req) {
        Ok(_) => login_form(&rt, &req, None),
        Err(response) => response,
    }
}

pub async fn submit(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(rt) = app.active_realm(&realm) else {
        return ApiError::NotFound("Realm does not exist").into_response();
    };
    let form = match read_form(&headers, body).await {
        Ok(form) => form,
        Err(error) => return error.into_response(),
    };
    let req = AuthRequest::from_form(&form);
    let checked = match check(&rt, &req) {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    match login(&app, &rt, &req, &checked, &form).await {
        Ok(Some(response)) => response,
        Ok(None) => login_form(&rt, &req, Some("Invalid username or password.")),
        Err(error) => error.into_response(),
    }
}

async fn login(
    app: &AppState,
    rt: &RealmRuntime,
    req: &AuthRequest,
    checked: &Checked,
    form: &FormParams,
) -> Result<Option<Response>, ApiError> {
    let now = random::now();
    let (Some(username), Some(password)) = (form.get("username"), form.get("password")) else {
        return Ok(None);
    };
    let user = match crate::common::check_password_login(app, rt.id(), username, password).await? {
        Some(user) => user,
        None => {
            app.audit.record(crate::audit::Event {
                realm_id: rt.id().to_owned(),
                event_type: "LOGIN_ERROR",
                client_id: Some(checked.client.client_id.clone()),
                error: Some("invalid_user_credentials".into()),
                ..Default::default()
            });
            return Ok(None);
        }
    };
    let session = new_session(rt, &checked.client, &user.id, checked.scope.offline(), now);
    app.store.insert_session(&session).await?;
    let code = random::token();
    let grant = CodeGrant {
        realm_id: rt.id().to_owned(),
        client_id: checked.client.id.clone(),
        user_id: user.id.clone(),
        session_id: session.id.clone(),
        redirect_uri: checked.redirect_uri.clone(),
        scope: checked.scope.to_stored(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_time: now,
    };
    let data = serde_json::to_string(&grant).map_err(|_| ApiError::Unavailable)?;
    let expires_at = now + rt.snapshot.realm.access_code_lifespan;
    app.store
        .insert_auth_code(&random::token_hash(&code), &data, expires_at)
        .await?;
    app.audit.record(crate::audit::Event {
        realm_id: rt.id().to_owned(),
        event_type: "LOGIN",
        client_id: Some(checked.client.client_id.clone()),
        user_id: Some(user.id.clone()),
        session_id: Some(session.id.clone()),
        ..Default::default()
    });
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("code", &code);
    if let Some(state) = &req.state {
        query.append_pair("state", state);
    }
    // RFC 9207: name the issuer so the client can detect mix-up attacks.
    query.append_pair("iss", rt.issuer());
    Ok(Some(redirect(&checked.redirect_uri, &query.finish())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_ignore_the_port() {
        let client = Client {
            redirect_uris: vec!["http://127.0.0.1/*".into(), "https://app.example/cb".into()],
            ..Default::default()
        };
        for (uri, allowed) in [
            ("http://127.0.0.1:53117/callback", true),
            ("http://127.0.0.1/callback", true),
            ("https://app.example/cb", true),
            ("https://app.example:8443/cb", false),
            ("http://127.0.0.2.evil.example/cb", false),
            ("http://127.0.0.1:1/cb#frag", false),
            ("https://127.0.0.1:53117/callback", false),
        ] {
            assert_eq!(redirect_allowed(&client, uri), allowed, "{uri}");
        }
    }
}
