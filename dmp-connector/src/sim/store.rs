//! The simulator's durable document store: one file per document plus a JSON record, written
//! to a temporary name, fsynced, renamed, and the directory fsynced — a success answer is only
//! sent once the document would survive a crash.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file operation failed.
    #[error("store {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A record could not be (de)serialised.
    #[error("store record {path}: {source}")]
    Record {
        /// The record file.
        path: String,
        /// The error.
        source: serde_json::Error,
    },
}

/// What the store keeps about a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDocument {
    /// The document uniqueId.
    pub unique_id: String,
    /// The entryUUID (or symbolic id) it was registered under.
    pub entry_uuid: String,
    /// The patientId CX.
    pub patient_id: String,
    /// SHA-1 of the bytes, lowercase hex.
    pub hash_sha1: String,
    /// Byte count.
    pub size: u64,
    /// The mimeType.
    pub mime_type: String,
}

/// A directory of deposited documents.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Store {
    /// Opens (creating) the store under `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let root = dir.join("documents");
        fs::create_dir_all(&root).map_err(io(&root))?;
        Ok(Self { root })
    }

    fn key(unique_id: &str) -> String {
        // uniqueIds hold characters (`^`, `/`…) unsafe in file names: name files by digest.
        openssl::sha::sha256(unique_id.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The record of the document with `unique_id`, if stored.
    pub fn get(&self, unique_id: &str) -> Result<Option<StoredDocument>, StoreError> {
        let path = self.root.join(format!("{}.json", Self::key(unique_id)));
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| StoreError::Record {
                        path: path.display().to_string(),
                        source,
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// The bytes of the document with `unique_id` (ITI-43-like retrieval for tests).
    pub fn retrieve(&self, unique_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if self.get(unique_id)?.is_none() {
            return Ok(None);
        }
        let path = self.root.join(format!("{}.doc", Self::key(unique_id)));
        fs::read(&path).map(Some).map_err(io(&path))
    }

    /// Every stored document of `patient_id` (ITI-18 FindDocuments-like, for tests).
    pub fn find_by_patient(&self, patient_id: &str) -> Result<Vec<StoredDocument>, StoreError> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|d| d.patient_id == patient_id)
            .collect())
    }

    /// Every stored document.
    pub fn all(&self) -> Result<Vec<StoredDocument>, StoreError> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(io(&self.root))? {
            let path = entry.map_err(io(&self.root))?.path();
            if path.extension().is_some_and(|e| e == "json") {
                let bytes = fs::read(&path).map_err(io(&path))?;
                out.push(
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::Record {
                        path: path.display().to_string(),
                        source,
                    })?,
                );
            }
        }
        Ok(out)
    }

    fn write_durably(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let tmp = self.root.join(format!(".{name}.tmp"));
        let target = self.root.join(name);
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, &target).map_err(io(&target))?;
        Ok(())
    }

    /// Stores a document: bytes first, then the record that makes it visible, then a directory
    /// fsync so both renames are durable.
    pub fn put(&self, record: &StoredDocument, bytes: &[u8]) -> Result<(), StoreError> {
        let key = Self::key(&record.unique_id);
        self.write_durably(&format!("{key}.doc"), bytes)?;
        let json = serde_json::to_vec_pretty(record).map_err(|source| StoreError::Record {
            path: key.clone(),
            source,
        })?;
        self.write_durably(&format!("{key}.json"), &json)?;
        File::open(&self.root)
            .and_then(|dir| dir.sync_all())
            .map_err(io(&self.root))
    }
}
