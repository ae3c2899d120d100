//! The claims of the tokens Cambio issues: JWT access tokens (RFC 9068, with Keycloak's role
//! claims) and OpenID Connect ID tokens.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Client, User};
use crate::realm::{RealmSnapshot, RoleSet};
use crate::scope::GrantedScope;

/// The JOSE `typ` of our access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// The JOSE `typ` of our ID tokens.
pub const ID_TOKEN_TYP: &str = "JWT";
/// How many exchanges deep a token may be; each keeps the `jti` of its ancestors so that
/// revoking any of them revokes it too.
pub const MAX_EXCHANGE_DEPTH: usize = 8;

/// Roles under `realm_access` or one client of `resource_access`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Roles {
    pub roles: BTreeSet<String>,
}

/// A JWT access token's claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub exp: u64,
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    pub jti: String,
    pub iss: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "one_or_many")]
    pub aud: Vec<String>,
    pub sub: String,
    /// Keycloak's token type claim, which its adapters check.
    pub typ: String,
    pub azp: String,
    /// RFC 9068 §2.2.
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm_access: Option<Roles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_access: Option<BTreeMap<String, Roles>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// RFC 8693 §4.1 delegation: who acts for the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Value>,
    /// The `jti` of every token this one was exchanged from, nearest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exchanged_from: Vec<String>,
    /// RFC 8693 §4.4: who may act for the subject. Never issued; read so that an exchange
    /// can honour it. A present `null` counts as present (and names no actor).
    #[serde(default, skip_serializing, deserialize_with = "present")]
    pub may_act: Option<Value>,
    /// RFC 7800 confirmation: `{"jkt": …}` for a DPoP-bound token (RFC 9449 §6.1). A present
    /// `null` counts as present (a binding no proof can satisfy).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub cnf: Option<Value>,
    /// Claims added by protocol mappers (`crate::groups::mapped_claims`), by name. Written
    /// only: they are computed afresh for every token issued, and leaving them out of reading
    /// keeps the parse of every presented token as cheap as before.
    #[serde(flatten, skip_deserializing)]
    pub mapped: BTreeMap<String, Value>,
}

/// A token's role claims bound what may be issued from it.
impl crate::realm::RoleCap for AccessTokenClaims {
    fn allows(&self, client: Option<&str>, role: &str) -> bool {
        match client {
            None => self
                .realm_access
                .as_ref()
                .is_some_and(|r| r.roles.contains(role)),
            Some(client) => self
                .resource_access
                .as_ref()
                .and_then(|clients| clients.get(client))
                .is_some_and(|r| r.roles.contains(role)),
        }
    }
}

/// A member that is present, even as `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// An ID token's claims (OpenID Connect Core §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub exp: u64,
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    pub jti: String,
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub typ: String,
    pub azp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Claims added by protocol mappers for the ID token, by name (written only).
    #[serde(flatten, skip_deserializing)]
    pub mapped: BTreeMap<String, Value>,
}

/// Who a token is about and in which session.
#[derive(Debug, Clone, Copy)]
pub struct TokenSubject<'a> {
    pub user: &'a User,
    pub session_id: Option<&'a str>,
    pub auth_time: Option<u64>,
}

/// Everything needed to build one access token.
#[derive(Debug, Clone)]
pub struct AccessTokenSpec<'a> {
    pub client: &'a Client,
    pub subject: TokenSubject<'a>,
    pub scope: &'a GrantedScope,
    /// The roles to include, already limited to the client's scope.
    pub roles: RoleSet,
    /// When set, `aud` and `resource_access` are narrowed to these client ids.
    pub audience_filter: Option<&'a [String]>,
    pub now: u64,
    pub lifetime: u64,
    pub jti: String,
}

/// The `aud` a token for `client` carries: every other client whose roles it holds, and the
/// clients named by its audience mappers (Keycloak's audience resolve and audience mappers).
pub fn default_audience(client: &Client, roles: &RoleSet) -> Vec<String> {
    let mut aud: BTreeSet<String> = roles
        .clients
        .keys()
        .filter(|c| **c != client.client_id)
        .cloned()
        .collect();
    aud.extend(client.mapped_audiences().map(str::to_owned));
    aud.into_iter().collect()
}

