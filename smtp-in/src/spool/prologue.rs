//! The envelope prologue written at the head of every spool file.
//!
//! Format (version 1): one `Name: value` line per field, `\n` line ends, a blank line, then the
//! message bytes exactly as received (CRLF, dot-stuffing undone). Values are UTF-8 with `%`, the
//! C0 controls and DEL percent-encoded, so that no envelope value (an odd quoted local part, a HELO
//! argument, a certificate DN) can break a line or forge a field. Reverse and forward paths are
//! written between angle brackets; only the outer pair is stripped when reading, so `>` inside an
//! address is harmless. The null reverse path is `<>` (an empty `Some("")` reads back as `None`).
//!
//! ```text
//! X-Spool-Version: 1
//! X-Spool-Queue-Id: 0193a5c2f1e48c1d2e3f
//! X-Spool-Received-At: 1733456789.123456789
//! X-Spool-Helo: mta.hopital-a.mssante.test
//! X-Spool-Client-Addr: 192.0.2.10:41234
//! X-Spool-Mail-From: <secretariat@hopital-a.mssante.test>
//! X-Spool-Rcpt-To: <dr.x@gateway.mssante.test>
//! X-Spool-Body: 8BITMIME
//! X-Spool-Declared-Size: 12345
//! X-Spool-Peer-Subject: CN=mta.hopital-a.mssante.test,OU=10000000010001,O=HOPITAL A TEST,C=FR
//! X-Spool-Peer-Issuer: CN=TEST AC IGC-SANTE ELEMENTAIRE ORGANISATIONS,...
//! X-Spool-Peer-Serial: 1f
//! X-Spool-Peer-Fingerprint: 9c...
//!
//! <message>
//! ```

use std::io::{BufRead, Read};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::id::QueueId;
use crate::envelope::{BodyType, Envelope};
use crate::peer::PeerIdentity;

/// Prologue format version written by this code.
pub(crate) const VERSION: u32 = 1;

/// Longest prologue line accepted when reading back; a recipient or DN is far shorter.
const MAX_LINE: u64 = 64 * 1024;
/// Most prologue lines accepted (recipients dominate; session limits are far below this).
const MAX_LINES: usize = 100_000;

/// Serialises the prologue for `envelope`.
pub(crate) fn encode(queue_id: &QueueId, envelope: &Envelope) -> Vec<u8> {
    let mut out = String::with_capacity(512);
    let mut field = |name: &str, value: &str| {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push('\n');
    };
    field("X-Spool-Version", &VERSION.to_string());
    field("X-Spool-Queue-Id", queue_id.as_str());
    let since_epoch = envelope
        .received_at
        .duration_since(UNIX_EPOCH)
        // Times before 1970 cannot come from a working clock; store the epoch rather than fail.
        .unwrap_or(Duration::ZERO);
    field(
        "X-Spool-Received-At",
        &format!(
            "{}.{:09}",
            since_epoch.as_secs(),
            since_epoch.subsec_nanos()
        ),
    );
    field("X-Spool-Helo", &escape(&envelope.helo));
    field("X-Spool-Client-Addr", &envelope.client_addr.to_string());
    let mail_from = envelope.mail_from.as_deref().unwrap_or("");
    field("X-Spool-Mail-From", &format!("<{}>", escape(mail_from)));
    for recipient in &envelope.recipients {
        field("X-Spool-Rcpt-To", &format!("<{}>", escape(recipient)));
    }
    field("X-Spool-Body", envelope.body.keyword());
    if let Some(size) = envelope.declared_size {
        field("X-Spool-Declared-Size", &size.to_string());
    }
    if let Some(peer) = &envelope.peer {
        field("X-Spool-Peer-Subject", &escape(&peer.subject));
        field("X-Spool-Peer-Issuer", &escape(&peer.issuer));
        field("X-Spool-Peer-Serial", &escape(&peer.serial));
        field(
            "X-Spool-Peer-Fingerprint",
            &escape(&peer.sha256_fingerprint),
        );
    }
    out.push('\n');
    out.into_bytes()
}

