//! Reading the CDA R2 header (CI-SIS "structuration minimale", DOMAIN.md §6) into typed fields.
//!
//! Only the header is interpreted; the body is inspected just enough to tell a level-1
//! (`nonXMLBody`, e.g. PDF) from a structured document. Nothing here decides whether the
//! document may be deposited: that is [`super::super::assemble`]'s job.

use crate::documents::DocumentError;
use crate::documents::xml::{self, Element, XmlLimits};

/// The HL7 V3 namespace of CDA R2.
pub const NS_HL7_V3: &str = "urn:hl7-org:v3";

/// An HL7 `II` (instance identifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceId {
    /// OID or UUID.
    pub root: String,
    /// Extension within the root, if any.
    pub extension: Option<String>,
}

impl InstanceId {
    /// The XDS form: `root` or `root^extension`.
    pub fn to_xds(&self) -> String {
        match &self.extension {
            Some(extension) => format!("{}^{}", self.root, extension),
            None => self.root.clone(),
        }
    }
}

/// An HL7 `CE`/`CD` coded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdaCode {
    /// `@code`.
    pub code: String,
    /// `@codeSystem`.
    pub system: String,
    /// `@displayName`.
    pub display_name: Option<String>,
}

/// A person (author or legal authenticator) with their national id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CdaPerson {
    /// `assignedAuthor/id` or `assignedEntity/id` (IdNat_PS under `1.2.250.1.71.4.2.1`).
    pub id: Option<InstanceId>,
    /// Family name.
    pub family: Option<String>,
    /// Given name.
    pub given: Option<String>,
    /// Profession / specialty code (`assignedAuthor/code`).
    pub specialty: Option<CdaCode>,
    /// Represented organisation.
    pub organization: Option<CdaOrganization>,
}

/// An organisation with its national id (IdNat_Struct under `1.2.250.1.71.4.2.2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdaOrganization {
    /// `id`.
    pub id: Option<InstanceId>,
    /// `name`.
    pub name: Option<String>,
}

/// The identity traits of `recordTarget/patientRole/patient`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CdaPatient {
    /// `patientRole/id` values (INS and local IPPs).
    pub ids: Vec<InstanceId>,
    /// `family[@qualifier='BR']` (nom de naissance).
    pub birth_name: Option<String>,
    /// Prénoms de naissance (the unqualified `given`, space separated in ANS samples).
    pub birth_given_names: Vec<String>,
    /// `given[@qualifier='BR']` (premier prénom de naissance).
    pub first_given_name: Option<String>,
    /// `administrativeGenderCode/@code`.
    pub sex: Option<String>,
    /// `birthTime/@value`.
    pub birth_date: Option<String>,
    /// `birthplace/place/addr/county` (INSEE code).
    pub birthplace_insee: Option<String>,
}

/// What the body of the document is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CdaBody {
    /// `nonXMLBody` (level 1), with its `text/@mediaType`.
    NonXml {
        /// Media type of the embedded content (e.g. `application/pdf`).
        media_type: Option<String>,
    },
    /// `structuredBody` (levels 2 and 3).
    Structured,
    /// No `component` at all.
    Missing,
}

/// The CDA header fields the gateway uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdaHeader {
    /// `templateId/@root` values of the document.
    pub template_ids: Vec<String>,
    /// `id` → XDS uniqueId.
    pub id: InstanceId,
    /// `setId`.
    pub set_id: Option<InstanceId>,
    /// `versionNumber/@value`.
    pub version_number: Option<String>,
    /// `code` → XDS typeCode and X-MSS-CODECDA.
    pub code: Option<CdaCode>,
    /// `title`.
    pub title: Option<String>,
    /// `effectiveTime/@value`.
    pub effective_time: Option<String>,
    /// `confidentialityCode`.
    pub confidentiality: Option<CdaCode>,
    /// `languageCode/@code`.
    pub language: Option<String>,
    /// The patient.
    pub patient: CdaPatient,
    /// `author/assignedAuthor` entries.
    pub authors: Vec<CdaPerson>,
    /// `custodian/assignedCustodian/representedCustodianOrganization`.
    pub custodian: Option<CdaOrganization>,
    /// `legalAuthenticator/assignedEntity`.
    pub legal_authenticator: Option<CdaPerson>,
    /// `componentOf/encompassingEncounter/location/healthCareFacility/code`.
    pub healthcare_facility_type: Option<CdaCode>,
    /// `documentationOf/serviceEvent/performer/assignedEntity/representedOrganization/standardIndustryClassCode`.
    pub practice_setting: Option<CdaCode>,
    /// `documentationOf/serviceEvent/effectiveTime/low/@value`.
    pub service_start: Option<String>,
    /// `documentationOf/serviceEvent/effectiveTime/high/@value`.
    pub service_stop: Option<String>,
    /// `relatedDocument[@typeCode='RPLC']/parentDocument/id`.
    pub replaces: Option<InstanceId>,
    /// The body kind.
    pub body: CdaBody,
}

