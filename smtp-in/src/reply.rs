//! SMTP replies (RFC 5321 §4.2) with RFC 3463 enhanced status codes (RFC 2034).
//!
//! Every reply the session sends is built here, so that the code, the enhanced code and the text of
//! each situation are decided in one place and can be asserted by tests.

use std::fmt;

/// An RFC 3463 enhanced status code `class.subject.detail`, e.g. `5.7.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    pub class: u8,
    /// Subject sub-code (0 to 7 in RFC 3463).
    pub subject: u16,
    /// Detail sub-code.
    pub detail: u16,
}

impl EnhancedCode {
    /// Builds `class.subject.detail`.
    pub const fn new(class: u8, subject: u16, detail: u16) -> EnhancedCode {
        EnhancedCode {
            class,
            subject,
            detail,
        }
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// One SMTP reply: a three-digit code, an optional enhanced code and a text that may span several
/// lines (separated by `\n`; each line is sent as its own `code-` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// RFC 5321 reply code (200..=599).
    pub code: u16,
    /// RFC 3463 enhanced code, repeated on every line; `None` only for the greeting and EHLO/HELO.
    pub enhanced: Option<EnhancedCode>,
    /// Human-readable text; never contains CR, and LF only as a line separator.
    pub text: String,
}

impl Reply {
    /// A reply with an enhanced status code.
    pub fn new(code: u16, enhanced: EnhancedCode, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced: Some(enhanced),
            text: sanitize(text.into()),
        }
    }

    /// A reply without an enhanced code (greeting, EHLO/HELO), as RFC 2034 allows.
    pub fn bare(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced: None,
            text: sanitize(text.into()),
        }
    }

    /// True for 2xx and 3xx replies.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// Serializes the reply, CRLF-terminated, multi-line when the text has several lines.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut lines = self.text.split('\n').peekable();
        while let Some(line) = lines.next() {
            let separator = if lines.peek().is_some() { '-' } else { ' ' };
            let rendered = match self.enhanced {
                Some(enhanced) => format!("{}{separator}{enhanced} {line}\r\n", self.code),
                None => format!("{}{separator}{line}\r\n", self.code),
            };
            out.extend_from_slice(rendered.as_bytes());
        }
    }

    /// The serialized reply as a string (for logs and tests).
    pub fn to_wire(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.enhanced {
            Some(enhanced) => write!(f, "{} {enhanced} {}", self.code, self.text),
            None => write!(f, "{} {}", self.code, self.text),
        }
    }
}

/// Removes CR and control characters: a reply text built from peer-controlled input (a domain, a
/// DN) must not be able to inject extra reply lines.
fn sanitize(text: String) -> String {
    if text.bytes().all(|b| b == b'\n' || (b >= 0x20 && b != 0x7f)) {
        return text;
    }
    text.chars()
        .map(|c| if c == '\n' || !c.is_control() { c } else { ' ' })
        .collect()
}

/// Flattens peer-controlled text into one printable line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Replies the session sends, one constructor per situation.
pub mod replies {
    use super::{EnhancedCode as E, Reply};

