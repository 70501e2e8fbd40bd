//! Inlining the templates' CSS into a report's body, in time and memory
//! linear in the body's size.
//!
//! The body's rules use element selectors (see `email/layout.html.tera`), so
//! an element's style depends only on the elements around it, not on its
//! text. The body is reduced to a skeleton that holds each distinct path of
//! elements once (a table of a million cells has a skeleton of four
//! elements); css-inline inlines the skeleton, and each element of the body
//! takes the style of its path. The body's text is never parsed into a tree.

use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

use super::personal::RenderError;

/// Elements with no end tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

/// One distinct path of elements.
struct PathNode {
    name: String,
    /// The element's own `style` attribute (table cells' alignment).
    style: Option<String>,
    children: Vec<usize>,
}

/// The distinct paths of a body's elements, as a tree rooted at node 0.
struct Skeleton {
    nodes: Vec<PathNode>,
}

impl Skeleton {
    fn new() -> Self {
        Skeleton {
            nodes: vec![PathNode {
                name: String::new(),
                style: None,
                children: Vec::new(),
            }],
        }
    }

    /// The node of the element `tag` inside the element `parent`. A node has
    /// few children: one per element name and style the renderer writes.
    fn child(&mut self, parent: usize, tag: &StartTag<'_>) -> usize {
        let style = tag.style();
        let found =
            self.nodes[parent].children.iter().copied().find(|&c| {
                self.nodes[c].name == tag.name && self.nodes[c].style.as_deref() == style
            });
        if let Some(node) = found {
            return node;
        }
        let node = self.nodes.len();
        self.nodes.push(PathNode {
            name: tag.name.to_owned(),
            style: style.map(str::to_owned),
            children: Vec::new(),
        });
        self.nodes[parent].children.push(node);
        node
    }

    /// The skeleton as HTML, each element marked with its node number.
    fn html(&self) -> String {
        let mut out = String::new();
        let mut stack: Vec<(usize, bool)> = self.nodes[0]
            .children
            .iter()
            .rev()
            .map(|&c| (c, false))
            .collect();
        while let Some((id, closing)) = stack.pop() {
            let node = &self.nodes[id];
            if closing {
                out.push_str(&format!("</{}>", node.name));
                continue;
            }
            out.push_str(&format!("<{} data-necmail-node=\"{id}\"", node.name));
            if let Some(style) = &node.style {
                out.push_str(&format!(" style=\"{style}\""));
            }
            out.push('>');
            if !VOID.contains(&node.name.as_str()) {
                stack.push((id, true));
                stack.extend(node.children.iter().rev().map(|&c| (c, false)));
            }
        }
        out
    }
}

/// A start tag of the body, as the Markdown renderer writes it: attribute
/// values double-quoted and escaped, so the tag ends at the first `>`.
struct StartTag<'a> {
    /// The whole tag, `<` to `>`.
    text: &'a str,
    name: &'a str,
}

impl<'a> StartTag<'a> {
    fn void(&self) -> bool {
        self.text.ends_with("/>") || VOID.contains(&self.name)
    }

    /// The byte range in `text` of the `style` attribute's value.
    fn style_range(&self) -> Option<(usize, usize)> {
        let start = self.text.find(" style=\"")? + " style=\"".len();
        let len = self.text[start..].find('"')?;
        Some((start, start + len))
    }

    fn style(&self) -> Option<&'a str> {
        self.style_range().map(|(a, b)| &self.text[a..b])
    }
}

/// A piece of the body: text (or an end tag) to copy, or a start tag.
enum Piece<'a> {
    Copy(&'a str),
    End(&'a str),
    Start(StartTag<'a>),
}

/// Splits the renderer's HTML into text, start tags and end tags.
fn pieces(html: &str) -> impl Iterator<Item = Piece<'_>> {
    let mut rest = html;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let lt = rest.find('<').unwrap_or(rest.len());
        if lt > 0 {
            let (text, after) = rest.split_at(lt);
            rest = after;
            return Some(Piece::Copy(text));
        }
        let gt = rest.find('>').map_or(rest.len(), |i| i + 1);
        let (tag, after) = rest.split_at(gt);
        rest = after;
        let inner = tag.trim_start_matches('<');
        Some(if let Some(end) = inner.strip_prefix('/') {
            Piece::End(end.trim_end_matches('>').trim())
        } else if inner.starts_with(['!', '?']) || !tag.ends_with('>') {
            Piece::Copy(tag)
        } else {
            let name_end = inner
                .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
                .unwrap_or(inner.len());
            Piece::Start(StartTag {
                text: tag,
                name: &inner[..name_end],
            })
        })
    })
}

/// Walks the body's elements, calling `visit` with each start tag and its
/// skeleton node.
fn walk<'a>(
    html: &'a str,
    skeleton: &mut Skeleton,
    mut visit: impl FnMut(&Piece<'a>, Option<usize>),
) {
    let mut open: Vec<(&str, usize)> = Vec::new();
    for piece in pieces(html) {
        match &piece {
            Piece::Start(tag) => {
                let parent = open.last().map_or(0, |&(_, node)| node);
                let node = skeleton.child(parent, tag);
                if !tag.void() {
                    open.push((tag.name, node));
                }
                visit(&piece, Some(node));
            }
            Piece::End(name) => {
                if let Some(at) = open.iter().rposition(|(n, _)| n == name) {
                    open.truncate(at);
                }
                visit(&piece, None);
            }
            Piece::Copy(_) => visit(&piece, None),
        }
    }
}

