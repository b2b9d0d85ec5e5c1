//! The MSSanté liste blanche: which operator certificate DNs may speak for which domains
//! (DOMAIN.md §1.3).
//!
//! The file is downloaded from outside, so it is parsed defensively: size and entry limits, no
//! DTD (a `<!DOCTYPE` is refused outright: no entity expansion, no external fetch), only the five
//! predefined entities and character references, UTF-8 only. Elements are matched by local name,
//! so the file parses whether or not it uses a namespace prefix; the root must be
//! `ListeBlancheMSSante`. An entry that is unusable (no `Nom`, no valid DN) is skipped and reported
//! in [`Whitelist::skipped`]: skipping only ever denies, never grants.
//!
//! Domains are compared after trimming, dropping a final dot and lowercasing (Unicode lowercase
//! for IDN U-labels; A-labels `xn--…` are not converted, so a list written in U-labels does not
//! match a sender written in A-labels). DNs are compared in the canonical form of [`normalize_dn`].

mod dn;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use quick_xml::events::Event;
use sha2::{Digest, Sha256};

pub use dn::{DnError, normalize_dn};

/// Largest liste blanche accepted (the real one is a few MiB).
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;
/// Most `Domaine` entries accepted (the real one has ~9,000).
pub const MAX_ENTRIES: usize = 100_000;
/// Deepest element nesting accepted (the schema needs 4).
const MAX_DEPTH: usize = 16;
/// Largest checksum file read.
const MAX_CHECKSUM_FILE: u64 = 4096;
const ROOT: &str = "ListeBlancheMSSante";

/// The parsed list: domain → set of operator certificate DNs (canonical form).
#[derive(Debug, Clone)]
pub struct Whitelist {
    domains: HashMap<String, HashSet<String>>,
    operators: HashSet<String>,
    generated_at: Option<String>,
    skipped: Vec<SkippedEntry>,
}

/// An entry left out of the list, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    /// 1-based position of the `Domaine` element in the file.
    pub index: usize,
    /// Its `Nom`, when it had one.
    pub domain: Option<String>,
    /// Why it was left out.
    pub reason: String,
}

