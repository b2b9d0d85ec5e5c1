//! DATA (RFC 5321 §4.1.1.4): stream the message to the spool, ask the handler, commit, answer.
//!
//! Nothing is acknowledged before it is durable: `250` is sent only after `Spool::commit`.
//! A message with a problem (too big, bare CR/LF, over-long line) is drained to `CRLF.CRLF` so the
//! client stays in sync, then refused; its spool file is deleted when the writer is dropped.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tracing::{info, warn};

use super::received::{self, Trace};
use super::{Flow, Session, Transaction};
use crate::data::{DataProblem, DataReceiver};
use crate::envelope::Envelope;
use crate::handler::{MessageHandler, Verdict};
use crate::reply::{Reply, replies};
use crate::spool::{SpoolError, SpoolWriter};

/// Body bytes gathered before each write to the spool.
const CHUNK: usize = 64 * 1024;

impl<S, H> Session<S, H>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
    H: MessageHandler,
{
    /// Receives one message.
    pub(super) async fn data(&mut self) -> Flow {
        let Some(transaction) = self.transaction.as_ref() else {
            return self.out_of_sequence("Need MAIL before DATA");
        };
        if transaction.recipients.is_empty() {
            // Every RCPT was refused (or none was sent): RFC 2920 §3.1 wants 554 here.
            return self.reply(replies::no_valid_recipients());
        }
        let Some(transaction) = self.transaction.take() else {
            return Flow::Continue;
        };
        self.carry.messages += 1;
        let envelope = self.envelope(transaction);
        let mut writer = match self.context.spool.create(&envelope).await {
            Ok(writer) => writer,
            Err(error) => return self.reply(spool_failure(&error)),
        };
        let queue_id = writer.queue_id().to_string();
        tracing::Span::current().record("queue_id", queue_id.as_str());
        self.conn.queue(&replies::start_data());

        let header = received::header(&Trace {
            helo: &envelope.helo,
            client_ip: envelope.client_addr.ip(),
            hostname: &self.context.config.hostname,
            esmtp: self.esmtp,
            tls: self.tls.as_ref(),
            queue_id: &queue_id,
            recipients: &envelope.recipients,
            time: envelope.received_at,
        });
        let mut write_error = writer.write(header.as_bytes()).await.err();

        let limits = &self.context.config.limits;
        let mut receiver = DataReceiver::new(limits.max_message_size, limits.max_text_line);
        let mut chunk = Vec::with_capacity(CHUNK + 1024);
        loop {
            let progress = receiver.feed(self.conn.buffered(), &mut chunk);
            self.conn.consume(progress.consumed);
            if (chunk.len() >= CHUNK || progress.finished) && write_error.is_none() {
                write_error = writer.write(&chunk).await.err();
            }
            if chunk.len() >= CHUNK || progress.finished {
                chunk.clear();
            }
            if progress.finished {
                break;
            }
            if let Err(interrupt) = self.read_more_data().await {
                // The writer is dropped here, which deletes the partial file.
                info!(%queue_id, ?interrupt, "connection lost during DATA");
                self.interrupted(interrupt).await;
                return Flow::Close;
            }
        }
        match self
            .conclude(writer, receiver, write_error, &queue_id)
            .await
        {
            Some(refusal) => self.reply(refusal),
            None => Flow::Continue,
        }
    }

    /// Builds the envelope of the transaction.
    fn envelope(&self, transaction: Transaction) -> Envelope {
        Envelope {
            helo: self.helo.clone().unwrap_or_default(),
            client_addr: self.client_addr,
            peer: self.tls.as_ref().and_then(|tls| tls.peer.clone()),
            mail_from: transaction.sender,
            recipients: transaction.recipients,
            body: transaction.body,
            declared_size: transaction.size,
            received_at: transaction.started,
        }
    }

    /// Reads more of the message. DATA is inside a transaction: a shutdown only interrupts it
    /// when the grace period is over.
    async fn read_more_data(&mut self) -> Result<(), super::io::Interrupt> {
        let idle = self.context.config.limits.idle_timeout;
        self.conn
            .read_more(
                idle,
                self.carry.deadline,
                &mut self.shutdown,
                crate::server::Phase::Forced,
            )
            .await
    }

    /// Decides the fate of the received message; returns the refusal to send, or `None` once
    /// the message was queued and `250` sent.
    async fn conclude(
        &mut self,
        writer: SpoolWriter,
        receiver: DataReceiver,
        write_error: Option<SpoolError>,
        queue_id: &str,
    ) -> Option<Reply> {
        let limits = &self.context.config.limits;
        if let Some(problem) = receiver.problem() {
            info!(%queue_id, ?problem, size = receiver.size(), "message refused");
            return Some(match problem {
                DataProblem::BareLineEnding => replies::bare_line_ending(),
                DataProblem::TooBig => replies::message_too_big(limits.max_message_size),
                DataProblem::LineTooLong => replies::text_line_too_long(limits.max_text_line),
            });
        }
        if let Some(error) = write_error {
            warn!(%queue_id, %error, "spool write failed");
            return Some(spool_failure(&error));
        }
        let spooled = match writer.finish().await {
            Ok(spooled) => spooled,
            Err(error) => {
                warn!(%queue_id, %error, "spool finish failed");
                return Some(spool_failure(&error));
            }
        };
        match self.context.handler.check(&spooled).await {
            Verdict::Accept => {}
            Verdict::Reject(reply) => {
                info!(%queue_id, %reply, "message rejected by handler");
                self.context.spool.discard(spooled).await;
                return Some(reply);
            }
        }
        let committed = match self.context.spool.commit(spooled).await {
            Ok(committed) => committed,
            Err(error) => {
                warn!(%queue_id, %error, "spool commit failed");
                let reply = spool_failure(&error);
                self.context.handler.not_queued(queue_id, &reply).await;
                return Some(reply);
            }
        };
        info!(%queue_id, size = committed.size, "message queued");
        // Answer first: the message is durable, the client need not wait for `accepted`.
        self.conn.queue(&replies::queued(queue_id));
        let deadline = Instant::now() + limits.idle_timeout;
        let _ = self.conn.flush(deadline.min(self.carry.deadline)).await;
        self.context.handler.accepted(&committed).await;
        None
    }
}

/// `452 4.3.1` when the disk is full, `451 4.3.0` for any other storage failure.
fn spool_failure(error: &SpoolError) -> Reply {
    if error.is_disk_full() {
        replies::insufficient_storage()
    } else {
        replies::local_error()
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn disk_full_is_452_4_3_1_other_errors_451_4_3_0() {
        let full = SpoolError::io("write", "/spool/tmp/x", io::Error::from_raw_os_error(28));
        assert_eq!(
            spool_failure(&full).to_wire(),
            replies::insufficient_storage().to_wire()
        );
        assert!(spool_failure(&full).to_wire().starts_with("452 4.3.1 "));
        let other = SpoolError::io("write", "/spool/tmp/x", io::Error::other("boom"));
        assert!(spool_failure(&other).to_wire().starts_with("451 4.3.0 "));
    }
}
