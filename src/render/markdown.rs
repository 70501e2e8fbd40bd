//! A report's Markdown as an HTML fragment and as wrapped plain text.
//!
//! Raw HTML in the Markdown is shown as text, never passed through: a
//! `<script>` in a report reaches the reader as the characters `<script>`.
//!
//! Nesting is bounded: whatever a stored report holds, the HTML and the text
//! nest at most [`MAX_NESTING`](crate::text::MAX_NESTING) levels deep (deeper quotations, lists and
//! emphasis lose their markup and keep their text), so that nothing that
//! walks the result recursively (the CSS inliner, a mail client) can run out
//! of stack.

use std::collections::VecDeque;

use pulldown_cmark::{CowStr, Event, HeadingLevel, Tag, TagEnd};

use crate::text::{Anchors, bounded_events as events};

/// The width plain-text paragraphs are wrapped to.
pub const TEXT_WIDTH: usize = 76;

/// Renders Markdown to an HTML fragment. Level-2 headings get the ids that
/// [`crate::reports::split_sections`] gives their sections.
pub fn to_html(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len() * 5 / 4);
    let mut anchors = Anchors::default();
    let mut source = events(markdown);
    // A heading's events, held back until its anchor is known: the rest of
    // the document streams through, so memory stays that of the output.
    let mut heading: VecDeque<Event<'_>> = VecDeque::new();
    let stream = std::iter::from_fn(|| {
        if let Some(event) = heading.pop_front() {
            return Some(event);
        }
        match source.next()? {
            Event::Start(Tag::Heading {
                level: HeadingLevel::H2,
                ..
            }) => {
                for event in source.by_ref() {
                    let end = matches!(event, Event::End(TagEnd::Heading(HeadingLevel::H2)));
                    heading.push_back(event);
                    if end {
                        break;
                    }
                }
                let text: String = heading
                    .iter()
                    .filter_map(|e| match e {
                        Event::Text(t) | Event::Code(t) => Some(t.as_ref()),
                        _ => None,
                    })
                    .collect();
                Some(Event::Start(Tag::Heading {
                    level: HeadingLevel::H2,
                    id: Some(CowStr::from(anchors.unique(&text))),
                    classes: Vec::new(),
                    attrs: Vec::new(),
                }))
            }
            other => Some(other),
        }
    });
    pulldown_cmark::html::push_html(&mut out, stream);
    out
}

/// Renders Markdown as plain text: paragraphs wrapped at [`TEXT_WIDTH`],
/// headings underlined, list items bulleted, and links replaced by numbered
/// references listed at the end.
pub fn to_text(markdown: &str) -> String {
    let mut w = TextWriter::default();
    for event in events(markdown) {
        w.event(event);
    }
    w.finish()
}

#[derive(Default)]
struct TextWriter {
    out: String,
    /// The inline text of the block being built.
    line: String,
    /// Prefixes of the enclosing blocks (`> `, list indents).
    prefixes: Vec<String>,
    /// The marker of the next list item's first line.
    marker: Option<String>,
    /// Counters of enclosing ordered lists; `None` for bullet lists.
    lists: Vec<Option<u64>>,
    heading: Option<HeadingLevel>,
    links: Vec<String>,
    link_stack: Vec<String>,
}

impl TextWriter {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => self.heading = Some(level),
            Event::End(TagEnd::Heading(level)) => {
                let text = std::mem::take(&mut self.line);
                let rule = if level == HeadingLevel::H1 { '=' } else { '-' };
                self.blank_line();
                self.out.push_str(text.trim());
                self.out.push('\n');
                self.out
                    .extend(std::iter::repeat_n(rule, text.trim().chars().count()));
                self.out.push('\n');
                self.heading = None;
            }
            Event::End(TagEnd::Paragraph) => self.flush_block(),
            Event::Start(Tag::BlockQuote(_)) => {
                self.flush_block();
                self.prefixes.push("> ".into());
            }
            Event::End(TagEnd::BlockQuote(_)) => {
                self.flush_block();
                self.prefixes.pop();
            }
            Event::Start(Tag::List(start)) => {
                self.flush_block();
                self.lists.push(start);
            }
            Event::End(TagEnd::List(_)) => {
                self.flush_block();
                self.lists.pop();
            }
            Event::Start(Tag::Item) => {
                self.flush_block();
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}. ", *n - 1)
                    }
                    _ => "- ".into(),
                };
                self.prefixes.push(" ".repeat(marker.len()));
                self.marker = Some(marker);
            }
            Event::End(TagEnd::Item) => {
                self.flush_block();
                // An empty item never used its marker: it must not mark
                // the next block, outside the list.
                self.marker = None;
                self.prefixes.pop();
            }
            Event::Start(Tag::Link { dest_url, .. }) => {
                self.link_stack.push(dest_url.into_string())
            }
            Event::End(TagEnd::Link) => {
                if let Some(url) = self.link_stack.pop() {
                    let n = match self.links.iter().position(|l| *l == url) {
                        Some(i) => i + 1,
                        None => {
                            self.links.push(url);
                            self.links.len()
                        }
                    };
                    self.line.push_str(&format!(" [{n}]"));
                }
            }
            Event::Text(t) | Event::Code(t) => self.line.push_str(&t),
            Event::SoftBreak => self.line.push(' '),
            Event::HardBreak => self.line.push('\n'),
            Event::Rule => {
                self.flush_block();
                self.blank_line();
                self.out.push_str(&"-".repeat(20));
                self.out.push('\n');
            }
            Event::End(TagEnd::TableCell) => self.line.push_str("  "),
            Event::End(TagEnd::TableRow | TagEnd::TableHead) => self.flush_block(),
            Event::End(TagEnd::CodeBlock) => self.flush_block(),
            _ => {}
        }
    }

    fn blank_line(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            if !self.out.ends_with('\n') {
                self.out.push('\n');
            }
            self.out.push('\n');
        }
    }

    fn flush_block(&mut self) {
        let text = std::mem::take(&mut self.line);
        if text.trim().is_empty() || self.heading.is_some() {
            if self.heading.is_some() {
                self.line = text;
            }
            return;
        }
        let in_tight_list =
            self.marker.is_some() && self.out.ends_with('\n') && !self.lists.is_empty();
        if !in_tight_list {
            self.blank_line();
        }
        let rest: String = self.prefixes.concat();
        let first = match self.marker.take() {
            Some(marker) => {
                let outer: String = self.prefixes[..self.prefixes.len() - 1].concat();
                format!("{outer}{marker}")
            }
            None => rest.clone(),
        };
        let mut first_line = true;
        for hard_line in text.trim().split('\n') {
            for line in wrap(
                hard_line.trim(),
                TEXT_WIDTH.saturating_sub(rest.chars().count()).max(20),
            ) {
                self.out.push_str(if first_line { &first } else { &rest });
                self.out.push_str(&line);
                self.out.push('\n');
                first_line = false;
            }
        }
    }

    fn finish(mut self) -> String {
        self.flush_block();
        if !self.links.is_empty() {
            self.blank_line();
            for (i, url) in self.links.iter().enumerate() {
                self.out.push_str(&format!("[{}] {url}\n", i + 1));
            }
        }
        self.out
    }
}

