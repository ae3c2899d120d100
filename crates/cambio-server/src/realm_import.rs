//! The import of a realm document as Keycloak exports it (`POST /admin/realms`, `cambio realm
//! import`), around [`crate::realm_io::import`]: the document is read as Keycloak reads it,
//! Keycloak's defaults are applied where the export relies on them (RS256, the built-in
//! clients), its signing keys and password hashes are taken over, and what could not be kept
//! is reported field by field ([`ImportReport`]).
//!
//! The signature algorithm: a document that names no `defaultSignatureAlgorithm` gets
//! Keycloak's default, RS256, when it is a Keycloak export, which Cambio tells by its `id` or
//! its `components` (every export carries both); a bare representation such as
//! `{"realm":"x"}` gets Cambio's default, ES256.

use cambio_core::model::Realm;
use cambio_proto::admin::{ClientRep, RealmRep, RoleRep, RolesRep};
use serde_json::Value;

use crate::Config;
use crate::admin::{Approved, authz_imported, idp_mappers, idps};
use crate::import_report::{self, ImportReport};
use crate::keycloak_keys;
use crate::realm_io::{self, ExportOptions, RealmIoError};
use crate::state::{AppState, WriteBatch};

/// Imports a realm document; the realm is loaded when this returns.
pub(crate) async fn import_document(
    app: &AppState,
    document: &Value,
    now: u64,
) -> Result<(Realm, ImportReport), RealmIoError> {
    if !document.is_object() {
        return Err(RealmIoError::Invalid(
            "A realm representation is a JSON object".into(),
        ));
    }
    let mut rep: RealmRep = serde_path_to_error::deserialize(document.clone()).map_err(|e| {
        RealmIoError::Invalid(format!("Invalid value at {}: {}", e.path(), e.inner()))
    })?;
    let mut report = ImportReport::default();
    if rep.default_signature_algorithm.is_none() && is_keycloak_export(document) {
        rep.default_signature_algorithm = Some("RS256".into());
    }
    let keys = keycloak_keys::signing_keys(document, &app.secrets, now, &mut report);
    drop_refused_uris(&mut rep, &mut report);
    add_builtin_clients(&mut rep);
    add_roles_users_name(&mut rep);
    // What Cambio keeps of Keycloak's data joins the realm's own writes: one transaction.
    let realm = realm_io::import(
        app,
        &rep,
        keys,
        &mut report,
        now,
        |batch, realm, clients, report| {
            import_kept_data(app, batch, realm, clients, document, report)
        },
    )
    .await?;
    app.reload_realm(&realm.id, now).await?;
    let rt = app
        .realm(&realm.name)
        .ok_or_else(|| RealmIoError::NotFound(realm.name.clone()))?;
    let kept = realm_io::export(app, &rt, ExportOptions::FULL).await?;
    let kept = serde_json::to_value(kept).map_err(|e| RealmIoError::Invalid(e.to_string()))?;
    import_report::compare(document, &kept, &mut report);
    Ok((realm, report))
}

