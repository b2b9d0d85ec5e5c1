//! Sans-IO parser of SMTP command lines (RFC 5321 §4.1), with the ESMTP parameters we announce:
//! `SIZE` (RFC 1870) and `BODY` (RFC 6152).
//!
//! The parser takes one line (CRLF already removed) and never panics; every failure maps to the
//! reply the session must send.

use crate::envelope::BodyType;
use crate::reply::{Reply, replies};

/// A parsed SMTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO <domain or address literal>`.
    Ehlo(String),
    /// `HELO <domain>`.
    Helo(String),
    /// `MAIL FROM:<path> [params]`.
    Mail(MailFrom),
    /// `RCPT TO:<path>`.
    Rcpt(String),
    /// `DATA`.
    Data,
    /// `RSET`.
    Rset,
    /// `NOOP [string]`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY <string>`.
    Vrfy,
    /// `EXPN <string>`.
    Expn,
    /// `HELP [string]`.
    Help,
    /// `STARTTLS` (RFC 3207).
    StartTls,
}

/// Arguments of `MAIL FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFrom {
    /// Reverse path without brackets; `None` for the null sender `<>`.
    pub sender: Option<String>,
    /// `SIZE=` value.
    pub size: Option<u64>,
    /// `BODY=` value (7BIT when absent).
    pub body: BodyType,
}

/// Why a command line was refused; each maps to one reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The verb is unknown.
    #[error("unrecognized command")]
    Unrecognized,
    /// The line is not ASCII or contains control characters.
    #[error("command line is not printable ASCII")]
    NotPrintable,
    /// Arguments are missing, superfluous or malformed.
    #[error("bad arguments: {0}")]
    BadArguments(&'static str),
    /// The sender path is malformed.
    #[error("bad sender address")]
    BadSender,
    /// The recipient path is malformed.
    #[error("bad recipient address")]
    BadRecipient,
    /// An ESMTP parameter we do not support.
    #[error("unknown parameter {0}")]
    UnknownParameter(String),
}

impl CommandError {
    /// The reply the session sends for this error.
    pub fn reply(&self) -> Reply {
        match self {
            CommandError::Unrecognized => replies::unrecognized(),
            CommandError::NotPrintable => replies::syntax_error("Invalid characters in command"),
            CommandError::BadArguments(what) => replies::bad_arguments(*what),
            CommandError::BadSender => replies::bad_sender_syntax(),
            CommandError::BadRecipient => replies::bad_recipient_syntax(),
            CommandError::UnknownParameter(name) => replies::unknown_parameter(name),
        }
    }
}

/// Parses one command line, without its CRLF.
pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
    if !line
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) || b == b'\t')
    {
        return Err(CommandError::NotPrintable);
    }
    // Checked above: printable ASCII is valid UTF-8.
    let line = std::str::from_utf8(line).map_err(|_| CommandError::NotPrintable)?;
    let (verb, rest) = match line.find(' ') {
        Some(at) => (&line[..at], &line[at + 1..]),
        None => (line, ""),
    };
    let verb = verb.to_ascii_uppercase();
    match verb.as_str() {
        "EHLO" => Ok(Command::Ehlo(client_name(rest)?)),
        "HELO" => Ok(Command::Helo(client_name(rest)?)),
        "MAIL" => parse_mail(rest).map(Command::Mail),
        "RCPT" => parse_rcpt(rest).map(Command::Rcpt),
        "DATA" => no_argument(rest, Command::Data),
        "RSET" => no_argument(rest, Command::Rset),
        "QUIT" => no_argument(rest, Command::Quit),
        "STARTTLS" => no_argument(rest, Command::StartTls),
        "NOOP" => Ok(Command::Noop),
        "HELP" => Ok(Command::Help),
        "VRFY" => with_argument(rest, Command::Vrfy),
        "EXPN" => with_argument(rest, Command::Expn),
        _ => Err(CommandError::Unrecognized),
    }
}

fn no_argument(rest: &str, command: Command) -> Result<Command, CommandError> {
    if rest.trim().is_empty() {
        Ok(command)
    } else {
        Err(CommandError::BadArguments(
            "Syntax error, no parameters allowed",
        ))
    }
}

fn with_argument(rest: &str, command: Command) -> Result<Command, CommandError> {
    if rest.trim().is_empty() {
        Err(CommandError::BadArguments("Argument required"))
    } else {
        Ok(command)
    }
}

/// The EHLO/HELO argument: a domain or an address literal. It ends up in the `Received:` header,
/// so only the characters those grammars allow are accepted.
fn client_name(rest: &str) -> Result<String, CommandError> {
    let name = rest.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-.:[]_".contains(c);
    if name.is_empty() || name.len() > 255 || name.contains(' ') || !name.chars().all(allowed) {
        return Err(CommandError::BadArguments("Invalid domain name"));
    }
    Ok(name.to_owned())
}

