//! TCP listeners: accept loop, connection limits, graceful shutdown.

mod admission;
mod shutdown;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::handler::MessageHandler;
use crate::limits::Limits;
use crate::quickack::QuickAckStream;
use crate::reply::replies;
use crate::session::{SessionContext, serve_connection};
use crate::spool::Spool;
use crate::whitelist::Whitelist;
use admission::Admission;
pub use shutdown::{Phase, Shutdown, ShutdownWatch};

/// Sockets accepted beyond `max_connections` only to be told `421 4.7.0` and closed.
const REFUSAL_SLOTS: usize = 16;
/// First pause after a failing `accept` (e.g. EMFILE); doubled up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause between failing `accept` calls.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Time allowed to deliver a refusal to a connection over the limits.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);

/// How TLS starts on a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerMode {
    /// Clear-text greeting, STARTTLS required before MAIL (RFC 3207; port 25/587 style).
    StartTls,
    /// TLS from the first byte (RFC 8314; port 465 style).
    Implicit,
}

/// Configuration of one listening socket.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Address to bind.
    pub address: SocketAddr,
    /// STARTTLS or implicit TLS.
    pub mode: ListenerMode,
    /// Name announced in the greeting, EHLO and `Received:` headers.
    pub hostname: String,
    /// rustls configuration (certificate, client verification, versions), see `tls::server_config`.
    pub tls: Arc<rustls::ServerConfig>,
    /// Whether `tls` demands a client certificate (enforced by rustls; checked again here).
    pub require_client_certificate: bool,
    /// Limits of every session.
    pub limits: Limits,
    /// Liste blanche checked at MAIL FROM, when set.
    pub whitelist: Option<Arc<Whitelist>>,
}

/// A bound SMTP listener, ready to serve.
#[derive(Debug)]
pub struct Listener {
    socket: std::net::TcpListener,
    config: Arc<ListenerConfig>,
}

impl Listener {
    /// Binds the configured address (port 0 picks a free port, see [`Listener::local_addr`]).
    pub fn bind(config: ListenerConfig) -> io::Result<Listener> {
        let socket = std::net::TcpListener::bind(config.address)?;
        socket.set_nonblocking(true)?;
        Ok(Listener {
            socket,
            config: Arc::new(config),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Accepts and serves connections until `shutdown` begins, then waits for the sessions:
    /// they may finish their transaction within `limits.shutdown_grace`, after which the rest are
    /// told `421 4.3.2` and closed. Returns once every session has ended.
    pub async fn serve<H: MessageHandler>(
        self,
        spool: Spool,
        handler: Arc<H>,
        shutdown: Shutdown,
    ) -> io::Result<()> {
        let listener = TcpListener::from_std(self.socket)?;
        let limits = self.config.limits.clone();
        let local = listener.local_addr()?;
        info!(address = %local, mode = ?self.config.mode, "SMTP listener started");
        let context = Arc::new(SessionContext {
            config: self.config,
            spool,
            handler,
            shutdown: shutdown.clone(),
        });
        let sockets = Arc::new(Semaphore::new(limits.max_connections + REFUSAL_SLOTS));
        let admission = Arc::new(Admission::default());
        let mut watch = shutdown.watch();
        let mut sessions = JoinSet::new();
        let mut backoff = INITIAL_BACKOFF;
        loop {
            while sessions.try_join_next().is_some() {}
            // The permit is taken before accept: at most that many sockets are ever open.
            let permit = tokio::select! {
                permit = Arc::clone(&sockets).acquire_owned() => permit,
                () = watch.reached(Phase::Draining) => break,
            };
            let Ok(permit) = permit else {
                break; // The semaphore is never closed.
            };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = watch.reached(Phase::Draining) => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => {
                    backoff = INITIAL_BACKOFF;
                    accepted
                }
                Err(error) if is_per_connection(&error) => {
                    debug!(%error, "connection failed during accept");
                    continue;
                }
                Err(error) => {
                    // Typically EMFILE/ENFILE: retrying at once would spin.
                    warn!(%error, backoff_ms = backoff.as_millis(), "accept failed; backing off");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = watch.reached(Phase::Draining) => break,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            // Replies are batched and flushed explicitly, so Nagle would only add delay.
            if let Err(error) = stream.set_nodelay(true) {
                debug!(%error, "cannot set TCP_NODELAY");
            }
            let ticket = admission.admit(
                peer.ip(),
                limits.max_connections,
                limits.max_connections_per_ip,
            );
            let context = Arc::clone(&context);
            let span = info_span!("smtp", peer = %peer, queue_id = tracing::field::Empty);
            sessions.spawn(
                async move {
                    let _permit = permit;
                    match ticket {
                        Some(_ticket) => {
                            serve_connection(QuickAckStream::new(stream), peer, context).await;
                        }
                        None => refuse(stream).await,
                    }
                }
                .instrument(span),
            );
        }
        drop(listener);
        info!(address = %local, sessions = sessions.len(), "SMTP listener draining");
        let drained = async { while sessions.join_next().await.is_some() {} };
        tokio::pin!(drained);
        if tokio::time::timeout(limits.shutdown_grace, &mut drained)
            .await
            .is_err()
        {
            shutdown.force();
            drained.await;
        }
        info!(address = %local, "SMTP listener stopped");
        Ok(())
    }
}

/// Tells a connection over the limits to come back later.
async fn refuse(mut stream: TcpStream) {
    info!("too many connections; refused");
    let wire = replies::too_many_connections().to_wire();
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, async {
        stream.write_all(wire.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// Errors that concern only the connection being accepted, not the listener.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}
