//! One test's world: a temporary directory, `dmp-sim`, the relay sinks, the gateway's
//! configuration and the gateway process, which the test can stop, kill and restart.

use std::ffi::OsString;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use dmp_connector::queue::amqp::{AmqpConfig, AmqpQueue};
use tempfile::TempDir;

use super::audit::{self, AuditOutput};
use super::client::{Outcome, Sender};
use super::config::{
    AMQP_URI, GatewaySettings, LedgerBackend, POSTGRES_URL, QueueBackend, Route, render,
};
use super::dmp::DmpSim;
use super::message::Mail;
use super::paths::binary;
use super::process::Process;
use super::sink::{SinkMode, SmtpSink};
use super::whitelist;

/// The line the gateway logs once its listeners accept mail.
pub const READY: &str = "gateway ready";
/// Longest wait for the gateway to be ready.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How to set a test up.
#[derive(Debug, Clone)]
pub struct TestEnvBuilder {
    queue: QueueBackend,
    ledger: LedgerBackend,
    dmp_down_for_secs: Option<u64>,
    smtp_domains: Vec<(String, SinkMode)>,
}

/// A name unique to this run and test, for broker prefixes and database schemas.
fn unique_name(test: &str) -> String {
    let clean: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "e2e_{clean}_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

impl TestEnvBuilder {
    /// Embedded queue, file ledger, no DMP outage, one SMTP sink for `cabinet-c.mssante.test`
    /// and a maildir for every other domain.
    pub fn new() -> TestEnvBuilder {
        TestEnvBuilder {
            queue: QueueBackend::Embedded,
            ledger: LedgerBackend::File,
            dmp_down_for_secs: None,
            smtp_domains: vec![("cabinet-c.mssante.test".to_owned(), SinkMode::Accept)],
        }
    }

    /// RabbitMQ queue and PostgreSQL ledger (the multi-node configuration), named after `test`.
    pub fn multi_node(mut self, test: &str) -> TestEnvBuilder {
        let name = unique_name(test);
        self.queue = QueueBackend::Amqp {
            prefix: name.replace('_', "-"),
        };
        self.ledger = LedgerBackend::Postgres { schema: name };
        self
    }

    /// `dmp-sim` answers 503 for this many seconds after it starts.
    pub fn dmp_down_for(mut self, secs: u64) -> TestEnvBuilder {
        self.dmp_down_for_secs = Some(secs);
        self
    }

    /// One more recipient domain routed over SMTP to a sink that answers as `mode` says (and
    /// listed in the liste blanche like the others).
    pub fn smtp_domain(mut self, domain: &str, mode: SinkMode) -> TestEnvBuilder {
        self.smtp_domains.push((domain.to_owned(), mode));
        self
    }

    /// Sets up everything and starts the gateway.
    pub async fn start(self) -> anyhow::Result<TestEnv> {
        // Fail early and clearly when the binaries were not built.
        binary("gateway")?;
        let dir = tempfile::Builder::new().prefix("gateway-e2e-").tempdir()?;
        let root = dir.path().to_path_buf();
        let config_dir = root.join("config");
        std::fs::create_dir_all(&config_dir)?;
        let dmp = DmpSim::start(&mkdir(&root.join("dmp-sim"))?, self.dmp_down_for_secs).await?;
        let mut sinks = Vec::new();
        let mut routes = Vec::new();
        for (domain, mode) in &self.smtp_domains {
            let sink = SmtpSink::start(domain, &root.join("sinks").join(domain), mode)?;
            routes.push(Route::Smtp {
                domain: domain.clone(),
                port: sink.port(),
            });
            sinks.push(sink);
        }
        let maildir = root.join("mailboxes");
        routes.push(Route::Maildir {
            domain: "*".to_owned(),
            dir: maildir.clone(),
        });
        let settings = GatewaySettings {
            smtp_port: free_port()?,
            implicit_port: free_port()?,
            admin_port: free_port()?,
            queue: self.queue,
            ledger: self.ledger,
            dmp_endpoint: dmp.endpoint(),
            routes,
            whitelist: whitelist::write(
                &config_dir,
                &self
                    .smtp_domains
                    .iter()
                    .map(|(domain, _)| domain.clone())
                    .collect::<Vec<_>>(),
            )?,
            log_level: "info".to_owned(),
        };
        let config = config_dir.join("gateway.toml");
        std::fs::write(&config, render(&settings)?)?;
        let sender = Sender::hopital_a(SocketAddr::from(([127, 0, 0, 1], settings.smtp_port)))?;
        let mut env = TestEnv {
            dir,
            root,
            config,
            settings,
            dmp,
            sinks,
            maildir,
            gateway: None,
            sender,
            starts: 0,
        };
        env.start_gateway().await?;
        Ok(env)
    }
}

impl Default for TestEnvBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn mkdir(path: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(path)?;
    Ok(path.to_path_buf())
}

/// A port free right now (the kernel's pick for port 0; the listener is closed before use).
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running test world. Dropping it kills the processes; call [`TestEnv::finish`] to also
/// remove the broker topology and the database schema.
#[derive(Debug)]
pub struct TestEnv {
    dir: TempDir,
    root: PathBuf,
    config: PathBuf,
    settings: GatewaySettings,
    /// The DMP.
    pub dmp: DmpSim,
    sinks: Vec<SmtpSink>,
    maildir: PathBuf,
    gateway: Option<Process>,
    sender: Sender,
    starts: u32,
}

impl TestEnv {
    /// The gateway's configuration file.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// The temporary directory holding everything.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The gateway's STARTTLS listener.
    pub fn smtp_address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.settings.smtp_port))
    }

    /// The queue backend in use.
    pub fn queue_backend(&self) -> &QueueBackend {
        &self.settings.queue
    }

    /// The client sending as hopital-a.
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// Starts the gateway and waits for `gateway ready`.
    pub async fn start_gateway(&mut self) -> anyhow::Result<()> {
        if let Some(mut old) = self.gateway.take() {
            old.kill9()?;
        }
        let args: Vec<OsString> = vec!["run".into(), "--config".into(), self.config.clone().into()];
        let mut process = Process::spawn(
            "gateway",
            &binary("gateway")?,
            &args,
            &self.root.join("gateway.log"),
        )?;
        process.wait_for_line(READY, START_TIMEOUT).await?;
        self.gateway = Some(process);
        self.starts += 1;
        Ok(())
    }

    /// kill -9 the gateway (no cleanup of any kind happens in it).
    pub fn kill_gateway(&mut self) -> anyhow::Result<()> {
        if let Some(mut process) = self.gateway.take() {
            process.kill9()?;
        }
        Ok(())
    }

    /// SIGTERM the gateway and wait for it to exit; returns its exit code.
    pub async fn stop_gateway(&mut self) -> anyhow::Result<Option<i32>> {
        match self.gateway.take() {
            Some(mut process) => Ok(process.terminate(Duration::from_secs(10)).await?.code()),
            None => Ok(None),
        }
    }

    /// How many times the gateway was started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// The end of the gateway's log (for assertion messages).
    pub fn gateway_log(&self) -> String {
        std::fs::read_to_string(self.root.join("gateway.log"))
            .map(|text| {
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(60)..].join("\n")
            })
            .unwrap_or_default()
    }

    /// Sends `mail` as hopital-a and returns the end-of-DATA outcome.
    pub async fn send(&self, mail: &Mail) -> anyhow::Result<Outcome> {
        self.sender.send(mail).await
    }

    /// `gateway audit <args>`.
    pub fn audit(&self, args: &[&str]) -> anyhow::Result<AuditOutput> {
        audit::run(&self.config, args)
    }

    /// Event kinds of `gateway audit trace <id>`.
    pub fn trace(&self, id: &str) -> anyhow::Result<Vec<String>> {
        audit::trace_kinds(&self.config, id)
    }

    /// Every ledger entry (`audit export --format json`).
    pub fn ledger(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        audit::export(&self.config)
    }

    /// Files in the spool's queue (accepted messages not yet final).
    pub fn spool_pending(&self) -> anyhow::Result<usize> {
        let queue = self.root.join("var/spool/queue");
        if !queue.is_dir() {
            return Ok(0);
        }
        Ok(std::fs::read_dir(queue)?
            .filter_map(Result::ok)
            .filter(|entry| entry.path().extension().is_some_and(|e| e == "msg"))
            .count())
    }

    /// Messages the SMTP sink of `domain` received.
    pub async fn sink_messages(&self, domain: &str) -> anyhow::Result<Vec<Vec<u8>>> {
        let sink = self
            .sinks
            .iter()
            .find(|sink| sink.domain == domain)
            .with_context(|| format!("no SMTP sink for {domain}"))?;
        sink.messages().await
    }

    /// Messages delivered to Maildir folders of `domain` (`new/` and `cur/` of every mailbox).
    pub fn maildir_messages(&self, domain: &str) -> anyhow::Result<Vec<Vec<u8>>> {
        let base = self.maildir.join(domain);
        let mut out = Vec::new();
        if !base.is_dir() {
            return Ok(out);
        }
        for mailbox in std::fs::read_dir(&base)? {
            let mailbox = mailbox?.path();
            for folder in ["new", "cur"] {
                let folder = mailbox.join(folder);
                if !folder.is_dir() {
                    continue;
                }
                for file in std::fs::read_dir(&folder)? {
                    out.push(std::fs::read(file?.path())?);
                }
            }
        }
        Ok(out)
    }

    /// Stops everything and removes what the test created outside its temporary directory
    /// (broker queues and exchanges, database schema). Keeps the directory when `E2E_KEEP` is set
    /// (to look at logs after a failure).
    pub async fn finish(mut self) -> anyhow::Result<()> {
        let _ = self.stop_gateway().await;
        for sink in std::mem::take(&mut self.sinks) {
            sink.stop().await;
        }
        cleanup_external(&self.settings.queue, &self.settings.ledger).await?;
        if std::env::var_os("E2E_KEEP").is_some() {
            let kept = self.dir.keep();
            eprintln!("e2e: kept {}", kept.display());
        }
        Ok(())
    }
}

/// Deletes the broker topology and database schema of a test or benchmark run.
pub async fn cleanup_external(queue: &QueueBackend, ledger: &LedgerBackend) -> anyhow::Result<()> {
    if let QueueBackend::Amqp { prefix } = queue {
        // The contract names the deposit queues "<prefix>-deposit", the shipped configuration
        // "<prefix>-deposits": clean up both (deleting an absent topology is harmless).
        for suffix in ["deposit", "deposits", "relay"] {
            let queue =
                AmqpQueue::connect(AmqpConfig::new(AMQP_URI, format!("{prefix}-{suffix}"))).await?;
            queue.delete_topology().await?;
        }
    }
    if let LedgerBackend::Postgres { schema } = ledger {
        let (client, connection) = tokio_postgres::connect(POSTGRES_URL, tokio_postgres::NoTls)
            .await
            .context("connect to PostgreSQL")?;
        let task = tokio::spawn(connection);
        // The name is ours (letters, digits, underscores), so quoting it is enough.
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await?;
        drop(client);
        let _ = task.await;
    }
    Ok(())
}
