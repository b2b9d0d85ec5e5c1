//! The message pipeline behind the SMTP listeners (ARCHITECTURE §1, §3).
//!
//! At end of DATA ([`handler`]): admission ([`admission`]: bounded, `451 4.3.2` beyond),
//! the checks ([`inspect`]: S/MIME, documents, INS, routes) on the blocking pool, then the
//! ledger entries (received, verified, documents extracted — or rejected) made durable
//! *before* the spool commit and the `250`. After the `250` ([`jobs`]): one deposit job per
//! document and one relay job per recipient domain, and the [`tracker`] of what is still open.
//! The sinks ([`sinks`]) write each outcome to the ledger, then settle the job; when the last
//! job of a message settles, its notifications are queued ([`notices`]) and its spool file is
//! removed. At start ([`recovery`]), every message still in the spool resumes from what the
//! ledger says is final.

pub mod admission;
pub mod config;
pub mod events;
mod handler;
pub mod inspect;
pub mod jobs;
pub mod metrics;
pub mod notices;
pub mod recovery;
pub mod sinks;
pub mod tracker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use dmp_connector::queue::any::AnyQueue;
use smtp_in::spool::Spool;
use smtp_in::whitelist::Whitelist;

use crate::documents::DocumentPolicy;
use crate::ledger::Ledger;
use crate::relay::{RelayConfig, Relayer};
use crate::smime::SmimeVerifier;

use admission::Admission;
pub use config::PipelineConfig;
use inspect::Inspection;
use jobs::PendingJob;
use tracker::Tracker;

/// Everything the pipeline works with; shared by the handler, the sinks and the sweeper.
pub struct Pipeline {
    verifier: Arc<SmimeVerifier>,
    policy: DocumentPolicy,
    whitelist: Option<Arc<Whitelist>>,
    ledger: Arc<Ledger>,
    admission: Admission,
    /// The deposit queue; `None` when `[dmp] enabled = false`.
    deposits: Option<Arc<AnyQueue>>,
    relays: Arc<AnyQueue>,
    relayer: Arc<Relayer>,
    relay_config: RelayConfig,
    /// The queue is shared with other nodes (RabbitMQ): relay jobs carry the message itself
    /// (another node may deliver it) and the sweeper reads final states from the ledger.
    shared_queue: bool,
    tracker: Tracker,
    spool: Spool,
    hostname: String,
    /// Inspections between `check` and `accepted`, by queue id.
    inspected: Mutex<HashMap<String, Inspection>>,
    /// Jobs whose enqueue failed after the `250`, retried by the sweeper, by queue id.
    unqueued: Mutex<HashMap<String, Vec<PendingJob>>>,
    sweep_every: Duration,
    metrics: metrics::Metrics,
}

/// What [`Pipeline::new`] is built from.
pub struct PipelineParts {
    /// The S/MIME verifier.
    pub verifier: Arc<SmimeVerifier>,
    /// `[documents]`.
    pub policy: DocumentPolicy,
    /// The liste blanche, if configured (authenticates the sender domain for transport-only
    /// policies).
    pub whitelist: Option<Arc<Whitelist>>,
    /// The open ledger.
    pub ledger: Arc<Ledger>,
    /// `[pipeline]`.
    pub config: PipelineConfig,
    /// The deposit queue (`None`: deposits disabled).
    pub deposits: Option<Arc<AnyQueue>>,
    /// The relay queue.
    pub relays: Arc<AnyQueue>,
    /// The relay.
    pub relayer: Arc<Relayer>,
    /// `[relay]`.
    pub relay_config: RelayConfig,
    /// Whether the queue is shared with other nodes (RabbitMQ).
    pub shared_queue: bool,
    /// The spool.
    pub spool: Spool,
    /// The gateway's host name (notifications' `From:` and `Reporting-UA`).
    pub hostname: String,
}

impl Pipeline {
    /// Assembles the pipeline.
    pub fn new(parts: PipelineParts) -> Arc<Pipeline> {
        let config = &parts.config;
        Arc::new(Pipeline {
            verifier: parts.verifier,
            policy: parts.policy,
            whitelist: parts.whitelist,
            ledger: parts.ledger,
            admission: Admission::new(
                config.worker_count(),
                config.max_waiting,
                Duration::from_secs(config.max_wait_secs),
            ),
            deposits: parts.deposits,
            relays: parts.relays,
            relayer: parts.relayer,
            relay_config: parts.relay_config,
            shared_queue: parts.shared_queue,
            tracker: Tracker::default(),
            spool: parts.spool,
            hostname: parts.hostname,
            inspected: Mutex::new(HashMap::new()),
            unqueued: Mutex::new(HashMap::new()),
            sweep_every: Duration::from_secs(config.sweep_secs),
            metrics: metrics::Metrics::default(),
        })
    }

    /// The ledger.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The counters of what the pipeline did.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// The deposit queue (`None`: deposits disabled) and the relay queue.
    pub fn queues(&self) -> (Option<&Arc<AnyQueue>>, &Arc<AnyQueue>) {
        (self.deposits.as_ref(), &self.relays)
    }

    /// Messages with jobs still open.
    pub fn open_messages(&self) -> usize {
        self.tracker.len()
    }

    /// The spool directory.
    pub fn spool_dir(&self) -> PathBuf {
        self.spool.dir().to_path_buf()
    }

    /// Starts the periodic sweep (enqueue retries, final states recorded by other nodes).
    pub fn spawn_sweeper(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let pipeline = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(pipeline.sweep_every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                pipeline.sweep().await;
            }
        })
    }

    async fn sweep(self: &Arc<Self>) {
        self.retry_unqueued().await;
        // With a local queue every outcome reaches this node's sinks; only a shared queue lets
        // another node record the final state of one of our jobs.
        if !self.shared_queue {
            return;
        }
        for queue_id in self.tracker.older_than(self.sweep_every) {
            if let Err(error) = self.settle_from_ledger(&queue_id).await {
                tracing::warn!(%queue_id, %error, "ledger sweep failed");
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a few map operations without await.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The domain of an address, lower case.
pub fn domain_of(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain.trim_end_matches('.').to_ascii_lowercase())
        .filter(|domain| !domain.is_empty())
}
