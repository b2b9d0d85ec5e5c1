//! Load generator for an SMTP server that requires mutual TLS (the gateway, or Postfix for comparison).
//!
//! Load mode: `--sessions N` concurrent sessions send `--messages M` messages in total, `--per-connection K`
//! per session before reconnecting, and the run reports throughput, latency percentiles and errors by reply
//! code. Idle mode (`--idle N`): open N sessions, EHLO done, hold them and report the server's memory.
//! Exit status: 0 when everything was accepted, 1 when anything failed (the report is printed first).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use gateway_tests::load::rss::{MemoryStatus, RssReport, RssWatcher, read_total};
use gateway_tests::load::stats::LatencySummary;
use gateway_tests::smtp_client::tls::{TlsFiles, TlsVersions, client_config};
use gateway_tests::smtp_client::{
    ConnectOptions, MessageTemplate, SmtpClientError, TlsMode, TlsSession, connect,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rustls_pki_types::ServerName;
use serde_json::json;
use tokio::sync::Semaphore;

/// Default credentials: the test PKI's HOPITAL A client (paths resolved at build time, from this crate).
const DEFAULT_CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/ca/bundle.pem");
const DEFAULT_CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/tls/hopital-a.pem");
const DEFAULT_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../certs/tls/hopital-a.key");

#[derive(Debug, Parser)]
#[command(about = "Mutual-TLS SMTP load generator (TEST ONLY: sends synthetic messages)")]
struct Cli {
    /// Server address, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:2525")]
    server: String,
    /// How TLS starts.
    #[arg(long, value_enum, default_value_t = Mode::Starttls)]
    mode: Mode,
    /// Name the server certificate must carry.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// CA certificates (PEM) that verify the server.
    #[arg(long, default_value = DEFAULT_CA)]
    ca: PathBuf,
    /// Client certificate chain (PEM, leaf first).
    #[arg(long, default_value = DEFAULT_CERT)]
    cert: PathBuf,
    /// Client private key (PEM).
    #[arg(long, default_value = DEFAULT_KEY)]
    key: PathBuf,
    /// TLS versions to offer.
    #[arg(long, value_enum, default_value_t = Versions::Any)]
    tls: Versions,
    /// Resume TLS sessions on reconnect (default: every connection does a full handshake).
    #[arg(long)]
    resume: bool,
    /// Set TCP_NODELAY on client sockets.
    #[arg(long)]
    nodelay: bool,
    /// Concurrent sessions.
    #[arg(long, short = 'c', default_value_t = 10)]
    sessions: usize,
    /// Messages to send in total.
    #[arg(long, short = 'n', default_value_t = 1000)]
    messages: u64,
    /// Messages per connection before QUIT and reconnect.
    #[arg(long, short = 'k', default_value_t = 1)]
    per_connection: u64,
    /// Message size in bytes (suffixes K and M are powers of 1024).
    #[arg(long, default_value = "100K", value_parser = parse_size, conflicts_with = "message_file")]
    size: usize,
    /// Send this prebuilt RFC 5322 message (e.g. from `gateway send --output`) instead of a
    /// synthetic one; each copy gets its own Message-ID. Repeat to cycle through several (the
    /// gateway deposits each document once: distinct documents need distinct files).
    #[arg(long)]
    message_file: Vec<PathBuf>,
    /// Envelope sender (its domain must match the client certificate in the liste blanche).
    #[arg(long, default_value = "secretariat@hopital-a.mssante.test")]
    from: String,
    /// Envelope recipient (repeat for several).
    #[arg(long = "to", default_value = "dmp@gateway.mssante.test")]
    to: Vec<String>,
    /// EHLO name.
    #[arg(long, default_value = "mx.hopital-a.mssante.test")]
    helo: String,
    /// Limit for each step (connect, handshake, each reply), in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Server process to sample VmRSS/VmHWM from (repeat to sum several processes).
    #[arg(long = "watch-pid")]
    watch_pid: Vec<u32>,
    /// Also count the descendants of the watched processes (e.g. Postfix's smtpd under master).
    #[arg(long)]
    watch_children: bool,
    /// Idle mode: open this many sessions (EHLO done) and hold them instead of sending mail.
    #[arg(long)]
    idle: Option<usize>,
    /// Idle mode: seconds to hold the sessions.
    #[arg(long, default_value_t = 10)]
    hold: u64,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Starttls,
    Implicit,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Versions {
    Any,
    #[value(name = "1.2")]
    V12,
    #[value(name = "1.3")]
    V13,
}

fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (number, factor) = match text.char_indices().last() {
        Some((at, 'K' | 'k')) => (&text[..at], 1024),
        Some((at, 'M' | 'm')) => (&text[..at], 1024 * 1024),
        _ => (text, 1),
    };
    let number: usize = number
        .parse()
        .map_err(|_| format!("not a size: {text:?}"))?;
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("size too large: {text:?}"))
}

