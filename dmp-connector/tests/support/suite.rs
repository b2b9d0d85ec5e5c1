//! The queue suite: every function runs against a fresh, empty queue of either backend.

use std::time::{Duration, Instant, SystemTime};

use dmp_connector::queue::{Enqueued, JobState, Queue, QueueCounts, QueueError};

use super::{eventually, sample_job, sample_request};

const LEASE: Duration = Duration::from_secs(30);
const WAIT: Duration = Duration::from_secs(3);
const SETTLE: Duration = Duration::from_secs(3);

async fn counts_become<Q: Queue>(queue: &Q, expected: QueueCounts) {
    let reached = eventually(SETTLE, || async {
        queue.counts().await.expect("counts") == expected
    })
    .await;
    assert!(
        reached,
        "counts {:?} never became {expected:?}",
        queue.counts().await
    );
}

fn counts(ready: u64, delayed: u64, leased: u64, dead: u64) -> QueueCounts {
    QueueCounts {
        ready,
        delayed,
        leased,
        dead,
    }
}

/// Jobs come out in order, carry their request, and disappear when acked.
pub async fn enqueue_lease_ack<Q: Queue>(queue: &Q) {
    let mut ids = Vec::new();
    for n in 0..3 {
        let enqueued = queue
            .enqueue(sample_job(&format!("1.2.3.{n}")))
            .await
            .expect("enqueue");
        assert!(matches!(enqueued, Enqueued::New(_)), "{enqueued:?}");
        ids.push(enqueued.id().clone());
    }
    counts_become(queue, counts(3, 0, 0, 0)).await;
    let mut leases = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let lease = queue
            .lease(LEASE, WAIT)
            .await
            .expect("lease")
            .expect("a job");
        assert_eq!(&lease.job.id, id, "FIFO order");
        assert_eq!(lease.job.attempts, 0);
        assert_eq!(
            lease.job.request().expect("payload decodes"),
            sample_request(&format!("1.2.3.{n}"))
        );
        leases.push(lease);
    }
    counts_become(queue, counts(0, 0, 3, 0)).await;
    for lease in leases {
        queue.ack(lease).await.expect("ack");
    }
    counts_become(queue, counts(0, 0, 0, 0)).await;
    let none = queue
        .lease(LEASE, Duration::from_millis(300))
        .await
        .expect("lease");
    assert!(none.is_none(), "nothing left: {none:?}");
}

/// A second enqueue of a live document adds nothing; once acked, the key is free again.
pub async fn enqueue_is_idempotent<Q: Queue>(queue: &Q) {
    let first = queue.enqueue(sample_job("1.2.9")).await.expect("enqueue");
    let second = queue.enqueue(sample_job("1.2.9")).await.expect("enqueue");
    assert!(matches!(first, Enqueued::New(_)));
    assert_eq!(second, Enqueued::Duplicate(first.id().clone()));
    counts_become(queue, counts(1, 0, 0, 0)).await;
    let lease = queue.lease(LEASE, WAIT).await.expect("lease").expect("job");
    let while_leased = queue.enqueue(sample_job("1.2.9")).await.expect("enqueue");
    assert_eq!(while_leased, Enqueued::Duplicate(first.id().clone()));
    queue.ack(lease).await.expect("ack");
    let again = queue.enqueue(sample_job("1.2.9")).await.expect("enqueue");
    assert!(matches!(again, Enqueued::New(ref id) if id != first.id()));
    let lease = queue.lease(LEASE, WAIT).await.expect("lease").expect("job");
    queue.ack(lease).await.expect("ack");
}

