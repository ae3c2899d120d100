//! Migration from Keycloak: a realm export imports with its signing keys, its password hashes
//! and Keycloak's defaults, and the import reports what it could not keep.

mod authz_kept;
mod exports;
mod keys;
mod partial;
mod partial_groups;
mod partial_overwrite;
mod passwords;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cambio_jose::{Algorithm, SigningKey};
use serde_json::{Value, json};

use crate::{TestServer, reply};

/// POSTs a realm document (raw bytes) as a `master` administrator.
pub(crate) async fn import(server: &TestServer, admin: &str, body: Vec<u8>) -> crate::Reply {
    let response = server
        .http
        .post(format!("{}/admin/realms", server.base))
        .bearer_auth(admin)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    reply(response).await
}

fn report_paths(report: &Value) -> Vec<String> {
    report["notImported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["path"].as_str().unwrap().to_owned())
        .collect()
}

fn reason<'a>(report: &'a Value, path: &str) -> &'a str {
    report["notImported"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["path"] == path)
        .and_then(|entry| entry["reason"].as_str())
        .unwrap_or_else(|| panic!("{path} not reported: {report}"))
}

/// Keycloak's kid: base64url of the SHA-256 of the DER SubjectPublicKeyInfo.
fn keycloak_kid(key: &SigningKey) -> String {
    let spki = key.public_key_spki_der().unwrap();
    URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &spki).as_ref())
}

/// A 2048-bit RSA key's PKCS#1 `RSAPrivateKey` (what Keycloak exports), cut out of the PKCS#8
/// that aws-lc-rs writes: the OCTET STRING that holds it starts at byte 22.
fn pkcs1(key: &SigningKey) -> String {
    let pkcs8 = key.pkcs8_der();
    assert_eq!(pkcs8[22..24], [0x04, 0x82]);
    STANDARD.encode(&pkcs8[26..])
}

/// Keycloak 11+ credential of a password hashed with `algorithm`.
fn credential(algorithm: &str, iterations: u64, salt: &str, value: &str, extra: Value) -> Value {
    json!({
        "id": "cred-1", "type": "password", "userLabel": "My password", "createdDate": 1_700_000_000_000u64,
        "secretData": json!({"value": value, "salt": salt, "additionalParameters": {}}).to_string(),
        "credentialData": json!({"hashIterations": iterations, "algorithm": algorithm,
                                 "additionalParameters": extra}).to_string()
    })
}

fn user(name: &str, credentials: Value) -> Value {
    json!({"id": format!("id-{name}"), "username": name, "enabled": true, "credentials": credentials})
}

/// The password every hashed test user has.
const PASSWORD: &str = "correct horse";
/// The salt of the test vectors, base64 of `keycloak-salt-16`.
const SALT: &str = "a2V5Y2xvYWstc2FsdC0xNg==";

/// Where the real exports are kept (see the README there for their sources).
fn exports_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/data/keycloak-exports")
}

fn read_export(name: &str) -> Value {
    let bytes = std::fs::read(exports_dir().join(name)).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The kid Keycloak gives the RSA key in `private_key` (base64 PKCS#1).
fn kid_of(private_key: &str) -> String {
    let der = STANDARD.decode(private_key).unwrap();
    keycloak_kid(&SigningKey::from_private_der(Algorithm::Rs256, &der).unwrap())
}

/// A password grant in `realm` through a public client.
async fn public_login(
    server: &TestServer,
    realm: &str,
    client: &str,
    username: &str,
    password: &str,
) -> crate::Reply {
    server
        .post_form(
            &server.oidc(realm, "token"),
            &[
                ("grant_type", "password"),
                ("client_id", client),
                ("username", username),
                ("password", password),
            ],
            None,
        )
        .await
}

async fn jwks_kids(server: &TestServer, realm: &str) -> Vec<String> {
    let jwks = server.get(&server.oidc(realm, "certs"), None).await;
    jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn names_of_aliases(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p["alias"].as_str().unwrap().to_owned())
        .collect()
}
