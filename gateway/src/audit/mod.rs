//! `gateway audit`: the compliance officer's commands over the ledger.
//!
//! Each command has its own file; [`run`] is the CLI entry (it builds its own runtime, like the
//! other synchronous commands of `main.rs`), [`execute`] the same over an open ledger and any
//! writer, for tests. Output goes to stdout (it may contain INS: it is the officer's answer),
//! never to the logs.

mod export;
mod patient;
mod prove;
pub mod render;
mod trace;
mod verify;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::ledger::{Ledger, LedgerConfig};

/// `gateway audit …` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum AuditCommand {
    /// Recompute every entry hash, the hash chain and every checkpoint signature; name the first
    /// entry that fails.
    Verify,
    /// A message's whole story in time order, by Message-ID or queue id.
    Trace {
        /// A Message-ID (with or without angle brackets) or a queue id.
        id: String,
    },
    /// Every event touching a patient, by INS.
    Patient {
        /// The patient's INS.
        ins: String,
    },
    /// Export entries in a time range.
    Export {
        /// Start (inclusive): YYYY-MM-DD, RFC 3339 time, or ms since the epoch.
        #[arg(long)]
        since: Option<String>,
        /// End (exclusive): YYYY-MM-DD, RFC 3339 time, or ms since the epoch.
        #[arg(long)]
        until: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
    },
    /// Print an inclusion proof for one entry that a third party checks with the public key.
    Prove {
        /// The entry's sequence number.
        entry: u64,
    },
    /// Check a proof printed by `prove`, using only the proof file and a public key file.
    CheckProof {
        /// The proof (JSON) file.
        proof: PathBuf,
        /// The ledger's public key file (`checkpoint.pub`).
        #[arg(long)]
        public_key: PathBuf,
    },
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A JSON array of entry objects.
    Json,
    /// CSV with a header row.
    Csv,
}

/// How an audit command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditStatus {
    /// Done; for `verify`, the ledger is intact.
    Ok,
    /// `verify` or `check-proof` found an integrity failure.
    IntegrityFailure,
    /// Nothing matched the query.
    NotFound,
}

impl AuditStatus {
    /// The process exit code: 0, 1 for an integrity failure, 3 for nothing found.
    pub fn exit_code(self) -> ExitCode {
        match self {
            AuditStatus::Ok => ExitCode::SUCCESS,
            AuditStatus::IntegrityFailure => ExitCode::from(1),
            AuditStatus::NotFound => ExitCode::from(3),
        }
    }
}

/// Runs an audit command against the configured ledger, printing to stdout.
pub fn run(
    command: &AuditCommand,
    config: &LedgerConfig,
    config_dir: &Path,
) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let status = runtime.block_on(async {
        if let AuditCommand::CheckProof { proof, public_key } = command {
            return prove::check(proof, public_key, &mut out);
        }
        let ledger = Ledger::open_for_audit(config, config_dir)
            .await
            .context("cannot open the ledger")?;
        execute(command, &ledger, &mut out, true).await
    })?;
    out.flush().context("cannot write to stdout")?;
    Ok(status.exit_code())
}

/// Runs a command over an open ledger, writing to `out`; `progress` shows a bar on long verifies.
pub async fn execute(
    command: &AuditCommand,
    ledger: &Ledger,
    out: &mut dyn Write,
    progress: bool,
) -> anyhow::Result<AuditStatus> {
    match command {
        AuditCommand::Verify => verify::run(ledger, out, progress).await,
        AuditCommand::Trace { id } => trace::run(ledger, id, out).await,
        AuditCommand::Patient { ins } => patient::run(ledger, ins, out).await,
        AuditCommand::Export {
            since,
            until,
            format,
        } => export::run(ledger, since.as_deref(), until.as_deref(), *format, out).await,
        AuditCommand::Prove { entry } => prove::run(ledger, *entry, out).await,
        AuditCommand::CheckProof { proof, public_key } => prove::check(proof, public_key, out),
    }
}
