//! Worker tests on the paused tokio clock, with a fake depositor and the in-memory queue.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dmp_connector::deposit::DepositRequest;
use dmp_connector::queue::memory::MemoryQueue;
use dmp_connector::queue::{NewJob, Queue, QueueCounts};
use dmp_connector::retry::{Decision, GiveUp, Jitter, RetryPolicy};
use dmp_connector::worker::{
    DepositFailure, DepositReceipt, Depositor, FinalState, FnSink, RecordError, Worker,
    WorkerConfig, WorkerEvent,
};
use tokio::sync::watch;
use tokio::time::Instant;

use support::{sample_job, sample_request};

/// Fails the first `failures` attempts of each document with `failure`, then stores it; an
/// identical re-submission is a success without a new copy, as the DMP does.
struct FakeDmp {
    failures: u32,
    failure: DepositFailure,
    delay: Duration,
    calls: Mutex<Vec<(String, Instant)>>,
    stored: Mutex<HashMap<String, Vec<u8>>>,
    in_flight: Mutex<(usize, usize)>,
}

impl FakeDmp {
    fn new(failures: u32, failure: DepositFailure) -> FakeDmp {
        FakeDmp {
            failures,
            failure,
            delay: Duration::ZERO,
            calls: Mutex::new(Vec::new()),
            stored: Mutex::new(HashMap::new()),
            in_flight: Mutex::new((0, 0)),
        }
    }

    fn calls_for(&self, unique_id: &str) -> Vec<Instant> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(id, _)| id == unique_id)
            .map(|(_, at)| *at)
            .collect()
    }
}

impl Depositor for FakeDmp {
    async fn deposit(&self, request: &DepositRequest) -> Result<DepositReceipt, DepositFailure> {
        let unique_id = request.entry.unique_id.clone();
        let previous = {
            let mut calls = self.calls.lock().unwrap();
            let previous = calls.iter().filter(|(id, _)| *id == unique_id).count();
            calls.push((unique_id.clone(), Instant::now()));
            previous
        };
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            in_flight.0 += 1;
            in_flight.1 = in_flight.1.max(in_flight.0);
        }
        tokio::time::sleep(self.delay).await;
        self.in_flight.lock().unwrap().0 -= 1;
        if previous < self.failures as usize {
            return Err(self.failure.clone());
        }
        let mut stored = self.stored.lock().unwrap();
        let resubmission = match stored.get(&unique_id) {
            Some(document) if *document == request.document => true,
            Some(_) => {
                return Err(DepositFailure::Http { status: 409 });
            }
            None => {
                stored.insert(unique_id.clone(), request.document.clone());
                false
            }
        };
        Ok(DepositReceipt {
            unique_id,
            resubmission,
            warnings: Vec::new(),
        })
    }
}

type Events = Arc<Mutex<Vec<WorkerEvent>>>;

fn recording_sink(
    events: &Events,
) -> FnSink<impl Fn(&WorkerEvent) -> Result<(), RecordError> + Send + Sync + 'static> {
    let events = Arc::clone(events);
    FnSink(move |event: &WorkerEvent| {
        events.lock().unwrap().push(event.clone());
        Ok(())
    })
}

fn config(policy: RetryPolicy, concurrency: usize) -> WorkerConfig {
    WorkerConfig {
        concurrency,
        lease_for: Duration::from_secs(120),
        poll: Duration::from_millis(100),
        policy,
        seed: Some(42),
        remember_deposited: 100,
    }
}

fn exact_policy() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_secs(10),
        cap: Duration::from_secs(60),
        horizon: Duration::from_secs(3600),
        max_attempts: None,
        jitter: Jitter::None,
    }
}

/// Runs a worker until `done` holds (checked every virtual 100 ms) or `limit` passes.
async fn run_until<D: Depositor, F: Fn() -> bool>(
    queue: &Arc<MemoryQueue>,
    depositor: &Arc<D>,
    events: &Events,
    config: WorkerConfig,
    limit: Duration,
    done: F,
) {
    let worker = Worker::new(
        Arc::clone(queue),
        Arc::clone(depositor),
        Arc::new(recording_sink(events)),
        config,
    );
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(worker.run(stopped));
    let deadline = Instant::now() + limit;
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap();
}

