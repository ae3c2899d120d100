//! `cambio realm import` and `cambio realm export` against a data directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn cambio(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cambio"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("CAMBIO_LOG", "error")
        .env_remove("CAMBIO_DATABASE")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn import_then_export() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("acme.json");
    let realm = json!({
        "realm": "acme",
        "roles": {"realm": [{"name": "staff"}]},
        "clients": [{"clientId": "acme-app", "secret": "acme-secret", "directAccessGrantsEnabled": true}],
        "users": [{
            "username": "bob",
            "credentials": [{"type": "password", "value": "bob-pass"}],
            "realmRoles": ["staff"]
        }]
    });
    std::fs::write(&file, realm.to_string()).unwrap();
    let file_arg = file.to_str().unwrap();

    let imported = cambio(&["realm", "import", "--file", file_arg], &data);
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert!(String::from_utf8_lossy(&imported.stdout).contains("imported realm 'acme'"));
    let again = cambio(&["realm", "import", "--file", file_arg], &data);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("Conflict"), "{}", stderr(&again));

    let exported = cambio(&["realm", "export", "--realm", "acme"], &data);
    assert!(exported.status.success(), "{}", stderr(&exported));
    let doc: Value = serde_json::from_slice(&exported.stdout).unwrap();
    assert_eq!(doc["realm"], "acme");
    let app = doc["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clientId"] == "acme-app")
        .unwrap();
    assert_eq!(app["secret"], "acme-secret");
    let bob = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap();
    assert_eq!(bob["realmRoles"], json!(["staff"]));
    let hash = bob["credentials"][0]["hashedSaltedValue"].as_str().unwrap();
    assert!(hash.starts_with("$argon2id$"), "{bob}");
    assert!(!exported.stdout.windows(8).any(|w| w == b"bob-pass"));

    // To a file readable by its owner only, then back in under another name.
    let out = dir.path().join("export.json");
    let to_file = cambio(
        &[
            "realm",
            "export",
            "--realm",
            "acme",
            "--file",
            out.to_str().unwrap(),
        ],
        &data,
    );
    assert!(to_file.status.success(), "{}", stderr(&to_file));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mut copy: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    copy["realm"] = json!("acme-copy");
    copy.as_object_mut().unwrap().remove("id");
    std::fs::write(&out, copy.to_string()).unwrap();
    let imported = cambio(&["realm", "import", "--file", out.to_str().unwrap()], &data);
    assert!(imported.status.success(), "{}", stderr(&imported));
    let exported = cambio(&["realm", "export", "--realm", "acme-copy"], &data);
    let doc: Value = serde_json::from_slice(&exported.stdout).unwrap();
    let bob = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap();
    assert_eq!(
        bob["credentials"][0]["hashedSaltedValue"].as_str().unwrap(),
        hash
    );

    let missing = cambio(&["realm", "export", "--realm", "nope"], &data);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("realm not found"),
        "{}",
        stderr(&missing)
    );
    let elsewhere = cambio(
        &["realm", "export", "--realm", "acme"],
        &dir.path().join("empty"),
    );
    assert!(!elsewhere.status.success());
    assert!(
        stderr(&elsewhere).contains("secret.key"),
        "{}",
        stderr(&elsewhere)
    );
}
