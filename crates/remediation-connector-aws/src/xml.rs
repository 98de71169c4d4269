//! A small element tree over `xmlparser` for AWS's XML answers, and escaping for the XML
//! bodies the connector sends. Namespaces are ignored: AWS answers put everything in one.

use remediation_core::ConnectorError;

/// One XML element: its local name, its text and its children, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) text: String,
    pub(crate) children: Vec<Element>,
}

/// Deepest nesting accepted; AWS answers nest about six levels.
const MAX_DEPTH: usize = 64;

impl Element {
    /// Parses a whole document; its root element.
    pub(crate) fn parse(body: &[u8]) -> Result<Element, ConnectorError> {
        let text =
            std::str::from_utf8(body).map_err(|_| ConnectorError::permanent("AWS answered XML that is not UTF-8"))?;
        let bad = |e: xmlparser::Error| ConnectorError::permanent(format!("AWS answered malformed XML: {e}"));
        let mut stack: Vec<Element> = Vec::new();
        let mut root = None;
        for token in xmlparser::Tokenizer::from(text) {
            match token.map_err(bad)? {
                xmlparser::Token::ElementStart { local, .. } => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(ConnectorError::permanent("AWS answered XML nested too deeply"));
                    }
                    stack.push(Element { name: local.as_str().to_owned(), ..Element::default() });
                }
                xmlparser::Token::ElementEnd { end, .. } => match end {
                    xmlparser::ElementEnd::Open => {}
                    xmlparser::ElementEnd::Close(..) | xmlparser::ElementEnd::Empty => {
                        let Some(done) = stack.pop() else {
                            return Err(ConnectorError::permanent("AWS answered XML with an unmatched end tag"));
                        };
                        match stack.last_mut() {
                            Some(parent) => parent.children.push(done),
                            None => root = Some(done),
                        }
                    }
                },
                xmlparser::Token::Text { text } => {
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&unescape(text.as_str()));
                    }
                }
                xmlparser::Token::Cdata { text, .. } => {
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(text.as_str());
                    }
                }
                _ => {}
            }
        }
        root.ok_or_else(|| ConnectorError::permanent("AWS answered without an XML document"))
    }

    /// The first child named `name`.
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the first child named `name`.
    pub(crate) fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// The element at `path` below this one (each step the first child of that name).
    pub(crate) fn path(&self, path: &[&str]) -> Option<&Element> {
        path.iter().try_fold(self, |e, step| e.child(step))
    }

    /// The first element named `name` anywhere below this one, depth first.
    pub(crate) fn find(&self, name: &str) -> Option<&Element> {
        self.children.iter().find_map(|c| if c.name == name { Some(c) } else { c.find(name) })
    }
}

/// Replaces the predefined entities and character references.
fn unescape(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for an XML element's content.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests stop at the unexpected
mod tests {
    use super::*;

    #[test]
    fn parses_nested_elements_with_entities() {
        let doc = br#"<?xml version="1.0"?><R xmlns="x"><A><B>one &amp; two</B><B>&#65;&#x42;</B></A><C/></R>"#;
        let root = Element::parse(doc).unwrap();
        assert_eq!(root.name, "R");
        let texts: Vec<_> = root.child("A").unwrap().all("B").map(|b| b.text.as_str()).collect();
        assert_eq!(texts, ["one & two", "AB"]);
        assert!(root.child("C").is_some());
        assert_eq!(root.find("B").map(|b| b.text.as_str()), Some("one & two"));
        assert_eq!(escape("<a&'\">"), "&lt;a&amp;&apos;&quot;&gt;");
        assert!(Element::parse(b"<a><b></a>").is_err());
        assert!(Element::parse(b"").is_err());
    }
}
