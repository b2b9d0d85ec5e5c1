//! The `Received:` trace header (RFC 5321 §4.4, RFC 3848 protocol names) prepended to each message.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::TlsInfo;

/// What the header reports.
pub(super) struct Trace<'a> {
    pub helo: &'a str,
    pub client_ip: IpAddr,
    pub hostname: &'a str,
    pub esmtp: bool,
    pub tls: Option<&'a TlsInfo>,
    pub queue_id: &'a str,
    pub recipients: &'a [String],
    pub time: SystemTime,
}

/// Renders the header, folded, CRLF-terminated.
pub(super) fn header(trace: &Trace<'_>) -> String {
    let literal = match trace.client_ip {
        IpAddr::V4(ip) => format!("[{ip}]"),
        IpAddr::V6(ip) => format!("[IPv6:{ip}]"),
    };
    let protocol = match (trace.esmtp, trace.tls.is_some()) {
        (true, true) => "ESMTPS",
        (true, false) => "ESMTP",
        (false, _) => "SMTP",
    };
    let mut header = format!(
        "Received: from {} ({literal})\r\n\tby {} (smtp-in) with {protocol} id {}",
        trace.helo, trace.hostname, trace.queue_id
    );
    if let Some(tls) = trace.tls {
        header.push_str(&format!(
            "\r\n\t(version={} cipher={}",
            comment_safe(&tls.version),
            comment_safe(&tls.cipher)
        ));
        if let Some(peer) = &tls.peer {
            let cn = common_name(&peer.subject).unwrap_or("-");
            header.push_str(&format!(" CN={} verified", comment_safe(cn)));
        }
        header.push(')');
    }
    // Naming the recipient only when there is one: with several, it would disclose to each
    // recipient who else received the message.
    if let [recipient] = trace.recipients {
        header.push_str(&format!("\r\n\tfor <{recipient}>"));
    }
    header.push_str(&format!(";\r\n\t{}\r\n", rfc5322_date(trace.time)));
    header
}

/// The first `CN=` value of an RFC 4514 DN.
fn common_name(subject: &str) -> Option<&str> {
    let start = subject.find("CN=")?;
    let value = &subject[start + 3..];
    // Stop at the next unescaped comma.
    let mut end = value.len();
    let bytes = value.as_bytes();
    for index in 0..bytes.len() {
        if bytes[index] == b',' && (index == 0 || bytes[index - 1] != b'\\') {
            end = index;
            break;
        }
    }
    Some(&value[..end])
}

/// Keeps certificate-provided text from breaking out of the comment or the header: printable
/// ASCII only, no parentheses or backslashes.
fn comment_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if (c.is_ascii_graphic() && !"()\\".contains(c)) || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// RFC 5322 §3.3 date-time in UTC, e.g. `Sun, 06 Dec 2026 03:29:33 +0000`.
pub(super) fn rfc5322_date(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = seconds / 86_400;
    let of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::peer::PeerIdentity;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
        let time = UNIX_EPOCH + Duration::from_secs(1_796_528_973);
        assert_eq!(rfc5322_date(time), "Sun, 06 Dec 2026 03:49:33 +0000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc5322_date(leap), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn header_names_tls_and_peer() {
        let tls = TlsInfo {
            version: "TLSv1.3".into(),
            cipher: "TLS13_AES_256_GCM_SHA384".into(),
            peer: Some(PeerIdentity {
                subject: "CN=mta (evil)\r\nX: y,O=HOPITAL A".into(),
                issuer: "CN=ca".into(),
                serial: "01".into(),
                sha256_fingerprint: "00".into(),
            }),
        };
        let header = header(&Trace {
            helo: "mta.hopital-a.test",
            client_ip: "192.0.2.1".parse().unwrap(),
            hostname: "gw.test",
            esmtp: true,
            tls: Some(&tls),
            queue_id: "ABC",
            recipients: &["a@b.test".to_owned()],
            time: UNIX_EPOCH,
        });
        assert!(header.starts_with("Received: from mta.hopital-a.test ([192.0.2.1])\r\n"));
        assert!(header.contains("with ESMTPS id ABC"));
        assert!(header.contains(
            "version=TLSv1.3 cipher=TLS13_AES_256_GCM_SHA384 CN=mta _evil___X: y verified)"
        ));
        assert!(header.contains("for <a@b.test>;"));
        assert!(header.ends_with("+0000\r\n"));
        // Every line but the first is a continuation line.
        for line in header.trim_end().split("\r\n").skip(1) {
            assert!(line.starts_with('\t'), "{line:?}");
        }
    }
}
