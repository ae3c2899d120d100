//! The scenarios: each sends the same requests to Keycloak and to Cambio and records what it
//! compares in the [`Report`].

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::Report;
use crate::{EXCHANGE, Reply, TestServer, encode_form, reply};

mod groups;

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

/// Runs every scenario.
pub async fn run(keycloak_base: &str, cambio: &TestServer, report: &mut Report) {
    let kc = Peer::new(keycloak_base);
    let cb = Peer::new(&cambio.base);
    let realm: Value =
        serde_json::from_str(include_str!("oracle-realm.json")).expect("oracle-realm.json");
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
    admin_api(&kc, &kc_admin, &cb, &cb_admin, report).await;
    groups::groups(&kc, &kc_admin, &cb, &cb_admin, report).await;
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

async fn discovery(kc: &Peer, cb: &Peer, report: &mut Report) {
    let scenario = "discovery";
    let url = |peer: &Peer| {
        format!(
            "{}/realms/{REALM}/.well-known/openid-configuration",
            peer.base
        )
    };
    let a = reply(kc.http.get(url(kc)).send().await.unwrap()).await;
    let b = reply(cb.http.get(url(cb)).send().await.unwrap()).await;
    report.compare(
        scenario,
        "status",
        &json!(a.status.as_u16()),
        &json!(b.status.as_u16()),
    );
    let (a, b) = (normalise(&a.body, &kc.base), normalise(&b.body, &cb.base));
    for member in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "introspection_endpoint",
        "userinfo_endpoint",
        "end_session_endpoint",
        "jwks_uri",
        "revocation_endpoint",
    ] {
        report.compare(scenario, member, &a[member], &b[member]);
    }
    // Lists: whether each value that matters is offered.
    let offered = |doc: &Value, member: &str, value: &str| {
        json!(
            doc[member]
                .as_array()
                .is_some_and(|l| l.iter().any(|v| v == value))
        )
    };
    for (member, value) in [
        (
            "grant_types_supported",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("grant_types_supported", "client_credentials"),
        ("grant_types_supported", "password"),
        ("grant_types_supported", "refresh_token"),
        ("grant_types_supported", "authorization_code"),
        ("code_challenge_methods_supported", "S256"),
        (
            "token_endpoint_auth_methods_supported",
            "client_secret_basic",
        ),
        (
            "token_endpoint_auth_methods_supported",
            "client_secret_post",
        ),
        ("token_endpoint_auth_methods_supported", "private_key_jwt"),
        ("response_types_supported", "code"),
        ("subject_types_supported", "public"),
    ] {
        report.compare(
            scenario,
            &format!("{member} has {value}"),
            &offered(&a, member, value),
            &offered(&b, member, value),
        );
    }
    // The JWKS: key members of the signing key (RS256, as the realm asks).
    let jwks = |peer: &Peer| format!("{}/realms/{REALM}/protocol/openid-connect/certs", peer.base);
    let a = reply(kc.http.get(jwks(kc)).send().await.unwrap()).await;
    let b = reply(cb.http.get(jwks(cb)).send().await.unwrap()).await;
    let signing = |doc: &Value| {
        doc["keys"]
            .as_array()
            .and_then(|keys| {
                keys.iter()
                    .find(|k| k["alg"] == "RS256" && k["use"] == "sig")
            })
            .map(members)
            .unwrap_or(Value::Null)
    };
    report.compare(
        "jwks",
        "RS256 signing key members",
        &signing(&a.body),
        &signing(&b.body),
    );
}

async fn login(kc: &Peer, cb: &Peer, report: &mut Report) {
    let subject = ("subject-client", Some("subject-secret"));
    let (a, b) = (kc.alice(subject).await, cb.alice(subject).await);
    compare_token_answers(report, "password grant", &a, &b);
    let wrong = [
        ("grant_type", "password"),
        ("client_id", "subject-client"),
        ("client_secret", "subject-secret"),
        ("username", "alice"),
        ("password", "wrong"),
    ];
    let (a, b) = (kc.token(&wrong, None).await, cb.token(&wrong, None).await);
    compare_token_answers(report, "password grant, wrong password", &a, &b);
    let bad_client = [("grant_type", "client_credentials")];
    let (a, b) = (
        kc.token(&bad_client, Some(("requester-client", "nope")))
            .await,
        cb.token(&bad_client, Some(("requester-client", "nope")))
            .await,
    );
    compare_token_answers(report, "client credentials, wrong secret", &a, &b);
    let (a, b) = (
        kc.token(&bad_client, Some(("requester-client", "requester-secret")))
            .await,
        cb.token(&bad_client, Some(("requester-client", "requester-secret")))
            .await,
    );
    compare_token_answers(report, "client credentials", &a, &b);
    // userinfo with alice's token, without and with `openid`.
    let (ta, tb) = (
        kc.alice(subject).await.access_token(),
        cb.alice(subject).await.access_token(),
    );
    let a = reply(
        kc.http
            .get(kc.oidc("userinfo"))
            .bearer_auth(&ta)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let b = reply(
        cb.http
            .get(cb.oidc("userinfo"))
            .bearer_auth(&tb)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let scenario = "userinfo without openid";
    report.compare(
        scenario,
        "status",
        &json!(a.status.as_u16()),
        &json!(b.status.as_u16()),
    );
    let challenge_error = |r: &Reply| {
        let header = r
            .headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        json!(header.contains("error=\"insufficient_scope\""))
    };
    report.compare(
        scenario,
        "insufficient_scope challenge",
        &challenge_error(&a),
        &challenge_error(&b),
    );
    let mut bodies = Vec::new();
    for peer in [kc, cb] {
        let form = [
            ("grant_type", "password"),
            ("client_id", "subject-client"),
            ("client_secret", "subject-secret"),
            ("username", "alice"),
            ("password", "alice"),
            ("scope", "openid"),
        ];
        let token = peer.token(&form, None).await.access_token();
        let r = reply(
            peer.http
                .get(peer.oidc("userinfo"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        bodies.push((r.status.as_u16(), sorted(&normalise(&r.body, &peer.base))));
    }
    let scenario = "userinfo with openid";
    report.compare(scenario, "status", &json!(bodies[0].0), &json!(bodies[1].0));
    report.compare(scenario, "body", &bodies[0].1, &bodies[1].1);
}

/// One exchange request: who asks, with what.
struct Case {
    name: &'static str,
    requester: (&'static str, &'static str),
    /// Where the subject token comes from: alice through subject-client, or through
    /// public-client (a token whose audience lacks requester-client).
    subject_from_public: bool,
    params: &'static [(&'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        name: "exchange: audience orders-api",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("audience", "orders-api"),
        ],
    },
    Case {
        name: "exchange: no audience",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[("subject_token_type", ACCESS_TYPE)],
    },
    Case {
        name: "exchange: no subject_token_type",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[("audience", "orders-api")],
    },
    Case {
        name: "exchange: two audiences",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("audience", "orders-api"),
            ("audience", "billing-api"),
        ],
    },
    Case {
        name: "exchange: unknown audience",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("audience", "no-such-client"),
        ],
    },
    Case {
        name: "exchange: requester not allowed to exchange",
        requester: ("plain-client", "plain-secret"),
        subject_from_public: false,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("audience", "orders-api"),
        ],
    },
    Case {
        name: "exchange: requester not in the subject's audience",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: true,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("audience", "orders-api"),
        ],
    },
    Case {
        name: "exchange: refresh token requested",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("requested_token_type", REFRESH_TYPE),
        ],
    },
    Case {
        name: "exchange: ID token requested",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("requested_token_type", ID_TYPE),
        ],
    },
    Case {
        name: "exchange: unknown requested token type",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("requested_token_type", "urn:example:unknown"),
        ],
    },
    Case {
        name: "exchange: wrong subject_token_type",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[("subject_token_type", ID_TYPE), ("audience", "orders-api")],
    },
    Case {
        name: "exchange: scope narrowed to email",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[("subject_token_type", ACCESS_TYPE), ("scope", "email")],
    },
    Case {
        name: "exchange: optional scope phone",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[("subject_token_type", ACCESS_TYPE), ("scope", "phone")],
    },
    Case {
        name: "exchange: wrong requester secret",
        requester: ("requester-client", "wrong"),
        subject_from_public: false,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("audience", "orders-api"),
        ],
    },
];

