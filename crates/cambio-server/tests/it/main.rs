//! Black-box tests: each starts the real server on 127.0.0.1:0 and speaks HTTP to it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin_authz;
mod admin_keys;
mod admin_realms;
mod admin_users;
mod authority;
mod browser;
mod browser_forms;
mod chaining;
mod compat;
mod console;
mod endpoints;
mod exchange;
mod exchange_preview;
mod external;
mod grants;
mod groups;
mod groups_import;
mod harness;
mod hostile;
mod keycloak;
mod migration;
mod openapi;
mod outbound;
mod partial_reload;
mod postgres;
mod resources;
mod scope_mappers;
mod token_state;
mod txn_tokens;

pub use harness::*;
