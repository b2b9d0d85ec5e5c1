//! The integrity and traceability ledger: what happened to every message and document, in a
//! form nobody can rewrite unnoticed.
//!
//! * [`entry`]: what an entry records; [`encoding`]: its canonical, versioned bytes.
//! * [`merkle`]: RFC 6962 leaf/node hashing, inclusion and consistency proofs.
//! * [`checkpoint`]: signed tree heads in the C2SP checkpoint / signed-note format.
//! * [`store`]: durable storage (local files with group commit, or PostgreSQL).
//! * [`verify`]: full recomputation naming the first failure; [`proof`]: third-party bundles.
//!
//! Threat handled: an insider or intruder with write access to the ledger's storage who edits,
//! deletes or reorders entries. Each entry carries the hash of the one before it, and the
//! gateway periodically signs the Merkle root; auditors holding the public key detect any
//! rewrite of attested entries. README.md (beside this file) gives the verification steps.
//! Privacy: the ledger stores INS (compliance officers search by it); log lines about entries
//! carry only sequence numbers and queue ids.

pub mod checkpoint;
pub mod config;
pub mod encoding;
pub mod entry;
pub mod error;
pub mod merkle;
pub mod proof;
pub mod store;
pub mod verify;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use checkpoint::{Checkpoint, CheckpointSigner, CheckpointVerifier};
pub use config::{Backend, LedgerConfig};
pub use entry::{CertIdentity, DocumentDigest, Entry, Event, EventKind, Hash, Outcome};
pub use error::{DecodeError, LedgerError, ProofError};
pub use proof::InclusionBundle;
pub use store::{Lookup, Store};
pub use verify::{VerifyFailure, VerifyReport};

use store::file::{FileStore, Mode};
use store::postgres::PgStore;

/// An open ledger: a store, the checkpoint key and the checkpoint policy.
pub struct Ledger {
    store: Store,
    signer: Option<CheckpointSigner>,
    verifier: CheckpointVerifier,
    origin: String,
    every_entries: u64,
    every_secs: u64,
    last_checkpoint: AtomicU64,
    checkpointing: tokio::sync::Mutex<()>,
}

impl Ledger {
    /// Opens the ledger for the gateway: writable, with the signing key (generated on first use).
    pub async fn open(config: &LedgerConfig, config_dir: &Path) -> Result<Ledger, LedgerError> {
        config.validate()?;
        let store = match config.backend {
            Backend::File => Store::File(FileStore::open(
                &config.dir_in(config_dir),
                Mode::ReadWrite,
            )?),
            Backend::Postgres => Store::Postgres(
                PgStore::open(&config.postgres_url, &config.postgres_schema, true).await?,
            ),
        };
        let (signer, _) = config::load_or_create_key(&config.key_in(config_dir), &config.origin)?;
        Ledger::from_parts(store, Some(signer), None, config).await
    }

    /// Opens the ledger for an audit: read-only storage; the private key is used only if present
    /// (to sign a fresh checkpoint for `prove`), and verification trusts
    /// `trusted_public_key` when configured.
    pub async fn open_for_audit(
        config: &LedgerConfig,
        config_dir: &Path,
    ) -> Result<Ledger, LedgerError> {
        config.validate()?;
        let store = match config.backend {
            Backend::File => {
                Store::File(FileStore::open(&config.dir_in(config_dir), Mode::ReadOnly)?)
            }
            Backend::Postgres => Store::Postgres(
                PgStore::open(&config.postgres_url, &config.postgres_schema, false).await?,
            ),
        };
        let key_path = config.key_in(config_dir);
        let signer = if key_path.exists() {
            Some(config::load_key(&key_path)?)
        } else {
            None
        };
        let verifier = config.verifier(config_dir)?;
        Ledger::from_parts(store, signer, Some(verifier), config).await
    }

