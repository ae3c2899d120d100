//! Replays the seed corpus of the `admin_json` fuzz target (`fuzz/`, nightly and cargo-fuzz)
//! on stable: every file of `fuzz/corpus/admin_json` goes through the same code as
//! `fuzz/fuzz_targets/admin_json.rs` (decode into each admin representation, as the server's
//! `admin::parse_json` does; what decodes must encode and decode back to itself).
#![allow(clippy::unwrap_used)]

use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::admin::{
    ClientRep, ClientScopeRep, CredentialRep, FederatedIdentityRep, ManagementPermissionRep,
    RealmRep, RoleRep, UserRep,
};

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + Debug>(data: &[u8]) -> bool {
    let Ok(rep) = serde_json::from_slice::<T>(data) else {
        return false;
    };
    let json = serde_json::to_vec(&rep).expect("a decoded representation encodes");
    let again: T = serde_json::from_slice(&json).expect("an encoded representation decodes");
    assert_eq!(again, rep);
    true
}

/// Whether any representation decoded the input.
fn run(data: &[u8]) -> bool {
    [
        round_trip::<ClientRep>(data),
        round_trip::<UserRep>(data),
        round_trip::<CredentialRep>(data),
        round_trip::<RoleRep>(data),
        round_trip::<Vec<RoleRep>>(data),
        round_trip::<ClientScopeRep>(data),
        round_trip::<ManagementPermissionRep>(data),
        round_trip::<FederatedIdentityRep>(data),
        round_trip::<RealmRep>(data),
    ]
    .contains(&true)
}

#[test]
fn admin_json_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/admin_json");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    let mut panicked = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap();
        match catch_unwind(AssertUnwindSafe(|| run(&data))) {
            Ok(decoded) => {
                // The valid samples decode; the hostile ones need only not panic.
                let name = path.file_name().unwrap().to_string_lossy();
                let valid = [
                    "client",
                    "user",
                    "role_list",
                    "realm_import",
                    "management_permission",
                ];
                assert!(decoded || !valid.contains(&name.as_ref()), "{name}");
            }
            Err(_) => panicked.push(path.display().to_string()),
        }
    }
    assert!(panicked.is_empty(), "panicked on {panicked:?}");
}
