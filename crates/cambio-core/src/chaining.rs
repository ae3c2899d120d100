//! Identity chaining across trust domains, issuing side (draft-ietf-oauth-identity-chaining):
//! a client of this realm exchanges an access token for a JWT authorization grant aimed at the
//! authorization server of another trust domain, which redeems it with the RFC 7523 JWT bearer
//! grant. The other domain's authorization server is registered here as a client whose
//! attributes are the realm's policy for that domain:
//!
//! - [`CLIENT_AUTHORIZATION_SERVER`]: its identifier, the grant's `aud` (required; it marks the
//!   client as a trusted foreign authorization server, named by `audience` as a client id or by
//!   `resource` as this identifier);
//! - [`CLIENT_REQUESTERS`]: the clients allowed to ask for grants for it;
//! - [`CLIENT_SUBJECT_CLAIM`]: which claim of the subject token becomes the grant's `sub`
//!   (`sub`, `preferred_username` or `email`);
//! - [`CLIENT_CLAIMS`]: the other claims that cross (nothing else does);
//! - [`CLIENT_LIFETIME`]: the grant's lifetime in seconds (default 60, at most 300), never
//!   beyond the subject token's.

use serde_json::{Map, Value};

use crate::error::{OAuthError, OAuthResult};
use crate::model::Client;
use crate::tokens::AccessTokenClaims;

pub const CLIENT_AUTHORIZATION_SERVER: &str = "cambio.chaining.authorizationServer";
pub const CLIENT_REQUESTERS: &str = "cambio.chaining.requesters";
pub const CLIENT_SUBJECT_CLAIM: &str = "cambio.chaining.subjectClaim";
pub const CLIENT_CLAIMS: &str = "cambio.chaining.claims";
pub const CLIENT_LIFETIME: &str = "cambio.chaining.lifetime";
pub const DEFAULT_LIFETIME: u64 = 60;
pub const MAX_LIFETIME: u64 = 300;
/// Claims that are the grant's own and never copied from the subject token.
const OWN_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "client_id",
    "azp",
    "scope",
    "cnf",
    "act",
    "may_act",
    "typ",
    "sid",
];

/// The foreign authorization server a client stands for, if it is one.
pub fn authorization_server(client: &Client) -> Option<&str> {
    client
        .attribute(CLIENT_AUTHORIZATION_SERVER)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A grant request as the token endpoint read it.
#[derive(Debug, Clone, Copy)]
pub struct ChainingRequest<'a> {
    pub issuer: &'a str,
    pub requester: &'a Client,
    /// The client standing for the foreign authorization server.
    pub target: &'a Client,
    /// The subject token, live (the caller checked it, its user and its client).
    pub subject: &'a AccessTokenClaims,
    pub scope: Option<&'a str>,
    pub now: u64,
    pub jti: &'a str,
}

/// The claims of the JWT authorization grant, or the refusal.
///
/// # Errors
/// `access_denied` when the requester may not ask for grants for this domain or may not
/// present the subject token, `invalid_request` when the subject lacks the claim that names
/// it there, `invalid_scope` for a scope wider than the subject's.
pub fn decide(request: &ChainingRequest<'_>) -> OAuthResult<Map<String, Value>> {
    let target = request.target;
    let domain = authorization_server(target)
        .ok_or_else(|| OAuthError::invalid_request("Not a trusted authorization server"))?;
    let requester = &request.requester.client_id;
    let allowed = target
        .attribute(CLIENT_REQUESTERS)
        .unwrap_or("")
        .split_whitespace()
        .any(|id| id == requester);
    if !allowed || !request.requester.is_confidential() {
        return Err(OAuthError::access_denied("Client not allowed to exchange"));
    }
    // Only a party the subject token was meant for, or issued to, may carry it across
    // (the draft's "Authorized use of Subject Token").
    let subject = request.subject;
    if subject.azp != *requester && !subject.aud.iter().any(|a| a == requester) {
        return Err(OAuthError::access_denied(
            "Client is not within the token audience",
        ));
    }
    let claims = serde_json::to_value(subject)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let subject_claim = target.attribute(CLIENT_SUBJECT_CLAIM).unwrap_or("sub");
    let sub = match subject_claim {
        "sub" | "preferred_username" | "email" => claims
            .get(subject_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                OAuthError::invalid_request(format!(
                    "The subject has no {subject_claim} to name it in the other domain"
                ))
            })?,
        _ => {
            return Err(OAuthError::invalid_request(
                "The authorization server's subject claim is misconfigured",
            ));
        }
    };
    let lifetime = target
        .attribute(CLIENT_LIFETIME)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&v| v > 0)
        .unwrap_or(DEFAULT_LIFETIME)
        .min(MAX_LIFETIME);
    let mut grant = Map::new();
    grant.insert("iss".into(), request.issuer.into());
    grant.insert("sub".into(), sub.into());
    grant.insert("aud".into(), domain.into());
    grant.insert("iat".into(), request.now.into());
    grant.insert(
        "exp".into(),
        request.now.saturating_add(lifetime).min(subject.exp).into(),
    );
    grant.insert("jti".into(), request.jti.into());
    grant.insert("client_id".into(), requester.as_str().into());
    if let Some(scope) = narrowed_scope(request.scope, &subject.scope)? {
        grant.insert("scope".into(), scope.into());
    }
    for name in target
        .attribute(CLIENT_CLAIMS)
        .unwrap_or("")
        .split_whitespace()
    {
        if OWN_CLAIMS.contains(&name) {
            continue;
        }
        if let Some(value) = claims.get(name).filter(|v| !v.is_null()) {
            grant.insert(name.into(), value.clone());
        }
    }
    Ok(grant)
}

