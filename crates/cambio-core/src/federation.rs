//! Trust in external identity providers: which provider a request names, whether the client
//! may use it, how its tokens are validated, and what local token an external token becomes.
//!
//! Two request shapes lead here: token exchange (RFC 8693) with an external `subject_token`
//! (Keycloak's `subject_issuer`, Tapkey's `provider`, an alias grant type, or an exact `iss`
//! match), and the RFC 7523 JWT bearer grant. Both issue an access token for the linked local
//! user, never a refresh token, and never outliving the external token.

use std::collections::BTreeMap;

use cambio_jose::{Algorithm, AudienceRule, TypRule, Validation, VerifiedJwt, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ErrorCode, OAuthError, OAuthResult};
use crate::issue::{self, IssueSpec, Issued, RefreshData};
use crate::model::{Client, User};
use crate::realm::RealmSnapshot;
use crate::scope::GrantedScope;

pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The Tapkey grant, a common example of an alias grant type.
pub const TAPKEY_GRANT: &str = "http://tapkey.net/oauth/token_exchange";

/// The largest external token decoded.
pub const MAX_EXTERNAL_TOKEN_BYTES: usize = 16 * 1024;
/// Leeway for external tokens' times: other clocks drift more than ours.
pub const EXTERNAL_LEEWAY: u64 = 30;

/// Keys of an identity provider's `config` map that Cambio reads, besides Keycloak's own
/// (`issuer`, `jwksUrl`, `useJwksUrl`, `validateSignature`).
pub mod config_keys {
    pub const ISSUER: &str = "issuer";
    pub const JWKS_URL: &str = "jwksUrl";
    pub const USE_JWKS_URL: &str = "useJwksUrl";
    pub const VALIDATE_SIGNATURE: &str = "validateSignature";
    /// Keycloak's name for the client registered at the provider: its tokens for us name it
    /// in `aud`.
    pub const CLIENT_ID: &str = "clientId";
    /// Inline JWKS (JSON), instead of a URL.
    pub const JWKS: &str = "cambio.jwks";
    /// Space- or comma-separated values the external `aud` must contain one of.
    pub const ALLOWED_AUDIENCES: &str = "cambio.allowedAudiences";
    /// Space- or comma-separated JWS algorithms accepted from this provider.
    pub const ALLOWED_ALGORITHMS: &str = "cambio.allowedAlgorithms";
    /// The claim holding the external subject (default `sub`).
    pub const SUBJECT_CLAIM: &str = "cambio.subjectClaim";
    pub const USERNAME_CLAIM: &str = "cambio.usernameClaim";
    pub const EMAIL_CLAIM: &str = "cambio.emailClaim";
    /// The claim holding a list of external role names.
    pub const ROLES_CLAIM: &str = "cambio.rolesClaim";
    /// `external=local` pairs (space or comma separated) mapping external roles to realm roles.
    pub const ROLE_MAPPINGS: &str = "cambio.roleMappings";
    /// `linked-only` (default) or `create`.
    pub const PROVISIONING: &str = "cambio.provisioning";
    /// Upper bound, in seconds, of tokens issued for this provider's users.
    pub const MAX_LIFETIME: &str = "cambio.maxLifetime";
    /// Grant type URIs that select this provider.
    pub const GRANT_TYPES: &str = "cambio.grantTypes";
    /// Client ids allowed to exchange this provider's tokens (besides V1 permissions).
    pub const ALLOWED_CLIENTS: &str = "cambio.allowedClients";
}

/// An identity provider as stored (Keycloak's `IdentityProviderRepresentation` fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IdentityProvider {
    pub alias: String,
    pub internal_id: String,
    pub provider_id: String,
    pub enabled: bool,
    pub display_name: Option<String>,
    pub config: BTreeMap<String, String>,
}

impl Default for IdentityProvider {
    fn default() -> Self {
        IdentityProvider {
            alias: String::new(),
            internal_id: String::new(),
            provider_id: "oidc".into(),
            enabled: true,
            display_name: None,
            config: BTreeMap::new(),
        }
    }
}

/// How unknown external users are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioning {
    /// Only users linked beforehand may exchange.
    LinkedOnly,
    /// A local user is created and linked on first use.
    Create,
}

/// Where a provider's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    Inline(Vec<VerifyingKey>),
    Url(String),
}

