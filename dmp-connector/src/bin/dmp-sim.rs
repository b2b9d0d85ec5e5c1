//! `dmp-sim`: the DMP simulator as a process.
//!
//! `dmp-sim --listen 127.0.0.1:8443 --store var/dmp-sim --tls-cert certs/tls/gateway.pem
//! --tls-key certs/tls/gateway.key --client-ca certs/ca/bundle.pem --crl certs/crl/org.crl.pem
//! --crl certs/crl/root.crl.pem [--fail-rate F] [--delay-ms N] [--down-for-secs N]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use dmp_connector::sim::{self, Environment, Faults, SimConfig};

/// Command line of `dmp-sim`.
#[derive(Debug, Parser)]
#[command(
    name = "dmp-sim",
    about = "Strict DMP (IHE XDS.b ITI-41) simulator over mutual TLS"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Directory where deposited documents are stored.
    #[arg(long)]
    store: PathBuf,
    /// Server certificate chain (PEM).
    #[arg(long)]
    tls_cert: PathBuf,
    /// Server private key (PEM).
    #[arg(long)]
    tls_key: PathBuf,
    /// CA bundle for client certificates and VIHF signers (PEM).
    #[arg(long)]
    client_ca: PathBuf,
    /// CRL (PEM); give one per CA of the bundle.
    #[arg(long = "crl")]
    crls: Vec<PathBuf>,
    /// INS environment.
    #[arg(long, value_enum, default_value = "test")]
    environment: Environment,
    /// Probability of answering HTTP 503.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Delay before each answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Refuse submissions without the TD2.1 submission-set (XAdES) signature.
    #[arg(long)]
    require_submission_signature: bool,
    /// Answer 503 to everything for this many seconds after start.
    #[arg(long, default_value_t = 0)]
    down_for_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(0.0..=1.0).contains(&args.fail_rate) {
        anyhow::bail!("--fail-rate must be between 0 and 1");
    }
    let handle = sim::start(SimConfig {
        listen: args.listen,
        store: args.store,
        tls_certificate: args.tls_cert,
        tls_key: args.tls_key,
        client_ca: args.client_ca,
        crls: args.crls,
        environment: args.environment,
        require_submission_signature: args.require_submission_signature,
        faults: Faults {
            fail_rate: args.fail_rate,
            delay: Duration::from_millis(args.delay_ms),
            down_for: Duration::from_secs(args.down_for_secs),
        },
    })
    .await?;
    println!("dmp-sim listening on {}", handle.local_addr);
    tokio::signal::ctrl_c().await?;
    handle.shutdown().await;
    Ok(())
}
