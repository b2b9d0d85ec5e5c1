//! EHLO and HELO (RFC 5321 §4.1.1.1): identify the client, reset the transaction, announce the
//! extensions.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Flow, Session};
use crate::handler::MessageHandler;
use crate::reply::Reply;
use crate::server::ListenerMode;

impl<S, H> Session<S, H>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: MessageHandler,
{
    /// Answers EHLO (`extended`) or HELO.
    pub(super) fn ehlo(&mut self, name: String, extended: bool) -> Flow {
        self.reset();
        self.helo = Some(name);
        self.esmtp = extended;
        let config = &self.context.config;
        if !extended {
            return self.reply(Reply::bare(250, config.hostname.clone()));
        }
        let mut lines = vec![
            format!("{} greets {}", config.hostname, self.client_addr.ip()),
            format!("SIZE {}", config.limits.max_message_size),
            "8BITMIME".to_owned(),
            "PIPELINING".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
        ];
        // STARTTLS only where it can be used: never inside TLS, never on implicit-TLS listeners.
        if self.tls.is_none() && config.mode == ListenerMode::StartTls {
            lines.push("STARTTLS".to_owned());
        }
        self.reply(Reply::bare(250, lines.join("\n")))
    }
}
