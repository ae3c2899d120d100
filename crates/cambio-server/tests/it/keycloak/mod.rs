//! The differential suite: Keycloak itself answers the same requests as Cambio, the answers are
//! normalised (ids, times, hosts, signatures) and compared, and every difference must be named,
//! with its reason, in `docs/keycloak-differences.md`.
//!
//! One test runs every scenario in turn against one Keycloak process, because Keycloak takes
//! most of a minute to start. Keycloak comes from `scripts/install-keycloak.sh` (run by the
//! test command); without it the test is skipped, except under CI, where it fails.
//!
//! `CAMBIO_KEYCLOAK_DIFFERENCES=write` rewrites the document from the run, keeping the reasons
//! already written; a new difference gets the reason `TODO`, which the test refuses.

mod oracle;
mod scenarios;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::TestServer;

/// The table's header in `docs/keycloak-differences.md`; rows follow it.
const TABLE_HEADER: &str = "| scenario | aspect | Keycloak | Cambio | reason |";

/// One aspect of one scenario on which the two servers answered differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub scenario: String,
    pub aspect: String,
    pub keycloak: String,
    pub cambio: String,
}

/// What one run observed, scenario by scenario.
#[derive(Default)]
pub struct Report {
    pub differences: Vec<Difference>,
    pub compared: usize,
}

impl Report {
    /// Compares one aspect: values equal after normalisation count as the same answer.
    pub fn compare(&mut self, scenario: &str, aspect: &str, keycloak: &Value, cambio: &Value) {
        self.compared += 1;
        if keycloak != cambio {
            self.differences.push(Difference {
                scenario: scenario.to_owned(),
                aspect: aspect.to_owned(),
                keycloak: cell(keycloak),
                cambio: cell(cambio),
            });
        }
    }
}

/// A value as it appears in a table cell: compact JSON, pipes escaped.
fn cell(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.replace('|', "\\|")
}

fn differences_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/keycloak-differences.md")
}

/// The rows of the document: (scenario, aspect) → reason.
fn documented() -> BTreeMap<(String, String), String> {
    let text = std::fs::read_to_string(differences_path()).unwrap_or_default();
    let mut rows = BTreeMap::new();
    let mut in_table = false;
    for line in text.lines() {
        if line == TABLE_HEADER {
            in_table = true;
            continue;
        }
        if !in_table || line.starts_with("|---") {
            continue;
        }
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let cells = split_row(line);
        if cells.len() == 5 {
            rows.insert((cells[0].clone(), cells[1].clone()), cells[4].clone());
        }
    }
    rows
}

/// The cells of a Markdown table row, honouring `\|`.
fn split_row(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                cells.last_mut().unwrap().push_str("\\|");
            }
            '|' => cells.push(String::new()),
            other => cells.last_mut().unwrap().push(other),
        }
    }
    cells.into_iter().map(|c| c.trim().to_owned()).collect()
}

/// The heading of the document's hand-written part, below the table: differences by design
/// that the suite does not exercise. A rewrite keeps it as it is.
const NOT_COMPARED_HEADING: &str = "## Known differences the suite does not exercise";

/// Writes the document from a run, keeping the reasons already written and the hand-written part.
fn write_document(report: &Report, keycloak_version: &str) {
    let reasons = documented();
    let existing = std::fs::read_to_string(differences_path()).unwrap_or_default();
    let hand_written = existing
        .find(NOT_COMPARED_HEADING)
        .map(|at| existing[at..].to_owned());
    let mut out = String::new();
    out.push_str("# Differences from Keycloak\n\n");
    out.push_str(&format!(
        "Produced by the differential suite (`it::keycloak`, run by `scripts/test.sh`): the same \
         requests sent to Keycloak {keycloak_version} (development mode, in-memory database) and to \
         Cambio, answers normalised (ids, times, host names, signatures) and compared. \
         {} aspects compared, {} differ. The test fails when a difference appears that this \
         table does not name, or when a named one no longer appears; \
         `CAMBIO_KEYCLOAK_DIFFERENCES=write scripts/test.sh` rewrites the table and keeps the \
         reasons.\n\n",
        report.compared,
        report.differences.len()
    ));
    out.push_str(TABLE_HEADER);
    out.push('\n');
    out.push_str("|---|---|---|---|---|\n");
    for d in &report.differences {
        let reason = reasons
            .get(&(d.scenario.clone(), d.aspect.clone()))
            .cloned()
            .unwrap_or_else(|| "TODO".into());
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            d.scenario, d.aspect, d.keycloak, d.cambio, reason
        ));
    }
    if let Some(part) = hand_written {
        out.push('\n');
        out.push_str(&part);
    }
    std::fs::write(differences_path(), out).unwrap();
}

#[tokio::test]
async fn keycloak_differential_suite() {
    let Some(home) = oracle::installed_home() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "Keycloak is not installed (scripts/install-keycloak.sh)"
        );
        eprintln!("skipped: Keycloak is not installed (scripts/install-keycloak.sh)");
        return;
    };
    let version = home
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("keycloak-"))
        .unwrap_or("?")
        .to_owned();
    let keycloak = oracle::Keycloak::start(home.clone(), "").await;
    eprintln!("Keycloak {version} started in {:?}", keycloak.started_in);
    let cambio = TestServer::start().await;
    let mut report = Report::default();
    scenarios::run(&keycloak.base, &cambio, &mut report).await;
    drop(keycloak);
    // The legacy model is a server-wide feature of Keycloak's: a second Keycloak runs with it.
    let legacy = oracle::Keycloak::start(home, "token-exchange,admin-fine-grained-authz:v1").await;
    eprintln!(
        "Keycloak (legacy exchange) started in {:?}",
        legacy.started_in
    );
    // Cambio fetches the partner realm's keys from Keycloak on loopback, over plain HTTP.
    let mut config = crate::demo_config();
    config.allow_http_loopback_jwks = true;
    let cambio = TestServer::start_with(config).await;
    scenarios::run_legacy(&legacy.base, &cambio, &mut report).await;
    drop(legacy);

    if std::env::var("CAMBIO_KEYCLOAK_DIFFERENCES").as_deref() == Ok("write") {
        write_document(&report, &version);
    }
    let reasons = documented();
    let observed: BTreeMap<(String, String), &Difference> = report
        .differences
        .iter()
        .map(|d| ((d.scenario.clone(), d.aspect.clone()), d))
        .collect();
    let unnamed: Vec<&&Difference> = observed
        .iter()
        .filter(|(key, _)| reasons.get(*key).is_none_or(|r| r == "TODO"))
        .map(|(_, d)| d)
        .collect();
    let gone: Vec<&(String, String)> = reasons
        .keys()
        .filter(|key| !observed.contains_key(*key))
        .collect();
    assert!(
        unnamed.is_empty() && gone.is_empty(),
        "differences from Keycloak not named (or without a reason) in docs/keycloak-differences.md: \
         {unnamed:#?}\nnamed there but no longer seen: {gone:#?}"
    );
}
