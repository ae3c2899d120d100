//! Token exchange (RFC 8693) with the semantics of Keycloak's standard token exchange (V2).
//!
//! The server verifies the subject (and actor) token's signature, lifetime and revocation
//! state, looks up the subject's current user, and hands everything here. This module decides
//! the issued claims or the exact OAuth error; it reads no clock and draws no random numbers.

use std::sync::Arc;

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

/// Which of Keycloak's two permission models admits the requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionModel {
    /// Standard token exchange (V2): the requester has `standard.token.exchange.enabled`.
    Standard,
    /// Fine-grained permissions (V1): the target's `token-exchange` permission names the
    /// requester. `target` is the audience client's `client_id`.
    Legacy { target: String },
}

/// Realm attribute: `true` makes the fine-grained (V1) model the one for every requester
/// without standard token exchange, as Keycloak's `token-exchange` feature does for a whole
/// server. Unset, a requester falls to that model only when its target has a permission.
pub const LEGACY_TOKEN_EXCHANGE: &str = "cambio.legacyTokenExchange";

/// Decides the permission model from the requester and the audience, before any token is
/// verified: a requester neither model admits is refused at once.
fn permission_model(
    realm: &RealmSnapshot,
    requester: &Client,
    audiences: &[&str],
) -> OAuthResult<PermissionModel> {
    if requester.is_confidential() && requester.standard_exchange_enabled() {
        return Ok(PermissionModel::Standard);
    }
    // The fine-grained model takes one audience whose token-exchange permission exists;
    // without an audience the token is for the requester itself, if its own permission exists.
    let target = match audiences {
        [] => Some(requester),
        [audience] => realm.client_by_client_id(audience).map(|c| &**c),
        _ => None,
    };
    // With the realm's legacy switch on, as with Keycloak's server-wide `token-exchange`
    // feature, every such requester is judged by the fine-grained model: without a permission
    // on the target it is told it is not allowed (403), not that standard exchange is off.
    let legacy_realm = realm
        .realm
        .attributes
        .get(LEGACY_TOKEN_EXCHANGE)
        .is_some_and(|v| v == "true");
    if let Some(target) = target
        && (legacy_realm || realm.permissions.exchange_permission(&target.id).is_some())
    {
        return Ok(PermissionModel::Legacy {
            target: target.client_id.clone(),
        });
    }
    if !requester.is_confidential() {
        return Err(OAuthError::invalid_client(
            "Public client is not allowed to exchange token",
        ));
    }
    Err(OAuthError::invalid_request(
        "Standard token exchange is not enabled for the requested client",
    ))
}

/// The exchange parameters, checked for shape before any token is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeParams<'a> {
    pub mode: PermissionModel,
    pub subject_token: &'a str,
    pub requested: RequestedType,
    /// No `requested_token_type` under the legacy model: Keycloak's V1 then answers a refresh
    /// token with the access token whenever one can be had (Terradue's guide relies on it).
    pub legacy_default: bool,
    pub audiences: Vec<&'a str>,
    /// Whether `resource` parameters named the targets (then a target the token cannot carry
    /// is `invalid_target`, RFC 8707 §2).
    pub by_resource: bool,
    pub scope: Option<&'a str>,
    pub actor_token: Option<&'a str>,
}

impl<'a> ExchangeParams<'a> {
    /// Reads the parameters and refuses a requester that may not exchange at all. Runs before
    /// the subject token is verified so that a refused request costs no signature check.
    pub fn parse(
        form: &'a FormParams,
        requester: &Client,
        realm: &'a RealmSnapshot,
    ) -> OAuthResult<ExchangeParams<'a>> {
        // RFC 8707 resources name clients too; with audiences they narrow to the common ones.
        let resources: Vec<&str> = form.all("resource").collect();
        let audiences =
            crate::resource::targets(realm, &resources, form.all("audience").collect())?;
        let mode = permission_model(realm, requester, &audiences)?;
        // Keycloak's own words for the standard model (observed by the differential suite).
        let subject_token = match (&mode, form.get("subject_token")) {
            (_, Some(token)) => token,
            (PermissionModel::Standard, None) => {
                return Err(OAuthError::invalid_request(
                    "Parameter 'subject_token' required for standard token exchange",
                ));
            }
            (PermissionModel::Legacy { .. }, None) => form.require("subject_token")?,
        };
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
            Some(_) => {
                return Err(OAuthError::invalid_request(
                    "requested_token_type unsupported",
                ));
            }
        };
        let actor_token = form.get("actor_token");
        match (actor_token, form.get("actor_token_type")) {
            (None, None) => {}
            (Some(token), Some(TOKEN_TYPE_ACCESS)) if token.len() <= MAX_SUBJECT_TOKEN_BYTES => {}
            (Some(_), Some(TOKEN_TYPE_ACCESS)) => {
                return Err(OAuthError::invalid_request("Invalid actor token"));
            }
            (Some(_), None) => {
                return Err(OAuthError::invalid_request(
                    "Parameter 'actor_token_type' required",
                ));
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
        let legacy_default = matches!(mode, PermissionModel::Legacy { .. })
            && form.get("requested_token_type").is_none();
        Ok(ExchangeParams {
            mode,
            subject_token,
            requested,
            legacy_default,
            audiences,
            by_resource: !resources.is_empty(),
            scope: form.get("scope"),
            actor_token,
        })
    }
}

