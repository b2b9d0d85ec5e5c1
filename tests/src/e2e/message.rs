//! Synthetic messages as a hospital's software sends them: CDA documents for synthetic
//! patients, an IHE XDM package, a MIME message, S/MIME signature (detached, SHA-256) and
//! optional encryption to the gateway's ORG CONF certificate.
//!
//! Patients are fictitious: matricules are made up, their key is computed by the gateway's own
//! rule, the OID is the test NIR authority 1.2.250.1.213.1.4.10.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow};
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::PKey;
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::X509;
use zip::write::SimpleFileOptions;

use super::paths::cert;

/// The test NIR authority (fictitious patients).
pub const TEST_NIR: &str = "1.2.250.1.213.1.4.10";
/// The French visibility code system (JDV_J58) of masking confidentiality codes.
pub const MASKING_CODE_SYSTEM: &str = "1.2.250.1.213.1.1.4.13";
/// The sending hospital's mailbox (envelope and From).
pub const SENDER: &str = "secretariat@hopital-a.mssante.test";

/// A synthetic patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    /// 13 digits and the 2-digit key.
    pub matricule: String,
    /// Birth name.
    pub birth_name: String,
    /// Given names, space separated.
    pub given_names: String,
    /// First given name.
    pub first_given: String,
    /// "F" or "M".
    pub sex: &'static str,
    /// YYYYMMDD.
    pub birth_date: String,
    /// INSEE code of the birthplace.
    pub birthplace: &'static str,
}

impl Patient {
    /// Patient number `n` (0..1000): born abroad (99), in 1985, order number `n`; the key is
    /// computed, so the INS is valid.
    pub fn synthetic(n: u16) -> Patient {
        let (sex, digit, first) = if n.is_multiple_of(2) {
            ("F", '2', "CAMILLE")
        } else {
            ("M", '1', "PAUL")
        };
        let number = format!("{digit}8506991{:02}{:03}", n / 1000 % 100, n % 1000);
        let key = gateway::ins::compute_key(&number).unwrap_or(0);
        Patient {
            matricule: format!("{number}{key:02}"),
            birth_name: format!("TESTNOM{}", letters(n)),
            given_names: first.to_owned(),
            first_given: first.to_owned(),
            sex,
            birth_date: "19850615".to_owned(),
            birthplace: "99123",
        }
    }

    /// The same patient with a wrong INS key (the "bad INS key" refusal).
    pub fn with_bad_key(&self) -> Patient {
        let (number, key) = self.matricule.split_at(13);
        let key: u8 = key.parse().unwrap_or(1);
        let wrong = if key >= 97 { 1 } else { key + 1 };
        Patient {
            matricule: format!("{number}{wrong:02}"),
            ..self.clone()
        }
    }

    /// The XDS patient id `<matricule>^^^&<oid>&ISO^NH` (unescaped, as ITI-18 takes it).
    pub fn cx(&self) -> String {
        format!("{}^^^&{TEST_NIR}&ISO^NH", self.matricule)
    }
}

/// Names must be letters: "TESTNOM" plus a letter code of `n`.
fn letters(mut n: u16) -> String {
    let mut out = String::new();
    loop {
        out.push(char::from(b'A' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            return out;
        }
    }
}

/// Kinds of clinical document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CdaKind {
    /// Lettre de liaison à la sortie (11490-0).
    DischargeLetter,
    /// Compte rendu d'examens biologiques (11502-2).
    LabReport,
}

impl CdaKind {
    fn type_code(self) -> &'static str {
        match self {
            CdaKind::DischargeLetter => "11490-0",
            CdaKind::LabReport => "11502-2",
        }
    }
}

