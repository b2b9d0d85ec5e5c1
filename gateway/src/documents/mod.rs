//! Documents: from the verified inner MIME entity to INS-identified deposit requests.
//!
//! [`extract`] walks the MIME tree ([`mime`]), reads IHE XDM packages ([`xdm`]) and bare CDA
//! attachments ([`cda`]), identifies the patient ([`crate::ins`]) and builds one
//! [`DepositRequest`] per CDA document. A PDF or any other file without structured metadata
//! is not deposited; it is listed in [`Extraction::not_deposited`] with the reason. The
//! MSSanté headers `X-MSS-CODECDA` and `X-MSS-INS` are compared with the content, never
//! trusted over it.
//!
//! Every refusal is a [`DocumentError`], answered at end of DATA with a permanent reply:
//!
//! | refusal | reply | ledger reason |
//! |---|---|---|
//! | MIME unparsable, too many parts, too deep, too large | 554 5.6.0 | `mime_*` |
//! | zip unreadable, unsafe path, link, bomb (size, ratio), too many entries, duplicate | 554 5.6.0 | `zip_*` |
//! | zip entry encrypted or compressed with an unsupported method | 554 5.6.1 | `zip_encrypted`, `zip_unsupported` |
//! | no `IHE_XDM/<subset>/METADATA.XML` | 554 5.6.0 | `xdm_no_metadata` |
//! | XML with DOCTYPE or entity (XXE, billion laughs) | 554 5.6.0 | `xml_dtd_or_entity` |
//! | XML undeclared prefix, malformed, over the depth/element limits | 554 5.6.0 | `xml_undeclared_prefix`, `xml_malformed`, `xml_limit` |
//! | XML not UTF-8 | 554 5.6.1 | `xml_malformed` |
//! | METADATA.XML not ebRS 3.0 (e.g. ebRIM 2.1) | 554 5.6.1 | `xdm_unsupported_metadata` |
//! | METADATA.XML structurally invalid | 554 5.6.0 | `xdm_invalid_metadata` |
//! | entry URI unsafe / names no file | 554 5.6.0 | `xdm_unsafe_uri`, `xdm_missing_document` |
//! | SHA-1 or size differs from the slots | 554 5.6.0 | `xdm_hash_mismatch`, `xdm_size_mismatch` |
//! | CDA header unusable | 554 5.6.0 | `cda_invalid` |
//! | DMP-required metadata missing and not derivable / contradicting the CDA | 554 5.6.0 | `metadata_missing`, `metadata_conflict` |
//! | no INS, bad key, unknown OID, OID of the other environment | 554 5.6.0 | `ins_missing`, `ins_bad_key`, `ins_invalid`, `ins_wrong_environment` |
//! | several patients in one message (ECO.2.1.1) | 554 5.6.0 | `several_patients` |
//! | XDM patientId ≠ CDA INS; traits differ; trait missing | 554 5.6.0 | `patient_mismatch`, `trait_mismatch`, `trait_missing` |
//! | `X-MSS-*` contradicts content (when configured to refuse) | 554 5.6.0 | `mss_header_inconsistent` |

pub mod assemble;
pub mod cda;
pub mod error;
pub mod mime;
pub mod policy;
pub mod time;
pub mod xdm;
pub mod xml;

mod extract;

pub use dmp_connector::deposit::{DepositRequest, SourceMessage};
pub use error::DocumentError;
pub use extract::{Extraction, ExtractionWarning, NotDeposited, NotDepositedReason, extract};
pub use policy::DocumentPolicy;
