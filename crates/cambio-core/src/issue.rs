//! Turning a decided grant into tokens: the access token, the ID token when `openid` was
//! asked for, and the plan for a refresh token. Shared by every grant.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Client, User};
use crate::realm::{RealmSnapshot, RoleSet};
use crate::scope::GrantedScope;
use crate::tokens::{self, AccessTokenClaims, AccessTokenSpec, IdTokenClaims, TokenSubject};

/// What a refresh token remembers besides its session, so that refreshing it issues the same
/// kind of token again (an exchanged refresh token stays narrowed to its audience).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RefreshData {
    pub audience_filter: Option<Vec<String>>,
    pub act: Option<Value>,
    pub exchanged_from: Vec<String>,
    pub auth_time: Option<u64>,
    /// Client roles present in the token that was exchanged; a refresh never widens them.
    pub role_ceiling: Option<RoleCeiling>,
    /// The target of a legacy (V1) exchange: its refreshes are for it alone, and only while
    /// the target's `token-exchange` permission still names the requester.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_target: Option<String>,
    /// The DPoP key a public client's refresh token is bound to (RFC 9449 §5): each refresh
    /// must come with a proof by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}

/// The roles an exchanged token may at most carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoleCeiling {
    pub realm: Vec<String>,
    pub clients: std::collections::BTreeMap<String, Vec<String>>,
}

/// A refresh token of an exchanged token never issues more than the token it came from.
impl crate::realm::RoleCap for RoleCeiling {
    fn allows(&self, client: Option<&str>, role: &str) -> bool {
        match client {
            None => self.realm.iter().any(|r| r == role),
            Some(client) => self
                .clients
                .get(client)
                .is_some_and(|roles| roles.iter().any(|r| r == role)),
        }
    }
}

impl From<&RoleSet> for RoleCeiling {
    fn from(set: &RoleSet) -> Self {
        RoleCeiling {
            realm: set.realm.iter().cloned().collect(),
            clients: set
                .clients
                .iter()
                .map(|(c, r)| (c.clone(), r.iter().cloned().collect()))
                .collect(),
        }
    }
}

/// A refresh token to create: the server draws its value, stores its hash and session link.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshPlan {
    pub lifetime: u64,
    pub offline: bool,
    /// The granted scope in stored form ([`GrantedScope::to_stored`]).
    pub scope: String,
    pub data: RefreshData,
}

/// Tokens ready to be signed.
#[derive(Debug, Clone, PartialEq)]
pub struct Issued {
    pub access: AccessTokenClaims,
    pub id_token: Option<IdTokenClaims>,
    pub refresh: Option<RefreshPlan>,
    /// The `scope` response field.
    pub scope: String,
    pub expires_in: u64,
}

/// The inputs of one issuance.
#[derive(Debug, Clone)]
pub struct IssueSpec<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    pub scope: &'a GrantedScope,
    pub session_id: Option<&'a str>,
    /// Roles to include (already limited by the client's scope and any ceiling).
    pub roles: RoleSet,
    pub audience_filter: Option<&'a [String]>,
    pub lifetime: u64,
    pub refresh_lifetime: Option<u64>,
    pub offline: bool,
    pub nonce: Option<&'a str>,
    pub data: RefreshData,
    pub now: u64,
    /// Fresh random ids for the access and ID tokens.
    pub access_jti: String,
    pub id_jti: String,
}

pub fn issue(realm: &RealmSnapshot, spec: IssueSpec<'_>) -> Issued {
    let mut access = tokens::access_token_claims(
        realm,
        AccessTokenSpec {
            client: spec.client,
            subject: TokenSubject {
                user: spec.user,
                session_id: spec.session_id,
                auth_time: spec.data.auth_time,
            },
            scope: spec.scope,
            roles: spec.roles,
            audience_filter: spec.audience_filter,
            now: spec.now,
            lifetime: spec.lifetime,
            jti: spec.access_jti,
        },
    );
    access.act = spec.data.act.clone();
    access.exchanged_from = spec.data.exchanged_from.clone();
    let id_token = spec.scope.openid.then(|| {
        let mut id_token = tokens::id_token_claims(&access, spec.nonce, spec.id_jti);
        id_token.mapped = crate::groups::mapped_claims(
            realm,
            spec.client,
            spec.scope,
            spec.user,
            crate::groups::ClaimTarget::Id,
        );
        id_token
    });
    let scope = access.scope.clone();
    let refresh = spec.refresh_lifetime.map(|lifetime| RefreshPlan {
        lifetime,
        offline: spec.offline,
        scope: spec.scope.to_stored(),
        data: spec.data,
    });
    Issued {
        expires_in: spec.lifetime,
        access,
        id_token,
        refresh,
        scope,
    }
}
