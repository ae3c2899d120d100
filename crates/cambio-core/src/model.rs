//! The domain model: realms, clients, users, roles and client scopes, as the protocol core
//! sees them. These are also the documents the store keeps (as JSON), so every field has a
//! default and unknown fields are ignored: old documents keep loading after an upgrade.

use std::collections::BTreeMap;

use cambio_jose::Algorithm;
use serde::{Deserialize, Serialize};

/// Keycloak's client attribute that turns on standard token exchange (V2) for a requester.
pub const ATTR_STANDARD_EXCHANGE: &str = "standard.token.exchange.enabled";
/// Keycloak's client attribute that lets a requester ask for a refresh token in an exchange.
pub const ATTR_EXCHANGE_REFRESH: &str = "standard.token.exchange.enableRefreshRequestedTokenType";
/// Per-client access token lifetime override, in seconds.
pub const ATTR_ACCESS_TOKEN_LIFESPAN: &str = "access.token.lifespan";
/// Per-client refresh (client session idle) lifetime override, in seconds.
pub const ATTR_CLIENT_SESSION_IDLE: &str = "client.session.idle.timeout";
/// Keycloak's client attribute holding the JWKS (JSON) for `private_key_jwt`.
pub const ATTR_JWKS: &str = "jwks.string";
/// Whether refresh tokens are issued to this client at all (default true).
pub const ATTR_USE_REFRESH_TOKENS: &str = "use.refresh.tokens";

/// Realm-wide settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Realm {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub display_name: Option<String>,
    /// Access token lifetime in seconds.
    pub access_token_lifespan: u64,
    /// Refresh token lifetime (session idle) in seconds.
    pub sso_session_idle_timeout: u64,
    /// Absolute session lifetime in seconds.
    pub sso_session_max_lifespan: u64,
    /// Offline refresh token lifetime (idle) in seconds.
    pub offline_session_idle_timeout: u64,
    /// Authorization code lifetime in seconds.
    pub access_code_lifespan: u64,
    pub default_signature_algorithm: Algorithm,
    /// When true an exchanged token never outlives the subject token it came from.
    pub exchange_lifetime_capped_by_subject: bool,
    /// Realm roles every user has (by name), like Keycloak's `default-roles-{realm}`.
    pub default_roles: Vec<String>,
    /// Client scopes (by name) given to new clients as default and optional scopes.
    pub default_default_client_scopes: Vec<String>,
    pub default_optional_client_scopes: Vec<String>,
    pub attributes: BTreeMap<String, String>,
}

impl Default for Realm {
    fn default() -> Self {
        Realm {
            id: String::new(),
            name: String::new(),
            enabled: true,
            display_name: None,
            access_token_lifespan: 300,
            sso_session_idle_timeout: 1800,
            sso_session_max_lifespan: 36_000,
            offline_session_idle_timeout: 2_592_000,
            access_code_lifespan: 60,
            default_signature_algorithm: Algorithm::Es256,
            exchange_lifetime_capped_by_subject: true,
            default_roles: vec!["offline_access".into(), "uma_authorization".into()],
            default_default_client_scopes: [
                "profile",
                "email",
                "roles",
                "web-origins",
                "basic",
                "acr",
            ]
            .map(String::from)
            .to_vec(),
            default_optional_client_scopes: ["offline_access", "address", "phone"]
                .map(String::from)
                .to_vec(),
            attributes: BTreeMap::new(),
        }
    }
}

/// How a confidential client proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ClientAuthenticator {
    /// `client_secret_basic` or `client_secret_post` (Keycloak's `client-secret`).
    #[default]
    #[serde(rename = "client-secret")]
    Secret,
    /// `private_key_jwt` with a registered JWKS (Keycloak's `client-jwt`).
    #[serde(rename = "client-jwt")]
    PrivateKeyJwt,
}

/// A protocol mapper. Only the kinds Cambio implements are listed; others are kept verbatim
/// by the admin API but have no effect on tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct ProtocolMapper {
    pub id: String,
    pub name: String,
    pub protocol: String,
    /// `oidc-audience-mapper` adds `config["included.client.audience"]` to `aud`.
    pub protocol_mapper: String,
    pub config: BTreeMap<String, String>,
}

