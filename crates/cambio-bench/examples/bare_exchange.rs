//! The reference point for the exchange benchmark: a bare HTTP handler that does only the
//! unavoidable work of a token exchange, verifying one ES256 JWT and signing another, with the
//! same HTTP stack (axum, hyper, tokio) and allocator as `cambio`. No client authentication,
//! no realm, no revocation, no audit, no metrics: what it reaches on a machine is the reference
//! `cambio serve` is compared with (for an exchange that verifies its subject token).
//!
//! ```sh
//! cargo build --release -p cambio-bench --example bare_exchange
//! target/release/cambio-bench --server-bin target/release/examples/bare_exchange
//! ```
//!
//! It speaks just enough of `cambio serve` for `cambio-bench`: it ignores its arguments, prints
//! `listening on http://ADDR` for a port picked on 127.0.0.1, answers the password grant with a
//! signed token for alice, and any other form with an exchange of `subject_token`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    ParsedPublicKey,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ISSUER: &str = "http://127.0.0.1/realms/demo";

struct Keys {
    signer: EcdsaKeyPair,
    verifier: ParsedPublicKey,
    rng: SystemRandom,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn sign(keys: &Keys, claims: &Value) -> Option<String> {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"at+jwt","kid":"bare"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).ok()?);
    let input = format!("{header}.{payload}");
    let signature = keys.signer.sign(&keys.rng, input.as_bytes()).ok()?;
    Some(format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    ))
}

/// The verified claims of `token`, if its signature is good and it has not expired.
fn verify(keys: &Keys, token: &str, now: u64) -> Option<Value> {
    let (input, signature) = token.rsplit_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    keys.verifier
        .verify_sig(input.as_bytes(), &signature)
        .ok()?;
    let (_, payload) = input.split_once('.')?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    (claims["exp"].as_u64()? > now).then_some(claims)
}

fn json_response(body: &Value) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn token(State(keys): State<Arc<Keys>>, body: Bytes) -> Response {
    let now = now();
    let mut grant_type = None;
    let mut subject_token = None;
    let mut audience = None;
    for (name, value) in form_urlencoded::parse(&body) {
        match &*name {
            "grant_type" => grant_type = Some(value),
            "subject_token" => subject_token = Some(value),
            "audience" => audience = Some(value),
            _ => {}
        }
    }
    let claims = if grant_type.as_deref() == Some("password") {
        json!({
            "iss": ISSUER, "sub": "alice", "aud": ["requester-client", "orders-api"],
            "exp": now + 3600, "iat": now, "jti": "login", "azp": "subject-client",
            "scope": "email profile", "realm_access": {"roles": ["user"]},
            "resource_access": {"orders-api": {"roles": ["view-orders"]}},
        })
    } else {
        let Some(mut claims) = subject_token.and_then(|t| verify(&keys, &t, now)) else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        claims["aud"] = json!(audience.as_deref().unwrap_or("orders-api"));
        claims["azp"] = json!("requester-client");
        claims["iat"] = json!(now);
        claims["exp"] = json!(now + 300);
        claims
    };
    match sign(&keys, &claims) {
        Some(token) => json_response(&json!({
            "access_token": token,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "Bearer",
            "expires_in": 300,
        })),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let signer = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)?;
    let verifier = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, signer.public_key().as_ref())?;
    let keys = Arc::new(Keys {
        signer,
        verifier,
        rng: SystemRandom::new(),
    });
    let app = Router::new()
        .route("/realms/demo/protocol/openid-connect/token", post(token))
        .with_state(keys);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