fn parse_mail(rest: &str) -> Result<MailFrom, CommandError> {
    let after = strip_prefix_ignore_case(rest, "FROM:")
        .ok_or(CommandError::BadArguments("Syntax: MAIL FROM:<address>"))?;
    let (path, params) = split_path(after).ok_or(CommandError::BadSender)?;
    let sender = if path.is_empty() {
        None
    } else {
        Some(mailbox(path).ok_or(CommandError::BadSender)?)
    };
    let mut mail = MailFrom {
        sender,
        size: None,
        body: BodyType::default(),
    };
    let mut seen_body = false;
    for param in params.split(' ').filter(|p| !p.is_empty()) {
        let (key, value) = match param.find('=') {
            Some(at) => (&param[..at], Some(&param[at + 1..])),
            None => (param, None),
        };
        if key.eq_ignore_ascii_case("SIZE") {
            if mail.size.is_some() {
                return Err(CommandError::BadArguments("Duplicate SIZE parameter"));
            }
            let value = value.filter(|v| !v.is_empty() && v.len() <= 20);
            let size = value
                .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or(CommandError::BadArguments("Invalid SIZE value"))?;
            mail.size = Some(size);
        } else if key.eq_ignore_ascii_case("BODY") {
            if seen_body {
                return Err(CommandError::BadArguments("Duplicate BODY parameter"));
            }
            seen_body = true;
            mail.body = value
                .and_then(BodyType::from_keyword)
                .ok_or(CommandError::BadArguments("Invalid BODY value"))?;
        } else {
            return Err(CommandError::UnknownParameter(printable_name(key)));
        }
    }
    Ok(mail)
}

fn parse_rcpt(rest: &str) -> Result<String, CommandError> {
    let after = strip_prefix_ignore_case(rest, "TO:")
        .ok_or(CommandError::BadArguments("Syntax: RCPT TO:<address>"))?;
    let (path, params) = split_path(after).ok_or(CommandError::BadRecipient)?;
    if let Some(param) = params.split(' ').find(|p| !p.is_empty()) {
        let key = param.split('=').next().unwrap_or(param);
        return Err(CommandError::UnknownParameter(printable_name(key)));
    }
    mailbox(path).ok_or(CommandError::BadRecipient)
}

fn printable_name(key: &str) -> String {
    key.chars().take(32).collect()
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text[prefix.len()..].trim_start())
}

/// Splits `<path> params` into the path between the brackets and the parameter string.
fn split_path(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_prefix('<')?;
    let close = inner.find('>')?;
    let rest = &inner[close + 1..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    Some((&inner[..close], rest))
}

/// Validates `local@domain` (an optional obsolete source route `@a,@b:` is dropped, RFC 5321
/// §4.1.2 says to accept and ignore it). Quoted local parts are accepted without spaces.
fn mailbox(path: &str) -> Option<String> {
    let path = match path.strip_prefix('@') {
        Some(route) => &route[route.find(':')? + 1..],
        None => path,
    };
    let at = path.rfind('@')?;
    let (local, domain) = (&path[..at], &path[at + 1..]);
    if local.is_empty() || local.len() > 64 || domain.is_empty() || domain.len() > 255 {
        return None;
    }
    let local_ok = local
        .bytes()
        .all(|b| (b.is_ascii_graphic() && !b"<>()[]\\,;:".contains(&b)) || b == b'"');
    let domain_ok = domain
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-.[]:".contains(&b))
        && !domain.starts_with('.')
        && !domain.ends_with('.');
    (local_ok && domain_ok).then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mail_with_parameters() {
        let command = parse(b"mail from:<a@b.test> SIZE=100 BODY=8BITMIME").unwrap();
        assert_eq!(
            command,
            Command::Mail(MailFrom {
                sender: Some("a@b.test".into()),
                size: Some(100),
                body: BodyType::EightBitMime,
            })
        );
    }

    #[test]
    fn null_sender() {
        let Command::Mail(mail) = parse(b"MAIL FROM:<>").unwrap() else {
            panic!("not MAIL");
        };
        assert_eq!(mail.sender, None);
    }

    #[test]
    fn unknown_parameter_is_555() {
        let error = parse(b"MAIL FROM:<a@b.test> SMTPUTF8").unwrap_err();
        assert_eq!(error.reply().code, 555);
        assert_eq!(
            parse(b"RCPT TO:<a@b.test> NOTIFY=NEVER")
                .unwrap_err()
                .reply()
                .code,
            555
        );
    }

    #[test]
    fn bad_values_are_501() {
        for line in [
            &b"MAIL FROM:<a@b.test> SIZE=abc"[..],
            b"MAIL FROM:<a@b.test> SIZE=99999999999999999999999",
            b"MAIL FROM:<a@b.test> BODY=BINARYMIME",
            b"MAIL FROM:a@b.test",
            b"MAIL FROM:<a b@c>",
            b"RCPT TO:<>",
            b"RCPT TO:<nodomain>",
            b"EHLO",
            b"DATA now",
        ] {
            assert_eq!(parse(line).unwrap_err().reply().code, 501, "{line:?}");
        }
    }

    #[test]
    fn source_route_is_dropped() {
        assert_eq!(
            parse(b"RCPT TO:<@relay.test:x@y.test>").unwrap(),
            Command::Rcpt("x@y.test".into())
        );
    }

    #[test]
    fn unknown_verb_and_binary_input() {
        assert_eq!(parse(b"FOO").unwrap_err(), CommandError::Unrecognized);
        assert_eq!(parse(b"\xff\x00").unwrap_err(), CommandError::NotPrintable);
        assert_eq!(parse(b"").unwrap_err(), CommandError::Unrecognized);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse(&line);
        }
    }
}