/// Why a prologue could not be read; the caller adds the file's path.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// Reading the file failed.
    Io(std::io::Error),
    /// The content is not a valid prologue.
    Corrupt {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
}

/// Reads a prologue from the start of `reader`; returns the envelope and the byte offset of the
/// message. `expected_id` (from the file name) must match the id recorded inside, which catches a
/// file copied or renamed by hand.
pub(crate) fn decode(
    reader: &mut impl BufRead,
    expected_id: &QueueId,
) -> Result<(Envelope, u64), DecodeError> {
    let mut fields = Fields::default();
    let mut offset = 0u64;
    let mut line_number = 0usize;
    let mut raw = Vec::new();
    loop {
        line_number += 1;
        let corrupt = |reason: String| DecodeError::Corrupt {
            line: line_number,
            reason,
        };
        if line_number > MAX_LINES {
            return Err(corrupt(format!("more than {MAX_LINES} lines")));
        }
        raw.clear();
        let read = reader
            .by_ref()
            .take(MAX_LINE)
            .read_until(b'\n', &mut raw)
            .map_err(DecodeError::Io)?;
        offset += read as u64;
        if raw.last() != Some(&b'\n') {
            return Err(corrupt(if read == 0 {
                "end of file before the blank line ending the prologue".to_owned()
            } else {
                "line too long or not terminated".to_owned()
            }));
        }
        let text = std::str::from_utf8(&raw[..raw.len() - 1])
            .map_err(|_| corrupt("line is not UTF-8".to_owned()))?;
        if text.is_empty() {
            break;
        }
        let (name, value) = text
            .split_once(": ")
            .ok_or_else(|| corrupt(format!("not a `Name: value` line: {text:?}")))?;
        if line_number == 1 && name != "X-Spool-Version" {
            return Err(corrupt("first line is not X-Spool-Version".to_owned()));
        }
        fields.accept(name, value).map_err(corrupt)?;
    }
    let envelope = fields
        .finish(expected_id)
        .map_err(|reason| DecodeError::Corrupt {
            line: line_number,
            reason,
        })?;
    Ok((envelope, offset))
}

/// Fields collected while reading, checked for presence and duplicates.
#[derive(Default)]
struct Fields {
    version: Option<u32>,
    queue_id: Option<String>,
    received_at: Option<SystemTime>,
    helo: Option<String>,
    client_addr: Option<SocketAddr>,
    mail_from: Option<Option<String>>,
    recipients: Vec<String>,
    body: Option<BodyType>,
    declared_size: Option<u64>,
    peer_subject: Option<String>,
    peer_issuer: Option<String>,
    peer_serial: Option<String>,
    peer_fingerprint: Option<String>,
}

