//! The deposit queue: a [`Queue`] trait with two backends of the same semantics.
//!
//! - [`embedded::SqliteQueue`] (the default, no service needed): SQLite in WAL mode with
//!   `synchronous=FULL`, on local disk;
//! - [`amqp::AmqpQueue`]: RabbitMQ through lapin, durable quorum queues, publisher confirms,
//!   manual acks, a dead-letter exchange and per-delay TTL queues for retries.
//!
//! Semantics shared by both (and checked by one test suite run against each):
//! - a job is leased for a duration; a lease that is neither acked, retried nor dead-lettered
//!   before it expires (a dead worker) makes the job available again: delivery is
//!   **at-least-once**, and the DMP's idempotency by document `uniqueId` makes it exactly-once;
//! - enqueueing a job whose idempotency key (the message's queue id and the document
//!   `uniqueId`) belongs to a live job (ready, delayed or leased) adds nothing and answers
//!   [`Enqueued::Duplicate`]: the same message re-planned after a restart adds nothing, while the
//!   same document sent in another message gets its own job (the DMP keeps one copy);
//! - [`Queue::retry_at`] hides the job until the given time (the AMQP backend rounds the delay
//!   up to one of its delay buckets, so a job never comes back early);
//! - [`Queue::dead_letter`] parks the job with its reason; it is listed but never leased again.

pub mod amqp;
pub mod any;
pub mod embedded;
pub mod memory;

use std::fmt;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::deposit::DepositRequest;

/// A job's unique identifier, assigned at enqueue (time-ordered, random suffix).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(String);

impl JobId {
    /// A new unique id: 12 hex digits of milliseconds since the epoch then 16 random hex digits.
    pub fn generate() -> JobId {
        let millis = unix_millis(SystemTime::now());
        JobId(format!("{millis:012x}{:016x}", rand::random::<u64>()))
    }

    /// Wraps an id read back from a backend.
    pub fn from_stored(id: String) -> JobId {
        JobId(id)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job to enqueue: the idempotency key and the serialized [`DepositRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// `<queue id>/<document uniqueId>`: at most one live job per key.
    pub idempotency_key: String,
    /// The payload: a [`DepositRequest`] as JSON.
    pub payload: Vec<u8>,
}

impl NewJob {
    /// A job carrying `request`, keyed by its message and document.
    ///
    /// Keyed by the document alone, a document sent again in a second message while its first
    /// deposit waited would be dropped, and the second message would wait for an outcome
    /// reported under the first.
    pub fn from_request(request: &DepositRequest) -> Result<NewJob, QueueError> {
        let payload = serde_json::to_vec(request)
            .map_err(|source| QueueError::Payload { job: None, source })?;
        Ok(NewJob {
            idempotency_key: format!("{}/{}", request.source.queue_id, request.entry.unique_id),
            payload,
        })
    }
}

/// What [`Queue::enqueue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Enqueued {
    /// A new job was stored durably (fsynced / confirmed by the broker).
    New(JobId),
    /// A live job with the same idempotency key already exists; nothing was added.
    Duplicate(JobId),
}

impl Enqueued {
    /// The id of the job that now carries the key.
    pub fn id(&self) -> &JobId {
        match self {
            Enqueued::New(id) | Enqueued::Duplicate(id) => id,
        }
    }
}

/// A job as handed to a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The job id.
    pub id: JobId,
    /// `<queue id>/<document uniqueId>`.
    pub idempotency_key: String,
    /// The serialized [`DepositRequest`].
    pub payload: Vec<u8>,
    /// Attempts with a recorded outcome: the number of [`Queue::retry_at`] calls so far (a
    /// lease that expired is not counted: its attempt has no known outcome).
    pub attempts: u32,
    /// When the job was first enqueued.
    pub enqueued_at: SystemTime,
    /// The reason given at the last [`Queue::retry_at`], if any.
    pub last_reason: Option<String>,
}

impl Job {
    /// Decodes the payload into the [`DepositRequest`] it carries.
    pub fn request(&self) -> Result<DepositRequest, QueueError> {
        serde_json::from_slice(&self.payload).map_err(|source| QueueError::Payload {
            job: Some(self.id.clone()),
            source,
        })
    }
}

/// A leased job: the job and the backend's token proving the lease.
#[derive(Debug)]
pub struct Lease {
    /// The job.
    pub job: Job,
    /// Until when the lease holds.
    pub expires_at: SystemTime,
    /// Backend-specific proof of the lease (a random token, or a delivery tag and epoch).
    pub(crate) token: LeaseToken,
}

/// Backend-specific proof of a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeaseToken {
    /// Embedded backend: the random token written in the row.
    Embedded(String),
    /// AMQP backend: the connection epoch and the delivery tag on the consuming channel.
    Amqp { epoch: u64, delivery_tag: u64 },
}

/// The state of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobState {
    /// Waiting to be leased.
    Ready,
    /// Waiting for its retry time.
    Delayed,
    /// Leased to a worker.
    Leased,
    /// Dead-lettered: will not be tried again.
    Dead,
}

