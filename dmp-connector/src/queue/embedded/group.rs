//! Group commit of the embedded queue's writes: concurrent enqueues, acks, retries and
//! dead-letters share one transaction and so one WAL fsync.
//!
//! The first writer to find no flush running becomes the leader and starts a blocking flush;
//! writers arriving meanwhile join the next batch. Each write runs in its own savepoint, so a
//! failed write (a lost lease) does not undo its neighbours; nobody is answered before the
//! batch's commit returned, so an `Ok` still means "on disk".

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};
use tokio::sync::oneshot;

use super::Inner;
use crate::queue::{Enqueued, JobId, NewJob, QueueError, unix_millis};

/// One write to group.
#[derive(Debug)]
pub(super) enum Write {
    /// Insert a job unless its key is live.
    Enqueue(NewJob),
    /// Run `sql` (`?1` = id, `?2` = lease token, then `extra`) on a leased row.
    Settle {
        id: JobId,
        token: String,
        operation: &'static str,
        sql: &'static str,
        extra: Vec<Value>,
    },
}

/// The answer to one write.
#[derive(Debug)]
pub(super) enum Written {
    Enqueued(Enqueued),
    Settled,
}

#[derive(Debug)]
struct Pending {
    write: Write,
    reply: oneshot::Sender<Result<Written, QueueError>>,
}

/// Writes waiting for the next batch.
#[derive(Debug, Default)]
pub(super) struct Group {
    pending: Vec<Pending>,
    flushing: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic mid-batch leaves SQLite to roll the transaction back; the guarded values are
    // only swapped whole, so they stay usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Queues `write` for the next batch and waits for its durable answer.
pub(super) async fn submit(inner: &Arc<Inner>, write: Write) -> Result<Written, QueueError> {
    let (reply, answer) = oneshot::channel();
    let lead = {
        let mut group = lock(&inner.group);
        group.pending.push(Pending { write, reply });
        !std::mem::replace(&mut group.flushing, true)
    };
    if lead {
        let inner = Arc::clone(inner);
        // Detached on purpose: the batch must finish even if this caller is cancelled.
        tokio::task::spawn_blocking(move || flush(&inner));
    }
    answer
        .await
        .map_err(|_| QueueError::Task("group commit ended without an answer".to_owned()))?
}

/// Resets the flushing flag if a flush panics, so later writers start a new one.
struct PanicGuard<'a>(&'a Inner);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            lock(&self.0.group).flushing = false;
        }
    }
}

fn flush(inner: &Inner) {
    let _guard = PanicGuard(inner);
    loop {
        let batch = {
            let mut group = lock(&inner.group);
            if group.pending.is_empty() {
                group.flushing = false;
                return;
            }
            std::mem::take(&mut group.pending)
        };
        let mut connection = lock(&inner.connection);
        commit_batch(&mut connection, batch);
    }
}

fn commit_batch(connection: &mut Connection, batch: Vec<Pending>) {
    let fail_all = |batch: Vec<Pending>, operation: &'static str, error: &rusqlite::Error| {
        for pending in batch {
            let _ = pending.reply.send(Err(QueueError::CommitFailed {
                operation,
                detail: error.to_string(),
            }));
        }
    };
    let transaction = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(transaction) => transaction,
        Err(error) => return fail_all(batch, "begin batch", &error),
    };
    let mut answers = Vec::with_capacity(batch.len());
    for pending in batch {
        let result = apply(&transaction, pending.write);
        answers.push((pending.reply, result));
    }
    match transaction.commit() {
        Ok(()) => {
            for (reply, result) in answers {
                let _ = reply.send(result);
            }
        }
        Err(error) => {
            for (reply, _) in answers {
                let _ = reply.send(Err(QueueError::CommitFailed {
                    operation: "commit batch",
                    detail: error.to_string(),
                }));
            }
        }
    }
}

/// Runs one write in a savepoint of the batch.
fn apply(transaction: &rusqlite::Transaction<'_>, write: Write) -> Result<Written, QueueError> {
    let store = |operation| move |source| QueueError::Store { operation, source };
    transaction
        .execute_batch("SAVEPOINT write")
        .map_err(store("open savepoint"))?;
    let result = apply_in(transaction, write);
    let end = if result.is_ok() {
        "RELEASE write"
    } else {
        "ROLLBACK TO write; RELEASE write"
    };
    transaction
        .execute_batch(end)
        .map_err(store("close savepoint"))?;
    result
}

fn apply_in(connection: &Connection, write: Write) -> Result<Written, QueueError> {
    let store = |operation| move |source| QueueError::Store { operation, source };
    match write {
        Write::Enqueue(job) => {
            let existing = connection
                .query_row(
                    "SELECT id FROM jobs WHERE idempotency_key = ?1 AND state != 'dead'",
                    params![job.idempotency_key],
                    |row| row.get::<_, String>(0),
                )
                .optional()
                .map_err(store("look up idempotency key"))?;
            if let Some(id) = existing {
                return Ok(Written::Enqueued(Enqueued::Duplicate(JobId::from_stored(
                    id,
                ))));
            }
            let id = JobId::generate();
            let now = unix_millis(SystemTime::now()) as i64;
            connection
                .execute(
                    "INSERT INTO jobs (id, idempotency_key, payload, state, not_before,
                     enqueued_at) VALUES (?1, ?2, ?3, 'queued', ?4, ?4)",
                    params![id.as_str(), job.idempotency_key, job.payload, now],
                )
                .map_err(store("insert job"))?;
            Ok(Written::Enqueued(Enqueued::New(id)))
        }
        Write::Settle {
            id,
            token,
            operation,
            sql,
            extra,
        } => {
            let mut values = vec![Value::Text(id.as_str().to_owned()), Value::Text(token)];
            values.extend(extra);
            let changed = connection
                .execute(sql, params_from_iter(values))
                .map_err(|source| QueueError::Store { operation, source })?;
            if changed == 0 {
                return Err(QueueError::LeaseLost { job: id });
            }
            Ok(Written::Settled)
        }
    }
}
