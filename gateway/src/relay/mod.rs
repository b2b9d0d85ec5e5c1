//! Relaying accepted messages onward: per-domain routes, SMTP over mutual TLS to next hops (with
//! the liste blanche checked against the next hop's certificate) or local Maildir delivery, and
//! the worker that drains the relay queue with retries.
//!
//! Failures are classified once, here: [`DeliveryFailure::Transient`] is retried until the
//! horizon, [`DeliveryFailure::Permanent`] is dead-lettered at once (and the sender gets a DSN).

mod config;
mod job;
mod maildir;
mod relayer;
mod smtp;
mod tls;
mod worker;

pub use config::{RelayConfig, RouteConfig, RouteKind, TlsMode};
pub use job::{RelayContent, RelayJob, RelayKind};
pub use relayer::{Delivery, DeliveryFailure, Relayer};
pub use worker::{MessageSource, RelayEvent, RelaySink, RelayWorker, RelayWorkerConfig};

use std::path::PathBuf;

/// Why the relay could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// A `[relay]` value is invalid; `key` is its path, e.g. `relay.routes[1].host`.
    #[error("{key}: {reason}")]
    Config {
        /// The key at fault.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file named by the configuration cannot be read or parsed.
    #[error("{key} {}: {reason}", path.display())]
    File {
        /// The key naming the file.
        key: String,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The TLS client configuration could not be built from valid files.
    #[error("relay TLS setup failed: {0}")]
    Tls(String),
}
