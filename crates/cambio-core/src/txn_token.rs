//! Transaction Tokens (draft-ietf-oauth-transaction-tokens-10): a realm acting as the
//! Transaction Token Service of one trust domain. A workload at the edge exchanges the access
//! token it was called with for a short-lived Txn-Token that carries the subject, the purpose
//! (`scope`) and the context of one call through the workloads behind it; a workload holding a
//! Txn-Token may get a replacement, which keeps the transaction, subject and trust domain and
//! never widens what the token allows.
//!
//! Realm policy, all off by default:
//! - [`REALM_TRUST_DOMAIN`]: the trust domain's name (the Txn-Token's `aud`); without it the
//!   realm issues no Txn-Tokens;
//! - [`REALM_LIFETIME`]: seconds a Txn-Token lives (default [`DEFAULT_LIFETIME`], at most
//!   [`MAX_LIFETIME`]), never beyond the token it came from;
//! - per client, [`CLIENT_MAY_REQUEST`] (a Txn-Token from an access token) and
//!   [`CLIENT_MAY_REPLACE`] (a replacement from a Txn-Token); only confidential clients, since
//!   the service must authenticate the workload.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{ErrorCode, OAuthError, OAuthResult};
use crate::model::Client;
use crate::realm::RealmSnapshot;

/// The token type of a Txn-Token in token exchange requests and answers.
pub const TXN_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:txn_token";
/// The JWT `typ` header of a Txn-Token; no access token has it, and Txn-Tokens are verified
/// only as this type, so neither is ever taken for the other.
pub const TXN_TOKEN_TYP: &str = "txntoken+jwt";
/// Realm attribute: the trust domain (turns the service on).
pub const REALM_TRUST_DOMAIN: &str = "cambio.txnTokens.trustDomain";
/// Realm attribute: a Txn-Token's lifetime in seconds.
pub const REALM_LIFETIME: &str = "cambio.txnTokens.lifetime";
/// Client attribute: the client may exchange access tokens for Txn-Tokens.
pub const CLIENT_MAY_REQUEST: &str = "cambio.txnTokens.request";
/// Client attribute: the client may replace Txn-Tokens.
pub const CLIENT_MAY_REPLACE: &str = "cambio.txnTokens.replace";
pub const DEFAULT_LIFETIME: u64 = 60;
pub const MAX_LIFETIME: u64 = 300;
/// The largest `request_context` or `request_details` taken, as JSON text.
pub const MAX_CONTEXT_BYTES: usize = 4096;
/// How many workloads a transaction's chain may name (a replacement beyond it is refused).
pub const MAX_CHAIN: usize = 16;

/// The claims of a Txn-Token (draft §5.2), plus the call chain a replacement must keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TxnTokenClaims {
    pub iss: String,
    pub iat: u64,
    pub exp: u64,
    /// The trust domain.
    pub aud: String,
    /// The transaction, the same through every replacement.
    pub txn: String,
    pub sub: String,
    /// The purpose of the transaction.
    pub scope: String,
    /// The transaction's immutable details (from `request_details`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tctx: Option<Map<String, Value>>,
    /// The request's environment (from `request_context`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rctx: Option<Map<String, Value>>,
    /// The workload (client) that requested this token.
    pub req_wl: String,
    /// The workloads that requested the earlier tokens of this transaction, first first. The
    /// draft asks a service to keep the call chain through replacements and leaves the form
    /// open; this is Cambio's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub req_wl_chain: Vec<String>,
}

/// What a Txn-Token is requested from.
#[derive(Debug, Clone, Copy)]
pub enum TxnSubject<'a> {
    /// One of the realm's access tokens, live (the caller checked it and its user).
    AccessToken {
        sub: &'a str,
        scope: &'a str,
        exp: u64,
    },
    /// A Txn-Token of this trust domain, verified, to be replaced.
    TxnToken(&'a TxnTokenClaims),
}

/// A Txn-Token request (draft §7.1), as the token endpoint read it.
#[derive(Debug, Clone, Copy)]
pub struct TxnRequest<'a> {
    pub realm: &'a RealmSnapshot,
    pub requester: &'a Client,
    pub audience: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub request_context: Option<&'a str>,
    pub request_details: Option<&'a str>,
    pub subject: TxnSubject<'a>,
    pub now: u64,
    /// A fresh transaction id, used when the subject is not a Txn-Token.
    pub new_txn: &'a str,
}