/// What every worker shares.
struct Shared {
    connect: ConnectOptions,
    templates: Vec<MessageTemplate>,
    from: String,
    to: Vec<String>,
    per_connection: u64,
    total: u64,
    next: AtomicU64,
    run: u64,
    progress: ProgressBar,
}

impl Shared {
    /// Claims the next message to send, if any are left.
    fn claim(&self) -> Option<u64> {
        let sequence = self.next.fetch_add(1, Ordering::Relaxed);
        (sequence < self.total).then_some(sequence)
    }
}

/// What one worker measured.
#[derive(Default)]
struct Tally {
    accepted: u64,
    connections: u64,
    quit_failures: u64,
    setup: Vec<Duration>,
    accept: Vec<Duration>,
    transaction: Vec<Duration>,
    errors: BTreeMap<String, u64>,
    examples: BTreeMap<String, String>,
}

impl Tally {
    fn record_error(&mut self, error: &SmtpClientError) {
        let bucket = error.bucket();
        self.examples
            .entry(bucket.clone())
            .or_insert_with(|| error.to_string());
        *self.errors.entry(bucket).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        self.accepted += other.accepted;
        self.connections += other.connections;
        self.quit_failures += other.quit_failures;
        self.setup.extend(other.setup);
        self.accept.extend(other.accept);
        self.transaction.extend(other.transaction);
        for (bucket, count) in other.errors {
            *self.errors.entry(bucket).or_default() += count;
        }
        for (bucket, example) in other.examples {
            self.examples.entry(bucket).or_insert(example);
        }
    }
}

async fn worker(shared: Arc<Shared>) -> Tally {
    let mut tally = Tally::default();
    let mut current: Option<(TlsSession, u64)> = None;
    while let Some(sequence) = shared.claim() {
        if current.is_none() {
            let started = Instant::now();
            match connect(&shared.connect).await {
                Ok(session) => {
                    tally.setup.push(started.elapsed());
                    tally.connections += 1;
                    current = Some((session, 0));
                }
                Err(error) => {
                    // The claimed message is counted as failed, so a refusing server ends the run.
                    tally.record_error(&error);
                    shared.progress.inc(1);
                    continue;
                }
            }
        }
        let Some((session, sent)) = current.as_mut() else {
            continue;
        };
        // `templates` is never empty (run_load builds at least one).
        let template = &shared.templates[(sequence % shared.templates.len() as u64) as usize];
        let header = template.message_id_header(shared.run, sequence);
        let parts = [header.as_slice(), template.rest()];
        match session.send_mail(&shared.from, &shared.to, &parts).await {
            Ok(timing) => {
                tally.accepted += 1;
                tally.accept.push(timing.accept);
                tally.transaction.push(timing.total);
                *sent += 1;
            }
            Err(error) => {
                tally.record_error(&error);
                *sent += 1;
                if !error.connection_usable() || session.reset().await.is_err() {
                    current = None;
                }
            }
        }
        shared.progress.inc(1);
        if let Some((session, sent)) = current.take() {
            if sent < shared.per_connection {
                current = Some((session, sent));
            } else if session.quit().await.is_err() {
                tally.quit_failures += 1;
            }
        }
    }
    if let Some((session, _)) = current
        && session.quit().await.is_err()
    {
        tally.quit_failures += 1;
    }
    tally
}

