//! What every HTML page of the browser flow shares: the security headers, escaping, and the
//! browser binding that ties a form to the browser that fetched it.
//!
//! The binding is a random value in an `HttpOnly`, `SameSite=Lax` cookie (`Secure` when the
//! public URL is HTTPS); each form carries a digest of it, and a POST is accepted only when the
//! digest matches the cookie it arrives with. A page of another site can neither read the
//! cookie nor make the browser send it with a cross-site POST, so it cannot submit our forms
//! in the user's browser (login CSRF, forced logout). `Lax` rather than `Strict`: the login page
//! is reached by a cross-site navigation, and a `Strict` cookie would not come with it, so a
//! second tab would replace the binding of the first.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::random;
use crate::state::{AppState, RealmRuntime};

/// The binding cookie's name.
pub const BINDING_COOKIE: &str = "CAMBIO_BROWSER_BINDING";
/// Its name when the public URL is HTTPS. The `__Host-` prefix makes browsers refuse the
/// cookie unless it is `Secure`, has `Path=/` and no `Domain`, and was set by this very host
/// over HTTPS: a sibling subdomain or a plain-HTTP man in the middle cannot plant a value it
/// knows (which would let it forge the form's digest: login CSRF, forced logout).
pub const SECURE_BINDING_COOKIE: &str = "__Host-CAMBIO_BROWSER_BINDING";

/// The binding cookie's name for a server whose public URL is `base_url`.
fn cookie_name(base_url: &str) -> &'static str {
    if base_url.starts_with("https://") {
        SECURE_BINDING_COOKIE
    } else {
        BINDING_COOKIE
    }
}
/// The form field that carries the digest of the binding.
pub const BINDING_FIELD: &str = "browser_binding";

/// No script, style, image or frame from anywhere, no `<base>`, framing only by our own pages.
const CSP: &str = "default-src 'none'; base-uri 'none'; frame-ancestors 'self'";

/// The one script any page runs: it submits the form_post page's form. It is allowed by its
/// hash, so the policy still refuses every other inline script; without it the page shows a
/// button that does the same.
pub const FORM_POST_SCRIPT: &str = "document.forms[0].submit();";

fn form_post_script_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, FORM_POST_SCRIPT.as_bytes());
        format!("'sha256-{}'", STANDARD.encode(digest.as_ref()))
    })
}

/// Which script, if any, a page may run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Script {
    None,
    FormPost,
}

/// An HTML response with the security headers.
pub fn html(status: StatusCode, body: String, script: Script) -> Response {
    let mut response = (status, Html(body)).into_response();
    secure_headers(response.headers_mut(), script);
    response
}

/// The headers every browser-facing response carries (RFC 9700 §4.16, §4.2.4; RFC 6749 §10.13).
pub fn secure_headers(headers: &mut HeaderMap, script: Script) {
    let csp = match script {
        Script::None => CSP.to_owned(),
        Script::FormPost => format!("{CSP}; script-src {}", form_post_script_hash()),
    };
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Authorization URLs carry state and codes; no page passes its URL on.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A page that explains why the request cannot go on (never a redirect).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    html(
        status,
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
             <body><h1>{title}</h1><p>{}</p></body></html>",
            escape(message),
            title = escape(title),
        ),
        Script::None,
    )
}

/// The realm's runtime, or a page saying there is none.
// The error is a complete response, built once per failed request; its size does not matter.
#[allow(clippy::result_large_err)]
pub fn realm_or_page(
    app: &AppState,
    realm: &str,
    title: &str,
) -> Result<Arc<RealmRuntime>, Response> {
    app.active_realm(realm)
        .ok_or_else(|| error_page(StatusCode::NOT_FOUND, title, "Realm does not exist"))
}

/// A page that makes the browser post `fields` to `action` (OAuth 2.0 Form Post Response Mode).
pub fn form_post_page(action: &str, fields: &[(String, String)]) -> Response {
    let inputs: String = fields
        .iter()
        .map(|(name, value)| hidden(name, value))
        .collect();
    html(
        StatusCode::OK,
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Continue</title></head>\
             <body><form method=\"post\" action=\"{}\">{inputs}\
             <button type=\"submit\">Continue</button></form>\
             <script>{FORM_POST_SCRIPT}</script></body></html>",
            escape(action)
        ),
        Script::FormPost,
    )
}

