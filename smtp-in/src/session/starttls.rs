//! STARTTLS acceptance (RFC 3207): the reply and the hand-over of the clear-text stream.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Flow, Session};
use crate::handler::MessageHandler;
use crate::reply::{EnhancedCode, Reply, replies};
use crate::server::ListenerMode;

impl<S, H> Session<S, H>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: MessageHandler,
{
    /// Answers STARTTLS: `220` then the caller performs the handshake on the bare stream.
    pub(super) fn starttls(&mut self) -> Flow {
        if self.tls.is_some() {
            return self.bad_command(replies::bad_sequence("TLS already active"));
        }
        if self.context.config.mode != ListenerMode::StartTls {
            return self.bad_command(Reply::new(
                502,
                EnhancedCode::new(5, 5, 1),
                "STARTTLS not available",
            ));
        }
        self.conn.queue(&replies::ready_for_tls());
        Flow::StartTls
    }
}
