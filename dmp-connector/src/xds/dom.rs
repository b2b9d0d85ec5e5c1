//! A small namespace-aware XML tree, enough for SOAP responses, ebRIM metadata and XML-DSig.
//!
//! Built on quick-xml's low-level reader with our own namespace scopes, so every element keeps
//! its prefix, its resolved namespace and the declarations written on it: exclusive C14N
//! ([`exc_c14n`]) needs all three. Documents with a `<!DOCTYPE` are refused (no entity
//! expansion, no external resources).

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::xml::{escape_attr, escape_text};

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DomError {
    /// quick-xml rejected the input.
    #[error("malformed XML at byte {position}: {message}")]
    Malformed {
        /// Byte offset reached by the reader.
        position: u64,
        /// The parser's message.
        message: String,
    },
    /// A `<!DOCTYPE` was present.
    #[error("DOCTYPE declarations are refused")]
    Doctype,
    /// A prefix was used without a declaration in scope.
    #[error("undeclared namespace prefix {0:?}")]
    UndeclaredPrefix(String),
    /// The document had no root element, or unbalanced tags.
    #[error("no single root element")]
    NoRoot,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A child element.
    Element(Element),
    /// Character data (entities resolved).
    Text(String),
}

/// An attribute (not a namespace declaration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Prefix, empty when unqualified.
    pub prefix: String,
    /// Local name.
    pub local: String,
    /// Namespace URI, empty when unqualified.
    pub ns: String,
    /// Value with references resolved.
    pub value: String,
}

/// An element with its namespace information.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Prefix, empty for the default namespace.
    pub prefix: String,
    /// Local name.
    pub local: String,
    /// Resolved namespace URI (empty when none).
    pub ns: String,
    /// Namespace declarations written on this element (`""` = default namespace).
    pub declarations: Vec<(String, String)>,
    /// Attributes in document order.
    pub attributes: Vec<Attribute>,
    /// Children in document order.
    pub children: Vec<Node>,
}

impl Element {
    /// Whether the element is `{ns}local`.
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns == ns && self.local == local
    }

    /// The value of the unqualified attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.ns.is_empty() && a.local == name)
            .map(|a| a.value.as_str())
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element `{ns}local`.
    pub fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, local))
    }

    /// All child elements `{ns}local`.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        local: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.is(ns, local))
    }

    /// The first descendant (depth first, self included) `{ns}local`.
    pub fn find(&self, ns: &str, local: &str) -> Option<&Element> {
        if self.is(ns, local) {
            return Some(self);
        }
        self.elements().find_map(|e| e.find(ns, local))
    }

    /// Concatenated text of the direct text children, trimmed.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for node in &self.children {
            if let Node::Text(t) = node {
                out.push_str(t);
            }
        }
        out.trim().to_owned()
    }

    /// The qualified name as written.
    pub fn qname(&self) -> String {
        qualified(&self.prefix, &self.local)
    }
}

fn qualified(prefix: &str, local: &str) -> String {
    if prefix.is_empty() {
        local.to_owned()
    } else {
        format!("{prefix}:{local}")
    }
}

fn split_qname(raw: &str) -> (&str, &str) {
    match raw.split_once(':') {
        Some((prefix, local)) => (prefix, local),
        None => ("", raw),
    }
}

struct Scopes {
    frames: Vec<Vec<(String, String)>>,
}

impl Scopes {
    fn lookup(&self, prefix: &str) -> Option<&str> {
        if prefix == "xml" {
            return Some("http://www.w3.org/XML/1998/namespace");
        }
        for frame in self.frames.iter().rev() {
            if let Some((_, uri)) = frame.iter().rev().find(|(p, _)| p == prefix) {
                return Some(uri);
            }
        }
        None
    }
}

fn malformed(reader: &Reader<&[u8]>, message: impl ToString) -> DomError {
    DomError::Malformed {
        position: reader.buffer_position(),
        message: message.to_string(),
    }
}

