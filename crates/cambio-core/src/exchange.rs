//! Token exchange (RFC 8693) with the semantics of Keycloak's standard token exchange (V2).
//!
//! The server verifies the subject (and actor) token's signature, lifetime and revocation
//! state, looks up the subject's current user, and hands everything here. This module decides
//! the issued claims or the exact OAuth error; it reads no clock and draws no random numbers.

use serde_json::{Map, Value};

use crate::error::{OAuthError, OAuthResult};
use crate::form::FormParams;
use crate::issue::{self, IssueSpec, Issued, RefreshData, RoleCeiling};
use crate::model::{Client, OFFLINE_ACCESS, User};
use crate::realm::{RealmSnapshot, RoleSet};
use crate::scope::GrantedScope;
use crate::tokens::{AccessTokenClaims, MAX_EXCHANGE_DEPTH};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const TOKEN_TYPE_REFRESH: &str = "urn:ietf:params:oauth:token-type:refresh_token";
pub const TOKEN_TYPE_ID: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The largest subject or actor token accepted; anything longer is refused before decoding.
pub const MAX_SUBJECT_TOKEN_BYTES: usize = 16 * 1024;

/// What the requester asked to receive (`requested_token_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestedType {
    AccessToken,
    RefreshToken,
    IdToken,
}

impl RequestedType {
    pub fn urn(self) -> &'static str {
        match self {
            RequestedType::AccessToken => TOKEN_TYPE_ACCESS,
            RequestedType::RefreshToken => TOKEN_TYPE_REFRESH,
            RequestedType::IdToken => TOKEN_TYPE_ID,
        }
    }
}

/// The exchange parameters, checked for shape before any token is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeParams<'a> {
    pub subject_token: &'a str,
    pub requested: RequestedType,
    pub audiences: Vec<&'a str>,
    pub scope: Option<&'a str>,
    pub actor_token: Option<&'a str>,
}

impl<'a> ExchangeParams<'a> {
    /// Reads the parameters and refuses a requester that may not exchange at all. Runs before
    /// the subject token is verified so that a refused request costs no signature check.
    pub fn parse(form: &'a FormParams, requester: &Client) -> OAuthResult<ExchangeParams<'a>> {
        if !requester.is_confidential() {
            return Err(OAuthError::invalid_client(
                "Public client is not allowed to exchange token",
            ));
        }
        if !requester.standard_exchange_enabled() {
            return Err(OAuthError::invalid_request(
                "Standard token exchange is not enabled for the requested client",
            ));
        }
        let subject_token = form.require("subject_token")?;
        if subject_token.len() > MAX_SUBJECT_TOKEN_BYTES {
            return Err(OAuthError::invalid_request("Invalid token"));
        }
        // python-keycloak omits subject_token_type; an access token is the only type taken.
        match form.get("subject_token_type") {
            None | Some(TOKEN_TYPE_ACCESS) => {}
            Some(_) => {
                return Err(OAuthError::invalid_request(
                    "Parameter 'subject_token' supports access tokens only",
                ));
            }
        }
        let requested = match form.get("requested_token_type") {
            None | Some(TOKEN_TYPE_ACCESS) => RequestedType::AccessToken,
            Some(TOKEN_TYPE_REFRESH) => RequestedType::RefreshToken,
            Some(TOKEN_TYPE_ID) => RequestedType::IdToken,
            Some(_) => return Err(OAuthError::invalid_request("requested_token_type unsupported")),
        };
        let actor_token = form.get("actor_token");
        match (actor_token, form.get("actor_token_type")) {
            (None, None) => {}
            (Some(token), Some(TOKEN_TYPE_ACCESS)) if token.len() <= MAX_SUBJECT_TOKEN_BYTES => {}
            (Some(_), Some(TOKEN_TYPE_ACCESS)) => {
                return Err(OAuthError::invalid_request("Invalid actor token"));
            }
            (Some(_), None) => {
                return Err(OAuthError::invalid_request("Parameter 'actor_token_type' required"));
            }
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "Parameter 'actor_token_type' given without 'actor_token'",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(OAuthError::invalid_request("actor_token_type unsupported"));
            }
        }
        if form.contains("resource") {
            return Err(OAuthError::new(
                crate::ErrorCode::InvalidTarget,
                "Parameter 'resource' is not supported; use 'audience'",
            ));
        }
        Ok(ExchangeParams {
            subject_token,
            requested,
            audiences: form.all("audience").collect(),
            scope: form.get("scope"),
            actor_token,
        })
    }
}

