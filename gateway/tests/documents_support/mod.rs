//! Builders for the document tests: synthetic INS, CI-SIS-style CDA headers, XDM METADATA.XML,
//! XDM zips and MIME messages. Every identity here is synthetic: NIRs are made up and their
//! key is computed by the code under test's own rule.

#![allow(dead_code)]

use std::io::Write;

use gateway::documents::{DocumentPolicy, SourceMessage};
use gateway::ins::{InsEnvironment, compute_key};
use zip::write::SimpleFileOptions;

/// The test NIR OID (fictitious patients).
pub const TEST_NIR: &str = "1.2.250.1.213.1.4.10";

/// A synthetic patient.
#[derive(Clone)]
pub struct Patient {
    pub matricule: String,
    pub oid: &'static str,
    pub birth_name: &'static str,
    pub given_names: &'static str,
    pub first_given: &'static str,
    pub sex: &'static str,
    pub birth_date: &'static str,
    pub birthplace: &'static str,
}

impl Patient {
    pub fn cx(&self) -> String {
        format!("{}^^^&amp;{}&amp;ISO^NH", self.matricule, self.oid)
    }
}

/// A matricule with a valid key from 13 characters.
pub fn nir(number: &str) -> String {
    format!("{number}{:02}", compute_key(number).unwrap())
}

pub fn patient_a() -> Patient {
    Patient {
        matricule: nir("2850699123456"),
        oid: TEST_NIR,
        birth_name: "TESTNOM",
        given_names: "CAMILLE ANNE",
        first_given: "CAMILLE",
        sex: "F",
        birth_date: "19850615",
        birthplace: "99123",
    }
}

pub fn patient_b() -> Patient {
    Patient {
        matricule: nir("1920375987654"),
        oid: TEST_NIR,
        birth_name: "AUTRENOM",
        given_names: "PAUL",
        first_given: "PAUL",
        sex: "M",
        birth_date: "19920301",
        birthplace: "75056",
    }
}

pub fn policy() -> DocumentPolicy {
    DocumentPolicy {
        ins_environment: InsEnvironment::Test,
        ..DocumentPolicy::default()
    }
}

pub fn source() -> SourceMessage {
    SourceMessage {
        queue_id: "TESTQUEUE0000001".to_owned(),
        message_id: Some("test-1@hopital-a.mssante.test".to_owned()),
    }
}

/// Kinds of CDA the tests build.
#[derive(Clone, Copy)]
pub enum CdaKind {
    /// Lettre de liaison à la sortie (LDL-SES, 11490-0), structured body.
    DischargeLetter,
    /// Compte rendu d'examens biologiques (CR-BIO, 11502-2), structured body.
    LabReport,
    /// PDF in CDA level 1 (XDS-SD, 11490-0).
    PdfN1,
}

impl CdaKind {
    pub fn type_code(self) -> &'static str {
        match self {
            CdaKind::DischargeLetter | CdaKind::PdfN1 => "11490-0",
            CdaKind::LabReport => "11502-2",
        }
    }
}

/// A small fake PDF of `size` bytes (starts like a PDF; content is filler).
pub fn fake_pdf(size: usize) -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n%synthetic test document\n".to_vec();
    let mut seed: u32 = 12345;
    while pdf.len() < size.saturating_sub(6) {
        // Pseudo-random bytes so the PDF does not compress to nothing.
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        pdf.push((seed >> 16) as u8);
    }
    pdf.extend_from_slice(b"\n%%EOF");
    pdf
}

