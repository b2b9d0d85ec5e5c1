//! The ebRIM `SubmitObjectsRequest` content of ITI-41: submission set, document entry,
//! `HasMember` and `RPLC` associations, with the slots and classifications the DMP requires
//! (DOMAIN §4.4, §4.5).

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::time::UtcTime;
use super::xml::XmlWriter;
use super::xmldsig::SigningIdentity;
use crate::deposit::{Author, Code, DepositRequest};

/// Classification and identification scheme UUIDs (IHE ITI TF-3, DOMAIN §4.4).
pub mod scheme {
    /// SubmissionSet classification node.
    pub const SUBMISSION_SET: &str = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd";
    /// SubmissionSet author.
    pub const SS_AUTHOR: &str = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d";
    /// SubmissionSet contentTypeCode.
    pub const SS_CONTENT_TYPE: &str = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500";
    /// SubmissionSet patientId.
    pub const SS_PATIENT_ID: &str = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446";
    /// SubmissionSet sourceId.
    pub const SS_SOURCE_ID: &str = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832";
    /// SubmissionSet uniqueId.
    pub const SS_UNIQUE_ID: &str = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8";
    /// Stable DocumentEntry objectType.
    pub const DE_STABLE: &str = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1";
    /// DocumentEntry author.
    pub const DE_AUTHOR: &str = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d";
    /// DocumentEntry classCode.
    pub const DE_CLASS: &str = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a";
    /// DocumentEntry confidentialityCode.
    pub const DE_CONFIDENTIALITY: &str = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f";
    /// DocumentEntry eventCodeList.
    pub const DE_EVENT: &str = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4";
    /// DocumentEntry formatCode.
    pub const DE_FORMAT: &str = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d";
    /// DocumentEntry healthcareFacilityTypeCode.
    pub const DE_FACILITY: &str = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1";
    /// DocumentEntry practiceSettingCode.
    pub const DE_PRACTICE: &str = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead";
    /// DocumentEntry typeCode.
    pub const DE_TYPE: &str = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983";
    /// DocumentEntry patientId.
    pub const DE_PATIENT_ID: &str = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427";
    /// DocumentEntry uniqueId.
    pub const DE_UNIQUE_ID: &str = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab";
    /// HasMember association.
    pub const HAS_MEMBER: &str = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember";
    /// Replacement association.
    pub const RPLC: &str = "urn:ihe:iti:2007:AssociationType:RPLC";
    /// Signature association (signature entry → submission set).
    pub const SIGNS: &str = "urn:ihe:iti:2007:AssociationType:signs";
}

/// The id of the submission set inside the request (symbolic, the registry assigns a UUID).
pub const SUBMISSION_SET_ID: &str = "SubmissionSet01";

/// How the gateway presents itself as author and source of the submission sets it builds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionProfile {
    /// `authorPerson` of the submission set: the gateway as a device (XCN with `^U^^^EI`).
    pub author_person: String,
    /// `authorInstitution` (XON) of the gateway's structure, used when the entries carry none.
    pub author_institution: String,
    /// `sourceId` OID of the gateway.
    pub source_id: String,
    /// OID root under which submission-set uniqueIds are minted.
    pub unique_id_root: String,
    /// `contentTypeCode` used when the sender's submission set had none.
    pub default_content_type: Code,
    /// Add the TD2.1 submission-set signature ([`super::xades`]): a `Signature01` entry with
    /// an IHE DSG / XAdES signature document and a `signs` association. Off by default: the
    /// exact profile the DMP validates (XAdES version, canonicalisation, which references the
    /// Manifest must hold) is only known from the DRIM-M sample, not from SEL-MP-037.
    pub sign_submission_set_xades: bool,
}

/// Why the metadata could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// A replacement must name the replaced entry's entryUUID (the RPLC association target);
    /// only its uniqueId is known and resolving it needs an ITI-18 query.
    #[error("replacement of {unique_id:?} has no entryUUID for the RPLC association")]
    ReplacementTargetUnresolved {
        /// The replaced document's uniqueId, when known.
        unique_id: Option<String>,
    },
    /// The submission-set signature is switched on but no signing identity was given
    /// (use [`build_signed`]).
    #[error("sign_submission_set_xades is on but no signing identity was given")]
    SignerRequired,
    /// The submission-set signature could not be built.
    #[error("submission-set signature: {0}")]
    Signature(#[from] super::xmldsig::SignatureError),
}

