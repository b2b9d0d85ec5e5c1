//! At start, before the listeners open: every message still in the spool was acknowledged
//! (`250`) and not finished. Each is checked again (the checks are deterministic on the same
//! bytes, apart from time and revocation) and its jobs resume from what the ledger says is
//! final; jobs still open are queued again (the queues and the DMP drop duplicates).

use std::sync::Arc;

use smtp_in::spool::SpoolError;

use super::Pipeline;
use crate::ledger::{Event, EventKind, Outcome};

impl Pipeline {
    /// Resumes every spooled message; returns how many were found.
    pub async fn resume_spooled(self: &Arc<Self>) -> Result<usize, SpoolError> {
        let pending = self.spool.pending()?;
        let count = pending.len();
        for message in pending {
            let queue_id = message.queue_id.as_str().to_owned();
            let raw = match message.read_body().await {
                Ok(raw) => raw,
                Err(error) => {
                    tracing::error!(%queue_id, %error, "spooled message unreadable; left in place");
                    continue;
                }
            };
            let envelope = &message.envelope;
            let inspected = self
                .inspect_raw(
                    raw,
                    message.sha256,
                    &queue_id,
                    envelope.mail_from.as_deref(),
                    envelope.peer.as_ref().map(|peer| peer.subject.as_str()),
                )
                .await;
            match inspected {
                Ok(inspection) => self.start_jobs(message, inspection, true).await,
                Err(refusal) => {
                    // It passed these checks when it was accepted; something changed since
                    // (a revocation, an expiry, a configuration). It stays in the spool for
                    // the operator, and the ledger says why.
                    tracing::error!(%queue_id, reply = %refusal.reply, "accepted message fails its checks at restart; left in the spool");
                    let mut event = Event::new(EventKind::DeadLettered);
                    event.queue_id = Some(queue_id.clone());
                    event.message_id = refusal.message_id.clone();
                    event.outcome = Outcome::TransientFailure;
                    event.reason = Some(format!(
                        "checks at restart failed, message kept in the spool: {}",
                        refusal.reason
                    ));
                    if let Err(error) = self.ledger.append(event).await {
                        tracing::error!(%queue_id, %error, "ledger unavailable");
                    }
                }
            }
        }
        tracing::info!(count, "spooled messages resumed");
        Ok(count)
    }
}
