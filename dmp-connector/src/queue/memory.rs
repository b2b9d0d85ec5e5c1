//! An in-memory queue on the tokio clock: not durable, for tests of code built on [`Queue`]
//! (paused-clock tests of the worker's retry timing) and as a third check of the suite.
//!
//! Times given as [`SystemTime`] are turned into delays from now and then run on
//! [`tokio::time::Instant`], so `tokio::time::pause` drives retries and lease expiry.
//! Unlike the durable backends it does not deduplicate enqueues unless asked
//! ([`MemoryQueue::allow_duplicates`] simulates the cross-process duplicates of AMQP).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{
    Enqueued, Job, JobId, JobInfo, JobState, Lease, LeaseToken, NewJob, Queue, QueueCounts,
    QueueError,
};

/// The in-memory queue.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    entries: Mutex<BTreeMap<u64, Entry>>,
    next: Mutex<u64>,
    duplicates: AtomicBool,
    enqueued: Notify,
    log: Mutex<Vec<String>>,
}

#[derive(Debug)]
struct Entry {
    job: Job,
    dead: bool,
    visible_at: Instant,
    lease: Option<(String, Instant)>,
}

impl MemoryQueue {
    /// An empty queue.
    pub fn new() -> MemoryQueue {
        MemoryQueue::default()
    }

    /// Lets enqueue store a second live job under the same key (as two AMQP publishers can).
    pub fn allow_duplicates(&self, allow: bool) {
        self.duplicates.store(allow, Ordering::Relaxed);
    }

    /// What was done, in order: `enqueue <key>`, `ack <key>`, `retry <key>`, `dead <key>`.
    pub fn log(&self) -> Vec<String> {
        lock(&self.log).clone()
    }

    fn note(&self, entry: String) {
        lock(&self.log).push(entry);
    }

    fn settle<F>(&self, lease: &Lease, action: &str, apply: F) -> Result<(), QueueError>
    where
        F: FnOnce(&mut BTreeMap<u64, Entry>, u64),
    {
        let lost = || QueueError::LeaseLost {
            job: lease.job.id.clone(),
        };
        let LeaseToken::Embedded(token) = &lease.token else {
            return Err(lost());
        };
        let mut entries = lock(&self.entries);
        let seq = entries
            .iter()
            .find(|(_, entry)| {
                entry.job.id == lease.job.id
                    && entry.lease.as_ref().is_some_and(|(held, _)| held == token)
            })
            .map(|(seq, _)| *seq)
            .ok_or_else(lost)?;
        apply(&mut entries, seq);
        drop(entries);
        self.note(format!("{action} {}", lease.job.idempotency_key));
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a single map update; nothing is left half-done by a panic.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn instant_of(when: SystemTime) -> Instant {
    Instant::now()
        + when
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
}

fn state_of(entry: &Entry, now: Instant) -> JobState {
    match (&entry.lease, entry.dead) {
        (_, true) => JobState::Dead,
        (Some((_, until)), _) if *until > now => JobState::Leased,
        _ if entry.visible_at > now => JobState::Delayed,
        _ => JobState::Ready,
    }
}

impl Queue for MemoryQueue {
    async fn enqueue(&self, new: NewJob) -> Result<Enqueued, QueueError> {
        let mut entries = lock(&self.entries);
        if !self.duplicates.load(Ordering::Relaxed)
            && let Some(entry) = entries
                .values()
                .find(|entry| !entry.dead && entry.job.idempotency_key == new.idempotency_key)
        {
            return Ok(Enqueued::Duplicate(entry.job.id.clone()));
        }
        let id = JobId::generate();
        let seq = {
            let mut next = lock(&self.next);
            *next += 1;
            *next
        };
        let key = new.idempotency_key.clone();
        entries.insert(
            seq,
            Entry {
                job: Job {
                    id: id.clone(),
                    idempotency_key: new.idempotency_key,
                    payload: new.payload,
                    attempts: 0,
                    enqueued_at: SystemTime::now(),
                    last_reason: None,
                },
                dead: false,
                visible_at: Instant::now(),
                lease: None,
            },
        );
        drop(entries);
        self.note(format!("enqueue {key}"));
        self.enqueued.notify_waiters();
        Ok(Enqueued::New(id))
    }

    async fn lease(
        &self,
        lease_for: Duration,
        wait: Duration,
    ) -> Result<Option<Lease>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            let woken = self.enqueued.notified();
            let now = Instant::now();
            let leased = {
                let mut entries = lock(&self.entries);
                entries
                    .values_mut()
                    .find(|entry| state_of(entry, now) == JobState::Ready)
                    .map(|entry| {
                        let token = format!("{:032x}", rand::random::<u128>());
                        entry.lease = Some((token.clone(), now + lease_for));
                        Lease {
                            job: entry.job.clone(),
                            expires_at: SystemTime::now() + lease_for,
                            token: LeaseToken::Embedded(token),
                        }
                    })
            };
            if leased.is_some() {
                return Ok(leased);
            }
            if now >= deadline {
                return Ok(None);
            }
            let next_visible = lock(&self.entries)
                .values()
                .filter(|entry| !entry.dead)
                .map(|entry| match &entry.lease {
                    Some((_, until)) => *until,
                    None => entry.visible_at,
                })
                .filter(|at| *at > now)
                .min();
            let wake_at = next_visible.map_or(deadline, |at| at.min(deadline));
            let _ = tokio::time::timeout_at(wake_at, woken).await;
        }
    }

    async fn ack(&self, lease: Lease) -> Result<(), QueueError> {
        self.settle(&lease, "ack", |entries, seq| {
            entries.remove(&seq);
        })
    }

    async fn retry_at(
        &self,
        lease: Lease,
        when: SystemTime,
        reason: &str,
    ) -> Result<(), QueueError> {
        self.settle(&lease, "retry", |entries, seq| {
            if let Some(entry) = entries.get_mut(&seq) {
                entry.lease = None;
                entry.visible_at = instant_of(when);
                entry.job.attempts += 1;
                entry.job.last_reason = Some(reason.to_owned());
            }
        })
    }

    async fn dead_letter(&self, lease: Lease, reason: &str) -> Result<(), QueueError> {
        self.settle(&lease, "dead", |entries, seq| {
            if let Some(entry) = entries.get_mut(&seq) {
                entry.lease = None;
                entry.dead = true;
                entry.job.attempts += 1;
                entry.job.last_reason = Some(reason.to_owned());
            }
        })
    }

    async fn list(&self, state: JobState, limit: usize) -> Result<Vec<JobInfo>, QueueError> {
        let now = Instant::now();
        Ok(lock(&self.entries)
            .values()
            .filter(|entry| state_of(entry, now) == state)
            .take(limit)
            .map(|entry| JobInfo {
                id: entry.job.id.clone(),
                idempotency_key: entry.job.idempotency_key.clone(),
                state,
                attempts: entry.job.attempts,
                reason: entry.job.last_reason.clone(),
            })
            .collect())
    }

    async fn counts(&self) -> Result<QueueCounts, QueueError> {
        let now = Instant::now();
        let mut counts = QueueCounts::default();
        for entry in lock(&self.entries).values() {
            match state_of(entry, now) {
                JobState::Ready => counts.ready += 1,
                JobState::Delayed => counts.delayed += 1,
                JobState::Leased => counts.leased += 1,
                JobState::Dead => counts.dead += 1,
            }
        }
        Ok(counts)
    }
}
