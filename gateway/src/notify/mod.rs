//! Notifications to senders: delivery status notifications (RFC 3464) when relaying fails, and
//! message disposition notifications (RFC 8098, in the ANS format) about integration.
//!
//! Messages are written by hand: CRLF line ends, header lines folded under 78 characters where
//! they have spaces (never over 998), RFC 2047 encoded words for non-ASCII subjects.

pub mod dsn;
pub mod error_mail;
pub mod mdn;

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// RFC 5322 date in UTC, e.g. `Sun, 06 Dec 2026 06:01:49 +0000`.
pub fn rfc5322_date(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = crate::calendar::civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0)];
    let month = MONTHS[usize::try_from(month - 1).unwrap_or(0).min(11)];
    format!(
        "{weekday}, {day:02} {month} {year} {:02}:{:02}:{:02} +0000",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Appends `Name: value` CRLF, folded at spaces so that lines stay under 78 characters when
/// possible; CR and LF in `value` become spaces (no header injection).
pub(crate) fn header(out: &mut String, name: &str, value: &str) {
    let value: String = value
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    let mut line_len = name.len() + 1;
    out.push_str(name);
    out.push(':');
    for (index, word) in value.split(' ').enumerate() {
        if index > 0 || !word.is_empty() {
            if line_len + 1 + word.len() > 76 && line_len > name.len() + 1 {
                out.push_str("\r\n");
                line_len = 0;
            }
            out.push(' ');
            out.push_str(word);
            line_len += 1 + word.len();
        }
    }
    out.push_str("\r\n");
}

/// `text` as is when it is printable ASCII, else as RFC 2047 `B` encoded words of UTF-8 (each
/// under 76 characters, whole characters per word), separated by spaces for folding.
pub(crate) fn encode_words(text: &str) -> String {
    if text.chars().all(|c| c == ' ' || c.is_ascii_graphic()) && !text.contains("=?") {
        return text.to_owned();
    }
    // 45 bytes of UTF-8 make 60 base64 characters, plus 12 of `=?UTF-8?B?` and `?=`.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", STANDARD.encode(chunk.as_bytes())));
    }
    words.join(" ")
}

/// A text/plain body part: 7bit when ASCII, else base64 of UTF-8 in 76-character lines.
pub(crate) fn text_part(out: &mut String, text: &str) {
    out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    if text.is_ascii() {
        out.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n");
        for line in text.lines() {
            out.push_str(line);
            out.push_str("\r\n");
        }
        return;
    }
    out.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
    let normalized = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let encoded = STANDARD.encode(normalized.as_bytes());
    for line in encoded.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push_str("\r\n");
    }
}

/// A MIME boundary that cannot occur in `content` (checked, not only hoped).
pub(crate) fn boundary(seed: &str, content: &[u8]) -> String {
    let mut counter = 0u32;
    loop {
        let mut candidate = String::from("=_report_");
        for byte in seed.bytes().filter(u8::is_ascii_alphanumeric).take(24) {
            candidate.push(char::from(byte));
        }
        let _ = write!(candidate, "_{counter}");
        if memchr::memmem::find(content, candidate.as_bytes()).is_none() {
            return candidate;
        }
        counter += 1;
    }
}

/// Ends a multipart body: a last part of `content_type` holding `content` (the original, or its
/// headers) as is, then the closing boundary.
pub(crate) fn close_with_original(
    mut head: String,
    boundary: &str,
    content_type: &str,
    content: &[u8],
) -> Vec<u8> {
    head.push_str(&format!("\r\n--{boundary}\r\n{content_type}\r\n\r\n"));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(content);
    if !content.ends_with(b"\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    bytes
}

/// The header block of `message` (up to, not including, the first empty line).
pub(crate) fn header_block(message: &[u8]) -> &[u8] {
    if let Some(end) = memchr::memmem::find(message, b"\r\n\r\n") {
        return &message[..end + 2];
    }
    if let Some(end) = memchr::memmem::find(message, b"\n\n") {
        return &message[..end + 1];
    }
    message
}

/// `text` without CR, LF or other control characters (for machine-readable fields).
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_rfc5322() {
        let time = UNIX_EPOCH + Duration::from_secs(1_796_536_909);
        assert_eq!(rfc5322_date(time), "Sun, 06 Dec 2026 06:01:49 +0000");
        assert_eq!(rfc5322_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 +0000");
    }

    #[test]
    fn headers_fold_and_lose_line_breaks() {
        let mut out = String::new();
        header(&mut out, "Subject", &"mot ".repeat(40));
        assert!(out.lines().all(|line| line.len() <= 78), "{out}");
        assert!(out.contains("\r\n "));
        let mut out = String::new();
        header(&mut out, "X", "a\r\nBcc: evil");
        assert_eq!(out, "X: a  Bcc: evil\r\n");
    }

    #[test]
    fn non_ascii_is_encoded_in_short_words() {
        assert_eq!(encode_words("plain"), "plain");
        let encoded = encode_words(&"é".repeat(60));
        assert!(
            encoded
                .split(' ')
                .all(|word| word.len() <= 75 && word.starts_with("=?UTF-8?B?"))
        );
    }
}
