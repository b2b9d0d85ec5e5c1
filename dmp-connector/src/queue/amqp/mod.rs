//! The RabbitMQ backend: durable quorum queues, persistent messages, publisher confirms,
//! manual acks, a dead-letter exchange and per-delay TTL queues (see [`topology`]).
//!
//! Differences of mechanism (not of semantics) from the embedded backend:
//! - a lease is an unacked delivery held by this process; its expiry is enforced here (an
//!   expired lease is nacked back to the queue by the next `lease`, `list` or `counts`), and
//!   by the broker when the connection closes (a dead worker process);
//! - the idempotency of `enqueue` is checked against the live jobs this process enqueued or
//!   leased within [`AmqpConfig::dedup_window`]; across processes, a duplicate message may exist and is removed by the worker's
//!   idempotency by `uniqueId` and by the DMP's (ARCHITECTURE §3: at-least-once);
//! - a retry publishes a copy to the delay queue (confirmed) *then* acks the original: a crash
//!   between the two leaves two copies, removed the same way;
//! - `counts` and `list` are snapshots: a message in transit from the broker to this
//!   process's consumer may be missing from them for a moment.

mod link;
mod message;
pub mod topology;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use lapin::Acker;
use lapin::options::{BasicGetOptions, BasicNackOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation};
use tokio::sync::Semaphore;

use self::link::{Link, Supervisor};
use self::topology::{Topology, WORK_ROUTING_KEY};
use super::{
    Enqueued, Job, JobId, JobInfo, JobState, Lease, LeaseToken, NewJob, Queue, QueueCounts,
    QueueError,
};

/// Settings of the RabbitMQ backend.
#[derive(Debug, Clone)]
pub struct AmqpConfig {
    /// Broker URI, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub uri: String,
    /// Prefix of every queue and exchange name.
    pub prefix: String,
    /// Deliveries the broker may push before they are acked (`basic.qos`).
    pub prefetch: u16,
    /// Publishes awaiting their confirm at once (concurrent enqueues beyond wait).
    pub confirm_window: usize,
    /// Retry delay buckets (empty: [`topology::DEFAULT_DELAY_BUCKETS`]).
    pub delay_buckets: Vec<Duration>,
    /// How long this process remembers a live job's idempotency key for deduplicating
    /// enqueues (the broker keeps no index of keys).
    pub dedup_window: Duration,
}

impl AmqpConfig {
    /// Settings for `uri` and `prefix` with prefetch 64, a window of 256 confirms, the
    /// default delay buckets and a one-hour deduplication window.
    pub fn new(uri: impl Into<String>, prefix: impl Into<String>) -> AmqpConfig {
        AmqpConfig {
            uri: uri.into(),
            prefix: prefix.into(),
            prefetch: 64,
            confirm_window: 256,
            delay_buckets: Vec::new(),
            dedup_window: Duration::from_secs(3600),
        }
    }
}

/// The RabbitMQ queue. Cheap to clone; clones share one connection.
#[derive(Debug, Clone)]
pub struct AmqpQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    supervisor: Supervisor,
    /// Leases held by this process, by (epoch, delivery tag).
    leases: Mutex<HashMap<(u64, u64), Held>>,
    /// Idempotency keys of live jobs known to this process, with when they were last seen.
    keys: Mutex<HashMap<String, (JobId, Instant)>>,
    dedup_window: Duration,
    window: Semaphore,
}

