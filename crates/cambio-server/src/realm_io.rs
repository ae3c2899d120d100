//! A realm's whole configuration as one Keycloak `RealmRepresentation`: import (`POST
//! /admin/realms`, `cambio realm import`) and export (`partial-export`, `cambio realm export`).
//!
//! Import builds and validates everything in memory first (client scopes, clients, roles with
//! their composites, users with their role mappings and passwords, a signing key) and only then
//! writes; the realm object goes last, so a realm is never visible half imported. A write that
//! fails removes what was written.
//!
//! Passwords travel as Keycloak credentials: `{"type":"password","value":"..."}` is hashed on
//! import; a full export carries Cambio's Argon2id PHC string in `hashedSaltedValue`, which
//! import takes as is.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// The realm attribute holding Cambio's `exchangeLifetimeCappedBySubject` (also accepted as a
/// top-level member, as earlier versions wrote it).
pub const CAPPED_BY_SUBJECT_ATTRIBUTE: &str = "cambio.exchangeLifetimeCappedBySubject";

use axum::http::StatusCode;
use cambio_core::model::{
    BUILTIN_CLIENT_SCOPES, Client, ClientScope, FederatedIdentity, ProtocolMapper, Realm, Role,
    User,
};
use cambio_core::realm::RealmSnapshot;
use cambio_jose::Algorithm;
use cambio_proto::admin::{
    ClientRep, ClientScopeRep, CredentialRep, ProtocolMapperRep, RealmRep, RoleCompositesRep,
    RoleRep, RolesRep, ScopeMappingRep, UserRep,
};
use cambio_store::{GLOBAL, SqliteStore, Store, StoreError};
use serde_json::Value;

use crate::admin::{Approved, clients, users};
use crate::bootstrap::{self, REALM_MANAGEMENT, REALM_MANAGEMENT_ROLES};
use crate::error::ApiError;
use crate::import_report::ImportReport;
use crate::keys::StoredKey;
use crate::state::{AppState, FederatedLink, KIND_REALM, KIND_USER, RealmRuntime, WriteBatch};
use crate::{Config, ServerError, random};

/// Keycloak's answer when a realm of that name already exists.
pub const REALM_CONFLICT: &str = "Conflict detected. See logs for details";
/// What exports show instead of a client secret (Keycloak's mask); import ignores it.
pub const MASKED_SECRET: &str = "**********";
/// The attribute of a client scope that says whether its name appears in `scope`.
const INCLUDE_IN_TOKEN_SCOPE: &str = "include.in.token.scope";

/// Why an import or export failed.
#[derive(Debug, thiserror::Error)]
pub enum RealmIoError {
    /// The representation is invalid (an admin request answers 400).
    #[error("{0}")]
    Invalid(String),
    /// The realm (or something in it) already exists (409).
    #[error("{0}")]
    Conflict(String),
    /// The realm to export does not exist (404).
    #[error("realm not found: {0}")]
    NotFound(String),
    #[error(transparent)]
    Server(#[from] ServerError),
}

impl From<StoreError> for RealmIoError {
    fn from(e: StoreError) -> Self {
        RealmIoError::Server(ServerError::Store(e))
    }
}

impl From<RealmIoError> for ApiError {
    fn from(e: RealmIoError) -> Self {
        match e {
            RealmIoError::Invalid(message) => crate::admin::bad_request(message),
            RealmIoError::Conflict(message) => crate::admin::conflict(message),
            RealmIoError::NotFound(_) => ApiError::NotFound("Realm not found."),
            RealmIoError::Server(ServerError::Store(e)) => e.into(),
            RealmIoError::Server(other) => {
                tracing::error!(error = %other, "realm import/export failed");
                ApiError::Unavailable
            }
        }
    }
}

/// An admin-API validation error (from `clients::apply_rep`) as an import error.
fn from_api(e: ApiError) -> RealmIoError {
    match e {
        ApiError::Admin { status, message } if status == StatusCode::CONFLICT => {
            RealmIoError::Conflict(message)
        }
        ApiError::Admin { message, .. } => RealmIoError::Invalid(message),
        ApiError::NotFound(what) => RealmIoError::Invalid(what.to_owned()),
        other => RealmIoError::Invalid(format!("{other:?}")),
    }
}

fn invalid(message: impl Into<String>) -> RealmIoError {
    RealmIoError::Invalid(message.into())
}

// The offline API the `cambio realm` subcommands use.

/// Opens the store and data-encryption key `config` names, without serving anything.
pub(crate) async fn open(config: &Config) -> Result<AppState, RealmIoError> {
    if !config.database_url.starts_with("sqlite:") {
        return Err(ServerError::Config(format!(
            "unsupported database URL (expected sqlite:...): {}",
            config.database_url.split('@').next_back().unwrap_or("")
        ))
        .into());
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&config.database_url).await?);
    let secrets = crate::secrets::SecretBox::new(&crate::data_key(config.data_dir.as_deref())?)
        .map_err(|e| ServerError::Config(e.to_string()))?;
    let base_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| "http://localhost".into());
    let (audit, _writer) = crate::audit::AuditQueue::start(store.clone());
    Ok(AppState::new(store, secrets, base_url, audit))
}

