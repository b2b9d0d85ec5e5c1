//! Server configuration errors and real handshakes (in memory) against the test PKI in `certs/`.

use super::*;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn certs(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("certs")
        .join(relative)
}

fn pki_ready() -> bool {
    let ready = certs("crl/org-expired.crl.pem").exists() && certs("tls/rogue.key").exists();
    if !ready {
        eprintln!("skipped: certs/ not generated");
    }
    ready
}

fn settings(require_client_certificate: bool) -> TlsSettings {
    TlsSettings {
        certificate_chain: certs("tls/gateway.pem"),
        private_key: certs("tls/gateway.key"),
        client_ca_bundle: Some(certs("ca/bundle.pem")),
        crl_files: vec![certs("crl/root.crl.pem"), certs("crl/org.crl.pem")],
        require_client_certificate,
    }
}

/// How the test client connects.
struct Client {
    identity: Option<&'static str>,
    version: &'static rustls::SupportedProtocolVersion,
    suites: Option<Vec<rustls::SupportedCipherSuite>>,
}

impl Client {
    fn with(identity: &'static str) -> Client {
        Client {
            identity: Some(identity),
            version: &rustls::version::TLS13,
            suites: None,
        }
    }

    fn config(&self) -> Arc<ClientConfig> {
        let mut provider = aws_lc_rs::default_provider();
        if let Some(suites) = &self.suites {
            provider.cipher_suites = suites.clone();
        }
        let mut roots = RootCertStore::empty();
        for certificate in load_certificates(&certs("ca/root.pem")).expect("root") {
            roots.add(certificate).expect("add root");
        }
        let builder = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[self.version])
            .expect("versions")
            .with_root_certificates(roots);
        let config = match self.identity {
            Some(name) => builder
                .with_client_auth_cert(
                    load_certificates(&certs(&format!("tls/{name}.pem"))).expect("chain"),
                    load_private_key(&certs(&format!("tls/{name}.key"))).expect("key"),
                )
                .expect("client identity"),
            None => builder.with_no_client_auth(),
        };
        Arc::new(config)
    }
}

/// Runs a handshake plus one byte each way; returns the server's view of the client chain.
async fn handshake(
    server: Arc<ServerConfig>,
    client: &Client,
) -> Result<Option<Vec<CertificateDer<'static>>>, String> {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(server);
    let connector = tokio_rustls::TlsConnector::from(client.config());
    let name = ServerName::try_from("localhost").expect("name");
    let server_side = async move {
        let mut stream = acceptor
            .accept(server_io)
            .await
            .map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        stream
            .read_exact(&mut byte)
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(b"!").await.map_err(|e| e.to_string())?;
        stream.flush().await.map_err(|e| e.to_string())?;
        let peer = stream
            .get_ref()
            .1
            .peer_certificates()
            .map(|chain| chain.to_vec());
        Ok::<_, String>(peer)
    };
    let client_side = async move {
        let mut stream = connector
            .connect(name, client_io)
            .await
            .map_err(|e| e.to_string())?;
        stream.write_all(b"?").await.map_err(|e| e.to_string())?;
        stream.flush().await.map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        // TLS 1.3 reports a rejected client certificate only on the first read.
        stream
            .read_exact(&mut byte)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    let (server_result, client_result) = tokio::join!(server_side, client_side);
    client_result?;
    server_result
}

#[tokio::test]
async fn accepts_listed_client_and_exposes_its_certificate() {
    if !pki_ready() {
        return;
    }
    let config = server_config(&settings(true)).expect("config");
    let chain = handshake(config, &Client::with("hopital-a"))
        .await
        .expect("handshake")
        .expect("client chain");
    let peer = crate::peer::PeerIdentity::from_der(&chain[0]).expect("identity");
    assert!(peer.subject.starts_with("CN=mx.hopital-a.mssante.test,"));
}

#[tokio::test]
async fn rejects_bad_clients() {
    if !pki_ready() {
        return;
    }
    let config = server_config(&settings(true)).expect("config");
    for name in ["revoked", "expired", "notyet", "rogue"] {
        let result = handshake(Arc::clone(&config), &Client::with(name)).await;
        assert!(result.is_err(), "{name} was accepted");
    }
    let anonymous = Client {
        identity: None,
        ..Client::with("hopital-a")
    };
    assert!(handshake(config, &anonymous).await.is_err());
}

