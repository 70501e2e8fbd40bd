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

use pulldown_cmark::{Alignment, CowStr, Event, HeadingLevel, LinkType, Tag, TagEnd};

use super::encoding::escape_html;

use crate::text::{Anchors, bounded_events as events};

/// The width plain-text paragraphs are wrapped to.
pub const TEXT_WIDTH: usize = 76;

/// How wide, in CSS pixels, the email's column of text is: its 600 px less
/// the padding on either side. An image's `width` attribute, which Outlook
/// for Windows obeys where it ignores `max-width`, is never wider.
pub const COLUMN_WIDTH: u32 = 552;

/// How long the text of a link that shows its own address may be: a longer
/// address is shown shortened (see [`short_link`]).
const LINK_TEXT_CHARS: usize = 40;

/// Renders Markdown to an HTML fragment. Level-2 headings get the ids that
/// [`crate::reports::split_sections`] gives their sections, and the same
/// name on an `<a name>` inside them, the only target most mail clients
/// follow a `#` link to. Images get a
/// `width` no wider than [`COLUMN_WIDTH`]; a table is wrapped in a `<div>`
/// that scrolls it where a client allows, and bare web addresses become
/// links with short text, so that nothing is wider than a phone. A short
/// letter-like group of lines (a signature) keeps its line breaks.
pub fn to_html(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len() * 5 / 4);
    let mut anchors = Anchors::default();
    let mut source = Links::new(LetterLines::new(events(markdown)));
    // Events held back (a heading's, until its anchor is known; an image's
    // alt text) or added: the rest of the document streams through, so
    // memory stays that of the output.
    let mut queue: VecDeque<Event<'_>> = VecDeque::new();
    let stream = std::iter::from_fn(|| {
        if let Some(event) = queue.pop_front() {
            return Some(event);
        }
        match source.next()? {
            Event::Start(Tag::Heading {
                level: HeadingLevel::H2,
                ..
            }) => {
                for event in source.by_ref() {
                    let end = matches!(event, Event::End(TagEnd::Heading(HeadingLevel::H2)));
                    queue.push_back(event);
                    if end {
                        break;
                    }
                }
                let text: String = queue
                    .iter()
                    .filter_map(|e| match e {
                        Event::Text(t) | Event::Code(t) => Some(t.as_ref()),
                        _ => None,
                    })
                    .collect();
                let anchor = anchors.unique(&text);
                queue.push_front(Event::InlineHtml(CowStr::from(format!(
                    "<a name=\"{anchor}\"></a>"
                ))));
                Some(Event::Start(Tag::Heading {
                    level: HeadingLevel::H2,
                    id: Some(CowStr::from(anchor)),
                    classes: Vec::new(),
                    attrs: Vec::new(),
                }))
            }
            Event::Start(Tag::Image { dest_url, .. }) => {
                let mut alt = String::new();
                for event in source.by_ref() {
                    match event {
                        Event::End(TagEnd::Image) => break,
                        Event::Text(t) | Event::Code(t) => alt.push_str(&t),
                        _ => {}
                    }
                }
                Some(Event::InlineHtml(CowStr::from(format!(
                    "<img src=\"{}\" alt=\"{}\" width=\"{COLUMN_WIDTH}\" />",
                    escape_html(&dest_url),
                    escape_html(&alt)
                ))))
            }
            Event::Start(Tag::Table(alignments)) => {
                queue.push_back(Event::Start(Tag::Table(alignments)));
                Some(Event::Html(CowStr::Borrowed("<div>")))
            }
            Event::End(TagEnd::Table) => {
                queue.push_back(Event::Html(CowStr::Borrowed("</div>\n")));
                Some(Event::End(TagEnd::Table))
            }
            other => Some(other),
        }
    });
    pulldown_cmark::html::push_html(&mut out, stream);
    out
}

/// How many lines a letter-like group of lines has at most, and how long
/// each line is at most.
const LETTER_LINES: usize = 8;
const LETTER_LINE_CHARS: usize = 48;

/// Markdown events in which the line breaks of a short, letter-like
/// paragraph are kept: a sign-off and signature ("Best wishes,", "Jo
/// Bloggs", "NEC member"), an address. Such a paragraph has 2 to
/// [`LETTER_LINES`] lines of at most [`LETTER_LINE_CHARS`] characters, each
/// starting with a capital or a figure; its soft breaks become hard ones.
/// Any other paragraph streams through unchanged, having held back at most
/// that many lines.
struct LetterLines<'a, I> {
    source: I,
    queue: VecDeque<Event<'a>>,
}

