//! The grants that produce subject tokens: client credentials, resource owner password,
//! refresh token and authorization code with PKCE (RFC 6749 §4, RFC 7636).
//!
//! The server authenticates the client, checks the password hash, and loads records; these
//! functions decide what is issued or which error is answered.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::{ErrorCode, OAuthError, OAuthResult};
use crate::issue::{self, IssueSpec, Issued, RefreshData};
use crate::model::{Client, User};
use crate::realm::{RealmSnapshot, RoleCap};
use crate::scope::GrantedScope;

/// The grant types the token endpoint knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    ClientCredentials,
    Password,
    RefreshToken,
    AuthorizationCode,
    TokenExchange,
    /// RFC 7523 §2.1 with an external identity provider's assertion.
    JwtBearer,
    /// A grant type URI the realm or an identity provider declared as an alias of the
    /// external token exchange (such as Tapkey's).
    ExternalAlias,
}

impl GrantType {
    pub fn parse(value: &str) -> OAuthResult<GrantType> {
        Ok(match value {
            "client_credentials" => GrantType::ClientCredentials,
            "password" => GrantType::Password,
            "refresh_token" => GrantType::RefreshToken,
            "authorization_code" => GrantType::AuthorizationCode,
            crate::exchange::GRANT_TYPE => GrantType::TokenExchange,
            crate::federation::JWT_BEARER_GRANT => GrantType::JwtBearer,
            _ => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    "Unsupported grant_type",
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
            GrantType::Password => "password",
            GrantType::RefreshToken => "refresh_token",
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::TokenExchange => crate::exchange::GRANT_TYPE,
            GrantType::JwtBearer => crate::federation::JWT_BEARER_GRANT,
            GrantType::ExternalAlias => "external-alias",
        }
    }

    /// Like [`GrantType::parse`], also knowing the realm's alias grant types.
    pub fn parse_in(value: &str, realm: &RealmSnapshot) -> OAuthResult<GrantType> {
        match GrantType::parse(value) {
            Err(_) if realm.is_external_grant(value) => Ok(GrantType::ExternalAlias),
            other => other,
        }
    }
}

/// Fresh ids for one issuance, drawn by the caller.
#[derive(Debug, Clone)]
pub struct Ids {
    pub access_jti: String,
    pub id_jti: String,
}

/// `client_credentials`: the client's service account, no session, no refresh token.
pub fn client_credentials(
    realm: &RealmSnapshot,
    client: &Client,
    service_account: &User,
    requested_scope: Option<&str>,
    resources: Option<&[String]>,
    now: u64,
    ids: Ids,
) -> OAuthResult<Issued> {
    if !client.is_confidential() {
        return Err(OAuthError::unauthorized_client(
            "Public client not allowed to retrieve service account",
        ));
    }
    if !client.service_accounts_enabled {
        return Err(OAuthError::unauthorized_client(
            "Client not enabled to retrieve service account",
        ));
    }
    if !service_account.enabled {
        return Err(OAuthError::unauthorized_client(
            "Service account user is disabled",
        ));
    }
    let scope = GrantedScope::resolve(realm, client, requested_scope)?;
    Ok(issue::issue(
        realm,
        IssueSpec {
            client,
            user: service_account,
            scope: &scope,
            session_id: None,
            roles: realm.roles_in_scope(service_account, client),
            audience_filter: resources,
            lifetime: client.access_token_lifespan(&realm.realm),
            refresh_lifetime: None,
            offline: false,
            nonce: None,
            data: RefreshData::default(),
            now,
            access_jti: ids.access_jti,
            id_jti: ids.id_jti,
        },
    ))
    .and_then(|issued| reaches_resources(issued, resources))
}

/// Refuses an issuance that does not reach every resource the request named (RFC 8707 §2):
/// the resource's client is neither an audience the roles give nor one a mapper adds.
fn reaches_resources(issued: Issued, resources: Option<&[String]>) -> OAuthResult<Issued> {
    match resources
        .into_iter()
        .flatten()
        .find(|r| !issued.access.aud.contains(r))
    {
        Some(missing) => Err(OAuthError::new(
            crate::ErrorCode::InvalidTarget,
            format!("Requested audience not available: {missing}"),
        )),
        None => Ok(issued),
    }
}

/// Checks that a client may use the password grant, before any password is hashed.
pub fn password_allowed(client: &Client) -> OAuthResult<()> {
    if client.bearer_only || !client.direct_access_grants_enabled {
        return Err(OAuthError::unauthorized_client(
            "Client not allowed for direct access grants",
        ));
    }
    Ok(())
}

/// The error for any failed login, so that it tells nothing about which part was wrong.
pub fn invalid_user_credentials() -> OAuthError {
    OAuthError::invalid_grant("Invalid user credentials")
}

/// A login (password or authorization code) of `user`, whose credentials were checked.
#[derive(Debug, Clone)]
pub struct Login<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    pub scope: &'a GrantedScope,
    /// The session the server creates for this login.
    pub session_id: &'a str,
    pub nonce: Option<&'a str>,
    pub auth_time: u64,
    /// The clients the request's `resource` parameters stand for (RFC 8707), which the token
    /// and its refreshes are narrowed to.
    pub resources: Option<&'a [String]>,
    pub now: u64,
}