#[derive(Debug)]
struct Held {
    acker: Acker,
    expires_at: SystemTime,
    info: JobInfo,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Maps are only read and written under these locks, never left half-updated.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl AmqpQueue {
    /// Connects, declares the topology and starts consuming.
    pub async fn connect(config: AmqpConfig) -> Result<AmqpQueue, QueueError> {
        let topology = Topology::new(&config.prefix, &config.delay_buckets);
        let queue = AmqpQueue {
            inner: Arc::new(Inner {
                supervisor: Supervisor::new(config.uri, config.prefetch.max(1), topology),
                leases: Mutex::new(HashMap::new()),
                keys: Mutex::new(HashMap::new()),
                dedup_window: config.dedup_window,
                window: Semaphore::new(config.confirm_window.max(1)),
            }),
        };
        queue.inner.supervisor.link().await?;
        Ok(queue)
    }

    /// Deletes every queue and exchange of this prefix, then closes the connection.
    pub async fn delete_topology(&self) -> Result<(), QueueError> {
        let link = self.inner.supervisor.link().await?;
        let channel =
            link.connection
                .create_channel()
                .await
                .map_err(|source| QueueError::Broker {
                    operation: "open channel",
                    source,
                })?;
        self.inner.supervisor.topology.delete(&channel).await?;
        self.inner.supervisor.close().await;
        Ok(())
    }

    /// Closes the connection; unacked deliveries go back to the queue.
    pub async fn close(&self) {
        self.inner.supervisor.close().await;
    }

    async fn link(&self) -> Result<Arc<Link>, QueueError> {
        self.inner.supervisor.link().await
    }

    /// Publishes and waits for the broker's confirm.
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        job: &Job,
        properties: BasicProperties,
    ) -> Result<(), QueueError> {
        // The window bounds confirms outstanding; concurrent callers pipeline within it.
        let _permit = self
            .inner
            .window
            .acquire()
            .await
            .map_err(|error| QueueError::Task(error.to_string()))?;
        let link = self.link().await?;
        let broken = |operation| {
            let link = Arc::clone(&link);
            move |source| {
                link.mark_broken();
                QueueError::Broker { operation, source }
            }
        };
        let confirm = link
            .publisher
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &job.payload,
                properties,
            )
            .await
            .map_err(broken("publish"))?;
        match confirm.await.map_err(broken("await publisher confirm"))? {
            Confirmation::Ack(None) => Ok(()),
            // Returned (unroutable) or refused: not stored.
            _ => Err(QueueError::PublishNacked {
                job: job.id.clone(),
            }),
        }
    }

    /// Takes the held lease back, or reports it lost.
    fn take_held(&self, lease: &Lease) -> Result<((u64, u64), Held), QueueError> {
        let lost = || QueueError::LeaseLost {
            job: lease.job.id.clone(),
        };
        let LeaseToken::Amqp {
            epoch,
            delivery_tag,
        } = lease.token
        else {
            return Err(lost());
        };
        let key = (epoch, delivery_tag);
        let held = lock(&self.inner.leases).remove(&key).ok_or_else(lost)?;
        Ok((key, held))
    }

    /// Acks `held`'s delivery, received in `epoch`. An older epoch, a poisoned or closed
    /// channel all mean the broker has requeued (or will redeliver) the message.
    async fn ack_held(&self, job: &JobId, epoch: u64, held: Held) -> Result<(), QueueError> {
        let lost = || QueueError::LeaseLost { job: job.clone() };
        if self.inner.supervisor.current_epoch().await != Some(epoch) {
            return Err(lost());
        }
        match held.acker.ack(Default::default()).await {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => Err(lost()),
        }
    }

    /// Nacks (requeues) every expired lease.
    async fn reap_expired(&self) {
        let now = SystemTime::now();
        let expired: Vec<Held> = {
            let mut leases = lock(&self.inner.leases);
            let keys: Vec<(u64, u64)> = leases
                .iter()
                .filter(|(_, held)| held.expires_at <= now)
                .map(|(key, _)| *key)
                .collect();
            keys.iter().filter_map(|key| leases.remove(key)).collect()
        };
        for held in expired {
            tracing::info!(job = %held.info.id, "lease expired; job requeued");
            let requeue = BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            };
            // If the channel is gone the broker requeued it already.
            let _ = held.acker.nack(requeue).await;
        }
    }

    /// Reads up to `limit` messages of `queue` without consuming them: they are fetched on a
    /// private channel whose closing puts them all back.
    async fn peek(
        &self,
        queue: &str,
        state: JobState,
        limit: usize,
    ) -> Result<Vec<JobInfo>, QueueError> {
        let broker = |operation| move |source| QueueError::Broker { operation, source };
        let link = self.link().await?;
        let channel = link
            .connection
            .create_channel()
            .await
            .map_err(broker("open peek channel"))?;
        let mut found = Vec::new();
        while found.len() < limit {
            let got = channel
                .basic_get(queue.into(), BasicGetOptions::default())
                .await
                .map_err(broker("peek"))?;
            let Some(got) = got else { break };
            let (job, _) = message::decode(&got.delivery)?;
            found.push(info(&job, state));
        }
        channel
            .close(200, "peeked".into())
            .await
            .map_err(broker("close peek channel"))?;
        Ok(found)
    }

    /// Ready messages in the broker queue (not counting those pushed to this process).
    async fn message_count(&self, queue: &str) -> Result<u64, QueueError> {
        let broker = |operation| move |source| QueueError::Broker { operation, source };
        let link = self.link().await?;
        // A private channel: a failed passive declare closes its channel.
        let channel = link
            .connection
            .create_channel()
            .await
            .map_err(broker("open count channel"))?;
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(broker("count messages"))?;
        let _ = channel.close(200, "counted".into()).await;
        Ok(u64::from(declared.message_count()))
    }

    /// Received deliveries not leased yet, from the current epoch.
    async fn inbox_jobs(&self) -> Vec<Job> {
        let epoch = self.inner.supervisor.current_epoch().await;
        let inbox = self.inner.supervisor.inbox.lock();
        inbox
            .iter()
            .filter(|(delivery_epoch, _)| Some(*delivery_epoch) == epoch)
            .filter_map(|(_, delivery)| message::decode(delivery).ok().map(|(job, _)| job))
            .collect()
    }

    /// Hands out one received delivery, if any. Deliveries from an older epoch are dropped:
    /// the broker has requeued them and delivers them again on the new channel.
    async fn take_delivery(&self, lease_for: Duration) -> Result<Option<Lease>, QueueError> {
        let epoch = self.inner.supervisor.current_epoch().await;
        loop {
            let next = self.inner.supervisor.inbox.lock().pop_front();
            let Some((delivery_epoch, delivery)) = next else {
                return Ok(None);
            };
            if Some(delivery_epoch) != epoch {
                continue;
            }
            let (job, not_before) = match message::decode(&delivery) {
                Ok(decoded) => decoded,
                Err(error) => {
                    // Not one of ours: park it in the dead-letter queue through the work
                    // queue's dead-letter exchange rather than redeliver it forever.
                    tracing::warn!(%error, "malformed message dead-lettered");
                    let _ = delivery.acker.reject(Default::default()).await;
                    continue;
                }
            };
            let now = SystemTime::now();
            if let Some(not_before) = not_before.filter(|time| *time > now) {
                // Longer than the longest bucket: hop through a delay queue again.
                self.delay(&job, not_before).await?;
                let _ = delivery.acker.ack(Default::default()).await;
                continue;
            }
            lock(&self.inner.keys).insert(
                job.idempotency_key.clone(),
                (job.id.clone(), Instant::now()),
            );
            let expires_at = now + lease_for;
            let key = (delivery_epoch, delivery.delivery_tag);
            lock(&self.inner.leases).insert(
                key,
                Held {
                    acker: delivery.acker,
                    expires_at,
                    info: info(&job, JobState::Leased),
                },
            );
            return Ok(Some(Lease {
                job,
                expires_at,
                token: LeaseToken::Amqp {
                    epoch: key.0,
                    delivery_tag: key.1,
                },
            }));
        }
    }

    /// Publishes `job` to the delay queue that brings it back at (or just after) `when`.
    async fn delay(&self, job: &Job, when: SystemTime) -> Result<(), QueueError> {
        let topology = &self.inner.supervisor.topology;
        let delay = when
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        let bucket = topology.bucket_for(delay);
        let queue = topology.delay_queue(bucket);
        let properties = message::properties(job, Some(when));
        self.publish("", &queue, job, properties).await
    }
}

