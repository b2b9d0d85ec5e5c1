//! `gateway send`: the client hospital software uses to hand a document message to an MSSanté
//! gateway, built with the gateway's own parsers so that what it sends is what the gateway accepts.
//!
//! The steps, one module each:
//! - [`xdm`]: an IHE XDM package (ITI-32) from CDA files, metadata derived from the CDA headers;
//! - [`compose`]: the RFC 5322 message (MSSanté subject and `X-MSS-*` headers, multipart/mixed);
//! - [`sign`]: S/MIME detached signature (CMS SignedData, SHA-256) and optional encryption;
//! - [`transport`]: SMTP over mutual TLS (STARTTLS or implicit), exact bytes, queue id from the reply.
//!
//! [`cli`] ties them to the command line.

pub mod cli;
pub mod compose;
mod error;
mod revocation;
pub mod sign;
pub mod transport;
pub mod xdm;

pub use error::SendError;

/// A file given on the command line: its base name and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedFile {
    /// The file name as it travels (no directory).
    pub name: String,
    /// The content.
    pub bytes: Vec<u8>,
}

impl NamedFile {
    /// Reads a file; its name is the path's last component.
    pub fn read(path: &std::path::Path) -> Result<NamedFile, SendError> {
        let bytes = std::fs::read(path).map_err(|source| SendError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "document".to_owned());
        Ok(NamedFile { name, bytes })
    }
}
