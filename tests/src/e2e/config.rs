//! The gateway configuration a test runs with: the committed `config/gateway.toml` (so every
//! section the product ships is exercised), with the test's own listeners, state, queue, DMP
//! endpoint, relay routes, whitelist and ledger laid over it.
//!
//! The file is written to `<tmp>/config/gateway.toml`: the shipped `../var/…` paths then land in
//! `<tmp>/var/…`, and `../certs/…` paths are made absolute to the repository's test PKI.

use std::path::{Path, PathBuf};

use anyhow::Context;
use toml::{Table, Value};

use super::paths::{cert, repo_root};

/// Where the deposit and relay jobs wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueBackend {
    /// SQLite files under `<tmp>/var/queue`.
    Embedded,
    /// RabbitMQ on 127.0.0.1 with this test's own prefix (its topology is deleted at the end).
    Amqp {
        /// `amqp_prefix`.
        prefix: String,
    },
}

/// Where the ledger lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerBackend {
    /// Files under `<tmp>/var/ledger`.
    File,
    /// PostgreSQL on 127.0.0.1, database `test`, in this test's own schema (dropped at the end).
    Postgres {
        /// `postgres_schema`.
        schema: String,
    },
}

/// The RabbitMQ broker of the tests.
pub const AMQP_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// The PostgreSQL database of the tests.
pub const POSTGRES_URL: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

/// One `[[relay.routes]]` entry.
#[derive(Debug, Clone)]
pub enum Route {
    /// Mutual-TLS SMTP (STARTTLS) to 127.0.0.1:`port` for `domain`.
    Smtp {
        /// Recipient domain.
        domain: String,
        /// The sink's port.
        port: u16,
    },
    /// Local Maildir delivery under `dir` for `domain` ("*" for the default route).
    Maildir {
        /// Recipient domain or "*".
        domain: String,
        /// Maildir root.
        dir: PathBuf,
    },
}

/// Everything the test decides about the gateway's configuration.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// STARTTLS listener port.
    pub smtp_port: u16,
    /// Implicit-TLS listener port.
    pub implicit_port: u16,
    /// Admin HTTP endpoint port (`[admin] listen`; the shipped fixed port would collide between
    /// tests running in parallel).
    pub admin_port: u16,
    /// Queue backend.
    pub queue: QueueBackend,
    /// Ledger backend.
    pub ledger: LedgerBackend,
    /// The `dmp-sim` ITI-41 endpoint.
    pub dmp_endpoint: String,
    /// Relay routes.
    pub routes: Vec<Route>,
    /// The harness's liste blanche and its checksum file.
    pub whitelist: (PathBuf, PathBuf),
    /// `logging.level` (tests read `info` lines; benchmarks want `warn`).
    pub log_level: String,
}

fn path_value(path: &Path) -> Value {
    Value::String(path.display().to_string())
}

/// Makes the shipped `../certs/…` (and any other `../` path outside `var/`) absolute, so the
/// file works from the temporary directory; `../var/…` stays relative, hence in `<tmp>/var`.
fn absolutize(value: &mut Value, repo: &Path) {
    match value {
        Value::String(text) => {
            if let Some(rest) = text.strip_prefix("../")
                && !rest.starts_with("var/")
                && rest != "var"
            {
                *text = repo.join(rest).display().to_string();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| absolutize(item, repo)),
        Value::Table(table) => table
            .iter_mut()
            .for_each(|(_, item)| absolutize(item, repo)),
        _ => {}
    }
}

/// The named sub-table of `root`, created empty if absent.
fn section<'a>(root: &'a mut Table, name: &str) -> &'a mut Table {
    let entry = root
        .entry(name.to_owned())
        .or_insert_with(|| Value::Table(Table::new()));
    if !entry.is_table() {
        *entry = Value::Table(Table::new());
    }
    match entry {
        Value::Table(table) => table,
        _ => unreachable!("replaced by a table just above"),
    }
}