pub fn login(realm: &RealmSnapshot, login: Login<'_>, ids: Ids) -> OAuthResult<Issued> {
    if !login.user.enabled {
        return Err(invalid_user_credentials());
    }
    let offline = login.scope.offline();
    let refresh_lifetime = refresh_lifetime(realm, login.client, offline);
    Ok(issue::issue(
        realm,
        IssueSpec {
            client: login.client,
            user: login.user,
            scope: login.scope,
            session_id: Some(login.session_id),
            roles: realm.roles_in_scope(login.user, login.client),
            audience_filter: login.resources,
            lifetime: login.client.access_token_lifespan(&realm.realm),
            refresh_lifetime,
            offline,
            nonce: login.nonce,
            data: RefreshData {
                auth_time: Some(login.auth_time),
                audience_filter: login.resources.map(<[String]>::to_vec),
                ..Default::default()
            },
            now: login.now,
            access_jti: ids.access_jti,
            id_jti: ids.id_jti,
        },
    ))
    .and_then(|issued| reaches_resources(issued, login.resources))
}

fn refresh_lifetime(realm: &RealmSnapshot, client: &Client, offline: bool) -> Option<u64> {
    if !client.uses_refresh_tokens() && !offline {
        return None;
    }
    Some(if offline {
        realm.realm.offline_session_idle_timeout
    } else {
        client.refresh_lifespan(&realm.realm)
    })
}

/// A stored refresh token presented again, with the state of its session and user.
#[derive(Debug, Clone)]
pub struct PresentedRefresh<'a> {
    /// The client (uuid) it was issued to.
    pub issued_to: &'a str,
    pub expires_at: u64,
    pub offline: bool,
    pub stored_scope: &'a str,
    pub data: &'a RefreshData,
    pub session_id: &'a str,
    pub session_active: bool,
    pub user: Option<&'a User>,
}

