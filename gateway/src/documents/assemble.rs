//! From a checked CDA (and its XDM entry, if any) to a [`DepositRequest`]: patient identity,
//! cross-checks between XDM metadata and the CDA header, and the DMP-required metadata.
//!
//! The XDM values win when present (the sender chose them, e.g. masking codes); a value the
//! DMP requires and the XDM lacks is derived from the CDA header, and if that is impossible
//! the document is refused naming the field. Identity is never taken from the XDM alone: the
//! CDA recordTarget must carry the same INS and the same traits.

use dmp_connector::deposit::{
    DepositRequest, DocumentEntry, PatientTraits, ReplacementTarget, Sex, SourceMessage,
    SubmissionSet,
};

use super::cda::{self, CdaHeader, derive};
use super::time::to_xds_utc;
use super::xdm::metadata::{EntryMetadata, SubmissionMetadata};
use super::{DocumentError, DocumentPolicy};
use crate::ins::Ins;

/// HL7 confidentiality codes (N/R/V).
const CONFIDENTIALITY_SYSTEM: &str = "2.16.840.1.113883.5.25";

/// One CDA document to turn into a deposit request.
pub struct CdaDocument<'a> {
    /// Name for errors (zip path or attachment name).
    pub name: &'a str,
    /// The document bytes.
    pub bytes: Vec<u8>,
    /// SHA-1 of the bytes, lowercase hex.
    pub sha1: String,
    /// The parsed header.
    pub header: CdaHeader,
    /// The XDM entry and submission set, when the document came in a package.
    pub xdm: Option<(&'a EntryMetadata, &'a SubmissionMetadata)>,
}

/// Builds the deposit request for one CDA, with every cross-check.
pub fn deposit_request(
    document: CdaDocument<'_>,
    policy: &DocumentPolicy,
    source: &SourceMessage,
) -> Result<(DepositRequest, Ins), DocumentError> {
    let name = document.name;
    let header = &document.header;
    let ins = cda_ins(header, name, policy)?;
    let traits = cda_traits(header, name)?;
    let empty_entry = EntryMetadata::default();
    let (xdm_entry, submission) = match document.xdm {
        Some((entry, submission)) => {
            check_xdm_patient(entry, submission, &ins, &traits, name, policy)?;
            (entry, Some(submission))
        }
        None => (&empty_entry, None),
    };
    let entry = document_entry(xdm_entry, header, &ins, &traits, &document, name)?;
    let replaces = replacement(header, xdm_entry, submission);
    let request = DepositRequest {
        document: document.bytes,
        entry,
        submission_set: submission
            .map(|submission| submission.submission_set.clone())
            .unwrap_or_else(SubmissionSet::default),
        patient: ins.clone().into_patient(traits),
        replaces,
        source: source.clone(),
    };
    Ok((request, ins))
}

fn cda_ins(header: &CdaHeader, name: &str, policy: &DocumentPolicy) -> Result<Ins, DocumentError> {
    let candidate = header.patient.ids.iter().find(|id| {
        dmp_connector::deposit::InsAuthority::from_oid(&id.root).is_some()
            || id.root.starts_with("1.2.250.1.213.1.4.")
    });
    let Some(id) = candidate else {
        return Err(DocumentError::MissingIns {
            document: name.to_owned(),
        });
    };
    let matricule = id.extension.as_deref().unwrap_or_default();
    Ins::new(matricule, &id.root, policy.ins_environment).map_err(|source| {
        DocumentError::InvalidIns {
            document: name.to_owned(),
            source,
        }
    })
}

fn cda_traits(header: &CdaHeader, name: &str) -> Result<PatientTraits, DocumentError> {
    let patient = &header.patient;
    let missing = |identity_trait| DocumentError::MissingTrait {
        document: name.to_owned(),
        identity_trait,
    };
    let sex = match patient.sex.as_deref() {
        Some("M") => Sex::Male,
        Some("F") => Sex::Female,
        Some(_) => Sex::Unknown,
        None => return Err(missing("sex")),
    };
    Ok(PatientTraits {
        birth_name: patient
            .birth_name
            .clone()
            .ok_or_else(|| missing("birth name"))?,
        birth_given_names: patient.birth_given_names.clone(),
        first_given_name: patient
            .first_given_name
            .clone()
            .ok_or_else(|| missing("first given name"))?,
        sex,
        birth_date: patient
            .birth_date
            .clone()
            .ok_or_else(|| missing("birth date"))?,
        birthplace_insee: patient.birthplace_insee.clone(),
    })
}