/// A CI-SIS-style CDA R2 document with id `id_root` for `patient`.
pub fn cda(kind: CdaKind, patient: &Patient, id_root: &str) -> Vec<u8> {
    let (templates, display, title) = match kind {
        CdaKind::DischargeLetter => (
            r#"<templateId root="1.2.250.1.213.1.1.1.29" extension="2022.01"/>"#,
            "Lettre de liaison à la sortie d'un établissement de soins",
            "Lettre de liaison",
        ),
        CdaKind::LabReport => (
            r#"<templateId root="1.3.6.1.4.1.19376.1.3.3"/><templateId root="1.2.250.1.213.1.1.1.55"/>"#,
            "CR d'examens biologiques",
            "Compte rendu de biologie",
        ),
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <realmCode code="FR"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="2.16.840.1.113883.2.8.2.1"/>
  <templateId root="1.2.250.1.213.1.1.1.1"/>
  {templates}
  <id root="{id_root}"/>
  <code code="{type_code}" displayName="{display}" codeSystem="2.16.840.1.113883.6.1" codeSystemName="LOINC"/>
  <title>{title}</title>
  <effectiveTime value="20261201103000+0100"/>
  <confidentialityCode code="N" displayName="Normal" codeSystem="2.16.840.1.113883.5.25"/>
  <languageCode code="fr-FR"/>
  <setId root="{id_root}.0"/>
  <versionNumber value="1"/>
  <recordTarget>
    <patientRole>
      <id root="{TEST_NIR}" extension="{matricule}"/>
      <patient classCode="PSN">
        <name>
          <family qualifier="BR">{birth_name}</family>
          <given>{given_names}</given>
          <given qualifier="BR">{first_given}</given>
        </name>
        <administrativeGenderCode code="{sex}" codeSystem="2.16.840.1.113883.5.1"/>
        <birthTime value="{birth_date}"/>
        <birthplace><place><addr><county>{birthplace}</county><city>VILLE TEST</city></addr></place></birthplace>
      </patient>
    </patientRole>
  </recordTarget>
  <author>
    <time value="20261201100000+0100"/>
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
    <time value="20261201103000+0100"/><signatureCode code="S"/>
    <assignedEntity><id root="1.2.250.1.71.4.2.1" extension="899700000001"/>
      <assignedPerson><name><given>Jean</given><family>MEDECIN-TEST</family></name></assignedPerson>
    </assignedEntity>
  </legalAuthenticator>
  <documentationOf><serviceEvent>
    <code code="IMP" codeSystem="2.16.840.1.113883.5.4"/>
    <effectiveTime><low value="20261125080000+0100"/><high value="20261201100000+0100"/></effectiveTime>
    <performer typeCode="PRF"><assignedEntity>
      <id root="1.2.250.1.71.4.2.1" extension="899700000001"/>
      <representedOrganization>
        <id root="1.2.250.1.71.4.2.2" extension="10000000010001"/>
        <standardIndustryClassCode code="ETABLISSEMENT" displayName="Etablissement de santé" codeSystem="1.2.250.1.213.1.1.4.9"/>
      </representedOrganization>
    </assignedEntity></performer>
  </serviceEvent></documentationOf>
  <componentOf><encompassingEncounter>
    <effectiveTime><low value="20261125080000+0100"/></effectiveTime>
    <location><healthCareFacility><code code="SA01" displayName="Etablissement public de santé" codeSystem="1.2.250.1.71.4.2.4"/></healthCareFacility></location>
  </encompassingEncounter></componentOf>
  <component><structuredBody><component><section>
    <code code="42348-3" codeSystem="2.16.840.1.113883.6.1"/>
    <title>Synthèse</title><text>Texte de test synthétique.</text>
  </section></component></structuredBody></component>
</ClinicalDocument>
"#,
        type_code = kind.type_code(),
        matricule = patient.matricule,
        birth_name = patient.birth_name,
        given_names = patient.given_names,
        first_given = patient.first_given,
        sex = patient.sex,
        birth_date = patient.birth_date,
        birthplace = patient.birthplace,
    )
    .into_bytes()
}

/// A small fake PDF of about `size` bytes (a PDF header, filler, the trailer marker).
pub fn fake_pdf(size: usize) -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n%synthetic test document\n".to_vec();
    let mut seed: u32 = 12345;
    while pdf.len() < size.saturating_sub(6) {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        pdf.push((seed >> 16) as u8);
    }
    pdf.extend_from_slice(b"\n%%EOF");
    pdf
}

/// One DocumentEntry of an XDM package.
#[derive(Debug, Clone)]
pub struct XdmEntry {
    /// File name in `IHE_XDM/SUBSET01/`.
    pub file: String,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// `text/xml` for a CDA, `application/pdf` for a rendering.
    pub mime_type: &'static str,
    /// The document uniqueId.
    pub unique_id: String,
    /// LOINC type code.
    pub type_code: &'static str,
    /// The `hash` slot: `None` = the true SHA-1 of `bytes` (Some: a tampered package).
    pub declared_sha1: Option<String>,
    /// Visibility codes (JDV_J58, e.g. `INVISIBLE_PATIENT`) classified as further
    /// confidentialityCode values after the HL7 `N`.
    pub masking_codes: Vec<&'static str>,
}

