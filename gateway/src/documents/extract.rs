//! The extraction entry point: classify each MIME leaf, read it, enforce one patient per
//! message and compare the MSSanté headers with the content.

use std::fmt;

use dmp_connector::deposit::{DepositRequest, SourceMessage};
use mail_parser::MessageParser;

use super::assemble::{CdaDocument, deposit_request};
use super::mime::{self, Attachment};
use super::xdm::{self, XdmDocument, XdmSubset};
use super::{DocumentError, DocumentPolicy, cda};
use crate::ins::Ins;

/// The result of a successful extraction.
#[derive(Debug, Clone, Default)]
pub struct Extraction {
    /// One deposit request per CDA document, in message order.
    pub requests: Vec<DepositRequest>,
    /// Attachments and package files that are not deposited, with the reason.
    pub not_deposited: Vec<NotDeposited>,
    /// Inconsistencies that did not refuse the message (see the policy).
    pub warnings: Vec<ExtractionWarning>,
}

/// A file that is not deposited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotDeposited {
    /// Attachment name or path in the XDM package.
    pub name: String,
    /// Why it is not deposited.
    pub reason: NotDepositedReason,
}

/// Why a file is not deposited.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotDepositedReason {
    /// A PDF travelling outside a CDA: no structured metadata (no INS, no codes) to deposit it with.
    PdfWithoutMetadata,
    /// An XDM entry that is not a CDA document (the DMP takes CDA R2 documents).
    NotCda {
        /// The entry's mimeType.
        mime_type: String,
    },
    /// An attachment of a kind that carries no document (signature, image, archive…).
    Unrecognised {
        /// Its content type.
        content_type: String,
    },
}

impl NotDepositedReason {
    /// A stable reason for the ledger.
    pub fn ledger_reason(&self) -> &'static str {
        match self {
            NotDepositedReason::PdfWithoutMetadata => "pdf_without_metadata",
            NotDepositedReason::NotCda { .. } => "not_cda",
            NotDepositedReason::Unrecognised { .. } => "unrecognised_attachment",
        }
    }
}

impl fmt::Display for NotDepositedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotDepositedReason::PdfWithoutMetadata => {
                f.write_str("PDF without structured metadata (no CDA header, no INS)")
            }
            NotDepositedReason::NotCda { mime_type } => {
                write!(f, "XDM entry of type {mime_type} is not a CDA document")
            }
            NotDepositedReason::Unrecognised { content_type } => {
                write!(
                    f,
                    "attachment of type {content_type} carries no health document"
                )
            }
        }
    }
}

/// An inconsistency noted without refusing the message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtractionWarning {
    /// An MSSanté header disagrees with the content, or is missing where required.
    MssHeader {
        /// The header name.
        header: &'static str,
        /// What differs.
        reason: String,
    },
}

/// Extracts the deposit requests of a trusted message's inner MIME entity.
pub fn extract(
    inner_entity: &[u8],
    source: SourceMessage,
    policy: &DocumentPolicy,
) -> Result<Extraction, DocumentError> {
    let message = MessageParser::default()
        .parse(inner_entity)
        .ok_or(DocumentError::UnparsableMime)?;
    let leaves = mime::leaf_parts(&message, policy)?;
    let mut state = State {
        policy,
        source,
        extraction: Extraction::default(),
        patient: None,
        xdm_codes: Vec::new(),
    };
    for (index, leaf) in leaves.iter().enumerate() {
        if leaf.is_body_text() {
            continue;
        }
        state.attachment(leaf, &leaf.display_name(index))?;
    }
    let codes_header = mime::header_text(&message, "X-MSS-CODECDA");
    let ins_header = mime::header_text(&message, "X-MSS-INS");
    state.check_mss_headers(codes_header.as_deref(), ins_header.as_deref())?;
    Ok(state.extraction)
}

struct State<'p> {
    policy: &'p DocumentPolicy,
    source: SourceMessage,
    extraction: Extraction,
    /// The message's patient and the document that named it first.
    patient: Option<(Ins, String)>,
    /// Type codes of the CDA documents found in XDM packages (for `X-MSS-CODECDA`).
    xdm_codes: Vec<String>,
}