/// Exports realm `name` from the database `config` names, in full: clients with their secrets,
/// roles, client scopes, and users with their role mappings and password hashes.
pub async fn export_realm(config: &Config, name: &str) -> Result<RealmRep, RealmIoError> {
    let app = open(config).await?;
    let object = app
        .store
        .find_object(GLOBAL, KIND_REALM, name)
        .await?
        .ok_or_else(|| RealmIoError::NotFound(name.to_owned()))?;
    let now = random::now();
    app.reload_realm(&object.id, now).await?;
    let rt = app
        .realm(name)
        .ok_or_else(|| RealmIoError::NotFound(name.to_owned()))?;
    export(&app, &rt, ExportOptions::FULL).await
}

/// Imports a realm into the database `config` names; refuses when its name is taken. Returns
/// the new realm's id. A running server sees the realm after a restart.
pub async fn import_realm(config: &Config, rep: &RealmRep) -> Result<String, RealmIoError> {
    let document = serde_json::to_value(rep).map_err(|e| invalid(e.to_string()))?;
    let (id, _report) = crate::realm_import::import_offline(config, &document).await?;
    Ok(id)
}

// Realm names and settings.

/// Realm names appear in URL paths and issuers: ASCII letters, digits, `-`, `_` and `.`.
pub(crate) fn validate_name(name: &str) -> Result<(), RealmIoError> {
    if name.is_empty() {
        return Err(invalid("Realm name cannot be empty"));
    }
    let ok = name.len() <= 255
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "Realm name may only contain letters, digits, '-', '_' and '.'",
        ))
    }
}

fn lifespan(value: Option<i64>, field: &str, target: &mut u64) -> Result<(), RealmIoError> {
    if let Some(value) = value {
        *target = u64::try_from(value)
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| invalid(format!("{field} must be a positive number of seconds")))?;
    }
    Ok(())
}

/// Applies the settings a representation names (not its name, clients, roles or users).
/// Default roles and default client scopes are set here and checked by the caller.
pub(crate) fn apply_settings(realm: &mut Realm, rep: &RealmRep) -> Result<(), RealmIoError> {
    if let Some(v) = &rep.display_name {
        realm.display_name = (!v.is_empty()).then(|| v.clone());
    }
    if let Some(v) = rep.enabled {
        realm.enabled = v;
    }
    lifespan(
        rep.access_token_lifespan,
        "accessTokenLifespan",
        &mut realm.access_token_lifespan,
    )?;
    lifespan(
        rep.sso_session_idle_timeout,
        "ssoSessionIdleTimeout",
        &mut realm.sso_session_idle_timeout,
    )?;
    lifespan(
        rep.sso_session_max_lifespan,
        "ssoSessionMaxLifespan",
        &mut realm.sso_session_max_lifespan,
    )?;
    lifespan(
        rep.offline_session_idle_timeout,
        "offlineSessionIdleTimeout",
        &mut realm.offline_session_idle_timeout,
    )?;
    lifespan(
        rep.access_code_lifespan,
        "accessCodeLifespan",
        &mut realm.access_code_lifespan,
    )?;
    if let Some(alg) = &rep.default_signature_algorithm {
        realm.default_signature_algorithm = Algorithm::from_name(alg)
            .ok_or_else(|| invalid(format!("Unsupported signature algorithm: {alg}")))?;
    }
    if let Some(v) = rep.exchange_lifetime_capped_by_subject {
        realm.exchange_lifetime_capped_by_subject = v;
    }
    if let Some(attributes) = &rep.attributes {
        for (name, value) in attributes {
            if name == CAPPED_BY_SUBJECT_ATTRIBUTE {
                realm.exchange_lifetime_capped_by_subject = match value {
                    Value::Bool(b) => *b,
                    Value::String(s) if s == "true" || s == "false" => s == "true",
                    _ => return Err(invalid(format!("Invalid value for attribute {name}"))),
                };
                continue;
            }
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::Null => {
                    realm.attributes.remove(name);
                    continue;
                }
                _ => return Err(invalid(format!("Invalid value for attribute {name}"))),
            };
            realm.attributes.insert(name.clone(), value);
        }
    }
    // `defaultRoles` (a list) wins over `defaultRole` (one composite), which Cambio models as
    // a one-element list.
    if let Some(names) = &rep.default_roles {
        realm.default_roles = names.clone();
    } else if let Some(name) = rep.default_role.as_ref().and_then(|r| r.name.clone()) {
        realm.default_roles = vec![name];
    }
    if let Some(v) = &rep.default_default_client_scopes {
        realm.default_default_client_scopes = v.clone();
    }
    if let Some(v) = &rep.default_optional_client_scopes {
        realm.default_optional_client_scopes = v.clone();
    }
    Ok(())
}

