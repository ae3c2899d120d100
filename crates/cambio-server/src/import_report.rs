//! What a realm import could not keep, field by field, and the reading of the JSON body.
//!
//! An import reads the body as Keycloak does: a repeated key takes its last value (Jackson's
//! default), and a malformed body is refused with the line and column of the fault. After the
//! import, the realm is exported again and compared with the body: every field of the body
//! the export does not carry is reported with its JSON path, beside what the importer itself
//! reports (keys it could not use, password hashes it refused). Nothing is dropped silently.

use serde::Serialize;
use serde_json::Value;

use crate::realm_io::RealmIoError;

/// One thing an import left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotImported {
    /// Where it was, as a JSON path into the imported document (`clients[3].surrogateAuthRequired`).
    pub path: String,
    /// Why it was left out.
    pub reason: String,
}

/// Everything an import left out: what the importer refused first, then the fields the
/// export lacks, sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    #[serde(rename = "notImported")]
    pub not_imported: Vec<NotImported>,
}

impl ImportReport {
    pub fn add(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.not_imported.push(NotImported {
            path: path.into(),
            reason: reason.into(),
        });
    }

    /// Whether `path` (or a field above it) is already reported.
    fn covers(&self, path: &str) -> bool {
        self.not_imported.iter().any(|entry| {
            path == entry.path
                || path
                    .strip_prefix(entry.path.as_str())
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        })
    }
}

/// The reason given for a field that Cambio has no place for.
pub const NOT_KEPT: &str = "Cambio has no equivalent; the value is not kept";

/// Reads a JSON document as Keycloak does: a repeated key keeps its last value, and an error
/// names its line and column.
pub fn parse_document(body: &[u8]) -> Result<Value, RealmIoError> {
    // serde_json's map replaces the value of a key seen before, which is Jackson's rule.
    serde_json::from_slice::<Value>(body).map_err(|e| {
        RealmIoError::Invalid(format!(
            "Invalid JSON at line {} column {}: {}",
            e.line(),
            e.column(),
            describe(&e)
        ))
    })
}

/// The error's message without serde_json's own " at line L column C" suffix.
fn describe(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    }
}

/// Paths whose content the importer translates and reports on by itself (credentials become
/// password hashes, key components become signing keys); the comparison skips them.
const TRANSLATED: &[&str] = &[
    "users[].credentials",
    // Kept and served (reported once), or for realm-management taken into Cambio's model
    // (reported policy by policy).
    "clients[].authorizationSettings",
    "components.org.keycloak.keys.KeyProvider",
    // A partial import's own switch.
    "ifResourceExists",
    // Keycloak 1.x and 2.x: the realm's own RSA key.
    "privateKey",
    "publicKey",
];

/// Adds to `report` every field of `given` (the imported document) that `kept` (the realm
/// exported after the import) does not carry. Empty values (null, "", [], {}) are not
/// reported: they say nothing that was lost.
pub fn compare(given: &Value, kept: &Value, report: &mut ImportReport) {
    let mut found = Vec::new();
    walk(given, kept, String::new(), String::new(), &mut found);
    for (path, reason) in found {
        if !report.covers(&path) {
            report.add(path, reason);
        }
    }
}

/// `path` is the concrete path, `shape` the same with indexes left out (for [`TRANSLATED`]).
fn walk(
    given: &Value,
    kept: &Value,
    path: String,
    shape: String,
    found: &mut Vec<(String, String)>,
) {
    if TRANSLATED.contains(&shape.as_str()) {
        return;
    }
    match (given, kept) {
        (Value::Object(given), Value::Object(kept)) => {
            for (name, value) in given {
                if is_empty(value) {
                    continue;
                }
                let child = join(&path, name);
                let child_shape = join(&shape, name);
                if TRANSLATED.contains(&child_shape.as_str()) {
                    continue;
                }
                match kept.get(name) {
                    Some(kept_value) if !kept_value.is_null() => {
                        walk(value, kept_value, child, child_shape, found);
                    }
                    // A missing object is reported field by field (so that the parts the
                    // importer translates are told apart); anything else as a whole.
                    _ if value.is_object() => {
                        let empty = Value::Object(serde_json::Map::new());
                        walk(value, &empty, child, child_shape, found);
                    }
                    _ => found.push((child, NOT_KEPT.to_owned())),
                }
            }
        }
        (Value::Array(given), Value::Array(kept)) => {
            let index = Counterparts::new(kept);
            for (at, item) in given.iter().enumerate() {
                if !item.is_object() || is_empty(item) {
                    continue;
                }
                let child = format!("{path}[{at}]");
                let child_shape = format!("{shape}[]");
                match index.of(item, at) {
                    Some(kept_item) => walk(item, kept_item, child, child_shape, found),
                    None => found.push((child, NOT_KEPT.to_owned())),
                }
            }
        }
        // A flag or number Cambio holds with another value (a setting it does not have, which
        // its export shows at the fixed value it works with). Strings are not compared: they
        // may be normalised (lower-case user names, absolute URLs).
        (Value::Bool(_) | Value::Number(_), Value::Bool(_) | Value::Number(_))
            if !same_scalar(given, kept) =>
        {
            found.push((path, format!("not kept: Cambio works with {kept}")));
        }
        _ => {}
    }
}

