//! The `[ledger]` configuration section and the checkpoint key files it names.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::checkpoint::{CheckpointSigner, CheckpointVerifier};
use super::error::LedgerError;
use crate::config::resolve_path as resolve;

/// Which store holds the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Local append-only files under `dir` (one gateway node).
    #[default]
    File,
    /// A shared PostgreSQL database (several gateway nodes, one ledger).
    Postgres,
}

/// The `[ledger]` section. Relative paths are relative to the configuration file's directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LedgerConfig {
    /// `"file"` (default) or `"postgres"`.
    pub backend: Backend,
    /// Directory of the file backend (created `0700`).
    pub dir: PathBuf,
    /// Ed25519 checkpoint signing key; generated (`0600`, with `.pub` and `.pub.pem` beside it)
    /// on first use if absent.
    pub checkpoint_key: PathBuf,
    /// A public key file (`name+hash+key`) that `verify` trusts instead of the key derived from
    /// `checkpoint_key`: an auditor's pinned copy, so a replaced key file is noticed.
    pub trusted_public_key: Option<PathBuf>,
    /// The checkpoints' origin line and the key's name: unique per ledger.
    pub origin: String,
    /// Sign a checkpoint after this many new entries (0 = never by count).
    pub checkpoint_every_entries: u64,
    /// Sign a checkpoint this often if entries were added (0 = never by time).
    pub checkpoint_every_secs: u64,
    /// PostgreSQL connection string (key=value or URL form) for the postgres backend.
    pub postgres_url: String,
    /// Schema holding the ledger tables in PostgreSQL.
    pub postgres_schema: String,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            backend: Backend::File,
            dir: PathBuf::from("../var/ledger"),
            checkpoint_key: PathBuf::from("../var/ledger/checkpoint.key"),
            trusted_public_key: None,
            origin: "gateway.mssante.test/ledger".into(),
            checkpoint_every_entries: 1000,
            checkpoint_every_secs: 60,
            postgres_url: "host=127.0.0.1 port=5432 user=postgres dbname=test".into(),
            postgres_schema: "ledger".into(),
        }
    }
}

impl LedgerConfig {
    /// The file backend's directory, resolved against `config_dir`.
    pub fn dir_in(&self, config_dir: &Path) -> PathBuf {
        resolve(config_dir, &self.dir)
    }

    /// The signing key path, resolved against `config_dir`.
    pub fn key_in(&self, config_dir: &Path) -> PathBuf {
        resolve(config_dir, &self.checkpoint_key)
    }

    /// Checks the values that serde cannot.
    pub fn validate(&self) -> Result<(), LedgerError> {
        if self.origin.is_empty() || self.origin.chars().any(|c| c.is_whitespace() || c == '+') {
            return Err(LedgerError::Config(format!(
                "origin {:?} must be non-empty, without spaces or '+'",
                self.origin
            )));
        }
        if self.backend == Backend::Postgres {
            super::store::postgres::check_schema(&self.postgres_schema)?;
        }
        Ok(())
    }

    /// The verifier `verify` trusts: the pinned public key if configured, else the one derived
    /// from the private key file.
    pub fn verifier(&self, config_dir: &Path) -> Result<CheckpointVerifier, LedgerError> {
        match &self.trusted_public_key {
            Some(path) => {
                let path = resolve(config_dir, path);
                let text = fs::read_to_string(&path)
                    .map_err(|e| LedgerError::io("read public key", &path, e))?;
                Ok(CheckpointVerifier::parse(&text)?)
            }
            None => Ok(load_key(&self.key_in(config_dir))?.verifier()),
        }
    }
}

/// Reads a private key file.
pub fn load_key(path: &Path) -> Result<CheckpointSigner, LedgerError> {
    let text =
        fs::read_to_string(path).map_err(|e| LedgerError::io("read checkpoint key", path, e))?;
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "checkpoint key is readable by other users; chmod 600 it");
    }
    Ok(CheckpointSigner::parse(&text)?)
}

/// Reads the private key, or creates one (`0600`) if the file does not exist. Also writes the
/// public key beside it (`<stem>.pub` in note format, `<stem>.pub.pem` for OpenSSL) when those
/// are absent. Returns whether a key was generated.
pub fn load_or_create_key(
    path: &Path,
    name: &str,
) -> Result<(CheckpointSigner, bool), LedgerError> {
    let created = if path.exists() {
        false
    } else {
        if let Some(parent) = path.parent() {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| LedgerError::io("create key directory", parent, e))?;
        }
        let signer = CheckpointSigner::generate(name)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| LedgerError::io("create checkpoint key", path, e))?;
        file.write_all(signer.to_private_text().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| LedgerError::io("write checkpoint key", path, e))?;
        tracing::info!(path = %path.display(), "generated a new ledger checkpoint key");
        true
    };
    let signer = load_key(path)?;
    let verifier = signer.verifier();
    for (extension, text) in [
        ("pub", verifier.to_text() + "\n"),
        ("pub.pem", verifier.to_pem()),
    ] {
        let public = path.with_extension(extension);
        if !public.exists() {
            fs::write(&public, text)
                .map_err(|e| LedgerError::io("write public key", &public, e))?;
        }
    }
    Ok((signer, created))
}
