//! The shared backend: one ledger in PostgreSQL for several gateway nodes.
//!
//! Appends are serialised by the database: each batch runs in one transaction that first takes
//! the row lock on the single `head` row (`SELECT … FOR UPDATE`), so every node sees the true
//! last sequence number, chain link and Merkle frontier, and no two nodes can give out the same
//! number. Each node batches its own concurrent appends into one transaction (one commit, one
//! WAL flush), the same group commit as the file backend. Tables live in a schema named in the
//! config, so tests (and separate ledgers) never collide.

use tokio::sync::mpsc;
use tokio_postgres::{Client, NoTls};

use super::{Lookup, RawEntry, Request, StoredCheckpoint, submit_all};
use crate::ledger::encoding;
use crate::ledger::entry::{Entry, Event, Hash, now_ms};
use crate::ledger::error::LedgerError;
use crate::ledger::merkle::{Frontier, leaf_hash};

/// Most appends committed in one transaction.
const MAX_BATCH: usize = 1024;

/// The PostgreSQL-backed ledger store.
pub struct PgStore {
    reader: Client,
    schema: String,
    writer: Option<mpsc::UnboundedSender<Request>>,
}

/// Checks a schema name: lowercase ASCII letters, digits and `_`, starting with a letter.
pub fn check_schema(schema: &str) -> Result<(), LedgerError> {
    let ok = !schema.is_empty()
        && schema.len() <= 48
        && schema.starts_with(|c: char| c.is_ascii_lowercase())
        && schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(LedgerError::Config(format!(
            "postgres_schema {schema:?} must be 1-48 lowercase letters, digits or '_', starting with a letter"
        )))
    }
}

async fn connect(url: &str) -> Result<Client, LedgerError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| LedgerError::pg("connect", e))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "ledger PostgreSQL connection ended");
        }
    });
    Ok(client)
}

impl PgStore {
    /// Connects, creates the schema and tables if absent, and (if `writable`) starts the writer.
    pub async fn open(url: &str, schema: &str, writable: bool) -> Result<PgStore, LedgerError> {
        check_schema(schema)?;
        let mut reader = connect(url).await?;
        if writable {
            create_schema(&mut reader, schema).await?;
        } else {
            // An audit changes nothing, not even by creating an empty ledger.
            let found = reader
                .query_opt(
                    "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'head'",
                    &[&schema],
                )
                .await
                .map_err(|e| LedgerError::pg("look for the ledger schema", e))?;
            if found.is_none() {
                return Err(LedgerError::Config(format!(
                    "no ledger in PostgreSQL schema {schema:?}"
                )));
            }
        }
        let writer = if writable {
            let client = connect(url).await?;
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(writer_loop(client, url.to_string(), schema.to_string(), rx));
            Some(tx)
        } else {
            None
        };
        Ok(PgStore {
            reader,
            schema: schema.to_string(),
            writer,
        })
    }

    /// Drops a ledger schema and everything in it (tests and decommissioning only).
    pub async fn drop_schema(url: &str, schema: &str) -> Result<(), LedgerError> {
        check_schema(schema)?;
        let client = connect(url).await?;
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await
            .map_err(|e| LedgerError::pg("drop schema", e))
    }

    /// Appends an event; returns once its transaction has committed.
    pub async fn append(&self, event: Event) -> Result<Entry, LedgerError> {
        let mut entries = self.append_all(vec![event]).await?;
        entries
            .pop()
            .ok_or_else(|| LedgerError::WriterStopped("no entry returned".into()))
    }

    /// Appends several events in this order; they share one transaction when the writer is
    /// idle (its group commit).
    pub async fn append_all(&self, events: Vec<Event>) -> Result<Vec<Entry>, LedgerError> {
        let writer = self.writer.as_ref().ok_or(LedgerError::ReadOnly)?;
        submit_all(events, |request| writer.send(request).is_ok()).await
    }

