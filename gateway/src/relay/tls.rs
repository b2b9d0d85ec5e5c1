//! Mutual TLS toward next hops.
//!
//! lettre 0.11 builds its own rustls `ClientConfig` and accepts no custom verifier, so the check
//! is done twice, and the second one decides:
//! 1. during the handshake, lettre's webpki check against our anchors and intermediates (so an
//!    unknown issuer or a wrong name fails the handshake itself), with our client certificate,
//!    TLS 1.2 at least;
//! 2. right after the handshake, before any envelope command, the chain the next hop presented
//!    is verified again by rustls' webpki verifier with the CRLs (every CA of the chain must have
//!    one: unknown revocation status is a failure), for the route's server name and for server
//!    authentication (EKU).
//!
//! The handshake proves the next hop holds the key of the leaf, so checking that leaf after the
//! handshake is as strong as checking it during it, provided nothing is sent in between.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lettre::transport::smtp::client::{
    Certificate, CertificateStore, Identity, TlsParameters, TlsVersion,
};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use smtp_in::peer::PeerIdentity;

use super::RelayConfig;
use super::RelayError;
use super::config::resolve;

/// The loaded TLS material of the relay.
pub(crate) struct NextHopTls {
    leaf_der: Vec<u8>,
    key_pem: Vec<u8>,
    handshake_roots: Vec<CertificateDer<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
    verifier: Arc<WebPkiServerVerifier>,
}

impl std::fmt::Debug for NextHopTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextHopTls").finish_non_exhaustive()
    }
}

impl NextHopTls {
    /// Loads and checks every file of `[relay]`'s TLS keys.
    pub(crate) fn load(config: &RelayConfig, config_dir: &Path) -> Result<NextHopTls, RelayError> {
        let certificate = required(config.client_certificate.as_deref(), "client_certificate")?;
        let certificate = resolve(config_dir, certificate);
        let chain = certificates(&certificate, "relay.client_certificate")?;
        let leaf_der = chain.first().map(|leaf| leaf.to_vec()).ok_or_else(|| {
            file_error("relay.client_certificate", &certificate, "no certificate")
        })?;
        let key = resolve(
            config_dir,
            required(config.client_key.as_deref(), "client_key")?,
        );
        let key_pem = fs::read(&key)
            .map_err(|error| file_error("relay.client_key", &key, &error.to_string()))?;
        // lettre's `from_pem` takes the leaf as DER and the key as PEM.
        Identity::from_pem(&leaf_der, &key_pem)
            .map_err(|error| file_error("relay.client_key", &key, &error.to_string()))?;

        let mut anchors = Vec::new();
        for path in &config.server_trust {
            anchors.extend(certificates(
                &resolve(config_dir, path),
                "relay.server_trust",
            )?);
        }
        let mut intermediates = Vec::new();
        for path in &config.server_intermediates {
            let path = resolve(config_dir, path);
            intermediates.extend(certificates(&path, "relay.server_intermediates")?);
        }
        let mut crls = Vec::new();
        for path in &config.crl_files {
            let path = resolve(config_dir, path);
            let found: Vec<CertificateRevocationListDer<'static>> =
                CertificateRevocationListDer::pem_file_iter(&path)
                    .and_then(|items| items.collect())
                    .map_err(|error| file_error("relay.crl_files", &path, &error.to_string()))?;
            if found.is_empty() {
                return Err(file_error("relay.crl_files", &path, "no CRL in the file"));
            }
            crls.extend(found);
        }
        let mut roots = RootCertStore::empty();
        for anchor in &anchors {
            roots
                .add(anchor.clone())
                .map_err(|error| RelayError::Tls(format!("trust anchor refused: {error}")))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .with_crls(crls)
            .build()
            .map_err(|error| RelayError::Tls(error.to_string()))?;
        let mut handshake_roots = anchors;
        handshake_roots.extend(intermediates.iter().cloned());
        Ok(NextHopTls {
            leaf_der,
            key_pem,
            handshake_roots,
            intermediates,
            verifier,
        })
    }

    /// lettre's TLS parameters for a next hop named `server_name`.
    pub(crate) fn parameters(&self, server_name: &str) -> Result<TlsParameters, RelayError> {
        let tls = |error: lettre::transport::smtp::Error| RelayError::Tls(error.to_string());
        let identity = Identity::from_pem(&self.leaf_der, &self.key_pem).map_err(tls)?;
        let mut builder = TlsParameters::builder(server_name.to_owned())
            .certificate_store(CertificateStore::None)
            .identify_with(identity)
            .set_min_tls_version(TlsVersion::Tlsv12);
        for root in &self.handshake_roots {
            builder =
                builder.add_root_certificate(Certificate::from_der(root.to_vec()).map_err(tls)?);
        }
        builder.build_rustls().map_err(tls)
    }

    /// The authoritative check of the chain a next hop presented (leaf first).
    pub(crate) fn verify(
        &self,
        chain: &[Vec<u8>],
        server_name: &str,
    ) -> Result<PeerIdentity, String> {
        let Some((leaf, presented)) = chain.split_first() else {
            return Err("next hop presented no certificate".into());
        };
        let name = ServerName::try_from(server_name.to_owned())
            .map_err(|error| format!("invalid server name {server_name:?}: {error}"))?;
        let mut intermediates: Vec<CertificateDer<'_>> = presented
            .iter()
            .map(|der| CertificateDer::from(der.as_slice()))
            .collect();
        intermediates.extend(self.intermediates.iter().cloned());
        let leaf_der = CertificateDer::from(leaf.as_slice());
        self.verifier
            .verify_server_cert(&leaf_der, &intermediates, &name, &[], UnixTime::now())
            .map_err(|error| format!("next hop certificate refused: {error}"))?;
        PeerIdentity::from_der(leaf).map_err(|error| error.to_string())
    }
}

fn required<'a>(path: Option<&'a Path>, key: &str) -> Result<&'a Path, RelayError> {
    path.ok_or_else(|| RelayError::Config {
        key: format!("relay.{key}"),
        reason: "is required for smtp routes".into(),
    })
}

fn certificates(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, RelayError> {
    let found: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|items| items.collect())
        .map_err(|error| file_error(key, path, &error.to_string()))?;
    if found.is_empty() {
        return Err(file_error(key, path, "no certificate in the file"));
    }
    Ok(found)
}

fn file_error(key: &str, path: &Path, reason: &str) -> RelayError {
    RelayError::File {
        key: key.to_owned(),
        path: PathBuf::from(path),
        reason: reason.to_owned(),
    }
}
