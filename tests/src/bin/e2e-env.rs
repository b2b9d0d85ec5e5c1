//! Writes the configuration the end-to-end harness uses, for scripts (tests/bench/e2e-compare.sh):
//! the shipped config/gateway.toml with a given listener port, external dmp-sim endpoint, queue
//! and ledger backends, a maildir for every recipient domain, and state under `--dir`. Also
//! removes a run's RabbitMQ topology and PostgreSQL schema. TEST PKI ONLY.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gateway_tests::e2e::config::{GatewaySettings, LedgerBackend, QueueBackend, Route, render};
use gateway_tests::e2e::env::cleanup_external;
use gateway_tests::e2e::whitelist;

#[derive(Debug, Parser)]
#[command(about = "Gateway configuration for end-to-end runs (TEST ONLY)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct Backends {
    /// Use RabbitMQ with this queue prefix (default: the embedded queue).
    #[arg(long)]
    amqp_prefix: Option<String>,
    /// Use the PostgreSQL ledger in this schema (default: the file ledger).
    #[arg(long)]
    postgres_schema: Option<String>,
}

impl Backends {
    fn queue(&self) -> QueueBackend {
        match &self.amqp_prefix {
            Some(prefix) => QueueBackend::Amqp {
                prefix: prefix.clone(),
            },
            None => QueueBackend::Embedded,
        }
    }

    fn ledger(&self) -> LedgerBackend {
        match &self.postgres_schema {
            Some(schema) => LedgerBackend::Postgres {
                schema: schema.clone(),
            },
            None => LedgerBackend::File,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write `<dir>/config/gateway.toml` (state in `<dir>/var`) and print its path.
    Config {
        /// Run directory.
        #[arg(long)]
        dir: PathBuf,
        /// STARTTLS listener port.
        #[arg(long)]
        smtp_port: u16,
        /// Implicit-TLS listener port.
        #[arg(long)]
        implicit_port: u16,
        /// Admin endpoint port.
        #[arg(long)]
        admin_port: u16,
        /// dmp-sim's ITI-41 endpoint.
        #[arg(long)]
        dmp_endpoint: String,
        /// logging.level.
        #[arg(long, default_value = "warn")]
        log_level: String,
        #[command(flatten)]
        backends: Backends,
    },
    /// Delete the RabbitMQ topology and PostgreSQL schema named by the options.
    Cleanup {
        #[command(flatten)]
        backends: Backends,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Config {
            dir,
            smtp_port,
            implicit_port,
            admin_port,
            dmp_endpoint,
            log_level,
            backends,
        } => {
            let config_dir = dir.join("config");
            std::fs::create_dir_all(&config_dir)
                .with_context(|| format!("create {}", config_dir.display()))?;
            let settings = GatewaySettings {
                smtp_port,
                implicit_port,
                admin_port,
                queue: backends.queue(),
                ledger: backends.ledger(),
                dmp_endpoint,
                routes: vec![Route::Maildir {
                    domain: "*".to_owned(),
                    dir: dir.join("mailboxes"),
                }],
                whitelist: whitelist::write(&config_dir, &[])?,
                log_level,
            };
            let path = config_dir.join("gateway.toml");
            std::fs::write(&path, render(&settings)?)?;
            println!("{}", path.display());
        }
        Command::Cleanup { backends } => {
            cleanup_external(&backends.queue(), &backends.ledger()).await?;
        }
    }
    Ok(())
}
