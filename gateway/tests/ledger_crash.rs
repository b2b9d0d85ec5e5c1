//! Crash test: a child process appends from many tasks and prints every acknowledged sequence
//! number; the parent kills it with SIGKILL mid-run, reopens the ledger, and checks that it
//! verifies and holds every acknowledged entry.
//!
//! The child is this same test binary, re-run on the ignored test `crash_child` with the
//! ledger location in environment variables.

mod ledger_support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::ledger::{Backend, EventKind, Ledger, LedgerConfig};
use ledger_support::{Fixture, event};

const ENV_DIR: &str = "LEDGER_CRASH_CONFIG_DIR";
const ENV_BACKEND: &str = "LEDGER_CRASH_BACKEND";
const ENV_SCHEMA: &str = "LEDGER_CRASH_SCHEMA";

fn child_config(backend: Backend, schema: &str) -> LedgerConfig {
    LedgerConfig {
        backend,
        dir: PathBuf::from("ledger"),
        checkpoint_key: PathBuf::from("keys/checkpoint.key"),
        checkpoint_every_entries: 200,
        checkpoint_every_secs: 0,
        postgres_url: ledger_support::PG_URL.into(),
        postgres_schema: schema.to_string(),
        ..LedgerConfig::default()
    }
}

/// The child: appends forever from 8 tasks, printing `ack <seq>` after each durable append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by the crash tests as a child process"]
async fn crash_child() {
    let Ok(dir) = std::env::var(ENV_DIR) else {
        return;
    };
    let backend = match std::env::var(ENV_BACKEND).as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::File,
    };
    let config = child_config(backend, &std::env::var(ENV_SCHEMA).unwrap_or_default());
    let ledger = Arc::new(Ledger::open(&config, &PathBuf::from(dir)).await.unwrap());
    println!("ready");
    let mut tasks = Vec::new();
    for writer in 0..8u32 {
        let ledger = Arc::clone(&ledger);
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let entry = ledger
                    .append(event(writer * 1_000_000 + i, EventKind::Received))
                    .await
                    .unwrap();
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "ack {}", entry.seq).unwrap();
                stdout.flush().unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

async fn crash_and_recover(backend: Backend) {
    let fixture = Fixture::new(backend);
    let schema = fixture.config.postgres_schema.clone();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_DIR, fixture.config_dir())
        .env(
            ENV_BACKEND,
            if backend == Backend::Postgres {
                "postgres"
            } else {
                "file"
            },
        )
        .env(ENV_SCHEMA, &schema)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked = Vec::new();
    let started = Instant::now();
    let mut lines = stdout.lines();
    // Kill after a few hundred acknowledgements (or a time limit), mid-stream.
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(seq) = line.strip_prefix("ack ") {
            acked.push(seq.parse::<u64>().unwrap());
        }
        if acked.len() >= 700 || started.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    // Acknowledgements printed before the kill are still in the pipe.
    for line in lines {
        if let Some(seq) = line.unwrap().strip_prefix("ack ") {
            acked.push(seq.parse::<u64>().unwrap());
        }
    }
    child.wait().unwrap();
    assert!(
        acked.len() >= 100,
        "the child acknowledged only {} appends",
        acked.len()
    );

    // Restart: a writable open repairs any torn tail; then audit.
    let config = child_config(backend, &schema);
    let ledger = Ledger::open(&config, fixture.config_dir()).await.unwrap();
    let (size, _) = ledger.store().head().await.unwrap();
    let max_acked = *acked.iter().max().unwrap();
    assert!(
        size > max_acked,
        "ledger holds {size} entries, entry {max_acked} was acknowledged"
    );
    for seq in &acked {
        assert_eq!(ledger.entry(*seq).await.unwrap().seq, *seq);
    }
    // New appends continue the chain after the crash.
    ledger.append(event(42, EventKind::Queued)).await.unwrap();
    ledger.checkpoint().await.unwrap();
    drop(ledger);
    let report = Ledger::open_for_audit(&config, fixture.config_dir())
        .await
        .unwrap()
        .verify(|_, _| {})
        .await
        .unwrap();
    assert_eq!(report.failure, None);
    assert_eq!(report.entries, size + 1);
    fixture.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_ledger_survives_kill_9_during_appends() {
    crash_and_recover(Backend::File).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_ledger_survives_kill_9_during_appends() {
    crash_and_recover(Backend::Postgres).await;
}
