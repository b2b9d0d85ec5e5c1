//! The configuration file exactly as written: every key optional, unknown keys refused.
//!
//! Fields are `Option` so that a missing key is reported by the validator with its path (and a
//! default applied there), instead of serde stopping at the first missing field. Validated types
//! live in `types.rs`; nothing outside the `config` module sees these structs.
//!
//! To add a section (for instance `[smime]` or `[trust]`): add a `Raw…` struct here and an
//! `Option<Raw…>` field to [`RawConfig`], then a validator and a validated type (see `validate.rs`).

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub server: Option<RawServer>,
    pub listeners: Option<Vec<RawListener>>,
    pub tls: Option<RawTls>,
    pub whitelist: Option<RawWhitelist>,
    pub limits: Option<RawLimits>,
    pub logging: Option<RawLogging>,
    /// `[smime]`: deserialized straight into the S/MIME module's own type (it validates its files
    /// when the verifier is built, in `serve::prepare`).
    pub smime: Option<crate::smime::SmimeConfig>,
    /// `[trust]`: likewise owned by the trust module.
    pub trust: Option<crate::trust::TrustConfig>,
    /// `[documents]`: owned by the documents module.
    pub documents: Option<crate::documents::DocumentPolicy>,
    /// `[ledger]`: owned by the ledger module.
    pub ledger: Option<crate::ledger::LedgerConfig>,
    /// `[pipeline]`: owned by the pipeline module.
    pub pipeline: Option<crate::pipeline::PipelineConfig>,
    /// `[queue]`: owned by the deposit module.
    pub queue: Option<crate::deposit::QueueConfig>,
    /// `[dmp]`: owned by the deposit module.
    pub dmp: Option<crate::deposit::DmpConfig>,
    /// `[admin]`: owned by the admin module.
    pub admin: Option<crate::admin::AdminConfig>,
    /// `[relay]`: owned by the relay module.
    pub relay: Option<crate::relay::RelayConfig>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub hostname: Option<String>,
    pub state_dir: Option<String>,
    pub spool_dir: Option<String>,
}

/// One `[[listeners]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListener {
    pub address: Option<String>,
    pub mode: Option<RawListenerMode>,
    pub require_client_certificate: Option<bool>,
    pub whitelist: Option<bool>,
}

/// `listeners[].mode`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawListenerMode {
    Starttls,
    Implicit,
}

/// `[tls]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub certificate: Option<String>,
    pub private_key: Option<String>,
    pub client_ca_bundle: Option<String>,
    pub crl_files: Option<Vec<String>>,
}

/// `[whitelist]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWhitelist {
    pub file: Option<String>,
    pub checksum_file: Option<String>,
}

/// `[limits]`: sizes in bytes, durations in seconds, counts as plain numbers.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub max_message_size: Option<u64>,
    pub max_recipients: Option<u64>,
    pub max_command_line: Option<u64>,
    pub max_text_line: Option<u64>,
    pub idle_timeout: Option<u64>,
    pub session_timeout: Option<u64>,
    pub max_connections: Option<u64>,
    pub max_connections_per_ip: Option<u64>,
    pub max_bad_commands: Option<u64>,
    pub max_messages_per_session: Option<u64>,
    pub shutdown_grace: Option<u64>,
}

/// `[logging]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogging {
    pub format: Option<RawLogFormat>,
    pub level: Option<String>,
}

/// `logging.format`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawLogFormat {
    Text,
    Json,
}
