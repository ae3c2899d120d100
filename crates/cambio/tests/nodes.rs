//! Several `cambio serve` processes sharing one PostgreSQL database: changes made through one
//! node reach the others within a second, one-time things (refresh tokens, client-assertion
//! `jti`s, key rotations) happen once across all nodes, and the cluster survives a node killed
//! with SIGKILL and a PostgreSQL restart.
//!
//! Each test gets a fresh database on the server named by `CAMBIO_TEST_POSTGRES_URL` (see
//! `PgTestDatabase`: skipped without it, except in CI where that fails). The PostgreSQL restart
//! test starts a throwaway cluster of its own with `scripts/pg-test-cluster.sh`, so that the
//! shared one never goes down under the other tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cambio_store::conformance::PgTestDatabase;
use serde_json::{Value, json};

/// Every node's public URL (and so the issuer of its tokens), as behind a load balancer.
const PUBLIC_URL: &str = "http://cambio.nodes.test";
const ADMIN_PASSWORD: &str = "admin-password";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How soon a change made through one node must be visible on the others.
const PROPAGATION: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------------
// Nodes

/// One `cambio serve` child process; killed when dropped.
struct Node {
    name: &'static str,
    child: Child,
    /// Where it really listens (`http://127.0.0.1:PORT`).
    base: String,
    log: PathBuf,
}

impl Node {
    /// Spawns a node; [`Node::wait_listening`] completes the start.
    fn spawn(name: &'static str, database_url: &str, data_dir: &Path) -> (Child, PathBuf) {
        let log = data_dir
            .parent()
            .unwrap_or(data_dir)
            .join(format!("node-{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_cambio"))
            .args(["serve", "--listen", "127.0.0.1:0", "--demo"])
            .arg("--database")
            .arg(database_url)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--public-url", PUBLIC_URL])
            .env("CAMBIO_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("CAMBIO_LOG", "warn")
            .env_remove("CAMBIO_DATABASE")
            .env_remove("CAMBIO_DATA_DIR")
            .env_remove("CAMBIO_CONFIG")
            .env_remove("CAMBIO_PUBLIC_URL")
            .env_remove("CAMBIO_HTTP_RELATIVE_PATH")
            .env_remove("CAMBIO_RATE_LIMIT_PER_IP")
            .env_remove("CAMBIO_RATE_LIMIT_PER_CLIENT")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        (child, log)
    }

    /// Reads the child's stdout up to its `listening on http://...` line.
    fn wait_listening(name: &'static str, mut child: Child, log: PathBuf) -> Node {
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let base = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "node {name} exited before listening: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            };
            if let Some(address) = line.strip_prefix("listening on ") {
                break address.trim().to_owned();
            }
        };
        // Keep reading so that the node never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Node {
            name,
            child,
            base,
            log,
        }
    }

    fn oidc(&self, endpoint: &str) -> String {
        format!(
            "{}/realms/demo/protocol/openid-connect/{endpoint}",
            self.base
        )
    }

    fn admin(&self, path: &str) -> String {
        format!("{}/admin/realms/demo/{path}", self.base)
    }

    /// SIGKILL (`Child::kill` sends it on Unix): no shutdown, no draining.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The end of the node's log, for failure messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        format!(
            "--- node {} log ---\n{}",
            self.name,
            text.get(start..).unwrap_or("")
        )
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Nodes sharing one database and one data-encryption key, and an HTTP client.
struct Cluster {
    nodes: Vec<Node>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    /// Dropped last: the nodes are gone by then.
    _db: Option<PgTestDatabase>,
}

const NAMES: [&str; 3] = ["A", "B", "C"];

impl Cluster {
    /// `count` nodes on a fresh database, or None when PostgreSQL tests are skipped.
    async fn start(test: &str, count: usize) -> Option<Cluster> {
        let db = PgTestDatabase::create(test).await?;
        let url = db.url().to_owned();
        Some(Cluster::start_on(&url, count, Some(db)))
    }

    /// `count` nodes on the database at `url`. The first creates the realms and the data key;
    /// the others start once it listens, with the same data directory (the same key).
    fn start_on(url: &str, count: usize, db: Option<PgTestDatabase>) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (child, log) = Node::spawn(NAMES[0], url, &data);
        let mut nodes = vec![Node::wait_listening(NAMES[0], child, log)];
        let spawned: Vec<_> = NAMES[1..count]
            .iter()
            .map(|name| (*name, Node::spawn(name, url, &data)))
            .collect();
        for (name, (child, log)) in spawned {
            nodes.push(Node::wait_listening(name, child, log));
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Cluster {
            nodes,
            http,
            _dir: dir,
            _db: db,
        }
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(Node::log_tail)
            .collect::<Vec<_>>()
            .join("\n")
    }

