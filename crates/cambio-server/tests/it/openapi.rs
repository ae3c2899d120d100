//! The OpenAPI document at `/openapi.json` is kept true:
//! - every documented operation is routed (a minimal request to it is neither the router's
//!   404 nor a 405, and never a 5xx);
//! - schemathesis (pinned in tests/compat/requirements.txt, installed into `.venv-test` by
//!   `scripts/install-test-deps.sh`) sends a bounded number of generated requests to every
//!   operation and finds no 5xx. Without the venv it is skipped locally and fails in CI.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::TestServer;

/// How long the schemathesis run may take.
const SCHEMATHESIS_TIMEOUT: Duration = Duration::from_secs(300);

/// Generated test cases per operation and phase; bounds the run to a few minutes on 2 cores.
const MAX_EXAMPLES: &str = "20";

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

fn repo_root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.ancestors().nth(2).unwrap_or(crate_dir).to_owned()
}

async fn document(server: &TestServer, prefix: &str) -> Value {
    let url = format!("{}{prefix}/openapi.json", server.base);
    let response = server.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{url}: {content_type}"
    );
    response.json().await.unwrap()
}

/// `(METHOD, path template, operation)` for every operation of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let paths = doc["paths"].as_object().expect("paths");
    let mut out = Vec::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item");
        for (method, operation) in item {
            if method == "parameters" {
                continue;
            }
            assert!(METHODS.contains(&method.as_str()), "{path}: {method}");
            out.push((method.to_uppercase(), path.clone(), operation.clone()));
        }
    }
    out
}

/// A concrete path: realm `demo`, made-up values for every other parameter.
fn concrete(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closed parameter") + start;
        match &rest[start + 1..end] {
            "realm" => out.push_str("demo"),
            name => out.push_str(&format!("made-up-{name}")),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn document_is_openapi_3_and_every_operation_is_routed() {
    let server = TestServer::start().await;
    let doc = document(&server, "").await;
    // Also under the `/auth` alias, like everything else.
    assert_eq!(document(&server, "/auth").await, doc);

    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.0.")),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");

    let mut operations = operations(&doc);
    assert!(operations.len() > 100, "{} operations", operations.len());
    for expected in [
        "/realms/{realm}/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server/realms/{realm}",
        "/realms/{realm}/protocol/openid-connect/certs",
        "/realms/{realm}/protocol/openid-connect/token",
        "/realms/{realm}/protocol/openid-connect/token/introspect",
        "/realms/{realm}/protocol/openid-connect/revoke",
        "/realms/{realm}/protocol/openid-connect/userinfo",
        "/realms/{realm}/protocol/openid-connect/auth",
        "/realms/{realm}/protocol/openid-connect/logout",
        "/health/live",
        "/health/ready",
        "/metrics",
        "/openapi.json",
        "/admin/realms",
        "/admin/realms/{realm}/clients/{id}/authz/resource-server/policy/{kind}/{pid}",
        "/admin/realms/{realm}/identity-provider/instances/{alias}",
        "/admin/realms/{realm}/sessions/{session}",
    ] {
        assert!(
            doc["paths"].get(expected).is_some(),
            "{expected} undocumented"
        );
    }
    // The token endpoint documents its form, grant types and error answers.
    let token = &doc["paths"]["/realms/{realm}/protocol/openid-connect/token"]["post"];
    let grant_types = &token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
        ["properties"]["grant_type"]["enum"];
    assert!(
        grant_types
            .as_array()
            .is_some_and(|g| g.contains(&"urn:ietf:params:oauth:grant-type:token-exchange".into())),
        "{grant_types}"
    );
    for status in ["200", "400", "401", "403", "429"] {
        assert!(token["responses"].get(status).is_some(), "token {status}");
    }

    // Deletions last, the realm's own deletion at the very end, so that each request still
    // finds the demo realm.
    operations.sort_by_key(|(method, path, _)| {
        (
            method == "DELETE",
            path == "/admin/realms/{realm}" && method == "DELETE",
        )
    });
    let admin = server.admin_token().await;
    let mut failures = Vec::new();
    for (method, template, operation) in &operations {
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty()),
            "{method} {template}: no responses"
        );
        let url = format!("{}{}", server.base, concrete(template));
        let mut request = server
            .http
            .request(Method::from_bytes(method.as_bytes()).unwrap(), &url)
            .bearer_auth(&admin);
        let content = &operation["requestBody"]["content"];
        if content.get("application/json").is_some() {
            request = request
                .header("content-type", "application/json")
                .body("{}");
        } else if content.get("application/x-www-form-urlencoded").is_some() {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body("");
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let unrouted = status == 404 && body["error"] == "not_found";
        if unrouted || status == 405 || status.is_server_error() {
            failures.push(format!("{method} {template} -> {status} {text}"));
        }
    }
    assert!(
        failures.is_empty(),
        "documented but not served:\n{}",
        failures.join("\n")
    );
    server.stop().await;
}

