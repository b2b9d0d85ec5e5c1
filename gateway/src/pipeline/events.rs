//! The ledger entries the pipeline writes, built in one place so that the words an auditor
//! reads (and that recovery parses back: the relay domain) stay consistent.

use sha2::{Digest, Sha256};
use smtp_in::envelope::Envelope;

use super::inspect::{Inspection, Refusal};
use crate::documents::DepositRequest;
use crate::ledger::{CertIdentity, DocumentDigest, Entry, Event, EventKind, Outcome};
use crate::smime::TrustResult;

/// The reason prefix of relay entries; recovery reads the domain back from it.
const RELAY_PREFIX: &str = "relay domain=";
/// The reason prefix of notification entries.
const NOTICE_PREFIX: &str = "notification ";

fn base(kind: EventKind, queue_id: &str, message_id: Option<&str>) -> Event {
    let mut event = Event::new(kind);
    event.queue_id = Some(queue_id.to_owned());
    event.message_id = message_id.map(str::to_owned);
    event
}

fn tls_peer(envelope: &Envelope) -> Option<CertIdentity> {
    envelope.peer.as_ref().map(|peer| CertIdentity {
        subject: peer.subject.clone(),
        issuer: peer.issuer.clone(),
        serial: peer.serial.clone(),
    })
}

/// `received`: who sent what to whom.
fn received(
    queue_id: &str,
    envelope: &Envelope,
    message_id: Option<&str>,
    sha256: [u8; 32],
    size: u64,
) -> Event {
    let mut event = base(EventKind::Received, queue_id, message_id);
    event.message_sha256 = Some(sha256);
    event.tls_peer = tls_peer(envelope);
    event.reason = Some(format!(
        "from <{}> to {} ({} bytes, client {})",
        envelope.mail_from.as_deref().unwrap_or(""),
        envelope
            .recipients
            .iter()
            .map(|r| format!("<{r}>"))
            .collect::<Vec<_>>()
            .join(" "),
        size,
        envelope.client_addr.ip(),
    ));
    event
}

/// The entries made durable before `250`: received, verified, documents extracted.
pub fn accepted(
    queue_id: &str,
    envelope: &Envelope,
    size: u64,
    inspection: &Inspection,
) -> Vec<Event> {
    let message_id = inspection.message_id.as_deref();
    let mut events = vec![received(
        queue_id,
        envelope,
        message_id,
        inspection.message_sha256,
        size,
    )];

    let mut verified = base(EventKind::Verified, queue_id, message_id);
    verified.message_sha256 = Some(inspection.message_sha256);
    verified.tls_peer = tls_peer(envelope);
    verified.signer = inspection.signer();
    let encrypted = if inspection.encrypted {
        ", was encrypted to the gateway"
    } else {
        ""
    };
    verified.reason = Some(match &inspection.trust {
        TrustResult::SignedAndTrusted { signer, binding } => format!(
            "signed ({}) and trusted, chain {}, bound by {binding:?}{encrypted}",
            signer.digest_algorithm,
            signer.chain.join(" <- "),
        ),
        TrustResult::TransportOnly { domain } => {
            format!("not signed; transport-only policy of {domain}{encrypted}")
        }
    });
    events.push(verified);

    let mut extracted = base(EventKind::DocumentsExtracted, queue_id, message_id);
    extracted.message_sha256 = Some(inspection.message_sha256);
    extracted.documents = inspection
        .extraction
        .requests
        .iter()
        .map(document_digest)
        .collect();
    extracted.patient_ins = inspection.patient_ins();
    extracted.dmp_ids = inspection
        .extraction
        .requests
        .iter()
        .map(|request| request.entry.unique_id.clone())
        .collect();
    let mut reason = format!(
        "{} document(s) to deposit",
        inspection.extraction.requests.len()
    );
    for skipped in &inspection.extraction.not_deposited {
        reason.push_str(&format!(
            "; not deposited: {} ({})",
            skipped.name,
            skipped.reason.ledger_reason()
        ));
    }
    extracted.reason = Some(reason);
    events.push(extracted);
    events
}