pub const AUDIENCE_MAPPER: &str = "oidc-audience-mapper";

/// An OAuth client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Client {
    /// Internal id (UUID), used in admin paths.
    pub id: String,
    /// The OAuth `client_id`.
    pub client_id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub public_client: bool,
    pub bearer_only: bool,
    pub client_authenticator_type: ClientAuthenticator,
    /// The client secret in clear; the server encrypts it before it reaches the store.
    pub secret: Option<String>,
    pub redirect_uris: Vec<String>,
    pub web_origins: Vec<String>,
    pub standard_flow_enabled: bool,
    pub direct_access_grants_enabled: bool,
    pub service_accounts_enabled: bool,
    pub full_scope_allowed: bool,
    /// Role ids this client may put in tokens when `full_scope_allowed` is false.
    pub scope_role_ids: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    /// Client scope names always applied.
    pub default_client_scopes: Vec<String>,
    /// Client scope names applied when requested with `scope`.
    pub optional_client_scopes: Vec<String>,
    pub protocol_mappers: Vec<ProtocolMapper>,
    /// When the admin API created the client (seconds; 0 for clients made otherwise). Tokens
    /// issued before it were issued to an earlier client of the same name or id, deleted since.
    pub created_at: u64,
}

impl Default for Client {
    fn default() -> Self {
        Client {
            id: String::new(),
            client_id: String::new(),
            name: None,
            description: None,
            enabled: true,
            public_client: false,
            bearer_only: false,
            client_authenticator_type: ClientAuthenticator::Secret,
            secret: None,
            redirect_uris: Vec::new(),
            web_origins: Vec::new(),
            standard_flow_enabled: true,
            direct_access_grants_enabled: false,
            service_accounts_enabled: false,
            full_scope_allowed: true,
            scope_role_ids: Vec::new(),
            attributes: BTreeMap::new(),
            default_client_scopes: Vec::new(),
            optional_client_scopes: Vec::new(),
            protocol_mappers: Vec::new(),
            created_at: 0,
        }
    }
}

impl Client {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    pub fn attribute_is_true(&self, name: &str) -> bool {
        self.attribute(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    fn attribute_secs(&self, name: &str) -> Option<u64> {
        self.attribute(name)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|v| *v > 0)
    }

    pub fn is_confidential(&self) -> bool {
        !self.public_client && !self.bearer_only
    }

    pub fn standard_exchange_enabled(&self) -> bool {
        self.attribute_is_true(ATTR_STANDARD_EXCHANGE)
    }

    /// Whether an exchange may return a refresh token (Keycloak: `SAME_SESSION`).
    pub fn exchange_refresh_allowed(&self) -> bool {
        self.uses_refresh_tokens()
            && self
                .attribute(ATTR_EXCHANGE_REFRESH)
                .is_some_and(|v| v == "SAME_SESSION")
    }

    pub fn uses_refresh_tokens(&self) -> bool {
        self.attribute(ATTR_USE_REFRESH_TOKENS)
            .is_none_or(|v| !v.eq_ignore_ascii_case("false"))
    }

    pub fn access_token_lifespan(&self, realm: &Realm) -> u64 {
        self.attribute_secs(ATTR_ACCESS_TOKEN_LIFESPAN)
            .unwrap_or(realm.access_token_lifespan)
    }

    pub fn refresh_lifespan(&self, realm: &Realm) -> u64 {
        self.attribute_secs(ATTR_CLIENT_SESSION_IDLE)
            .unwrap_or(realm.sso_session_idle_timeout)
    }

    /// Client ids named by this client's audience mappers.
    pub fn mapped_audiences(&self) -> impl Iterator<Item = &str> {
        audience_targets(&self.protocol_mappers)
    }
}

/// Client ids named by the audience mappers among `mappers` that add to access tokens.
fn audience_targets(mappers: &[ProtocolMapper]) -> impl Iterator<Item = &str> {
    mappers
        .iter()
        .filter(|m| m.protocol_mapper == AUDIENCE_MAPPER)
        .filter(|m| {
            m.config
                .get("access.token.claim")
                .is_none_or(|v| v == "true")
        })
        .filter_map(|m| m.config.get("included.client.audience"))
        .map(String::as_str)
}

/// A realm role (`client_id` is None) or a client role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Role {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// The owning client's internal id for client roles.
    pub client_id: Option<String>,
    /// Ids of the roles this composite role contains.
    pub composites: Vec<String>,
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// A link from a local user to an identity at an external provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct FederatedIdentity {
    pub identity_provider: String,
    pub user_id: String,
    pub user_name: String,
}

