//! External identity providers end to end: a real IdP (tests/compat/external_idp.py, PyJWT)
//! serves its JWKS on 127.0.0.1 and mints tokens as a partner's IdP would; Cambio exchanges
//! them for local tokens through the alias grant (Tapkey's), `subject_issuer`, `provider`,
//! the issuer match and the JWT bearer grant, and refuses everything it should.
//!
//! Each test starts its own server and IdP. The IdP runs with the `.venv-test` Python (set up
//! by `scripts/install-test-deps.sh`); without it the tests are skipped locally and fail in CI.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::*;

const TAPKEY: &str = "http://tapkey.net/oauth/token_exchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
const REQUESTER: (&str, &str) = ("requester-client", "requester-secret");
const SUBJECT_CLIENT: (&str, &str) = ("subject-client", "subject-secret");
/// alice's subject at the partner IdP.
const EXT_ALICE: &str = "ext-alice";
/// The bound for answers involving a provider that hangs or floods: Cambio gives up on a
/// JWKS fetch after 5 s, so this is a correctness bound, not a performance measurement.
const BOUNDED: Duration = Duration::from_secs(15);

fn repo_root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.ancestors().nth(2).unwrap_or(crate_dir).to_owned()
}

/// The external IdP process; killed when dropped (it also exits when its stdin closes).
struct ExternalIdp {
    base: String,
    http: reqwest::Client,
    _child: tokio::process::Child,
}

