//! Document extraction: XDM packages and bare CDA in the CI-SIS style, the ANS sample quirks,
//! X-MSS headers. Refusals are in `documents_refusals.rs`.

mod documents_support;

use dmp_connector::deposit::{InsAuthority, Sex};
use documents_support::*;
use gateway::documents::{ExtractionWarning, xdm};
use gateway::documents::{NotDepositedReason, extract};

#[test]
fn xdm_discharge_letter_with_pdf_rendering_becomes_one_request() {
    let patient = patient_a();
    let package = standard_package(&patient, CdaKind::DischargeLetter);
    let pdf = fake_pdf(20_000);
    let mail = message(
        &[("X-MSS-CODECDA", "11490-0"), ("X-MSS-INS", "O")],
        &[
            ("IHE_XDM.ZIP", "application/zip", &package.zip()),
            ("Lettre de liaison.pdf", "application/pdf", &pdf),
        ],
    );
    let extraction = extract(&mail, source(), &policy()).unwrap();
    assert_eq!(extraction.requests.len(), 1);
    assert!(extraction.warnings.is_empty(), "{:?}", extraction.warnings);
    let request = &extraction.requests[0];
    assert_eq!(request.document, package.cda);
    assert_eq!(request.entry.unique_id, "1.2.250.1.999.1.1.42");
    assert_eq!(request.entry.type_code.code, "11490-0");
    assert_eq!(request.entry.class_code.code, "10");
    assert_eq!(request.entry.healthcare_facility_type_code.code, "SA01");
    assert_eq!(request.entry.size, package.cda.len() as u64);
    assert_eq!(
        request.entry.hash_sha1,
        hex::encode(openssl::sha::sha1(&package.cda))
    );
    assert_eq!(request.patient.matricule, patient.matricule);
    assert_eq!(request.patient.authority, InsAuthority::TestNir);
    assert_eq!(request.patient.traits.birth_name, "TESTNOM");
    assert_eq!(request.patient.traits.first_given_name, "CAMILLE");
    assert_eq!(
        request.patient.traits.birth_given_names,
        ["CAMILLE", "ANNE"]
    );
    assert_eq!(request.patient.traits.sex, Sex::Female);
    assert_eq!(
        request.patient.traits.birthplace_insee.as_deref(),
        Some("99123")
    );
    assert_eq!(request.source.queue_id, "TESTQUEUE0000001");
    assert_eq!(
        request.submission_set.unique_id.as_deref(),
        Some("1.2.250.1.999.1.20240115.1")
    );
    assert_eq!(
        request.entry.authors[0]
            .person
            .as_deref()
            .map(|p| p.starts_with("899700000001^")),
        Some(true)
    );
    assert_eq!(extraction.not_deposited.len(), 1);
    assert_eq!(extraction.not_deposited[0].name, "Lettre de liaison.pdf");
    assert_eq!(
        extraction.not_deposited[0].reason,
        NotDepositedReason::PdfWithoutMetadata
    );
}

#[test]
fn xdm_lab_report_with_limited_metadata_derives_codes_from_the_cda() {
    let patient = patient_a();
    let cda = cda(CdaKind::LabReport, &patient, "1.2.250.1.999.1.2.7").into_bytes();
    let mut entry = Entry::cda(
        "Document01",
        "DOC0001.XML",
        cda.clone(),
        "1.2.250.1.999.1.2.7",
        &patient,
        CdaKind::LabReport,
    );
    entry.codes = false;
    let metadata = metadata(&patient.cx(), &[entry]);
    let zip = xdm_zip(&[
        ("IHE_XDM/SUBSET01/METADATA.XML", metadata.as_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &cda),
    ]);
    let mail = message(
        &[("X-MSS-CODECDA", "11502-2")],
        &[("ihe_xdm.zip", "application/zip", &zip)],
    );
    let extraction = extract(&mail, source(), &policy()).unwrap();
    let entry = &extraction.requests[0].entry;
    assert_eq!(entry.type_code.code, "11502-2");
    assert_eq!(entry.class_code.code, "10");
    assert_eq!(entry.format_code.code, "urn:ihe:lab:xd-lab:2008");
    assert_eq!(entry.practice_setting_code.code, "ETABLISSEMENT");
    assert_eq!(entry.healthcare_facility_type_code.code, "SA01");
    assert_eq!(entry.service_start_time.as_deref(), Some("20240110070000"));
    assert_eq!(entry.service_stop_time.as_deref(), Some("20240115090000"));
    assert_eq!(
        entry
            .legal_authenticator
            .as_deref()
            .map(|l| l.contains("IDNPS")),
        Some(true)
    );
}