/// A verified, active token of this realm: its signature, issuer, type, expiry and
/// revocation state were checked by the caller.
#[derive(Debug, Clone)]
pub struct ActiveToken {
    /// Shared, so that a remembered verified token is handed out again without a copy.
    pub claims: Arc<AccessTokenClaims>,
}

impl From<AccessTokenClaims> for ActiveToken {
    /// Takes our access token claims as decoded from a verified JWT payload.
    fn from(claims: AccessTokenClaims) -> Self {
        ActiveToken {
            claims: Arc::new(claims),
        }
    }
}

impl ActiveToken {
    /// Reads access token claims out of a JSON object (tests build subject tokens this way).
    #[cfg(test)]
    pub fn from_claims(claims: Map<String, Value>) -> OAuthResult<ActiveToken> {
        serde_json::from_value::<AccessTokenClaims>(Value::Object(claims))
            .map(ActiveToken::from)
            .map_err(|_| OAuthError::invalid_request("Invalid token"))
    }

    /// The DPoP key the token is bound to: `Some` whenever it carries `cnf`, even as `null`
    /// (then bound to a key no proof has, see [`crate::dpop::bound_key`]).
    fn bound_key(&self) -> Option<&str> {
        crate::dpop::bound_key(self.claims.cnf.as_ref())
    }

    /// The `may_act` claim (RFC 8693 §4.4), even if `null` (which names nobody).
    fn may_act(&self) -> Option<&Value> {
        self.claims.may_act.as_ref()
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
                .map(|m| {
                    m.iter()
                        .map(|(c, r)| (c.clone(), r.roles.clone()))
                        .collect()
                })
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
    /// The request's DPoP proof, checked against the request already; bound subject and actor
    /// tokens must be named by it.
    pub proof: Option<&'a crate::dpop::AcceptedProof>,
    pub now: u64,
    pub access_jti: String,
    pub id_jti: String,
}

/// The outcome of an exchange: tokens to sign and the type to report.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeDecision {
    pub issued_token_type: RequestedType,
    pub issued: Issued,
    /// Whether the access token is bound to the request's proof key (when a proof came) or
    /// issued as a bearer token (see [`crate::dpop::exchange_binding`]).
    pub binding: crate::dpop::ExchangeBinding,
}

