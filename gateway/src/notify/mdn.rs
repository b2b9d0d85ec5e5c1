//! Message disposition notifications (RFC 8098) in the ANS format for documents sent to a
//! patient record (IG "Transmission LPS → PFI", `struct-msg-mdn`): three parts in order
//! (`text/plain`, `message/disposition-notification`, `message/rfc822` with the original and so
//! its attachments), `processed` on success, `processed/Error: <code>^<label>` on failure, and
//! the subject `[KO Intégration système !][<code>] <original subject>` on failure.
//!
//! [`wanted`] applies the loop-prevention rules before any MDN is sent automatically.

use std::time::SystemTime;

use mail_parser::{HeaderName, HeaderValue, MessageParser};

use super::{
    boundary, close_with_original, encode_words, header, one_line, rfc5322_date, text_part,
};

/// What an MDN reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdnInput<'a> {
    /// The gateway's host name (`Reporting-UA`).
    pub hostname: &'a str,
    /// The domain in the MDN's Message-ID.
    pub reporting_domain: &'a str,
    /// The original message, complete (returned as `message/rfc822`).
    pub original: &'a [u8],
    /// The mailbox that processed the message (`From` and `Final-Recipient`).
    pub recipient: &'a str,
    /// `None` for success, else the integration error.
    pub error: Option<MdnError<'a>>,
    /// When this MDN is written.
    pub date: SystemTime,
}

/// An integration error: ANS code and label (e.g. `902`, "Identifiant de patient inconnu").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MdnError<'a> {
    /// The code.
    pub code: &'a str,
    /// The label.
    pub label: &'a str,
}

/// Whether an MDN may be sent automatically.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MdnDecision {
    /// Send it to this address (the `Disposition-Notification-To`).
    Send {
        /// The MDN's recipient.
        to: String,
    },
    /// Do not send one.
    Skip(MdnSkip),
}

/// Why no MDN is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MdnSkip {
    /// The original has no `Disposition-Notification-To`.
    NotRequested,
    /// The original came with `MAIL FROM:<>`.
    NullSender,
    /// `Disposition-Notification-To` differs from the envelope sender or `Return-Path`, or names
    /// several addresses (RFC 8098 §2.1: needs a human's confirmation).
    SenderMismatch {
        /// The requested address(es), as written.
        requested: String,
    },
    /// The original is itself a report (MDN or DSN: `multipart/report`).
    IsReport,
    /// The original is automatic (`Auto-Submitted` other than `no`).
    AutoSubmitted {
        /// The header's value.
        value: String,
    },
    /// The headers cannot be parsed.
    Unreadable,
}

/// Decides whether to send an MDN about the message whose headers are `original_headers`
/// (the whole message is fine too), received with `envelope_mail_from` (`None` = `<>`).
pub fn wanted(original_headers: &[u8], envelope_mail_from: Option<&str>) -> MdnDecision {
    let sender = match envelope_mail_from {
        None | Some("") => return MdnDecision::Skip(MdnSkip::NullSender),
        Some(sender) => sender,
    };
    let Some(message) = MessageParser::new().parse_headers(original_headers) else {
        return MdnDecision::Skip(MdnSkip::Unreadable);
    };
    let Some(raw) = message.header_raw(HeaderName::DispositionNotificationTo) else {
        return MdnDecision::Skip(MdnSkip::NotRequested);
    };
    let raw = raw.trim().to_owned();
    if let Some(content_type) = message
        .header(HeaderName::ContentType)
        .and_then(HeaderValue::as_content_type)
        && content_type.ctype().eq_ignore_ascii_case("multipart")
        && content_type
            .subtype()
            .is_some_and(|subtype| subtype.eq_ignore_ascii_case("report"))
    {
        return MdnDecision::Skip(MdnSkip::IsReport);
    }
    if let Some(value) = message.header_raw(HeaderName::AutoSubmitted) {
        let value = value.trim();
        let keyword = value.split(';').next().unwrap_or_default().trim();
        if !keyword.eq_ignore_ascii_case("no") {
            return MdnDecision::Skip(MdnSkip::AutoSubmitted {
                value: value.to_owned(),
            });
        }
    }
    let mismatch = || {
        MdnDecision::Skip(MdnSkip::SenderMismatch {
            requested: raw.clone(),
        })
    };
    let addresses = addresses(&raw);
    let [to] = addresses.as_slice() else {
        return mismatch();
    };
    if !same_address(to, sender) {
        return mismatch();
    }
    if let Some(return_path) = message.return_address()
        && !same_address(to, return_path)
    {
        return mismatch();
    }
    MdnDecision::Send { to: to.clone() }
}

