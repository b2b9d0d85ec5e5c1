//! The embedded backend: one append-only segment file of framed entries, one of checkpoints.
//!
//! Durability: a single writer thread owns the segment. It takes every append waiting in its
//! channel, writes them in one `write`, calls `fdatasync` once, and only then answers each
//! caller: concurrent appends share one flush (group commit), and no caller hears "done" before
//! its bytes are on disk. A crash can only leave a partial frame after the last acknowledged
//! one; opening read-write moves such a torn tail aside (`torn-<offset>.bin`, kept for the
//! record) and truncates it. Files are created `0600` in a `0700` directory: entries hold INS.
//! Indexes (queue id, Message-ID, INS, time) are rebuilt in memory at open.

use std::collections::HashMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};

use self::writer::spawn_writer;
use super::frame::{self, ScanEnd};
use super::{Lookup, RawEntry, Request, StoredCheckpoint, submit_all};
use crate::ledger::encoding;
use crate::ledger::entry::{Entry, Event, Hash, now_ms};
use crate::ledger::error::LedgerError;
use crate::ledger::merkle::{Frontier, leaf_hash};

#[path = "file_writer.rs"]
mod writer;

/// The entries segment's file name.
pub const ENTRIES_FILE: &str = "entries.log";
/// The checkpoints file's name.
pub const CHECKPOINTS_FILE: &str = "checkpoints.log";
/// Most appends written under one fsync.
const MAX_BATCH: usize = 4096;

/// Whether the store may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Append, and repair a torn tail at open.
    ReadWrite,
    /// Read only; a torn tail is ignored, nothing is changed on disk (for audits).
    ReadOnly,
}

/// The file-backed ledger store.
pub struct FileStore {
    inner: Arc<Inner>,
    writer: Option<mpsc::Sender<Request>>,
    /// Held for the store's life: an exclusive `flock` so that two writers (a second gateway,
    /// a stray tool) can never interleave frames.
    _lock: Option<File>,
}

struct Inner {
    dir: PathBuf,
    reader: File,
    state: RwLock<State>,
    checkpoints: Mutex<Checkpoints>,
}

/// What readers see: one slot per stored frame, plus the indexes.
#[derive(Default)]
struct State {
    frames: Vec<(u64, u32)>,
    leaves: Vec<Hash>,
    damage: HashMap<u64, String>,
    /// Read-only opens only: why the frames after the last listed one cannot be read.
    unreadable: Option<String>,
    frontier: Frontier,
    times: Vec<u64>,
    by_queue_id: HashMap<String, Vec<u64>>,
    by_message_id: HashMap<String, Vec<u64>>,
    by_ins: HashMap<String, Vec<u64>>,
}

struct Checkpoints {
    file: Option<File>,
    path: PathBuf,
    notes: Vec<String>,
}

impl State {
    fn add(&mut self, offset: u64, payload: &[u8], crc_ok: bool) {
        let position = self.leaves.len() as u64;
        let leaf = leaf_hash(payload);
        // Payload length was bounded by frame::MAX_PAYLOAD when read or written.
        self.frames.push((offset, payload.len() as u32));
        self.leaves.push(leaf);
        self.frontier.push(leaf);
        if !crc_ok {
            self.damage
                .insert(position, "frame checksum mismatch".into());
        }
        match encoding::decode(payload) {
            Ok(entry) => self.index(position, &entry),
            // Undecodable entries stay readable as raw bytes; `verify` names them.
            Err(_) => self.times.push(self.times.last().copied().unwrap_or(0)),
        }
    }

    fn index(&mut self, position: u64, entry: &Entry) {
        self.times.push(entry.time_ms);
        let event = &entry.event;
        for (map, key) in [
            (&mut self.by_queue_id, &event.queue_id),
            (&mut self.by_message_id, &event.message_id),
            (&mut self.by_ins, &event.patient_ins),
        ] {
            if let Some(key) = key {
                map.entry(key.clone()).or_default().push(position);
            }
        }
    }
}

