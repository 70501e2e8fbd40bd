//! Bounding how deep untrusted HTML nests, before anything builds a tree of
//! it or walks one.
//!
//! html5ever's tokenizer reads the HTML as a flat stream of tags and text,
//! in linear time and constant stack. The stream is written out again with
//! every element that would sit deeper than [`MAX_NESTING`] left out: its
//! text is kept, its structure dropped. The elements an HTML parser closes
//! without an end tag (a `<p>` at the next block, an `<li>` at the next
//! item, table rows and cells) are closed here too, and every element that
//! is closed gets an explicit end tag, so the parser that reads the result
//! (ammonia's) builds the nesting counted here and no deeper. Comments and
//! doctypes are dropped; text is escaped again, so no text becomes a tag.

use std::cell::RefCell;
use std::collections::HashMap;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

use crate::text::MAX_NESTING;

/// Elements with no end tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr", "basefont", "bgsound", "frame", "keygen", "param",
];

/// Elements whose content is text, never tags: they nest no deeper than
/// themselves, so they are always kept.
const TEXT_ONLY: &[(&str, RawKind)] = &[
    ("title", RawKind::Rcdata),
    ("textarea", RawKind::Rcdata),
    ("style", RawKind::Rawtext),
    ("xmp", RawKind::Rawtext),
    ("iframe", RawKind::Rawtext),
    ("noembed", RawKind::Rawtext),
    ("noframes", RawKind::Rawtext),
    ("noscript", RawKind::Rawtext),
    ("script", RawKind::ScriptData),
];

/// Start tags that close an open `<p>`.
const CLOSES_P: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "center",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "li",
    "dd",
    "dt",
    "listing",
    "main",
    "menu",
    "nav",
    "ol",
    "p",
    "plaintext",
    "pre",
    "section",
    "summary",
    "table",
    "ul",
    "xmp",
];

/// A heading closes the heading it would otherwise open inside.
const HEADINGS: &[&str] = &["h1", "h2", "h3", "h4", "h5", "h6"];

/// Elements that an implied end tag does not look past.
const SCOPE: &[&str] = &[
    "applet", "button", "caption", "html", "marquee", "object", "table", "td", "template", "th",
];

/// Elements an `<li>`, `<dd>` or `<dt>` does not look past for one to close.
const LIST_SCOPE: &[&str] = &[
    "applet",
    "blockquote",
    "caption",
    "dl",
    "html",
    "marquee",
    "menu",
    "object",
    "ol",
    "table",
    "td",
    "template",
    "th",
    "ul",
];

/// The HTML with every element deeper than [`MAX_NESTING`] dropped, its
/// text kept.
pub(super) fn flatten(html: &str) -> String {
    let sink = Flattener {
        state: RefCell::new(State {
            out: String::with_capacity(html.len()),
            ..State::default()
        }),
    };
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let queue = BufferQueue::default();
    queue.push_back(StrTendril::from(html));
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    tokenizer.sink.state.into_inner().out
}

#[derive(Default)]
struct State {
    out: String,
    /// The open elements that were written, outermost first.
    open: Vec<String>,
    /// Open elements left out for being too deep, by name: always inside
    /// the innermost written one.
    dropped: HashMap<String, usize>,
    /// The text-only element whose content the tokenizer is reading.
    text_only: Option<String>,
}

struct Flattener {
    state: RefCell<State>,
}

impl State {
    fn dropping(&self) -> bool {
        self.dropped.values().any(|&n| n > 0)
    }

    /// Closes the written elements from the innermost to the one at `at`.
    fn close_to(&mut self, at: usize) {
        while self.open.len() > at {
            if let Some(name) = self.open.pop() {
                self.out.push_str("</");
                self.out.push_str(&name);
                self.out.push('>');
            }
        }
        self.dropped.clear();
    }

    /// Closes the innermost open element named one of `targets`, unless
    /// one of `stops` is open inside it.
    fn close_nearest(&mut self, targets: &[&str], stops: &[&str]) {
        for i in (0..self.open.len()).rev() {
            let name = self.open[i].as_str();
            if targets.contains(&name) {
                self.close_to(i);
                return;
            }
            if stops.contains(&name) {
                return;
            }
        }
    }

    /// Closes what a parser closes before this start tag.
    fn implied_ends(&mut self, name: &str) {
        if self.dropping() {
            return;
        }
        if CLOSES_P.contains(&name) {
            self.close_nearest(&["p"], SCOPE);
        }
        match name {
            "li" => self.close_nearest(&["li"], LIST_SCOPE),
            "dd" | "dt" => self.close_nearest(&["dd", "dt"], LIST_SCOPE),
            "tr" => self.close_nearest(&["tr"], &["table"]),
            "td" | "th" => self.close_nearest(&["td", "th"], &["table", "tr"]),
            "thead" | "tbody" | "tfoot" => {
                self.close_nearest(&["thead", "tbody", "tfoot"], &["table"])
            }
            "option" | "optgroup" => self.close_nearest(&["option"], &["select"]),
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6"
                if self
                    .open
                    .last()
                    .is_some_and(|top| HEADINGS.contains(&top.as_str())) =>
            {
                self.close_to(self.open.len() - 1);
            }
            _ => {}
        }
    }