#[tokio::test]
async fn optional_client_certificate() {
    if !pki_ready() {
        return;
    }
    let config = server_config(&settings(false)).expect("config");
    let anonymous = Client {
        identity: None,
        ..Client::with("hopital-a")
    };
    assert_eq!(handshake(Arc::clone(&config), &anonymous).await, Ok(None));
    // Optional does not mean unchecked: a revoked certificate still fails.
    assert!(handshake(config, &Client::with("revoked")).await.is_err());
}

#[tokio::test]
async fn expired_crl_fails_closed() {
    if !pki_ready() {
        return;
    }
    let mut expired = settings(true);
    expired.crl_files = vec![certs("crl/root.crl.pem"), certs("crl/org-expired.crl.pem")];
    let config = server_config(&expired).expect("config");
    assert!(handshake(config, &Client::with("hopital-a")).await.is_err());
}

#[tokio::test]
async fn missing_crl_fails_closed() {
    if !pki_ready() {
        return;
    }
    let mut without = settings(true);
    without.crl_files = vec![certs("crl/root.crl.pem")];
    let config = server_config(&without).expect("config");
    assert!(handshake(config, &Client::with("hopital-a")).await.is_err());
}

#[tokio::test]
async fn tls12_only_with_gcm() {
    if !pki_ready() {
        return;
    }
    let config = server_config(&settings(true)).expect("config");
    let gcm = Client {
        version: &rustls::version::TLS12,
        suites: Some(vec![cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]),
        ..Client::with("hopital-a")
    };
    assert!(handshake(Arc::clone(&config), &gcm).await.is_ok());
    let chacha = Client {
        version: &rustls::version::TLS12,
        suites: Some(vec![
            cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ]),
        ..Client::with("hopital-a")
    };
    assert!(handshake(config, &chacha).await.is_err());
}

#[test]
fn provider_offers_only_the_policy_suites() {
    let provider = provider();
    assert_eq!(provider.cipher_suites.len(), 7);
    for suite in &provider.cipher_suites {
        let name = format!("{:?}", suite.suite());
        assert!(name.contains("GCM") || name.starts_with("TLS13_"), "{name}");
        assert!(!name.contains("CBC"), "{name}");
    }
}

#[test]
fn reports_the_file_at_fault() {
    if !pki_ready() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");

    let mut missing = settings(true);
    missing.certificate_chain = dir.path().join("absent.pem");
    let error = server_config(&missing).expect_err("missing file");
    assert!(matches!(&error, TlsSetupError::Read { path, .. } if path.ends_with("absent.pem")));
    assert!(error.to_string().contains("absent.pem"));

    let mut key_as_chain = settings(true);
    key_as_chain.certificate_chain = certs("tls/gateway.key");
    assert!(matches!(
        server_config(&key_as_chain),
        Err(TlsSetupError::NoCertificate { .. })
    ));

    let mut chain_as_key = settings(true);
    chain_as_key.private_key = certs("tls/gateway.pem");
    assert!(matches!(
        server_config(&chain_as_key),
        Err(TlsSetupError::NoPrivateKey { .. })
    ));

    let garbage = dir.path().join("garbage.key");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect("write");
    let mut bad_key = settings(true);
    bad_key.private_key = garbage;
    assert!(matches!(
        server_config(&bad_key),
        Err(TlsSetupError::BadPrivateKey { .. })
    ));

    let mut mismatch = settings(true);
    mismatch.private_key = certs("tls/hopital-a.key");
    assert!(matches!(
        server_config(&mismatch),
        Err(TlsSetupError::KeyMismatch { .. })
    ));

    let bad_crl = dir.path().join("bad.crl.pem");
    std::fs::write(
        &bad_crl,
        "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    )
    .expect("write");
    let mut crl = settings(true);
    crl.crl_files.push(bad_crl.clone());
    let error = server_config(&crl).expect_err("bad crl");
    assert!(matches!(&error, TlsSetupError::BadCrl { path, .. } if path == &bad_crl));

    let mut no_crl = settings(true);
    no_crl.crl_files.push(certs("ca/root.pem"));
    assert!(matches!(
        server_config(&no_crl),
        Err(TlsSetupError::BadCrl { .. })
    ));

    let mut no_bundle = settings(true);
    no_bundle.client_ca_bundle = None;
    assert!(matches!(
        server_config(&no_bundle),
        Err(TlsSetupError::ClientCaBundleMissing)
    ));
    no_bundle.require_client_certificate = false;
    server_config(&no_bundle).expect("server-only TLS");
}
