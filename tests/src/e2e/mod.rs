//! End-to-end harness: a gateway process, a `dmp-sim` process, SMTP and maildir sinks, all in a
//! temporary directory, and the helpers tests use to drive them and look at the results.
//!
//! Everything runs for real: the `gateway` and `dmp-sim` binaries of this build (next to the
//! test executable), mutual TLS with the test PKI in `certs/`, RabbitMQ and PostgreSQL on
//! 127.0.0.1 when a test asks for them. Synthetic patients only.

pub mod audit;
pub mod checks;
pub mod client;
pub mod config;
pub mod dmp;
pub mod env;
pub mod message;
pub mod paths;
pub mod poll;
pub mod process;
pub mod sink;
pub mod whitelist;

pub use client::{Outcome, Sender};
pub use config::{LedgerBackend, QueueBackend};
pub use env::{TestEnv, TestEnvBuilder};
pub use message::{Mail, Patient};
pub use poll::poll;