#[test]
fn bare_n1_pdf_in_cda_is_deposited_with_derived_metadata() {
    let patient = patient_a();
    let cda = cda(CdaKind::PdfN1, &patient, "1.2.250.1.999.1.3.1");
    let mail = message(&[], &[("lettre.xml", "text/xml", cda.as_bytes())]);
    let extraction = extract(&mail, source(), &policy()).unwrap();
    assert_eq!(extraction.requests.len(), 1);
    let request = &extraction.requests[0];
    assert_eq!(
        request.entry.format_code.code,
        "urn:ihe:iti:xds-sd:pdf:2008"
    );
    assert_eq!(request.entry.creation_time, "20240115093000");
    assert_eq!(request.entry.confidentiality_codes[0].code, "N");
    assert_eq!(request.entry.mime_type, "text/xml");
    assert!(request.entry.entry_uuid.starts_with("urn:uuid:"));
    assert_eq!(
        request.entry.source_patient_id.as_deref(),
        Some(format!("{}^^^&{}&ISO^NH", patient.matricule, TEST_NIR).as_str())
    );
    assert_eq!(request.submission_set.unique_id, None);
}

#[test]
fn pdf_only_message_deposits_nothing_and_says_why() {
    let mail = message(
        &[],
        &[("compte-rendu.pdf", "application/pdf", &fake_pdf(3000))],
    );
    let extraction = extract(&mail, source(), &policy()).unwrap();
    assert!(extraction.requests.is_empty());
    assert_eq!(extraction.not_deposited.len(), 1);
    assert_eq!(
        extraction.not_deposited[0].reason.ledger_reason(),
        "pdf_without_metadata"
    );
}

#[test]
fn masking_codes_are_kept_and_replacement_is_read() {
    let patient = patient_a();
    let text = cda(CdaKind::DischargeLetter, &patient, "1.2.250.1.999.1.1.43").replace(
        "<recordTarget>",
        r#"<relatedDocument typeCode="RPLC"><parentDocument><id root="1.2.250.1.999.1.1.42"/></parentDocument></relatedDocument><recordTarget>"#,
    );
    let cda = text.into_bytes();
    let mut entry = Entry::cda(
        "Document01",
        "DOC0001.XML",
        cda.clone(),
        "1.2.250.1.999.1.1.43",
        &patient,
        CdaKind::DischargeLetter,
    );
    entry.masking = true;
    let metadata = metadata(&patient.cx(), &[entry]);
    let zip = xdm_zip(&[
        ("IHE_XDM/SUBSET01/METADATA.XML", metadata.as_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &cda),
    ]);
    let mail = message(&[], &[("IHE_XDM.zip", "application/zip", &zip)]);
    let extraction = extract(&mail, source(), &policy()).unwrap();
    let request = &extraction.requests[0];
    let masking: Vec<&str> = request
        .entry
        .masking_codes()
        .map(|code| code.code.as_str())
        .collect();
    assert_eq!(masking, ["MASQUE_PS", "INVISIBLE_PATIENT"]);
    assert_eq!(request.entry.confidentiality_codes[0].code, "N");
    let replaces = request.replaces.as_ref().unwrap();
    assert_eq!(replaces.unique_id.as_deref(), Some("1.2.250.1.999.1.1.42"));
}

