//! The rustls client configuration for mutual-TLS SMTP sessions.

use std::path::Path;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::SmtpClientError;

/// Which TLS versions the client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsVersions {
    /// TLS 1.2 and 1.3.
    #[default]
    Any,
    /// TLS 1.2 only.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// Where the client finds its trust anchors and its own certificate.
#[derive(Debug, Clone)]
pub struct TlsFiles<'a> {
    /// PEM file of CA certificates trusted for the server certificate.
    pub ca: &'a Path,
    /// PEM file: client certificate then its chain.
    pub certificate: &'a Path,
    /// PEM file: the client's PKCS#8 (or PKCS#1/SEC1) private key.
    pub key: &'a Path,
}

/// Builds a client configuration that verifies the server against `files.ca` and presents the client
/// certificate. `resume` keeps rustls' in-memory session cache; without it every connection pays a full
/// handshake, the worst case a server must be sized for.
pub fn client_config(
    files: &TlsFiles<'_>,
    versions: TlsVersions,
    resume: bool,
) -> Result<Arc<ClientConfig>, SmtpClientError> {
    let mut roots = RootCertStore::empty();
    for certificate in read_certificates(files.ca)? {
        roots
            .add(certificate)
            .map_err(|error| credentials(files.ca, error))?;
    }
    let chain = read_certificates(files.certificate)?;
    let key =
        PrivateKeyDer::from_pem_file(files.key).map_err(|error| credentials(files.key, error))?;

    // Name the provider explicitly: if some crate enables rustls' ring feature too, the
    // process-default lookup would panic.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider);
    let builder = match versions {
        TlsVersions::Any => builder.with_protocol_versions(rustls::ALL_VERSIONS)?,
        TlsVersions::Tls12 => builder.with_protocol_versions(&[&rustls::version::TLS12])?,
        TlsVersions::Tls13 => builder.with_protocol_versions(&[&rustls::version::TLS13])?,
    };
    let mut config = builder
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    if !resume {
        config.resumption = Resumption::disabled();
    }
    Ok(Arc::new(config))
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, SmtpClientError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| credentials(path, error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| credentials(path, error))?;
    if certificates.is_empty() {
        return Err(credentials(path, "no certificate in file"));
    }
    Ok(certificates)
}

fn credentials(path: &Path, reason: impl ToString) -> SmtpClientError {
    SmtpClientError::Credentials {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}