fn info(job: &Job, state: JobState) -> JobInfo {
    JobInfo {
        id: job.id.clone(),
        idempotency_key: job.idempotency_key.clone(),
        state,
        attempts: job.attempts,
        reason: job.last_reason.clone(),
    }
}

impl Queue for AmqpQueue {
    async fn enqueue(&self, new: NewJob) -> Result<Enqueued, QueueError> {
        {
            let mut keys = lock(&self.inner.keys);
            // Another process may have finished the job meanwhile; past the window the key is
            // forgotten, so a stale entry cannot swallow a later document for ever.
            keys.retain(|_, (_, seen)| seen.elapsed() < self.inner.dedup_window);
            if let Some((id, _)) = keys.get(&new.idempotency_key) {
                return Ok(Enqueued::Duplicate(id.clone()));
            }
        }
        let job = Job {
            id: JobId::generate(),
            idempotency_key: new.idempotency_key,
            payload: new.payload,
            attempts: 0,
            enqueued_at: SystemTime::now(),
            last_reason: None,
        };
        let exchange = self.inner.supervisor.topology.work_exchange.clone();
        let properties = message::properties(&job, None);
        self.publish(&exchange, WORK_ROUTING_KEY, &job, properties)
            .await?;
        let mut keys = lock(&self.inner.keys);
        // A concurrent enqueue of the same key may have won meanwhile: both are stored, which
        // is the documented at-least-once case; report ours.
        keys.entry(job.idempotency_key)
            .or_insert((job.id.clone(), Instant::now()));
        Ok(Enqueued::New(job.id))
    }