/// Renders the configuration for `settings` over the committed `config/gateway.toml`.
pub fn render(settings: &GatewaySettings) -> anyhow::Result<String> {
    let repo = repo_root();
    let shipped = repo.join("config/gateway.toml");
    let text =
        std::fs::read_to_string(&shipped).with_context(|| format!("read {}", shipped.display()))?;
    let mut root: Table =
        toml::from_str(&text).with_context(|| format!("parse {}", shipped.display()))?;
    root.iter_mut()
        .for_each(|(_, value)| absolutize(value, &repo));

    let server = section(&mut root, "server");
    server.insert("state_dir".into(), "../var".into());
    server.insert("spool_dir".into(), "../var/spool".into());

    let listener = |port: u16, mode: &str| {
        let mut table = Table::new();
        table.insert("address".into(), format!("127.0.0.1:{port}").into());
        table.insert("mode".into(), mode.into());
        table.insert("require_client_certificate".into(), true.into());
        table.insert("whitelist".into(), true.into());
        Value::Table(table)
    };
    root.insert(
        "listeners".into(),
        Value::Array(vec![
            listener(settings.smtp_port, "starttls"),
            listener(settings.implicit_port, "implicit"),
        ]),
    );

    if let Some(Value::Table(admin)) = root.get_mut("admin") {
        admin.insert(
            "listen".into(),
            format!("127.0.0.1:{}", settings.admin_port).into(),
        );
    }

    let whitelist = section(&mut root, "whitelist");
    whitelist.insert("file".into(), path_value(&settings.whitelist.0));
    whitelist.insert("checksum_file".into(), path_value(&settings.whitelist.1));

    // A killed gateway must come back quickly; sessions cut by a stop are the client's problem.
    section(&mut root, "limits").insert("shutdown_grace".into(), 1.into());
    let logging = section(&mut root, "logging");
    logging.insert("format".into(), "text".into());
    logging.insert("level".into(), settings.log_level.as_str().into());

    let queue = section(&mut root, "queue");
    queue.insert("dir".into(), "../var/queue".into());
    match &settings.queue {
        QueueBackend::Embedded => {
            queue.insert("backend".into(), "embedded".into());
        }
        QueueBackend::Amqp { prefix } => {
            queue.insert("backend".into(), "amqp".into());
            queue.insert("amqp_uri".into(), AMQP_URI.into());
            queue.insert("amqp_prefix".into(), prefix.as_str().into());
        }
    }

    let dmp = section(&mut root, "dmp");
    dmp.insert("simulator".into(), false.into());
    dmp.insert("simulator_store".into(), "../var/dmp-sim".into());
    dmp.insert("endpoint".into(), settings.dmp_endpoint.as_str().into());
    // The DMP client identity (TLS certificate, VIHF signer, structure) stays the shipped one:
    // dmp-sim checks that they belong to the same structure.
    dmp.insert("concurrency".into(), 4.into());
    // Short retries so an outage drains within the test's time.
    dmp.insert("retry_base_secs".into(), 1.into());
    dmp.insert("retry_cap_secs".into(), 2.into());

    let relay = section(&mut root, "relay");
    relay.insert(
        "client_certificate".into(),
        path_value(&cert("tls/gateway.pem")),
    );
    relay.insert("client_key".into(), path_value(&cert("tls/gateway.key")));
    relay.insert(
        "server_trust".into(),
        Value::Array(vec![path_value(&cert("ca/root.pem"))]),
    );
    relay.insert(
        "server_intermediates".into(),
        Value::Array(vec![path_value(&cert("ca/org.pem"))]),
    );
    relay.insert(
        "crl_files".into(),
        Value::Array(vec![
            path_value(&cert("crl/org.crl.pem")),
            path_value(&cert("crl/root.crl.pem")),
        ]),
    );
    relay.insert("check_whitelist".into(), true.into());
    relay.insert("connect_timeout_secs".into(), 5.into());
    relay.insert("command_timeout_secs".into(), 10.into());
    relay.insert("retry_base_secs".into(), 1.into());
    relay.insert("retry_cap_secs".into(), 2.into());
    relay.insert("hostname".into(), "localhost".into());
    let routes = settings
        .routes
        .iter()
        .map(|route| {
            let mut table = Table::new();
            match route {
                Route::Smtp { domain, port } => {
                    table.insert("domain".into(), domain.as_str().into());
                    table.insert("kind".into(), "smtp".into());
                    table.insert("host".into(), "127.0.0.1".into());
                    table.insert("port".into(), i64::from(*port).into());
                    table.insert("tls".into(), "starttls".into());
                    table.insert("server_name".into(), "localhost".into());
                }
                Route::Maildir { domain, dir } => {
                    table.insert("domain".into(), domain.as_str().into());
                    table.insert("kind".into(), "maildir".into());
                    table.insert("maildir".into(), path_value(dir));
                }
            }
            Value::Table(table)
        })
        .collect();
    relay.insert("routes".into(), Value::Array(routes));

    let ledger = section(&mut root, "ledger");
    ledger.insert("dir".into(), "../var/ledger".into());
    ledger.insert(
        "checkpoint_key".into(),
        "../var/ledger/checkpoint.key".into(),
    );
    // Checkpoints during the test, so `audit verify` checks signatures too.
    ledger.insert("checkpoint_every_entries".into(), 20.into());
    match &settings.ledger {
        LedgerBackend::File => {
            ledger.insert("backend".into(), "file".into());
        }
        LedgerBackend::Postgres { schema } => {
            ledger.insert("backend".into(), "postgres".into());
            ledger.insert("postgres_url".into(), POSTGRES_URL.into());
            ledger.insert("postgres_schema".into(), schema.as_str().into());
        }
    }
    Ok(toml::to_string(&root)?)
}
