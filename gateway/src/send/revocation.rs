//! Revocation of the server's certificate, checked before the message is sent.
//!
//! lettre builds its rustls configuration itself and takes no CRLs, so with `--crl` a first
//! connection does only the TLS handshake (after STARTTLS when asked) with a rustls verifier that
//! checks the chain against the CRLs, then QUITs; the message goes on a second connection. As on
//! the gateway's side, revocation is checked at every level of the chain and fails closed: give a
//! CRL for each CA of `--ca`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::SendError;
use super::transport::{TlsMode, TransportSettings};

/// Connects, completes a TLS handshake that checks `crls`, and disconnects.
pub fn check(
    settings: &TransportSettings,
    host: &str,
    port: u16,
    crls: &[PathBuf],
) -> Result<(), SendError> {
    let config = client_config(settings, crls)?;
    let failed = |reason: String| SendError::Transport {
        server: settings.server.clone(),
        reason,
    };
    let name = settings.server_name.as_deref().unwrap_or(host).to_owned();
    let server_name = ServerName::try_from(name.clone())
        .map_err(|_| SendError::Usage(format!("--server-name {name:?} is not a host name")))?;
    let address = (host, port)
        .to_socket_addrs()
        .map_err(|error| failed(error.to_string()))?
        .next()
        .ok_or_else(|| failed(format!("{host} has no address")))?;
    let mut tcp = TcpStream::connect_timeout(&address, settings.timeout)
        .map_err(|error| failed(error.to_string()))?;
    tcp.set_read_timeout(Some(settings.timeout))
        .and_then(|()| tcp.set_write_timeout(Some(settings.timeout)))
        .map_err(|error| failed(error.to_string()))?;
    if settings.mode == TlsMode::StartTls {
        starttls(&mut tcp).map_err(failed)?;
    }
    let connection =
        ClientConnection::new(config, server_name).map_err(|error| failed(error.to_string()))?;
    let mut tls = StreamOwned::new(connection, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|error| failed(format!("TLS handshake (revocation check): {error}")))?;
    }
    // A polite end; the result does not matter any more.
    let _ = tls.write_all(b"QUIT\r\n").and_then(|()| tls.flush());
    Ok(())
}

/// Greeting, EHLO, STARTTLS, each answered positively; nothing may follow the `220`.
fn starttls(tcp: &mut TcpStream) -> Result<(), String> {
    let mut reader = BufReader::new(tcp.try_clone().map_err(|error| error.to_string())?);
    expect(&mut reader, 220)?;
    tcp.write_all(b"EHLO revocation-check.invalid\r\n")
        .map_err(|error| error.to_string())?;
    expect(&mut reader, 250)?;
    tcp.write_all(b"STARTTLS\r\n")
        .map_err(|error| error.to_string())?;
    expect(&mut reader, 220)?;
    if !reader.buffer().is_empty() {
        return Err("bytes after the STARTTLS reply".to_owned());
    }
    Ok(())
}

fn expect(reader: &mut BufReader<TcpStream>, code: u16) -> Result<(), String> {
    loop {
        let mut line = String::new();
        let read = reader
            .read_line(&mut line)
            .map_err(|error| error.to_string())?;
        if read == 0 {
            return Err("connection closed".to_owned());
        }
        let found = line.get(..3).and_then(|digits| digits.parse::<u16>().ok());
        if found != Some(code) {
            return Err(format!("unexpected reply {:?}", line.trim_end()));
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

fn client_config(
    settings: &TransportSettings,
    crls: &[PathBuf],
) -> Result<Arc<ClientConfig>, SendError> {
    let invalid = |path: &Path, reason: String| SendError::InvalidFile {
        path: path.to_path_buf(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(&settings.ca)
        .map_err(|error| invalid(&settings.ca, error.to_string()))?
    {
        let certificate = certificate.map_err(|error| invalid(&settings.ca, error.to_string()))?;
        roots
            .add(certificate)
            .map_err(|error| invalid(&settings.ca, error.to_string()))?;
    }
    let mut revocation_lists = Vec::new();
    for path in crls {
        let mut found = 0;
        for crl in CertificateRevocationListDer::pem_file_iter(path)
            .map_err(|error| invalid(path, error.to_string()))?
        {
            revocation_lists.push(crl.map_err(|error| invalid(path, error.to_string()))?);
            found += 1;
        }
        if found == 0 {
            return Err(invalid(path, "no PEM X509 CRL in the file".to_owned()));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .with_crls(revocation_lists)
    .build()
    .map_err(|error| invalid(&settings.ca, error.to_string()))?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&settings.client_certificate)
            .and_then(|certificates| certificates.collect::<Result<_, _>>())
            .map_err(|error| invalid(&settings.client_certificate, error.to_string()))?;
    let key = PrivateKeyDer::from_pem_file(&settings.client_key)
        .map_err(|error| invalid(&settings.client_key, error.to_string()))?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|error| invalid(&settings.ca, error.to_string()))?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(chain, key)
        .map_err(|error| invalid(&settings.client_key, error.to_string()))?;
    Ok(Arc::new(config))
}
