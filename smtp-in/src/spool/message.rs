//! A message on its way into the spool: being written, written but not committed, committed.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::error::SpoolError;
use super::id::QueueId;
use crate::envelope::Envelope;

/// Write buffer: large enough that a typical message costs a handful of write system calls.
pub(crate) const WRITE_BUFFER: usize = 64 * 1024;

/// Streams one message into its temporary file. Dropping it without `finish` deletes the file
/// (the client went away mid-DATA: nothing was acknowledged).
pub struct SpoolWriter {
    pub(crate) queue_id: QueueId,
    pub(crate) envelope: Envelope,
    pub(crate) file: BufWriter<tokio::fs::File>,
    pub(crate) hasher: Sha256,
    pub(crate) size: u64,
    pub(crate) body_offset: u64,
    pub(crate) guard: TmpGuard,
}

impl std::fmt::Debug for SpoolWriter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SpoolWriter")
            .field("queue_id", &self.queue_id)
            .field("path", &self.guard.path)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl SpoolWriter {
    /// The message's queue id.
    pub fn queue_id(&self) -> &QueueId {
        &self.queue_id
    }

    /// Message bytes written so far (the prologue is not counted).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends message bytes; they are hashed here, once, as they stream through.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), SpoolError> {
        self.file
            .write_all(bytes)
            .await
            .map_err(|error| SpoolError::io("write", &self.guard.path, error))?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Flushes and `fdatasync`s the file. The message is durable but not yet in the queue: it
    /// becomes visible only through [`Spool::commit`](super::Spool::commit).
    pub async fn finish(mut self) -> Result<SpooledMessage, SpoolError> {
        let path = &self.guard.path;
        self.file
            .flush()
            .await
            .map_err(|error| SpoolError::io("flush", path, error))?;
        // tokio's File runs this on the blocking pool after completing any write in flight.
        self.file
            .get_ref()
            .sync_data()
            .await
            .map_err(|error| SpoolError::io("fdatasync", path, error))?;
        Ok(SpooledMessage {
            queue_id: self.queue_id,
            envelope: self.envelope,
            size: self.size,
            sha256: self.hasher.finalize().into(),
            body_offset: self.body_offset,
            guard: self.guard,
        })
    }
}

/// A complete, synced message waiting for the handler's verdict. Dropping it deletes the file.
#[derive(Debug)]
pub struct SpooledMessage {
    /// Queue id.
    pub queue_id: QueueId,
    /// Envelope, as written in the prologue.
    pub envelope: Envelope,
    /// Message size in bytes (prologue excluded).
    pub size: u64,
    /// SHA-256 of the message bytes (prologue excluded).
    pub sha256: [u8; 32],
    /// Offset of the first message byte in the file.
    pub body_offset: u64,
    pub(crate) guard: TmpGuard,
}

impl SpooledMessage {
    /// The temporary file (prologue followed by the message).
    pub fn path(&self) -> &Path {
        &self.guard.path
    }

    /// Reads the message bytes (without the prologue) into memory.
    pub async fn read_body(&self) -> Result<Vec<u8>, SpoolError> {
        read_body(self.path(), self.body_offset, self.size).await
    }
}

/// A message durably in `queue/`: it may be acknowledged and survives a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedMessage {
    /// Queue id.
    pub queue_id: QueueId,
    /// Envelope from the prologue.
    pub envelope: Envelope,
    /// Message size in bytes (prologue excluded).
    pub size: u64,
    /// SHA-256 of the message bytes (prologue excluded).
    pub sha256: [u8; 32],
    /// The file in `queue/`.
    pub path: PathBuf,
    /// Offset of the first message byte in the file.
    pub body_offset: u64,
}

impl CommittedMessage {
    /// Reads the message bytes (without the prologue) into memory.
    pub async fn read_body(&self) -> Result<Vec<u8>, SpoolError> {
        read_body(&self.path, self.body_offset, self.size).await
    }
}

async fn read_body(path: &Path, offset: u64, size: u64) -> Result<Vec<u8>, SpoolError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|error| SpoolError::io("open", path, error))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|error| SpoolError::io("seek", path, error))?;
    let mut body = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.read_to_end(&mut body)
        .await
        .map_err(|error| SpoolError::io("read", path, error))?;
    Ok(body)
}

/// Deletes a temporary file on drop unless disarmed: no unacknowledged file outlives its owner.
#[derive(Debug)]
pub(crate) struct TmpGuard {
    pub(crate) path: PathBuf,
    pub(crate) armed: bool,
}

impl TmpGuard {
    pub(crate) fn new(path: PathBuf) -> TmpGuard {
        TmpGuard { path, armed: true }
    }

    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // A single unlink; cheap enough to do inline even on a runtime thread.
        if let Err(error) = std::fs::remove_file(&self.path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(
                file = %self.path.display(),
                %error,
                "cannot remove abandoned spool file"
            );
        }
    }
}