fn open_element(
    start: &BytesStart<'_>,
    scopes: &mut Scopes,
    reader: &Reader<&[u8]>,
) -> Result<Element, DomError> {
    let name = start.name();
    let raw_name: &str = name.as_ref();
    let raw_name = raw_name.to_owned();
    let mut declarations = Vec::new();
    let mut raw_attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| malformed(reader, e))?;
        let key: &str = attribute.key.as_ref();
        let key = key.to_owned();
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| malformed(reader, e))?
            .into_owned();
        if key == "xmlns" {
            declarations.push((String::new(), value));
        } else if let Some(prefix) = key.strip_prefix("xmlns:") {
            declarations.push((prefix.to_owned(), value));
        } else {
            raw_attributes.push((key, value));
        }
    }
    scopes.frames.push(declarations.clone());
    let (prefix, local) = split_qname(&raw_name);
    let ns = match scopes.lookup(prefix) {
        Some(uri) => uri.to_owned(),
        None if prefix.is_empty() => String::new(),
        None => return Err(DomError::UndeclaredPrefix(prefix.to_owned())),
    };
    let mut attributes = Vec::with_capacity(raw_attributes.len());
    for (key, value) in raw_attributes {
        let (a_prefix, a_local) = split_qname(&key);
        let a_ns = if a_prefix.is_empty() {
            String::new()
        } else {
            scopes
                .lookup(a_prefix)
                .ok_or_else(|| DomError::UndeclaredPrefix(a_prefix.to_owned()))?
                .to_owned()
        };
        attributes.push(Attribute {
            prefix: a_prefix.to_owned(),
            local: a_local.to_owned(),
            ns: a_ns,
            value,
        });
    }
    Ok(Element {
        prefix: prefix.to_owned(),
        local: local.to_owned(),
        ns,
        declarations,
        attributes,
        children: Vec::new(),
    })
}

fn push_text(stack: &mut [Element], text: &str) {
    if let Some(top) = stack.last_mut() {
        if let Some(Node::Text(previous)) = top.children.last_mut() {
            previous.push_str(text);
        } else {
            top.children.push(Node::Text(text.to_owned()));
        }
    }
}

/// Parses a document into its root element.
pub fn parse(input: &[u8]) -> Result<Element, DomError> {
    let mut reader = Reader::from_reader(input);
    let mut scopes = Scopes { frames: Vec::new() };
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let event = reader.read_event().map_err(|e| malformed(&reader, e))?;
        match event {
            Event::Start(start) => {
                let element = open_element(&start, &mut scopes, &reader)?;
                stack.push(element);
            }
            Event::Empty(start) => {
                let element = open_element(&start, &mut scopes, &reader)?;
                scopes.frames.pop();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None if root.is_none() => root = Some(element),
                    None => return Err(DomError::NoRoot),
                }
            }
            Event::End(_) => {
                scopes.frames.pop();
                let element = stack.pop().ok_or(DomError::NoRoot)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None if root.is_none() => root = Some(element),
                    None => return Err(DomError::NoRoot),
                }
            }
            Event::Text(text) => {
                let raw: &str = &text[..];
                // Line ends are normalised to LF by XML parsers (XML 1.0 §2.11).
                push_text(&mut stack, &raw.replace("\r\n", "\n"));
            }
            Event::CData(data) => {
                let raw: &str = &data[..];
                push_text(&mut stack, raw);
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name: &str = &reference[..];
                        match name {
                            "amp" => "&".to_owned(),
                            "lt" => "<".to_owned(),
                            "gt" => ">".to_owned(),
                            "quot" => "\"".to_owned(),
                            "apos" => "'".to_owned(),
                            other => {
                                return Err(malformed(
                                    &reader,
                                    format!("unknown entity &{other};"),
                                ));
                            }
                        }
                    }
                    Err(e) => return Err(malformed(&reader, e)),
                };
                push_text(&mut stack, &resolved);
            }
            Event::DocType(_) => return Err(DomError::Doctype),
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(DomError::NoRoot);
    }
    root.ok_or(DomError::NoRoot)
}

