//! When every job of a message is final: tell the sender what needs telling, then free the
//! spool file.
//!
//! - deposits final and `Disposition-Notification-To` asked for (and allowed by the loop rules):
//!   an MDN in the ANS format, `processed` or `processed/Error: <code>^<label>`;
//! - a deposit failed and no MDN was asked for: an error mail (same subject convention, the
//!   original attached), as the ANS guide says;
//! - a relay failed: a DSN (RFC 3464) for the recipients of that domain.
//!
//! Notifications go out with the null sender through the relay queue, as `Notification` jobs
//! (never a notification about a notification). They are queued before the spool file is
//! removed, and the ledger records them, so a crash in between does not send them twice.

use std::time::SystemTime;

use smtp_in::spool::CommittedMessage;

use super::metrics::Count;
use super::tracker::Finished;
use super::{Pipeline, domain_of, events};
use crate::ledger::{EventKind, Lookup};
use crate::notify::dsn::{self, DsnAction, DsnInput, DsnRecipient};
use crate::notify::error_mail::{self, ErrorMailInput};
use crate::notify::mdn::{self, MdnDecision, MdnError, MdnInput};
use crate::relay::{RelayContent, RelayJob, RelayKind};

/// The ANS code and label of a deposit failure (IG example: `902` "Identifiant de patient
/// inconnu"); other failures are reported under a generic integration code.
pub fn mdn_error_code(reason: &str) -> (&'static str, &'static str) {
    if reason.contains("XDSUnknownPatientId") || reason.contains("XDSPatientIdDoesNotMatch") {
        ("902", "Identifiant de patient inconnu")
    } else if reason.contains("XDSNonIdenticalHash")
        || reason.contains("XDSDuplicateUniqueIdInRegistry")
    {
        ("903", "Document deja integre avec un contenu different")
    } else if reason.contains("XDSRegistryMetadataError")
        || reason.contains("XDSRepositoryMetadataError")
    {
        ("904", "Metadonnees du document refusees")
    } else {
        ("900", "Erreur d'integration dans le DMP")
    }
}

impl Pipeline {
    /// Sends what the sender must be told, then removes the spool file.
    pub(super) async fn finish(&self, finished: Finished) {
        let message = &finished.message;
        let queue_id = message.queue_id.as_str().to_owned();
        // Only a message resumed after a restart can have had its notifications queued already.
        let already = if finished.resumed {
            self.notices_already_queued(&queue_id).await
        } else {
            Ok(false)
        };
        match already {
            Ok(true) => {}
            Ok(false) => {
                if let Err(error) = self.queue_notices(&finished).await {
                    tracing::error!(%queue_id, %error, "notifications not queued; message kept for the next start");
                    return;
                }
            }
            Err(error) => {
                tracing::error!(%queue_id, %error, "ledger unreadable; message kept for the next start");
                return;
            }
        }
        match self.spool.remove(message).await {
            Ok(()) => {
                self.metrics.count(Count::Finished);
                tracing::info!(
                    %queue_id,
                    deposited = finished.deposited.len(),
                    deposit_failures = finished.deposit_failures.len(),
                    relay_failures = finished.relay_failures.len(),
                    "message finished"
                )
            }
            Err(error) => {
                tracing::error!(%queue_id, %error, "cannot remove the finished message from the spool")
            }
        }
    }

    async fn notices_already_queued(
        &self,
        queue_id: &str,
    ) -> Result<bool, crate::ledger::LedgerError> {
        let entries = self
            .ledger
            .find(&Lookup::QueueId(queue_id.to_owned()))
            .await?;
        Ok(entries
            .iter()
            .any(|entry| entry.event.kind == EventKind::Queued && events::is_notice(entry)))
    }

