//! Document extraction refusals: each one is a typed error with its SMTP reply and ledger reason.

mod documents_support;

use std::io::Write;

use documents_support::*;
use gateway::documents::xdm::zip::ZipError;
use gateway::documents::xml::XmlError;
use gateway::documents::{DocumentError, DocumentPolicy, extract};
use gateway::ins::{InsEnvironment, InsError};
use zip::write::SimpleFileOptions;

fn refuse(mail: &[u8], policy: &DocumentPolicy) -> DocumentError {
    let error = extract(mail, source(), policy).unwrap_err();
    let reply = error.reply();
    assert_eq!(reply.code, 554, "{error}");
    assert!(reply.text.len() < 400);
    error
}

fn xdm_mail(zip: &[u8]) -> Vec<u8> {
    message(&[], &[("IHE_XDM.ZIP", "application/zip", zip)])
}

fn zip_with(names: &[&str]) -> Vec<u8> {
    let package = standard_package(&patient_a(), CdaKind::DischargeLetter);
    let mut files: Vec<(&str, &[u8])> = vec![
        ("IHE_XDM/SUBSET01/METADATA.XML", package.metadata.as_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &package.cda),
    ];
    for name in names {
        files.push((name, b"x"));
    }
    xdm_zip(&files)
}

#[test]
fn path_traversal_absolute_and_backslash_names_refuse_the_package() {
    for name in [
        "../evil.txt",
        "IHE_XDM/SUBSET01/../../evil",
        "/etc/evil",
        "IHE_XDM\\SUBSET01\\evil",
        "C:/evil",
    ] {
        let error = refuse(&xdm_mail(&zip_with(&[name])), &policy());
        assert!(
            matches!(
                error,
                DocumentError::Zip {
                    source: ZipError::UnsafePath { .. },
                    ..
                }
            ),
            "{name}: {error:?}"
        );
        assert_eq!(error.ledger_reason(), "zip_unsafe_path");
    }
}

