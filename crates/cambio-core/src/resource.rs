//! Resource indicators (RFC 8707): a request names the protected resources it wants a token
//! for by absolute URI (`resource`, repeatable); each URI maps to the client that stands for
//! that resource through the client attribute [`ATTR_RESOURCE_URIS`]. The token is then
//! narrowed to those clients, exactly as if they had been named by `audience`, so every
//! audience rule (which never widens what the subject or the user allows) applies to them.

use crate::error::{ErrorCode, OAuthError, OAuthResult};
use crate::realm::RealmSnapshot;

/// The client attribute listing, space-separated, the resource URIs the client stands for.
pub const ATTR_RESOURCE_URIS: &str = "cambio.resourceUris";

/// The realm attribute that lists the realm's resource URIs in discovery
/// (`cambio_resource_uris`). Off by default: see [`published_uris`].
pub const REALM_PUBLISHES_RESOURCES: &str = "cambio.publishResourceUris";

/// The most `resource` parameters one request may carry.
pub const MAX_RESOURCES: usize = 16;

/// A resource URI in the form it is looked up by: absolute, without fragment (RFC 8707 §2),
/// normalised as RFC 3986 §6.2.2 and §6.2.3 describe (the `url` crate's parser does: case of
/// scheme and host, default port, percent-encoding). `None` for anything else.
pub fn normalise(uri: &str) -> Option<String> {
    let parsed = url::Url::parse(uri).ok()?;
    if parsed.fragment().is_some() || parsed.cannot_be_a_base() {
        return None;
    }
    Some(parsed.to_string())
}

fn invalid_target(description: &'static str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidTarget, description)
}

/// The clients (by `client_id`) a request's `resource` and `audience` parameters name
/// together: the resources' clients when only resources are named, the audiences when only
/// audiences are, and their intersection when both are (RFC 8693 §2.1: both narrow).
///
/// # Errors
/// `invalid_target` for a resource that is not an absolute URI, names no enabled client of the
/// realm, or shares no client with the named audiences.
pub fn targets<'a>(
    realm: &'a RealmSnapshot,
    resources: &[&str],
    audiences: Vec<&'a str>,
) -> OAuthResult<Vec<&'a str>> {
    if resources.is_empty() {
        return Ok(audiences);
    }
    if resources.len() > MAX_RESOURCES {
        return Err(invalid_target("Too many resource parameters"));
    }
    let mut named: Vec<&'a str> = Vec::with_capacity(resources.len());
    for resource in resources {
        let uri = normalise(resource).ok_or_else(|| {
            invalid_target("Invalid resource: an absolute URI without a fragment is required")
        })?;
        let client = realm
            .client_by_resource(&uri)
            .filter(|c| c.enabled)
            .ok_or_else(|| invalid_target("Unknown resource"))?;
        if !named.contains(&client.client_id.as_str()) {
            named.push(client.client_id.as_str());
        }
    }
    if audiences.is_empty() {
        return Ok(named);
    }
    let common: Vec<&'a str> = audiences
        .into_iter()
        .filter(|a| named.contains(a))
        .collect();
    if common.is_empty() {
        return Err(invalid_target(
            "The audience and resource parameters name no common target",
        ));
    }
    Ok(common)
}

/// The resource URIs discovery lists: those of the realm's enabled clients, sorted, when the
/// realm publishes them; `None` otherwise. Discovery is public, and the URIs name the realm's
/// APIs (host names, paths, versions) to anyone who asks, while a client needs none of them
/// from here (it knows the resource it calls); so a realm lists them only when its
/// administrator says they are public anyway. The clients behind them are never named.
pub fn published_uris(realm: &RealmSnapshot) -> Option<Vec<String>> {
    let publishes = realm
        .realm
        .attributes
        .get(REALM_PUBLISHES_RESOURCES)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !publishes {
        return None;
    }
    let mut uris: Vec<String> = realm
        .resources()
        .filter(|(_, client)| client.enabled)
        .map(|(uri, _)| uri.to_owned())
        .collect();
    uris.sort();
    Some(uris)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Client, Realm};

    fn realm() -> RealmSnapshot {
        realm_with(Realm::default())
    }

    fn realm_with(settings: Realm) -> RealmSnapshot {
        let client = |id: &str, uris: &str, enabled: bool| {
            let mut c = Client {
                id: format!("{id}-uuid"),
                client_id: id.into(),
                enabled,
                ..Default::default()
            };
            c.attributes.insert(ATTR_RESOURCE_URIS.into(), uris.into());
            c
        };
        RealmSnapshot::new(
            settings,
            "https://as.example/realms/r".into(),
            vec![
                client(
                    "orders-api",
                    "https://orders.example/ https://orders.example/v2",
                    true,
                ),
                client("billing-api", "https://billing.example/api", true),
                client("old-api", "https://old.example/", false),
            ],
            vec![],
            vec![],
        )
    }

    #[test]
    fn resources_name_clients_and_narrow_with_audiences() {
        let r = realm();
        let t = |resources: &[&str], audiences: Vec<&'static str>| {
            targets(&r, resources, audiences).map_err(|e| e.description.to_string())
        };
        assert_eq!(t(&[], vec!["x"]), Ok(vec!["x"]));
        assert_eq!(
            t(&["https://orders.example/"], vec![]),
            Ok(vec!["orders-api"])
        );
        // Normalised: case, default port, empty path.
        assert_eq!(
            t(&["HTTPS://Orders.Example:443"], vec![]),
            Ok(vec!["orders-api"])
        );
        assert_eq!(
            t(
                &["https://orders.example/v2", "https://orders.example/"],
                vec![]
            ),
            Ok(vec!["orders-api"])
        );
        assert_eq!(
            t(
                &["https://orders.example/", "https://billing.example/api"],
                vec!["billing-api"]
            ),
            Ok(vec!["billing-api"])
        );
        let refused = [
            (
                t(&["orders"], vec![]),
                "Invalid resource: an absolute URI without a fragment is required",
            ),
            (
                t(&["https://orders.example/#f"], vec![]),
                "Invalid resource: an absolute URI without a fragment is required",
            ),
            (
                t(&["urn:x"], vec![]),
                "Invalid resource: an absolute URI without a fragment is required",
            ),
            (t(&["https://unknown.example/"], vec![]), "Unknown resource"),
            (t(&["https://old.example/"], vec![]), "Unknown resource"),
            (
                t(&["https://orders.example/"], vec!["billing-api"]),
                "The audience and resource parameters name no common target",
            ),
            (
                t(&["https://orders.example/"; 17], vec![]),
                "Too many resource parameters",
            ),
        ];
        for (outcome, description) in refused {
            assert_eq!(outcome, Err(description.to_owned()));
        }
    }

    #[test]
    fn discovery_lists_enabled_resources_only_when_the_realm_publishes_them() {
        assert_eq!(published_uris(&realm()), None);
        let mut settings = Realm::default();
        settings
            .attributes
            .insert(REALM_PUBLISHES_RESOURCES.into(), "true".into());
        assert_eq!(
            published_uris(&realm_with(settings)),
            Some(vec![
                "https://billing.example/api".to_owned(),
                "https://orders.example/".to_owned(),
                "https://orders.example/v2".to_owned(),
            ])
        );
    }
}