    /// `250 2.0.0 OK` (NOOP, RSET).
    pub fn ok() -> Reply {
        Reply::new(250, E::new(2, 0, 0), "OK")
    }
    /// `250 2.1.0` sender accepted.
    pub fn sender_ok() -> Reply {
        Reply::new(250, E::new(2, 1, 0), "Sender OK")
    }
    /// `250 2.1.5` recipient accepted.
    pub fn recipient_ok() -> Reply {
        Reply::new(250, E::new(2, 1, 5), "Recipient OK")
    }
    /// `354` start mail input; the enhanced code is informational.
    pub fn start_data() -> Reply {
        Reply::new(354, E::new(2, 0, 0), "End data with <CR><LF>.<CR><LF>")
    }
    /// `250 2.0.0 <id> queued`: the message is durable in the spool.
    pub fn queued(queue_id: &str) -> Reply {
        Reply::new(250, E::new(2, 0, 0), format!("{queue_id} queued"))
    }
    /// `221 2.0.0` answer to QUIT.
    pub fn bye() -> Reply {
        Reply::new(221, E::new(2, 0, 0), "Bye")
    }
    /// `220 2.0.0` go ahead with the TLS handshake.
    pub fn ready_for_tls() -> Reply {
        Reply::new(220, E::new(2, 0, 0), "Ready to start TLS")
    }
    /// `252 2.5.0` to VRFY: we never confirm or deny an address (no directory harvesting).
    pub fn cannot_verify() -> Reply {
        Reply::new(
            252,
            E::new(2, 5, 0),
            "Cannot VRFY user, but will accept message and attempt delivery",
        )
    }
    /// `502 5.5.1` to EXPN: list expansion would leak membership.
    pub fn expn_disabled() -> Reply {
        Reply::new(502, E::new(5, 5, 1), "EXPN not available")
    }
    /// `214 2.0.0` HELP text.
    pub fn help() -> Reply {
        Reply::new(
            214,
            E::new(2, 0, 0),
            "Commands: EHLO HELO STARTTLS MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\nSee RFC 5321",
        )
    }
    /// `500 5.5.2` unknown verb.
    pub fn unrecognized() -> Reply {
        Reply::new(500, E::new(5, 5, 2), "Syntax error, command unrecognized")
    }
    /// `501 5.5.4` bad arguments.
    pub fn bad_arguments(text: impl Into<String>) -> Reply {
        Reply::new(501, E::new(5, 5, 4), text)
    }
    /// `501 5.5.2` generic syntax error in a command line.
    pub fn syntax_error(text: impl Into<String>) -> Reply {
        Reply::new(501, E::new(5, 5, 2), text)
    }
    /// `501 5.1.7` bad sender address syntax.
    pub fn bad_sender_syntax() -> Reply {
        Reply::new(501, E::new(5, 1, 7), "Bad sender address syntax")
    }
    /// `501 5.1.3` bad recipient address syntax.
    pub fn bad_recipient_syntax() -> Reply {
        Reply::new(501, E::new(5, 1, 3), "Bad recipient address syntax")
    }
    /// `555 5.5.4` unknown MAIL/RCPT parameter (RFC 5321 §4.1.1.11).
    pub fn unknown_parameter(name: &str) -> Reply {
        Reply::new(
            555,
            E::new(5, 5, 4),
            format!("Parameter {name} not recognized or not implemented"),
        )
    }
    /// `500 5.5.6` line longer than allowed.
    pub fn line_too_long() -> Reply {
        Reply::new(500, E::new(5, 5, 6), "Line too long")
    }
    /// `500 5.5.6` text line in DATA longer than allowed (after draining the message).
    pub fn text_line_too_long(max: usize) -> Reply {
        Reply::new(
            500,
            E::new(5, 5, 6),
            format!("Message has a text line longer than {max} octets (RFC 5321 4.5.3.1.6)"),
        )
    }
    /// `503 5.5.1` bad sequence of commands.
    pub fn bad_sequence(text: impl Into<String>) -> Reply {
        Reply::new(503, E::new(5, 5, 1), text)
    }
    /// `530 5.7.0` MAIL before TLS on a STARTTLS listener.
    pub fn tls_required() -> Reply {
        Reply::new(530, E::new(5, 7, 0), "Must issue a STARTTLS command first")
    }
    /// `550 5.7.1` the TLS peer is not on the liste blanche for the sender domain.
    pub fn not_whitelisted(domain: &str, subject: Option<&str>) -> Reply {
        let seen = super::one_line(subject.unwrap_or("no client certificate"));
        let domain = super::one_line(domain);
        Reply::new(
            550,
            E::new(5, 7, 1),
            format!("Peer DN \"{seen}\" is not authorised for domain {domain}"),
        )
    }
    /// `552 5.3.4` message too big (announced or actual).
    pub fn message_too_big(max: u64) -> Reply {
        Reply::new(
            552,
            E::new(5, 3, 4),
            format!("Message size exceeds fixed maximum message size ({max} octets)"),
        )
    }
    /// `452 4.5.3` too many recipients (the client sends the rest in another transaction).
    pub fn too_many_recipients() -> Reply {
        Reply::new(452, E::new(4, 5, 3), "Too many recipients")
    }
    /// `554 5.5.1` DATA when every recipient was refused.
    pub fn no_valid_recipients() -> Reply {
        Reply::new(554, E::new(5, 5, 1), "No valid recipients")
    }
    /// `550 5.6.0` bare CR or LF in the message: refused as a defence against SMTP smuggling.
    pub fn bare_line_ending() -> Reply {
        Reply::new(
            550,
            E::new(5, 6, 0),
            "Bare LF/CR not allowed (SMTP smuggling); lines must end with CRLF",
        )
    }
    /// `452 4.3.1` the spool disk is full.
    pub fn insufficient_storage() -> Reply {
        Reply::new(452, E::new(4, 3, 1), "Insufficient system storage")
    }
    /// `451 4.3.0` other local error while storing the message.
    pub fn local_error() -> Reply {
        Reply::new(
            451,
            E::new(4, 3, 0),
            "Local error in processing, try again later",
        )
    }
    /// `421 4.4.2` idle too long.
    pub fn idle_timeout() -> Reply {
        Reply::new(421, E::new(4, 4, 2), "Idle timeout, closing connection")
    }
    /// `421 4.4.2` the session lasted longer than allowed.
    pub fn session_timeout() -> Reply {
        Reply::new(
            421,
            E::new(4, 4, 2),
            "Session time limit exceeded, closing connection",
        )
    }
    /// `421 4.7.0` too many connections (total or from this address).
    pub fn too_many_connections() -> Reply {
        Reply::new(
            421,
            E::new(4, 7, 0),
            "Too many connections, try again later",
        )
    }
    /// `421 4.7.0` too many bad commands.
    pub fn too_many_errors() -> Reply {
        Reply::new(421, E::new(4, 7, 0), "Too many errors, closing connection")
    }
    /// `421 4.7.0` the per-session message limit was reached; the client reconnects.
    pub fn too_many_messages() -> Reply {
        Reply::new(
            421,
            E::new(4, 7, 0),
            "Too many messages in this session, reconnect to send more",
        )
    }
    /// `421 4.3.2` the server is shutting down.
    pub fn shutting_down() -> Reply {
        Reply::new(421, E::new(4, 3, 2), "Service shutting down")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_has_enhanced_code() {
        assert_eq!(replies::ok().to_wire(), "250 2.0.0 OK\r\n");
    }

    #[test]
    fn multi_line_repeats_code() {
        let reply = Reply::new(214, EnhancedCode::new(2, 0, 0), "a\nb");
        assert_eq!(reply.to_wire(), "214-2.0.0 a\r\n214 2.0.0 b\r\n");
    }

    #[test]
    fn bare_reply_has_no_enhanced_code() {
        assert_eq!(Reply::bare(220, "x ESMTP").to_wire(), "220 x ESMTP\r\n");
    }

    #[test]
    fn control_characters_cannot_inject_lines() {
        let reply = replies::not_whitelisted("a\r\n250 evil", Some("CN=x"));
        assert!(!reply.to_wire().trim_end().contains('\r'));
        assert_eq!(reply.to_wire().matches("\r\n").count(), 1);
    }
}
