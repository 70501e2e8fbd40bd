//! Helpers for the text of reports, shared by the importer (`reports`) and
//! the renderer (`render`): how deep Markdown may nest, a heading's plain
//! text, and the anchors and slugs made from titles; and bytes in hex, for
//! the digests kept and the ids made everywhere.

use std::collections::{HashMap, HashSet};

use pulldown_cmark::{Event, Options, Parser};

pub(crate) fn markdown_options() -> Options {
    Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES
}

/// How deep the elements of a rendered report nest at most: quotations,
/// lists, list items, emphasis, links and table parts all count. The
/// Markdown importer refuses a deeper report; a deeper stored one is
/// flattened when it renders.
pub const MAX_NESTING: usize = 64;

/// Parser events with raw HTML turned into text, nested at most
/// [`MAX_NESTING`] deep.
pub(crate) fn bounded_events(markdown: &str) -> impl Iterator<Item = Event<'_>> {
    let mut depth = 0;
    // Elements opened beyond the limit, and so dropped; always the innermost.
    let mut dropped = 0usize;
    Parser::new_ext(markdown, markdown_options()).filter_map(move |event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Some(Event::Text(html)),
        Event::Start(_) if depth >= MAX_NESTING => {
            dropped += 1;
            None
        }
        Event::Start(tag) => {
            depth += 1;
            Some(Event::Start(tag))
        }
        Event::End(_) if dropped > 0 => {
            dropped -= 1;
            None
        }
        Event::End(tag) => {
            depth -= 1;
            Some(Event::End(tag))
        }
        other => Some(other),
    })
}

/// How deep the Markdown's elements nest, counted as [`MAX_NESTING`] counts them.
pub fn nesting_depth(markdown: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0);
    for event in Parser::new_ext(markdown, markdown_options()) {
        match event {
            Event::Start(_) => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The plain text of a line of inline Markdown: `Leader\'s *Report*` → `Leader's Report`.
pub fn inline_text(markdown: &str) -> String {
    let mut text = String::new();
    for event in bounded_events(markdown) {
        if let Event::Text(t) | Event::Code(t) = event {
            text.push_str(&t);
        }
    }
    text
}

/// The anchor of a heading: `Local Government Report` → `local-government-report`.
pub fn anchor_for(heading: &str) -> String {
    or_report(hyphenated(heading, 80))
}

/// The anchors given to a document's headings so far.
#[derive(Debug, Default)]
pub struct Anchors {
    given: HashSet<String>,
    /// For each base anchor, the suffix to try next: every smaller one is taken.
    next: HashMap<String, usize>,
}

impl Anchors {
    /// The anchor for a heading, made unique among those already given:
    /// `update`, then `update-2`, `update-3`… In constant time per heading
    /// however many headings share a name.
    pub fn unique(&mut self, heading: &str) -> String {
        let base = anchor_for(heading);
        let mut anchor = base.clone();
        if self.given.contains(&anchor) {
            let n = self.next.entry(base.clone()).or_insert(2);
            loop {
                anchor = format!("{base}-{n}");
                *n += 1;
                if !self.given.contains(&anchor) {
                    break;
                }
            }
        }
        self.given.insert(anchor.clone());
        anchor
    }
}

/// `bytes` in lower-case hex, two digits each.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0xf)]])
        .map(char::from)
        .collect()
}

/// Names as a phrase: "A", "A and B", "A, B and C".
pub fn joined(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The longest slug [`slugify`] makes.
pub const MAX_SLUG_LEN: usize = 60;

/// A URL-safe slug from a title: `Labour NEC Report – March 2017` becomes
/// `labour-nec-report-march-2017`. A long title's slug is cut after its
/// last whole word within [`MAX_SLUG_LEN`] characters.
pub fn slugify(title: &str) -> String {
    or_report(shorten_slug(&hyphenated(title, MAX_SLUG_LEN + 1), MAX_SLUG_LEN).to_owned())
}

/// `slug` in at most `max` characters: cut at its last hyphen within them,
/// or within its first word when that alone is longer.
pub fn shorten_slug(slug: &str, max: usize) -> &str {
    if slug.len() <= max {
        return slug;
    }
    match slug.get(..=max).and_then(|head| head.rfind('-')) {
        Some(cut) if cut > 0 => &slug[..cut],
        _ => slug.get(..max).unwrap_or(slug),
    }
}

/// The ASCII letters and digits of `text` in lower case, its words joined
/// by single hyphens, stopped once `max` characters long.
fn hyphenated(text: &str, max: usize) -> String {
    let mut slug = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if c.is_alphanumeric() || matches!(c, '\'' | '’' | '‘') {
            continue;
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= max {
            break;
        }
    }
    slug.trim_end_matches('-').to_owned()
}

/// `slug`, or `report` when it is empty.
fn or_report(slug: String) -> String {
    if slug.is_empty() {
        "report".into()
    } else {
        slug
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_gives_two_lower_case_digits_a_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::hex(&[]), "");
    }
}
