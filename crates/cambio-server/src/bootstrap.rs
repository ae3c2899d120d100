//! First-start setup: the `master` realm with its administrator, and the optional `demo` realm
//! used by the README walkthrough. Both are created once; later starts keep what is stored.

use std::collections::BTreeMap;

use cambio_core::model::{
    ATTR_EXCHANGE_REFRESH, ATTR_STANDARD_EXCHANGE, AUDIENCE_MAPPER, BUILTIN_CLIENT_SCOPES, Client,
    ClientScope, ProtocolMapper, Realm, Role, User,
};
use cambio_store::{GLOBAL, StoreResult};

use crate::admin::Approved;
use crate::random;
use crate::state::{AppState, KIND_REALM};

pub const MASTER: &str = "master";
pub const DEMO: &str = "demo";
/// The master realm role that may administer every realm.
pub const ADMIN_ROLE: &str = "admin";
/// The client whose roles grant administration of one realm.
pub const REALM_MANAGEMENT: &str = "realm-management";
/// The client roles of `realm-management`; `realm-admin` is a composite of all of them.
pub const REALM_MANAGEMENT_ROLES: &[&str] = &[
    "create-client",
    "impersonation",
    "manage-authorization",
    "manage-clients",
    "manage-events",
    "manage-identity-providers",
    "manage-realm",
    "manage-users",
    "query-clients",
    "query-groups",
    "query-realms",
    "query-users",
    "view-authorization",
    "view-clients",
    "view-events",
    "view-identity-providers",
    "view-realm",
    "view-users",
];

/// What the first start created, so the binary can tell the operator.
#[derive(Debug, Default)]
pub struct Bootstrapped {
    /// A generated administrator password, to print once.
    pub generated_admin_password: Option<String>,
    pub demo_created: bool,
}

/// Creates a realm with Cambio's defaults: default roles, built-in client scopes, a signing key.
pub async fn create_realm(state: &AppState, mut realm: Realm, now: u64) -> StoreResult<Realm> {
    if realm.id.is_empty() {
        realm.id = random::uuid();
    }
    for name in realm.default_roles.clone() {
        let role = Role {
            id: random::uuid(),
            name,
            ..Default::default()
        };
        state
            .insert_role(&realm.id, &Approved::by_system(role.clone()))
            .await?;
    }
    for (name, listed) in BUILTIN_CLIENT_SCOPES {
        let scope = ClientScope {
            id: random::uuid(),
            name: (*name).to_owned(),
            include_in_token_scope: *listed,
            ..Default::default()
        };
        state.insert_client_scope(&realm.id, &scope).await?;
    }
    let mut management = new_client(&realm, REALM_MANAGEMENT);
    management.name = Some("${client_realm-management}".into());
    management.bearer_only = true;
    management.standard_flow_enabled = false;
    state
        .insert_client(&realm.id, &Approved::by_system(management.clone()))
        .await?;
    let mut composites = Vec::new();
    for name in REALM_MANAGEMENT_ROLES {
        let role = Role {
            id: random::uuid(),
            name: (*name).to_owned(),
            client_id: Some(management.id.clone()),
            ..Default::default()
        };
        state
            .insert_role(&realm.id, &Approved::by_system(role.clone()))
            .await?;
        composites.push(role.id);
    }
    let realm_admin = Role {
        id: random::uuid(),
        name: "realm-admin".into(),
        client_id: Some(management.id.clone()),
        composites,
        ..Default::default()
    };
    state
        .insert_role(&realm.id, &Approved::by_system(realm_admin.clone()))
        .await?;
    crate::keys::ensure_active_key(state, &realm.id, realm.default_signature_algorithm, now)
        .await?;
    state
        .insert_realm(&Approved::by_system(realm.clone()))
        .await?;
    Ok(realm)
}

/// A client with the realm's default client scopes.
pub fn new_client(realm: &Realm, client_id: &str) -> Client {
    Client {
        id: random::uuid(),
        client_id: client_id.to_owned(),
        default_client_scopes: realm.default_default_client_scopes.clone(),
        optional_client_scopes: realm.default_optional_client_scopes.clone(),
        ..Default::default()
    }
}

/// A client's service account user, named as Keycloak names it.
pub fn service_account(client: &Client, now: u64) -> User {
    User {
        id: random::uuid(),
        username: format!("service-account-{}", client.client_id),
        service_account_client_id: Some(client.id.clone()),
        created_timestamp: now * 1000,
        ..Default::default()
    }
}

