//! The ledger's error types: one enum for operations, one for decoding, one for proofs.
//!
//! Messages never carry patient identity or key material: an error may end up in a log line.

use std::path::PathBuf;

/// A failure while decoding an entry's canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes end before the field `field` is complete.
    #[error("entry truncated while reading {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// The version byte names an encoding this build does not know.
    #[error("unknown entry encoding version {0}")]
    UnknownVersion(u8),
    /// A one-byte code (event kind, outcome, presence flag) has no meaning.
    #[error("invalid code {code} for {field}")]
    InvalidCode {
        /// The field being read.
        field: &'static str,
        /// The code found.
        code: u8,
    },
    /// A text field is not UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 {
        /// The field being read.
        field: &'static str,
    },
    /// A length or count exceeds the encoding's limits.
    #[error("{field} length {length} exceeds the limit {limit}")]
    TooLong {
        /// The field being read.
        field: &'static str,
        /// The length found.
        length: usize,
        /// The largest length accepted.
        limit: usize,
    },
    /// Bytes remain after the last field: the encoding would not be canonical.
    #[error("{0} trailing bytes after the entry")]
    TrailingBytes(usize),
}

/// A Merkle proof or signed checkpoint that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The proof's sizes are impossible (second tree smaller than the first, and so on).
    #[error("invalid tree sizes {first} and {second}")]
    InvalidSizes {
        /// The first (older) size.
        first: u64,
        /// The second (newer) size.
        second: u64,
    },
    /// The proof has the wrong number of hashes for the sizes given.
    #[error("proof has the wrong length ({0} hashes)")]
    WrongLength(usize),
    /// The root recomputed from the proof differs from the expected root.
    #[error("recomputed root {computed} does not match the expected root {expected}")]
    RootMismatch {
        /// Hex of the recomputed root.
        computed: String,
        /// Hex of the expected root.
        expected: String,
    },
    /// A checkpoint or signed note cannot be parsed.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    /// The checkpoint carries no signature by the expected key.
    #[error("checkpoint has no signature by key {expected} (signature key hashes found: {found})")]
    NoSignatureByKey {
        /// `name+keyhash` of the expected key.
        expected: String,
        /// The `name+keyhash` of each signature line present.
        found: String,
    },
    /// The signature line names the expected key but the signature is wrong.
    #[error("signature by key {key} does not verify")]
    BadSignature {
        /// `name+keyhash` of the key.
        key: String,
    },
    /// A key file or public key string cannot be parsed.
    #[error("malformed key: {0}")]
    MalformedKey(String),
    /// The proof bundle is not what the format describes.
    #[error("malformed proof bundle: {0}")]
    MalformedBundle(String),
}

/// A failure of a ledger operation (open, append, read, checkpoint).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file ledger is damaged in a way recovery must not repair by itself.
    #[error(
        "ledger file {path} is damaged at byte offset {offset}: {reason}; run `gateway audit verify`"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The offset of the first unreadable frame.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The PostgreSQL backend failed.
    #[error("PostgreSQL ledger: {action}: {source}")]
    Postgres {
        /// What was being done.
        action: &'static str,
        /// The underlying error.
        source: tokio_postgres::Error,
    },
    /// An entry stored in the ledger cannot be decoded.
    #[error("entry {seq} cannot be decoded: {source}")]
    Decode {
        /// The entry's position.
        seq: u64,
        /// What is wrong.
        source: DecodeError,
    },
    /// A proof or checkpoint failed to verify, or a key is malformed.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The configuration is unusable.
    #[error("ledger configuration: {0}")]
    Config(String),
    /// The event cannot be encoded (a field exceeds the encoding's limits).
    #[error("event cannot be recorded: {0}")]
    Encode(DecodeError),
    /// The writer stopped (an earlier write failed and could not be rolled back, or shutdown).
    #[error("ledger writer unavailable: {0}")]
    WriterStopped(String),
    /// The requested entry does not exist.
    #[error("no entry {seq}: the ledger holds {size} entries")]
    NoSuchEntry {
        /// The requested sequence number.
        seq: u64,
        /// The ledger size.
        size: u64,
    },
    /// Another process (or handle) has the file ledger open for writing.
    #[error("ledger directory {path} is in use by another writer")]
    InUse {
        /// The ledger directory.
        path: PathBuf,
    },
    /// The ledger is opened read-only.
    #[error("ledger opened read-only")]
    ReadOnly,
}

impl LedgerError {
    /// Wraps an I/O error with what was done and to which path.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        LedgerError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Wraps a PostgreSQL error with what was done.
    pub(crate) fn pg(action: &'static str, source: tokio_postgres::Error) -> Self {
        LedgerError::Postgres { action, source }
    }
}
