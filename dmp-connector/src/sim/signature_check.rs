//! The simulator's check of the TD2.1 submission-set signature (IHE DSG + XAdES), when the
//! submission carries one (a `signs` association to the submission set), or when required.

use openssl::hash::MessageDigest;
use openssl::stack::Stack;
use openssl::x509::X509StoreContext;
use openssl::x509::store::X509Store;

use super::Refusal;
use super::metadata_check::CheckedDocument;
use crate::xds::dom::{self, Element};
use crate::xds::metadata::scheme;
use crate::xds::{ns, xmldsig};

fn refuse(context: impl Into<String>) -> Refusal {
    Refusal::registry(
        "XDSRegistryMetadataError",
        format!("submission-set signature: {}", context.into()),
    )
}

/// Checks the signature of the submission set `ss_id` in `request` against the `documents`
/// of the submission; `required` refuses a submission without one.
pub fn check(
    request: &Element,
    documents: &[CheckedDocument],
    trust: &X509Store,
    required: bool,
) -> Result<(), Refusal> {
    let Some(list) = request.find(ns::RIM, "RegistryObjectList") else {
        return Ok(());
    };
    let signs: Vec<&str> = list
        .children_named(ns::RIM, "Association")
        .filter(|a| a.attr("associationType") == Some(scheme::SIGNS))
        .filter_map(|a| a.attr("sourceObject"))
        .collect();
    let signature_id = match signs.as_slice() {
        [] if required => return Err(refuse("missing (no signs association)")),
        [] => return Ok(()),
        [one] => *one,
        _ => return Err(refuse("more than one signs association")),
    };
    let signature_document = documents
        .iter()
        .find(|d| d.record.entry_uuid == signature_id)
        .ok_or_else(|| {
            refuse(format!(
                "signs association from unknown entry {signature_id}"
            ))
        })?;
    let root = dom::parse(&signature_document.bytes).map_err(|e| refuse(e.to_string()))?;
    let signer = xmldsig::verify_detached(&root).map_err(|e| refuse(e.to_string()))?;
    let mut context = X509StoreContext::new().map_err(|e| refuse(e.to_string()))?;
    let chain = Stack::new().map_err(|e| refuse(e.to_string()))?;
    let untrusted = context
        .init(trust, &signer, &chain, |c| {
            Ok(if c.verify_cert()? {
                None
            } else {
                Some(c.error().to_string())
            })
        })
        .map_err(|e| refuse(e.to_string()))?;
    if let Some(reason) = untrusted {
        return Err(refuse(format!("signer not trusted: {reason}")));
    }
    // The Manifest must cover every other document of the submission with the right digest.
    let manifest = root
        .find(ns::DS, "Manifest")
        .ok_or_else(|| refuse("no Manifest"))?;
    for document in documents
        .iter()
        .filter(|d| d.record.entry_uuid != signature_id)
    {
        let uri = format!("urn:oid:{}", document.record.unique_id);
        let reference = manifest
            .children_named(ns::DS, "Reference")
            .find(|r| r.attr("URI") == Some(uri.as_str()))
            .ok_or_else(|| refuse(format!("Manifest does not reference {uri}")))?;
        let method = reference
            .child(ns::DS, "DigestMethod")
            .and_then(|m| m.attr("Algorithm"))
            .unwrap_or_default();
        let digest = match method {
            xmldsig::SHA256 => MessageDigest::sha256(),
            "http://www.w3.org/2000/09/xmldsig#sha1" => MessageDigest::sha1(),
            other => return Err(refuse(format!("unsupported Manifest digest {other:?}"))),
        };
        let actual =
            openssl::hash::hash(digest, &document.bytes).map_err(|e| refuse(e.to_string()))?;
        let declared = reference
            .child(ns::DS, "DigestValue")
            .map(Element::text)
            .unwrap_or_default();
        use base64::Engine as _;
        let declared = base64::engine::general_purpose::STANDARD
            .decode(declared)
            .map_err(|_| refuse("Manifest DigestValue is not base64"))?;
        if actual.as_ref() != declared.as_slice() {
            return Err(refuse(format!("Manifest digest of {uri} does not match")));
        }
    }
    Ok(())
}