/// The realm's trust domain, when it issues Txn-Tokens.
pub fn trust_domain(realm: &RealmSnapshot) -> Option<&str> {
    realm
        .realm
        .attributes
        .get(REALM_TRUST_DOMAIN)
        .map(|d| d.trim())
        .filter(|d| !d.is_empty())
}

/// The lifetime a realm gives its Txn-Tokens.
pub fn lifetime(realm: &RealmSnapshot) -> u64 {
    realm
        .realm
        .attributes
        .get(REALM_LIFETIME)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&v| v > 0)
        .unwrap_or(DEFAULT_LIFETIME)
        .min(MAX_LIFETIME)
}

fn invalid_target(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidTarget, description)
}

/// Decides the claims of the Txn-Token a request gets, or the refusal.
///
/// # Errors
/// `invalid_request` when the realm issues none or a context is not a small JSON object,
/// `unauthorized_client` when the requester may not ask for this, `invalid_target` for an
/// audience other than the trust domain, `invalid_scope` for a missing purpose or one wider
/// than the subject's, `invalid_request` for a replacement that changes the transaction's
/// details.
pub fn decide(request: &TxnRequest<'_>) -> OAuthResult<TxnTokenClaims> {
    let domain = trust_domain(request.realm)
        .ok_or_else(|| OAuthError::invalid_request("This realm issues no transaction tokens"))?;
    let replacing = matches!(request.subject, TxnSubject::TxnToken(_));
    let permission = if replacing {
        CLIENT_MAY_REPLACE
    } else {
        CLIENT_MAY_REQUEST
    };
    if !request.requester.is_confidential() || !request.requester.attribute_is_true(permission) {
        return Err(OAuthError::unauthorized_client(if replacing {
            "Client not allowed to replace transaction tokens"
        } else {
            "Client not allowed to request transaction tokens"
        }));
    }
    match request.audience {
        Some(audience) if audience == domain => {}
        Some(_) => return Err(invalid_target("audience must name this trust domain")),
        None => return Err(invalid_target("audience (the trust domain) is required")),
    }
    let (allowed_scope, subject_exp) = match request.subject {
        TxnSubject::AccessToken { scope, exp, .. } => (scope, exp),
        TxnSubject::TxnToken(held) => {
            if held.aud != domain {
                return Err(OAuthError::invalid_request(
                    "The transaction token belongs to another trust domain",
                ));
            }
            (held.scope.as_str(), held.exp)
        }
    };
    let scope = narrowed_scope(request.scope, allowed_scope)?;
    let rctx = context("request_context", request.request_context)?;
    let tctx = context("request_details", request.request_details)?;
    let exp = request
        .now
        .saturating_add(lifetime(request.realm))
        .min(subject_exp);
    let requester = request.requester.client_id.clone();
    Ok(match request.subject {
        TxnSubject::AccessToken { sub, .. } => TxnTokenClaims {
            iss: request.realm.issuer.clone(),
            iat: request.now,
            exp,
            aud: domain.to_owned(),
            txn: request.new_txn.to_owned(),
            sub: sub.to_owned(),
            scope,
            tctx,
            rctx,
            req_wl: requester,
            req_wl_chain: Vec::new(),
        },
        TxnSubject::TxnToken(held) => {
            let mut chain = held.req_wl_chain.clone();
            chain.push(held.req_wl.clone());
            if chain.len() > MAX_CHAIN {
                return Err(OAuthError::invalid_request(
                    "The transaction has been replaced too many times",
                ));
            }
            TxnTokenClaims {
                iss: request.realm.issuer.clone(),
                iat: request.now,
                exp,
                aud: held.aud.clone(),
                txn: held.txn.clone(),
                sub: held.sub.clone(),
                scope,
                tctx: kept_and_added("tctx", held.tctx.as_ref(), tctx)?,
                rctx: kept_and_added("rctx", held.rctx.as_ref(), rctx)?,
                req_wl: requester,
                req_wl_chain: chain,
            }
        }
    })
}

