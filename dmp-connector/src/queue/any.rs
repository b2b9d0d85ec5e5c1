//! A queue whose backend is chosen at run time (by configuration), for code that must not be
//! generic over it.

use std::time::{Duration, SystemTime};

use super::amqp::AmqpQueue;
use super::embedded::SqliteQueue;
use super::{Enqueued, JobInfo, JobState, Lease, NewJob, Queue, QueueCounts, QueueError};

/// Either backend, behind the one [`Queue`] contract.
#[derive(Debug)]
pub enum AnyQueue {
    /// Embedded SQLite queue.
    Embedded(SqliteQueue),
    /// RabbitMQ queue.
    Amqp(AmqpQueue),
}

/// Calls the same method on whichever backend is inside.
macro_rules! delegate {
    ($self:ident, $queue:ident => $call:expr) => {
        match $self {
            AnyQueue::Embedded($queue) => $call.await,
            AnyQueue::Amqp($queue) => $call.await,
        }
    };
}

impl Queue for AnyQueue {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        delegate!(self, queue => queue.enqueue(job))
    }

    async fn lease(
        &self,
        lease_for: Duration,
        wait: Duration,
    ) -> Result<Option<Lease>, QueueError> {
        delegate!(self, queue => queue.lease(lease_for, wait))
    }

    async fn ack(&self, lease: Lease) -> Result<(), QueueError> {
        delegate!(self, queue => queue.ack(lease))
    }

    async fn retry_at(
        &self,
        lease: Lease,
        when: SystemTime,
        reason: &str,
    ) -> Result<(), QueueError> {
        delegate!(self, queue => queue.retry_at(lease, when, reason))
    }

    async fn dead_letter(&self, lease: Lease, reason: &str) -> Result<(), QueueError> {
        delegate!(self, queue => queue.dead_letter(lease, reason))
    }

    async fn list(&self, state: JobState, limit: usize) -> Result<Vec<JobInfo>, QueueError> {
        delegate!(self, queue => queue.list(state, limit))
    }

    async fn counts(&self) -> Result<QueueCounts, QueueError> {
        delegate!(self, queue => queue.counts())
    }
}