pub fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    )
}

pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The browser binding of a page being served: the browser's existing value, or a new one.
pub struct Binding {
    value: String,
    fresh: bool,
}

impl Binding {
    /// Reuses the browser's binding (one per browser, so that several tabs can sign in at
    /// once), or draws a new one.
    pub fn for_page(headers: &HeaderMap, base_url: &str) -> Binding {
        match binding_cookie(headers, cookie_name(base_url)) {
            Some(value) => Binding {
                value: value.to_owned(),
                fresh: false,
            },
            None => Binding {
                value: random::token(),
                fresh: true,
            },
        }
    }

    /// The hidden field that carries the binding's digest.
    pub fn field(&self) -> String {
        hidden(BINDING_FIELD, &digest(&self.value))
    }

    /// Sets the cookie on `response` when the value is new.
    pub fn set_cookie(&self, response: &mut Response, base_url: &str) {
        if !self.fresh {
            return;
        }
        let name = cookie_name(base_url);
        let cookie = if name == SECURE_BINDING_COOKIE {
            format!(
                "{name}={}; Path=/; HttpOnly; SameSite=Lax; Secure",
                self.value
            )
        } else {
            let path = base_url
                .split_once("://")
                .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
                .filter(|p| !p.is_empty())
                .unwrap_or("/");
            format!("{name}={}; Path={path}; HttpOnly; SameSite=Lax", self.value)
        };
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

/// Whether a POST carries the digest of the binding cookie it came with.
pub fn binding_holds(headers: &HeaderMap, base_url: &str, field: Option<&str>) -> bool {
    let (Some(cookie), Some(field)) = (binding_cookie(headers, cookie_name(base_url)), field)
    else {
        return false;
    };
    let expected = digest(cookie);
    subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), field.as_bytes()).into()
}

/// The binding cookie's value, if the request carries a well-formed one (32 random bytes,
/// base64url: what [`random::token`] draws).
fn binding_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value)
        .filter(|v| {
            v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The digest a form carries: the cookie value itself never appears in a page.
fn digest(value: &str) -> String {
    let mut input = b"cambio browser binding\0".to_vec();
    input.extend_from_slice(value.as_bytes());
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
    URL_SAFE_NO_PAD.encode(d.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_post_script_is_the_one_its_hash_allows() {
        let page = form_post_page("https://app.example/cb", &[("code".into(), "\"<c>".into())]);
        let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        let body = body_text(page);
        let start = body.find("<script>").unwrap() + "<script>".len();
        let end = body.find("</script>").unwrap();
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body.as_bytes()[start..end]);
        let expected = format!("script-src 'sha256-{}'", STANDARD.encode(digest.as_ref()));
        assert!(csp.ends_with(&expected), "{csp}");
        assert!(body.contains("value=\"&quot;&lt;c&gt;\""), "{body}");
        assert_eq!(body.matches("<script").count(), 1);
    }

    fn body_text(response: Response) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = runtime
            .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn only_a_well_formed_binding_cookie_counts() {
        let value = random::token();
        let field = digest(&value);
        let holds = |cookie: &str, field: Option<&str>| {
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
            binding_holds(&headers, "http://127.0.0.1", field)
        };
        assert!(holds(
            &format!("a=b; {BINDING_COOKIE}={value}"),
            Some(&field)
        ));
        assert!(!holds(&format!("{BINDING_COOKIE}={value}"), None));
        assert!(!holds(&format!("{BINDING_COOKIE}={value}"), Some(&value)));
        assert!(!holds(
            &format!("{BINDING_COOKIE}=short"),
            Some(&digest("short"))
        ));
        assert!(!holds(&format!("X{BINDING_COOKIE}={value}"), Some(&field)));
        assert!(!binding_holds(
            &HeaderMap::new(),
            "http://127.0.0.1",
            Some(&field)
        ));
    }
}