    fn write_start(&mut self, tag: &Tag) {
        self.out.push('<');
        self.out.push_str(&tag.name);
        for attr in &tag.attrs {
            self.out.push(' ');
            self.out.push_str(&attr.name.local);
            self.out.push_str("=\"");
            escape(&attr.value, true, &mut self.out);
            self.out.push('"');
        }
        self.out.push('>');
    }

    fn start(&mut self, tag: &Tag) -> TokenSinkResult<()> {
        let name = tag.name.to_string();
        self.implied_ends(&name);
        if let Some((_, kind)) = TEXT_ONLY.iter().find(|(n, _)| *n == name) {
            self.write_start(tag);
            self.text_only = Some(name);
            return TokenSinkResult::RawData(*kind);
        }
        if name == "plaintext" {
            self.write_start(tag);
            return TokenSinkResult::Plaintext;
        }
        if VOID.contains(&name.as_str()) {
            self.write_start(tag);
        } else if self.open.len() < MAX_NESTING && !self.dropping() {
            // A self-closing `<div/>` opens a div in HTML: it is written
            // without its slash, so every parser opens it.
            self.write_start(tag);
            self.open.push(name);
        } else {
            *self.dropped.entry(name).or_default() += 1;
        }
        TokenSinkResult::Continue
    }

    fn end(&mut self, tag: &Tag) {
        let name = &*tag.name;
        if self.text_only.as_deref() == Some(name) {
            self.text_only = None;
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
            return;
        }
        if let Some(n) = self.dropped.get_mut(name)
            && *n > 0
        {
            *n -= 1;
            return;
        }
        if let Some(at) = self.open.iter().rposition(|open| open == name) {
            self.close_to(at);
        } else if name == "br" {
            self.out.push_str("<br>");
        }
    }
}

/// Escapes text, or an attribute value, for HTML.
fn escape(text: &str, attribute: bool, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

impl TokenSink for Flattener {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut state = self.state.borrow_mut();
        match token {
            Token::TagToken(tag) if tag.kind == TagKind::StartTag => return state.start(&tag),
            Token::TagToken(tag) => state.end(&tag),
            Token::CharacterTokens(text) => escape(&text, false, &mut state.out),
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How deep the elements of `html` nest, as html5ever parses it.
    fn parsed_depth(html: &str) -> usize {
        let tree = super::super::dom::parse(&ammonia::Builder::empty().clean(html).to_string());
        fn depth(e: &super::super::dom::Element) -> usize {
            1 + e
                .children
                .iter()
                .filter_map(|c| match c {
                    super::super::dom::Node::Element(e) => Some(depth(e)),
                    super::super::dom::Node::Text(_) => None,
                })
                .max()
                .unwrap_or(0)
        }
        depth(&tree)
    }

    #[test]
    fn elements_deeper_than_the_limit_are_dropped_and_their_text_kept() {
        let html = format!("{}deep text{}", "<div>".repeat(1000), "</div>".repeat(1000));
        let flat = flatten(&html);
        assert_eq!(flat.matches("<div>").count(), MAX_NESTING);
        assert_eq!(flat.matches("</div>").count(), MAX_NESTING);
        assert!(flat.contains("deep text"), "{flat}");
    }

    #[test]
    fn a_shallow_page_is_written_as_it_was_read() {
        let html = "<article class=\"post\"><h1>NEC &amp; Report</h1><p>One<br>two \
                    <a href=\"https://example.org/?a=1&amp;b=&quot;2&quot;\">link</a></p>\
                    <ul><li>first</li><li>second</li></ul></article>";
        assert_eq!(flatten(html), html);
    }

    #[test]
    fn elements_a_parser_closes_without_an_end_tag_do_not_count_as_nesting() {
        let paragraphs = "<p>para".repeat(500);
        let items = format!("<ul>{}</ul>", "<li>item".repeat(500));
        let cells = format!("<table>{}</table>", "<tr><td>a<td>b".repeat(500));
        for html in [paragraphs, items, cells] {
            let flat = flatten(&html);
            assert!(
                !flat.contains("itemitem") && !flat.contains("parapara"),
                "{flat}"
            );
            assert!(parsed_depth(&flat) < 8, "{html}");
        }
    }

    #[test]
    fn no_markup_gets_a_parser_deeper_than_the_limit() {
        let cases = [
            "<div/>".repeat(5000),
            "<blockquote>".repeat(5000),
            "<b><i><u><s>".repeat(2000),
            "<font color=1>".repeat(5000),
            "<table><tr><td>".repeat(2000),
            "<svg><g>".repeat(2000),
            format!("<svg><style>{}</style></svg>", "<div>".repeat(5000)),
            format!("<title>{}</title>", "<div>".repeat(5000)),
            "<ul><li>".repeat(3000),
            "<p><b>x<p>".repeat(3000),
            "<a href=x>".repeat(3000),
            "<select><option>".repeat(3000),
        ];
        for html in cases {
            let depth = parsed_depth(&flatten(&html));
            assert!(depth <= 2 * MAX_NESTING, "{}…: depth {depth}", &html[..40]);
        }
    }
}