impl State<'_> {
    fn attachment(&mut self, leaf: &Attachment<'_>, name: &str) -> Result<(), DocumentError> {
        if xdm::is_xdm(leaf.name.as_deref(), leaf.bytes) {
            let package = xdm::read_package(leaf.bytes, name, self.policy)?;
            for subset in package.subsets {
                self.subset(subset)?;
            }
            return Ok(());
        }
        let is_pdf = leaf.content_type == "application/pdf"
            || leaf.bytes.starts_with(b"%PDF-")
            || leaf
                .name
                .as_deref()
                .is_some_and(|name| name.to_ascii_lowercase().ends_with(".pdf"));
        if is_pdf {
            self.not_deposited(name, NotDepositedReason::PdfWithoutMetadata);
            return Ok(());
        }
        if cda::looks_like_cda(leaf.bytes) {
            let header = cda::parse(leaf.bytes, name, self.policy.xml_limits())?;
            let sha1 = hex::encode(openssl::sha::sha1(leaf.bytes));
            let document = CdaDocument {
                name,
                bytes: leaf.bytes.to_vec(),
                sha1,
                header,
                xdm: None,
            };
            return self.deposit(document);
        }
        let content_type = leaf.content_type.clone();
        self.not_deposited(name, NotDepositedReason::Unrecognised { content_type });
        Ok(())
    }

    fn subset(&mut self, subset: XdmSubset) -> Result<(), DocumentError> {
        let XdmSubset {
            metadata,
            documents,
            ..
        } = subset;
        for document in documents {
            let XdmDocument {
                path,
                entry,
                bytes,
                sha1,
            } = document;
            let is_xml = entry
                .mime_type
                .as_deref()
                .is_none_or(|mime| mime.ends_with("/xml") || mime.ends_with("+xml"));
            if !is_xml || !cda::looks_like_cda(&bytes) {
                self.check_other_entry_patient(entry.patient_id.as_deref(), &path)?;
                let mime_type = entry.mime_type.clone().unwrap_or_default();
                self.not_deposited(&path, NotDepositedReason::NotCda { mime_type });
                continue;
            }
            let header = cda::parse(&bytes, &path, self.policy.xml_limits())?;
            if let Some(code) = &header.code {
                self.xdm_codes.push(code.code.clone());
            }
            let document = CdaDocument {
                name: &path,
                bytes,
                sha1,
                header,
                xdm: Some((&entry, &metadata)),
            };
            self.deposit(document)?;
        }
        Ok(())
    }

    fn deposit(&mut self, document: CdaDocument<'_>) -> Result<(), DocumentError> {
        let name = document.name.to_owned();
        let (request, ins) = deposit_request(document, self.policy, &self.source)?;
        self.same_patient(ins, &name)?;
        self.extraction.requests.push(request);
        Ok(())
    }

    /// One patient per message (MSSanté ECO.2.1.1).
    fn same_patient(&mut self, ins: Ins, name: &str) -> Result<(), DocumentError> {
        match &self.patient {
            Some((first, first_name)) if *first != ins => Err(DocumentError::SeveralPatients {
                first: first_name.clone(),
                second: name.to_owned(),
            }),
            Some(_) => Ok(()),
            None => {
                self.patient = Some((ins, name.to_owned()));
                Ok(())
            }
        }
    }

    /// A non-CDA entry is not deposited, but it still must not name another patient.
    fn check_other_entry_patient(
        &mut self,
        patient_id: Option<&str>,
        name: &str,
    ) -> Result<(), DocumentError> {
        let Some(patient_id) = patient_id else {
            return Ok(());
        };
        let ins = Ins::from_cx(patient_id, self.policy.ins_environment).map_err(|source| {
            DocumentError::InvalidIns {
                document: name.to_owned(),
                source,
            }
        })?;
        self.same_patient(ins, name)
    }

    fn not_deposited(&mut self, name: &str, reason: NotDepositedReason) {
        self.extraction.not_deposited.push(NotDeposited {
            name: name.to_owned(),
            reason,
        });
    }

    fn check_mss_headers(
        &mut self,
        codes: Option<&str>,
        ins: Option<&str>,
    ) -> Result<(), DocumentError> {
        let mut found = Vec::new();
        if let Some(codes) = codes {
            let mut declared: Vec<&str> = codes
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            let mut actual: Vec<&str> = self.xdm_codes.iter().map(String::as_str).collect();
            declared.sort_unstable();
            declared.dedup();
            actual.sort_unstable();
            actual.dedup();
            if declared != actual {
                found.push((
                    "X-MSS-CODECDA",
                    format!(
                        "declares [{}], the XDM CDA documents are [{}]",
                        declared.join(","),
                        actual.join(",")
                    ),
                ));
            }
        } else if !self.xdm_codes.is_empty() {
            self.warn(
                "X-MSS-CODECDA",
                "absent although the message carries CDA in IHE_XDM".to_owned(),
            );
        }
        if let Some(value) = ins {
            // Every deposited CDA carries a validated INS and the four traits: "qualified".
            let qualified = !self.extraction.requests.is_empty();
            match value {
                "O" if !qualified => {
                    found.push(("X-MSS-INS", "O but no CDA with a qualified INS".to_owned()))
                }
                "N" if qualified => found.push((
                    "X-MSS-INS",
                    "N but the CDA carry a qualified INS".to_owned(),
                )),
                "O" | "N" => {}
                _ => found.push(("X-MSS-INS", "value is neither O nor N".to_owned())),
            }
        }
        for (header, reason) in found {
            if self.policy.refuse_inconsistent_mss_headers {
                return Err(DocumentError::InconsistentMssHeader { header, reason });
            }
            self.warn(header, reason);
        }
        Ok(())
    }

    fn warn(&mut self, header: &'static str, reason: String) {
        self.extraction
            .warnings
            .push(ExtractionWarning::MssHeader { header, reason });
    }
}
