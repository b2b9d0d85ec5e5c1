//! IHE XDS.b ITI-41 (Provide and Register Document Set-b) as the DMP expects it.
//!
//! The request is built as text by this crate (no generic SOAP stack exists in Rust): [`metadata`]
//! writes the ebRIM `SubmitObjectsRequest`, [`vihf`] the signed SAML assertion, [`envelope`] the
//! SOAP 1.2 envelope with WS-Addressing, [`mtom`] the multipart/related XOP body, [`client`] sends
//! it over mutual TLS and [`response`] reads the `RegistryResponse`. [`dom`] is the small XML tree
//! (with exclusive C14N) that the parsing side — the response reader and `dmp-sim` — relies on.

pub mod client;
pub mod depositor;
pub mod dom;
pub mod envelope;
pub mod metadata;
pub mod mtom;
pub mod query;
pub mod response;
pub mod time;
pub mod vihf;
pub mod xades;
pub mod xml;
pub mod xmldsig;

/// WS-Addressing action of ITI-41.
pub const ACTION_PROVIDE_AND_REGISTER: &str = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b";
/// WS-Addressing action of the ITI-41 response.
pub const ACTION_PROVIDE_AND_REGISTER_RESPONSE: &str =
    "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse";

/// XML namespaces used on the wire.
pub mod ns {
    /// SOAP 1.2 envelope.
    pub const SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
    /// WS-Addressing 1.0.
    pub const WSA: &str = "http://www.w3.org/2005/08/addressing";
    /// WS-Security 1.0 secext.
    pub const WSSE: &str =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    /// SAML 2.0 assertion.
    pub const SAML2: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
    /// XML-DSig.
    pub const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
    /// HL7 v3 (the CE values inside VIHF attributes).
    pub const HL7: &str = "urn:hl7-org:v3";
    /// XML Schema instance.
    pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
    /// IHE XDS.b.
    pub const XDSB: &str = "urn:ihe:iti:xds-b:2007";
    /// ebXML RegRep LifeCycleManager.
    pub const LCM: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0";
    /// ebXML RegRep Registry Information Model.
    pub const RIM: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0";
    /// ebXML RegRep registry services (responses).
    pub const RS: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0";
    /// XOP include.
    pub const XOP: &str = "http://www.w3.org/2004/08/xop/include";
}

/// A random (version 4) UUID in its `urn:uuid:` form.
///
/// Drawn from OpenSSL's CSPRNG, which is already linked for the signatures; this avoids a
/// dependency for sixteen random bytes.
pub fn new_urn_uuid() -> String {
    let mut bytes = [0u8; 16];
    // OpenSSL's RAND_bytes only fails when the CSPRNG cannot be seeded; fall back to `rand`
    // rather than panic, uniqueness (not secrecy) is what matters for message ids.
    if openssl::rand::rand_bytes(&mut bytes).is_err() {
        bytes = rand::random();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
