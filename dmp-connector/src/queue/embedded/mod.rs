//! The embedded backend: one SQLite database in WAL mode with `synchronous=FULL`.
//!
//! Every operation is one transaction (writes of concurrent callers are grouped into one,
//! see the `group` module), so a crash at any instant leaves each job either
//! before or after the operation. A lease is a random token and a deadline written in the
//! job's row: nothing in memory needs to survive a crash, and a job whose lease deadline has
//! passed is leasable again.

mod group;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tokio::sync::Notify;

use self::group::{Write, Written};

use super::{
    Enqueued, Job, JobId, JobInfo, JobState, Lease, LeaseToken, NewJob, Queue, QueueCounts,
    QueueError, from_unix_millis, unix_millis,
};

/// How often [`Queue::lease`] looks again for a job that became ready by the passing of time
/// (a retry time or an expired lease); enqueues wake it at once.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL,
    payload BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'leased', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before INTEGER NOT NULL,
    lease_token TEXT,
    lease_until INTEGER,
    enqueued_at INTEGER NOT NULL,
    reason TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_live_key ON jobs (idempotency_key) WHERE state != 'dead';
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, not_before);
";

/// The embedded SQLite queue. Cheap to clone; clones share one connection.
#[derive(Debug, Clone)]
pub struct SqliteQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    connection: Mutex<Connection>,
    /// Writes waiting for the next group commit.
    group: Mutex<group::Group>,
    enqueued: Notify,
}

impl SqliteQueue {
    /// Opens (creating if needed) the queue database at `path`.
    pub fn open(path: &Path) -> Result<SqliteQueue, QueueError> {
        let store = |operation| move |source| QueueError::Store { operation, source };
        let connection = Connection::open(path).map_err(store("open"))?;
        // WAL lets list/counts read while a writer commits; FULL fsyncs the WAL at every
        // commit, which is what makes an enqueue durable when it returns.
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(store("set journal_mode"))?;
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(store("set synchronous"))?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(store("set busy_timeout"))?;
        connection
            .execute_batch(SCHEMA)
            .map_err(store("create schema"))?;
        Ok(SqliteQueue {
            inner: Arc::new(Inner {
                connection: Mutex::new(connection),
                group: Mutex::new(group::Group::default()),
                enqueued: Notify::new(),
            }),
        })
    }

    /// Makes every leased job ready again; returns how many. Only for the queue's sole owner at
    /// start-up: the leases were held by a previous run of the same process (which crashed), and
    /// waiting for them to expire would only delay the jobs.
    pub async fn release_leases(&self) -> Result<usize, QueueError> {
        self.with_connection(|connection| {
            connection
                .execute(
                    "UPDATE jobs SET state = 'queued', lease_token = NULL, lease_until = NULL
                     WHERE state = 'leased'",
                    [],
                )
                .map_err(|source| QueueError::Store {
                    operation: "release leases",
                    source,
                })
        })
        .await
    }

    /// Runs `work` on the connection in a blocking thread.
    async fn with_connection<T, F>(&self, work: F) -> Result<T, QueueError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, QueueError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            // A poisoned mutex means a panic mid-transaction; SQLite rolled it back, so the
            // connection itself is still consistent and can be used.
            let mut connection = inner
                .connection
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut connection)
        })
        .await
        .map_err(|error| QueueError::Task(error.to_string()))?
    }

    /// One attempt at leasing, without waiting.
    async fn try_lease(&self, lease_for: Duration) -> Result<Option<Lease>, QueueError> {
        self.with_connection(move |connection| {
            let store = |operation| move |source| QueueError::Store { operation, source };
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(store("begin lease"))?;
            let now = SystemTime::now();
            let now_ms = unix_millis(now) as i64;
            let found = transaction
                .query_row(
                    "SELECT id, idempotency_key, payload, attempts, enqueued_at, reason
                     FROM jobs
                     WHERE (state = 'queued' AND not_before <= ?1)
                        OR (state = 'leased' AND lease_until <= ?1)
                     ORDER BY seq LIMIT 1",
                    params![now_ms],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, Vec<u8>>(2)?,
                            row.get::<_, i64>(3)?,
                            row.get::<_, i64>(4)?,
                            row.get::<_, Option<String>>(5)?,
                        ))
                    },
                )
                .optional()
                .map_err(store("select leasable job"))?;
            let Some((id, key, payload, attempts, enqueued_at, reason)) = found else {
                return Ok(None);
            };
            let token = format!("{:032x}", rand::random::<u128>());
            let expires_at = now + lease_for;
            transaction
                .execute(
                    "UPDATE jobs SET state = 'leased', lease_token = ?2, lease_until = ?3
                     WHERE id = ?1",
                    params![id, token, unix_millis(expires_at) as i64],
                )
                .map_err(store("mark job leased"))?;
            transaction.commit().map_err(store("commit lease"))?;
            Ok(Some(Lease {
                job: Job {
                    id: JobId::from_stored(id),
                    idempotency_key: key,
                    payload,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    enqueued_at: from_unix_millis(enqueued_at.max(0) as u64),
                    last_reason: reason,
                },
                expires_at,
                token: LeaseToken::Embedded(token),
            }))
        })
        .await
    }

    /// Runs `sql` (with `?1` = id, `?2` = token, then `extra`) against the leased row,
    /// failing with [`QueueError::LeaseLost`] when the lease is no longer this one.
    async fn settle(
        &self,
        lease: Lease,
        operation: &'static str,
        sql: &'static str,
        extra: Vec<Value>,
    ) -> Result<(), QueueError> {
        let LeaseToken::Embedded(token) = lease.token else {
            return Err(QueueError::LeaseLost { job: lease.job.id });
        };
        let write = Write::Settle {
            id: lease.job.id,
            token,
            operation,
            sql,
            extra,
        };
        group::submit(&self.inner, write).await.map(|_| ())
    }
}

