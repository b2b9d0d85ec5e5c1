//! Shared helpers of the smtp-in integration tests: test PKI, TLS configs, a line-based SMTP
//! client and a recording message handler.

#![allow(dead_code)]

pub mod harness;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use smtp_in::envelope::Envelope;
use smtp_in::handler::{MessageHandler, Verdict};
use smtp_in::limits::Limits;
use smtp_in::server::{ListenerConfig, ListenerMode};
use smtp_in::spool::{CommittedMessage, Spool, SpooledMessage};
use smtp_in::tls::{TlsSettings, server_config};
use smtp_in::whitelist::Whitelist;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The committed test PKI.
pub fn certs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs")
}

/// Server TLS settings of the test gateway.
pub fn tls_settings(require_client_certificate: bool) -> TlsSettings {
    let certs = certs();
    TlsSettings {
        certificate_chain: certs.join("tls/gateway.pem"),
        private_key: certs.join("tls/gateway.key"),
        client_ca_bundle: Some(certs.join("ca/bundle.pem")),
        crl_files: vec![
            certs.join("crl/root.crl.pem"),
            certs.join("crl/org.crl.pem"),
        ],
        require_client_certificate,
    }
}

/// The liste blanche of the test PKI.
pub fn whitelist() -> Arc<Whitelist> {
    let certs = certs();
    let xml = certs.join("listeblanche/listeblanchemssante.xml");
    let checksum = certs.join("listeblanche/listeblanchemssante.xml.sha256");
    Arc::new(Whitelist::load(&xml, Some(&checksum)).expect("test liste blanche"))
}

/// A listener configuration on an ephemeral loopback port.
pub fn listener_config(mode: ListenerMode, limits: Limits) -> ListenerConfig {
    ListenerConfig {
        address: "127.0.0.1:0".parse().unwrap(),
        mode,
        hostname: "gateway.mssante.test".to_owned(),
        tls: server_config(&tls_settings(true)).expect("server TLS config"),
        require_client_certificate: true,
        limits,
        whitelist: None,
    }
}

/// A client TLS config trusting the test root, presenting `identity` (a name under certs/tls/).
pub fn client_tls(identity: Option<&str>) -> Arc<rustls::ClientConfig> {
    let certs = certs();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(certs.join("ca/root.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some(name) => {
            let chain: Vec<_> =
                CertificateDer::pem_file_iter(certs.join(format!("tls/{name}.pem")))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
            let key = PrivateKeyDer::from_pem_file(certs.join(format!("tls/{name}.key"))).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// A reply as the client saw it.
#[derive(Debug, Clone)]
pub struct Response {
    pub code: u16,
    /// Lines without the code and separator.
    pub lines: Vec<String>,
}

impl Response {
    /// The whole text, lines joined with `\n`.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// Asserts the code and the enhanced code at the start of the text.
    pub fn assert(&self, code: u16, enhanced: &str) -> &Response {
        assert_eq!(self.code, code, "unexpected reply: {self:?}");
        assert!(
            self.lines.iter().all(|line| line.starts_with(enhanced)),
            "expected enhanced code {enhanced} on every line of {self:?}"
        );
        self
    }
}

/// Minimal SMTP client over any stream.
pub struct Client<S> {
    pub stream: S,
    buffer: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S) -> Client<S> {
        Client {
            stream,
            buffer: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    /// Sends one command line and reads its reply.
    pub async fn command(&mut self, line: &str) -> Response {
        self.send(format!("{line}\r\n")).await;
        self.reply().await
    }

    /// Reads one line; `None` at end of stream.
    pub async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(at) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8(self.buffer[..at].to_vec()).unwrap();
                self.buffer.drain(..at + 2);
                return Some(line);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(count) => self.buffer.extend_from_slice(&chunk[..count]),
            }
        }
    }

    /// Reads one (possibly multi-line) reply; panics at end of stream.
    pub async fn reply(&mut self) -> Response {
        self.try_reply()
            .await
            .expect("connection closed before a reply")
    }

    /// Reads one reply, `None` if the connection closed.
    pub async fn try_reply(&mut self) -> Option<Response> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await?;
            assert!(line.len() >= 3, "short reply line {line:?}");
            let code: u16 = line[..3].parse().unwrap();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_owned());
            if last {
                return Some(Response { code, lines });
            }
        }
    }

    /// True when the server closed the connection (nothing more to read).
    pub async fn closed(&mut self) -> bool {
        self.buffer.is_empty() && self.line().await.is_none()
    }

    /// Bytes read but not consumed (must be empty before a TLS upgrade).
    pub fn leftover(&self) -> &[u8] {
        &self.buffer
    }

    /// Sends a whole message: MAIL, RCPTs, DATA, body (already dot-stuffed, CRLF), end marker.
    pub async fn send_message(&mut self, from: &str, to: &[&str], body: &str) -> Response {
        self.command(&format!("MAIL FROM:<{from}>"))
            .await
            .assert(250, "2.1.0");
        for recipient in to {
            self.command(&format!("RCPT TO:<{recipient}>"))
                .await
                .assert(250, "2.1.5");
        }
        self.command("DATA").await.assert(354, "2.0.0");
        self.send(format!("{body}.\r\n")).await;
        self.reply().await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// STARTTLS then the handshake; returns the TLS client (nothing was buffered after 220).
    pub async fn starttls(mut self, identity: Option<&str>) -> Client<TlsStream<S>> {
        self.command("STARTTLS").await.assert(220, "2.0.0");
        assert!(self.leftover().is_empty());
        Client::new(
            connect_tls(self.stream, identity)
                .await
                .expect("TLS handshake"),
        )
    }
}

/// Client side of a TLS handshake to the test gateway.
pub async fn connect_tls<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    identity: Option<&str>,
) -> std::io::Result<TlsStream<S>> {
    let connector = TlsConnector::from(client_tls(identity));
    connector
        .connect(ServerName::try_from("localhost").unwrap(), stream)
        .await
}

/// What the recording handler saw.
#[derive(Debug, Clone)]
pub struct Checked {
    pub envelope: Envelope,
    pub body: Vec<u8>,
}

/// A handler that records messages and answers a configurable verdict.
#[derive(Debug)]
pub struct Recorder {
    pub verdict: Mutex<Verdict>,
    pub checked: Mutex<Vec<Checked>>,
    pub accepted: Mutex<Vec<CommittedMessage>>,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder {
            verdict: Mutex::new(Verdict::Accept),
            checked: Mutex::new(Vec::new()),
            accepted: Mutex::new(Vec::new()),
        }
    }
}

impl MessageHandler for Recorder {
    async fn check(&self, message: &SpooledMessage) -> Verdict {
        let body = message.read_body().await.unwrap();
        self.checked.lock().unwrap().push(Checked {
            envelope: message.envelope.clone(),
            body,
        });
        self.verdict.lock().unwrap().clone()
    }

    async fn accepted(&self, message: &CommittedMessage) {
        self.accepted.lock().unwrap().push(message.clone());
    }
}

/// A fresh spool in a temporary directory.
pub fn spool() -> (tempfile::TempDir, Spool) {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path()).unwrap();
    (dir, spool)
}

/// Number of files in `dir/<sub>`.
pub fn files_in(dir: &Path, sub: &str) -> usize {
    std::fs::read_dir(dir.join(sub))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

/// A fake client address for in-memory sessions.
pub fn client_addr() -> SocketAddr {
    "192.0.2.10:40000".parse().unwrap()
}
