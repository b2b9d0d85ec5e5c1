//! A small, hostile-input-safe XML tree for METADATA.XML and CDA headers.
//!
//! Threats handled here: entity expansion (billion laughs) and external entities (XXE) — any
//! `<!DOCTYPE` is refused outright and only the five predefined entities and character
//! references are resolved; deep nesting (stack and memory) — a depth limit; huge documents
//! of tiny elements — an element count limit; undeclared namespace prefixes — refused, since
//! a fragment with an unbound prefix (the ANS DRIM METADATA.XML sample) cannot be interpreted
//! reliably. Processing instructions (`<?xml-stylesheet?>`) are ignored, never followed.

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use thiserror::Error;

/// Limits applied while building a tree.
#[derive(Debug, Clone, Copy)]
pub struct XmlLimits {
    /// Maximum element nesting depth.
    pub max_depth: usize,
    /// Maximum number of elements in the document.
    pub max_elements: usize,
    /// Text kept per element, in bytes; the rest is dropped (not an error). Header values are
    /// short, and the long texts (a CDA level-1 base64 PDF) are never interpreted, so keeping
    /// them would only double the memory of a large document.
    pub max_text: usize,
}

/// Why an XML document was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum XmlError {
    /// The document has a DOCTYPE (DTDs enable entity expansion and external entities).
    #[error("XML document type declarations (DOCTYPE) are refused")]
    Doctype,
    /// An entity reference other than the five predefined ones.
    #[error("XML entity reference `&{name};` is refused (only predefined entities are allowed)")]
    EntityReference {
        /// The entity name.
        name: String,
    },
    /// A namespace prefix is used without being declared.
    #[error("XML namespace prefix `{prefix}` is not declared")]
    UndeclaredPrefix {
        /// The prefix.
        prefix: String,
    },
    /// Elements nest deeper than the limit.
    #[error("XML nesting deeper than {limit} levels")]
    TooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// More elements than the limit.
    #[error("XML document has more than {limit} elements")]
    TooManyElements {
        /// The configured limit.
        limit: usize,
    },
    /// The document is not UTF-8.
    #[error("XML document is not UTF-8")]
    NotUtf8,
    /// The document has no root element.
    #[error("XML document has no root element")]
    Empty,
    /// The parser found the document malformed.
    #[error("malformed XML at byte {position}: {message}")]
    Malformed {
        /// Byte offset in the document.
        position: u64,
        /// Parser message.
        message: String,
    },
}

/// An element: namespace, local name, attributes (by local name), children and text.
#[derive(Debug, Clone, Default)]
pub struct Element {
    /// Namespace URI, if the element is in one.
    pub namespace: Option<String>,
    /// Local name.
    pub name: String,
    /// Attributes as (local name, unescaped value), namespaces declarations excluded.
    pub attributes: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// Concatenated text content directly inside this element.
    pub text: String,
}

impl Element {
    /// The value of the attribute with this local name.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    /// All children with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |child| child.name == name)
    }

    /// Follows a path of local names, taking the first match at each step.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names
            .iter()
            .try_fold(self, |element, name| element.child(name))
    }

    /// Trimmed text content, `None` when empty.
    pub fn trimmed_text(&self) -> Option<&str> {
        let text = self.text.trim();
        (!text.is_empty()).then_some(text)
    }
}

