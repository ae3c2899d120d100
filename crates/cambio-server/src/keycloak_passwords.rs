//! Keycloak's password credentials as PHC strings Cambio verifies, with bounds on the cost
//! an imported hash may ask of every login.
//!
//! Keycloak (11 and later) stores a password as `secretData` (a JSON string: `value` and
//! `salt`, both base64) and `credentialData` (a JSON string: `hashIterations`, `algorithm`,
//! `additionalParameters`); older exports put `hashedSaltedValue`, `salt`, `hashIterations`
//! and `algorithm` on the credential itself. The algorithms are `pbkdf2` (HMAC-SHA-1),
//! `pbkdf2-sha256`, `pbkdf2-sha512` (the derived length is the stored value's length) and,
//! from Keycloak 24, `argon2` with `type`, `version`, `memory` (KiB), `parallelism` and
//! `hashLength`. Both hash the password's UTF-8 bytes. (Keycloak pads passwords shorter than
//! 14 characters with NUL characters before PBKDF2; as the HMAC key is zero-padded to its
//! block anyway, the padding changes nothing and is not repeated here.)
//!
//! They become `$pbkdf2-sha256$i=27500$salt$hash` and `$argon2id$v=19$m=..,t=..,p=..$salt$hash`
//! (PHC, unpadded standard base64), which [`crate::passwords::verify`] checks and the next
//! successful login replaces with Cambio's own Argon2id hash.

use std::num::NonZeroU32;

use argon2::password_hash::PasswordHash;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use cambio_proto::admin::CredentialRep;
use serde_json::Value;

/// The most HMAC computations one PBKDF2 verification may take (iterations times output
/// blocks): Keycloak's heaviest default, `pbkdf2` with 1,300,000 iterations and 64 bytes (four
/// SHA-1 blocks), fits; a hostile import cannot make each login cost more.
pub const PBKDF2_MAX_WORK: u64 = 6_000_000;
/// The most memory (KiB), passes and lanes one Argon2 verification may use. Keycloak's
/// default is 7,168 KiB, 5 passes, 1 lane; Cambio's own 19,456 KiB, 2 passes, 1 lane.
pub const ARGON2_MAX_MEMORY_KIB: u32 = 65_536;
pub const ARGON2_MAX_PASSES: u32 = 10;
pub const ARGON2_MAX_LANES: u32 = 8;

/// A user's password as an import finds it.
#[derive(Debug, PartialEq, Eq)]
pub enum Password {
    None,
    /// Given in clear (`value`): hashed by the importer.
    Clear(String),
    /// A hash Cambio verifies (its own Argon2id, or a converted Keycloak hash).
    Hash(String),
}

/// The password among a user's credentials; every credential that cannot be kept is
/// reported under `{path}.credentials[i]` (a user whose hash is refused is imported without a
/// password, and must have it reset).
pub fn password(
    credentials: Option<&[CredentialRep]>,
    path: &str,
    report: &mut crate::import_report::ImportReport,
) -> Password {
    let mut found = Password::None;
    for (at, credential) in credentials.unwrap_or_default().iter().enumerate() {
        let here = format!("{path}.credentials[{at}]");
        match credential.credential_type.as_deref() {
            None | Some("password") => {}
            Some(other) => {
                report.add(
                    here,
                    format!("a {other} credential: Cambio keeps passwords only"),
                );
                continue;
            }
        }
        if let Some(value) = credential.value.as_ref().filter(|v| !v.is_empty()) {
            found = Password::Clear(value.clone());
            continue;
        }
        // Cambio's own export carries the PHC string in `hashedSaltedValue`.
        let converted = match credential.hashed_salted_value.as_deref() {
            Some(phc) if phc.starts_with('$') => check_bounds(phc).map(|()| phc.to_owned()),
            _ => phc_from_credential(credential),
        };
        match converted {
            Ok(hash) => found = Password::Hash(hash),
            Err(reason) => report.add(
                here,
                format!("password not imported ({reason}); the user has none until it is reset"),
            ),
        }
    }
    found
}