impl Fields {
    fn accept(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            "X-Spool-Version" => {
                let version: u32 = value
                    .parse()
                    .map_err(|_| format!("bad version {value:?}"))?;
                if version != VERSION {
                    return Err(format!("unsupported prologue version {version}"));
                }
                set_once(&mut self.version, name, version)
            }
            "X-Spool-Queue-Id" => set_once(&mut self.queue_id, name, value.to_owned()),
            "X-Spool-Received-At" => set_once(&mut self.received_at, name, parse_time(value)?),
            "X-Spool-Helo" => set_once(&mut self.helo, name, unescape(value)?),
            "X-Spool-Client-Addr" => {
                let address = value
                    .parse()
                    .map_err(|_| format!("bad client address {value:?}"))?;
                set_once(&mut self.client_addr, name, address)
            }
            "X-Spool-Mail-From" => {
                let path = unbracket(value)?;
                let sender = (!path.is_empty()).then_some(path);
                set_once(&mut self.mail_from, name, sender)
            }
            "X-Spool-Rcpt-To" => {
                self.recipients.push(unbracket(value)?);
                Ok(())
            }
            "X-Spool-Body" => {
                let body = BodyType::from_keyword(value)
                    .ok_or_else(|| format!("unknown body type {value:?}"))?;
                set_once(&mut self.body, name, body)
            }
            "X-Spool-Declared-Size" => {
                let size = value
                    .parse()
                    .map_err(|_| format!("bad declared size {value:?}"))?;
                set_once(&mut self.declared_size, name, size)
            }
            "X-Spool-Peer-Subject" => set_once(&mut self.peer_subject, name, unescape(value)?),
            "X-Spool-Peer-Issuer" => set_once(&mut self.peer_issuer, name, unescape(value)?),
            "X-Spool-Peer-Serial" => set_once(&mut self.peer_serial, name, unescape(value)?),
            "X-Spool-Peer-Fingerprint" => {
                set_once(&mut self.peer_fingerprint, name, unescape(value)?)
            }
            // Version 1 knows every field it wrote: anything else means damage, not a newer writer
            // (a newer writer bumps the version).
            other => Err(format!("unknown field {other:?}")),
        }
    }

    fn finish(self, expected_id: &QueueId) -> Result<Envelope, String> {
        let missing = |field: &str| format!("missing {field}");
        self.version.ok_or_else(|| missing("X-Spool-Version"))?;
        let queue_id = self.queue_id.ok_or_else(|| missing("X-Spool-Queue-Id"))?;
        if queue_id != expected_id.as_str() {
            return Err(format!(
                "queue id {queue_id:?} does not match file name {expected_id}"
            ));
        }
        let peer = match (
            self.peer_subject,
            self.peer_issuer,
            self.peer_serial,
            self.peer_fingerprint,
        ) {
            (None, None, None, None) => None,
            (Some(subject), Some(issuer), Some(serial), Some(sha256_fingerprint)) => {
                Some(PeerIdentity {
                    subject,
                    issuer,
                    serial,
                    sha256_fingerprint,
                })
            }
            _ => return Err("incomplete X-Spool-Peer-* fields".to_owned()),
        };
        Ok(Envelope {
            helo: self.helo.ok_or_else(|| missing("X-Spool-Helo"))?,
            client_addr: self
                .client_addr
                .ok_or_else(|| missing("X-Spool-Client-Addr"))?,
            peer,
            mail_from: self.mail_from.ok_or_else(|| missing("X-Spool-Mail-From"))?,
            recipients: self.recipients,
            body: self.body.ok_or_else(|| missing("X-Spool-Body"))?,
            declared_size: self.declared_size,
            received_at: self
                .received_at
                .ok_or_else(|| missing("X-Spool-Received-At"))?,
        })
    }
}

fn set_once<T>(slot: &mut Option<T>, name: &str, value: T) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("duplicate {name}"));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_time(value: &str) -> Result<SystemTime, String> {
    let bad = || format!("bad time {value:?}");
    let (seconds, nanos) = value.split_once('.').ok_or_else(bad)?;
    if nanos.len() != 9 {
        return Err(bad());
    }
    let seconds: u64 = seconds.parse().map_err(|_| bad())?;
    let nanos: u32 = nanos.parse().map_err(|_| bad())?;
    UNIX_EPOCH
        .checked_add(Duration::new(seconds, nanos))
        .ok_or_else(bad)
}

fn unbracket(value: &str) -> Result<String, String> {
    let inner = value
        .strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'))
        .ok_or_else(|| format!("path not in angle brackets: {value:?}"))?;
    unescape(inner)
}

/// Percent-encodes `%`, C0 controls and DEL; everything else (including non-ASCII) stays as is.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for character in value.chars() {
        if character == '%' || character.is_ascii_control() {
            out.push_str(&format!("%{:02X}", u32::from(character)));
        } else {
            out.push(character);
        }
    }
    out
}

