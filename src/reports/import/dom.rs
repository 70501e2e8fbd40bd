//! A small element tree built from ammonia's sanitised output, at most
//! [`MAX_DEPTH`] deep.
//!
//! ammonia serialises a well-formed tree (every element but the void ones
//! closed, text escaped, no scripts or styles), so html5ever's tokenizer
//! alone is enough to rebuild it; no second HTML parser is needed.

use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Node {
    Element(Element),
    Text(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Element {
    /// The tag name, lower-case.
    pub name: String,
    pub id: Option<String>,
    pub classes: Vec<String>,
    pub href: Option<String>,
    /// An image's address and alternative text.
    pub src: Option<String>,
    pub alt: Option<String>,
    /// An ordered list's `start`.
    pub start: Option<u64>,
    pub children: Vec<Node>,
}

impl Element {
    pub fn has_class(&self, class: &str) -> bool {
        self.classes.iter().any(|c| c == class)
    }

    /// The element's text, with its descendants' text in document order.
    pub fn text(&self) -> String {
        let mut text = String::new();
        self.push_text(&mut text);
        text
    }

    fn push_text(&self, out: &mut String) {
        for child in &self.children {
            match child {
                Node::Text(t) => out.push_str(t),
                Node::Element(e) => e.push_text(out),
            }
        }
    }

    /// The first element, in document order, that `matches`; this element
    /// included.
    pub fn find(&self, matches: &dyn Fn(&Element) -> bool) -> Option<&Element> {
        if matches(self) {
            return Some(self);
        }
        self.children.iter().find_map(|child| match child {
            Node::Element(e) => e.find(matches),
            Node::Text(_) => None,
        })
    }

    /// Every element that `matches` and has no matching ancestor.
    pub fn find_outermost<'a>(
        &'a self,
        matches: &dyn Fn(&Element) -> bool,
        out: &mut Vec<&'a Element>,
    ) {
        if matches(self) {
            out.push(self);
            return;
        }
        for child in &self.children {
            if let Node::Element(e) = child {
                e.find_outermost(matches, out);
            }
        }
    }

    /// Removes the first element, in document order, that `matches`; this
    /// element excluded. Returns whether it found one.
    pub fn remove_first(&mut self, matches: &dyn Fn(&Element) -> bool) -> bool {
        for i in 0..self.children.len() {
            if let Node::Element(e) = &mut self.children[i] {
                if matches(e) {
                    self.children.remove(i);
                    return true;
                }
                if e.remove_first(matches) {
                    return true;
                }
            }
        }
        false
    }

    /// Removes, at any depth, the elements that `matches`.
    pub fn remove(&mut self, matches: &dyn Fn(&Element) -> bool) {
        self.children.retain(|child| match child {
            Node::Element(e) => !matches(e),
            Node::Text(_) => true,
        });
        for child in &mut self.children {
            if let Node::Element(e) = child {
                e.remove(matches);
            }
        }
    }
}

/// Elements with no end tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

/// How deep the tree goes at most. The sanitised HTML was flattened to
/// [`crate::text::MAX_NESTING`] before ammonia parsed it, and a parser adds
/// few levels of its own (a table's `<tbody>`, reopened formatting); deeper
/// start tags are ignored, so the recursive walks below stay bounded.
const MAX_DEPTH: usize = 2 * crate::text::MAX_NESTING;

/// Builds the tree of sanitised HTML under a root element named `#root`.
pub(super) fn parse(sanitised: &str) -> Element {
    let builder = TreeBuilder {
        stack: RefCell::new(vec![Element {
            name: "#root".into(),
            ..Element::default()
        }]),
    };
    let tokenizer = Tokenizer::new(builder, TokenizerOpts::default());
    let queue = BufferQueue::default();
    queue.push_back(StrTendril::from(sanitised));
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    let mut stack = tokenizer.sink.stack.into_inner();
    while stack.len() > 1 {
        close(&mut stack);
    }
    stack.pop().unwrap_or_default()
}

struct TreeBuilder {
    stack: RefCell<Vec<Element>>,
}

/// Pops the innermost open element into its parent.
fn close(stack: &mut Vec<Element>) {
    if stack.len() > 1
        && let Some(done) = stack.pop()
        && let Some(parent) = stack.last_mut()
    {
        parent.children.push(Node::Element(done));
    }
}

impl TokenSink for TreeBuilder {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut stack = self.stack.borrow_mut();
        match token {
            Token::TagToken(tag) if tag.kind == TagKind::StartTag => {
                let mut element = Element {
                    name: tag.name.to_string(),
                    ..Element::default()
                };
                for attr in &tag.attrs {
                    let value = attr.value.to_string();
                    match &*attr.name.local {
                        "id" => element.id = Some(value),
                        "class" => {
                            element.classes = value.split_whitespace().map(str::to_owned).collect()
                        }
                        "href" => element.href = Some(value),
                        "src" => element.src = Some(value),
                        "alt" => element.alt = Some(value),
                        "start" => element.start = value.trim().parse().ok(),
                        _ => {}
                    }
                }
                let void = tag.self_closing || VOID.contains(&element.name.as_str());
                if stack.len() > MAX_DEPTH {
                    return TokenSinkResult::Continue;
                }
                stack.push(element);
                if void {
                    close(&mut stack);
                }
            }
            Token::TagToken(tag) => {
                let name = &*tag.name;
                if let Some(open) = stack.iter().skip(1).rposition(|e| e.name == name) {
                    while stack.len() > open + 1 {
                        close(&mut stack);
                    }
                }
            }
            Token::CharacterTokens(text) => {
                if let Some(current) = stack.last_mut() {
                    match current.children.last_mut() {
                        Some(Node::Text(t)) => t.push_str(&text),
                        _ => current.children.push(Node::Text(text.to_string())),
                    }
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitised_html_becomes_a_tree_with_its_text_and_attributes() {
        let root = parse(
            "<div class=\"entry-content post\"><p>One &amp; <a href=\"https://example.org/\">two</a></p>\
             <ol start=\"3\"><li>three<br>four</li></ol></div>",
        );
        let content = root
            .find(&|e| e.has_class("entry-content"))
            .expect("the div");
        assert_eq!(content.classes, ["entry-content", "post"]);
        assert_eq!(content.text(), "One & twothreefour");
        let link = root.find(&|e| e.name == "a").expect("the link");
        assert_eq!(link.href.as_deref(), Some("https://example.org/"));
        let list = root.find(&|e| e.name == "ol").expect("the list");
        assert_eq!(list.start, Some(3));
        let item = root.find(&|e| e.name == "li").expect("the item");
        assert_eq!(item.children.len(), 3, "{item:#?}");
    }
}