impl<'a, I: Iterator<Item = Event<'a>>> LetterLines<'a, I> {
    fn new(source: I) -> Self {
        LetterLines {
            source,
            queue: VecDeque::new(),
        }
    }

    /// Reads the paragraph just started into the queue, up to its end or
    /// until it cannot be letter-like; returns whether it is.
    fn read_paragraph(&mut self) -> bool {
        let (mut lines, mut chars, mut starts_well) = (1, 0, true);
        let mut line_start = true;
        for event in self.source.by_ref() {
            let end = matches!(event, Event::End(TagEnd::Paragraph));
            match &event {
                Event::SoftBreak | Event::HardBreak => {
                    lines += 1;
                    chars = 0;
                    line_start = true;
                }
                Event::Text(t) | Event::Code(t) => {
                    if line_start {
                        let first = t.trim_start().chars().next();
                        starts_well &= first.is_some_and(|c| c.is_uppercase() || c.is_numeric());
                        line_start = false;
                    }
                    chars += t.chars().count();
                }
                _ => {}
            }
            self.queue.push_back(event);
            if end {
                return lines >= 2 && starts_well;
            }
            if !starts_well || lines > LETTER_LINES || chars > LETTER_LINE_CHARS {
                return false;
            }
        }
        false
    }
}

impl<'a, I: Iterator<Item = Event<'a>>> Iterator for LetterLines<'a, I> {
    type Item = Event<'a>;

    fn next(&mut self) -> Option<Event<'a>> {
        if let Some(event) = self.queue.pop_front() {
            return Some(event);
        }
        match self.source.next()? {
            Event::Start(Tag::Paragraph) => {
                if self.read_paragraph() {
                    for event in self.queue.iter_mut() {
                        if matches!(event, Event::SoftBreak) {
                            *event = Event::HardBreak;
                        }
                    }
                }
                Some(Event::Start(Tag::Paragraph))
            }
            other => Some(other),
        }
    }
}

/// Markdown events in which every bare web address (`https://…` in the
/// text) is a link, and every link whose text is a long address shows it
/// shortened.
struct Links<'a, I> {
    source: I,
    queue: VecDeque<Event<'a>>,
    /// How many links the events are inside.
    in_link: usize,
}

impl<'a, I: Iterator<Item = Event<'a>>> Links<'a, I> {
    fn new(source: I) -> Self {
        Links {
            source,
            queue: VecDeque::new(),
            in_link: 0,
        }
    }
}

impl<'a, I: Iterator<Item = Event<'a>>> Iterator for Links<'a, I> {
    type Item = Event<'a>;

    fn next(&mut self) -> Option<Event<'a>> {
        if let Some(event) = self.queue.pop_front() {
            return Some(event);
        }
        match self.source.next()? {
            event @ Event::Start(Tag::Link { .. }) => {
                self.in_link += 1;
                Some(event)
            }
            event @ Event::End(TagEnd::Link) => {
                self.in_link = self.in_link.saturating_sub(1);
                Some(event)
            }
            Event::Text(text) if self.in_link > 0 => {
                let address = text.starts_with("http") && !text.contains(char::is_whitespace);
                if address && text.chars().count() > LINK_TEXT_CHARS {
                    Some(Event::Text(CowStr::from(short_link(&text))))
                } else {
                    Some(Event::Text(text))
                }
            }
            Event::Text(text) => {
                let mut rest: &str = &text;
                let mut found = false;
                while let Some((at, len)) = bare_address(rest) {
                    found = true;
                    if at > 0 {
                        self.queue
                            .push_back(Event::Text(CowStr::from(rest[..at].to_owned())));
                    }
                    let url = &rest[at..at + len];
                    self.queue.push_back(Event::Start(Tag::Link {
                        link_type: LinkType::Inline,
                        dest_url: CowStr::from(url.to_owned()),
                        title: CowStr::Borrowed(""),
                        id: CowStr::Borrowed(""),
                    }));
                    self.queue
                        .push_back(Event::Text(CowStr::from(short_link(url))));
                    self.queue.push_back(Event::End(TagEnd::Link));
                    rest = &rest[at + len..];
                }
                if !found {
                    return Some(Event::Text(text));
                }
                if !rest.is_empty() {
                    self.queue
                        .push_back(Event::Text(CowStr::from(rest.to_owned())));
                }
                self.queue.pop_front()
            }
            other => Some(other),
        }
    }
}