    /// Assembles a ledger from an already open store (tests and tools).
    pub async fn from_parts(
        store: Store,
        signer: Option<CheckpointSigner>,
        verifier: Option<CheckpointVerifier>,
        config: &LedgerConfig,
    ) -> Result<Ledger, LedgerError> {
        let verifier = match (verifier, &signer) {
            (Some(verifier), _) => verifier,
            (None, Some(signer)) => signer.verifier(),
            (None, None) => {
                return Err(LedgerError::Config(
                    "no checkpoint key and no trusted public key".into(),
                ));
            }
        };
        // Resume the policy from the newest checkpoint actually stored (not from the head: entries
        // appended after it still need one).
        let last = store
            .checkpoints()
            .await?
            .iter()
            .filter_map(|c| checkpoint::parse_note(&c.note).ok())
            .map(|(c, _)| c.size)
            .max()
            .unwrap_or(0);
        Ok(Ledger {
            store,
            signer,
            verifier,
            origin: config.origin.clone(),
            every_entries: config.checkpoint_every_entries,
            every_secs: config.checkpoint_every_secs,
            last_checkpoint: AtomicU64::new(last),
            checkpointing: tokio::sync::Mutex::new(()),
        })
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The key checkpoints are verified with.
    pub fn verifier(&self) -> &CheckpointVerifier {
        &self.verifier
    }

    /// Records an event durably and returns its entry; signs a checkpoint when the policy says so.
    pub async fn append(&self, event: Event) -> Result<Entry, LedgerError> {
        let entry = self.store.append(event).await?;
        let since = (entry.seq + 1).saturating_sub(self.last_checkpoint.load(Ordering::Relaxed));
        if self.every_entries > 0 && since >= self.every_entries {
            self.checkpoint().await?;
        }
        Ok(entry)
    }

    /// Records events in order, durably, as one batch where the store allows it; signs a
    /// checkpoint when the policy says so.
    pub async fn append_all(&self, events: Vec<Event>) -> Result<Vec<Entry>, LedgerError> {
        let entries = self.store.append_all(events).await?;
        if let Some(last) = entries.last() {
            let since = (last.seq + 1).saturating_sub(self.last_checkpoint.load(Ordering::Relaxed));
            if self.every_entries > 0 && since >= self.every_entries {
                self.checkpoint().await?;
            }
        }
        Ok(entries)
    }

    /// Signs and stores a checkpoint of the current tree if it grew since the last one; returns
    /// the note written, if any.
    pub async fn checkpoint(&self) -> Result<Option<String>, LedgerError> {
        let _one_at_a_time = self.checkpointing.lock().await;
        let (size, root) = self.store.head().await?;
        if size == 0 || size <= self.last_checkpoint.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let note = self.sign(size, root)?;
        self.store.add_checkpoint(size, &note).await?;
        self.last_checkpoint.store(size, Ordering::Relaxed);
        tracing::info!(tree_size = size, "ledger checkpoint signed");
        Ok(Some(note))
    }

    fn sign(&self, size: u64, root: Hash) -> Result<String, LedgerError> {
        let signer = self
            .signer
            .as_ref()
            .ok_or_else(|| LedgerError::Config("no checkpoint signing key available".into()))?;
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
            extensions: vec![format!("timestamp {}", entry::now_ms() / 1000)],
        };
        Ok(signer.sign(&checkpoint))
    }