impl FileStore {
    /// Opens (creating if needed in read-write mode) the ledger in `dir`.
    pub fn open(dir: &Path, mode: Mode) -> Result<FileStore, LedgerError> {
        if mode == Mode::ReadWrite {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| LedgerError::io("create ledger directory", dir, e))?;
        }
        let lock = match mode {
            Mode::ReadWrite => Some(lock_dir(dir)?),
            Mode::ReadOnly => None,
        };
        let entries_path = dir.join(ENTRIES_FILE);
        let writer_file = match mode {
            Mode::ReadWrite => Some(open_append(&entries_path)?),
            Mode::ReadOnly => None,
        };
        let reader =
            File::open(&entries_path).map_err(|e| LedgerError::io("open", &entries_path, e))?;
        let mut state = State::default();
        let file_len = reader
            .metadata()
            .map_err(|e| LedgerError::io("stat", &entries_path, e))?
            .len();
        let end = frame::scan(&reader, file_len, |f| {
            state.add(f.offset, &f.payload, f.crc_ok)
        })
        .map_err(|e| LedgerError::io("read", &entries_path, e))?;
        let good_len = match end {
            ScanEnd::Clean => file_len,
            ScanEnd::TornTail { offset, reason } => {
                if mode == Mode::ReadWrite {
                    set_aside_torn_tail(dir, &entries_path, offset, reason)?;
                }
                offset
            }
            ScanEnd::Damaged { offset, reason } => {
                if mode == Mode::ReadWrite {
                    return Err(LedgerError::Damaged {
                        path: entries_path,
                        offset,
                        reason: reason.into(),
                    });
                }
                state.unreadable = Some(format!("unreadable frame at byte {offset}: {reason}"));
                offset
            }
        };
        let checkpoints = open_checkpoints(dir, mode)?;
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            reader,
            state: RwLock::new(state),
            checkpoints: Mutex::new(checkpoints),
        });
        let writer = match writer_file {
            None => None,
            Some(file) => Some(spawn_writer(
                Arc::clone(&inner),
                file,
                good_len,
                &entries_path,
            )?),
        };
        Ok(FileStore {
            inner,
            writer,
            _lock: lock,
        })
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Appends an event; returns once it is on disk.
    pub async fn append(&self, event: Event) -> Result<Entry, LedgerError> {
        let mut entries = self.append_all(vec![event]).await?;
        entries
            .pop()
            .ok_or_else(|| LedgerError::WriterStopped("no entry returned".into()))
    }

    /// Appends several events in this order, in one group commit when the writer is idle.
    pub async fn append_all(&self, events: Vec<Event>) -> Result<Vec<Entry>, LedgerError> {
        let writer = self.writer.as_ref().ok_or(LedgerError::ReadOnly)?;
        submit_all(events, |request| writer.send(request).is_ok()).await
    }

    /// Number of entries and current root.
    pub fn head(&self) -> (u64, Hash) {
        let state = read_lock(&self.inner.state);
        (state.frontier.size(), state.frontier.root())
    }

    /// Up to `limit` stored entries from position `start`, as raw bytes.
    pub async fn read_raw(&self, start: u64, limit: usize) -> Result<Vec<RawEntry>, LedgerError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.read_raw(start, limit))
            .await
            .map_err(|e| LedgerError::WriterStopped(format!("reader task failed: {e}")))?
    }

    /// Positions matching a lookup, in ledger order.
    pub fn find(&self, lookup: &Lookup) -> Vec<u64> {
        let state = read_lock(&self.inner.state);
        let from_map =
            |map: &HashMap<String, Vec<u64>>, key: &str| map.get(key).cloned().unwrap_or_default();
        match lookup {
            Lookup::QueueId(id) => from_map(&state.by_queue_id, id),
            Lookup::MessageId(id) => from_map(&state.by_message_id, id),
            Lookup::Ins(ins) => from_map(&state.by_ins, ins),
            Lookup::Time { since_ms, until_ms } => {
                // Times never decrease along the ledger (the writer clamps them), so the range
                // is one contiguous run found by binary search.
                let start = state.times.partition_point(|t| *t < *since_ms);
                let end = state.times.partition_point(|t| *t < *until_ms);
                (start as u64..end.max(start) as u64).collect()
            }
        }
    }

    /// The leaf hashes of the first `size` entries.
    pub fn leaf_hashes(&self, size: u64) -> Vec<Hash> {
        let state = read_lock(&self.inner.state);
        let size = (size as usize).min(state.leaves.len());
        state.leaves[..size].to_vec()
    }

    /// Records a signed checkpoint note durably.
    pub fn add_checkpoint(&self, note: &str) -> Result<(), LedgerError> {
        let mut checkpoints = self
            .inner
            .checkpoints
            .lock()
            .map_err(|_| LedgerError::WriterStopped("checkpoint lock poisoned".into()))?;
        let path = checkpoints.path.clone();
        let file = checkpoints.file.as_mut().ok_or(LedgerError::ReadOnly)?;
        let mut buf = Vec::new();
        frame::push_frame(&mut buf, note.as_bytes());
        file.write_all(&buf)
            .and_then(|()| file.sync_data())
            .map_err(|e| LedgerError::io("append checkpoint to", &path, e))?;
        checkpoints.notes.push(note.to_string());
        Ok(())
    }

    /// Every stored checkpoint note, oldest first.
    pub fn checkpoints(&self) -> Vec<StoredCheckpoint> {
        match self.inner.checkpoints.lock() {
            Ok(checkpoints) => checkpoints
                .notes
                .iter()
                .map(|note| StoredCheckpoint { note: note.clone() })
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Inner {
    fn read_raw(&self, start: u64, limit: usize) -> Result<Vec<RawEntry>, LedgerError> {
        let (slots, unreadable): (Vec<Slot>, _) = {
            let state = read_lock(&self.state);
            let from = (start as usize).min(state.frames.len());
            let to = from.saturating_add(limit).min(state.frames.len());
            let slots = (from..to)
                .map(|i| {
                    (
                        i as u64,
                        state.frames[i],
                        state.damage.get(&(i as u64)).cloned(),
                    )
                })
                .collect();
            // Past the last readable frame, report the damage as one more (empty) entry so
            // that `verify` names it instead of stopping silently.
            let unreadable = state
                .unreadable
                .clone()
                .filter(|_| to - from < limit)
                .map(|reason| (state.frames.len() as u64, reason));
            (slots, unreadable)
        };
        let damaged_tail = unreadable.map(|(position, reason)| RawEntry {
            position,
            bytes: Vec::new(),
            damage: Some(reason),
            stored_leaf_hash: None,
        });
        let (Some(first), Some(last)) = (slots.first(), slots.last()) else {
            return Ok(damaged_tail.into_iter().collect());
        };
        // Frames are contiguous: one read for the whole page instead of one per entry.
        let start = first.1.0;
        let end = last.1.0 + frame::HEADER_LEN as u64 + u64::from(last.1.1);
        let mut block = vec![0u8; (end - start) as usize];
        self.reader
            .read_exact_at(&mut block, start)
            .map_err(|e| LedgerError::io("read", self.dir.join(ENTRIES_FILE), e))?;
        let mut out = Vec::with_capacity(slots.len());
        for (position, (offset, length), damage) in slots {
            let from = (offset - start) as usize + frame::HEADER_LEN;
            out.push(RawEntry {
                position,
                bytes: block[from..from + length as usize].to_vec(),
                damage,
                stored_leaf_hash: None,
            });
        }
        out.extend(damaged_tail);
        Ok(out)
    }
}

/// Where one entry of a page sits: position, (frame offset, payload length), damage.
type Slot = (u64, (u64, u32), Option<String>);

fn read_lock(state: &RwLock<State>) -> std::sync::RwLockReadGuard<'_, State> {
    // A panic while holding the lock leaves the state as consistent as before each push.
    state
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock_dir(dir: &Path) -> Result<File, LedgerError> {
    let path = dir.join(".lock");
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| LedgerError::io("open", &path, e))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
        |_| LedgerError::InUse {
            path: dir.to_path_buf(),
        },
    )?;
    Ok(file)
}