/// Fails unless every default client scope and default role of `realm` exists. With
/// `before`, only the lists that changed are checked: a PUT of unrelated settings never fails
/// because of what was already there.
pub(crate) fn check_defaults(
    realm: &Realm,
    before: Option<&Realm>,
    scope_exists: impl Fn(&str) -> bool,
    realm_role_exists: impl Fn(&str) -> bool,
) -> Result<(), RealmIoError> {
    let changed = |now: &Vec<String>, then: fn(&Realm) -> &Vec<String>| {
        before.is_none_or(|before| then(before) != now)
    };
    let mut scopes: Vec<&String> = Vec::new();
    if changed(&realm.default_default_client_scopes, |r| {
        &r.default_default_client_scopes
    }) {
        scopes.extend(&realm.default_default_client_scopes);
    }
    if changed(&realm.default_optional_client_scopes, |r| {
        &r.default_optional_client_scopes
    }) {
        scopes.extend(&realm.default_optional_client_scopes);
    }
    if let Some(unknown) = scopes.into_iter().find(|s| !scope_exists(s)) {
        return Err(invalid(format!("Client scope {unknown} not found")));
    }
    if changed(&realm.default_roles, |r| &r.default_roles)
        && let Some(unknown) = realm.default_roles.iter().find(|r| !realm_role_exists(r))
    {
        return Err(invalid(format!("Role {unknown} not found")));
    }
    Ok(())
}

/// The realm's settings as Keycloak shows them (`GET /admin/realms/{realm}`).
pub(crate) fn settings_rep(realm: &Realm) -> RealmRep {
    let secs = |v: u64| Some(i64::try_from(v).unwrap_or(i64::MAX));
    RealmRep {
        id: Some(realm.id.clone()),
        realm: Some(realm.name.clone()),
        display_name: realm.display_name.clone(),
        enabled: Some(realm.enabled),
        access_token_lifespan: secs(realm.access_token_lifespan),
        sso_session_idle_timeout: secs(realm.sso_session_idle_timeout),
        sso_session_max_lifespan: secs(realm.sso_session_max_lifespan),
        offline_session_idle_timeout: secs(realm.offline_session_idle_timeout),
        access_code_lifespan: secs(realm.access_code_lifespan),
        default_signature_algorithm: Some(realm.default_signature_algorithm.as_str().to_owned()),
        // Written as an attribute, where Keycloak keeps what it does not know: Keycloak's
        // import refuses unknown members, so an export of Cambio's imports into Keycloak.
        exchange_lifetime_capped_by_subject: None,
        attributes: Some(
            realm
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .chain(std::iter::once((
                    CAPPED_BY_SUBJECT_ATTRIBUTE.to_owned(),
                    Value::String(realm.exchange_lifetime_capped_by_subject.to_string()),
                )))
                .collect(),
        ),
        default_roles: Some(realm.default_roles.clone()),
        default_role: match realm.default_roles.as_slice() {
            [one] => Some(RoleRep {
                name: Some(one.clone()),
                client_role: Some(false),
                container_id: Some(realm.id.clone()),
                ..Default::default()
            }),
            _ => None,
        },
        default_default_client_scopes: Some(realm.default_default_client_scopes.clone()),
        default_optional_client_scopes: Some(realm.default_optional_client_scopes.clone()),
        ..Default::default()
    }
}

// Import.

fn mappers_from_rep(reps: &[ProtocolMapperRep]) -> Vec<ProtocolMapper> {
    reps.iter()
        .map(|m| ProtocolMapper {
            id: m
                .id
                .clone()
                .filter(|id| !id.is_empty())
                .unwrap_or_else(random::uuid),
            name: m.name.clone(),
            protocol: if m.protocol.is_empty() {
                "openid-connect".into()
            } else {
                m.protocol.clone()
            },
            protocol_mapper: m.protocol_mapper.clone(),
            config: m.config.clone(),
        })
        .collect()
}

fn mappers_to_rep(mappers: &[ProtocolMapper]) -> Vec<ProtocolMapperRep> {
    mappers
        .iter()
        .map(|m| ProtocolMapperRep {
            id: Some(m.id.clone()),
            name: m.name.clone(),
            protocol: m.protocol.clone(),
            protocol_mapper: m.protocol_mapper.clone(),
            config: m.config.clone(),
        })
        .collect()
}

fn apply_scope_rep(scope: &mut ClientScope, rep: &ClientScopeRep) {
    if let Some(id) = rep.id.clone().filter(|id| !id.is_empty()) {
        scope.id = id;
    }
    if let Some(v) = &rep.description {
        scope.description = Some(v.clone());
    }
    if let Some(v) = &rep.protocol {
        scope.protocol = v.clone();
    }
    if let Some(attributes) = &rep.attributes {
        scope.attributes = attributes.clone();
        if let Some(v) = scope.attributes.remove(INCLUDE_IN_TOKEN_SCOPE) {
            scope.include_in_token_scope = !v.eq_ignore_ascii_case("false");
        }
    }
    if let Some(mappers) = &rep.protocol_mappers {
        scope.protocol_mappers = mappers_from_rep(mappers);
    }
}

