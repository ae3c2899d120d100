//! Compatibility with real third-party clients, run against a live server:
//! - tests/compat/test_python_clients.py (PyJWT, python-keycloak's token calls);
//! - tests/compat/test_python_admin.py (python-keycloak's KeycloakAdmin: the fine-grained
//!   token-exchange setup, then the exchange it permits; groups, members and their roles);
//! - tests/compat/admin_client.mjs (@keycloak/keycloak-admin-client: the same setup and groups).
//!
//! The Python clients live in the `.venv-test` virtualenv and the Node ones in
//! tests/compat/node_modules, both set up by `scripts/install-test-deps.sh`; without them a
//! test is skipped locally and fails in CI.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::{ADMIN_PASSWORD, TestServer};

/// How long one script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn repo_root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.ancestors().nth(2).unwrap_or(crate_dir).to_owned()
}

/// Whether a prerequisite is there; when it is not, skips locally (false) and panics in CI.
fn present(script: &str, path: &Path, what: &str) -> bool {
    if path.exists() {
        return true;
    }
    let notice = format!(
        "{} is missing: run scripts/install-test-deps.sh to set up the {what}",
        path.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("{notice}");
    }
    eprintln!("SKIPPED {script}: {notice}");
    false
}

/// Runs `program args... BASE_URL` against a fresh server; asserts it succeeds.
async fn run_script(script: &str, program: &Path, args: &[PathBuf]) {
    let root = repo_root();
    let server = TestServer::start().await;
    let child = tokio::process::Command::new(program)
        .args(args)
        .arg(&server.base)
        .env("CAMBIO_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {SCRIPT_TIMEOUT:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "{script} failed ({}); output above",
        output.status
    );
    server.stop().await;
}

/// Runs `script` with the venv's Python and the server's base URL; asserts it succeeds.
async fn run_python(script: &str) {
    let root = repo_root();
    let python = root.join(".venv-test/bin/python");
    if !present(script, &python, "Python test clients") {
        return;
    }
    run_script(script, &python, &[root.join(script)]).await;
}

/// Runs `script` with Node and the server's base URL; asserts it succeeds. Its packages are
/// those of tests/compat/node_modules.
async fn run_node(script: &str) {
    let root = repo_root();
    let modules = root.join("tests/compat/node_modules/@keycloak/keycloak-admin-client");
    if !present(script, &modules, "Node test clients") {
        return;
    }
    let node = PathBuf::from(std::env::var_os("NODE").unwrap_or_else(|| "node".into()));
    run_script(script, &node, &[root.join(script)]).await;
}

#[tokio::test]
async fn python_clients() {
    run_python("tests/compat/test_python_clients.py").await;
}

#[tokio::test]
async fn python_admin_client() {
    run_python("tests/compat/test_python_admin.py").await;
}

#[tokio::test]
async fn npm_admin_client() {
    run_node("tests/compat/admin_client.mjs").await;
}