/// Parses a document into a tree, applying the limits.
pub fn parse(input: &[u8], limits: XmlLimits) -> Result<Element, XmlError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text = std::str::from_utf8(input).map_err(|_| XmlError::NotUtf8)?;
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    loop {
        let position = reader.buffer_position();
        let (resolved, event) = reader
            .read_resolved_event()
            .map_err(|error| malformed(position, error))?;
        let namespace = namespace_of(resolved)?;
        match event {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(malformed(position, "content after the root element"));
            }
            Event::Start(start) => {
                elements += 1;
                check_counts(elements, stack.len() + 1, limits)?;
                let element = new_element(&reader, &start, namespace, position)?;
                stack.push(element);
            }
            Event::Empty(start) => {
                elements += 1;
                check_counts(elements, stack.len() + 1, limits)?;
                let element = new_element(&reader, &start, namespace, position)?;
                close(&mut stack, &mut root, element);
            }
            Event::End(_) => {
                let Some(element) = stack.pop() else {
                    return Err(malformed(position, "unmatched end tag"));
                };
                close(&mut stack, &mut root, element);
            }
            Event::Text(content) => {
                if let Some(top) = stack.last_mut() {
                    push_text(&mut top.text, &content.xml10_content(), limits.max_text);
                }
            }
            Event::CData(content) => {
                if let Some(top) = stack.last_mut() {
                    push_text(&mut top.text, &content.into_inner(), limits.max_text);
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = resolve_reference(&reference.xml10_content(), position)?;
                if let Some(top) = stack.last_mut() {
                    push_text(
                        &mut top.text,
                        resolved.encode_utf8(&mut [0; 4]),
                        limits.max_text,
                    );
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(malformed(reader.buffer_position(), "unclosed element"));
    }
    root.ok_or(XmlError::Empty)
}

/// Appends text up to `max` bytes in total, cutting on a character boundary.
fn push_text(text: &mut String, more: &str, max: usize) {
    let room = max.saturating_sub(text.len());
    if more.len() <= room {
        text.push_str(more);
        return;
    }
    let mut cut = room;
    while !more.is_char_boundary(cut) {
        cut -= 1;
    }
    text.push_str(&more[..cut]);
}

fn malformed(position: u64, message: impl ToString) -> XmlError {
    XmlError::Malformed {
        position,
        message: message.to_string(),
    }
}

fn check_counts(elements: usize, depth: usize, limits: XmlLimits) -> Result<(), XmlError> {
    if elements > limits.max_elements {
        return Err(XmlError::TooManyElements {
            limit: limits.max_elements,
        });
    }
    if depth > limits.max_depth {
        return Err(XmlError::TooDeep {
            limit: limits.max_depth,
        });
    }
    Ok(())
}

fn namespace_of(resolved: ResolveResult<'_>) -> Result<Option<String>, XmlError> {
    match resolved {
        ResolveResult::Bound(namespace) => Ok(Some(namespace.into_inner().to_owned())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(prefix) => Err(XmlError::UndeclaredPrefix { prefix }),
    }
}

fn new_element(
    reader: &NsReader<&[u8]>,
    start: &BytesStart<'_>,
    namespace: Option<String>,
    position: u64,
) -> Result<Element, XmlError> {
    let name = start.local_name().into_inner().to_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|error| malformed(position, error))?;
        let qualified = attribute.key;
        if qualified.as_namespace_binding().is_some() {
            continue;
        }
        let (resolved, local) = reader.resolver().resolve_attribute(qualified);
        if let ResolveResult::Unknown(prefix) = resolved {
            return Err(XmlError::UndeclaredPrefix { prefix });
        }
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|error| entity_or_malformed(position, error))?;
        attributes.push((local.into_inner().to_owned(), value.into_owned()));
    }
    Ok(Element {
        namespace,
        name,
        attributes,
        ..Element::default()
    })
}

fn entity_or_malformed(position: u64, error: quick_xml::Error) -> XmlError {
    match error {
        quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(_, name)) => {
            XmlError::EntityReference { name }
        }
        other => malformed(position, other),
    }
}

fn resolve_reference(name: &str, position: u64) -> Result<char, XmlError> {
    let resolved = match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        other => match other.strip_prefix('#') {
            Some(number) => {
                let code = match number.strip_prefix('x') {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => number.parse::<u32>().ok(),
                };
                let character = code.and_then(char::from_u32).filter(|c| *c != '\0');
                Some(character.ok_or_else(|| malformed(position, "invalid character reference"))?)
            }
            None => None,
        },
    };
    resolved.ok_or_else(|| XmlError::EntityReference {
        name: name.chars().take(64).collect(),
    })
}

fn close(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: XmlLimits = XmlLimits {
        max_depth: 16,
        max_elements: 100,
        max_text: 8,
    };

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let root = parse("<a>ééééé&amp;é</a>".as_bytes(), LIMITS).unwrap();
        assert_eq!(root.text, "éééé");
    }

    #[test]
    fn doctype_and_custom_entities_are_refused() {
        let laughs = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><a>&lol;</a>"#;
        assert_eq!(parse(laughs, LIMITS).unwrap_err(), XmlError::Doctype);
        let entity = b"<a>&lol;</a>";
        assert!(matches!(
            parse(entity, LIMITS).unwrap_err(),
            XmlError::EntityReference { .. }
        ));
    }

    #[test]
    fn predefined_entities_and_namespaces_resolve() {
        let doc = br#"<r:a xmlns:r="urn:x" b="1&amp;2"><c>x &lt; y &#233;</c></r:a>"#;
        let root = parse(doc, LIMITS).unwrap();
        assert_eq!(root.namespace.as_deref(), Some("urn:x"));
        assert_eq!(root.attribute("b"), Some("1&2"));
        assert_eq!(root.child("c").unwrap().text, "x < y \u{e9}");
    }

    #[test]
    fn undeclared_prefix_and_depth_are_refused() {
        assert!(matches!(
            parse(b"<ns3:a/>", LIMITS).unwrap_err(),
            XmlError::UndeclaredPrefix { .. }
        ));
        let deep = "<a>".repeat(20) + &"</a>".repeat(20);
        assert_eq!(
            parse(deep.as_bytes(), LIMITS).unwrap_err(),
            XmlError::TooDeep { limit: 16 }
        );
    }
}
