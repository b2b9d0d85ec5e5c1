//! The file backend's writer thread: group commit and rollback on failed writes.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

use super::{Inner, MAX_BATCH, Request, read_lock};
use crate::ledger::encoding;
use crate::ledger::entry::{Entry, Hash, now_ms};
use crate::ledger::error::LedgerError;
use crate::ledger::merkle::leaf_hash;
use crate::ledger::store::frame;

/// The writer's own view of the end of the segment.
struct Tail {
    file: File,
    path: PathBuf,
    len: u64,
    next_seq: u64,
    last_leaf: Hash,
    last_time: u64,
    broken: Option<String>,
}

pub(super) fn spawn_writer(
    inner: Arc<Inner>,
    file: File,
    len: u64,
    path: &Path,
) -> Result<mpsc::Sender<Request>, LedgerError> {
    let (tx, rx) = mpsc::channel::<Request>();
    let tail = {
        let state = read_lock(&inner.state);
        Tail {
            file,
            path: path.to_path_buf(),
            len,
            next_seq: state.leaves.len() as u64,
            last_leaf: state.leaves.last().copied().unwrap_or([0; 32]),
            last_time: state.times.last().copied().unwrap_or(0),
            broken: None,
        }
    };
    std::thread::Builder::new()
        .name("ledger-writer".into())
        .spawn(move || writer_loop(&inner, tail, &rx))
        .map_err(|e| LedgerError::io("start writer thread for", path, e))?;
    Ok(tx)
}

fn writer_loop(inner: &Inner, mut tail: Tail, rx: &mpsc::Receiver<Request>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        write_batch(inner, &mut tail, batch);
    }
}

fn write_batch(inner: &Inner, tail: &mut Tail, batch: Vec<Request>) {
    if let Some(why) = &tail.broken {
        for request in batch {
            let _ = request
                .reply
                .send(Err(LedgerError::WriterStopped(why.clone())));
        }
        return;
    }
    let mut buf = Vec::with_capacity(batch.len() * 300);
    let mut done: Vec<(Request, Entry, u32, u64, Hash)> = Vec::with_capacity(batch.len());
    let (mut seq, mut prev, mut time) = (tail.next_seq, tail.last_leaf, tail.last_time);
    for request in batch {
        time = now_ms().max(time);
        let entry = Entry {
            seq,
            time_ms: time,
            prev_hash: prev,
            event: request.event.clone(),
        };
        let bytes = match encoding::encode(&entry) {
            Ok(bytes) => bytes,
            Err(e) => {
                let _ = request.reply.send(Err(LedgerError::Encode(e)));
                continue;
            }
        };
        let offset = tail.len + buf.len() as u64;
        frame::push_frame(&mut buf, &bytes);
        prev = leaf_hash(&bytes);
        seq += 1;
        // Encoding limits keep an entry far below frame::MAX_PAYLOAD, so its length fits in u32.
        done.push((request, entry, bytes.len() as u32, offset, prev));
    }
    if done.is_empty() {
        return;
    }
    let written = tail
        .file
        .write_all(&buf)
        .and_then(|()| tail.file.sync_data());
    if let Err(error) = written {
        // Roll back to the last acknowledged length so a later batch does not follow a
        // half-written one; if even that fails, refuse all further appends.
        let rolled_back = tail
            .file
            .set_len(tail.len)
            .and_then(|()| tail.file.sync_data());
        if let Err(again) = rolled_back {
            tail.broken = Some(format!(
                "write failed ({error}) and rollback failed ({again})"
            ));
        }
        tracing::error!(%error, path = %tail.path.display(), "ledger append failed");
        for (request, ..) in done {
            let _ = request.reply.send(Err(LedgerError::io(
                "append to",
                &tail.path,
                std::io::Error::new(error.kind(), error.to_string()),
            )));
        }
        return;
    }
    tail.len += buf.len() as u64;
    tail.next_seq = seq;
    tail.last_leaf = prev;
    tail.last_time = time;
    {
        let mut state = inner
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, entry, length, offset, leaf) in &done {
            state.frames.push((*offset, *length));
            state.leaves.push(*leaf);
            state.frontier.push(*leaf);
            state.index(entry.seq, entry);
        }
    }
    for (request, entry, ..) in done {
        tracing::debug!(
            seq = entry.seq,
            queue_id = entry.event.queue_id.as_deref().unwrap_or(""),
            "ledger entry durable"
        );
        let _ = request.reply.send(Ok(entry));
    }
}
