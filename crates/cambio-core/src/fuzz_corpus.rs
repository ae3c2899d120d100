//! Replays the seed corpus of the `form_params` fuzz target (`fuzz/`, nightly and
//! cargo-fuzz) on stable: every file of `fuzz/corpus/form_params` goes through the same code
//! as `fuzz/fuzz_targets/form_params.rs`, and none may panic.
#![allow(clippy::unwrap_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use crate::form::FormParams;

const NAMES: [&str; 6] = [
    "grant_type",
    "audience",
    "resource",
    "client_id",
    "scope",
    "",
];

fn run(data: &[u8]) {
    let Ok(form) = FormParams::parse(data) else {
        return;
    };
    for name in NAMES {
        // Empty values count as absent; a single-valued parameter is never repeated.
        assert!(form.get(name).is_none_or(|v| !v.is_empty()));
        assert!(form.all(name).all(|v| !v.is_empty()));
        assert_eq!(form.contains(name), form.get(name).is_some());
        if name != "audience" && name != "resource" {
            assert!(form.all(name).count() <= 1);
        }
    }
    let _ = form.require("grant_type");
}

#[test]
fn form_params_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/form_params");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    let panicked: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).unwrap();
            catch_unwind(AssertUnwindSafe(|| run(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(panicked.is_empty(), "panicked on {panicked:?}");
    // The samples still mean what their names say.
    let sample = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let exchange = FormParams::parse(&sample("token_exchange")).unwrap();
    assert_eq!(exchange.all("audience").count(), 2);
    assert!(FormParams::parse(&sample("repeated_parameter")).is_err());
    assert!(FormParams::parse(&sample("non_ascii_body")).is_err());
    assert!(FormParams::parse(&sample("too_many_parameters")).is_err());
}
