//! Public samples as interoperability fixtures (see `fixtures/documents/SOURCE.md`).

mod documents_support;

use std::path::PathBuf;

use documents_support::{policy, source, xdm_zip};
use gateway::documents::cda::{self, CdaBody};
use gateway::documents::xml::XmlError;
use gateway::documents::{DocumentError, NotDepositedReason, extract, xdm};

fn fixture(name: &str) -> Vec<u8> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "documents",
        name,
    ]
    .iter()
    .collect();
    std::fs::read(path).unwrap()
}

#[test]
fn ans_discharge_letter_header_is_read() {
    let header = cda::parse(
        &fixture("LDL-SES_2022.01.xml"),
        "LDL-SES",
        policy().xml_limits(),
    )
    .unwrap();
    assert_eq!(header.code.as_ref().unwrap().code, "11490-0");
    assert_eq!(header.id.to_xds(), "1.2.250.1.213.1.1.1.29.2022.1.1");
    assert!(
        header
            .template_ids
            .iter()
            .any(|t| t == "1.2.250.1.213.1.1.1.29")
    );
    assert_eq!(
        header.healthcare_facility_type.as_ref().unwrap().code,
        "SA01"
    );
    assert_eq!(
        header.practice_setting.as_ref().unwrap().code,
        "ETABLISSEMENT"
    );
    assert_eq!(header.service_start.as_deref(), Some("20191029111700+0100"));
    assert_eq!(header.patient.birth_name.as_deref(), Some("PAT-TROIS"));
    assert_eq!(
        header.patient.first_given_name.as_deref(),
        Some("DOMINIQUE")
    );
    assert_eq!(header.patient.birthplace_insee.as_deref(), Some("51215"));
    assert_eq!(header.body, CdaBody::Structured);
    assert!(header.authors[0].id.as_ref().unwrap().root == "1.2.250.1.71.4.2.1");
}

#[test]
fn ans_discharge_letter_as_bare_attachment_is_deposited_in_test_mode() {
    let cda = fixture("LDL-SES_2022.01.xml");
    let mail = documents_support::message(&[], &[("LDL-SES.xml", "text/xml", &cda)]);
    let extraction = extract(&mail, source(), &policy()).unwrap();
    let request = &extraction.requests[0];
    assert_eq!(
        request.entry.format_code.code,
        "urn:asip:ci-sis:ldl-ses:2017"
    );
    assert_eq!(
        request.entry.service_start_time.as_deref(),
        Some("20191029101700")
    );
    assert_eq!(request.document, cda);
}

#[test]
fn ans_level1_imaging_report_is_a_pdf_in_cda() {
    let header = cda::parse(
        &fixture("IMG_CR_IMG_2024.01_CDA-R2-Niveau-1.xml"),
        "IMG",
        policy().xml_limits(),
    )
    .unwrap();
    assert_eq!(header.code.as_ref().unwrap().code, "18748-4");
    assert_eq!(header.version_number.as_deref(), Some("2"));
    assert!(
        matches!(header.body, CdaBody::NonXml { media_type: Some(ref media) } if media == "application/pdf")
    );
}

/// The DMP sample's SubmitObjectsRequest, and the KOS document its metadata describes.
fn drim_metadata_and_kos() -> (String, String, Vec<u8>) {
    let xds = String::from_utf8(fixture("drim-XDS.xml")).unwrap();
    let start = xds.find("<ns3:SubmitObjectsRequest>").unwrap();
    let end =
        xds.find("</ns3:SubmitObjectsRequest>").unwrap() + "</ns3:SubmitObjectsRequest>".len();
    let fragment = xds[start..end].to_owned();
    let declared = fragment.replacen(
        "<ns3:SubmitObjectsRequest>",
        r#"<ns3:SubmitObjectsRequest xmlns="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" xmlns:ns3="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0">"#,
        1,
    );
    let publication = String::from_utf8(fixture("drim-publication.xml")).unwrap();
    let part = publication.split("Content-ID: <0.2>").nth(1).unwrap();
    let encoded: String = part
        .split("--MIMEBoundary_Bound--")
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let kos = openssl::base64::decode_block(&encoded).unwrap();
    (fragment, declared, kos)
}