impl Queue for SqliteQueue {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        let written = group::submit(&self.inner, Write::Enqueue(job)).await?;
        self.inner.enqueued.notify_waiters();
        match written {
            Written::Enqueued(enqueued) => Ok(enqueued),
            Written::Settled => Err(QueueError::Task("enqueue answered as a settle".to_owned())),
        }
    }

    async fn lease(
        &self,
        lease_for: Duration,
        wait: Duration,
    ) -> Result<Option<Lease>, QueueError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before looking, so an enqueue between the look and the wait
            // still wakes us.
            let woken = self.inner.enqueued.notified();
            if let Some(lease) = self.try_lease(lease_for).await? {
                return Ok(Some(lease));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let nap = POLL_INTERVAL.min(deadline - now);
            let _ = tokio::time::timeout(nap, woken).await;
        }
    }

    async fn ack(&self, lease: Lease) -> Result<(), QueueError> {
        self.settle(
            lease,
            "delete acked job",
            "DELETE FROM jobs WHERE id = ?1 AND state = 'leased' AND lease_token = ?2",
            Vec::new(),
        )
        .await
    }

    async fn retry_at(
        &self,
        lease: Lease,
        when: SystemTime,
        reason: &str,
    ) -> Result<(), QueueError> {
        self.settle(
            lease,
            "schedule retry",
            "UPDATE jobs SET state = 'queued', attempts = attempts + 1, not_before = ?3,
             reason = ?4, lease_token = NULL, lease_until = NULL
             WHERE id = ?1 AND state = 'leased' AND lease_token = ?2",
            vec![
                Value::Integer(unix_millis(when) as i64),
                Value::Text(reason.to_owned()),
            ],
        )
        .await
    }

    async fn dead_letter(&self, lease: Lease, reason: &str) -> Result<(), QueueError> {
        self.settle(
            lease,
            "dead-letter job",
            "UPDATE jobs SET state = 'dead', attempts = attempts + 1, reason = ?3,
             lease_token = NULL, lease_until = NULL
             WHERE id = ?1 AND state = 'leased' AND lease_token = ?2",
            vec![Value::Text(reason.to_owned())],
        )
        .await
    }

    async fn list(&self, state: JobState, limit: usize) -> Result<Vec<JobInfo>, QueueError> {
        self.with_connection(move |connection| {
            let store = |operation| move |source| QueueError::Store { operation, source };
            let now = unix_millis(SystemTime::now()) as i64;
            let filter = state_filter(state);
            let sql = format!(
                "SELECT id, idempotency_key, attempts, reason FROM jobs WHERE {filter}
                 ORDER BY seq LIMIT ?2"
            );
            let mut statement = connection.prepare(&sql).map_err(store("prepare list"))?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = statement
                .query_map(params![now, limit], |row| {
                    Ok(JobInfo {
                        id: JobId::from_stored(row.get(0)?),
                        idempotency_key: row.get(1)?,
                        state,
                        attempts: u32::try_from(row.get::<_, i64>(2)?).unwrap_or(u32::MAX),
                        reason: row.get(3)?,
                    })
                })
                .map_err(store("list jobs"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(store("read listed job"))
        })
        .await
    }

    async fn counts(&self) -> Result<QueueCounts, QueueError> {
        self.with_connection(move |connection| {
            let now = unix_millis(SystemTime::now()) as i64;
            let sql = format!(
                "SELECT coalesce(sum({}), 0), coalesce(sum({}), 0), coalesce(sum({}), 0),
                 coalesce(sum({}), 0) FROM jobs",
                state_filter(JobState::Ready),
                state_filter(JobState::Delayed),
                state_filter(JobState::Leased),
                state_filter(JobState::Dead),
            );
            let count = |value: i64| u64::try_from(value).unwrap_or(0);
            connection
                .query_row(&sql, params![now], |row| {
                    Ok(QueueCounts {
                        ready: count(row.get(0)?),
                        delayed: count(row.get(1)?),
                        leased: count(row.get(2)?),
                        dead: count(row.get(3)?),
                    })
                })
                .map_err(|source| QueueError::Store {
                    operation: "count jobs",
                    source,
                })
        })
        .await
    }
}

/// The SQL condition (with `?1` = now in ms) selecting jobs in `state`; an expired lease
/// counts as ready because the next lease will take it.
fn state_filter(state: JobState) -> &'static str {
    match state {
        JobState::Ready => {
            "((state = 'queued' AND not_before <= ?1) OR (state = 'leased' AND lease_until <= ?1))"
        }
        JobState::Delayed => "(state = 'queued' AND not_before > ?1)",
        JobState::Leased => "(state = 'leased' AND lease_until > ?1)",
        // `?1` is bound for every state; mentioning it keeps the parameter count uniform.
        JobState::Dead => "(state = 'dead' AND ?1 IS NOT NULL)",
    }
}