/// The metadata of one ITI-41 request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The `rim:RegistryObjectList` element.
    pub registry_object_list: String,
    /// The id of the ExtrinsicObject, which `xdsb:Document/@id` must repeat.
    pub document_id: String,
    /// The uniqueId minted for the submission set.
    pub submission_set_unique_id: String,
    /// The submission-set signature document (`xdsb:Document` id and bytes), when built.
    pub signature: Option<SignatureDocument>,
}

/// The signature document of a signed submission set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureDocument {
    /// Its ExtrinsicObject id, which `xdsb:Document/@id` repeats.
    pub id: String,
    /// The XML bytes.
    pub bytes: Vec<u8>,
}

pub(super) struct Ids {
    classification: u32,
    external: u32,
}

impl Ids {
    pub(super) fn classification(&mut self) -> String {
        self.classification += 1;
        format!("cl{:02}", self.classification)
    }
    pub(super) fn external(&mut self) -> String {
        self.external += 1;
        format!("ei{:02}", self.external)
    }
}

pub(super) fn slot(w: &mut XmlWriter, name: &str, values: &[&str]) {
    w.start("rim:Slot", &[("name", name)])
        .start("rim:ValueList", &[]);
    for value in values {
        w.leaf("rim:Value", &[], value);
    }
    w.end().end();
}

pub(super) fn localized(w: &mut XmlWriter, element: &str, value: &str) {
    w.start(element, &[])
        .start(
            "rim:LocalizedString",
            &[
                ("charset", "UTF-8"),
                ("value", value),
                ("xml:lang", "fr-FR"),
            ],
        )
        .end()
        .end();
}

pub(super) fn coded(w: &mut XmlWriter, ids: &mut Ids, scheme: &str, object: &str, code: &Code) {
    let id = ids.classification();
    w.start(
        "rim:Classification",
        &[
            ("classificationScheme", scheme),
            ("classifiedObject", object),
            ("id", &id),
            ("nodeRepresentation", &code.code),
        ],
    );
    slot(w, "codingScheme", &[&code.scheme]);
    localized(
        w,
        "rim:Name",
        code.display_name.as_deref().unwrap_or(&code.code),
    );
    w.end();
}

pub(super) fn author(
    w: &mut XmlWriter,
    ids: &mut Ids,
    scheme: &str,
    object: &str,
    author: &Author,
) {
    let id = ids.classification();
    w.start(
        "rim:Classification",
        &[
            ("classificationScheme", scheme),
            ("classifiedObject", object),
            ("id", &id),
            ("nodeRepresentation", ""),
        ],
    );
    if let Some(person) = &author.person {
        slot(w, "authorPerson", &[person]);
    }
    fn list(values: &[String]) -> Vec<&str> {
        values.iter().map(String::as_str).collect()
    }
    if !author.institutions.is_empty() {
        slot(w, "authorInstitution", &list(&author.institutions));
    }
    if !author.roles.is_empty() {
        slot(w, "authorRole", &list(&author.roles));
    }
    if !author.specialties.is_empty() {
        slot(w, "authorSpecialty", &list(&author.specialties));
    }
    w.end();
}

pub(super) fn external(
    w: &mut XmlWriter,
    ids: &mut Ids,
    scheme: &str,
    object: &str,
    value: &str,
    name: &str,
) {
    let id = ids.external();
    w.start(
        "rim:ExternalIdentifier",
        &[
            ("id", &id),
            ("identificationScheme", scheme),
            ("registryObject", object),
            ("value", value),
        ],
    );
    localized(w, "rim:Name", name);
    w.end();
}

pub(super) fn mint_unique_id(root: &str, now: SystemTime) -> String {
    let millis = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    // OID arcs: no leading zeros; the random arc keeps two submissions in one millisecond apart.
    format!("{root}.{millis}.{}", rand::random::<u32>() | 1)
}

/// Builds the registry object list for depositing `request` (without the submission-set
/// signature: fails with [`MetadataError::SignerRequired`] when the profile asks for one).
pub fn build(
    profile: &SubmissionProfile,
    request: &DepositRequest,
    now: SystemTime,
) -> Result<Submission, MetadataError> {
    if profile.sign_submission_set_xades {
        return Err(MetadataError::SignerRequired);
    }
    build_inner(profile, request, now, None)
}

