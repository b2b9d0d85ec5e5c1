//! Real sockets: TCP listeners, rustls on both sides with the committed test PKI, lettre as the
//! sending MTA, connection limits, TLS policy and graceful shutdown.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Client, Recorder, files_in};
use lettre::message::Message;
use lettre::transport::smtp::client::{Certificate, Identity, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use smtp_in::limits::Limits;
use smtp_in::server::{Listener, ListenerConfig, ListenerMode, Shutdown};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

const FROM: &str = "secretariat@hopital-a.mssante.test";
const TO: &str = "dr.martin@gateway.mssante.test";

/// A running listener with its spool and handler.
struct Server {
    address: SocketAddr,
    dir: tempfile::TempDir,
    handler: Arc<Recorder>,
    shutdown: Shutdown,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    fn queued(&self) -> usize {
        files_in(self.dir.path(), "queue")
    }
}

fn run(config: ListenerConfig) -> Server {
    let (dir, spool) = common::spool();
    let handler = Arc::new(Recorder::default());
    let shutdown = Shutdown::new();
    let listener = Listener::bind(config).unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(listener.serve(spool, handler.clone(), shutdown.clone()));
    Server {
        address,
        dir,
        handler,
        shutdown,
        task,
    }
}

fn start(mode: ListenerMode, limits: Limits, whitelisted: bool) -> Server {
    let mut config = common::listener_config(mode, limits);
    if whitelisted {
        config.whitelist = Some(common::whitelist());
    }
    run(config)
}

/// lettre transport to the server, with `identity` (a name under certs/tls/) as client cert.
fn transport(
    server: &Server,
    mode: ListenerMode,
    identity: Option<&str>,
) -> AsyncSmtpTransport<Tokio1Executor> {
    let certs = common::certs();
    let root = std::fs::read(certs.join("ca/root.pem")).unwrap();
    let mut parameters = TlsParameters::builder("localhost".to_owned())
        .add_root_certificate(Certificate::from_pem(&root).unwrap());
    if let Some(name) = identity {
        // lettre wants the leaf as DER (see CRATES.md); it sends the leaf only.
        let leaf = CertificateDer::pem_file_iter(certs.join(format!("tls/{name}.pem")))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let key = std::fs::read(certs.join(format!("tls/{name}.key"))).unwrap();
        parameters = parameters.identify_with(Identity::from_pem(leaf.as_ref(), &key).unwrap());
    }
    let parameters = parameters.build_rustls().unwrap();
    let tls = match mode {
        ListenerMode::StartTls => Tls::Required(parameters),
        ListenerMode::Implicit => Tls::Wrapper(parameters),
    };
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.address.port())
        .tls(tls)
        .timeout(Some(Duration::from_secs(10)))
        .build()
}

fn message(from: &str) -> Message {
    Message::builder()
        .from(from.parse().unwrap())
        .to(TO.parse().unwrap())
        .subject("Compte rendu (synthetic)")
        .body("Bonjour,\r\nsynthetic test body.\r\n".to_owned())
        .unwrap()
}

async fn send(
    server: &Server,
    mode: ListenerMode,
    identity: Option<&str>,
    from: &str,
) -> Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error> {
    transport(server, mode, identity).send(message(from)).await
}

#[tokio::test]
async fn lettre_with_good_client_certificate_is_queued() {
    let server = start(ListenerMode::StartTls, Limits::default(), true);
    let response = send(&server, ListenerMode::StartTls, Some("hopital-a"), FROM)
        .await
        .expect("message accepted");
    assert_eq!(response.code().to_string(), "250");
    assert_eq!(server.queued(), 1);
    let checked = server.handler.checked.lock().unwrap().clone();
    let peer = checked[0].envelope.peer.clone().expect("peer identity");
    assert!(peer.subject.contains("HOPITAL A TEST"), "{peer:?}");
    let body = String::from_utf8_lossy(&checked[0].body);
    assert!(body.starts_with("Received: from "), "{body}");
    assert!(body.contains("Compte rendu"));
}

#[tokio::test]
async fn implicit_tls_listener_accepts_lettre() {
    let server = start(ListenerMode::Implicit, Limits::default(), true);
    send(
        &server,
        ListenerMode::Implicit,
        Some("labo-b"),
        "x@labo-b.mssante.test",
    )
    .await
    .expect("message accepted");
    assert_eq!(server.queued(), 1);
}

/// The handshake fails with the TLS alert `alert` (as rustls names it).
async fn assert_refused(identity: Option<&str>, alert: &str) {
    let server = start(ListenerMode::StartTls, Limits::default(), false);
    let outcome = send(&server, ListenerMode::StartTls, identity, FROM).await;
    let error = outcome.expect_err("the handshake must fail");
    assert!(
        format!("{error:?}").contains(alert),
        "{identity:?}: expected {alert}, got {error:?}"
    );
    assert_eq!(server.queued(), 0);
    assert!(server.handler.checked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn without_client_certificate_the_handshake_is_refused() {
    assert_refused(None, "CertificateRequired").await;
}

#[tokio::test]
async fn revoked_client_certificate_is_refused() {
    assert_refused(Some("revoked"), "CertificateRevoked").await;
}

#[tokio::test]
async fn rogue_ca_client_certificate_is_refused() {
    assert_refused(Some("rogue"), "UnknownCA").await;
}

#[tokio::test]
async fn expired_client_certificate_is_refused() {
    assert_refused(Some("expired"), "CertificateExpired").await;
}

#[tokio::test]
async fn outside_whitelist_is_550_5_7_1() {
    let server = start(ListenerMode::StartTls, Limits::default(), true);
    let error = send(
        &server,
        ListenerMode::StartTls,
        Some("hopital-a"),
        "x@labo-b.mssante.test",
    )
    .await
    .expect_err("refused by the liste blanche");
    let text = error.to_string();
    assert!(error.is_permanent(), "{text}");
    assert!(text.contains("5.7.1"), "{text}");
    assert!(text.contains("labo-b.mssante.test"), "{text}");
    assert!(text.contains("HOPITAL A TEST"), "{text}");
    assert_eq!(server.queued(), 0);
}

/// A TLS 1.1 ClientHello (no supported_versions extension) must not get a ServerHello.
#[tokio::test]
async fn tls_1_1_is_impossible() {
    let server = start(ListenerMode::Implicit, Limits::default(), false);
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // ECDHE-RSA-AES128-SHA, AES128-SHA
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00, 0x00, body.len() as u8];
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x02, 0x00, handshake.len() as u8];
    record.extend_from_slice(&handshake);
    stream.write_all(&record).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    // Either an alert record (0x15) or nothing; never a handshake record with a ServerHello.
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "server answered a TLS 1.1 hello with {answer:02x?}"
    );
}

