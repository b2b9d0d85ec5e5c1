//! Safe reading of an XDM zip, entirely in memory: nothing is ever written to disk.
//!
//! Threats handled: path traversal (`..`, absolute paths, drive letters, backslashes — any such
//! name refuses the whole package, since a sender producing it is either broken or hostile),
//! symbolic links, zip bombs (entry count, declared sizes checked before inflating, actual
//! inflated bytes capped while inflating so a lying header cannot bypass the limits, and a
//! compression ratio limit), encrypted entries and exotic compression methods.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use thiserror::Error;
use zip::ZipArchive;

use crate::documents::DocumentPolicy;

/// Entries at most this large are exempt from the ratio check: a small file of blanks
/// legitimately compresses very well and cannot hurt.
const RATIO_EXEMPT_SIZE: u64 = 64 * 1024;

/// Why a zip was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ZipError {
    /// Not a readable zip archive.
    #[error("not a readable zip archive: {reason}")]
    Unreadable {
        /// Library message.
        reason: String,
    },
    /// More entries than allowed.
    #[error("zip has {count} entries, more than the limit of {limit}")]
    TooManyEntries {
        /// Entries in the central directory.
        count: usize,
        /// Configured limit.
        limit: usize,
    },
    /// An entry name is unsafe.
    #[error("zip entry {name:?} has an unsafe path ({reason})")]
    UnsafePath {
        /// The raw entry name.
        name: String,
        /// Why it is unsafe.
        reason: &'static str,
    },
    /// A symbolic link entry.
    #[error("zip entry {name:?} is a symbolic link")]
    Link {
        /// The entry name.
        name: String,
    },
    /// An encrypted entry.
    #[error("zip entry {name:?} is encrypted")]
    Encrypted {
        /// The entry name.
        name: String,
    },
    /// Compression method other than stored or deflate, or another unsupported feature.
    #[error("zip entry {name:?} uses an unsupported feature: {reason}")]
    Unsupported {
        /// The entry name.
        name: String,
        /// Library message.
        reason: String,
    },
    /// One entry inflates past the per-entry limit.
    #[error("zip entry {name:?} expands past {limit} bytes")]
    EntryTooLarge {
        /// The entry name.
        name: String,
        /// Configured limit.
        limit: u64,
    },
    /// All entries together inflate past the total limit.
    #[error("zip content expands past {limit} bytes in total")]
    TotalTooLarge {
        /// Configured limit.
        limit: u64,
    },
    /// An entry's compression ratio is above the limit (zip bomb).
    #[error("zip entry {name:?} has a compression ratio above {limit}")]
    RatioTooHigh {
        /// The entry name.
        name: String,
        /// Configured limit.
        limit: u64,
    },
    /// The same path appears twice (case-insensitively).
    #[error("zip entry {name:?} appears twice")]
    Duplicate {
        /// The entry name.
        name: String,
    },
}

impl ZipError {
    /// Whether the refusal is about an unsupported feature rather than a malformed package.
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            ZipError::Encrypted { .. } | ZipError::Unsupported { .. }
        )
    }

    /// A stable reason for the ledger.
    pub fn ledger_reason(&self) -> &'static str {
        match self {
            ZipError::Unreadable { .. } => "zip_unreadable",
            ZipError::TooManyEntries { .. } => "zip_too_many_entries",
            ZipError::UnsafePath { .. } => "zip_unsafe_path",
            ZipError::Link { .. } => "zip_link",
            ZipError::Encrypted { .. } => "zip_encrypted",
            ZipError::Unsupported { .. } => "zip_unsupported",
            ZipError::EntryTooLarge { .. } | ZipError::TotalTooLarge { .. } => "zip_too_large",
            ZipError::RatioTooHigh { .. } => "zip_bomb",
            ZipError::Duplicate { .. } => "zip_duplicate_entry",
        }
    }
}

/// A zip whose every entry name was checked; file contents are inflated on demand.
pub struct SafeZip<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    /// Upper-cased path → (index, path as written).
    files: HashMap<String, (usize, String)>,
    inflated: u64,
    limits: ZipLimits,
}

#[derive(Debug, Clone, Copy)]
struct ZipLimits {
    entry: u64,
    total: u64,
    ratio: u64,
}