/// Builds the registry object list, with the submission-set signature when the profile
/// switches it on.
pub fn build_signed(
    profile: &SubmissionProfile,
    request: &DepositRequest,
    now: SystemTime,
    signer: &SigningIdentity,
) -> Result<Submission, MetadataError> {
    let signer = profile.sign_submission_set_xades.then_some(signer);
    build_inner(profile, request, now, signer)
}

fn build_inner(
    profile: &SubmissionProfile,
    request: &DepositRequest,
    now: SystemTime,
    signer: Option<&SigningIdentity>,
) -> Result<Submission, MetadataError> {
    let rplc_target = match &request.replaces {
        None => None,
        Some(target) => Some(target.entry_uuid.clone().ok_or_else(|| {
            MetadataError::ReplacementTargetUnresolved {
                unique_id: target.unique_id.clone(),
            }
        })?),
    };
    let entry = &request.entry;
    let ss = &request.submission_set;
    let patient_cx = request.patient.to_cx();
    let submission_time = UtcTime::from_system(now).dtm();
    let ss_unique_id = mint_unique_id(&profile.unique_id_root, now);
    let document_id = entry.entry_uuid.clone();
    let mut ids = Ids {
        classification: 0,
        external: 0,
    };
    let mut w = XmlWriter::new();
    w.start("rim:RegistryObjectList", &[]);

    // Submission set, authored by the gateway. The DMP wants the entries' authorInstitution to
    // equal the submission set's (DOMAIN §4.4), so the set carries the entries' institutions
    // and the gateway's own only when the entries name none.
    w.start("rim:RegistryPackage", &[("id", SUBMISSION_SET_ID)]);
    slot(&mut w, "submissionTime", &[&submission_time]);
    if !ss.intended_recipients.is_empty() {
        let recipients: Vec<&str> = ss.intended_recipients.iter().map(String::as_str).collect();
        slot(&mut w, "intendedRecipient", &recipients);
    }
    localized(
        &mut w,
        "rim:Name",
        ss.title
            .as_deref()
            .or(entry.title.as_deref())
            .unwrap_or("Depot DMP"),
    );
    let mut institutions: Vec<String> = Vec::new();
    for institution in entry.authors.iter().flat_map(|a| a.institutions.iter()) {
        if !institutions.contains(institution) {
            institutions.push(institution.clone());
        }
    }
    if institutions.is_empty() {
        institutions.push(profile.author_institution.clone());
    }
    let gateway_author = Author {
        person: Some(profile.author_person.clone()),
        institutions,
        roles: Vec::new(),
        specialties: Vec::new(),
    };
    author(
        &mut w,
        &mut ids,
        scheme::SS_AUTHOR,
        SUBMISSION_SET_ID,
        &gateway_author,
    );
    let content_type = ss
        .content_type_code
        .as_ref()
        .unwrap_or(&profile.default_content_type);
    coded(
        &mut w,
        &mut ids,
        scheme::SS_CONTENT_TYPE,
        SUBMISSION_SET_ID,
        content_type,
    );
    let node_id = ids.classification();
    w.start(
        "rim:Classification",
        &[
            ("classificationNode", scheme::SUBMISSION_SET),
            ("classifiedObject", SUBMISSION_SET_ID),
            ("id", &node_id),
        ],
    )
    .end();
    external(
        &mut w,
        &mut ids,
        scheme::SS_PATIENT_ID,
        SUBMISSION_SET_ID,
        &patient_cx,
        "XDSSubmissionSet.patientId",
    );
    external(
        &mut w,
        &mut ids,
        scheme::SS_SOURCE_ID,
        SUBMISSION_SET_ID,
        &profile.source_id,
        "XDSSubmissionSet.sourceId",
    );
    external(
        &mut w,
        &mut ids,
        scheme::SS_UNIQUE_ID,
        SUBMISSION_SET_ID,
        &ss_unique_id,
        "XDSSubmissionSet.uniqueId",
    );
    w.end();

    // Document entry.
    w.start(
        "rim:ExtrinsicObject",
        &[
            ("id", &document_id),
            ("mimeType", &entry.mime_type),
            ("objectType", scheme::DE_STABLE),
        ],
    );
    slot(&mut w, "creationTime", &[&entry.creation_time]);
    slot(&mut w, "submissionTime", &[&submission_time]);
    slot(&mut w, "languageCode", &[&entry.language_code]);
    if let Some(legal) = &entry.legal_authenticator {
        slot(&mut w, "legalAuthenticator", &[legal]);
    }
    if let Some(start) = &entry.service_start_time {
        slot(&mut w, "serviceStartTime", &[start]);
    }
    if let Some(stop) = &entry.service_stop_time {
        slot(&mut w, "serviceStopTime", &[stop]);
    }
    let source_patient = entry
        .source_patient_id
        .clone()
        .unwrap_or_else(|| patient_cx.clone());
    slot(&mut w, "sourcePatientId", &[&source_patient]);
    if !entry.source_patient_info.is_empty() {
        let info: Vec<&str> = entry
            .source_patient_info
            .iter()
            .map(String::as_str)
            .collect();
        slot(&mut w, "sourcePatientInfo", &info);
    }
    slot(&mut w, "hash", &[&entry.hash_sha1]);
    slot(&mut w, "size", &[&entry.size.to_string()]);
    if let Some(title) = &entry.title {
        localized(&mut w, "rim:Name", title);
    }
    if let Some(comments) = &entry.comments {
        localized(&mut w, "rim:Description", comments);
    }
    for entry_author in &entry.authors {
        author(
            &mut w,
            &mut ids,
            scheme::DE_AUTHOR,
            &document_id,
            entry_author,
        );
    }
    coded(
        &mut w,
        &mut ids,
        scheme::DE_CLASS,
        &document_id,
        &entry.class_code,
    );
    coded(
        &mut w,
        &mut ids,
        scheme::DE_TYPE,
        &document_id,
        &entry.type_code,
    );
    for confidentiality in &entry.confidentiality_codes {
        coded(
            &mut w,
            &mut ids,
            scheme::DE_CONFIDENTIALITY,
            &document_id,
            confidentiality,
        );
    }
    coded(
        &mut w,
        &mut ids,
        scheme::DE_FORMAT,
        &document_id,
        &entry.format_code,
    );
    coded(
        &mut w,
        &mut ids,
        scheme::DE_FACILITY,
        &document_id,
        &entry.healthcare_facility_type_code,
    );
    coded(
        &mut w,
        &mut ids,
        scheme::DE_PRACTICE,
        &document_id,
        &entry.practice_setting_code,
    );
    for event in &entry.event_codes {
        coded(&mut w, &mut ids, scheme::DE_EVENT, &document_id, event);
    }
    external(
        &mut w,
        &mut ids,
        scheme::DE_PATIENT_ID,
        &document_id,
        &patient_cx,
        "XDSDocumentEntry.patientId",
    );
    external(
        &mut w,
        &mut ids,
        scheme::DE_UNIQUE_ID,
        &document_id,
        &entry.unique_id,
        "XDSDocumentEntry.uniqueId",
    );
    w.end();

    let signature = match signer {
        None => None,
        Some(signer) => Some(super::xades::write_signature_entry(
            &mut w,
            &mut ids,
            profile,
            request,
            &submission_time,
            signer,
            now,
        )?),
    };

    w.start(
        "rim:Association",
        &[
            ("associationType", scheme::HAS_MEMBER),
            ("id", "as01"),
            ("sourceObject", SUBMISSION_SET_ID),
            ("targetObject", &document_id),
        ],
    );
    slot(&mut w, "SubmissionSetStatus", &["Original"]);
    w.end();
    if let Some(target) = rplc_target {
        w.start(
            "rim:Association",
            &[
                ("associationType", scheme::RPLC),
                ("id", "as02"),
                ("sourceObject", &document_id),
                ("targetObject", &target),
            ],
        )
        .end();
    }
    if let Some(signature) = &signature {
        w.start(
            "rim:Association",
            &[
                ("associationType", scheme::HAS_MEMBER),
                ("id", "as03"),
                ("sourceObject", SUBMISSION_SET_ID),
                ("targetObject", &signature.id),
            ],
        );
        slot(&mut w, "SubmissionSetStatus", &["Original"]);
        w.end();
        w.start(
            "rim:Association",
            &[
                ("associationType", scheme::SIGNS),
                ("id", "as04"),
                ("sourceObject", &signature.id),
                ("targetObject", SUBMISSION_SET_ID),
            ],
        )
        .end();
    }
    w.end();
    Ok(Submission {
        registry_object_list: w.finish(),
        document_id,
        submission_set_unique_id: ss_unique_id,
        signature,
    })
}