/// A CI-SIS-style CDA R2 document.
pub fn cda(kind: CdaKind, patient: &Patient, id_root: &str) -> String {
    let (templates, code_display, title, body) = match kind {
        CdaKind::DischargeLetter => (
            r#"<templateId root="1.2.250.1.213.1.1.1.29" extension="2022.01"/>"#.to_owned(),
            "Lettre de liaison à la sortie d'un établissement de soins",
            "Lettre de liaison",
            structured_body(),
        ),
        CdaKind::LabReport => (
            r#"<templateId root="1.3.6.1.4.1.19376.1.3.3"/><templateId root="1.2.250.1.213.1.1.1.55"/>"#
                .to_owned(),
            "CR d'examens biologiques",
            "Compte rendu de biologie",
            structured_body(),
        ),
        CdaKind::PdfN1 => (
            r#"<templateId root="1.3.6.1.4.1.19376.1.2.20"/>"#.to_owned(),
            "Lettre de liaison à la sortie d'un établissement de soins",
            "Lettre de liaison (PDF)",
            format!(
                r#"<component><nonXMLBody><text mediaType="application/pdf" representation="B64">{}</text></nonXMLBody></component>"#,
                base64(&fake_pdf(4000))
            ),
        ),
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet type="text/xsl" href="../FeuilleDeStyle/CDA-FO.xsl"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <realmCode code="FR"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="2.16.840.1.113883.2.8.2.1"/>
  <templateId root="1.2.250.1.213.1.1.1.1"/>
  {templates}
  <id root="{id_root}"/>
  <code code="{type_code}" displayName="{code_display}" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC"/>
  <title>{title}</title>
  <effectiveTime value="20240115103000+0100"/>
  <confidentialityCode code="N" displayName="Normal" codeSystem="2.16.840.1.113883.5.25"/>
  <languageCode code="fr-FR"/>
  <setId root="{id_root}.0"/>
  <versionNumber value="1"/>
  <recordTarget>
    <patientRole>
      <id root="{oid}" extension="{matricule}"/>
      <id root="1.2.3.4.5.6.7" extension="IPP000123"/>
      <patient classCode="PSN">
        <name>
          <family qualifier="BR">{birth_name}</family>
          <given>{given_names}</given>
          <given qualifier="BR">{first_given}</given>
          <family qualifier="CL">{birth_name}</family>
        </name>
        <administrativeGenderCode code="{sex}" codeSystem="2.16.840.1.113883.5.1"/>
        <birthTime value="{birth_date}"/>
        <birthplace><place><addr><county>{birthplace}</county><city>VILLE TEST</city></addr></place></birthplace>
      </patient>
    </patientRole>
  </recordTarget>
  <author>
    <time value="20240115100000+0100"/>
    <assignedAuthor>
      <id root="1.2.250.1.71.4.2.1" extension="899700000001"/>
      <code code="G15_10/SM26" displayName="Médecin - Médecine générale" codeSystem="1.2.250.1.213.1.1.4.5"/>
      <assignedPerson><name><given>Jean</given><family>MEDECIN-TEST</family></name></assignedPerson>
      <representedOrganization>
        <id root="1.2.250.1.71.4.2.2" extension="10000000010001"/>
        <name>HOPITAL A TEST</name>
      </representedOrganization>
    </assignedAuthor>
  </author>
  <custodian><assignedCustodian><representedCustodianOrganization>
    <id root="1.2.250.1.71.4.2.2" extension="10000000010001"/><name>HOPITAL A TEST</name>
  </representedCustodianOrganization></assignedCustodian></custodian>
  <legalAuthenticator>
    <time value="20240115103000+0100"/><signatureCode code="S"/>
    <assignedEntity><id root="1.2.250.1.71.4.2.1" extension="899700000001"/>
      <assignedPerson><name><given>Jean</given><family>MEDECIN-TEST</family></name></assignedPerson>
    </assignedEntity>
  </legalAuthenticator>
  <documentationOf><serviceEvent>
    <code code="IMP" codeSystem="2.16.840.1.113883.5.4"/>
    <effectiveTime><low value="20240110080000+0100"/><high value="20240115100000+0100"/></effectiveTime>
    <performer typeCode="PRF"><assignedEntity>
      <id root="1.2.250.1.71.4.2.1" extension="899700000001"/>
      <representedOrganization>
        <id root="1.2.250.1.71.4.2.2" extension="10000000010001"/>
        <standardIndustryClassCode code="ETABLISSEMENT" displayName="Etablissement de santé" codeSystem="1.2.250.1.213.1.1.4.9"/>
      </representedOrganization>
    </assignedEntity></performer>
  </serviceEvent></documentationOf>
  <componentOf><encompassingEncounter>
    <effectiveTime><low value="20240110080000+0100"/></effectiveTime>
    <location><healthCareFacility><code code="SA01" displayName="Etablissement public de santé" codeSystem="1.2.250.1.71.4.2.4"/></healthCareFacility></location>
  </encompassingEncounter></componentOf>
  {body}
</ClinicalDocument>
"#,
        type_code = kind.type_code(),
        oid = patient.oid,
        matricule = patient.matricule,
        birth_name = patient.birth_name,
        given_names = patient.given_names,
        first_given = patient.first_given,
        sex = patient.sex,
        birth_date = patient.birth_date,
        birthplace = patient.birthplace,
    )
}

fn structured_body() -> String {
    r#"<component><structuredBody><component><section>
      <code code="42348-3" codeSystem="2.16.840.1.113883.6.1"/>
      <title>Synthèse</title><text>Texte de test synthétique.</text>
    </section></component></structuredBody></component>"#
        .to_owned()
}