impl XdmEntry {
    /// A CDA entry of `kind`.
    pub fn cda(file: &str, bytes: Vec<u8>, unique_id: &str, kind: CdaKind) -> XdmEntry {
        XdmEntry {
            file: file.to_owned(),
            bytes,
            mime_type: "text/xml",
            unique_id: unique_id.to_owned(),
            type_code: kind.type_code(),
            declared_sha1: None,
            masking_codes: Vec::new(),
        }
    }

    /// A PDF rendering of the same letter.
    pub fn pdf(file: &str, bytes: Vec<u8>, unique_id: &str) -> XdmEntry {
        XdmEntry {
            file: file.to_owned(),
            bytes,
            mime_type: "application/pdf",
            unique_id: unique_id.to_owned(),
            type_code: "11490-0",
            declared_sha1: None,
            masking_codes: Vec::new(),
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

/// METADATA.XML (ebRS 3.0 SubmitObjectsRequest) for `entries` of `patient`.
pub fn xdm_metadata(patient: &Patient, set_unique_id: &str, entries: &[XdmEntry]) -> String {
    let cx = patient.cx().replace('&', "&amp;");
    let mut objects = String::new();
    for (index, entry) in entries.iter().enumerate() {
        let id = format!("Document{:02}", index + 1);
        let hash = entry
            .declared_sha1
            .clone()
            .unwrap_or_else(|| hex::encode(openssl::sha::sha1(&entry.bytes)));
        let mut body = String::new();
        body += &slot("creationTime", &["20261201093000".to_owned()]);
        body += &slot("languageCode", &["fr-FR".to_owned()]);
        body += &slot("hash", &[hash]);
        body += &slot("size", &[entry.bytes.len().to_string()]);
        body += &slot("URI", std::slice::from_ref(&entry.file));
        body += &slot("sourcePatientId", std::slice::from_ref(&cx));
        body += &slot(
            "sourcePatientInfo",
            &[
                format!("PID-5|{}^{}^^^^^L", patient.birth_name, patient.first_given),
                format!("PID-7|{}", patient.birth_date),
                format!("PID-8|{}", patient.sex),
                format!("PID-11|^^^^^^BDL^^{}", patient.birthplace),
            ],
        );
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
        let format_code = if entry.mime_type == "application/pdf" {
            ("urn:ihe:iti:xds-sd:pdf:2008", "PDF")
        } else if entry.type_code == "11502-2" {
            ("urn:ihe:lab:xd-lab:2008", "CR de biologie")
        } else {
            ("urn:asip:ci-sis:ldl-ses:2017", "Lettre de liaison")
        };
        for (scheme, code, system, display) in [
            (
                "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983",
                entry.type_code,
                "2.16.840.1.113883.6.1",
                "Type",
            ),
            (
                "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f",
                "N",
                "2.16.840.1.113883.5.25",
                "Normal",
            ),
            (
                "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a",
                "10",
                "1.2.250.1.213.1.1.4.1",
                "Compte rendu",
            ),
            (
                "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d",
                format_code.0,
                "1.3.6.1.4.1.19376.1.2.3",
                format_code.1,
            ),
            (
                "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1",
                "SA01",
                "1.2.250.1.71.4.2.4",
                "Etablissement public",
            ),
            (
                "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead",
                "ETABLISSEMENT",
                "1.2.250.1.213.1.1.4.9",
                "Etablissement",
            ),
        ] {
            body += &classification(scheme, &id, code, system, display);
        }
        for code in &entry.masking_codes {
            body += &classification(
                "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f",
                &id,
                code,
                MASKING_CODE_SYSTEM,
                code,
            );
        }
        body += &format!(
            r#"<rim:ExternalIdentifier identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" value="{cx}" id="pid-{id}" registryObject="{id}"><rim:Name><rim:LocalizedString value="XDSDocumentEntry.patientId"/></rim:Name></rim:ExternalIdentifier>"#
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
<rim:ExternalIdentifier identificationScheme="urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8" value="{set_unique_id}" id="ss-uid" registryObject="SubmissionSet01"/>
<rim:ExternalIdentifier identificationScheme="urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832" value="1.2.250.1.999.1" id="ss-src" registryObject="SubmissionSet01"/>
<rim:ExternalIdentifier identificationScheme="urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446" value="{cx}" id="ss-pid" registryObject="SubmissionSet01"/>
</rim:RegistryPackage>
{objects}
</rim:RegistryObjectList>
</lcm:SubmitObjectsRequest>
"#,
        slot("submissionTime", &["20261201093100".to_owned()])
    )
}

/// An IHE XDM zip: INDEX.HTM, README.TXT, `IHE_XDM/SUBSET01/METADATA.XML` and the entries.
pub fn xdm_zip(
    patient: &Patient,
    set_unique_id: &str,
    entries: &[XdmEntry],
) -> anyhow::Result<Vec<u8>> {
    let metadata = xdm_metadata(patient, set_unique_id, entries);
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut files: Vec<(String, &[u8])> = vec![
        ("INDEX.HTM".to_owned(), b"<html><body>Index</body></html>"),
        ("README.TXT".to_owned(), b"Synthetic XDM package for tests"),
        (
            "IHE_XDM/SUBSET01/METADATA.XML".to_owned(),
            metadata.as_bytes(),
        ),
    ];
    for entry in entries {
        files.push((format!("IHE_XDM/SUBSET01/{}", entry.file), &entry.bytes));
    }
    for (name, content) in files {
        writer.start_file(name, options)?;
        writer.write_all(content)?;
    }
    Ok(writer.finish()?.into_inner())
}

/// One attachment of a message.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// File name.
    pub name: String,
    /// MIME type.
    pub content_type: String,
    /// Bytes (sent base64).
    pub bytes: Vec<u8>,
}

impl Attachment {
    /// An attachment.
    pub fn new(name: &str, content_type: &str, bytes: Vec<u8>) -> Attachment {
        Attachment {
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            bytes,
        }
    }
}

/// How the message is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// Not signed (refused unless the sender's policy allows transport-only trust).
    None,
    /// Signed with `certs/smime/<name>.{pem,key}`.
    Signed(&'static str),
    /// Signed with `certs/smime/<name>`, then encrypted to the gateway's ORG CONF certificate.
    SignedThenEncrypted(&'static str),
}

/// A message to send: envelope, headers and content.
#[derive(Debug, Clone)]
pub struct Mail {
    /// MAIL FROM and From.
    pub from: String,
    /// RCPT TO and To.
    pub to: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Message-ID without angle brackets (unique per message: tests find deliveries by it).
    pub message_id: String,
    /// Attachments after a short text body.
    pub attachments: Vec<Attachment>,
    /// Signature / encryption.
    pub protection: Protection,
    /// Further header fields, written after Message-ID (outside the signed entity, as mail
    /// clients write them).
    pub extra_headers: Vec<(String, String)>,
}

impl Mail {
    /// A signed message from the hospital's secretariat.
    pub fn new(to: &[&str], message_id: &str, attachments: Vec<Attachment>) -> Mail {
        Mail {
            from: SENDER.to_owned(),
            to: to.iter().map(|s| (*s).to_owned()).collect(),
            subject: "Document de test synthetique".to_owned(),
            message_id: message_id.to_owned(),
            attachments,
            protection: Protection::Signed("sign-hopital-a"),
            extra_headers: Vec::new(),
        }
    }

    /// The same message with one more header field.
    pub fn with_header(mut self, name: &str, value: &str) -> Mail {
        self.extra_headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same message asking for a disposition notification to its sender
    /// (`Disposition-Notification-To: <from>`).
    pub fn asking_for_mdn(self) -> Mail {
        let from = format!("<{}>", self.from);
        self.with_header("Disposition-Notification-To", &from)
    }

    /// The same message with another protection.
    pub fn protected(mut self, protection: Protection) -> Mail {
        self.protection = protection;
        self
    }

    /// The RFC 5322 bytes, CRLF line ends, ready for DATA.
    pub fn render(&self) -> anyhow::Result<Vec<u8>> {
        let entity = mime_entity(&self.attachments);
        let entity = match self.protection {
            Protection::None => entity,
            Protection::Signed(signer) => sign(&entity, signer)?,
            Protection::SignedThenEncrypted(signer) => {
                encrypt(&sign(&entity, signer)?, &cert("smime/gateway-conf.pem"))?
            }
        };
        let mut out = String::new();
        out += &format!("From: {}\r\n", self.from);
        out += &format!("To: {}\r\n", self.to.join(", "));
        out += &format!("Subject: {}\r\n", self.subject);
        out += "Date: Tue, 01 Dec 2026 10:30:00 +0100\r\n";
        out += &format!("Message-ID: <{}>\r\n", self.message_id);
        for (name, value) in &self.extra_headers {
            out += &format!("{name}: {value}\r\n");
        }
        out += "MIME-Version: 1.0\r\n";
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&entity);
        Ok(bytes)
    }
}

/// Base64 in lines of 76 characters, CRLF after each.
fn base64_lines(bytes: &[u8]) -> String {
    let encoded = openssl::base64::encode_block(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38 + 2);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    out
}

/// The MIME entity (Content-Type header, blank line, body) of a text part and the attachments.
pub fn mime_entity(attachments: &[Attachment]) -> Vec<u8> {
    let mut out = String::new();
    out += "Content-Type: multipart/mixed; boundary=\"=_e2e_mixed\"\r\n\r\n";
    out += "--=_e2e_mixed\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n";
    out += "Bonjour, ci-joint le document (test synthetique).\r\n";
    for attachment in attachments {
        out += &format!(
            "--=_e2e_mixed\r\nContent-Type: {}; name=\"{}\"\r\nContent-Disposition: attachment; filename=\"{}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
            attachment.content_type, attachment.name, attachment.name
        );
        out += &base64_lines(&attachment.bytes);
    }
    out += "--=_e2e_mixed--\r\n";
    out.into_bytes()
}

fn read_signer(name: &str) -> anyhow::Result<(Vec<X509>, PKey<openssl::pkey::Private>)> {
    let pem = cert(&format!("smime/{name}.pem"));
    let key = cert(&format!("smime/{name}.key"));
    let chain = X509::stack_from_pem(
        &std::fs::read(&pem).with_context(|| format!("read {}", pem.display()))?,
    )?;
    let key = PKey::private_key_from_pem(
        &std::fs::read(&key).with_context(|| format!("read {}", key.display()))?,
    )?;
    Ok((chain, key))
}

/// `multipart/signed` around `entity`: detached CMS SignedData (SHA-256) by `signer`, its
/// chain included.
pub fn sign(entity: &[u8], signer: &str) -> anyhow::Result<Vec<u8>> {
    let (chain, key) = read_signer(signer)?;
    let leaf = chain
        .first()
        .ok_or_else(|| anyhow!("no certificate for signer {signer}"))?;
    let mut extra = Stack::new()?;
    for ca in &chain[1..] {
        extra.push(ca.clone())?;
    }
    let cms = CmsContentInfo::sign(
        Some(leaf),
        Some(&key),
        Some(&extra),
        Some(entity),
        CMSOptions::DETACHED | CMSOptions::BINARY,
    )?;
    let signature = base64_lines(&cms.to_der()?);
    let mut out = Vec::with_capacity(entity.len() + signature.len() + 512);
    out.extend_from_slice(b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"=_e2e_signed\"\r\n\r\n--=_e2e_signed\r\n");
    out.extend_from_slice(entity);
    out.extend_from_slice(b"\r\n--=_e2e_signed\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n");
    out.extend_from_slice(signature.as_bytes());
    out.extend_from_slice(b"--=_e2e_signed--\r\n");
    Ok(out)
}

/// `application/pkcs7-mime; smime-type=enveloped-data` holding `entity`, encrypted (AES-256-CBC,
/// RSA key transport) to the certificate in `recipient`.
pub fn encrypt(entity: &[u8], recipient: &Path) -> anyhow::Result<Vec<u8>> {
    let certificate = X509::from_pem(
        &std::fs::read(recipient).with_context(|| format!("read {}", recipient.display()))?,
    )?;
    let mut recipients = Stack::new()?;
    recipients.push(certificate)?;
    let cms = CmsContentInfo::encrypt(
        &recipients,
        entity,
        Cipher::aes_256_cbc(),
        CMSOptions::BINARY,
    )?;
    let mut out = b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n".to_vec();
    out.extend_from_slice(base64_lines(&cms.to_der()?).as_bytes());
    Ok(out)
}

/// SHA-1 of `bytes` in lower-case hex (the DMP's `hash` of a document).
pub fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(openssl::sha::sha1(bytes))
}

/// A clinical document ready to attach, with what the DMP should end up holding.
#[derive(Debug, Clone)]
pub struct Clinical {
    /// The patient.
    pub patient: Patient,
    /// The CDA that must be deposited (its SHA-1 is the DMP's `hash`).
    pub cda: Vec<u8>,
    /// What goes into the message.
    pub attachments: Vec<Attachment>,
}

impl Clinical {
    /// SHA-1 of the CDA, as ITI-18 reports it.
    pub fn sha1(&self) -> String {
        sha1_hex(&self.cda)
    }
}

/// A hospital discharge letter: an XDM package holding METADATA.XML, the CDA (document `n`)
/// and its PDF rendering (`pdf_size` bytes).
pub fn discharge_letter_xdm(
    patient: &Patient,
    n: u32,
    pdf_size: usize,
) -> anyhow::Result<Clinical> {
    let unique_id = format!("1.2.250.1.999.1.1.{n}");
    let cda = cda(CdaKind::DischargeLetter, patient, &unique_id);
    let entries = [
        XdmEntry::cda(
            "DOC0001.XML",
            cda.clone(),
            &unique_id,
            CdaKind::DischargeLetter,
        ),
        XdmEntry::pdf("DOC0002.PDF", fake_pdf(pdf_size), &format!("{unique_id}.2")),
    ];
    let zip = xdm_zip(patient, &format!("1.2.250.1.999.1.20261201.{n}"), &entries)?;
    Ok(Clinical {
        patient: patient.clone(),
        cda,
        attachments: vec![Attachment::new("IHE_XDM.ZIP", "application/zip", zip)],
    })
}

/// A discharge letter in an XDM package (CDA and a small PDF) whose CDA entry is masked from
/// the patient: its confidentialityCode set is `N` plus `INVISIBLE_PATIENT` (JDV_J58).
pub fn masked_from_patient_xdm(patient: &Patient, n: u32) -> anyhow::Result<Clinical> {
    let unique_id = format!("1.2.250.1.999.1.1.{n}");
    let cda = cda(CdaKind::DischargeLetter, patient, &unique_id);
    let mut entry = XdmEntry::cda(
        "DOC0001.XML",
        cda.clone(),
        &unique_id,
        CdaKind::DischargeLetter,
    );
    entry.masking_codes = vec!["INVISIBLE_PATIENT"];
    let entries = [
        entry,
        XdmEntry::pdf("DOC0002.PDF", fake_pdf(2_000), &format!("{unique_id}.2")),
    ];
    let zip = xdm_zip(patient, &format!("1.2.250.1.999.1.20261201.{n}"), &entries)?;
    Ok(Clinical {
        patient: patient.clone(),
        cda,
        attachments: vec![Attachment::new("IHE_XDM.ZIP", "application/zip", zip)],
    })
}

/// An XDM package whose METADATA.XML declares a wrong SHA-1 for the CDA.
pub fn tampered_xdm(patient: &Patient, n: u32) -> anyhow::Result<Clinical> {
    let unique_id = format!("1.2.250.1.999.1.1.{n}");
    let cda = cda(CdaKind::DischargeLetter, patient, &unique_id);
    let mut entry = XdmEntry::cda(
        "DOC0001.XML",
        cda.clone(),
        &unique_id,
        CdaKind::DischargeLetter,
    );
    entry.declared_sha1 = Some(sha1_hex(b"not the document"));
    let zip = xdm_zip(patient, &format!("1.2.250.1.999.1.20261201.{n}"), &[entry])?;
    Ok(Clinical {
        patient: patient.clone(),
        cda,
        attachments: vec![Attachment::new("IHE_XDM.ZIP", "application/zip", zip)],
    })
}

/// A laboratory result as a bare CDA attachment (document `n`).
pub fn lab_result_cda(patient: &Patient, n: u32) -> Clinical {
    let cda = cda(
        CdaKind::LabReport,
        patient,
        &format!("1.2.250.1.999.1.2.{n}"),
    );
    Clinical {
        patient: patient.clone(),
        cda: cda.clone(),
        attachments: vec![Attachment::new("CR-BIO.xml", "text/xml", cda)],
    }
}
