//! The browser flow's pure decisions: which redirect URIs may be registered and which presented
//! URI matches them (RFC 6749 §3.1.2, RFC 9700 §2.1 and §4.1, RFC 8252 §7.3), which origins a
//! client's `webOrigins` admit, and how an authorization response is shaped (OpenID Connect
//! Core §3.1.2.5 and §3.1.2.6, OAuth 2.0 Multiple Response Types §2.1, Form Post Response Mode,
//! RFC 9207).
//!
//! Every URI is parsed by the `url` crate (the WHATWG URL standard, which browsers follow), so
//! what is compared is what a browser would request, never a raw string prefix.

use url::{Host, Position, Url};

use crate::error::OAuthError;
use crate::model::Client;

/// Keycloak's client attribute for the URIs a browser may be sent to after logout, separated by
/// `##`; `+` stands for the client's redirect URIs.
pub const ATTR_POST_LOGOUT_REDIRECT_URIS: &str = "post.logout.redirect.uris";

/// Why a redirect URI (or web origin) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("contains control characters or spaces")]
    ControlCharacters,
    #[error("is not an absolute URI")]
    NotAbsolute,
    #[error("is a bare wildcard")]
    BareWildcard,
    #[error("has a wildcard that does not end it")]
    MisplacedWildcard,
    #[error("uses a forbidden scheme")]
    ForbiddenScheme,
    #[error("contains user information")]
    UserInfo,
    #[error("contains a fragment")]
    Fragment,
    #[error("contains an encoded or backslash path separator")]
    AmbiguousPath,
    #[error("is not an origin (scheme, host and port only)")]
    NotAnOrigin,
    #[error("is not registered")]
    NotRegistered,
}

/// Schemes that run code or read local data in a browser: never a place to send a code.
const FORBIDDEN_SCHEMES: &[&str] = &["javascript", "data", "vbscript", "file", "blob", "about"];

/// Parses a URI as a browser would, refusing every form that could be read two ways.
fn parse_strict(uri: &str) -> Result<Url, RedirectUriError> {
    // The URL standard silently drops tabs and newlines and trims spaces; a URI that needs
    // that is refused instead, so that the URI stored or compared is the one presented.
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(RedirectUriError::ControlCharacters);
    }
    // Browsers read `\` as `/` in http(s) URLs; other parsers do not.
    if uri.contains('\\') {
        return Err(RedirectUriError::AmbiguousPath);
    }
    let url = Url::parse(uri).map_err(|_| RedirectUriError::NotAbsolute)?;
    if FORBIDDEN_SCHEMES.contains(&url.scheme()) {
        return Err(RedirectUriError::ForbiddenScheme);
    }
    // An opaque URI (`urn:...`, `mailto:...`) has no path to send the browser to.
    if url.cannot_be_a_base() {
        return Err(RedirectUriError::NotAbsolute);
    }
    if !url.username().is_empty() || url.password().is_some() || has_userinfo_marker(uri) {
        return Err(RedirectUriError::UserInfo);
    }
    if url.fragment().is_some() || uri.contains('#') {
        return Err(RedirectUriError::Fragment);
    }
    // An encoded `/` or `\` survives parsing but a server behind the redirect may decode it
    // into a separator, turning `/cb/..%2Fadmin` into another path than the one matched.
    let path = url.path().to_ascii_lowercase();
    if path.contains("%2f") || path.contains("%5c") {
        return Err(RedirectUriError::AmbiguousPath);
    }
    Ok(url)
}

/// Whether the authority of `uri` carries an `@`, even an empty user name (`https://@host`),
/// which the URL standard accepts and drops.
fn has_userinfo_marker(uri: &str) -> bool {
    let Some((_, rest)) = uri.split_once("://") else {
        return false;
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest[..authority_end].contains('@')
}

/// A registered redirect URI: a fixed scheme, host and port, then either an exact path and
/// query or (with a trailing `*`) a path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectPattern {
    base: Url,
    wildcard: bool,
}

impl RedirectPattern {
    /// Checks a redirect URI an administrator registers.
    pub fn parse(registered: &str) -> Result<RedirectPattern, RedirectUriError> {
        if registered.trim() == "*" {
            return Err(RedirectUriError::BareWildcard);
        }
        let (body, wildcard) = match registered.strip_suffix('*') {
            Some(body) => (body, true),
            None => (registered, false),
        };
        if body.contains('*') {
            return Err(RedirectUriError::MisplacedWildcard);
        }
        let base = parse_strict(body)?;
        Ok(RedirectPattern { base, wildcard })
    }