    /// Number of entries and current root.
    pub async fn head(&self) -> Result<(u64, Hash), LedgerError> {
        let row = self
            .reader
            .query_one(
                &format!(
                    "SELECT size, frontier FROM {}.head WHERE id = 1",
                    self.schema
                ),
                &[],
            )
            .await
            .map_err(|e| LedgerError::pg("read head", e))?;
        let frontier = frontier_from(row.get(0), row.get(1))?;
        Ok((frontier.size(), frontier.root()))
    }

    /// Up to `limit` rows in sequence order from the sequence number `start`.
    pub async fn read_raw(&self, start: u64, limit: usize) -> Result<Vec<RawEntry>, LedgerError> {
        let rows = self
            .reader
            .query(
                &format!(
                    "SELECT seq, entry, leaf_hash FROM {}.entries WHERE seq >= $1 ORDER BY seq LIMIT $2",
                    self.schema
                ),
                &[&to_i64(start), &(limit as i64)],
            )
            .await
            .map_err(|e| LedgerError::pg("read entries", e))?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let leaf: Vec<u8> = row.get(2);
                RawEntry {
                    position: row.get::<_, i64>(0) as u64,
                    bytes: row.get(1),
                    damage: None,
                    stored_leaf_hash: leaf.try_into().ok(),
                }
            })
            .collect())
    }

    /// Sequence numbers matching a lookup, in order.
    pub async fn find(&self, lookup: &Lookup) -> Result<Vec<u64>, LedgerError> {
        let s = &self.schema;
        let rows = match lookup {
            Lookup::QueueId(id) => {
                let sql = format!("SELECT seq FROM {s}.entries WHERE queue_id = $1 ORDER BY seq");
                self.reader.query(&sql, &[id]).await
            }
            Lookup::MessageId(id) => {
                let sql = format!("SELECT seq FROM {s}.entries WHERE message_id = $1 ORDER BY seq");
                self.reader.query(&sql, &[id]).await
            }
            Lookup::Ins(ins) => {
                let sql =
                    format!("SELECT seq FROM {s}.entries WHERE patient_ins = $1 ORDER BY seq");
                self.reader.query(&sql, &[ins]).await
            }
            Lookup::Time { since_ms, until_ms } => {
                let sql = format!(
                    "SELECT seq FROM {s}.entries WHERE time_ms >= $1 AND time_ms < $2 ORDER BY seq"
                );
                self.reader
                    .query(&sql, &[&to_i64(*since_ms), &to_i64(*until_ms)])
                    .await
            }
        }
        .map_err(|e| LedgerError::pg("look up entries", e))?;
        Ok(rows
            .into_iter()
            .map(|row| row.get::<_, i64>(0) as u64)
            .collect())
    }

    /// The stored leaf hashes of the first `size` entries.
    pub async fn leaf_hashes(&self, size: u64) -> Result<Vec<Hash>, LedgerError> {
        let rows = self
            .reader
            .query(
                &format!(
                    "SELECT leaf_hash FROM {}.entries WHERE seq < $1 ORDER BY seq",
                    self.schema
                ),
                &[&to_i64(size)],
            )
            .await
            .map_err(|e| LedgerError::pg("read leaf hashes", e))?;
        Ok(rows
            .into_iter()
            .map(|row| row.get::<_, Vec<u8>>(0).try_into().unwrap_or([0; 32]))
            .collect())
    }

    /// Records a signed checkpoint note.
    pub async fn add_checkpoint(&self, size: u64, note: &str) -> Result<(), LedgerError> {
        self.reader
            .execute(
                &format!(
                    "INSERT INTO {}.checkpoints (tree_size, note) VALUES ($1, $2)",
                    self.schema
                ),
                &[&to_i64(size), &note],
            )
            .await
            .map_err(|e| LedgerError::pg("store checkpoint", e))?;
        Ok(())
    }

    /// Every stored checkpoint note, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>, LedgerError> {
        let rows = self
            .reader
            .query(
                &format!("SELECT note FROM {}.checkpoints ORDER BY id", self.schema),
                &[],
            )
            .await
            .map_err(|e| LedgerError::pg("read checkpoints", e))?;
        Ok(rows
            .into_iter()
            .map(|row| StoredCheckpoint { note: row.get(0) })
            .collect())
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn frontier_from(size: i64, bytes: Vec<u8>) -> Result<Frontier, LedgerError> {
    Frontier::from_parts(size as u64, &bytes)
        .ok_or_else(|| LedgerError::Config("PostgreSQL ledger head row is inconsistent".into()))
}

