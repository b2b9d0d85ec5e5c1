//! The MIME shapes of S/MIME (RFC 8551 §3): multipart/signed split at its exact bytes, and
//! application/pkcs7-mime bodies decoded to DER.

use std::borrow::Cow;

use mail_parser::{Message, MessageParser, MimeHeaders};

/// What a MIME entity is, as far as S/MIME is concerned.
pub enum Shape<'a> {
    /// multipart/signed: the first part exactly as received, and the detached CMS signature (DER).
    Detached {
        /// Bytes the signature covers: the first body part, its headers included, CRLF line ends.
        signed: &'a [u8],
        /// The decoded application/pkcs7-signature part.
        signature: Vec<u8>,
    },
    /// application/pkcs7-mime (signed-data, enveloped-data or authEnveloped-data): the decoded CMS.
    Opaque(Vec<u8>),
    /// Anything else: not S/MIME.
    Plain,
}

/// Turns a message stored with bare LF line ends (an .eml file, an mbox) into CRLF, as it was on the wire.
///
/// Only a message with no CR at all is touched: mixed line ends are left as they are, so no byte a
/// signature may cover is changed behind the verifier's back.
pub fn canonical_line_ends(raw: &[u8]) -> Cow<'_, [u8]> {
    if raw.contains(&b'\r') || !raw.contains(&b'\n') {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    for &byte in raw {
        if byte == b'\n' {
            out.push(b'\r');
        }
        out.push(byte);
    }
    Cow::Owned(out)
}

/// Parses the headers (and body) of an entity.
pub fn parse(entity: &[u8]) -> Result<Message<'_>, String> {
    MessageParser::default()
        .parse(entity)
        .ok_or_else(|| "not a MIME entity".to_owned())
}

/// Parses only the header block of an entity: the body of a 100 KB message need not be parsed to find
/// its Content-Type, its From or a multipart boundary.
pub fn parse_headers(entity: &[u8]) -> Result<Message<'_>, String> {
    parse(&entity[..body_start(entity).unwrap_or(entity.len())])
}

/// Classifies an entity by its top-level Content-Type (`message` may hold only the headers).
pub fn shape<'a>(entity: &'a [u8], message: &Message<'_>) -> Result<Shape<'a>, String> {
    let Some(content_type) = message.content_type() else {
        return Ok(Shape::Plain);
    };
    let subtype = content_type
        .subtype()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match (
        content_type.ctype().to_ascii_lowercase().as_str(),
        subtype.as_str(),
    ) {
        ("multipart", "signed") => {
            let protocol = content_type
                .attribute("protocol")
                .unwrap_or_default()
                .to_ascii_lowercase();
            if protocol != "application/pkcs7-signature"
                && protocol != "application/x-pkcs7-signature"
            {
                return Err(format!(
                    "multipart/signed with unsupported protocol {protocol:?}"
                ));
            }
            let boundary = content_type
                .attribute("boundary")
                .ok_or("multipart/signed without boundary")?;
            let (signed, signature_part) = split_signed(entity, boundary)?;
            let signature_message = parse(signature_part)?;
            let signature_type = signature_message
                .content_type()
                .map(|ct| {
                    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default())
                        .to_ascii_lowercase()
                })
                .unwrap_or_default();
            if signature_type != "application/pkcs7-signature"
                && signature_type != "application/x-pkcs7-signature"
            {
                return Err(format!(
                    "second part of multipart/signed is {signature_type:?}"
                ));
            }
            let signature = signature_message.root_part().contents().to_vec();
            if signature.is_empty() {
                return Err("empty signature part".to_owned());
            }
            Ok(Shape::Detached { signed, signature })
        }
        ("application", "pkcs7-mime" | "x-pkcs7-mime") => {
            let der = parse(entity)?.root_part().contents().to_vec();
            if der.is_empty() {
                return Err("empty application/pkcs7-mime body".to_owned());
            }
            Ok(Shape::Opaque(der))
        }
        _ => Ok(Shape::Plain),
    }
}

/// Index of the first body byte (after the blank line ending the headers).
pub fn body_start(entity: &[u8]) -> Option<usize> {
    if entity.starts_with(b"\r\n") {
        return Some(2);
    }
    entity
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
}

/// Splits a multipart/signed body into its two parts per RFC 2046 §5.1.1: the CRLF before a delimiter
/// belongs to the delimiter, so the first part ends just before it.
fn split_signed<'a>(entity: &'a [u8], boundary: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    let start = body_start(entity).ok_or("no blank line after the headers")?;
    let delimiter = format!("--{boundary}");
    let mut delimiters = Vec::new(); // (line start, next line start, closing)
    let mut line_start = start;
    while line_start < entity.len() {
        let line_end = find_crlf(entity, line_start).unwrap_or(entity.len());
        let line = &entity[line_start..line_end];
        if let Some(rest) = line.strip_prefix(delimiter.as_bytes()) {
            let (closing, padding) = match rest.strip_prefix(b"--") {
                Some(padding) => (true, padding),
                None => (false, rest),
            };
            // Transport padding only; anything else means a longer boundary that merely starts the same.
            if padding.iter().all(|b| *b == b' ' || *b == b'\t') {
                delimiters.push((line_start, (line_end + 2).min(entity.len()), closing));
                if closing {
                    break;
                }
            }
        }
        line_start = line_end + 2;
    }
    match delimiters.as_slice() {
        [
            (_, first, false),
            (second_start, second, false),
            (close_start, _, true),
        ] if *second_start >= *first + 2 => {
            let signed = &entity[*first..second_start - 2];
            let signature = entity
                .get(*second..close_start.saturating_sub(2))
                .ok_or("empty signature part")?;
            Ok((signed, signature))
        }
        _ => Err(format!(
            "multipart/signed must hold exactly two parts ({} delimiters found)",
            delimiters.len()
        )),
    }
}

fn find_crlf(bytes: &[u8], from: usize) -> Option<usize> {
    // memchr's SIMD byte search: a 100 KB part is scanned line by line.
    let mut at = from;
    while let Some(offset) = memchr::memchr(b'\n', &bytes[at..]) {
        let newline = at + offset;
        if newline > from && bytes[newline - 1] == b'\r' {
            return Some(newline - 1);
        }
        at = newline + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_exact_bytes() {
        let raw = b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=b\r\n\r\npreamble\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n\r\n--b \r\nsig\r\n--b--\r\n";
        let (signed, signature) = split_signed(raw, "b").unwrap();
        assert_eq!(signed, b"Content-Type: text/plain\r\n\r\nhello\r\n");
        assert_eq!(signature, b"sig");
    }

    #[test]
    fn refuses_a_third_part_and_longer_boundaries() {
        let three = b"X: y\r\n\r\n--b\r\nA\r\n--b\r\nB\r\n--b\r\nC\r\n--b--\r\n";
        assert!(split_signed(three, "b").is_err());
        let longer = b"X: y\r\n\r\n--b\r\nA\r\n--bb\r\nB\r\n--b--\r\n";
        assert!(split_signed(longer, "b").is_err());
    }

    #[test]
    fn converts_bare_lf_only_when_there_is_no_cr() {
        assert_eq!(&*canonical_line_ends(b"a\nb\n"), b"a\r\nb\r\n");
        assert_eq!(&*canonical_line_ends(b"a\r\nb\n"), b"a\r\nb\n");
    }
}
