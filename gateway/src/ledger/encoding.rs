//! The canonical byte encoding of an entry, version 1.
//!
//! The leaf hash is computed over these bytes, so they must be the same for the same entry on
//! every machine and every release, and no two entries may share them. Layout (all integers
//! big-endian; `str` is a `u32` byte length then UTF-8; `opt<T>` is a byte `0` for absent or `1`
//! followed by `T`; `list<T>` is a `u32` count then the items):
//!
//! ```text
//! u8   version = 1
//! u64  seq
//! u64  time_ms
//! [32] prev_hash
//! u8   event kind code (1..=11, see EventKind::code)
//! opt<str>      queue_id
//! opt<str>      message_id
//! opt<[32]>     message_sha256
//! list<str [32]> documents (name, sha256)
//! opt<str str str> tls_peer (subject, issuer, serial)
//! opt<str str str> signer
//! opt<str>      patient_ins
//! u8   outcome code (0..=2)
//! opt<str>      reason
//! list<str>     dmp_ids
//! ```
//!
//! Every field has exactly one encoding (fixed order, no optional padding, presence flags 0 or 1
//! only, no trailing bytes), so decoding then encoding gives back the same bytes; the fuzz target
//! `ledger_entry` checks that.

use super::entry::{CertIdentity, DocumentDigest, Entry, Event, EventKind, Hash, Outcome};
use super::error::DecodeError;

/// The version byte written by [`encode`].
pub const VERSION: u8 = 1;
/// The longest text field accepted, in bytes.
pub const MAX_TEXT: usize = 64 * 1024;
/// The most items accepted in a list.
pub const MAX_ITEMS: usize = 4096;
/// The largest encoded entry accepted, in bytes.
pub const MAX_ENTRY: usize = 1024 * 1024;

/// Encodes an entry canonically. Fails only when a field exceeds the limits above.
pub fn encode(entry: &Entry) -> Result<Vec<u8>, DecodeError> {
    let event = &entry.event;
    let mut out = Vec::with_capacity(256);
    out.push(VERSION);
    out.extend_from_slice(&entry.seq.to_be_bytes());
    out.extend_from_slice(&entry.time_ms.to_be_bytes());
    out.extend_from_slice(&entry.prev_hash);
    out.push(event.kind.code());
    put_opt_text(&mut out, "queue_id", event.queue_id.as_deref())?;
    put_opt_text(&mut out, "message_id", event.message_id.as_deref())?;
    match &event.message_sha256 {
        None => out.push(0),
        Some(hash) => {
            out.push(1);
            out.extend_from_slice(hash);
        }
    }
    put_count(&mut out, "documents", event.documents.len())?;
    for document in &event.documents {
        put_text(&mut out, "document name", &document.name)?;
        out.extend_from_slice(&document.sha256);
    }
    put_cert(&mut out, "tls_peer", event.tls_peer.as_ref())?;
    put_cert(&mut out, "signer", event.signer.as_ref())?;
    put_opt_text(&mut out, "patient_ins", event.patient_ins.as_deref())?;
    out.push(event.outcome.code());
    put_opt_text(&mut out, "reason", event.reason.as_deref())?;
    put_count(&mut out, "dmp_ids", event.dmp_ids.len())?;
    for id in &event.dmp_ids {
        put_text(&mut out, "dmp id", id)?;
    }
    if out.len() > MAX_ENTRY {
        return Err(DecodeError::TooLong {
            field: "entry",
            length: out.len(),
            limit: MAX_ENTRY,
        });
    }
    Ok(out)
}

/// Decodes canonical bytes; refuses anything [`encode`] would not have produced.
pub fn decode(bytes: &[u8]) -> Result<Entry, DecodeError> {
    if bytes.len() > MAX_ENTRY {
        return Err(DecodeError::TooLong {
            field: "entry",
            length: bytes.len(),
            limit: MAX_ENTRY,
        });
    }
    let mut reader = Reader { bytes, at: 0 };
    let version = reader.byte("version")?;
    if version != VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    let seq = reader.u64("seq")?;
    let time_ms = reader.u64("time_ms")?;
    let prev_hash = reader.hash("prev_hash")?;
    let code = reader.byte("kind")?;
    let kind = EventKind::from_code(code).ok_or(DecodeError::InvalidCode {
        field: "kind",
        code,
    })?;
    let mut event = Event::new(kind);
    event.queue_id = reader.opt_text("queue_id")?;
    event.message_id = reader.opt_text("message_id")?;
    event.message_sha256 = if reader.flag("message_sha256")? {
        Some(reader.hash("message_sha256")?)
    } else {
        None
    };
    let documents = reader.count("documents")?;
    for _ in 0..documents {
        let name = reader.text("document name")?;
        let sha256 = reader.hash("document sha256")?;
        event.documents.push(DocumentDigest { name, sha256 });
    }
    event.tls_peer = reader.cert("tls_peer")?;
    event.signer = reader.cert("signer")?;
    event.patient_ins = reader.opt_text("patient_ins")?;
    let code = reader.byte("outcome")?;
    event.outcome = Outcome::from_code(code).ok_or(DecodeError::InvalidCode {
        field: "outcome",
        code,
    })?;
    event.reason = reader.opt_text("reason")?;
    let ids = reader.count("dmp_ids")?;
    for _ in 0..ids {
        event.dmp_ids.push(reader.text("dmp id")?);
    }
    let left = bytes.len() - reader.at;
    if left != 0 {
        return Err(DecodeError::TrailingBytes(left));
    }
    Ok(Entry {
        seq,
        time_ms,
        prev_hash,
        event,
    })
}