/// Exclusive XML Canonicalization 1.0 (without comments, no InclusiveNamespaces) of `element`
/// as a document subset apex, leaving out every descendant for which `skip` is true (the
/// enveloped-signature transform passes the `ds:Signature` element).
pub fn exc_c14n(element: &Element, skip: &dyn Fn(&Element) -> bool) -> String {
    let mut out = String::new();
    let mut rendered: Vec<(String, String)> = Vec::new();
    write_c14n(element, skip, &mut rendered, &mut out);
    out
}

fn write_c14n(
    element: &Element,
    skip: &dyn Fn(&Element) -> bool,
    rendered: &mut Vec<(String, String)>,
    out: &mut String,
) {
    // Visibly utilised prefixes: the element's own and those of its qualified attributes.
    let mut used: Vec<(String, String)> = vec![(element.prefix.clone(), element.ns.clone())];
    for attribute in &element.attributes {
        if !attribute.prefix.is_empty() && attribute.prefix != "xml" {
            used.push((attribute.prefix.clone(), attribute.ns.clone()));
        }
    }
    used.sort();
    used.dedup();
    let mark = rendered.len();
    let mut declarations = Vec::new();
    for (prefix, uri) in used {
        let current = rendered
            .iter()
            .rev()
            .find(|(p, _)| *p == prefix)
            .map(|(_, u)| u.as_str());
        let needed = match current {
            Some(existing) => existing != uri,
            // An empty default namespace needs no declaration unless a non-empty one is in force.
            None => !(prefix.is_empty() && uri.is_empty()),
        };
        if needed {
            declarations.push((prefix.clone(), uri.clone()));
            rendered.push((prefix, uri));
        }
    }
    out.push('<');
    out.push_str(&element.qname());
    for (prefix, uri) in &declarations {
        if prefix.is_empty() {
            out.push_str(&format!(" xmlns=\"{}\"", escape_attr(uri)));
        } else {
            out.push_str(&format!(" xmlns:{prefix}=\"{}\"", escape_attr(uri)));
        }
    }
    let mut attributes: Vec<&Attribute> = element.attributes.iter().collect();
    attributes.sort_by(|a, b| (&a.ns, &a.local).cmp(&(&b.ns, &b.local)));
    for attribute in attributes {
        out.push_str(&format!(
            " {}=\"{}\"",
            qualified(&attribute.prefix, &attribute.local),
            escape_attr(&attribute.value)
        ));
    }
    out.push('>');
    for child in &element.children {
        match child {
            Node::Text(text) => out.push_str(&escape_text(text)),
            Node::Element(e) if skip(e) => {}
            Node::Element(e) => write_c14n(e, skip, rendered, out),
        }
    }
    out.push_str("</");
    out.push_str(&element.qname());
    out.push('>');
    rendered.truncate(mark);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_namespaces_and_canonicalises() {
        let doc = br#"<?xml version="1.0"?><a:r xmlns:a="urn:a" xmlns:b="urn:b" z="1" b:y="2" x="&amp;"><a:c/><d xmlns="urn:d">t&lt;<![CDATA[<]]></d></a:r>"#;
        let root = parse(doc).expect("parse");
        assert!(root.is("urn:a", "r"));
        assert_eq!(root.attr("x"), Some("&"));
        let c14n = exc_c14n(&root, &|_| false);
        assert_eq!(
            c14n,
            r#"<a:r xmlns:a="urn:a" xmlns:b="urn:b" x="&amp;" z="1" b:y="2"><a:c></a:c><d xmlns="urn:d">t&lt;&lt;</d></a:r>"#
        );
        let inner = root.child("urn:d", "d").expect("d");
        assert_eq!(
            exc_c14n(inner, &|_| false),
            r#"<d xmlns="urn:d">t&lt;&lt;</d>"#
        );
    }

    #[test]
    fn refuses_doctype() {
        assert!(matches!(
            parse(b"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>"),
            Err(DomError::Doctype)
        ));
    }
}