pub fn decide(input: ExchangeInput<'_>) -> OAuthResult<ExchangeDecision> {
    let ExchangeInput {
        realm,
        requester,
        params,
        subject,
        subject_user,
        actor,
        proof,
        now,
        access_jti,
        id_jti,
    } = input;
    let invalid_token = || OAuthError::invalid_request("Invalid token");
    if !subject_user.enabled || subject.claims.exp <= now {
        return Err(invalid_token());
    }
    // A bound subject token is usable only by the holder of its key (RFC 9449 §1: a stolen
    // bound token is worthless), and the exchanged token is bound to that key again by the
    // server (never silently turned into a bearer token).
    // An unbound token needs nothing; the hash is computed only for a bound one, so the
    // common (bearer) exchange does no extra work.
    if let Some(bound) = subject.bound_key() {
        crate::dpop::check_presented_token(
            Some(bound),
            proof,
            &cambio_jose::access_token_hash(params.subject_token),
        )?;
    }
    if let (Some(actor), Some(actor_token)) = (actor, params.actor_token)
        && let Some(bound) = actor.bound_key()
    {
        crate::dpop::check_presented_token(
            Some(bound),
            proof,
            &cambio_jose::access_token_hash(actor_token),
        )?;
    }
    // The requester must be a party the subject token was meant for, or its holder.
    let own = &requester.client_id;
    if !requester.is_confidential() && subject.claims.azp != *own {
        // A public client can prove nothing about itself: it may only exchange tokens that
        // were issued to it (Keycloak PR #11542).
        return Err(OAuthError::access_denied(
            "Client is not the holder of the token",
        ));
    }
    match &params.mode {
        // Standard (V2): the subject token must have been meant for the requester.
        PermissionModel::Standard => {
            if !subject.claims.aud.contains(own) && subject.claims.azp != *own {
                return Err(OAuthError::access_denied(
                    "Client is not within the token audience",
                ));
            }
        }
        // Legacy (V1): the target's `token-exchange` permission naming the requester is the
        // administrator's explicit grant, and all it takes (as in Keycloak, and the design's
        // "tied to the subject token or holding an explicit permission").
        PermissionModel::Legacy { target } => {
            let permitted = realm
                .client_by_client_id(target)
                .and_then(|t| realm.permissions.exchange_permission(&t.id))
                .is_some_and(|p| realm.permissions.grants(p, &requester.id));
            if !permitted {
                return Err(OAuthError::access_denied("Client not allowed to exchange"));
            }
        }
    }
    let act = delegation(subject, actor, requester)?;
    let mut exchanged_from = Vec::with_capacity(subject.claims.exchanged_from.len() + 1);
    exchanged_from.push(subject.claims.jti.clone());
    exchanged_from.extend(subject.claims.exchanged_from.iter().cloned());
    if exchanged_from.len() > MAX_EXCHANGE_DEPTH {
        return Err(OAuthError::invalid_request(
            "Token exchange chain is too long",
        ));
    }

    let scope = GrantedScope::resolve(realm, requester, params.scope)?.narrow_to_subject(
        realm,
        &subject.claims.scope,
        params.scope,
    )?;
    let refresh_lifetime = match params.requested {
        RequestedType::RefreshToken => {
            // The fine-grained model always allowed refresh tokens to clients that use them.
            let allowed = match params.mode {
                PermissionModel::Standard => requester.exchange_refresh_allowed(),
                PermissionModel::Legacy { .. } => requester.uses_refresh_tokens(),
            };
            if !allowed {
                return Err(OAuthError::invalid_request(
                    "requested_token_type unsupported",
                ));
            }
            if subject.claims.sid.is_none() || subject.is_offline() || scope.offline() {
                return Err(OAuthError::invalid_request(
                    "Refresh token not valid as requested_token_type because creating a new session is needed",
                ));
            }
            Some(requester.refresh_lifespan(&realm.realm))
        }
        // The legacy model's default: a refresh token when the requester uses them and the
        // subject's online session can carry one; otherwise the access token alone.
        RequestedType::AccessToken
            if params.legacy_default
                && requester.uses_refresh_tokens()
                && subject.claims.sid.is_some()
                && !subject.is_offline()
                && !scope.offline() =>
        {
            Some(requester.refresh_lifespan(&realm.realm))
        }
        _ => None,
    };

    let audience_filter = resolve_audiences(realm, &params.audiences)?;
    // Never more than the user holds now through the requester, nor more than the subject
    // token carried.
    let roles = realm.roles_in_scope_within(subject_user, requester, Some(&*subject.claims));
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
    let mut issued = issue::issue(
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
                // Only a refresh token remembers it.
                role_ceiling: refresh_lifetime.map(|_| RoleCeiling::from(&subject.roles())),
                jkt: None,
                legacy_target: match &params.mode {
                    PermissionModel::Legacy { target } => Some(target.clone()),
                    PermissionModel::Standard => None,
                },
            },
            now,
            access_jti,
            id_jti,
        },
    );
    match &params.mode {
        // The permission names the target: the token is for it even if the user holds none
        // of its roles, as in Keycloak's fine-grained model.
        PermissionModel::Legacy { target } => issued.access.aud = vec![target.clone()],
        PermissionModel::Standard => {
            if let Some(missing) = audience_filter
                .iter()
                .flatten()
                .find(|a| !issued.access.aud.contains(a))
            {
                let code = match params.by_resource {
                    true => crate::ErrorCode::InvalidTarget,
                    false => crate::ErrorCode::InvalidRequest,
                };
                return Err(OAuthError::new(
                    code,
                    format!("Requested audience not available: {missing}"),
                ));
            }
        }
    }
    // Keycloak's V1 reports the refresh token it added as the issued type.
    let issued_token_type = match params.requested {
        RequestedType::AccessToken if refresh_lifetime.is_some() => RequestedType::RefreshToken,
        requested => requested,
    };
    let presented_bound =
        subject.bound_key().is_some() || actor.is_some_and(|a| a.bound_key().is_some());
    let binding = crate::dpop::exchange_binding(crate::dpop::BindingInput {
        realm,
        requester,
        presented_bound,
        audiences: &issued.access.aud,
        refresh_token: issued.refresh.is_some(),
    });
    // A refresh token made from a bound token is bound to the proof's key as well, even for a
    // confidential requester (whose refresh tokens are otherwise bound to its credentials
    // only): refreshing it without the key would turn the bound token into bearer tokens.
    if presented_bound && let (Some(plan), Some(proof)) = (issued.refresh.as_mut(), proof) {
        plan.data.jkt = Some(proof.jkt.clone());
    }
    Ok(ExchangeDecision {
        issued_token_type,
        issued,
        binding,
    })
}

