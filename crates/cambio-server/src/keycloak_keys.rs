//! A Keycloak realm's keys (`components["org.keycloak.keys.KeyProvider"]` of an export) as
//! Cambio signing keys, so that tokens the old server issued keep verifying and new tokens are
//! signed by the same key until it is rotated.
//!
//! Keycloak keeps each key provider's settings as lists of strings: `privateKey` (base64 DER,
//! PKCS#1 `RSAPrivateKey` in real exports, PKCS#8 accepted too), `ecdsaPrivateKey` (PKCS#8),
//! `priority`, `active`, `enabled`, `algorithm`, and for some versions `kid`. A key id absent
//! from the settings is computed as Keycloak computes it: base64url of the SHA-256 of the DER
//! `SubjectPublicKeyInfo`. Keys are sealed at rest like Cambio's own. Whatever cannot sign
//! for Cambio (encryption keys, HMAC and AES secrets, keystores, curves and algorithms Cambio
//! does not sign with, disabled keys) is reported.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cambio_jose::{Algorithm, SigningKey};
use serde_json::Value;

use crate::import_report::ImportReport;
use crate::keys::StoredKey;
use crate::secrets::SecretBox;

/// The component type of key providers in a realm export.
pub const KEY_PROVIDER: &str = "org.keycloak.keys.KeyProvider";

/// The longest base64 private key accepted (an 8192-bit RSA key in PKCS#8 is about 6.3 KiB).
const MAX_KEY_TEXT: usize = 16 * 1024;

/// The signing keys of `document` (a realm representation), with what could not be used in
/// `report`.
pub fn signing_keys(
    document: &Value,
    secrets: &SecretBox,
    now: u64,
    report: &mut ImportReport,
) -> Vec<StoredKey> {
    let mut keys: Vec<StoredKey> = Vec::new();
    let mut found: Vec<(String, Value)> = Vec::new();
    // Keycloak 1.x and 2.x kept one RSA key on the realm itself (later versions turned it
    // into an `rsa` provider of priority 100).
    if let Some(private_key) = document.get("privateKey").and_then(Value::as_str) {
        let mut config = serde_json::json!({"privateKey": [private_key], "priority": ["100"]});
        if let Some(certificate) = document.get("certificate").and_then(Value::as_str) {
            config["certificate"] = serde_json::json!([certificate]);
        }
        let component = serde_json::json!({"providerId": "rsa", "config": config});
        found.push(("privateKey".to_owned(), component));
    }
    if let Some(providers) = document
        .get("components")
        .and_then(|c| c.get(KEY_PROVIDER))
        .and_then(Value::as_array)
    {
        for (at, component) in providers.iter().enumerate() {
            found.push((
                format!("components.{KEY_PROVIDER}[{at}]"),
                component.clone(),
            ));
        }
    }
    for (path, component) in found {
        let component = &component;
        match signing_key(component) {
            Ok(key) => {
                if keys.iter().any(|k| k.kid == key.signing.kid()) {
                    report.add(path, format!("a second key with kid {}", key.signing.kid()));
                    continue;
                }
                let mut stored = StoredKey::from_key(secrets, &key.signing, now);
                stored.priority = key.priority;
                stored.passive = !key.active;
                keys.push(stored);
                if setting(component, "certificate").is_some_and(|c| !c.is_empty()) {
                    let at = if path == "privateKey" {
                        "certificate".to_owned()
                    } else {
                        format!("{path}.config.certificate")
                    };
                    report.add(
                        at,
                        "the key is kept, its certificate is not: Cambio's JWKS carries no x5c",
                    );
                }
            }
            Err(reason) => report.add(path, reason),
        }
    }
    keys
}

/// A usable key from one provider component.
struct ImportedKey {
    signing: SigningKey,
    priority: i64,
    active: bool,
}

/// The first value of a setting (Keycloak stores every setting as a list of strings).
fn setting<'a>(component: &'a Value, name: &str) -> Option<&'a str> {
    let value = component.get("config")?.get(name)?;
    match value {
        Value::Array(values) => values.first()?.as_str(),
        Value::String(s) => Some(s.as_str()),
        _ => None,
    }
}

fn flag(component: &Value, name: &str) -> bool {
    setting(component, name).is_none_or(|v| !v.eq_ignore_ascii_case("false"))
}