/// A verified, active token of this realm: its signature, issuer, type, expiry and
/// revocation state were checked by the caller.
#[derive(Debug, Clone)]
pub struct ActiveToken {
    pub claims: AccessTokenClaims,
    /// Claims Cambio never issues but must notice (`cnf`, `may_act`).
    pub cnf: bool,
    pub may_act: Option<Value>,
}

impl ActiveToken {
    /// Reads our access token claims out of a verified JWT payload.
    pub fn from_claims(mut claims: Map<String, Value>) -> OAuthResult<ActiveToken> {
        let cnf = claims.remove("cnf").is_some();
        let may_act = claims.remove("may_act");
        let claims: AccessTokenClaims = serde_json::from_value(Value::Object(claims))
            .map_err(|_| OAuthError::invalid_request("Invalid token"))?;
        Ok(ActiveToken {
            claims,
            cnf,
            may_act,
        })
    }

    /// The roles the token carries, for capping what an exchange may issue.
    pub fn roles(&self) -> RoleSet {
        RoleSet {
            realm: self
                .claims
                .realm_access
                .as_ref()
                .map(|r| r.roles.clone())
                .unwrap_or_default(),
            clients: self
                .claims
                .resource_access
                .as_ref()
                .map(|m| m.iter().map(|(c, r)| (c.clone(), r.roles.clone())).collect())
                .unwrap_or_default(),
        }
    }

    fn is_offline(&self) -> bool {
        self.claims.scope.split(' ').any(|s| s == OFFLINE_ACCESS)
    }
}

/// Everything an exchange decision needs.
#[derive(Debug, Clone)]
pub struct ExchangeInput<'a> {
    pub realm: &'a RealmSnapshot,
    pub requester: &'a Client,
    pub params: &'a ExchangeParams<'a>,
    pub subject: &'a ActiveToken,
    /// The subject's user as it is now (roles, enabled).
    pub subject_user: &'a User,
    pub actor: Option<&'a ActiveToken>,
    pub now: u64,
    pub access_jti: String,
    pub id_jti: String,
}

/// The outcome of an exchange: tokens to sign and the type to report.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeDecision {
    pub issued_token_type: RequestedType,
    pub issued: Issued,
}