impl<'a> SafeZip<'a> {
    /// Opens a zip and checks every entry's name, type and declared size.
    pub fn open(bytes: &'a [u8], policy: &DocumentPolicy) -> Result<SafeZip<'a>, ZipError> {
        let mut archive =
            ZipArchive::new(Cursor::new(bytes)).map_err(|error| ZipError::Unreadable {
                reason: error.to_string(),
            })?;
        if archive.len() > policy.max_zip_entries {
            return Err(ZipError::TooManyEntries {
                count: archive.len(),
                limit: policy.max_zip_entries,
            });
        }
        let mut files = HashMap::new();
        let mut declared_total: u64 = 0;
        for index in 0..archive.len() {
            let entry = archive
                .by_index_raw(index)
                .map_err(|error| ZipError::Unreadable {
                    reason: error.to_string(),
                })?;
            let name = entry
                .name()
                .map_err(|error| ZipError::Unreadable {
                    reason: error.to_string(),
                })?
                .into_owned();
            check_name(&name)?;
            if entry.enclosed_name().is_none() {
                return Err(ZipError::UnsafePath {
                    name,
                    reason: "escapes the package",
                });
            }
            if entry.is_symlink() {
                return Err(ZipError::Link { name });
            }
            if entry.is_dir() {
                continue;
            }
            if entry.encrypted() {
                return Err(ZipError::Encrypted { name });
            }
            if entry.size() > policy.max_entry_size {
                return Err(ZipError::EntryTooLarge {
                    name,
                    limit: policy.max_entry_size,
                });
            }
            declared_total = declared_total.saturating_add(entry.size());
            if declared_total > policy.max_total_uncompressed {
                return Err(ZipError::TotalTooLarge {
                    limit: policy.max_total_uncompressed,
                });
            }
            if let Some(limit) = ratio_exceeded(entry.size(), entry.compressed_size(), policy) {
                return Err(ZipError::RatioTooHigh { name, limit });
            }
            let key = name.to_ascii_uppercase();
            if files.insert(key, (index, name.clone())).is_some() {
                return Err(ZipError::Duplicate { name });
            }
        }
        Ok(SafeZip {
            archive,
            files,
            inflated: 0,
            limits: ZipLimits {
                entry: policy.max_entry_size,
                total: policy.max_total_uncompressed,
                ratio: policy.max_compression_ratio,
            },
        })
    }

    /// Paths of the files (directories excluded), as written in the zip.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.values().map(|(_, name)| name.as_str())
    }

    /// The path as written in the zip of a file found case-insensitively.
    pub fn find(&self, path: &str) -> Option<&str> {
        self.files
            .get(&path.to_ascii_uppercase())
            .map(|(_, name)| name.as_str())
    }

    /// Inflates one file found case-insensitively, enforcing the limits on the actual bytes.
    pub fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, ZipError> {
        let Some((index, name)) = self.files.get(&path.to_ascii_uppercase()).cloned() else {
            return Ok(None);
        };
        let entry = self
            .archive
            .by_index(index)
            .map_err(|error| ZipError::Unsupported {
                name: name.clone(),
                reason: error.to_string(),
            })?;
        let compressed = entry.compressed_size();
        // Read one byte past the limit: a header may lie about the size, the inflater cannot.
        let remaining_total = self.limits.total.saturating_sub(self.inflated);
        let cap = self.limits.entry.min(remaining_total);
        let mut content = Vec::with_capacity(entry.size().min(cap) as usize);
        entry
            .take(cap.saturating_add(1))
            .read_to_end(&mut content)
            .map_err(|error| ZipError::Unreadable {
                reason: format!("{name}: {error}"),
            })?;
        let actual = content.len() as u64;
        if actual > cap {
            return Err(if cap == self.limits.entry {
                ZipError::EntryTooLarge {
                    name,
                    limit: self.limits.entry,
                }
            } else {
                ZipError::TotalTooLarge {
                    limit: self.limits.total,
                }
            });
        }
        if actual > RATIO_EXEMPT_SIZE && actual / compressed.max(1) > self.limits.ratio {
            return Err(ZipError::RatioTooHigh {
                name,
                limit: self.limits.ratio,
            });
        }
        self.inflated += actual;
        Ok(Some(content))
    }
}

fn ratio_exceeded(size: u64, compressed: u64, policy: &DocumentPolicy) -> Option<u64> {
    (size > RATIO_EXEMPT_SIZE && size / compressed.max(1) > policy.max_compression_ratio)
        .then_some(policy.max_compression_ratio)
}

/// Refuses names that could mean something else on another system than in the zip.
fn check_name(name: &str) -> Result<(), ZipError> {
    let reason = if name.contains('\\') {
        Some("backslash")
    } else if name.starts_with('/') {
        Some("absolute path")
    } else if name.as_bytes().get(1) == Some(&b':') {
        Some("drive letter")
    } else if name.contains('\0') {
        Some("NUL byte")
    } else if name.split('/').any(|part| part == "..") {
        Some("parent directory component")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ZipError::UnsafePath {
            name: name.chars().take(200).collect(),
            reason,
        }),
        None => Ok(()),
    }
}