/// The first web address in `text` that starts a word: its byte offset and
/// length, without the punctuation that ends the sentence around it.
fn bare_address(text: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    loop {
        let at = from + text[from..].find("http")?;
        let starts_word = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| c.is_whitespace() || matches!(c, '(' | '[' | '<' | '“' | '‘' | '"'));
        let rest = &text[at..];
        let scheme = ["https://", "http://"].into_iter().find(|s| {
            rest.len() > s.len() && rest.as_bytes()[..s.len()].eq_ignore_ascii_case(s.as_bytes())
        });
        if let (true, Some(scheme)) = (starts_word, scheme) {
            let end = rest
                .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '“' | '”'))
                .unwrap_or(rest.len());
            let mut url = &rest[..end];
            loop {
                let trimmed = url.trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '’']);
                let unbalanced = trimmed.ends_with(')')
                    && trimmed.matches(')').count() > trimmed.matches('(').count();
                url = if unbalanced {
                    &trimmed[..trimmed.len() - 1]
                } else {
                    trimmed
                };
                if !unbalanced {
                    break;
                }
            }
            if url.len() > scheme.len() {
                return Some((at, url.len()));
            }
        }
        from = at + "http".len();
    }
}

/// A web address as a link's text: without its scheme and `www.`, and
/// when longer than [`LINK_TEXT_CHARS`], its host and as many whole path
/// segments as fit, then `/…`.
pub(crate) fn short_link(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.strip_prefix("www.").unwrap_or(rest);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.chars().count() <= LINK_TEXT_CHARS {
        return rest.to_owned();
    }
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..host_end];
    if host.chars().count() > LINK_TEXT_CHARS - 2 {
        let cut: String = host.chars().take(LINK_TEXT_CHARS - 2).collect();
        return format!("{cut}…");
    }
    let mut short = host.to_owned();
    for segment in rest[host_end..]
        .split(['/', '?', '#'])
        .filter(|s| !s.is_empty())
    {
        if short.chars().count() + segment.chars().count() + 1 > LINK_TEXT_CHARS - 2 {
            break;
        }
        short.push('/');
        short.push_str(segment);
    }
    short.push_str("/…");
    short
}

