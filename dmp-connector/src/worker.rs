//! The deposit worker: leases jobs, deposits them through a [`Depositor`], records every
//! outcome through an [`OutcomeSink`], then acks, schedules a retry or dead-letters.
//!
//! Order matters for durability (ARCHITECTURE §3): the outcome is recorded *before* the queue
//! is told, so a crash in between replays the job (at-least-once) rather than losing its
//! outcome. Replays are harmless because the deposit is idempotent by document `uniqueId`:
//! the DMP answers an identical re-submission as a success without a second copy, and the
//! worker itself skips a job whose identical document it already deposited or is depositing.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::watch;

use crate::lease_loop::{self, LeaseSettings};

use crate::deposit::{DepositRequest, SourceMessage};
use crate::queue::{JobId, Lease, Queue, QueueError};
use crate::retry::{Decision, GiveUp, RetryPolicy, decide, exponential_delay};
pub use crate::retry::{DepositFailure, FailureClass};

/// What the DMP answered to a successful deposit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepositReceipt {
    /// The document `uniqueId`.
    pub unique_id: String,
    /// Whether the DMP recognised an identical re-submission (nothing new was stored).
    pub resubmission: bool,
    /// Warnings of the `RegistryResponse`, as `errorCode: codeContext` strings.
    pub warnings: Vec<String>,
}

/// Deposits one document in the DMP (the ITI-41 client implements it; tests fake it).
///
/// Must be idempotent by `uniqueId`: depositing an identical document again answers success.
pub trait Depositor: Send + Sync + 'static {
    /// One attempt at depositing `request`.
    fn deposit(
        &self,
        request: &DepositRequest,
    ) -> impl Future<Output = Result<DepositReceipt, DepositFailure>> + Send;
}

/// One attempt and what the worker decided after it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// The job.
    pub job: JobId,
    /// The message the document came from (for the ledger entry of the attempt).
    pub source: Option<SourceMessage>,
    /// The document `uniqueId`.
    pub unique_id: String,
    /// The attempt number, from 1.
    pub attempt: u32,
    /// What the depositor answered.
    pub result: Result<DepositReceipt, DepositFailure>,
    /// For a failure: retry after a delay, or give up.
    pub decision: Option<Decision>,
}

/// The final state of a job.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FinalState {
    /// Deposited (possibly recognised by the DMP as an identical re-submission).
    Deposited(DepositReceipt),
    /// A duplicate delivery of a document this worker already deposited: acked, not re-sent.
    AlreadyDeposited,
    /// Dead-lettered: the sender must be told.
    DeadLettered {
        /// Why the worker gave up.
        give_up: GiveUp,
        /// The last failure, as text.
        reason: String,
    },
}

/// The end of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalRecord {
    /// The job.
    pub job: JobId,
    /// The message the document came from; `None` when the payload could not be read.
    pub source: Option<SourceMessage>,
    /// The document `uniqueId` (empty when the payload could not be read).
    pub unique_id: String,
    /// Attempts made, this delivery included.
    pub attempts: u32,
    /// How it ended.
    pub state: FinalState,
}

/// What the worker reports to the [`OutcomeSink`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WorkerEvent {
    /// One deposit attempt finished.
    Attempt(AttemptRecord),
    /// The job is finished (recorded before the ack or dead-letter).
    Final(FinalRecord),
}

/// Records worker events durably (the ledger). The worker acks only after `record` succeeded.
pub trait OutcomeSink: Send + Sync + 'static {
    /// Records `event`; an error leaves the job leased, so it is retried after lease expiry.
    fn record(&self, event: &WorkerEvent) -> impl Future<Output = Result<(), RecordError>> + Send;
}

/// An [`OutcomeSink`] made of a closure (for tests and simple embedding).
#[derive(Debug, Clone)]
pub struct FnSink<F>(pub F);

impl<F> OutcomeSink for FnSink<F>
where
    F: Fn(&WorkerEvent) -> Result<(), RecordError> + Send + Sync + 'static,
{
    async fn record(&self, event: &WorkerEvent) -> Result<(), RecordError> {
        (self.0)(event)
    }
}

/// The ledger could not record an outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outcome could not be recorded: {detail}")]
#[non_exhaustive]
pub struct RecordError {
    /// What failed.
    pub detail: String,
}

