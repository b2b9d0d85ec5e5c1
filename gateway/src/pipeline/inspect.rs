//! The end-of-DATA checks on one raw message: S/MIME, documents, patient identity, routes.
//!
//! Pure and blocking (OpenSSL, zip, XML): the handler runs it on the blocking pool. It decides
//! nothing about durability; it returns what the ledger and the jobs need, or the refusal.

use smtp_in::reply::{EnhancedCode, Reply};

use crate::documents::{self, DocumentError, DocumentPolicy, Extraction, SourceMessage};
use crate::ledger::{CertIdentity, Hash};
use crate::smime::{SmimeError, SmimeVerifier, TrustResult};

/// What a message that passed every check carries forward.
#[derive(Debug)]
pub struct Inspection {
    /// The Message-ID header, without angle brackets.
    pub message_id: Option<String>,
    /// SHA-256 of the raw message as spooled.
    pub message_sha256: Hash,
    /// Why the message is trusted.
    pub trust: TrustResult,
    /// Whether it was encrypted to the gateway.
    pub encrypted: bool,
    /// Whether it carries `Disposition-Notification-To` (so an MDN may be due at the end).
    pub asks_for_mdn: bool,
    /// The documents to deposit and those that are not.
    pub extraction: Extraction,
    /// The bytes relayed onward when they differ from the spooled original (an encrypted
    /// message is relayed decrypted: the recipient cannot open what was encrypted to us).
    pub relay_bytes: Option<Vec<u8>>,
}

impl Inspection {
    /// The patient's INS matricule (one patient per message, ECO.2.1.1).
    pub fn patient_ins(&self) -> Option<String> {
        self.extraction
            .requests
            .first()
            .map(|request| request.patient.matricule.clone())
    }

    /// The signer certificate, for the ledger.
    pub fn signer(&self) -> Option<CertIdentity> {
        match &self.trust {
            TrustResult::SignedAndTrusted { signer, .. } => Some(CertIdentity {
                subject: signer.subject.clone(),
                issuer: signer.issuer.clone(),
                serial: signer.serial.clone(),
            }),
            _ => None,
        }
    }

    /// True when no document masked from patients (`INVISIBLE_PATIENT`) travels in the message.
    pub fn may_reach_patients(&self) -> bool {
        !self.extraction.requests.iter().any(|request| {
            request
                .entry
                .confidentiality_codes
                .iter()
                .any(|code| code.code == "INVISIBLE_PATIENT")
        })
    }
}

/// A refused message: the reply and what the ledger records.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The SMTP reply.
    pub reply: Reply,
    /// A stable reason plus detail, for the ledger.
    pub reason: String,
    /// What was known before the refusal.
    pub message_id: Option<String>,
    /// SHA-256 of the raw message.
    pub message_sha256: Hash,
}

/// What the checks need besides the message.
pub struct InspectContext<'a> {
    /// The S/MIME verifier.
    pub verifier: &'a SmimeVerifier,
    /// Document limits and the INS environment.
    pub policy: &'a DocumentPolicy,
    /// The sender domain the transport authenticated (mutual TLS + liste blanche), if any.
    pub authenticated_domain: Option<&'a str>,
    /// The spool queue id.
    pub queue_id: &'a str,
    /// SHA-256 of the raw message, computed by the spool as it wrote it.
    pub message_sha256: Hash,
}

/// Runs every check on `raw` (the spooled message, `Received:` header included).
pub fn inspect(raw: &[u8], context: &InspectContext<'_>) -> Result<Inspection, Box<Refusal>> {
    let message_sha256 = context.message_sha256;
    let message_id = header_value(raw, "message-id").map(|id| strip_angles(&id));
    let refuse = |reply: Reply, reason: String| {
        Box::new(Refusal {
            reply,
            reason,
            message_id: message_id.clone(),
            message_sha256,
        })
    };
    let verified = context
        .verifier
        .verify(raw, context.authenticated_domain)
        .map_err(|error: SmimeError| {
            let reply = error.smtp_reply();
            refuse(reply, format!("smime: {}", error.ledger_reason()))
        })?;
    let source = SourceMessage {
        queue_id: context.queue_id.to_owned(),
        message_id: message_id.clone(),
    };
    let extraction = documents::extract(&verified.inner, source, context.policy).map_err(
        |error: DocumentError| {
            refuse(
                error.reply(),
                format!("documents: {}: {error}", error.ledger_reason()),
            )
        },
    )?;
    let relay_bytes = verified
        .encrypted
        .then(|| decrypted_for_relay(raw, &verified.inner));
    Ok(Inspection {
        asks_for_mdn: header_value(raw, "disposition-notification-to").is_some(),
        message_id,
        message_sha256,
        trust: verified.trust,
        encrypted: verified.encrypted,
        extraction,
        relay_bytes,
    })
}