/// `refresh_token`: a new access token and a new refresh token (rotation) in the same session.
///
/// `resources` are the clients the request's `resource` parameters name (RFC 8707 §2.2): the
/// access token is narrowed to them, within what the original grant allowed; the new refresh
/// token keeps the original grant's breadth.
pub fn refresh(
    realm: &RealmSnapshot,
    client: &Client,
    presented: PresentedRefresh<'_>,
    requested_scope: Option<&str>,
    resources: Option<&[String]>,
    now: u64,
    ids: Ids,
) -> OAuthResult<Issued> {
    if presented.issued_to != client.id {
        return Err(OAuthError::invalid_grant(
            "Invalid refresh token. Token client and authorized client don't match",
        ));
    }
    if presented.expires_at <= now {
        return Err(OAuthError::invalid_grant("Refresh token expired"));
    }
    if !presented.session_active {
        return Err(OAuthError::invalid_grant("Session not active"));
    }
    let user = presented
        .user
        .filter(|u| u.enabled)
        .ok_or_else(|| OAuthError::invalid_grant("User disabled"))?;
    let mut scope = GrantedScope::from_stored(presented.stored_scope);
    check_refresh_scope(presented.stored_scope, requested_scope)?;
    check_refresh_resources(presented.data, resources)?;
    if let Some(requested) = requested_scope {
        let asked = GrantedScope::from_stored(requested);
        scope.names.retain(|n| {
            asked.names.contains(n)
                || !realm
                    .client_scope(n)
                    .is_some_and(|s| s.include_in_token_scope)
        });
        scope.openid = asked.openid;
    }
    // Scopes removed from the realm or the client since the login no longer apply.
    scope.names.retain(|n| {
        realm.client_scope(n).is_some()
            && (client.default_client_scopes.contains(n)
                || client.optional_client_scopes.contains(n))
    });
    // An exchanged refresh token keeps its audience; each of those clients must still exist
    // and be enabled, or refreshing would keep serving a target that was switched off.
    if let Some(filter) = &presented.data.audience_filter {
        for audience in filter {
            match realm.client_by_client_id(audience) {
                Some(c) if c.enabled => {}
                _ => {
                    return Err(OAuthError::invalid_grant(
                        "Audience client is disabled or removed",
                    ));
                }
            }
        }
    }
    let ceiling = presented
        .data
        .role_ceiling
        .as_ref()
        .map(|c| c as &dyn RoleCap);
    let roles = realm.roles_in_scope_within(user, client, ceiling);
    let refresh_lifetime = if presented.offline {
        realm.realm.offline_session_idle_timeout
    } else {
        client.refresh_lifespan(&realm.realm)
    };
    // A legacy exchange's refresh token lives by the permission that allowed it.
    if let Some(target) = &presented.data.legacy_target {
        let permitted = realm
            .client_by_client_id(target)
            .filter(|t| t.enabled)
            .and_then(|t| realm.permissions.exchange_permission(&t.id))
            .is_some_and(|p| realm.permissions.grants(p, &client.id));
        if !permitted {
            return Err(OAuthError::invalid_grant("Client not allowed to exchange"));
        }
    }
    let mut issued = issue::issue(
        realm,
        IssueSpec {
            client,
            user,
            scope: &scope,
            session_id: Some(presented.session_id),
            roles,
            // The access token is for the named resources, if any; the refresh token's data
            // (the original grant) stays as it was.
            audience_filter: resources.or(presented.data.audience_filter.as_deref()),
            lifetime: client
                .access_token_lifespan(&realm.realm)
                .min(refresh_lifetime),
            refresh_lifetime: Some(refresh_lifetime),
            offline: presented.offline,
            nonce: None,
            data: presented.data.clone(),
            now,
            access_jti: ids.access_jti,
            id_jti: ids.id_jti,
        },
    );
    if let Some(target) = &presented.data.legacy_target {
        // As at the exchange: the token is for the target, roles or not.
        issued.access.aud = vec![target.clone()];
    } else if resources.is_some() {
        // A named resource the token cannot carry (the user holds none of its roles now, and
        // no mapper adds it) is refused, as at a login.
        return reaches_resources(issued, resources);
    } else if let Some(filter) = &presented.data.audience_filter
        && filter.iter().any(|a| !issued.access.aud.contains(a))
    {
        return Err(OAuthError::invalid_grant(
            "Requested audience no longer available",
        ));
    }
    Ok(issued)
}

/// A refresh may narrow the scope, never widen it (RFC 6749 §6). The server also checks this
/// before it marks the refresh token used, so that a malformed request does not burn the token
/// (and a retry with it does not look like reuse and end the session).
pub fn check_refresh_scope(stored_scope: &str, requested_scope: Option<&str>) -> OAuthResult<()> {
    let Some(requested) = requested_scope else {
        return Ok(());
    };
    let granted = GrantedScope::from_stored(stored_scope);
    let asked = GrantedScope::from_stored(requested);
    if asked.names.iter().any(|n| !granted.names.contains(n)) || (asked.openid && !granted.openid) {
        return Err(OAuthError::invalid_scope(
            "Invalid scopes: scope exceeds the original grant",
        ));
    }
    Ok(())
}

