//! The VIHF: a SAML 2.0 assertion carried in `wsse:Security`, signed by the structure (DOMAIN §4.3).
//!
//! The assertion is written directly in exclusive-C14N form (namespace declarations only where
//! used, attributes in canonical order, no empty-element tags, no whitespace between elements),
//! so its digest is taken over the very bytes we send.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::ns;
use super::time::UtcTime;
use super::xml::XmlWriter;
use super::xmldsig::{self, SignatureError, SigningIdentity};

/// A CE-typed value of a VIHF attribute (`Role`, `PurposeOfUse`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodedValue {
    /// `code`.
    pub code: String,
    /// `codeSystem` OID.
    pub code_system: String,
    /// `displayName`.
    pub display_name: String,
}

/// What the gateway states about itself in every VIHF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VihfProfile {
    /// `VIHF_Version`: the 2023 DMP samples use `3.0`, the ANS mapping table `4.0` (DOMAIN §4.3).
    pub version: String,
    /// `Identifiant_Structure`: the IdNat_Struct of the structure (the OU of its certificates).
    pub structure_id: String,
    /// `Secteur_Activite` code (SAxx, TRE_R02), sent as `SAxx^1.2.250.1.71.4.2.4`.
    pub activity_sector: String,
    /// `subject-id`: for automated processing, "software, model, service".
    pub subject_id: String,
    /// `Subject/NameID`: the person responsible for the processing (IdNat_PS).
    pub name_id: String,
    /// `subject:role` values (profession first, then specialty).
    pub roles: Vec<CodedValue>,
    /// `AuthnContextClassRef`.
    pub authn_context: String,
    /// `LPS_ID`.
    pub lps_id: String,
    /// `LPS_Nom`.
    pub lps_name: String,
    /// `LPS_Version`.
    pub lps_version: String,
    /// `LPS_ID_HOMOLOGATION_DMP` (CNDA homologation number).
    pub lps_homologation: String,
    /// How long the assertion is valid (`Conditions/@NotOnOrAfter`).
    pub validity: Duration,
}

impl Default for VihfProfile {
    /// Values of the ANS sample where they are not the site's own (role: doctor, as in the
    /// DRIM-M sample; the DMP's "AUTOMATE" role coding is not public, DOMAIN §4.3).
    fn default() -> Self {
        Self {
            version: "3.0".to_owned(),
            structure_id: String::new(),
            activity_sector: "SA07".to_owned(),
            subject_id: "Passerelle MSSante, dmp-connector, depot DMP".to_owned(),
            name_id: String::new(),
            roles: vec![CodedValue {
                code: "10".to_owned(),
                code_system: "1.2.250.1.71.1.2.7".to_owned(),
                display_name: "Medecin".to_owned(),
            }],
            authn_context: "urn:oasis:names:tc:SAML:2.0:ac:classes:TLSClient".to_owned(),
            lps_id: String::new(),
            lps_name: "dmp-connector".to_owned(),
            lps_version: env!("CARGO_PKG_VERSION").to_owned(),
            lps_homologation: String::new(),
            validity: Duration::from_secs(300),
        }
    }
}

fn coded(w: &mut XmlWriter, element: &str, value: &CodedValue) {
    // Canonical order: default namespace, then xmlns:xsi, then unqualified attributes by name,
    // then xsi:type (qualified attributes sort after unqualified ones).
    w.start(
        element,
        &[
            ("xmlns", ns::HL7),
            ("xmlns:xsi", ns::XSI),
            ("code", &value.code),
            ("codeSystem", &value.code_system),
            ("displayName", &value.display_name),
            ("xsi:type", "CE"),
        ],
    )
    .end();
}

fn attribute(w: &mut XmlWriter, name: &str, value: &str) {
    w.start("saml2:Attribute", &[("Name", name)])
        .leaf("saml2:AttributeValue", &[], value)
        .end();
}

