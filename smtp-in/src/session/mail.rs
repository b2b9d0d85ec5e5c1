//! MAIL FROM (RFC 5321 §4.1.1.2): TLS requirement, size announcement (RFC 1870), liste blanche.

use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncWrite};
use tracing::info;

use super::{Flow, Session, Transaction};
use crate::command::MailFrom;
use crate::handler::MessageHandler;
use crate::reply::replies;
use crate::server::Phase;

impl<S, H> Session<S, H>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: MessageHandler,
{
    /// Opens a transaction, or refuses it.
    pub(super) fn mail(&mut self, mail: MailFrom) -> Flow {
        if self.helo.is_none() {
            return self.bad_command(replies::bad_sequence("Send EHLO/HELO first"));
        }
        if self.transaction.is_some() {
            return self.bad_command(replies::bad_sequence("Sender already specified"));
        }
        let limits = &self.context.config.limits;
        if self.carry.messages >= limits.max_messages_per_session {
            // 421 rather than 452: the client must reconnect, which spreads a big batch over
            // connections and gives other peers their turn.
            self.conn.queue(&replies::too_many_messages());
            return Flow::Close;
        }
        if self.shutdown.phase() >= Phase::Draining {
            self.conn.queue(&replies::shutting_down());
            return Flow::Close;
        }
        // Never accept mail in clear text: health data only travels inside TLS.
        if self.tls.is_none() {
            return self.refuse_mail(replies::tls_required());
        }
        if let Some(size) = mail.size
            && size > limits.max_message_size
        {
            return self.refuse_mail(replies::message_too_big(limits.max_message_size));
        }
        if let Some(refusal) = self.whitelist_refusal(mail.sender.as_deref()) {
            return self.refuse_mail(refusal);
        }
        self.mail_refused = false;
        self.transaction = Some(Transaction {
            sender: mail.sender,
            size: mail.size,
            body: mail.body,
            recipients: Vec::new(),
            started: SystemTime::now(),
        });
        self.reply(replies::sender_ok())
    }

    /// A refused MAIL is not a bad command; it makes the pipelined RCPT/DATA `503`s free.
    fn refuse_mail(&mut self, reply: crate::reply::Reply) -> Flow {
        self.mail_refused = true;
        self.reply(reply)
    }

    /// Checks the TLS peer against the liste blanche, when the listener has one.
    fn whitelist_refusal(&self, sender: Option<&str>) -> Option<crate::reply::Reply> {
        let whitelist = self.context.config.whitelist.as_ref()?;
        let subject = self
            .tls
            .as_ref()
            .and_then(|tls| tls.peer.as_ref())
            .map(|peer| peer.subject.as_str());
        let permitted = match (sender, subject) {
            (_, None) => false,
            (Some(sender), Some(subject)) => {
                let domain = sender.rsplit('@').next().unwrap_or_default();
                whitelist.permits(domain, subject)
            }
            // Null sender (DSNs, RFC 5321 §4.5.5) names no domain: accept it from any operator
            // listed for at least one domain, so that bounces from known MTAs get through while
            // unknown peers still cannot send.
            (None, Some(subject)) => whitelist.permits_any(subject),
        };
        if permitted {
            return None;
        }
        let domain = match sender {
            Some(sender) => sender.rsplit('@').next().unwrap_or_default(),
            None => "<> (null sender)",
        };
        info!(client = %self.client_addr, domain, peer = subject, "refused by liste blanche");
        Some(replies::not_whitelisted(domain, subject))
    }
}