fn signing_key(component: &Value) -> Result<ImportedKey, String> {
    let provider = component
        .get("providerId")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (key_setting, alg) = match provider {
        "rsa-generated" | "rsa" => {
            let alg = match setting(component, "algorithm").unwrap_or("RS256") {
                "RS256" => Algorithm::Rs256,
                "PS256" => Algorithm::Ps256,
                "RSA-OAEP" | "RSA-OAEP-256" | "RSA1_5" => {
                    return Err(ENCRYPTION_KEY.to_owned());
                }
                other => {
                    return Err(format!(
                        "an RSA key for {other}: Cambio signs with RS256 and PS256 only"
                    ));
                }
            };
            if setting(component, "keyUse").is_some_and(|u| u.eq_ignore_ascii_case("enc")) {
                return Err(ENCRYPTION_KEY.to_owned());
            }
            ("privateKey", alg)
        }
        "ecdsa-generated" => match setting(component, "ecdsaEllipticCurveKey").unwrap_or("P-256") {
            "P-256" => ("ecdsaPrivateKey", Algorithm::Es256),
            other => {
                return Err(format!(
                    "an ECDSA key on {other}: Cambio signs with P-256 (ES256) only"
                ));
            }
        },
        "eddsa-generated" => match setting(component, "eddsaEllipticCurveKey").unwrap_or("Ed25519")
        {
            "Ed25519" => ("eddsaPrivateKey", Algorithm::EdDsa),
            other => {
                return Err(format!(
                    "an EdDSA key on {other}: Cambio signs with Ed25519 only"
                ));
            }
        },
        "rsa-enc-generated" | "rsa-enc" => return Err(ENCRYPTION_KEY.to_owned()),
        "hmac-generated" | "hmac-generated-hs512" => return Err(HMAC_KEY.to_owned()),
        "aes-generated" => return Err(AES_KEY.to_owned()),
        "java-keystore" => return Err(KEYSTORE.to_owned()),
        other => return Err(format!("key provider {other:?} is unknown to Cambio")),
    };
    if !flag(component, "enabled") {
        return Err("a disabled key: Keycloak neither signs nor verifies with it".to_owned());
    }
    let text = setting(component, key_setting)
        .ok_or_else(|| format!("no {key_setting} (a masked or trimmed export?)"))?;
    let der = decode_key_text(text).ok_or_else(|| format!("{key_setting} is not base64 DER"))?;
    let signing = SigningKey::from_private_der(alg, &der)
        .map_err(|e| format!("{key_setting} could not be read: {e}"))?;
    let kid = match setting(component, "kid").filter(|k| !k.is_empty()) {
        Some(kid) => kid.to_owned(),
        None => keycloak_kid(&signing).ok_or("the key id could not be computed")?,
    };
    let signing = signing
        .with_kid(&kid)
        .map_err(|e| format!("kid {kid:?} cannot be used: {e}"))?;
    let priority = match setting(component, "priority") {
        None => 0,
        Some(p) => p
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("priority {p:?} is not a number"))?,
    };
    Ok(ImportedKey {
        signing,
        priority,
        active: flag(component, "active"),
    })
}

const ENCRYPTION_KEY: &str =
    "an encryption key: Cambio encrypts no tokens, so it has no use for it";
const HMAC_KEY: &str = "an HMAC secret: Cambio signs no HMAC tokens, so Keycloak's refresh, \
     offline and action tokens (HS256/HS512) are not accepted after the move; users sign in again";
const AES_KEY: &str = "an AES secret: Cambio encrypts no tokens or cookies with it";
const KEYSTORE: &str = "a Java keystore on the Keycloak host: not readable from an export; \
     export the key and import it as an `rsa` provider";

/// The DER of a base64 key, with or without PEM armour and line breaks.
fn decode_key_text(text: &str) -> Option<Vec<u8>> {
    if text.len() > MAX_KEY_TEXT {
        return None;
    }
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .flat_map(|line| line.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).ok()
}

