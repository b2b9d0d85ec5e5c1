//! Read-back transactions of the simulator: ITI-18 FindDocuments by patientId and ITI-43
//! Retrieve Document Set (inline, base64), so tests and operators can see what was stored.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::Refusal;
use super::store::Store;
use crate::xds::dom::Element;
use crate::xds::metadata::scheme;
use crate::xds::query::{APPROVED, FIND_DOCUMENTS, QUERY_NS};
use crate::xds::response::STATUS_SUCCESS;
use crate::xds::xml::XmlWriter;
use crate::xds::{new_urn_uuid, ns};

/// The simulator's repositoryUniqueId.
pub const REPOSITORY_UNIQUE_ID: &str = "1.2.250.1.999.9.1";

fn slot(w: &mut XmlWriter, name: &str, value: &str) {
    w.start("rim:Slot", &[("name", name)])
        .start("rim:ValueList", &[])
        .leaf("rim:Value", &[], value)
        .end()
        .end();
}

fn store_error(e: super::store::StoreError) -> Refusal {
    Refusal::registry("XDSRegistryError", format!("store: {e}"))
}

/// Answers FindDocuments; the VIHF must concern the queried patient.
pub fn find_documents(
    body: &Element,
    store: &Store,
    vihf_patient: &str,
) -> Result<String, Refusal> {
    let query = body
        .find(ns::RIM, "AdhocQuery")
        .ok_or_else(|| Refusal::registry("XDSRegistryError", "no AdhocQuery"))?;
    if query.attr("id") != Some(FIND_DOCUMENTS) {
        return Err(Refusal::registry(
            "XDSUnknownStoredQuery",
            "only FindDocuments is implemented",
        ));
    }
    let patient = query
        .children_named(ns::RIM, "Slot")
        .find(|s| s.attr("name") == Some("$XDSDocumentEntryPatientId"))
        .and_then(|s| s.find(ns::RIM, "Value"))
        .map(|v| v.text().trim_matches('\'').to_owned())
        .ok_or_else(|| {
            Refusal::registry("XDSStoredQueryMissingParam", "$XDSDocumentEntryPatientId")
        })?;
    if patient != vihf_patient {
        return Err(Refusal::registry(
            "XDSPatientIdDoesNotMatch",
            "the VIHF resource-id is not the queried patient",
        ));
    }
    let mut w = XmlWriter::new();
    w.start(
        "query:AdhocQueryResponse",
        &[
            ("xmlns:query", QUERY_NS),
            ("xmlns:rim", ns::RIM),
            ("status", STATUS_SUCCESS),
        ],
    )
    .start("rim:RegistryObjectList", &[]);
    for document in store.find_by_patient(&patient).map_err(store_error)? {
        let id = document.entry_uuid.as_str();
        w.start(
            "rim:ExtrinsicObject",
            &[
                ("id", id),
                ("mimeType", &document.mime_type),
                ("objectType", scheme::DE_STABLE),
                ("status", APPROVED),
            ],
        );
        slot(&mut w, "hash", &document.hash_sha1);
        slot(&mut w, "size", &document.size.to_string());
        slot(&mut w, "repositoryUniqueId", REPOSITORY_UNIQUE_ID);
        for (scheme_uuid, value) in [
            (scheme::DE_PATIENT_ID, document.patient_id.as_str()),
            (scheme::DE_UNIQUE_ID, document.unique_id.as_str()),
        ] {
            w.start(
                "rim:ExternalIdentifier",
                &[
                    ("id", &new_urn_uuid()),
                    ("identificationScheme", scheme_uuid),
                    ("registryObject", id),
                    ("value", value),
                ],
            )
            .end();
        }
        w.end();
    }
    Ok(w.finish())
}

/// Answers RetrieveDocumentSet; every document must belong to the VIHF's patient.
pub fn retrieve(body: &Element, store: &Store, vihf_patient: &str) -> Result<String, Refusal> {
    let mut w = XmlWriter::new();
    w.start(
        "xdsb:RetrieveDocumentSetResponse",
        &[("xmlns:xdsb", ns::XDSB), ("xmlns:rs", ns::RS)],
    )
    .start("rs:RegistryResponse", &[("status", STATUS_SUCCESS)])
    .end();
    let mut count = 0;
    for request in document_requests(body) {
        count += 1;
        let unique_id = request
            .child(ns::XDSB, "DocumentUniqueId")
            .map(Element::text)
            .unwrap_or_default();
        let missing = || {
            Refusal::registry(
                "XDSDocumentUniqueIdError",
                format!("no document {unique_id} in this repository"),
            )
        };
        let record = store
            .get(&unique_id)
            .map_err(store_error)?
            .ok_or_else(missing)?;
        if record.patient_id != vihf_patient {
            // Do not reveal that the document exists for another patient.
            return Err(missing());
        }
        let bytes = store
            .retrieve(&unique_id)
            .map_err(store_error)?
            .ok_or_else(missing)?;
        w.start("xdsb:DocumentResponse", &[])
            .leaf("xdsb:RepositoryUniqueId", &[], REPOSITORY_UNIQUE_ID)
            .leaf("xdsb:DocumentUniqueId", &[], &unique_id)
            .leaf("xdsb:mimeType", &[], &record.mime_type)
            .leaf("xdsb:Document", &[], &BASE64.encode(bytes))
            .end();
    }
    if count == 0 {
        return Err(Refusal::registry(
            "XDSRepositoryError",
            "no DocumentRequest",
        ));
    }
    Ok(w.finish())
}

fn document_requests(body: &Element) -> Vec<&Element> {
    body.find(ns::XDSB, "RetrieveDocumentSetRequest")
        .map(|r| r.children_named(ns::XDSB, "DocumentRequest").collect())
        .unwrap_or_default()
}

/// A success envelope for `action` carrying `body`.
pub fn envelope(action: &str, relates_to: Option<&str>, body: &str) -> String {
    let mut w = XmlWriter::new();
    w.start(
        "soap:Envelope",
        &[("xmlns:soap", ns::SOAP), ("xmlns:wsa", ns::WSA)],
    )
    .start("soap:Header", &[])
    .leaf("wsa:Action", &[("soap:mustUnderstand", "true")], action)
    .leaf("wsa:MessageID", &[], &new_urn_uuid());
    if let Some(id) = relates_to {
        w.leaf("wsa:RelatesTo", &[], id);
    }
    w.end().start("soap:Body", &[]).raw(body);
    w.finish()
}
