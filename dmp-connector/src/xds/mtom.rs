//! MTOM/XOP `multipart/related` bodies: building the request, parsing it on the DMP side.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Content id of the SOAP root part.
pub const ROOT_CONTENT_ID: &str = "0.1";

/// A binary part to attach.
#[derive(Debug, Clone, Copy)]
pub struct Attachment<'a> {
    /// Content id without angle brackets (e.g. `0.2`).
    pub content_id: &'a str,
    /// Its media type.
    pub content_type: &'a str,
    /// The bytes, sent as `Content-Transfer-Encoding: binary`.
    pub data: &'a [u8],
}

/// A built MTOM body and the HTTP `Content-Type` that goes with it.
#[derive(Debug, Clone)]
pub struct MtomBody {
    /// The HTTP `Content-Type` header value.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// Builds a `multipart/related` XOP body whose root part is `envelope`.
pub fn build(envelope: &str, action: &str, attachments: &[Attachment<'_>]) -> MtomBody {
    let boundary = format!(
        "MIMEBoundary_{}",
        super::new_urn_uuid()["urn:uuid:".len()..].replace('-', "")
    );
    let mut body = Vec::with_capacity(
        envelope.len()
            + attachments
                .iter()
                .map(|a| a.data.len() + 200)
                .sum::<usize>()
            + 400,
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"; action=\"{action}\"\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{ROOT_CONTENT_ID}>\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(envelope.as_bytes());
    for attachment in attachments {
        body.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Type: {}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{}>\r\n\r\n",
                attachment.content_type, attachment.content_id
            )
            .as_bytes(),
        );
        body.extend_from_slice(attachment.data);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    MtomBody {
        content_type: format!(
            "multipart/related; type=\"application/xop+xml\"; start=\"<{ROOT_CONTENT_ID}>\"; start-info=\"application/soap+xml\"; action=\"{action}\"; boundary=\"{boundary}\""
        ),
        body,
    }
}

/// Why an MTOM body could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MtomError {
    /// The `Content-Type` has no `boundary` parameter.
    #[error("multipart/related without boundary")]
    NoBoundary,
    /// The body does not contain the delimiters it announces.
    #[error("malformed multipart body: {0}")]
    Malformed(&'static str),
    /// A part declared base64 but is not.
    #[error("part <{content_id}> is not valid base64")]
    BadBase64 {
        /// The part.
        content_id: String,
    },
}

/// One part of a parsed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Content id without angle brackets.
    pub content_id: String,
    /// Its `Content-Type`, when given.
    pub content_type: Option<String>,
    /// Decoded content.
    pub data: Vec<u8>,
}

/// A parsed MTOM body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtomMessage {
    /// The root part (the SOAP envelope).
    pub root: Part,
    /// The other parts.
    pub parts: Vec<Part>,
}

impl MtomMessage {
    /// The part with content id `id` (brackets and a `cid:` prefix tolerated).
    pub fn part(&self, id: &str) -> Option<&Part> {
        let id = id.strip_prefix("cid:").unwrap_or(id);
        let id = id.trim_start_matches('<').trim_end_matches('>');
        self.parts.iter().find(|p| p.content_id == id)
    }
}

/// The value of parameter `name` in a header value such as a `Content-Type`.
pub fn header_parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|param| {
        let (key, val) = param.split_once('=')?;
        if key.trim().eq_ignore_ascii_case(name) {
            Some(val.trim().trim_matches('"').to_owned())
        } else {
            None
        }
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Parses a `multipart/related` body given its HTTP `Content-Type`.
pub fn parse(content_type: &str, body: &[u8]) -> Result<MtomMessage, MtomError> {
    let boundary = header_parameter(content_type, "boundary").ok_or(MtomError::NoBoundary)?;
    let start = header_parameter(content_type, "start");
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut position =
        find(body, delimiter, 0).ok_or(MtomError::Malformed("no opening delimiter"))?;
    let mut parts = Vec::new();
    loop {
        let after = position + delimiter.len();
        if body.get(after..after + 2) == Some(b"--") {
            break;
        }
        // Skip to the end of the delimiter line.
        let line_end =
            find(body, b"\n", after).ok_or(MtomError::Malformed("truncated delimiter line"))?;
        let next =
            find(body, delimiter, line_end).ok_or(MtomError::Malformed("no closing delimiter"))?;
        // The CRLF (or LF) before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
        let mut content_end = next;
        if content_end > 0 && body[content_end - 1] == b'\n' {
            content_end -= 1;
            if content_end > 0 && body[content_end - 1] == b'\r' {
                content_end -= 1;
            }
        }
        let part = &body[line_end + 1..content_end.max(line_end + 1)];
        parts.push(parse_part(part)?);
        position = next;
    }
    let root_index = match start {
        Some(id) => {
            let id = id.trim_start_matches('<').trim_end_matches('>').to_owned();
            parts.iter().position(|p| p.content_id == id).unwrap_or(0)
        }
        None => 0,
    };
    if parts.is_empty() {
        return Err(MtomError::Malformed("no parts"));
    }
    let root = parts.remove(root_index);
    Ok(MtomMessage { root, parts })
}

fn parse_part(part: &[u8]) -> Result<Part, MtomError> {
    let (header_end, body_start) = match find(part, b"\r\n\r\n", 0) {
        Some(i) => (i, i + 4),
        None => match find(part, b"\n\n", 0) {
            Some(i) => (i, i + 2),
            None => return Err(MtomError::Malformed("part without header block")),
        },
    };
    let headers = String::from_utf8_lossy(&part[..header_end]);
    let mut content_id = String::new();
    let mut content_type = None;
    let mut base64 = false;
    for line in headers.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-id" => {
                content_id = value
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_owned()
            }
            "content-type" => content_type = Some(value.to_owned()),
            "content-transfer-encoding" => base64 = value.eq_ignore_ascii_case("base64"),
            _ => {}
        }
    }
    let raw = &part[body_start..];
    let data = if base64 {
        let compact: Vec<u8> = raw
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        BASE64.decode(compact).map_err(|_| MtomError::BadBase64 {
            content_id: content_id.clone(),
        })?
    } else {
        raw.to_vec()
    };
    Ok(Part {
        content_id,
        content_type,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_binary_parts() {
        let doc = b"\r\n--not-a-boundary\r\n\x00\xff binary";
        let body = build(
            "<env/>",
            "urn:a",
            &[Attachment {
                content_id: "0.2",
                content_type: "text/xml",
                data: doc,
            }],
        );
        let parsed = parse(&body.content_type, &body.body).expect("parse");
        assert_eq!(parsed.root.data, b"<env/>");
        assert_eq!(parsed.part("cid:0.2").expect("part").data, doc);
        assert!(body.content_type.contains("start=\"<0.1>\""));
    }
}
