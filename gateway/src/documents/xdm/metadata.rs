//! Reading an XDM `METADATA.XML`: the ebRS 3.0 `SubmitObjectsRequest` (DOMAIN.md §4.4, §5.2).
//!
//! Only the content is interpreted here; hashes, URIs and the patient are checked by the
//! caller. Classification and identification schemes are matched by their IHE UUIDs, never by
//! position.

use dmp_connector::deposit::{Author, Code, SubmissionSet};
use dmp_connector::xds::metadata::scheme::{
    DE_AUTHOR, DE_CLASS, DE_CONFIDENTIALITY, DE_EVENT, DE_FACILITY, DE_FORMAT, DE_PATIENT_ID,
    DE_PRACTICE, DE_TYPE, DE_UNIQUE_ID, RPLC, SS_AUTHOR, SS_CONTENT_TYPE, SS_PATIENT_ID,
    SS_SOURCE_ID, SS_UNIQUE_ID,
};

use crate::documents::DocumentError;
use crate::documents::xml::{self, Element, XmlLimits};

const NS_LCM: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0";
const NS_RIM: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0";
const NS_RS_21: &str = "urn:oasis:names:tc:ebxml-regrep:registry:xsd:2.1";

/// One submission set as METADATA.XML describes it.
#[derive(Debug, Clone, Default)]
pub struct SubmissionMetadata {
    /// The submission set fields.
    pub submission_set: SubmissionSet,
    /// The submission set's patientId (CX), if present.
    pub patient_id: Option<String>,
    /// The document entries.
    pub entries: Vec<EntryMetadata>,
    /// RPLC associations: (new entry id, replaced entryUUID).
    pub replacements: Vec<(String, String)>,
}

/// One DocumentEntry (ExtrinsicObject) as METADATA.XML describes it; every field optional here.
#[derive(Debug, Clone, Default)]
pub struct EntryMetadata {
    /// ExtrinsicObject `id` (entryUUID or symbolic id).
    pub id: String,
    /// `mimeType` attribute.
    pub mime_type: Option<String>,
    /// `uniqueId` external identifier.
    pub unique_id: Option<String>,
    /// `patientId` external identifier (CX).
    pub patient_id: Option<String>,
    /// `URI` slot.
    pub uri: Option<String>,
    /// `hash` slot.
    pub hash: Option<String>,
    /// `size` slot.
    pub size: Option<String>,
    /// `classCode`.
    pub class_code: Option<Code>,
    /// `typeCode`.
    pub type_code: Option<Code>,
    /// `formatCode`.
    pub format_code: Option<Code>,
    /// `healthcareFacilityTypeCode`.
    pub healthcare_facility_type_code: Option<Code>,
    /// `practiceSettingCode`.
    pub practice_setting_code: Option<Code>,
    /// `confidentialityCode` values, masking codes included.
    pub confidentiality_codes: Vec<Code>,
    /// `eventCodeList`.
    pub event_codes: Vec<Code>,
    /// `creationTime` slot.
    pub creation_time: Option<String>,
    /// `serviceStartTime` slot.
    pub service_start_time: Option<String>,
    /// `serviceStopTime` slot.
    pub service_stop_time: Option<String>,
    /// `languageCode` slot.
    pub language_code: Option<String>,
    /// `Name`.
    pub title: Option<String>,
    /// `Description`.
    pub comments: Option<String>,
    /// Author classifications.
    pub authors: Vec<Author>,
    /// `legalAuthenticator` slot.
    pub legal_authenticator: Option<String>,
    /// `sourcePatientId` slot.
    pub source_patient_id: Option<String>,
    /// `sourcePatientInfo` slot values.
    pub source_patient_info: Vec<String>,
}

/// Parses METADATA.XML (`document` names it in errors).
pub fn parse(
    bytes: &[u8],
    document: &str,
    limits: XmlLimits,
) -> Result<SubmissionMetadata, DocumentError> {
    let root = xml::parse(bytes, limits).map_err(|source| DocumentError::Xml {
        document: document.to_owned(),
        source,
    })?;
    let invalid = |reason: &str| DocumentError::InvalidMetadata {
        document: document.to_owned(),
        reason: reason.to_owned(),
    };
    if root.namespace.as_deref() == Some(NS_RS_21) {
        return Err(DocumentError::UnsupportedMetadata {
            document: document.to_owned(),
            reason: "ebRIM 2.1 (XDM 2007); ebRS 3.0 is required".to_owned(),
        });
    }
    if root.name != "SubmitObjectsRequest" || root.namespace.as_deref() != Some(NS_LCM) {
        return Err(DocumentError::UnsupportedMetadata {
            document: document.to_owned(),
            reason: format!(
                "root element {{{}}}{} is not lcm:SubmitObjectsRequest",
                root.namespace.as_deref().unwrap_or(""),
                root.name
            ),
        });
    }
    let list = root
        .child("RegistryObjectList")
        .filter(|list| list.namespace.as_deref() == Some(NS_RIM))
        .ok_or_else(|| invalid("no rim:RegistryObjectList"))?;
    let mut metadata = SubmissionMetadata::default();
    let mut packages = 0;
    for object in &list.children {
        match object.name.as_str() {
            "RegistryPackage" => {
                packages += 1;
                read_package(object, &mut metadata);
            }
            "ExtrinsicObject" => metadata.entries.push(read_entry(object)),
            "Association" if object.attribute("associationType") == Some(RPLC) => {
                let source = object.attribute("sourceObject").unwrap_or_default();
                let target = object.attribute("targetObject").unwrap_or_default();
                metadata
                    .replacements
                    .push((source.to_owned(), target.to_owned()));
            }
            _ => {}
        }
    }
    if packages != 1 {
        return Err(invalid(
            "a subset must hold exactly one submission set (RegistryPackage)",
        ));
    }
    if metadata.entries.is_empty() {
        return Err(invalid("no document entry (ExtrinsicObject)"));
    }
    Ok(metadata)
}