pub async fn ensure_master(
    state: &AppState,
    admin_user: &str,
    admin_password: Option<&str>,
    now: u64,
) -> StoreResult<Bootstrapped> {
    let mut out = Bootstrapped::default();
    if state
        .store
        .find_object(GLOBAL, KIND_REALM, MASTER)
        .await?
        .is_some()
    {
        return Ok(out);
    }
    let realm = Realm {
        name: MASTER.into(),
        display_name: Some("Cambio".into()),
        ..Default::default()
    };
    let realm = create_realm(state, realm, now).await?;
    let admin_role = Role {
        id: random::uuid(),
        name: ADMIN_ROLE.into(),
        description: Some("Administers every realm".into()),
        ..Default::default()
    };
    state
        .insert_role(&realm.id, &Approved::by_system(admin_role.clone()))
        .await?;
    let mut admin_cli = new_client(&realm, "admin-cli");
    admin_cli.public_client = true;
    admin_cli.standard_flow_enabled = false;
    admin_cli.direct_access_grants_enabled = true;
    state
        .insert_client(&realm.id, &Approved::by_system(admin_cli.clone()))
        .await?;
    let password = match admin_password {
        Some(p) => p.to_owned(),
        None => {
            let generated = random::token();
            out.generated_admin_password = Some(generated.clone());
            generated
        }
    };
    let admin = User {
        id: random::uuid(),
        username: admin_user.to_lowercase(),
        password_hash: Some(crate::passwords::hash(&password)),
        role_ids: vec![admin_role.id.clone()],
        created_timestamp: now * 1000,
        ..Default::default()
    };
    state
        .insert_user(&realm.id, &Approved::by_system(admin.clone()))
        .await?;
    Ok(out)
}

/// The walkthrough realm: alice, a subject client, a requester client, two target APIs.
pub async fn ensure_demo(
    state: &AppState,
    algorithm: cambio_jose::Algorithm,
    now: u64,
) -> StoreResult<bool> {
    if state
        .store
        .find_object(GLOBAL, KIND_REALM, DEMO)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let realm = create_realm(
        state,
        Realm {
            name: DEMO.into(),
            display_name: Some("Cambio demo".into()),
            default_signature_algorithm: algorithm,
            ..Default::default()
        },
        now,
    )
    .await?;
    let mut role_ids = Vec::new();
    for (client_id, secret, role) in [
        ("orders-api", "orders-secret", "view-orders"),
        ("billing-api", "billing-secret", "view-invoices"),
    ] {
        let mut api = new_client(&realm, client_id);
        api.secret = Some(secret.into());
        api.standard_flow_enabled = false;
        state
            .insert_client(&realm.id, &Approved::by_system(api.clone()))
            .await?;
        let role = Role {
            id: random::uuid(),
            name: role.into(),
            client_id: Some(api.id.clone()),
            ..Default::default()
        };
        state
            .insert_role(&realm.id, &Approved::by_system(role.clone()))
            .await?;
        role_ids.push(role.id);
    }
    let mut requester = new_client(&realm, "requester-client");
    requester.secret = Some("requester-secret".into());
    requester.standard_flow_enabled = false;
    requester.service_accounts_enabled = true;
    requester.attributes = BTreeMap::from([
        (ATTR_STANDARD_EXCHANGE.to_owned(), "true".to_owned()),
        (ATTR_EXCHANGE_REFRESH.to_owned(), "SAME_SESSION".to_owned()),
    ]);
    state
        .insert_client(&realm.id, &Approved::by_system(requester.clone()))
        .await?;
    state
        .insert_user(
            &realm.id,
            &Approved::by_system(service_account(&requester, now)),
        )
        .await?;

    // The app of the SDK walkthrough: it logs users in and exchanges their tokens itself.
    let mut app = new_client(&realm, "sdk-app");
    app.secret = Some("sdk-secret".into());
    app.direct_access_grants_enabled = true;
    app.redirect_uris = vec!["http://127.0.0.1/*".into(), "http://localhost/*".into()];
    app.attributes = BTreeMap::from([(ATTR_STANDARD_EXCHANGE.to_owned(), "true".to_owned())]);
    state
        .insert_client(&realm.id, &Approved::by_system(app.clone()))
        .await?;

    let mut subject = new_client(&realm, "subject-client");
    subject.secret = Some("subject-secret".into());
    subject.direct_access_grants_enabled = true;
    subject.redirect_uris = vec!["http://127.0.0.1/*".into(), "http://localhost/*".into()];
    subject.protocol_mappers = vec![ProtocolMapper {
        id: random::uuid(),
        name: "requester-client audience".into(),
        protocol: "openid-connect".into(),
        protocol_mapper: AUDIENCE_MAPPER.into(),
        config: BTreeMap::from([
            (
                "included.client.audience".to_owned(),
                "requester-client".to_owned(),
            ),
            ("access.token.claim".to_owned(), "true".to_owned()),
        ]),
    }];
    state
        .insert_client(&realm.id, &Approved::by_system(subject.clone()))
        .await?;

    let alice = User {
        id: random::uuid(),
        username: "alice".into(),
        email: Some("alice@example.com".into()),
        email_verified: true,
        first_name: Some("Alice".into()),
        last_name: Some("Liddell".into()),
        password_hash: Some(crate::passwords::hash("alice")),
        role_ids,
        created_timestamp: now * 1000,
        ..Default::default()
    };
    state
        .insert_user(&realm.id, &Approved::by_system(alice.clone()))
        .await?;
    Ok(true)
}