/// The identifying fields of array entries, most telling first.
const IDENTIFIERS: [&str; 5] = ["id", "clientId", "username", "alias", "name"];

/// The entries of a kept array indexed by each identifying field, built once per array so
/// that matching an export of 100,000 users stays linear.
struct Counterparts<'a> {
    kept: &'a [Value],
    by_key: [std::collections::HashMap<String, &'a Value>; IDENTIFIERS.len()],
}

impl<'a> Counterparts<'a> {
    fn new(kept: &'a [Value]) -> Counterparts<'a> {
        let mut by_key: [std::collections::HashMap<String, &'a Value>; IDENTIFIERS.len()] =
            Default::default();
        for item in kept {
            for (key, index) in IDENTIFIERS.iter().zip(by_key.iter_mut()) {
                if let Some(value) = item.get(*key).and_then(Value::as_str) {
                    index.entry(normal(key, value)).or_insert(item);
                }
            }
        }
        Counterparts { kept, by_key }
    }

    /// The kept entry that stands for `item`: the one with the same `id` (a renamed entry,
    /// such as a service account named after its client, is then reported field by field),
    /// else the same identifying field (`clientId`, `username`, `alias`, `name`, the names
    /// compared without case), else the one at the same place.
    fn of(&self, item: &Value, at: usize) -> Option<&'a Value> {
        if let Some(found) = item
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| self.by_key[0].get(id))
        {
            return Some(found);
        }
        for (key, index) in IDENTIFIERS.iter().zip(self.by_key.iter()).skip(1) {
            if let Some(wanted) = item.get(*key).and_then(Value::as_str) {
                return index.get(&normal(key, wanted)).copied();
            }
        }
        self.kept.get(at)
    }
}

/// Ids compare exactly; names without case.
fn normal(key: &str, value: &str) -> String {
    if key == "id" {
        value.to_owned()
    } else {
        value.to_lowercase()
    }
}

fn same_scalar(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_repeated_key_keeps_its_last_value() {
        let value = parse_document(br#"{"users":[1],"realm":"a","users":[2,3]}"#).unwrap();
        assert_eq!(value["users"], json!([2, 3]));
    }

    #[test]
    fn a_malformed_document_names_line_and_column() {
        let error = parse_document(b"{\n  \"realm\": \"a\"\n  \"enabled\": true\n}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "Invalid JSON at line 3 column 3: expected `,` or `}`"
        );
    }

    #[test]
    fn fields_the_export_lacks_are_reported_by_path() {
        let given = json!({
            "realm": "a", "bruteForceProtected": true, "smtpServer": {},
            "clients": [{"clientId": "x", "surrogateAuthRequired": false, "secret": "s",
                         "consentRequired": true, "enabled": true},
                        {"clientId": "gone"}],
            "users": [{"username": "Bob", "credentials": [{"secretData": "{}"}], "totp": false}],
            "components": {"org.keycloak.keys.KeyProvider": [{"name": "rsa"}],
                           "org.keycloak.storage.UserStorageProvider": [{"name": "ldap"}]}
        });
        let kept = json!({
            "realm": "a",
            "clients": [{"clientId": "x", "secret": "s", "consentRequired": false, "enabled": true}],
            "users": [{"username": "bob"}]
        });
        let mut report = ImportReport::default();
        report.add("clients[1]", "refused");
        compare(&given, &kept, &mut report);
        let paths: Vec<&str> = report
            .not_imported
            .iter()
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(
            paths,
            [
                "clients[1]",
                "bruteForceProtected",
                "clients[0].consentRequired",
                "clients[0].surrogateAuthRequired",
                "components.org.keycloak.storage.UserStorageProvider",
                "users[0].totp",
            ]
        );
    }
}