#[test]
fn symlink_entries_refuse_the_package() {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .add_symlink(
            "IHE_XDM/SUBSET01/DOC0001.XML",
            "/etc/passwd",
            SimpleFileOptions::default(),
        )
        .unwrap();
    let zip = writer.finish().unwrap().into_inner();
    let error = refuse(&xdm_mail(&zip), &policy());
    assert!(
        matches!(
            error,
            DocumentError::Zip {
                source: ZipError::Link { .. },
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn zip_bomb_is_stopped_before_inflating() {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    writer
        .start_file("IHE_XDM/SUBSET01/DOC0001.XML", options)
        .unwrap();
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..16 {
        writer.write_all(&zeros).unwrap();
    }
    let zip = writer.finish().unwrap().into_inner();
    assert!(zip.len() < 100_000, "the bomb is small: {}", zip.len());
    let error = refuse(&xdm_mail(&zip), &policy());
    assert!(
        matches!(
            error,
            DocumentError::Zip {
                source: ZipError::RatioTooHigh { .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.ledger_reason(), "zip_bomb");
    // With the ratio check relaxed, the size limit stops it.
    let relaxed = DocumentPolicy {
        max_compression_ratio: u64::MAX,
        max_entry_size: 4 * 1024 * 1024,
        ..policy()
    };
    let error = refuse(&xdm_mail(&zip), &relaxed);
    assert!(
        matches!(
            error,
            DocumentError::Zip {
                source: ZipError::EntryTooLarge { .. },
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn too_many_entries_refuse_the_package() {
    let names: Vec<String> = (0..40)
        .map(|index| format!("extra/file{index}.txt"))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let limited = DocumentPolicy {
        max_zip_entries: 20,
        ..policy()
    };
    let error = refuse(&xdm_mail(&zip_with(&names)), &limited);
    assert!(
        matches!(
            error,
            DocumentError::Zip {
                source: ZipError::TooManyEntries {
                    count: 44,
                    limit: 20
                },
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn xxe_and_billion_laughs_in_metadata_are_refused() {
    let package = standard_package(&patient_a(), CdaKind::DischargeLetter);
    let doctypes = [
        r#"<!DOCTYPE lcm:SubmitObjectsRequest [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>"#,
        r#"<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>"#,
    ];
    for doctype in doctypes {
        let metadata = package
            .metadata
            .replacen(
                "<lcm:SubmitObjectsRequest",
                &format!("{doctype}\n<lcm:SubmitObjectsRequest"),
                1,
            )
            .replacen("<rim:RegistryObjectList>", "<rim:RegistryObjectList>&c;", 1);
        let zip = xdm_zip(&[
            ("IHE_XDM/SUBSET01/METADATA.XML", metadata.as_bytes()),
            ("IHE_XDM/SUBSET01/DOC0001.XML", &package.cda),
        ]);
        let error = refuse(&xdm_mail(&zip), &policy());
        assert!(
            matches!(
                error,
                DocumentError::Xml {
                    source: XmlError::Doctype,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(error.ledger_reason(), "xml_dtd_or_entity");
    }
}

#[test]
fn xxe_and_billion_laughs_in_cda_are_refused() {
    let cda = cda(CdaKind::PdfN1, &patient_a(), "1.2.250.1.999.1.3.2").replacen(
        "<ClinicalDocument",
        r#"<!DOCTYPE ClinicalDocument [<!ENTITY xxe SYSTEM "file:///etc/passwd"><!ENTITY a "&xxe;&xxe;">]><ClinicalDocument"#,
        1,
    );
    let mail = message(&[], &[("cda.xml", "text/xml", cda.as_bytes())]);
    let error = refuse(&mail, &policy());
    assert!(
        matches!(
            error,
            DocumentError::Xml {
                source: XmlError::Doctype,
                ..
            }
        ),
        "{error:?}"
    );
    // An undeclared entity without a DTD is refused too.
    let cda = cda_text_with_entity();
    let mail = message(&[], &[("cda.xml", "text/xml", cda.as_bytes())]);
    let error = refuse(&mail, &policy());
    assert!(
        matches!(
            error,
            DocumentError::Xml {
                source: XmlError::EntityReference { .. },
                ..
            }
        ),
        "{error:?}"
    );
}

fn cda_text_with_entity() -> String {
    cda(
        CdaKind::DischargeLetter,
        &patient_a(),
        "1.2.250.1.999.1.3.3",
    )
    .replace("<title>Lettre de liaison</title>", "<title>&lol9;</title>")
}

#[test]
fn metadata_fragment_with_undeclared_prefix_is_refused_clearly() {
    // ANS DRIM sample quirk: METADATA.XML starts at <ns3:SubmitObjectsRequest> with ns3 undeclared.
    let package = standard_package(&patient_a(), CdaKind::DischargeLetter);
    let body = package
        .metadata
        .split_once("<rim:RegistryObjectList>")
        .unwrap()
        .1;
    let fragment = format!("<ns3:SubmitObjectsRequest><rim:RegistryObjectList>{body}")
        .replace("</lcm:SubmitObjectsRequest>", "</ns3:SubmitObjectsRequest>");
    let zip = xdm_zip(&[
        ("IHE_XDM/SS000001/METADATA.XML", fragment.as_bytes()),
        ("IHE_XDM/SS000001/DOC0001.XML", &package.cda),
    ]);
    let error = refuse(&xdm_mail(&zip), &policy());
    assert!(
        matches!(&error, DocumentError::Xml { source: XmlError::UndeclaredPrefix { prefix }, document } if prefix == "ns3" && document.ends_with("METADATA.XML")),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("namespace prefix `ns3` is not declared")
    );
}

#[test]
fn hash_and_size_mismatches_are_refused() {
    let package = standard_package(&patient_a(), CdaKind::DischargeLetter);
    let mut altered = package.cda.clone();
    let position = altered.iter().position(|byte| *byte == b'S').unwrap();
    altered[position] = b'T';
    let zip = xdm_zip(&[
        ("IHE_XDM/SUBSET01/METADATA.XML", package.metadata.as_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &altered),
    ]);
    let error = refuse(&xdm_mail(&zip), &policy());
    assert_eq!(error.ledger_reason(), "xdm_hash_mismatch", "{error:?}");
    let mut longer = package.cda.clone();
    longer.push(b'\n');
    let zip = xdm_zip(&[
        ("IHE_XDM/SUBSET01/METADATA.XML", package.metadata.as_bytes()),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &longer),
    ]);
    let error = refuse(&xdm_mail(&zip), &policy());
    assert!(
        matches!(error, DocumentError::SizeMismatch { .. }),
        "{error:?}"
    );
}

#[test]
fn two_patients_in_one_message_are_refused() {
    let first = standard_package(&patient_a(), CdaKind::DischargeLetter);
    let second = cda(CdaKind::PdfN1, &patient_b(), "1.2.250.1.999.1.9.9");
    let mail = message(
        &[],
        &[
            ("IHE_XDM.ZIP", "application/zip", &first.zip()),
            ("autre.xml", "text/xml", second.as_bytes()),
        ],
    );
    let error = refuse(&mail, &policy());
    assert!(
        matches!(error, DocumentError::SeveralPatients { .. }),
        "{error:?}"
    );
    assert_eq!(error.ledger_reason(), "several_patients");
}

#[test]
fn xdm_patient_id_different_from_cda_ins_is_refused() {
    let (a, b) = (patient_a(), patient_b());
    let cda = cda(CdaKind::DischargeLetter, &a, "1.2.250.1.999.1.1.50").into_bytes();
    let mut entry = Entry::cda(
        "Document01",
        "DOC0001.XML",
        cda.clone(),
        "1.2.250.1.999.1.1.50",
        &a,
        CdaKind::DischargeLetter,
    );
    entry.patient_cx = b.cx();
    let zip = xdm_zip(&[
        (
            "IHE_XDM/SUBSET01/METADATA.XML",
            metadata(&b.cx(), &[entry]).as_bytes(),
        ),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &cda),
    ]);
    let error = refuse(&xdm_mail(&zip), &policy());
    assert!(
        matches!(error, DocumentError::PatientMismatch { .. }),
        "{error:?}"
    );
}

#[test]
fn trait_mismatch_between_xdm_and_cda_is_refused() {
    let a = patient_a();
    let cda = cda(CdaKind::DischargeLetter, &a, "1.2.250.1.999.1.1.51").into_bytes();
    let mut entry = Entry::cda(
        "Document01",
        "DOC0001.XML",
        cda.clone(),
        "1.2.250.1.999.1.1.51",
        &a,
        CdaKind::DischargeLetter,
    );
    entry.source_patient_info[1] = "PID-7|19850616".to_owned();
    let zip = xdm_zip(&[
        (
            "IHE_XDM/SUBSET01/METADATA.XML",
            metadata(&a.cx(), &[entry]).as_bytes(),
        ),
        ("IHE_XDM/SUBSET01/DOC0001.XML", &cda),
    ]);
    let error = refuse(&xdm_mail(&zip), &policy());
    assert!(
        matches!(
            error,
            DocumentError::TraitMismatch {
                identity_trait: "birth date",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn missing_required_metadata_is_refused_naming_the_field() {
    let cda = cda(CdaKind::PdfN1, &patient_a(), "1.2.250.1.999.1.3.4");
    let without_facility = cda.replace(
        r#"<location><healthCareFacility><code code="SA01" displayName="Etablissement public de santé" codeSystem="1.2.250.1.71.4.2.4"/></healthCareFacility></location>"#,
        "",
    );
    assert_ne!(cda, without_facility);
    let mail = message(&[], &[("cda.xml", "text/xml", without_facility.as_bytes())]);
    let error = refuse(&mail, &policy());
    assert!(
        matches!(
            error,
            DocumentError::MissingMetadata {
                field: "healthcareFacilityTypeCode",
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn bad_ins_key_and_wrong_environment_are_refused() {
    let mut patient = patient_a();
    let key: u8 = patient.matricule[13..].parse().unwrap();
    patient.matricule = format!("{}{:02}", &patient.matricule[..13], (key % 97) + 1);
    let bad_key = cda(CdaKind::PdfN1, &patient, "1.2.250.1.999.1.3.5");
    let mail = message(&[], &[("cda.xml", "text/xml", bad_key.as_bytes())]);
    let error = refuse(&mail, &policy());
    assert!(
        matches!(
            error,
            DocumentError::InvalidIns {
                source: InsError::BadKey { .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.ledger_reason(), "ins_bad_key");

    let cda = cda(CdaKind::PdfN1, &patient_a(), "1.2.250.1.999.1.3.6");
    let mail = message(&[], &[("cda.xml", "text/xml", cda.as_bytes())]);
    let production = DocumentPolicy {
        ins_environment: InsEnvironment::Production,
        ..policy()
    };
    let error = refuse(&mail, &production);
    assert!(
        matches!(
            error,
            DocumentError::InvalidIns {
                source: InsError::WrongEnvironment { .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.ledger_reason(), "ins_wrong_environment");
}

#[test]
fn cda_without_ins_is_refused() {
    let cda =
        cda(CdaKind::PdfN1, &patient_a(), "1.2.250.1.999.1.3.7").replace(TEST_NIR, "1.2.3.4.5.6.8");
    let mail = message(&[], &[("cda.xml", "text/xml", cda.as_bytes())]);
    assert!(matches!(
        refuse(&mail, &policy()),
        DocumentError::MissingIns { .. }
    ));
}

#[test]
fn mime_limits_are_enforced() {
    let pdf = fake_pdf(100);
    let many: Vec<(&str, &str, &[u8])> = (0..5)
        .map(|_| ("a.pdf", "application/pdf", pdf.as_slice()))
        .collect();
    let limited = DocumentPolicy {
        max_attachments: 3,
        ..policy()
    };
    assert!(matches!(
        refuse(&message(&[], &many), &limited),
        DocumentError::TooManyParts { .. }
    ));
    let small = DocumentPolicy {
        max_decoded_size: 250,
        ..policy()
    };
    assert!(matches!(
        refuse(&message(&[], &many), &small),
        DocumentError::DecodedTooLarge { .. }
    ));
    let mut nested = b"Content-Type: text/plain\r\n\r\nfin\r\n".to_vec();
    for depth in 0..12 {
        let mut outer =
            format!("Content-Type: multipart/mixed; boundary=\"d{depth}\"\r\n\r\n--d{depth}\r\n")
                .into_bytes();
        outer.extend_from_slice(&nested);
        outer.extend_from_slice(format!("\r\n--d{depth}--\r\n").as_bytes());
        nested = outer;
    }
    assert!(matches!(
        refuse(&nested, &policy()),
        DocumentError::MimeTooDeep { .. }
    ));
}

#[test]
fn package_without_metadata_is_refused() {
    let zip = xdm_zip(&[("IHE_XDM/SUBSET01/DOC0001.XML", b"<x/>")]);
    assert_eq!(
        refuse(&xdm_mail(&zip), &policy()).ledger_reason(),
        "xdm_no_metadata"
    );
}

#[test]
fn total_uncompressed_size_is_limited() {
    let limited = DocumentPolicy {
        max_total_uncompressed: 2_000,
        ..policy()
    };
    let error = refuse(&xdm_mail(&zip_with(&[])), &limited);
    assert!(
        matches!(
            error,
            DocumentError::Zip {
                source: ZipError::TotalTooLarge { .. },
                ..
            }
        ),
        "{error:?}"
    );
}
