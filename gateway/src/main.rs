//! `gateway` — the MSSanté relay gateway's command line.
//!
//! Exit codes: 0 success; 1 runtime failure (port in use, spool unusable, …), a certificate
//! trusted for nothing (`certs check`) or an integrity failure (`audit verify`); 2 invalid
//! configuration or command line; 3 nothing found (`audit trace`/`patient`).
//! `send`: 0 sent (or written with `--output`); 1 refused by the server (its reply is printed) or
//! not delivered (connection, TLS); 2 command line or file error (the file is named).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use gateway::audit::AuditCommand;
use gateway::config::{Config, ConfigErrors};
use gateway::deposit::status::QueueView;
use gateway::{logging, serve};

/// Exit code for a configuration that cannot be used (clap also uses 2 for usage errors).
const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure while running.
const EXIT_FAILURE: u8 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "gateway",
    version,
    about = "MSSanté relay gateway feeding the DMP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway: SMTP listeners and everything behind them, until SIGTERM or SIGINT.
    Run(ConfigArgs),
    /// Validate the configuration and the files it names, then exit.
    CheckConfig(ConfigArgs),
    /// Compliance audit of the integrity and traceability ledger.
    Audit {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// What waits in the deposit and relay queues.
    Queue {
        #[command(flatten)]
        config: ConfigArgs,
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// Certificate diagnostics under the configured trust.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Compose a document message (IHE XDM from CDA, S/MIME signed, optionally encrypted) and
    /// send it over SMTP with mutual TLS, as hospital software does. Prints `queued <id>`.
    Send(Box<gateway::send::cli::SendArgs>),
}

#[derive(Debug, Subcommand)]
enum QueueCommand {
    /// Jobs per state (ready, delayed for a retry, leased to a worker, dead-lettered) per queue.
    Status,
    /// The dead-lettered jobs of each queue with the reason they were given up.
    DeadLetters {
        /// Jobs listed per queue.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Say whether a certificate (PEM: leaf first, then any intermediates) is trusted for S/MIME
    /// signing and for TLS client use, and if not, exactly why. Exit 0 when trusted for either use.
    Check {
        /// The certificate file.
        #[arg(value_name = "CERT.pem")]
        cert: PathBuf,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// Configuration file; relative paths inside it resolve against its directory.
    #[arg(
        long,
        short,
        value_name = "FILE",
        default_value = "config/gateway.toml"
    )]
    config: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(&args.config),
        Command::CheckConfig(args) => check_config(&args.config),
        Command::Audit { config, command } => audit(&command, &config.config),
        Command::Certs {
            command: CertsCommand::Check { cert, config },
        } => certs_check(&cert, &config.config),
        Command::Send(args) => gateway::send::cli::run(&args),
        Command::Queue { config, command } => queue(command, &config.config),
    }
}

fn audit(command: &AuditCommand, file: &std::path::Path) -> ExitCode {
    let config = match load(file) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match gateway::audit::run(command, &config.ledger, &config.directory) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn certs_check(cert: &std::path::Path, file: &std::path::Path) -> ExitCode {
    let config = match load(file) {
        Ok(config) => config,
        Err(code) => return code,
    };
    match gateway::trust::cli::run_certs_check(
        cert,
        &config.trust,
        &config.smime,
        &config.directory,
    ) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_FAILURE),
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn queue(command: QueueCommand, file: &std::path::Path) -> ExitCode {
    let config = match load(file) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let view = match command {
        QueueCommand::Status => QueueView::Status,
        QueueCommand::DeadLetters { limit } => QueueView::DeadLetters { limit },
    };
    let shown = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| {
            runtime.block_on(gateway::deposit::status::show(
                view,
                &config.queue,
                &config.directory,
                &mut std::io::stdout(),
            ))
        });
    match shown {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    let config = match load(file) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let Err(errors) = serve::prepare(&config) {
        return config_failure(&errors);
    }
    println!("configuration OK");
    println!("{}", config.listeners_summary());
    ExitCode::SUCCESS
}

fn run(file: &std::path::Path) -> ExitCode {
    let config = match load(file) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if let Err(error) = logging::init(&config.logging) {
        eprintln!("error: {error}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let prepared = match serve::prepare(&config) {
        Ok(prepared) => prepared,
        Err(errors) => return config_failure(&errors),
    };
    tracing::info!(
        config = %config.file.display(),
        version = env!("CARGO_PKG_VERSION"),
        "starting"
    );
    match serve_blocking(config, prepared) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = describe(&error), "gateway failed");
            eprintln!("error: {}", describe(&error));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn serve_blocking(config: Config, prepared: serve::Prepared) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve::run(config, prepared))?;
    Ok(())
}

fn load(file: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(file).map_err(|errors| config_failure(&errors))
}

fn config_failure(errors: &ConfigErrors) -> ExitCode {
    eprintln!("{errors}");
    ExitCode::from(EXIT_CONFIG)
}

/// The error and its causes on one line, each cause once: many library errors already quote
/// their source in their own message, and `{:#}` would print it twice.
fn describe(error: &anyhow::Error) -> String {
    gateway::config::error_chain(error.as_ref())
}
