//! HTML: a saved post page, or a feed item's `content:encoded`.
//!
//! The HTML is sanitised with ammonia before anything else looks at it: no
//! scripts, styles, forms, frames, event handlers or images survive, and
//! links keep only http, https and mailto addresses. The post is then found
//! in the page (WordPress's `.entry-content`, else the `<article>`), its
//! title taken from `.entry-title`, an `<h1>` or the `<title>`, and its
//! content turned into the same Markdown structure as a pasted post:
//! `<h2>`/`<h3>` (or a paragraph that is one short bold line) start
//! sections, lists become `- ` items, quotations `> `, links `[text](url)`.
//! Emphasis is dropped, its text kept. The cruft removed from pasted posts
//! (image names, `Continue reading`, comments, the reply form) is removed
//! here too, together with the page's own chrome.

use std::collections::{HashMap, HashSet};

use super::body::{self, Block, CommentLinks, Evidence, Inline};
use super::cruft;
use super::dom::{self, Element, Node};
use super::flatten::flatten;
use super::{ReportImportError, draft};
use crate::reports::{Excerpt, ReportDraft};

/// Parses a saved page: one draft, or one per post on an archive page.
pub(super) fn parse(html: &str) -> Result<Vec<ReportDraft>, ReportImportError> {
    let mut root = dom::parse(&sanitise(html));
    let page_title = root
        .find(&|e| e.name == "title")
        .map(|e| page_title(&e.text()));
    root.remove(&is_chrome);
    let mut posts = Vec::new();
    root.find_outermost(&|e| e.name == "article", &mut posts);
    if posts.len() > 1 {
        return archive(&posts);
    }
    let post = posts.first().copied().unwrap_or(&root);
    let (title, h1) = match post_title(post) {
        Some((title, h1)) => (title, h1),
        None => (
            post_title(&root)
                .map(|(title, _)| title)
                .or(page_title)
                .ok_or(ReportImportError::NoTitle)?,
            FirstH1::StartsASection,
        ),
    };
    let (blocks, excerpt) = post_blocks(post, h1);
    Ok(vec![draft(title, blocks, excerpt)?])
}

/// Parses the HTML of a feed item, whose title comes from the feed.
pub(super) fn parse_fragment(html: &str, title: &str) -> Result<ReportDraft, ReportImportError> {
    let mut root = dom::parse(&sanitise(html));
    root.remove(&is_chrome);
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    if title.is_empty() {
        return Err(ReportImportError::NoTitle);
    }
    let (blocks, excerpt) = post_blocks(&root, FirstH1::StartsASection);
    draft(title, blocks, excerpt)
}

/// Each post of an archive page, or a refusal if one has no title.
fn archive(posts: &[&Element]) -> Result<Vec<ReportDraft>, ReportImportError> {
    let refuse = ReportImportError::Archive { posts: posts.len() };
    posts
        .iter()
        .map(|post| {
            let (title, h1) = post_title(post).ok_or(refuse.clone())?;
            let (blocks, excerpt) = post_blocks(post, h1);
            draft(title, blocks, excerpt).map_err(|_| refuse.clone())
        })
        .collect()
}

/// The elements kept as structure. Any other element is unwrapped, its text
/// kept, except those in [`DROPPED_WITH_CONTENT`].
const KEPT: &str = "a abbr article b blockquote br center cite code dd del div dl dt em font h1 h2 h3 h4 h5 h6 \
                    header hr i ins kbd li main mark ol p pre q s section small span strike strong sub sup table \
                    tbody td tfoot th thead time title tr u ul";

/// The elements dropped with everything inside them.
const DROPPED_WITH_CONTENT: &str = "script style noscript template iframe object embed frame frameset svg math \
                                    canvas video audio form textarea select button nav aside footer figcaption";

/// Sanitises untrusted HTML; the result has no active content, and nests at
/// most [`crate::text::MAX_NESTING`] deep (deeper elements are dropped
/// before ammonia parses it, their text kept).
fn sanitise(html: &str) -> String {
    let html = flatten(html);
    let attributes: HashMap<&str, HashSet<&str>> = HashMap::from([
        ("a", HashSet::from(["href"])),
        ("ol", HashSet::from(["start"])),
    ]);
    ammonia::Builder::empty()
        .tags(KEPT.split_whitespace().collect())
        .clean_content_tags(DROPPED_WITH_CONTENT.split_whitespace().collect())
        .generic_attributes(HashSet::from(["class", "id"]))
        .tag_attributes(attributes)
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(None)
        .strip_comments(true)
        .clean(&html)
        .to_string()
}

