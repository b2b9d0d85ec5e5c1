//! Errors of `gateway send`, each naming the file, document or server at fault.

use std::path::PathBuf;

use crate::documents::DocumentError;

/// Why a message could not be built or sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A certificate or key file is unusable (not PEM, wrong kind, key not matching).
    #[error("{path}: {reason}")]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A CDA document cannot be read with the gateway's own parser.
    #[error("{0}")]
    Document(#[from] DocumentError),
    /// A CDA document lacks what the gateway requires of the patient (INS, traits).
    #[error("{document}: {reason}")]
    Patient {
        /// The document.
        document: String,
        /// What is missing or invalid (never the matricule itself).
        reason: String,
    },
    /// Two documents name different patients (MSSanté ECO.2.1.1: one patient per message).
    #[error("{first} and {second} are about different patients; send one message per patient")]
    SeveralPatients {
        /// The first document.
        first: String,
        /// The document naming another patient.
        second: String,
    },
    /// An invalid command-line combination or value.
    #[error("{0}")]
    Usage(String),
    /// OpenSSL or zip failed while building the message.
    #[error("{step}: {reason}")]
    Build {
        /// What was being done.
        step: &'static str,
        /// The library's diagnostic.
        reason: String,
    },
    /// No SMTP session could be completed (connection, TLS, protocol).
    #[error("cannot send to {server}: {reason}")]
    Transport {
        /// `host:port`.
        server: String,
        /// What failed.
        reason: String,
    },
    /// The server answered with a negative reply.
    #[error("refused by {server}: {reply}")]
    Refused {
        /// `host:port`.
        server: String,
        /// The full reply: code, enhanced code and text.
        reply: String,
    },
}

impl SendError {
    /// Whether this is a failure of the exchange with the server (exit status 1) rather than a
    /// problem with the command line or its files (exit status 2).
    pub fn is_delivery_failure(&self) -> bool {
        matches!(
            self,
            SendError::Transport { .. } | SendError::Refused { .. }
        )
    }

    pub(crate) fn build(
        step: &'static str,
    ) -> impl FnOnce(openssl::error::ErrorStack) -> SendError {
        move |error| SendError::Build {
            step,
            reason: error.to_string(),
        }
    }
}