fn scope_to_rep(scope: &ClientScope) -> ClientScopeRep {
    let mut attributes = scope.attributes.clone();
    attributes.insert(
        INCLUDE_IN_TOKEN_SCOPE.into(),
        scope.include_in_token_scope.to_string(),
    );
    ClientScopeRep {
        id: Some(scope.id.clone()),
        name: Some(scope.name.clone()),
        description: scope.description.clone(),
        protocol: Some(scope.protocol.clone()),
        attributes: Some(attributes),
        protocol_mappers: Some(mappers_to_rep(&scope.protocol_mappers)),
    }
}

pub(crate) mod groups;

/// Roles under construction, indexed by (owning client uuid or None, name).
#[derive(Default)]
struct RoleTable {
    roles: Vec<Role>,
    index: HashMap<(Option<String>, String), usize>,
}

impl RoleTable {
    fn get_or_add(&mut self, client: Option<&str>, name: &str) -> &mut Role {
        let key = (client.map(str::to_owned), name.to_owned());
        let at = match self.index.get(&key) {
            Some(at) => *at,
            None => {
                self.roles.push(Role {
                    id: random::uuid(),
                    name: name.to_owned(),
                    client_id: key.0.clone(),
                    ..Default::default()
                });
                self.index.insert(key, self.roles.len() - 1);
                self.roles.len() - 1
            }
        };
        &mut self.roles[at]
    }

    fn id(&self, client: Option<&str>, name: &str) -> Option<&str> {
        self.index
            .get(&(client.map(str::to_owned), name.to_owned()))
            .map(|at| self.roles[*at].id.as_str())
    }
}

/// Client uuids by `clientId`, for resolving names in roles, mappings and scope mappings.
struct ClientIndex(HashMap<String, String>);

impl ClientIndex {
    fn uuid(&self, client_id: &str) -> Result<&str, RealmIoError> {
        self.0
            .get(client_id)
            .map(String::as_str)
            .ok_or_else(|| invalid(format!("Client {client_id} not found")))
    }
}

/// Resolves role names (realm roles, and client roles per `clientId`) to ids.
fn resolve_roles(
    table: &RoleTable,
    clients: &ClientIndex,
    realm_names: Option<&Vec<String>>,
    client_names: Option<&BTreeMap<String, Vec<String>>>,
) -> Result<Vec<String>, RealmIoError> {
    let mut ids = Vec::new();
    for name in realm_names.into_iter().flatten() {
        let id = table
            .id(None, name)
            .ok_or_else(|| invalid(format!("Role {name} not found")))?;
        ids.push(id.to_owned());
    }
    for (client_id, names) in client_names.into_iter().flatten() {
        let uuid = clients.uuid(client_id)?;
        for name in names {
            let id = table
                .id(Some(uuid), name)
                .ok_or_else(|| invalid(format!("Role {name} of client {client_id} not found")))?;
            ids.push(id.to_owned());
        }
    }
    Ok(ids)
}

fn apply_role_rep(role: &mut Role, rep: &RoleRep) {
    if let Some(id) = rep.id.clone().filter(|id| !id.is_empty()) {
        role.id = id;
    }
    if let Some(v) = &rep.description {
        role.description = Some(v.clone());
    }
    if let Some(v) = &rep.attributes {
        role.attributes = v.clone();
    }
}

/// Builds a user from its representation; passwords given in clear are returned to be hashed.
/// Credentials that cannot be kept are reported under `path`.
fn user_from_rep(
    rep: &UserRep,
    table: &RoleTable,
    clients: &ClientIndex,
    client_ids_by_uuid: &HashMap<String, String>,
    now: u64,
    (path, report): (&str, &mut ImportReport),
) -> Result<(User, Option<String>), RealmIoError> {
    let username = rep
        .username
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| invalid("User name is missing"))?
        .to_lowercase();
    let mut user = User {
        id: rep
            .id
            .clone()
            .filter(|id| !id.is_empty())
            .unwrap_or_else(random::uuid),
        username,
        enabled: rep.enabled.unwrap_or(true),
        email: rep.email.clone().filter(|e| !e.is_empty()),
        email_verified: rep.email_verified.unwrap_or(false),
        first_name: rep.first_name.clone(),
        last_name: rep.last_name.clone(),
        attributes: rep.attributes.clone().unwrap_or_default(),
        created_timestamp: rep.created_timestamp.unwrap_or(now * 1000),
        federated_identities: rep
            .federated_identities
            .iter()
            .flatten()
            .map(|f| match (&f.identity_provider, &f.user_id) {
                (Some(provider), Some(subject)) if !provider.is_empty() && !subject.is_empty() => {
                    Ok(FederatedIdentity {
                        identity_provider: provider.clone(),
                        user_id: subject.clone(),
                        user_name: f.user_name.clone().unwrap_or_default(),
                    })
                }
                _ => Err(invalid(
                    "A federated identity needs identityProvider and userId",
                )),
            })
            .collect::<Result<_, _>>()?,
        ..Default::default()
    };
    user.role_ids = resolve_roles(
        table,
        clients,
        rep.realm_roles.as_ref(),
        rep.client_roles.as_ref(),
    )?;
    if let Some(owner) = &rep.service_account_client_id {
        // Keycloak exports name the client by `clientId`; accept its uuid too.
        let (uuid, client_id) = match clients.0.get(owner) {
            Some(uuid) => (uuid.clone(), owner.clone()),
            None => match client_ids_by_uuid.get(owner) {
                Some(client_id) => (owner.clone(), client_id.clone()),
                None => return Err(invalid(format!("Client {owner} not found"))),
            },
        };
        let named = format!("service-account-{client_id}");
        if user.username != named {
            // Exports can name it after an earlier client id; Cambio finds a client's service
            // account by its name, so it takes the client's present one.
            report.add(
                format!("{path}.username"),
                format!("renamed {named}: a service account is named after its client"),
            );
        }
        user.username = named;
        user.service_account_client_id = Some(uuid);
    }
    let mut clear = None;
    match crate::keycloak_passwords::password(rep.credentials.as_deref(), path, report) {
        crate::keycloak_passwords::Password::Clear(value) => clear = Some(value),
        crate::keycloak_passwords::Password::Hash(hash) => user.password_hash = Some(hash),
        crate::keycloak_passwords::Password::None => {}
    }
    Ok((user, clear))
}