/// Whether these bytes look like a CDA document (root `ClinicalDocument` in the HL7 V3
/// namespace), without parsing all of it.
pub fn looks_like_cda(bytes: &[u8]) -> bool {
    // A CI-SIS header often starts with several KB of comments and processing instructions.
    let head = &bytes[..bytes.len().min(64 * 1024)];
    memchr::memmem::find(head, b"ClinicalDocument").is_some()
        && memchr::memmem::find(head, NS_HL7_V3.as_bytes()).is_some()
}

/// Parses a CDA document's header (`document` names it in errors).
pub fn parse(bytes: &[u8], document: &str, limits: XmlLimits) -> Result<CdaHeader, DocumentError> {
    let root = xml::parse(bytes, limits).map_err(|source| DocumentError::Xml {
        document: document.to_owned(),
        source,
    })?;
    let invalid = |reason: &str| DocumentError::InvalidCda {
        document: document.to_owned(),
        reason: reason.to_owned(),
    };
    if root.name != "ClinicalDocument" || root.namespace.as_deref() != Some(NS_HL7_V3) {
        return Err(invalid(
            "root element is not urn:hl7-org:v3 ClinicalDocument",
        ));
    }
    let id = root
        .child("id")
        .and_then(instance_id)
        .ok_or_else(|| invalid("no document id"))?;
    let record_target = root.children_named("recordTarget").collect::<Vec<_>>();
    if record_target.len() != 1 {
        return Err(invalid("a document must have exactly one recordTarget"));
    }
    let patient_role = record_target[0]
        .child("patientRole")
        .ok_or_else(|| invalid("recordTarget has no patientRole"))?;
    let service_event = root.path(&["documentationOf", "serviceEvent"]);
    Ok(CdaHeader {
        template_ids: root
            .children_named("templateId")
            .filter_map(|template| template.attribute("root").map(str::to_owned))
            .collect(),
        id,
        set_id: root.child("setId").and_then(instance_id),
        version_number: value_of(&root, "versionNumber"),
        code: root.child("code").and_then(code_of),
        title: root
            .child("title")
            .and_then(Element::trimmed_text)
            .map(str::to_owned),
        effective_time: value_of(&root, "effectiveTime"),
        confidentiality: root.child("confidentialityCode").and_then(code_of),
        language: root
            .child("languageCode")
            .and_then(|language| language.attribute("code"))
            .map(str::to_owned),
        patient: read_patient(patient_role),
        authors: root
            .children_named("author")
            .filter_map(|author| author.child("assignedAuthor"))
            .map(read_person)
            .collect(),
        custodian: root
            .path(&[
                "custodian",
                "assignedCustodian",
                "representedCustodianOrganization",
            ])
            .map(read_organization),
        legal_authenticator: root
            .path(&["legalAuthenticator", "assignedEntity"])
            .map(read_person),
        healthcare_facility_type: root
            .path(&[
                "componentOf",
                "encompassingEncounter",
                "location",
                "healthCareFacility",
                "code",
            ])
            .and_then(code_of),
        practice_setting: root
            .children_named("documentationOf")
            .filter_map(|documentation| {
                documentation.path(&[
                    "serviceEvent",
                    "performer",
                    "assignedEntity",
                    "representedOrganization",
                    "standardIndustryClassCode",
                ])
            })
            .find_map(code_of),
        service_start: service_event
            .and_then(|event| event.path(&["effectiveTime", "low"]))
            .and_then(|low| low.attribute("value"))
            .map(str::to_owned),
        service_stop: service_event
            .and_then(|event| event.path(&["effectiveTime", "high"]))
            .and_then(|high| high.attribute("value"))
            .map(str::to_owned),
        replaces: root
            .children_named("relatedDocument")
            .filter(|related| related.attribute("typeCode") == Some("RPLC"))
            .find_map(|related| related.path(&["parentDocument", "id"]))
            .and_then(instance_id),
        body: read_body(&root),
    })
}

