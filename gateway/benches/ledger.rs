//! Ledger throughput: durable appends (one writer, sixteen concurrent writers) and full
//! verification, on the file backend in a temporary directory.
//!
//! `cargo bench -p gateway --bench ledger`. Set `LEDGER_BENCH_MILLION=1` to also time one
//! verification of 1,000,000 entries (slow to build: it is printed, not sampled), and
//! `LEDGER_BENCH_POSTGRES=1` to measure appends on the PostgreSQL backend (127.0.0.1:5432).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gateway::ledger::{CertIdentity, Event, EventKind, Ledger, LedgerConfig};

fn config() -> LedgerConfig {
    LedgerConfig {
        checkpoint_every_entries: 0,
        checkpoint_every_secs: 0,
        dir: "ledger".into(),
        checkpoint_key: "checkpoint.key".into(),
        ..LedgerConfig::default()
    }
}

/// A typical entry: about 400 bytes, like a "verified" step with a peer and a signer.
fn event(n: u64) -> Event {
    let mut event = Event::new(EventKind::Verified);
    event.queue_id = Some(format!("Q{n:015}"));
    event.message_id = Some(format!("<bench-{n}@hopital-a.mssante.test>"));
    event.message_sha256 = Some([7; 32]);
    let cert = CertIdentity {
        subject: "CN=hopital-a.mssante.test,OU=10000000010001,O=HOPITAL A TEST,C=FR".into(),
        issuer: "CN=TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS,O=ASIP-SANTE,C=FR".into(),
        serial: format!("{n:016x}"),
    };
    event.tls_peer = Some(cert.clone());
    event.signer = Some(cert);
    event.patient_ins = Some("200000080000001".into());
    event
}

async fn open(dir: &Path) -> Ledger {
    Ledger::open(&config(), dir).await.expect("open ledger")
}

fn appends(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Arc::new(runtime.block_on(open(dir.path())));
    append_group(c, &runtime, &ledger, "ledger_append_durable");
    if std::env::var_os("LEDGER_BENCH_POSTGRES").is_some() {
        let mut config = config();
        config.backend = gateway::ledger::Backend::Postgres;
        config.postgres_schema = format!("ledger_bench_{}", std::process::id());
        let ledger = Arc::new(
            runtime
                .block_on(Ledger::open(&config, dir.path()))
                .expect("open PostgreSQL ledger"),
        );
        append_group(c, &runtime, &ledger, "ledger_append_postgres");
        runtime
            .block_on(gateway::ledger::store::postgres::PgStore::drop_schema(
                &config.postgres_url,
                &config.postgres_schema,
            ))
            .expect("drop bench schema");
    }
}

fn append_group(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    ledger: &Arc<Ledger>,
    name: &str,
) {
    let mut group = c.benchmark_group(name);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(1));
    group.bench_function("1_writer", |b| {
        b.iter(|| runtime.block_on(ledger.append(event(1))).expect("append"))
    });
    // 16 writers, each appending `per_writer` entries one after another; the time reported is
    // per append (16 × per_writer appends per iteration).
    let per_writer = 32u64;
    group.throughput(Throughput::Elements(16 * per_writer));
    group.bench_function("16_writers", |b| {
        b.iter(|| {
            let ledger = Arc::clone(ledger);
            runtime.block_on(async move {
                let mut tasks = Vec::new();
                for w in 0..16 {
                    let ledger = Arc::clone(&ledger);
                    tasks.push(tokio::spawn(async move {
                        for i in 0..per_writer {
                            ledger.append(event(w * 1000 + i)).await.expect("append");
                        }
                    }));
                }
                for task in tasks {
                    task.await.expect("writer task");
                }
            })
        });
    });
    group.finish();
}

/// Fills a ledger with `n` entries quickly (large concurrent batches), checkpointed at the end.
fn filled(runtime: &tokio::runtime::Runtime, dir: &Path, n: u64) -> Ledger {
    runtime.block_on(async {
        let ledger = Arc::new(open(dir).await);
        let writers = 64;
        let mut tasks = Vec::new();
        for w in 0..writers {
            let ledger = Arc::clone(&ledger);
            tasks.push(tokio::spawn(async move {
                let mut i = w;
                while i < n {
                    ledger.append(event(i)).await.expect("append");
                    i += writers;
                }
            }));
        }
        for task in tasks {
            task.await.expect("writer task");
        }
        ledger.checkpoint().await.expect("checkpoint");
        drop(ledger);
        Ledger::open_for_audit(&config(), dir)
            .await
            .expect("open for audit")
    })
}

fn verify(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 100_000;
    let ledger = filled(&runtime, dir.path(), n);
    let mut group = c.benchmark_group("ledger_verify");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n));
    group.bench_function("100k_entries", |b| {
        b.iter(|| {
            let report = runtime.block_on(ledger.verify(|_, _| {})).expect("verify");
            assert!(report.failure.is_none());
        });
    });
    group.finish();
    if std::env::var_os("LEDGER_BENCH_MILLION").is_some() {
        let dir = tempfile::tempdir().expect("tempdir");
        let started = Instant::now();
        let ledger = filled(&runtime, dir.path(), 1_000_000);
        eprintln!("filled 1,000,000 entries in {:?}", started.elapsed());
        let started = Instant::now();
        let report = runtime.block_on(ledger.verify(|_, _| {})).expect("verify");
        assert!(report.failure.is_none());
        eprintln!(
            "verify of {} entries took {:?}",
            report.entries,
            started.elapsed()
        );
    }
}

criterion_group!(benches, appends, verify);
criterion_main!(benches);
