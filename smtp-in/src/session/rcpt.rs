//! RCPT TO (RFC 5321 §4.1.1.3): collects recipients up to the limit.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Flow, Session};
use crate::handler::MessageHandler;
use crate::reply::replies;

impl<S, H> Session<S, H>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: MessageHandler,
{
    /// Adds a recipient to the open transaction.
    pub(super) fn rcpt(&mut self, recipient: String) -> Flow {
        let max = self.context.config.limits.max_recipients;
        let Some(transaction) = self.transaction.as_mut() else {
            return self.out_of_sequence("Need MAIL before RCPT");
        };
        if transaction
            .recipients
            .iter()
            .any(|known| known.eq_ignore_ascii_case(&recipient))
        {
            // Listed once, delivered once.
            return self.reply(replies::recipient_ok());
        }
        if transaction.recipients.len() >= max {
            // 452 (not 552): RFC 5321 §4.5.3.1.10, the client sends the rest later.
            return self.reply(replies::too_many_recipients());
        }
        transaction.recipients.push(recipient);
        self.reply(replies::recipient_ok())
    }
}