/// The entries of a refused message: received, then rejected with the reply sent.
pub fn refused(queue_id: &str, envelope: &Envelope, size: u64, refusal: &Refusal) -> Vec<Event> {
    let message_id = refusal.message_id.as_deref();
    let mut rejected = base(EventKind::Rejected, queue_id, message_id);
    rejected.message_sha256 = Some(refusal.message_sha256);
    rejected.tls_peer = tls_peer(envelope);
    rejected.outcome = if refusal.reply.code >= 500 {
        Outcome::PermanentFailure
    } else {
        Outcome::TransientFailure
    };
    rejected.reason = Some(format!(
        "{} | {}",
        refusal.reply.to_wire().trim_end(),
        refusal.reason
    ));
    vec![
        received(queue_id, envelope, message_id, refusal.message_sha256, size),
        rejected,
    ]
}

/// `rejected` after the checks passed but the message could not be queued (storage failure).
pub fn not_queued(queue_id: &str, message_id: Option<&str>, reply: &str) -> Event {
    let mut event = base(EventKind::Rejected, queue_id, message_id);
    event.outcome = Outcome::TransientFailure;
    event.reason = Some(format!("{} | not queued", reply.trim_end()));
    event
}

/// `queued`: the jobs handed to the queues after `250`.
pub fn queued(
    queue_id: &str,
    message_id: Option<&str>,
    deposits: &[String],
    relays: &[String],
) -> Event {
    let mut event = base(EventKind::Queued, queue_id, message_id);
    event.dmp_ids = deposits.to_vec();
    event.reason = Some(format!(
        "{} deposit job(s); relay to {}",
        deposits.len(),
        if relays.is_empty() {
            "nobody".to_owned()
        } else {
            relays.join(", ")
        }
    ));
    event
}

/// One deposit attempt or final state, for a document of message `queue_id`.
pub fn deposit(
    kind: EventKind,
    queue_id: Option<&str>,
    message_id: Option<&str>,
    unique_id: &str,
    outcome: Outcome,
    reason: String,
) -> Event {
    let mut event = Event::new(kind);
    event.queue_id = queue_id.map(str::to_owned);
    event.message_id = message_id.map(str::to_owned);
    event.dmp_ids = vec![unique_id.to_owned()];
    event.outcome = outcome;
    event.reason = Some(reason);
    event
}

/// A relay entry for `domain` (relayed, or dead-lettered).
pub fn relay(
    kind: EventKind,
    queue_id: &str,
    domain: &str,
    outcome: Outcome,
    detail: &str,
) -> Event {
    let mut event = base(kind, queue_id, None);
    event.outcome = outcome;
    event.reason = Some(format!("{RELAY_PREFIX}{domain}; {detail}"));
    event
}

/// A notification entry (`what` is `mdn`, `dsn`, `error-mail`).
pub fn notice(kind: EventKind, queue_id: &str, what: &str, detail: &str) -> Event {
    let mut event = base(kind, queue_id, None);
    event.reason = Some(format!("{NOTICE_PREFIX}{what}; {detail}"));
    event
}

/// The relay domain an entry is about, if it is a relay entry.
pub fn relay_domain(entry: &Entry) -> Option<&str> {
    let reason = entry.event.reason.as_deref()?.strip_prefix(RELAY_PREFIX)?;
    Some(reason.split(';').next().unwrap_or(reason))
}

/// True when the entry records a queued notification.
pub fn is_notice(entry: &Entry) -> bool {
    entry
        .event
        .reason
        .as_deref()
        .is_some_and(|reason| reason.starts_with(NOTICE_PREFIX))
}

fn document_digest(request: &DepositRequest) -> DocumentDigest {
    DocumentDigest {
        name: request.entry.unique_id.clone(),
        sha256: Sha256::digest(&request.document).into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_domain_is_read_back_from_the_entry() {
        let event = relay(
            EventKind::Relayed,
            "q1",
            "cabinet-c.mssante.test",
            Outcome::Success,
            "smtp 127.0.0.1:2526: 250 ok",
        );
        let entry = Entry {
            seq: 0,
            time_ms: 0,
            prev_hash: [0; 32],
            event,
        };
        assert_eq!(relay_domain(&entry), Some("cabinet-c.mssante.test"));
        assert!(!is_notice(&entry));
    }
}
