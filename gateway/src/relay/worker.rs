//! The relay worker: leases [`RelayJob`]s, delivers them through the [`Relayer`], records every
//! outcome through a [`RelaySink`], then acks, schedules a retry or dead-letters.
//!
//! As in the deposit worker, the outcome is recorded *before* the queue is told: a crash in
//! between replays the job (at-least-once) instead of losing its outcome. A sink error leaves the
//! job leased; it comes back after the lease expires.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use dmp_connector::lease_loop::{self, LeaseSettings};
use dmp_connector::queue::{JobId, Lease, Queue, QueueError};
use dmp_connector::retry::{Decision, FailureClass, RetryPolicy, decide, exponential_delay};
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use tokio::sync::watch;

use super::{Delivery, DeliveryFailure, RelayConfig, RelayContent, RelayJob, Relayer};

/// Reads the original message of a [`RelayContent::Spool`] job (the spool implements it).
pub trait MessageSource: Send + Sync + 'static {
    /// The bytes of the message spooled as `queue_id`.
    fn original(&self, queue_id: &str) -> impl Future<Output = Result<Vec<u8>, String>> + Send;
}

/// Records relay outcomes durably (the ledger). The worker settles a job only after `record`
/// succeeded.
pub trait RelaySink: Send + Sync + 'static {
    /// Records `event`; an error leaves the job leased (retried after lease expiry).
    fn record(&self, event: &RelayEvent) -> impl Future<Output = Result<(), String>> + Send;
}

/// What the worker reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayEvent {
    /// A transient failure; the job is retried at `retry_at`.
    Attempt {
        /// The job.
        job: RelayJob,
        /// Attempt number, from 1.
        attempt: u32,
        /// Why it failed.
        error: String,
        /// When the next attempt is due.
        retry_at: SystemTime,
    },
    /// Delivered (recorded before the ack).
    Delivered {
        /// The job.
        job: RelayJob,
        /// Where and how.
        delivery: Delivery,
        /// Attempts made, this one included.
        attempts: u32,
    },
    /// Given up: a permanent failure, or transient ones past the horizon (recorded before the
    /// dead-letter). A failed [`RelayKind::Message`](super::RelayKind::Message) gets a DSN.
    Failed {
        /// The job.
        job: RelayJob,
        /// The last failure and why the worker stopped.
        reason: String,
        /// Attempts made, this one included.
        attempts: u32,
    },
}

/// Worker settings.
#[derive(Debug, Clone)]
pub struct RelayWorkerConfig {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Lease length: longer than one attempt with all its timeouts.
    pub lease_for: Duration,
    /// How long one lease call waits for a job before looking at the shutdown signal.
    pub poll: Duration,
    /// The retry policy of transient failures.
    pub policy: RetryPolicy,
    /// Seed of the jitter RNG (`None`: from the OS).
    pub seed: Option<u64>,
}

impl RelayWorkerConfig {
    /// Settings from `[relay]`.
    pub fn from_config(config: &RelayConfig) -> RelayWorkerConfig {
        let attempt = config
            .connect_timeout_secs
            .saturating_mul(2)
            .saturating_add(config.command_timeout_secs);
        RelayWorkerConfig {
            concurrency: config.concurrency.max(1),
            // Margin over the worst attempt, so a slow but live delivery keeps its lease.
            lease_for: Duration::from_secs(attempt.saturating_add(60)),
            poll: Duration::from_secs(1),
            policy: config.retry_policy(),
            seed: None,
        }
    }
}

/// The relay worker.
#[derive(Debug)]
pub struct RelayWorker<Q, M, S> {
    shared: Arc<Shared<Q, M, S>>,
}

#[derive(Debug)]
struct Shared<Q, M, S> {
    queue: Arc<Q>,
    relayer: Arc<Relayer>,
    source: Arc<M>,
    sink: Arc<S>,
    config: RelayWorkerConfig,
    rng: Mutex<StdRng>,
}

impl<Q: Queue, M: MessageSource, S: RelaySink> RelayWorker<Q, M, S> {
    /// A worker taking jobs from `queue`.
    pub fn new(
        queue: Arc<Q>,
        relayer: Arc<Relayer>,
        source: Arc<M>,
        sink: Arc<S>,
        config: RelayWorkerConfig,
    ) -> Self {
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        RelayWorker {
            shared: Arc::new(Shared {
                queue,
                relayer,
                source,
                sink,
                config,
                rng: Mutex::new(rng),
            }),
        }
    }