/// Keycloak's key id: base64url (no padding) of the SHA-256 of the public key's DER
/// `SubjectPublicKeyInfo`.
pub fn keycloak_kid(key: &SigningKey) -> Option<String> {
    let spki = key.public_key_spki_der().ok()?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &spki);
    Some(URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

/// A realm's signing keys as Keycloak key provider components, for a full export: private keys
/// in clear (PKCS#8), each with its `kid`, priority and algorithm, retired keys still published
/// as passive ones (they verify, never sign), keys no longer published left out. Keycloak
/// reads them back (computing its own `kid` for RSA keys); Cambio keeps the `kid` given.
pub fn export_components(
    secrets: &SecretBox,
    stored: &[StoredKey],
    now: u64,
) -> cambio_store::StoreResult<Value> {
    let mut providers = Vec::new();
    for key in stored {
        let published = key.retired_at.is_none_or(|r| r > now)
            || key.publish_until.is_some_and(|until| until > now);
        if !published {
            continue;
        }
        let signing = key.open(secrets)?;
        let private = STANDARD.encode(&*signing.pkcs8_der());
        let active = !key.passive && key.retired_at.is_none_or(|r| r > now);
        let mut config = serde_json::json!({
            "kid": [key.kid],
            "priority": [key.priority.to_string()],
            "active": [active.to_string()],
            "enabled": ["true"],
            "algorithm": [key.alg.as_str()],
        });
        let provider = match key.alg {
            Algorithm::Rs256 | Algorithm::Ps256 => {
                config["privateKey"] = serde_json::json!([private]);
                "rsa"
            }
            Algorithm::Es256 => {
                config["ecdsaPrivateKey"] = serde_json::json!([private]);
                config["ecdsaEllipticCurveKey"] = serde_json::json!(["P-256"]);
                if let Ok(public) = signing.public_key_spki_der() {
                    config["ecdsaPublicKey"] = serde_json::json!([STANDARD.encode(public)]);
                }
                "ecdsa-generated"
            }
            Algorithm::EdDsa => {
                config["eddsaPrivateKey"] = serde_json::json!([private]);
                config["eddsaEllipticCurveKey"] = serde_json::json!(["Ed25519"]);
                "eddsa-generated"
            }
        };
        providers.push(serde_json::json!({
            "id": key.kid,
            "name": format!("cambio-{}", key.alg.as_str().to_lowercase()),
            "providerId": provider,
            "subComponents": {},
            "config": config,
        }));
    }
    Ok(serde_json::json!({ KEY_PROVIDER: providers }))
}

/// Verifies an access token as Keycloak issues them, for the tokens a realm's imported keys
/// signed before the move: header `typ` `JWT` (where Cambio's own say `at+jwt`), and the
/// claim `typ` `Bearer` (Keycloak's and Cambio's ID tokens say `ID`, so an ID token never
/// passes as an access token); `client_id`, which Keycloak writes only for some grants, is
/// taken from `azp`. Every other rule is the caller's `validation` (`allow_expired` for
/// revocation, as for Cambio's own tokens).
pub fn verify_keycloak_access_token(
    token: &str,
    keys: &[cambio_jose::VerifyingKey],
    validation: &cambio_jose::Validation<'_>,
    allow_expired: bool,
) -> Option<(
    cambio_core::tokens::AccessTokenClaims,
    cambio_jose::TokenTimes,
)> {
    let validation = cambio_jose::Validation {
        typ: cambio_jose::TypRule::Exactly("JWT"),
        ..*validation
    };
    let verified = if allow_expired {
        cambio_jose::verify_allowing_expired(token, keys, &validation)
    } else {
        cambio_jose::verify(token, keys, &validation)
    }
    .ok()?;
    let times = verified.times();
    let mut claims = verified.into_claims();
    if claims.get("typ").and_then(Value::as_str) != Some("Bearer") {
        return None;
    }
    if !claims.contains_key("client_id") {
        let azp = claims.get("azp")?.clone();
        claims.insert("client_id".into(), azp);
    }
    let claims = serde_json::from_value(Value::Object(claims)).ok()?;
    Some((claims, times))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn component(provider: &str, config: Value) -> Value {
        json!({"name": provider, "providerId": provider, "config": config})
    }

    #[test]
    fn a_pkcs1_rsa_key_keeps_keycloaks_kid_and_priority() {
        let key = SigningKey::generate(Algorithm::Rs256).unwrap();
        // A 2048-bit key's PKCS#8 holds its PKCS#1 RSAPrivateKey in an OCTET STRING that
        // starts at byte 22 (tag 04, two length bytes): the form Keycloak exports.
        let pkcs8 = key.pkcs8_der();
        assert_eq!(pkcs8[22..24], [0x04, 0x82]);
        let pkcs1 = &pkcs8[26..];
        let c = component(
            "rsa-generated",
            json!({"privateKey": [STANDARD.encode(pkcs1)], "priority": ["100"]}),
        );
        let imported = signing_key(&c).unwrap();
        let spki = key.public_key_spki_der().unwrap();
        let expected = URL_SAFE_NO_PAD
            .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &spki).as_ref());
        assert_eq!(imported.signing.kid(), expected);
        assert_eq!(imported.priority, 100);
        assert!(imported.active);
    }

    #[test]
    fn what_cannot_sign_is_refused_with_its_reason() {
        let cases = [
            ("hmac-generated", json!({"secret": ["x"]}), HMAC_KEY),
            ("aes-generated", json!({"secret": ["x"]}), AES_KEY),
            ("rsa-enc-generated", json!({}), ENCRYPTION_KEY),
            ("java-keystore", json!({}), KEYSTORE),
            (
                "rsa-generated",
                json!({"algorithm": ["RSA-OAEP"], "privateKey": ["AA=="]}),
                ENCRYPTION_KEY,
            ),
        ];
        for (provider, config, reason) in cases {
            let error = signing_key(&component(provider, config)).err().unwrap();
            assert_eq!(error, reason, "{provider}");
        }
        let rs512 = signing_key(&component("rsa", json!({"algorithm": ["RS512"]})));
        assert_eq!(
            rs512.err().unwrap(),
            "an RSA key for RS512: Cambio signs with RS256 and PS256 only"
        );
        let p384 = signing_key(&component(
            "ecdsa-generated",
            json!({"ecdsaEllipticCurveKey": ["P-384"]}),
        ));
        assert_eq!(
            p384.err().unwrap(),
            "an ECDSA key on P-384: Cambio signs with P-256 (ES256) only"
        );
        let garbage = signing_key(&component("rsa", json!({"privateKey": ["bm90IGEga2V5"]})));
        assert!(
            garbage
                .err()
                .unwrap()
                .starts_with("privateKey could not be read")
        );
    }
}