/// One DocumentEntry of METADATA.XML.
#[derive(Clone)]
pub struct Entry {
    pub id: String,
    pub uri: String,
    pub bytes: Vec<u8>,
    pub unique_id: String,
    pub patient_cx: String,
    pub mime_type: &'static str,
    pub type_code: &'static str,
    pub source_patient_info: Vec<String>,
    pub masking: bool,
    /// Include the DMP codes (class, format, facility, practice); false = limited metadata.
    pub codes: bool,
}

impl Entry {
    pub fn cda(
        id: &str,
        uri: &str,
        bytes: Vec<u8>,
        unique_id: &str,
        patient: &Patient,
        kind: CdaKind,
    ) -> Entry {
        Entry {
            id: id.to_owned(),
            uri: uri.to_owned(),
            bytes,
            unique_id: unique_id.to_owned(),
            patient_cx: patient.cx(),
            mime_type: "text/xml",
            type_code: kind.type_code(),
            source_patient_info: vec![
                format!("PID-5|{}^{}^^^^^L", patient.birth_name, patient.first_given),
                format!("PID-7|{}", patient.birth_date),
                format!("PID-8|{}", patient.sex),
                format!("PID-11|^^^^^^BDL^^{}", patient.birthplace),
            ],
            masking: false,
            codes: true,
        }
    }
}