/// Keeps what Cambio stores as Keycloak's data without acting on it (clients' authorization
/// settings, identity provider mappers), and the identity providers it can use, in the batch
/// of the realm's own writes (`clients`: the realm's clients as imported).
fn import_kept_data(
    app: &AppState,
    batch: &mut WriteBatch<'_>,
    realm: &Realm,
    clients: &[cambio_core::model::Client],
    document: &Value,
    report: &mut ImportReport,
) -> Result<(), cambio_store::StoreError> {
    let list = |name: &str| {
        document
            .get(name)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let last_realm_management = list("clients").iter().rposition(|client| {
        client.get("clientId").and_then(Value::as_str) == Some(crate::bootstrap::REALM_MANAGEMENT)
    });
    for (at, client) in list("clients").iter().enumerate() {
        let Some(settings) = client
            .get("authorizationSettings")
            .filter(|s| s.is_object())
        else {
            continue;
        };
        let client_id = client.get("clientId").and_then(Value::as_str);
        if client_id == Some(crate::bootstrap::REALM_MANAGEMENT) {
            // A repeated entry replaces the earlier ones (as the realm's own import reads it):
            // only the last one's settings are taken.
            if Some(at) != last_realm_management {
                report.add(
                    format!("clients[{at}].authorizationSettings"),
                    "not imported: a later realm-management entry replaces this one",
                );
                continue;
            }
            // realm-management's resource server is Cambio's own, evaluated model: its
            // token-exchange permissions are taken into it, the rest is reported.
            crate::admin::authz_exchange_import::import(
                batch,
                &realm.id,
                clients,
                settings,
                &format!("clients[{at}].authorizationSettings"),
                report,
            )?;
            continue;
        }
        let Some(uuid) = clients
            .iter()
            .find(|c| Some(c.client_id.as_str()) == client_id)
            .map(|c| c.id.clone())
        else {
            continue;
        };
        let settings = authz_imported::normalise(settings);
        batch.insert_object(authz_imported::settings_object(
            &realm.id, &uuid, &settings,
        )?);
        report.add(
            format!("clients[{at}].authorizationSettings"),
            authz_imported::NOT_EVALUATED,
        );
    }
    let mut imported_aliases = Vec::new();
    for (at, provider) in list("identityProviders").iter().enumerate() {
        // Cambio never calls a provider's token endpoint, so the client secret Keycloak used
        // there has no use here; it is not kept where the admin API would show it.
        let mut provider = provider.clone();
        if let Some(config) = provider.get_mut("config").and_then(Value::as_object_mut)
            && config.remove("clientSecret").is_some()
        {
            report.add(
                format!("identityProviders[{at}].config.clientSecret"),
                "not kept: Cambio makes no requests to the provider's token endpoint",
            );
        }
        match idps::from_import(app, &provider) {
            Ok(idp) => {
                batch.insert_provider(&Approved::by_system(idp.clone()))?;
                imported_aliases.push(idp.alias);
            }
            Err(reason) => report.add(
                format!("identityProviders[{at}]"),
                format!("not imported: {reason}"),
            ),
        }
    }
    for (at, mapper) in list("identityProviderMappers").iter().enumerate() {
        let path = format!("identityProviderMappers[{at}]");
        let alias = mapper
            .get("identityProviderAlias")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !imported_aliases.iter().any(|a| a == alias) {
            report.add(
                path,
                format!("not imported: its provider {alias:?} was not"),
            );
            continue;
        }
        let mut mapper = mapper.clone();
        let id = mapper
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map_or_else(crate::random::uuid, str::to_owned);
        mapper["id"] = Value::String(id.clone());
        let name = format!("{alias}/{}", mapper["name"].as_str().unwrap_or(&id));
        batch.insert_object(crate::state::object(
            &realm.id,
            idp_mappers::KIND_PROVIDER_MAPPER,
            &id,
            &name,
            &mapper,
        )?);
        report.add(path, idp_mappers::NOT_APPLIED);
    }
    Ok(())
}

/// Adds to an export what Cambio keeps as Keycloak's data (clients' authorization settings,
/// identity providers and their mappers), so that an export imports again as it came.
pub(crate) async fn export_kept_data(
    app: &AppState,
    rt: &crate::state::RealmRuntime,
    rep: &mut RealmRep,
) -> Result<(), cambio_store::StoreError> {
    for client in rep.clients.iter_mut().flatten() {
        let Some(uuid) = client.id.clone() else {
            continue;
        };
        if let Some(found) = app
            .store
            .get_object(rt.id(), authz_imported::KIND_AUTHZ_SETTINGS, &uuid)
            .await?
        {
            client.authorization_settings = Some(crate::state::decode(&found)?);
            client.authorization_services_enabled = Some(true);
        }
    }
    let providers: Vec<Value> = app
        .store
        .list_objects(rt.id(), crate::state::KIND_IDP)
        .await?
        .iter()
        .map(crate::state::decode::<cambio_core::federation::IdentityProvider>)
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .map(idps::to_rep)
        .collect();
    rep.identity_providers = (!providers.is_empty()).then_some(providers);
    let mappers = idp_mappers::all(app, rt.id()).await?;
    rep.identity_provider_mappers = (!mappers.is_empty()).then_some(mappers);
    Ok(())
}

/// Adds the realm's signing keys to a full export, as Keycloak key provider components.
pub(crate) async fn export_keys(
    app: &AppState,
    rt: &crate::state::RealmRuntime,
    rep: &mut RealmRep,
) -> Result<(), cambio_store::StoreError> {
    let stored: Vec<crate::keys::StoredKey> = app
        .store
        .list_objects(rt.id(), crate::state::KIND_KEY)
        .await?
        .iter()
        .map(crate::state::decode)
        .collect::<Result<_, _>>()?;
    rep.components = Some(keycloak_keys::export_components(
        &app.secrets,
        &stored,
        crate::random::now(),
    )?);
    Ok(())
}

/// Imports a realm document into the database `config` names (the server stopped): the
/// realm's id and the report.
pub async fn import_offline(
    config: &Config,
    document: &Value,
) -> Result<(String, ImportReport), RealmIoError> {
    let app = realm_io::open(config).await?;
    let (realm, report) = import_document(&app, document, crate::random::now()).await?;
    Ok((realm.id, report))
}

/// Reads what `kc.sh export --dir` writes for one realm: `{realm}-realm.json` and its
/// `{realm}-users-N.json` files (N from 0), whose users join the realm's. With no realm
/// named, the directory must hold exactly one realm file.
pub fn read_export_dir(dir: &std::path::Path, realm: Option<&str>) -> Result<Value, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut realms = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(realm_name) = name.strip_suffix("-realm.json") {
            realms.push(realm_name.to_owned());
        }
    }
    let name = match realm {
        Some(name) => name.to_owned(),
        None => match realms.as_slice() {
            [one] => one.clone(),
            [] => return Err(format!("{}: no *-realm.json file", dir.display())),
            _ => {
                realms.sort();
                return Err(format!(
                    "{}: several realms ({}); name one with --realm",
                    dir.display(),
                    realms.join(", ")
                ));
            }
        },
    };
    let read = |file: &std::path::Path| -> Result<Value, String> {
        let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
        import_report::parse_document(&bytes).map_err(|e| format!("{}: {e}", file.display()))
    };
    let mut document = read(&dir.join(format!("{name}-realm.json")))?;
    // The user files are numbered from 0 without gaps; 100,000 files is far beyond any
    // export (Keycloak writes 50 users per file by default).
    for n in 0..100_000 {
        let file = dir.join(format!("{name}-users-{n}.json"));
        if !file.exists() {
            break;
        }
        let part = read(&file)?;
        let users = part
            .get("users")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        match document.get_mut("users").and_then(Value::as_array_mut) {
            Some(list) => list.extend(users),
            None => {
                if let Some(object) = document.as_object_mut() {
                    object.insert("users".into(), Value::Array(users));
                }
            }
        }
    }
    Ok(document)
}

