//! MIME walk of the verified inner entity: every leaf part that may carry a document.
//!
//! mail-parser decodes base64 and quoted-printable and RFC 2231/2047 file names; this walk adds
//! the limits (leaf count, nesting depth, total decoded size) and descends into
//! `message/rfc822` parts, where a forwarded message may carry the documents. The decoded size
//! is already bounded by the SMTP message size (decoding never grows data); the limit bounds
//! what the later stages (unzip, XML) will be handed.

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

use super::{DocumentError, DocumentPolicy};

/// One leaf part of the message.
#[derive(Debug, Clone)]
pub struct Attachment<'m> {
    /// File name (Content-Disposition `filename` or Content-Type `name`), decoded.
    pub name: Option<String>,
    /// `type/subtype`, lower case (`text/plain` when absent).
    pub content_type: String,
    /// Decoded content.
    pub bytes: &'m [u8],
}

impl Attachment<'_> {
    /// A name for messages and the ledger: the file name or `part N (<type>)`.
    pub fn display_name(&self, index: usize) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => format!("part {} ({})", index + 1, self.content_type),
        }
    }

    /// Whether this is a message body (text without a file name) rather than an attachment.
    pub fn is_body_text(&self) -> bool {
        self.name.is_none()
            && (self.content_type == "text/plain" || self.content_type == "text/html")
    }
}

/// Collects the leaf parts of a parsed message, enforcing the policy's MIME limits.
pub fn leaf_parts<'m>(
    message: &'m Message<'m>,
    policy: &DocumentPolicy,
) -> Result<Vec<Attachment<'m>>, DocumentError> {
    let mut walk = Walk {
        policy,
        leaves: Vec::new(),
        decoded: 0,
    };
    walk.message(message, 0)?;
    Ok(walk.leaves)
}

struct Walk<'p, 'm> {
    policy: &'p DocumentPolicy,
    leaves: Vec<Attachment<'m>>,
    decoded: u64,
}

impl<'m> Walk<'_, 'm> {
    fn message(&mut self, message: &'m Message<'m>, depth: usize) -> Result<(), DocumentError> {
        if message.parts.is_empty() {
            return Ok(());
        }
        self.part(message, 0, depth)
    }

    fn part(
        &mut self,
        message: &'m Message<'m>,
        id: usize,
        depth: usize,
    ) -> Result<(), DocumentError> {
        if depth > self.policy.max_mime_depth {
            return Err(DocumentError::MimeTooDeep {
                limit: self.policy.max_mime_depth,
            });
        }
        let Some(part) = message.parts.get(id) else {
            return Ok(());
        };
        match &part.body {
            PartType::Multipart(children) => {
                for child in children {
                    self.part(message, *child as usize, depth + 1)?;
                }
                Ok(())
            }
            PartType::Message(nested) => self.message(nested, depth + 1),
            _ => self.leaf(part),
        }
    }

    fn leaf(&mut self, part: &'m MessagePart<'m>) -> Result<(), DocumentError> {
        if self.leaves.len() >= self.policy.max_attachments {
            return Err(DocumentError::TooManyParts {
                count: self.leaves.len() + 1,
                limit: self.policy.max_attachments,
            });
        }
        let bytes = part.contents();
        self.decoded = self.decoded.saturating_add(bytes.len() as u64);
        if self.decoded > self.policy.max_decoded_size {
            return Err(DocumentError::DecodedTooLarge {
                limit: self.policy.max_decoded_size,
            });
        }
        let content_type = part
            .content_type()
            .map(|content_type| match content_type.subtype() {
                Some(subtype) => format!("{}/{}", content_type.ctype(), subtype),
                None => content_type.ctype().to_owned(),
            })
            .unwrap_or_else(|| "text/plain".to_owned())
            .to_ascii_lowercase();
        self.leaves.push(Attachment {
            name: part.attachment_name().map(str::to_owned),
            content_type,
            bytes,
        });
        Ok(())
    }
}

/// The raw value of a top-level header, trimmed (e.g. `X-MSS-CODECDA`).
pub fn header_text(message: &Message<'_>, name: &str) -> Option<String> {
    message
        .header_raw(name)
        .map(|value| value.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|value| !value.is_empty())
}
