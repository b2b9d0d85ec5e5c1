//! How entries are shown to a compliance officer: text lines, JSON objects, CSV rows, and the
//! RFC 3339 times they carry.

use serde_json::{Value, json};

use crate::calendar::{civil_from_days, days_from_civil};
use crate::ledger::encoding;
use crate::ledger::entry::{CertIdentity, Entry};
use crate::ledger::merkle::leaf_hash;

/// Milliseconds since the epoch as RFC 3339 UTC with milliseconds.
pub fn format_time(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

/// Parses `YYYY-MM-DD` (midnight UTC), `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` or a plain number of
/// milliseconds since the epoch.
pub fn parse_time(text: &str) -> Option<u64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let number = |s: &str| -> Option<i64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (date, time) = match text.split_once(['T', 't', ' ']) {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let (year, month, day) = (
        number(parts.next()?)?,
        number(parts.next()?)?,
        number(parts.next()?)?,
    );
    if parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * 86_400_000;
    if let Some(time) = time {
        let (clock, offset_minutes) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
            (clock, 0)
        } else {
            let at = time.rfind(['+', '-'])?;
            let (clock, offset) = time.split_at(at);
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let (hours, minutes) = offset[1..].split_once(':')?;
            (clock, sign * (number(hours)? * 60 + number(minutes)?))
        };
        let (clock, fraction) = match clock.split_once('.') {
            Some((clock, fraction)) => (clock, fraction),
            None => (clock, "0"),
        };
        let mut fields = clock.split(':');
        let (h, m, s) = (
            number(fields.next()?)?,
            number(fields.next()?)?,
            number(fields.next()?)?,
        );
        if fields.next().is_some() || h > 23 || m > 59 || s > 60 {
            return None;
        }
        let millis = number(&format!("{fraction:0<3}")[..3])?;
        ms += ((h * 60 + m - offset_minutes) * 60 + s) * 1000 + millis;
    }
    u64::try_from(ms).ok()
}

fn cert_json(cert: &Option<CertIdentity>) -> Value {
    match cert {
        None => Value::Null,
        Some(cert) => {
            json!({"subject": cert.subject, "issuer": cert.issuer, "serial": cert.serial})
        }
    }
}

/// An entry as a JSON object (hashes in hex).
pub fn entry_json(entry: &Entry) -> Value {
    let event = &entry.event;
    // decode∘encode is the identity, so re-encoding gives the stored bytes and their leaf hash.
    let leaf = encoding::encode(entry)
        .map(|bytes| hex::encode(leaf_hash(&bytes)))
        .ok();
    json!({
        "seq": entry.seq,
        "time": format_time(entry.time_ms),
        "time_ms": entry.time_ms,
        "kind": event.kind.name(),
        "queue_id": event.queue_id,
        "message_id": event.message_id,
        "message_sha256": event.message_sha256.map(hex::encode),
        "documents": event.documents.iter().map(|d| json!({"name": d.name, "sha256": hex::encode(d.sha256)})).collect::<Vec<_>>(),
        "tls_peer": cert_json(&event.tls_peer),
        "signer": cert_json(&event.signer),
        "patient_ins": event.patient_ins,
        "outcome": event.outcome.name(),
        "reason": event.reason,
        "dmp_ids": event.dmp_ids,
        "prev_hash": hex::encode(entry.prev_hash),
        "leaf_hash": leaf,
    })
}

/// The CSV header matching [`csv_row`].
pub const CSV_HEADER: &str = "seq,time,kind,queue_id,message_id,message_sha256,documents,tls_peer_subject,tls_peer_issuer,tls_peer_serial,signer_subject,signer_issuer,signer_serial,patient_ins,outcome,reason,dmp_ids,prev_hash";

/// One CSV field: quoted when needed; a leading `= + - @` (or tab/CR) is prefixed with `'` so
/// a spreadsheet never evaluates text that came from a sender (CSV injection).
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// An entry as one CSV row (no line ending).
pub fn csv_row(entry: &Entry) -> String {
    let event = &entry.event;
    let opt = |value: &Option<String>| value.clone().unwrap_or_default();
    let cert = |cert: &Option<CertIdentity>| match cert {
        Some(c) => [c.subject.clone(), c.issuer.clone(), c.serial.clone()],
        None => Default::default(),
    };
    let documents: Vec<String> = event
        .documents
        .iter()
        .map(|d| format!("{}:{}", d.name, hex::encode(d.sha256)))
        .collect();
    let [peer_subject, peer_issuer, peer_serial] = cert(&event.tls_peer);
    let [signer_subject, signer_issuer, signer_serial] = cert(&event.signer);
    let fields = [
        entry.seq.to_string(),
        format_time(entry.time_ms),
        event.kind.name().to_string(),
        opt(&event.queue_id),
        opt(&event.message_id),
        event.message_sha256.map(hex::encode).unwrap_or_default(),
        documents.join(";"),
        peer_subject,
        peer_issuer,
        peer_serial,
        signer_subject,
        signer_issuer,
        signer_serial,
        opt(&event.patient_ins),
        event.outcome.name().to_string(),
        opt(&event.reason),
        event.dmp_ids.join(";"),
        hex::encode(entry.prev_hash),
    ];
    fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",")
}

/// An entry as one readable line for `trace` and `patient`.
pub fn text_line(entry: &Entry) -> String {
    let event = &entry.event;
    let mut line = format!(
        "#{:<8} {}  {:<20} {}",
        entry.seq,
        format_time(entry.time_ms),
        event.kind.name(),
        event.outcome.name()
    );
    let mut add = |label: &str, value: &str| {
        line.push_str(&format!("  {label}={value}"));
    };
    if let Some(queue_id) = &event.queue_id {
        add("queue", queue_id);
    }
    if let Some(message_id) = &event.message_id {
        add("message-id", message_id);
    }
    if !event.documents.is_empty() {
        add("documents", &event.documents.len().to_string());
    }
    if let Some(peer) = &event.tls_peer {
        add("peer", &peer.subject);
    }
    if let Some(signer) = &event.signer {
        add("signer", &signer.subject);
    }
    if !event.dmp_ids.is_empty() {
        add("dmp", &event.dmp_ids.join(";"));
    }
    if let Some(reason) = &event.reason {
        add("reason", &format!("{reason:?}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(1_733_456_789_123), "2024-12-06T03:46:29.123Z");
        assert_eq!(
            parse_time("2024-12-06T03:46:29.123Z"),
            Some(1_733_456_789_123)
        );
        assert_eq!(
            parse_time("2024-12-06T04:46:29.123+01:00"),
            Some(1_733_456_789_123)
        );
        assert_eq!(parse_time("2024-12-06"), Some(1_733_443_200_000));
        assert_eq!(parse_time("1733456789123"), Some(1_733_456_789_123));
        assert_eq!(parse_time("2024-13-01"), None);
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }
}
