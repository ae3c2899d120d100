//! `GET /admin/realms/{realm}/keys`: the realm's keys as Keycloak lists them
//! (`KeysMetadataRepresentation`), from the keys the realm holds now, for `view-realm`.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::{Value, json};

use crate::authority::{Admin, login};
use crate::{TestServer, header};

fn field_names(key: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = key
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names
}

/// The EC point of a P-256 `SubjectPublicKeyInfo` (its last 64 bytes are `x || y`) must be the
/// one the JWKS publishes under the same `kid`.
fn assert_same_public_key(public_key: &Value, jwk: &Value) {
    let der = STANDARD.decode(public_key.as_str().unwrap()).unwrap();
    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap();
    assert_eq!(der.len(), 91, "a P-256 SubjectPublicKeyInfo");
    assert_eq!(&der[27..], [x, y].concat().as_slice());
}

#[tokio::test]
async fn keys_are_listed_with_status_priority_and_public_key() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    let signed = s.service_token().await.access_token();
    let kid = header(&signed)["kid"].as_str().unwrap().to_owned();
    let jwks = s.jwks().await.body;

    let listed = root.ok("/keys").await;
    assert_eq!(listed["active"], json!({"ES256": kid}));
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{listed}");
    let key = &keys[0];
    // Exactly Keycloak's fields for a key without a certificate or an end date.
    assert_eq!(
        field_names(key),
        [
            "algorithm",
            "kid",
            "providerId",
            "providerPriority",
            "publicKey",
            "status",
            "type",
            "use"
        ]
    );
    assert_eq!(key["kid"], kid.as_str());
    assert_eq!(key["providerId"], kid.as_str());
    assert_eq!(key["providerPriority"], 0);
    assert_eq!(key["status"], "ACTIVE");
    assert_eq!(key["type"], "EC");
    assert_eq!(key["algorithm"], "ES256");
    assert_eq!(key["use"], "SIG");
    assert_same_public_key(&key["publicKey"], &jwks["keys"][0]);

    // After a rotation the new key signs and the old one only verifies, until a known time.
    let rotated = root
        .send(Method::POST, "/keys/rotate", Some(json!({})))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_kid = rotated.body["kid"].as_str().unwrap().to_owned();
    let listed = root.ok("/keys").await;
    assert_eq!(listed["active"], json!({"ES256": new_kid}));
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{listed}");
    let by_kid = |kid: &str| keys.iter().find(|k| k["kid"] == kid).unwrap().clone();
    let (new, old) = (by_kid(&new_kid), by_kid(&kid));
    assert_eq!(new["status"], "ACTIVE");
    assert!(new.get("validTo").is_none(), "{new}");
    assert_eq!(old["status"], "PASSIVE");
    // The old key stays published for the longest access-token lifetime and a minute more.
    let valid_to = old["validTo"].as_u64().unwrap();
    let now_ms = crate::now() * 1000;
    assert!(
        valid_to > now_ms && valid_to <= now_ms + (3600 + 60 + 5) * 1000,
        "{valid_to} vs {now_ms}"
    );
    // The newest is listed first among keys of equal priority.
    assert_eq!(keys[0]["kid"], new_kid.as_str());
}

#[tokio::test]
async fn keys_need_view_realm() {
    let s = TestServer::start().await;
    let root = Admin::new(&s, "demo", &s.admin_token().await);
    root.user_with("keys-viewer", &["view-realm"]).await;
    root.user_with("keys-manager", &["manage-realm"]).await;
    root.user_with("clients-viewer", &["view-clients", "view-users"])
        .await;
    for (user, status) in [
        ("keys-viewer", 200),
        ("keys-manager", 200),
        ("clients-viewer", 403),
    ] {
        let token = login(&s, "demo", user).await;
        Admin::new(&s, "demo", &token)
            .expect(status, Method::GET, "/keys", None)
            .await;
    }
    // A view-realm user may look, not rotate.
    let viewer = Admin::new(&s, "demo", &login(&s, "demo", "keys-viewer").await);
    viewer
        .expect(403, Method::POST, "/keys/rotate", Some(json!({})))
        .await;
    let alice = s.alice(None).await.access_token();
    Admin::new(&s, "demo", &alice)
        .expect(403, Method::GET, "/keys", None)
        .await;
    Admin::new(&s, "demo", "not-a-token")
        .expect(401, Method::GET, "/keys", None)
        .await;
    // A realm's administrator does not read another realm's keys.
    let token = login(&s, "demo", "keys-viewer").await;
    Admin::new(&s, "master", &token)
        .expect(401, Method::GET, "/keys", None)
        .await;
    let root_token = s.admin_token().await;
    Admin::new(&s, "nowhere", &root_token)
        .expect(404, Method::GET, "/keys", None)
        .await;
}
