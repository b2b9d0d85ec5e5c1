//! `dmp-sim`: a strict stand-in for the DMP's ITI-41 repository, over HTTPS with client
//! certificates, storing documents durably. Runs as the `dmp-sim` binary or in-process
//! ([`start`]).
//!
//! It refuses what the DMP refuses (DOMAIN §4): wrong WS-Addressing action, missing or invalid
//! VIHF, VIHF structure different from the TLS client, INS with a bad key or an OID of the
//! wrong environment, hash or size mismatch, missing metadata or values outside the value sets,
//! several patients, entry authorInstitution different from the submission set's, and a
//! different document under an already used uniqueId (`XDSNonIdenticalHash`). An identical
//! re-submission is answered Success without storing a second copy.

pub mod ins;
pub mod metadata_check;
pub mod query;
pub mod server;
pub mod signature_check;
pub mod store;
pub mod vihf_check;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use ins::Environment;
pub use server::{SimHandle, start};
pub use store::{Store, StoredDocument};

use crate::xds::response::RegistryError;

/// Fault injection settings.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Probability (0..=1) that a request is answered HTTP 503 (transient failure).
    pub fail_rate: f64,
    /// Delay before each request is processed.
    pub delay: Duration,
    /// Answer every request with HTTP 503 during this long after start.
    pub down_for: Duration,
}

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Listening address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Store directory.
    pub store: PathBuf,
    /// Server certificate chain (PEM, leaf first).
    pub tls_certificate: PathBuf,
    /// Server private key (PEM).
    pub tls_key: PathBuf,
    /// CA bundle for client certificates and the VIHF signer (PEM).
    pub client_ca: PathBuf,
    /// CRLs (PEM), one per CA of the bundle: unknown revocation status is refused.
    pub crls: Vec<PathBuf>,
    /// Which INS authorities are accepted.
    pub environment: Environment,
    /// Fault injection.
    pub faults: Faults,
    /// Refuse submissions without the TD2.1 submission-set signature (a present signature is
    /// always checked).
    pub require_submission_signature: bool,
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A file could not be read or the socket bound.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The TLS material was refused.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
}

/// A refusal of a request: a SOAP fault (envelope and security level) or a registry error list.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// A SOAP 1.2 Sender fault with this subcode.
    Fault {
        /// E.g. `wsse:FailedCheck`, `wsa:ActionNotSupported`.
        subcode: String,
        /// Explanation.
        reason: String,
    },
    /// A RegistryResponse Failure.
    Registry(Vec<RegistryError>),
}

impl Refusal {
    /// A Failure with one error.
    pub fn registry(code: &str, context: impl Into<String>) -> Self {
        Refusal::Registry(vec![RegistryError::error(code, context)])
    }
}