/// How long after a token (or its session) ends a token derived from it can still live: how
/// long a revocation must be remembered beyond `max(exp, session end)`. When the realm caps an
/// exchanged token's life by its subject's (the default), nothing outlives its ancestor; when
/// it does not, each exchange down a chain may add the longest access-token lifespan of the
/// realm.
pub fn descendant_overhang(realm: &RealmSnapshot) -> u64 {
    if realm.realm.exchange_lifetime_capped_by_subject {
        return 0;
    }
    let longest = realm
        .clients()
        .map(|c| c.access_token_lifespan(&realm.realm))
        .fold(realm.realm.access_token_lifespan, u64::max);
    longest.saturating_mul(MAX_EXCHANGE_DEPTH as u64)
}

/// Looks up each requested audience; they must be existing, enabled clients.
fn resolve_audiences(
    realm: &RealmSnapshot,
    audiences: &[&str],
) -> OAuthResult<Option<Vec<String>>> {
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
fn delegation(
    subject: &ActiveToken,
    actor: Option<&ActiveToken>,
    requester: &Client,
) -> OAuthResult<Option<Value>> {
    let Some(actor) = actor else {
        // A subject that names who may act for it cannot be exchanged without that actor:
        // dropping the marker would hide the delegation.
        if subject.may_act().is_some() {
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
    if let Some(may_act) = subject.may_act() {
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
    act.insert(
        "client_id".into(),
        Value::String(actor.claims.client_id.clone()),
    );
    // Earlier actors nest inside, least recent deepest (RFC 8693 §4.1).
    if let Some(prior) = &subject.claims.act {
        act.insert("act".into(), prior.clone());
    }
    Ok(Some(Value::Object(act)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::ErrorCode;
    use crate::model::{
        ATTR_EXCHANGE_REFRESH, ATTR_STANDARD_EXCHANGE, BUILTIN_CLIENT_SCOPES, ClientScope, Realm,
        Role,
    };

    const NOW: u64 = 1_000_000;

    fn client(id: &str, exchange: bool) -> Client {
        let mut attributes = BTreeMap::new();
        if exchange {
            attributes.insert(ATTR_STANDARD_EXCHANGE.to_owned(), "true".to_owned());
            attributes.insert(ATTR_EXCHANGE_REFRESH.to_owned(), "SAME_SESSION".to_owned());
        }
        Client {
            id: format!("uuid-{id}"),
            client_id: id.into(),
            secret: Some("s".into()),
            attributes,
            default_client_scopes: vec!["profile".into(), "email".into(), "roles".into()],
            optional_client_scopes: vec!["offline_access".into(), "phone".into()],
            ..Default::default()
        }
    }

    fn realm() -> RealmSnapshot {
        let scopes = BUILTIN_CLIENT_SCOPES
            .iter()
            .map(|(name, listed)| ClientScope {
                id: name.to_string(),
                name: name.to_string(),
                include_in_token_scope: *listed,
                ..Default::default()
            })
            .collect();
        let mut disabled = client("disabled-api", false);
        disabled.enabled = false;
        let mut public = client("public-app", true);
        public.public_client = true;
        let clients = vec![
            client("requester", true),
            client("other", true),
            client("plain", false),
            client("orders-api", false),
            client("billing-api", false),
            disabled,
            public,
        ];
        let roles = vec![
            Role {
                id: "r-orders".into(),
                name: "view-orders".into(),
                client_id: Some("uuid-orders-api".into()),
                ..Default::default()
            },
            Role {
                id: "r-billing".into(),
                name: "view-invoices".into(),
                client_id: Some("uuid-billing-api".into()),
                ..Default::default()
            },
            Role {
                id: "r-disabled".into(),
                name: "x".into(),
                client_id: Some("uuid-disabled-api".into()),
                ..Default::default()
            },
        ];
        let realm = Realm {
            id: "realm".into(),
            name: "demo".into(),
            default_roles: vec![],
            ..Default::default()
        };
        RealmSnapshot::new(
            realm,
            "https://sts/realms/demo".into(),
            clients,
            roles,
            scopes,
        )
    }

    fn user() -> User {
        User {
            id: "alice".into(),
            username: "alice".into(),
            role_ids: vec!["r-orders".into(), "r-billing".into(), "r-disabled".into()],
            ..Default::default()
        }
    }

    /// A subject token issued to `azp` with audience `aud`, modified by `extra`.
    fn subject(azp: &str, aud: &[&str], extra: serde_json::Value) -> ActiveToken {
        let mut claims = json!({
            "exp": NOW + 200, "iat": NOW - 100, "jti": "subject-jti", "iss": "https://sts/realms/demo",
            "aud": aud, "sub": "alice", "typ": "Bearer", "azp": azp, "client_id": azp, "sid": "sid-1",
            "scope": "email profile",
            "resource_access": {"orders-api": {"roles": ["view-orders"]}, "billing-api": {"roles": ["view-invoices"]}},
        });
        if let (Some(base), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                if v.is_null() {
                    base.remove(k);
                } else {
                    base.insert(k.clone(), v.clone());
                }
            }
        }
        match claims {
            serde_json::Value::Object(map) => ActiveToken::from_claims(map).unwrap(),
            _ => unreachable!(),
        }
    }

    struct Case {
        requester: &'static str,
        form: &'static str,
        subject: ActiveToken,
        actor: Option<ActiveToken>,
    }

    fn run(case: Case) -> OAuthResult<ExchangeDecision> {
        let realm = realm();
        let requester = realm.client_by_client_id(case.requester).unwrap().clone();
        let body = format!("subject_token=t&{}", case.form);
        let form = FormParams::parse(body.as_bytes()).unwrap();
        let params = ExchangeParams::parse(&form, &requester, &realm)?;
        decide(ExchangeInput {
            realm: &realm,
            requester: &requester,
            params: &params,
            subject: &case.subject,
            subject_user: &user(),
            actor: case.actor.as_ref(),
            proof: None,
            now: NOW,
            access_jti: "new-jti".into(),
            id_jti: "id-jti".into(),
        })
    }

    fn check_err(
        requester: &'static str,
        form: &'static str,
        subject: ActiveToken,
        code: ErrorCode,
        description: &str,
    ) {
        let got = run(Case {
            requester,
            form,
            subject,
            actor: None,
        });
        let err = got.expect_err(form);
        assert_eq!(
            (err.code, err.description.as_ref()),
            (code, description),
            "{requester} {form}"
        );
    }

    fn ok(form: &'static str, subject: ActiveToken) -> ExchangeDecision {
        run(Case {
            requester: "requester",
            form,
            subject,
            actor: None,
        })
        .unwrap()
    }

    fn to_requester() -> ActiveToken {
        subject("app", &["requester", "orders-api"], json!({}))
    }

    #[test]
    fn refusals() {
        use ErrorCode::*;
        let s = to_requester;
        check_err(
            "public-app",
            "",
            s(),
            InvalidClient,
            "Public client is not allowed to exchange token",
        );
        check_err(
            "plain",
            "",
            s(),
            InvalidRequest,
            "Standard token exchange is not enabled for the requested client",
        );
        // CVE-2022-1245 / Zitadel CVE-2026-56668: a token not meant for the requester.
        check_err(
            "other",
            "audience=orders-api",
            s(),
            AccessDenied,
            "Client is not within the token audience",
        );
        check_err(
            "requester",
            "audience=nope",
            s(),
            InvalidClient,
            "Audience not found",
        );
        check_err(
            "requester",
            "audience=disabled-api",
            s(),
            InvalidClient,
            "Client disabled",
        );
        check_err(
            "requester",
            "audience=plain",
            s(),
            InvalidRequest,
            "Requested audience not available: plain",
        );
        check_err(
            "requester",
            "scope=phone",
            s(),
            InvalidScope,
            "Invalid scopes: phone",
        );
        check_err(
            "requester",
            "subject_token_type=urn:ietf:params:oauth:token-type:refresh_token",
            s(),
            InvalidRequest,
            "Parameter 'subject_token' supports access tokens only",
        );
        check_err(
            "requester",
            "requested_token_type=urn:x",
            s(),
            InvalidRequest,
            "requested_token_type unsupported",
        );
        let cnf = subject("app", &["requester"], json!({"cnf": {"jkt": "abc"}}));
        check_err(
            "requester",
            "",
            cnf,
            InvalidDpopProof,
            "The token is DPoP-bound: a DPoP proof by its key is required",
        );
        let may_act = subject(
            "app",
            &["requester"],
            json!({"may_act": {"sub": "someone"}}),
        );
        check_err(
            "requester",
            "",
            may_act,
            InvalidRequest,
            "actor_token is required: the subject token names who may act for it",
        );
        // A present `null` is not an absent claim: `may_act: null` names no actor, so none
        // may act; `cnf: null` still marks a sender-constrained token.
        let with_null = |name: &str| {
            let mut claims =
                serde_json::to_value(&*subject("app", &["requester"], json!({})).claims).unwrap();
            claims[name] = serde_json::Value::Null;
            match claims {
                serde_json::Value::Object(map) => ActiveToken::from_claims(map).unwrap(),
                _ => unreachable!(),
            }
        };
        check_err(
            "requester",
            "",
            with_null("may_act"),
            InvalidRequest,
            "actor_token is required: the subject token names who may act for it",
        );
        check_err(
            "requester",
            "",
            with_null("cnf"),
            InvalidDpopProof,
            "The token is DPoP-bound: a DPoP proof by its key is required",
        );
        let offline = subject(
            "app",
            &["requester"],
            json!({"scope": "email offline_access"}),
        );
        check_err(
            "requester",
            "requested_token_type=urn:ietf:params:oauth:token-type:refresh_token",
            offline,
            InvalidRequest,
            "Refresh token not valid as requested_token_type because creating a new session is needed",
        );
        let no_session = subject("app", &["requester"], json!({"sid": null}));
        check_err(
            "requester",
            "requested_token_type=urn:ietf:params:oauth:token-type:refresh_token",
            no_session,
            InvalidRequest,
            "Refresh token not valid as requested_token_type because creating a new session is needed",
        );
        let chain: Vec<String> = (0..MAX_EXCHANGE_DEPTH).map(|i| format!("j{i}")).collect();
        let deep = subject("app", &["requester"], json!({"exchanged_from": chain}));
        check_err(
            "requester",
            "",
            deep,
            InvalidRequest,
            "Token exchange chain is too long",
        );
        let expired = subject("app", &["requester"], json!({"exp": NOW}));
        check_err("requester", "", expired, InvalidRequest, "Invalid token");
    }

    #[test]
    fn roles_never_exceed_the_subject_token() {
        // The subject token carries only orders-api roles; the user also holds billing roles.
        let narrow = subject(
            "app",
            &["requester"],
            json!({"resource_access": {"orders-api": {"roles": ["view-orders"]}}}),
        );
        let d = ok("", narrow.clone());
        assert_eq!(d.issued.access.aud, ["orders-api"]);
        check_err(
            "requester",
            "audience=billing-api",
            narrow,
            ErrorCode::InvalidRequest,
            "Requested audience not available: billing-api",
        );
    }

    #[test]
    fn issued_claims() {
        let d = ok("audience=orders-api", to_requester());
        let a = &d.issued.access;
        assert_eq!(d.issued_token_type, RequestedType::AccessToken);
        assert_eq!(a.aud, ["orders-api"]);
        assert_eq!(
            (a.azp.as_str(), a.sub.as_str(), a.sid.as_deref()),
            ("requester", "alice", Some("sid-1"))
        );
        assert_eq!(a.exchanged_from, ["subject-jti"]);
        assert_eq!(a.scope, "email profile");
        // Capped by the subject's remaining life (200 s) below the realm's 300 s.
        assert_eq!((a.exp, d.issued.expires_in), (NOW + 200, 200));
        assert!(d.issued.refresh.is_none() && d.issued.id_token.is_none());
        // The requester may name itself.
        let own = ok("audience=requester", to_requester());
        assert_eq!(own.issued.access.aud, ["requester"]);
    }

    #[test]
    fn refresh_and_id_token_requests() {
        let d = ok(
            "audience=orders-api&requested_token_type=urn:ietf:params:oauth:token-type:refresh_token",
            to_requester(),
        );
        let plan = d.issued.refresh.unwrap();
        assert_eq!(
            plan.data.audience_filter,
            Some(vec!["orders-api".to_owned()])
        );
        assert!(!plan.offline);
        let d = ok(
            "requested_token_type=urn:ietf:params:oauth:token-type:id_token",
            to_requester(),
        );
        assert_eq!(d.issued_token_type, RequestedType::IdToken);
        assert_eq!(d.issued.id_token.unwrap().aud, "requester");
    }

    #[test]
    fn a_bound_subject_binds_the_exchanged_refresh_token() {
        let realm = realm();
        let requester = realm.client_by_client_id("requester").unwrap().clone();
        let form = FormParams::parse(
            b"subject_token=t&audience=orders-api&requested_token_type=urn:ietf:params:oauth:token-type:refresh_token",
        )
        .unwrap();
        let params = ExchangeParams::parse(&form, &requester, &realm).unwrap();
        let proof = crate::dpop::AcceptedProof {
            jkt: "k".into(),
            jti: "j".into(),
            ath: Some(cambio_jose::access_token_hash("t")),
            nonce: None,
            remember_until: 0,
        };
        let exchange = |cnf: Value| {
            let subject = subject("app", &["requester", "orders-api"], cnf);
            decide(ExchangeInput {
                realm: &realm,
                requester: &requester,
                params: &params,
                subject: &subject,
                subject_user: &user(),
                actor: None,
                proof: Some(&proof),
                now: NOW,
                access_jti: "a".into(),
                id_jti: "i".into(),
            })
            .unwrap()
        };
        // The confidential requester's refresh token is bound when the subject was.
        let bound = exchange(json!({"cnf": {"jkt": "k"}}));
        assert_eq!(bound.binding, crate::dpop::ExchangeBinding::ProofKey);
        assert_eq!(bound.issued.refresh.unwrap().data.jkt.as_deref(), Some("k"));
        // From a bearer subject it is bound to the requester's credentials only, as before.
        let bearer = exchange(json!({}));
        assert_eq!(bearer.issued.refresh.unwrap().data.jkt, None);
    }

    #[test]
    fn fine_grained_permissions() {
        use crate::permissions::{
            AuthzPolicy, Permissions, TOKEN_EXCHANGE_SCOPE, client_permission_name,
        };
        // `plain` (no standard exchange) and `public-app` may exchange to orders-api through
        // its token-exchange permission; `other` is not named by the policy.
        let policy = AuthzPolicy {
            id: "pol".into(),
            name: "allow".into(),
            policy_type: "client".into(),
            clients: vec!["uuid-plain".into(), "uuid-public-app".into()],
            ..Default::default()
        };
        let permission = AuthzPolicy {
            id: "perm".into(),
            name: client_permission_name(TOKEN_EXCHANGE_SCOPE, "uuid-orders-api"),
            policy_type: "scope".into(),
            policies: vec!["pol".into()],
            ..Default::default()
        };
        let realm = realm().with_permissions(Permissions::new(vec![policy, permission]));
        let attempt = |requester: &str, azp: &str, audience: &str| {
            let requester = realm.client_by_client_id(requester).unwrap().clone();
            let body = format!("subject_token=t&audience={audience}");
            let form = FormParams::parse(body.as_bytes()).unwrap();
            let params = ExchangeParams::parse(&form, &requester, &realm)?;
            let subject = subject(azp, &[], json!({}));
            decide(ExchangeInput {
                realm: &realm,
                requester: &requester,
                params: &params,
                subject: &subject,
                subject_user: &user(),
                actor: None,
                proof: None,
                now: NOW,
                access_jti: "j".into(),
                id_jti: "i".into(),
            })
        };
        let d = attempt("plain", "plain", "orders-api").unwrap();
        assert_eq!(d.issued.access.aud, ["orders-api"]);
        assert_eq!(d.issued.access.azp, "plain");
        let d = attempt("public-app", "public-app", "orders-api").unwrap();
        assert_eq!(d.issued.access.aud, ["orders-api"]);
        let err = attempt("public-app", "plain", "orders-api").unwrap_err();
        assert_eq!(
            (err.code, err.description.as_ref()),
            (
                ErrorCode::AccessDenied,
                "Client is not the holder of the token"
            )
        );
        // `other` has standard exchange, so the standard rules apply to it.
        let err = attempt("other", "other", "plain").unwrap_err();
        assert_eq!(err.description, "Requested audience not available: plain");
        // A client without standard exchange and without a permission for the target.
        let err = attempt("plain", "plain", "billing-api").unwrap_err();
        assert_eq!(
            err.description,
            "Standard token exchange is not enabled for the requested client"
        );
        // The permission exists but does not name the requester.
        let mut realm2 = realm;
        let denied = AuthzPolicy {
            id: "perm".into(),
            name: client_permission_name(TOKEN_EXCHANGE_SCOPE, "uuid-orders-api"),
            policy_type: "scope".into(),
            policies: vec![],
            ..Default::default()
        };
        realm2 = realm2.with_permissions(Permissions::new(vec![denied]));
        let requester = realm2.client_by_client_id("plain").unwrap().clone();
        let form = FormParams::parse(b"subject_token=t&audience=orders-api").unwrap();
        let params = ExchangeParams::parse(&form, &requester, &realm2).unwrap();
        let subject = subject("plain", &[], json!({}));
        let err = decide(ExchangeInput {
            realm: &realm2,
            requester: &requester,
            params: &params,
            subject: &subject,
            subject_user: &user(),
            actor: None,
            proof: None,
            now: NOW,
            access_jti: "j".into(),
            id_jti: "i".into(),
        })
        .unwrap_err();
        assert_eq!(
            (err.code, err.description.as_ref()),
            (ErrorCode::AccessDenied, "Client not allowed to exchange")
        );
    }

    #[test]
    fn delegation() {
        let actor = subject(
            "requester",
            &[],
            json!({"sub": "svc", "jti": "actor-jti", "act": {"sub": "ignored"}}),
        );
        let prior = subject("app", &["requester"], json!({"act": {"sub": "first"}}));
        let d = run(Case {
            requester: "requester",
            form: "actor_token=a&actor_token_type=urn:ietf:params:oauth:token-type:access_token",
            subject: prior,
            actor: Some(actor.clone()),
        })
        .unwrap();
        assert_eq!(
            d.issued.access.act,
            Some(json!({"sub": "svc", "client_id": "requester", "act": {"sub": "first"}}))
        );
        // may_act names another actor.
        let may_act = subject(
            "app",
            &["requester"],
            json!({"may_act": {"sub": "someone-else"}}),
        );
        let err = run(Case {
            requester: "requester",
            form: "actor_token=a&actor_token_type=urn:ietf:params:oauth:token-type:access_token",
            subject: may_act,
            actor: Some(actor.clone()),
        })
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::AccessDenied);
        // may_act naming the actor is honoured.
        let may_act = subject("app", &["requester"], json!({"may_act": {"sub": "svc"}}));
        let d = run(Case {
            requester: "requester",
            form: "actor_token=a&actor_token_type=urn:ietf:params:oauth:token-type:access_token",
            subject: may_act,
            actor: Some(actor),
        })
        .unwrap();
        assert_eq!(d.issued.access.act.unwrap()["sub"], "svc");
    }

    /// A revocation outlives its token by nothing when exchanges are capped by their subject,
    /// and by a full chain of the longest access-token lifespan when they are not.
    #[test]
    fn descendant_overhang_follows_the_lifetime_cap() {
        let capped = realm();
        assert_eq!(descendant_overhang(&capped), 0);
        let mut settings = capped.realm.clone();
        settings.exchange_lifetime_capped_by_subject = false;
        settings.access_token_lifespan = 300;
        let mut long_lived = client("long-lived", true);
        long_lived.attributes.insert(
            crate::model::ATTR_ACCESS_TOKEN_LIFESPAN.to_owned(),
            "900".to_owned(),
        );
        let uncapped = RealmSnapshot::new(
            settings,
            "https://sts/realms/demo".into(),
            vec![client("requester", true), long_lived],
            vec![],
            vec![],
        );
        assert_eq!(
            descendant_overhang(&uncapped),
            900 * MAX_EXCHANGE_DEPTH as u64
        );
    }
}
