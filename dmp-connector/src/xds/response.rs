//! ITI-41 responses: `rs:RegistryResponse` (Success, PartialSuccess, Failure with a
//! `RegistryErrorList`) or a SOAP 1.2 Fault. Parsed by the client, written by `dmp-sim`.

use super::dom::{self, DomError, Element};
use super::xml::XmlWriter;
use super::{ACTION_PROVIDE_AND_REGISTER_RESPONSE, ns};

/// `status` of a success.
pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success";
/// `status` of a failure.
pub const STATUS_FAILURE: &str = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure";
/// `status` of a partial success (IHE extension).
pub const STATUS_PARTIAL: &str = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess";
/// Error severity.
pub const SEVERITY_ERROR: &str = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error";
/// Warning severity.
pub const SEVERITY_WARNING: &str = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning";

/// The overall status of a registry response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseStatus {
    /// Everything was registered.
    Success,
    /// Some of it was (IHE `PartialSuccess`).
    PartialSuccess,
    /// Nothing was.
    Failure,
    /// A status URI we do not know, kept verbatim.
    Other(String),
}

impl ResponseStatus {
    fn from_uri(uri: &str) -> Self {
        match uri {
            STATUS_SUCCESS => Self::Success,
            STATUS_FAILURE => Self::Failure,
            STATUS_PARTIAL => Self::PartialSuccess,
            other => Self::Other(other.to_owned()),
        }
    }

    fn uri(&self) -> &str {
        match self {
            Self::Success => STATUS_SUCCESS,
            Self::Failure => STATUS_FAILURE,
            Self::PartialSuccess => STATUS_PARTIAL,
            Self::Other(uri) => uri,
        }
    }
}

/// One `rs:RegistryError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryError {
    /// `errorCode`, e.g. `XDSNonIdenticalHash`.
    pub code: String,
    /// `codeContext`: the human-readable explanation.
    pub context: String,
    /// `location`, when given.
    pub location: Option<String>,
    /// Whether the severity is Warning (otherwise Error).
    pub warning: bool,
}

impl RegistryError {
    /// An error-severity entry.
    pub fn error(code: impl Into<String>, context: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            context: context.into(),
            location: None,
            warning: false,
        }
    }
}

/// A parsed `rs:RegistryResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryResponse {
    /// Overall status.
    pub status: ResponseStatus,
    /// The errors and warnings listed.
    pub errors: Vec<RegistryError>,
}

/// A SOAP 1.2 Fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapFault {
    /// `Code/Value` (e.g. `soap:Sender`), as written.
    pub code: String,
    /// `Subcode/Value`s, outermost first (e.g. `wsse:InvalidSecurity`).
    pub subcodes: Vec<String>,
    /// `Reason/Text`.
    pub reason: String,
}

impl SoapFault {
    /// Whether the fault blames the receiver (a server-side, possibly transient problem).
    pub fn is_receiver(&self) -> bool {
        self.code.ends_with("Receiver")
    }
}

/// What came back in a SOAP body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SoapResponse {
    /// A registry response.
    Registry(RegistryResponse),
    /// A SOAP fault.
    Fault(SoapFault),
}

