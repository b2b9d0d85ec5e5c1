//! In-memory session harness: a server session over `tokio::io::duplex`, its spool and handler.

use std::sync::Arc;

use smtp_in::limits::Limits;
use smtp_in::server::{ListenerConfig, ListenerMode, Shutdown};
use smtp_in::session::{SessionContext, serve_connection};
use smtp_in::spool::Spool;
use tokio::io::DuplexStream;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;

use super::{Client, Recorder, client_addr, files_in};

pub const FROM: &str = "secretariat@hopital-a.mssante.test";
pub const TO: &str = "dr.martin@gateway.mssante.test";

/// One in-memory server session and what it writes to.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub spool: Spool,
    pub handler: Arc<Recorder>,
    pub shutdown: Shutdown,
    pub task: JoinHandle<()>,
}

impl Harness {
    pub fn queued(&self) -> usize {
        files_in(self.dir.path(), "queue")
    }
    pub fn temporary(&self) -> usize {
        files_in(self.dir.path(), "tmp")
    }
}

pub fn start_with(config: ListenerConfig) -> (Client<DuplexStream>, Harness) {
    let (dir, spool) = super::spool();
    let handler = Arc::new(Recorder::default());
    let shutdown = Shutdown::new();
    let context = Arc::new(SessionContext {
        config: Arc::new(config),
        spool: spool.clone(),
        handler: handler.clone(),
        shutdown: shutdown.clone(),
    });
    let (client, server) = tokio::io::duplex(256 * 1024);
    let task = tokio::spawn(serve_connection(server, client_addr(), context));
    (
        Client::new(client),
        Harness {
            dir,
            spool,
            handler,
            shutdown,
            task,
        },
    )
}

pub fn start(limits: Limits) -> (Client<DuplexStream>, Harness) {
    start_with(super::listener_config(ListenerMode::StartTls, limits))
}

/// Greeting, EHLO, STARTTLS with the hopital-a certificate, EHLO again.
pub async fn tls_session_with(
    config: ListenerConfig,
) -> (Client<TlsStream<DuplexStream>>, Harness) {
    let (mut client, harness) = start_with(config);
    client.reply().await;
    client.command("EHLO mta.hopital-a.test").await;
    let mut client = client.starttls(Some("hopital-a")).await;
    client
        .command("EHLO mta.hopital-a.test")
        .await
        .assert(250, "");
    (client, harness)
}

pub async fn tls_session(limits: Limits) -> (Client<TlsStream<DuplexStream>>, Harness) {
    tls_session_with(super::listener_config(ListenerMode::StartTls, limits)).await
}