impl ExternalIdp {
    /// Starts the IdP, or returns None (locally) when the test virtualenv is missing.
    async fn start() -> Option<ExternalIdp> {
        let root = repo_root();
        let python = root.join(".venv-test/bin/python");
        if !python.exists() {
            let notice = format!(
                "{} is missing: run scripts/install-test-deps.sh to set up the Python test clients",
                python.display()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{notice}");
            }
            eprintln!("SKIPPED external IdP test: {notice}");
            return None;
        }
        let mut child = tokio::process::Command::new(&python)
            .arg(root.join("tests/compat/external_idp.py"))
            .current_dir(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("the external IdP did not print its port within 30 s")
        .unwrap();
        let port: u16 = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the external IdP: {line:?}"));
        Some(ExternalIdp {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _child: child,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The issuer the IdP puts in tokens unless told otherwise.
    fn issuer(&self) -> String {
        self.url("/partner")
    }

    /// A token minted by the IdP (see the script for the parameters).
    async fn mint(&self, params: &[(&str, &str)]) -> String {
        let url = format!("{}?{}", self.url("/mint"), encode_form(params));
        let response = self.http.get(&url).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "mint {params:?}: {text}");
        text
    }

    /// A token for `sub` with the audience `cambio`, RS256 with the current key.
    async fn token(&self, sub: &str) -> String {
        self.mint(&[("sub", sub), ("aud", "cambio")]).await
    }

    /// Replaces the IdP's RSA key; returns the new kid.
    async fn rotate(&self) -> String {
        let body: Value = self
            .http
            .post(self.url("/rotate"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["kid"].as_str().unwrap().to_owned()
    }

    /// Makes /jwks hang (down) or answer again.
    async fn set_jwks_down(&self, down: bool) {
        let mode = if down { "down" } else { "up" };
        let response = self
            .http
            .post(self.url(&format!("/mode?jwks={mode}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    /// Requests received per path.
    async fn hits(&self) -> Value {
        self.http
            .get(self.url("/hits"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn hits_of(&self, path: &str) -> u64 {
        self.hits().await[path].as_u64().unwrap_or(0)
    }
}

/// A server trusting plain-HTTP JWKS on loopback, with this refetch interval.
async fn server(refetch: Duration) -> TestServer {
    let mut config = demo_config();
    config.allow_http_loopback_jwks = true;
    config.jwks_refetch_interval = refetch;
    TestServer::start_with(config).await
}

/// Admin API calls on the demo realm.
struct Admin<'a> {
    server: &'a TestServer,
    token: String,
}

impl<'a> Admin<'a> {
    async fn new(server: &'a TestServer) -> Admin<'a> {
        Admin {
            server,
            token: server.admin_token().await,
        }
    }

    /// A JSON call on `/admin/realms/demo{path}` (or an absolute `/admin...` path).
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let path = if path.starts_with("/admin") {
            path.to_owned()
        } else {
            format!("/admin/realms/demo{path}")
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .server
            .http
            .request(method, format!("{}{path}", self.server.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn user_id(&self, username: &str) -> String {
        let list = self
            .ok(&format!("/users?username={username}&exact=true"))
            .await;
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        list[0]["id"].as_str().unwrap().to_owned()
    }

    /// Users whose username is exactly `username`.
    async fn users_named(&self, username: &str) -> Vec<Value> {
        self.ok(&format!("/users?username={username}&exact=true"))
            .await
            .as_array()
            .unwrap()
            .clone()
    }

    async fn client_uuid(&self, client_id: &str) -> String {
        let list = self.ok(&format!("/clients?clientId={client_id}")).await;
        list[0]["id"].as_str().unwrap().to_owned()
    }

    /// Registers a provider; returns the status and body.
    async fn add_provider(&self, alias: &str, config: Value) -> (u16, Value) {
        self.call(
            "POST",
            "/identity-provider/instances",
            Some(json!({"alias": alias, "providerId": "oidc", "enabled": true, "config": config})),
        )
        .await
    }

    async fn must_add_provider(&self, alias: &str, config: Value) {
        let (status, body) = self.add_provider(alias, config).await;
        assert_eq!(status, 201, "adding provider {alias}: {body}");
    }

    /// Links a local user to an external subject at `alias`.
    async fn link(&self, user_id: &str, alias: &str, external: &str) {
        let (status, body) = self
            .call(
                "POST",
                &format!("/users/{user_id}/federated-identity/{alias}"),
                Some(json!({"userId": external, "userName": format!("{external}@{alias}")})),
            )
            .await;
        assert_eq!(status, 204, "linking {user_id} to {alias}: {body}");
    }
}

/// A provider configuration for `idp`: issuer `{idp}/{path}`, its /jwks, requester-client
/// allowed, audience `cambio`; `extra` overrides (null removes a key).
fn provider_config(idp: &ExternalIdp, path: &str, extra: Value) -> Value {
    let mut config = json!({
        "issuer": idp.url(path),
        "jwksUrl": idp.url("/jwks"),
        "cambio.allowedClients": "requester-client",
        "cambio.allowedAudiences": "cambio",
    });
    let map = config.as_object_mut().unwrap();
    for (key, value) in extra.as_object().unwrap() {
        if value.is_null() {
            map.remove(key);
        } else {
            map.insert(key.clone(), value.clone());
        }
    }
    config
}

/// A server, an IdP, the provider `partner` (issuer `{idp}/partner`, with `extra` config) and
/// alice linked to it as `ext-alice`.
struct Fixture {
    server: TestServer,
    idp: ExternalIdp,
    admin_token: String,
    alice: String,
}

impl Fixture {
    async fn start(refetch: Duration, extra: Value) -> Option<Fixture> {
        let idp = ExternalIdp::start().await?;
        let server = server(refetch).await;
        let admin = Admin::new(&server).await;
        admin
            .must_add_provider("partner", provider_config(&idp, "/partner", extra))
            .await;
        let alice = admin.user_id("alice").await;
        admin.link(&alice, "partner", EXT_ALICE).await;
        let admin_token = admin.token;
        Some(Fixture {
            server,
            idp,
            admin_token,
            alice,
        })
    }

    fn admin(&self) -> Admin<'_> {
        Admin {
            server: &self.server,
            token: self.admin_token.clone(),
        }
    }

    /// A token exchange by `client` naming the provider with `provider`.
    async fn exchange_as(
        &self,
        client: (&str, &str),
        token: &str,
        provider: &str,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut form = vec![
            ("grant_type", EXCHANGE),
            ("subject_token", token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("provider", provider),
        ];
        form.extend_from_slice(extra);
        self.server.token(&form, Some(client)).await
    }

    /// A token exchange by requester-client naming `partner`.
    async fn exchange(&self, token: &str) -> Reply {
        self.exchange_as(REQUESTER, token, "partner", &[]).await
    }
}

/// The `exp` of a JWT.
fn exp_of(jwt: &str) -> u64 {
    claims(jwt)["exp"].as_u64().unwrap()
}

/// Asserts a successful exchange for `user`: the local token names the user and the
/// requester, never outlives the external token, comes without refresh token, and has the
/// `issued_token_type` expected. Returns the access token's claims.
fn assert_local_token(
    reply: &Reply,
    user: &str,
    external: &str,
    issued_token_type: Option<&str>,
) -> Value {
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = &reply.body;
    assert_eq!(body["token_type"], "Bearer", "{}", reply.text);
    assert!(body.get("refresh_token").is_none(), "{}", reply.text);
    assert_eq!(body["refresh_expires_in"], 0, "{}", reply.text);
    assert_eq!(
        body["issued_token_type"].as_str(),
        issued_token_type,
        "{}",
        reply.text
    );
    let c = claims(&reply.access_token());
    assert_eq!(c["sub"], user, "{c}");
    assert_eq!(c["azp"], "requester-client", "{c}");
    let external_exp = exp_of(external);
    let exp = c["exp"].as_u64().unwrap();
    assert!(exp <= external_exp, "exp {exp} > external {external_exp}");
    // Measured from the local token's issue time, not from now: the answer may be old.
    let iat = c["iat"].as_u64().unwrap();
    let expires_in = body["expires_in"].as_u64().unwrap();
    assert!(
        expires_in > 0 && expires_in <= external_exp.saturating_sub(iat),
        "expires_in {expires_in}, iat {iat}, external exp {external_exp}"
    );
    c
}

fn assert_invalid_token(reply: &Reply) {
    reply.assert_error(400, "invalid_request", "Invalid token");
}

fn assert_refused(reply: &Reply) {
    reply.assert_error(403, "access_denied", "Client not allowed to exchange");
}

/// The JWKS refetch interval of most tests: short, so that none waits long.
const SHORT_REFETCH: Duration = Duration::from_secs(1);

/// Tapkey's request: its own grant type, the short token type, no `provider` unless given.
async fn tapkey(
    server: &TestServer,
    client: (&str, &str),
    token: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let mut form = vec![
        ("grant_type", TAPKEY),
        ("subject_token_type", "jwt"),
        ("subject_token", token),
    ];
    form.extend_from_slice(extra);
    server.token(&form, Some(client)).await
}

#[tokio::test]
async fn tapkey_alias_grant() {
    let Some(f) = Fixture::start(SHORT_REFETCH, json!({"cambio.grantTypes": TAPKEY})).await else {
        return;
    };
    let external = f.idp.token(EXT_ALICE).await;
    let reply = tapkey(&f.server, REQUESTER, &external, &[("scope", "profile")]).await;
    let c = assert_local_token(&reply, &f.alice, &external, Some(ACCESS_TOKEN_TYPE));
    assert_eq!(c["iss"], f.server.realm_url("demo"));
    assert_eq!(c["preferred_username"], "alice", "{c}");
    // A real token of the realm, not just a well-formed one.
    let introspected = f.server.introspect(&reply.access_token()).await;
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["sub"], f.alice.as_str());

    // Naming the provider, and the short requested type, work too.
    let reply = tapkey(
        &f.server,
        REQUESTER,
        &external,
        &[
            ("scope", "profile"),
            ("provider", "partner"),
            ("requested_token_type", "access_token"),
        ],
    )
    .await;
    assert_local_token(&reply, &f.alice, &external, Some(ACCESS_TOKEN_TYPE));

    // The alias grant needs a scope, and never gives a refresh token.
    tapkey(&f.server, REQUESTER, &external, &[])
        .await
        .assert_error(400, "invalid_request", "Parameter 'scope' required");
    tapkey(
        &f.server,
        REQUESTER,
        &external,
        &[
            ("scope", "profile"),
            ("requested_token_type", "refresh_token"),
        ],
    )
    .await
    .assert_error(
        400,
        "invalid_request",
        "Refresh tokens are not issued for external tokens",
    );
    // A client the provider does not allow.
    let scope = [("scope", "profile")];
    assert_refused(&tapkey(&f.server, SUBJECT_CLIENT, &external, &scope).await);
    // A forged token under the alias grant.
    let forged = f.idp.mint(&[("aud", "cambio"), ("alg", "none")]).await;
    assert_invalid_token(&tapkey(&f.server, REQUESTER, &forged, &scope).await);
}

#[tokio::test]
async fn provider_selection_and_audit_events() {
    let Some(f) = Fixture::start(SHORT_REFETCH, json!({})).await else {
        return;
    };
    let external = f.idp.token(EXT_ALICE).await;

    // Keycloak's `subject_issuer` with the JWT token type.
    let reply = f
        .server
        .exchange(
            &external,
            &[
                ("subject_issuer", "partner"),
                ("subject_token_type", JWT_TOKEN_TYPE),
            ],
        )
        .await;
    assert_local_token(&reply, &f.alice, &external, Some(ACCESS_TOKEN_TYPE));

    // Tapkey's `provider` with the access token type.
    let reply = f.exchange(&external).await;
    assert_local_token(&reply, &f.alice, &external, Some(ACCESS_TOKEN_TYPE));

    // Neither: the token's issuer selects the provider.
    let reply = f
        .server
        .exchange(&external, &[("subject_token_type", ACCESS_TOKEN_TYPE)])
        .await;
    assert_local_token(&reply, &f.alice, &external, Some(ACCESS_TOKEN_TYPE));

    // Both, disagreeing.
    f.server
        .exchange(
            &external,
            &[
                ("provider", "partner"),
                ("subject_issuer", "other"),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
            ],
        )
        .await
        .assert_error(
            400,
            "invalid_request",
            "'provider' and 'subject_issuer' disagree",
        );
    // Token types: required, and no refresh or ID tokens come out.
    f.server
        .exchange(&external, &[("provider", "partner")])
        .await
        .assert_error(
            400,
            "invalid_request",
            "Parameter 'subject_token_type' required",
        );
    f.exchange_as(
        REQUESTER,
        &external,
        "partner",
        &[("requested_token_type", REFRESH_TOKEN_TYPE)],
    )
    .await
    .assert_error(
        400,
        "invalid_request",
        "Refresh tokens are not issued for external tokens",
    );
    f.exchange_as(
        REQUESTER,
        &external,
        "partner",
        &[("requested_token_type", ID_TOKEN_TYPE)],
    )
    .await
    .assert_error(400, "invalid_request", "requested_token_type unsupported");
    // An unknown alias gets the answer of a forbidden one.
    assert_refused(&f.exchange_as(REQUESTER, &external, "nope", &[]).await);

    // Two providers claiming the issuer: the request must name one.
    let admin = f.admin();
    admin
        .must_add_provider(
            "partner-too",
            provider_config(&f.idp, "/partner", json!({})),
        )
        .await;
    assert_invalid_token(
        &f.server
            .exchange(&external, &[("subject_token_type", ACCESS_TOKEN_TYPE)])
            .await,
    );
    let reply = f.exchange(&external).await;
    assert_local_token(&reply, &f.alice, &external, Some(ACCESS_TOKEN_TYPE));

    // Audit events name the provider and the external subject.
    let deadline = Instant::now() + Duration::from_secs(10);
    let events = loop {
        let events = admin.ok("/events?type=TOKEN_EXCHANGE&max=100").await;
        let list = events.as_array().unwrap().clone();
        if list.len() >= 4 || Instant::now() > deadline {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(events.len(), 4, "{events:?}");
    for event in &events {
        assert_eq!(event["type"], "TOKEN_EXCHANGE");
        assert_eq!(event["clientId"], "requester-client", "{event}");
        assert_eq!(event["userId"], f.alice.as_str(), "{event}");
        assert_eq!(event["details"]["provider"], "partner", "{event}");
        assert_eq!(event["details"]["external_subject"], EXT_ALICE, "{event}");
    }
}

#[tokio::test]
async fn provisioning_linked_only_and_create() {
    let Some(f) = Fixture::start(
        SHORT_REFETCH,
        json!({"cambio.usernameClaim": "preferred_username"}),
    )
    .await
    else {
        return;
    };
    let admin = f.admin();
    let profile = json!({"preferred_username": "carol", "email": "carol@partner.example", "roles": ["staff", "guest"]}).to_string();
    let carol = f
        .idp
        .mint(&[
            ("sub", "ext-carol"),
            ("aud", "cambio"),
            ("claims", &profile),
        ])
        .await;

    // Linked-only (the default): an unknown external user is refused and nobody is created.
    f.exchange(&carol).await.assert_error(
        400,
        "invalid_request",
        "User is not linked to identity provider partner",
    );
    assert!(admin.users_named("carol").await.is_empty());
    assert!(admin.users_named("partner.ext-carol").await.is_empty());

    // A provider that creates users on first use, mapping an external role.
    let (status, body) = admin
        .call("POST", "/roles", Some(json!({"name": "partner-staff"})))
        .await;
    assert_eq!(status, 201, "{body}");
    admin
        .must_add_provider(
            "jit",
            provider_config(
                &f.idp,
                "/jit",
                json!({
                    "cambio.provisioning": "create",
                    "cambio.usernameClaim": "preferred_username",
                    "cambio.emailClaim": "email",
                    "cambio.rolesClaim": "roles",
                    "cambio.roleMappings": "staff=partner-staff",
                }),
            ),
        )
        .await;
    let external = f
        .idp
        .mint(&[
            ("iss", &f.idp.url("/jit")),
            ("sub", "ext-carol"),
            ("aud", "cambio"),
            ("claims", &profile),
        ])
        .await;
    let reply = f.exchange_as(REQUESTER, &external, "jit", &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let created = admin.users_named("carol").await;
    assert_eq!(created.len(), 1, "{created:?}");
    let carol_id = created[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(created[0]["email"], "carol@partner.example");
    let c = assert_local_token(&reply, &carol_id, &external, Some(ACCESS_TOKEN_TYPE));
    let realm_roles = strings(&c["realm_access"]["roles"]);
    assert!(
        realm_roles.contains(&"partner-staff".to_owned()),
        "{realm_roles:?}"
    );
    let links = admin
        .ok(&format!("/users/{carol_id}/federated-identity"))
        .await;
    assert_eq!(
        links,
        json!([{"identityProvider": "jit", "userId": "ext-carol", "userName": "carol"}])
    );

    // The second time, the same user: no second account.
    let again = f.exchange_as(REQUESTER, &external, "jit", &[]).await;
    assert_local_token(&again, &carol_id, &external, Some(ACCESS_TOKEN_TYPE));
    assert_eq!(admin.users_named("carol").await.len(), 1);

    // Another external user whose username is taken locally is refused, not merged.
    let taken = json!({"preferred_username": "alice"}).to_string();
    let impostor = f
        .idp
        .mint(&[
            ("iss", &f.idp.url("/jit")),
            ("sub", "ext-mallory"),
            ("aud", "cambio"),
            ("claims", &taken),
        ])
        .await;
    f.exchange_as(REQUESTER, &impostor, "jit", &[])
        .await
        .assert_error(
            400,
            "invalid_request",
            "Cannot create a local user: the username is taken",
        );
    // Still the linked-only provider refuses carol.
    f.exchange(&carol).await.assert_error(
        400,
        "invalid_request",
        "User is not linked to identity provider partner",
    );
}

#[tokio::test]
async fn lifetime_is_capped_and_expiry_enforced() {
    let Some(f) = Fixture::start(SHORT_REFETCH, json!({"cambio.maxLifetime": "60"})).await else {
        return;
    };
    // A long-lived external token: the provider's cap wins.
    let long = f
        .idp
        .mint(&[("sub", EXT_ALICE), ("aud", "cambio"), ("exp_in", "3600")])
        .await;
    let reply = f.exchange(&long).await;
    let c = assert_local_token(&reply, &f.alice, &long, Some(ACCESS_TOKEN_TYPE));
    let expires_in = reply.body["expires_in"].as_u64().unwrap();
    assert!(expires_in <= 60, "expires_in {expires_in}");
    let lifetime = c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap();
    assert!(lifetime <= 60, "lifetime {lifetime}");

    // A short-lived one: the local token does not outlive it.
    let short = f
        .idp
        .mint(&[("sub", EXT_ALICE), ("aud", "cambio"), ("exp_in", "20")])
        .await;
    let reply = f.exchange(&short).await;
    let c = assert_local_token(&reply, &f.alice, &short, Some(ACCESS_TOKEN_TYPE));
    assert!(reply.body["expires_in"].as_u64().unwrap() <= 20);
    assert!(c["exp"].as_u64().unwrap() <= exp_of(&short));

    // Expired beyond the leeway, or without exp at all.
    let expired = f
        .idp
        .mint(&[("sub", EXT_ALICE), ("aud", "cambio"), ("exp_in", "-300")])
        .await;
    assert_invalid_token(&f.exchange(&expired).await);
    // Expired, but within the 30 s leeway for other clocks: nothing left to give.
    let just_expired = f
        .idp
        .mint(&[("sub", EXT_ALICE), ("aud", "cambio"), ("exp_in", "-10")])
        .await;
    f.exchange(&just_expired)
        .await
        .assert_error(400, "invalid_request", "External token expired");
    let no_exp = json!({"exp": null}).to_string();
    let forever = f
        .idp
        .mint(&[("sub", EXT_ALICE), ("aud", "cambio"), ("claims", &no_exp)])
        .await;
    assert_invalid_token(&f.exchange(&forever).await);
}

#[tokio::test]
async fn audience_algorithm_and_header_attacks_are_refused() {
    let Some(f) = Fixture::start(SHORT_REFETCH, json!({"cambio.allowedAlgorithms": "RS256"})).await
    else {
        return;
    };
    let admin = f.admin();
    // A second provider on the same IdP: ES256 only, and no audience list, so the token
    // must name the requesting client (Keycloak #51004).
    admin
        .must_add_provider(
            "partner-es",
            provider_config(
                &f.idp,
                "/es",
                json!({"cambio.allowedAlgorithms": "ES256", "cambio.allowedAudiences": null}),
            ),
        )
        .await;
    admin.link(&f.alice, "partner-es", EXT_ALICE).await;
    let es_issuer = f.idp.url("/es");

    // The good tokens work.
    let good = f.idp.token(EXT_ALICE).await;
    assert_local_token(
        &f.exchange(&good).await,
        &f.alice,
        &good,
        Some(ACCESS_TOKEN_TYPE),
    );
    let es = f
        .idp
        .mint(&[
            ("iss", &es_issuer),
            ("aud", "requester-client"),
            ("alg", "ES256"),
        ])
        .await;
    let reply = f.exchange_as(REQUESTER, &es, "partner-es", &[]).await;
    assert_local_token(&reply, &f.alice, &es, Some(ACCESS_TOKEN_TYPE));

    let mut refused: Vec<(&str, String)> = Vec::new();
    // Audiences.
    for aud in [&[][..], &["someone-else"][..], &["requester-client"][..]] {
        let mut params = vec![("sub", EXT_ALICE)];
        params.extend(aud.iter().map(|a| ("aud", *a)));
        refused.push(("partner", f.idp.mint(&params).await));
    }
    refused.push((
        "partner-es",
        f.idp
            .mint(&[("iss", &es_issuer), ("aud", "cambio"), ("alg", "ES256")])
            .await,
    ));
    // Algorithms: a key in the JWKS, but an algorithm the provider does not allow.
    refused.push((
        "partner",
        f.idp.mint(&[("aud", "cambio"), ("alg", "ES256")]).await,
    ));
    refused.push((
        "partner-es",
        f.idp
            .mint(&[("iss", &es_issuer), ("aud", "requester-client")])
            .await,
    ));
    // `none`, and HS256 keyed with the provider's public key.
    refused.push((
        "partner",
        f.idp.mint(&[("aud", "cambio"), ("alg", "none")]).await,
    ));
    refused.push((
        "partner",
        f.idp
            .mint(&[("aud", "cambio"), ("alg", "HS256-public")])
            .await,
    ));
    // The attacker's key in a `jwk` header, or at a `jku` URL, with the genuine kid.
    refused.push((
        "partner",
        f.idp.mint(&[("aud", "cambio"), ("jwk", "1")]).await,
    ));
    let evil = f.idp.url("/evil");
    refused.push((
        "partner",
        f.idp.mint(&[("aud", "cambio"), ("jku", &evil)]).await,
    ));
    // Another issuer, and a genuine signature over another payload.
    refused.push((
        "partner",
        f.idp
            .mint(&[("iss", "http://127.0.0.1:1/elsewhere"), ("aud", "cambio")])
            .await,
    ));
    let bob = f.idp.token("ext-bob").await;
    let parts: Vec<&str> = good.split('.').collect();
    let spliced = format!(
        "{}.{}.{}",
        parts[0],
        bob.split('.').nth(1).unwrap(),
        parts[2]
    );
    refused.push(("partner", spliced));
    refused.push(("partner", "not-a-jwt".to_owned()));
    // Larger than the 16 KiB Cambio decodes.
    let padding = json!({"padding": "x".repeat(20 * 1024)}).to_string();
    refused.push((
        "partner",
        f.idp.mint(&[("aud", "cambio"), ("claims", &padding)]).await,
    ));

    for (provider, token) in &refused {
        let reply = f.exchange_as(REQUESTER, token, provider, &[]).await;
        assert_eq!(
            (reply.status.as_u16(), reply.error(), reply.description()),
            (400, "invalid_request", "Invalid token"),
            "{provider} accepted or misreported {token} (header {}): {}",
            token
                .split('.')
                .next()
                .and_then(|h| {
                    use base64::Engine as _;
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(h)
                        .ok()
                })
                .map(|h| String::from_utf8_lossy(&h).into_owned())
                .unwrap_or_default(),
            reply.text
        );
    }
    // Nothing in a token's header made Cambio fetch anything.
    assert_eq!(f.idp.hits_of("/evil").await, 0, "{}", f.idp.hits().await);
}

#[tokio::test]
async fn client_allow_list_and_idp_permission() {
    let Some(f) = Fixture::start(SHORT_REFETCH, json!({})).await else {
        return;
    };
    let admin = f.admin();
    let external = f.idp.token(EXT_ALICE).await;
    // partner allows requester-client only.
    assert_local_token(
        &f.exchange(&external).await,
        &f.alice,
        &external,
        Some(ACCESS_TOKEN_TYPE),
    );
    assert_refused(
        &f.exchange_as(SUBJECT_CLIENT, &external, "partner", &[])
            .await,
    );

    // A provider without allow-list: nobody, until its V1 permission says so.
    admin
        .must_add_provider(
            "perm",
            provider_config(&f.idp, "/perm", json!({"cambio.allowedClients": null})),
        )
        .await;
    admin.link(&f.alice, "perm", EXT_ALICE).await;
    let perm_token = f
        .idp
        .mint(&[("iss", &f.idp.url("/perm")), ("aud", "cambio")])
        .await;
    assert_refused(&f.exchange_as(REQUESTER, &perm_token, "perm", &[]).await);

    let (status, perms) = admin
        .call(
            "PUT",
            "/identity-provider/instances/perm/management/permissions",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{perms}");
    assert_eq!(perms["enabled"], true);
    let permission_id = perms["scopePermissions"]["token-exchange"]
        .as_str()
        .unwrap()
        .to_owned();
    let resource_id = perms["resource"].as_str().unwrap().to_owned();
    // Enabled but without policy: still refused.
    assert_refused(&f.exchange_as(REQUESTER, &perm_token, "perm", &[]).await);

    let perm_internal_id = admin.ok("/identity-provider/instances/perm").await["internalId"]
        .as_str()
        .unwrap()
        .to_owned();
    let requester = admin.client_uuid("requester-client").await;
    let rm = admin.client_uuid("realm-management").await;
    let authz = format!("/clients/{rm}/authz/resource-server");
    let (status, policy) = admin
        .call(
            "POST",
            &format!("{authz}/policy"),
            Some(json!({"name": "requester-may-exchange", "type": "client", "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS", "config": {"clients": [requester]}})),
        )
        .await;
    assert_eq!(status, 201, "{policy}");
    let policy_id = policy["id"].as_str().unwrap().to_owned();
    let scopes = admin.ok(&format!("{authz}/scope")).await;
    let scope_id = scopes
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "token-exchange")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = admin
        .call(
            "PUT",
            &format!("{authz}/permission/scope/{permission_id}"),
            Some(json!({
                "id": permission_id,
                "name": format!("token-exchange.permission.idp.{perm_internal_id}"),
                "type": "scope", "logic": "POSITIVE", "decisionStrategy": "UNANIMOUS",
                "resources": [resource_id], "policies": [policy_id], "scopes": [scope_id],
            })),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let reply = f.exchange_as(REQUESTER, &perm_token, "perm", &[]).await;
    assert_local_token(&reply, &f.alice, &perm_token, Some(ACCESS_TOKEN_TYPE));
    assert_refused(
        &f.exchange_as(SUBJECT_CLIENT, &perm_token, "perm", &[])
            .await,
    );

    // Turning the management permissions off takes the permission away.
    let (status, perms) = admin
        .call(
            "PUT",
            "/identity-provider/instances/perm/management/permissions",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!((status, &perms["enabled"]), (200, &json!(false)), "{perms}");
    assert_refused(&f.exchange_as(REQUESTER, &perm_token, "perm", &[]).await);

    // A disabled provider refuses everyone, with the same answer.
    let (status, body) = admin
        .call(
            "PUT",
            "/identity-provider/instances/partner",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_refused(&f.exchange(&external).await);
}

#[tokio::test]
async fn jwt_bearer_grant() {
    let Some(f) = Fixture::start(SHORT_REFETCH, json!({})).await else {
        return;
    };
    let bearer = |assertion: String| {
        let server = &f.server;
        async move {
            server
                .token(
                    &[("grant_type", JWT_BEARER), ("assertion", &assertion)],
                    Some(REQUESTER),
                )
                .await
        }
    };
    let external = f.idp.token(EXT_ALICE).await;
    let reply = bearer(external.clone()).await;
    // RFC 7523: a plain token response, no issued_token_type.
    assert_local_token(&reply, &f.alice, &external, None);

    let unlinked = f.idp.token("ext-nobody").await;
    bearer(unlinked).await.assert_error(
        400,
        "invalid_grant",
        "User is not linked to identity provider partner",
    );
    let wrong_audience = f
        .idp
        .mint(&[("sub", EXT_ALICE), ("aud", "someone-else")])
        .await;
    bearer(wrong_audience)
        .await
        .assert_error(400, "invalid_grant", "Invalid token");
    let none = f.idp.mint(&[("aud", "cambio"), ("alg", "none")]).await;
    bearer(none)
        .await
        .assert_error(400, "invalid_grant", "Invalid token");
    let unknown_issuer = f
        .idp
        .mint(&[("iss", "https://unknown.example"), ("aud", "cambio")])
        .await;
    bearer(unknown_issuer)
        .await
        .assert_error(400, "invalid_grant", "Invalid token");
    assert_refused(
        &f.server
            .token(
                &[("grant_type", JWT_BEARER), ("assertion", &external)],
                Some(SUBJECT_CLIENT),
            )
            .await,
    );
}

#[tokio::test]
async fn key_rotation_at_the_provider() {
    let Some(f) = Fixture::start(Duration::from_secs(1), json!({})).await else {
        return;
    };
    let key1 = f.idp.token(EXT_ALICE).await;
    let kid1 = header(&key1)["kid"].as_str().unwrap().to_owned();
    assert_local_token(
        &f.exchange(&key1).await,
        &f.alice,
        &key1,
        Some(ACCESS_TOKEN_TYPE),
    );
    assert_eq!(f.idp.hits_of("/jwks").await, 1);

    // The provider goes down: cached keys keep working, without asking it.
    f.idp.set_jwks_down(true).await;
    let again = f.idp.token(EXT_ALICE).await;
    let started = Instant::now();
    assert_local_token(
        &f.exchange(&again).await,
        &f.alice,
        &again,
        Some(ACCESS_TOKEN_TYPE),
    );
    assert!(started.elapsed() < BOUNDED);
    assert_eq!(f.idp.hits_of("/jwks").await, 1);
    f.idp.set_jwks_down(false).await;

    // The provider rotates: once the refetch interval has passed, the new key's unknown kid
    // makes Cambio fetch the JWKS again.
    let kid2 = f.idp.rotate().await;
    assert_ne!(kid1, kid2);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let key2 = f.idp.token(EXT_ALICE).await;
    assert_eq!(header(&key2)["kid"], kid2.as_str());
    assert_local_token(
        &f.exchange(&key2).await,
        &f.alice,
        &key2,
        Some(ACCESS_TOKEN_TYPE),
    );
    assert_eq!(f.idp.hits_of("/jwks").await, 2);

    // Key 1 left the JWKS: its tokens, still unexpired, are refused.
    assert!(exp_of(&key1) > now());
    assert_invalid_token(&f.exchange(&key1).await);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_invalid_token(&f.exchange(&key1).await);
    // And key 2 keeps working.
    assert_local_token(
        &f.exchange(&key2).await,
        &f.alice,
        &key2,
        Some(ACCESS_TOKEN_TYPE),
    );
}

#[tokio::test]
async fn hanging_provider_fails_in_bounded_time() {
    let Some(f) = Fixture::start(SHORT_REFETCH, json!({})).await else {
        return;
    };
    let admin = f.admin();
    admin
        .must_add_provider(
            "slow",
            provider_config(&f.idp, "/slow", json!({"jwksUrl": f.idp.url("/jwks-hang")})),
        )
        .await;
    admin.link(&f.alice, "slow", EXT_ALICE).await;
    let slow = f
        .idp
        .mint(&[("iss", &f.idp.url("/slow")), ("aud", "cambio")])
        .await;
    let good = f.idp.token(EXT_ALICE).await;

    let started = Instant::now();
    let (hung, fine) = tokio::join!(
        f.exchange_as(REQUESTER, &slow, "slow", &[]),
        f.exchange(&good),
    );
    assert_invalid_token(&hung);
    assert!(
        started.elapsed() < BOUNDED,
        "the exchange took {:?}",
        started.elapsed()
    );
    assert!(f.idp.hits_of("/jwks-hang").await >= 1);
    // Other providers were not held up.
    assert_local_token(&fine, &f.alice, &good, Some(ACCESS_TOKEN_TYPE));
}

#[tokio::test]
async fn oversized_jwks_is_refused() {
    let Some(f) = Fixture::start(SHORT_REFETCH, json!({})).await else {
        return;
    };
    let admin = f.admin();
    // 10 MiB announced by Content-Length, and 10 MiB streamed without a length.
    for (alias, path) in [("huge", "/jwks-huge"), ("huge-stream", "/jwks-huge-stream")] {
        admin
            .must_add_provider(
                alias,
                provider_config(
                    &f.idp,
                    &format!("/{alias}"),
                    json!({"jwksUrl": f.idp.url(path)}),
                ),
            )
            .await;
        admin.link(&f.alice, alias, EXT_ALICE).await;
        let token = f
            .idp
            .mint(&[("iss", &f.idp.url(&format!("/{alias}"))), ("aud", "cambio")])
            .await;
        let started = Instant::now();
        let reply = f.exchange_as(REQUESTER, &token, alias, &[]).await;
        assert_invalid_token(&reply);
        assert!(
            started.elapsed() < BOUNDED,
            "{alias} took {:?}",
            started.elapsed()
        );
        assert_eq!(f.idp.hits_of(path).await, 1);
    }
    // The server still answers, and still exchanges good tokens.
    let discovery = f
        .server
        .get(
            &format!(
                "{}/.well-known/openid-configuration",
                f.server.realm_url("demo")
            ),
            None,
        )
        .await;
    assert_eq!(discovery.status, 200);
    let good = f.idp.token(EXT_ALICE).await;
    assert_local_token(
        &f.exchange(&good).await,
        &f.alice,
        &good,
        Some(ACCESS_TOKEN_TYPE),
    );
}

#[tokio::test]
async fn unknown_kid_flood_fetches_at_most_once_per_interval() {
    let interval = Duration::from_secs(5);
    let Some(f) = Fixture::start(interval, json!({})).await else {
        return;
    };
    let mut tokens = Vec::new();
    for i in 0..30 {
        let kid = format!("unknown-{i}-{:x}", now());
        tokens.push(
            f.idp
                .mint(&[("sub", EXT_ALICE), ("aud", "cambio"), ("kid", &kid)])
                .await,
        );
    }
    let good = f.idp.token(EXT_ALICE).await;
    assert_eq!(f.idp.hits_of("/jwks").await, 0);

    // Thirty unknown kids at once, on a cold cache.
    let started = Instant::now();
    let url = f.server.oidc("demo", "token");
    let mut flood = tokio::task::JoinSet::new();
    for token in &tokens {
        let http = f.server.http.clone();
        let url = url.clone();
        let body = encode_form(&[
            ("grant_type", EXCHANGE),
            ("subject_token", token),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("provider", "partner"),
        ]);
        flood.spawn(async move {
            let response = http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", basic_header(REQUESTER.0, REQUESTER.1))
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body)
        });
    }
    while let Some(result) = flood.join_next().await {
        let (status, body) = result.unwrap();
        assert_eq!(
            (status, &body["error_description"]),
            (400, &json!("Invalid token")),
            "{body}"
        );
    }
    // The known kid still works, from the keys that one fetch brought.
    assert_local_token(
        &f.exchange(&good).await,
        &f.alice,
        &good,
        Some(ACCESS_TOKEN_TYPE),
    );
    // A second wave, sequential this time.
    for token in &tokens {
        assert_invalid_token(&f.exchange(token).await);
    }
    let hits = f.idp.hits_of("/jwks").await;
    // At most one fetch per interval begun: one, unless this machine took over 5 s.
    let allowed = 1 + started.elapsed().as_secs() / interval.as_secs();
    assert!(
        (1..=allowed).contains(&hits),
        "{hits} JWKS fetches in {:?}",
        started.elapsed()
    );
    assert_local_token(
        &f.exchange(&good).await,
        &f.alice,
        &good,
        Some(ACCESS_TOKEN_TYPE),
    );
}

#[tokio::test]
async fn admin_validation_and_deletion() {
    let Some(f) = Fixture::start(SHORT_REFETCH, json!({"cambio.grantTypes": TAPKEY})).await else {
        return;
    };
    let admin = f.admin();
    let base = provider_config(&f.idp, "/other", json!({}));
    let with = |extra: Value| {
        let mut config = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                config.as_object_mut().unwrap().remove(k);
            } else {
                config[k] = v.clone();
            }
        }
        config
    };
    for (config, message) in [
        (with(json!({"issuer": null})), "config.issuer is required"),
        (
            with(json!({"jwksUrl": "http://idp.example/jwks"})),
            "JWKS URL refused: plain HTTP is allowed only to loopback addresses",
        ),
        (
            with(json!({"validateSignature": "false"})),
            "config.validateSignature=false is not supported: signatures are always validated",
        ),
        (
            with(json!({"cambio.allowedAlgorithms": "RS256 HS256"})),
            "unsupported algorithm HS256",
        ),
    ] {
        let (status, body) = admin.add_provider("other", config.clone()).await;
        assert_eq!(
            (status, body["errorMessage"].as_str()),
            (400, Some(message)),
            "{config}: {body}"
        );
    }
    let (status, body) = admin
        .add_provider("partner", provider_config(&f.idp, "/partner", json!({})))
        .await;
    assert_eq!(
        (status, body["errorMessage"].as_str()),
        (409, Some("Identity Provider partner already exists")),
        "{body}"
    );

    // Reading back.
    let list = admin.ok("/identity-provider/instances").await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["alias"], "partner");
    let one = admin.ok("/identity-provider/instances/partner").await;
    assert_eq!(one["alias"], "partner");
    assert_eq!(one["providerId"], "oidc");
    assert_eq!(one["enabled"], true);
    assert_eq!(one["config"]["issuer"], f.idp.issuer());
    assert_eq!(one["config"]["jwksUrl"], f.idp.url("/jwks"));
    assert_eq!(one["config"]["cambio.grantTypes"], TAPKEY);

    // Deleted: exchanges naming it get the answer an unknown alias gets.
    let external = f.idp.token(EXT_ALICE).await;
    assert_local_token(
        &f.exchange(&external).await,
        &f.alice,
        &external,
        Some(ACCESS_TOKEN_TYPE),
    );
    let (status, _) = admin
        .call("DELETE", "/identity-provider/instances/partner", None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = admin
        .call("GET", "/identity-provider/instances/partner", None)
        .await;
    assert_eq!(status, 404);
    let deleted = f.exchange(&external).await;
    let unknown = f
        .exchange_as(REQUESTER, &external, "never-existed", &[])
        .await;
    assert_refused(&deleted);
    assert_refused(&unknown);
    assert_eq!(deleted.text, unknown.text);
    // Its links went with it: a provider registered again under the alias, maybe for
    // another issuer, does not inherit them.
    let links = admin
        .ok(&format!("/users/{}/federated-identity", f.alice))
        .await;
    assert_eq!(links, json!([]));
    admin
        .must_add_provider("partner", provider_config(&f.idp, "/partner", json!({})))
        .await;
    f.exchange(&external).await.assert_error(
        400,
        "invalid_request",
        "User is not linked to identity provider partner",
    );
    // Its alias grant type is gone with it.
    f.server
        .token(
            &[
                ("grant_type", TAPKEY),
                ("subject_token_type", "jwt"),
                ("subject_token", &external),
                ("scope", "profile"),
            ],
            Some(REQUESTER),
        )
        .await
        .assert_error(400, "unsupported_grant_type", "Unsupported grant_type");
}

#[tokio::test]
async fn external_tokens_are_not_admin_credentials() {
    let Some(f) = Fixture::start(SHORT_REFETCH, json!({})).await else {
        return;
    };
    let admin = f.admin();
    // alice administers the realm, and signs in through the partner too.
    let management = admin.client_uuid("realm-management").await;
    let role = admin
        .ok(&format!("/clients/{management}/roles/realm-admin"))
        .await;
    let (status, body) = admin
        .call(
            "POST",
            &format!("/users/{}/role-mappings/clients/{management}", f.alice),
            Some(json!([{"id": role["id"], "name": "realm-admin"}])),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let external = f.idp.token(EXT_ALICE).await;
    let local = f.exchange(&external).await.access_token();
    assert_eq!(claims(&local)["exchanged_from"], json!(["idp:partner"]));
    let as_alice = Admin {
        server: &f.server,
        token: local,
    };
    let (status, _) = as_alice.call("GET", "/users", None).await;
    assert_eq!(status, 401);
    // The same through the JWT bearer grant.
    let assertion = f
        .idp
        .mint(&[
            ("sub", EXT_ALICE),
            ("aud", "cambio"),
            ("iss", &f.idp.url("/partner")),
        ])
        .await;
    let reply = f
        .server
        .token(
            &[("grant_type", JWT_BEARER), ("assertion", &assertion)],
            Some(REQUESTER),
        )
        .await;
    let as_alice = Admin {
        server: &f.server,
        token: reply.access_token(),
    };
    let (status, _) = as_alice.call("GET", "/users", None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_link_needs_an_existing_provider() {
    let Some(f) = Fixture::start(SHORT_REFETCH, json!({})).await else {
        return;
    };
    let admin = f.admin();
    let (status, body) = admin
        .call(
            "POST",
            "/users",
            Some(json!({"username": "boss", "enabled": true})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let boss = admin.user_id("boss").await;
    // Whoever registered `ghost` later would sign in as boss: the link is refused.
    let (status, body) = admin
        .call(
            "POST",
            &format!("/users/{boss}/federated-identity/ghost"),
            Some(json!({"userId": "ext-boss", "userName": "boss"})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = admin
        .call(
            "POST",
            &format!("/users/{boss}/federated-identity/partner"),
            Some(json!({"userId": "ext-boss", "userName": "boss"})),
        )
        .await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn a_provider_registered_the_keycloak_way_accepts_tokens_for_its_client_id() {
    // Keycloak's own settings only (plus the allow-list that stands in for the V1 permission):
    // the external token's audience is the provider's `clientId`.
    let Some(f) = Fixture::start(
        SHORT_REFETCH,
        json!({"cambio.allowedAudiences": null, "clientId": "cambio",
               "useJwksUrl": "true", "validateSignature": "true"}),
    )
    .await
    else {
        return;
    };
    let external = f.idp.token(EXT_ALICE).await;
    let reply = f.exchange(&external).await;
    assert_local_token(&reply, &f.alice, &external, Some(ACCESS_TOKEN_TYPE));
    // A token for another audience is refused, and the audit event says why.
    let iss = claims(&external)["iss"].as_str().unwrap().to_owned();
    let foreign = f
        .idp
        .mint(&[("sub", EXT_ALICE), ("aud", "another-app"), ("iss", &iss)])
        .await;
    assert_invalid_token(&f.exchange(&foreign).await);
    let admin = f.admin();
    let deadline = Instant::now() + Duration::from_secs(10);
    let reason = loop {
        let events = admin.ok("/events?type=TOKEN_EXCHANGE_ERROR&max=10").await;
        let reason = events
            .as_array()
            .unwrap()
            .iter()
            .find_map(|e| e["details"]["token_error"].as_str().map(str::to_owned));
        if let Some(reason) = reason {
            break reason;
        }
        assert!(Instant::now() < deadline, "no refusal reason in {events}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        reason.contains("accepted audiences: requester-client cambio"),
        "{reason}"
    );
}