impl RecordError {
    /// A record error with `detail`.
    pub fn new(detail: impl Into<String>) -> RecordError {
        RecordError {
            detail: detail.into(),
        }
    }
}

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Deposits in flight at once.
    pub concurrency: usize,
    /// Lease length: longer than a deposit attempt with its timeouts.
    pub lease_for: Duration,
    /// How long one lease call waits for a job before checking for shutdown.
    pub poll: Duration,
    /// The retry policy of transient failures.
    pub policy: RetryPolicy,
    /// Seed of the jitter RNG (`None`: from the OS).
    pub seed: Option<u64>,
    /// How many deposited `uniqueId`s to remember for skipping duplicate deliveries.
    pub remember_deposited: usize,
}

impl Default for WorkerConfig {
    fn default() -> WorkerConfig {
        WorkerConfig {
            concurrency: 4,
            lease_for: Duration::from_secs(300),
            poll: Duration::from_secs(1),
            policy: RetryPolicy::default(),
            seed: None,
            remember_deposited: 10_000,
        }
    }
}

/// The deposit worker.
#[derive(Debug)]
pub struct Worker<Q, D, S> {
    shared: Arc<Shared<Q, D, S>>,
}

#[derive(Debug)]
struct Shared<Q, D, S> {
    queue: Arc<Q>,
    depositor: Arc<D>,
    sink: Arc<S>,
    config: WorkerConfig,
    rng: Mutex<StdRng>,
    memory: Mutex<Memory>,
}

/// Which documents are being or were deposited, by `uniqueId`, with a hash of the payload so
/// that only an *identical* document is skipped (a different one must reach the DMP and be
/// refused as non-identical).
#[derive(Debug, Default)]
struct Memory {
    in_flight: HashMap<String, u64>,
    deposited: HashMap<String, u64>,
    deposited_order: VecDeque<String>,
}

impl<Q: Queue, D: Depositor, S: OutcomeSink> Worker<Q, D, S> {
    /// A worker taking jobs from `queue`.
    pub fn new(queue: Arc<Q>, depositor: Arc<D>, sink: Arc<S>, config: WorkerConfig) -> Self {
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Worker {
            shared: Arc::new(Shared {
                queue,
                depositor,
                sink,
                config,
                rng: Mutex::new(rng),
                memory: Mutex::new(Memory::default()),
            }),
        }
    }

    /// Runs until `shutdown` turns true, then waits for the deposits in flight to finish.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let config = &self.shared.config;
        let settings = LeaseSettings {
            concurrency: config.concurrency,
            lease_for: config.lease_for,
            poll: config.poll,
            consumer: "deposit worker",
        };
        lease_loop::run(&*self.shared.queue, settings, shutdown, |lease| {
            let shared = Arc::clone(&self.shared);
            async move { shared.process(lease).await }
        })
        .await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent at every await-free step, so a panic elsewhere does
    // not make it unusable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn payload_hash(payload: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    payload.hash(&mut hasher);
    hasher.finish()
}

impl<Q: Queue, D: Depositor, S: OutcomeSink> Shared<Q, D, S> {
    async fn process(&self, lease: Lease) {
        let job = lease.job.clone();
        let attempt = job.attempts.saturating_add(1);
        let request = match job.request() {
            Ok(request) => request,
            Err(error) => {
                let state = FinalState::DeadLettered {
                    give_up: GiveUp::Permanent,
                    reason: error.to_string(),
                };
                self.finish(lease, None, String::new(), attempt, state)
                    .await;
                return;
            }
        };
        let unique_id = request.entry.unique_id.clone();
        let source = Some(request.source.clone());
        let hash = payload_hash(&job.payload);
        match self.claim(&unique_id, hash) {
            Claim::Deposit => {}
            Claim::AlreadyDeposited => {
                self.finish(
                    lease,
                    source,
                    unique_id,
                    attempt,
                    FinalState::AlreadyDeposited,
                )
                .await;
                return;
            }
            Claim::InFlight => {
                // Another delivery of the same document is being deposited (a duplicate
                // message): look again once it has settled. The queue counts this as an
                // attempt, which only makes a later backoff longer.
                let when = SystemTime::now() + self.config.poll.max(Duration::from_millis(100));
                let settled = self
                    .queue
                    .retry_at(lease, when, "same document in flight")
                    .await;
                settle_log(&job.id, settled);
                return;
            }
        }
        let result = self.depositor.deposit(&request).await;
        self.conclude(lease, source, unique_id.clone(), attempt, hash, result)
            .await;
        lock(&self.memory).in_flight.remove(&unique_id);
    }