/// Creates a realm from a full representation. Nothing is written unless all of it is valid;
/// the realm is not loaded into memory (the caller reloads it).
///
/// `keys` are signing keys taken over from the exporting server (sealed); when one of them
/// may sign with the realm's algorithm no key is generated. What cannot be kept is added to
/// `report`.
/// `kept` adds what the caller keeps beside the realm (Keycloak's data) to the realm's own
/// writes, given the realm's clients as imported; all of it is stored in one transaction.
pub(crate) async fn import(
    app: &AppState,
    rep: &RealmRep,
    keys: Vec<StoredKey>,
    report: &mut ImportReport,
    now: u64,
    kept: impl FnOnce(
        &mut WriteBatch<'_>,
        &Realm,
        &[Client],
        &mut ImportReport,
    ) -> Result<(), StoreError>,
) -> Result<Realm, RealmIoError> {
    let name = rep.realm.clone().unwrap_or_default();
    validate_name(&name)?;
    if app
        .store
        .find_object(GLOBAL, KIND_REALM, &name)
        .await?
        .is_some()
    {
        return Err(RealmIoError::Conflict(REALM_CONFLICT.into()));
    }
    let mut realm = Realm {
        id: random::uuid(),
        name,
        ..Default::default()
    };
    if let Some(id) = rep.id.clone().filter(|id| !id.is_empty()) {
        if app
            .store
            .get_object(GLOBAL, KIND_REALM, &id)
            .await?
            .is_some()
        {
            return Err(RealmIoError::Conflict(REALM_CONFLICT.into()));
        }
        realm.id = id;
    }
    apply_settings(&mut realm, rep)?;

    // Client scopes: the built-in ones, then the representation's (same name: replaced).
    let mut scopes: Vec<ClientScope> = BUILTIN_CLIENT_SCOPES
        .iter()
        .map(|(name, listed)| ClientScope {
            id: random::uuid(),
            name: (*name).to_owned(),
            include_in_token_scope: *listed,
            ..Default::default()
        })
        .collect();
    for scope_rep in rep.client_scopes.iter().flatten() {
        let name = scope_rep
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("Client scope name is missing"))?;
        let at = match scopes.iter().position(|s| s.name == name) {
            Some(at) => at,
            None => {
                scopes.push(ClientScope {
                    id: random::uuid(),
                    name,
                    ..Default::default()
                });
                scopes.len() - 1
            }
        };
        apply_scope_rep(&mut scopes[at], scope_rep);
    }

    // The signing key, and a provisional runtime so clients are validated like the admin API
    // validates them (client scopes must exist).
    let mut keys = keys;
    let signer =
        match crate::keys::select(&app.secrets, &keys, realm.default_signature_algorithm, now) {
            Ok((signer, _)) => signer,
            Err(_) => {
                let (generated, signer) =
                    StoredKey::generate(&app.secrets, realm.default_signature_algorithm, now)?;
                keys.push(generated);
                signer
            }
        };
    let provisional = RealmRuntime {
        snapshot: RealmSnapshot::new(
            realm.clone(),
            app.issuer_for(&realm.name),
            Vec::new(),
            Vec::new(),
            scopes.clone(),
        ),
        signer,
        verifiers: Vec::new(),
        jwks_json: String::new(),
        token_endpoint: String::new(),
        next_key_change: None,
        generation: crate::state::next_runtime_generation(),
    };
    check_defaults(
        &realm,
        None,
        |s| provisional.snapshot.client_scope(s).is_some(),
        |_| true,
    )?;

    // Clients: realm-management, then the representation's.
    let mut management = bootstrap::new_client(&realm, REALM_MANAGEMENT);
    management.name = Some("${client_realm-management}".into());
    management.bearer_only = true;
    management.standard_flow_enabled = false;
    let mut clients: Vec<Client> = vec![management];
    for client_rep in rep.clients.iter().flatten() {
        let client_id = client_rep
            .client_id
            .clone()
            .ok_or_else(|| invalid("clientId is required"))?;
        let existing = clients.iter().position(|c| c.client_id == client_id);
        let mut client = match existing {
            Some(at) if client_id == REALM_MANAGEMENT => clients.remove(at),
            Some(_) => {
                return Err(RealmIoError::Conflict(format!(
                    "Client {client_id} already exists"
                )));
            }
            None => {
                let mut client = bootstrap::new_client(&realm, &client_id);
                client.direct_access_grants_enabled = false;
                client
            }
        };
        if let Some(id) = client_rep.id.clone().filter(|id| !id.is_empty()) {
            if clients.iter().any(|c| c.id == id) {
                return Err(RealmIoError::Conflict(format!(
                    "Client {id} already exists"
                )));
            }
            client.id = id;
        }
        let mut given = client_rep.clone();
        if given.secret.as_deref() == Some(MASKED_SECRET) {
            given.secret = None;
        }
        clients::apply_rep(&mut client, &given, &provisional).map_err(from_api)?;
        if client.is_confidential() && client.secret.is_none() {
            client.secret = Some(random::token());
        }
        clients.push(client);
    }
    let client_index = ClientIndex(
        clients
            .iter()
            .map(|c| (c.client_id.clone(), c.id.clone()))
            .collect(),
    );
    let client_ids_by_uuid: HashMap<String, String> = clients
        .iter()
        .map(|c| (c.id.clone(), c.client_id.clone()))
        .collect();

    // Roles: realm-management's, the default roles, then the representation's; composites
    // once every role exists.
    let mut table = RoleTable::default();
    let management_id = client_index.uuid(REALM_MANAGEMENT)?.to_owned();
    let mut admin_composites = Vec::new();
    for name in REALM_MANAGEMENT_ROLES {
        admin_composites.push(table.get_or_add(Some(&management_id), name).id.clone());
    }
    table
        .get_or_add(Some(&management_id), "realm-admin")
        .composites = admin_composites;
    // Every Keycloak realm has `offline_access` and `uma_authorization`.
    for name in Realm::default()
        .default_roles
        .iter()
        .chain(&realm.default_roles)
    {
        table.get_or_add(None, name);
    }
    let roles = rep.roles.clone().unwrap_or_default();
    let mut with_composites: Vec<(Option<String>, &RoleRep)> = Vec::new();
    for role_rep in roles.realm.iter().flatten() {
        let name = role_rep
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("Role name is missing"))?;
        apply_role_rep(table.get_or_add(None, &name), role_rep);
        with_composites.push((None, role_rep));
    }
    for (client_id, role_reps) in roles.client.iter().flatten() {
        let uuid = client_index.uuid(client_id)?.to_owned();
        for role_rep in role_reps {
            let name = role_rep
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| invalid("Role name is missing"))?;
            apply_role_rep(table.get_or_add(Some(&uuid), &name), role_rep);
            with_composites.push((Some(uuid.clone()), role_rep));
        }
    }
    // Keycloak 13+: the default role is a composite, described by `defaultRole`.
    if rep.default_roles.is_none()
        && let Some(default_role) = rep.default_role.as_ref().filter(|r| r.name.is_some())
    {
        with_composites.push((None, default_role));
    }
    for (owner, role_rep) in with_composites {
        let Some(composites) = &role_rep.composites else {
            continue;
        };
        let ids = resolve_roles(
            &table,
            &client_index,
            composites.realm.as_ref(),
            composites.client.as_ref(),
        )?;
        let name = role_rep.name.clone().unwrap_or_default();
        table.get_or_add(owner.as_deref(), &name).composites = ids;
    }
    // Ids must be unique: a representation may repeat one.
    let distinct: BTreeSet<&str> = table.roles.iter().map(|r| r.id.as_str()).collect();
    if distinct.len() != table.roles.len() {
        return Err(invalid("Duplicate role id"));
    }

    // Scope mappings of clients without full scope.
    let mut scope_roles: HashMap<String, Vec<String>> = HashMap::new();
    for mapping in rep.scope_mappings.iter().flatten() {
        let Some(client_id) = &mapping.client else {
            continue; // mappings of client scopes have no effect in Cambio
        };
        let uuid = client_index.uuid(client_id)?;
        let ids = resolve_roles(&table, &client_index, Some(&mapping.roles), None)?;
        scope_roles.entry(uuid.to_owned()).or_default().extend(ids);
    }
    for (owner, mappings) in rep.client_scope_mappings.iter().flatten() {
        for mapping in mappings {
            let Some(client_id) = &mapping.client else {
                continue;
            };
            let uuid = client_index.uuid(client_id)?;
            let names = BTreeMap::from([(owner.clone(), mapping.roles.clone())]);
            let ids = resolve_roles(&table, &client_index, None, Some(&names))?;
            scope_roles.entry(uuid.to_owned()).or_default().extend(ids);
        }
    }
    for client in &mut clients {
        if let Some(ids) = scope_roles.remove(&client.id) {
            client.scope_role_ids = ids;
        }
    }

    let imported_groups =
        groups::from_rep(rep.groups.as_deref().unwrap_or(&[]), &table, &client_index)?;

    // Users, their passwords hashed off the async workers, and the missing service accounts.
    let mut users = Vec::new();
    let mut clear_passwords = Vec::new();
    // User names and ids seen so far, so that an export of 100,000 users is checked for
    // repeats in linear time.
    let mut seen_names: HashSet<String> = HashSet::new();
    let mut seen_ids: HashSet<String> = HashSet::new();
    for (at, user_rep) in rep.users.iter().flatten().enumerate() {
        let path = format!("users[{at}]");
        let (mut user, clear) = user_from_rep(
            user_rep,
            &table,
            &client_index,
            &client_ids_by_uuid,
            now,
            (&path, report),
        )?;
        user.groups = groups::memberships(user_rep, &imported_groups)?;
        if !seen_names.insert(user.username.clone()) {
            return Err(RealmIoError::Conflict(format!(
                "User {} already exists",
                user.username
            )));
        }
        if !seen_ids.insert(user.id.clone()) {
            return Err(RealmIoError::Conflict(format!(
                "User {} already exists",
                user.id
            )));
        }
        if let Some(clear) = clear {
            clear_passwords.push((users.len(), clear));
        }
        users.push(user);
    }
    if !clear_passwords.is_empty() {
        let hashed = tokio::task::spawn_blocking(move || {
            clear_passwords
                .into_iter()
                .map(|(at, clear)| (at, crate::passwords::hash(&clear)))
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| ServerError::Config(format!("password hashing failed: {e}")))?;
        for (at, hash) in hashed {
            users[at].password_hash = Some(hash);
        }
    }
    let with_account: HashSet<String> = users
        .iter()
        .filter_map(|u| u.service_account_client_id.clone())
        .collect();
    for client in clients.iter().filter(|c| c.service_accounts_enabled) {
        if !with_account.contains(&client.id) {
            users.push(bootstrap::service_account(client, now));
        }
    }

    // Write, in one transaction: a failure, or a request cut off at its deadline, leaves
    // nothing of the realm behind.
    let mut batch = app.write_batch(&realm.id);
    for scope in &scopes {
        batch.insert_client_scope(scope)?;
    }
    for client in &clients {
        batch.insert_client(&Approved::by_system(client.clone()))?;
    }
    for user in &users {
        batch.insert_user(&Approved::by_system(user.clone()))?;
    }
    for role in &table.roles {
        batch.insert_role(&Approved::by_system(role.clone()))?;
    }
    for group in &imported_groups.groups {
        batch.insert_group(&Approved::by_system(group.clone()))?;
    }
    for user in &users {
        for identity in &user.federated_identities {
            batch.insert_federated_link(&FederatedLink {
                user_id: user.id.clone(),
                identity_provider: identity.identity_provider.clone(),
                external_subject: identity.user_id.clone(),
            })?;
        }
    }
    for key in &keys {
        batch.insert_key(key)?;
    }
    kept(&mut batch, &realm, &clients, report)?;
    batch.insert_realm(&Approved::by_system(realm.clone()))?;
    batch.commit().await.map_err(|error| match error {
        StoreError::Conflict(_) => RealmIoError::Conflict(REALM_CONFLICT.into()),
        other => other.into(),
    })?;
    Ok(realm)
}

