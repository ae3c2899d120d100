//! Browser logout (OpenID Connect RP-Initiated Logout 1.0).
//!
//! A valid `id_token_hint` names the session to end and the client asking; its expiry does not
//! matter (the ID token usually expired long before the user signs out, §2). With such a hint,
//! from the client named by `client_id` if any, the session ends at once. Without a hint, or
//! with a hint another client holds, nothing ends until the user confirms on a page whose form
//! is bound to the browser (§6: logout requests can be forged by any site). The browser is sent
//! on only to a `post_logout_redirect_uri` registered for the client (Keycloak's
//! `post.logout.redirect.uris`, `+` meaning its redirect URIs); any other is an error page.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cambio_core::form::FormParams;
use cambio_core::redirect::{self, AuthorizationResponse, ResponseMode};
use cambio_core::tokens::{ID_TOKEN_TYP, IdTokenClaims};
use cambio_jose::{AudienceRule, TypRule, Validation};
use url::Url;

use crate::common::{LEEWAY, read_form};
use crate::error::ApiError;
use crate::random;
use crate::routes::pages::{self, Binding, Script, error_page, hidden};
use crate::routes::token::end_session;
use crate::state::{AppState, RealmRuntime};

/// The parameters a confirmation page carries to its POST.
const CARRIED: &[&str] = &[
    "id_token_hint",
    "post_logout_redirect_uri",
    "state",
    "client_id",
];

/// What a logout request asks for, checked.
struct Plan {
    /// The session the hint names, if the hint is valid.
    session_id: Option<String>,
    /// Whether the hint may end its session without asking the user.
    confirmed_by_hint: bool,
    /// Where to send the browser afterwards, with `state`.
    redirect: Option<(Url, Option<String>)>,
}

const TITLE: &str = "Cannot sign out";

fn bad_request(message: &str) -> Response {
    error_page(StatusCode::BAD_REQUEST, TITLE, message)
}

/// Checks a logout request; errors are pages (nothing is ended, nothing redirected).
#[allow(clippy::result_large_err)]
fn plan(rt: &RealmRuntime, params: &FormParams) -> Result<Plan, Response> {
    let hint = match params.get("id_token_hint") {
        Some(token) => {
            Some(verify_hint(rt, token).ok_or_else(|| bad_request("Invalid id_token_hint"))?)
        }
        None => None,
    };
    let named = match params.get("client_id") {
        Some(id) => Some(
            rt.snapshot
                .client_by_client_id(id)
                .ok_or_else(|| bad_request("Invalid client_id"))?,
        ),
        None => None,
    };
    let hint_client = hint
        .as_ref()
        .and_then(|claims| rt.snapshot.client_by_client_id(&claims.azp));
    let from_other_client = match (&hint, named) {
        (Some(claims), Some(client)) => claims.azp != client.client_id,
        _ => false,
    };
    // The client the browser goes back to: the one named, else the hint's.
    let client = named.or(hint_client);
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let client = client.ok_or_else(|| {
                bad_request(
                    "Either client_id or id_token_hint is required with post_logout_redirect_uri",
                )
            })?;
            let registered = redirect::post_logout_redirect_uris(client);
            let url = redirect::match_presented(&registered, uri)
                .map_err(|_| bad_request("Invalid post_logout_redirect_uri"))?;
            Some((url, params.get("state").map(str::to_owned)))
        }
    };
    Ok(Plan {
        confirmed_by_hint: hint.is_some() && !from_other_client,
        session_id: hint.and_then(|claims| claims.sid),
        redirect,
    })
}

/// An ID token this realm signed, whether or not it has expired.
fn verify_hint(rt: &RealmRuntime, token: &str) -> Option<IdTokenClaims> {
    let validation = Validation {
        now: random::now(),
        leeway: LEEWAY,
        issuer: Some(rt.issuer()),
        audience: AudienceRule::Skip,
        typ: TypRule::Exactly(ID_TOKEN_TYP),
        require_exp: true,
        max_token_bytes: cambio_jose::DEFAULT_MAX_TOKEN_BYTES,
    };
    let verified =
        cambio_jose::verify_allowing_expired(token, rt.verifiers.as_slice(), &validation).ok()?;
    serde_json::from_value(serde_json::Value::Object(verified.into_claims())).ok()
}

/// Ends the planned session and answers: the registered redirect, or a page.
async fn finish(app: &AppState, rt: &RealmRuntime, plan: Plan) -> Response {
    if let Some(session_id) = &plan.session_id {
        if end_session(app, session_id, random::now()).await.is_err() {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                TITLE,
                "The server cannot complete the request now; please try again.",
            );
        }
        app.audit.record(crate::audit::Event {
            realm_id: rt.id().to_owned(),
            event_type: "LOGOUT",
            session_id: Some(session_id.clone()),
            ..Default::default()
        });
    }
    let Some((url, state)) = plan.redirect else {
        return pages::html(
            StatusCode::OK,
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Signed out</title></head>\
             <body><p>You are signed out.</p></body></html>"
                .to_owned(),
            Script::None,
        );
    };
    let params: Vec<(&str, &str)> = state.iter().map(|s| ("state", s.as_str())).collect();
    match redirect::authorization_response(&url, ResponseMode::Query, &params) {
        AuthorizationResponse::Redirect(location) => match HeaderValue::from_str(&location) {
            Ok(location) => {
                let mut response =
                    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
                pages::secure_headers(response.headers_mut(), Script::None);
                response
            }
            Err(_) => ApiError::Unavailable.into_response(),
        },
        AuthorizationResponse::FormPost { .. } => ApiError::Unavailable.into_response(),
    }
}

fn confirmation_page(app: &AppState, headers: &HeaderMap, params: &FormParams) -> Response {
    let binding = Binding::for_page(headers, &app.base_url);
    let carried: String = CARRIED
        .iter()
        .filter_map(|name| params.get(name).map(|value| hidden(name, value)))
        .collect();
    let mut response = pages::html(
        StatusCode::OK,
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign out</title></head>\
             <body><h1>Do you want to sign out?</h1>\
             <form method=\"post\" action=\"logout/logout-confirm\">{carried}{}\
             <button type=\"submit\">Sign out</button></form></body></html>",
            binding.field()
        ),
        Script::None,
    );
    binding.set_cookie(&mut response, &app.base_url);
    response
}

/// `GET .../logout`.
pub async fn logout_get(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let rt = match pages::realm_or_page(&app, &realm, TITLE) {
        Ok(rt) => rt,
        Err(page) => return page,
    };
    let params = match FormParams::parse(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(error) => return bad_request(&error.description),
    };
    match plan(&rt, &params) {
        Ok(plan) if plan.confirmed_by_hint => finish(&app, &rt, plan).await,
        Ok(_) => confirmation_page(&app, &headers, &params),
        Err(page) => page,
    }
}

/// `POST .../logout/logout-confirm`: the user confirmed on our page, in this browser.
pub async fn logout_confirm(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let rt = match pages::realm_or_page(&app, &realm, TITLE) {
        Ok(rt) => rt,
        Err(page) => return page,
    };
    let params = match read_form(&headers, body).await {
        Ok(params) => params,
        Err(ApiError::OAuth(error)) => return bad_request(&error.description),
        Err(error) => return error.into_response(),
    };
    if !pages::binding_holds(&headers, &app.base_url, params.get(pages::BINDING_FIELD)) {
        return bad_request("This sign-out page has expired or cookies are blocked.");
    }
    match plan(&rt, &params) {
        Ok(plan) => finish(&app, &rt, plan).await,
        Err(page) => page,
    }
}
