//! The next hop the gateway relays to: an `smtp_in` listener with the test PKI's server
//! certificate (`certs/tls/gateway.pem`, CN=localhost) that demands a client certificate and
//! keeps whatever arrives in its own spool.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use smtp_in::handler::{AcceptAll, MessageHandler, Verdict};
use smtp_in::limits::Limits;
use smtp_in::reply::{EnhancedCode, Reply};
use smtp_in::server::{Listener, ListenerConfig, ListenerMode, Shutdown};
use smtp_in::spool::Spool;
use smtp_in::spool::SpooledMessage;
use smtp_in::tls::{TlsSettings, server_config};
use tokio::task::JoinHandle;

use super::paths::cert;

/// What a sink answers at the end of DATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkMode {
    /// `250`: the message is kept.
    Accept,
    /// This reply (a 5xx makes the gateway's relay fail for good); nothing is kept.
    Refuse(Reply),
}

impl SinkMode {
    /// `550 5.1.1`: the recipient mailbox does not exist.
    pub fn unknown_user() -> SinkMode {
        SinkMode::Refuse(Reply::new(
            550,
            EnhancedCode::new(5, 1, 1),
            "Recipient address rejected: user unknown (test sink)",
        ))
    }
}

/// Refuses every message with the same reply.
struct RefuseAll(Reply);

impl MessageHandler for RefuseAll {
    async fn check(&self, _message: &SpooledMessage) -> Verdict {
        Verdict::Reject(self.0.clone())
    }
}

/// A running SMTP sink for one recipient domain.
#[derive(Debug)]
pub struct SmtpSink {
    /// The domain routed to it.
    pub domain: String,
    address: SocketAddr,
    spool: Spool,
    shutdown: Shutdown,
    task: JoinHandle<std::io::Result<()>>,
}

impl SmtpSink {
    /// Starts a STARTTLS sink on a free port, spooling under `dir`, answering as `mode` says.
    pub fn start(domain: &str, dir: &Path, mode: &SinkMode) -> anyhow::Result<SmtpSink> {
        let tls = server_config(&TlsSettings {
            certificate_chain: cert("tls/gateway.pem"),
            private_key: cert("tls/gateway.key"),
            client_ca_bundle: Some(cert("ca/bundle.pem")),
            crl_files: vec![cert("crl/org.crl.pem"), cert("crl/root.crl.pem")],
            require_client_certificate: true,
        })?;
        let listener = Listener::bind(ListenerConfig {
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            mode: ListenerMode::StartTls,
            hostname: format!("mx.{domain}"),
            tls,
            require_client_certificate: true,
            limits: Limits::default(),
            whitelist: None,
        })?;
        let address = listener.local_addr()?;
        let spool = Spool::open(dir).context("sink spool")?;
        let shutdown = Shutdown::new();
        let task = match mode {
            SinkMode::Accept => {
                tokio::spawn(listener.serve(spool.clone(), Arc::new(AcceptAll), shutdown.clone()))
            }
            SinkMode::Refuse(reply) => tokio::spawn(listener.serve(
                spool.clone(),
                Arc::new(RefuseAll(reply.clone())),
                shutdown.clone(),
            )),
        };
        Ok(SmtpSink {
            domain: domain.to_owned(),
            address,
            spool,
            shutdown,
            task,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Every message received so far (bytes as received, `Received:` header of the sink
    /// included).
    pub async fn messages(&self) -> anyhow::Result<Vec<Vec<u8>>> {
        let recovery = self.spool.recover()?;
        let mut out = Vec::with_capacity(recovery.messages.len());
        for message in &recovery.messages {
            out.push(message.read_body().await?);
        }
        Ok(out)
    }

    /// Stops accepting and waits for open sessions.
    pub async fn stop(self) {
        self.shutdown.force();
        let _ = self.task.await;
    }
}
