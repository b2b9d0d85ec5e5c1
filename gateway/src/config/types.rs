//! The validated configuration: every value parsed, every default applied, every path absolute.

use std::net::SocketAddr;
use std::path::PathBuf;

use smtp_in::limits::Limits;

use crate::documents::DocumentPolicy;
use crate::ledger::LedgerConfig;
use crate::relay::RelayConfig;
use crate::smime::SmimeConfig;
use crate::trust::TrustConfig;

/// The gateway's configuration, valid as a whole.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    /// `[server]`.
    pub server: ServerSettings,
    /// `[[listeners]]`, at least one.
    pub listeners: Vec<ListenerSettings>,
    /// `[tls]`.
    pub tls: TlsFiles,
    /// `[whitelist]`; present whenever a listener enforces the whitelist.
    pub whitelist: Option<WhitelistFiles>,
    /// `[limits]`, applied to every listener.
    pub limits: Limits,
    /// `[logging]`.
    pub logging: LoggingSettings,
    /// `[smime]`: decryption identity and per-sender-domain signature policy.
    pub smime: SmimeConfig,
    /// `[trust]`: trust anchors, CRLs and the algorithm policy for signers.
    pub trust: TrustConfig,
    /// `[documents]`: extraction limits and the INS environment.
    pub documents: DocumentPolicy,
    /// `[ledger]`: where the integrity and traceability ledger lives and how it is checkpointed.
    pub ledger: LedgerConfig,
    /// `[relay]`: routes to next hops and local mailboxes, mutual TLS, retries.
    pub relay: RelayConfig,
    /// `[admin]`: the health and metrics endpoint.
    pub admin: crate::admin::AdminConfig,
    /// `[pipeline]`: how many end-of-DATA checks run at once, and the back-pressure beyond.
    pub pipeline: crate::pipeline::PipelineConfig,
    /// `[queue]`: the backend of the deposit and relay job queues.
    pub queue: crate::deposit::QueueConfig,
    /// `[dmp]`: the DMP endpoint (or the in-process simulator) and the depositing identity.
    pub dmp: crate::deposit::DmpConfig,
    /// The configuration file's directory, against which the paths of the sections owned by their
    /// modules (`[smime]`, `[trust]`, `[ledger]`) resolve.
    pub directory: PathBuf,
}

/// `[server]`: identity and on-disk state.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Name announced in the greeting and EHLO reply.
    pub hostname: String,
    /// Directory for everything the gateway keeps (spool, later the ledger and queues).
    pub state_dir: PathBuf,
    /// Directory of the SMTP spool.
    pub spool_dir: PathBuf,
}

/// One SMTP listener.
#[derive(Debug, Clone)]
pub struct ListenerSettings {
    /// Where to listen.
    pub address: SocketAddr,
    /// STARTTLS on a plain connection or TLS from the first byte.
    pub mode: ListenMode,
    /// Refuse clients without a valid certificate (MSSanté requires mutual TLS between operators).
    pub require_client_certificate: bool,
    /// Check the client certificate against the MSSanté whitelist.
    pub whitelist: bool,
}

/// How a listener starts TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenMode {
    /// Plain SMTP, TLS after `STARTTLS` (RFC 3207); commands other than EHLO/STARTTLS/QUIT need TLS.
    StartTls,
    /// TLS from the first byte (RFC 8314).
    Implicit,
}

impl std::fmt::Display for ListenMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::StartTls => "starttls",
            Self::Implicit => "implicit",
        })
    }
}

/// `[tls]`: the files of the gateway's TLS identity and of the client-certificate trust.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM chain: the server certificate first, then its intermediates.
    pub certificate: PathBuf,
    /// PEM PKCS#8 private key of the server certificate.
    pub private_key: PathBuf,
    /// PEM bundle of the CAs that issue client certificates; present when a listener asks for them.
    pub client_ca_bundle: Option<PathBuf>,
    /// PEM CRLs, one per CA of the bundle (a CA without a CRL makes every client check fail).
    pub crl_files: Vec<PathBuf>,
}

/// `[whitelist]`: the MSSanté "liste blanche" of operator domains and certificate DNs.
#[derive(Debug, Clone)]
pub struct WhitelistFiles {
    /// The XML list.
    pub file: PathBuf,
    /// Optional file holding the list's SHA-256, checked at load.
    pub checksum_file: Option<PathBuf>,
}

/// `[logging]`.
#[derive(Debug, Clone)]
pub struct LoggingSettings {
    /// Human-readable lines or one JSON object per event.
    pub format: LogFormat,
    /// Filter in `EnvFilter` syntax (e.g. `info,smtp_in=debug`); `RUST_LOG` overrides it.
    pub level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}