/// The PHC string for a Keycloak password credential, or why it cannot be used.
pub fn phc_from_credential(credential: &CredentialRep) -> Result<String, String> {
    let (value, salt, iterations, algorithm, parameters) =
        match (&credential.secret_data, &credential.credential_data) {
            (Some(secret), Some(data)) => {
                let secret: Value = serde_json::from_str(secret)
                    .map_err(|_| "secretData is not a JSON object".to_owned())?;
                let data: Value = serde_json::from_str(data)
                    .map_err(|_| "credentialData is not a JSON object".to_owned())?;
                (
                    text(&secret, "value")?,
                    text(&secret, "salt")?,
                    data.get("hashIterations").and_then(Value::as_i64),
                    text(&data, "algorithm")?,
                    data.get("additionalParameters").cloned(),
                )
            }
            _ => (
                credential
                    .hashed_salted_value
                    .clone()
                    .ok_or("no hashed value")?,
                credential.salt.clone().ok_or("no salt")?,
                credential.hash_iterations,
                credential.algorithm.clone().ok_or("no algorithm")?,
                None,
            ),
        };
    let hash = STANDARD
        .decode(value.trim())
        .map_err(|_| "the hashed value is not base64".to_owned())?;
    let salt = STANDARD
        .decode(salt.trim())
        .map_err(|_| "the salt is not base64".to_owned())?;
    if !(4..=48).contains(&salt.len()) {
        return Err(format!("a salt of {} bytes (4 to 48 are read)", salt.len()));
    }
    if !(10..=64).contains(&hash.len()) {
        return Err(format!(
            "a hash of {} bytes (10 to 64 are read)",
            hash.len()
        ));
    }
    let iterations = iterations
        .and_then(|i| u32::try_from(i).ok())
        .filter(|i| *i > 0)
        .ok_or("no valid hashIterations")?;
    let b64 = |bytes: &[u8]| STANDARD_NO_PAD.encode(bytes);
    let phc = match algorithm.as_str() {
        "pbkdf2" | "pbkdf2-sha256" | "pbkdf2-sha512" => {
            format!("${algorithm}$i={iterations}${}${}", b64(&salt), b64(&hash))
        }
        "argon2" => {
            let parameters = parameters.unwrap_or(Value::Null);
            let number = |name: &str| -> Result<u32, String> {
                parameter(&parameters, name)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("argon2 without a numeric {name}"))
            };
            let variant = match parameter(&parameters, "type").unwrap_or("id") {
                "id" => "argon2id",
                "i" => "argon2i",
                "d" => "argon2d",
                other => return Err(format!("argon2 type {other:?} is unknown")),
            };
            let version = match parameter(&parameters, "version").unwrap_or("1.3") {
                "1.3" => 19,
                "1.0" => 16,
                other => return Err(format!("argon2 version {other:?} is unknown")),
            };
            let hash_length = number("hashLength")?;
            if usize::try_from(hash_length).ok() != Some(hash.len()) {
                return Err("argon2 hashLength differs from the stored hash".to_owned());
            }
            format!(
                "${variant}$v={version}$m={},t={iterations},p={}${}${}",
                number("memory")?,
                number("parallelism")?,
                b64(&salt),
                b64(&hash)
            )
        }
        other => {
            return Err(format!(
                "password hash algorithm {other:?} is unknown to Cambio"
            ));
        }
    };
    check_bounds(&phc)?;
    Ok(phc)
}

fn text(object: &Value, name: &str) -> Result<String, String> {
    object
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("no {name}"))
}