/// Leaves out the redirect URIs and web origins Cambio refuses to register (Keycloak stores
/// them, and they may never have worked there either), each reported, rather than refusing
/// the whole import: one bad URI of one client should not keep a realm from moving. Leaving
/// one out only narrows where codes and CORS answers may go. Relative URIs are left to the
/// client's own check, which resolves them first.
fn drop_refused_uris(rep: &mut RealmRep, report: &mut ImportReport) {
    use cambio_core::redirect::{check_registered, check_web_origin};
    for (at, client) in rep.clients.iter_mut().flatten().enumerate() {
        if let Some(uris) = &mut client.redirect_uris {
            let mut index = 0;
            uris.retain(|uri| {
                let here = index;
                index += 1;
                let relative = uri.starts_with('/') && !uri.starts_with("//");
                match check_registered(uri) {
                    Err(e) if !relative => {
                        report.add(
                            format!("clients[{at}].redirectUris[{here}]"),
                            format!("refused: it {e}"),
                        );
                        false
                    }
                    _ => true,
                }
            });
        }
        if let Some(origins) = &mut client.web_origins {
            let mut index = 0;
            origins.retain(|origin| {
                let here = index;
                index += 1;
                match check_web_origin(origin) {
                    Err(e) => {
                        report.add(
                            format!("clients[{at}].webOrigins[{here}]"),
                            format!("refused: it {e}"),
                        );
                        false
                    }
                    Ok(_) => true,
                }
            });
        }
    }
}

