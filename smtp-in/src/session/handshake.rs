//! Server side of the TLS handshake and what the session keeps from it.
//!
//! Client certificates were already verified by rustls (chain to the client CA bundle, CRLs,
//! validity) according to the listener's `rustls::ServerConfig`; here we only capture the
//! identity of the leaf for the whitelist check, the envelope and the `Received:` header.

use std::sync::Arc;

use rustls::ProtocolVersion;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{info, warn};

use super::{Carry, SessionContext};
use crate::handler::MessageHandler;
use crate::peer::PeerIdentity;

/// What the TLS layer established for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// Protocol version, e.g. `TLSv1.3`.
    pub version: String,
    /// Negotiated cipher suite, IANA name.
    pub cipher: String,
    /// Identity of the client certificate, when one was presented (and verified by rustls).
    pub peer: Option<PeerIdentity>,
}

/// Performs the handshake within the idle timeout; `None` when it failed (already logged).
pub(super) async fn accept<S, H>(
    stream: S,
    context: &Arc<SessionContext<H>>,
    carry: &Carry,
) -> Option<(TlsStream<S>, TlsInfo)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: MessageHandler,
{
    let deadline = carry
        .deadline
        .min(Instant::now() + context.config.limits.idle_timeout);
    let acceptor = TlsAcceptor::from(context.config.tls.clone());
    let stream = match timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            info!(%error, "TLS handshake failed");
            return None;
        }
        Err(_) => {
            info!("TLS handshake timed out");
            return None;
        }
    };
    let connection = stream.get_ref().1;
    let peer = match connection
        .peer_certificates()
        .and_then(|chain| chain.first())
    {
        Some(leaf) => match PeerIdentity::from_der(leaf.as_ref()) {
            Ok(identity) => Some(identity),
            Err(error) => {
                // rustls accepted the certificate but we cannot name it: fail closed rather
                // than let an unidentifiable peer through the whitelist and the audit trail.
                warn!(%error, "verified client certificate cannot be parsed; closing");
                return None;
            }
        },
        None => None,
    };
    if context.config.require_client_certificate && peer.is_none() {
        // rustls is configured to demand a certificate; this guards a misconfigured ServerConfig.
        warn!("no client certificate although one is required; closing");
        return None;
    }
    let version = match connection.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_owned(),
    };
    let cipher = connection
        .negotiated_cipher_suite()
        .map(|suite| {
            let id = suite.suite();
            id.as_str().map_or_else(|| format!("{id:?}"), str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned());
    info!(
        tls.version = %version,
        tls.cipher = %cipher,
        peer.subject = peer.as_ref().map(|p| p.subject.as_str()),
        peer.serial = peer.as_ref().map(|p| p.serial.as_str()),
        "TLS established"
    );
    Some((
        stream,
        TlsInfo {
            version,
            cipher,
            peer,
        },
    ))
}