async fn resolve(server: &str) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host(server)
        .await
        .with_context(|| format!("resolving {server}"))?
        .next()
        .with_context(|| format!("{server} resolves to no address"))
}

fn progress_bar(length: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {pos}/{len} {per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn start_watcher(cli: &Cli) -> anyhow::Result<Option<RssWatcher>> {
    if cli.watch_pid.is_empty() {
        return Ok(None);
    }
    RssWatcher::start(
        cli.watch_pid.clone(),
        cli.watch_children,
        Duration::from_millis(100),
    )
    .map(Some)
    .context("reading /proc/PID/status of --watch-pid")
}

fn rss_json(report: Option<RssReport>) -> serde_json::Value {
    report.map_or(serde_json::Value::Null, |report| {
        json!({
            "start_kib": report.start_kib,
            "peak_kib": report.peak_kib,
            "end_kib": report.end_kib,
            "hwm_kib": report.hwm_kib,
            "peak_pss_kib": report.peak_pss_kib,
        })
    })
}

async fn run_load(cli: &Cli, options: ConnectOptions) -> anyhow::Result<serde_json::Value> {
    if cli.sessions == 0 || cli.per_connection == 0 {
        bail!("--sessions and --per-connection must be at least 1");
    }
    let domain = cli.from.rsplit_once('@').map_or("loadgen.test", |(_, d)| d);
    let mut templates = Vec::with_capacity(cli.message_file.len().max(1));
    for path in &cli.message_file {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read --message-file {}", path.display()))?;
        templates.push(MessageTemplate::from_message(&bytes, domain));
    }
    if templates.is_empty() {
        templates.push(MessageTemplate::new(&cli.from, &cli.to, cli.size));
    }
    // The mean size when several files are cycled through.
    let message_size = templates.iter().map(MessageTemplate::size).sum::<usize>() / templates.len();
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64);
    let shared = Arc::new(Shared {
        connect: options,
        templates,
        from: cli.from.clone(),
        to: cli.to.clone(),
        per_connection: cli.per_connection,
        total: cli.messages,
        next: AtomicU64::new(0),
        run,
        progress: progress_bar(cli.messages, cli.quiet),
    });

    let watcher = start_watcher(cli)?;
    let started = Instant::now();
    let workers: Vec<_> = (0..cli.sessions)
        .map(|_| tokio::spawn(worker(Arc::clone(&shared))))
        .collect();
    let mut tally = Tally::default();
    for handle in workers {
        tally.merge(handle.await.context("a worker task panicked")?);
    }
    let elapsed = started.elapsed();
    shared.progress.finish_and_clear();
    let rss = match watcher {
        Some(watcher) => Some(watcher.stop().await),
        None => None,
    };

    let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
    let failed: u64 = tally.errors.values().sum();
    Ok(json!({
        "mode": "load",
        "server": cli.server,
        "tls_mode": format!("{:?}", cli.mode).to_lowercase(),
        "nodelay": cli.nodelay,
        "resume": cli.resume,
        "sessions": cli.sessions,
        "per_connection": cli.per_connection,
        "message_size": message_size,
        "messages": cli.messages,
        "accepted": tally.accepted,
        "failed": failed,
        "connections": tally.connections,
        "quit_failures": tally.quit_failures,
        "elapsed_s": seconds,
        "messages_per_s": tally.accepted as f64 / seconds,
        "mb_per_s": (tally.accepted as f64 * message_size as f64) / seconds / 1e6,
        "latency": {
            "session_setup": LatencySummary::from_samples(&mut tally.setup).to_json(),
            "accept": LatencySummary::from_samples(&mut tally.accept).to_json(),
            "transaction": LatencySummary::from_samples(&mut tally.transaction).to_json(),
        },
        "errors": tally.errors,
        "error_examples": tally.examples,
        "server_rss": rss_json(rss),
    }))
}

/// The watched processes' memory now, if any are watched.
fn sample(cli: &Cli) -> anyhow::Result<Option<MemoryStatus>> {
    if cli.watch_pid.is_empty() {
        return Ok(None);
    }
    read_total(&cli.watch_pid, cli.watch_children)
        .map(Some)
        .context("reading /proc/PID/status of --watch-pid")
}

async fn run_idle(
    cli: &Cli,
    options: ConnectOptions,
    count: usize,
) -> anyhow::Result<serde_json::Value> {
    let before = sample(cli)?;
    let progress = progress_bar(count as u64, cli.quiet);
    // Bound concurrent handshakes so the server sees a ramp, not a SYN flood.
    let gate = Arc::new(Semaphore::new(cli.sessions.max(1)));
    let options = Arc::new(options);
    let started = Instant::now();
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let (gate, options, progress) =
                (Arc::clone(&gate), Arc::clone(&options), progress.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await;
                let result = connect(&options).await;
                progress.inc(1);
                result
            })
        })
        .collect();
    let mut sessions = Vec::with_capacity(count);
    let mut tally = Tally::default();
    for task in tasks {
        match task.await.context("a connect task panicked")? {
            Ok(session) => sessions.push(session),
            Err(error) => tally.record_error(&error),
        }
    }
    progress.finish_and_clear();
    let open_time = started.elapsed();
    let opened = sessions.len();
    let after_open = sample(cli)?;
    tokio::time::sleep(Duration::from_secs(cli.hold)).await;
    let after_hold = sample(cli)?;
    let mut still_open = 0usize;
    let closers: Vec<_> = sessions
        .into_iter()
        .map(|session| tokio::spawn(session.quit()))
        .collect();
    for closer in closers {
        if matches!(closer.await, Ok(Ok(()))) {
            still_open += 1;
        }
    }
    let per_session_kib = match (before, after_open) {
        (Some(before), Some(after)) if opened > 0 => {
            Some(after.rss_kib.saturating_sub(before.rss_kib) as f64 / opened as f64)
        }
        _ => None,
    };
    let kib = |status: Option<MemoryStatus>| status.map(|s| s.rss_kib);
    Ok(json!({
        "mode": "idle",
        "server": cli.server,
        "requested": count,
        "opened": opened,
        "open_s": open_time.as_secs_f64(),
        "hold_s": cli.hold,
        "still_open_after_hold": still_open,
        "errors": tally.errors,
        "error_examples": tally.examples,
        "server_rss_kib": {
            "before": kib(before),
            "after_open": kib(after_open),
            "after_hold": kib(after_hold),
            "hwm_after_hold": after_hold.map(|s| s.hwm_kib),
            "pss_before": before.map(|s| s.pss_kib),
            "pss_after_open": after_open.map(|s| s.pss_kib),
            "per_session": per_session_kib,
        },
    }))
}

