//! Enveloped XML-DSig with exclusive C14N and RSA-SHA256, as the VIHF assertion carries it.
//!
//! Signing works on XML we wrote ourselves in canonical form ([`super::xml`]), so the bytes we
//! digest are the bytes a verifier's C14N produces; verification ([`verify_enveloped`]) does
//! run exclusive C14N over the parsed tree, so it also accepts documents written by others.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::{Signer as OsslSigner, Verifier};
use openssl::x509::X509;

use super::dom::{self, Element};
use super::ns;
use super::xml::XmlWriter;

/// Exclusive C14N algorithm URI.
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// Enveloped-signature transform URI.
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
/// RSA-SHA256 signature method URI.
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
/// SHA-256 digest method URI.
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// Why signing or verification failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A key or certificate file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// OpenSSL refused a key, a certificate or an operation.
    #[error("{context}: {source}")]
    Crypto {
        /// What was being done.
        context: &'static str,
        /// OpenSSL's error stack.
        source: openssl::error::ErrorStack,
    },
    /// The `ds:Signature` is missing or lacks a required part.
    #[error("signature structure: {0}")]
    Structure(String),
    /// The referenced content does not match its digest.
    #[error("digest mismatch for reference {0}")]
    DigestMismatch(String),
    /// The signature value does not verify with the embedded certificate.
    #[error("signature value does not verify")]
    BadSignature,
}

pub(crate) fn crypto(
    context: &'static str,
) -> impl FnOnce(openssl::error::ErrorStack) -> SignatureError {
    move |source| SignatureError::Crypto { context, source }
}

/// A private key and its certificate (the structure's ORG SIGN "cachet" certificate).
#[derive(Clone)]
pub struct SigningIdentity {
    key: PKey<Private>,
    certificate: X509,
}

impl std::fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SigningIdentity")
            .field("subject", &self.subject_dn())
            .finish_non_exhaustive()
    }
}

impl SigningIdentity {
    /// Loads a PEM certificate (first certificate of the file) and a PEM private key.
    pub fn load(certificate: &Path, key: &Path) -> Result<Self, SignatureError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| SignatureError::Io {
                path: path.display().to_string(),
                source,
            })
        };
        let certificate =
            X509::from_pem(&read(certificate)?).map_err(crypto("parse certificate"))?;
        let key = PKey::private_key_from_pem(&read(key)?).map_err(crypto("parse key"))?;
        Ok(Self { key, certificate })
    }

    /// The certificate.
    pub fn certificate(&self) -> &X509 {
        &self.certificate
    }

    /// The subject DN in the `CN=…, OU=…, O=…, ST=…, C=…` order the VIHF `Issuer` uses.
    pub fn subject_dn(&self) -> String {
        dn_string(self.certificate.subject_name())
    }

    /// Signs `data` with RSA-SHA256 (PKCS#1 v1.5).
    pub(crate) fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let mut signer =
            OsslSigner::new(MessageDigest::sha256(), &self.key).map_err(crypto("signer"))?;
        signer.update(data).map_err(crypto("sign"))?;
        signer.sign_to_vec().map_err(crypto("sign"))
    }
}

/// A distinguished name in RFC 4514 order (most specific first), short attribute names.
pub fn dn_string(name: &openssl::x509::X509NameRef) -> String {
    let mut parts: Vec<String> = name
        .entries()
        .map(|entry| {
            let name = entry.object().nid().short_name().unwrap_or("?");
            let value = entry.data().to_string().unwrap_or_default();
            format!("{name}={value}")
        })
        .collect();
    parts.reverse();
    parts.join(", ")
}

fn signed_info(reference_id: &str, digest_b64: &str, declare_ns: bool) -> String {
    let mut w = XmlWriter::new();
    if declare_ns {
        w.start("ds:SignedInfo", &[("xmlns:ds", ns::DS)]);
    } else {
        w.start("ds:SignedInfo", &[]);
    }
    w.start("ds:CanonicalizationMethod", &[("Algorithm", EXC_C14N)])
        .end()
        .start("ds:SignatureMethod", &[("Algorithm", RSA_SHA256)])
        .end()
        .start("ds:Reference", &[("URI", &format!("#{reference_id}"))])
        .start("ds:Transforms", &[])
        .start("ds:Transform", &[("Algorithm", ENVELOPED)])
        .end()
        .start("ds:Transform", &[("Algorithm", EXC_C14N)])
        .end()
        .end()
        .start("ds:DigestMethod", &[("Algorithm", SHA256)])
        .end()
        .leaf("ds:DigestValue", &[], digest_b64)
        .end()
        .end();
    w.finish()
}