// Export.

/// What an export includes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExportOptions {
    pub clients: bool,
    pub roles: bool,
    /// Every user with password hashes; otherwise only service accounts, when clients are
    /// exported (as Keycloak's partial export does).
    pub users: bool,
    /// Client secrets in clear; otherwise masked.
    pub secrets: bool,
}

impl ExportOptions {
    pub const FULL: ExportOptions = ExportOptions {
        clients: true,
        roles: true,
        users: true,
        secrets: true,
    };
}

/// A user as an export writes it: role names, group paths and the password hash only as far as
/// `options` asks for them.
pub(crate) fn user_rep(snapshot: &RealmSnapshot, user: &User, options: ExportOptions) -> UserRep {
    let mut user_rep = users::to_rep(user);
    user_rep.service_account_client_id = user.service_account_client_id.as_ref().map(|uuid| {
        snapshot
            .client(uuid)
            .map_or_else(|| uuid.clone(), |c| c.client_id.clone())
    });
    if options.roles {
        let (realm, clients) = role_names(snapshot, &user.role_ids);
        user_rep.realm_roles = Some(realm);
        user_rep.client_roles = (!clients.is_empty()).then_some(clients);
        user_rep.groups = Some(groups::paths_of(snapshot, user));
    }
    if options.users {
        user_rep.credentials = user.password_hash.as_ref().map(|hash| {
            vec![CredentialRep {
                credential_type: Some("password".into()),
                hashed_salted_value: Some(hash.clone()),
                ..Default::default()
            }]
        });
    }
    user_rep
}

