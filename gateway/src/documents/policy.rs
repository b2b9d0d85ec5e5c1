//! Limits and identity settings for document extraction (`[documents]` in the config).

use serde::Deserialize;

use super::xml::XmlLimits;
use crate::ins::InsEnvironment;

/// Text kept per XML element: header values are far shorter, embedded bodies are not read.
const MAX_XML_TEXT: usize = 64 * 1024;

/// What the extractor accepts. Every limit is checked before the work it bounds is done
/// (decoded MIME size before unzipping, declared zip sizes before inflating, actual inflated
/// bytes while inflating).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocumentPolicy {
    /// Which INS authorities are accepted: `production` (INS-NIR, INS-NIA) or `test`
    /// (test and demo NIR).
    pub ins_environment: InsEnvironment,
    /// Maximum number of leaf MIME parts (bodies and attachments) in the message.
    pub max_attachments: usize,
    /// Maximum MIME nesting depth (multiparts and `message/rfc822` each count one level).
    pub max_mime_depth: usize,
    /// Maximum total decoded size of all MIME parts, in bytes.
    pub max_decoded_size: u64,
    /// Maximum number of entries in an XDM zip.
    pub max_zip_entries: usize,
    /// Maximum uncompressed size of one zip entry, in bytes.
    pub max_entry_size: u64,
    /// Maximum total uncompressed size of a zip, in bytes.
    pub max_total_uncompressed: u64,
    /// Maximum compression ratio (uncompressed / compressed) of an entry larger than 64 KiB.
    pub max_compression_ratio: u64,
    /// Maximum XML element nesting depth (METADATA.XML and CDA).
    pub max_xml_depth: usize,
    /// Maximum number of XML elements in one document.
    pub max_xml_elements: usize,
    /// Refuse the message when `X-MSS-CODECDA` / `X-MSS-INS` contradict the content; when
    /// false the contradiction is only reported in [`super::Extraction::warnings`].
    pub refuse_inconsistent_mss_headers: bool,
}

impl Default for DocumentPolicy {
    fn default() -> Self {
        DocumentPolicy {
            ins_environment: InsEnvironment::Production,
            max_attachments: 32,
            max_mime_depth: 8,
            max_decoded_size: 64 * 1024 * 1024,
            max_zip_entries: 256,
            max_entry_size: 32 * 1024 * 1024,
            max_total_uncompressed: 128 * 1024 * 1024,
            max_compression_ratio: 100,
            max_xml_depth: 64,
            max_xml_elements: 200_000,
            refuse_inconsistent_mss_headers: false,
        }
    }
}

impl DocumentPolicy {
    /// The XML limits of this policy.
    pub fn xml_limits(&self) -> XmlLimits {
        XmlLimits {
            max_depth: self.max_xml_depth,
            max_elements: self.max_xml_elements,
            max_text: MAX_XML_TEXT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `[documents]` section as documented for `config/gateway.toml`.
    const SNIPPET: &str = r#"
# Which INS authorities are accepted: "production" (INS-NIR, INS-NIA) or "test" (test/demo NIR).
ins_environment = "test"
max_attachments = 32
max_mime_depth = 8
max_decoded_size = 67108864
max_zip_entries = 256
max_entry_size = 33554432
max_total_uncompressed = 134217728
max_compression_ratio = 100
max_xml_depth = 64
max_xml_elements = 200000
refuse_inconsistent_mss_headers = false
"#;

    #[test]
    fn documented_snippet_parses_and_matches_the_defaults() {
        let policy: DocumentPolicy = toml::from_str(SNIPPET).unwrap();
        assert_eq!(
            policy,
            DocumentPolicy {
                ins_environment: InsEnvironment::Test,
                ..DocumentPolicy::default()
            }
        );
        let empty: DocumentPolicy = toml::from_str("").unwrap();
        assert_eq!(empty, DocumentPolicy::default());
    }

    #[test]
    fn unknown_keys_and_environments_are_refused() {
        assert!(toml::from_str::<DocumentPolicy>("max_attachment = 3").is_err());
        assert!(toml::from_str::<DocumentPolicy>("ins_environment = \"demo\"").is_err());
    }
}