/// `550 5.1.2` for a recipient domain the gateway has no route to.
pub fn unroutable(domain: &str) -> Reply {
    Reply::new(
        550,
        EnhancedCode::new(5, 1, 2),
        format!("No route to recipient domain {domain}"),
    )
}

/// The original's header block without its MIME headers, followed by the decrypted entity
/// (which brings its own `Content-*` headers).
fn decrypted_for_relay(raw: &[u8], inner: &[u8]) -> Vec<u8> {
    let header_end = find_header_end(raw).unwrap_or(raw.len());
    let mut out = Vec::with_capacity(header_end + inner.len() + 32);
    let mut skipping = false;
    for line in raw[..header_end].split_inclusive(|&b| b == b'\n') {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            let name = line
                .split(|&b| b == b':')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            skipping = name.starts_with(b"content-") || name == b"mime-version";
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    out.extend_from_slice(inner);
    out
}

/// Offset just after the last header line (before the blank line), if there is a body.
fn find_header_end(raw: &[u8]) -> Option<usize> {
    memchr::memmem::find(raw, b"\r\n\r\n")
        .map(|at| at + 2)
        .or_else(|| memchr::memmem::find(raw, b"\n\n").map(|at| at + 1))
}

/// The unfolded value of the first header `name` (lower case) of the top-level header block.
pub fn header_value(raw: &[u8], name: &str) -> Option<String> {
    let end = find_header_end(raw).unwrap_or(raw.len());
    let mut value: Option<String> = None;
    for line in raw[..end].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some(value) = value.as_mut() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(String::from_utf8_lossy(line).trim());
            }
            continue;
        }
        if value.is_some() {
            break;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':')
            && line[..colon].eq_ignore_ascii_case(name.as_bytes())
        {
            value = Some(
                String::from_utf8_lossy(&line[colon + 1..])
                    .trim()
                    .to_owned(),
            );
        }
    }
    value
}

fn strip_angles(id: &str) -> String {
    id.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_unfolded_and_case_insensitive() {
        let raw = b"Received: from x\r\n by y\r\nMessage-ID:\r\n <abc@d>\r\nSubject: s\r\n\r\nbody\r\nMessage-ID: <no>\r\n";
        assert_eq!(header_value(raw, "message-id").as_deref(), Some("<abc@d>"));
        assert_eq!(
            header_value(raw, "received").as_deref(),
            Some("from x by y")
        );
        assert_eq!(header_value(raw, "x-missing"), None);
        assert_eq!(strip_angles(" <abc@d> "), "abc@d");
    }

    #[test]
    fn a_decrypted_message_keeps_the_outer_headers_but_not_the_mime_ones() {
        let raw = b"From: a@b\r\nContent-Type: application/pkcs7-mime;\r\n smime-type=enveloped-data\r\nSubject: s\r\nMIME-Version: 1.0\r\n\r\nMIIB...\r\n";
        let inner = b"Content-Type: text/plain\r\n\r\nhello\r\n";
        let out = String::from_utf8(decrypted_for_relay(raw, inner)).unwrap();
        assert_eq!(
            out,
            "From: a@b\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        );
    }

    #[test]
    fn the_unroutable_reply_is_550_5_1_2() {
        assert!(
            unroutable("x.test")
                .to_wire()
                .starts_with("550 5.1.2 No route to recipient domain x.test")
        );
    }
}
