//! IHE XDM (ITI-32) packages: safe unzip, METADATA.XML, URI resolution, hash and size checks.
//!
//! URIs are resolved relative to the subset folder first and then relative to `IHE_XDM/`,
//! because the ANS DRIM sample writes `SS000001/KOS_1_1.DCM` (subset included) where IHE
//! tooling writes the bare file name (DOMAIN.md §5.1). Every entry must have `hash` and `size`
//! slots, and they must match the file: a mismatch means the package was altered or built
//! wrongly, and the DMP would refuse it anyway.

pub mod metadata;
pub mod zip;

use self::metadata::{EntryMetadata, SubmissionMetadata};
use self::zip::SafeZip;
use super::{DocumentError, DocumentPolicy};

/// The folder every XDM submission set lives under.
const ROOT_FOLDER: &str = "IHE_XDM/";

/// A read and checked XDM package.
#[derive(Debug, Clone)]
pub struct XdmPackage {
    /// The submission sets, in subset folder order.
    pub subsets: Vec<XdmSubset>,
}

/// One `IHE_XDM/<subset>/` folder.
#[derive(Debug, Clone)]
pub struct XdmSubset {
    /// The subset folder name (e.g. `SUBSET01`).
    pub folder: String,
    /// Its METADATA.XML content.
    pub metadata: SubmissionMetadata,
    /// The documents its entries reference, hash and size checked.
    pub documents: Vec<XdmDocument>,
}

/// A document of the package, with the metadata entry that describes it.
#[derive(Debug, Clone)]
pub struct XdmDocument {
    /// Its path in the zip.
    pub path: String,
    /// Its DocumentEntry metadata.
    pub entry: EntryMetadata,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// SHA-1 of the bytes, lowercase hex.
    pub sha1: String,
}

/// Whether an attachment is an XDM package: by name (any case, `IHE_XDM.ZIP` or `IHE-XDM.ZIP`)
/// or by content (a zip with an `IHE_XDM/` folder).
pub fn is_xdm(name: Option<&str>, bytes: &[u8]) -> bool {
    let named = name.is_some_and(|name| {
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        base.eq_ignore_ascii_case("IHE_XDM.ZIP") || base.eq_ignore_ascii_case("IHE-XDM.ZIP")
    });
    // Entry names sit uncompressed in the local and central headers, so a byte search finds
    // the folder without inflating anything.
    named
        || (bytes.starts_with(b"PK\x03\x04")
            && bytes
                .windows(ROOT_FOLDER.len())
                .any(|window| window.eq_ignore_ascii_case(ROOT_FOLDER.as_bytes())))
}

/// Reads an XDM package (`attachment` names it in errors).
pub fn read_package(
    bytes: &[u8],
    attachment: &str,
    policy: &DocumentPolicy,
) -> Result<XdmPackage, DocumentError> {
    let zip_error = |source| DocumentError::Zip {
        attachment: attachment.to_owned(),
        source,
    };
    let mut zip = SafeZip::open(bytes, policy).map_err(zip_error)?;
    let mut metadata_paths: Vec<(String, String)> = zip
        .paths()
        .filter_map(|path| {
            let mut parts = path.split('/');
            let (Some(root), Some(folder), Some(file), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return None;
            };
            (root.eq_ignore_ascii_case("IHE_XDM")
                && !folder.is_empty()
                && file.eq_ignore_ascii_case("METADATA.XML"))
            .then(|| (folder.to_owned(), path.to_owned()))
        })
        .collect();
    if metadata_paths.is_empty() {
        return Err(DocumentError::MissingMetadataFile {
            attachment: attachment.to_owned(),
        });
    }
    metadata_paths.sort();
    let mut subsets = Vec::with_capacity(metadata_paths.len());
    for (folder, path) in metadata_paths {
        let xml = zip.read(&path).map_err(zip_error)?.unwrap_or_default();
        let metadata = metadata::parse(&xml, &path, policy.xml_limits())?;
        let mut documents = Vec::with_capacity(metadata.entries.len());
        for entry in &metadata.entries {
            documents.push(read_document(&mut zip, &folder, entry, attachment)?);
        }
        subsets.push(XdmSubset {
            folder,
            metadata,
            documents,
        });
    }
    Ok(XdmPackage { subsets })
}

fn read_document(
    zip: &mut SafeZip<'_>,
    folder: &str,
    entry: &EntryMetadata,
    attachment: &str,
) -> Result<XdmDocument, DocumentError> {
    let uri = entry
        .uri
        .as_deref()
        .ok_or_else(|| DocumentError::MissingMetadata {
            document: entry.id.clone(),
            field: "URI",
        })?;
    if !is_safe_uri(uri) {
        return Err(DocumentError::UnsafeUri {
            entry: entry.id.clone(),
            uri: uri.chars().take(200).collect(),
        });
    }
    let candidates = [
        format!("{ROOT_FOLDER}{folder}/{uri}"),
        format!("{ROOT_FOLDER}{uri}"),
    ];
    let Some(path) = candidates
        .iter()
        .find_map(|candidate| zip.find(candidate).map(str::to_owned))
    else {
        return Err(DocumentError::MissingDocument {
            entry: entry.id.clone(),
            uri: uri.to_owned(),
        });
    };
    let bytes = zip
        .read(&path)
        .map_err(|source| DocumentError::Zip {
            attachment: attachment.to_owned(),
            source,
        })?
        .unwrap_or_default();
    let sha1 = hex::encode(openssl::sha::sha1(&bytes));
    let declared_size = entry
        .size
        .as_deref()
        .ok_or_else(|| DocumentError::MissingMetadata {
            document: entry.id.clone(),
            field: "size",
        })?;
    if declared_size.parse::<u64>().ok() != Some(bytes.len() as u64) {
        return Err(DocumentError::SizeMismatch {
            entry: entry.id.clone(),
            declared: declared_size.chars().take(32).collect(),
            actual: bytes.len() as u64,
        });
    }
    let declared_hash = entry
        .hash
        .as_deref()
        .ok_or_else(|| DocumentError::MissingMetadata {
            document: entry.id.clone(),
            field: "hash",
        })?;
    // Samples use both cases for the hex digest.
    if !declared_hash.eq_ignore_ascii_case(&sha1) {
        return Err(DocumentError::HashMismatch {
            entry: entry.id.clone(),
            declared: declared_hash.chars().take(64).collect(),
            computed: sha1,
        });
    }
    Ok(XdmDocument {
        path,
        entry: entry.clone(),
        bytes,
        sha1,
    })
}

/// A URI slot must be a plain relative path inside the package.
fn is_safe_uri(uri: &str) -> bool {
    !uri.is_empty()
        && !uri.starts_with('/')
        && !uri.contains(['\\', ':', '\0', '%', '?', '#'])
        && uri
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}