fn print_text(report: &serde_json::Value) {
    let get = |path: &str| report.pointer(path).cloned().unwrap_or_default();
    // Strings without their JSON quotes.
    let text = |path: &str| match get(path) {
        serde_json::Value::String(string) => string,
        other => other.to_string(),
    };
    if report["mode"] == "idle" {
        println!(
            "idle sessions: {} of {} opened in {:.1} s, {} still answered QUIT after {} s",
            get("/opened"),
            get("/requested"),
            get("/open_s").as_f64().unwrap_or_default(),
            get("/still_open_after_hold"),
            get("/hold_s"),
        );
        println!("server RSS (KiB): {}", get("/server_rss_kib"));
    } else {
        println!(
            "{} sessions, {} msg/connection, {} B messages, tls={} nodelay={} resume={}",
            get("/sessions"),
            get("/per_connection"),
            get("/message_size"),
            text("/tls_mode"),
            get("/nodelay"),
            get("/resume"),
        );
        println!(
            "accepted {} of {} in {:.2} s over {} connections: {:.1} msg/s, {:.2} MB/s",
            get("/accepted"),
            get("/messages"),
            get("/elapsed_s").as_f64().unwrap_or_default(),
            get("/connections"),
            get("/messages_per_s").as_f64().unwrap_or_default(),
            get("/mb_per_s").as_f64().unwrap_or_default(),
        );
        println!(
            "{:<28}{:>10}{:>10}{:>10}{:>10}",
            "latency (ms)", "p50", "p95", "p99", "max"
        );
        for (label, key) in [
            ("session setup (TLS+EHLO)", "session_setup"),
            ("accept (\".\" to 250)", "accept"),
            ("transaction (MAIL to 250)", "transaction"),
        ] {
            let value = |field: &str| {
                get(&format!("/latency/{key}/{field}"))
                    .as_f64()
                    .unwrap_or_default()
            };
            if value("count") == 0.0 {
                println!("{label:<28}{:>10}{:>10}{:>10}{:>10}", "-", "-", "-", "-");
                continue;
            }
            println!(
                "{label:<28}{:>10.2}{:>10.2}{:>10.2}{:>10.2}",
                value("p50_ms"),
                value("p95_ms"),
                value("p99_ms"),
                value("max_ms"),
            );
        }
        if !report["server_rss"].is_null() {
            println!("server RSS (KiB): {}", get("/server_rss"));
        }
    }
    if let Some(errors) = report["errors"].as_object().filter(|e| !e.is_empty()) {
        println!("errors by reply code / kind:");
        for (bucket, count) in errors {
            println!(
                "  {bucket:<10} {count:>8}  e.g. {}",
                get(&format!("/error_examples/{bucket}"))
            );
        }
    }
}