pub fn access_token_claims(realm: &RealmSnapshot, spec: AccessTokenSpec<'_>) -> AccessTokenClaims {
    let AccessTokenSpec {
        client,
        subject,
        scope,
        mut roles,
        audience_filter,
        now,
        lifetime,
        jti,
    } = spec;
    let with_roles = scope.has("roles");
    let mut aud = if with_roles {
        default_audience(client, &roles)
    } else {
        client.mapped_audiences().map(str::to_owned).collect()
    };
    // The audience mappers of the client scopes applied to this token add their clients too.
    for name in &scope.names {
        for target in realm
            .client_scope(name)
            .into_iter()
            .flat_map(|s| s.mapped_audiences())
        {
            if !aud.iter().any(|a| a == target) {
                aud.push(target.to_owned());
            }
        }
    }
    if let Some(filter) = audience_filter {
        aud.retain(|a| filter.contains(a));
        // The requester may name itself as the audience (it then holds a token for itself).
        if filter.contains(&client.client_id) && !aud.contains(&client.client_id) {
            aud.push(client.client_id.clone());
        }
        roles.clients.retain(|c, _| filter.contains(c));
    }
    let user = subject.user;
    let profile = scope.has("profile");
    let email = scope.has("email");
    AccessTokenClaims {
        exp: now.saturating_add(lifetime),
        iat: now,
        auth_time: subject.auth_time,
        jti,
        iss: realm.issuer.clone(),
        aud,
        sub: user.id.clone(),
        typ: "Bearer".into(),
        azp: client.client_id.clone(),
        client_id: client.client_id.clone(),
        sid: subject.session_id.map(str::to_owned),
        scope: scope.to_claim(realm),
        realm_access: (with_roles && !roles.realm.is_empty()).then(|| Roles {
            roles: roles.realm.clone(),
        }),
        resource_access: (with_roles && !roles.clients.is_empty()).then(|| {
            roles
                .clients
                .iter()
                .map(|(c, r)| (c.clone(), Roles { roles: r.clone() }))
                .collect()
        }),
        preferred_username: profile.then(|| user.username.clone()),
        email: if email { user.email.clone() } else { None },
        email_verified: email.then_some(user.email_verified),
        name: if profile { user.full_name() } else { None },
        given_name: if profile {
            user.first_name.clone()
        } else {
            None
        },
        family_name: if profile {
            user.last_name.clone()
        } else {
            None
        },
        act: None,
        exchanged_from: Vec::new(),
        may_act: None,
        cnf: None,
        mapped: crate::groups::mapped_claims(
            realm,
            client,
            scope,
            user,
            crate::groups::ClaimTarget::Access,
        ),
    }
}

/// The ID token that goes with an access token.
pub fn id_token_claims(
    access: &AccessTokenClaims,
    nonce: Option<&str>,
    jti: String,
) -> IdTokenClaims {
    IdTokenClaims {
        exp: access.exp,
        iat: access.iat,
        auth_time: access.auth_time,
        jti,
        iss: access.iss.clone(),
        aud: access.azp.clone(),
        sub: access.sub.clone(),
        typ: "ID".into(),
        azp: access.azp.clone(),
        nonce: nonce.map(str::to_owned),
        sid: access.sid.clone(),
        preferred_username: access.preferred_username.clone(),
        email: access.email.clone(),
        email_verified: access.email_verified,
        name: access.name.clone(),
        given_name: access.given_name.clone(),
        family_name: access.family_name.clone(),
        mapped: BTreeMap::new(),
    }
}

/// `aud` is one string when there is one value, an array otherwise (RFC 7519 §4.1.3);
/// reading accepts both.
mod one_or_many {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(aud: &[String], s: S) -> Result<S::Ok, S::Error> {
        match aud {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Ok(match OneOrMany::deserialize(d)? {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        })
    }
}
