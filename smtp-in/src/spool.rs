//! The durable spool: a message is acknowledged with `250` only once it is on disk.
//!
//! Layout: `<dir>/lock` (flock held while open), `<dir>/tmp/<id>.msg` for messages being received
//! or judged, `<dir>/queue/<id>.msg` for accepted ones. Directories are 0700 and files 0600:
//! messages carry health data. Each file is an envelope prologue (see `prologue`) followed by the
//! message bytes.
//!
//! Durability: the writer `fdatasync`s its file ([`SpoolWriter::finish`]); [`Spool::commit`]
//! renames it into `queue/` and fsyncs that directory, sharing one directory fsync among all
//! concurrent commits (see `committer`). Files left in `tmp/` by a crash were never acknowledged
//! and are deleted by [`Spool::open`]. A commit whose caller was cancelled after the rename still
//! completes: the message may then be delivered although the client saw no `250` (it will retry,
//! and a duplicate is preferred to a loss).
//!
//! Unix only: it relies on file modes, `flock` and fsync of directories.

mod committer;
mod error;
mod id;
mod message;
mod prologue;

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{BufReader, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::oneshot;

use committer::{CommitRequest, Committer};
pub use error::SpoolError;
pub use id::QueueId;
pub use message::{CommittedMessage, SpoolWriter, SpooledMessage};
use message::{TmpGuard, WRITE_BUFFER};
use prologue::DecodeError;

use crate::envelope::Envelope;

/// File name extension of spool files.
const EXTENSION: &str = "msg";
/// Attempts at finding an unused queue id before giving up (a collision needs two ids in the same
/// millisecond with the same 32 random bits: one retry is already astronomically unlikely).
const CREATE_ATTEMPTS: usize = 4;

/// Handle on a spool directory. Cheap to clone; all clones share one lock and one committer.
#[derive(Clone)]
pub struct Spool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Spool")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

struct Inner {
    dir: PathBuf,
    tmp: PathBuf,
    queue: PathBuf,
    committer: Committer,
    /// Holds the `flock`; released when the last clone is dropped.
    _lock: File,
}

/// What [`Spool::recover`] found in `queue/`.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Readable messages, oldest first.
    pub messages: Vec<CommittedMessage>,
    /// Files that could not be read back, each error naming its file. They are left in place for
    /// an operator to inspect; they are never delivered.
    pub unreadable: Vec<SpoolError>,
}

