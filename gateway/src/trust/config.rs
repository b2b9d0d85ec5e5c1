//! `[trust]` configuration: trust anchors, intermediates, CRL sources and the algorithm policy.

use std::path::{Path, PathBuf};

pub use crate::config::resolve_path as resolve;
use openssl::x509::X509;
use serde::Deserialize;

/// The `[trust]` section. Paths are relative to the directory of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    /// PEM files of trust anchors (IGC-Santé roots). Empty = nothing is trusted (fail closed).
    pub anchors: Vec<PathBuf>,
    /// PEM files of intermediate CAs, used in addition to the certificates a signature carries.
    pub intermediates: Vec<PathBuf>,
    /// Directory of CRLs (PEM or DER, any file name) loaded at start.
    pub crl_dir: Option<PathBuf>,
    /// Check revocation by CRL (fail closed when no valid CRL is held). Only tests turn this off.
    pub check_revocation: bool,
    /// Seconds a CRL past its nextUpdate is still accepted (0 = none).
    pub crl_grace_period_secs: u64,
    /// Directory where fetched CRLs are cached (`<hash>.crl` + `<hash>.url`). None = no fetching.
    pub crl_cache_dir: Option<PathBuf>,
    /// CRL URLs fetched on every refresh, in addition to the distribution points seen in certificates.
    pub crl_urls: Vec<String>,
    /// Also fetch the HTTP distribution points named by certificates seen in chains.
    pub fetch_distribution_points: bool,
    /// Longest wait between two refreshes; refreshes happen earlier when a CRL's nextUpdate is near.
    pub crl_refresh_interval_secs: u64,
    /// Wait before retrying after a failed fetch.
    pub crl_retry_secs: u64,
    /// Timeout of one CRL download.
    pub crl_fetch_timeout_secs: u64,
    /// Largest CRL accepted from the network, in bytes.
    pub crl_max_bytes: u64,
    /// Smallest RSA modulus accepted, in bits.
    pub min_rsa_bits: u32,
    /// Accept SHA-1 in certificate and CMS signatures (legacy interop only).
    pub allow_sha1: bool,
    /// Accept MD5 in certificate and CMS signatures (never in production).
    pub allow_md5: bool,
}

impl Default for TrustConfig {
    fn default() -> Self {
        Self {
            anchors: Vec::new(),
            intermediates: Vec::new(),
            crl_dir: None,
            check_revocation: true,
            crl_grace_period_secs: 0,
            crl_cache_dir: None,
            crl_urls: Vec::new(),
            fetch_distribution_points: true,
            crl_refresh_interval_secs: 3_600,
            crl_retry_secs: 300,
            crl_fetch_timeout_secs: 10,
            crl_max_bytes: 20 * 1024 * 1024,
            min_rsa_bits: 2048,
            allow_sha1: false,
            allow_md5: false,
        }
    }
}

/// A configuration value that cannot be used; names the key and the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file could not be read.
    #[error("{key}: cannot read {}: {source}", path.display())]
    Io {
        /// The configuration key.
        key: &'static str,
        /// The resolved path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file was read but does not hold what the key expects.
    #[error("{key}: {}: {reason}", path.display())]
    Invalid {
        /// The configuration key.
        key: &'static str,
        /// The resolved path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A value is inconsistent with another.
    #[error("{key}: {reason}")]
    Value {
        /// The configuration key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Reads every certificate of a PEM file (DER accepted too, one certificate).
pub fn load_certificates(key: &'static str, path: &Path) -> Result<Vec<X509>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
        key,
        path: path.to_path_buf(),
        source,
    })?;
    let certs = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        X509::stack_from_pem(&bytes)
    } else {
        X509::from_der(&bytes).map(|c| vec![c])
    }
    .map_err(|e| ConfigError::Invalid {
        key,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(ConfigError::Invalid {
            key,
            path: path.to_path_buf(),
            reason: "no certificate".to_owned(),
        });
    }
    Ok(certs)
}