/// Inlines `css` into the body HTML that [`super::to_html`] wrote.
pub(super) fn inline_body(html: &str, css: &str) -> Result<String, RenderError> {
    let mut skeleton = Skeleton::new();
    walk(html, &mut skeleton, |_, _| {});
    let inlined = css_inline::CSSInliner::options()
        .keep_style_tags(false)
        .build()
        .inline_fragment(&skeleton.html(), css)
        .map_err(|e| RenderError::Css(e.to_string()))?;
    let styles = node_styles(&inlined, skeleton.nodes.len());
    let mut out = String::with_capacity(html.len() + html.len() / 2);
    walk(html, &mut skeleton, |piece, node| match piece {
        Piece::Copy(text) => out.push_str(text),
        Piece::End(name) => {
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
        Piece::Start(tag) => match node.and_then(|n| styles[n].as_deref()) {
            None => out.push_str(tag.text),
            Some(style) => {
                let style = escape_attribute(style);
                match tag.style_range() {
                    Some((a, b)) => {
                        out.push_str(&tag.text[..a]);
                        out.push_str(&style);
                        out.push_str(&tag.text[b..]);
                    }
                    None => {
                        let close = if tag.text.ends_with(" />") { 3 } else { 1 };
                        let (head, tail) = tag.text.split_at(tag.text.len() - close);
                        out.push_str(head);
                        out.push_str(" style=\"");
                        out.push_str(&style);
                        out.push('"');
                        out.push_str(tail);
                    }
                }
            }
        },
    });
    Ok(out)
}

/// An attribute value escaped as html5ever's serialiser (and so css-inline)
/// escapes it.
fn escape_attribute(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\u{a0}' => out.push_str("&nbsp;"),
            c => out.push(c),
        }
    }
    out
}

/// The `style` css-inline gave each node of the skeleton, by node number.
fn node_styles(inlined: &str, nodes: usize) -> Vec<Option<String>> {
    let sink = StyleSink {
        styles: RefCell::new(vec![None; nodes]),
    };
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let queue = BufferQueue::default();
    queue.push_back(StrTendril::from(inlined));
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    tokenizer.sink.styles.into_inner()
}

struct StyleSink {
    styles: RefCell<Vec<Option<String>>>,
}

impl TokenSink for StyleSink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        if let Token::TagToken(tag) = token
            && tag.kind == TagKind::StartTag
        {
            let attr = |name: &str| {
                tag.attrs
                    .iter()
                    .find(|a| &*a.name.local == name)
                    .map(|a| a.value.to_string())
            };
            if let (Some(node), Some(style)) = (
                attr("data-necmail-node").and_then(|n| n.parse::<usize>().ok()),
                attr("style"),
            ) && let Some(slot) = self.styles.borrow_mut().get_mut(node)
            {
                *slot = Some(style);
            }
        }
        TokenSinkResult::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSS: &str = "p { margin: 0; } td { padding: 4px; } blockquote p { color: red; } \
                       a { color: #b5121b; }";

    fn whole(html: &str) -> String {
        css_inline::CSSInliner::options()
            .keep_style_tags(false)
            .build()
            .inline_fragment(html, CSS)
            .unwrap()
    }

    #[test]
    fn each_element_gets_the_style_its_path_gets_from_css_inline() {
        let html = super::super::to_html(
            "One [link](https://example.org/?a=1&b=2).\n\n> Quoted\n>\n> - item\n\n\
             | a | b |\n|:-:|---|\n| 1 | 2 |\n| 3 | 4 |\n\n---\n\nTwo  \nlines\n",
        );
        let inlined = inline_body(&html, CSS).unwrap();
        let tags = |html: &str| -> Vec<String> {
            pieces(html)
                .filter_map(|p| match p {
                    Piece::Start(tag) => Some(format!("{} {:?}", tag.name, tag.style())),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(tags(&inlined), tags(&whole(&html)), "{inlined}");
        assert!(
            inlined.contains("<td style=\"text-align: center;padding: 4px;\">1</td>")
                || inlined.contains("<td style=\"padding: 4px;text-align: center\">1</td>"),
            "{inlined}"
        );
    }

    #[test]
    fn a_table_of_many_cells_has_a_skeleton_of_a_few_elements() {
        let rows = "| 1 | 2 | 3 |\n".repeat(10_000);
        let html = super::super::to_html(&format!("| a | b | c |\n|---|---|---|\n{rows}"));
        let mut skeleton = Skeleton::new();
        walk(&html, &mut skeleton, |_, _| {});
        assert!(skeleton.nodes.len() < 10, "{}", skeleton.html());
        let inlined = inline_body(&html, CSS).unwrap();
        assert_eq!(inlined.matches("padding: 4px").count(), 30_000);
    }
}
