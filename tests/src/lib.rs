//! Shared helpers for end-to-end tests and the load generator.

pub mod e2e;
pub mod load;
pub mod smtp_client;
