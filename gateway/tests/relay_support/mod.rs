//! Helpers of `tests/relay.rs`: next-hop sinks (real `smtp_in` listeners with mutual TLS), the
//! test PKI, a liste blanche written for the test, and a recording relay sink.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dmp_connector::queue::memory::MemoryQueue;
use gateway::relay::{
    MessageSource, RelayConfig, RelayEvent, RelaySink, RouteConfig, RouteKind, TlsMode,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use sha2::{Digest as _, Sha256};
use smtp_in::envelope::Envelope;
use smtp_in::handler::{MessageHandler, Verdict};
use smtp_in::limits::Limits;
use smtp_in::peer::PeerIdentity;
use smtp_in::reply::{EnhancedCode, Reply};
use smtp_in::server::{Listener, ListenerConfig, ListenerMode, Shutdown};
use smtp_in::spool::{Spool, SpooledMessage};
use smtp_in::tls::{TlsSettings, server_config};
use smtp_in::whitelist::Whitelist;

/// The committed test PKI.
pub fn certs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs")
}

/// Subject DN (RFC 4514) of the first certificate of `certs/<file>`.
pub fn subject_of(file: &str) -> String {
    let first = CertificateDer::pem_file_iter(certs().join(file))
        .expect("certificate file")
        .next()
        .expect("one certificate")
        .expect("PEM certificate");
    PeerIdentity::from_der(&first).expect("X.509").subject
}

/// The subject of `tls/gateway.pem`, the certificate of the sinks and of the relay's client.
pub fn gateway_subject() -> String {
    subject_of("tls/gateway.pem")
}

/// `[relay]` for the tests: the gateway's client identity, the test root and intermediate,
/// both CRLs, the whitelist checked, short timeouts.
pub fn relay_config(routes: Vec<RouteConfig>) -> RelayConfig {
    let certs = certs();
    RelayConfig {
        client_certificate: Some(certs.join("tls/gateway.pem")),
        client_key: Some(certs.join("tls/gateway.key")),
        server_trust: vec![certs.join("ca/root.pem")],
        server_intermediates: vec![certs.join("ca/org.pem")],
        crl_files: vec![
            certs.join("crl/org.crl.pem"),
            certs.join("crl/root.crl.pem"),
        ],
        check_whitelist: true,
        connect_timeout_secs: 10,
        command_timeout_secs: 10,
        routes,
        ..RelayConfig::default()
    }
}

/// An smtp route to 127.0.0.1:`port`, checking the name `localhost`.
pub fn smtp_route(domain: &str, port: u16, mode: TlsMode) -> RouteConfig {
    RouteConfig {
        domain: domain.into(),
        kind: RouteKind::Smtp,
        host: Some("127.0.0.1".into()),
        port: Some(port),
        tls: Some(mode),
        server_name: Some("localhost".into()),
        maildir: None,
    }
}

/// A loopback port with nothing listening (bound, then released).
pub fn closed_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = socket.local_addr().expect("address").port();
    drop(socket);
    port
}

/// Writes a liste blanche (with its `.sha256` file, as the committed one) listing `entries`
/// (domain, operator DN) into `dir`, and loads it.
pub fn whitelist_for(dir: &Path, entries: &[(&str, &str)]) -> Arc<Whitelist> {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListeBlancheMSSante xmlns=\"https://listeblanche.mssante.fr/schema\">\n  <DateDeGeneration>2025-06-01T00:00:00Z</DateDeGeneration>\n  <ListeDomaines>\n",
    );
    for (domain, dn) in entries {
        xml.push_str(&format!(
            "    <Domaine>\n      <Nom>{domain}</Nom>\n      <Description>test</Description>\n      <DNCertificatOperateur>{dn}</DNCertificatOperateur>\n      <ResponsableContact>responsable@{domain}</ResponsableContact>\n      <SupportContact>support@{domain}</SupportContact>\n      <DateMAJ>2025-06-01T00:00:00Z</DateMAJ>\n    </Domaine>\n"
        ));
    }
    xml.push_str("  </ListeDomaines>\n</ListeBlancheMSSante>\n");
    let path = dir.join("listeblanchemssante.xml");
    std::fs::write(&path, &xml).expect("write list");
    let checksum = dir.join("listeblanchemssante.xml.sha256");
    let line = format!(
        "{}  listeblanchemssante.xml\n",
        hex::encode(Sha256::digest(xml.as_bytes()))
    );
    std::fs::write(&checksum, line).expect("write checksum");
    Arc::new(Whitelist::load(&path, Some(&checksum)).expect("liste blanche loads"))
}

/// How a sink answers at the end of DATA.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// `250`.
    Accept,
    /// This code every time (4xx or 5xx).
    Reject(u16),
    /// This code for the first message, then `250`.
    RejectFirst(u16),
}

struct Answering {
    answer: Answer,
    seen: AtomicUsize,
}

fn refusal(code: u16) -> Reply {
    if code >= 500 {
        Reply::new(
            code,
            EnhancedCode::new(5, 7, 1),
            "refused by the test next hop",
        )
    } else {
        Reply::new(code, EnhancedCode::new(4, 3, 2), "busy, try again later")
    }
}

impl MessageHandler for Answering {
    async fn check(&self, _message: &SpooledMessage) -> Verdict {
        let seen = self.seen.fetch_add(1, Ordering::SeqCst);
        match self.answer {
            Answer::Accept => Verdict::Accept,
            Answer::Reject(code) => Verdict::Reject(refusal(code)),
            Answer::RejectFirst(code) if seen == 0 => Verdict::Reject(refusal(code)),
            Answer::RejectFirst(_) => Verdict::Accept,
        }
    }
}

