//! HTTP handlers, one module per group of endpoints.

pub mod authorize;
pub mod external;
pub mod logout;
pub mod oidc;
pub mod openapi;
pub mod pages;
pub mod session;
pub mod token;