/// Builds and signs the VIHF assertion for a deposit concerning `patient_cx` (the INS as CX).
pub fn build_assertion(
    profile: &VihfProfile,
    identity: &SigningIdentity,
    patient_cx: &str,
    now: SystemTime,
) -> Result<String, SignatureError> {
    // An XML ID must be an NCName: a UUID may start with a digit, hence the prefix.
    let id = format!("_{}", &super::new_urn_uuid()["urn:uuid:".len()..]);
    let issued = UtcTime::from_system(now).xs_date_time();
    let not_after = UtcTime::from_system(now + profile.validity).xs_date_time();

    let mut head = XmlWriter::new();
    head.start(
        "saml2:Assertion",
        &[
            ("xmlns:saml2", ns::SAML2),
            ("ID", &id),
            ("IssueInstant", &issued),
            ("Version", "2.0"),
        ],
    )
    .leaf(
        "saml2:Issuer",
        &[(
            "Format",
            "urn:oasis:names:tc:SAML:1.1:nameid-format:X509SubjectName",
        )],
        &identity.subject_dn(),
    );
    let head = head.finish();
    let head = head
        .strip_suffix("</saml2:Assertion>")
        .unwrap_or(&head)
        .to_owned();

    let mut body = XmlWriter::new();
    body.start("saml2:Subject", &[])
        .leaf("saml2:NameID", &[], &profile.name_id)
        .end();
    body.start(
        "saml2:Conditions",
        &[("NotBefore", &issued), ("NotOnOrAfter", &not_after)],
    )
    .end();
    body.start("saml2:AuthnStatement", &[("AuthnInstant", &issued)])
        .start("saml2:AuthnContext", &[])
        .leaf("saml2:AuthnContextClassRef", &[], &profile.authn_context)
        .end()
        .end();
    body.start("saml2:AttributeStatement", &[]);
    attribute(&mut body, "VIHF_Version", &profile.version);
    attribute(&mut body, "Authentification_Mode", "INDIRECTE");
    attribute(&mut body, "Identifiant_Structure", &profile.structure_id);
    attribute(
        &mut body,
        "Secteur_Activite",
        &format!("{}^1.2.250.1.71.4.2.4", profile.activity_sector),
    );
    attribute(
        &mut body,
        "urn:oasis:names:tc:xspa:1.0:subject:subject-id",
        &profile.subject_id,
    );
    body.start(
        "saml2:Attribute",
        &[("Name", "urn:oasis:names:tc:xacml:2.0:subject:role")],
    );
    for role in &profile.roles {
        body.start("saml2:AttributeValue", &[]);
        coded(&mut body, "Role", role);
        body.end();
    }
    body.end();
    body.start(
        "saml2:Attribute",
        &[("Name", "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse")],
    )
    .start("saml2:AttributeValue", &[]);
    coded(
        &mut body,
        "PurposeOfUse",
        &CodedValue {
            code: "normal".to_owned(),
            code_system: "1.2.250.1.213.1.1.4.248".to_owned(),
            display_name: "Acces normal".to_owned(),
        },
    );
    body.end().end();
    attribute(
        &mut body,
        "urn:oasis:names:tc:xacml:2.0:resource:resource-id",
        patient_cx,
    );
    attribute(&mut body, "Ressource_URN", "urn:dmp");
    attribute(&mut body, "LPS_ID", &profile.lps_id);
    attribute(&mut body, "LPS_Nom", &profile.lps_name);
    attribute(&mut body, "LPS_Version", &profile.lps_version);
    attribute(
        &mut body,
        "LPS_ID_HOMOLOGATION_DMP",
        &profile.lps_homologation,
    );
    body.end();
    let body = body.finish();

    let canonical = format!("{head}{body}</saml2:Assertion>");
    let signature = xmldsig::enveloped_signature(&canonical, &id, identity)?;
    Ok(format!("{head}{signature}{body}</saml2:Assertion>"))
}