/// The addresses of an address-list header value (mail-parser reads
/// `Disposition-Notification-To` as unstructured text, so it is parsed as a `To` field).
fn addresses(raw: &str) -> Vec<String> {
    let field = format!("To: {}\r\n\r\n", one_line(raw));
    MessageParser::new()
        .parse_headers(field.as_bytes())
        .and_then(|message| {
            message.to().map(|to| {
                to.iter()
                    .filter_map(|addr| addr.address())
                    .map(str::to_owned)
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn same_address(a: &str, b: &str) -> bool {
    let trim = |s: &str| {
        s.trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned()
    };
    trim(a).eq_ignore_ascii_case(&trim(b))
}

/// The complete MDN (headers and body, CRLF line ends). Its recipient is the original's
/// `Disposition-Notification-To` (empty when absent: call [`wanted`] first).
pub fn build(input: &MdnInput<'_>) -> Vec<u8> {
    let parsed = MessageParser::new().parse_headers(input.original);
    let field = |name: HeaderName<'static>| {
        parsed
            .as_ref()
            .and_then(|message| message.header_raw(name))
            .map(|value| one_line(value).trim().to_owned())
    };
    let notify_to = field(HeaderName::DispositionNotificationTo)
        .and_then(|raw| addresses(&raw).into_iter().next())
        .unwrap_or_default();
    let subject = parsed
        .as_ref()
        .and_then(|message| message.subject())
        .map(|subject| one_line(subject).trim().to_owned())
        .unwrap_or_default();
    let message_id = parsed
        .as_ref()
        .and_then(|message| message.message_id())
        .map(|id| format!("<{}>", one_line(id).trim()));
    let original_recipient = field(HeaderName::Other("Original-Recipient".into()))
        .unwrap_or_else(|| format!("rfc822; {}", input.recipient));
    let references = field(HeaderName::References);

    let subject = match input.error {
        None => subject,
        Some(error) => format!(
            "[KO Intégration système !][{}] {subject}",
            one_line(error.code)
        ),
    };
    let unix = input
        .date
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or(0);
    let boundary = boundary(&format!("mdn{unix}"), input.original);

    let mut out = String::new();
    header(&mut out, "From", &format!("<{}>", input.recipient));
    header(&mut out, "To", &format!("<{notify_to}>"));
    header(&mut out, "Subject", &encode_words(&subject));
    header(&mut out, "Date", &rfc5322_date(input.date));
    header(
        &mut out,
        "Message-ID",
        &format!("<{unix}.mdn@{}>", input.reporting_domain),
    );
    if let Some(id) = &message_id {
        header(&mut out, "In-Reply-To", id);
        let references = match references {
            Some(previous) if !previous.is_empty() => format!("{previous} {id}"),
            _ => id.clone(),
        };
        header(&mut out, "References", &references);
    }
    header(&mut out, "Auto-Submitted", "auto-replied");
    header(&mut out, "MIME-Version", "1.0");
    header(
        &mut out,
        "Content-Type",
        &format!("multipart/report; report-type=disposition-notification; boundary=\"{boundary}\""),
    );
    out.push_str("\r\nThis is a MIME-encapsulated message disposition notification.\r\n");

    out.push_str(&format!("\r\n--{boundary}\r\n"));
    let text = match input.error {
        None => format!(
            "Le message envoyé à {} a été traité (intégré) par le système destinataire.\n",
            input.recipient
        ),
        Some(error) => format!(
            "Le message envoyé à {} n'a pas pu être intégré par le système destinataire.\n\nErreur {} : {}\n",
            input.recipient,
            one_line(error.code),
            one_line(error.label)
        ),
    };
    text_part(&mut out, &text);

    out.push_str(&format!("\r\n--{boundary}\r\n"));
    out.push_str("Content-Type: message/disposition-notification\r\n\r\n");
    header(
        &mut out,
        "Reporting-UA",
        &format!("{}; MSSante gateway", input.hostname),
    );
    header(&mut out, "Original-Recipient", &original_recipient);
    header(
        &mut out,
        "Final-Recipient",
        &format!("rfc822; {}", input.recipient),
    );
    if let Some(id) = &message_id {
        header(&mut out, "Original-Message-ID", id);
    }
    let disposition = match input.error {
        None => "automatic-action/MDN-sent-automatically; processed".to_owned(),
        Some(error) => format!(
            "automatic-action/MDN-sent-automatically; processed/Error: {}^{}",
            one_line(error.code),
            one_line(error.label)
        ),
    };
    header(&mut out, "Disposition", &disposition);

    close_with_original(
        out,
        &boundary,
        "Content-Type: message/rfc822",
        input.original,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENDER: &str = "secretariat@hopital-a.mssante.test";

    fn headers(extra: &str) -> Vec<u8> {
        format!(
            "From: <{SENDER}>\r\nTo: <dr@cabinet-c.mssante.test>\r\nSubject: x\r\nMessage-ID: <m1@hopital-a.mssante.test>\r\n{extra}\r\nbody\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn wanted_follows_the_loop_rules() {
        let dnt = format!("Disposition-Notification-To: <{SENDER}>\r\n");
        assert_eq!(
            wanted(&headers(&dnt), Some(SENDER)),
            MdnDecision::Send { to: SENDER.into() }
        );
        assert_eq!(
            wanted(&headers(""), Some(SENDER)),
            MdnDecision::Skip(MdnSkip::NotRequested)
        );
        assert_eq!(
            wanted(&headers(&dnt), None),
            MdnDecision::Skip(MdnSkip::NullSender)
        );
        assert!(matches!(
            wanted(&headers(&dnt), Some("other@hopital-a.mssante.test")),
            MdnDecision::Skip(MdnSkip::SenderMismatch { .. })
        ));
        let return_path = format!("Return-Path: <bounce@hopital-a.mssante.test>\r\n{dnt}");
        assert!(matches!(
            wanted(&headers(&return_path), Some(SENDER)),
            MdnDecision::Skip(MdnSkip::SenderMismatch { .. })
        ));
        let two = format!("Disposition-Notification-To: <{SENDER}>, <b@x.test>\r\n");
        assert!(matches!(
            wanted(&headers(&two), Some(SENDER)),
            MdnDecision::Skip(MdnSkip::SenderMismatch { .. })
        ));
        let report = format!(
            "{dnt}MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n"
        );
        assert_eq!(
            wanted(&headers(&report), Some(SENDER)),
            MdnDecision::Skip(MdnSkip::IsReport)
        );
        let auto = format!("{dnt}Auto-Submitted: auto-generated\r\n");
        assert!(matches!(
            wanted(&headers(&auto), Some(SENDER)),
            MdnDecision::Skip(MdnSkip::AutoSubmitted { .. })
        ));
        let human = format!("{dnt}Auto-Submitted: no\r\n");
        assert!(matches!(
            wanted(&headers(&human), Some(SENDER)),
            MdnDecision::Send { .. }
        ));
    }
}
