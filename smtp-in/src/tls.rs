//! TLS server configuration: rustls with the aws-lc-rs provider, mutual TLS against a client CA
//! bundle with CRLs.
//!
//! Policy (DOMAIN.md §1.2): TLS 1.2 and 1.3 only; in TLS 1.2 only ECDHE key exchange with AES-GCM
//! (the Ref #2 list minus the CBC suites, which rustls does not implement anyway). Client
//! certificates chain to the configured bundle and are checked against the given CRLs at every
//! level; a CA without a CRL, or an expired CRL, makes verification fail (fail closed).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::crypto::aws_lc_rs::{self, cipher_suite};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

/// Where the server's credentials and the client trust material live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM file: the server certificate, then its intermediates.
    pub certificate_chain: PathBuf,
    /// PEM file: the server's private key (PKCS#8, PKCS#1 or SEC1), unencrypted.
    pub private_key: PathBuf,
    /// PEM file of CA certificates that client certificates must chain to; `None` = no client
    /// authentication.
    pub client_ca_bundle: Option<PathBuf>,
    /// PEM files of CRLs, one or more per CA of the bundle.
    pub crl_files: Vec<PathBuf>,
    /// Refuse the handshake when the client sends no certificate. When false (and a bundle is
    /// set), a certificate is optional but verified if sent.
    pub require_client_certificate: bool,
}

/// Why the TLS configuration could not be built. Every variant names the file at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The file cannot be read (missing, permissions).
    #[error("TLS: cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid PEM.
    #[error("TLS: {path} is not valid PEM: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// Parser diagnostic.
        reason: String,
    },
    /// No `CERTIFICATE` block in a file that must hold certificates.
    #[error("TLS: no certificate in {path}")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate in the file cannot be used.
    #[error("TLS: bad certificate in {path}: {reason}")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No private key block in the key file.
    #[error("TLS: no private key in {path}")]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The private key cannot be loaded.
    #[error("TLS: bad private key in {path}: {reason}")]
    BadPrivateKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The key does not belong to the first certificate of the chain.
    #[error("TLS: private key {key} does not match certificate {certificate}")]
    KeyMismatch {
        /// The chain file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// A CRL file holds no CRL or a CRL that cannot be parsed.
    #[error("TLS: bad CRL in {path}: {reason}")]
    BadCrl {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Client certificates are required but no CA bundle is configured to verify them.
    #[error("TLS: client certificates are required but no client CA bundle is configured")]
    ClientCaBundleMissing,
    /// rustls refused the combination (should not happen with the fixed policy above).
    #[error("TLS: configuration rejected: {reason}")]
    Config {
        /// rustls' message.
        reason: String,
    },
}

/// Builds the server configuration from `settings`.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let provider = Arc::new(provider());
    let chain = load_certificates(&settings.certificate_chain)?;
    let key = load_private_key(&settings.private_key)?;

    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|error| TlsSetupError::Config {
            reason: error.to_string(),
        })?;
    let builder = match &settings.client_ca_bundle {
        Some(bundle) => {
            let verifier = client_verifier(settings, bundle, &provider)?;
            builder.with_client_cert_verifier(verifier)
        }
        None => {
            if settings.require_client_certificate {
                return Err(TlsSetupError::ClientCaBundleMissing);
            }
            if !settings.crl_files.is_empty() {
                tracing::warn!("CRL files configured without a client CA bundle: ignored");
            }
            builder.with_no_client_auth()
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|error| match error {
            rustls::Error::InconsistentKeys(_) => TlsSetupError::KeyMismatch {
                certificate: settings.certificate_chain.clone(),
                key: settings.private_key.clone(),
            },
            rustls::Error::InvalidCertificate(reason) => TlsSetupError::BadCertificate {
                path: settings.certificate_chain.clone(),
                reason: format!("{reason:?}"),
            },
            other => TlsSetupError::BadPrivateKey {
                path: settings.private_key.clone(),
                reason: other.to_string(),
            },
        })?;
    // Our suite order (AES-256 first, ECDSA before RSA) rather than the client's.
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// The aws-lc-rs provider restricted to our suites. Built explicitly rather than installed as the
/// process default, so that another crate enabling `ring` cannot change what we offer.
fn provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: vec![
            cipher_suite::TLS13_AES_256_GCM_SHA384,
            cipher_suite::TLS13_AES_128_GCM_SHA256,
            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ],
        ..aws_lc_rs::default_provider()
    }
}

fn client_verifier(
    settings: &TlsSettings,
    bundle: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    for certificate in load_certificates(bundle)? {
        roots
            .add(certificate)
            .map_err(|error| TlsSetupError::BadCertificate {
                path: bundle.to_owned(),
                reason: error.to_string(),
            })?;
    }
    let roots = Arc::new(roots);
    let mut crls = Vec::new();
    for path in &settings.crl_files {
        let file_crls = load_crls(path)?;
        // Validate file by file so that a bad CRL is reported with its file name; the verifier
        // built below would only say "invalid CRL".
        WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(provider))
            .with_crls(file_crls.iter().cloned())
            .build()
            .map_err(|error| TlsSetupError::BadCrl {
                path: path.clone(),
                reason: verifier_error(error),
            })?;
        crls.extend(file_crls);
    }
    let builder = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(provider))
        .with_crls(crls)
        // An expired CRL must not be trusted: a revoked peer would pass until the CRL is renewed.
        .enforce_revocation_expiration();
    let builder = if settings.require_client_certificate {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    builder.build().map_err(|error| TlsSetupError::Config {
        reason: verifier_error(error),
    })
}

fn verifier_error(error: VerifierBuilderError) -> String {
    match error {
        VerifierBuilderError::InvalidCrl(reason) => format!("{reason:?}"),
        other => other.to_string(),
    }
}

fn pem_error(path: &Path, error: pem::Error) -> TlsSetupError {
    match error {
        pem::Error::Io(source) => TlsSetupError::Read {
            path: path.to_owned(),
            source,
        },
        other => TlsSetupError::Pem {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    }
}

fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| pem_error(path, error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(path, error))?;
    if certificates.is_empty() {
        return Err(TlsSetupError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certificates)
}

fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    PrivateKeyDer::from_pem_file(path).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsSetupError::NoPrivateKey {
            path: path.to_owned(),
        },
        other => pem_error(path, other),
    })
}

fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsSetupError> {
    let crls = CertificateRevocationListDer::pem_file_iter(path)
        .map_err(|error| pem_error(path, error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(path, error))?;
    if crls.is_empty() {
        return Err(TlsSetupError::BadCrl {
            path: path.to_owned(),
            reason: "no X509 CRL block".to_owned(),
        });
    }
    Ok(crls)
}

#[cfg(test)]
mod tests;
