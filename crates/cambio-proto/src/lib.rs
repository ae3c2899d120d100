//! Wire types of Cambio's HTTP interface: OAuth 2.0 responses (RFC 6749 §5.1, RFC 8693 §2.2.1)
//! and the discovery document (RFC 8414, OpenID Connect Discovery), and the W3C
//! `traceparent` header ([`trace`]). No logic lives here beyond reading these formats.

pub mod admin;
#[cfg(test)]
mod fuzz_corpus;
pub mod trace;

use serde::{Deserialize, Serialize};

/// A successful token endpoint response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub token_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Keycloak compatibility: always 0, clients read it.
    #[serde(rename = "not-before-policy", default)]
    pub not_before_policy: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_state: Option<String>,
    pub scope: String,
    /// RFC 8693 §2.2.1: present on token exchange responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

/// An OAuth error response (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// The discovery document served at `.well-known/openid-configuration` and RFC 8414's path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub introspection_endpoint: String,
    pub userinfo_endpoint: String,
    pub end_session_endpoint: String,
    pub jwks_uri: String,
    pub revocation_endpoint: String,
    pub grant_types_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub response_modes_supported: Vec<String>,
    pub subject_types_supported: Vec<String>,
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub claims_supported: Vec<String>,
    /// RFC 9207 §3: every authorization response carries `iss`.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 9449 §5.1: the algorithms DPoP proofs may be signed with.
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// draft-ietf-oauth-identity-chaining §3: what a token exchange may ask for to cross into
    /// another trust domain.
    #[serde(default)]
    pub identity_chaining_requested_token_types_supported: Vec<String>,
    /// Cambio's own (no registered metadata says it): `resource` (RFC 8707) is accepted at
    /// the authorization, token (refresh included) and token-exchange requests.
    #[serde(default)]
    pub cambio_resource_indicators_supported: bool,
    /// Cambio's own: the resource URIs the realm's enabled clients stand for, listed only when
    /// the realm publishes them (`cambio.publishResourceUris`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cambio_resource_uris: Option<Vec<String>>,
}