/// A user, or the service account of a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub username: String,
    pub enabled: bool,
    pub email: Option<String>,
    pub email_verified: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub attributes: BTreeMap<String, Vec<String>>,
    /// PHC-format Argon2id hash; None when the user has no password.
    pub password_hash: Option<String>,
    /// Directly assigned role ids (realm and client roles).
    pub role_ids: Vec<String>,
    /// The internal id of the client whose service account this is.
    pub service_account_client_id: Option<String>,
    pub federated_identities: Vec<FederatedIdentity>,
    pub created_timestamp: u64,
    /// Ids of the groups the user is a direct member of. Membership is kept on the user, not
    /// as records of its own: every token path (issuing, exchange narrowing, the admin
    /// caller) already holds the user from the user cache, so with these ids and the groups
    /// in the realm snapshot effective roles stay a memory read. The price is paid by the
    /// admin API, which scans the realm's users to list a group's members. Ids of groups
    /// deleted since are ignored wherever roles are resolved.
    pub groups: Vec<String>,
}

impl Default for User {
    fn default() -> Self {
        User {
            id: String::new(),
            username: String::new(),
            enabled: true,
            email: None,
            email_verified: false,
            first_name: None,
            last_name: None,
            attributes: BTreeMap::new(),
            password_hash: None,
            role_ids: Vec::new(),
            service_account_client_id: None,
            federated_identities: Vec::new(),
            created_timestamp: 0,
            groups: Vec::new(),
        }
    }
}

impl User {
    pub fn full_name(&self) -> Option<String> {
        match (&self.first_name, &self.last_name) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (Some(n), None) | (None, Some(n)) => Some(n.clone()),
            (None, None) => None,
        }
    }
}

/// A group (Keycloak semantics): its members hold its roles and those of every group above
/// it. The path (`/parent/child`) is not stored; the realm snapshot derives it from the parents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub name: String,
    /// The group this one is a subgroup of; None for a top-level group.
    pub parent_id: Option<String>,
    pub attributes: BTreeMap<String, Vec<String>>,
    /// Role ids mapped to the group (realm and client roles).
    pub role_ids: Vec<String>,
}

/// Keycloak's group membership protocol mapper: puts the user's groups in a claim.
pub const GROUP_MEMBERSHIP_MAPPER: &str = "oidc-group-membership-mapper";

/// A client scope. Cambio gives the built-in names their Keycloak meaning (`profile`, `email`,
/// `roles`, `offline_access`...); other scopes only appear in the `scope` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClientScope {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub protocol: String,
    /// Whether the scope's name is listed in the token's `scope` claim.
    pub include_in_token_scope: bool,
    pub attributes: BTreeMap<String, String>,
    pub protocol_mappers: Vec<ProtocolMapper>,
}

impl ClientScope {
    /// Client ids named by this scope's audience mappers: a token the scope is applied to
    /// names them in `aud`, as a client's own audience mappers do.
    pub fn mapped_audiences(&self) -> impl Iterator<Item = &str> {
        audience_targets(&self.protocol_mappers)
    }
}

impl Default for ClientScope {
    fn default() -> Self {
        ClientScope {
            id: String::new(),
            name: String::new(),
            description: None,
            protocol: "openid-connect".into(),
            include_in_token_scope: true,
            attributes: BTreeMap::new(),
            protocol_mappers: Vec::new(),
        }
    }
}

/// The client scopes every new realm starts with, and whether each appears in `scope`.
pub const BUILTIN_CLIENT_SCOPES: &[(&str, bool)] = &[
    ("profile", true),
    ("email", true),
    ("roles", false),
    ("web-origins", false),
    ("basic", false),
    ("acr", false),
    ("offline_access", true),
    ("address", true),
    ("phone", true),
];

/// The scope that asks for an offline session.
pub const OFFLINE_ACCESS: &str = "offline_access";
