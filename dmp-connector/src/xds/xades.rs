//! The TD2.1 signature of the submission set: an IHE DSG detached XML-DSig with XAdES
//! (v1.1.1, as in the ANS DRIM-M sample) signed by the structure's ORG SIGN certificate.
//!
//! The signature document holds a `Manifest` referencing each document by `urn:oid:<uniqueId>`
//! with the SHA-256 of its bytes, a `purposeOfSignature` property ("Source",
//! `1.2.840.10065.1.12.1.14`) and XAdES `SignedProperties` (signing time, signing certificate
//! digest and issuer/serial, implied policy). `SignedInfo` references the Manifest and the
//! SignedProperties, each with exclusive C14N. It travels as its own document entry
//! (`Signature01`) linked to the submission set by a `signs` association ([`super::metadata`]).

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::dom::{self, Element};
use super::metadata::{self, SignatureDocument, SubmissionProfile, scheme};
use super::time::UtcTime;
use super::xml::XmlWriter;
use super::xmldsig::{self, EXC_C14N, RSA_SHA256, SHA256, SignatureError, SigningIdentity, crypto};
use super::{new_urn_uuid, ns};
use crate::deposit::{Code, DepositRequest};

/// XAdES namespace of the DMP sample (XAdES 1.1.1).
pub const XADES: &str = "http://uri.etsi.org/01903/v1.1.1#";
/// `Reference/@Type` of the Manifest.
pub const MANIFEST_TYPE: &str = "http://www.w3.org/2000/09/xmldsig#Manifest";
/// `Reference/@Type` of the SignedProperties.
pub const SIGNED_PROPERTIES_TYPE: &str = "http://uri.etsi.org/01903/v1.1.1#SignedProperties";
/// Id of the Manifest.
pub const MANIFEST_ID: &str = "IHEManifest";
/// Id of the SignedProperties.
pub const SIGNED_PROPERTIES_ID: &str = "S0-SignedProperties";
/// The purpose of signature "Source" (ASTM E1762 / ISO 17090).
pub const PURPOSE_SOURCE: &str = "1.2.840.10065.1.12.1.14";

fn by_id<'a>(element: &'a Element, id: &str) -> Option<&'a Element> {
    if element.attr("Id") == Some(id) {
        return Some(element);
    }
    element.elements().find_map(|e| by_id(e, id))
}

fn digest_of(document: &str, id: &str) -> Result<String, SignatureError> {
    let root = dom::parse(document.as_bytes())
        .map_err(|e| SignatureError::Structure(format!("signature document: {e}")))?;
    let element = by_id(&root, id)
        .ok_or_else(|| SignatureError::Structure(format!("no element with Id {id}")))?;
    Ok(BASE64.encode(openssl::sha::sha256(
        dom::exc_c14n(element, &|_| false).as_bytes(),
    )))
}

fn reference(w: &mut XmlWriter, uri: &str, kind: Option<&str>, digest: &str, c14n: bool) {
    match kind {
        Some(kind) => w.start("Reference", &[("Type", kind), ("URI", uri)]),
        None => w.start("Reference", &[("URI", uri)]),
    };
    if c14n {
        w.start("Transforms", &[])
            .start("Transform", &[("Algorithm", EXC_C14N)])
            .end()
            .end();
    }
    w.start("DigestMethod", &[("Algorithm", SHA256)])
        .end()
        .leaf("DigestValue", &[], digest)
        .end();
}

fn assemble(signature_id: &str, signed_info: &str, value: &str, rest: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Signature xmlns=\"{}\" Id=\"{signature_id}\">{signed_info}<SignatureValue>{value}</SignatureValue>{rest}</Signature>",
        ns::DS
    )
}

