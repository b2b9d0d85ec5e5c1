//! XDS metadata derived from a CDA header, for bare CDA attachments and XDM packages with
//! limited metadata (DOMAIN.md §4.4 "CDA header → XDS mapping").
//!
//! The classCode and formatCode tables cover the document models the gateway is tested with;
//! they stand in for the ANS concept maps ASS_X04 (type → class) and ASS_A11 (model → format),
//! whose full content was not available (unverified). A document outside them is refused with
//! "metadata classCode/formatCode missing" rather than deposited with a guessed code.

use dmp_connector::deposit::{Author, Code};

use super::header::{CdaBody, CdaCode, CdaHeader, CdaPerson};

/// TRE_A03 ClasseDocument.
const CLASS_SYSTEM: &str = "1.2.250.1.213.1.1.4.1";
/// IHE format codes (TRE_A11) coding scheme (unverified).
const IHE_FORMAT_SYSTEM: &str = "1.3.6.1.4.1.19376.1.2.3";
/// ANS complementary format codes (TRE_A06) coding scheme (unverified).
const ANS_FORMAT_SYSTEM: &str = "1.2.250.1.213.1.1.4.2.282";
/// IHE XDS-SD (scanned document / PDF in CDA level 1) template.
const XDS_SD_TEMPLATE: &str = "1.3.6.1.4.1.19376.1.2.20";
/// IdNat_PS and IdNat_Struct roots.
const IDNAT_PS: &str = "1.2.250.1.71.4.2.1";
const IDNAT_STRUCT: &str = "1.2.250.1.71.4.2.2";

/// LOINC report types that are "Compte rendu" (class 10) in the DMP.
const REPORT_TYPES: &[&str] = &[
    "11490-0", "11502-2", "18748-4", "34112-3", "11488-4", "34133-9",
];

/// The XDS classCode of a CDA document type, if known.
pub fn class_code(type_code: &CdaCode) -> Option<Code> {
    REPORT_TYPES
        .contains(&type_code.code.as_str())
        .then(|| Code {
            code: "10".to_owned(),
            scheme: CLASS_SYSTEM.to_owned(),
            display_name: Some("Compte rendu".to_owned()),
        })
}

/// The XDS formatCode of a CDA document, from its body and templates, if known.
pub fn format_code(header: &CdaHeader) -> Option<Code> {
    let has_template = |root: &str| header.template_ids.iter().any(|template| template == root);
    let (code, scheme, display) = match &header.body {
        CdaBody::NonXml { media_type } if has_template(XDS_SD_TEMPLATE) => {
            match media_type.as_deref() {
                Some("application/pdf") => {
                    ("urn:ihe:iti:xds-sd:pdf:2008", IHE_FORMAT_SYSTEM, "PDF/A-1")
                }
                Some("text/plain") => ("urn:ihe:iti:xds-sd:text:2008", IHE_FORMAT_SYSTEM, "Texte"),
                _ => return None,
            }
        }
        CdaBody::Structured if has_template("1.2.250.1.213.1.1.1.29") => {
            ("urn:asip:ci-sis:ldl-ses:2017", ANS_FORMAT_SYSTEM, "LDL-SES")
        }
        CdaBody::Structured
            if has_template("1.2.250.1.213.1.1.1.55")
                || has_template("1.3.6.1.4.1.19376.1.3.3") =>
        {
            ("urn:ihe:lab:xd-lab:2008", IHE_FORMAT_SYSTEM, "CR-BIO")
        }
        _ => return None,
    };
    Some(Code {
        code: code.to_owned(),
        scheme: scheme.to_owned(),
        display_name: Some(display.to_owned()),
    })
}

/// A CDA coded value as an XDS code.
pub fn code(value: &CdaCode) -> Code {
    Code {
        code: value.code.clone(),
        scheme: value.system.clone(),
        display_name: value.display_name.clone(),
    }
}

/// An XCN for a health professional identified by IdNat_PS.
pub fn person_xcn(person: &CdaPerson) -> Option<String> {
    let id = person.id.as_ref()?;
    let extension = id.extension.as_deref()?;
    let kind = if id.root == IDNAT_PS { "IDNPS" } else { "EI" };
    Some(format!(
        "{extension}^{}^{}^^^^^^&{}&ISO^D^^^{kind}",
        person.family.as_deref().unwrap_or_default(),
        person.given.as_deref().unwrap_or_default(),
        id.root
    ))
}

/// XDS authors from the CDA `author` elements.
pub fn authors(header: &CdaHeader) -> Vec<Author> {
    header
        .authors
        .iter()
        .map(|person| Author {
            person: person_xcn(person),
            institutions: person
                .organization
                .as_ref()
                .and_then(|organization| {
                    let id = organization.id.as_ref()?;
                    let extension = id.extension.as_deref()?;
                    let kind = if id.root == IDNAT_STRUCT {
                        "IDNST"
                    } else {
                        "XX"
                    };
                    Some(format!(
                        "{}^^^^^&{}&ISO^{kind}^^^{extension}",
                        organization.name.as_deref().unwrap_or_default(),
                        id.root
                    ))
                })
                .into_iter()
                .collect(),
            roles: Vec::new(),
            specialties: person
                .specialty
                .iter()
                .map(|specialty| {
                    format!(
                        "{}^{}^{}",
                        specialty.code,
                        specialty.display_name.as_deref().unwrap_or_default(),
                        specialty.system
                    )
                })
                .collect(),
        })
        .collect()
}
