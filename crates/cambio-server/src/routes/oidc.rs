//! Discovery (OpenID Connect Discovery, RFC 8414), the JWKS, userinfo and health endpoints.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cambio_core::model::BUILTIN_CLIENT_SCOPES;
use cambio_proto::Discovery;
use serde_json::{Map, Value, json};

use crate::common::live_access_token;
use crate::cors::{self, CorsPolicy};
use crate::error::{ApiError, ApiResult};
use crate::random;
use crate::state::{AppState, RealmRuntime};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn discovery(rt: &RealmRuntime) -> Discovery {
    let issuer = rt.issuer();
    let oidc = format!("{issuer}/protocol/openid-connect");
    let auth_methods = strings(&[
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]);
    let algs = strings(&["ES256", "RS256", "PS256", "EdDSA"]);
    let mut scopes = vec!["openid".to_owned()];
    scopes.extend(BUILTIN_CLIENT_SCOPES.iter().map(|(n, _)| (*n).to_owned()));
    Discovery {
        issuer: issuer.to_owned(),
        authorization_endpoint: format!("{oidc}/auth"),
        token_endpoint: rt.token_endpoint.clone(),
        introspection_endpoint: format!("{oidc}/token/introspect"),
        userinfo_endpoint: format!("{oidc}/userinfo"),
        end_session_endpoint: format!("{oidc}/logout"),
        jwks_uri: format!("{oidc}/certs"),
        revocation_endpoint: format!("{oidc}/revoke"),
        grant_types_supported: strings(&[
            "authorization_code",
            "client_credentials",
            "password",
            "refresh_token",
            cambio_core::exchange::GRANT_TYPE,
        ]),
        response_types_supported: strings(&["code"]),
        response_modes_supported: strings(&["query", "fragment", "form_post"]),
        subject_types_supported: strings(&["public"]),
        id_token_signing_alg_values_supported: vec![rt.signer.algorithm().as_str().to_owned()],
        token_endpoint_auth_methods_supported: auth_methods.clone(),
        token_endpoint_auth_signing_alg_values_supported: algs,
        introspection_endpoint_auth_methods_supported: auth_methods.clone(),
        revocation_endpoint_auth_methods_supported: auth_methods,
        code_challenge_methods_supported: strings(&["S256"]),
        scopes_supported: scopes,
        claims_supported: strings(&[
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "jti",
            "azp",
            "sid",
            "scope",
            "act",
            "realm_access",
            "resource_access",
            "preferred_username",
            "email",
            "email_verified",
            "name",
            "given_name",
            "family_name",
        ]),
        authorization_response_iss_parameter_supported: true,
        dpop_signing_alg_values_supported: crate::dpop::ALGORITHMS
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
        identity_chaining_requested_token_types_supported: strings(&[
            cambio_core::exchange::TOKEN_TYPE_JWT,
        ]),
        cambio_resource_indicators_supported: true,
        cambio_resource_uris: cambio_core::resource::published_uris(&rt.snapshot),
    }
}

pub async fn openid_configuration(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
) -> ApiResult<Response> {
    let rt = crate::common::protocol_realm(&app, &realm)?;
    let response = Json(discovery(&rt)).into_response();
    Ok(cors::allow(response, CorsPolicy::Realm(rt)))
}

pub async fn certs(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
) -> ApiResult<Response> {
    let rt = crate::common::protocol_realm(&app, &realm)?;
    let mut response = rt.jwks_json.clone().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(cors::allow(response, CorsPolicy::Realm(rt)))
}

/// RFC 6750 bearer authentication; answers OpenID Connect standard claims, readable by the
/// web origins of the client the token was issued to.
pub async fn userinfo(
    State(app): State<Arc<AppState>>,
    Path(realm): Path<String>,
    method: axum::http::Method,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let rt = crate::common::protocol_realm(&app, &realm)?;
    let Some(presented) = crate::dpop::presented_token(&headers) else {
        return Err(ApiError::Bearer {
            status: StatusCode::UNAUTHORIZED,
            error: None,
            description: "Missing bearer token",
        });
    };
    let token = presented.1;
    let now = random::now();
    let invalid = ApiError::Bearer {
        status: StatusCode::UNAUTHORIZED,
        error: Some("invalid_token"),
        description: "Token verification failed",
    };
    let Some(live) = live_access_token(&app, &rt, token, now).await? else {
        return Err(invalid);
    };
    crate::dpop::check_resource_request(
        &app,
        &rt,
        &headers,
        (method.as_str(), uri.path()),
        now,
        presented,
        live.token.claims.cnf.as_ref(),
    )
    .await?;
    let (active, user) = (live.token, live.user);
    let scope: Vec<&str> = active.claims.scope.split(' ').collect();
    // OpenID Connect Core §5.3: the UserInfo endpoint serves OpenID requests only. Keycloak
    // answers a token without `openid` the same way (observed by the differential suite).
    if !scope.contains(&"openid") {
        return Err(ApiError::Bearer {
            status: StatusCode::FORBIDDEN,
            error: Some("insufficient_scope"),
            description: "Missing openid scope",
        });
    }
    let mut out = Map::new();
    out.insert("sub".into(), json!(user.id));
    if scope.contains(&"profile") || active.claims.preferred_username.is_some() {
        out.insert("preferred_username".into(), json!(user.username));
        if let Some(name) = user.full_name() {
            out.insert("name".into(), json!(name));
        }
        if let Some(v) = &user.first_name {
            out.insert("given_name".into(), json!(v));
        }
        if let Some(v) = &user.last_name {
            out.insert("family_name".into(), json!(v));
        }
    }
    if scope.contains(&"email")
        && let Some(email) = &user.email
    {
        out.insert("email".into(), json!(email));
        out.insert("email_verified".into(), json!(user.email_verified));
    }
    // Protocol mappers (the group membership mapper) of the client and of the scopes the
    // token names, with the user's present groups.
    if let Some(client) = rt.snapshot.client_by_client_id(&active.claims.azp) {
        let scope = cambio_core::scope::GrantedScope::from_stored(&active.claims.scope);
        let mapped = cambio_core::groups::mapped_claims(
            &rt.snapshot,
            client,
            &scope,
            &user,
            cambio_core::groups::ClaimTarget::Userinfo,
        );
        for (name, value) in mapped {
            out.entry(name).or_insert(value);
        }
    }
    let response = Json(Value::Object(out)).into_response();
    Ok(match rt.snapshot.client_by_client_id(&active.claims.azp) {
        Some(client) => cors::allow(response, CorsPolicy::Client(client.clone())),
        None => response,
    })
}

pub async fn live() -> Json<Value> {
    Json(json!({"status": "UP"}))
}

pub async fn ready(State(app): State<Arc<AppState>>) -> Response {
    match app.store.ping().await {
        Ok(()) => Json(json!({"status": "UP"})).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "DOWN"})),
        )
            .into_response(),
    }
}

/// Prometheus metrics.
pub async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let body = app.metrics.render(
        app.audit.depth(),
        app.audit.dropped(),
        app.external_keys.fetch_counts(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
