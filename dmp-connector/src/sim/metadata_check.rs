//! The simulator's checks of the ebRIM metadata and documents of one submission.

use std::collections::BTreeSet;

use super::Refusal;
use super::ins::{self, Environment, InsError};
use super::store::StoredDocument;
use crate::xds::dom::Element;
use crate::xds::metadata::scheme;
use crate::xds::ns;

/// One document of the submission, checked and ready to store.
#[derive(Debug, Clone)]
pub struct CheckedDocument {
    /// Its record.
    pub record: StoredDocument,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

fn error(code: &str, context: impl Into<String>) -> Refusal {
    Refusal::registry(code, context)
}

fn metadata(context: impl Into<String>) -> Refusal {
    error("XDSRegistryMetadataError", context)
}

/// Values of slot `name` on `object`.
fn slot(object: &Element, name: &str) -> Vec<String> {
    object
        .children_named(ns::RIM, "Slot")
        .filter(|s| s.attr("name") == Some(name))
        .flat_map(|s| s.children_named(ns::RIM, "ValueList"))
        .flat_map(|l| l.children_named(ns::RIM, "Value"))
        .map(Element::text)
        .collect()
}

fn classifications<'a>(object: &'a Element, scheme_uuid: &'a str) -> Vec<&'a Element> {
    object
        .children_named(ns::RIM, "Classification")
        .filter(|c| c.attr("classificationScheme") == Some(scheme_uuid))
        .collect()
}

fn external_id(object: &Element, scheme_uuid: &str) -> Option<String> {
    object
        .children_named(ns::RIM, "ExternalIdentifier")
        .find(|e| e.attr("identificationScheme") == Some(scheme_uuid))
        .and_then(|e| e.attr("value"))
        .map(str::to_owned)
}

/// Checks one coded classification: present (unless optional), scheme and code in the value set.
fn coded(
    object: &Element,
    what: &str,
    scheme_uuid: &str,
    allowed: &dyn Fn(&str, &str) -> bool,
    at_least_one: bool,
) -> Result<(), Refusal> {
    let found = classifications(object, scheme_uuid);
    if found.is_empty() && at_least_one {
        return Err(metadata(format!("{what} missing")));
    }
    for classification in found {
        let code = classification
            .attr("nodeRepresentation")
            .unwrap_or_default();
        let schemes = slot(classification, "codingScheme");
        let coding_scheme = schemes.first().map(String::as_str).unwrap_or_default();
        if code.is_empty() || !allowed(code, coding_scheme) {
            return Err(metadata(format!(
                "{what} {code:?} (codingScheme {coding_scheme:?}) is not in the DMP value set"
            )));
        }
    }
    Ok(())
}

fn author_institutions(object: &Element, scheme_uuid: &str) -> BTreeSet<String> {
    classifications(object, scheme_uuid)
        .into_iter()
        .flat_map(|c| slot(c, "authorInstitution"))
        .collect()
}

fn check_patient(cx: &str, environment: Environment) -> Result<(), Refusal> {
    ins::check_patient_cx(cx, environment).map_err(|e| match e {
        InsError::NotCx(_) | InsError::Format => metadata(e.to_string()),
        _ => error("XDSUnknownPatientId", e.to_string()),
    })?;
    Ok(())
}

fn is_dtm(value: &str) -> bool {
    matches!(value.len(), 4 | 6 | 8 | 10 | 12 | 14) && value.bytes().all(|b| b.is_ascii_digit())
}

/// Looks up the bytes sent for an `xdsb:Document` id (`None` when none was sent).
pub type DocumentSource<'a> = dyn Fn(&str) -> Result<Option<Vec<u8>>, Refusal> + 'a;

/// Checks the submission set and its entries; `document` returns the bytes sent for an
/// `xdsb:Document` id (`None` when there is none), `vihf_patient` is the VIHF `resource-id`.
pub fn check(
    request: &Element,
    document: &DocumentSource<'_>,
    vihf_patient: &str,
    environment: Environment,
) -> Result<Vec<CheckedDocument>, Refusal> {
    let list = request
        .find(ns::RIM, "RegistryObjectList")
        .ok_or_else(|| metadata("no rim:RegistryObjectList"))?;
    let packages: Vec<&Element> = list.children_named(ns::RIM, "RegistryPackage").collect();
    let [submission_set] = packages.as_slice() else {
        return Err(metadata(format!(
            "exactly one submission set expected, found {}",
            packages.len()
        )));
    };
    let ss_id = submission_set.attr("id").unwrap_or_default();
    let times = slot(submission_set, "submissionTime");
    if times.len() != 1 || !is_dtm(&times[0]) {
        return Err(metadata(
            "submission set submissionTime missing or not a DTM",
        ));
    }
    coded(
        submission_set,
        "submission set contentTypeCode",
        scheme::SS_CONTENT_TYPE,
        &|_, s| s == "1.2.250.1.213.2.2",
        true,
    )?;
    let ss_institutions = author_institutions(submission_set, scheme::SS_AUTHOR);
    if ss_institutions.is_empty() {
        return Err(metadata("submission set author/authorInstitution missing"));
    }
    let ss_patient = external_id(submission_set, scheme::SS_PATIENT_ID)
        .ok_or_else(|| metadata("submission set patientId missing"))?;
    for (what, uuid) in [
        ("sourceId", scheme::SS_SOURCE_ID),
        ("uniqueId", scheme::SS_UNIQUE_ID),
    ] {
        if external_id(submission_set, uuid).is_none() {
            return Err(metadata(format!("submission set {what} missing")));
        }
    }
    check_patient(&ss_patient, environment)?;
    if vihf_patient != ss_patient {
        return Err(error(
            "XDSPatientIdDoesNotMatch",
            "the VIHF resource-id is not the submission set's patientId",
        ));
    }

    let members: BTreeSet<String> = list
        .children_named(ns::RIM, "Association")
        .filter(|a| {
            a.attr("associationType") == Some(scheme::HAS_MEMBER)
                && a.attr("sourceObject") == Some(ss_id)
        })
        .filter_map(|a| a.attr("targetObject").map(str::to_owned))
        .collect();
    let entries: Vec<&Element> = list.children_named(ns::RIM, "ExtrinsicObject").collect();
    if entries.is_empty() {
        return Err(metadata("no document entry"));
    }
    let sent_ids: BTreeSet<String> = request
        .children_named(ns::XDSB, "Document")
        .filter_map(|d| d.attr("id").map(str::to_owned))
        .collect();
    let mut checked = Vec::new();
    for entry in entries {
        let id = entry.attr("id").unwrap_or_default().to_owned();
        let what = |field: &str| format!("document entry {id}: {field}");
        if !members.contains(&id) {
            return Err(metadata(what(
                "no HasMember association from the submission set",
            )));
        }
        let patient = external_id(entry, scheme::DE_PATIENT_ID)
            .ok_or_else(|| metadata(what("patientId missing")))?;
        if patient != ss_patient {
            return Err(error(
                "XDSPatientIdDoesNotMatch",
                what("patientId differs from the submission set's (one patient per submission)"),
            ));
        }
        let unique_id = external_id(entry, scheme::DE_UNIQUE_ID)
            .ok_or_else(|| metadata(what("uniqueId missing")))?;
        for required in ["creationTime", "languageCode", "sourcePatientId"] {
            if slot(entry, required).is_empty() {
                return Err(metadata(what(&format!("slot {required} missing"))));
            }
        }
        if !slot(entry, "creationTime").iter().all(|t| is_dtm(t)) {
            return Err(metadata(what("creationTime is not a DTM")));
        }
        let mime_type = entry.attr("mimeType").unwrap_or_default().to_owned();
        if mime_type.is_empty() {
            return Err(metadata(what("mimeType missing")));
        }
        coded(
            entry,
            &what("classCode"),
            scheme::DE_CLASS,
            &|_, s| s == "1.2.250.1.213.1.1.4.1" || s == "URN",
            true,
        )?;
        coded(
            entry,
            &what("typeCode"),
            scheme::DE_TYPE,
            &|_, s| !s.is_empty(),
            true,
        )?;
        coded(
            entry,
            &what("confidentialityCode"),
            scheme::DE_CONFIDENTIALITY,
            &|c, s| {
                (s == "2.16.840.1.113883.5.25" && matches!(c, "N" | "R" | "V"))
                    || (s == crate::deposit::MASKING_CODE_SYSTEM
                        && matches!(
                            c,
                            "MASQUE_PS" | "INVISIBLE_PATIENT" | "INVISIBLE_REPRESENTANTS_LEGAUX"
                        ))
            },
            true,
        )?;
        coded(
            entry,
            &what("formatCode"),
            scheme::DE_FORMAT,
            &|_, s| !s.is_empty(),
            true,
        )?;
        coded(
            entry,
            &what("healthcareFacilityTypeCode"),
            scheme::DE_FACILITY,
            &|c, s| {
                s == "1.2.250.1.71.4.2.4"
                    && c.len() == 4
                    && c.starts_with("SA")
                    && c[2..].bytes().all(|b| b.is_ascii_digit())
            },
            true,
        )?;
        coded(
            entry,
            &what("practiceSettingCode"),
            scheme::DE_PRACTICE,
            &|_, s| s == "1.2.250.1.213.1.1.4.9",
            true,
        )?;
        coded(
            entry,
            &what("eventCodeList"),
            scheme::DE_EVENT,
            &|_, s| !s.is_empty(),
            false,
        )?;
        let institutions = author_institutions(entry, scheme::DE_AUTHOR);
        if institutions.is_empty() {
            return Err(metadata(what("author/authorInstitution missing")));
        }
        // The DMP over-constrains IHE here (DOMAIN §4.4): same institutions on both.
        if institutions != ss_institutions {
            return Err(metadata(what(
                "authorInstitution differs from the submission set's authorInstitution",
            )));
        }
        if !sent_ids.contains(&id) {
            return Err(error("XDSMissingDocument", what("no xdsb:Document sent")));
        }
        let bytes = document(&id)?
            .ok_or_else(|| error("XDSMissingDocument", what("document content missing")))?;
        let hash = hex(&openssl::sha::sha1(&bytes));
        if let Some(declared) = slot(entry, "hash").first()
            && !declared.eq_ignore_ascii_case(&hash)
        {
            return Err(error(
                "XDSRepositoryMetadataError",
                what(&format!(
                    "hash {declared} does not match the document ({hash})"
                )),
            ));
        }
        if let Some(declared) = slot(entry, "size").first()
            && declared.parse::<u64>().ok() != Some(bytes.len() as u64)
        {
            return Err(error(
                "XDSRepositoryMetadataError",
                what(&format!(
                    "size {declared} does not match the document ({})",
                    bytes.len()
                )),
            ));
        }
        checked.push(CheckedDocument {
            record: StoredDocument {
                unique_id,
                entry_uuid: id,
                patient_id: patient,
                hash_sha1: hash,
                size: bytes.len() as u64,
                mime_type,
            },
            bytes,
        });
    }
    if let Some(orphan) = sent_ids
        .iter()
        .find(|id| !checked.iter().any(|c| &c.record.entry_uuid == *id))
    {
        return Err(error(
            "XDSMissingDocumentMetadata",
            format!("xdsb:Document {orphan} has no document entry"),
        ));
    }
    let mut seen = BTreeSet::new();
    for document in &checked {
        if !seen.insert(document.record.unique_id.clone()) {
            return Err(error(
                "XDSRepositoryDuplicateUniqueIdInMessage",
                format!(
                    "uniqueId {} twice in one submission",
                    document.record.unique_id
                ),
            ));
        }
    }
    Ok(checked)
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
