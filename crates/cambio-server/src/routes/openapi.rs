//! The OpenAPI 3 description of every endpoint, served at `/openapi.json`.
//!
//! The document is written by hand (`src/openapi.json`) and kept true by the `openapi` tests,
//! which send a request to every documented operation and run schemathesis against it.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The document, embedded at build time.
pub const DOCUMENT: &str = include_str!("../openapi.json");

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT).into_response()
}