    async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Reply {
        reply(self.http.post(url).form(form).send().await.unwrap()).await
    }

    async fn get(&self, url: &str, bearer: Option<&str>) -> Reply {
        let mut request = self.http.get(url);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        reply(request.send().await.unwrap()).await
    }

    async fn admin_post(&self, node: &Node, token: &str, path: &str, body: Value) -> Reply {
        let request = self
            .http
            .post(node.admin(path))
            .bearer_auth(token)
            .json(&body);
        reply(request.send().await.unwrap()).await
    }

    /// Any admin call, with a JSON body when one is given.
    async fn admin_call(
        &self,
        node: &Node,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self
            .http
            .request(method, node.admin(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        reply(request.send().await.unwrap()).await
    }

    async fn admin_get(&self, node: &Node, token: &str, path: &str) -> Reply {
        self.get(&node.admin(path), Some(token)).await
    }

    /// A master administrator's access token (valid on every node: same issuer and keys).
    async fn admin_token(&self, node: &Node) -> String {
        let url = format!("{}/realms/master/protocol/openid-connect/token", node.base);
        self.post_form(
            &url,
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await
        .access_token()
    }

    /// A password grant through subject-client.
    async fn login(&self, node: &Node, username: &str, password: &str) -> Reply {
        self.post_form(
            &node.oidc("token"),
            &[
                ("grant_type", "password"),
                ("client_id", "subject-client"),
                ("client_secret", "subject-secret"),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    async fn alice(&self, node: &Node) -> Reply {
        let reply = self.login(node, "alice", "alice").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply
    }

    async fn refresh(&self, node: &Node, refresh_token: &str) -> Reply {
        self.post_form(
            &node.oidc("token"),
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "subject-client"),
                ("client_secret", "subject-secret"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// A standard token exchange by requester-client, for orders-api.
    async fn exchange(&self, node: &Node, subject: &str) -> Reply {
        self.post_form(
            &node.oidc("token"),
            &[
                ("grant_type", EXCHANGE),
                ("client_id", "requester-client"),
                ("client_secret", "requester-secret"),
                ("subject_token", subject),
                ("audience", "orders-api"),
            ],
        )
        .await
    }

    async fn client_credentials(&self, node: &Node, client_id: &str, secret: &str) -> Reply {
        self.post_form(
            &node.oidc("token"),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
            ],
        )
        .await
    }

    /// Introspection as orders-api: whether the token is active on `node`.
    async fn active(&self, node: &Node, token: &str) -> bool {
        let reply = self
            .post_form(
                &node.oidc("token/introspect"),
                &[
                    ("token", token),
                    ("client_id", "orders-api"),
                    ("client_secret", "orders-secret"),
                ],
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.body["active"] == true
    }

    /// The kids of the demo realm's JWKS on `node`, sorted.
    async fn kids(&self, node: &Node) -> Vec<String> {
        let reply = self.get(&node.oidc("certs"), None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let mut kids: Vec<String> = reply.body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        kids.sort();
        kids
    }
}

// ---------------------------------------------------------------------------------------------
// Replies and helpers

#[derive(Debug)]
struct Reply {
    status: u16,
    body: Value,
    text: String,
}

impl Reply {
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
    fn access_token(&self) -> String {
        self.string("access_token")
    }
    fn string(&self, field: &str) -> String {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {}: {}", self.status, self.text))
            .to_owned()
    }
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, body, text }
}

fn jwt_part(jwt: &str, index: usize) -> Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(index).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn claims(jwt: &str) -> Value {
    jwt_part(jwt, 1)
}

fn kid(jwt: &str) -> String {
    jwt_part(jwt, 0)["kid"].as_str().unwrap().to_owned()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Retries `check` every 20 ms until it succeeds, failing the test with its last complaint
/// when `limit` has passed. Returns what it succeeded with.
async fn eventually<T>(
    limit: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match check().await {
            Ok(value) => return value,
            Err(complaint) if start.elapsed() >= limit => {
                panic!("{what}: not within {limit:?}: {complaint}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// The statuses of several replies, sorted.
fn statuses(replies: &[&Reply]) -> Vec<u16> {
    let mut statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    statuses
}

// ---------------------------------------------------------------------------------------------
// Propagation

#[tokio::test]
async fn config_propagates() {
    let Some(c) = Cluster::start("nodes_config", 2).await else {
        return;
    };
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let admin = c.admin_token(a).await;

    // A client created on A: B authenticates it.
    let r = c
        .admin_post(
            a,
            &admin,
            "clients",
            json!({
                "clientId": "batch-job",
                "secret": "batch-secret",
                "publicClient": false,
                "serviceAccountsEnabled": true,
                "standardFlowEnabled": false,
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    eventually(PROPAGATION, "a client created on A, on B", async || {
        let r = c.client_credentials(b, "batch-job", "batch-secret").await;
        if r.status == 200 { Ok(()) } else { Err(r.text) }
    })
    .await;

    // A user created on A: B logs it in.
    let r = c
        .admin_post(
            a,
            &admin,
            "users",
            json!({
                "username": "bob",
                "enabled": true,
                "credentials": [{"type": "password", "value": "bob-pass", "temporary": false}],
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    eventually(PROPAGATION, "a user created on A, on B", async || {
        let r = c.login(b, "bob", "bob-pass").await;
        if r.status == 200 { Ok(()) } else { Err(r.text) }
    })
    .await;

    // A role granted on A: B's next token for alice carries it, also from B's user cache
    // (filled by a refresh on B before the change).
    let login = c.alice(b).await;
    let r = c.refresh(b, &login.string("refresh_token")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut refresh_token = r.string("refresh_token");
    let roles = |jwt: &str| claims(jwt)["realm_access"]["roles"].clone();
    assert!(
        !roles(&r.access_token())
            .as_array()
            .is_some_and(|r| r.contains(&json!("auditor")))
    );
    let r = c
        .admin_post(a, &admin, "roles", json!({"name": "auditor"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let role = c.admin_get(a, &admin, "roles/auditor").await;
    assert_eq!(role.status, 200, "{}", role.text);
    let users = c
        .admin_get(a, &admin, "users?username=alice&exact=true")
        .await;
    let alice_id = users.body[0]["id"].as_str().unwrap().to_owned();
    let r = c
        .admin_post(
            a,
            &admin,
            &format!("users/{alice_id}/role-mappings/realm"),
            json!([{"id": role.body["id"], "name": "auditor"}]),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    eventually(
        PROPAGATION,
        "a role mapping changed on A, on B",
        async || {
            let r = c.refresh(b, &refresh_token).await;
            if r.status != 200 {
                return Err(r.text);
            }
            refresh_token = r.string("refresh_token");
            let roles = roles(&r.access_token());
            if roles
                .as_array()
                .is_some_and(|r| r.contains(&json!("auditor")))
            {
                Ok(())
            } else {
                Err(format!("roles {roles}"))
            }
        },
    )
    .await;
    let fresh = c.alice(b).await;
    assert!(
        roles(&fresh.access_token())
            .as_array()
            .unwrap()
            .contains(&json!("auditor")),
        "{}",
        fresh.text
    );
}

/// Changes that reload only part of the realm (a role's composites, a role's name, a group's
/// roles, a client scope's name, which also renames it in the clients that list it) reach
/// the other node as the same partial reload: B's next token follows each change made on A.
#[tokio::test]
async fn partial_changes_propagate() {
    use reqwest::Method;
    let Some(c) = Cluster::start("nodes_partial", 2).await else {
        return;
    };
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let admin = c.admin_token(a).await;
    let call = async |method: Method, path: &str, body: Option<Value>, status: u16| {
        let r = c.admin_call(a, &admin, method.clone(), path, body).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text);
        r
    };
    let roles = |jwt: &str| -> Vec<String> {
        claims(jwt)["realm_access"]["roles"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    for name in ["auditor", "bundle"] {
        call(Method::POST, "roles", Some(json!({"name": name})), 201).await;
    }
    let auditor = call(Method::GET, "roles/auditor", None, 200).await.body["id"].clone();
    let bundle = call(Method::GET, "roles/bundle", None, 200).await.body["id"].clone();
    call(
        Method::POST,
        "roles/bundle/composites",
        Some(json!([{"id": auditor}])),
        204,
    )
    .await;
    let alice = c
        .admin_get(a, &admin, "users?username=alice&exact=true")
        .await
        .body[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        Method::POST,
        &format!("users/{alice}/role-mappings/realm"),
        Some(json!([{"id": bundle, "name": "bundle"}])),
        204,
    )
    .await;
    let subject = eventually(PROPAGATION, "a composite made on A, on B", async || {
        let token = c.alice(b).await.access_token();
        let held = roles(&token);
        if held.contains(&"auditor".to_owned()) {
            Ok(token)
        } else {
            Err(format!("roles {held:?}"))
        }
    })
    .await;

    // The composite loses its role on A: B's next exchange of the same token lacks it.
    call(
        Method::DELETE,
        "roles/bundle/composites",
        Some(json!([{"id": auditor}])),
        204,
    )
    .await;
    eventually(PROPAGATION, "a composite changed on A, on B", async || {
        let r = c.exchange(b, &subject).await;
        let held = roles(&r.access_token());
        match (
            held.contains(&"bundle".into()),
            held.contains(&"auditor".into()),
        ) {
            (true, false) => Ok(()),
            _ => Err(format!("roles {held:?}")),
        }
    })
    .await;

    // A rename on A: B finds the role under its new name only.
    call(
        Method::PUT,
        "roles/bundle",
        Some(json!({"name": "package"})),
        204,
    )
    .await;
    eventually(PROPAGATION, "a role renamed on A, on B", async || {
        let old = c.admin_get(b, &admin, "roles/bundle").await.status;
        let new = c.admin_get(b, &admin, "roles/package").await.status;
        if (old, new) == (404, 200) {
            Ok(())
        } else {
            Err(format!("old {old}, new {new}"))
        }
    })
    .await;

    // A group's role taken away on A: B's next exchange lacks it.
    let group = call(Method::POST, "groups", Some(json!({"name": "audit"})), 201).await;
    let group = c.admin_get(a, &admin, "groups?search=audit").await.body[0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no group: {}", group.text))
        .to_owned();
    let mapping = json!([{"id": auditor, "name": "auditor"}]);
    call(
        Method::POST,
        &format!("groups/{group}/role-mappings/realm"),
        Some(mapping.clone()),
        204,
    )
    .await;
    call(
        Method::PUT,
        &format!("users/{alice}/groups/{group}"),
        None,
        204,
    )
    .await;
    let subject = eventually(PROPAGATION, "a group's role given on A, on B", async || {
        let token = c.alice(b).await.access_token();
        let held = roles(&token);
        if held.contains(&"auditor".to_owned()) {
            Ok(token)
        } else {
            Err(format!("roles {held:?}"))
        }
    })
    .await;
    call(
        Method::DELETE,
        &format!("groups/{group}/role-mappings/realm"),
        Some(mapping),
        204,
    )
    .await;
    eventually(PROPAGATION, "a group's role taken on A, on B", async || {
        let held = roles(&c.exchange(b, &subject).await.access_token());
        if held.contains(&"auditor".into()) {
            Err(format!("roles {held:?}"))
        } else {
            Ok(())
        }
    })
    .await;

    // A client scope created on A and listed by subject-client, then renamed (the scope and
    // the client listing it): B's password grant accepts the new name, refuses the old one.
    let scope = call(
        Method::POST,
        "client-scopes",
        Some(json!({"name": "reports", "protocol": "openid-connect"})),
        201,
    )
    .await;
    let scope = c
        .admin_get(a, &admin, "client-scopes")
        .await
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "reports")
        .unwrap_or_else(|| panic!("no scope: {}", scope.text))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let subject_client = c
        .admin_get(a, &admin, "clients?clientId=subject-client")
        .await
        .body[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        Method::PUT,
        &format!("clients/{subject_client}/optional-client-scopes/{scope}"),
        None,
        204,
    )
    .await;
    let with_scope = async |scope: &str| {
        c.post_form(
            &b.oidc("token"),
            &[
                ("grant_type", "password"),
                ("client_id", "subject-client"),
                ("client_secret", "subject-secret"),
                ("username", "alice"),
                ("password", "alice"),
                ("scope", scope),
            ],
        )
        .await
    };
    eventually(PROPAGATION, "a scope created on A, on B", async || {
        let r = with_scope("reports").await;
        if r.status == 200 { Ok(()) } else { Err(r.text) }
    })
    .await;
    call(
        Method::PUT,
        &format!("client-scopes/{scope}"),
        Some(json!({"name": "reports-v2"})),
        204,
    )
    .await;
    eventually(PROPAGATION, "a scope renamed on A, on B", async || {
        let new = with_scope("reports-v2").await;
        let old = with_scope("reports").await;
        if new.status == 200 && old.error() == "invalid_scope" {
            Ok(())
        } else {
            Err(format!("new {}, old {}", new.text, old.text))
        }
    })
    .await;
}

#[tokio::test]
async fn revocation_propagates() {
    let Some(c) = Cluster::start("nodes_revocation", 2).await else {
        return;
    };
    let (a, b) = (&c.nodes[0], &c.nodes[1]);

    // An access token revoked on B is refused on A.
    let login = c.alice(a).await;
    let token = login.access_token();
    assert!(c.active(a, &token).await);
    let r = c
        .post_form(
            &b.oidc("revoke"),
            &[
                ("token", &token),
                ("client_id", "subject-client"),
                ("client_secret", "subject-secret"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    eventually(PROPAGATION, "a token revoked on B, on A", async || {
        if c.active(a, &token).await {
            Err("still active".into())
        } else {
            Ok(())
        }
    })
    .await;

    // A session logged out on B: its tokens, exchanged ones included, are refused on A.
    let login = c.alice(a).await;
    let token = login.access_token();
    let exchanged = c.exchange(a, &token).await;
    assert_eq!(exchanged.status, 200, "{}", exchanged.text);
    let exchanged = exchanged.access_token();
    assert!(c.active(a, &token).await);
    assert!(c.active(a, &exchanged).await);
    let r = c
        .post_form(
            &b.oidc("logout"),
            &[
                ("refresh_token", &login.string("refresh_token")),
                ("client_id", "subject-client"),
                ("client_secret", "subject-secret"),
            ],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    eventually(PROPAGATION, "a session ended on B, on A", async || {
        match (c.active(a, &token).await, c.active(a, &exchanged).await) {
            (false, false) => Ok(()),
            other => Err(format!("still active (access, exchanged): {other:?}")),
        }
    })
    .await;
    let r = c.exchange(a, &token).await;
    assert_eq!(
        (r.status, r.error()),
        (400, "invalid_request"),
        "{}",
        r.text
    );

    // A client's part of a session ended on B (the requester revokes the refresh token it
    // obtained by exchange): its tokens are refused on A, the login client's are not.
    let login = c.alice(a).await;
    let token = login.access_token();
    let r = c
        .post_form(
            &a.oidc("token"),
            &[
                ("grant_type", EXCHANGE),
                ("client_id", "requester-client"),
                ("client_secret", "requester-secret"),
                ("subject_token", &token),
                ("audience", "orders-api"),
                (
                    "requested_token_type",
                    "urn:ietf:params:oauth:token-type:refresh_token",
                ),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let exchanged = r.access_token();
    assert!(c.active(a, &exchanged).await);
    let r = c
        .post_form(
            &b.oidc("revoke"),
            &[
                ("token", &r.string("refresh_token")),
                ("client_id", "requester-client"),
                ("client_secret", "requester-secret"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    eventually(PROPAGATION, "a client part ended on B, on A", async || {
        if c.active(a, &exchanged).await {
            Err("still active".into())
        } else {
            Ok(())
        }
    })
    .await;
    assert!(c.active(a, &token).await);
}

// ---------------------------------------------------------------------------------------------
// Once across all nodes

/// The same refresh token presented at the same moment on A and B is used once: the store's
/// conditional update lets exactly one request through (200), and the other one is a replay.
/// The replay ends the session (refresh-token reuse detection), so what the winner received is
/// then refused on every node.
#[tokio::test]
async fn refresh_token_race() {
    let Some(c) = Cluster::start("nodes_refresh_race", 2).await else {
        return;
    };
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let reuse = "Maximum allowed refresh token reuse exceeded";
    for _ in 0..3 {
        let refresh_token = c.alice(a).await.string("refresh_token");
        let (ra, rb) = tokio::join!(c.refresh(a, &refresh_token), c.refresh(b, &refresh_token));
        let replays = [&ra, &rb]
            .into_iter()
            .filter(|r| r.status == 400 && r.body["error_description"] == reuse)
            .count();
        assert_eq!(replays, 1, "exactly one use:\n{ra:?}\n{rb:?}");
        let winner = if ra.body["error_description"] == reuse {
            &rb
        } else {
            &ra
        };
        assert_eq!(winner.status, 200, "exactly one success:\n{ra:?}\n{rb:?}");
        let token = winner.access_token();
        eventually(
            PROPAGATION,
            "the replayed session ended everywhere",
            async || match (c.active(a, &token).await, c.active(b, &token).await) {
                (false, false) => Ok(()),
                other => Err(format!("still active (A, B): {other:?}")),
            },
        )
        .await;
        let r = c.refresh(b, &winner.string("refresh_token")).await;
        assert_eq!(r.status, 400, "{}", r.text);
    }
}

#[tokio::test]
async fn assertion_jti_once() {
    let Some(c) = Cluster::start("nodes_assertion", 3).await else {
        return;
    };
    let a = &c.nodes[0];
    let key = cambio_jose::SigningKey::generate(cambio_jose::Algorithm::Es256).unwrap();
    let jwks = serde_json::to_string(&cambio_jose::JwkSet {
        keys: vec![key.public_jwk()],
    })
    .unwrap();
    let admin = c.admin_token(a).await;
    let r = c
        .admin_post(
            a,
            &admin,
            "clients",
            json!({
                "clientId": "jwt-client",
                "clientAuthenticatorType": "client-jwt",
                "serviceAccountsEnabled": true,
                "standardFlowEnabled": false,
                "attributes": {"jwks.string": jwks},
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let seq = AtomicUsize::new(0);
    let assertion = || {
        let jti = format!("jti-{}-{}", seq.fetch_add(1, Ordering::Relaxed), now());
        let claims = json!({
            "iss": "jwt-client",
            "sub": "jwt-client",
            "aud": format!("{PUBLIC_URL}/realms/demo"),
            "jti": jti,
            "iat": now(),
            "exp": now() + 60,
        });
        key.sign("JWT", &claims).unwrap()
    };
    let present = async |node: &Node, assertion: &str| {
        c.post_form(
            &node.oidc("token"),
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", assertion),
            ],
        )
        .await
    };
    // Every node knows the client (each try with an assertion of its own).
    for node in &c.nodes {
        eventually(PROPAGATION, "the jwt client on every node", async || {
            let r = present(node, &assertion()).await;
            if r.status == 200 { Ok(()) } else { Err(r.text) }
        })
        .await;
    }
    for _ in 0..3 {
        let assertion = assertion();
        let (r0, r1, r2) = tokio::join!(
            present(&c.nodes[0], &assertion),
            present(&c.nodes[1], &assertion),
            present(&c.nodes[2], &assertion),
        );
        assert_eq!(
            statuses(&[&r0, &r1, &r2]),
            [200, 401, 401],
            "{r0:?}\n{r1:?}\n{r2:?}"
        );
        for r in [&r0, &r1, &r2].into_iter().filter(|r| r.status == 401) {
            assert_eq!(r.error(), "invalid_client", "{}", r.text);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Key rotation

#[tokio::test]
async fn key_rotation() {
    let Some(c) = Cluster::start("nodes_keys", 2).await else {
        return;
    };
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let token = async |node: &Node| {
        c.client_credentials(node, "requester-client", "requester-secret")
            .await
            .access_token()
    };
    let old = kid(&token(a).await);
    assert_eq!(kid(&token(b).await), old);
    let admin = c.admin_token(a).await;

    let r = c.admin_post(a, &admin, "keys/rotate", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rotated_at = Instant::now();
    let new = r.string("kid");
    assert_ne!(new, old);
    assert!(c.kids(a).await.contains(&new));
    // Published everywhere at once...
    eventually(PROPAGATION, "the new key in B's JWKS", async || {
        let kids = c.kids(b).await;
        if kids.contains(&new) && kids.contains(&old) {
            Ok(())
        } else {
            Err(format!("{kids:?}"))
        }
    })
    .await;
    // ...and signing only after the activation delay (5 s on PostgreSQL).
    for node in [a, b] {
        assert_eq!(
            kid(&token(node).await),
            old,
            "node {} signs too early",
            node.name
        );
    }
    let switched = eventually(
        Duration::from_secs(8),
        "A signing with the new key",
        async || {
            let jwt = token(a).await;
            if kid(&jwt) == new {
                Ok(jwt)
            } else {
                Err(format!("still {}", kid(&jwt)))
            }
        },
    )
    .await;
    let delay = rotated_at.elapsed();
    assert!(
        delay >= Duration::from_secs(3),
        "the new key signed after {delay:?}, before the activation delay"
    );
    // B switches at the same second (its key timer ticks every second).
    let from_b = eventually(
        Duration::from_secs(2),
        "B signing with the new key",
        async || {
            let jwt = token(b).await;
            if kid(&jwt) == new {
                Ok(jwt)
            } else {
                Err(format!("still {}", kid(&jwt)))
            }
        },
    )
    .await;
    assert!(c.active(b, &switched).await, "A's new token on B");
    assert!(c.active(a, &from_b).await, "B's new token on A");
    // Tokens of the old key stay valid while they live.
    assert_eq!(
        c.kids(a).await,
        c.kids(b).await,
        "both nodes publish the same keys"
    );

    // Concurrent rotations on A and B: one at a time (the advisory lock); a loser answers 409.
    let (ra, rb) = tokio::join!(
        c.admin_post(a, &admin, "keys/rotate", json!({})),
        c.admin_post(b, &admin, "keys/rotate", json!({})),
    );
    for r in [&ra, &rb] {
        assert!(r.status == 200 || r.status == 409, "{}", r.text);
        if r.status == 409 {
            assert!(
                r.text.contains("A key rotation is already in progress"),
                "{}",
                r.text
            );
        }
    }
    let rotated: Vec<String> = [&ra, &rb]
        .into_iter()
        .filter(|r| r.status == 200)
        .map(|r| r.string("kid"))
        .collect();
    assert!(!rotated.is_empty(), "{ra:?}\n{rb:?}");
    eventually(PROPAGATION, "the same JWKS on both nodes", async || {
        let (ka, kb) = (c.kids(a).await, c.kids(b).await);
        if ka == kb && rotated.iter().all(|kid| ka.contains(kid)) {
            Ok(())
        } else {
            Err(format!("A {ka:?}, B {kb:?}, rotated {rotated:?}"))
        }
    })
    .await;
    // Still signing with a published key on both nodes, whichever rotation won.
    for node in [a, b] {
        let jwt = c
            .client_credentials(node, "requester-client", "requester-secret")
            .await
            .access_token();
        assert!(c.active(a, &jwt).await && c.active(b, &jwt).await);
    }
}

// ---------------------------------------------------------------------------------------------
// Faults

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load() {
    let Some(mut c) = Cluster::start("nodes_sigkill", 2).await else {
        return;
    };
    const USERS: usize = 200;
    const WORKERS: usize = 8;
    let admin = Arc::new(c.admin_token(&c.nodes[0]).await);
    let bases = Arc::new([c.nodes[0].admin("users"), c.nodes[1].admin("users")]);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let (http, admin, bases) = (c.http.clone(), admin.clone(), bases.clone());
        let (next, done) = (next.clone(), done.clone());
        workers.spawn(async move {
            // (node index, username, status or transport error)
            let mut results: Vec<(usize, String, Result<u16, String>)> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= USERS {
                    return results;
                }
                let node = i % 2;
                let username = format!("load-{i:03}");
                let sent = http
                    .post(&bases[node])
                    .bearer_auth(admin.as_str())
                    .json(&json!({"username": username, "enabled": true}))
                    .send()
                    .await;
                let outcome = match sent {
                    Ok(response) => Ok(response.status().as_u16()),
                    Err(error) => Err(error.to_string()),
                };
                results.push((node, username, outcome));
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    // SIGKILL A midway through.
    while done.load(Ordering::Relaxed) < USERS / 3 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    c.nodes[0].kill();
    let killed_at = done.load(Ordering::Relaxed);
    let mut results = Vec::new();
    while let Some(worker) = workers.join_next().await {
        results.extend(worker.unwrap());
    }
    assert_eq!(results.len(), USERS);

    let acknowledged: Vec<&String> = results
        .iter()
        .filter(|(_, _, outcome)| *outcome == Ok(201))
        .map(|(_, username, _)| username)
        .collect();
    let from_a = results
        .iter()
        .filter(|(node, _, outcome)| *node == 0 && *outcome == Ok(201))
        .count();
    assert!(from_a > 0, "A acknowledged nothing before it was killed");
    assert!(
        from_a < USERS / 2,
        "A was killed after {killed_at} requests but acknowledged all of its own"
    );
    // B kept serving throughout.
    for (node, username, outcome) in &results {
        if *node == 1 {
            assert_eq!(*outcome, Ok(201), "B failed to create {username}");
        }
    }
    // Every acknowledged user exists, as B sees it.
    let b = &c.nodes[1];
    let listed = c
        .admin_get(b, &admin, "users?max=10000&briefRepresentation=true")
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let stored: std::collections::HashSet<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    let lost: Vec<&&String> = acknowledged
        .iter()
        .filter(|u| !stored.contains(u.as_str()))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    // B still logs users in and exchanges tokens.
    let login = c.alice(b).await;
    let r = c.exchange(b, &login.access_token()).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// A PostgreSQL cluster of this test's own (`scripts/pg-test-cluster.sh` with a directory of
/// its own), stopped and deleted when dropped.
struct OwnCluster {
    dir: PathBuf,
    url: String,
}

impl OwnCluster {
    fn script(&self, command: &str) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-test-cluster.sh");
        let output = Command::new(script)
            .arg(command)
            .env("CAMBIO_PG_TEST_DIR", &self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "pg-test-cluster.sh {command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn start() -> OwnCluster {
        // Directly under the temporary directory: when run as root, the cluster belongs to
        // another system user, who must be able to reach it.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir =
            std::env::temp_dir().join(format!("cambio-nodes-pg-{}-{nanos:x}", std::process::id()));
        let mut cluster = OwnCluster {
            dir,
            url: String::new(),
        };
        cluster.url = cluster.script("start");
        cluster
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-test-cluster.sh");
        let _ = Command::new(script)
            .arg("stop")
            .env("CAMBIO_PG_TEST_DIR", &self.dir)
            .stdin(Stdio::null())
            .output();
    }
}

#[tokio::test]
async fn postgres_restart() {
    // The usual skip-or-fail rule; the test itself runs on a cluster of its own, which it stops.
    if PgTestDatabase::create("nodes_pg_restart").await.is_none() {
        return;
    }
    let pg = OwnCluster::start();
    let c = Cluster::start_on(&pg.url, 2, None);
    let (a, b) = (&c.nodes[0], &c.nodes[1]);
    let login = c.alice(a).await;
    let subject = login.access_token();
    for node in [a, b] {
        let r = c.exchange(node, &subject).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    pg.script("pause");
    let paused = Instant::now();
    // Exchanges need no write: they keep working while the database is down, also after the
    // nodes noticed it. 8 s covers their change listeners losing the connection and failing
    // to reconnect (a pool timeout of 5 s), which used to trigger a reload that emptied the
    // user cache, and with it every exchange failed.
    while paused.elapsed() < Duration::from_secs(8) {
        for node in [a, b] {
            let sent = Instant::now();
            let r = c.exchange(node, &subject).await;
            assert_eq!(
                r.status,
                200,
                "exchange on {} with the database down: {}\n{}",
                node.name,
                r.text,
                c.logs()
            );
            assert!(
                sent.elapsed() < Duration::from_secs(1),
                "{:?}",
                sent.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A login writes a session: a clear 503, soon.
    let timed_login = async |node: &Node| {
        let sent = Instant::now();
        let r = c.login(node, "alice", "alice").await;
        (r, sent.elapsed())
    };
    let (on_a, on_b) = tokio::join!(timed_login(a), timed_login(b));
    for (r, took) in [on_a, on_b] {
        assert_eq!(
            (r.status, r.error()),
            (503, "temporarily_unavailable"),
            "{}",
            r.text
        );
        assert!(took < Duration::from_secs(15), "the 503 took {took:?}");
    }

    pg.script("resume");
    for node in [a, b] {
        eventually(
            Duration::from_secs(15),
            "a login after the restart",
            async || {
                let r = c.login(node, "alice", "alice").await;
                if r.status == 200 {
                    Ok(())
                } else {
                    Err(format!("{} on {}: {}", r.status, node.name, r.text))
                }
            },
        )
        .await;
    }
    // Changes propagate again (the listeners reconnected).
    let admin = c.admin_token(a).await;
    let r = c
        .admin_post(
            a,
            &admin,
            "clients",
            json!({"clientId": "after-restart", "secret": "s3cret", "serviceAccountsEnabled": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    eventually(
        Duration::from_secs(5),
        "a client created after the restart, on B",
        async || {
            let r = c.client_credentials(b, "after-restart", "s3cret").await;
            if r.status == 200 { Ok(()) } else { Err(r.text) }
        },
    )
    .await;
    drop(c);
    drop(pg);
}