/// A refresh may narrow the resources the access token is for, never widen them (RFC 8707
/// §2.2): when the original grant was narrowed (a login's resources, an exchange's audiences,
/// a legacy exchange's target), each named resource must be one of those. The server also
/// checks this before it marks the refresh token used, so that such a request does not burn it.
///
/// # Errors
/// `invalid_target` for a resource outside the original grant.
pub fn check_refresh_resources(
    data: &RefreshData,
    resources: Option<&[String]>,
) -> OAuthResult<()> {
    let Some(resources) = resources else {
        return Ok(());
    };
    let granted: Option<&[String]> = match (&data.legacy_target, &data.audience_filter) {
        (Some(target), _) => Some(std::slice::from_ref(target)),
        (None, Some(filter)) => Some(filter),
        (None, None) => None,
    };
    match granted {
        Some(granted) if resources.iter().any(|r| !granted.contains(r)) => Err(OAuthError::new(
            crate::ErrorCode::InvalidTarget,
            "The resource is outside the original grant",
        )),
        _ => Ok(()),
    }
}

/// What an authorization code stands for, stored under the code's hash until redeemed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGrant {
    pub realm_id: String,
    /// The client (uuid) the code was issued to.
    pub client_id: String,
    pub user_id: String,
    pub session_id: String,
    pub redirect_uri: String,
    /// Granted scope in stored form.
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: u64,
    /// The clients the authorization request's `resource` parameters named (RFC 8707).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// The thumbprint of the DPoP key the authorization request bound the code to
    /// (`dpop_jkt`, RFC 9449 §10): the token request must come with a proof by that key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
}

/// The resources a code's token is narrowed to (RFC 8707 §2.2): those of the token request,
/// which must be among the authorization request's when that named any, else those.
///
/// # Errors
/// `invalid_target` when the token request names a resource the authorization did not.
pub fn code_resources(
    grant: &CodeGrant,
    requested: Option<Vec<String>>,
) -> OAuthResult<Option<Vec<String>>> {
    match requested {
        Some(requested) if !grant.resources.is_empty() => {
            if requested.iter().all(|r| grant.resources.contains(r)) {
                Ok(Some(requested))
            } else {
                Err(OAuthError::new(
                    crate::ErrorCode::InvalidTarget,
                    "The resource was not named in the authorization request",
                ))
            }
        }
        Some(requested) => Ok(Some(requested)),
        None if grant.resources.is_empty() => Ok(None),
        None => Ok(Some(grant.resources.clone())),
    }
}