/// Produces the `ds:Signature` element for an enveloped signature over an element whose
/// canonical form (signature left out) is `canonical_without_signature` and whose `ID` is
/// `reference_id`.
///
/// The caller inserts the returned element where the schema wants it (after `saml2:Issuer`).
pub fn enveloped_signature(
    canonical_without_signature: &str,
    reference_id: &str,
    identity: &SigningIdentity,
) -> Result<String, SignatureError> {
    let digest = openssl::sha::sha256(canonical_without_signature.as_bytes());
    let digest_b64 = BASE64.encode(digest);
    // The signed bytes are SignedInfo canonicalised as an apex: it then carries xmlns:ds.
    let canonical_signed_info = signed_info(reference_id, &digest_b64, true);
    let value = identity.sign(canonical_signed_info.as_bytes())?;
    let certificate = identity
        .certificate
        .to_der()
        .map_err(crypto("encode certificate"))?;
    let mut w = XmlWriter::new();
    w.start("ds:Signature", &[("xmlns:ds", ns::DS)])
        .raw(&signed_info(reference_id, &digest_b64, false))
        .leaf("ds:SignatureValue", &[], &BASE64.encode(value))
        .start("ds:KeyInfo", &[])
        .start("ds:X509Data", &[])
        .leaf("ds:X509Certificate", &[], &BASE64.encode(certificate));
    Ok(w.finish())
}

fn decode_b64(text: &str, what: &str) -> Result<Vec<u8>, SignatureError> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    BASE64
        .decode(compact)
        .map_err(|e| SignatureError::Structure(format!("{what} is not base64: {e}")))
}

/// Verifies the enveloped `ds:Signature` child of `signed` (exclusive C14N, RSA-SHA256 or
/// RSA-SHA1, one Reference to the element's `ID`) and returns the embedded certificate.
///
/// Trust in that certificate (chain, revocation, identity) is the caller's decision.
pub fn verify_enveloped(signed: &Element) -> Result<X509, SignatureError> {
    let signature = signed
        .child(ns::DS, "Signature")
        .ok_or_else(|| SignatureError::Structure("no ds:Signature".into()))?;
    let (info, digest) = checked_signed_info(signature)?;
    let references: Vec<&Element> = info.children_named(ns::DS, "Reference").collect();
    let [reference] = references.as_slice() else {
        return Err(SignatureError::Structure(
            "exactly one Reference expected".into(),
        ));
    };
    let uri = reference.attr("URI").unwrap_or("");
    let id = signed.attr("ID").unwrap_or("");
    if uri.strip_prefix('#') != Some(id) || id.is_empty() {
        return Err(SignatureError::Structure(format!(
            "Reference {uri:?} does not point at the signed element's ID"
        )));
    }
    // Enveloped-signature transform: the signed element is digested without its Signature.
    check_reference(reference, signed, &|e| e.is(ns::DS, "Signature"))?;
    tracing::trace!("verifying VIHF signature");
    check_signature_value(signature, info, digest)
}

/// Verifies a `ds:Signature` document whose SignedInfo references elements of the same
/// document by `#Id` (the IHE DSG / XAdES form): every reference digest (exclusive C14N,
/// SHA-256 or SHA-1), then the RSA signature value. Returns the KeyInfo certificate.
///
/// References that are not same-document (`urn:oid:…` in a Manifest) are the caller's.
pub fn verify_detached(signature: &Element) -> Result<X509, SignatureError> {
    if !signature.is(ns::DS, "Signature") {
        return Err(SignatureError::Structure("root is not ds:Signature".into()));
    }
    let (info, digest) = checked_signed_info(signature)?;
    let mut count = 0;
    for reference in info.children_named(ns::DS, "Reference") {
        count += 1;
        let uri = reference.attr("URI").unwrap_or("");
        let id = uri.strip_prefix('#').ok_or_else(|| {
            SignatureError::Structure(format!("reference {uri:?} is not same-document"))
        })?;
        let target = by_id(signature, id)
            .ok_or_else(|| SignatureError::Structure(format!("no element with Id {id}")))?;
        check_reference(reference, target, &|_| false)?;
    }
    if count == 0 {
        return Err(SignatureError::Structure(
            "SignedInfo without Reference".into(),
        ));
    }
    check_signature_value(signature, info, digest)
}