    /// Starts the periodic checkpoint task (`checkpoint_every_secs`); `None` if disabled.
    pub fn spawn_checkpoint_timer(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if self.every_secs == 0 {
            return None;
        }
        let ledger = Arc::clone(self);
        Some(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(ledger.every_secs));
            ticker.tick().await;
            loop {
                ticker.tick().await;
                if let Err(error) = ledger.checkpoint().await {
                    tracing::error!(%error, "ledger checkpoint failed");
                }
            }
        }))
    }

    /// Recomputes everything; see [`verify::verify`].
    pub async fn verify(
        &self,
        progress: impl FnMut(u64, u64),
    ) -> Result<VerifyReport, LedgerError> {
        verify::verify(&self.store, &self.verifier, progress).await
    }

    /// Decoded entries at the given sequence numbers (undecodable ones are an error).
    pub async fn entries(&self, seqs: &[u64]) -> Result<Vec<Entry>, LedgerError> {
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            out.push(self.entry(*seq).await?);
        }
        Ok(out)
    }

    /// The entry at `seq`.
    pub async fn entry(&self, seq: u64) -> Result<Entry, LedgerError> {
        let raw = self.raw(seq).await?;
        encoding::decode(&raw.bytes).map_err(|source| LedgerError::Decode { seq, source })
    }

    async fn raw(&self, seq: u64) -> Result<store::RawEntry, LedgerError> {
        let (size, _) = self.store.head().await?;
        let mut page = self.store.read_raw(seq, 1).await?;
        match page.pop() {
            Some(raw) if raw.position == seq => Ok(raw),
            _ => Err(LedgerError::NoSuchEntry { seq, size }),
        }
    }

    /// A message's whole story: entries with this Message-ID or queue id, and every entry of the
    /// queue ids those carry, in time order.
    pub async fn trace(&self, id: &str) -> Result<Vec<Entry>, LedgerError> {
        let mut seqs = self.store.find(&Lookup::QueueId(id.to_string())).await?;
        seqs.extend(self.store.find(&Lookup::MessageId(id.to_string())).await?);
        seqs.sort_unstable();
        seqs.dedup();
        let mut entries = self.entries(&seqs).await?;
        let queue_ids: Vec<String> = entries
            .iter()
            .filter_map(|e| e.event.queue_id.clone())
            .collect();
        for queue_id in queue_ids {
            for seq in self.store.find(&Lookup::QueueId(queue_id)).await? {
                if !seqs.contains(&seq) {
                    seqs.push(seq);
                    entries.push(self.entry(seq).await?);
                }
            }
        }
        entries.sort_by_key(|e| (e.time_ms, e.seq));
        Ok(entries)
    }

    /// Entries matching a lookup, in ledger order.
    pub async fn find(&self, lookup: &Lookup) -> Result<Vec<Entry>, LedgerError> {
        let seqs = self.store.find(lookup).await?;
        self.entries(&seqs).await
    }

    /// An inclusion proof for entry `seq` against the latest stored checkpoint that covers it,
    /// or a freshly signed one (stored when the ledger is writable).
    pub async fn prove(&self, seq: u64) -> Result<InclusionBundle, LedgerError> {
        let raw = self.raw(seq).await?;
        let mut best: Option<(u64, String)> = None;
        for stored in self.store.checkpoints().await? {
            if let Ok(checkpoint) = self.verifier.verify(&stored.note)
                && checkpoint.size > seq
                && best
                    .as_ref()
                    .is_none_or(|(size, _)| checkpoint.size > *size)
            {
                best = Some((checkpoint.size, stored.note));
            }
        }
        let (size, note) = match best {
            Some(found) => found,
            None => {
                let (size, root) = self.store.head().await?;
                let note = self.sign(size, root)?;
                // A read-only audit cannot store it; the signed note stands on its own anyway.
                match self.store.add_checkpoint(size, &note).await {
                    Ok(()) | Err(LedgerError::ReadOnly) => {}
                    Err(other) => return Err(other),
                }
                (size, note)
            }
        };
        let leaves = self.store.leaf_hashes(size).await?;
        let path = merkle::inclusion_path(&leaves, seq as usize)?;
        Ok(InclusionBundle::new(seq, size, &raw.bytes, &path, note))
    }

    /// A consistency proof between tree sizes `first` and `second` (for auditors comparing two
    /// checkpoints).
    pub async fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<Vec<Hash>, LedgerError> {
        let leaves = self.store.leaf_hashes(second).await?;
        if (leaves.len() as u64) < second {
            return Err(LedgerError::NoSuchEntry {
                seq: second.saturating_sub(1),
                size: leaves.len() as u64,
            });
        }
        Ok(merkle::consistency_proof(&leaves, first as usize)?)
    }
}