/// Exit status 1 when any message (or idle session) failed, after the report is printed.
#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // Thousands of sessions need thousands of descriptors; failing to raise the limit is not fatal.
    if let Err(error) = gateway_tests::load::raise_file_limit() {
        eprintln!("warning: could not raise the open-file limit: {error}");
    }
    let versions = match cli.tls {
        Versions::Any => TlsVersions::Any,
        Versions::V12 => TlsVersions::Tls12,
        Versions::V13 => TlsVersions::Tls13,
    };
    let files = TlsFiles {
        ca: &cli.ca,
        certificate: &cli.cert,
        key: &cli.key,
    };
    let tls = client_config(&files, versions, cli.resume)?;
    let server_name = ServerName::try_from(cli.server_name.clone())
        .with_context(|| format!("invalid --server-name {:?}", cli.server_name))?;
    let options = ConnectOptions {
        address: resolve(&cli.server).await?,
        mode: match cli.mode {
            Mode::Starttls => TlsMode::StartTls,
            Mode::Implicit => TlsMode::Implicit,
        },
        server_name,
        tls,
        helo: cli.helo.clone(),
        nodelay: cli.nodelay,
        timeout: Duration::from_secs(cli.timeout),
    };
    let report = match cli.idle {
        Some(count) => run_idle(&cli, options, count).await?,
        None => run_load(&cli, options).await?,
    };
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    let failed = report["errors"]
        .as_object()
        .is_some_and(|errors| !errors.is_empty());
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100K"), Ok(102_400));
        assert_eq!(parse_size("2m"), Ok(2_097_152));
        assert_eq!(parse_size("512"), Ok(512));
        assert!(parse_size("lots").is_err());
    }
}