#[tokio::test]
async fn schemathesis_finds_no_5xx() {
    let root = repo_root();
    let schemathesis = root.join(".venv-test/bin/schemathesis");
    if !schemathesis.exists() {
        let notice = format!(
            "{} is missing: run scripts/install-test-deps.sh to set up the Python test tools",
            schemathesis.display()
        );
        if std::env::var_os("CI").is_some() {
            panic!("{notice}");
        }
        eprintln!("SKIPPED schemathesis_finds_no_5xx: {notice}");
        return;
    }
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    // Hypothesis keeps a database and schemathesis may write reports in the working
    // directory: give it a scratch one, with a configuration that makes most generated
    // requests name the demo realm and its real objects, so that they get past the lookups.
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("schemathesis.toml");
    std::fs::write(&config, schemathesis_config(&server, &admin).await).unwrap();
    let child = tokio::process::Command::new(&schemathesis)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/openapi.json", server.base))
        .args(["--url", &server.base])
        .args(["--checks", "not_a_server_error"])
        // No `examples` phase: it replays each generated example and, because the server's
        // state moved on in between (a scope created by the first try makes the second a 409),
        // hypothesis reports "inconsistent results" as a runtime error of its own.
        .args(["--phases", "coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", "20250101"])
        .args(["--workers", "2"])
        .args(["--request-timeout", "30"])
        .args(["--suppress-health-check", "all"])
        .args(["--header", &format!("Authorization: Bearer {admin}")])
        // Deleting the demo or master realm would only turn the rest of the run into 404s
        // and 401s.
        .args(["--exclude-operation-id", "deleteRealm"])
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(scratch.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", schemathesis.display()));
    let output = tokio::time::timeout(SCHEMATHESIS_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis did not finish within {SCHEMATHESIS_TIMEOUT:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "schemathesis failed ({}); output above",
        output.status
    );
    server.stop().await;
}

/// Dictionaries of the demo realm's names and ids, bound to the path parameters that take
/// them, each used for most but not all generated requests.
async fn schemathesis_config(server: &TestServer, admin: &str) -> String {
    let admin_url = |what: &str| format!("{}/admin/realms/demo/{what}", server.base);
    let list = |reply: crate::Reply, field: &str| -> Vec<String> {
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply
            .body
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item[field].as_str().map(str::to_owned))
            .collect()
    };
    let clients = list(server.get(&admin_url("clients"), Some(admin)).await, "id");
    let users = list(server.get(&admin_url("users"), Some(admin)).await, "id");
    let roles = list(server.get(&admin_url("roles"), Some(admin)).await, "name");
    let scopes = list(
        server.get(&admin_url("client-scopes"), Some(admin)).await,
        "id",
    );
    assert!(!clients.is_empty() && !users.is_empty() && !roles.is_empty());
    let ids: Vec<String> = clients.iter().chain(&users).cloned().collect();
    let toml_list = |values: &[String]| {
        let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        format!("[{}]", quoted.join(", "))
    };
    format!(
        r#"[dictionaries.realms]
values = ["demo"]
[dictionaries.ids]
values = {ids}
[dictionaries.clients]
values = {clients}
[dictionaries.roles]
values = {roles}
[dictionaries.scopes]
values = {scopes}

[parameters]
"path.realm" = {{ dictionary = "realms", probability = 0.9 }}
"path.id" = {{ dictionary = "ids", probability = 0.7 }}
"path.client" = {{ dictionary = "clients", probability = 0.7 }}
"path.role" = {{ dictionary = "roles", probability = 0.7 }}
"path.scope" = {{ dictionary = "scopes", probability = 0.5 }}
"#,
        ids = toml_list(&ids),
        clients = toml_list(&clients),
        roles = toml_list(&roles),
        scopes = toml_list(&scopes),
    )
}
