//! The admin clients Keycloak users drive Cambio with (npm `@keycloak/keycloak-admin-client`,
//! PyPI `python-keycloak`), run against both servers: the same scripts the compatibility tests
//! run against Cambio alone, each check's outcome compared.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::compat::{self, NPM_ADMIN, PYTHON_ADMIN, Script};

/// Runs each admin-client script against Keycloak and against Cambio, both in the `oracle`
/// realm, and compares which checks pass. A check only one server passes is a difference; the
/// script's output is printed when it is.
pub(super) async fn admin_clients(kc: &Peer, cb: &Peer, report: &mut Report) {
    for (label, path) in [
        ("python-keycloak", PYTHON_ADMIN),
        ("npm admin client", NPM_ADMIN),
    ] {
        let Some(program) = compat::interpreter(path) else {
            continue;
        };
        let script = |base, admin_password| Script {
            path,
            base,
            admin_password,
            realm: REALM,
        };
        let on_keycloak = compat::run_against(&program, &script(&kc.base, "admin")).await;
        let on_cambio =
            compat::run_against(&program, &script(&cb.base, crate::ADMIN_PASSWORD)).await;
        let outcomes = |run: &compat::ScriptRun| -> BTreeMap<String, bool> {
            run.checks().into_iter().collect()
        };
        let (kc_checks, cb_checks) = (outcomes(&on_keycloak), outcomes(&on_cambio));
        assert!(
            !kc_checks.is_empty() && !cb_checks.is_empty(),
            "{path} printed no checks:\n{}\n{}\n{}\n{}",
            on_keycloak.stdout,
            on_keycloak.stderr,
            on_cambio.stdout,
            on_cambio.stderr
        );
        let outcome = |checks: &BTreeMap<String, bool>, name: &String| match checks.get(name) {
            Some(true) => json!("passes"),
            Some(false) => json!("fails"),
            None => json!("not run"),
        };
        let mut differ = false;
        let names: std::collections::BTreeSet<&String> =
            kc_checks.keys().chain(cb_checks.keys()).collect();
        for name in names {
            let (a, b) = (outcome(&kc_checks, name), outcome(&cb_checks, name));
            differ |= a != b;
            report.compare(label, name, &a, &b);
        }
        if differ {
            eprintln!(
                "{path} against Keycloak:\n{}\n{path} against Cambio:\n{}",
                on_keycloak.stdout, on_cambio.stdout
            );
        }
    }
}