    async fn queue_notices(&self, finished: &Finished) -> Result<(), String> {
        let message = &finished.message;
        let deposits_ended =
            !finished.deposited.is_empty() || !finished.deposit_failures.is_empty();
        let relay_failed = !finished.relay_failures.is_empty();
        let deposit_failed = !finished.deposit_failures.is_empty();
        // Most messages need no notice: do not read the original back for them.
        if !(relay_failed || deposit_failed || deposits_ended && finished.asks_for_mdn) {
            return Ok(());
        }
        let original = message.read_body().await.map_err(|e| e.to_string())?;
        let now = SystemTime::now();
        let mut notices: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
        if deposits_ended {
            let error = finished
                .deposit_failures
                .first()
                .map(|(_, reason)| mdn_error_code(reason));
            let recipient = message
                .envelope
                .recipients
                .first()
                .cloned()
                .unwrap_or_default();
            match mdn::wanted(&original, message.envelope.mail_from.as_deref()) {
                MdnDecision::Send { to } => {
                    let bytes = mdn::build(&MdnInput {
                        hostname: &self.hostname,
                        reporting_domain: &self.hostname,
                        original: &original,
                        recipient: &recipient,
                        error: error.map(|(code, label)| MdnError { code, label }),
                        date: now,
                    });
                    notices.push(("mdn", to, bytes));
                }
                skip => {
                    if let (Some((code, label)), Some(sender)) =
                        (error, message.envelope.mail_from.clone())
                    {
                        tracing::debug!(queue_id = %message.queue_id.as_str(), ?skip, "no MDN; sending an error mail");
                        let bytes = error_mail::build(&ErrorMailInput {
                            hostname: &self.hostname,
                            to: &sender,
                            original: &original,
                            code,
                            label,
                            date: now,
                        });
                        notices.push(("error-mail", sender, bytes));
                    }
                }
            }
        }
        if relay_failed && let Some(sender) = message.envelope.mail_from.clone() {
            let recipients: Vec<DsnRecipient> = finished
                .relay_failures
                .iter()
                .flat_map(|(domain, reason)| {
                    message
                        .envelope
                        .recipients
                        .iter()
                        .filter(move |r| domain_of(r).as_deref() == Some(domain.as_str()))
                        .map(move |address| DsnRecipient {
                            address: address.clone(),
                            action: DsnAction::Failed,
                            status: dsn::status_of(reason, true),
                            remote_mta: None,
                            diagnostic: reason.clone(),
                            last_attempt: now,
                        })
                })
                .collect();
            let bytes = dsn::build(&DsnInput {
                hostname: &self.hostname,
                sender: &sender,
                queue_id: message.queue_id.as_str(),
                original: &original,
                arrival_date: message.envelope.received_at,
                date: now,
                recipients: &recipients,
            });
            notices.push(("dsn", sender, bytes));
        }
        for (what, to, bytes) in notices {
            self.queue_notice(message, what, &to, bytes).await?;
        }
        Ok(())
    }

    async fn queue_notice(
        &self,
        message: &CommittedMessage,
        what: &str,
        to: &str,
        bytes: Vec<u8>,
    ) -> Result<(), String> {
        let queue_id = message.queue_id.as_str();
        let Some(domain) = domain_of(to).filter(|d| self.relayer.has_route(d)) else {
            let event = events::notice(
                EventKind::Queued,
                queue_id,
                what,
                &format!("not sent: no route to <{to}>"),
            );
            self.ledger.append(event).await.map_err(|e| e.to_string())?;
            return Ok(());
        };
        let job = RelayJob {
            queue_id: queue_id.to_owned(),
            domain,
            // RFC 3464 §2 / RFC 8098 §3: reports are sent with the null reverse path.
            mail_from: None,
            recipients: vec![to.to_owned()],
            content: RelayContent::Inline(bytes),
            kind: RelayKind::Notification,
        };
        let new_job = super::jobs::relay_new_job(&job).map_err(|e| e.to_string())?;
        use dmp_connector::queue::Queue as _;
        self.relays
            .enqueue(new_job)
            .await
            .map_err(|e| e.to_string())?;
        let event = events::notice(EventKind::Queued, queue_id, what, &format!("to <{to}>"));
        self.ledger.append(event).await.map_err(|e| e.to_string())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_patient_maps_to_the_ans_code_902() {
        assert_eq!(
            mdn_error_code("registry refused: XDSUnknownPatientId (INS unknown)").0,
            "902"
        );
        assert_eq!(mdn_error_code("HTTP 500").0, "900");
    }
}