/// Classes and ids of a WordPress page's chrome and of what follows a post:
/// header, menus, sidebar, footer, sharing buttons, post navigation, comments
/// and the reply form.
const CHROME: &str = "comments comments-area comment-respond respond commentlist comment-list sharedaddy \
                      sd-sharing-enabled jp-relatedposts jp-post-flair entry-meta entry-footer entry-utility \
                      post-navigation navigation nav-links nav-single nav-above nav-below site-header site-footer \
                      site-title site-description masthead colophon secondary sidebar widget-area widget \
                      wp-caption-text screen-reader-text skip-link wpcnt";

fn is_chrome(e: &Element) -> bool {
    let chrome = |name: &str| CHROME.split_whitespace().any(|c| c == name);
    e.classes.iter().any(|c| chrome(c)) || e.id.as_deref().is_some_and(chrome) || e.name == "title"
}

fn is_title(e: &Element) -> bool {
    e.has_class("entry-title") || e.has_class("post-title")
}

/// The title of the post in `within`: its `.entry-title`, else its first
/// `<h1>`; and so what that `<h1>` is.
fn post_title(within: &Element) -> Option<(String, FirstH1)> {
    let (element, h1) = match within.find(&is_title) {
        Some(e) => (e, FirstH1::StartsASection),
        None => (within.find(&|e| e.name == "h1")?, FirstH1::IsTheTitle),
    };
    let title = collapse(&element.text());
    (!title.is_empty()).then_some((title, h1))
}

