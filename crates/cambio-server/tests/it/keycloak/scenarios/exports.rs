//! Real Keycloak exports (those of `it::migration`, from public projects and from Keycloak
//! 26.7.3 itself) imported into both servers: what each holds afterwards (clients, roles, users,
//! identity providers, signing algorithm and keys), whether the known users sign in, whether a
//! token Keycloak signs verifies with the keys Cambio imported, and the round trip: Cambio's
//! export of each imported realm imported into Keycloak again, compared with Keycloak's own
//! import of the original.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;

/// One export: its label, the realm representation (users files merged in), and a user who can
/// sign in (client, client secret, username, password).
struct Export {
    label: &'static str,
    realm: Value,
    login: Option<(
        &'static str,
        Option<&'static str>,
        &'static str,
        &'static str,
    )>,
}

fn data(path: &str) -> Value {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/data/keycloak-exports")
        .join(path);
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A `kc.sh export --dir` realm with its users file.
fn with_users(realm: &str, users: &str) -> Value {
    let mut rep = data(realm);
    rep["users"] = data(users)["users"].clone();
    rep
}

fn exports() -> Vec<Export> {
    let mut older = data("kc1.9-nodejs-test.json");
    // Both nodejs-test exports name the same realm; the older one gets its own name here.
    older["realm"] = json!("nodejs-test-kc19");
    older.as_object_mut().map(|o| o.remove("id"));
    vec![
        Export {
            label: "Keycloak 26.7.3 export",
            realm: with_users(
                "kc26-export-dir/kc26-realm.json",
                "kc26-export-dir/kc26-users-0.json",
            ),
            login: Some(("app", Some("app-secret"), "alice", "alice-kc26")),
        },
        Export {
            label: "Keycloak 10 export (oauth2-proxy)",
            realm: with_users(
                "kc10-export-dir/oauth2-proxy-realm.json",
                "kc10-export-dir/oauth2-proxy-users-0.json",
            ),
            login: Some((
                "oauth2-proxy",
                Some("72341b6d-7065-4518-a0e4-50ee15025608"),
                "admin@example.com",
                "password",
            )),
        },
        Export {
            label: "Keycloak 6 export (nodejs-test)",
            realm: data("kc6-nodejs-test.json"),
            login: Some(("public-client", None, "test-user", "tiger")),
        },
        Export {
            label: "Keycloak 1.9 export (nodejs-test)",
            realm: older,
            login: Some(("public-client", None, "test-user", "tiger")),
        },
        Export {
            label: "servlet-authz quickstart",
            realm: data("quickstart-servlet-authz.json"),
            login: None,
        },
    ]
}

/// Whether the export carries key material (then both servers must publish its keys).
fn carries_keys(realm: &Value) -> bool {
    realm.get("privateKey").is_some()
        || realm["components"]["org.keycloak.keys.KeyProvider"]
            .as_array()
            .is_some_and(|providers| {
                providers.iter().any(|p| {
                    p["config"]["privateKey"].is_array()
                        || p["config"]["ecdsaPrivateKey"].is_array()
                })
            })
}

impl Peer {
    async fn realm_admin(&self, token: &str, realm: &str, path: &str) -> Reply {
        let url = format!("{}/admin/realms/{realm}{path}", self.base);
        reply(self.http.get(url).bearer_auth(token).send().await.unwrap()).await
    }

    /// What a realm holds, as lists of names.
    async fn holdings(&self, token: &str, realm: &str) -> Vec<(&'static str, Value)> {
        let names = |reply: Reply, member: &str| {
            let mut list: Vec<String> = reply
                .body
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i[member].as_str().map(str::to_lowercase))
                        .collect()
                })
                .unwrap_or_default();
            list.sort();
            json!(list)
        };
        vec![
            (
                "clients",
                names(
                    self.realm_admin(token, realm, "/clients?max=500").await,
                    "clientId",
                ),
            ),
            (
                "realm roles",
                names(
                    self.realm_admin(token, realm, "/roles?max=500").await,
                    "name",
                ),
            ),
            (
                "users",
                names(
                    self.realm_admin(token, realm, "/users?max=500&briefRepresentation=true")
                        .await,
                    "username",
                ),
            ),
            (
                "identity providers",
                names(
                    self.realm_admin(token, realm, "/identity-provider/instances")
                        .await,
                    "alias",
                ),
            ),
        ]
    }

    async fn signing_keys(&self, realm: &str, with_ids: bool) -> Value {
        let url = format!("{}/realms/{realm}/protocol/openid-connect/certs", self.base);
        let jwks = reply(self.http.get(url).send().await.unwrap()).await;
        let mut keys: Vec<String> = jwks.body["keys"]
            .as_array()
            .map(|keys| {
                keys.iter()
                    .filter(|k| k["use"] != "enc")
                    .map(|k| {
                        let alg = k["alg"].as_str().unwrap_or("");
                        match with_ids {
                            true => format!("{} {alg}", k["kid"].as_str().unwrap_or("")),
                            false => alg.to_owned(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        keys.sort();
        json!(keys)
    }
}

pub(super) async fn realistic_exports(
    kc: &Peer,
    kc_admin: &str,
    cb: &Peer,
    cb_admin: &str,
    report: &mut Report,
) {
    for export in exports() {
        let name = export.realm["realm"].as_str().unwrap_or("").to_owned();
        let scenario = |aspect: &str| format!("{}: {aspect}", export.label);
        let (a, b) = (
            kc.import(kc_admin, &export.realm).await,
            cb.import(cb_admin, &export.realm).await,
        );
        report.compare(
            &scenario("import"),
            "status",
            &json!(a.status.as_u16()),
            &json!(b.status.as_u16()),
        );
        if a.status != 201 || b.status != 201 {
            eprintln!(
                "{}: Keycloak {} {}; Cambio {} {}",
                export.label, a.status, a.text, b.status, b.text
            );
            continue;
        }
        let (held_kc, held_cb) = (
            kc.holdings(kc_admin, &name).await,
            cb.holdings(cb_admin, &name).await,
        );
        for ((what, x), (_, y)) in held_kc.iter().zip(&held_cb) {
            report.compare(&scenario("import"), what, x, y);
        }
        let algorithm = |r: Reply| r.body["defaultSignatureAlgorithm"].clone();
        report.compare(
            &scenario("import"),
            "signature algorithm",
            &algorithm(kc.realm_admin(kc_admin, &name, "").await),
            &algorithm(cb.realm_admin(cb_admin, &name, "").await),
        );
        let with_ids = carries_keys(&export.realm);
        report.compare(
            &scenario("import"),
            if with_ids {
                "signing keys (kid, alg)"
            } else {
                "signing keys (alg)"
            },
            &kc.signing_keys(&name, with_ids).await,
            &cb.signing_keys(&name, with_ids).await,
        );
        if let Some((client, secret, username, password)) = export.login {
            let form = |peer: &Peer| {
                let mut form = vec![
                    ("grant_type", "password"),
                    ("client_id", client),
                    ("username", username),
                    ("password", password),
                ];
                if let Some(secret) = secret {
                    form.push(("client_secret", secret));
                }
                (
                    format!("{}/realms/{name}/protocol/openid-connect/token", peer.base),
                    form,
                )
            };
            let (url, f) = form(kc);
            let a = kc.form(&url, &f, None).await;
            let (url, f) = form(cb);
            let b = cb.form(&url, &f, None).await;
            report.compare(
                &scenario("password login"),
                "status",
                &json!(a.status.as_u16()),
                &json!(b.status.as_u16()),
            );
            if with_ids && a.status == 200 {
                // The token Keycloak signs verifies with the keys Cambio imported (the issuer is
                // Keycloak's here; after a move the host name would be the same).
                let url = format!("{}/realms/{name}/protocol/openid-connect/certs", cb.base);
                let jwks = cb
                    .http
                    .get(url)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                let keys = cambio_jose::parse_jwks(&jwks, None).expect("Cambio's JWKS");
                let validation = cambio_jose::Validation {
                    issuer: None,
                    typ: cambio_jose::TypRule::Skip,
                    audience: cambio_jose::AudienceRule::Skip,
                    ..cambio_jose::Validation::new(crate::now())
                };
                let verified = cambio_jose::verify(&a.access_token(), &keys, &validation);
                assert!(
                    verified.is_ok(),
                    "{}: Keycloak's token does not verify with Cambio's keys: {verified:?}",
                    export.label
                );
            }
        }
        round_trip(
            kc,
            kc_admin,
            cb,
            cb_admin,
            &name,
            &scenario("round trip through Cambio"),
            report,
        )
        .await;
    }
}

/// Cambio's partial export of `realm`, imported into Keycloak under another name, compared with
/// Keycloak's import of the original.
async fn round_trip(
    kc: &Peer,
    kc_admin: &str,
    cb: &Peer,
    cb_admin: &str,
    realm: &str,
    scenario: &str,
    report: &mut Report,
) {
    let url = format!(
        "{}/admin/realms/{realm}/partial-export?exportClients=true&exportGroupsAndRoles=true",
        cb.base
    );
    let exported = reply(
        cb.http
            .post(url)
            .bearer_auth(cb_admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    report.compare(
        scenario,
        "export status",
        &json!(200),
        &json!(exported.status.as_u16()),
    );
    // A copy beside the original in the same Keycloak: its ids would collide with the
    // original's (Keycloak's own exports do the same), so they go, as when a realm is cloned.
    let mut rep = without_ids(exported.body);
    let again = format!("{realm}-again");
    rep["realm"] = json!(again);
    let imported = kc.import(kc_admin, &rep).await;
    report.compare(
        scenario,
        "Keycloak imports it",
        &json!(201),
        &json!(imported.status.as_u16()),
    );
    if imported.status != 201 {
        eprintln!("{scenario}: {} {}", imported.status, imported.text);
        // Which members Keycloak cannot read: removed one after another until it imports.
        if let Some(members) = rep.as_object() {
            let mut without = rep.clone();
            without["realm"] = json!(format!("{again}-probe"));
            for name in members.keys().filter(|n| *n != "realm") {
                without.as_object_mut().map(|o| o.remove(name));
                let probe = kc.import(kc_admin, &without).await;
                if probe.status == 201 {
                    eprintln!(
                        "{scenario}: Keycloak reads it once `{name}` is removed too: {}",
                        rep[name]
                    );
                    let url = format!("{}/admin/realms/{again}-probe", kc.base);
                    let _ = kc.http.delete(url).bearer_auth(kc_admin).send().await;
                    break;
                }
            }
        }
        return;
    }
    let (original, round) = (
        kc.holdings(kc_admin, realm).await,
        kc.holdings(kc_admin, &again).await,
    );
    // Keycloak names a realm's default-roles composite after the realm.
    let renamed = |value: &Value| {
        let text = value.to_string().replace(
            &format!("default-roles-{again}"),
            &format!("default-roles-{realm}"),
        );
        serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)
    };
    // Partial exports carry no users (Keycloak's and Cambio's alike).
    for ((what, x), (_, y)) in original
        .iter()
        .zip(&round)
        .filter(|((w, _), _)| *w != "users")
    {
        report.compare(scenario, what, x, &renamed(y));
    }
}

/// `value` without the members that identify stored objects (`id`, `_id`, `internalId`,
/// `containerId`), at any depth.
fn without_ids(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| !matches!(k.as_str(), "id" | "_id" | "internalId" | "containerId"))
                .map(|(k, v)| (k, without_ids(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_ids).collect()),
        other => other,
    }
}
