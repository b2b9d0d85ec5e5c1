//! Group commit: one thread renames finished files into `queue/` and makes the renames durable
//! with one directory fsync per batch.
//!
//! A directory fsync costs as much as a file fsync (~1–5 ms here); with one per message the spool
//! would cap at a few hundred messages per second. Requests that arrive while a fsync is running
//! wait in the channel and are all covered by the next one. Nobody is answered before the fsync
//! that covers their rename returned, so a `250` can never precede durability.
//!
//! A plain thread rather than a tokio task: the work is blocking system calls, and `Spool::open`
//! must not require a runtime.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};

use tokio::sync::oneshot;

use super::error::SpoolError;

/// One rename waiting for a directory fsync.
pub(crate) struct CommitRequest {
    /// The finished file in `tmp/`.
    pub(crate) from: PathBuf,
    /// Its name in `queue/`.
    pub(crate) to: PathBuf,
    /// Answered once the rename is durable (or failed).
    pub(crate) reply: oneshot::Sender<Result<(), SpoolError>>,
}

/// Handle on the committer thread; the thread ends when the last handle is dropped.
pub(crate) struct Committer {
    sender: Sender<CommitRequest>,
    /// Directory fsyncs done so far (exposed for metrics and to test that commits are grouped).
    syncs: Arc<AtomicU64>,
}

impl Committer {
    /// Starts the thread for `queue_dir`, whose handle is used for the fsyncs.
    pub(crate) fn start(queue_dir: PathBuf) -> Result<Committer, SpoolError> {
        let directory =
            File::open(&queue_dir).map_err(|error| SpoolError::io("open", &queue_dir, error))?;
        let (sender, receiver) = std::sync::mpsc::channel();
        let syncs = Arc::new(AtomicU64::new(0));
        let thread_syncs = Arc::clone(&syncs);
        let thread_dir = queue_dir.clone();
        std::thread::Builder::new()
            .name("spool-commit".to_owned())
            .spawn(move || run(thread_dir, directory, receiver, thread_syncs))
            .map_err(|error| SpoolError::io("spawn committer for", &queue_dir, error))?;
        Ok(Committer { sender, syncs })
    }

    /// Queues a request; false when the thread is gone.
    pub(crate) fn submit(&self, request: CommitRequest) -> bool {
        self.sender.send(request).is_ok()
    }

    /// Directory fsyncs performed since the spool was opened.
    pub(crate) fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

fn run(
    queue_dir: PathBuf,
    directory: File,
    receiver: Receiver<CommitRequest>,
    syncs: Arc<AtomicU64>,
) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        batch.extend(receiver.try_iter());
        let mut renamed = Vec::with_capacity(batch.len());
        for request in batch {
            match std::fs::rename(&request.from, &request.to) {
                Ok(()) => renamed.push(request),
                Err(error) => {
                    let _ = request
                        .reply
                        .send(Err(SpoolError::io("rename", &request.from, error)));
                }
            }
        }
        if renamed.is_empty() {
            continue;
        }
        let synced = directory.sync_all();
        syncs.fetch_add(1, Ordering::Relaxed);
        match synced {
            Ok(()) => {
                for request in renamed {
                    // The receiver may be gone (session dropped while waiting): the message stays
                    // queued and is delivered, which at worst duplicates a message the client
                    // will retry. Losing it would be worse.
                    let _ = request.reply.send(Ok(()));
                }
            }
            Err(error) => {
                tracing::error!(
                    directory = %queue_dir.display(),
                    %error,
                    "spool directory fsync failed"
                );
                for request in renamed {
                    // The client gets a 4xx and will retry; take the file back out of the queue
                    // so that, if the rename did reach the disk, it is not delivered a second
                    // time. Best effort: the removal is not itself made durable.
                    if let Err(remove_error) = std::fs::remove_file(&request.to) {
                        tracing::warn!(
                            file = %request.to.display(),
                            error = %remove_error,
                            "cannot withdraw unacknowledged spool file"
                        );
                    }
                    let _ = request.reply.send(Err(SpoolError::io(
                        "fsync",
                        &queue_dir,
                        clone_error(&error),
                    )));
                }
            }
        }
    }
}

/// `io::Error` is not `Clone`; keep the OS code (disk-full classification needs it).
fn clone_error(error: &io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}