/// The requested scope, within the subject's; none requested, none carried.
fn narrowed_scope(requested: Option<&str>, allowed: &str) -> OAuthResult<Option<String>> {
    match requested.filter(|r| r.split_whitespace().next().is_some()) {
        None => Ok(None),
        Some(requested) => crate::scope::within(requested, allowed)
            .map(Some)
            .ok_or_else(|| {
                OAuthError::invalid_scope("scope must lie within the subject token's scope")
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client(id: &str, attributes: &[(&str, &str)]) -> Client {
        Client {
            client_id: id.into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn subject() -> AccessTokenClaims {
        serde_json::from_value(json!({
            "exp": 1_200, "iat": 900, "jti": "t-1", "iss": "https://a.example/realms/a",
            "aud": ["requester"], "sub": "u-1", "typ": "Bearer", "azp": "app",
            "client_id": "app", "scope": "openid email orders",
            "preferred_username": "alice", "email": "alice@a.example"
        }))
        .unwrap()
    }

    fn domain_b(attributes: &[(&str, &str)]) -> Client {
        let mut all = vec![
            (CLIENT_AUTHORIZATION_SERVER, "https://b.example/realms/b"),
            (CLIENT_REQUESTERS, "requester"),
        ];
        all.extend_from_slice(attributes);
        client("domain-b", &all)
    }

    #[test]
    fn a_grant_carries_only_what_the_domain_policy_lets_cross() {
        let target = domain_b(&[
            (CLIENT_SUBJECT_CLAIM, "preferred_username"),
            (CLIENT_CLAIMS, "email iss groups"),
        ]);
        let requester = client("requester", &[]);
        let subject = subject();
        let grant = decide(&ChainingRequest {
            issuer: "https://a.example/realms/a",
            requester: &requester,
            target: &target,
            subject: &subject,
            scope: Some("orders"),
            now: 1_000,
            jti: "g-1",
        })
        .unwrap();
        assert_eq!(
            Value::Object(grant),
            json!({"iss": "https://a.example/realms/a", "sub": "alice",
                   "aud": "https://b.example/realms/b", "iat": 1_000, "exp": 1_060,
                   "jti": "g-1", "client_id": "requester", "scope": "orders",
                   "email": "alice@a.example"})
        );
    }

    #[test]
    fn refusals_name_their_rule() {
        let subject = subject();
        let requester = client("requester", &[]);
        let outsider = client("outsider", &[]);
        let target = domain_b(&[]);
        let base = ChainingRequest {
            issuer: "https://a.example/realms/a",
            requester: &requester,
            target: &target,
            subject: &subject,
            scope: None,
            now: 1_000,
            jti: "g-1",
        };
        let code = |r: ChainingRequest<'_>| decide(&r).unwrap_err().code.as_str();
        assert_eq!(
            code(ChainingRequest {
                requester: &outsider,
                ..base
            }),
            "access_denied"
        );
        assert_eq!(
            code(ChainingRequest {
                scope: Some("admin"),
                ..base
            }),
            "invalid_scope"
        );
        let no_email = domain_b(&[(CLIENT_SUBJECT_CLAIM, "phone_number")]);
        assert_eq!(
            code(ChainingRequest {
                target: &no_email,
                ..base
            }),
            "invalid_request"
        );
        let plain = client("plain", &[(CLIENT_REQUESTERS, "requester")]);
        assert_eq!(
            code(ChainingRequest {
                target: &plain,
                ..base
            }),
            "invalid_request"
        );
        // A requester outside the subject token's audience may not carry it across.
        let other = client("other", &[]);
        let all = domain_b(&[(CLIENT_REQUESTERS, "other requester")]);
        assert_eq!(
            code(ChainingRequest {
                requester: &other,
                target: &all,
                ..base
            }),
            "access_denied"
        );
        // The lifetime never passes the subject's expiry.
        let grant = decide(&ChainingRequest { now: 1_190, ..base }).unwrap();
        assert_eq!(grant["exp"], 1_200);
    }
}