    /// Whether a presented (already normalised) URI matches. The scheme, host and port are
    /// compared as parsed values, so `https://pfx.example*` never admits
    /// `https://pfx.example.evil.com`; a wildcard only extends the path.
    pub fn matches(&self, presented: &Url) -> bool {
        let base = &self.base;
        if presented.scheme() != base.scheme() || presented.host() != base.host() {
            return false;
        }
        // RFC 8252 §7.3: a native app listens on a loopback port chosen at run time, so a
        // loopback redirect URI registered without a port admits any port.
        let any_port = is_loopback_http(base) && base.port().is_none();
        if !any_port && presented.port_or_known_default() != base.port_or_known_default() {
            return false;
        }
        let wanted = path_and_query(base);
        let given = path_and_query(presented);
        if self.wildcard {
            given.starts_with(wanted)
                || wanted
                    .strip_suffix('/')
                    .is_some_and(|directory| given == directory)
        } else {
            given == wanted
        }
    }

    /// The origin (`scheme://host:port`) of the registered URI, when it has one.
    fn origin(&self) -> Option<String> {
        http_origin(&self.base)
    }
}

fn path_and_query(url: &Url) -> &str {
    &url[Position::BeforePath..Position::AfterQuery]
}

fn is_loopback_http(url: &Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            Some(Host::Domain(name)) => name == "localhost",
            None => false,
        }
}

fn http_origin(url: &Url) -> Option<String> {
    matches!(url.scheme(), "http" | "https")
        .then(|| url.origin().ascii_serialization())
        .filter(|origin| origin != "null")
}

/// Checks a redirect URI for registration (admin API and realm import).
pub fn check_registered(uri: &str) -> Result<(), RedirectUriError> {
    RedirectPattern::parse(uri).map(|_| ())
}

/// Normalises a presented redirect URI (dot segments, percent-encoded ones included, resolved;
/// scheme and host lowercased; default port dropped) and returns it if one of `registered`
/// matches. Registered entries that do not parse (stored before these rules) match nothing.
pub fn match_presented(registered: &[String], presented: &str) -> Result<Url, RedirectUriError> {
    let url = parse_strict(presented)?;
    registered
        .iter()
        .filter_map(|r| RedirectPattern::parse(r).ok())
        .any(|pattern| pattern.matches(&url))
        .then_some(url)
        .ok_or(RedirectUriError::NotRegistered)
}

/// The registered post-logout redirect URIs of a client, `+` expanded to its redirect URIs.
pub fn post_logout_redirect_uris(client: &Client) -> Vec<String> {
    let Some(value) = client.attribute(ATTR_POST_LOGOUT_REDIRECT_URIS) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in value.split("##").map(str::trim).filter(|e| !e.is_empty()) {
        if entry == "+" {
            out.extend(client.redirect_uris.iter().cloned());
        } else {
            out.push(entry.to_owned());
        }
    }
    out
}

/// Checks the value of the `post.logout.redirect.uris` attribute for registration.
pub fn check_post_logout_attribute(value: &str) -> Result<(), RedirectUriError> {
    value
        .split("##")
        .map(str::trim)
        .filter(|e| !e.is_empty() && *e != "+")
        .try_for_each(check_registered)
}

/// Checks one `webOrigins` entry: `+` (the origins of the redirect URIs), `*` (any origin), or
/// an origin `scheme://host[:port]` of http or https with no path, query or fragment.
pub fn check_web_origin(origin: &str) -> Result<(), RedirectUriError> {
    if origin == "+" || origin == "*" {
        return Ok(());
    }
    let url = parse_strict(origin)?;
    let bare = url.path() == "/" && url.query().is_none();
    let written_bare = origin.trim_end_matches('/').matches('/').count() == 2;
    match http_origin(&url) {
        Some(_) if bare && written_bare => Ok(()),
        _ => Err(RedirectUriError::NotAnOrigin),
    }
}

/// Whether a browser request from `origin` (the `Origin` header) may read a response made for
/// `client`, by the client's `webOrigins` as Keycloak reads them.
pub fn origin_allowed(client: &Client, origin: &str) -> bool {
    let Some(presented) = Url::parse(origin).ok().and_then(|u| http_origin(&u)) else {
        return false;
    };
    client.web_origins.iter().any(|entry| match entry.as_str() {
        "*" => true,
        "+" => client
            .redirect_uris
            .iter()
            .filter_map(|r| RedirectPattern::parse(r).ok())
            .filter_map(|p| p.origin())
            .any(|o| o == presented),
        other => Url::parse(other)
            .ok()
            .and_then(|u| http_origin(&u))
            .is_some_and(|o| o == presented),
    })
}

