//! Log output: `tracing` events as text or JSON lines on standard error.
//!
//! Events carry structured fields (queue id, addresses, counts). What must never be logged —
//! message content, patient identity, key material — is kept out at the call sites; this module
//! only decides the format and the filter.

use std::env;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LoggingSettings};

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoggingError {
    /// `RUST_LOG` is set but is not a valid filter.
    #[error("RUST_LOG: invalid filter {value:?}: {source}")]
    BadEnvFilter {
        /// The variable's value.
        value: String,
        /// The parser's error.
        source: tracing_subscriber::filter::ParseError,
    },
    /// `logging.level` is not a valid filter (validation normally catches this first).
    #[error("logging.level: invalid filter {value:?}: {source}")]
    BadConfigFilter {
        /// The configured value.
        value: String,
        /// The parser's error.
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was already installed (a second call in one process).
    #[error("logging was already initialised")]
    AlreadySet,
}

/// Installs the global subscriber; `RUST_LOG`, when set and not empty, overrides `logging.level`.
pub fn init(settings: &LoggingSettings) -> Result<(), LoggingError> {
    let filter = match env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => EnvFilter::try_new(&value)
            .map_err(|source| LoggingError::BadEnvFilter { value, source })?,
        _ => {
            EnvFilter::try_new(&settings.level).map_err(|source| LoggingError::BadConfigFilter {
                value: settings.level.clone(),
                source,
            })?
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let result = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        // ANSI colours only when a person is likely to read the terminal.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    result.map_err(|_| LoggingError::AlreadySet)
}
