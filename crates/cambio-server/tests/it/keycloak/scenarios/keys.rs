//! `GET /admin/realms/{realm}/keys` (Keycloak's `KeysMetadataRepresentation`): the list's
//! shape, the realm's signing key as both describe it, and who may read it.

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use super::*;

const SCENARIO: &str = "admin keys";

/// The key that signs the realm's tokens (RS256 in the oracle realm), as listed.
fn signing_key(list: &Value) -> Value {
    let kid = &list["active"]["RS256"];
    list["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| &k["kid"] == kid))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Whether `publicKey` is base64 of a DER `SubjectPublicKeyInfo` (a SEQUENCE).
fn is_spki(key: &Value) -> Value {
    let der = key["publicKey"]
        .as_str()
        .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok());
    json!(der.is_some_and(|der| der.len() > 64 && der[0] == 0x30))
}

/// The distinct values of `field` among the listed keys, sorted.
fn listed(list: &Value, field: &str) -> Value {
    let mut values: Vec<String> = list["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k[field].as_str().map(str::to_owned))
        .collect();
    values.sort();
    values.dedup();
    json!(values)
}

pub(super) async fn keys(
    kc: &Peer,
    kc_token: &str,
    cb: &Peer,
    cb_token: &str,
    report: &mut Report,
) {
    let (a, b) = (
        kc.admin(kc_token, Method::GET, "/keys", None).await,
        cb.admin(cb_token, Method::GET, "/keys", None).await,
    );
    report.compare(
        SCENARIO,
        "status",
        &json!(a.status.as_u16()),
        &json!(b.status.as_u16()),
    );
    report.compare(SCENARIO, "members", &members(&a.body), &members(&b.body));
    let active_algorithms = |list: &Value| {
        json!(
            list["active"]
                .as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        )
    };
    report.compare(
        SCENARIO,
        "active algorithms",
        &active_algorithms(&a.body),
        &active_algorithms(&b.body),
    );
    report.compare(
        SCENARIO,
        "algorithms listed",
        &listed(&a.body, "algorithm"),
        &listed(&b.body, "algorithm"),
    );
    report.compare(
        SCENARIO,
        "uses listed",
        &listed(&a.body, "use"),
        &listed(&b.body, "use"),
    );
    let (kc_key, cb_key) = (signing_key(&a.body), signing_key(&b.body));
    report.compare(
        SCENARIO,
        "signing key members",
        &members(&kc_key),
        &members(&cb_key),
    );
    for field in ["type", "algorithm", "status", "use", "providerPriority"] {
        report.compare(
            SCENARIO,
            &format!("signing key {field}"),
            &kc_key[field],
            &cb_key[field],
        );
    }
    report.compare(
        SCENARIO,
        "signing key publicKey is a SubjectPublicKeyInfo",
        &is_spki(&kc_key),
        &is_spki(&cb_key),
    );
    // Who may read: nobody without a token, not alice (no realm-management role).
    let subject = ("subject-client", Some("subject-secret"));
    for (who, kc_reader, cb_reader) in [
        ("without a token", String::new(), String::new()),
        (
            "as a user without view-realm",
            kc.alice(subject).await.access_token(),
            cb.alice(subject).await.access_token(),
        ),
    ] {
        let (a, b) = (
            kc.admin(&kc_reader, Method::GET, "/keys", None).await,
            cb.admin(&cb_reader, Method::GET, "/keys", None).await,
        );
        report.compare(
            SCENARIO,
            &format!("status {who}"),
            &json!(a.status.as_u16()),
            &json!(b.status.as_u16()),
        );
    }
}