/// Creates the roles users are mapped to that the export does not define, as Keycloak's
/// import does (old exports name roles deleted since): realm roles, and client roles of
/// clients the export has.
fn add_roles_users_name(rep: &mut RealmRep) {
    let mut realm_names: Vec<String> = Vec::new();
    let mut client_names: Vec<(String, String)> = Vec::new();
    for user in rep.users.iter().flatten() {
        realm_names.extend(user.realm_roles.iter().flatten().cloned());
        for (client, names) in user.client_roles.iter().flatten() {
            client_names.extend(names.iter().map(|n| (client.clone(), n.clone())));
        }
    }
    let clients: Vec<String> = rep
        .clients
        .iter()
        .flatten()
        .filter_map(|c| c.client_id.clone())
        .collect();
    let roles = rep.roles.get_or_insert_with(RolesRep::default);
    let realm = roles.realm.get_or_insert_with(Vec::new);
    for name in realm_names {
        if !realm
            .iter()
            .any(|r| r.name.as_deref() == Some(name.as_str()))
        {
            realm.push(RoleRep {
                name: Some(name),
                ..Default::default()
            });
        }
    }
    let by_client = roles.client.get_or_insert_with(Default::default);
    for (client, name) in client_names {
        if !clients.contains(&client) {
            continue; // the importer says which client is missing
        }
        let list = by_client.entry(client).or_default();
        if !list
            .iter()
            .any(|r| r.name.as_deref() == Some(name.as_str()))
        {
            list.push(RoleRep {
                name: Some(name),
                ..Default::default()
            });
        }
    }
}

/// Whether a document is a Keycloak export rather than a bare representation.
fn is_keycloak_export(document: &Value) -> bool {
    document.get("id").is_some_and(|v| v.is_string()) || document.get("components").is_some()
}

/// The clients Keycloak creates in every realm (besides `realm-management`, which the
/// importer makes itself), with their client roles, as Keycloak sets them up.
const BUILTIN_CLIENTS: &[(&str, &[&str])] = &[
    (
        "account",
        &[
            "manage-account",
            "manage-account-links",
            "view-profile",
            "view-applications",
            "view-consent",
            "manage-consent",
            "delete-account",
            "view-groups",
        ],
    ),
    ("account-console", &[]),
    ("admin-cli", &[]),
    ("broker", &["read-token"]),
    ("security-admin-console", &[]),
];

/// Adds the built-in clients an export leaves out, so that references to them (the default
/// role's `account` roles, scope mappings) resolve as they do in Keycloak.
fn add_builtin_clients(rep: &mut RealmRep) {
    let realm = rep.realm.clone().unwrap_or_default();
    let clients = rep.clients.get_or_insert_with(Vec::new);
    let mut added = Vec::new();
    for (client_id, roles) in BUILTIN_CLIENTS {
        if clients
            .iter()
            .any(|c| c.client_id.as_deref() == Some(client_id))
        {
            continue;
        }
        clients.push(builtin_client(client_id, &realm));
        added.push((*client_id, *roles));
    }
    let by_client = rep
        .roles
        .get_or_insert_with(RolesRep::default)
        .client
        .get_or_insert_with(Default::default);
    for (client_id, roles) in added {
        if roles.is_empty() || by_client.contains_key(client_id) {
            continue;
        }
        let reps = roles
            .iter()
            .map(|name| RoleRep {
                name: Some((*name).to_owned()),
                description: Some(format!("${{role_{name}}}")),
                ..Default::default()
            })
            .collect();
        by_client.insert(client_id.to_owned(), reps);
    }
}

fn builtin_client(client_id: &str, realm: &str) -> ClientRep {
    let account = format!("/realms/{realm}/account/");
    let console = format!("/admin/{realm}/console/");
    let public = |base: Option<&str>| ClientRep {
        client_id: Some(client_id.to_owned()),
        name: Some(format!("${{client_{client_id}}}")),
        public_client: Some(true),
        standard_flow_enabled: Some(base.is_some()),
        direct_access_grants_enabled: Some(false),
        base_url: base.map(str::to_owned),
        redirect_uris: base.map(|b| vec![format!("{b}*")]),
        ..Default::default()
    };
    match client_id {
        "account" | "account-console" => public(Some(&account)),
        "security-admin-console" => public(Some(&console)),
        "admin-cli" => ClientRep {
            direct_access_grants_enabled: Some(true),
            ..public(None)
        },
        // `broker` only holds the `read-token` role.
        _ => ClientRep {
            client_id: Some(client_id.to_owned()),
            name: Some(format!("${{client_{client_id}}}")),
            bearer_only: Some(true),
            standard_flow_enabled: Some(false),
            ..Default::default()
        },
    }
}
