//! Spool errors.

use std::io;
use std::path::PathBuf;

/// Why a spool operation failed. Every variant names the file or directory involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// A system call failed.
    #[error("spool: {operation} {path}: {source}")]
    Io {
        /// What we were doing (`create`, `write`, `fsync`, `rename`, ...).
        operation: &'static str,
        /// File or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Another process (or another `Spool` in this one) holds the spool's lock.
    #[error("spool: {path} is locked by another instance")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A queued file's envelope prologue cannot be read back.
    #[error("spool: corrupt prologue in {path}, line {line}: {reason}")]
    CorruptPrologue {
        /// The queued file.
        path: PathBuf,
        /// 1-based line number of the prologue where parsing stopped.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// A message handed to `commit` or `discard` was created by another spool.
    #[error("spool: {path} does not belong to the spool at {spool}")]
    ForeignMessage {
        /// The message's temporary file.
        path: PathBuf,
        /// The spool directory asked to commit it.
        spool: PathBuf,
    },
    /// The group-commit thread is gone (it only stops when it panicked).
    #[error("spool: committer for {path} stopped")]
    CommitterStopped {
        /// The queue directory.
        path: PathBuf,
    },
}

impl SpoolError {
    /// Builds an [`SpoolError::Io`].
    pub(crate) fn io(operation: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        SpoolError::Io {
            operation,
            path: path.into(),
            source,
        }
    }

    /// True when the file system is full or the quota is exhausted (ENOSPC, EDQUOT): the session
    /// answers `452 4.3.1` rather than a generic local error.
    pub fn is_disk_full(&self) -> bool {
        let SpoolError::Io { source, .. } = self else {
            return false;
        };
        if let Some(code) = source.raw_os_error() {
            return code == rustix::io::Errno::NOSPC.raw_os_error()
                || code == rustix::io::Errno::DQUOT.raw_os_error();
        }
        matches!(
            source.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_error(source: io::Error) -> SpoolError {
        SpoolError::io("write", "/spool/tmp/x", source)
    }

    #[test]
    fn classifies_disk_full() {
        let enospc = rustix::io::Errno::NOSPC.raw_os_error();
        let edquot = rustix::io::Errno::DQUOT.raw_os_error();
        assert!(io_error(io::Error::from_raw_os_error(enospc)).is_disk_full());
        assert!(io_error(io::Error::from_raw_os_error(edquot)).is_disk_full());
        assert!(io_error(io::Error::from(io::ErrorKind::StorageFull)).is_disk_full());
        let eio = rustix::io::Errno::IO.raw_os_error();
        assert!(!io_error(io::Error::from_raw_os_error(eio)).is_disk_full());
        assert!(!SpoolError::Locked { path: "/x".into() }.is_disk_full());
    }

    #[test]
    fn message_names_path() {
        let error = io_error(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(error.to_string().contains("/spool/tmp/x"));
    }
}
