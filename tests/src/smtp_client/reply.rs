//! SMTP replies (RFC 5321 §4.2): a three-digit code and one or more text lines.

use std::fmt;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use super::error::{SmtpClientError, Stage};

/// Longest reply line we accept; RFC 5321 allows 512 octets, servers sometimes send more.
const MAX_LINE: u64 = 4096;
/// Most lines in one reply; a server streaming endless continuation lines is broken or hostile.
const MAX_LINES: usize = 256;

/// A complete (possibly multi-line) server reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply code, e.g. 250.
    pub code: u16,
    /// The text of each line, without the code and separator.
    pub lines: Vec<String>,
}

impl Reply {
    /// Whether the code is a positive completion (2xx).
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// Whether an EHLO reply advertises `keyword` (case-insensitive; the first line is the greeting).
    pub fn has_extension(&self, keyword: &str) -> bool {
        self.lines.iter().skip(1).any(|line| {
            line.split_ascii_whitespace()
                .next()
                .is_some_and(|first| first.eq_ignore_ascii_case(keyword))
        })
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" / "))
    }
}

/// One parsed reply line.
struct Line {
    code: u16,
    last: bool,
    text: String,
}

/// Parses `250-text`, `250 text` or a bare `250`.
fn parse_line(raw: &[u8]) -> Option<Line> {
    let raw = raw.strip_suffix(b"\n")?;
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let (digits, rest) = raw.split_at_checked(3)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&digits[0]) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, digit| acc * 10 + u16::from(digit - b'0'));
    let (last, text) = match rest.split_first() {
        None => (true, &[][..]),
        Some((b' ', text)) => (true, text),
        Some((b'-', text)) => (false, text),
        Some(_) => return None,
    };
    Some(Line {
        code,
        last,
        text: String::from_utf8_lossy(text).into_owned(),
    })
}

/// Reads one complete reply from `reader`.
pub async fn read_reply<R>(reader: &mut R, stage: Stage) -> Result<Reply, SmtpClientError>
where
    R: AsyncBufRead + Unpin,
{
    let mut lines = Vec::new();
    let mut code = None;
    let mut raw = Vec::with_capacity(128);
    loop {
        raw.clear();
        let read = (&mut *reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut raw)
            .await
            .map_err(|source| SmtpClientError::Io { stage, source })?;
        if read == 0 {
            return Err(SmtpClientError::Closed { stage });
        }
        let malformed = || SmtpClientError::Malformed {
            stage,
            line: String::from_utf8_lossy(&raw).into_owned(),
        };
        let line = parse_line(&raw).ok_or_else(malformed)?;
        if *code.get_or_insert(line.code) != line.code || lines.len() >= MAX_LINES {
            return Err(malformed());
        }
        lines.push(line.text);
        if line.last {
            return Ok(Reply {
                code: line.code,
                lines,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(input: &[u8]) -> Result<Reply, SmtpClientError> {
        let mut reader = tokio::io::BufReader::new(input);
        read_reply(&mut reader, Stage::Ehlo).await
    }

    #[tokio::test]
    async fn multi_line_ehlo() {
        let reply = parse(b"250-mx.test Hello\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
            .await
            .unwrap();
        assert_eq!(reply.code, 250);
        assert!(reply.has_extension("starttls"));
        assert!(!reply.has_extension("mx.test"));
    }

    #[tokio::test]
    async fn bare_code_and_lf_only() {
        let reply = parse(b"354\n").await.unwrap();
        assert_eq!(reply.code, 354);
        assert_eq!(reply.lines, vec![String::new()]);
    }

    #[tokio::test]
    async fn refuses_mixed_codes_and_garbage() {
        assert!(parse(b"250-a\r\n251 b\r\n").await.is_err());
        assert!(parse(b"hello\r\n").await.is_err());
        assert!(matches!(
            parse(b"250-a\r\n").await,
            Err(SmtpClientError::Closed { .. })
        ));
    }
}
