//! What one ledger entry records.
//!
//! An [`Event`] is what the pipeline reports; the store turns it into an [`Entry`] by giving it
//! its sequence number, its time and the hash of the entry before it (the chain link).

use std::time::{SystemTime, UNIX_EPOCH};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A message arrived and is in the spool.
    Received,
    /// A message was refused (the reason says why).
    Rejected,
    /// The S/MIME signature and the signer's chain were verified.
    Verified,
    /// Documents were extracted from the message.
    DocumentsExtracted,
    /// Deposit or relay jobs were queued.
    Queued,
    /// A DMP deposit was attempted.
    DepositAttempted,
    /// A document is in the DMP.
    Deposited,
    /// A job failed permanently or ran out of retries.
    DeadLettered,
    /// The message was relayed to the next hop.
    Relayed,
    /// A notification (DSN, report) was sent to the sender.
    NotificationSent,
    /// The configuration or the trust anchors changed.
    ConfigChanged,
}

impl EventKind {
    /// Every kind, in code order.
    pub const ALL: [EventKind; 11] = [
        EventKind::Received,
        EventKind::Rejected,
        EventKind::Verified,
        EventKind::DocumentsExtracted,
        EventKind::Queued,
        EventKind::DepositAttempted,
        EventKind::Deposited,
        EventKind::DeadLettered,
        EventKind::Relayed,
        EventKind::NotificationSent,
        EventKind::ConfigChanged,
    ];

    /// The one-byte code used in the canonical encoding (stable forever: never renumber).
    pub fn code(self) -> u8 {
        match self {
            EventKind::Received => 1,
            EventKind::Rejected => 2,
            EventKind::Verified => 3,
            EventKind::DocumentsExtracted => 4,
            EventKind::Queued => 5,
            EventKind::DepositAttempted => 6,
            EventKind::Deposited => 7,
            EventKind::DeadLettered => 8,
            EventKind::Relayed => 9,
            EventKind::NotificationSent => 10,
            EventKind::ConfigChanged => 11,
        }
    }

    /// The kind for a code, if any.
    pub fn from_code(code: u8) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|kind| kind.code() == code)
    }

    /// The snake_case name used in exports.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Received => "received",
            EventKind::Rejected => "rejected",
            EventKind::Verified => "verified",
            EventKind::DocumentsExtracted => "documents_extracted",
            EventKind::Queued => "queued",
            EventKind::DepositAttempted => "deposit_attempted",
            EventKind::Deposited => "deposited",
            EventKind::DeadLettered => "dead_lettered",
            EventKind::Relayed => "relayed",
            EventKind::NotificationSent => "notification_sent",
            EventKind::ConfigChanged => "config_changed",
        }
    }
}

/// How the step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Outcome {
    /// The step succeeded.
    #[default]
    Success,
    /// The step failed and will be retried.
    TransientFailure,
    /// The step failed for good.
    PermanentFailure,
}

impl Outcome {
    /// The one-byte code used in the canonical encoding.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::TransientFailure => 1,
            Outcome::PermanentFailure => 2,
        }
    }

    /// The outcome for a code, if any.
    pub fn from_code(code: u8) -> Option<Outcome> {
        match code {
            0 => Some(Outcome::Success),
            1 => Some(Outcome::TransientFailure),
            2 => Some(Outcome::PermanentFailure),
            _ => None,
        }
    }

    /// The snake_case name used in exports.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::TransientFailure => "transient_failure",
            Outcome::PermanentFailure => "permanent_failure",
        }
    }
}

/// A certificate named by subject, issuer and serial (a TLS peer or an S/MIME signer).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CertIdentity {
    /// Subject DN, RFC 4514.
    pub subject: String,
    /// Issuer DN, RFC 4514.
    pub issuer: String,
    /// Serial number, lowercase hex.
    pub serial: String,
}

/// One document carried by a message, by name and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocumentDigest {
    /// The document's name or unique id.
    pub name: String,
    /// SHA-256 of the document's bytes.
    pub sha256: Hash,
}

/// What the pipeline reports; the store adds sequence, time and chain link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The spool queue id.
    pub queue_id: Option<String>,
    /// The message's Message-ID header.
    pub message_id: Option<String>,
    /// SHA-256 of the raw message as received.
    pub message_sha256: Option<Hash>,
    /// The documents concerned.
    pub documents: Vec<DocumentDigest>,
    /// The TLS client certificate.
    pub tls_peer: Option<CertIdentity>,
    /// The S/MIME signer certificate.
    pub signer: Option<CertIdentity>,
    /// The patient's INS (stored for the compliance officer's search, never logged).
    pub patient_ins: Option<String>,
    /// How the step ended.
    pub outcome: Outcome,
    /// Why (a failure reason, an SMTP reply, a note).
    pub reason: Option<String>,
    /// DMP identifiers (submission set and document unique ids).
    pub dmp_ids: Vec<String>,
}

impl Event {
    /// An event of `kind` with every other field empty and a success outcome.
    pub fn new(kind: EventKind) -> Event {
        Event {
            kind,
            queue_id: None,
            message_id: None,
            message_sha256: None,
            documents: Vec::new(),
            tls_peer: None,
            signer: None,
            patient_ins: None,
            outcome: Outcome::Success,
            reason: None,
            dmp_ids: Vec::new(),
        }
    }
}

/// An event as recorded: its position, its time and the link to the entry before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the ledger, from 0, without gaps.
    pub seq: u64,
    /// Milliseconds since the Unix epoch, never decreasing along the ledger.
    pub time_ms: u64,
    /// Leaf hash of entry `seq - 1` (all zeros for entry 0): a hash chain beside the tree, so a
    /// removed or altered entry is named by the first link that no longer matches.
    pub prev_hash: Hash,
    /// What happened.
    pub event: Event,
}

/// Milliseconds since the Unix epoch now (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