fn open_append(path: &Path) -> Result<File, LedgerError> {
    let existed = path.exists();
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| LedgerError::io("open for append", path, e))?;
    if !existed {
        // The new file's name must survive a crash too.
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| LedgerError::io("sync directory", dir, e))?;
        }
    }
    Ok(file)
}

fn set_aside_torn_tail(
    dir: &Path,
    path: &Path,
    offset: u64,
    reason: &str,
) -> Result<(), LedgerError> {
    let bytes = fs::read(path).map_err(|e| LedgerError::io("read", path, e))?;
    let tail = bytes.get(offset as usize..).unwrap_or_default();
    let aside = dir.join(format!("torn-{offset}-{}.bin", now_ms()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&aside)
        .map_err(|e| LedgerError::io("create", &aside, e))?;
    file.write_all(tail)
        .and_then(|()| file.sync_all())
        .map_err(|e| LedgerError::io("write", &aside, e))?;
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| LedgerError::io("open", path, e))?;
    file.set_len(offset)
        .and_then(|()| file.sync_all())
        .map_err(|e| LedgerError::io("truncate torn tail of", path, e))?;
    tracing::warn!(
        offset,
        bytes = tail.len(),
        reason,
        "ledger: torn tail set aside (never acknowledged)"
    );
    Ok(())
}

fn open_checkpoints(dir: &Path, mode: Mode) -> Result<Checkpoints, LedgerError> {
    let path = dir.join(CHECKPOINTS_FILE);
    let file = match mode {
        Mode::ReadWrite => Some(open_append(&path)?),
        Mode::ReadOnly => None,
    };
    let mut notes = Vec::new();
    if path.exists() {
        let reader = File::open(&path).map_err(|e| LedgerError::io("open", &path, e))?;
        let len = reader
            .metadata()
            .map_err(|e| LedgerError::io("stat", &path, e))?
            .len();
        let end = frame::scan(&reader, len, |f| {
            notes.push(String::from_utf8_lossy(&f.payload).into_owned())
        })
        .map_err(|e| LedgerError::io("read", &path, e))?;
        match end {
            ScanEnd::Clean => {}
            ScanEnd::TornTail { offset, reason } => {
                if mode == Mode::ReadWrite {
                    set_aside_torn_tail(dir, &path, offset, reason)?;
                }
            }
            ScanEnd::Damaged { offset, reason } => {
                if mode == Mode::ReadWrite {
                    return Err(LedgerError::Damaged {
                        path,
                        offset,
                        reason: reason.into(),
                    });
                }
                notes.push(format!(
                    "(unreadable checkpoint frame at byte {offset}: {reason})"
                ));
            }
        }
    }
    Ok(Checkpoints { file, path, notes })
}