/// Greedy word wrap at `width` characters that keeps figures whole: it never
/// breaks next to a word holding a digit, so "80 million", "575,000 members"
/// and "21 March 2017" stay on one line (unless such a run is itself wider
/// than a line). Runs of spaces inside a line are kept as written.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let words: Vec<&str> = text.split(' ').collect();
    let has_digit = |w: &str| w.bytes().any(|b| b.is_ascii_digit());
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_chars = 0;
    // The byte position in `line` of the last place a break is allowed.
    let mut last_break: Option<(usize, usize)> = None;
    let mut prev: Option<&str> = None;
    for word in words {
        let wchars = word.chars().count();
        if let Some(p) = prev {
            let breakable = !word.is_empty() && !p.is_empty() && !has_digit(p) && !has_digit(word);
            if breakable {
                last_break = Some((line.len(), line_chars));
            }
            line.push(' ');
            line_chars += 1;
        }
        line.push_str(word);
        line_chars += wchars;
        prev = Some(word);
        if line_chars > width
            && let Some((at, at_chars)) = last_break.take()
        {
            let rest = line.split_off(at);
            lines.push(std::mem::take(&mut line));
            line = rest[1..].to_owned();
            line_chars -= at_chars + 1;
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_in_a_report_is_shown_as_text() {
        let html = to_html("Hello <script>alert(1)</script> world\n\n<iframe src=x></iframe>\n");
        assert!(!html.contains("<script"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("&lt;iframe"), "{html}");
    }

    #[test]
    fn section_headings_get_the_anchors_of_their_sections() {
        let md = "Intro\n\n## Leader\\'s Report\n\nText\n\n## Update\n\n## Update\n";
        let html = to_html(md);
        let sections = crate::reports::split_sections(md);
        for s in &sections.sections {
            assert!(
                html.contains(&format!("id=\"{}\"", s.anchor)),
                "{} not in {html}",
                s.anchor
            );
        }
        assert_eq!(sections.sections[0].heading, "Leader's Report");
    }

    #[test]
    fn plain_text_underlines_headings_and_numbers_links() {
        let text = to_text(
            "## Party Membership\n\nWe have [575,000 members](https://example.org/m) and \
            [a plan](https://example.org/p), see [again](https://example.org/m).\n\n- one\n- two\n",
        );
        assert!(
            text.starts_with("Party Membership\n----------------\n"),
            "{text}"
        );
        assert!(
            text.contains("We have 575,000 members [1] and a plan [2], see again [1]."),
            "{text}"
        );
        assert!(text.contains("\n- one\n- two\n"), "{text}");
        assert!(
            text.ends_with("[1] https://example.org/m\n[2] https://example.org/p\n"),
            "{text}"
        );
    }

    /// Found by the `markdown` fuzz target: the empty item's marker was
    /// left for the paragraph after the list, which had no list prefix to
    /// put it after, and the render panicked.
    #[test]
    fn an_empty_list_item_followed_by_text_renders() {
        let text = to_text("-\n\nText after.\n\n1.\n   \n- \n> quoted\n");
        assert_eq!(text, "Text after.\n\n> quoted\n");
    }

    #[test]
    fn wrapping_keeps_lines_within_the_width_and_figures_whole() {
        let para = "The party now has over 575,000 members, and 80 million leaflets went out before \
            21 March 2017; turnout rose by 40% while 8,000 people joined in a single week of campaigning.";
        let lines = wrap(para, 40);
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{lines:#?}");
        let joined = lines.join("\n");
        for figure in [
            "575,000 members,",
            "80 million",
            "21 March 2017;",
            "by 40% while",
            "8,000 people",
        ] {
            assert!(joined.contains(figure), "{figure:?} was split: {lines:#?}");
        }
        assert_eq!(lines.join(" "), para);
    }

    #[test]
    fn wrapping_keeps_doubled_spaces_and_breaks_overlong_words_nowhere() {
        assert_eq!(wrap("a  b", 76), ["a  b"]);
        let long = "x".repeat(100);
        assert_eq!(wrap(&long, 76), std::slice::from_ref(&long));
    }
}
