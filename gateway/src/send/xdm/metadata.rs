//! METADATA.XML of the package: ebRS 3.0 `SubmitObjectsRequest` with the SubmissionSet, one
//! DocumentEntry (ExtrinsicObject) per file and its HasMember association, in the shape the
//! gateway's reader (`crate::documents::xdm::metadata`) and IHE tooling expect.

use std::time::SystemTime;

use dmp_connector::deposit::{Author, Code};
use dmp_connector::xds::metadata::scheme::{
    DE_AUTHOR, DE_CLASS, DE_CONFIDENTIALITY, DE_FACILITY, DE_FORMAT, DE_PATIENT_ID, DE_PRACTICE,
    DE_STABLE, DE_TYPE, DE_UNIQUE_ID, HAS_MEMBER, SS_AUTHOR, SS_PATIENT_ID, SS_SOURCE_ID,
    SS_UNIQUE_ID, SUBMISSION_SET,
};

use super::{CdaEntry, PackagePatient, pdf_path, random_oid, xds_time};
use crate::documents::cda::{CdaHeader, derive};
use crate::documents::time::to_xds_utc;
use crate::send::NamedFile;

const NS_LCM: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0";
const NS_RIM: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0";
/// IHE format code of a document whose MIME type says it all (a PDF outside a CDA).
const MIME_SUFFICIENT: &str = "urn:ihe:iti:xds:2017:mimeTypeSufficient";
const IHE_FORMAT_SYSTEM: &str = "1.3.6.1.4.1.19376.1.2.3";
/// HL7 confidentiality codes (N/R/V).
const CONFIDENTIALITY_SYSTEM: &str = "2.16.840.1.113883.5.25";