fn finals(events: &Events) -> Vec<FinalState> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|event| match event {
            WorkerEvent::Final(record) => Some(record.state.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn transient_failures_retry_on_the_exponential_schedule() {
    let queue = Arc::new(MemoryQueue::new());
    let dmp = Arc::new(FakeDmp::new(3, DepositFailure::Http { status: 503 }));
    let events = Events::default();
    queue.enqueue(sample_job("1.2.250.1")).await.unwrap();
    run_until(
        &queue,
        &dmp,
        &events,
        config(exact_policy(), 2),
        Duration::from_secs(600),
        || !finals(&events).is_empty(),
    )
    .await;

    let calls = dmp.calls_for("1.2.250.1");
    assert_eq!(calls.len(), 4, "3 failures then success");
    let gaps: Vec<u64> = calls
        .windows(2)
        .map(|w| (w[1] - w[0]).as_millis() as u64)
        .collect();
    // 10 s, 20 s, 40 s; the worker may notice the job up to one poll late.
    for (gap, expected) in gaps.iter().zip([10_000u64, 20_000, 40_000]) {
        assert!(
            (expected..expected + 200).contains(gap),
            "gap {gap} ms, expected {expected} ms ({gaps:?})"
        );
    }
    let events = events.lock().unwrap().clone();
    let attempts: Vec<(u32, Option<Decision>)> = events
        .iter()
        .filter_map(|event| match event {
            WorkerEvent::Attempt(record) => Some((record.attempt, record.decision)),
            _ => None,
        })
        .collect();
    assert_eq!(
        attempts,
        [
            (1, Some(Decision::RetryAfter(Duration::from_secs(10)))),
            (2, Some(Decision::RetryAfter(Duration::from_secs(20)))),
            (3, Some(Decision::RetryAfter(Duration::from_secs(40)))),
            (4, None),
        ]
    );
    assert!(matches!(events.last(), Some(WorkerEvent::Final(record))
        if matches!(record.state, FinalState::Deposited(_)) && record.attempts == 4));
    assert_eq!(queue.counts().await.unwrap(), QueueCounts::default());
}

#[tokio::test(start_paused = true)]
async fn permanent_failure_dead_letters_at_once() {
    let queue = Arc::new(MemoryQueue::new());
    let dmp = Arc::new(FakeDmp::new(u32::MAX, DepositFailure::Http { status: 400 }));
    let events = Events::default();
    queue.enqueue(sample_job("1.2.250.2")).await.unwrap();
    run_until(
        &queue,
        &dmp,
        &events,
        config(exact_policy(), 1),
        Duration::from_secs(60),
        || !finals(&events).is_empty(),
    )
    .await;
    assert_eq!(dmp.calls_for("1.2.250.2").len(), 1);
    assert!(matches!(
        finals(&events).as_slice(),
        [FinalState::DeadLettered {
            give_up: GiveUp::Permanent,
            ..
        }]
    ));
    assert_eq!(queue.counts().await.unwrap().dead, 1);
    assert_eq!(
        queue.log().last().map(String::as_str),
        Some("dead 0000000000000001/1.2.250.2")
    );
}

#[tokio::test(start_paused = true)]
async fn transient_failures_give_up_after_max_attempts() {
    let queue = Arc::new(MemoryQueue::new());
    let dmp = Arc::new(FakeDmp::new(
        u32::MAX,
        DepositFailure::Connection {
            detail: "refused".to_owned(),
        },
    ));
    let events = Events::default();
    let policy = RetryPolicy {
        max_attempts: Some(3),
        ..exact_policy()
    };
    queue.enqueue(sample_job("1.2.250.3")).await.unwrap();
    run_until(
        &queue,
        &dmp,
        &events,
        config(policy, 1),
        Duration::from_secs(600),
        || !finals(&events).is_empty(),
    )
    .await;
    assert_eq!(dmp.calls_for("1.2.250.3").len(), 3);
    assert!(matches!(
        finals(&events).as_slice(),
        [FinalState::DeadLettered {
            give_up: GiveUp::AttemptsExhausted,
            ..
        }]
    ));
}

#[tokio::test(start_paused = true)]
async fn deposits_run_concurrently_up_to_the_limit() {
    let queue = Arc::new(MemoryQueue::new());
    let mut dmp = FakeDmp::new(0, DepositFailure::Http { status: 503 });
    dmp.delay = Duration::from_secs(1);
    let dmp = Arc::new(dmp);
    let events = Events::default();
    for n in 0..12 {
        queue
            .enqueue(sample_job(&format!("1.2.250.4.{n}")))
            .await
            .unwrap();
    }
    let started = Instant::now();
    run_until(
        &queue,
        &dmp,
        &events,
        config(exact_policy(), 4),
        Duration::from_secs(60),
        || finals(&events).len() == 12,
    )
    .await;
    assert_eq!(finals(&events).len(), 12);
    assert_eq!(
        dmp.in_flight.lock().unwrap().1,
        4,
        "at most 4 at once, and 4 reached"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn duplicate_deliveries_are_not_deposited_twice() {
    let queue = Arc::new(MemoryQueue::new());
    queue.allow_duplicates(true);
    let dmp = Arc::new(FakeDmp::new(0, DepositFailure::Http { status: 503 }));
    let events = Events::default();
    // The same document twice (as after a publisher crash between confirm and bookkeeping).
    queue.enqueue(sample_job("1.2.250.5")).await.unwrap();
    queue.enqueue(sample_job("1.2.250.5")).await.unwrap();
    run_until(
        &queue,
        &dmp,
        &events,
        config(exact_policy(), 2),
        Duration::from_secs(60),
        || finals(&events).len() == 2,
    )
    .await;
    assert_eq!(dmp.calls_for("1.2.250.5").len(), 1, "deposited once");
    let finals = finals(&events);
    assert!(
        finals
            .iter()
            .any(|state| matches!(state, FinalState::Deposited(_)))
    );
    assert!(finals.contains(&FinalState::AlreadyDeposited));
    assert_eq!(queue.counts().await.unwrap(), QueueCounts::default());
}

#[tokio::test(start_paused = true)]
async fn a_different_document_under_the_same_id_still_reaches_the_dmp() {
    let queue = Arc::new(MemoryQueue::new());
    queue.allow_duplicates(true);
    let dmp = Arc::new(FakeDmp::new(0, DepositFailure::Http { status: 503 }));
    let events = Events::default();
    queue.enqueue(sample_job("1.2.250.6")).await.unwrap();
    let mut other = sample_request("1.2.250.6");
    other.document = b"<ClinicalDocument>changed</ClinicalDocument>".to_vec();
    queue
        .enqueue(NewJob::from_request(&other).unwrap())
        .await
        .unwrap();
    run_until(
        &queue,
        &dmp,
        &events,
        config(exact_policy(), 1),
        Duration::from_secs(60),
        || finals(&events).len() == 2,
    )
    .await;
    assert_eq!(dmp.calls_for("1.2.250.6").len(), 2);
    assert!(finals(&events).iter().any(|state| matches!(
        state,
        FinalState::DeadLettered {
            give_up: GiveUp::Permanent,
            ..
        }
    )));
}

#[tokio::test(start_paused = true)]
async fn a_job_is_not_acked_until_its_outcome_is_recorded() {
    let queue = Arc::new(MemoryQueue::new());
    let dmp = Arc::new(FakeDmp::new(0, DepositFailure::Http { status: 503 }));
    queue.enqueue(sample_job("1.2.250.7")).await.unwrap();
    // The ledger fails the first final record: the job must stay leased, come back after the
    // lease, and be acked only after a final state was recorded.
    let failed_once = Arc::new(Mutex::new(false));
    let recorded = Events::default();
    let sink = {
        let failed_once = Arc::clone(&failed_once);
        let recorded = Arc::clone(&recorded);
        FnSink(move |event: &WorkerEvent| {
            if matches!(event, WorkerEvent::Final(_)) {
                let mut failed = failed_once.lock().unwrap();
                if !*failed {
                    *failed = true;
                    return Err(RecordError::new("ledger disk full"));
                }
            }
            recorded.lock().unwrap().push(event.clone());
            Ok(())
        })
    };
    let mut config = config(exact_policy(), 1);
    config.lease_for = Duration::from_secs(30);
    let worker = Worker::new(Arc::clone(&queue), Arc::clone(&dmp), Arc::new(sink), config);
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(worker.run(stopped));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        queue.counts().await.unwrap().leased,
        1,
        "not acked: record failed"
    );
    assert!(!queue.log().iter().any(|entry| entry.starts_with("ack")));
    tokio::time::sleep(Duration::from_secs(30)).await;
    stop.send(true).unwrap();
    running.await.unwrap();
    assert_eq!(queue.counts().await.unwrap(), QueueCounts::default());
    // The worker remembers it deposited this identical document, so the redelivery is
    // settled without a second call; the DMP holds one copy either way.
    assert_eq!(dmp.calls_for("1.2.250.7").len(), 1);
    assert_eq!(dmp.stored.lock().unwrap().len(), 1, "one copy in the DMP");
    assert!(matches!(
        recorded.lock().unwrap().last(),
        Some(WorkerEvent::Final(record)) if record.state == FinalState::AlreadyDeposited
    ));
    assert_eq!(
        queue.log().last().map(String::as_str),
        Some("ack 0000000000000001/1.2.250.7")
    );
}

/// The worker over a durable backend, on the real clock: every job fails once (DMP busy),
/// is retried after its backoff and deposited once.
async fn drains_durable_queue<Q: Queue>(queue: Arc<Q>) {
    let dmp = Arc::new(FakeDmp::new(1, DepositFailure::Http { status: 503 }));
    let events = Events::default();
    for n in 0..20 {
        queue
            .enqueue(sample_job(&format!("1.2.250.8.{n}")))
            .await
            .unwrap();
    }
    let policy = RetryPolicy {
        base: Duration::from_millis(200),
        cap: Duration::from_secs(1),
        jitter: Jitter::Full,
        ..exact_policy()
    };
    let worker = Worker::new(
        Arc::clone(&queue),
        Arc::clone(&dmp),
        Arc::new(recording_sink(&events)),
        config(policy, 4),
    );
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(worker.run(stopped));
    let deadline = Instant::now() + Duration::from_secs(30);
    while finals(&events).len() < 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap();
    let finals = finals(&events);
    assert_eq!(finals.len(), 20);
    assert!(
        finals
            .iter()
            .all(|state| matches!(state, FinalState::Deposited(_)))
    );
    for n in 0..20 {
        assert_eq!(dmp.calls_for(&format!("1.2.250.8.{n}")).len(), 2);
    }
    assert_eq!(dmp.stored.lock().unwrap().len(), 20);
    let drained = support::eventually(Duration::from_secs(3), || async {
        queue.counts().await.unwrap() == QueueCounts::default()
    })
    .await;
    assert!(drained, "queue drained: {:?}", queue.counts().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_drains_the_embedded_queue() {
    let dir = tempfile::tempdir().unwrap();
    let queue =
        dmp_connector::queue::embedded::SqliteQueue::open(&dir.path().join("q.db")).unwrap();
    drains_durable_queue(Arc::new(queue)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_drains_the_rabbitmq_queue() {
    use dmp_connector::queue::amqp::{AmqpConfig, AmqpQueue};
    let config = AmqpConfig::new(support::AMQP_URI, support::unique_prefix("worker"));
    let queue = Arc::new(AmqpQueue::connect(config).await.expect("RabbitMQ"));
    drains_durable_queue(Arc::clone(&queue)).await;
    queue.delete_topology().await.unwrap();
}
