//! Escaping and a minimal writer for the XML this crate emits.
//!
//! The escapes are those of Canonical XML (C14N 1.0), so the parts we sign are already in
//! canonical form when written and stay valid ordinary XML everywhere else.

use std::fmt::Write as _;

/// Escapes character data the way C14N renders text nodes (`&`, `<`, `>`, CR).
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes an attribute value the way C14N renders it (`&`, `<`, `"`, TAB, LF, CR).
pub fn escape_attr(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            _ => out.push(c),
        }
    }
    out
}

/// Appends XML to a string; start tags take attributes in the order given.
///
/// Empty elements are written as a start and an end tag (never `<a/>`), as C14N does.
#[derive(Debug, Default)]
pub struct XmlWriter {
    out: String,
    open: Vec<String>,
}

impl XmlWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens `name` with `attributes` (already ordered by the caller when C14N matters).
    pub fn start(&mut self, name: &str, attributes: &[(&str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        for (key, value) in attributes {
            // Writing to a String cannot fail.
            let _ = write!(self.out, " {key}=\"{}\"", escape_attr(value));
        }
        self.out.push('>');
        self.open.push(name.to_owned());
        self
    }

    /// Writes escaped character data.
    pub fn text(&mut self, text: &str) -> &mut Self {
        self.out.push_str(&escape_text(text));
        self
    }

    /// Writes already-serialised XML as is.
    pub fn raw(&mut self, xml: &str) -> &mut Self {
        self.out.push_str(xml);
        self
    }

    /// Closes the innermost open element.
    pub fn end(&mut self) -> &mut Self {
        if let Some(name) = self.open.pop() {
            self.out.push_str("</");
            self.out.push_str(&name);
            self.out.push('>');
        }
        self
    }

    /// Writes `<name attributes>text</name>`.
    pub fn leaf(&mut self, name: &str, attributes: &[(&str, &str)], text: &str) -> &mut Self {
        self.start(name, attributes).text(text).end()
    }

    /// Closes every open element and returns the text.
    pub fn finish(mut self) -> String {
        while !self.open.is_empty() {
            self.end();
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_follow_c14n() {
        assert_eq!(escape_text("a&b<c>d\r"), "a&amp;b&lt;c&gt;d&#xD;");
        assert_eq!(escape_attr("a&\"<>\n"), "a&amp;&quot;&lt;>&#xA;");
        let mut w = XmlWriter::new();
        w.start("a", &[("x", "1")])
            .leaf("b", &[], "t")
            .start("c", &[]);
        assert_eq!(w.finish(), "<a x=\"1\"><b>t</b><c></c></a>");
    }
}
