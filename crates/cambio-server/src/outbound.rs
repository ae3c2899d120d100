//! Requests the server makes of its own accord (identity providers' JWKS today). Every one
//! goes through a client built here, so the rules hold for any later outbound fetch too:
//!
//! - The address is checked where the connection is made: a resolver that resolves the name
//!   and hands the connector only the addresses [`OutboundPolicy`] allows, so the checked
//!   address is the one connected to, and a name that resolves differently a second later
//!   (DNS rebinding) gains nothing. A URL whose host is an IP literal never reaches a
//!   resolver, so [`check_host`] checks it before the request is sent.
//! - Redirects are not followed and proxies from the environment are not used: either would
//!   send the request somewhere the check did not see.
//! - Loopback addresses are reachable only with the development flag [`LOOPBACK_FLAG`];
//!   private, link-local and the other internal ranges never.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use cambio_core::address::{AddressClass, OutboundPolicy, RefusedAddress};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The setting that opens loopback addresses, as the operator writes it.
pub const LOOPBACK_FLAG: &str = "--allow-http-loopback-jwks (CAMBIO_ALLOW_HTTP_LOOPBACK_JWKS)";

/// Why an outbound request was not sent: the address it would reach is internal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The name the URL gives, when it gives one rather than the address itself.
    pub name: Option<String>,
    pub refused: RefusedAddress,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} resolves to {}; ", self.refused)?,
            None => write!(f, "{}; ", self.refused)?,
        }
        // Only loopback has a setting, and only for development: say so, or say there is none.
        match self.refused.class {
            AddressClass::Loopback => {
                write!(f, "allowed only with {LOOPBACK_FLAG}, for development")
            }
            _ => f.write_str(
                "outbound requests never go to internal addresses, and no setting allows it",
            ),
        }
    }
}

impl std::error::Error for Refused {}

/// A client for outbound requests under `policy`: guarded resolver, no redirects, no proxy.
pub fn client(
    policy: OutboundPolicy,
    connect_timeout: Duration,
    total_timeout: Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout)
        .timeout(total_timeout)
        .user_agent("cambio")
        .build()
}

/// Checks a URL's host that the resolver will not see: an IP literal is connected to as is.
pub fn check_host(host: &url::Host<&str>, policy: OutboundPolicy) -> Result<(), Refused> {
    let refuse = |refused| Refused {
        name: None,
        refused,
    };
    match host {
        url::Host::Ipv4(ip) => policy.check(IpAddr::V4(*ip)).map_err(refuse),
        url::Host::Ipv6(ip) => policy.check(IpAddr::V6(*ip)).map_err(refuse),
        url::Host::Domain(_) => Ok(()),
    }
}

/// Checks, when a URL is registered, a name that means loopback by definition (RFC 6761
/// `localhost`), so the administrator hears at once what every fetch would answer. Fetches
/// leave names to the resolver, which checks what they resolve to.
pub fn check_name(host: &url::Host<&str>, policy: OutboundPolicy) -> Result<(), Refused> {
    match host {
        url::Host::Domain(name) if is_localhost(name) => policy
            .check(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
            .map_err(|refused| Refused {
                name: Some(name.to_string()),
                refused,
            }),
        _ => check_host(host, policy),
    }
}

/// `localhost` and its subdomains (RFC 6761 §6.3), with or without the final dot.
pub fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// The refusal behind a failed request, if the guarded resolver caused the failure.
pub fn refusal(error: &reqwest::Error) -> Option<Refused> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(refused) = current.downcast_ref::<Refused>() {
            return Some(refused.clone());
        }
        source = current.source();
    }
    None
}

/// Resolves with the system resolver and keeps only the addresses the policy allows.
struct GuardedResolver {
    policy: OutboundPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let mut allowed = Vec::new();
            let mut first_refusal = None;
            for address in resolved {
                match policy.check(address.ip()) {
                    Ok(()) => allowed.push(address),
                    Err(refused) => {
                        first_refusal.get_or_insert(refused);
                    }
                }
            }
            // A name with some allowed addresses connects only to those; a name with none is
            // refused with the first reason, so the operator sees what the name pointed at.
            match (allowed.is_empty(), first_refusal) {
                (true, Some(refused)) => Err(Box::new(Refused {
                    name: Some(host),
                    refused,
                }) as _),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_hosts() {
        let check = |url: &str, policy| {
            let url = url::Url::parse(url).unwrap();
            check_name(&url.host().unwrap(), policy).map_err(|e| e.refused.class)
        };
        use AddressClass::*;
        let public = OutboundPolicy::PUBLIC;
        let dev = OutboundPolicy::PUBLIC_AND_LOOPBACK;
        assert_eq!(check("https://idp.example/", public), Ok(()));
        assert_eq!(check("https://8.8.8.8/", public), Ok(()));
        assert_eq!(check("https://169.254.169.254/", dev), Err(LinkLocal));
        assert_eq!(check("https://127.0.0.1/", public), Err(Loopback));
        assert_eq!(check("https://127.0.0.1/", dev), Ok(()));
        // The WHATWG parser turns these spellings into 127.0.0.1 before we look.
        assert_eq!(check("https://0x7f.1/", public), Err(Loopback));
        assert_eq!(check("https://2130706433/", public), Err(Loopback));
        assert_eq!(check("https://[::ffff:127.0.0.1]/", public), Err(Loopback));
        assert_eq!(check("https://[::ffff:a9fe:a9fe]/", dev), Err(LinkLocal));
        assert_eq!(check("https://localhost/", public), Err(Loopback));
        assert_eq!(check("https://LOCALHOST./", public), Err(Loopback));
        assert_eq!(check("https://a.localhost/", public), Err(Loopback));
        assert_eq!(check("https://localhost/", dev), Ok(()));
        assert_eq!(check("http://10.0.0.1/", dev), Err(Private));
        // At fetch time a name is left to the resolver.
        let url = url::Url::parse("https://localhost/").unwrap();
        assert_eq!(check_host(&url.host().unwrap(), public), Ok(()));
    }

    #[test]
    fn messages_name_the_flag() {
        let refused = Refused {
            name: None,
            refused: OutboundPolicy::PUBLIC
                .check("127.0.0.1".parse().unwrap())
                .unwrap_err(),
        };
        assert_eq!(
            refused.to_string(),
            "127.0.0.1 is a loopback address; allowed only with \
             --allow-http-loopback-jwks (CAMBIO_ALLOW_HTTP_LOOPBACK_JWKS), for development"
        );
    }
}