async fn exchanges(kc: &Peer, cb: &Peer, report: &mut Report) {
    for case in CASES {
        let mut answers = Vec::new();
        for peer in [kc, cb] {
            let subject = if case.subject_from_public {
                peer.alice(("public-client", None)).await
            } else {
                peer.alice(("subject-client", Some("subject-secret"))).await
            }
            .access_token();
            let mut form = vec![
                ("grant_type", EXCHANGE),
                ("subject_token", subject.as_str()),
            ];
            form.extend_from_slice(case.params);
            answers.push(peer.token(&form, Some(case.requester)).await);
        }
        compare_token_answers(report, case.name, &answers[0], &answers[1]);
    }
    // Refusals that need no valid subject token.
    let garbage = [
        ("grant_type", EXCHANGE),
        ("subject_token", "not-a-token"),
        ("subject_token_type", ACCESS_TYPE),
    ];
    let missing = [
        ("grant_type", EXCHANGE),
        ("subject_token_type", ACCESS_TYPE),
    ];
    for (name, form) in [
        ("exchange: invalid subject token", &garbage[..]),
        ("exchange: missing subject token", &missing[..]),
    ] {
        let requester = Some(("requester-client", "requester-secret"));
        let (a, b) = (
            kc.token(form, requester).await,
            cb.token(form, requester).await,
        );
        compare_token_answers(report, name, &a, &b);
    }
}

