//! The SOAP 1.2 envelope of ITI-41 with its WS-Addressing and WS-Security headers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::xml::XmlWriter;
use super::{ACTION_PROVIDE_AND_REGISTER, ns};

/// How the document bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentPayload<'a> {
    /// As an MTOM part referenced by `xop:Include href="cid:…"` (the content id, no brackets).
    Xop(&'a str),
    /// Base64 inside `xdsb:Document` (the non-MTOM form).
    Inline(&'a [u8]),
}

/// Everything the envelope carries.
#[derive(Debug, Clone, Copy)]
pub struct EnvelopeParts<'a> {
    /// `wsa:MessageID` (`urn:uuid:…`).
    pub message_id: &'a str,
    /// `wsa:To`: the repository endpoint.
    pub to: &'a str,
    /// `wsa:Action`; [`ACTION_PROVIDE_AND_REGISTER`] for ITI-41.
    pub action: &'a str,
    /// The signed VIHF `saml2:Assertion`, if any (the DMP requires one).
    pub assertion: Option<&'a str>,
    /// The `rim:RegistryObjectList` from [`super::metadata`].
    pub registry_object_list: &'a str,
    /// `xdsb:Document/@id`: the ExtrinsicObject's id.
    pub document_id: &'a str,
    /// The document bytes or their MTOM reference.
    pub document: DocumentPayload<'a>,
    /// The submission-set signature document, when sent: its id and payload.
    pub signature: Option<(&'a str, DocumentPayload<'a>)>,
}

impl<'a> EnvelopeParts<'a> {
    /// Parts for an ITI-41 request with the standard action.
    pub fn provide_and_register(
        message_id: &'a str,
        to: &'a str,
        assertion: Option<&'a str>,
        registry_object_list: &'a str,
        document_id: &'a str,
        document: DocumentPayload<'a>,
    ) -> Self {
        Self {
            message_id,
            to,
            action: ACTION_PROVIDE_AND_REGISTER,
            assertion,
            registry_object_list,
            document_id,
            document,
            signature: None,
        }
    }
}

fn head(w: &mut XmlWriter, message_id: &str, to: &str, action: &str, assertion: Option<&str>) {
    w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    w.start(
        "soap:Envelope",
        &[("xmlns:soap", ns::SOAP), ("xmlns:wsa", ns::WSA)],
    )
    .start("soap:Header", &[])
    .leaf("wsa:Action", &[("soap:mustUnderstand", "true")], action)
    .leaf("wsa:MessageID", &[], message_id)
    .leaf("wsa:To", &[], to);
    if let Some(assertion) = assertion {
        w.start(
            "wsse:Security",
            &[("xmlns:wsse", ns::WSSE), ("soap:mustUnderstand", "true")],
        )
        .raw(assertion)
        .end();
    }
    w.end();
}

/// Serialises an envelope with the same headers around any body content (`body` is the XML
/// of the `soap:Body` child, namespaces declared in it): ITI-18 and ITI-43 requests.
pub fn build_with_body(
    message_id: &str,
    to: &str,
    action: &str,
    assertion: Option<&str>,
    body: &str,
) -> String {
    let mut w = XmlWriter::new();
    head(&mut w, message_id, to, action, assertion);
    w.start("soap:Body", &[]).raw(body);
    w.finish()
}

/// Serialises the envelope.
pub fn build(parts: &EnvelopeParts<'_>) -> String {
    let mut w = XmlWriter::new();
    head(
        &mut w,
        parts.message_id,
        parts.to,
        parts.action,
        parts.assertion,
    );
    w.start("soap:Body", &[])
        .start(
            "xdsb:ProvideAndRegisterDocumentSetRequest",
            &[
                ("xmlns:xdsb", ns::XDSB),
                ("xmlns:lcm", ns::LCM),
                ("xmlns:rim", ns::RIM),
            ],
        )
        .start("lcm:SubmitObjectsRequest", &[])
        .raw(parts.registry_object_list)
        .end();
    document(&mut w, parts.document_id, parts.document);
    if let Some((id, payload)) = parts.signature {
        document(&mut w, id, payload);
    }
    w.finish()
}

fn document(w: &mut XmlWriter, id: &str, payload: DocumentPayload<'_>) {
    w.start("xdsb:Document", &[("id", id)]);
    match payload {
        DocumentPayload::Xop(content_id) => {
            w.start(
                "xop:Include",
                &[
                    ("xmlns:xop", ns::XOP),
                    ("href", &format!("cid:{content_id}")),
                ],
            )
            .end();
        }
        DocumentPayload::Inline(bytes) => {
            w.text(&BASE64.encode(bytes));
        }
    }
    w.end();
}