/// How the authorization response travels back (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseMode {
    /// Parameters in the query of the redirect URI, the default for `response_type=code`.
    #[default]
    Query,
    /// Parameters in the fragment of the redirect URI.
    Fragment,
    /// Parameters posted by the browser to the redirect URI (OAuth 2.0 Form Post Response Mode).
    FormPost,
}

impl ResponseMode {
    /// Reads `response_mode`; JWT-secured modes and unknown values are refused.
    pub fn parse(value: Option<&str>) -> Result<ResponseMode, OAuthError> {
        match value {
            None | Some("query") => Ok(ResponseMode::Query),
            Some("fragment") => Ok(ResponseMode::Fragment),
            Some("form_post") => Ok(ResponseMode::FormPost),
            Some(_) => Err(OAuthError::invalid_request(
                "Invalid parameter: response_mode",
            )),
        }
    }
}

/// Whether `prompt` asks for no user interaction (OpenID Connect Core §3.1.2.1): `none` may not
/// be combined with another value; other values are honoured by always showing the form.
pub fn prompt_is_none(prompt: Option<&str>) -> Result<bool, OAuthError> {
    let values: Vec<&str> = prompt
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
        .collect();
    let none = values.contains(&"none");
    if none && values.len() > 1 {
        return Err(OAuthError::invalid_request("Invalid parameter: prompt"));
    }
    Ok(none)
}

/// An authorization response ready to send: a redirect, or a form the browser posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizationResponse {
    Redirect(String),
    FormPost {
        action: String,
        fields: Vec<(String, String)>,
    },
}