    async fn lease(
        &self,
        lease_for: Duration,
        wait: Duration,
    ) -> Result<Option<Lease>, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            self.reap_expired().await;
            let arrived = self.inner.supervisor.inbox.arrived.notified();
            // Reconnects (and restarts the consumer) when the broker came back.
            let linked = self.link().await;
            if linked.is_ok()
                && let Some(lease) = self.take_delivery(lease_for).await?
            {
                return Ok(Some(lease));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return linked.map(|_| None);
            }
            let nap = if linked.is_ok() {
                Duration::from_millis(100)
            } else {
                Duration::from_millis(250)
            };
            let _ = tokio::time::timeout(nap.min(deadline - now), arrived).await;
        }
    }

    async fn ack(&self, lease: Lease) -> Result<(), QueueError> {
        let (key, held) = self.take_held(&lease)?;
        self.ack_held(&lease.job.id, key.0, held).await?;
        lock(&self.inner.keys).remove(&lease.job.idempotency_key);
        Ok(())
    }

    async fn retry_at(
        &self,
        lease: Lease,
        when: SystemTime,
        reason: &str,
    ) -> Result<(), QueueError> {
        let (key, held) = self.take_held(&lease)?;
        let mut job = lease.job.clone();
        job.attempts = job.attempts.saturating_add(1);
        job.last_reason = Some(reason.to_owned());
        if let Err(error) = self.delay(&job, when).await {
            // Keep holding the original: it comes back when the lease expires.
            lock(&self.inner.leases).insert(key, held);
            return Err(error);
        }
        self.ack_held(&lease.job.id, key.0, held).await
    }

    async fn dead_letter(&self, lease: Lease, reason: &str) -> Result<(), QueueError> {
        let (key, held) = self.take_held(&lease)?;
        let mut job = lease.job.clone();
        job.attempts = job.attempts.saturating_add(1);
        job.last_reason = Some(reason.to_owned());
        let exchange = self.inner.supervisor.topology.dead_exchange.clone();
        let properties = message::properties(&job, None);
        if let Err(error) = self.publish(&exchange, "", &job, properties).await {
            lock(&self.inner.leases).insert(key, held);
            return Err(error);
        }
        self.ack_held(&lease.job.id, key.0, held).await?;
        lock(&self.inner.keys).remove(&lease.job.idempotency_key);
        Ok(())
    }

    async fn list(&self, state: JobState, limit: usize) -> Result<Vec<JobInfo>, QueueError> {
        self.reap_expired().await;
        let topology = &self.inner.supervisor.topology;
        let mut found = match state {
            JobState::Leased => {
                let leases = lock(&self.inner.leases);
                let mut infos: Vec<JobInfo> =
                    leases.values().map(|held| held.info.clone()).collect();
                infos.sort_by(|a, b| a.id.cmp(&b.id));
                infos
            }
            JobState::Ready => {
                let mut infos: Vec<JobInfo> = self
                    .inbox_jobs()
                    .await
                    .iter()
                    .map(|job| info(job, JobState::Ready))
                    .collect();
                let queue = topology.work_queue.clone();
                infos.extend(self.peek(&queue, JobState::Ready, limit).await?);
                infos
            }
            JobState::Delayed => {
                let mut infos = Vec::new();
                for bucket in topology.buckets.clone() {
                    let queue = topology.delay_queue(bucket);
                    infos.extend(self.peek(&queue, JobState::Delayed, limit).await?);
                }
                infos
            }
            JobState::Dead => {
                let queue = topology.dead_queue.clone();
                self.peek(&queue, JobState::Dead, limit).await?
            }
        };
        found.truncate(limit);
        Ok(found)
    }

    async fn counts(&self) -> Result<QueueCounts, QueueError> {
        self.reap_expired().await;
        let topology = &self.inner.supervisor.topology;
        let ready = self.message_count(&topology.work_queue).await?;
        let in_inbox = self.inbox_jobs().await.len() as u64;
        let mut delayed = 0;
        for bucket in topology.buckets.clone() {
            delayed += self.message_count(&topology.delay_queue(bucket)).await?;
        }
        let dead = self.message_count(&topology.dead_queue).await?;
        let leased = lock(&self.inner.leases).len() as u64;
        Ok(QueueCounts {
            ready: ready + in_inbox,
            delayed,
            leased,
            dead,
        })
    }
}