/// The METADATA.XML of a package.
pub(super) fn metadata(
    entries: &[CdaEntry<'_>],
    pdfs: &[NamedFile],
    patient: &PackagePatient,
    source_id: &str,
    now: SystemTime,
) -> String {
    let cx = patient.cx();
    let submission_time = xds_time(now);
    let authors = entries
        .first()
        .map(|entry| derive::authors(&entry.header))
        .unwrap_or_default();
    let mut objects = String::new();
    let mut members = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let id = format!("Document{:02}", index + 1);
        objects += &cda_entry(&id, entry, patient);
        members.push(id);
    }
    // A PDF rendering shares the first CDA's codes; only its format and MIME type differ.
    if let Some(first) = entries.first() {
        for (index, pdf) in pdfs.iter().enumerate() {
            let id = format!("Rendering{:02}", index + 1);
            objects += &pdf_entry(&id, pdf, &pdf_path(index), first, patient, now);
            members.push(id);
        }
    }
    let mut package = String::new();
    package += &slot("submissionTime", &[submission_time]);
    package += &name("Envoi de documents");
    for author in &authors {
        package += &author_classification(SS_AUTHOR, "SubmissionSet01", author, "ss");
    }
    package += &format!(
        r#"<rim:Classification id="ss-node" classifiedObject="SubmissionSet01" classificationNode="{SUBMISSION_SET}"/>"#
    );
    package += &external_id(
        SS_UNIQUE_ID,
        "SubmissionSet01",
        &random_oid(),
        "ss-uid",
        "XDSSubmissionSet.uniqueId",
    );
    package += &external_id(
        SS_SOURCE_ID,
        "SubmissionSet01",
        source_id,
        "ss-src",
        "XDSSubmissionSet.sourceId",
    );
    package += &external_id(
        SS_PATIENT_ID,
        "SubmissionSet01",
        &cx,
        "ss-pid",
        "XDSSubmissionSet.patientId",
    );
    let mut associations = String::new();
    for (index, member) in members.iter().enumerate() {
        associations += &format!(
            r#"<rim:Association id="as-{index:02}" associationType="{HAS_MEMBER}" sourceObject="SubmissionSet01" targetObject="{member}">{}</rim:Association>"#,
            slot("SubmissionSetStatus", &["Original".to_owned()])
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<lcm:SubmitObjectsRequest xmlns:lcm=\"{NS_LCM}\" xmlns:rim=\"{NS_RIM}\">\r\n<rim:RegistryObjectList>\r\n<rim:RegistryPackage id=\"SubmissionSet01\" objectType=\"urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject\">{package}</rim:RegistryPackage>\r\n{objects}{associations}\r\n</rim:RegistryObjectList>\r\n</lcm:SubmitObjectsRequest>\r\n"
    )
}

fn cda_entry(id: &str, entry: &CdaEntry<'_>, patient: &PackagePatient) -> String {
    let header = &entry.header;
    let mut body = common_slots(&entry.file.bytes, &entry.path, patient);
    if let Some(time) = header.effective_time.as_deref().and_then(to_xds_utc) {
        body += &slot("creationTime", &[time]);
    }
    if let Some(language) = &header.language {
        body += &slot("languageCode", std::slice::from_ref(language));
    }
    if let Some(start) = header.service_start.as_deref().and_then(to_xds_utc) {
        body += &slot("serviceStartTime", &[start]);
    }
    if let Some(stop) = header.service_stop.as_deref().and_then(to_xds_utc) {
        body += &slot("serviceStopTime", &[stop]);
    }
    if let Some(legal) = header
        .legal_authenticator
        .as_ref()
        .and_then(derive::person_xcn)
    {
        body += &slot("legalAuthenticator", &[legal]);
    }
    body += &name(header.title.as_deref().unwrap_or("Document"));
    body += &entry_codes(id, header, derive::format_code(header));
    body += &entry_ids(id, &header.id.to_xds(), &patient.cx());
    extrinsic_object(id, "text/xml", &body)
}

fn pdf_entry(
    id: &str,
    pdf: &NamedFile,
    path: &str,
    first: &CdaEntry<'_>,
    patient: &PackagePatient,
    now: SystemTime,
) -> String {
    let header = &first.header;
    let mut body = common_slots(&pdf.bytes, path, patient);
    let created = header
        .effective_time
        .as_deref()
        .and_then(to_xds_utc)
        .unwrap_or_else(|| xds_time(now));
    body += &slot("creationTime", &[created]);
    if let Some(language) = &header.language {
        body += &slot("languageCode", std::slice::from_ref(language));
    }
    body += &name(&pdf.name);
    let format = Code {
        code: MIME_SUFFICIENT.to_owned(),
        scheme: IHE_FORMAT_SYSTEM.to_owned(),
        display_name: Some("Format décrit par le type MIME".to_owned()),
    };
    body += &entry_codes(id, header, Some(format));
    body += &entry_ids(id, &random_oid(), &patient.cx());
    extrinsic_object(id, "application/pdf", &body)
}

fn extrinsic_object(id: &str, mime_type: &str, body: &str) -> String {
    format!(
        "<rim:ExtrinsicObject id=\"{id}\" mimeType=\"{mime_type}\" objectType=\"{DE_STABLE}\">{body}</rim:ExtrinsicObject>\r\n"
    )
}

/// hash, size, URI and the patient slots (sourcePatientId, sourcePatientInfo).
fn common_slots(bytes: &[u8], path: &str, patient: &PackagePatient) -> String {
    let mut body = String::new();
    body += &slot("hash", &[hex::encode(openssl::sha::sha1(bytes))]);
    body += &slot("size", &[bytes.len().to_string()]);
    body += &slot("URI", &[path.to_owned()]);
    body += &slot("sourcePatientId", &[patient.cx()]);
    let mut info = vec![
        format!(
            "PID-5|{}^{}^^^^^L",
            patient.birth_name, patient.first_given_name
        ),
        format!("PID-7|{}", patient.birth_date),
        format!("PID-8|{}", patient.sex),
    ];
    if let Some(place) = &patient.birthplace_insee {
        info.push(format!("PID-11|^^^^^^BDL^^{place}"));
    }
    body += &slot("sourcePatientInfo", &info);
    body
}

/// Author, class, type, format, confidentiality, facility and practice classifications.
fn entry_codes(id: &str, header: &CdaHeader, format: Option<Code>) -> String {
    let mut body = String::new();
    for (index, author) in derive::authors(header).iter().enumerate() {
        body += &author_classification(DE_AUTHOR, id, author, &format!("a{index}"));
    }
    let type_code = header.code.as_ref().map(derive::code);
    let class_code = header.code.as_ref().and_then(derive::class_code);
    let confidentiality = header
        .confidentiality
        .as_ref()
        .map(derive::code)
        .map(|mut code| {
            if code.scheme.is_empty() {
                code.scheme = CONFIDENTIALITY_SYSTEM.to_owned();
            }
            code
        });
    let codes = [
        (DE_CLASS, class_code),
        (DE_TYPE, type_code),
        (DE_FORMAT, format),
        (DE_CONFIDENTIALITY, confidentiality),
        (
            DE_FACILITY,
            header.healthcare_facility_type.as_ref().map(derive::code),
        ),
        (
            DE_PRACTICE,
            header.practice_setting.as_ref().map(derive::code),
        ),
    ];
    for (index, (scheme, code)) in codes.into_iter().enumerate() {
        if let Some(code) = code {
            body += &code_classification(scheme, id, &code, index);
        }
    }
    body
}

fn entry_ids(id: &str, unique_id: &str, cx: &str) -> String {
    external_id(
        DE_PATIENT_ID,
        id,
        cx,
        &format!("pid-{id}"),
        "XDSDocumentEntry.patientId",
    ) + &external_id(
        DE_UNIQUE_ID,
        id,
        unique_id,
        &format!("uid-{id}"),
        "XDSDocumentEntry.uniqueId",
    )
}

fn slot(name: &str, values: &[String]) -> String {
    let values: String = values
        .iter()
        .map(|value| format!("<rim:Value>{}</rim:Value>", escape(value)))
        .collect();
    format!(r#"<rim:Slot name="{name}"><rim:ValueList>{values}</rim:ValueList></rim:Slot>"#)
}

fn name(value: &str) -> String {
    format!(
        r#"<rim:Name><rim:LocalizedString value="{}"/></rim:Name>"#,
        escape(value)
    )
}

fn code_classification(scheme: &str, object: &str, code: &Code, index: usize) -> String {
    format!(
        r#"<rim:Classification id="cl-{object}-{index}" classificationScheme="{scheme}" classifiedObject="{object}" nodeRepresentation="{}">{}{}</rim:Classification>"#,
        escape(&code.code),
        slot("codingScheme", std::slice::from_ref(&code.scheme)),
        name(code.display_name.as_deref().unwrap_or(&code.code)),
    )
}

fn author_classification(scheme: &str, object: &str, author: &Author, suffix: &str) -> String {
    let mut body = String::new();
    if let Some(person) = &author.person {
        body += &slot("authorPerson", std::slice::from_ref(person));
    }
    if !author.institutions.is_empty() {
        body += &slot("authorInstitution", &author.institutions);
    }
    if !author.roles.is_empty() {
        body += &slot("authorRole", &author.roles);
    }
    if !author.specialties.is_empty() {
        body += &slot("authorSpecialty", &author.specialties);
    }
    format!(
        r#"<rim:Classification id="author-{object}-{suffix}" classificationScheme="{scheme}" classifiedObject="{object}" nodeRepresentation="">{body}</rim:Classification>"#
    )
}

fn external_id(scheme: &str, object: &str, value: &str, id: &str, label: &str) -> String {
    format!(
        r#"<rim:ExternalIdentifier id="{id}" identificationScheme="{scheme}" registryObject="{object}" value="{}">{}</rim:ExternalIdentifier>"#,
        escape(value),
        name(label)
    )
}

/// Escapes text for XML content and double-quoted attributes.
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            other => out.push(other),
        }
    }
    out
}
