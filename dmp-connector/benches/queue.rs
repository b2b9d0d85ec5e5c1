//! Queue throughput: jobs enqueued (durably) then leased and acked, per second, for each
//! backend. RabbitMQ must run on 127.0.0.1:5672; its objects get a unique prefix and are
//! deleted at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dmp_connector::queue::amqp::{AmqpConfig, AmqpQueue};
use dmp_connector::queue::embedded::SqliteQueue;
use dmp_connector::queue::{NewJob, Queue};
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

/// Jobs per measured batch.
const BATCH: u64 = 200;
/// Enqueues in flight at once (publisher confirms pipeline within this window).
const CONCURRENCY: u64 = 32;

static NEXT: AtomicU64 = AtomicU64::new(0);

fn job() -> NewJob {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    NewJob {
        idempotency_key: format!("1.2.250.999.{n}"),
        // About the size of a small CDA document with its metadata.
        payload: vec![b'x'; 10 * 1024],
    }
}

/// Enqueues `BATCH` jobs with `CONCURRENCY` in flight, then leases and acks them all.
async fn round<Q: Queue>(queue: Arc<Q>) -> Duration {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for lane in 0..CONCURRENCY {
        let queue = Arc::clone(&queue);
        tasks.spawn(async move {
            for _ in (lane..BATCH).step_by(CONCURRENCY as usize) {
                queue.enqueue(job()).await.expect("enqueue");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("enqueue task");
    }
    for _ in 0..BATCH {
        let lease = queue
            .lease(Duration::from_secs(60), Duration::from_secs(10))
            .await
            .expect("lease")
            .expect("a job");
        queue.ack(lease).await.expect("ack");
    }
    started.elapsed()
}

fn bench(c: &mut Criterion) {
    let runtime = Runtime::new().expect("tokio runtime");
    let mut group = c.benchmark_group("enqueue_and_ack");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));

    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = Arc::new(SqliteQueue::open(&dir.path().join("bench.db")).expect("open"));
    group.bench_function("embedded_sqlite", |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| runtime.block_on(round(Arc::clone(&sqlite))))
                .sum()
        })
    });

    let prefix = format!("dmp-bench.{}", std::process::id());
    let config = AmqpConfig::new("amqp://guest:guest@127.0.0.1:5672/%2f", prefix);
    match runtime.block_on(AmqpQueue::connect(config)) {
        Ok(amqp) => {
            let amqp = Arc::new(amqp);
            group.bench_function("rabbitmq", |b| {
                b.iter_custom(|iterations| {
                    (0..iterations)
                        .map(|_| runtime.block_on(round(Arc::clone(&amqp))))
                        .sum()
                })
            });
            if let Err(error) = runtime.block_on(amqp.delete_topology()) {
                eprintln!("could not delete the bench topology: {error}");
            }
        }
        Err(error) => eprintln!("rabbitmq bench skipped: {error}"),
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
