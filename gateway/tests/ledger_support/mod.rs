//! Shared fixtures for the ledger tests: one ledger per test on either backend, synthetic
//! events, and the tampering an attacker with storage access could do.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use gateway::ledger::store::file::{CHECKPOINTS_FILE, ENTRIES_FILE};
use gateway::ledger::store::frame;
use gateway::ledger::store::postgres::PgStore;
use gateway::ledger::{
    Backend, CertIdentity, DocumentDigest, Event, EventKind, Ledger, LedgerConfig, Outcome,
};

/// The test database: local PostgreSQL, trust authentication.
pub const PG_URL: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

/// One test's ledger location.
pub struct Fixture {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub config: LedgerConfig,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if self.backend != Backend::Postgres {
            return;
        }
        // Drop may run inside a runtime (or while unwinding): use a thread with its own.
        let schema = self.config.postgres_schema.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = runtime.block_on(PgStore::drop_schema(PG_URL, &schema));
        })
        .join();
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Fixture {
    /// A fresh, empty ledger on `backend`, with manual checkpoints.
    pub fn new(backend: Backend) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let schema = format!(
            "ledger_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            gateway::ledger::entry::now_ms() % 1_000_000
        );
        let config = LedgerConfig {
            backend,
            dir: PathBuf::from("ledger"),
            checkpoint_key: PathBuf::from("keys/checkpoint.key"),
            checkpoint_every_entries: 0,
            checkpoint_every_secs: 0,
            postgres_url: PG_URL.into(),
            postgres_schema: schema,
            ..LedgerConfig::default()
        };
        Fixture {
            backend,
            dir,
            config,
        }
    }

    /// The directory relative paths in the config are resolved against.
    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The writable ledger (the gateway's view).
    pub async fn open(&self) -> Ledger {
        Ledger::open(&self.config, self.config_dir()).await.unwrap()
    }

    /// The read-only ledger (the auditor's view).
    pub async fn audit(&self) -> Ledger {
        Ledger::open_for_audit(&self.config, self.config_dir())
            .await
            .unwrap()
    }

    pub fn entries_path(&self) -> PathBuf {
        self.config.dir_in(self.config_dir()).join(ENTRIES_FILE)
    }

    pub fn checkpoints_path(&self) -> PathBuf {
        self.config.dir_in(self.config_dir()).join(CHECKPOINTS_FILE)
    }

    /// Ends the test's use of the ledger (the schema goes in `Drop`, even when a test fails).
    pub async fn cleanup(self) {
        drop(self);
    }

    async fn pg(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(PG_URL, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }

    /// Flips one byte of entry `seq`'s canonical bytes at `offset` (from the end when negative),
    /// the way an attacker would: the file frame's checksum is recomputed to match.
    pub async fn flip_byte(&self, seq: u64, offset_from_end: usize) {
        match self.backend {
            Backend::File => self.rewrite_frames(|frames| {
                let bytes = &mut frames[seq as usize];
                let at = bytes.len() - offset_from_end;
                bytes[at] ^= 0x20;
            }),
            Backend::Postgres => {
                let client = self.pg().await;
                let s = &self.config.postgres_schema;
                let row = client
                    .query_one(
                        &format!("SELECT entry FROM {s}.entries WHERE seq = $1"),
                        &[&(seq as i64)],
                    )
                    .await
                    .unwrap();
                let mut bytes: Vec<u8> = row.get(0);
                let at = bytes.len() - offset_from_end;
                bytes[at] ^= 0x20;
                client
                    .execute(
                        &format!("UPDATE {s}.entries SET entry = $1 WHERE seq = $2"),
                        &[&bytes, &(seq as i64)],
                    )
                    .await
                    .unwrap();
            }
        }
    }

    /// Flips one byte in the file without fixing the frame checksum (disk corruption).
    pub fn flip_raw_byte(&self, seq: u64) {
        let mut frames = Vec::new();
        let data = std::fs::read(self.entries_path()).unwrap();
        frame::scan(&data[..], data.len() as u64, |f| frames.push(f.offset)).unwrap();
        let mut data = data;
        let at = frames[seq as usize] as usize + frame::HEADER_LEN + 60;
        data[at] ^= 0x01;
        std::fs::write(self.entries_path(), data).unwrap();
    }

    /// Removes entry `seq`.
    pub async fn delete(&self, seq: u64) {
        match self.backend {
            Backend::File => self.rewrite_frames(|frames| {
                frames.remove(seq as usize);
            }),
            Backend::Postgres => {
                let client = self.pg().await;
                let s = &self.config.postgres_schema;
                client
                    .execute(
                        &format!("DELETE FROM {s}.entries WHERE seq = $1"),
                        &[&(seq as i64)],
                    )
                    .await
                    .unwrap();
            }
        }
    }

    /// Removes every entry from `seq` on (and, in PostgreSQL, fixes up nothing else).
    pub async fn truncate(&self, seq: u64) {
        match self.backend {
            Backend::File => self.rewrite_frames(|frames| frames.truncate(seq as usize)),
            Backend::Postgres => {
                let client = self.pg().await;
                let s = &self.config.postgres_schema;
                client
                    .execute(
                        &format!("DELETE FROM {s}.entries WHERE seq >= $1"),
                        &[&(seq as i64)],
                    )
                    .await
                    .unwrap();
            }
        }
    }

    /// Swaps the stored order of entries `seq` and `seq + 1`.
    pub async fn swap(&self, seq: u64) {
        match self.backend {
            Backend::File => {
                self.rewrite_frames(|frames| frames.swap(seq as usize, seq as usize + 1))
            }
            Backend::Postgres => {
                // Rows are read by their seq column: exchanging the contents reorders them.
                let client = self.pg().await;
                let s = &self.config.postgres_schema;
                client
                    .batch_execute(&format!(
                        "UPDATE {s}.entries AS a SET entry = b.entry, leaf_hash = b.leaf_hash, time_ms = b.time_ms \
                         FROM {s}.entries AS b \
                         WHERE (a.seq, b.seq) IN (({x}, {y}), ({y}, {x}))",
                        x = seq,
                        y = seq + 1
                    ))
                    .await
                    .unwrap();
            }
        }
    }

    /// Replaces the checkpoint key files with a new key (as an intruder covering tracks would).
    pub fn replace_key(&self) {
        let path = self.config.key_in(self.config_dir());
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(path.with_extension("pub")).unwrap();
        std::fs::remove_file(path.with_extension("pub.pem")).unwrap();
        gateway::ledger::config::load_or_create_key(&path, &self.config.origin).unwrap();
    }

    fn rewrite_frames(&self, change: impl FnOnce(&mut Vec<Vec<u8>>)) {
        let path = self.entries_path();
        let data = std::fs::read(&path).unwrap();
        let mut frames = Vec::new();
        frame::scan(&data[..], data.len() as u64, |f| frames.push(f.payload)).unwrap();
        change(&mut frames);
        let mut out = Vec::new();
        for payload in &frames {
            frame::push_frame(&mut out, payload);
        }
        std::fs::write(&path, out).unwrap();
    }
}

/// The synthetic INS of patient `p` (messages `n` concern patient `n % 3`).
pub fn ins(p: u32) -> String {
    format!("2{:014}", 80_000_000 + p)
}

/// A synthetic event for message `n` at step `kind` (patients, hospitals and ids are fictitious).
pub fn event(n: u32, kind: EventKind) -> Event {
    let mut event = Event::new(kind);
    event.queue_id = Some(format!("Q{n:015}"));
    event.message_id = Some(format!("<synthetic-{n}@hopital-a.mssante.test>"));
    event.message_sha256 = Some([n as u8; 32]);
    event.patient_ins = Some(ins(n % 3));
    event.tls_peer = Some(CertIdentity {
        subject: "CN=hopital-a.mssante.test,O=HOPITAL A TEST".into(),
        issuer: "CN=TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS".into(),
        serial: format!("{n:04x}"),
    });
    if kind == EventKind::DocumentsExtracted {
        event.documents.push(DocumentDigest {
            name: format!("CR-{n}.xml"),
            sha256: [0xd0; 32],
        });
    }
    if kind == EventKind::Deposited {
        event.dmp_ids.push(format!("1.2.250.1.999.{n}"));
    }
    if kind == EventKind::Rejected {
        event.outcome = Outcome::PermanentFailure;
    }
    event.reason = Some(format!("step {} of message {n}", kind.name()));
    event
}

/// Appends the story of `messages` messages (received, verified, queued) one after another.
pub async fn fill(ledger: &Ledger, messages: u32) {
    for n in 0..messages {
        for kind in [EventKind::Received, EventKind::Verified, EventKind::Queued] {
            ledger.append(event(n, kind)).await.unwrap();
        }
    }
}