/// A retried job is hidden until its time, then comes back with one more attempt and the
/// reason.
pub async fn retry_at_delays<Q: Queue>(queue: &Q) {
    queue.enqueue(sample_job("1.2.10")).await.expect("enqueue");
    let lease = queue.lease(LEASE, WAIT).await.expect("lease").expect("job");
    let id = lease.job.id.clone();
    let started = Instant::now();
    queue
        .retry_at(
            lease,
            SystemTime::now() + Duration::from_secs(1),
            "XDSRegistryBusy",
        )
        .await
        .expect("retry_at");
    counts_become(queue, counts(0, 1, 0, 0)).await;
    let listed = queue.list(JobState::Delayed, 10).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].reason.as_deref(), Some("XDSRegistryBusy"));
    let early = queue
        .lease(LEASE, Duration::from_millis(200))
        .await
        .expect("lease");
    assert!(early.is_none() || started.elapsed() >= Duration::from_secs(1));
    let lease = queue
        .lease(LEASE, Duration::from_secs(5))
        .await
        .expect("lease")
        .expect("job back");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "came back early"
    );
    assert_eq!(lease.job.id, id);
    assert_eq!(lease.job.attempts, 1);
    assert_eq!(lease.job.last_reason.as_deref(), Some("XDSRegistryBusy"));
    queue.ack(lease).await.expect("ack");
}

/// A dead-lettered job is listed with its reason, never leased again, and frees its key.
pub async fn dead_letter_parks<Q: Queue>(queue: &Q) {
    queue.enqueue(sample_job("1.2.11")).await.expect("enqueue");
    let lease = queue.lease(LEASE, WAIT).await.expect("lease").expect("job");
    let id = lease.job.id.clone();
    queue
        .dead_letter(lease, "XDSUnknownPatientId")
        .await
        .expect("dead_letter");
    counts_become(queue, counts(0, 0, 0, 1)).await;
    let dead = queue.list(JobState::Dead, 10).await.expect("list");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, id);
    assert_eq!(
        dead[0].idempotency_key,
        sample_job("1.2.11").idempotency_key
    );
    assert_eq!(dead[0].reason.as_deref(), Some("XDSUnknownPatientId"));
    let none = queue
        .lease(LEASE, Duration::from_millis(300))
        .await
        .expect("lease");
    assert!(none.is_none());
    let again = queue.enqueue(sample_job("1.2.11")).await.expect("enqueue");
    assert!(matches!(again, Enqueued::New(_)), "dead job frees its key");
    let lease = queue.lease(LEASE, WAIT).await.expect("lease").expect("job");
    queue.ack(lease).await.expect("ack");
    counts_become(queue, counts(0, 0, 0, 1)).await;
}

/// A lease that expires (a dead worker) gives the job to the next lease; the old lease is
/// then lost.
pub async fn expired_lease_returns_job<Q: Queue>(queue: &Q) {
    queue.enqueue(sample_job("1.2.12")).await.expect("enqueue");
    let short = Duration::from_millis(300);
    let first = queue.lease(short, WAIT).await.expect("lease").expect("job");
    let early = queue
        .lease(LEASE, Duration::from_millis(100))
        .await
        .expect("lease");
    assert!(early.is_none(), "still leased");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = queue
        .lease(LEASE, WAIT)
        .await
        .expect("lease")
        .expect("job back after expiry");
    assert_eq!(second.job.id, first.job.id);
    let lost = queue.ack(first).await;
    assert!(
        matches!(lost, Err(QueueError::LeaseLost { .. })),
        "{lost:?}"
    );
    queue.ack(second).await.expect("ack");
    counts_become(queue, counts(0, 0, 0, 0)).await;
}

/// Ready and leased jobs are listed with their keys.
pub async fn list_shows_jobs<Q: Queue>(queue: &Q) {
    queue.enqueue(sample_job("1.2.13")).await.expect("enqueue");
    queue.enqueue(sample_job("1.2.14")).await.expect("enqueue");
    let reached = eventually(SETTLE, || async {
        let ready = queue.list(JobState::Ready, 10).await.expect("list");
        let mut keys: Vec<String> = ready.into_iter().map(|job| job.idempotency_key).collect();
        keys.sort();
        keys == [
            sample_job("1.2.13").idempotency_key,
            sample_job("1.2.14").idempotency_key,
        ]
    })
    .await;
    assert!(reached, "ready list");
    let lease = queue.lease(LEASE, WAIT).await.expect("lease").expect("job");
    let leased = queue.list(JobState::Leased, 10).await.expect("list");
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].id, lease.job.id);
    queue.ack(lease).await.expect("ack");
    let lease = queue.lease(LEASE, WAIT).await.expect("lease").expect("job");
    queue.ack(lease).await.expect("ack");
}
