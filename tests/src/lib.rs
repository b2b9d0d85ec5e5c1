//! Shared helpers for end-to-end tests and the load generator.

pub mod load;
pub mod smtp_client;
