//! The console's public client, kept in step with the server's URL: in `master`, and in the
//! `demo` realm of `serve --demo`.
//!
//! Redirect URIs are absolute in Cambio (`cambio_core::redirect`), and the server's public URL
//! may change between starts (another port, a `--public-url`), so every start makes sure the
//! client accepts the console's URL under the current base URL. `master`'s is created when
//! missing; the demo realm's when the demo realm is made (a later start does not bring back a
//! client an administrator deleted there). A client an administrator changed keeps its other
//! settings; only the missing URL is added.

use std::collections::BTreeMap;

use cambio_core::model::{Client, Realm};
use cambio_core::redirect::ATTR_POST_LOGOUT_REDIRECT_URIS;
use cambio_store::{GLOBAL, StoreError, StoreResult};

use super::CONSOLE_CLIENT;
use crate::admin::Approved;
use crate::bootstrap::{DEMO, MASTER, new_client};
use crate::state::{AppState, KIND_CLIENT, KIND_REALM, decode};

/// The redirect URI pattern the console of `realm` logs in with under `base_url`.
pub fn redirect_pattern(base_url: &str, realm: &str) -> String {
    format!("{}/admin/{realm}/console/*", base_url.trim_end_matches('/'))
}

/// Makes sure `security-admin-console` accepts the console's URLs under `base_url`: in
/// `master` (created when missing), and in the demo realm when it exists (created there only
/// when `demo_created`, that is, together with the demo realm).
pub async fn ensure_console_client(
    state: &AppState,
    base_url: &str,
    demo_created: bool,
) -> StoreResult<()> {
    let base = base_url.trim_end_matches('/');
    let master = [
        redirect_pattern(base, MASTER),
        format!("{base}/admin/console/*"),
    ];
    ensure_in(state, MASTER, &master, true).await?;
    ensure_in(state, DEMO, &[redirect_pattern(base, DEMO)], demo_created).await
}

/// The console client of `realm_name` with `wanted` among its redirect URIs; created when
/// missing if `create`.
async fn ensure_in(
    state: &AppState,
    realm_name: &str,
    wanted: &[String],
    create: bool,
) -> StoreResult<()> {
    let Some(realm_object) = state
        .store
        .find_object(GLOBAL, KIND_REALM, realm_name)
        .await?
    else {
        return Ok(());
    };
    let realm: Realm = decode(&realm_object)?;
    let existing = state
        .store
        .find_object(&realm.id, KIND_CLIENT, CONSOLE_CLIENT)
        .await?;
    match existing {
        None if !create => Ok(()),
        None => {
            let mut client = new_client(&realm, CONSOLE_CLIENT);
            client.name = Some("Cambio admin console".into());
            client.public_client = true;
            client.standard_flow_enabled = true;
            client.direct_access_grants_enabled = false;
            client.redirect_uris = wanted.to_vec();
            // `+`: the origins of the redirect URIs, and after logout the same URIs.
            client.web_origins = vec!["+".into()];
            client.attributes = BTreeMap::from([
                (ATTR_POST_LOGOUT_REDIRECT_URIS.to_owned(), "+".to_owned()),
                ("pkce.code.challenge.method".to_owned(), "S256".to_owned()),
            ]);
            match state
                .insert_client(&realm.id, &Approved::by_system(client))
                .await
            {
                // Another node starting at the same moment created it.
                Err(StoreError::Conflict(_)) => Ok(()),
                other => other,
            }
        }
        Some(object) => {
            let mut client: Client = decode(&object)?;
            let missing: Vec<String> = wanted
                .iter()
                .filter(|uri| !client.redirect_uris.contains(uri))
                .cloned()
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            client.redirect_uris.extend(missing);
            state
                .update_client(&realm.id, &Approved::by_system(client))
                .await
        }
    }
}
