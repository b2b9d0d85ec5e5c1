//! Where entries and checkpoints are kept: an embedded file backend and a PostgreSQL backend.
//!
//! The set of backends is closed and small, so [`Store`] is an enum rather than a trait object:
//! no boxed futures, and every caller gets the same contract: `append` returns only once the
//! entry is durable, with its sequence number, time and chain link assigned by the store.

pub mod file;
pub mod frame;
pub mod postgres;

use super::entry::{Entry, Event, Hash};
use super::error::LedgerError;

/// One stored entry as bytes, before any decoding (what `verify` must recompute from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// Where the store keeps it (frame index in the file, `seq` column in PostgreSQL); reading
    /// continues from `position + 1`.
    pub position: u64,
    /// The canonical entry bytes as stored.
    pub bytes: Vec<u8>,
    /// A storage-level problem (checksum mismatch, unreadable frame), if any.
    pub damage: Option<String>,
    /// The leaf hash the store recorded at append time, if it keeps one.
    pub stored_leaf_hash: Option<Hash>,
}

/// A stored signed checkpoint note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The note text as stored.
    pub note: String,
}

/// An index lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lookup {
    /// Entries with this spool queue id.
    QueueId(String),
    /// Entries with this Message-ID.
    MessageId(String),
    /// Entries concerning this patient INS.
    Ins(String),
    /// Entries with `since_ms <= time_ms < until_ms`.
    Time {
        /// Inclusive lower bound, ms since the epoch.
        since_ms: u64,
        /// Exclusive upper bound, ms since the epoch.
        until_ms: u64,
    },
}

/// One event handed to a store's writer, with where to send its entry.
pub(super) struct Request {
    pub(super) event: Event,
    pub(super) reply: tokio::sync::oneshot::Sender<Result<Entry, LedgerError>>,
}

/// Queues every event to a writer (through `send`, false when the writer is gone) before
/// awaiting any answer, so they are written in order and can share one commit.
pub(super) async fn submit_all(
    events: Vec<Event>,
    send: impl Fn(Request) -> bool,
) -> Result<Vec<Entry>, LedgerError> {
    let stopped = || LedgerError::WriterStopped("ledger writer ended".into());
    let mut answers = Vec::with_capacity(events.len());
    for event in events {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if !send(Request { event, reply }) {
            return Err(stopped());
        }
        answers.push(answer);
    }
    let mut entries = Vec::with_capacity(answers.len());
    for answer in answers {
        entries.push(answer.await.map_err(|_| stopped())??);
    }
    Ok(entries)
}

/// A ledger store: one of the backends.
pub enum Store {
    /// Local segment files.
    File(file::FileStore),
    /// A shared PostgreSQL database.
    Postgres(postgres::PgStore),
}

impl Store {
    /// Appends an event; returns the entry once it is durable.
    pub async fn append(&self, event: Event) -> Result<Entry, LedgerError> {
        match self {
            Store::File(store) => store.append(event).await,
            Store::Postgres(store) => store.append(event).await,
        }
    }

    /// Appends events in order; returns their entries once all are durable.
    pub async fn append_all(&self, events: Vec<Event>) -> Result<Vec<Entry>, LedgerError> {
        match self {
            Store::File(store) => store.append_all(events).await,
            Store::Postgres(store) => store.append_all(events).await,
        }
    }

    /// Number of entries and the current Merkle root.
    pub async fn head(&self) -> Result<(u64, Hash), LedgerError> {
        match self {
            Store::File(store) => Ok(store.head()),
            Store::Postgres(store) => store.head().await,
        }
    }

    /// Up to `limit` raw entries from storage position `start`.
    pub async fn read_raw(&self, start: u64, limit: usize) -> Result<Vec<RawEntry>, LedgerError> {
        match self {
            Store::File(store) => store.read_raw(start, limit).await,
            Store::Postgres(store) => store.read_raw(start, limit).await,
        }
    }

    /// Sequence numbers matching a lookup, in ledger order.
    pub async fn find(&self, lookup: &Lookup) -> Result<Vec<u64>, LedgerError> {
        match self {
            Store::File(store) => Ok(store.find(lookup)),
            Store::Postgres(store) => store.find(lookup).await,
        }
    }

    /// Leaf hashes of the first `size` entries (for proofs).
    pub async fn leaf_hashes(&self, size: u64) -> Result<Vec<Hash>, LedgerError> {
        match self {
            Store::File(store) => Ok(store.leaf_hashes(size)),
            Store::Postgres(store) => store.leaf_hashes(size).await,
        }
    }

    /// Stores a signed checkpoint note for tree size `size`.
    pub async fn add_checkpoint(&self, size: u64, note: &str) -> Result<(), LedgerError> {
        match self {
            Store::File(store) => store.add_checkpoint(note),
            Store::Postgres(store) => store.add_checkpoint(size, note).await,
        }
    }

    /// Every stored checkpoint, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, LedgerError> {
        match self {
            Store::File(store) => Ok(store.checkpoints()),
            Store::Postgres(store) => store.checkpoints().await,
        }
    }
}
