//! Compatibility with real third-party clients: runs tests/compat/test_python_clients.py
//! (PyJWT, python-keycloak) against a live server. The clients live in the `.venv-test`
//! virtualenv that `scripts/install-test-deps.sh` creates; without it the test is skipped
//! locally and fails in CI.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::{ADMIN_PASSWORD, TestServer};

fn repo_root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.ancestors().nth(2).unwrap_or(crate_dir).to_owned()
}

/// Runs `script` with the venv's Python and the server's base URL; asserts it succeeds.
async fn run_python(script: &str) {
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
        eprintln!("SKIPPED {script}: {notice}");
        return;
    }
    let server = TestServer::start().await;
    let child = tokio::process::Command::new(&python)
        .arg(root.join(script))
        .arg(&server.base)
        .env("CAMBIO_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within 120 s"))
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

#[tokio::test]
async fn python_clients() {
    run_python("tests/compat/test_python_clients.py").await;
}