/// Builds the signature document over `documents` (`(uniqueId, bytes)` pairs) at `now`.
pub fn build_signature_document(
    identity: &SigningIdentity,
    documents: &[(&str, &[u8])],
    now: SystemTime,
) -> Result<Vec<u8>, SignatureError> {
    // An XML ID must be an NCName: prefix the UUID.
    let signature_id = format!("_{}", &new_urn_uuid()["urn:uuid:".len()..]);
    let certificate = identity.certificate();
    let certificate_der = certificate.to_der().map_err(crypto("encode certificate"))?;
    let serial = certificate
        .serial_number()
        .to_bn()
        .and_then(|bn| bn.to_dec_str().map(|s| s.to_string()))
        .map_err(crypto("serial number"))?;

    let mut rest = XmlWriter::new();
    rest.start("KeyInfo", &[])
        .start("X509Data", &[])
        .leaf("X509Certificate", &[], &BASE64.encode(&certificate_der))
        .end()
        .end();
    rest.start("Object", &[])
        .start("SignatureProperties", &[])
        .leaf(
            "SignatureProperty",
            &[
                ("Id", "purposeOfSignature"),
                ("Target", &format!("#{signature_id}")),
            ],
            PURPOSE_SOURCE,
        )
        .end()
        .end();
    rest.start("Object", &[])
        .start("Manifest", &[("Id", MANIFEST_ID)]);
    for (unique_id, bytes) in documents {
        let digest = BASE64.encode(openssl::sha::sha256(bytes));
        reference(
            &mut rest,
            &format!("urn:oid:{unique_id}"),
            None,
            &digest,
            false,
        );
    }
    rest.end().end();
    rest.start("Object", &[])
        .start(
            "QualifyingProperties",
            &[("xmlns", XADES), ("Target", &format!("#{signature_id}"))],
        )
        .start("SignedProperties", &[("Id", SIGNED_PROPERTIES_ID)])
        .start("SignedSignatureProperties", &[])
        .leaf(
            "SigningTime",
            &[],
            &UtcTime::from_system(now).xs_date_time(),
        )
        .start("SigningCertificate", &[])
        .start("Cert", &[])
        .start("CertDigest", &[])
        .start("DigestMethod", &[("xmlns", ns::DS), ("Algorithm", SHA256)])
        .end()
        .leaf(
            "DigestValue",
            &[("xmlns", ns::DS)],
            &BASE64.encode(openssl::sha::sha256(&certificate_der)),
        )
        .end()
        .start("IssuerSerial", &[])
        .leaf(
            "X509IssuerName",
            &[("xmlns", ns::DS)],
            &xmldsig::dn_string(certificate.issuer_name()),
        )
        .leaf("X509SerialNumber", &[("xmlns", ns::DS)], &serial)
        .end()
        .end()
        .end()
        .start("SignaturePolicyIdentifier", &[])
        .start("SignaturePolicyImplied", &[])
        .end()
        .end()
        .end()
        .start("SignedDataObjectProperties", &[])
        .end()
        .end()
        .end()
        .end();
    let rest = rest.finish();

    // Digests of the referenced parts, taken from the parsed document so that namespace
    // context is exactly what a verifier sees.
    let draft = assemble(&signature_id, "", "", &rest);
    let manifest_digest = digest_of(&draft, MANIFEST_ID)?;
    let properties_digest = digest_of(&draft, SIGNED_PROPERTIES_ID)?;
    let mut info = XmlWriter::new();
    info.start("SignedInfo", &[])
        .start("CanonicalizationMethod", &[("Algorithm", EXC_C14N)])
        .end()
        .start("SignatureMethod", &[("Algorithm", RSA_SHA256)])
        .end();
    reference(
        &mut info,
        &format!("#{MANIFEST_ID}"),
        Some(MANIFEST_TYPE),
        &manifest_digest,
        true,
    );
    reference(
        &mut info,
        &format!("#{SIGNED_PROPERTIES_ID}"),
        Some(SIGNED_PROPERTIES_TYPE),
        &properties_digest,
        true,
    );
    let info = info.finish();
    let with_info = assemble(&signature_id, &info, "", &rest);
    let root = dom::parse(with_info.as_bytes())
        .map_err(|e| SignatureError::Structure(format!("signature document: {e}")))?;
    let signed_info = root
        .child(ns::DS, "SignedInfo")
        .ok_or_else(|| SignatureError::Structure("no SignedInfo".into()))?;
    let value = identity.sign(dom::exc_c14n(signed_info, &|_| false).as_bytes())?;
    Ok(assemble(&signature_id, &info, &BASE64.encode(value), &rest).into_bytes())
}