fn unescape(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let byte = bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("bad percent escape in {value:?}"))?;
            out.push(byte);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("escaped value is not UTF-8: {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn sample() -> Envelope {
        Envelope {
            helo: "mta.hopital-a.mssante.test".to_owned(),
            client_addr: "[2001:db8::1]:41234".parse().expect("literal address"),
            peer: Some(PeerIdentity {
                subject: "CN=a\\,b,O=HOPITAL A TEST,C=FR".to_owned(),
                issuer: "CN=TEST AC,C=FR".to_owned(),
                serial: "1f".to_owned(),
                sha256_fingerprint: "ab".repeat(32),
            }),
            mail_from: Some("\"odd >%\\r\\n\"@hopital-a.mssante.test".to_owned()),
            recipients: vec![
                "a@b".to_owned(),
                "\"x\ny: z\"@b".to_owned(),
                "é@ü.test".to_owned(),
            ],
            body: BodyType::EightBitMime,
            declared_size: Some(42),
            received_at: UNIX_EPOCH + Duration::new(1_733_456_789, 123_456_789),
        }
    }

    #[test]
    fn round_trips() {
        let id = QueueId::generate();
        let envelope = sample();
        let mut bytes = encode(&id, &envelope);
        let prologue_len = bytes.len() as u64;
        bytes.extend_from_slice(b"Subject: x\r\n\r\nbody\r\n");
        let (decoded, offset) = decode(&mut Cursor::new(&bytes), &id).expect("decodes");
        assert_eq!(decoded, envelope);
        assert_eq!(offset, prologue_len);
    }

    #[test]
    fn null_sender_and_no_peer() {
        let id = QueueId::generate();
        let envelope = Envelope {
            peer: None,
            mail_from: None,
            declared_size: None,
            body: BodyType::SevenBit,
            ..sample()
        };
        let bytes = encode(&id, &envelope);
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        assert!(text.contains("X-Spool-Mail-From: <>\n"));
        let (decoded, _) = decode(&mut Cursor::new(&bytes), &id).expect("decodes");
        assert_eq!(decoded, envelope);
    }

    #[test]
    fn escaped_values_stay_on_one_line() {
        let id = QueueId::generate();
        let text = String::from_utf8(encode(&id, &sample())).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines
                .iter()
                .filter(|line| !line.is_empty())
                .all(|line| line.starts_with("X-Spool-"))
        );
    }

    fn corrupt_line(bytes: &[u8], id: &QueueId) -> usize {
        match decode(&mut Cursor::new(bytes), id) {
            Err(DecodeError::Corrupt { line, .. }) => line,
            other => panic!("expected corrupt, got {other:?}"),
        }
    }

    #[test]
    fn rejects_damage() {
        let id = QueueId::generate();
        let good = String::from_utf8(encode(&id, &sample())).expect("utf-8");
        assert_eq!(corrupt_line(b"", &id), 1);
        assert_eq!(corrupt_line(b"garbage\n\n", &id), 1);
        assert_eq!(
            corrupt_line(good.trim_end().as_bytes(), &id),
            good.lines().count() - 1
        );
        let other = QueueId::generate();
        assert!(matches!(
            decode(&mut Cursor::new(good.as_bytes()), &other),
            Err(DecodeError::Corrupt { .. })
        ));
        let bumped = good.replace("X-Spool-Version: 1", "X-Spool-Version: 2");
        assert_eq!(corrupt_line(bumped.as_bytes(), &id), 1);
        let duplicate = good.replace(
            "X-Spool-Body: 8BITMIME\n",
            "X-Spool-Body: 8BITMIME\nX-Spool-Body: 7BIT\n",
        );
        assert!(corrupt_line(duplicate.as_bytes(), &id) > 1);
        let partial_peer = good.replace("X-Spool-Peer-Serial: 1f\n", "");
        assert!(corrupt_line(partial_peer.as_bytes(), &id) > 1);
        let bad_escape = good.replace("<a@b>", "<a%zz@b>");
        assert!(corrupt_line(bad_escape.as_bytes(), &id) > 1);
    }

    #[test]
    fn escape_round_trip() {
        for value in ["", "%", "%%41", "a\r\nb", "\u{7f}", "é\u{0}"] {
            assert_eq!(unescape(&escape(value)).as_deref(), Ok(value));
        }
    }
}