/// The first value of an additional parameter (Keycloak writes lists of strings).
fn parameter<'a>(parameters: &'a Value, name: &str) -> Option<&'a str> {
    match parameters.get(name)? {
        Value::Array(values) => values.first()?.as_str(),
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// Refuses a stored hash whose verification would cost more than the bounds allow.
pub fn check_bounds(stored: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(stored).map_err(|e| format!("not a PHC string: {e}"))?;
    let param = |name: &str| parsed.params.get_decimal(name);
    match parsed.algorithm.as_str() {
        "argon2id" | "argon2i" | "argon2d" => {
            let (m, t, p) = (param("m"), param("t"), param("p"));
            let within = m.is_some_and(|m| m <= ARGON2_MAX_MEMORY_KIB)
                && t.is_some_and(|t| (1..=ARGON2_MAX_PASSES).contains(&t))
                && p.is_some_and(|p| (1..=ARGON2_MAX_LANES).contains(&p));
            if within {
                Ok(())
            } else {
                Err(format!(
                    "argon2 cost m={m:?},t={t:?},p={p:?} exceeds the bounds \
                     (m <= {ARGON2_MAX_MEMORY_KIB} KiB, t <= {ARGON2_MAX_PASSES}, p <= {ARGON2_MAX_LANES})"
                ))
            }
        }
        "pbkdf2" | "pbkdf2-sha256" | "pbkdf2-sha512" => {
            let (_, block) = pbkdf2_algorithm(parsed.algorithm.as_str()).ok_or("unknown")?;
            let length = parsed.hash.map_or(0, |h| h.len());
            let blocks = length.div_ceil(block) as u64;
            let iterations = u64::from(param("i").unwrap_or(0));
            if iterations == 0 || iterations.saturating_mul(blocks) > PBKDF2_MAX_WORK {
                Err(format!(
                    "pbkdf2 cost of {iterations} iterations for {length} bytes exceeds the \
                     bound ({PBKDF2_MAX_WORK} HMAC computations)"
                ))
            } else {
                Ok(())
            }
        }
        other => Err(format!("{other} is not a password hash Cambio verifies")),
    }
}

/// aws-lc-rs's PBKDF2 for a Keycloak algorithm name, and its HMAC output length.
fn pbkdf2_algorithm(name: &str) -> Option<(aws_lc_rs::pbkdf2::Algorithm, usize)> {
    use aws_lc_rs::pbkdf2;
    match name {
        "pbkdf2" => Some((pbkdf2::PBKDF2_HMAC_SHA1, 20)),
        "pbkdf2-sha256" => Some((pbkdf2::PBKDF2_HMAC_SHA256, 32)),
        "pbkdf2-sha512" => Some((pbkdf2::PBKDF2_HMAC_SHA512, 64)),
        _ => None,
    }
}

/// Verifies a password against a PBKDF2 PHC string (in constant time); anything malformed or
/// beyond the bounds never matches.
pub fn verify_pbkdf2(password: &str, parsed: &PasswordHash<'_>) -> bool {
    let Some((algorithm, _)) = pbkdf2_algorithm(parsed.algorithm.as_str()) else {
        return false;
    };
    let (Some(salt), Some(hash)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Some(iterations) = parsed.params.get_decimal("i").and_then(NonZeroU32::new) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    aws_lc_rs::pbkdf2::verify(
        algorithm,
        iterations,
        salt,
        password.as_bytes(),
        hash.as_bytes(),
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keycloak_credential(
        algorithm: &str,
        iterations: u32,
        salt: &[u8],
        hash: &[u8],
        extra: &str,
    ) -> CredentialRep {
        CredentialRep {
            credential_type: Some("password".into()),
            secret_data: Some(format!(
                r#"{{"value":"{}","salt":"{}","additionalParameters":{{}}}}"#,
                STANDARD.encode(hash),
                STANDARD.encode(salt)
            )),
            credential_data: Some(format!(
                r#"{{"hashIterations":{iterations},"algorithm":"{algorithm}","additionalParameters":{{{extra}}}}}"#
            )),
            ..Default::default()
        }
    }

    #[test]
    fn pbkdf2_credentials_verify_with_their_own_parameters() {
        // The expected values are computed with aws-lc-rs here; the integration tests check
        // them against Python's hashlib.pbkdf2_hmac as well.
        let salt = b"0123456789abcdef";
        for (name, algorithm, length) in [
            ("pbkdf2", aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA1, 64),
            ("pbkdf2-sha256", aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256, 64),
            ("pbkdf2-sha512", aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA512, 64),
        ] {
            let mut hash = vec![0u8; length];
            aws_lc_rs::pbkdf2::derive(
                algorithm,
                NonZeroU32::new(1000).unwrap(),
                salt,
                b"s3cret",
                &mut hash,
            );
            let phc =
                phc_from_credential(&keycloak_credential(name, 1000, salt, &hash, "")).unwrap();
            let parsed = PasswordHash::new(&phc).unwrap();
            assert!(verify_pbkdf2("s3cret", &parsed), "{name}");
            assert!(!verify_pbkdf2("s3creT", &parsed), "{name}");
        }
    }

    #[test]
    fn hostile_costs_are_refused_at_import() {
        let salt = [7u8; 16];
        let pbkdf2 = keycloak_credential("pbkdf2-sha256", 4_000_000, &salt, &[1u8; 64], "");
        assert!(
            phc_from_credential(&pbkdf2)
                .unwrap_err()
                .contains("exceeds the bound")
        );
        let argon2 = keycloak_credential(
            "argon2",
            3,
            &salt,
            &[1u8; 32],
            r#""hashLength":["32"],"memory":["4194304"],"type":["id"],"version":["1.3"],"parallelism":["1"]"#,
        );
        assert!(
            phc_from_credential(&argon2)
                .unwrap_err()
                .contains("exceeds the bounds")
        );
        let unknown = keycloak_credential("bcrypt", 10, &salt, &[1u8; 32], "");
        assert_eq!(
            phc_from_credential(&unknown).unwrap_err(),
            "password hash algorithm \"bcrypt\" is unknown to Cambio"
        );
    }
}