/// The requested purpose, which must be given and lie within what the subject allows (the
/// draft's §10 "Scope Processing"; an unknown subject scope is never taken as unlimited).
fn narrowed_scope(requested: Option<&str>, allowed: &str) -> OAuthResult<String> {
    let requested = requested.unwrap_or("");
    if requested.split_whitespace().next().is_none() {
        return Err(OAuthError::invalid_scope(
            "scope (the transaction's purpose) is required",
        ));
    }
    crate::scope::within(requested, allowed)
        .ok_or_else(|| OAuthError::invalid_scope("scope must lie within the subject token's scope"))
}

/// A context parameter as a JSON object of bounded size.
fn context(name: &'static str, text: Option<&str>) -> OAuthResult<Option<Map<String, Value>>> {
    let Some(text) = text else {
        return Ok(None);
    };
    let invalid = || {
        OAuthError::invalid_request(format!(
            "{name} must be a JSON object of at most {MAX_CONTEXT_BYTES} bytes"
        ))
    };
    if text.len() > MAX_CONTEXT_BYTES {
        return Err(invalid());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => Ok(Some(object)),
        _ => Err(invalid()),
    }
}

/// A replacement's context: everything the held token asserts, unchanged, and whatever new
/// members the request adds (the draft lets a replacement add assertions and narrow them;
/// Cambio cannot tell a narrowing change from a widening one in free-form JSON, so it takes
/// no change at all).
fn kept_and_added(
    claim: &str,
    held: Option<&Map<String, Value>>,
    requested: Option<Map<String, Value>>,
) -> OAuthResult<Option<Map<String, Value>>> {
    let mut out = held.cloned().unwrap_or_default();
    for (key, value) in requested.into_iter().flatten() {
        match out.get(&key) {
            Some(existing) if *existing != value => {
                return Err(OAuthError::invalid_request(format!(
                    "A replacement may not change {claim}.{key}"
                )));
            }
            Some(_) => {}
            None => {
                out.insert(key, value);
            }
        }
    }
    Ok((!out.is_empty() || held.is_some()).then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Realm;
    use serde_json::json;

    fn realm(attributes: &[(&str, &str)]) -> RealmSnapshot {
        let realm = Realm {
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        RealmSnapshot::new(
            realm,
            "https://idp.example/realms/r".into(),
            vec![],
            vec![],
            vec![],
        )
    }

    fn workload(id: &str, permissions: &[&str]) -> Client {
        Client {
            client_id: id.into(),
            public_client: false,
            secret: Some("s".into()),
            attributes: permissions
                .iter()
                .map(|p| (p.to_string(), "true".to_string()))
                .collect(),
            ..Default::default()
        }
    }

    fn request<'a>(
        realm: &'a RealmSnapshot,
        requester: &'a Client,
        subject: TxnSubject<'a>,
        scope: &'a str,
    ) -> TxnRequest<'a> {
        TxnRequest {
            realm,
            requester,
            audience: Some("trust.example"),
            scope: Some(scope),
            request_context: Some(r#"{"req_ip":"192.0.2.7"}"#),
            request_details: Some(r#"{"action":"BUY","ticker":"MSFT"}"#),
            subject,
            now: 1_000,
            new_txn: "txn-1",
        }
    }

    const ACCESS: TxnSubject<'static> = TxnSubject::AccessToken {
        sub: "user-1",
        scope: "openid trade.stocks trade.read",
        exp: 1_030,
    };

    #[test]
    fn an_access_token_becomes_a_short_txn_token_for_the_trust_domain() {
        let realm = realm(&[
            (REALM_TRUST_DOMAIN, "trust.example"),
            (REALM_LIFETIME, "900"),
        ]);
        let gateway = workload("gateway", &[CLIENT_MAY_REQUEST]);
        let claims = decide(&request(&realm, &gateway, ACCESS, "trade.stocks")).unwrap();
        assert_eq!(claims.aud, "trust.example");
        assert_eq!(
            (claims.sub.as_str(), claims.txn.as_str()),
            ("user-1", "txn-1")
        );
        assert_eq!(claims.scope, "trade.stocks");
        assert_eq!(claims.req_wl, "gateway");
        assert_eq!(
            Value::Object(claims.tctx.unwrap()),
            json!({"action":"BUY","ticker":"MSFT"})
        );
        assert_eq!(
            Value::Object(claims.rctx.unwrap()),
            json!({"req_ip":"192.0.2.7"})
        );
        // The lifetime is capped at 300 s and at the subject's own expiry.
        assert_eq!(claims.exp, 1_030);
    }

    #[test]
    fn refusals_name_their_rule() {
        let realm_on = realm(&[(REALM_TRUST_DOMAIN, "trust.example")]);
        let realm_off = realm(&[]);
        let gateway = workload("gateway", &[CLIENT_MAY_REQUEST]);
        let stranger = workload("stranger", &[]);
        let mut public = workload("spa", &[CLIENT_MAY_REQUEST]);
        public.public_client = true;
        public.secret = None;
        let code = |r: TxnRequest<'_>| decide(&r).unwrap_err().code.as_str().to_owned();
        assert_eq!(
            code(request(&realm_off, &gateway, ACCESS, "trade.stocks")),
            "invalid_request"
        );
        assert_eq!(
            code(request(&realm_on, &stranger, ACCESS, "trade.stocks")),
            "unauthorized_client"
        );
        assert_eq!(
            code(request(&realm_on, &public, ACCESS, "trade.stocks")),
            "unauthorized_client"
        );
        assert_eq!(
            code(request(&realm_on, &gateway, ACCESS, "trade.admin")),
            "invalid_scope"
        );
        assert_eq!(
            code(request(&realm_on, &gateway, ACCESS, " ")),
            "invalid_scope"
        );
        let mut elsewhere = request(&realm_on, &gateway, ACCESS, "trade.stocks");
        elsewhere.audience = Some("other.example");
        assert_eq!(code(elsewhere), "invalid_target");
        let mut not_object = request(&realm_on, &gateway, ACCESS, "trade.stocks");
        not_object.request_details = Some("[1,2]");
        assert_eq!(code(not_object), "invalid_request");
        let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(MAX_CONTEXT_BYTES));
        let mut too_big = request(&realm_on, &gateway, ACCESS, "trade.stocks");
        too_big.request_context = Some(&big);
        assert_eq!(code(too_big), "invalid_request");
    }

    #[test]
    fn a_replacement_keeps_the_transaction_and_never_widens_it() {
        let realm = realm(&[(REALM_TRUST_DOMAIN, "trust.example")]);
        let gateway = workload("gateway", &[CLIENT_MAY_REQUEST]);
        let orders = workload("orders", &[CLIENT_MAY_REPLACE]);
        let held = decide(&request(
            &realm,
            &gateway,
            ACCESS,
            "trade.stocks trade.read",
        ))
        .unwrap();
        let mut replace = request(&realm, &orders, TxnSubject::TxnToken(&held), "trade.read");
        replace.request_context = None;
        replace.request_details = Some(r#"{"ticker":"MSFT","venue":"XNAS"}"#);
        replace.now = 1_010;
        let replaced = decide(&replace).unwrap();
        assert_eq!(
            (replaced.txn.as_str(), replaced.sub.as_str()),
            ("txn-1", "user-1")
        );
        assert_eq!(replaced.scope, "trade.read");
        assert_eq!(replaced.req_wl, "orders");
        assert_eq!(replaced.req_wl_chain, ["gateway"]);
        assert_eq!(
            Value::Object(replaced.tctx.clone().unwrap()),
            json!({"action":"BUY","ticker":"MSFT","venue":"XNAS"})
        );
        assert_eq!(replaced.rctx, held.rctx);
        assert!(replaced.exp <= held.exp);
        let code = |r: TxnRequest<'_>| decide(&r).unwrap_err().code.as_str().to_owned();
        // Wider than the held token, a changed detail, a workload without the permission.
        let wider = request(
            &realm,
            &orders,
            TxnSubject::TxnToken(&replaced),
            "trade.stocks",
        );
        assert_eq!(code(wider), "invalid_scope");
        let mut changed = request(&realm, &orders, TxnSubject::TxnToken(&held), "trade.read");
        changed.request_details = Some(r#"{"ticker":"AAPL"}"#);
        assert_eq!(code(changed), "invalid_request");
        let replace_denied = request(&realm, &gateway, TxnSubject::TxnToken(&held), "trade.read");
        assert_eq!(code(replace_denied), "unauthorized_client");
    }
}