async fn create_schema(client: &mut Client, s: &str) -> Result<(), LedgerError> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| LedgerError::pg("begin schema creation", e))?;
    // Two nodes starting at once would race on CREATE … IF NOT EXISTS; the advisory lock orders them.
    tx.execute("SELECT pg_advisory_xact_lock(hashtext($1::text))", &[&s])
        .await
        .map_err(|e| LedgerError::pg("lock schema creation", e))?;
    let ddl = format!(
        "CREATE SCHEMA IF NOT EXISTS {s};
         CREATE TABLE IF NOT EXISTS {s}.head (
             id smallint PRIMARY KEY CHECK (id = 1),
             size bigint NOT NULL,
             last_leaf bytea NOT NULL,
             last_time bigint NOT NULL,
             frontier bytea NOT NULL);
         INSERT INTO {s}.head VALUES (1, 0, decode(repeat('00', 32), 'hex'), 0, '') ON CONFLICT DO NOTHING;
         CREATE TABLE IF NOT EXISTS {s}.entries (
             seq bigint PRIMARY KEY,
             time_ms bigint NOT NULL,
             entry bytea NOT NULL,
             leaf_hash bytea NOT NULL,
             queue_id text,
             message_id text,
             patient_ins text);
         CREATE INDEX IF NOT EXISTS entries_queue_id ON {s}.entries (queue_id) WHERE queue_id IS NOT NULL;
         CREATE INDEX IF NOT EXISTS entries_message_id ON {s}.entries (message_id) WHERE message_id IS NOT NULL;
         CREATE INDEX IF NOT EXISTS entries_patient_ins ON {s}.entries (patient_ins) WHERE patient_ins IS NOT NULL;
         CREATE INDEX IF NOT EXISTS entries_time ON {s}.entries (time_ms);
         CREATE TABLE IF NOT EXISTS {s}.checkpoints (
             id bigserial PRIMARY KEY,
             tree_size bigint NOT NULL,
             note text NOT NULL);"
    );
    tx.batch_execute(&ddl)
        .await
        .map_err(|e| LedgerError::pg("create schema", e))?;
    tx.commit()
        .await
        .map_err(|e| LedgerError::pg("commit schema creation", e))
}

async fn writer_loop(
    mut client: Client,
    url: String,
    schema: String,
    mut rx: mpsc::UnboundedReceiver<Request>,
) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        if client.is_closed() {
            // The server restarted or the network dropped: one fresh connection per batch.
            match connect(&url).await {
                Ok(fresh) => client = fresh,
                Err(error) => {
                    let why = error.to_string();
                    for request in batch {
                        let _ = request
                            .reply
                            .send(Err(LedgerError::WriterStopped(why.clone())));
                    }
                    continue;
                }
            }
        }
        let events: Vec<Event> = batch.iter().map(|r| r.event.clone()).collect();
        match append_batch(&mut client, &schema, events).await {
            Ok(results) => {
                for (request, result) in batch.into_iter().zip(results) {
                    if let Ok(entry) = &result {
                        tracing::debug!(
                            seq = entry.seq,
                            queue_id = entry.event.queue_id.as_deref().unwrap_or(""),
                            "ledger entry committed"
                        );
                    }
                    let _ = request.reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, "ledger PostgreSQL append failed");
                let why = error.to_string();
                for request in batch {
                    let _ = request
                        .reply
                        .send(Err(LedgerError::WriterStopped(why.clone())));
                }
            }
        }
    }
}