/// Why a liste blanche could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WhitelistError {
    /// The file (or checksum file) cannot be read.
    #[error("liste blanche: cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file exceeds [`MAX_FILE_SIZE`].
    #[error("liste blanche: {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Size found (at least).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The checksum file does not hold a SHA-256 in hex.
    #[error("liste blanche: checksum file {path} is malformed: {reason}")]
    ChecksumFile {
        /// The checksum file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file's SHA-256 is not the published one.
    #[error("liste blanche: {path} has SHA-256 {actual}, checksum file says {expected}")]
    ChecksumMismatch {
        /// The list file.
        path: PathBuf,
        /// From the checksum file.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// Not UTF-8, or declares another encoding.
    #[error("liste blanche: unsupported encoding: {reason}")]
    Encoding {
        /// What was found.
        reason: String,
    },
    /// A `<!DOCTYPE` was present (refused: DTDs enable entity attacks).
    #[error("liste blanche: DOCTYPE declarations are refused")]
    Doctype,
    /// An entity other than the five predefined ones.
    #[error("liste blanche: unknown entity &{name};")]
    UnknownEntity {
        /// The entity name.
        name: String,
    },
    /// Malformed XML.
    #[error("liste blanche: XML error at byte {position}: {reason}")]
    Xml {
        /// Byte offset in the file.
        position: u64,
        /// Parser diagnostic.
        reason: String,
    },
    /// The root element is not `ListeBlancheMSSante`.
    #[error("liste blanche: root element is {found:?}, expected ListeBlancheMSSante")]
    WrongRoot {
        /// Local name of the root found.
        found: String,
    },
    /// Elements nested deeper than the schema allows.
    #[error("liste blanche: elements nested deeper than {limit}")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// More than [`MAX_ENTRIES`] entries.
    #[error("liste blanche: more than {limit} Domaine entries")]
    TooManyEntries {
        /// The limit.
        limit: usize,
    },
    /// Not a single usable entry: refusing to replace a list by an empty one.
    #[error("liste blanche: no usable Domaine entry ({skipped} skipped)")]
    NoDomains {
        /// Entries skipped as unusable.
        skipped: usize,
    },
}

/// Size limits, separate so that tests can exercise them cheaply.
#[derive(Debug, Clone, Copy)]
struct Limits {
    file_size: u64,
    entries: usize,
}

const LIMITS: Limits = Limits {
    file_size: MAX_FILE_SIZE,
    entries: MAX_ENTRIES,
};

impl Whitelist {
    /// Reads and parses `xml`; when `checksum` is given, its SHA-256 (first token of the file,
    /// as written by `sha256sum`/`shasum -a 256`, or the bare hex) must match first.
    pub fn load(xml: &Path, checksum: Option<&Path>) -> Result<Whitelist, WhitelistError> {
        let bytes = read_limited(xml, LIMITS.file_size)?;
        if let Some(checksum_path) = checksum {
            verify_checksum(xml, &bytes, checksum_path)?;
        }
        Whitelist::parse(&bytes)
    }

    /// Parses the XML content of a liste blanche.
    pub fn parse(xml: &[u8]) -> Result<Whitelist, WhitelistError> {
        parse_with(xml, LIMITS)
    }

    /// True when `subject_dn` is listed for `domain` (both compared in canonical form).
    pub fn permits(&self, domain: &str, subject_dn: &str) -> bool {
        let Ok(subject) = normalize_dn(subject_dn) else {
            return false;
        };
        self.domains
            .get(&normalize_domain(domain))
            .is_some_and(|operators| operators.contains(&subject))
    }

    /// True when `subject_dn` is listed for at least one domain (an operator of the trust space;
    /// used when there is no sender domain to check, e.g. the null reverse path).
    pub fn permits_any(&self, subject_dn: &str) -> bool {
        normalize_dn(subject_dn).is_ok_and(|subject| self.operators.contains(&subject))
    }

    /// True when `domain` is in the list at all.
    pub fn contains_domain(&self, domain: &str) -> bool {
        self.domains.contains_key(&normalize_domain(domain))
    }

    /// Number of distinct domains.
    pub fn domain_count(&self) -> usize {
        self.domains.len()
    }

    /// `DateDeGeneration` as written in the file, if present.
    pub fn generated_at(&self) -> Option<&str> {
        self.generated_at.as_deref()
    }

    /// Entries that were left out as unusable.
    pub fn skipped(&self) -> &[SkippedEntry] {
        &self.skipped
    }
}

/// Trimmed, without a final dot, lowercased (Unicode, for IDN U-labels).
fn normalize_domain(domain: &str) -> String {
    let trimmed = domain.trim();
    trimmed.strip_suffix('.').unwrap_or(trimmed).to_lowercase()
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, WhitelistError> {
    let read_error = |source| WhitelistError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    // Read one byte past the limit to detect oversize without trusting the metadata.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > limit {
        return Err(WhitelistError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

fn verify_checksum(xml: &Path, bytes: &[u8], checksum: &Path) -> Result<(), WhitelistError> {
    let content = read_limited(checksum, MAX_CHECKSUM_FILE)?;
    let malformed = |reason: &str| WhitelistError::ChecksumFile {
        path: checksum.to_owned(),
        reason: reason.to_owned(),
    };
    let text = std::str::from_utf8(&content).map_err(|_| malformed("not UTF-8"))?;
    let expected = text
        .split_whitespace()
        .next()
        .ok_or_else(|| malformed("empty"))?
        .to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(malformed("first token is not 64 hex digits"));
    }
    let actual = hex::encode(Sha256::digest(bytes));
    if actual != expected {
        return Err(WhitelistError::ChecksumMismatch {
            path: xml.to_owned(),
            expected,
            actual,
        });
    }
    Ok(())
}

/// An entry being read.
#[derive(Default)]
struct Entry {
    name: Option<String>,
    dns: Vec<String>,
}

/// Which text is being collected.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Capture {
    Name,
    Dn,
    Generated,
}

fn parse_with(xml: &[u8], limits: Limits) -> Result<Whitelist, WhitelistError> {
    if xml.len() as u64 > limits.file_size {
        return Err(WhitelistError::TooLarge {
            size: xml.len() as u64,
            limit: limits.file_size,
        });
    }
    let text = std::str::from_utf8(xml).map_err(|error| WhitelistError::Encoding {
        reason: format!("not UTF-8: {error}"),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = quick_xml::Reader::from_str(text);
    let mut list = Whitelist {
        domains: HashMap::new(),
        operators: HashSet::new(),
        generated_at: None,
        skipped: Vec::new(),
    };
    let mut stack: Vec<String> = Vec::new();
    let mut entry: Option<Entry> = None;
    let mut entries = 0usize;
    let mut capture: Option<(Capture, String)> = None;
    let mut root_seen = false;
    loop {
        let event = reader.read_event().map_err(|error| WhitelistError::Xml {
            position: reader.error_position(),
            reason: error.to_string(),
        })?;
        match event {
            Event::DocType(_) => return Err(WhitelistError::Doctype),
            Event::Decl(declaration) => {
                if let Some(encoding) = declaration.encoding() {
                    let encoding = encoding.map_err(|error| WhitelistError::Xml {
                        position: reader.buffer_position(),
                        reason: error.to_string(),
                    })?;
                    if !encoding.eq_ignore_ascii_case("utf-8") {
                        return Err(WhitelistError::Encoding {
                            reason: format!("declared encoding {encoding}"),
                        });
                    }
                }
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                let is_empty = matches!(event, Event::Empty(_));
                let name = start.local_name().as_ref().to_owned();
                if stack.is_empty() {
                    if root_seen || name != ROOT {
                        return Err(WhitelistError::WrongRoot { found: name });
                    }
                    root_seen = true;
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(WhitelistError::TooDeep { limit: MAX_DEPTH });
                }
                let parent = stack.last().map(String::as_str);
                match (parent, name.as_str()) {
                    (Some("ListeDomaines"), "Domaine") => {
                        entries += 1;
                        if entries > limits.entries {
                            return Err(WhitelistError::TooManyEntries {
                                limit: limits.entries,
                            });
                        }
                        entry = Some(Entry::default());
                    }
                    (Some("Domaine"), "Nom") => capture = Some((Capture::Name, String::new())),
                    (Some("Domaine"), "DNCertificatOperateur") => {
                        capture = Some((Capture::Dn, String::new()))
                    }
                    (Some(ROOT), "DateDeGeneration") => {
                        capture = Some((Capture::Generated, String::new()))
                    }
                    _ => {}
                }
                stack.push(name);
                if is_empty {
                    close(&mut stack, &mut capture, &mut entry, entries, &mut list);
                }
            }
            Event::End(_) => close(&mut stack, &mut capture, &mut entry, entries, &mut list),
            Event::Text(content) => {
                if let Some((_, buffer)) = capture.as_mut() {
                    buffer.push_str(&content.xml10_content());
                }
            }
            Event::CData(content) => {
                if let Some((_, buffer)) = capture.as_mut() {
                    buffer.push_str(&content.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(&reference)?;
                if let Some((_, buffer)) = capture.as_mut() {
                    buffer.push(resolved);
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::PI(_) => {}
        }
    }
    if !root_seen {
        return Err(WhitelistError::WrongRoot {
            found: String::new(),
        });
    }
    if list.domains.is_empty() {
        return Err(WhitelistError::NoDomains {
            skipped: list.skipped.len(),
        });
    }
    Ok(list)
}

/// Handles the end of the innermost element.
fn close(
    stack: &mut Vec<String>,
    capture: &mut Option<(Capture, String)>,
    entry: &mut Option<Entry>,
    index: usize,
    list: &mut Whitelist,
) {
    let Some(name) = stack.pop() else { return };
    match name.as_str() {
        "Nom" | "DNCertificatOperateur" | "DateDeGeneration" => {
            let Some((kind, text)) = capture.take() else {
                return;
            };
            match (kind, entry.as_mut()) {
                (Capture::Name, Some(current)) => current.name = Some(text),
                (Capture::Dn, Some(current)) => current.dns.push(text),
                (Capture::Generated, _) => list.generated_at = Some(text.trim().to_owned()),
                _ => {}
            }
        }
        "Domaine" if stack.last().map(String::as_str) == Some("ListeDomaines") => {
            if let Some(finished) = entry.take() {
                add_entry(list, index, finished);
            }
        }
        _ => {}
    }
}

fn add_entry(list: &mut Whitelist, index: usize, entry: Entry) {
    let domain = entry.name.as_deref().map(normalize_domain);
    let mut skip = |reason: String| {
        tracing::warn!(index, domain = ?entry.name, %reason, "liste blanche entry skipped");
        list.skipped.push(SkippedEntry {
            index,
            domain: entry.name.clone(),
            reason,
        });
    };
    let Some(domain) = domain.filter(|domain| !domain.is_empty()) else {
        skip("no Nom".to_owned());
        return;
    };
    let mut normalized = Vec::new();
    for dn in &entry.dns {
        match normalize_dn(dn) {
            Ok(canonical) => normalized.push(canonical),
            Err(error) => skip(error.to_string()),
        }
    }
    if normalized.is_empty() {
        if entry.dns.is_empty() {
            skip("no DNCertificatOperateur".to_owned());
        }
        return;
    }
    list.operators.extend(normalized.iter().cloned());
    list.domains.entry(domain).or_default().extend(normalized);
}

/// The five predefined XML entities and character references; anything else is refused (there
/// is no DTD to define it, and guessing would hide a tampered file).
fn resolve_reference(reference: &quick_xml::events::BytesRef<'_>) -> Result<char, WhitelistError> {
    if reference.is_char_ref() {
        return match reference.resolve_char_ref() {
            Ok(Some(character)) => Ok(character),
            Ok(None) | Err(_) => Err(WhitelistError::UnknownEntity {
                name: reference.xml10_content().into_owned(),
            }),
        };
    }
    let name = reference.xml10_content();
    match name.as_ref() {
        "amp" => Ok('&'),
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        other => Err(WhitelistError::UnknownEntity {
            name: other.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests;
