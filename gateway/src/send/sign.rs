//! S/MIME for `gateway send` (RFC 8551): a detached CMS signature (multipart/signed, SHA-256,
//! signer certificate and chain included), and optional encryption of the signed entity
//! ("signed then encrypted") to the gateway's ORG CONF certificate.
//!
//! The shapes are the ones the gateway's [`crate::smime::SmimeVerifier`] reads: the signed bytes
//! are the first part exactly as written (CRLF line ends, headers included), the signature part
//! is base64 DER, and the encrypted entity is `application/pkcs7-mime; smime-type=enveloped-data`.

use std::path::Path;

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::X509;

use super::SendError;
use super::compose::{base64_lines, boundary};

/// A signing identity: certificate, the chain sent with it, and the private key.
pub struct Signer {
    certificate: X509,
    chain: Vec<X509>,
    key: PKey<Private>,
}

/// Key material stays out of debug output.
impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("chain_length", &(self.chain.len() + 1))
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads a PEM certificate file (signer first, then its intermediates) and a PEM private
    /// key (unencrypted), and checks that they belong together.
    pub fn load(certificate: &Path, key: &Path) -> Result<Signer, SendError> {
        let mut certificates = load_certificates(certificate)?;
        let signer = certificates.remove(0);
        let pem = std::fs::read(key).map_err(|source| SendError::Read {
            path: key.to_path_buf(),
            source,
        })?;
        let key_pair =
            PKey::private_key_from_pem(&pem).map_err(|error| SendError::InvalidFile {
                path: key.to_path_buf(),
                reason: format!("not an unencrypted PEM private key ({error})"),
            })?;
        let matches = signer
            .public_key()
            .map(|public| public.public_eq(&key_pair))
            .unwrap_or(false);
        if !matches {
            return Err(SendError::InvalidFile {
                path: key.to_path_buf(),
                reason: format!(
                    "private key does not match the certificate {}",
                    certificate.display()
                ),
            });
        }
        Ok(Signer {
            certificate: signer,
            chain: certificates,
            key: key_pair,
        })
    }
}

/// Reads every certificate of a PEM file; at least one is required.
pub fn load_certificates(path: &Path) -> Result<Vec<X509>, SendError> {
    let pem = std::fs::read(path).map_err(|source| SendError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let certificates = X509::stack_from_pem(&pem).map_err(|error| SendError::InvalidFile {
        path: path.to_path_buf(),
        reason: format!("not a PEM certificate file ({error})"),
    })?;
    if certificates.is_empty() {
        return Err(SendError::InvalidFile {
            path: path.to_path_buf(),
            reason: "no certificate in the file".to_owned(),
        });
    }
    Ok(certificates)
}

/// Signs a MIME entity (headers and body, CRLF line ends) and returns the multipart/signed
/// entity that carries it unchanged.
pub fn sign(entity: &[u8], signer: &Signer) -> Result<Vec<u8>, SendError> {
    let mut chain = Stack::new().map_err(SendError::build("preparing the signature"))?;
    for certificate in &signer.chain {
        chain
            .push(certificate.clone())
            .map_err(SendError::build("preparing the signature"))?;
    }
    // BINARY: the bytes are hashed as written; they already are canonical MIME (CRLF, 7-bit).
    let flags = CMSOptions::DETACHED | CMSOptions::BINARY;
    let cms = CmsContentInfo::sign(
        Some(&signer.certificate),
        Some(&signer.key),
        Some(&chain),
        Some(entity),
        flags,
    )
    .map_err(SendError::build("signing"))?;
    let der = cms
        .to_der()
        .map_err(SendError::build("encoding the signature"))?;
    let boundary = boundary("signed");
    let mut out = Vec::with_capacity(entity.len() + der.len() * 2 + 512);
    out.extend_from_slice(
        format!(
            "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n\tmicalg=sha-256; boundary=\"{boundary}\"\r\n\r\nThis is an S/MIME signed message.\r\n--{boundary}\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(entity);
    // The CRLF before the delimiter belongs to the delimiter (RFC 2046 §5.1.1), not to the
    // signed part.
    out.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(base64_lines(&der).as_bytes());
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(out)
}

/// Encrypts a MIME entity (usually the signed one) to the recipients' certificates: CMS
/// EnvelopedData, AES-256-CBC, RSA key transport. AES-CBC rather than AES-GCM because every
/// S/MIME client reads it; the gateway decrypts both.
pub fn encrypt(entity: &[u8], recipients: &[X509]) -> Result<Vec<u8>, SendError> {
    if recipients.is_empty() {
        return Err(SendError::Usage(
            "encryption needs at least one recipient certificate".to_owned(),
        ));
    }
    let mut stack = Stack::new().map_err(SendError::build("preparing the encryption"))?;
    for certificate in recipients {
        stack
            .push(certificate.clone())
            .map_err(SendError::build("preparing the encryption"))?;
    }
    let cms = CmsContentInfo::encrypt(&stack, entity, Cipher::aes_256_cbc(), CMSOptions::BINARY)
        .map_err(SendError::build("encrypting"))?;
    let der = cms
        .to_der()
        .map_err(SendError::build("encoding the encrypted message"))?;
    let mut out = b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data;\r\n\tname=\"smime.p7m\"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"smime.p7m\"\r\n\r\n".to_vec();
    out.extend_from_slice(base64_lines(&der).as_bytes());
    Ok(out)
}