#[test]
fn dmp_sample_metadata_in_an_xdm_package_is_read_and_its_hash_checked() {
    let (_, metadata, kos) = drim_metadata_and_kos();
    assert_eq!(kos.len(), 8450);
    // XDS.xml declares another KOS (109448 bytes): with publication.xml's KOS it must fail.
    let zip = xdm_zip(&[
        ("IHE_XDM/SS000001/METADATA.XML", metadata.as_bytes()),
        ("IHE_XDM/SS000001/DOC0001.XML", &kos),
    ]);
    let error = xdm::read_package(&zip, "IHE_XDM.ZIP", &policy()).unwrap_err();
    assert!(
        matches!(error, DocumentError::SizeMismatch { actual: 8450, .. }),
        "{error:?}"
    );
    // Declaring the KOS publication.xml carries, the package is read.
    let metadata = metadata
        .replace(
            "40F393C8374838DA6115DE7B140CAEEF06866EBF",
            "58408C116B51497C0F2084C90DA3C85C7098455A",
        )
        .replace("<Value>109448</Value>", "<Value>8450</Value>");
    let zip = xdm_zip(&[
        ("IHE_XDM/SS000001/METADATA.XML", metadata.as_bytes()),
        ("IHE_XDM/SS000001/DOC0001.XML", &kos),
    ]);
    let package = xdm::read_package(&zip, "IHE_XDM.ZIP", &policy()).unwrap();
    let subset = &package.subsets[0];
    assert_eq!(subset.folder, "SS000001");
    let kos_entry = &subset.documents[0].entry;
    assert_eq!(kos_entry.class_code.as_ref().unwrap().code, "31");
    assert_eq!(
        kos_entry
            .healthcare_facility_type_code
            .as_ref()
            .unwrap()
            .code,
        "SA25"
    );
    assert_eq!(
        subset.documents[0].sha1,
        "58408c116b51497c0f2084c90da3c85c7098455a"
    );
    let signature = &subset.documents[1].entry;
    let codes: Vec<&str> = signature
        .confidentiality_codes
        .iter()
        .map(|c| c.code.as_str())
        .collect();
    assert_eq!(codes, ["N", "MASQUE_PS", "INVISIBLE_PATIENT"]);
    assert!(
        subset
            .metadata
            .patient_id
            .as_deref()
            .unwrap()
            .ends_with("^^^&1.2.250.1.213.1.4.10&ISO^NH")
    );

    // Neither the KOS nor the signature is a CDA: nothing is deposited, each says why.
    let mail = documents_support::message(&[], &[("IHE_XDM.ZIP", "application/zip", &zip)]);
    let extraction = extract(&mail, source(), &policy()).unwrap();
    assert!(extraction.requests.is_empty());
    assert!(
        extraction
            .not_deposited
            .iter()
            .all(|n| matches!(n.reason, NotDepositedReason::NotCda { .. }))
    );
}

#[test]
fn dmp_sample_fragment_without_namespace_declarations_is_refused_clearly() {
    // The ANS DRIM METADATA.XML quirk: the fragment starts at <ns3:SubmitObjectsRequest>.
    let (fragment, _, kos) = drim_metadata_and_kos();
    let zip = xdm_zip(&[
        ("IHE_XDM/SS000001/METADATA.XML", fragment.as_bytes()),
        ("IHE_XDM/SS000001/DOC0001.XML", &kos),
    ]);
    let error = xdm::read_package(&zip, "IHE_XDM.ZIP", &policy()).unwrap_err();
    assert!(
        matches!(error, DocumentError::Xml { source: XmlError::UndeclaredPrefix { ref prefix }, .. } if prefix == "ns3"),
        "{error:?}"
    );
    assert_eq!(error.reply().enhanced.unwrap().to_string(), "5.6.0");
}

#[test]
fn nist_direct_message_xdm_with_ebrim_2_1_is_refused_as_unsupported() {
    let mail = fixture("nist-signed-xdm.eml");
    let error = extract(&mail, source(), &policy()).unwrap_err();
    assert!(
        matches!(error, DocumentError::UnsupportedMetadata { .. }),
        "{error:?}"
    );
    assert_eq!(error.reply().enhanced.unwrap().to_string(), "5.6.1");
    assert_eq!(error.ledger_reason(), "xdm_unsupported_metadata");
}