/// Id of the signature's ExtrinsicObject and `xdsb:Document`.
pub const SIGNATURE_ENTRY_ID: &str = "Signature01";

/// Writes the signature's ExtrinsicObject (DOMAIN §4.5) and returns its document.
pub(super) fn write_signature_entry(
    w: &mut XmlWriter,
    ids: &mut metadata::Ids,
    profile: &SubmissionProfile,
    request: &DepositRequest,
    submission_time: &str,
    signer: &SigningIdentity,
    now: SystemTime,
) -> Result<SignatureDocument, SignatureError> {
    let entry = &request.entry;
    let bytes = build_signature_document(
        signer,
        &[(entry.unique_id.as_str(), request.document.as_slice())],
        now,
    )?;
    let id = SIGNATURE_ENTRY_ID;
    let patient_cx = request.patient.to_cx();
    let code = |code: &str, scheme: &str, name: &str| Code {
        code: code.to_owned(),
        scheme: scheme.to_owned(),
        display_name: Some(name.to_owned()),
    };
    w.start(
        "rim:ExtrinsicObject",
        &[
            ("id", id),
            ("mimeType", "text/xml"),
            ("objectType", scheme::DE_STABLE),
        ],
    );
    metadata::slot(w, "creationTime", &[submission_time]);
    metadata::slot(w, "submissionTime", &[submission_time]);
    metadata::slot(w, "languageCode", &["art"]);
    metadata::slot(w, "serviceStartTime", &[submission_time]);
    metadata::slot(w, "serviceStopTime", &[submission_time]);
    let source_patient = entry.source_patient_id.as_deref().unwrap_or(&patient_cx);
    metadata::slot(w, "sourcePatientId", &[source_patient]);
    metadata::slot(w, "hash", &[&hex(&openssl::sha::sha1(&bytes))]);
    metadata::slot(w, "size", &[&bytes.len().to_string()]);
    metadata::localized(w, "rim:Name", "Source");
    // Same authors as the document: the DMP wants every entry's authorInstitution to be the
    // submission set's.
    for author in &entry.authors {
        metadata::author(w, ids, scheme::DE_AUTHOR, id, author);
    }
    let coded = [
        (
            scheme::DE_CLASS,
            code(
                "urn:oid:1.3.6.1.4.1.19376.1.2.1.1.1",
                "URN",
                "Digital Signature",
            ),
        ),
        (scheme::DE_TYPE, code("E1762", "ASTM", "Full Document")),
        (
            scheme::DE_CONFIDENTIALITY,
            code("N", "2.16.840.1.113883.5.25", "Normal"),
        ),
        (
            scheme::DE_FORMAT,
            code(ns::DS, "URN", "Default Signature Style"),
        ),
        (
            scheme::DE_FACILITY,
            entry.healthcare_facility_type_code.clone(),
        ),
        (scheme::DE_PRACTICE, entry.practice_setting_code.clone()),
        (
            scheme::DE_EVENT,
            code(PURPOSE_SOURCE, "1.2.840.10065.1.12", "Source"),
        ),
    ];
    for (scheme_uuid, value) in &coded {
        metadata::coded(w, ids, scheme_uuid, id, value);
    }
    metadata::external(
        w,
        ids,
        scheme::DE_PATIENT_ID,
        id,
        &patient_cx,
        "XDSDocumentEntry.patientId",
    );
    let unique_id = metadata::mint_unique_id(&profile.unique_id_root, now);
    metadata::external(
        w,
        ids,
        scheme::DE_UNIQUE_ID,
        id,
        &unique_id,
        "XDSDocumentEntry.uniqueId",
    );
    w.end();
    Ok(SignatureDocument {
        id: id.to_owned(),
        bytes,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
