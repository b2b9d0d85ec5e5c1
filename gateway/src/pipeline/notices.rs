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

use super::tracker::Finished;
use super::{Pipeline, domain_of, events};
use crate::ledger::{EventKind, Lookup};
use crate::notify::dsn::{self, DsnAction, DsnInput, DsnRecipient};
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
        match self.notices_already_queued(&queue_id).await {
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
            Ok(()) => tracing::info!(
                %queue_id,
                deposited = finished.deposited.len(),
                deposit_failures = finished.deposit_failures.len(),
                relay_failures = finished.relay_failures.len(),
                "message finished"
            ),
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
        if !deposits_ended && !relay_failed {
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
                        let bytes =
                            error_mail(&self.hostname, &sender, &original, code, label, now);
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

/// The error mail sent when a deposit failed and no MDN was asked for.
fn error_mail(
    hostname: &str,
    to: &str,
    original: &[u8],
    code: &str,
    label: &str,
    date: SystemTime,
) -> Vec<u8> {
    let subject = super::inspect::header_value(original, "subject").unwrap_or_default();
    let original_id = super::inspect::header_value(original, "message-id").unwrap_or_default();
    let boundary = format!("=_gateway_error_{}", hex::encode(sha2_prefix(original)));
    let mut out = String::new();
    out.push_str(&format!("From: MAILER-DAEMON@{hostname}\r\n"));
    out.push_str(&format!("To: <{to}>\r\n"));
    out.push_str(&format!("Date: {}\r\n", crate::notify::rfc5322_date(date)));
    out.push_str(&format!(
        "Message-ID: <{}.error@{hostname}>\r\n",
        hex::encode(sha2_prefix(original))
    ));
    out.push_str(&format!(
        "Subject: {}\r\n",
        encode_subject(&format!("[KO Intégration système !][{code}] {subject}"))
    ));
    if !original_id.is_empty() {
        out.push_str(&format!(
            "In-Reply-To: {original_id}\r\nReferences: {original_id}\r\n"
        ));
    }
    out.push_str("Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n");
    out.push_str(&format!(
        "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
    ));
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ));
    out.push_str(&format!(
        "Le document n'a pas pu etre integre dans le DMP.\r\nErreur {code} : {label}\r\n\r\nThe document could not be deposited in the DMP.\r\nError {code}: {label}\r\n\r\n"
    ));
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(original);
    if !original.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    bytes
}

fn sha2_prefix(bytes: &[u8]) -> [u8; 8] {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(bytes);
    let mut prefix = [0; 8];
    prefix.copy_from_slice(&digest[..8]);
    prefix
}

/// RFC 2047 B-encoding when the subject is not ASCII.
fn encode_subject(subject: &str) -> String {
    if subject.is_ascii() {
        return subject.to_owned();
    }
    use base64::Engine as _;
    format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(subject.as_bytes())
    )
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

    #[test]
    fn the_error_mail_carries_the_ko_subject_and_the_original() {
        let original = b"Subject: CR bio\r\nMessage-ID: <m1@h>\r\n\r\nbody\r\n";
        let mail = error_mail(
            "gw.test",
            "s@h.test",
            original,
            "902",
            "Identifiant de patient inconnu",
            SystemTime::UNIX_EPOCH,
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(&mail)
            .expect("parses");
        assert_eq!(
            parsed.subject(),
            Some("[KO Intégration système !][902] CR bio")
        );
        assert_eq!(parsed.attachment_count(), 1);
        let text = String::from_utf8_lossy(&mail);
        assert!(text.contains("Auto-Submitted: auto-replied"));
        assert!(text.contains("In-Reply-To: <m1@h>"));
    }
}
