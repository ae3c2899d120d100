//! The browser flow's front door and CORS: authorization requests that must be refused on the
//! spot (unknown client, unregistered redirect URI), refused at the redirect URI (response type,
//! PKCE, `prompt=none`), or answered with the login page; and the CORS answers for a registered
//! web origin and for another.

use serde_json::{Map, Value, json};

use super::*;

const CALLBACK: &str = "https://app.example/callback";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// One authorization request, by name: its query.
const AUTHORIZE: [(&str, &[(&str, &str)]); 7] = [
    (
        "authorize: unknown client",
        &[
            ("client_id", "no-such-app"),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
        ],
    ),
    (
        "authorize: unregistered redirect_uri",
        &[
            ("client_id", "web-app"),
            ("redirect_uri", "https://evil.example/callback"),
            ("response_type", "code"),
        ],
    ),
    (
        "authorize: redirect_uri with a path escape",
        &[
            ("client_id", "web-app"),
            ("redirect_uri", "https://app.example/callback/../admin"),
            ("response_type", "code"),
        ],
    ),
    (
        "authorize: implicit response type",
        &[
            ("client_id", "web-app"),
            ("redirect_uri", CALLBACK),
            ("response_type", "token"),
            ("state", "s1"),
        ],
    ),
    (
        "authorize: PKCE required, no challenge",
        &[
            ("client_id", "web-app"),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s2"),
        ],
    ),
    (
        "authorize: prompt=none without a session",
        &[
            ("client_id", "web-app"),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s3"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("prompt", "none"),
        ],
    ),
    (
        "authorize: login page",
        &[
            ("client_id", "web-app"),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s4"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    ),
];

pub(super) async fn front_door(kc: &Peer, cb: &Peer, report: &mut Report) {
    for (name, query) in AUTHORIZE {
        let (a, b) = (authorize(kc, query).await, authorize(cb, query).await);
        for (aspect, value) in &a {
            report.compare(name, aspect, value, &b[aspect]);
        }
    }
    for (name, origin) in [
        (
            "CORS preflight: registered web origin",
            "https://app.example",
        ),
        ("CORS preflight: other origin", "https://evil.example"),
    ] {
        let (a, b) = (preflight(kc, origin).await, preflight(cb, origin).await);
        for (aspect, value) in &a {
            report.compare(name, aspect, value, &b[aspect]);
        }
    }
}

/// What an authorization answer shows a browser: the status, whether it is a page, and where a
/// redirect leads (the callback and its parameters, `state` and `iss` by value, the rest by
/// name).
async fn authorize(peer: &Peer, query: &[(&str, &str)]) -> Map<String, Value> {
    let url = format!("{}?{}", peer.oidc("auth"), crate::encode_form(query));
    let response = peer.http.get(url).send().await.unwrap();
    let mut view = Map::new();
    view.insert("status".into(), json!(response.status().as_u16()));
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .to_owned();
    view.insert("content type".into(), json!(content_type));
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let target = location.as_deref().and_then(|l| url::Url::parse(l).ok());
    view.insert(
        "redirect target".into(),
        json!(target.as_ref().map(|u| {
            let path = u.path();
            // Keycloak sends a browser without a session to its login page by a redirect,
            // Cambio shows it in place; both are "the login page".
            if path.ends_with("/login-actions/authenticate") {
                "{login page}".to_owned()
            } else {
                format!("{}://{}{}", u.scheme(), u.host_str().unwrap_or(""), path)
            }
        })),
    );
    let params: Map<String, Value> = target
        .iter()
        .flat_map(|u| {
            u.query_pairs()
                .chain(
                    u.fragment()
                        .map(|f| url::form_urlencoded::parse(f.as_bytes()))
                        .into_iter()
                        .flatten(),
                )
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect::<Vec<_>>()
        })
        .map(|(k, v)| {
            let shown = match k.as_str() {
                "error" | "error_description" | "state" => json!(v),
                "iss" => json!(normalise_text(&v, &peer.base)),
                _ => json!("{present}"),
            };
            (k, shown)
        })
        .collect();
    if target.is_some() {
        view.insert("redirect parameters".into(), Value::Object(params));
    }
    view
}

/// A CORS preflight for a token request from `origin`: the status and the CORS headers.
async fn preflight(peer: &Peer, origin: &str) -> Map<String, Value> {
    let response = peer
        .http
        .request(reqwest::Method::OPTIONS, peer.oidc("token"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        json!(
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        )
    };
    let mut view = Map::new();
    view.insert("status".into(), json!(response.status().as_u16()));
    for name in [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
    ] {
        view.insert(name.into(), header(name));
    }
    view
}