fn put_count(out: &mut Vec<u8>, field: &'static str, count: usize) -> Result<(), DecodeError> {
    if count > MAX_ITEMS {
        return Err(DecodeError::TooLong {
            field,
            length: count,
            limit: MAX_ITEMS,
        });
    }
    // Cannot truncate: MAX_ITEMS fits in u32.
    out.extend_from_slice(&(count as u32).to_be_bytes());
    Ok(())
}

fn put_text(out: &mut Vec<u8>, field: &'static str, text: &str) -> Result<(), DecodeError> {
    if text.len() > MAX_TEXT {
        return Err(DecodeError::TooLong {
            field,
            length: text.len(),
            limit: MAX_TEXT,
        });
    }
    // Cannot truncate: MAX_TEXT fits in u32.
    out.extend_from_slice(&(text.len() as u32).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

fn put_opt_text(
    out: &mut Vec<u8>,
    field: &'static str,
    text: Option<&str>,
) -> Result<(), DecodeError> {
    match text {
        None => {
            out.push(0);
            Ok(())
        }
        Some(text) => {
            out.push(1);
            put_text(out, field, text)
        }
    }
}

fn put_cert(
    out: &mut Vec<u8>,
    field: &'static str,
    cert: Option<&CertIdentity>,
) -> Result<(), DecodeError> {
    match cert {
        None => {
            out.push(0);
            Ok(())
        }
        Some(cert) => {
            out.push(1);
            put_text(out, field, &cert.subject)?;
            put_text(out, field, &cert.issuer)?;
            put_text(out, field, &cert.serial)
        }
    }
}

/// A cursor over the bytes being decoded.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, length: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(length)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(DecodeError::Truncated { field })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn byte(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(field, 1)?[0])
    }

    fn flag(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.byte(field)? {
            0 => Ok(false),
            1 => Ok(true),
            code => Err(DecodeError::InvalidCode { field, code }),
        }
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(field, 4)?);
        Ok(u32::from_be_bytes(buf))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(field, 8)?);
        Ok(u64::from_be_bytes(buf))
    }

    fn hash(&mut self, field: &'static str) -> Result<Hash, DecodeError> {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(self.take(field, 32)?);
        Ok(hash)
    }

    fn count(&mut self, field: &'static str) -> Result<usize, DecodeError> {
        let count = self.u32(field)? as usize;
        if count > MAX_ITEMS {
            return Err(DecodeError::TooLong {
                field,
                length: count,
                limit: MAX_ITEMS,
            });
        }
        Ok(count)
    }

    fn text(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let length = self.u32(field)? as usize;
        if length > MAX_TEXT {
            return Err(DecodeError::TooLong {
                field,
                length,
                limit: MAX_TEXT,
            });
        }
        let bytes = self.take(field, length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8 { field })
    }

    fn opt_text(&mut self, field: &'static str) -> Result<Option<String>, DecodeError> {
        if self.flag(field)? {
            Ok(Some(self.text(field)?))
        } else {
            Ok(None)
        }
    }

    fn cert(&mut self, field: &'static str) -> Result<Option<CertIdentity>, DecodeError> {
        if !self.flag(field)? {
            return Ok(None);
        }
        Ok(Some(CertIdentity {
            subject: self.text(field)?,
            issuer: self.text(field)?,
            serial: self.text(field)?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        let mut event = Event::new(EventKind::Deposited);
        event.queue_id = Some("0000000000000001".into());
        event.message_id = Some("<synthetic-1@hopital-a.mssante.test>".into());
        event.message_sha256 = Some([7; 32]);
        event.documents.push(DocumentDigest {
            name: "CR-BIO.xml".into(),
            sha256: [9; 32],
        });
        event.tls_peer = Some(CertIdentity {
            subject: "CN=hopital-a".into(),
            issuer: "CN=TEST AC".into(),
            serial: "01ab".into(),
        });
        event.patient_ins = Some("199999999999999".into());
        event.outcome = Outcome::TransientFailure;
        event.reason = Some("DMP busy".into());
        event.dmp_ids.push("1.2.250.1.999.1".into());
        Entry {
            seq: 42,
            time_ms: 1_700_000_000_000,
            prev_hash: [3; 32],
            event,
        }
    }

    #[test]
    fn round_trip_is_exact() {
        let entry = sample();
        let bytes = encode(&entry).unwrap();
        assert_eq!(decode(&bytes).unwrap(), entry);
        assert_eq!(encode(&decode(&bytes).unwrap()).unwrap(), bytes);
        let empty = Entry {
            seq: 0,
            time_ms: 0,
            prev_hash: [0; 32],
            event: Event::new(EventKind::Received),
        };
        let bytes = encode(&empty).unwrap();
        assert_eq!(decode(&bytes).unwrap(), empty);
    }

    #[test]
    fn rejects_non_canonical_bytes() {
        let mut bytes = encode(&sample()).unwrap();
        bytes.push(0);
        assert_eq!(decode(&bytes), Err(DecodeError::TrailingBytes(1)));
        bytes.pop();
        bytes[0] = 2;
        assert_eq!(decode(&bytes), Err(DecodeError::UnknownVersion(2)));
        bytes[0] = 1;
        // The queue_id presence flag sits right after the kind byte.
        bytes[50] = 2;
        assert!(matches!(
            decode(&bytes),
            Err(DecodeError::InvalidCode { .. })
        ));
        for cut in 0..bytes.len() - 1 {
            assert!(
                decode(&bytes[..cut]).is_err(),
                "prefix of {cut} bytes decoded"
            );
        }
    }
}