    /// Runs until `shutdown` turns true, then waits for the deliveries in flight.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let config = &self.shared.config;
        let settings = LeaseSettings {
            concurrency: config.concurrency,
            lease_for: config.lease_for,
            poll: config.poll,
            consumer: "relay worker",
        };
        lease_loop::run(&*self.shared.queue, settings, shutdown, |lease| {
            let shared = Arc::clone(&self.shared);
            async move { shared.process(lease).await }
        })
        .await;
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The RNG has no invariant a panic could break.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<Q: Queue, M: MessageSource, S: RelaySink> Shared<Q, M, S> {
    async fn process(&self, lease: Lease) {
        let attempt = lease.job.attempts.saturating_add(1);
        let job = match RelayJob::from_payload(&lease.job.payload) {
            Ok(job) => job,
            Err(error) => {
                // Nothing to tell the sink about a job that cannot be read; park it for an operator.
                tracing::error!(job = %lease.job.id, %error, "relay job payload unreadable");
                let reason = format!("payload is not a relay job: {error}");
                let id = lease.job.id.clone();
                settle_log(&id, self.queue.dead_letter(lease, &reason).await);
                return;
            }
        };
        let result = match &job.content {
            RelayContent::Inline(bytes) => self.relayer.deliver(&job, bytes).await,
            RelayContent::Spool => match self.source.original(&job.queue_id).await {
                Ok(bytes) => self.relayer.deliver(&job, &bytes).await,
                Err(error) => Err(DeliveryFailure::Transient {
                    reason: format!("original message {} unreadable: {error}", job.queue_id),
                }),
            },
        };
        self.conclude(lease, job, attempt, result).await;
    }

    async fn conclude(
        &self,
        lease: Lease,
        job: RelayJob,
        attempts: u32,
        result: Result<Delivery, DeliveryFailure>,
    ) {
        let id = lease.job.id.clone();
        let failure = match result {
            Ok(delivery) => {
                let event = RelayEvent::Delivered {
                    job,
                    delivery,
                    attempts,
                };
                if self.record(&id, &event).await {
                    settle_log(&id, self.queue.ack(lease).await);
                }
                return;
            }
            Err(failure) => failure,
        };
        let (class, reason) = match &failure {
            DeliveryFailure::Transient { reason } => (FailureClass::Transient, reason.clone()),
            DeliveryFailure::Permanent { reason } => (FailureClass::Permanent, reason.clone()),
        };
        let elapsed = SystemTime::now()
            .duration_since(lease.job.enqueued_at)
            .unwrap_or(Duration::ZERO);
        let previous = (attempts > 1).then(|| exponential_delay(&self.config.policy, attempts - 1));
        let decision = {
            let mut rng = lock(&self.rng);
            decide(
                &self.config.policy,
                class,
                attempts,
                elapsed,
                previous,
                &mut *rng,
            )
        };
        match decision {
            Decision::RetryAfter(delay) => {
                let retry_at = SystemTime::now() + delay;
                let event = RelayEvent::Attempt {
                    job,
                    attempt: attempts,
                    error: reason.clone(),
                    retry_at,
                };
                if self.record(&id, &event).await {
                    settle_log(&id, self.queue.retry_at(lease, retry_at, &reason).await);
                }
            }
            Decision::GiveUp(give_up) => {
                let reason = match class {
                    FailureClass::Permanent => reason,
                    _ => format!("{reason} (gave up after {attempts} attempts: {give_up:?})"),
                };
                let event = RelayEvent::Failed {
                    job,
                    reason: reason.clone(),
                    attempts,
                };
                if self.record(&id, &event).await {
                    settle_log(&id, self.queue.dead_letter(lease, &reason).await);
                }
            }
            // Decisions added later: leave the job to lease expiry.
            _ => {}
        }
    }

    /// Records `event`; false (and the job left leased) when the sink failed.
    async fn record(&self, id: &JobId, event: &RelayEvent) -> bool {
        match self.sink.record(event).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(job = %id, %error, "relay outcome not recorded; job left to lease expiry");
                false
            }
        }
    }
}

/// A failed ack, retry or dead-letter only means the job comes back after its lease: log it.
fn settle_log(id: &JobId, settled: Result<(), QueueError>) {
    if let Err(error) = settled {
        tracing::warn!(job = %id, %error, "could not settle relay job; it will be delivered again");
    }
}
