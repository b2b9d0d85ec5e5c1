//! Delivery status notifications (RFC 3464 in an RFC 6522 `multipart/report`).
//!
//! Sent to the original reverse path with an empty reverse path itself (`MAIL FROM:<>`), so that
//! a DSN about a DSN can never be produced.

use std::time::SystemTime;

use super::{
    boundary, close_with_original, encode_words, header, header_block, one_line, rfc5322_date,
    text_part,
};

/// What a DSN reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnInput<'a> {
    /// The reporting MTA's host name (`From: MAILER-DAEMON@<hostname>`, `Reporting-MTA`).
    pub hostname: &'a str,
    /// The original reverse path: the DSN's recipient.
    pub sender: &'a str,
    /// The spool queue id of the original message (in the text and the Message-ID).
    pub queue_id: &'a str,
    /// The original message, or at least its header block (only the headers are returned).
    pub original: &'a [u8],
    /// When the original arrived.
    pub arrival_date: SystemTime,
    /// When this DSN is written.
    pub date: SystemTime,
    /// One entry per recipient reported on.
    pub recipients: &'a [DsnRecipient],
}

/// The fate of one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsnRecipient {
    /// The recipient address.
    pub address: String,
    /// Failed for good, or delayed (warning).
    pub action: DsnAction,
    /// RFC 3463 status, e.g. `5.0.0`, `4.4.7`.
    pub status: String,
    /// The next hop, when one was reached.
    pub remote_mta: Option<String>,
    /// The last SMTP reply or the local reason.
    pub diagnostic: String,
    /// When the last attempt was made.
    pub last_attempt: SystemTime,
}

/// RFC 3464 `Action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DsnAction {
    /// Delivery failed and will not be retried.
    Failed,
    /// Delivery is still being retried.
    Delayed,
}

impl DsnAction {
    fn as_str(self) -> &'static str {
        match self {
            DsnAction::Failed => "failed",
            DsnAction::Delayed => "delayed",
        }
    }
}

/// The RFC 3463 status of a relay failure: the SMTP enhanced code when the reason carries one
/// (`550 5.7.1 ...`), else `5.0.0` / `4.0.0`.
pub fn status_of(reason: &str, permanent: bool) -> String {
    let class = if permanent { '5' } else { '4' };
    reason
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .find(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 3
                && parts[0].len() == 1
                && parts[0].starts_with(class)
                && parts.iter().all(|part| {
                    !part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit())
                })
        })
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{class}.0.0"))
}

/// The complete DSN message (headers and body, CRLF line ends).
pub fn build(input: &DsnInput<'_>) -> Vec<u8> {
    let original_headers = header_block(input.original);
    let boundary = boundary(input.queue_id, original_headers);
    let failed = input
        .recipients
        .iter()
        .any(|recipient| recipient.action == DsnAction::Failed);
    let subject = if failed {
        "Undelivered Mail Returned to Sender"
    } else {
        "Delayed Mail (still being retried)"
    };
    let date = rfc5322_date(input.date);
    let unix = input
        .date
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let mut out = String::new();
    header(
        &mut out,
        "From",
        &format!("Mail Delivery System <MAILER-DAEMON@{}>", input.hostname),
    );
    header(&mut out, "To", &format!("<{}>", input.sender));
    header(&mut out, "Subject", &encode_words(subject));
    header(&mut out, "Date", &date);
    header(
        &mut out,
        "Message-ID",
        &format!("<{}.{unix}.dsn@{}>", input.queue_id, input.hostname),
    );
    header(&mut out, "Auto-Submitted", "auto-replied");
    header(&mut out, "MIME-Version", "1.0");
    header(
        &mut out,
        "Content-Type",
        &format!("multipart/report; report-type=delivery-status; boundary=\"{boundary}\""),
    );
    out.push_str("\r\nThis is a MIME-encapsulated delivery status notification.\r\n");

    out.push_str(&format!("\r\n--{boundary}\r\n"));
    let mut text = format!(
        "This is the mail system at host {}.\n\nYour message (queue id {}) could not be delivered to the following recipients.\n",
        input.hostname, input.queue_id
    );
    if !failed {
        text = format!(
            "This is the mail system at host {}.\n\nYour message (queue id {}) has not been delivered yet; it is still being retried.\n",
            input.hostname, input.queue_id
        );
    }
    for recipient in input.recipients {
        text.push_str(&format!(
            "\n<{}>: {}\n",
            recipient.address,
            one_line(&recipient.diagnostic)
        ));
    }
    text_part(&mut out, &text);

    out.push_str(&format!("\r\n--{boundary}\r\n"));
    out.push_str("Content-Type: message/delivery-status\r\n\r\n");
    header(
        &mut out,
        "Reporting-MTA",
        &format!("dns; {}", input.hostname),
    );
    header(&mut out, "X-Queue-ID", input.queue_id);
    header(&mut out, "Arrival-Date", &rfc5322_date(input.arrival_date));
    for recipient in input.recipients {
        out.push_str("\r\n");
        header(
            &mut out,
            "Final-Recipient",
            &format!("rfc822; {}", recipient.address),
        );
        header(&mut out, "Action", recipient.action.as_str());
        header(&mut out, "Status", &recipient.status);
        if let Some(mta) = &recipient.remote_mta {
            header(&mut out, "Remote-MTA", &format!("dns; {}", one_line(mta)));
        }
        header(
            &mut out,
            "Diagnostic-Code",
            &format!("smtp; {}", ascii(&one_line(&recipient.diagnostic))),
        );
        header(
            &mut out,
            "Last-Attempt-Date",
            &rfc5322_date(recipient.last_attempt),
        );
    }

    close_with_original(
        out,
        &boundary,
        "Content-Type: text/rfc822-headers",
        original_headers,
    )
}

/// Machine-readable fields are ASCII (RFC 3464 without RFC 6533).
fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_comes_from_the_reply_when_it_has_one() {
        assert_eq!(
            status_of("smtp x: permanent error (550): 5.7.1 refused", true),
            "5.7.1"
        );
        assert_eq!(status_of("certificate refused", true), "5.0.0");
        assert_eq!(status_of("451 4.3.2 busy", false), "4.3.2");
        assert_eq!(status_of("451 4.3.2 busy", true), "5.0.0");
    }
}