/// A page's `<title>` without the site's name after ` | `, ` « ` or ` :: `.
fn page_title(title: &str) -> String {
    let title = collapse(title);
    let cut = [" | ", " « ", " » ", " :: "]
        .iter()
        .filter_map(|sep| title.rfind(sep))
        .max();
    match cut {
        Some(at) => title[..at].trim().to_owned(),
        None => title,
    }
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the first `<h1>` of a post is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstH1 {
    /// The post's title, which has no `.entry-title`.
    IsTheTitle,
    /// A section heading: the title is an `.entry-title`, or comes from
    /// elsewhere (the page, the feed).
    StartsASection,
}

/// The blocks of a post's content: its `.entry-content` if it has one,
/// else the post without its title and header; and whether it is an
/// excerpt: an `.entry-summary`, or content cut off with a `Continue
/// reading` link (a `.more-link`) or with `[…]`. The full post is where the
/// `Continue reading` link goes, else where the post's title links to.
fn post_blocks(post: &Element, h1: FirstH1) -> (Vec<Block>, Option<Excerpt>) {
    let summary = post.find(&|e| e.has_class("entry-summary"));
    let content = post.find(&|e| e.has_class("entry-content") || e.has_class("post-content"));
    let title_link = post
        .find(&is_title)
        .and_then(|title| title.find(&|e| e.name == "a"))
        .and_then(|a| a.href.clone());
    let mut content = content.or(summary).unwrap_or(post).clone();
    content.remove(&|e| is_title(e) || e.name == "header");
    if h1 == FirstH1::IsTheTitle {
        content.remove_first(&|e| e.name == "h1");
    }
    let mut converter = Converter::default();
    converter.children(&content);
    let more_link = converter.more_link.take();
    let blocks = converter.finish();
    // A `Continue reading` link cuts the post off unless text follows it.
    let more_link = more_link.filter(|(_, at)| !body::has_text(&blocks[*at..]));
    let cut_off = more_link.is_some() || summary.is_some() || body::is_cut_off(&blocks);
    let excerpt = cut_off.then(|| Excerpt {
        full_post: more_link.and_then(|(href, _)| href).or(title_link),
    });
    let blocks = body::remove_cruft(blocks, CommentLinks::EndThePost);
    (body::find_headings(blocks), excerpt)
}

/// Turns elements into blocks, gathering inline content into paragraphs.
#[derive(Default)]
struct Converter {
    blocks: Vec<Block>,
    inlines: Vec<Inline>,
    /// The last `Continue reading` link met: where it goes, and how many
    /// blocks came before it.
    more_link: Option<(Option<String>, usize)>,
}

impl Converter {
    fn finish(mut self) -> Vec<Block> {
        self.flush();
        self.blocks
    }

    fn flush(&mut self) {
        let inlines = std::mem::take(&mut self.inlines);
        self.blocks.extend(
            body::tidy_paragraph(inlines)
                .into_iter()
                .map(Block::Paragraph),
        );
    }

    fn nested(element: &Element) -> Vec<Block> {
        let mut converter = Converter::default();
        converter.children(element);
        converter.finish()
    }

    fn children(&mut self, element: &Element) {
        for child in &element.children {
            self.child(child);
        }
    }

    fn child(&mut self, child: &Node) {
        match child {
            Node::Text(text) => self.inlines.push(Inline::Text(collapse_breaks(text))),
            Node::Element(e) => self.element(e),
        }
    }

    fn element(&mut self, e: &Element) {
        match e.name.as_str() {
            "br" => self.inlines.push(Inline::Break),
            "h1" | "h2" | "h3" => {
                self.flush();
                let text = collapse(&e.text());
                if !text.is_empty() {
                    self.blocks.push(Block::Heading(text));
                }
            }
            "p" | "div" => {
                self.flush();
                let rest = match bold_heading(e) {
                    Some((heading, rest)) => {
                        self.blocks.push(Block::Heading(heading));
                        rest
                    }
                    None => 0,
                };
                for child in &e.children[rest..] {
                    self.child(child);
                }
                self.flush();
            }
            "h4" | "h5" | "h6" | "section" | "article" | "main" | "center" | "tr" | "dl" | "dd"
            | "dt" | "li" | "table" | "tbody" | "thead" | "tfoot" => {
                self.flush();
                self.children(e);
                self.flush();
            }
            "pre" => {
                self.flush();
                for (i, line) in e.text().split('\n').enumerate() {
                    if i > 0 {
                        self.inlines.push(Inline::Break);
                    }
                    self.inlines.push(Inline::Text(line.to_owned()));
                }
                self.flush();
            }
            "ul" | "ol" => {
                self.flush();
                let items: Vec<Vec<Block>> = e
                    .children
                    .iter()
                    .filter_map(|child| match child {
                        Node::Element(li) if li.name == "li" => Some(Converter::nested(li)),
                        _ => None,
                    })
                    .filter(|item| !item.is_empty())
                    .collect();
                let start = (e.name == "ol").then(|| e.start.unwrap_or(1));
                if !items.is_empty() {
                    self.blocks.push(Block::List { start, items });
                }
            }
            "blockquote" => {
                self.flush();
                let inner = Converter::nested(e);
                if !inner.is_empty() {
                    self.blocks.push(Block::Quote(inner));
                }
            }
            "hr" => {
                self.flush();
                self.blocks.push(Block::Rule);
            }
            "a" if e.has_class("more-link")
                || cruft::strip_continue_reading(&e.text()).is_some_and(str::is_empty) =>
            {
                self.flush();
                self.more_link = Some((e.href.clone(), self.blocks.len()));
            }
            "a" => match &e.href {
                Some(href) => self.inlines.push(Inline::Link {
                    text: collapse_breaks(&e.text()),
                    url: markdown_url(href),
                }),
                None => self.children(e),
            },
            "td" | "th" => {
                self.children(e);
                self.inlines.push(Inline::Text(" ".into()));
            }
            _ => self.children(e),
        }
    }
}

/// Whitespace as a browser shows it: a run holding a line break or a tab is
/// one space; runs of plain spaces are kept as the author typed them.
fn collapse_breaks(text: &str) -> String {
    if !text.contains(['\n', '\r', '\t', '\x0c']) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |out: &mut String, run: &mut String| {
        if run.contains(['\n', '\r', '\t', '\x0c']) {
            out.push(' ');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if matches!(c, ' ' | '\n' | '\r' | '\t' | '\x0c') {
            run.push(c);
        } else {
            flush(&mut out, &mut run);
            out.push(c);
        }
    }
    flush(&mut out, &mut run);
    out
}

/// A paragraph that starts with a bold line that looks like a heading, on
/// its own or followed by a line break: `<p><strong>Party
/// Membership</strong></p>` or `<p><b>Party Membership</b><br>We have…</p>`.
/// Returns the heading and the index of the children that follow it.
fn bold_heading(e: &Element) -> Option<(String, usize)> {
    let mut content = e
        .children
        .iter()
        .enumerate()
        .filter(|(_, child)| match child {
            Node::Text(t) => !t.trim().is_empty(),
            Node::Element(_) => true,
        });
    let (_, Node::Element(bold)) = content.next()? else {
        return None;
    };
    if !matches!(bold.name.as_str(), "strong" | "b") || bold.find(&|e| e.name == "a").is_some() {
        return None;
    }
    let rest = match content.next() {
        None => e.children.len(),
        Some((i, Node::Element(br))) if br.name == "br" => i + 1,
        Some(_) => return None,
    };
    let text = collapse(&bold.text());
    body::looks_like_heading(&text, Evidence::MarkedUp).then_some((text, rest))
}

/// A sanitised link address made safe inside `[text](…)`: the characters
/// Markdown would read (parentheses, spaces, angle brackets, backslashes)
/// percent-encoded, and an `&` that could start an entity escaped.
fn markdown_url(href: &str) -> String {
    let mut out = String::with_capacity(href.len());
    let mut chars = href.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' if chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '#') =>
            {
                out.push_str("\\&")
            }
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            ' ' => out.push_str("%20"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '\\' => out.push_str("%5C"),
            c if c.is_whitespace() || c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::split_sections;

    fn one(html: &str) -> ReportDraft {
        let mut drafts = parse(html).unwrap();
        assert_eq!(drafts.len(), 1, "{drafts:#?}");
        drafts.remove(0)
    }

    #[test]
    fn the_title_falls_back_to_the_page_title_without_the_site_name() {
        let draft = one(
            "<html><head><title>NEC Report &#8211; June 2017 | Jane&#8217;s blog</title></head>\
             <body><p>The NEC met.</p></body></html>",
        );
        assert_eq!(draft.title, "NEC Report – June 2017");
        assert_eq!(draft.body_markdown, "The NEC met.\n");
        assert_eq!(
            page_title("NEC Report – June 2017"),
            "NEC Report – June 2017"
        );
    }

    #[test]
    fn a_page_without_any_title_is_refused() {
        assert_eq!(
            parse("<p>The NEC met.</p>"),
            Err(ReportImportError::NoTitle)
        );
    }

    #[test]
    fn headings_bold_lines_lists_quotes_and_breaks_become_markdown() {
        let draft = parse_fragment(
            "<h1>Leader&#8217;s Report</h1><p>One<br>two</p>\
             <h3>Local Government Report</h3><ol start=\"2\"><li><p>first</p></li><li>second</li></ol>\
             <p><b>Party Membership</b></p><blockquote><p>Dear Colleague,</p><p>Thanks.</p></blockquote>\
             <h4>A minor heading</h4><p><strong>A bold sentence ends with a full stop.</strong></p><hr>",
            "NEC Report",
        )
        .unwrap();
        assert_eq!(
            draft.body_markdown,
            "## Leader’s Report\n\nOne\\\ntwo\n\n## Local Government Report\n\n2. first\n3. second\n\n\
             ## Party Membership\n\n> Dear Colleague,\n>\n> Thanks.\n\nA minor heading\n\n\
             A bold sentence ends with a full stop.\n\n---\n"
        );
        let headings: Vec<String> = split_sections(&draft.body_markdown)
            .sections
            .into_iter()
            .map(|s| s.heading)
            .collect();
        assert_eq!(
            headings,
            [
                "Leader’s Report",
                "Local Government Report",
                "Party Membership"
            ]
        );
    }

    #[test]
    fn a_bold_line_then_a_break_starts_a_section() {
        let draft = parse_fragment(
            "<p><strong>Party Membership</strong><br>\nWe have 575,000 members.<br>Up 40%.</p>\
             <p><b>Not a heading</b> because text follows on its line.</p>",
            "T",
        )
        .unwrap();
        assert_eq!(
            draft.body_markdown,
            "## Party Membership\n\nWe have 575,000 members.\\\nUp 40%.\n\n\
             Not a heading because text follows on its line.\n"
        );
    }

    #[test]
    fn only_web_and_mail_links_are_kept() {
        let draft = parse_fragment(
            "<p><a href=\"https://example.org/a_(b) c\">web</a> <a href=\"mailto:nec@example.org\">mail</a> \
             <a href=\"javascript:alert(1)\">script</a> <a href=\"/relative\">relative</a> \
             <a href=\"data:text/html,x\">data</a> <a href=\"https://example.org/?a=1&amp;copy=2\">query</a></p>",
            "T",
        )
        .unwrap();
        assert_eq!(
            draft.body_markdown,
            "[web](https://example.org/a_%28b%29%20c) [mail](mailto:nec@example.org) script relative data \
             [query](https://example.org/?a=1\\&copy=2)\n"
        );
        let html = crate::render::to_html(&draft.body_markdown);
        assert!(
            html.contains("href=\"https://example.org/?a=1&amp;copy=2\""),
            "{html}"
        );
    }

    #[test]
    fn whitespace_is_collapsed_as_a_browser_would_but_doubled_spaces_stay() {
        let draft = parse_fragment(
            "<p>  One\n   two  three\tfour&nbsp; five </p><p>&nbsp;</p>",
            "T",
        )
        .unwrap();
        assert_eq!(draft.body_markdown, "One two  three four\u{a0} five\n");
    }

    #[test]
    fn a_page_of_several_articles_gives_one_draft_per_post() {
        let drafts = parse(
            "<h1 class=\"page-title\">Tag Archives: NEC</h1>\
             <article><h2 class=\"entry-title\">NEC Report – June 2017</h2>\
             <div class=\"entry-summary\"><p>The NEC met. <a class=\"more-link\" href=\"https://x.org/1\">\
             Continue reading <span class=\"screen-reader-text\">NEC Report</span> →</a></p></div></article>\
             <article><h2 class=\"entry-title\">NEC Report – May 2017</h2>\
             <div class=\"entry-summary\"><p>It met again. Continue reading →</p></div></article>",
        )
        .unwrap();
        let titles: Vec<&str> = drafts.iter().map(|d| d.title.as_str()).collect();
        assert_eq!(titles, ["NEC Report – June 2017", "NEC Report – May 2017"]);
        assert_eq!(drafts[0].body_markdown, "The NEC met.\n");
        assert_eq!(drafts[1].body_markdown, "It met again.\n");
        assert_eq!(
            drafts[0].excerpt,
            Some(Excerpt {
                full_post: Some("https://x.org/1".into())
            })
        );
        assert_eq!(drafts[1].excerpt, Some(Excerpt { full_post: None }));
        let untitled = "<article><p>One.</p></article><article><h1>Two</h1><p>Two.</p></article>";
        assert_eq!(
            parse(untitled),
            Err(ReportImportError::Archive { posts: 2 })
        );
    }

    #[test]
    fn an_excerpt_is_known_by_its_more_link_its_summary_or_its_closing_ellipsis() {
        let more = parse_fragment(
            "<p>The NEC met.</p><p><a class=\"more-link\" href=\"https://x.org/p\">More…</a></p>",
            "T",
        )
        .unwrap();
        assert_eq!(more.body_markdown, "The NEC met.\n");
        assert_eq!(
            more.excerpt.unwrap().full_post.as_deref(),
            Some("https://x.org/p")
        );
        let linked = parse(
            "<article><h2 class=\"entry-title\"><a href=\"https://x.org/t\">NEC Report</a></h2>\
             <div class=\"entry-summary\"><p>The NEC met.</p></div></article>",
        )
        .unwrap();
        assert_eq!(
            linked[0].excerpt.as_ref().unwrap().full_post.as_deref(),
            Some("https://x.org/t")
        );
        let trimmed = parse_fragment("<p>The NEC met and [&hellip;]</p>", "T").unwrap();
        assert_eq!(trimmed.excerpt, Some(Excerpt::default()));
        for whole in [
            "<p>The NEC met.</p><p>We should all read more.</p>",
            "<p>A meeting … and then another.</p>",
        ] {
            assert_eq!(parse_fragment(whole, "T").unwrap().excerpt, None, "{whole}");
        }
    }

    #[test]
    fn comments_inside_the_content_end_the_post() {
        let draft = parse_fragment(
            "<p>Report text.</p><h3>2 thoughts on &ldquo;NEC Report&rdquo;</h3><p>Great report!</p>",
            "T",
        )
        .unwrap();
        assert_eq!(draft.body_markdown, "Report text.\n");
    }
}