/// A batch of rows, column by column, for one `INSERT … SELECT FROM unnest(…)`.
#[derive(Default)]
struct Rows {
    seq: Vec<i64>,
    time_ms: Vec<i64>,
    entry: Vec<Vec<u8>>,
    leaf_hash: Vec<Vec<u8>>,
    queue_id: Vec<Option<String>>,
    message_id: Vec<Option<String>>,
    patient_ins: Vec<Option<String>>,
}

impl Rows {
    fn push(&mut self, entry: &Entry, bytes: Vec<u8>, leaf: Hash) {
        self.seq.push(to_i64(entry.seq));
        self.time_ms.push(to_i64(entry.time_ms));
        self.entry.push(bytes);
        self.leaf_hash.push(leaf.to_vec());
        self.queue_id.push(entry.event.queue_id.clone());
        self.message_id.push(entry.event.message_id.clone());
        self.patient_ins.push(entry.event.patient_ins.clone());
    }
}

/// One transaction for a batch; per-event encoding errors are answered without failing the rest.
async fn append_batch(
    client: &mut Client,
    s: &str,
    events: Vec<Event>,
) -> Result<Vec<Result<Entry, LedgerError>>, LedgerError> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| LedgerError::pg("begin append", e))?;
    let head = tx
        .query_one(
            &format!(
                "SELECT size, last_leaf, last_time, frontier FROM {s}.head WHERE id = 1 FOR UPDATE"
            ),
            &[],
        )
        .await
        .map_err(|e| LedgerError::pg("lock head", e))?;
    let mut frontier = frontier_from(head.get(0), head.get(3))?;
    let mut prev: Hash = head
        .get::<_, Vec<u8>>(1)
        .try_into()
        .map_err(|_| LedgerError::Config("PostgreSQL ledger head row is inconsistent".into()))?;
    let mut time = head.get::<_, i64>(2) as u64;
    let mut results = Vec::with_capacity(events.len());
    let mut rows = Rows::default();
    for event in events {
        time = now_ms().max(time);
        let entry = Entry {
            seq: frontier.size(),
            time_ms: time,
            prev_hash: prev,
            event,
        };
        let bytes = match encoding::encode(&entry) {
            Ok(bytes) => bytes,
            Err(e) => {
                results.push(Err(LedgerError::Encode(e)));
                continue;
            }
        };
        let leaf = leaf_hash(&bytes);
        rows.push(&entry, bytes, leaf);
        frontier.push(leaf);
        prev = leaf;
        results.push(Ok(entry));
    }
    // One statement for the whole batch: a single round trip however many writers joined it.
    tx.execute(
        &format!(
            "INSERT INTO {s}.entries (seq, time_ms, entry, leaf_hash, queue_id, message_id, patient_ins) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[], $5::text[], $6::text[], $7::text[])"
        ),
        &[
            &rows.seq,
            &rows.time_ms,
            &rows.entry,
            &rows.leaf_hash,
            &rows.queue_id,
            &rows.message_id,
            &rows.patient_ins,
        ],
    )
    .await
    .map_err(|e| LedgerError::pg("insert entries", e))?;
    tx.execute(
        &format!("UPDATE {s}.head SET size = $1, last_leaf = $2, last_time = $3, frontier = $4 WHERE id = 1"),
        &[&to_i64(frontier.size()), &prev.as_slice(), &to_i64(time), &frontier.to_bytes()],
    )
    .await
    .map_err(|e| LedgerError::pg("update head", e))?;
    tx.commit()
        .await
        .map_err(|e| LedgerError::pg("commit append", e))?;
    Ok(results)
}
