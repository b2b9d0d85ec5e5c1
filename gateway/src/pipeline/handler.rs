//! The pipeline as the SMTP layer sees it: the verdict at end of DATA, and the jobs after `250`.

use smtp_in::handler::{MessageHandler, Verdict};
use smtp_in::reply::{Reply, replies};
use smtp_in::spool::{CommittedMessage, SpooledMessage};

use super::inspect::{self, InspectContext, Refusal};
use super::{Pipeline, domain_of, events, lock};

impl MessageHandler for Pipeline {
    async fn check(&self, message: &SpooledMessage) -> Verdict {
        let queue_id = message.queue_id.as_str().to_owned();
        let _admitted = match self.admission.enter().await {
            Ok(admitted) => admitted,
            Err(busy) => {
                tracing::info!(%queue_id, "checks saturated; asking the client to retry");
                self.count_refusal(&busy);
                return Verdict::Reject(busy);
            }
        };
        let raw = match message.read_body().await {
            Ok(raw) => raw,
            Err(error) => {
                tracing::warn!(%queue_id, %error, "cannot read the spooled message");
                return Verdict::Reject(replies::local_error());
            }
        };
        let outcome = self.inspect_blocking(raw, message).await;
        let outcome = outcome.and_then(|inspection| {
            match self.unroutable_domain(&message.envelope.recipients) {
                Some(domain) => Err(Box::new(Refusal {
                    reply: inspect::unroutable(&domain),
                    reason: format!("route: no route to {domain}"),
                    message_id: inspection.message_id.clone(),
                    message_sha256: inspection.message_sha256,
                })),
                None => Ok(inspection),
            }
        });
        match outcome {
            Ok(inspection) => {
                let entries =
                    events::accepted(&queue_id, &message.envelope, message.size, &inspection);
                if let Err(error) = self.ledger.append_all(entries).await {
                    // Without its ledger entries the message must not be acknowledged.
                    tracing::error!(%queue_id, %error, "ledger unavailable; refusing for now");
                    return Verdict::Reject(replies::local_error());
                }
                lock(&self.inspected).insert(queue_id, inspection);
                Verdict::Accept
            }
            Err(refusal) => {
                tracing::info!(%queue_id, reply = %refusal.reply, "message refused by the checks");
                self.count_refusal(&refusal.reply);
                let entries = events::refused(&queue_id, &message.envelope, message.size, &refusal);
                if let Err(error) = self.ledger.append_all(entries).await {
                    tracing::error!(%queue_id, %error, "ledger unavailable; rejection not recorded");
                }
                Verdict::Reject(refusal.reply)
            }
        }
    }

    async fn not_queued(&self, queue_id: &str, reply: &Reply) {
        let message_id = lock(&self.inspected)
            .remove(queue_id)
            .and_then(|inspection| inspection.message_id);
        let event = events::not_queued(queue_id, message_id.as_deref(), &reply.to_wire());
        if let Err(error) = self.ledger.append(event).await {
            tracing::error!(%queue_id, %error, "ledger unavailable; failed commit not recorded");
        }
    }

    async fn accepted(&self, message: &CommittedMessage) {
        let queue_id = message.queue_id.as_str();
        self.metrics.accepted(message.size);
        let Some(inspection) = lock(&self.inspected).remove(queue_id) else {
            // Cannot happen (check inserted it); recovery at the next start would resume it.
            tracing::error!(%queue_id, "accepted message without its inspection");
            return;
        };
        self.start_jobs(message.clone(), inspection, false).await;
    }
}

impl Pipeline {
    fn count_refusal(&self, reply: &Reply) {
        let enhanced = reply
            .enhanced
            .map(|code| code.to_string())
            .unwrap_or_default();
        self.metrics.rejected(reply.code, &enhanced);
    }

    /// Runs the checks on the blocking pool.
    pub(super) async fn inspect_blocking(
        &self,
        raw: Vec<u8>,
        message: &SpooledMessage,
    ) -> Result<inspect::Inspection, Box<Refusal>> {
        self.inspect_raw(
            raw,
            message.sha256,
            message.queue_id.as_str(),
            message.envelope.mail_from.as_deref(),
            message
                .envelope
                .peer
                .as_ref()
                .map(|peer| peer.subject.as_str()),
        )
        .await
    }

    /// Runs the checks on `raw` on the blocking pool (also used by recovery).
    pub(super) async fn inspect_raw(
        &self,
        raw: Vec<u8>,
        message_sha256: [u8; 32],
        queue_id: &str,
        mail_from: Option<&str>,
        peer_subject: Option<&str>,
    ) -> Result<inspect::Inspection, Box<Refusal>> {
        let authenticated = self.authenticated_domain(mail_from, peer_subject);
        let verifier = std::sync::Arc::clone(&self.verifier);
        let policy = self.policy.clone();
        let queue_id = queue_id.to_owned();
        let task = tokio::task::spawn_blocking(move || {
            let context = InspectContext {
                verifier: &verifier,
                policy: &policy,
                authenticated_domain: authenticated.as_deref(),
                queue_id: &queue_id,
                message_sha256,
            };
            inspect::inspect(&raw, &context)
        });
        match task.await {
            Ok(outcome) => outcome,
            Err(error) => {
                // A panic in a parser is a bug; the client may retry, nothing is acknowledged.
                tracing::error!(%error, "message checks failed abnormally");
                Err(Box::new(Refusal {
                    reply: replies::local_error(),
                    reason: format!("internal: checks failed: {error}"),
                    message_id: None,
                    message_sha256,
                }))
            }
        }
    }

    /// The sender domain the transport vouches for: the client certificate is listed for the
    /// MAIL FROM domain in the liste blanche.
    fn authenticated_domain(
        &self,
        mail_from: Option<&str>,
        peer_subject: Option<&str>,
    ) -> Option<String> {
        let whitelist = self.whitelist.as_ref()?;
        let domain = domain_of(mail_from?)?;
        whitelist.permits(&domain, peer_subject?).then_some(domain)
    }

    /// The first recipient domain without a route, if any.
    fn unroutable_domain(&self, recipients: &[String]) -> Option<String> {
        recipients
            .iter()
            .filter_map(|recipient| domain_of(recipient))
            .find(|domain| !self.relayer.has_route(domain))
    }
}
