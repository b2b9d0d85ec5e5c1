//! What is found in the spool at start: messages accepted (250 sent) before a stop or crash.
//!
//! For now they are only reported; the pipeline that resumes them comes with the later issues.
//! Only the queue id, the size and the sender's domain are logged: the local part of an address
//! can identify a person, and nothing of the content is read.

use smtp_in::spool::{Spool, SpoolError};

/// Logs each message waiting in the spool and their count; returns the count.
pub fn report_pending(spool: &Spool) -> Result<usize, SpoolError> {
    let pending = spool.pending()?;
    for message in &pending {
        tracing::info!(
            queue_id = %message.queue_id,
            size = message.size,
            sender_domain = sender_domain(message.envelope.mail_from.as_deref()),
            recipients = message.envelope.recipients.len(),
            "message waiting in the spool"
        );
    }
    tracing::info!(count = pending.len(), "messages waiting in the spool");
    Ok(pending.len())
}

/// The domain of a reverse path; `<>` for the null sender (bounces).
fn sender_domain(mail_from: Option<&str>) -> &str {
    match mail_from {
        None => "<>",
        Some(address) => address
            .rsplit_once('@')
            .map(|(_, domain)| domain)
            .unwrap_or("(no domain)"),
    }
}

#[cfg(test)]
mod tests {
    use super::sender_domain;

    #[test]
    fn only_the_domain_is_kept() {
        assert_eq!(
            sender_domain(Some("secretariat@hopital-a.mssante.test")),
            "hopital-a.mssante.test"
        );
        assert_eq!(
            sender_domain(Some("\"a@b\"@labo-b.mssante.test")),
            "labo-b.mssante.test"
        );
        assert_eq!(sender_domain(None), "<>");
        assert_eq!(sender_domain(Some("postmaster")), "(no domain)");
    }
}