impl JobState {
    /// The state's name as stored and logged.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Ready => "ready",
            JobState::Delayed => "delayed",
            JobState::Leased => "leased",
            JobState::Dead => "dead",
        }
    }
}

/// What [`Queue::list`] shows of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// The job id.
    pub id: JobId,
    /// `<queue id>/<document uniqueId>`.
    pub idempotency_key: String,
    /// Its state.
    pub state: JobState,
    /// Attempts already finished.
    pub attempts: u32,
    /// The last retry or dead-letter reason.
    pub reason: Option<String>,
}

/// Number of jobs in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Waiting to be leased.
    pub ready: u64,
    /// Waiting for a retry time.
    pub delayed: u64,
    /// Leased to workers (for AMQP: leased by this process).
    pub leased: u64,
    /// Dead-lettered.
    pub dead: u64,
}

/// A durable deposit queue. Both backends implement the semantics in the [module doc](self).
pub trait Queue: Send + Sync + 'static {
    /// Stores a job durably, or answers [`Enqueued::Duplicate`] when its key is live.
    fn enqueue(&self, job: NewJob) -> impl Future<Output = Result<Enqueued, QueueError>> + Send;

    /// Leases the next ready job for `lease_for`, waiting up to `wait` for one to appear.
    fn lease(
        &self,
        lease_for: Duration,
        wait: Duration,
    ) -> impl Future<Output = Result<Option<Lease>, QueueError>> + Send;

    /// Removes a finished job. Call only once its outcome is recorded.
    fn ack(&self, lease: Lease) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Hides the job until `when`, counting one more attempt and keeping `reason`.
    fn retry_at(
        &self,
        lease: Lease,
        when: SystemTime,
        reason: &str,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Parks the job as dead with `reason`; it is never leased again.
    fn dead_letter(
        &self,
        lease: Lease,
        reason: &str,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Up to `limit` jobs in `state`, oldest first.
    fn list(
        &self,
        state: JobState,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<JobInfo>, QueueError>> + Send;

    /// Number of jobs in each state.
    fn counts(&self) -> impl Future<Output = Result<QueueCounts, QueueError>> + Send;
}

/// Errors of the queue backends.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The embedded store failed.
    #[error("embedded queue store {operation} failed: {source}")]
    Store {
        /// What was being done.
        operation: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The group commit that carried this write failed as a whole.
    #[error("embedded queue {operation} failed for the whole batch: {detail}")]
    CommitFailed {
        /// What was being done.
        operation: &'static str,
        /// The SQLite error, as text (one error answers every write of the batch).
        detail: String,
    },
    /// The broker failed or is unreachable (transient: the supervisor reconnects).
    #[error("AMQP broker {operation} failed: {source}")]
    Broker {
        /// What was being done.
        operation: &'static str,
        /// The lapin error.
        #[source]
        source: lapin::Error,
    },
    /// The broker refused to store a published message (publisher confirm was a nack).
    #[error("AMQP broker refused (nack) the message of job {job}")]
    PublishNacked {
        /// The job.
        job: JobId,
    },
    /// The lease expired and the job was handed out again, or the lease belongs to a closed
    /// connection; the job will be (or was) delivered again.
    #[error("lease of job {job} was lost (expired or connection closed)")]
    LeaseLost {
        /// The job.
        job: JobId,
    },
    /// The payload is not a valid serialized [`DepositRequest`].
    #[error("job {job:?} payload is not a deposit request: {source}")]
    Payload {
        /// The job, when it has an id yet.
        job: Option<JobId>,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A message on the broker lacks the headers this backend writes.
    #[error("AMQP message lacks {what}")]
    Malformed {
        /// What is missing.
        what: &'static str,
    },
    /// A blocking task panicked or was cancelled.
    #[error("queue background task failed: {0}")]
    Task(String),
}

/// Milliseconds since the Unix epoch (0 for times before it).
pub(crate) fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The time `millis` after the Unix epoch.
pub(crate) fn from_unix_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}