/// Why a response could not be understood.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// Not well-formed XML.
    #[error("response is not XML: {0}")]
    Xml(#[from] DomError),
    /// Well-formed but neither a RegistryResponse nor a Fault.
    #[error("unexpected response structure: {0}")]
    Structure(&'static str),
}

/// Parses a SOAP 1.2 response envelope.
pub fn parse(xml: &[u8]) -> Result<SoapResponse, ResponseError> {
    let root = dom::parse(xml)?;
    if !root.is(ns::SOAP, "Envelope") {
        return Err(ResponseError::Structure("root is not soap:Envelope"));
    }
    let body = root
        .child(ns::SOAP, "Body")
        .ok_or(ResponseError::Structure("no soap:Body"))?;
    if let Some(fault) = body.child(ns::SOAP, "Fault") {
        return Ok(SoapResponse::Fault(parse_fault(fault)));
    }
    let response = body
        .find(ns::RS, "RegistryResponse")
        .ok_or(ResponseError::Structure("no rs:RegistryResponse"))?;
    Ok(SoapResponse::Registry(parse_registry_response(response)))
}

fn parse_fault(fault: &Element) -> SoapFault {
    let code = fault.child(ns::SOAP, "Code");
    let mut subcodes = Vec::new();
    let mut current = code.and_then(|c| c.child(ns::SOAP, "Subcode"));
    while let Some(subcode) = current {
        if let Some(value) = subcode.child(ns::SOAP, "Value") {
            subcodes.push(value.text());
        }
        current = subcode.child(ns::SOAP, "Subcode");
    }
    SoapFault {
        code: code
            .and_then(|c| c.child(ns::SOAP, "Value"))
            .map(Element::text)
            .unwrap_or_default(),
        subcodes,
        reason: fault
            .child(ns::SOAP, "Reason")
            .and_then(|r| r.child(ns::SOAP, "Text"))
            .map(Element::text)
            .unwrap_or_default(),
    }
}

/// Reads an `rs:RegistryResponse` element.
pub fn parse_registry_response(response: &Element) -> RegistryResponse {
    let errors = response
        .child(ns::RS, "RegistryErrorList")
        .map(|list| {
            list.children_named(ns::RS, "RegistryError")
                .map(|e| RegistryError {
                    code: e.attr("errorCode").unwrap_or_default().to_owned(),
                    context: e
                        .attr("codeContext")
                        .map(str::to_owned)
                        .unwrap_or_else(|| e.text()),
                    location: e.attr("location").map(str::to_owned),
                    warning: e.attr("severity") == Some(SEVERITY_WARNING),
                })
                .collect()
        })
        .unwrap_or_default();
    RegistryResponse {
        status: ResponseStatus::from_uri(response.attr("status").unwrap_or_default()),
        errors,
    }
}

fn header(w: &mut XmlWriter, relates_to: Option<&str>) {
    w.start(
        "soap:Envelope",
        &[("xmlns:soap", ns::SOAP), ("xmlns:wsa", ns::WSA)],
    )
    .start("soap:Header", &[])
    .leaf(
        "wsa:Action",
        &[("soap:mustUnderstand", "true")],
        ACTION_PROVIDE_AND_REGISTER_RESPONSE,
    )
    .leaf("wsa:MessageID", &[], &super::new_urn_uuid());
    if let Some(id) = relates_to {
        w.leaf("wsa:RelatesTo", &[], id);
    }
    w.end();
}

/// Writes a response envelope carrying `response`.
pub fn build_registry_response(response: &RegistryResponse, relates_to: Option<&str>) -> String {
    let mut w = XmlWriter::new();
    header(&mut w, relates_to);
    w.start("soap:Body", &[]).start(
        "rs:RegistryResponse",
        &[("xmlns:rs", ns::RS), ("status", response.status.uri())],
    );
    if !response.errors.is_empty() {
        w.start("rs:RegistryErrorList", &[]);
        for error in &response.errors {
            let severity = if error.warning {
                SEVERITY_WARNING
            } else {
                SEVERITY_ERROR
            };
            let mut attributes = vec![
                ("codeContext", error.context.as_str()),
                ("errorCode", error.code.as_str()),
                ("severity", severity),
            ];
            if let Some(location) = &error.location {
                attributes.push(("location", location));
            }
            w.start("rs:RegistryError", &attributes).end();
        }
        w.end();
    }
    w.finish()
}

/// Writes a SOAP 1.2 fault envelope; `subcode` is a QName whose prefix is declared here
/// (`wsse:` or `wsa:`).
pub fn build_fault(
    receiver: bool,
    subcode: &str,
    reason: &str,
    relates_to: Option<&str>,
) -> String {
    let mut w = XmlWriter::new();
    header(&mut w, relates_to);
    let code = if receiver {
        "soap:Receiver"
    } else {
        "soap:Sender"
    };
    w.start("soap:Body", &[])
        .start("soap:Fault", &[("xmlns:wsse", ns::WSSE)])
        .start("soap:Code", &[])
        .leaf("soap:Value", &[], code)
        .start("soap:Subcode", &[])
        .leaf("soap:Value", &[], subcode)
        .end()
        .end()
        .start("soap:Reason", &[])
        .leaf("soap:Text", &[("xml:lang", "en")], reason);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_responses_and_faults() {
        let response = RegistryResponse {
            status: ResponseStatus::Failure,
            errors: vec![RegistryError::error(
                "XDSNonIdenticalHash",
                "different bytes",
            )],
        };
        let xml = build_registry_response(&response, Some("urn:uuid:x"));
        assert_eq!(
            parse(xml.as_bytes()).expect("parse"),
            SoapResponse::Registry(response)
        );
        let fault = build_fault(false, "wsse:InvalidSecurity", "no VIHF", None);
        let SoapResponse::Fault(fault) = parse(fault.as_bytes()).expect("parse") else {
            panic!("not a fault");
        };
        assert_eq!(fault.subcodes, vec!["wsse:InvalidSecurity".to_owned()]);
        assert!(!fault.is_receiver());
    }
}