/// A provider's settings, parsed and validated once when the realm snapshot is built.
#[derive(Debug, Clone)]
pub struct ProviderTrust {
    pub alias: String,
    pub internal_id: String,
    pub enabled: bool,
    pub issuer: String,
    pub keys: KeySource,
    pub allowed_audiences: Vec<String>,
    pub allowed_algorithms: Vec<Algorithm>,
    pub subject_claim: String,
    pub username_claim: Option<String>,
    pub email_claim: Option<String>,
    pub roles_claim: Option<String>,
    pub role_mappings: Vec<(String, String)>,
    pub provisioning: Provisioning,
    pub max_lifetime: Option<u64>,
    pub grant_types: Vec<String>,
    pub allowed_clients: Vec<String>,
    /// The provider's `clientId` (Keycloak's setting), accepted as an audience when no
    /// `cambio.allowedAudiences` are set.
    pub client_id: Option<String>,
}

fn list(value: Option<&String>) -> Vec<String> {
    value
        .map(|v| {
            v.split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl ProviderTrust {
    /// Validates a provider's configuration. Errors are descriptions for the admin API.
    pub fn from_provider(idp: &IdentityProvider) -> Result<ProviderTrust, String> {
        use config_keys as k;
        let c = &idp.config;
        let issuer = c
            .get(k::ISSUER)
            .filter(|s| !s.is_empty())
            .ok_or("config.issuer is required")?
            .clone();
        if c.get(k::VALIDATE_SIGNATURE).is_some_and(|v| v == "false") {
            return Err(
                "config.validateSignature=false is not supported: signatures are always validated"
                    .into(),
            );
        }
        let keys = match (
            c.get(k::JWKS).filter(|s| !s.is_empty()),
            c.get(k::JWKS_URL).filter(|s| !s.is_empty()),
        ) {
            (Some(jwks), _) => {
                let keys = cambio_jose::parse_jwks(jwks.as_bytes(), None)
                    .map_err(|e| format!("invalid cambio.jwks: {e}"))?;
                if keys.is_empty() {
                    return Err("cambio.jwks holds no usable signing key".into());
                }
                KeySource::Inline(keys)
            }
            (None, Some(url)) => {
                if c.get(k::USE_JWKS_URL).is_some_and(|v| v == "false") {
                    return Err("config.useJwksUrl=false needs cambio.jwks".into());
                }
                KeySource::Url(url.clone())
            }
            (None, None) => return Err("config.jwksUrl or cambio.jwks is required".into()),
        };
        let allowed_algorithms = match c.get(k::ALLOWED_ALGORITHMS) {
            Some(v) => list(Some(v))
                .iter()
                .map(|a| {
                    a.parse::<Algorithm>()
                        .map_err(|_| format!("unsupported algorithm {a}"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => Algorithm::ALL.to_vec(),
        };
        let provisioning = match c.get(k::PROVISIONING).map(String::as_str) {
            None | Some("linked-only") => Provisioning::LinkedOnly,
            Some("create") => Provisioning::Create,
            Some(other) => {
                return Err(format!(
                    "unknown provisioning {other} (linked-only or create)"
                ));
            }
        };
        let max_lifetime = match c.get(k::MAX_LIFETIME).filter(|s| !s.is_empty()) {
            Some(v) => Some(
                v.parse::<u64>()
                    .map_err(|_| "cambio.maxLifetime must be seconds")?,
            ),
            None => None,
        };
        let role_mappings = list(c.get(k::ROLE_MAPPINGS))
            .iter()
            .map(|pair| {
                pair.split_once('=')
                    .map(|(e, l)| (e.to_owned(), l.to_owned()))
                    .ok_or_else(|| format!("role mapping {pair} is not external=local"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ProviderTrust {
            alias: idp.alias.clone(),
            internal_id: idp.internal_id.clone(),
            enabled: idp.enabled,
            issuer,
            keys,
            allowed_audiences: list(c.get(k::ALLOWED_AUDIENCES)),
            allowed_algorithms,
            subject_claim: c
                .get(k::SUBJECT_CLAIM)
                .cloned()
                .unwrap_or_else(|| "sub".into()),
            // OpenID Connect's standard claims unless told otherwise, as Keycloak's OIDC
            // provider reads them.
            username_claim: Some(
                c.get(k::USERNAME_CLAIM)
                    .cloned()
                    .unwrap_or_else(|| "preferred_username".into()),
            ),
            email_claim: Some(
                c.get(k::EMAIL_CLAIM)
                    .cloned()
                    .unwrap_or_else(|| "email".into()),
            ),
            roles_claim: c.get(k::ROLES_CLAIM).cloned(),
            role_mappings,
            provisioning,
            max_lifetime,
            grant_types: list(c.get(k::GRANT_TYPES)),
            allowed_clients: list(c.get(k::ALLOWED_CLIENTS)),
            client_id: c.get(k::CLIENT_ID).filter(|s| !s.is_empty()).cloned(),
        })
    }

    /// The validation rules for this provider's tokens presented by `requester`. Without a
    /// configured audience list the token must name the requester (Keycloak #51004).
    pub fn validation<'a>(&'a self, audiences: &'a [&'a str], now: u64) -> Validation<'a> {
        Validation {
            now,
            leeway: EXTERNAL_LEEWAY,
            issuer: Some(&self.issuer),
            audience: AudienceRule::AnyOf(audiences),
            typ: TypRule::Skip,
            require_exp: true,
            max_token_bytes: MAX_EXTERNAL_TOKEN_BYTES,
        }
    }

    /// The audience values accepted for `requester`: the configured list, else the requester
    /// itself and, for a provider registered the Keycloak way, its `clientId`.
    pub fn accepted_audiences<'a>(&'a self, requester: &'a Client) -> Vec<&'a str> {
        if self.allowed_audiences.is_empty() {
            let mut accepted = vec![requester.client_id.as_str()];
            accepted.extend(self.client_id.as_deref());
            accepted
        } else {
            self.allowed_audiences.iter().map(String::as_str).collect()
        }
    }
}

/// The one refusal for a provider the client may not use, is disabled, or does not exist, so
/// that the answer does not reveal which providers are registered (Dex GHSA-7qjx-gp9h-65qj).
pub fn provider_refused() -> OAuthError {
    OAuthError::access_denied("Client not allowed to exchange")
}

/// Whether `requester` may use the provider: its allow-list, or the provider's V1
/// `token-exchange` permission.
pub fn client_may_use(realm: &RealmSnapshot, provider: &ProviderTrust, requester: &Client) -> bool {
    if provider.allowed_clients.contains(&requester.client_id) {
        return true;
    }
    let name = idp_permission_name(&provider.internal_id);
    realm
        .permissions
        .by_name(&name)
        .is_some_and(|p| realm.permissions.grants(p, &requester.id))
}

/// The name of an identity provider's token-exchange permission.
pub fn idp_permission_name(internal_id: &str) -> String {
    format!("token-exchange.permission.idp.{internal_id}")
}

/// The name of an identity provider's resource.
pub fn idp_resource_name(internal_id: &str) -> String {
    format!("idp.resource.{internal_id}")
}

/// What the external token says about its subject, after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    pub subject: String,
    pub username: Option<String>,
    pub email: Option<String>,
    /// `given_name` and `family_name`, kept for a user created on first use.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub roles: Vec<String>,
    pub expires_at: u64,
}

/// Reads the mapped claims of a verified external token.
pub fn identity(provider: &ProviderTrust, verified: &VerifiedJwt) -> OAuthResult<ExternalIdentity> {
    let claims = verified.claims();
    let text = |name: &Option<String>| {
        name.as_ref()
            .and_then(|n| claims.get(n))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let subject = claims
        .get(&provider.subject_claim)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or_else(|| OAuthError::invalid_request("External token has no subject"))?
        .to_owned();
    let roles = provider
        .roles_claim
        .as_ref()
        .and_then(|n| claims.get(n))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    // Names are profile data only (never used to find or link a user), so the standard claims
    // are read as they come, bounded like a username.
    let name = |claim: &str| {
        text(&Some(claim.to_owned()))
            .filter(|n| !n.is_empty() && n.len() <= 255 && !n.chars().any(char::is_control))
    };
    Ok(ExternalIdentity {
        subject,
        username: text(&provider.username_claim),
        email: text(&provider.email_claim),
        first_name: name("given_name"),
        last_name: name("family_name"),
        roles,
        expires_at: verified.expires_at().unwrap_or(0),
    })
}

/// A local user for a first-time external identity (provisioning `create`).
pub fn provisioned_user(
    provider: &ProviderTrust,
    external: &ExternalIdentity,
    id: String,
    now: u64,
) -> User {
    let username = external
        .username
        .clone()
        .filter(|u| !u.is_empty() && u.len() <= 255 && !u.chars().any(char::is_control))
        .unwrap_or_else(|| format!("{}.{}", provider.alias, external.subject))
        .to_lowercase();
    User {
        id: id.clone(),
        username,
        email: external.email.clone(),
        first_name: external.first_name.clone(),
        last_name: external.last_name.clone(),
        federated_identities: vec![crate::model::FederatedIdentity {
            identity_provider: provider.alias.clone(),
            user_id: external.subject.clone(),
            user_name: external.username.clone().unwrap_or_default(),
        }],
        created_timestamp: now * 1000,
        ..Default::default()
    }
}

/// Everything an external exchange decision needs.
#[derive(Debug, Clone)]
pub struct ExternalExchange<'a> {
    pub realm: &'a RealmSnapshot,
    pub provider: &'a ProviderTrust,
    pub requester: &'a Client,
    pub user: &'a User,
    pub external: &'a ExternalIdentity,
    pub audiences: &'a [&'a str],
    pub scope: Option<&'a str>,
    pub now: u64,
    pub access_jti: String,
    pub id_jti: String,
}

/// Decides the local token for a validated external token and its linked user.
pub fn decide(input: ExternalExchange<'_>) -> OAuthResult<Issued> {
    let ExternalExchange {
        realm,
        provider,
        requester,
        user,
        external,
        audiences,
        scope,
        now,
        access_jti,
        id_jti,
    } = input;
    if !user.enabled {
        return Err(OAuthError::invalid_request("Linked user is disabled"));
    }
    let granted = GrantedScope::resolve(realm, requester, scope)?;
    let mut filter = Vec::with_capacity(audiences.len());
    for audience in audiences {
        let client = realm
            .client_by_client_id(audience)
            .ok_or_else(|| OAuthError::invalid_client("Audience not found"))?;
        if !client.enabled {
            return Err(OAuthError::invalid_client("Client disabled"));
        }
        filter.push((*audience).to_owned());
    }
    let mut roles = realm.roles_in_scope(user, requester);
    for (from, to) in &provider.role_mappings {
        if external.roles.contains(from) && realm.realm_role_id(to).is_some() {
            roles.realm.insert(to.clone());
        }
    }
    // Never outlive the external token, nor the provider's cap.
    let remaining = external.expires_at.saturating_sub(now);
    let mut lifetime = requester.access_token_lifespan(&realm.realm).min(remaining);
    if let Some(cap) = provider.max_lifetime {
        lifetime = lifetime.min(cap);
    }
    if lifetime == 0 {
        return Err(OAuthError::invalid_request("External token expired"));
    }
    let issued = issue::issue(
        realm,
        IssueSpec {
            client: requester,
            user,
            scope: &granted,
            session_id: None,
            roles,
            audience_filter: (!filter.is_empty()).then_some(filter.as_slice()),
            lifetime,
            refresh_lifetime: None,
            offline: false,
            nonce: None,
            // The external token is this token's ancestor: naming its provider in
            // `exchanged_from` marks the token as exchanged (so it is never an admin credential)
            // and lets a revocation of `idp:{alias}` reach every token made from that provider.
            data: RefreshData {
                exchanged_from: vec![format!("idp:{}", provider.alias)],
                ..RefreshData::default()
            },
            now,
            access_jti,
            id_jti,
        },
    );
    if let Some(missing) = filter.iter().find(|a| !issued.access.aud.contains(a)) {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            format!("Requested audience not available: {missing}"),
        ));
    }
    Ok(issued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idp(config: &[(&str, &str)]) -> IdentityProvider {
        IdentityProvider {
            alias: "partner".into(),
            internal_id: "idp-1".into(),
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn configuration_is_validated() {
        use config_keys::*;
        let ok = ProviderTrust::from_provider(&idp(&[
            (ISSUER, "https://partner"),
            (JWKS_URL, "https://partner/jwks"),
            (ALLOWED_ALGORITHMS, "RS256,ES256"),
            (PROVISIONING, "create"),
            (ROLE_MAPPINGS, "staff=user admin=viewer"),
            (GRANT_TYPES, TAPKEY_GRANT),
        ]))
        .unwrap();
        assert_eq!(ok.allowed_algorithms, [Algorithm::Rs256, Algorithm::Es256]);
        assert_eq!(ok.provisioning, Provisioning::Create);
        assert_eq!(ok.role_mappings.len(), 2);
        assert_eq!(ok.grant_types, [TAPKEY_GRANT]);
        for (config, error) in [
            (vec![(JWKS_URL, "https://x")], "config.issuer is required"),
            (
                vec![(ISSUER, "https://x")],
                "config.jwksUrl or cambio.jwks is required",
            ),
            (
                vec![
                    (ISSUER, "x"),
                    (JWKS_URL, "u"),
                    (VALIDATE_SIGNATURE, "false"),
                ],
                "config.validateSignature=false is not supported: signatures are always validated",
            ),
            (
                vec![
                    (ISSUER, "x"),
                    (JWKS_URL, "u"),
                    (ALLOWED_ALGORITHMS, "HS256"),
                ],
                "unsupported algorithm HS256",
            ),
            (
                vec![(ISSUER, "x"), (JWKS_URL, "u"), (PROVISIONING, "maybe")],
                "unknown provisioning maybe (linked-only or create)",
            ),
            (
                vec![(ISSUER, "x"), (JWKS, "{\"keys\":[]}")],
                "cambio.jwks holds no usable signing key",
            ),
        ] {
            assert_eq!(
                ProviderTrust::from_provider(&idp(&config)).unwrap_err(),
                error
            );
        }
    }
}