fn read_package(package: &Element, metadata: &mut SubmissionMetadata) {
    let set = &mut metadata.submission_set;
    set.title = localized(package, "Name");
    set.submission_time = slot_values(package, "submissionTime").next();
    set.intended_recipients = slot_values(package, "intendedRecipient").collect();
    for classification in package.children_named("Classification") {
        match classification.attribute("classificationScheme") {
            Some(SS_AUTHOR) => set.authors.push(read_author(classification)),
            Some(SS_CONTENT_TYPE) => set.content_type_code = read_code(classification),
            _ => {}
        }
    }
    for identifier in package.children_named("ExternalIdentifier") {
        let value = identifier.attribute("value").map(str::to_owned);
        match identifier.attribute("identificationScheme") {
            Some(SS_UNIQUE_ID) => set.unique_id = value,
            Some(SS_SOURCE_ID) => set.source_id = value,
            Some(SS_PATIENT_ID) => metadata.patient_id = value,
            _ => {}
        }
    }
}

fn read_entry(object: &Element) -> EntryMetadata {
    let mut entry = EntryMetadata {
        id: object.attribute("id").unwrap_or_default().to_owned(),
        mime_type: object.attribute("mimeType").map(str::to_owned),
        uri: slot_values(object, "URI").next(),
        hash: slot_values(object, "hash").next(),
        size: slot_values(object, "size").next(),
        creation_time: slot_values(object, "creationTime").next(),
        service_start_time: slot_values(object, "serviceStartTime").next(),
        service_stop_time: slot_values(object, "serviceStopTime").next(),
        language_code: slot_values(object, "languageCode").next(),
        legal_authenticator: slot_values(object, "legalAuthenticator").next(),
        source_patient_id: slot_values(object, "sourcePatientId").next(),
        source_patient_info: slot_values(object, "sourcePatientInfo").collect(),
        title: localized(object, "Name"),
        comments: localized(object, "Description"),
        ..EntryMetadata::default()
    };
    for classification in object.children_named("Classification") {
        let scheme = classification.attribute("classificationScheme");
        if scheme == Some(DE_AUTHOR) {
            entry.authors.push(read_author(classification));
            continue;
        }
        let code = read_code(classification);
        match scheme {
            Some(DE_CLASS) => entry.class_code = code,
            Some(DE_TYPE) => entry.type_code = code,
            Some(DE_FORMAT) => entry.format_code = code,
            Some(DE_FACILITY) => entry.healthcare_facility_type_code = code,
            Some(DE_PRACTICE) => entry.practice_setting_code = code,
            Some(DE_CONFIDENTIALITY) => entry.confidentiality_codes.extend(code),
            Some(DE_EVENT) => entry.event_codes.extend(code),
            _ => {}
        }
    }
    for identifier in object.children_named("ExternalIdentifier") {
        let value = identifier.attribute("value").map(str::to_owned);
        match identifier.attribute("identificationScheme") {
            Some(DE_UNIQUE_ID) => entry.unique_id = value,
            Some(DE_PATIENT_ID) => entry.patient_id = value,
            _ => {}
        }
    }
    entry
}

fn read_code(classification: &Element) -> Option<Code> {
    let code = classification.attribute("nodeRepresentation")?.trim();
    if code.is_empty() {
        return None;
    }
    Some(Code {
        code: code.to_owned(),
        scheme: slot_values(classification, "codingScheme")
            .next()
            .unwrap_or_default(),
        display_name: localized(classification, "Name"),
    })
}

fn read_author(classification: &Element) -> Author {
    Author {
        person: slot_values(classification, "authorPerson").next(),
        institutions: slot_values(classification, "authorInstitution").collect(),
        roles: slot_values(classification, "authorRole").collect(),
        specialties: slot_values(classification, "authorSpecialty").collect(),
    }
}

/// Values of the `Slot` named `name` (trimmed, empty ones dropped).
fn slot_values<'a>(object: &'a Element, name: &'a str) -> impl Iterator<Item = String> + 'a {
    object
        .children_named("Slot")
        .filter(move |slot| slot.attribute("name") == Some(name))
        .filter_map(|slot| slot.child("ValueList"))
        .flat_map(|list| list.children_named("Value"))
        .filter_map(|value| value.trimmed_text().map(str::to_owned))
}

/// The `value` of the first `LocalizedString` under the child `name` (`Name`, `Description`).
fn localized(object: &Element, name: &str) -> Option<String> {
    object
        .child(name)?
        .child("LocalizedString")?
        .attribute("value")
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}