/// Checks a presented code against what was stored for it (RFC 6749 §4.1.3, RFC 7636 §4.6).
pub fn check_code(
    grant: &CodeGrant,
    client: &Client,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
) -> OAuthResult<()> {
    if grant.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "Code was issued to another client",
        ));
    }
    if redirect_uri != Some(grant.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant("Incorrect redirect_uri"));
    }
    match (&grant.code_challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "PKCE verifier specified but not used in authorization request",
        )),
        (Some(_), None) => Err(OAuthError::invalid_grant(
            "PKCE code verifier not specified",
        )),
        (Some(challenge), Some(verifier)) => {
            if !valid_pkce_value(verifier) {
                return Err(OAuthError::invalid_grant("Invalid code verifier"));
            }
            let computed = s256(verifier);
            if bool::from(computed.as_bytes().ct_eq(challenge.as_bytes())) {
                Ok(())
            } else {
                Err(OAuthError::invalid_grant("PKCE verification failed"))
            }
        }
    }
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
pub fn valid_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The S256 code challenge of a verifier: `BASE64URL(SHA256(verifier))`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    /// A refresh token of requester `c-req` for `user`, in a live session, valid until 100.
    fn live_refresh<'a>(data: &'a RefreshData, user: &'a User) -> PresentedRefresh<'a> {
        PresentedRefresh {
            issued_to: "c-req",
            expires_at: 100,
            offline: false,
            stored_scope: "roles",
            data,
            session_id: "s",
            session_active: true,
            user: Some(user),
        }
    }

    /// A role of the client `c-orders` (orders-api).
    fn orders_role(id: &str, name: &str) -> crate::model::Role {
        crate::model::Role {
            id: id.into(),
            name: name.into(),
            client_id: Some("c-orders".into()),
            ..Default::default()
        }
    }

    /// The `roles` client scope, which puts roles in tokens without naming itself in `scope`.
    fn roles_scope() -> crate::model::ClientScope {
        crate::model::ClientScope {
            name: "roles".into(),
            include_in_token_scope: false,
            ..Default::default()
        }
    }

    fn test_ids() -> Ids {
        Ids {
            access_jti: "a".into(),
            id_jti: "i".into(),
        }
    }

    #[test]
    fn a_client_scopes_audience_mapper_applies_when_the_scope_does() {
        use crate::model::{AUDIENCE_MAPPER, ProtocolMapper, Realm};
        let mapper = |name: &str, audience: &str, in_access_token: &str| ProtocolMapper {
            id: name.into(),
            name: name.into(),
            protocol: "openid-connect".into(),
            protocol_mapper: AUDIENCE_MAPPER.into(),
            config: [
                ("included.client.audience".into(), audience.into()),
                ("access.token.claim".into(), in_access_token.into()),
            ]
            .into(),
        };
        let partner = crate::model::ClientScope {
            name: "partner".into(),
            protocol_mappers: vec![
                mapper("orders", "orders-api", "true"),
                mapper("billing", "billing-api", "false"),
            ],
            ..Default::default()
        };
        let app = Client {
            id: "c-app".into(),
            client_id: "app".into(),
            default_client_scopes: vec!["roles".into()],
            optional_client_scopes: vec!["partner".into()],
            ..Default::default()
        };
        let user = User {
            id: "u".into(),
            ..Default::default()
        };
        let realm = RealmSnapshot::new(
            Realm::default(),
            String::new(),
            vec![app.clone()],
            vec![],
            vec![roles_scope(), partner],
        );
        // Only when the scope is applied (an optional scope requested), and only the mappers
        // that add to access tokens.
        for (requested, expected) in [(None, vec![]), (Some("partner"), vec!["orders-api"])] {
            let scope = GrantedScope::resolve(&realm, &app, requested).unwrap();
            let issued = login(
                &realm,
                Login {
                    client: &app,
                    user: &user,
                    scope: &scope,
                    session_id: "s",
                    nonce: None,
                    auth_time: 1,
                    resources: None,
                    now: 1,
                },
                test_ids(),
            )
            .unwrap();
            assert_eq!(issued.access.aud, expected, "{requested:?}");
        }
    }

    #[test]
    fn refresh_refuses_a_disabled_audience() {
        // Keycloak CVE-2026-93999: refreshing an exchanged token kept serving a disabled target.
        use crate::model::Realm;
        let requester = Client {
            id: "c-req".into(),
            client_id: "requester".into(),
            default_client_scopes: vec!["roles".into()],
            ..Default::default()
        };
        let target = |enabled| Client {
            id: "c-orders".into(),
            client_id: "orders-api".into(),
            enabled,
            ..Default::default()
        };
        let role = orders_role("r1", "view");
        let scope = roles_scope();
        let user = User {
            id: "u".into(),
            role_ids: vec!["r1".into()],
            ..Default::default()
        };
        let data = RefreshData {
            audience_filter: Some(vec!["orders-api".into()]),
            ..Default::default()
        };
        let presented = live_refresh(&data, &user);
        for (enabled, expected) in [
            (true, None),
            (false, Some("Audience client is disabled or removed")),
        ] {
            let realm = RealmSnapshot::new(
                Realm::default(),
                String::new(),
                vec![requester.clone(), target(enabled)],
                vec![role.clone()],
                vec![scope.clone()],
            );
            let got = refresh(
                &realm,
                &requester,
                presented.clone(),
                None,
                None,
                10,
                test_ids(),
            );
            match expected {
                None => assert_eq!(got.unwrap().access.aud, ["orders-api"]),
                Some(description) => assert_eq!(got.unwrap_err().description, description),
            }
        }
    }

    #[test]
    fn a_refresh_narrows_resources_within_the_original_grant() {
        let named = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let outside = |data: &RefreshData, resources: &[&str]| {
            check_refresh_resources(data, Some(&named(resources)))
                .map_err(|e| (e.code.as_str(), e.description.into_owned()))
        };
        let refused = Err((
            "invalid_target",
            "The resource is outside the original grant".to_owned(),
        ));
        let narrowed = RefreshData {
            audience_filter: Some(named(&["orders-api", "billing-api"])),
            ..Default::default()
        };
        assert_eq!(check_refresh_resources(&narrowed, None), Ok(()));
        assert_eq!(outside(&narrowed, &["billing-api"]), Ok(()));
        assert_eq!(outside(&narrowed, &["orders-api", "billing-api"]), Ok(()));
        assert_eq!(
            outside(&narrowed, &["billing-api", "inventory-api"]),
            refused
        );
        let legacy = RefreshData {
            legacy_target: Some("orders-api".into()),
            ..Default::default()
        };
        assert_eq!(outside(&legacy, &["orders-api"]), Ok(()));
        assert_eq!(outside(&legacy, &["billing-api"]), refused);
        // An unnarrowed grant leaves the check to what the token can carry.
        assert_eq!(outside(&RefreshData::default(), &["inventory-api"]), Ok(()));
    }

    #[test]
    fn refresh_of_an_exchanged_token_keeps_its_role_ceiling() {
        // The user holds two roles of orders-api; the exchanged token carried only one, so
        // refreshing it issues that one, even though the user could have more.
        use crate::issue::RoleCeiling;
        use crate::model::Realm;
        let client = Client {
            id: "c-req".into(),
            client_id: "requester".into(),
            full_scope_allowed: true,
            default_client_scopes: vec!["roles".into()],
            ..Default::default()
        };
        let orders = Client {
            id: "c-orders".into(),
            client_id: "orders-api".into(),
            enabled: true,
            ..Default::default()
        };
        let scope = roles_scope();
        let user = User {
            id: "u".into(),
            role_ids: vec!["r-view".into(), "r-admin".into()],
            ..Default::default()
        };
        let realm = RealmSnapshot::new(
            Realm::default(),
            String::new(),
            vec![client.clone(), orders],
            vec![
                orders_role("r-view", "view"),
                orders_role("r-admin", "admin"),
            ],
            vec![scope],
        );
        let roles_after_refresh = |role_ceiling: Option<RoleCeiling>| {
            let data = RefreshData {
                role_ceiling,
                ..Default::default()
            };
            let presented = live_refresh(&data, &user);
            let issued = refresh(&realm, &client, presented, None, None, 10, test_ids()).unwrap();
            issued.access.resource_access.unwrap()["orders-api"]
                .roles
                .iter()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(roles_after_refresh(None), ["admin", "view"]);
        let ceiling = RoleCeiling {
            realm: Vec::new(),
            clients: [("orders-api".to_owned(), vec!["view".to_owned()])].into(),
        };
        assert_eq!(roles_after_refresh(Some(ceiling)), ["view"]);
    }

    #[test]
    fn code_checks() {
        let client = Client {
            id: "c1".into(),
            ..Default::default()
        };
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let grant = CodeGrant {
            realm_id: "r".into(),
            client_id: "c1".into(),
            user_id: "u".into(),
            session_id: "s".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            scope: String::new(),
            nonce: None,
            code_challenge: Some(s256(verifier)),
            auth_time: 0,
            resources: vec!["orders-api".into()],
            dpop_jkt: None,
        };
        let uri = Some("http://127.0.0.1/cb");
        // RFC 8707 §2.2: the token request narrows the authorized resources, never adds one.
        let named = |r: &[&str]| Some(r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(code_resources(&grant, None), Ok(named(&["orders-api"])));
        assert_eq!(
            code_resources(&grant, named(&["orders-api"])),
            Ok(named(&["orders-api"]))
        );
        assert!(code_resources(&grant, named(&["billing-api"])).is_err());
        assert_eq!(check_code(&grant, &client, uri, Some(verifier)), Ok(()));
        let bad = "x".repeat(43);
        assert_eq!(
            check_code(&grant, &client, uri, Some(&bad))
                .unwrap_err()
                .description,
            "PKCE verification failed"
        );
        assert_eq!(
            check_code(&grant, &client, uri, None)
                .unwrap_err()
                .description,
            "PKCE code verifier not specified"
        );
        assert_eq!(
            check_code(&grant, &client, Some("http://evil"), Some(verifier))
                .unwrap_err()
                .description,
            "Incorrect redirect_uri"
        );
        let other = Client {
            id: "c2".into(),
            ..Default::default()
        };
        assert!(check_code(&grant, &other, uri, Some(verifier)).is_err());
    }
}