/// Puts the response parameters (`code` or `error`, `state`, `iss`, ...) where `mode` says.
pub fn authorization_response(
    redirect_uri: &Url,
    mode: ResponseMode,
    params: &[(&str, &str)],
) -> AuthorizationResponse {
    match mode {
        ResponseMode::Query => {
            let mut url = redirect_uri.clone();
            url.query_pairs_mut().extend_pairs(params);
            AuthorizationResponse::Redirect(url.into())
        }
        ResponseMode::Fragment => {
            let mut url = redirect_uri.clone();
            let fragment = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            url.set_fragment(Some(&fragment));
            AuthorizationResponse::Redirect(url.into())
        }
        ResponseMode::FormPost => AuthorizationResponse::FormPost {
            action: redirect_uri.to_string(),
            fields: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_registration(uri: &str, expected: Result<(), RedirectUriError>) {
        assert_eq!(check_registered(uri), expected, "{uri:?}");
    }

    #[test]
    fn registration() {
        use RedirectUriError::*;
        for (uri, expected) in [
            ("https://app.example/cb", Ok(())),
            ("https://app.example/wild/*", Ok(())),
            ("https://pfx.example*", Ok(())),
            ("http://127.0.0.1/*", Ok(())),
            ("com.example.app:/oauth2redirect", Ok(())),
            ("*", Err(BareWildcard)),
            (" * ", Err(BareWildcard)),
            ("/cb", Err(NotAbsolute)),
            ("app.example/cb", Err(NotAbsolute)),
            ("/*", Err(NotAbsolute)),
            ("javascript:alert(1)", Err(ForbiddenScheme)),
            ("JavaScript://app.example/%0aalert(1)", Err(ForbiddenScheme)),
            ("data:text/html,hi", Err(ForbiddenScheme)),
            ("vbscript:msgbox", Err(ForbiddenScheme)),
            ("file:///etc/passwd", Err(ForbiddenScheme)),
            ("urn:ietf:wg:oauth:2.0:oob", Err(NotAbsolute)),
            ("https://user@app.example/cb", Err(UserInfo)),
            ("https://user:pw@app.example/cb", Err(UserInfo)),
            ("https://@app.example/cb", Err(UserInfo)),
            ("https://app.example/cb#x", Err(Fragment)),
            ("https://app.example/cb#", Err(Fragment)),
            ("https://app.example/c\nb", Err(ControlCharacters)),
            ("https://app.example/c\tb", Err(ControlCharacters)),
            ("https://app.example/c b", Err(ControlCharacters)),
            ("https://app.example/a\\b", Err(AmbiguousPath)),
            ("https://app.example/a%2Fb", Err(AmbiguousPath)),
            ("https://*.example/cb", Err(MisplacedWildcard)),
            ("https://app.example/*/cb", Err(MisplacedWildcard)),
        ] {
            check_registration(uri, expected);
        }
    }

    fn check_match(registered: &[&str], presented: &str, expected: Result<&str, RedirectUriError>) {
        let registered: Vec<String> = registered.iter().map(|s| (*s).to_owned()).collect();
        let got = match_presented(&registered, presented);
        assert_eq!(
            got.as_ref().map(Url::as_str).map_err(|e| *e),
            expected,
            "{registered:?} {presented:?}"
        );
    }

    #[test]
    fn matching() {
        use RedirectUriError::*;
        let wild = &["https://app.example/wild/*"];
        let pfx = &["https://pfx.example*"];
        let loopback = &[
            "http://127.0.0.1/*",
            "http://[::1]/cb",
            "http://localhost/*",
        ];
        for (registered, presented, expected) in [
            (
                wild as &[&str],
                "https://app.example/wild/x",
                Ok("https://app.example/wild/x"),
            ),
            (
                wild,
                "https://app.example/wild",
                Ok("https://app.example/wild"),
            ),
            (
                wild,
                "https://app.example/wild/a/../b",
                Ok("https://app.example/wild/b"),
            ),
            (wild, "https://app.example/wild/../evil", Err(NotRegistered)),
            (
                wild,
                "https://app.example/wild/%2e%2e/evil",
                Err(NotRegistered),
            ),
            (
                wild,
                "https://app.example/wild/.%2E/evil",
                Err(NotRegistered),
            ),
            (
                wild,
                "https://app.example/wild/..%2Fevil",
                Err(AmbiguousPath),
            ),
            (
                wild,
                "https://app.example/wild/..\\evil",
                Err(AmbiguousPath),
            ),
            (
                wild,
                "https://APP.example:443/wild/x?a=1",
                Ok("https://app.example/wild/x?a=1"),
            ),
            (wild, "https://app.example:8443/wild/x", Err(NotRegistered)),
            (wild, "http://app.example/wild/x", Err(NotRegistered)),
            (wild, "https://app.example/wildcard", Err(NotRegistered)),
            (wild, "https://app.example/wild/x#f", Err(Fragment)),
            (
                pfx,
                "https://pfx.example/anything",
                Ok("https://pfx.example/anything"),
            ),
            (pfx, "https://pfx.example.evil.com/", Err(NotRegistered)),
            (pfx, "https://pfx.example@evil.com", Err(UserInfo)),
            (pfx, "https://pfx.example:1@evil.com/", Err(UserInfo)),
            (pfx, "https://evil.com\\@pfx.example/", Err(AmbiguousPath)),
            (
                &["https://app.example/cb"],
                "https://app.example/cb",
                Ok("https://app.example/cb"),
            ),
            (
                &["https://app.example/cb"],
                "https://app.example/cb/x",
                Err(NotRegistered),
            ),
            (
                &["https://app.example/cb"],
                "https://app.example/cb?x=1",
                Err(NotRegistered),
            ),
            (&["https://app.example/cb"], "/cb", Err(NotAbsolute)),
            (&["*"], "https://app.example/cb", Err(NotRegistered)),
            (
                loopback,
                "http://127.0.0.1:53117/callback",
                Ok("http://127.0.0.1:53117/callback"),
            ),
            (
                loopback,
                "http://127.0.0.1/callback",
                Ok("http://127.0.0.1/callback"),
            ),
            (loopback, "http://[::1]:4000/cb", Ok("http://[::1]:4000/cb")),
            (
                loopback,
                "http://localhost:4000/x",
                Ok("http://localhost:4000/x"),
            ),
            (
                loopback,
                "https://127.0.0.1:53117/callback",
                Err(NotRegistered),
            ),
            (
                loopback,
                "http://127.0.0.2.evil.example/cb",
                Err(NotRegistered),
            ),
            (
                loopback,
                "http://127.0.0.1:5000/c\r\nSet-Cookie:x",
                Err(ControlCharacters),
            ),
            (
                loopback,
                "http://127.0.0.1:5000/c%0d%0ab",
                Ok("http://127.0.0.1:5000/c%0d%0ab"),
            ),
            (
                &["http://127.0.0.1:8080/cb"],
                "http://127.0.0.1:9090/cb",
                Err(NotRegistered),
            ),
        ] {
            check_match(registered, presented, expected);
        }
    }

    #[test]
    fn web_origins() {
        for (origin, ok) in [
            ("+", true),
            ("*", true),
            ("https://app.example", true),
            ("https://app.example/", true),
            ("http://127.0.0.1:3000", true),
            ("https://app.example/path", false),
            ("https://app.example?x", false),
            ("https://user@app.example", false),
            ("javascript:alert(1)", false),
            ("app.example", false),
            ("ftp://app.example", false),
        ] {
            assert_eq!(check_web_origin(origin).is_ok(), ok, "{origin}");
        }
        let client = Client {
            redirect_uris: vec!["https://spa.example/cb/*".into()],
            web_origins: vec!["+".into(), "https://other.example:8443".into()],
            ..Default::default()
        };
        for (origin, allowed) in [
            ("https://spa.example", true),
            ("https://other.example:8443", true),
            ("https://other.example", false),
            ("https://evil.example", false),
            ("null", false),
            ("https://spa.example.evil.com", false),
        ] {
            assert_eq!(origin_allowed(&client, origin), allowed, "{origin}");
        }
        let any = Client {
            web_origins: vec!["*".into()],
            ..Default::default()
        };
        assert!(origin_allowed(&any, "https://x.example"));
        assert!(!origin_allowed(&Client::default(), "https://x.example"));
    }

    #[test]
    fn post_logout_uris() {
        let mut client = Client {
            redirect_uris: vec!["https://app.example/*".into()],
            ..Default::default()
        };
        assert!(post_logout_redirect_uris(&client).is_empty());
        client.attributes.insert(
            ATTR_POST_LOGOUT_REDIRECT_URIS.into(),
            "+##https://app.example/bye".into(),
        );
        assert_eq!(
            post_logout_redirect_uris(&client),
            vec!["https://app.example/*", "https://app.example/bye"]
        );
        assert!(check_post_logout_attribute("+##https://a.example/bye").is_ok());
        assert_eq!(
            check_post_logout_attribute("+##javascript:x"),
            Err(RedirectUriError::ForbiddenScheme)
        );
    }

    #[test]
    fn response_modes_and_prompt() {
        for (mode, expected) in [
            (None, Ok(ResponseMode::Query)),
            (Some("query"), Ok(ResponseMode::Query)),
            (Some("fragment"), Ok(ResponseMode::Fragment)),
            (Some("form_post"), Ok(ResponseMode::FormPost)),
            (Some("query.jwt"), Err(())),
            (Some("jwt"), Err(())),
            (Some("FRAGMENT"), Err(())),
        ] {
            assert_eq!(
                ResponseMode::parse(mode).map_err(|_| ()),
                expected,
                "{mode:?}"
            );
        }
        for (prompt, expected) in [
            (None, Ok(false)),
            (Some("login"), Ok(false)),
            (Some("none"), Ok(true)),
            (Some("login consent"), Ok(false)),
            (Some("none login"), Err(())),
        ] {
            assert_eq!(
                prompt_is_none(prompt).map_err(|_| ()),
                expected,
                "{prompt:?}"
            );
        }
    }

    #[test]
    fn response_shapes() {
        let uri = Url::parse("https://app.example/cb?keep=1").unwrap();
        let params = [
            ("code", "c 1"),
            ("state", "s"),
            ("iss", "https://as.example/realms/r"),
        ];
        assert_eq!(
            authorization_response(&uri, ResponseMode::Query, &params),
            AuthorizationResponse::Redirect(
                "https://app.example/cb?keep=1&code=c+1&state=s&iss=https%3A%2F%2Fas.example%2Frealms%2Fr"
                    .into()
            )
        );
        assert_eq!(
            authorization_response(&uri, ResponseMode::Fragment, &params),
            AuthorizationResponse::Redirect(
                "https://app.example/cb?keep=1#code=c+1&state=s&iss=https%3A%2F%2Fas.example%2Frealms%2Fr"
                    .into()
            )
        );
        assert_eq!(
            authorization_response(&uri, ResponseMode::FormPost, &params[..1]),
            AuthorizationResponse::FormPost {
                action: "https://app.example/cb?keep=1".into(),
                fields: vec![("code".into(), "c 1".into())],
            }
        );
    }
}