fn algorithm(element: Option<&Element>) -> &str {
    element.and_then(|e| e.attr("Algorithm")).unwrap_or("")
}

/// The SignedInfo of `signature`, checked for exclusive C14N, and its signature digest.
fn checked_signed_info(signature: &Element) -> Result<(&Element, MessageDigest), SignatureError> {
    let info = signature
        .child(ns::DS, "SignedInfo")
        .ok_or_else(|| SignatureError::Structure("no ds:SignedInfo".into()))?;
    if algorithm(info.child(ns::DS, "CanonicalizationMethod")) != EXC_C14N {
        return Err(SignatureError::Structure(
            "canonicalisation is not exclusive C14N".into(),
        ));
    }
    let digest = match algorithm(info.child(ns::DS, "SignatureMethod")) {
        RSA_SHA256 => MessageDigest::sha256(),
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1" => MessageDigest::sha1(),
        other => {
            return Err(SignatureError::Structure(format!(
                "unsupported signature method {other:?}"
            )));
        }
    };
    Ok((info, digest))
}

/// Checks one Reference's DigestValue against the exclusive C14N of `target` (leaving out the
/// elements `skip` selects).
fn check_reference(
    reference: &Element,
    target: &Element,
    skip: &dyn Fn(&Element) -> bool,
) -> Result<(), SignatureError> {
    let uri = reference.attr("URI").unwrap_or("");
    let reference_digest = match algorithm(reference.child(ns::DS, "DigestMethod")) {
        SHA256 => MessageDigest::sha256(),
        "http://www.w3.org/2000/09/xmldsig#sha1" => MessageDigest::sha1(),
        other => {
            return Err(SignatureError::Structure(format!(
                "unsupported digest {other:?}"
            )));
        }
    };
    let expected = decode_b64(
        &reference
            .child(ns::DS, "DigestValue")
            .map(Element::text)
            .unwrap_or_default(),
        "DigestValue",
    )?;
    let canonical = dom::exc_c14n(target, skip);
    let actual =
        openssl::hash::hash(reference_digest, canonical.as_bytes()).map_err(crypto("digest"))?;
    if actual.as_ref() != expected.as_slice() {
        return Err(SignatureError::DigestMismatch(uri.to_owned()));
    }
    Ok(())
}

/// Verifies the SignatureValue over the canonical SignedInfo with the KeyInfo certificate,
/// and returns that certificate.
fn check_signature_value(
    signature: &Element,
    info: &Element,
    digest: MessageDigest,
) -> Result<X509, SignatureError> {
    let certificate_b64 = signature
        .find(ns::DS, "X509Certificate")
        .map(Element::text)
        .ok_or_else(|| SignatureError::Structure("no X509Certificate in KeyInfo".into()))?;
    let certificate = X509::from_der(&decode_b64(&certificate_b64, "X509Certificate")?)
        .map_err(crypto("parse KeyInfo certificate"))?;
    let value = decode_b64(
        &signature
            .child(ns::DS, "SignatureValue")
            .map(Element::text)
            .unwrap_or_default(),
        "SignatureValue",
    )?;
    let public_key = certificate.public_key().map_err(crypto("public key"))?;
    let mut verifier = Verifier::new(digest, &public_key).map_err(crypto("verifier"))?;
    verifier
        .update(dom::exc_c14n(info, &|_| false).as_bytes())
        .map_err(crypto("verify"))?;
    match verifier.verify(&value) {
        Ok(true) => Ok(certificate),
        _ => Err(SignatureError::BadSignature),
    }
}

fn by_id<'a>(element: &'a Element, id: &str) -> Option<&'a Element> {
    if element.attr("Id") == Some(id) || element.attr("ID") == Some(id) {
        return Some(element);
    }
    element.elements().find_map(|e| by_id(e, id))
}