    /// Marks the document in flight unless it is already, or was deposited identically.
    fn claim(&self, unique_id: &str, hash: u64) -> Claim {
        let mut memory = lock(&self.memory);
        if memory.deposited.get(unique_id) == Some(&hash) {
            return Claim::AlreadyDeposited;
        }
        if memory.in_flight.contains_key(unique_id) {
            return Claim::InFlight;
        }
        memory.in_flight.insert(unique_id.to_owned(), hash);
        Claim::Deposit
    }

    async fn conclude(
        &self,
        lease: Lease,
        source: Option<SourceMessage>,
        unique_id: String,
        attempt: u32,
        hash: u64,
        result: Result<DepositReceipt, DepositFailure>,
    ) {
        let job = lease.job.clone();
        let decision = match &result {
            Ok(_) => None,
            Err(failure) => {
                let elapsed = SystemTime::now()
                    .duration_since(job.enqueued_at)
                    .unwrap_or(Duration::ZERO);
                let previous =
                    (attempt > 1).then(|| exponential_delay(&self.config.policy, attempt - 1));
                let mut rng = lock(&self.rng);
                Some(decide(
                    &self.config.policy,
                    failure.class(),
                    attempt,
                    elapsed,
                    previous,
                    &mut *rng,
                ))
            }
        };
        let record = AttemptRecord {
            job: job.id.clone(),
            source: source.clone(),
            unique_id: unique_id.clone(),
            attempt,
            result: result.clone(),
            decision,
        };
        if let Err(error) = self.sink.record(&WorkerEvent::Attempt(record)).await {
            tracing::warn!(job = %job.id, %error, "attempt not recorded; job left to lease expiry");
            return;
        }
        match (result, decision) {
            (Ok(receipt), _) => {
                self.remember(unique_id.clone(), hash);
                let state = FinalState::Deposited(receipt);
                self.finish(lease, source, unique_id, attempt, state).await;
            }
            (Err(failure), Some(Decision::RetryAfter(delay))) => {
                let when = SystemTime::now() + delay;
                let reason = failure.to_string();
                settle_log(&job.id, self.queue.retry_at(lease, when, &reason).await);
            }
            (Err(failure), Some(Decision::GiveUp(give_up))) => {
                let state = FinalState::DeadLettered {
                    give_up,
                    reason: failure.to_string(),
                };
                self.finish(lease, source, unique_id, attempt, state).await;
            }
            // Non-exhaustive decisions added later: leave the job to lease expiry.
            (Err(_), _) => {}
        }
    }

    /// Records the final state, then acks or dead-letters.
    async fn finish(
        &self,
        lease: Lease,
        source: Option<SourceMessage>,
        unique_id: String,
        attempts: u32,
        state: FinalState,
    ) {
        let job = lease.job.id.clone();
        let record = FinalRecord {
            job: job.clone(),
            source,
            unique_id,
            attempts,
            state: state.clone(),
        };
        if let Err(error) = self.sink.record(&WorkerEvent::Final(record)).await {
            tracing::warn!(%job, %error, "final state not recorded; job left to lease expiry");
            return;
        }
        let settled = match state {
            FinalState::DeadLettered { reason, .. } => self.queue.dead_letter(lease, &reason).await,
            FinalState::Deposited(_) | FinalState::AlreadyDeposited => self.queue.ack(lease).await,
        };
        settle_log(&job, settled);
    }

    fn remember(&self, unique_id: String, hash: u64) {
        let mut memory = lock(&self.memory);
        if memory.deposited.insert(unique_id.clone(), hash).is_none() {
            memory.deposited_order.push_back(unique_id);
        }
        while memory.deposited_order.len() > self.config.remember_deposited {
            if let Some(oldest) = memory.deposited_order.pop_front() {
                memory.deposited.remove(&oldest);
            }
        }
    }
}

/// What [`Shared::claim`] found.
enum Claim {
    Deposit,
    AlreadyDeposited,
    InFlight,
}

/// A failed ack, retry or dead-letter only means the job comes back after its lease: log it.
fn settle_log(job: &JobId, settled: Result<(), QueueError>) {
    if let Err(error) = settled {
        tracing::warn!(%job, %error, "could not settle job; it will be delivered again");
    }
}