fn role_names(
    snapshot: &RealmSnapshot,
    ids: &[String],
) -> (Vec<String>, BTreeMap<String, Vec<String>>) {
    let mut realm = Vec::new();
    let mut clients: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for role in ids.iter().filter_map(|id| snapshot.role(id)) {
        match &role.client_id {
            None => realm.push(role.name.clone()),
            Some(owner) => {
                if let Some(owner) = snapshot.client(owner) {
                    clients
                        .entry(owner.client_id.clone())
                        .or_default()
                        .push(role.name.clone());
                }
            }
        }
    }
    realm.sort();
    for names in clients.values_mut() {
        names.sort();
    }
    (realm, clients)
}

fn role_to_rep(snapshot: &RealmSnapshot, role: &Role) -> RoleRep {
    let (realm, client) = role_names(snapshot, &role.composites);
    let composite = !realm.is_empty() || !client.is_empty();
    RoleRep {
        id: Some(role.id.clone()),
        name: Some(role.name.clone()),
        description: role.description.clone(),
        composite: Some(composite),
        client_role: Some(role.client_id.is_some()),
        container_id: Some(
            role.client_id
                .clone()
                .unwrap_or_else(|| snapshot.realm.id.clone()),
        ),
        attributes: Some(role.attributes.clone()),
        composites: composite.then(|| RoleCompositesRep {
            realm: (!realm.is_empty()).then_some(realm),
            client: (!client.is_empty()).then_some(client),
        }),
    }
}

