//! Reading back: ITI-18 Registry Stored Query (FindDocuments by patientId) and ITI-43
//! Retrieve Document Set, with the same VIHF and mutual TLS as ITI-41.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::client::{XdsClient, fault_failure, invalid_response, xds_errors};
use super::dom::{self, Element};
use super::metadata::scheme;
use super::response::{self, ResponseStatus};
use super::xml::XmlWriter;
use super::{envelope, new_urn_uuid, ns, vihf};
use crate::retry::{DepositFailure, RegistryStatus};

/// WS-Addressing action of ITI-18.
pub const ACTION_STORED_QUERY: &str = "urn:ihe:iti:2007:RegistryStoredQuery";
/// WS-Addressing action of ITI-43.
pub const ACTION_RETRIEVE: &str = "urn:ihe:iti:2007:RetrieveDocumentSet";
/// The FindDocuments stored query id.
pub const FIND_DOCUMENTS: &str = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d";
/// Query namespace.
pub const QUERY_NS: &str = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0";
/// Approved availability status.
pub const APPROVED: &str = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved";

/// A document entry found by ITI-18.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundDocument {
    /// The entry id (entryUUID).
    pub entry_uuid: String,
    /// The document uniqueId.
    pub unique_id: String,
    /// `hash` slot.
    pub hash_sha1: String,
    /// `size` slot.
    pub size: u64,
    /// `mimeType`.
    pub mime_type: String,
    /// `repositoryUniqueId` slot.
    pub repository_unique_id: String,
}

fn slot_value(object: &Element, name: &str) -> String {
    object
        .children_named(ns::RIM, "Slot")
        .find(|s| s.attr("name") == Some(name))
        .and_then(|s| s.find(ns::RIM, "Value"))
        .map(Element::text)
        .unwrap_or_default()
}

/// Reads the ExtrinsicObjects of a query response.
pub fn found_documents(list: &Element) -> Vec<FoundDocument> {
    list.children_named(ns::RIM, "ExtrinsicObject")
        .map(|object| FoundDocument {
            entry_uuid: object.attr("id").unwrap_or_default().to_owned(),
            unique_id: object
                .children_named(ns::RIM, "ExternalIdentifier")
                .find(|e| e.attr("identificationScheme") == Some(scheme::DE_UNIQUE_ID))
                .and_then(|e| e.attr("value"))
                .unwrap_or_default()
                .to_owned(),
            hash_sha1: slot_value(object, "hash"),
            size: slot_value(object, "size").parse().unwrap_or(0),
            mime_type: object.attr("mimeType").unwrap_or_default().to_owned(),
            repository_unique_id: slot_value(object, "repositoryUniqueId"),
        })
        .collect()
}

impl XdsClient {
    async fn call(
        &self,
        action: &str,
        patient_cx: &str,
        body: &str,
    ) -> Result<Element, DepositFailure> {
        let invalid = |e: &dyn std::fmt::Display| DepositFailure::InvalidRequest {
            detail: e.to_string(),
        };
        let assertion = vihf::build_assertion(
            &self.config().vihf,
            self.signing_identity(),
            patient_cx,
            SystemTime::now(),
        )
        .map_err(|e| invalid(&e))?;
        let xml = envelope::build_with_body(
            &new_urn_uuid(),
            &self.config().endpoint,
            action,
            Some(&assertion),
            body,
        );
        let (status, envelope) = self
            .post(
                format!("application/soap+xml; charset=UTF-8; action=\"{action}\""),
                xml.into_bytes(),
            )
            .await?;
        if let Ok(response::SoapResponse::Fault(fault)) = response::parse(&envelope) {
            return Err(fault_failure(status, fault));
        }
        if status >= 400 {
            return Err(DepositFailure::Http { status });
        }
        let root = dom::parse(&envelope).map_err(|e| invalid_response(e.to_string()))?;
        root.child(ns::SOAP, "Body")
            .and_then(|b| b.elements().next())
            .cloned()
            .ok_or_else(|| invalid_response("empty soap:Body".to_owned()))
    }

    /// ITI-18 FindDocuments (approved entries) for the patient `patient_cx`.
    pub async fn find_documents(
        &self,
        patient_cx: &str,
    ) -> Result<Vec<FoundDocument>, DepositFailure> {
        let mut w = XmlWriter::new();
        w.start(
            "query:AdhocQueryRequest",
            &[("xmlns:query", QUERY_NS), ("xmlns:rim", ns::RIM)],
        )
        .start(
            "query:ResponseOption",
            &[
                ("returnComposedObjects", "true"),
                ("returnType", "LeafClass"),
            ],
        )
        .end()
        .start("rim:AdhocQuery", &[("id", FIND_DOCUMENTS)]);
        for (name, value) in [
            ("$XDSDocumentEntryPatientId", format!("'{patient_cx}'")),
            ("$XDSDocumentEntryStatus", format!("('{APPROVED}')")),
        ] {
            w.start("rim:Slot", &[("name", name)])
                .start("rim:ValueList", &[])
                .leaf("rim:Value", &[], &value)
                .end()
                .end();
        }
        let response = self
            .call(ACTION_STORED_QUERY, patient_cx, &w.finish())
            .await?;
        let registry = response::parse_registry_response(&response);
        if registry.status != ResponseStatus::Success {
            return Err(DepositFailure::Registry {
                status: RegistryStatus::Failure,
                errors: xds_errors(&registry),
            });
        }
        Ok(response
            .child(ns::RIM, "RegistryObjectList")
            .map(found_documents)
            .unwrap_or_default())
    }

    /// ITI-43 retrieval of one document of patient `patient_cx` (the VIHF names the patient).
    pub async fn retrieve_document(
        &self,
        patient_cx: &str,
        repository_unique_id: &str,
        unique_id: &str,
    ) -> Result<Vec<u8>, DepositFailure> {
        let mut w = XmlWriter::new();
        w.start(
            "xdsb:RetrieveDocumentSetRequest",
            &[("xmlns:xdsb", ns::XDSB)],
        )
        .start("xdsb:DocumentRequest", &[])
        .leaf("xdsb:RepositoryUniqueId", &[], repository_unique_id)
        .leaf("xdsb:DocumentUniqueId", &[], unique_id);
        let response = self.call(ACTION_RETRIEVE, patient_cx, &w.finish()).await?;
        // A refusal comes back as a bare RegistryResponse, a success wrapped in the response.
        let registry = if response.is(ns::RS, "RegistryResponse") {
            response::parse_registry_response(&response)
        } else {
            response
                .child(ns::RS, "RegistryResponse")
                .map(response::parse_registry_response)
                .ok_or_else(|| invalid_response("no RegistryResponse".to_owned()))?
        };
        if registry.status != ResponseStatus::Success {
            return Err(DepositFailure::Registry {
                status: RegistryStatus::Failure,
                errors: xds_errors(&registry),
            });
        }
        let document = response
            .find(ns::XDSB, "Document")
            .ok_or_else(|| invalid_response("no xdsb:Document".to_owned()))?;
        let text: String = document.text().split_whitespace().collect();
        BASE64
            .decode(text)
            .map_err(|e| invalid_response(format!("document is not base64: {e}")))
    }
}
