//! The README's walkthrough, run as written: every shell block of its "Walkthrough" section,
//! in order, in one `bash` with `set -euo pipefail`, against a fresh `cambio serve --demo`
//! whose address replaces `127.0.0.1:8080`, with this build's `cambio` first on `PATH`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

mod support;
use support::{ServeChild, stderr, stdout};

/// The address the README's commands name.
const README_BASE: &str = "http://127.0.0.1:8080";

/// The shell blocks of the README's "Walkthrough" section, joined.
fn walkthrough_script() -> String {
    section_script("\n## Walkthrough\n")
}

/// The shell blocks of the README section that starts with `heading` (up to the next heading
/// of level 2 or 3), joined.
fn section_script(heading: &str) -> String {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("README has a section {heading:?}"));
    let section = section
        .split("\n## ")
        .next()
        .unwrap_or(section)
        .split("\n### ")
        .next()
        .unwrap_or(section);
    let mut script = String::new();
    let mut rest = section;
    while let Some(start) = rest.find("```sh\n") {
        let block = &rest[start + "```sh\n".len()..];
        let end = block.find("```").expect("a closed code block");
        script.push_str(&block[..end]);
        script.push('\n');
        rest = &block[end + 3..];
    }
    script
}

/// Whether `program` runs; without it the test is skipped locally and fails in CI.
fn present(program: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is needed to run the README walkthrough"
        );
        eprintln!("SKIPPED: {program} is not installed");
    }
    found
}

#[test]
fn the_walkthrough_runs_as_written() {
    if !["bash", "curl", "jq"].into_iter().all(present) {
        return;
    }
    let script = walkthrough_script();
    assert!(script.contains("cambio login") && script.contains("token-exchange"));
    let dir = tempfile::tempdir().unwrap();
    let server = ServeChild::start(&dir.path().join("data"));
    let script = script.replace(README_BASE, &server.base);
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_cambio")).parent().unwrap();
    let path = std::env::join_paths(std::iter::once(bin_dir.to_owned()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .env("PATH", path)
        .env("HOME", dir.path())
        .env("CAMBIO_STATE_FILE", dir.path().join("session.json"))
        .env("CAMBIO_LOG", "error")
        .env_remove("CAMBIO_CLIENT_SECRET")
        .output()
        .unwrap();
    let out = stdout(&output);
    assert!(
        output.status.success(),
        "stdout:\n{out}\nstderr:\n{}",
        stderr(&output)
    );
    // Each step shows what the README says it shows: the first introspection (orders-api's
    // own token), the login, the bound token's introspection (cnf and type DPoP), the 401,
    // then alice at userinfo.
    let is_text = |line: &str| line.trim() == "401" || line.starts_with("logged in to ");
    assert!(out.lines().any(|l| l.starts_with("logged in to ")), "{out}");
    let jsons: Vec<serde_json::Value> = serde_json::Deserializer::from_str(
        &out.lines()
            .filter(|l| !is_text(l))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .into_iter::<serde_json::Value>()
    .collect::<Result<_, _>>()
    .unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(jsons.len(), 3, "{out}");
    assert_eq!(jsons[0]["active"], true, "{out}");
    assert_eq!(jsons[0]["aud"], "orders-api", "{out}");
    assert_eq!(jsons[1]["active"], true, "{out}");
    assert_eq!(jsons[1]["token_type"], "DPoP", "{out}");
    assert!(jsons[1]["cnf"]["jkt"].is_string(), "{out}");
    assert!(out.lines().any(|l| l.trim() == "401"), "{out}");
    assert_eq!(jsons[2]["preferred_username"], "alice", "{out}");
}

/// Runs `script` as a README block runs: bash with `set -euo pipefail`, the server's address
/// for the README's, and the administrator password the demo server was started with.
fn run_block(script: &str, server: &ServeChild, home: &Path) -> String {
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail\n{}",
            script.replace(README_BASE, &server.base)
        ))
        .env("HOME", home)
        .env("CAMBIO_ADMIN_PASSWORD", "admin-password")
        .env("CAMBIO_LOG", "error")
        .output()
        .unwrap();
    let out = stdout(&output);
    assert!(
        output.status.success(),
        "stdout:\n{out}\nstderr:\n{}",
        stderr(&output)
    );
    out
}

/// The last JSON value a block printed.
fn last_json(out: &str) -> serde_json::Value {
    serde_json::Deserializer::from_str(out)
        .into_iter::<serde_json::Value>()
        .filter_map(Result::ok)
        .last()
        .unwrap_or_else(|| panic!("no JSON in {out}"))
}

#[test]
fn the_txn_token_and_identity_chaining_sections_run_as_written() {
    if !["bash", "curl", "jq"].into_iter().all(present) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = ServeChild::start(&dir.path().join("data"));
    let txn = run_block(
        &section_script("\n### Transaction Tokens"),
        &server,
        dir.path(),
    );
    let replaced = last_json(&txn);
    assert_eq!(replaced["token_type"], "N_A", "{txn}");
    assert_eq!(
        replaced["issued_token_type"], "urn:ietf:params:oauth:token-type:txn_token",
        "{txn}"
    );
    let chained = run_block(
        &section_script("\n### Identity chaining across trust domains"),
        &server,
        dir.path(),
    );
    let token = last_json(&chained);
    assert_eq!(token["active"], true, "{chained}");
    assert_eq!(
        token["iss"],
        format!("{}/realms/partner", server.base),
        "{chained}"
    );
    assert_eq!(token["username"], "alice", "{chained}");
}
