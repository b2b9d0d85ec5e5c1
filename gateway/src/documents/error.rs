//! Why a message's documents were refused, and how each refusal is answered.
//!
//! [`DocumentError::reply`] and [`DocumentError::ledger_reason`] are the one place where a
//! refusal becomes an SMTP reply and a ledger reason (table in the [`super`] module doc). All
//! refusals are permanent: resending the same bytes cannot succeed. Texts never contain the
//! patient's identity or document content, only document names, metadata field names and
//! numbers.

use smtp_in::reply::{EnhancedCode, Reply};
use thiserror::Error;

use super::xdm::zip::ZipError;
use super::xml::XmlError;
use crate::ins::InsError;

/// A refusal of the message's documents.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The inner entity is not a parsable MIME message.
    #[error("message is not parsable MIME")]
    UnparsableMime,
    /// More MIME parts than allowed.
    #[error("message has {count} MIME parts, more than the limit of {limit}")]
    TooManyParts {
        /// Parts seen when the limit was hit.
        count: usize,
        /// Configured limit.
        limit: usize,
    },
    /// MIME nesting deeper than allowed.
    #[error("MIME nesting deeper than {limit} levels")]
    MimeTooDeep {
        /// Configured limit.
        limit: usize,
    },
    /// Decoded MIME parts larger than allowed.
    #[error("decoded MIME parts exceed {limit} bytes")]
    DecodedTooLarge {
        /// Configured limit.
        limit: u64,
    },
    /// The XDM zip is unsafe or unreadable.
    #[error("attachment {attachment}: {source}")]
    Zip {
        /// The attachment's file name.
        attachment: String,
        /// What is wrong with the zip.
        source: ZipError,
    },
    /// The XDM zip has no `IHE_XDM/<subset>/METADATA.XML`.
    #[error("attachment {attachment}: no IHE_XDM/<subset>/METADATA.XML")]
    MissingMetadataFile {
        /// The attachment's file name.
        attachment: String,
    },
    /// An XML document (METADATA.XML or CDA) was refused by the safe parser.
    #[error("{document}: {source}")]
    Xml {
        /// Which document (zip path or attachment name).
        document: String,
        /// The XML refusal.
        source: XmlError,
    },
    /// METADATA.XML is not an ebRS 3.0 SubmitObjectsRequest (e.g. XDM 2007 ebRIM 2.1).
    #[error("{document}: unsupported metadata: {reason}")]
    UnsupportedMetadata {
        /// The METADATA.XML path.
        document: String,
        /// What was found.
        reason: String,
    },
    /// METADATA.XML is structurally wrong (missing patientId, URI, several submission sets…).
    #[error("{document}: invalid metadata: {reason}")]
    InvalidMetadata {
        /// The METADATA.XML path or entry id.
        document: String,
        /// What is wrong.
        reason: String,
    },
    /// A document entry's URI escapes the package or is not safe.
    #[error("entry {entry}: URI {uri:?} is not a safe relative path in the package")]
    UnsafeUri {
        /// The ExtrinsicObject id.
        entry: String,
        /// The URI slot value.
        uri: String,
    },
    /// A document entry's URI names no file of the package.
    #[error("entry {entry}: URI {uri:?} names no file of the package")]
    MissingDocument {
        /// The ExtrinsicObject id.
        entry: String,
        /// The URI slot value.
        uri: String,
    },
    /// The document's SHA-1 differs from the `hash` slot.
    #[error("entry {entry}: SHA-1 {computed} differs from the declared hash {declared}")]
    HashMismatch {
        /// The ExtrinsicObject id.
        entry: String,
        /// The `hash` slot.
        declared: String,
        /// SHA-1 of the file.
        computed: String,
    },
    /// The document's size differs from the `size` slot.
    #[error("entry {entry}: size {actual} differs from the declared size {declared}")]
    SizeMismatch {
        /// The ExtrinsicObject id.
        entry: String,
        /// The `size` slot.
        declared: String,
        /// Bytes in the file.
        actual: u64,
    },
    /// A CDA document is not a usable CDA R2 header.
    #[error("{document}: invalid CDA header: {reason}")]
    InvalidCda {
        /// Which document.
        document: String,
        /// What is wrong.
        reason: String,
    },
    /// A DMP-required metadata field is absent and cannot be derived from the CDA header.
    #[error("{document}: required metadata {field} is missing and cannot be derived")]
    MissingMetadata {
        /// Which document.
        document: String,
        /// The XDS field name.
        field: &'static str,
    },
    /// An XDS metadata value contradicts the CDA header (uniqueId, typeCode…).
    #[error("{document}: metadata {field} contradicts the CDA header")]
    MetadataConflict {
        /// Which document.
        document: String,
        /// The XDS field name.
        field: &'static str,
    },
    /// The document carries no INS.
    #[error("{document}: no INS (matricule with an INS OID) for the patient")]
    MissingIns {
        /// Which document.
        document: String,
    },
    /// An INS failed validation (key, OID, environment).
    #[error("{document}: {source}")]
    InvalidIns {
        /// Which document.
        document: String,
        /// The INS refusal.
        source: InsError,
    },
    /// Documents of one message concern several patients (MSSanté ECO.2.1.1).
    #[error("documents {first} and {second} concern different patients (one patient per message)")]
    SeveralPatients {
        /// A document of the first patient.
        first: String,
        /// A document of another patient.
        second: String,
    },
    /// The XDM patientId differs from the CDA recordTarget INS.
    #[error("{document}: XDM patientId differs from the CDA recordTarget INS")]
    PatientMismatch {
        /// Which document.
        document: String,
    },
    /// The XDM sourcePatientInfo traits differ from the CDA traits.
    #[error("{document}: patient trait {identity_trait} differs between XDM metadata and CDA")]
    TraitMismatch {
        /// Which document.
        document: String,
        /// Which trait (birth name, first given name, birth date, sex, birthplace).
        identity_trait: &'static str,
    },
    /// The CDA recordTarget lacks a trait the INS requires.
    #[error("{document}: CDA recordTarget lacks the INS trait {identity_trait}")]
    MissingTrait {
        /// Which document.
        document: String,
        /// Which trait.
        identity_trait: &'static str,
    },
    /// `X-MSS-CODECDA` / `X-MSS-INS` contradict the content (only when the policy refuses).
    #[error("header {header} contradicts the content: {reason}")]
    InconsistentMssHeader {
        /// The header name.
        header: &'static str,
        /// What differs.
        reason: String,
    },
}

