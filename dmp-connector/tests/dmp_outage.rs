//! A DMP outage seen from the connector: the simulator answers 503 for its first seconds, the
//! jobs in the embedded queue wait and are retried with backoff, then drain — every document is
//! deposited exactly once, nothing is lost, nothing is stored twice.

mod xds_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dmp_connector::queue::embedded::SqliteQueue;
use dmp_connector::queue::{NewJob, Queue, QueueCounts};
use dmp_connector::retry::{Jitter, RetryPolicy};
use dmp_connector::sim::{Faults, Store};
use dmp_connector::worker::{FinalState, FnSink, RecordError, Worker, WorkerConfig, WorkerEvent};
use tokio::sync::watch;
use tokio::time::Instant;

const DOCUMENTS: u32 = 12;
const OUTAGE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_wait_through_a_dmp_outage_then_drain_once_each() {
    let store_dir = tempfile::tempdir().expect("store dir");
    let sim = xds_support::start_sim(
        store_dir.path(),
        Faults {
            down_for: OUTAGE,
            ..Faults::default()
        },
    )
    .await;
    let client = Arc::new(xds_support::labo_b_client(&sim.endpoint()));

    let queue_dir = tempfile::tempdir().expect("queue dir");
    let queue = Arc::new(SqliteQueue::open(&queue_dir.path().join("deposits.db")).expect("queue"));
    for n in 0..DOCUMENTS {
        let job = NewJob::from_request(&xds_support::request(n, 7)).expect("job");
        queue.enqueue(job).await.expect("enqueue");
    }

    let events: Arc<Mutex<Vec<WorkerEvent>>> = Arc::default();
    let recorded = Arc::clone(&events);
    let sink = FnSink(move |event: &WorkerEvent| -> Result<(), RecordError> {
        recorded.lock().expect("events").push(event.clone());
        Ok(())
    });
    let config = WorkerConfig {
        concurrency: 4,
        lease_for: Duration::from_secs(60),
        poll: Duration::from_millis(50),
        policy: RetryPolicy {
            base: Duration::from_millis(300),
            cap: Duration::from_secs(1),
            horizon: Duration::from_secs(120),
            max_attempts: None,
            jitter: Jitter::Full,
        },
        seed: Some(7),
        remember_deposited: 100,
    };
    let worker = Worker::new(Arc::clone(&queue), client, Arc::new(sink), config);
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(worker.run(stopped));

    let finals = |events: &Mutex<Vec<WorkerEvent>>| -> Vec<FinalState> {
        events
            .lock()
            .expect("events")
            .iter()
            .filter_map(|event| match event {
                WorkerEvent::Final(record) => Some(record.state.clone()),
                _ => None,
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while finals(&events).len() < DOCUMENTS as usize && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).expect("stop");
    running.await.expect("worker");

    let finals = finals(&events);
    assert_eq!(
        finals.len(),
        DOCUMENTS as usize,
        "every job reached a final state"
    );
    assert!(
        finals
            .iter()
            .all(|state| matches!(state, FinalState::Deposited(_))),
        "all deposited after the outage: {finals:?}"
    );
    let attempts = events
        .lock()
        .expect("events")
        .iter()
        .filter(|event| matches!(event, WorkerEvent::Attempt(_)))
        .count();
    assert!(
        attempts > DOCUMENTS as usize,
        "the outage made some attempts fail and retry ({attempts} attempts)"
    );
    assert_eq!(
        queue.counts().await.expect("counts"),
        QueueCounts::default()
    );

    let stored = Store::open(store_dir.path())
        .expect("store")
        .all()
        .expect("stored documents");
    assert_eq!(
        stored.len(),
        DOCUMENTS as usize,
        "each document stored once"
    );
    sim.shutdown().await;
}
