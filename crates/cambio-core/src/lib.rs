//! The protocol core of Cambio: every OAuth decision as a plain function of its inputs.
//!
//! Nothing here reads a clock, draws random numbers, or performs I/O. The server passes in the
//! current time, fresh ids, verified tokens and loaded records, and gets back either the claims
//! to sign or the exact OAuth error to answer. That keeps every rule a table-driven unit test.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod address;
pub mod chaining;
pub mod client_auth;
pub mod dpop;
pub mod error;
pub mod exchange;
pub mod federation;
pub mod form;
#[cfg(test)]
mod fuzz_corpus;
pub mod grants;
pub mod groups;
pub mod issue;
pub mod model;
pub mod permissions;
pub mod realm;
pub mod redirect;
pub mod resource;
pub mod role_change;
pub mod scope;
pub mod tokens;
pub mod txn_token;

pub use error::{ErrorCode, OAuthError, OAuthResult};
