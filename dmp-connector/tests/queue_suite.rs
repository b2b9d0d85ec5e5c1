//! One queue suite, run against both backends: the embedded SQLite queue and RabbitMQ on
//! 127.0.0.1:5672 (with unique names per run, deleted at the end); and against the in-memory
//! test queue, which the worker's paused-clock tests rely on.

mod support;

use std::time::Duration;

use dmp_connector::queue::Queue;
use dmp_connector::queue::amqp::{AmqpConfig, AmqpQueue};
use dmp_connector::queue::embedded::SqliteQueue;

use support::{AMQP_URI, sample_job, suite, unique_prefix};

fn embedded() -> (tempfile::TempDir, SqliteQueue) {
    let dir = tempfile::tempdir().expect("temp dir");
    let queue = SqliteQueue::open(&dir.path().join("queue.db")).expect("open");
    (dir, queue)
}

async fn amqp(test: &str) -> AmqpQueue {
    AmqpQueue::connect(AmqpConfig::new(AMQP_URI, unique_prefix(test)))
        .await
        .expect("RabbitMQ on 127.0.0.1:5672")
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $name() {
                    let (_dir, queue) = super::embedded();
                    super::suite::$name(&queue).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    let queue = dmp_connector::queue::memory::MemoryQueue::new();
                    super::suite::$name(&queue).await;
                }
            )*
        }
        mod rabbitmq {
            $(
                #[tokio::test]
                async fn $name() {
                    let queue = super::amqp(stringify!($name)).await;
                    super::suite::$name(&queue).await;
                    queue.delete_topology().await.expect("delete topology");
                }
            )*
        }
    };
}

both_backends!(
    enqueue_lease_ack,
    enqueue_is_idempotent,
    retry_at_delays,
    dead_letter_parks,
    expired_lease_returns_job,
    list_shows_jobs,
);

/// Crash safety: a job leased and never acked is still there after the store is reopened,
/// and comes back once its lease expires.
#[tokio::test]
async fn embedded_job_survives_reopen_and_lease_expiry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("queue.db");
    let id = {
        let queue = SqliteQueue::open(&path).expect("open");
        queue.enqueue(sample_job("1.2.20")).await.expect("enqueue");
        let lease = queue
            .lease(Duration::from_millis(500), Duration::ZERO)
            .await
            .expect("lease")
            .expect("job");
        // The worker dies: the lease is dropped, never acked.
        lease.job.id
    };
    let queue = SqliteQueue::open(&path).expect("reopen");
    let early = queue
        .lease(Duration::from_secs(30), Duration::ZERO)
        .await
        .expect("lease");
    assert!(early.is_none(), "lease still running after reopen");
    let lease = queue
        .lease(Duration::from_secs(30), Duration::from_secs(3))
        .await
        .expect("lease")
        .expect("job back after expiry");
    assert_eq!(lease.job.id, id);
    queue.ack(lease).await.expect("ack");
    drop(queue);
    let queue = SqliteQueue::open(&path).expect("reopen");
    assert_eq!(queue.counts().await.expect("counts"), Default::default());
}

/// The sole owner restarting after a crash releases the leases of its previous run at once
/// instead of waiting for them to expire.
#[tokio::test]
async fn embedded_release_leases_makes_leased_jobs_ready_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("queue.db");
    {
        let queue = SqliteQueue::open(&path).expect("open");
        queue.enqueue(sample_job("1.2.21")).await.expect("enqueue");
        let leased = queue
            .lease(Duration::from_secs(600), Duration::ZERO)
            .await
            .expect("lease");
        assert!(leased.is_some());
    }
    let queue = SqliteQueue::open(&path).expect("reopen");
    assert_eq!(queue.release_leases().await.expect("release"), 1);
    let lease = queue
        .lease(Duration::from_secs(30), Duration::ZERO)
        .await
        .expect("lease")
        .expect("job ready without waiting 600 s");
    assert_eq!(lease.job.idempotency_key, "0000000000000001/1.2.21");
    assert_eq!(queue.release_leases().await.expect("release"), 1);
}

/// Concurrent writes share group commits: all distinct jobs are stored, and concurrent
/// enqueues of one key (possibly in the same batch) still make one job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_group_commit_keeps_idempotency() {
    let (_dir, queue) = embedded();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..40 {
        let queue = queue.clone();
        let key = if n % 2 == 0 {
            format!("1.2.30.{n}")
        } else {
            "1.2.30.same".to_owned()
        };
        tasks.spawn(async move { queue.enqueue(sample_job(&key)).await.expect("enqueue") });
    }
    let mut new = 0;
    while let Some(enqueued) = tasks.join_next().await {
        new += usize::from(matches!(
            enqueued.expect("task"),
            dmp_connector::queue::Enqueued::New(_)
        ));
    }
    assert_eq!(new, 21, "20 distinct keys and one for the shared key");
    let counts = queue.counts().await.expect("counts");
    assert_eq!(counts.ready, 21);
}