pub fn decide(input: ExchangeInput<'_>) -> OAuthResult<ExchangeDecision> {
    let ExchangeInput {
        realm,
        requester,
        params,
        subject,
        subject_user,
        actor,
        now,
        access_jti,
        id_jti,
    } = input;
    let invalid_token = || OAuthError::invalid_request("Invalid token");
    if !subject_user.enabled || subject.claims.exp <= now {
        return Err(invalid_token());
    }
    if subject.cnf {
        return Err(OAuthError::invalid_request(
            "Sender-constrained tokens are not supported as subject_token",
        ));
    }
    // The requester must be a party the subject token was meant for, or its holder.
    let own = &requester.client_id;
    if !subject.claims.aud.contains(own) && subject.claims.azp != *own {
        return Err(OAuthError::access_denied(
            "Client is not within the token audience",
        ));
    }
    let act = delegation(subject, actor, requester)?;
    let mut exchanged_from = Vec::with_capacity(subject.claims.exchanged_from.len() + 1);
    exchanged_from.push(subject.claims.jti.clone());
    exchanged_from.extend(subject.claims.exchanged_from.iter().cloned());
    if exchanged_from.len() > MAX_EXCHANGE_DEPTH {
        return Err(OAuthError::invalid_request("Token exchange chain is too long"));
    }

    let scope = GrantedScope::resolve(realm, requester, params.scope)?.narrow_to_subject(
        realm,
        &subject.claims.scope,
        params.scope,
    )?;
    let refresh_lifetime = match params.requested {
        RequestedType::RefreshToken => {
            if !requester.exchange_refresh_allowed() {
                return Err(OAuthError::invalid_request("requested_token_type unsupported"));
            }
            if subject.claims.sid.is_none() || subject.is_offline() || scope.offline() {
                return Err(OAuthError::invalid_request(
                    "Refresh token not valid as requested_token_type because creating a new session is needed",
                ));
            }
            Some(requester.refresh_lifespan(&realm.realm))
        }
        _ => None,
    };

    let audience_filter = resolve_audiences(realm, &params.audiences)?;
    // Never more than the user holds now through the requester, nor more than the subject
    // token carried.
    let ceiling = subject.roles();
    let roles = realm
        .roles_in_scope(subject_user, requester)
        .intersect(&ceiling);
    let mut lifetime = requester.access_token_lifespan(&realm.realm);
    if realm.realm.exchange_lifetime_capped_by_subject {
        lifetime = lifetime.min(subject.claims.exp.saturating_sub(now));
    }
    if let Some(refresh) = refresh_lifetime {
        lifetime = lifetime.min(refresh);
    }
    let mut scope_for_issue = scope;
    if params.requested == RequestedType::IdToken {
        scope_for_issue.openid = true;
    }
    let issued = issue::issue(
        realm,
        IssueSpec {
            client: requester,
            user: subject_user,
            scope: &scope_for_issue,
            session_id: subject.claims.sid.as_deref(),
            roles,
            audience_filter: audience_filter.as_deref(),
            lifetime,
            refresh_lifetime,
            offline: false,
            nonce: None,
            data: RefreshData {
                audience_filter: audience_filter.clone(),
                act,
                exchanged_from,
                auth_time: subject.claims.auth_time,
                role_ceiling: Some(RoleCeiling::from(&ceiling)),
            },
            now,
            access_jti,
            id_jti,
        },
    );
    if let Some(filter) = &audience_filter {
        if let Some(missing) = filter.iter().find(|a| !issued.access.aud.contains(a)) {
            return Err(OAuthError::invalid_request(format!(
                "Requested audience not available: {missing}"
            )));
        }
    }
    Ok(ExchangeDecision {
        issued_token_type: params.requested,
        issued,
    })
}

/// Looks up each requested audience; they must be existing, enabled clients.
fn resolve_audiences(realm: &RealmSnapshot, audiences: &[&str]) -> OAuthResult<Option<Vec<String>>> {
    if audiences.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(audiences.len());
    for audience in audiences {
        let client = realm
            .client_by_client_id(audience)
            .ok_or_else(|| OAuthError::invalid_client("Audience not found"))?;
        if !client.enabled {
            return Err(OAuthError::invalid_client("Client disabled"));
        }
        if !out.iter().any(|a| a == audience) {
            out.push((*audience).to_owned());
        }
    }
    Ok(Some(out))
}

/// The `act` claim of the issued token (RFC 8693 §4.1, §4.4).
fn delegation(subject: &ActiveToken, actor: Option<&ActiveToken>, requester: &Client) -> OAuthResult<Option<Value>> {
    let Some(actor) = actor else {
        // A subject that names who may act for it cannot be exchanged without that actor:
        // dropping the marker would hide the delegation.
        if subject.may_act.is_some() {
            return Err(OAuthError::invalid_request(
                "actor_token is required: the subject token names who may act for it",
            ));
        }
        return Ok(subject.claims.act.clone());
    };
    if actor.claims.azp != requester.client_id {
        return Err(OAuthError::invalid_request(
            "actor_token was not issued to the requesting client",
        ));
    }
    if let Some(may_act) = &subject.may_act {
        let sub_ok = may_act.get("sub").and_then(Value::as_str) == Some(actor.claims.sub.as_str());
        let client_ok = may_act
            .get("client_id")
            .and_then(Value::as_str)
            .is_none_or(|c| c == actor.claims.client_id);
        if !sub_ok || !client_ok {
            return Err(OAuthError::access_denied(
                "Actor is not allowed to act for the subject",
            ));
        }
    }
    let mut act = Map::new();
    act.insert("sub".into(), Value::String(actor.claims.sub.clone()));
    act.insert("client_id".into(), Value::String(actor.claims.client_id.clone()));
    // Earlier actors nest inside, least recent deepest (RFC 8693 §4.1).
    if let Some(prior) = &subject.claims.act {
        act.insert("act".into(), prior.clone());
    }
    Ok(Some(Value::Object(act)))
}