async fn introspection_and_revocation(kc: &Peer, cb: &Peer, report: &mut Report) {
    let mut introspected = Vec::new();
    let mut after_revocation = Vec::new();
    for peer in [kc, cb] {
        let subject = peer
            .alice(("subject-client", Some("subject-secret")))
            .await
            .access_token();
        let exchanged = peer
            .token(
                &[
                    ("grant_type", EXCHANGE),
                    ("subject_token", &subject),
                    ("subject_token_type", ACCESS_TYPE),
                    ("audience", "orders-api"),
                ],
                Some(("requester-client", "requester-secret")),
            )
            .await
            .access_token();
        let orders = Some(("orders-api", "orders-secret"));
        let active = peer
            .form(
                &peer.oidc("token/introspect"),
                &[("token", &exchanged)],
                orders,
            )
            .await;
        introspected.push(active);
        let revoked = peer
            .form(
                &peer.oidc("revoke"),
                &[("token", &subject)],
                Some(("subject-client", "subject-secret")),
            )
            .await;
        let subject_after = peer
            .form(
                &peer.oidc("token/introspect"),
                &[("token", &subject)],
                orders,
            )
            .await;
        let exchanged_after = peer
            .form(
                &peer.oidc("token/introspect"),
                &[("token", &exchanged)],
                orders,
            )
            .await;
        after_revocation.push((revoked, subject_after, exchanged_after));
    }
    let scenario = "introspection of an exchanged token";
    report.compare(
        scenario,
        "active",
        &introspected[0].body["active"],
        &introspected[1].body["active"],
    );
    report.compare(
        scenario,
        "members",
        &members(&introspected[0].body),
        &members(&introspected[1].body),
    );
    let (kc_after, cb_after) = (&after_revocation[0], &after_revocation[1]);
    let scenario = "revocation of the subject token";
    report.compare(
        scenario,
        "revoke status",
        &json!(kc_after.0.status.as_u16()),
        &json!(cb_after.0.status.as_u16()),
    );
    report.compare(
        scenario,
        "subject active after",
        &kc_after.1.body["active"],
        &cb_after.1.body["active"],
    );
    report.compare(
        scenario,
        "exchanged active after",
        &kc_after.2.body["active"],
        &cb_after.2.body["active"],
    );
}