/// Renders Markdown as plain text: paragraphs wrapped at [`TEXT_WIDTH`],
/// headings underlined, list items bulleted, and links (bare web addresses
/// too, shown shortened) replaced by numbered references listed at the end.
pub fn to_text(markdown: &str) -> String {
    let mut w = TextWriter::default();
    for event in Links::new(LetterLines::new(events(markdown))) {
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
    /// The table being read, laid out at its end.
    table: Option<TextTable>,
}

/// The `i`th cell of a row, empty when the row is short.
fn cell(row: &[String], i: usize) -> &str {
    row.get(i).map_or("", String::as_str)
}

/// A table's cells as plain text, and how each column is aligned.
#[derive(Default)]
struct TextTable {
    alignments: Vec<Alignment>,
    /// The header row first, when there is one.
    rows: Vec<Vec<String>>,
    row: Vec<String>,
    head: bool,
}

impl TextTable {
    /// The table as lines of text at most `width` characters wide: aligned
    /// columns two spaces apart, the header underlined; or, when the
    /// columns cannot fit, each row as a block of `Header: value` lines.
    fn lines(&self, width: usize) -> Vec<String> {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                let w = self.rows.iter().map(|r| cell(r, i).chars().count()).max();
                w.unwrap_or(0)
            })
            .collect();
        let total = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
        let mut lines = Vec::new();
        if total > width {
            let (header, body) = match self.head {
                true => (self.rows.first(), &self.rows[1..]),
                false => (None, &self.rows[..]),
            };
            for (n, row) in body.iter().enumerate() {
                if n > 0 {
                    lines.push(String::new());
                }
                for (i, value) in row.iter().enumerate() {
                    let line = match header.map(|h| cell(h, i)).filter(|h| !h.is_empty()) {
                        Some(h) => format!("{h}: {value}"),
                        None => value.clone(),
                    };
                    lines.extend(wrap(&line, width));
                }
            }
            return lines;
        }
        for (n, row) in self.rows.iter().enumerate() {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate() {
                let text = cell(row, i);
                let pad = w - text.chars().count();
                let (before, after) = match self.alignments.get(i) {
                    Some(Alignment::Right) => (pad, 0),
                    Some(Alignment::Center) => (pad / 2, pad - pad / 2),
                    _ => (0, pad),
                };
                if i > 0 {
                    line.push_str("  ");
                }
                line.extend(std::iter::repeat_n(' ', before));
                line.push_str(text);
                line.extend(std::iter::repeat_n(' ', after));
            }
            lines.push(line.trim_end().to_owned());
            if n == 0 && self.head {
                let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                lines.push(rules.join("  "));
            }
        }
        lines
    }
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
            Event::Start(Tag::Table(alignments)) => {
                self.flush_block();
                self.table = Some(TextTable {
                    alignments,
                    ..TextTable::default()
                });
            }
            Event::Start(Tag::TableHead) => {
                if let Some(table) = &mut self.table {
                    table.head = true;
                }
            }
            Event::End(TagEnd::TableCell) => {
                let text = std::mem::take(&mut self.line);
                if let Some(table) = &mut self.table {
                    table
                        .row
                        .push(text.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
            Event::End(TagEnd::TableRow | TagEnd::TableHead) => {
                if let Some(table) = &mut self.table {
                    let row = std::mem::take(&mut table.row);
                    table.rows.push(row);
                }
            }
            Event::End(TagEnd::Table) => {
                if let Some(table) = self.table.take() {
                    self.blank_line();
                    let prefix: String = self.prefixes.concat();
                    let width = TEXT_WIDTH.saturating_sub(prefix.chars().count()).max(20);
                    for line in table.lines(width) {
                        self.out.push_str(prefix.trim_end());
                        if !line.is_empty() {
                            self.out.push_str(&prefix[prefix.trim_end().len()..]);
                        }
                        self.out.push_str(&line);
                        self.out.push('\n');
                    }
                }
            }
            Event::Start(Tag::Image { .. }) => self.line.push_str("[Image: "),
            Event::End(TagEnd::Image) => match self.line.strip_suffix("[Image: ") {
                Some(rest) => {
                    let rest = rest.len();
                    self.line.truncate(rest);
                    self.line.push_str("[Image]");
                }
                None => self.line.push(']'),
            },
            Event::End(TagEnd::CodeBlock) => self.flush_block(),
            _ => {}
        }
    }

    /// Ends the line, and leaves a blank line unless there is one. Inside a
    /// quotation that goes on, the blank line keeps the quotation's marker
    /// (`>`), so that a quoted letter reads as one quotation.
    fn blank_line(&mut self) {
        if self.out.is_empty() {
            return;
        }
        if !self.out.ends_with('\n') {
            self.out.push('\n');
        }
        let last = self.out[..self.out.len() - 1]
            .rsplit('\n')
            .next()
            .unwrap_or("");
        if last.is_empty() || last.chars().all(|c| c == '>' || c == ' ') {
            return;
        }
        let quoted: String = self.prefixes.concat();
        let marker = quoted.trim_end();
        if !marker.is_empty() && last.starts_with(marker) {
            self.out.push_str(marker);
        }
        self.out.push('\n');
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

    #[test]
    fn an_address_broken_by_a_character_of_several_bytes_in_its_scheme_is_left_as_text() {
        for md in [
            "https:/\u{FFFD}/nec-rep.example.org/?p=168\n",
            "http:\u{e9}//x\n",
            "http\u{1F600}\n",
        ] {
            let html = to_html(md);
            assert!(!html.contains("<a "), "{html}");
            assert!(!to_text(md).contains("[1]"), "{md:?}");
        }
    }

    #[test]
    fn bare_addresses_become_links_with_short_text_in_both_parts() {
        let long = format!(
            "https://www.example.org/2017/07/19/nec-report/?ref={}",
            "x".repeat(240)
        );
        let md = format!(
            "The briefing is at {long}. See also (https://example.org/a) and \
             <https://example.org/{}>, not xhttps://example.org.\n",
            "y".repeat(60)
        );
        let html = to_html(&md);
        assert!(
            html.contains(&format!(
                "<a href=\"{}\">example.org/2017/07/19/nec-report/…</a>.",
                long.replace('&', "&amp;")
            )),
            "{html}"
        );
        assert!(
            html.contains("(<a href=\"https://example.org/a\">example.org/a</a>)"),
            "{html}"
        );
        assert!(html.contains(">example.org/…</a>"), "{html}");
        assert!(html.contains("xhttps://example.org."), "{html}");
        let text = to_text(&md);
        assert!(
            text.starts_with("The briefing is at example.org/2017/07/19/nec-report/… [1]."),
            "{text}"
        );
        assert!(text.contains(&format!("\n[1] {long}\n")), "{text}");
        assert!(
            text.lines()
                .filter(|l| !l.starts_with('['))
                .all(|l| l.chars().count() <= TEXT_WIDTH)
        );
    }

    #[test]
    fn short_links_keep_the_host_and_whole_path_segments() {
        assert_eq!(short_link("https://example.org/"), "example.org");
        assert_eq!(short_link("http://www.example.org/a/b"), "example.org/a/b");
        assert_eq!(
            short_link("https://janedoe.example.org/2017/07/19/labour-nec-report-july-2017/"),
            "janedoe.example.org/2017/07/19/…"
        );
        let host = format!("https://{}.example.org/x", "h".repeat(60));
        assert_eq!(short_link(&host), format!("{}…", "h".repeat(38)));
    }

    #[test]
    fn images_are_never_wider_than_the_column_and_tables_sit_in_a_div() {
        let html = to_html(
            "![A \"wide\" photo](https://example.org/p.jpg?a=1&b=2)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        );
        assert!(
            html.contains(
                "<img src=\"https://example.org/p.jpg?a=1&amp;b=2\" alt=\"A &quot;wide&quot; photo\" \
                 width=\"552\" />"
            ),
            "{html}"
        );
        assert!(html.contains("<div><table>"), "{html}");
        assert!(html.contains("</table>\n</div>"), "{html}");
    }

    #[test]
    fn tables_are_laid_out_in_aligned_columns_in_text() {
        let text = to_text(
            "| Region | Members | Change |\n|---|--:|:-:|\n| North East | 41,250 | +96% |\n\
             | Wales | 31,900 | +5% |\n",
        );
        assert_eq!(
            text,
            "Region      Members  Change\n\
             ----------  -------  ------\n\
             North East   41,250   +96%\n\
             Wales        31,900   +5%\n"
        );
    }

    #[test]
    fn a_table_too_wide_for_the_text_becomes_a_block_per_row() {
        let header = (1..=8)
            .map(|i| format!("Column number {i}"))
            .collect::<Vec<_>>();
        let md = format!(
            "> | {} |\n> |{}\n> | {} |\n",
            header.join(" | "),
            "---|".repeat(8),
            (1..=8)
                .map(|i| format!("{i},000"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let text = to_text(&md);
        assert!(
            text.starts_with("> Column number 1: 1,000\n> Column number 2: 2,000\n"),
            "{text}"
        );
        assert!(
            text.lines().all(|l| l.chars().count() <= TEXT_WIDTH),
            "{text}"
        );
    }

    #[test]
    fn a_quotation_of_several_paragraphs_reads_as_one_quotation() {
        let text = to_text("Before.\n\n> Dear Colleague,\n>\n> Motions by Friday.\n\nAfter.\n");
        assert_eq!(
            text,
            "Before.\n\n> Dear Colleague,\n>\n> Motions by Friday.\n\nAfter.\n"
        );
    }

    #[test]
    fn lists_hang_their_lines_under_the_marker_and_images_show_their_alt_text() {
        let long = "word ".repeat(30);
        let text = to_text(&format!(
            "1. {long}\n2. two\n   - nested\n\n![A photo of the NEC](https://x.org/p.jpg) ![](https://x.org/q.jpg)\n"
        ));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("1. word"), "{text}");
        assert!(lines[1].starts_with("   word"), "{text}");
        assert!(text.contains("\n2. two\n   - nested\n"), "{text}");
        assert!(
            text.ends_with("\n[Image: A photo of the NEC] [Image]\n"),
            "{text}"
        );
    }

    #[test]
    fn a_sign_off_keeps_its_line_breaks_and_prose_does_not() {
        let md = "Best wishes,\nJo Bloggs\nNEC member\n\nThe NEC met on Tuesday and agreed\n\
                  the budget for next year.\n\n> With best wishes,\n> Chris Rowe\n> General Secretary\n";
        let html = to_html(md);
        assert!(
            html.contains("<p>Best wishes,<br />\nJo Bloggs<br />\nNEC member</p>"),
            "{html}"
        );
        assert!(
            html.contains("<p>The NEC met on Tuesday and agreed\nthe budget"),
            "{html}"
        );
        assert!(
            html.contains("With best wishes,<br />\nChris Rowe<br />\nGeneral Secretary"),
            "{html}"
        );
        let text = to_text(md);
        assert!(
            text.starts_with("Best wishes,\nJo Bloggs\nNEC member\n\n"),
            "{text}"
        );
        assert!(
            text.contains("The NEC met on Tuesday and agreed the budget for next year.\n"),
            "{text}"
        );
        assert!(
            text.ends_with("> With best wishes,\n> Chris Rowe\n> General Secretary\n"),
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