impl DocumentError {
    /// The SMTP reply for this refusal (always permanent, 554 5.6.x).
    pub fn reply(&self) -> Reply {
        let detail = match self {
            DocumentError::UnsupportedMetadata { .. } => 1,
            DocumentError::Zip { source, .. } if source.is_unsupported() => 1,
            DocumentError::Xml {
                source: XmlError::NotUtf8,
                ..
            } => 1,
            _ => 0,
        };
        Reply::new(
            554,
            EnhancedCode::new(5, 6, detail),
            reply_text(&self.to_string()),
        )
    }

    /// A stable reason for the ledger and metrics.
    pub fn ledger_reason(&self) -> &'static str {
        match self {
            DocumentError::UnparsableMime => "mime_unparsable",
            DocumentError::TooManyParts { .. } => "mime_too_many_parts",
            DocumentError::MimeTooDeep { .. } => "mime_too_deep",
            DocumentError::DecodedTooLarge { .. } => "mime_too_large",
            DocumentError::Zip { source, .. } => source.ledger_reason(),
            DocumentError::MissingMetadataFile { .. } => "xdm_no_metadata",
            DocumentError::Xml { source, .. } => match source {
                XmlError::Doctype | XmlError::EntityReference { .. } => "xml_dtd_or_entity",
                XmlError::UndeclaredPrefix { .. } => "xml_undeclared_prefix",
                XmlError::TooDeep { .. } | XmlError::TooManyElements { .. } => "xml_limit",
                _ => "xml_malformed",
            },
            DocumentError::UnsupportedMetadata { .. } => "xdm_unsupported_metadata",
            DocumentError::InvalidMetadata { .. } => "xdm_invalid_metadata",
            DocumentError::UnsafeUri { .. } => "xdm_unsafe_uri",
            DocumentError::MissingDocument { .. } => "xdm_missing_document",
            DocumentError::HashMismatch { .. } => "xdm_hash_mismatch",
            DocumentError::SizeMismatch { .. } => "xdm_size_mismatch",
            DocumentError::InvalidCda { .. } => "cda_invalid",
            DocumentError::MissingMetadata { .. } => "metadata_missing",
            DocumentError::MetadataConflict { .. } => "metadata_conflict",
            DocumentError::MissingIns { .. } => "ins_missing",
            DocumentError::InvalidIns { source, .. } => match source {
                InsError::WrongEnvironment { .. } => "ins_wrong_environment",
                InsError::BadKey { .. } => "ins_bad_key",
                _ => "ins_invalid",
            },
            DocumentError::SeveralPatients { .. } => "several_patients",
            DocumentError::PatientMismatch { .. } => "patient_mismatch",
            DocumentError::TraitMismatch { .. } => "trait_mismatch",
            DocumentError::MissingTrait { .. } => "trait_missing",
            DocumentError::InconsistentMssHeader { .. } => "mss_header_inconsistent",
        }
    }
}

/// Longest reply text, in characters: names from the package can be long.
const MAX_REPLY_TEXT: usize = 300;

/// One line of printable text: names and ids come from the sender's package, and a CR/LF in
/// them must not split or forge reply lines.
fn reply_text(text: &str) -> String {
    let mut line: String = text
        .chars()
        .map(|character| {
            if character.is_control() {
                ' '
            } else {
                character
            }
        })
        .take(MAX_REPLY_TEXT)
        .collect();
    if text.chars().count() > MAX_REPLY_TEXT {
        line.push_str("...");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_is_one_bounded_line() {
        let error = DocumentError::MissingDocument {
            entry: format!("Doc\r\n250 2.0.0 forged{}", "x".repeat(500)),
            uri: "DOC.XML".to_owned(),
        };
        let reply = error.reply();
        assert_eq!(reply.code, 554);
        assert_eq!(reply.enhanced, Some(EnhancedCode::new(5, 6, 0)));
        assert_eq!(reply.to_wire().matches("\r\n").count(), 1);
        assert!(reply.text.chars().count() <= MAX_REPLY_TEXT + 3);
        assert_eq!(error.ledger_reason(), "xdm_missing_document");
    }
}