fn slot(name: &str, values: &[String]) -> String {
    let values: String = values
        .iter()
        .map(|value| format!("<rim:Value>{value}</rim:Value>"))
        .collect();
    format!(r#"<rim:Slot name="{name}"><rim:ValueList>{values}</rim:ValueList></rim:Slot>"#)
}

fn classification(scheme: &str, object: &str, code: &str, system: &str, display: &str) -> String {
    format!(
        r#"<rim:Classification classificationScheme="{scheme}" classifiedObject="{object}" nodeRepresentation="{code}" id="cl-{object}-{code}">{}<rim:Name><rim:LocalizedString value="{display}"/></rim:Name></rim:Classification>"#,
        slot("codingScheme", &[system.to_owned()])
    )
}

/// METADATA.XML (ebRS 3.0) for a submission set of `entries`.
pub fn metadata(set_patient_cx: &str, entries: &[Entry]) -> String {
    let mut objects = String::new();
    for entry in entries {
        let id = &entry.id;
        let hash = hex::encode(openssl::sha::sha1(&entry.bytes));
        let mut body = String::new();
        body += &slot("creationTime", &["20240115093000".to_owned()]);
        body += &slot("languageCode", &["fr-FR".to_owned()]);
        body += &slot("hash", &[hash]);
        body += &slot("size", &[entry.bytes.len().to_string()]);
        body += &slot("URI", std::slice::from_ref(&entry.uri));
        body += &slot("sourcePatientId", std::slice::from_ref(&entry.patient_cx));
        body += &slot("sourcePatientInfo", &entry.source_patient_info);
        body += r#"<rim:Name><rim:LocalizedString value="Document de test"/></rim:Name>"#;
        body += &format!(
            r#"<rim:Classification classificationScheme="urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d" classifiedObject="{id}" nodeRepresentation="" id="author-{id}">{}{}</rim:Classification>"#,
            slot(
                "authorPerson",
                &[
                    "899700000001^MEDECIN-TEST^Jean^^^^^^&amp;1.2.250.1.71.4.2.1&amp;ISO^D^^^IDNPS"
                        .to_owned()
                ]
            ),
            slot(
                "authorInstitution",
                &[
                    "HOPITAL A TEST^^^^^&amp;1.2.250.1.71.4.2.2&amp;ISO^IDNST^^^10000000010001"
                        .to_owned()
                ]
            ),
        );
        body += &classification(
            "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983",
            id,
            entry.type_code,
            "2.16.840.1.113883.6.1",
            "Type",
        );
        body += &classification(
            "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f",
            id,
            "N",
            "2.16.840.1.113883.5.25",
            "Normal",
        );
        if entry.masking {
            body += &classification(
                "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f",
                id,
                "MASQUE_PS",
                "1.2.250.1.213.1.1.4.13",
                "Masqué aux PS",
            );
            body += &classification(
                "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f",
                id,
                "INVISIBLE_PATIENT",
                "1.2.250.1.213.1.1.4.13",
                "Invisible au patient",
            );
        }
        if entry.codes {
            body += &classification(
                "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a",
                id,
                "10",
                "1.2.250.1.213.1.1.4.1",
                "Compte rendu",
            );
            body += &classification(
                "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d",
                id,
                "urn:ihe:iti:xds-sd:pdf:2008",
                "1.3.6.1.4.1.19376.1.2.3",
                "PDF",
            );
            body += &classification(
                "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1",
                id,
                "SA01",
                "1.2.250.1.71.4.2.4",
                "Etablissement public",
            );
            body += &classification(
                "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead",
                id,
                "ETABLISSEMENT",
                "1.2.250.1.213.1.1.4.9",
                "Etablissement",
            );
        }
        body += &format!(
            r#"<rim:ExternalIdentifier identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" value="{}" id="pid-{id}" registryObject="{id}"><rim:Name><rim:LocalizedString value="XDSDocumentEntry.patientId"/></rim:Name></rim:ExternalIdentifier>"#,
            entry.patient_cx
        );
        body += &format!(
            r#"<rim:ExternalIdentifier identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" value="{}" id="uid-{id}" registryObject="{id}"><rim:Name><rim:LocalizedString value="XDSDocumentEntry.uniqueId"/></rim:Name></rim:ExternalIdentifier>"#,
            entry.unique_id
        );
        objects += &format!(
            r#"<rim:ExtrinsicObject id="{id}" mimeType="{}" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">{body}</rim:ExtrinsicObject>"#,
            entry.mime_type
        );
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">
<rim:RegistryObjectList>
<rim:RegistryPackage id="SubmissionSet01" objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject">
{}
<rim:ExternalIdentifier identificationScheme="urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8" value="1.2.250.1.999.1.20240115.1" id="ss-uid" registryObject="SubmissionSet01"/>
<rim:ExternalIdentifier identificationScheme="urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832" value="1.2.250.1.999.1" id="ss-src" registryObject="SubmissionSet01"/>
<rim:ExternalIdentifier identificationScheme="urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446" value="{set_patient_cx}" id="ss-pid" registryObject="SubmissionSet01"/>
</rim:RegistryPackage>
{objects}
</rim:RegistryObjectList>
</lcm:SubmitObjectsRequest>
"#,
        slot("submissionTime", &["20240115093100".to_owned()])
    )
}

/// An XDM zip with INDEX.HTM, README.TXT and the given files (deflated).
pub fn xdm_zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut all: Vec<(&str, &[u8])> = vec![
        ("INDEX.HTM", b"<html><body>Index</body></html>"),
        ("README.TXT", b"Synthetic XDM package for tests"),
    ];
    all.extend_from_slice(files);
    for (name, content) in all {
        writer.start_file(name, options).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// The standard package: one CDA of `kind` for `patient` in SUBSET01, plus optional extra entries.
pub struct Package {
    pub cda: Vec<u8>,
    pub metadata: String,
}

pub fn standard_package(patient: &Patient, kind: CdaKind) -> Package {
    let cda = cda(kind, patient, "1.2.250.1.999.1.1.42").into_bytes();
    let entry = Entry::cda(
        "Document01",
        "DOC0001.XML",
        cda.clone(),
        "1.2.250.1.999.1.1.42",
        patient,
        kind,
    );
    Package {
        metadata: metadata(&patient.cx(), &[entry]),
        cda,
    }
}

impl Package {
    pub fn zip(&self) -> Vec<u8> {
        xdm_zip(&[
            ("IHE_XDM/SUBSET01/METADATA.XML", self.metadata.as_bytes()),
            ("IHE_XDM/SUBSET01/DOC0001.XML", &self.cda),
        ])
    }
}

pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A MIME message: headers, a text body and base64 attachments (name, content type, bytes).
pub fn message(headers: &[(&str, &str)], attachments: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut out = String::new();
    out += "From: secretariat@hopital-a.mssante.test\r\nTo: dmp@gateway.mssante.test\r\n";
    out += "Subject: XDM/1.0/DDM+Lettre de liaison TESTNOM CAMILLE 15/06/1985\r\n";
    out += "Message-ID: <test-1@hopital-a.mssante.test>\r\nMIME-Version: 1.0\r\n";
    for (name, value) in headers {
        out += &format!("{name}: {value}\r\n");
    }
    out += "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n";
    out += "--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nBonjour, ci-joint le document.\r\n";
    for (name, content_type, bytes) in attachments {
        out += &format!(
            "--b1\r\nContent-Type: {content_type}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        );
        let encoded = base64(bytes);
        for line in encoded.as_bytes().chunks(76) {
            out += std::str::from_utf8(line).unwrap();
            out += "\r\n";
        }
    }
    out += "--b1--\r\n";
    out.into_bytes()
}
