//! Synthetic MIME messages of a chosen size, built once and sent many times.

use std::sync::Arc;

/// Length of a base64 line in the attachment (a multiple of 4, so every line is valid base64 on its own).
const BASE64_LINE: usize = 76;
const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A message whose body is shared and whose `Message-ID` header changes per copy.
///
/// The bytes are already in SMTP DATA form: CRLF line ends and no line starting with "." (so no
/// dot-stuffing is needed). The end-of-data marker is not included.
#[derive(Debug, Clone)]
pub struct MessageTemplate {
    domain: String,
    rest: Arc<[u8]>,
}

impl MessageTemplate {
    /// Builds a `multipart/mixed` message from `from` to `to` of about `size` bytes (at least ~1 KB):
    /// a short text part and a base64 `application/octet-stream` part filled with pseudo-random data.
    pub fn new(from: &str, to: &[String], size: usize) -> Self {
        let domain = from.rsplit_once('@').map_or("loadgen.test", |(_, d)| d);
        let boundary = "=_loadgen_boundary_0001";
        let mut head = String::new();
        head.push_str(&format!("From: <{from}>\r\n"));
        head.push_str(&format!("To: {}\r\n", angle_list(to)));
        head.push_str("Subject: loadgen synthetic message (TEST ONLY)\r\n");
        head.push_str("Date: Tue, 01 Jul 2025 08:00:00 +0200\r\n");
        head.push_str("MIME-Version: 1.0\r\n");
        head.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
        ));
        head.push_str("This is a multi-part message in MIME format.\r\n");
        head.push_str(&format!("--{boundary}\r\n"));
        head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        head.push_str("Content-Transfer-Encoding: 7bit\r\n\r\n");
        head.push_str("Synthetic load-test message. No patient data.\r\n");
        head.push_str(&format!("--{boundary}\r\n"));
        head.push_str("Content-Type: application/octet-stream; name=\"synthetic.bin\"\r\n");
        head.push_str("Content-Transfer-Encoding: base64\r\n");
        head.push_str("Content-Disposition: attachment; filename=\"synthetic.bin\"\r\n\r\n");
        let tail = format!("--{boundary}--\r\n");

        // The per-copy Message-ID header is ~70 bytes; leave room for it.
        let fixed = head.len() + tail.len() + 70;
        let mut payload = size.saturating_sub(fixed);
        let mut bytes = Vec::with_capacity(size + BASE64_LINE);
        bytes.extend_from_slice(head.as_bytes());
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        while payload > 0 {
            // Keep each line a multiple of 4 characters and at least 4 long.
            let line = (payload.saturating_sub(2).max(4) / 4 * 4).min(BASE64_LINE);
            for _ in 0..line {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                bytes.push(BASE64_ALPHABET[(state % 64) as usize]);
            }
            bytes.extend_from_slice(b"\r\n");
            payload = payload.saturating_sub(line + 2);
        }
        bytes.extend_from_slice(tail.as_bytes());
        Self {
            domain: domain.to_owned(),
            rest: bytes.into(),
        }
    }

    /// A template from a prebuilt RFC 5322 message (e.g. written by `gateway send --output`):
    /// its own `Message-ID` header is dropped so each copy gets a unique one, bare LF line ends
    /// become CRLF and lines starting with "." are dot-stuffed. `domain` names the Message-IDs.
    pub fn from_message(message: &[u8], domain: &str) -> Self {
        let mut crlf = Vec::with_capacity(message.len() + message.len() / 50);
        for (index, &byte) in message.iter().enumerate() {
            if byte == b'\n' && (index == 0 || message[index - 1] != b'\r') {
                crlf.push(b'\r');
            }
            crlf.push(byte);
        }
        if !crlf.ends_with(b"\r\n") {
            crlf.extend_from_slice(b"\r\n");
        }
        let mut rest = Vec::with_capacity(crlf.len() + 64);
        let mut in_headers = true;
        let mut skipping = false;
        for line in crlf.split_inclusive(|&byte| byte == b'\n') {
            if in_headers {
                if line == b"\r\n" {
                    in_headers = false;
                } else if skipping && (line.starts_with(b" ") || line.starts_with(b"\t")) {
                    continue;
                } else {
                    skipping = line.len() >= 11 && line[..11].eq_ignore_ascii_case(b"message-id:");
                    if skipping {
                        continue;
                    }
                }
            }
            if line.starts_with(b".") {
                rest.push(b'.');
            }
            rest.extend_from_slice(line);
        }
        Self {
            domain: domain.to_owned(),
            rest: rest.into(),
        }
    }

    /// The header line that makes copy `sequence` of run `run` unique.
    pub fn message_id_header(&self, run: u64, sequence: u64) -> Vec<u8> {
        format!(
            "Message-ID: <loadgen.{run:x}.{sequence}@{}>\r\n",
            self.domain
        )
        .into_bytes()
    }

    /// Everything after the Message-ID header.
    pub fn rest(&self) -> &[u8] {
        &self.rest
    }

    /// Size of one copy on the wire (without the end-of-data marker).
    pub fn size(&self) -> usize {
        self.message_id_header(0, 0).len() + self.rest.len()
    }
}

fn angle_list(addresses: &[String]) -> String {
    addresses
        .iter()
        .map(|address| format!("<{address}>"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prebuilt_message_gets_a_fresh_message_id_and_smtp_line_ends() {
        let file =
            b"From: a@b.test\nMessage-ID: <old@b.test>\n (folded)\nSubject: s\n\n.dot\nbody\n";
        let template = MessageTemplate::from_message(file, "b.test");
        let copy = [template.message_id_header(1, 2), template.rest().to_vec()].concat();
        assert_eq!(
            String::from_utf8(copy).unwrap(),
            "Message-ID: <loadgen.1.2@b.test>\r\nFrom: a@b.test\r\nSubject: s\r\n\r\n..dot\r\nbody\r\n"
        );
    }

    #[test]
    fn size_is_close_and_lines_are_clean() {
        for size in [1_000, 10_000, 102_400, 1_048_576] {
            let template =
                MessageTemplate::new("a@hopital-a.mssante.test", &["b@x.test".into()], size);
            let actual = template.size();
            assert!(actual.abs_diff(size) < 200, "{size} -> {actual}");
            let text = std::str::from_utf8(template.rest()).unwrap();
            assert!(text.ends_with("\r\n"));
            for line in text.split("\r\n") {
                assert!(!line.starts_with('.'));
                assert!(!line.contains('\n') && line.len() <= 998);
            }
        }
    }
}