#[test]
fn xdm_is_recognised_by_content_under_any_name() {
    let package = standard_package(&patient_a(), CdaKind::DischargeLetter);
    let zip = package.zip();
    assert!(xdm::is_xdm(Some("envoi.zip"), &zip));
    assert!(xdm::is_xdm(Some("ihe-xdm.ZIP"), b"not even a zip"));
    let mail = message(&[], &[("envoi.zip", "application/octet-stream", &zip)]);
    let extraction = extract(&mail, source(), &policy()).unwrap();
    assert_eq!(extraction.requests.len(), 1);
}

#[test]
fn uri_including_the_subset_folder_is_accepted() {
    // ANS DRIM sample quirk: URI = "SS000001/KOS_1_1.DCM" (subset folder included).
    let patient = patient_a();
    let cda = cda(CdaKind::DischargeLetter, &patient, "1.2.250.1.999.1.1.44").into_bytes();
    let entry = Entry::cda(
        "Document01",
        "SS000001/DOC0001.XML",
        cda.clone(),
        "1.2.250.1.999.1.1.44",
        &patient,
        CdaKind::DischargeLetter,
    );
    let metadata = metadata(&patient.cx(), &[entry]);
    let zip = xdm_zip(&[
        ("IHE_XDM/SS000001/METADATA.XML", metadata.as_bytes()),
        ("IHE_XDM/SS000001/DOC0001.XML", &cda),
    ]);
    let mail = message(&[], &[("IHE_XDM.ZIP", "application/zip", &zip)]);
    let extraction = extract(&mail, source(), &policy()).unwrap();
    assert_eq!(extraction.requests.len(), 1);
}

#[test]
fn inconsistent_mss_headers_warn_by_default_and_refuse_when_configured() {
    let package = standard_package(&patient_a(), CdaKind::DischargeLetter);
    let mail = message(
        &[("X-MSS-CODECDA", "11502-2"), ("X-MSS-INS", "N")],
        &[("IHE_XDM.ZIP", "application/zip", &package.zip())],
    );
    let extraction = extract(&mail, source(), &policy()).unwrap();
    assert_eq!(extraction.requests.len(), 1);
    let headers: Vec<&str> = extraction
        .warnings
        .iter()
        .map(|warning| match warning {
            ExtractionWarning::MssHeader { header, .. } => *header,
            _ => "other",
        })
        .collect();
    assert_eq!(headers, ["X-MSS-CODECDA", "X-MSS-INS"]);
    let mut strict = policy();
    strict.refuse_inconsistent_mss_headers = true;
    let error = extract(&mail, source(), &strict).unwrap_err();
    assert_eq!(error.ledger_reason(), "mss_header_inconsistent");
    assert_eq!(error.reply().code, 554);
}

#[test]
fn nested_rfc822_message_is_walked() {
    let package = standard_package(&patient_a(), CdaKind::DischargeLetter);
    let inner = message(&[], &[("IHE_XDM.ZIP", "application/zip", &package.zip())]);
    let mut outer = b"From: a@hopital-a.mssante.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\n".to_vec();
    outer.extend_from_slice(&inner);
    outer.extend_from_slice(b"\r\n--outer--\r\n");
    let extraction = extract(&outer, source(), &policy()).unwrap();
    assert_eq!(extraction.requests.len(), 1);
}

#[test]
fn rfc2231_and_rfc2047_file_names_are_decoded() {
    let pdf = fake_pdf(500);
    let body = base64(&pdf);
    let mail = format!(
        "From: a@hopital-a.mssante.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename*=UTF-8''compte%20rendu%20%C3%A9t%C3%A9.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}\r\n\
--b\r\nContent-Type: application/pdf; name=\"=?UTF-8?B?ZMOpY8OocyBlbnZvacOp?=.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}\r\n--b--\r\n"
    );
    let extraction = extract(mail.as_bytes(), source(), &policy()).unwrap();
    let names: Vec<&str> = extraction
        .not_deposited
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(names[0], "compte rendu été.pdf");
    assert_eq!(names[1], "décès envoié.pdf");
}