fn check_xdm_patient(
    entry: &EntryMetadata,
    submission: &SubmissionMetadata,
    ins: &Ins,
    traits: &PatientTraits,
    name: &str,
    policy: &DocumentPolicy,
) -> Result<(), DocumentError> {
    let patient_id = entry
        .patient_id
        .as_deref()
        .ok_or_else(|| DocumentError::MissingMetadata {
            document: name.to_owned(),
            field: "patientId",
        })?;
    let xdm_ins = Ins::from_cx(patient_id, policy.ins_environment).map_err(|source| {
        DocumentError::InvalidIns {
            document: name.to_owned(),
            source,
        }
    })?;
    if &xdm_ins != ins {
        return Err(DocumentError::PatientMismatch {
            document: name.to_owned(),
        });
    }
    if let Some(set_patient) = submission.patient_id.as_deref() {
        let same = Ins::from_cx(set_patient, policy.ins_environment).is_ok_and(|set| &set == ins);
        if !same {
            return Err(DocumentError::InvalidMetadata {
                document: name.to_owned(),
                reason: "submission set patientId differs from the entry's".to_owned(),
            });
        }
    }
    check_source_patient_info(&entry.source_patient_info, traits, name)
}

/// Compares the HL7v2-style `sourcePatientInfo` traits with the CDA's, where both exist.
fn check_source_patient_info(
    info: &[String],
    traits: &PatientTraits,
    name: &str,
) -> Result<(), DocumentError> {
    let mismatch = |identity_trait| DocumentError::TraitMismatch {
        document: name.to_owned(),
        identity_trait,
    };
    for value in info {
        let Some((field, content)) = value.split_once('|') else {
            continue;
        };
        match field.trim() {
            "PID-5" => {
                let mut components = content.split('^');
                let family = components.next().unwrap_or_default();
                let given = components.next().unwrap_or_default();
                if !same_name(family, &traits.birth_name) {
                    return Err(mismatch("birth name"));
                }
                let given_matches = same_name(given, &traits.first_given_name)
                    || same_name(given, &traits.birth_given_names.join(" "));
                if !given.is_empty() && !given_matches {
                    return Err(mismatch("first given name"));
                }
            }
            "PID-7" => {
                let date: String = content.chars().take(8).collect();
                if !date.is_empty() && !traits.birth_date.starts_with(&date) {
                    return Err(mismatch("birth date"));
                }
            }
            "PID-8" => {
                let expected = match traits.sex {
                    Sex::Male => "M",
                    Sex::Female => "F",
                    _ => "U",
                };
                if !content.trim().is_empty() && !content.trim().eq_ignore_ascii_case(expected) {
                    return Err(mismatch("sex"));
                }
            }
            "PID-11" => {
                let components: Vec<&str> = content.split('^').collect();
                if components.get(6).map(|kind| kind.trim()) == Some("BDL")
                    && let (Some(code), Some(expected)) =
                        (components.get(8), traits.birthplace_insee.as_deref())
                    && !code.trim().is_empty()
                    && code.trim() != expected
                {
                    return Err(mismatch("birthplace"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn same_name(left: &str, right: &str) -> bool {
    let normalise = |value: &str| {
        value
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase()
    };
    normalise(left) == normalise(right)
}

fn document_entry(
    xdm: &EntryMetadata,
    header: &CdaHeader,
    ins: &Ins,
    traits: &PatientTraits,
    document: &CdaDocument<'_>,
    name: &str,
) -> Result<DocumentEntry, DocumentError> {
    let missing = |field| DocumentError::MissingMetadata {
        document: name.to_owned(),
        field,
    };
    let conflict = |field| DocumentError::MetadataConflict {
        document: name.to_owned(),
        field,
    };
    let unique_id = header.id.to_xds();
    if xdm.unique_id.as_deref().is_some_and(|id| id != unique_id) {
        return Err(conflict("uniqueId"));
    }
    let cda_type = header.code.as_ref();
    if let (Some(xdm_type), Some(cda_type)) = (&xdm.type_code, cda_type)
        && xdm_type.code != cda_type.code
    {
        return Err(conflict("typeCode"));
    }
    let type_code = xdm
        .type_code
        .clone()
        .or_else(|| cda_type.map(derive::code))
        .ok_or_else(|| missing("typeCode"))?;
    let class_code = xdm
        .class_code
        .clone()
        .or_else(|| cda_type.and_then(derive::class_code))
        .ok_or_else(|| missing("classCode"))?;
    let format_code = xdm
        .format_code
        .clone()
        .or_else(|| derive::format_code(header))
        .ok_or_else(|| missing("formatCode"))?;
    let mut confidentiality_codes = xdm.confidentiality_codes.clone();
    if !confidentiality_codes
        .iter()
        .any(|code| code.scheme == CONFIDENTIALITY_SYSTEM)
    {
        let cda_code = header
            .confidentiality
            .as_ref()
            .ok_or_else(|| missing("confidentialityCode"))?;
        confidentiality_codes.insert(0, derive::code(cda_code));
    }
    let healthcare_facility_type_code = xdm
        .healthcare_facility_type_code
        .clone()
        .or_else(|| header.healthcare_facility_type.as_ref().map(derive::code))
        .ok_or_else(|| missing("healthcareFacilityTypeCode"))?;
    let practice_setting_code = xdm
        .practice_setting_code
        .clone()
        .or_else(|| header.practice_setting.as_ref().map(derive::code))
        .ok_or_else(|| missing("practiceSettingCode"))?;
    let creation_time = xdm
        .creation_time
        .clone()
        .or_else(|| header.effective_time.as_deref().and_then(to_xds_utc))
        .ok_or_else(|| missing("creationTime"))?;
    let language_code = xdm
        .language_code
        .clone()
        .or_else(|| header.language.clone())
        .ok_or_else(|| missing("languageCode"))?;
    let authors = if xdm.authors.is_empty() {
        derive::authors(header)
    } else {
        xdm.authors.clone()
    };
    if authors.is_empty() {
        return Err(missing("author"));
    }
    Ok(DocumentEntry {
        entry_uuid: entry_uuid(&xdm.id, &unique_id, &document.sha1),
        unique_id,
        class_code,
        type_code,
        format_code,
        confidentiality_codes,
        healthcare_facility_type_code,
        practice_setting_code,
        event_codes: xdm.event_codes.clone(),
        language_code,
        mime_type: xdm
            .mime_type
            .clone()
            .unwrap_or_else(|| "text/xml".to_owned()),
        creation_time,
        service_start_time: xdm
            .service_start_time
            .clone()
            .or_else(|| header.service_start.as_deref().and_then(to_xds_utc)),
        service_stop_time: xdm
            .service_stop_time
            .clone()
            .or_else(|| header.service_stop.as_deref().and_then(to_xds_utc)),
        title: xdm.title.clone().or_else(|| header.title.clone()),
        comments: xdm.comments.clone(),
        authors,
        legal_authenticator: xdm.legal_authenticator.clone().or_else(|| {
            header
                .legal_authenticator
                .as_ref()
                .and_then(derive::person_xcn)
        }),
        source_patient_id: xdm.source_patient_id.clone().or_else(|| Some(ins.to_cx())),
        source_patient_info: if xdm.source_patient_info.is_empty() {
            source_patient_info(traits)
        } else {
            xdm.source_patient_info.clone()
        },
        hash_sha1: document.sha1.clone(),
        size: document.bytes.len() as u64,
    })
}

fn source_patient_info(traits: &PatientTraits) -> Vec<String> {
    let sex = match traits.sex {
        Sex::Male => "M",
        Sex::Female => "F",
        _ => "U",
    };
    let mut info = vec![
        format!(
            "PID-5|{}^{}^^^^^L",
            traits.birth_name, traits.first_given_name
        ),
        format!("PID-7|{}", traits.birth_date),
        format!("PID-8|{sex}"),
    ];
    if let Some(place) = &traits.birthplace_insee {
        info.push(format!("PID-11|^^^^^^BDL^^{place}"));
    }
    info
}

/// Keeps an XDM `urn:uuid:` id; otherwise derives a stable UUID (SHA-1 name-based shape) from
/// the uniqueId and content, so a re-extraction of the same message yields the same id.
fn entry_uuid(xdm_id: &str, unique_id: &str, sha1: &str) -> String {
    if xdm_id.len() == 45 && xdm_id.starts_with("urn:uuid:") {
        return xdm_id.to_owned();
    }
    let digest = openssl::sha::sha1(format!("entry\0{unique_id}\0{sha1}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn replacement(
    header: &CdaHeader,
    entry: &EntryMetadata,
    submission: Option<&SubmissionMetadata>,
) -> Option<ReplacementTarget> {
    let entry_uuid = submission.and_then(|submission| {
        submission
            .replacements
            .iter()
            .find(|(source, _)| source == &entry.id)
            .map(|(_, target)| target.clone())
    });
    let unique_id = header.replaces.as_ref().map(cda::InstanceId::to_xds);
    (unique_id.is_some() || entry_uuid.is_some()).then_some(ReplacementTarget {
        unique_id,
        entry_uuid,
    })
}