/// One admin call, answered by both servers.
struct AdminCall {
    name: &'static str,
    method: reqwest::Method,
    /// Under `/admin/realms/oracle`; `{client}`, `{user}` and `{scope}` are replaced by the ids
    /// each server gave the objects created earlier in the scenario.
    path: &'static str,
    body: Option<Value>,
}

impl Peer {
    async fn admin_call(&self, token: &str, call: &AdminCall, ids: &[(&str, String)]) -> Reply {
        let mut path = call.path.to_owned();
        for (name, id) in ids {
            path = path.replace(name, id);
        }
        let mut request = self
            .http
            .request(
                call.method.clone(),
                format!("{}/admin/realms/{REALM}{path}", self.base),
            )
            .bearer_auth(token);
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        reply(request.send().await.unwrap()).await
    }
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

/// A Keycloak-style OIDC identity provider's settings (no `cambio.*` keys).
fn idp_config() -> Value {
    let base = "https://idp.example/realms/partner";
    json!({
        "issuer": base,
        "jwksUrl": format!("{base}/protocol/openid-connect/certs"),
        "useJwksUrl": "true",
        "validateSignature": "true",
        "clientId": "cambio",
        "clientSecret": "idp-secret",
        "clientAuthMethod": "client_secret_post",
        "authorizationUrl": format!("{base}/protocol/openid-connect/auth"),
        "tokenUrl": format!("{base}/protocol/openid-connect/token"),
    })
}

/// Creates, reads, updates and deletes clients, roles, users and client scopes on both servers
/// and compares the statuses, the `Location` shapes and the representations' members.
async fn admin_api(kc: &Peer, kc_token: &str, cb: &Peer, cb_token: &str, report: &mut Report) {
    use reqwest::Method;
    let creates = [
        (
            "client",
            "/clients",
            json!({"clientId": "crud-client", "publicClient": false,
                                      "secret": "crud-secret", "redirectUris": ["https://crud.example/cb"]}),
        ),
        (
            "user",
            "/users",
            json!({"username": "crud-user", "enabled": true, "email": "crud@example.com"}),
        ),
        (
            "scope",
            "/client-scopes",
            json!({"name": "crud-scope", "protocol": "openid-connect"}),
        ),
        (
            "role",
            "/roles",
            json!({"name": "crud-role", "description": "made by the suite"}),
        ),
        // An identity provider registered the Keycloak way (Keycloak's own settings only).
        (
            "identity provider",
            "/identity-provider/instances",
            json!({"alias": "crud-idp", "providerId": "oidc", "enabled": true, "config": idp_config()}),
        ),
    ];
    let mut kc_ids: Vec<(&str, String)> = Vec::new();
    let mut cb_ids: Vec<(&str, String)> = Vec::new();
    for (what, path, body) in creates {
        let call = AdminCall {
            name: "create",
            method: Method::POST,
            path,
            body: Some(body.clone()),
        };
        let (a, b) = (
            kc.admin_call(kc_token, &call, &[]).await,
            cb.admin_call(cb_token, &call, &[]).await,
        );
        let scenario = format!("admin: create {what}");
        report.compare(
            &scenario,
            "status",
            &json!(a.status.as_u16()),
            &json!(b.status.as_u16()),
        );
        let location = |r: &Reply, base: &str| {
            let text = r
                .headers
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            normalise(&json!(text), base)
        };
        report.compare(
            &scenario,
            "Location",
            &location(&a, &kc.base),
            &location(&b, &cb.base),
        );
        let id = |r: &Reply| {
            r.headers
                .get("location")
                .and_then(|v| v.to_str().ok())
                .and_then(|l| l.rsplit('/').next())
                .unwrap_or("")
                .to_owned()
        };
        let key = match what {
            "client" => "{client}",
            "user" => "{user}",
            "scope" => "{scope}",
            _ => "{role}",
        };
        kc_ids.push((key, id(&a)));
        cb_ids.push((key, id(&b)));
        // Creating it again is a conflict.
        let (a, b) = (
            kc.admin_call(kc_token, &call, &[]).await,
            cb.admin_call(cb_token, &call, &[]).await,
        );
        report.compare(
            &scenario,
            "again: status",
            &json!(a.status.as_u16()),
            &json!(b.status.as_u16()),
        );
    }
    let reads = [
        ("admin: read client", "/clients/{client}"),
        (
            "admin: list clients by clientId",
            "/clients?clientId=crud-client",
        ),
        ("admin: client secret", "/clients/{client}/client-secret"),
        ("admin: read user", "/users/{user}"),
        ("admin: list users", "/users?username=crud-user&exact=true"),
        ("admin: count users", "/users/count"),
        ("admin: read client scope", "/client-scopes/{scope}"),
        ("admin: read realm role", "/roles/crud-role"),
        (
            "admin: read identity provider",
            "/identity-provider/instances/crud-idp",
        ),
        (
            "admin: list identity providers",
            "/identity-provider/instances",
        ),
        (
            "admin: unknown identity provider",
            "/identity-provider/instances/no-such-idp",
        ),
        ("admin: realm", ""),
        (
            "admin: unknown client",
            "/clients/00000000-0000-0000-0000-000000000000",
        ),
        (
            "admin: unknown user",
            "/users/00000000-0000-0000-0000-000000000000",
        ),
        ("admin: unknown role", "/roles/no-such-role"),
    ];
    for (name, path) in reads {
        let call = AdminCall {
            name,
            method: Method::GET,
            path,
            body: None,
        };
        let (a, b) = (
            kc.admin_call(kc_token, &call, &kc_ids).await,
            cb.admin_call(cb_token, &call, &cb_ids).await,
        );
        report.compare(
            call.name,
            "status",
            &json!(a.status.as_u16()),
            &json!(b.status.as_u16()),
        );
        if a.status == 200 && b.status == 200 {
            report.compare(call.name, "members", &members(&a.body), &members(&b.body));
        }
    }
    let changes = [
        AdminCall {
            name: "admin: update client",
            method: Method::PUT,
            path: "/clients/{client}",
            body: Some(json!({"clientId": "crud-client", "description": "changed"})),
        },
        AdminCall {
            name: "admin: update user",
            method: Method::PUT,
            path: "/users/{user}",
            body: Some(json!({"firstName": "Crud"})),
        },
        AdminCall {
            name: "admin: reset password",
            method: Method::PUT,
            path: "/users/{user}/reset-password",
            body: Some(json!({"type": "password", "value": "crud-pass", "temporary": false})),
        },
        AdminCall {
            name: "admin: map realm role",
            method: Method::POST,
            path: "/users/{user}/role-mappings/realm",
            body: Some(json!([{"name": "crud-role"}])),
        },
        AdminCall {
            name: "admin: invalid JSON",
            method: Method::POST,
            path: "/users",
            body: Some(json!("not an object")),
        },
        AdminCall {
            name: "admin: update identity provider",
            method: Method::PUT,
            path: "/identity-provider/instances/crud-idp",
            body: Some(
                json!({"alias": "crud-idp", "providerId": "oidc", "enabled": false,
                              "config": idp_config()}),
            ),
        },
        AdminCall {
            name: "admin: delete identity provider",
            method: Method::DELETE,
            path: "/identity-provider/instances/crud-idp",
            body: None,
        },
        AdminCall {
            name: "admin: delete client scope",
            method: Method::DELETE,
            path: "/client-scopes/{scope}",
            body: None,
        },
        AdminCall {
            name: "admin: delete user",
            method: Method::DELETE,
            path: "/users/{user}",
            body: None,
        },
        AdminCall {
            name: "admin: delete client",
            method: Method::DELETE,
            path: "/clients/{client}",
            body: None,
        },
        AdminCall {
            name: "admin: delete deleted client",
            method: Method::DELETE,
            path: "/clients/{client}",
            body: None,
        },
    ];
    for call in &changes {
        let (a, b) = (
            kc.admin_call(kc_token, call, &kc_ids).await,
            cb.admin_call(cb_token, call, &cb_ids).await,
        );
        report.compare(
            call.name,
            "status",
            &json!(a.status.as_u16()),
            &json!(b.status.as_u16()),
        );
    }
}

/// The legacy (V1) model, against a Keycloak started with `token-exchange` and
/// `admin-fine-grained-authz:v1`: the token handling guide's steps (a client policy naming the
/// requester, management permissions on the target, the policy attached to the target's
/// `token-exchange` permission), then exchanges by the permitted client and by another.
pub async fn run_legacy(keycloak_base: &str, cambio: &TestServer, report: &mut Report) {
    use reqwest::Method;
    let kc = Peer::new(keycloak_base);
    let cb = Peer::new(&cambio.base);
    let realm: Value =
        serde_json::from_str(include_str!("oracle-realm.json")).expect("oracle-realm.json");
    let kc_admin = kc.admin_token("admin").await;
    let cb_admin = cb.admin_token(crate::ADMIN_PASSWORD).await;
    // Keycloak's V1 is a server feature; Cambio's realm switch stands for it (Keycloak keeps the
    // attribute and ignores it).
    let mut realm = realm;
    realm["attributes"] = json!({"cambio.legacyTokenExchange": "true"});
    let mut before_permissions = Vec::new();
    for (peer, token) in [(&kc, &kc_admin), (&cb, &cb_admin)] {
        let r = peer.import(token, &realm).await;
        assert_eq!(r.status, 201, "{}: {}", peer.base, r.text);
        // Before any permission exists: a public client exchanging its own token, and a
        // confidential one exchanging a token meant for it.
        let own = peer.alice(("public-legacy", None)).await.access_token();
        let public = peer
            .token(
                &[
                    ("grant_type", EXCHANGE),
                    ("client_id", "public-legacy"),
                    ("subject_token", &own),
                    ("subject_token_type", ACCESS_TYPE),
                    ("audience", "orders-api"),
                ],
                None,
            )
            .await;
        let subject = peer
            .alice(("subject-client", Some("subject-secret")))
            .await
            .access_token();
        let confidential = peer
            .token(
                &[
                    ("grant_type", EXCHANGE),
                    ("subject_token", &subject),
                    ("subject_token_type", ACCESS_TYPE),
                    ("audience", "orders-api"),
                ],
                Some(("billing-api", "billing-secret")),
            )
            .await;
        before_permissions.push((public, confidential));
    }
    compare_token_answers(
        report,
        "legacy exchange: public client, no permission yet",
        &before_permissions[0].0,
        &before_permissions[1].0,
    );
    compare_token_answers(
        report,
        "legacy exchange: confidential client, no permission yet",
        &before_permissions[0].1,
        &before_permissions[1].1,
    );
    let mut steps: Vec<(Reply, Reply)> = Vec::new();
    let mut answers = Vec::new();
    for (peer, token) in [(&kc, &kc_admin), (&cb, &cb_admin)] {
        let call = |method: Method, path: String, body: Option<Value>| {
            let mut request = peer
                .http
                .request(method, format!("{}/admin/realms/{REALM}{path}", peer.base))
                .bearer_auth(token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            async move { reply(request.send().await.unwrap()).await }
        };
        let uuid = |list: &Value| list[0]["id"].as_str().unwrap_or("").to_owned();
        let requester = uuid(
            &call(Method::GET, "/clients?clientId=plain-client".into(), None)
                .await
                .body,
        );
        let target = uuid(
            &call(Method::GET, "/clients?clientId=orders-api".into(), None)
                .await
                .body,
        );
        let management = uuid(
            &call(
                Method::GET,
                "/clients?clientId=realm-management".into(),
                None,
            )
            .await
            .body,
        );
        let authz = format!("/clients/{management}/authz/resource-server");
        // The guide's order: permissions on the target first (Keycloak makes the resource
        // server of realm-management then), the policy after.
        let permissions = call(
            Method::PUT,
            format!("/clients/{target}/management/permissions"),
            Some(json!({"enabled": true})),
        )
        .await;
        let policy = call(
            Method::POST,
            format!("{authz}/policy/client"),
            Some(json!({"name": "plain-may-exchange", "logic": "POSITIVE",
                        "decisionStrategy": "UNANIMOUS", "clients": [requester]})),
        )
        .await;
        let permission = permissions.body["scopePermissions"]["token-exchange"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let resource = permissions.body["resource"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let scopes = call(Method::GET, format!("{authz}/scope"), None).await;
        let scope = scopes.body.as_array().and_then(|l| {
            l.iter()
                .find(|s| s["name"] == "token-exchange")
                .and_then(|s| s["id"].as_str())
        });
        let attached = call(
            Method::PUT,
            format!("{authz}/permission/scope/{permission}"),
            Some(json!({
                "id": permission,
                "name": format!("token-exchange.permission.client.{target}"),
                "type": "scope", "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS",
                "resources": [resource], "policies": [policy.body["id"]], "scopes": [scope],
            })),
        )
        .await;
        steps.push((policy, permissions));
        steps.push((attached, scopes));
        // The exchanges: the permitted client, with and without offline_access; another client.
        let subject = peer
            .alice(("subject-client", Some("subject-secret")))
            .await
            .access_token();
        let exchange = |client: (&'static str, &'static str),
                        extra: &'static [(&'static str, &'static str)]| {
            let subject = subject.clone();
            async move {
                let mut form = vec![
                    ("grant_type", EXCHANGE),
                    ("subject_token", subject.as_str()),
                    ("subject_token_type", ACCESS_TYPE),
                    ("audience", "orders-api"),
                ];
                form.extend_from_slice(extra);
                peer.token(&form, Some(client)).await
            }
        };
        answers.push(vec![
            exchange(("plain-client", "plain-secret"), &[]).await,
            exchange(
                ("plain-client", "plain-secret"),
                &[("scope", "offline_access")],
            )
            .await,
            exchange(("billing-api", "billing-secret"), &[]).await,
        ]);
    }
    let names = [
        ("legacy: client policy", "legacy: management permissions"),
        (
            "legacy: permission attached",
            "legacy: authorization scopes",
        ),
    ];
    for (i, (a, b)) in [(&steps[0], &steps[2]), (&steps[1], &steps[3])]
        .into_iter()
        .enumerate()
    {
        let (first, second) = names[i];
        report.compare(
            first,
            "status",
            &json!(a.0.status.as_u16()),
            &json!(b.0.status.as_u16()),
        );
        report.compare(
            second,
            "status",
            &json!(a.1.status.as_u16()),
            &json!(b.1.status.as_u16()),
        );
    }
    report.compare(
        "legacy: management permissions",
        "scope permissions",
        &members(&steps[0].1.body["scopePermissions"]),
        &members(&steps[2].1.body["scopePermissions"]),
    );
    let cases = [
        "legacy exchange: permitted client",
        "legacy exchange: permitted client, offline_access",
        "legacy exchange: client without permission",
    ];
    for (i, name) in cases.iter().enumerate() {
        compare_token_answers(report, name, &answers[0][i], &answers[1][i]);
    }
}