fn read_patient(patient_role: &Element) -> CdaPatient {
    let mut patient = CdaPatient {
        ids: patient_role
            .children_named("id")
            .filter_map(instance_id)
            .collect(),
        ..CdaPatient::default()
    };
    let Some(person) = patient_role.child("patient") else {
        return patient;
    };
    if let Some(name) = person.child("name") {
        let qualified = |element: &&Element| element.attribute("qualifier") == Some("BR");
        let unqualified = |element: &&Element| element.attribute("qualifier").is_none();
        patient.birth_name = name
            .children_named("family")
            .find(qualified)
            .or_else(|| name.children_named("family").find(unqualified))
            .and_then(Element::trimmed_text)
            .map(str::to_owned);
        patient.birth_given_names = name
            .children_named("given")
            .filter(unqualified)
            .filter_map(Element::trimmed_text)
            .flat_map(str::split_whitespace)
            .map(str::to_owned)
            .collect();
        patient.first_given_name = name
            .children_named("given")
            .find(qualified)
            .and_then(Element::trimmed_text)
            .map(str::to_owned)
            .or_else(|| patient.birth_given_names.first().cloned());
        if patient.birth_given_names.is_empty() {
            patient
                .birth_given_names
                .extend(patient.first_given_name.clone());
        }
    }
    patient.sex = person
        .child("administrativeGenderCode")
        .and_then(|gender| gender.attribute("code"))
        .map(str::to_owned);
    patient.birth_date = value_of(person, "birthTime");
    patient.birthplace_insee = person
        .path(&["birthplace", "place", "addr", "county"])
        .and_then(Element::trimmed_text)
        .map(str::to_owned);
    patient
}

fn read_person(entity: &Element) -> CdaPerson {
    let name = entity
        .child("assignedPerson")
        .and_then(|person| person.child("name"));
    let text_of = |field: &str| {
        name.and_then(|name| name.child(field))
            .and_then(Element::trimmed_text)
            .map(str::to_owned)
    };
    CdaPerson {
        id: entity.child("id").and_then(instance_id),
        family: text_of("family"),
        given: text_of("given"),
        specialty: entity.child("code").and_then(code_of),
        organization: entity
            .child("representedOrganization")
            .map(read_organization),
    }
}

fn read_organization(organization: &Element) -> CdaOrganization {
    CdaOrganization {
        id: organization.child("id").and_then(instance_id),
        name: organization
            .child("name")
            .and_then(Element::trimmed_text)
            .map(str::to_owned),
    }
}

fn read_body(root: &Element) -> CdaBody {
    let Some(component) = root.child("component") else {
        return CdaBody::Missing;
    };
    if let Some(non_xml) = component.child("nonXMLBody") {
        return CdaBody::NonXml {
            media_type: non_xml
                .child("text")
                .and_then(|text| text.attribute("mediaType"))
                .map(str::to_owned),
        };
    }
    if component.child("structuredBody").is_some() {
        return CdaBody::Structured;
    }
    CdaBody::Missing
}

fn instance_id(element: &Element) -> Option<InstanceId> {
    let root = element.attribute("root")?.trim();
    if root.is_empty() {
        return None;
    }
    Some(InstanceId {
        root: root.to_owned(),
        extension: element
            .attribute("extension")
            .map(str::trim)
            .filter(|extension| !extension.is_empty())
            .map(str::to_owned),
    })
}

fn code_of(element: &Element) -> Option<CdaCode> {
    let code = element.attribute("code")?.trim();
    if code.is_empty() {
        return None;
    }
    Some(CdaCode {
        code: code.to_owned(),
        system: element
            .attribute("codeSystem")
            .unwrap_or_default()
            .to_owned(),
        display_name: element.attribute("displayName").map(str::to_owned),
    })
}

fn value_of(parent: &Element, child: &str) -> Option<String> {
    parent
        .child(child)
        .and_then(|element| element.attribute("value"))
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}