/// The realm as a representation, with what `options` asks for.
pub(crate) async fn export(
    app: &AppState,
    rt: &RealmRuntime,
    options: ExportOptions,
) -> Result<RealmRep, RealmIoError> {
    let snapshot = &rt.snapshot;
    let mut rep = settings_rep(&snapshot.realm);
    let mut scopes: Vec<&ClientScope> = snapshot.client_scopes().collect();
    scopes.sort_by(|a, b| a.name.cmp(&b.name));
    rep.client_scopes = Some(scopes.into_iter().map(scope_to_rep).collect());
    let mut all_clients: Vec<&Arc<Client>> = snapshot.clients().collect();
    all_clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));

    if options.roles {
        let mut all_roles: Vec<&Role> = snapshot.roles().collect();
        all_roles.sort_by(|a, b| a.name.cmp(&b.name));
        let mut by_client: BTreeMap<String, Vec<RoleRep>> = BTreeMap::new();
        let mut realm_roles = Vec::new();
        for role in all_roles {
            match &role.client_id {
                None => realm_roles.push(role_to_rep(snapshot, role)),
                Some(owner) => {
                    if let Some(owner) = snapshot.client(owner) {
                        by_client
                            .entry(owner.client_id.clone())
                            .or_default()
                            .push(role_to_rep(snapshot, role));
                    }
                }
            }
        }
        rep.roles = Some(RolesRep {
            realm: Some(realm_roles),
            client: Some(by_client),
        });
        rep.groups = Some(groups::to_rep(rt));
    }

    if options.clients {
        rep.clients = Some(
            all_clients
                .iter()
                .map(|client| {
                    let mut client_rep: ClientRep = clients::to_rep(client);
                    client_rep.access = None;
                    if !options.secrets && client_rep.secret.is_some() {
                        client_rep.secret = Some(MASKED_SECRET.into());
                    }
                    client_rep
                })
                .collect(),
        );
        if options.roles {
            let mut realm_mappings = Vec::new();
            let mut client_mappings: BTreeMap<String, Vec<ScopeMappingRep>> = BTreeMap::new();
            for client in all_clients.iter().filter(|c| !c.scope_role_ids.is_empty()) {
                let (realm, owned) = role_names(snapshot, &client.scope_role_ids);
                if !realm.is_empty() {
                    realm_mappings.push(ScopeMappingRep {
                        client: Some(client.client_id.clone()),
                        client_scope: None,
                        roles: realm,
                    });
                }
                for (owner, roles) in owned {
                    client_mappings
                        .entry(owner)
                        .or_default()
                        .push(ScopeMappingRep {
                            client: Some(client.client_id.clone()),
                            client_scope: None,
                            roles,
                        });
                }
            }
            rep.scope_mappings = (!realm_mappings.is_empty()).then_some(realm_mappings);
            rep.client_scope_mappings = (!client_mappings.is_empty()).then_some(client_mappings);
        }
    }

    if options.users || options.clients {
        let mut exported = Vec::new();
        for object in app.store.list_objects(rt.id(), KIND_USER).await? {
            let user: User = crate::state::decode(&object)?;
            if !options.users && user.service_account_client_id.is_none() {
                continue;
            }
            exported.push(user_rep(snapshot, &user, options));
        }
        rep.users = Some(exported);
    }
    if options.clients {
        crate::realm_import::export_kept_data(app, rt, &mut rep).await?;
    }
    // Private keys only where client secrets are in clear too: a full export.
    if options.secrets {
        crate::realm_import::export_keys(app, rt, &mut rep).await?;
    }
    Ok(rep)
}
