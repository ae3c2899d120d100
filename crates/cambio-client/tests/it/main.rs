//! The SDK against a real Cambio server started in-process on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod dpop;
mod events;
mod exchange;
mod login;
mod session;
mod transport;
mod txn_token;
