//! The `scope` parameter (RFC 6749 §3.3) resolved against a client's default and optional
//! client scopes, as Keycloak does it.

use std::collections::BTreeSet;

use crate::error::{OAuthError, OAuthResult};
use crate::model::{Client, OFFLINE_ACCESS};
use crate::realm::RealmSnapshot;

/// The OpenID Connect scope: not a client scope, it asks for an ID token.
pub const OPENID: &str = "openid";

/// The client scopes in effect for one token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantedScope {
    /// Whether `openid` was requested.
    pub openid: bool,
    /// Names of the client scopes applied.
    pub names: BTreeSet<String>,
}

impl GrantedScope {
    /// The client's default scopes plus the requested optional ones. A requested scope that
    /// the realm does not know, or the client was not given, is `invalid_scope`.
    pub fn resolve(
        realm: &RealmSnapshot,
        client: &Client,
        requested: Option<&str>,
    ) -> OAuthResult<GrantedScope> {
        let mut granted = GrantedScope::default();
        for name in &client.default_client_scopes {
            if realm.client_scope(name).is_some() {
                granted.names.insert(name.clone());
            }
        }
        let mut invalid = Vec::new();
        for name in split(requested) {
            if name == OPENID {
                granted.openid = true;
            } else if realm.client_scope(name).is_some()
                && (client.default_client_scopes.iter().any(|s| s == name)
                    || client.optional_client_scopes.iter().any(|s| s == name))
            {
                granted.names.insert(name.to_owned());
            } else {
                invalid.push(name);
            }
        }
        if !invalid.is_empty() {
            return Err(invalid_scopes(&invalid));
        }
        Ok(granted)
    }

    /// A compact form for refresh tokens and authorization codes: every applied scope name,
    /// listed in tokens or not, so a refresh applies exactly the same scopes.
    pub fn to_stored(&self) -> String {
        let mut out: Vec<&str> = Vec::new();
        if self.openid {
            out.push(OPENID);
        }
        out.extend(self.names.iter().map(String::as_str));
        out.join(" ")
    }

    pub fn from_stored(stored: &str) -> GrantedScope {
        let mut granted = GrantedScope::default();
        for name in split(Some(stored)) {
            if name == OPENID {
                granted.openid = true;
            } else {
                granted.names.insert(name.to_owned());
            }
        }
        granted
    }

    pub fn has(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    pub fn offline(&self) -> bool {
        self.has(OFFLINE_ACCESS)
    }

    /// The value of the `scope` claim and response field: `openid` first, then the applied
    /// scopes that are listed in tokens, in name order.
    pub fn to_claim(&self, realm: &RealmSnapshot) -> String {
        let mut out: Vec<&str> = Vec::new();
        if self.openid {
            out.push(OPENID);
        }
        out.extend(
            self.names
                .iter()
                .filter(|name| {
                    realm
                        .client_scope(name)
                        .is_some_and(|s| s.include_in_token_scope)
                })
                .map(String::as_str),
        );
        out.join(" ")
    }

    /// Narrows this scope to what a subject token was granted (RFC 8693 §5: an exchange never
    /// widens). Listed scopes missing from the subject token are dropped when they came from
    /// the client's defaults and refused when they were asked for explicitly. Scopes that
    /// never appear in tokens (`roles`, `basic`...) carry no grant of their own and stay.
    pub fn narrow_to_subject(
        mut self,
        realm: &RealmSnapshot,
        subject_scope: &str,
        requested: Option<&str>,
    ) -> OAuthResult<GrantedScope> {
        let subject: BTreeSet<&str> = subject_scope.split(' ').filter(|s| !s.is_empty()).collect();
        let explicit: BTreeSet<&str> = split(requested).collect();
        let mut refused = Vec::new();
        self.names.retain(|name| {
            let listed = realm
                .client_scope(name)
                .is_some_and(|s| s.include_in_token_scope);
            if !listed || subject.contains(name.as_str()) {
                return true;
            }
            if explicit.contains(name.as_str()) {
                refused.push(name.clone());
            }
            false
        });
        if !refused.is_empty() {
            let refused: Vec<&str> = refused.iter().map(String::as_str).collect();
            return Err(invalid_scopes(&refused));
        }
        Ok(self)
    }
}

fn split(scope: Option<&str>) -> impl Iterator<Item = &str> {
    scope.unwrap_or("").split(' ').filter(|s| !s.is_empty())
}

fn invalid_scopes(names: &[&str]) -> OAuthError {
    let shown: Vec<String> = names
        .iter()
        .take(10)
        .map(|n| {
            n.chars()
                .filter(|c| c.is_ascii_graphic())
                .take(64)
                .collect()
        })
        .collect();
    OAuthError::invalid_scope(format!("Invalid scopes: {}", shown.join(" ")))
}

/// The space-separated scope values of `requested`, sorted and without repeats, when every
/// one of them is among `allowed`'s; None when one is not. Used where a token made from
/// another may carry only a part of its scope (Txn-Tokens, identity-chaining grants).
pub fn within(requested: &str, allowed: &str) -> Option<String> {
    let allowed: std::collections::BTreeSet<&str> = allowed.split_whitespace().collect();
    let requested: std::collections::BTreeSet<&str> = requested.split_whitespace().collect();
    requested
        .is_subset(&allowed)
        .then(|| requested.into_iter().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BUILTIN_CLIENT_SCOPES, ClientScope, Realm};

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
        RealmSnapshot::new(Realm::default(), String::new(), vec![], vec![], scopes)
    }

    fn client() -> Client {
        Client {
            default_client_scopes: vec!["profile".into(), "email".into(), "roles".into()],
            optional_client_scopes: vec!["offline_access".into(), "phone".into()],
            ..Default::default()
        }
    }

    fn check(requested: Option<&str>, subject: Option<&str>, expected: Result<&str, &str>) {
        let realm = realm();
        let got = GrantedScope::resolve(&realm, &client(), requested).and_then(|g| match subject {
            Some(s) => g.narrow_to_subject(&realm, s, requested),
            None => Ok(g),
        });
        match expected {
            Ok(claim) => assert_eq!(got.map(|g| g.to_claim(&realm)).as_deref(), Ok(claim)),
            Err(desc) => assert_eq!(
                got.map_err(|e| e.description.into_owned()),
                Err(desc.to_owned())
            ),
        }
    }

    #[test]
    fn resolves_and_narrows() {
        check(None, None, Ok("email profile"));
        check(Some("openid phone"), None, Ok("openid email phone profile"));
        check(Some("openid unknown"), None, Err("Invalid scopes: unknown"));
        check(Some("address"), None, Err("Invalid scopes: address"));
        check(None, Some("openid profile"), Ok("profile"));
        check(
            Some("phone"),
            Some("profile email"),
            Err("Invalid scopes: phone"),
        );
        check(Some("openid email"), Some("email"), Ok("openid email"));
        check(Some("email"), Some("profile"), Err("Invalid scopes: email"));
    }
}
