//! The scenarios: each sends the same requests to Keycloak and to Cambio and records what it
//! compares in the [`Report`]. `oidc` holds the protocol endpoints, `admin` the admin API,
//! `legacy` the V1 permission model and external identity providers.

mod admin;
mod authz;
mod browser;
mod clients;
mod exports;
mod federation;
mod groups;
mod keys;
mod legacy;
mod oidc;
mod sessions;

use admin::admin_api;
pub use legacy::run_legacy;
use oidc::{discovery, exchanges, introspection_and_revocation, login};

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::Report;
use crate::{Reply, TestServer, encode_form, reply};

const REALM: &str = "oracle";
const ACCESS_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const REFRESH_TYPE: &str = "urn:ietf:params:oauth:token-type:refresh_token";
const ID_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// One server under comparison, with the `oracle` realm imported.
struct Peer {
    base: String,
    http: reqwest::Client,
}

impl Peer {
    fn new(base: &str) -> Peer {
        Peer {
            base: base.to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    fn oidc(&self, endpoint: &str) -> String {
        format!(
            "{}/realms/{REALM}/protocol/openid-connect/{endpoint}",
            self.base
        )
    }

    async fn form(&self, url: &str, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Reply {
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode_form(form));
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        reply(request.send().await.unwrap()).await
    }

    async fn token(&self, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Reply {
        self.form(&self.oidc("token"), form, basic).await
    }

    /// The master administrator's token (Keycloak's bootstrap admin, or Cambio's).
    async fn admin_token(&self, password: &str) -> String {
        let url = format!("{}/realms/master/protocol/openid-connect/token", self.base);
        let form = [
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", "admin"),
            ("password", password),
        ];
        self.form(&url, &form, None).await.access_token()
    }

    async fn import(&self, admin: &str, realm: &Value) -> Reply {
        let request = self
            .http
            .post(format!("{}/admin/realms", self.base))
            .bearer_auth(admin)
            .json(realm);
        reply(request.send().await.unwrap()).await
    }

    /// An admin call under `/admin/realms/oracle`.
    async fn admin(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}/admin/realms/{REALM}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        reply(request.send().await.unwrap()).await
    }

    /// alice's token from a password grant by `client`.
    async fn alice(&self, client: (&str, Option<&str>)) -> Reply {
        let mut form = vec![
            ("grant_type", "password"),
            ("client_id", client.0),
            ("username", "alice"),
            ("password", "alice"),
        ];
        if let Some(secret) = client.1 {
            form.push(("client_secret", secret));
        }
        self.token(&form, None).await
    }
}

/// The realm both servers import: clients for every exchange rule, alice and her roles.
fn oracle_realm() -> Value {
    serde_json::from_str(include_str!("../oracle-realm.json")).expect("oracle-realm.json")
}

/// Runs every scenario.
pub async fn run(keycloak_base: &str, cambio: &TestServer, report: &mut Report) {
    let kc = Peer::new(keycloak_base);
    let cb = Peer::new(&cambio.base);
    let realm: Value = oracle_realm();
    let kc_admin = kc.admin_token("admin").await;
    let cb_admin = cb.admin_token(crate::ADMIN_PASSWORD).await;
    let (a, b) = (
        kc.import(&kc_admin, &realm).await,
        cb.import(&cb_admin, &realm).await,
    );
    report.compare(
        "realm import",
        "status",
        &json!(a.status.as_u16()),
        &json!(b.status.as_u16()),
    );
    assert_eq!(
        a.status, 201,
        "Keycloak refused the oracle realm: {}",
        a.text
    );
    assert_eq!(b.status, 201, "Cambio refused the oracle realm: {}", b.text);

    discovery(&kc, &cb, report).await;
    login(&kc, &cb, report).await;
    exchanges(&kc, &cb, report).await;
    introspection_and_revocation(&kc, &cb, report).await;
    sessions::cascades(&kc, &cb, report).await;
    browser::front_door(&kc, &cb, report).await;
    admin_api(&kc, &kc_admin, &cb, &cb_admin, report).await;
    groups::groups(&kc, &kc_admin, &cb, &cb_admin, report).await;
    keys::keys(&kc, &kc_admin, &cb, &cb_admin, report).await;
    exports::realistic_exports(&kc, &kc_admin, &cb, &cb_admin, report).await;
}

/// Replaces what differs by nature between two servers: the base URL, ids, times, signatures.
fn normalise(value: &Value, base: &str) -> Value {
    match value {
        Value::String(s) => Value::String(normalise_text(s, base)),
        Value::Array(items) => Value::Array(items.iter().map(|v| normalise(v, base)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalise(v, base)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn normalise_text(text: &str, base: &str) -> String {
    if text.starts_with("eyJ") && text.matches('.').count() == 2 {
        return "{jwt}".into();
    }
    // Ids anywhere in the text (a `Location` path carries one).
    let text = text.replace(base, "{base}");
    text.split('/')
        .map(|part| if is_uuid(part) { "{id}" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

fn is_uuid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| {
            matches!(i, 8 | 13 | 18 | 23) == (c == '-') && (c == '-' || c.is_ascii_hexdigit())
        })
}

/// A JWT's payload, unverified (the servers' own tests verify signatures).
fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap_or("");
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(sorted).collect();
            items.sort_by_key(|v| v.to_string());
            Value::Array(items)
        }
        Value::String(s) if s.contains(' ') => {
            let mut words: Vec<&str> = s.split(' ').collect();
            words.sort_unstable();
            Value::String(words.join(" "))
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
        }
        other => other.clone(),
    }
}

/// A lifetime to the nearest ten seconds: a token issued a second after its subject token may
/// be capped a second short of its lifespan, which is not a difference of behaviour.
fn coarse(seconds: u64) -> u64 {
    (seconds + 5) / 10 * 10
}

/// The claims of an access token that the comparison looks at, with `aud` always a list.
fn claim_view(jwt: &str) -> Map<String, Value> {
    let claims = payload(jwt);
    let mut view = Map::new();
    view.insert("claim names".into(), members(&claims));
    for name in [
        "typ",
        "azp",
        "scope",
        "realm_access",
        "resource_access",
        "act",
    ] {
        view.insert(name.into(), sorted(&claims[name]));
    }
    let aud = match &claims["aud"] {
        Value::String(one) => json!([one]),
        other => other.clone(),
    };
    view.insert("aud".into(), sorted(&aud));
    view.insert("sid present".into(), json!(claims["sid"].is_string()));
    let lifetime = claims["exp"]
        .as_u64()
        .zip(claims["iat"].as_u64())
        .map(|(e, i)| coarse(e - i));
    view.insert("lifetime".into(), json!(lifetime));
    view
}

/// Compares two token-endpoint answers: status and error for refusals; for successes the
/// response members, their fixed values, and the issued access token's claims.
fn compare_token_answers(report: &mut Report, scenario: &str, kc: &Reply, cb: &Reply) {
    report.compare(
        scenario,
        "status",
        &json!(kc.status.as_u16()),
        &json!(cb.status.as_u16()),
    );
    report.compare(
        scenario,
        "Cache-Control",
        &header_directives(kc, "cache-control"),
        &header_directives(cb, "cache-control"),
    );
    if kc.status == 401 || cb.status == 401 {
        let scheme = |r: &Reply| {
            json!(
                r.headers
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split_whitespace().next())
                    .map(str::to_ascii_lowercase)
            )
        };
        report.compare(
            scenario,
            "WWW-Authenticate scheme",
            &scheme(kc),
            &scheme(cb),
        );
    }
    if kc.status != 200 || cb.status != 200 {
        report.compare(scenario, "error", &kc.body["error"], &cb.body["error"]);
        report.compare(
            scenario,
            "error_description",
            &kc.body["error_description"],
            &cb.body["error_description"],
        );
        return;
    }
    report.compare(
        scenario,
        "response members",
        &members(&kc.body),
        &members(&cb.body),
    );
    for member in ["token_type", "issued_token_type"] {
        report.compare(scenario, member, &kc.body[member], &cb.body[member]);
    }
    for member in ["expires_in", "refresh_expires_in"] {
        let seconds = |reply: &Reply| json!(reply.body[member].as_u64().map(coarse));
        report.compare(scenario, member, &seconds(kc), &seconds(cb));
    }
    report.compare(
        scenario,
        "scope",
        &sorted(&kc.body["scope"]),
        &sorted(&cb.body["scope"]),
    );
    let (Some(kc_token), Some(cb_token)) = (
        kc.body["access_token"].as_str(),
        cb.body["access_token"].as_str(),
    ) else {
        return;
    };
    if kc.body["token_type"] == "N_A" || !kc_token.starts_with("eyJ") {
        return;
    }
    let (kc_view, cb_view) = (claim_view(kc_token), claim_view(cb_token));
    for (name, value) in &kc_view {
        report.compare(scenario, &format!("claim {name}"), value, &cb_view[name]);
    }
}

/// A header's comma-separated directives, lower-cased and sorted (order carries no meaning).
fn header_directives(reply: &Reply, name: &str) -> Value {
    let mut directives: Vec<String> = reply
        .headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect();
    directives.sort();
    json!(directives)
}

/// The member names of a JSON object (or of an array's first object), sorted.
fn members(value: &Value) -> Value {
    let object = match value {
        Value::Array(items) => items.first(),
        other => Some(other),
    };
    let names: Vec<Value> = object
        .and_then(Value::as_object)
        .map(|m| m.keys().map(|k| json!(k)).collect())
        .unwrap_or_default();
    sorted(&Value::Array(names))
}
