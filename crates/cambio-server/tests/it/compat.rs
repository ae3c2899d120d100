//! Compatibility with real third-party clients, run against a live server:
//! - tests/compat/test_python_clients.py (PyJWT, python-keycloak's token calls);
//! - tests/compat/test_python_admin.py (python-keycloak's KeycloakAdmin: the fine-grained
//!   token-exchange setup, then the exchange it permits; groups, members and their roles);
//! - tests/compat/admin_client.mjs (@keycloak/keycloak-admin-client: the same setup and groups);
//! - tests/compat/test_dpop.py (DPoP proofs made by PyJWT, every RFC 9449 rule Cambio enforces).
//!
//! The Python clients live in the `.venv-test` virtualenv and the Node ones in
//! tests/compat/node_modules, both set up by `scripts/install-test-deps.sh`; without them a
//! test is skipped locally and fails in CI.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::{ADMIN_PASSWORD, TestServer};

/// The admin-client scripts, which the Keycloak differential suite also runs against Keycloak.
pub const PYTHON_ADMIN: &str = "tests/compat/test_python_admin.py";
pub const NPM_ADMIN: &str = "tests/compat/admin_client.mjs";

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

/// What a compatibility script printed and how it ended.
pub struct ScriptRun {
    pub stdout: String,
    pub stderr: String,
    pub success: bool,
}

impl ScriptRun {
    /// Each check's name and whether it passed, from the `ok   name` and `FAIL name` lines the
    /// scripts print (details and reasons follow on indented lines of their own).
    pub fn checks(&self) -> Vec<(String, bool)> {
        self.stdout
            .lines()
            .filter_map(|line| {
                if let Some(name) = line.strip_prefix("ok   ") {
                    Some((name.to_owned(), true))
                } else {
                    let name = line.strip_prefix("FAIL ")?;
                    Some((name.to_owned(), false))
                }
            })
            .collect()
    }
}

/// Which script runs how, against which server.
pub struct Script<'a> {
    pub path: &'a str,
    pub base: &'a str,
    pub admin_password: &'a str,
    pub realm: &'a str,
}

/// The program that runs a compatibility script (the venv's Python for `.py`, Node for
/// `.mjs`), or `None` (after the skip notice, or a panic in CI) when it is not installed.
pub fn interpreter(script: &str) -> Option<PathBuf> {
    let root = repo_root();
    if script.ends_with(".py") {
        let python = root.join(".venv-test/bin/python");
        present(script, &python, "Python test clients").then_some(python)
    } else {
        let modules = root.join("tests/compat/node_modules/@keycloak/keycloak-admin-client");
        present(script, &modules, "Node test clients")
            .then(|| PathBuf::from(std::env::var_os("NODE").unwrap_or_else(|| "node".into())))
    }
}

/// Runs `program SCRIPT BASE_URL` and collects its output.
pub async fn run_against(program: &Path, script: &Script<'_>) -> ScriptRun {
    let root = repo_root();
    let child = tokio::process::Command::new(program)
        .arg(root.join(script.path))
        .arg(script.base)
        .env("CAMBIO_ADMIN_PASSWORD", script.admin_password)
        .env("CAMBIO_REALM", script.realm)
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{} did not finish within {SCRIPT_TIMEOUT:?}", script.path))
        .unwrap();
    ScriptRun {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        success: output.status.success(),
    }
}

/// Runs `script` against a fresh server's demo realm; asserts it succeeds.
async fn run_script(script: &str) {
    let Some(program) = interpreter(script) else {
        return;
    };
    let server = TestServer::start().await;
    let run = run_against(
        &program,
        &Script {
            path: script,
            base: &server.base,
            admin_password: ADMIN_PASSWORD,
            realm: "demo",
        },
    )
    .await;
    println!("{}", run.stdout);
    eprintln!("{}", run.stderr);
    assert!(run.success, "{script} failed; output above");
    server.stop().await;
}

#[tokio::test]
async fn python_clients() {
    run_script("tests/compat/test_python_clients.py").await;
}

#[tokio::test]
async fn python_admin_client() {
    run_script(PYTHON_ADMIN).await;
}

/// DPoP (RFC 9449) with proofs made by PyJWT over `cryptography` keys.
#[tokio::test]
async fn dpop_with_independent_proofs() {
    run_script("tests/compat/test_dpop.py").await;
}

#[tokio::test]
async fn npm_admin_client() {
    run_script(NPM_ADMIN).await;
}