/// A sink's certificate and key files.
pub struct Identity {
    /// PEM chain, leaf first.
    pub chain: PathBuf,
    /// PEM key.
    pub key: PathBuf,
}

impl Identity {
    /// `certs/tls/<name>.{pem,key}`.
    pub fn committed(name: &str) -> Identity {
        Identity {
            chain: certs().join(format!("tls/{name}.pem")),
            key: certs().join(format!("tls/{name}.key")),
        }
    }
}

/// A self-signed end-entity certificate for `localhost` with the serverAuth EKU, written by the
/// openssl tool into `dir`: valid in every respect but its issuer.
pub fn self_signed(dir: &Path) -> Identity {
    let chain = dir.join("untrusted.pem");
    let key = dir.join("untrusted.key");
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        ])
        .arg("/CN=localhost/O=UNTRUSTED TEST")
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "extendedKeyUsage=serverAuth,clientAuth"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args([
            "-addext",
            "keyUsage=critical,digitalSignature,keyEncipherment",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&chain)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl req failed");
    Identity { chain, key }
}

/// A next hop: an `smtp_in` listener on loopback presenting `identity`,
/// requiring a client certificate from the test CAs, spooling what it accepts.
pub struct Sink {
    /// Its port on 127.0.0.1.
    pub port: u16,
    spool: Spool,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Sink {
    /// Starts a sink.
    pub async fn start(identity: Identity, mode: TlsMode, answer: Answer) -> Sink {
        let certs = certs();
        let settings = TlsSettings {
            certificate_chain: identity.chain,
            private_key: identity.key,
            client_ca_bundle: Some(certs.join("ca/bundle.pem")),
            crl_files: vec![
                certs.join("crl/root.crl.pem"),
                certs.join("crl/org.crl.pem"),
            ],
            require_client_certificate: true,
        };
        let config = ListenerConfig {
            address: "127.0.0.1:0".parse().expect("address"),
            mode: match mode {
                TlsMode::Starttls => ListenerMode::StartTls,
                TlsMode::Implicit => ListenerMode::Implicit,
            },
            hostname: "sink.cabinet-c.mssante.test".into(),
            tls: server_config(&settings).expect("sink TLS config"),
            require_client_certificate: true,
            limits: Limits::default(),
            whitelist: None,
        };
        let listener = Listener::bind(config).expect("bind sink");
        let port = listener.local_addr().expect("address").port();
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open(&dir.path().join("spool")).expect("sink spool");
        let shutdown = Shutdown::new();
        let handler = Arc::new(Answering {
            answer,
            seen: AtomicUsize::new(0),
        });
        let task = tokio::spawn(listener.serve(spool.clone(), handler, shutdown.clone()));
        Sink {
            port,
            spool,
            shutdown,
            task,
            _dir: dir,
        }
    }

    /// What the sink accepted: envelopes and message bytes, oldest first.
    pub async fn messages(&self) -> Vec<(Envelope, Vec<u8>)> {
        let pending = self.spool.pending().expect("sink spool readable");
        let mut messages = Vec::new();
        for message in pending {
            let body = message.read_body().await.expect("body");
            messages.push((message.envelope, body));
        }
        messages
    }

    /// Stops the listener and waits for it.
    pub async fn stop(self) {
        self.shutdown.begin();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// Originals by queue id.
pub struct MemorySource(HashMap<String, Vec<u8>>);

impl MemorySource {
    /// A source holding one message.
    pub fn with(queue_id: &str, bytes: Vec<u8>) -> MemorySource {
        MemorySource(HashMap::from([(queue_id.to_owned(), bytes)]))
    }
}

impl MessageSource for MemorySource {
    async fn original(&self, queue_id: &str) -> Result<Vec<u8>, String> {
        self.0
            .get(queue_id)
            .cloned()
            .ok_or_else(|| format!("no message {queue_id}"))
    }
}

/// Records each event with the queue's log as it was at that moment (to check the order).
pub struct RecordingSink {
    queue: Arc<MemoryQueue>,
    events: Mutex<Vec<(RelayEvent, Vec<String>)>>,
    fail: bool,
}

impl RecordingSink {
    /// A sink that records.
    pub fn new(queue: Arc<MemoryQueue>) -> RecordingSink {
        RecordingSink {
            queue,
            events: Mutex::new(Vec::new()),
            fail: false,
        }
    }

    /// A sink that sees events but fails to record them (a ledger that is down).
    pub fn failing(queue: Arc<MemoryQueue>) -> RecordingSink {
        RecordingSink {
            fail: true,
            ..RecordingSink::new(queue)
        }
    }

    /// Events so far, each with the queue log at record time.
    pub fn events(&self) -> Vec<(RelayEvent, Vec<String>)> {
        self.events.lock().expect("events").clone()
    }

    /// Waits (up to 30 s) until `count` events arrived.
    pub async fn wait_for(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.events.lock().expect("events").len() < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {:?} events",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl RelaySink for RecordingSink {
    async fn record(&self, event: &RelayEvent) -> Result<(), String> {
        let log = self.queue.log();
        self.events
            .lock()
            .expect("events")
            .push((event.clone(), log));
        if self.fail {
            return Err("ledger unavailable".into());
        }
        Ok(())
    }
}