#[tokio::test]
async fn graceful_shutdown_sends_421_4_3_2_after_grace() {
    let limits = Limits {
        shutdown_grace: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = start(ListenerMode::Implicit, limits, false);
    let tcp = TcpStream::connect(server.address).await.unwrap();
    let tls = common::connect_tls(tcp, Some("hopital-a")).await.unwrap();
    let mut client = Client::new(tls);
    client.reply().await;
    client.command("EHLO mta.hopital-a.test").await;
    // An open transaction is allowed to finish during the grace period...
    client
        .command(&format!("MAIL FROM:<{FROM}>"))
        .await
        .assert(250, "2.1.0");
    let began = Instant::now();
    server.shutdown.begin();
    client
        .command(&format!("RCPT TO:<{TO}>"))
        .await
        .assert(250, "2.1.5");
    // ...and is told 421 when the grace period is over.
    client.reply().await.assert(421, "4.3.2");
    assert!(began.elapsed() >= Duration::from_millis(250));
    assert!(client.closed().await);
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("serve returns")
        .unwrap()
        .unwrap();
    // No longer accepting.
    let refused = match TcpStream::connect(server.address).await {
        Err(_) => true,
        Ok(mut stream) => {
            let mut byte = [0u8; 1];
            matches!(stream.read(&mut byte).await, Ok(0) | Err(_))
        }
    };
    assert!(refused);
}

#[tokio::test]
async fn idle_sessions_end_at_once_on_shutdown() {
    let server = start(ListenerMode::StartTls, Limits::default(), false);
    let mut client = Client::new(TcpStream::connect(server.address).await.unwrap());
    client.reply().await;
    client.command("EHLO mta.hopital-a.test").await;
    server.shutdown.begin();
    client.reply().await.assert(421, "4.3.2");
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .expect("serve returns")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn connections_over_the_per_ip_limit_get_421_4_7_0() {
    let limits = Limits {
        max_connections_per_ip: 1,
        ..Limits::default()
    };
    let server = start(ListenerMode::StartTls, limits, false);
    let mut first = Client::new(TcpStream::connect(server.address).await.unwrap());
    assert_eq!(first.reply().await.code, 220);
    let mut second = Client::new(TcpStream::connect(server.address).await.unwrap());
    second.reply().await.assert(421, "4.7.0");
    assert!(second.closed().await);
    // Once the first leaves, a new connection is served.
    first.command("QUIT").await.assert(221, "2.0.0");
    assert!(first.closed().await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut third = Client::new(TcpStream::connect(server.address).await.unwrap());
    assert_eq!(third.reply().await.code, 220);
}

#[tokio::test]
async fn connections_over_the_total_limit_get_421_4_7_0() {
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let server = start(ListenerMode::StartTls, limits, false);
    let mut first = Client::new(TcpStream::connect(server.address).await.unwrap());
    let mut second = Client::new(TcpStream::connect(server.address).await.unwrap());
    assert_eq!(first.reply().await.code, 220);
    assert_eq!(second.reply().await.code, 220);
    let mut third = Client::new(TcpStream::connect(server.address).await.unwrap());
    third.reply().await.assert(421, "4.7.0");
}

/// Round trips of a TLS session: with either TCP_NODELAY setting on the client, no reply waits
/// for a delayed ACK (~40 ms each).
async fn round_trips(nodelay: bool) -> Duration {
    let server = start(ListenerMode::Implicit, Limits::default(), false);
    let tcp = TcpStream::connect(server.address).await.unwrap();
    tcp.set_nodelay(nodelay).unwrap();
    let tls = common::connect_tls(tcp, Some("hopital-a")).await.unwrap();
    let mut client = Client::new(tls);
    client.reply().await;
    client.command("EHLO mta.hopital-a.test").await;
    let began = Instant::now();
    for _ in 0..5 {
        client
            .command(&format!("MAIL FROM:<{FROM}>"))
            .await
            .assert(250, "2.1.0");
        client
            .command(&format!("RCPT TO:<{TO}>"))
            .await
            .assert(250, "2.1.5");
        client.command("RSET").await.assert(250, "2.0.0");
        client.command("NOOP").await.assert(250, "2.0.0");
    }
    began.elapsed()
}

#[tokio::test]
async fn no_delayed_ack_stall_with_or_without_nodelay() {
    for nodelay in [true, false] {
        let elapsed = round_trips(nodelay).await;
        // 20 round trips; a 40 ms stall on each would take 800 ms.
        assert!(
            elapsed < Duration::from_millis(400),
            "nodelay={nodelay}: {elapsed:?}"
        );
    }
}