impl Spool {
    /// Opens (creating if needed) the spool at `dir`, takes its lock and deletes stale temporary
    /// files. Fails with [`SpoolError::Locked`] if another instance has it open.
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        let existed = dir.is_dir();
        let mut builder = DirBuilder::new();
        builder.recursive(true).mode(0o700);
        builder
            .create(dir)
            .map_err(|error| SpoolError::io("create directory", dir, error))?;
        if !existed
            && let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty())
        {
            // The spool directory's own entry must survive a crash too.
            File::open(parent)
                .and_then(|handle| handle.sync_all())
                .map_err(|error| SpoolError::io("fsync", parent, error))?;
        }
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|error| SpoolError::io("open", &lock_path, error))?;
        // Two instances on one spool would delete each other's messages in progress (stale tmp
        // cleanup) — refuse rather than risk it.
        match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(SpoolError::Locked { path: lock_path });
            }
            Err(errno) => return Err(SpoolError::io("flock", &lock_path, errno.into())),
        }
        let tmp = dir.join("tmp");
        let queue = dir.join("queue");
        for sub in [&tmp, &queue] {
            builder
                .create(sub)
                .map_err(|error| SpoolError::io("create directory", sub, error))?;
            std::fs::set_permissions(sub, std::fs::Permissions::from_mode(0o700))
                .map_err(|error| SpoolError::io("chmod", sub, error))?;
        }
        // Make the subdirectories' own entries durable before anything is committed in them.
        File::open(dir)
            .and_then(|handle| handle.sync_all())
            .map_err(|error| SpoolError::io("fsync", dir, error))?;
        remove_stale(&tmp)?;
        let committer = Committer::start(queue.clone())?;
        Ok(Spool {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                tmp,
                queue,
                committer,
                _lock: lock,
            }),
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Starts a message: a new queue id, a new file in `tmp/`, the envelope prologue written first.
    pub async fn create(&self, envelope: &Envelope) -> Result<SpoolWriter, SpoolError> {
        let mut attempt = 0;
        let (queue_id, path, file) = loop {
            attempt += 1;
            let queue_id = QueueId::generate();
            let path = self.file_name(&self.inner.tmp, &queue_id);
            let opened = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .await;
            match opened {
                Ok(file) => break (queue_id, path, file),
                Err(error)
                    if error.kind() == std::io::ErrorKind::AlreadyExists
                        && attempt < CREATE_ATTEMPTS => {}
                Err(error) => return Err(SpoolError::io("create", &path, error)),
            }
        };
        let guard = TmpGuard::new(path);
        let mut file = BufWriter::with_capacity(WRITE_BUFFER, file);
        let head = prologue::encode(&queue_id, envelope);
        file.write_all(&head)
            .await
            .map_err(|error| SpoolError::io("write", &guard.path, error))?;
        Ok(SpoolWriter {
            queue_id,
            envelope: envelope.clone(),
            file,
            hasher: Sha256::new(),
            size: 0,
            body_offset: head.len() as u64,
            guard,
        })
    }

    /// Moves a finished message into `queue/` and returns once that is durable (directory fsync
    /// done). Only after this returns may the session answer `250`.
    pub async fn commit(
        &self,
        mut message: SpooledMessage,
    ) -> Result<CommittedMessage, SpoolError> {
        self.check_owned(&message)?;
        let to = self.file_name(&self.inner.queue, &message.queue_id);
        let (reply, answer) = oneshot::channel();
        let request = CommitRequest {
            from: message.guard.path.clone(),
            to: to.clone(),
            reply,
        };
        let stopped = || SpoolError::CommitterStopped {
            path: self.inner.queue.clone(),
        };
        if !self.inner.committer.submit(request) {
            return Err(stopped());
        }
        answer.await.map_err(|_| stopped())??;
        message.guard.disarm();
        Ok(CommittedMessage {
            queue_id: message.queue_id.clone(),
            envelope: message.envelope.clone(),
            size: message.size,
            sha256: message.sha256,
            path: to,
            body_offset: message.body_offset,
        })
    }

    /// Deletes a message that was rejected (or whose session failed) before commit.
    pub async fn discard(&self, mut message: SpooledMessage) {
        if let Err(error) = self.check_owned(&message) {
            tracing::error!(%error, "discard of a foreign spool message");
            return;
        }
        match tokio::fs::remove_file(message.path()).await {
            Ok(()) => message.guard.disarm(),
            // Leave the guard armed: its drop retries once; a leftover is removed at next open.
            Err(error) => {
                tracing::warn!(
                    queue_id = %message.queue_id,
                    %error,
                    "cannot remove discarded spool file"
                )
            }
        }
    }

    /// Removes a committed message once it has been handed on (the queue is not an archive).
    pub async fn remove(&self, message: &CommittedMessage) -> Result<(), SpoolError> {
        tokio::fs::remove_file(&message.path)
            .await
            .map_err(|error| SpoolError::io("remove", &message.path, error))
    }

    /// Committed messages, oldest first, for recovery after a restart. Unreadable files are
    /// logged and skipped (use [`Spool::recover`] to get them). Blocking: call it at startup or
    /// from `spawn_blocking`.
    pub fn pending(&self) -> Result<Vec<CommittedMessage>, SpoolError> {
        let recovery = self.recover()?;
        for error in &recovery.unreadable {
            tracing::error!(%error, "unreadable message left in spool queue");
        }
        Ok(recovery.messages)
    }

    /// Reads back every file in `queue/`: parses the prologue and hashes the message. Fails only
    /// if `queue/` itself cannot be listed; a bad file lands in [`Recovery::unreadable`].
    pub fn recover(&self) -> Result<Recovery, SpoolError> {
        let queue = &self.inner.queue;
        let entries =
            std::fs::read_dir(queue).map_err(|error| SpoolError::io("list", queue, error))?;
        let mut recovery = Recovery::default();
        for entry in entries {
            let entry = entry.map_err(|error| SpoolError::io("list", queue, error))?;
            let path = entry.path();
            let Some(queue_id) = queue_id_of(&path) else {
                tracing::warn!(file = %path.display(), "ignoring foreign file in spool queue");
                continue;
            };
            match read_committed(&path, queue_id) {
                Ok(message) => recovery.messages.push(message),
                // Removed between listing and reading (delivered meanwhile): not an error.
                Err(SpoolError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => recovery.unreadable.push(error),
            }
        }
        recovery
            .messages
            .sort_by(|left, right| left.queue_id.cmp(&right.queue_id));
        Ok(recovery)
    }

    /// Directory fsyncs done by the group committer since `open` (a metric; far fewer than
    /// commits under concurrency).
    pub fn directory_syncs(&self) -> u64 {
        self.inner.committer.syncs()
    }

    fn file_name(&self, dir: &Path, queue_id: &QueueId) -> PathBuf {
        dir.join(format!("{queue_id}.{EXTENSION}"))
    }

    fn check_owned(&self, message: &SpooledMessage) -> Result<(), SpoolError> {
        let expected = self.file_name(&self.inner.tmp, &message.queue_id);
        if message.path() == expected {
            return Ok(());
        }
        Err(SpoolError::ForeignMessage {
            path: message.path().to_owned(),
            spool: self.inner.dir.clone(),
        })
    }
}

/// `<id>.msg` → id; anything else is not ours.
fn queue_id_of(path: &Path) -> Option<QueueId> {
    if path.extension()? != EXTENSION {
        return None;
    }
    QueueId::parse(path.file_stem()?.to_str()?)
}

fn read_committed(path: &Path, queue_id: QueueId) -> Result<CommittedMessage, SpoolError> {
    let file = File::open(path).map_err(|error| SpoolError::io("open", path, error))?;
    let mut reader = BufReader::with_capacity(WRITE_BUFFER, file);
    let (envelope, body_offset) =
        prologue::decode(&mut reader, &queue_id).map_err(|error| match error {
            DecodeError::Io(source) => SpoolError::io("read", path, source),
            DecodeError::Corrupt { line, reason } => SpoolError::CorruptPrologue {
                path: path.to_owned(),
                line,
                reason,
            },
        })?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buffer = vec![0u8; WRITE_BUFFER];
    loop {
        let read = reader
            .read(&mut buffer)
            .map_err(|error| SpoolError::io("read", path, error))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok(CommittedMessage {
        queue_id,
        envelope,
        size,
        sha256: hasher.finalize().into(),
        path: path.to_owned(),
        body_offset,
    })
}

/// Deletes everything in `tmp/`: those messages were never acknowledged, their clients retry.
fn remove_stale(tmp: &Path) -> Result<(), SpoolError> {
    let entries = std::fs::read_dir(tmp).map_err(|error| SpoolError::io("list", tmp, error))?;
    let mut removed = 0usize;
    for entry in entries {
        let path = entry
            .map_err(|error| SpoolError::io("list", tmp, error))?
            .path();
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(error) => {
                tracing::warn!(
                    file = %path.display(),
                    %error,
                    "cannot remove stale spool file"
                )
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, directory = %tmp.display(), "removed unacknowledged spool files");
    }
    Ok(())
}
