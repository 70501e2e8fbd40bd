//! The body of an imported post as blocks of plain text, which the text and
//! HTML importers both build, clean of cruft, and write out as a report's
//! Markdown: `## ` section headings, paragraphs, lists and quotations.

use super::cruft::{self, LineKind};
use super::escape::{escape_heading, escape_text};
use super::{MAX_REPORT_BYTES, ReportImportError};

/// A block of a post's body, holding plain text (not Markdown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Block {
    /// A section heading.
    Heading(String),
    Paragraph(Vec<Inline>),
    List {
        /// The first number of an ordered list; `None` for bullets.
        start: Option<u64>,
        items: Vec<Vec<Block>>,
    },
    Quote(Vec<Block>),
    Rule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Inline {
    Text(String),
    Link {
        text: String,
        url: String,
    },
    /// A line break inside the paragraph.
    Break,
}

/// The plain text of a paragraph, line breaks as `\n`.
pub(super) fn plain_text(inlines: &[Inline]) -> String {
    let mut text = String::new();
    for inline in inlines {
        match inline {
            Inline::Text(t) | Inline::Link { text: t, .. } => text.push_str(t),
            Inline::Break => text.push('\n'),
        }
    }
    text
}

/// Tidies a paragraph's inlines: adjacent texts merged, spaces trimmed at
/// the ends of its lines, empty texts and links dropped, and breaks never
/// at either end nor doubled (a doubled break splits the paragraph, as
/// `<br><br>` does on screen). Returns the paragraphs it makes.
pub(super) fn tidy_paragraph(inlines: Vec<Inline>) -> Vec<Vec<Inline>> {
    let mut merged: Vec<Inline> = Vec::with_capacity(inlines.len());
    for inline in inlines {
        match (merged.last_mut(), inline) {
            (Some(Inline::Text(prev)), Inline::Text(t)) => prev.push_str(&t),
            (_, Inline::Link { text, url }) => {
                let text = text.trim().to_owned();
                if !text.is_empty() {
                    merged.push(Inline::Link { text, url });
                }
            }
            (_, other) => merged.push(other),
        }
    }
    let mut paragraphs = vec![Vec::new()];
    let mut breaks = 0;
    for (i, inline) in merged.iter().enumerate() {
        let current = paragraphs.last_mut().expect("never empty");
        match inline {
            Inline::Break => breaks += 1,
            other => {
                if breaks >= 2 && !current.is_empty() {
                    paragraphs.push(Vec::new());
                } else if breaks == 1 && !current.is_empty() {
                    current.push(Inline::Break);
                }
                breaks = 0;
                let current = paragraphs.last_mut().expect("never empty");
                if let Inline::Text(t) = other {
                    let line_start = current.is_empty() || current.last() == Some(&Inline::Break);
                    let line_end = matches!(merged.get(i + 1), None | Some(Inline::Break));
                    let mut t = t.as_str();
                    if line_start {
                        t = t.trim_start();
                    }
                    if line_end {
                        t = t.trim_end();
                    }
                    if !t.is_empty() {
                        current.push(Inline::Text(t.to_owned()));
                    }
                } else {
                    current.push(other.clone());
                }
            }
        }
    }
    paragraphs.retain(|p| !p.is_empty());
    paragraphs
}

/// How cruft ends the post: a `Leave a comment` link or a comment count
/// ends a single post, but sits beside each excerpt on an archive page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CommentLinks {
    EndThePost,
    Drop,
}

/// True when a post's blocks, before [`remove_cruft`], end as an excerpt
/// does: the last of its text (before its comments) is a paragraph that
/// ends with a `Continue reading` link or with `[…]`. A post with text
/// after such a link (a pasted post carrying its page's link) is whole.
pub(super) fn is_cut_off(blocks: &[Block]) -> bool {
    let mut cut = false;
    for block in blocks {
        match block {
            Block::Paragraph(inlines) => {
                let text = plain_text(inlines);
                let kind = cruft::classify(&text);
                if kind == LineKind::EndOfPost {
                    break;
                }
                let last_line = text.lines().last().unwrap_or_default();
                if cruft::strip_continue_reading(last_line).is_some()
                    || cruft::ends_with_ellipsis_mark(&text)
                {
                    cut = true;
                } else if kind == LineKind::Text {
                    cut = false;
                }
            }
            Block::Heading(_) | Block::List { .. } | Block::Quote(_) => cut = false,
            Block::Rule => {}
        }
    }
    cut
}

/// True when `blocks` hold text of the post before its comments: a
/// heading, a list, a quotation or a paragraph that is neither cruft nor a
/// `Continue reading` link.
pub(super) fn has_text(blocks: &[Block]) -> bool {
    for block in blocks {
        match block {
            Block::Paragraph(inlines) => {
                let text = plain_text(inlines);
                match cruft::classify(&text) {
                    LineKind::EndOfPost => return false,
                    LineKind::Text if cruft::strip_continue_reading(&text).is_none() => {
                        return true;
                    }
                    _ => {}
                }
            }
            Block::Heading(_) | Block::List { .. } | Block::Quote(_) => return true,
            Block::Rule => {}
        }
    }
    false
}

/// Removes the cruft of a scraped or pasted post from its blocks: image
/// file names, glued alt text, `Continue reading` links and boilerplate are
/// dropped; the comment section and everything after it goes.
pub(super) fn remove_cruft(blocks: Vec<Block>, comment_links: CommentLinks) -> Vec<Block> {
    let mut out = Vec::with_capacity(blocks.len());
    for block in blocks {
        match block {
            Block::Heading(text) => {
                match cruft::classify(&text) {
                    LineKind::EndOfPost => break,
                    LineKind::CommentLink if comment_links == CommentLinks::EndThePost => break,
                    LineKind::Text => {}
                    LineKind::CommentLink | LineKind::Boilerplate => continue,
                }
                let text = cruft::strip_image_names(&text).trim().to_owned();
                if !text.is_empty() {
                    out.push(Block::Heading(text));
                }
            }
            Block::Paragraph(inlines) => {
                match cruft::classify(&plain_text(&inlines)) {
                    LineKind::EndOfPost => break,
                    LineKind::CommentLink if comment_links == CommentLinks::EndThePost => break,
                    LineKind::Text => {}
                    LineKind::CommentLink | LineKind::Boilerplate => continue,
                }
                out.extend(clean_paragraph(inlines).into_iter().map(Block::Paragraph));
            }
            Block::List { start, items } => {
                let items: Vec<Vec<Block>> = items
                    .into_iter()
                    .map(|item| remove_cruft(item, CommentLinks::Drop))
                    .filter(|item| !item.is_empty())
                    .collect();
                if !items.is_empty() {
                    out.push(Block::List { start, items });
                }
            }
            Block::Quote(inner) => {
                let inner = remove_cruft(inner, CommentLinks::Drop);
                if !inner.is_empty() {
                    out.push(Block::Quote(inner));
                }
            }
            Block::Rule => out.push(Block::Rule),
        }
    }
    out
}

fn clean_paragraph(inlines: Vec<Inline>) -> Vec<Vec<Inline>> {
    let mut inlines: Vec<Inline> = inlines
        .into_iter()
        .filter_map(|inline| match inline {
            Inline::Text(t) => Some(Inline::Text(cruft::strip_image_names(&t))),
            Inline::Link { text, url } => {
                let text = cruft::strip_image_names(&text);
                let continue_link = cruft::strip_continue_reading(&text).is_some_and(str::is_empty);
                (!continue_link).then_some(Inline::Link { text, url })
            }
            Inline::Break => Some(Inline::Break),
        })
        .collect();
    if let Some(Inline::Text(last)) = inlines.last_mut()
        && let Some(before) = cruft::strip_continue_reading(last)
    {
        *last = before.to_owned();
    }
    let mut paragraphs = tidy_paragraph(inlines);
    if let Some(Inline::Text(first)) = paragraphs.first_mut().and_then(|p| p.first_mut()) {
        *first = cruft::strip_glued_alt_text(first).to_owned();
    }
    paragraphs
}

/// Sign-offs of a letter: short, unpunctuated lines that are not headings.
const SIGN_OFFS: &[&str] = &[
    "best wishes",
    "with best wishes",
    "all best wishes",
    "kind regards",
    "warm regards",
    "best regards",
    "regards",
    "yours sincerely",
    "yours faithfully",
    "yours fraternally",
    "yours truly",
    "yours",
    "in solidarity",
    "thanks",
    "thank you",
    "many thanks",
];

/// How sure a heading must look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Evidence {
    /// A bare line of text: it must also read like a heading, most of its
    /// longer words capitalised.
    Bare,
    /// A line the author marked up, e.g. a bold paragraph of its own.
    MarkedUp,
}

/// Whether a line looks like a section heading: short (at most 80
/// characters and 12 words), no full stop, comma, colon, semicolon,
/// question or exclamation mark at the end, starts with a capital or a
/// figure, is not a greeting (`Dear Colleague`) or a sign-off (`Best
/// wishes`), and holds a single sentence. Cruft such as `4 thoughts on “…”`
/// is for [`remove_cruft`] to catch, which every heading goes through.
pub(super) fn looks_like_heading(line: &str, evidence: Evidence) -> bool {
    let line = line.trim();
    let Some(first) = line.chars().next() else {
        return false;
    };
    if line.chars().nth(80).is_some() {
        return false;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let folded = line.to_lowercase();
    let shaped = words.len() <= 12
        && !line.ends_with(['.', ',', ';', ':', '!', '?', '…'])
        && (first.is_uppercase() || first.is_ascii_digit())
        && line.chars().any(char::is_alphabetic)
        && !line.contains(". ")
        && !line.contains('\n')
        && !folded.starts_with("dear ")
        && !SIGN_OFFS.contains(&folded.as_str());
    shaped && (evidence == Evidence::MarkedUp || mostly_capitalised(&words))
}

/// More than half of the words of four or more letters start with a
/// capital (or, if there are none, every word does).
fn mostly_capitalised(words: &[&str]) -> bool {
    let capitalised = |w: &&str| {
        w.chars()
            .find(|c| c.is_alphanumeric())
            .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit())
    };
    let long: Vec<&str> = words
        .iter()
        .filter(|w| w.chars().filter(|c| c.is_alphabetic()).count() >= 4)
        .copied()
        .collect();
    if long.is_empty() {
        words.iter().all(capitalised)
    } else {
        long.iter().filter(|w| capitalised(w)).count() * 2 > long.len()
    }
}

/// Turns into a heading each paragraph of one bare line that looks like a
/// heading and is followed by body text (a paragraph that does not look
/// like one, a list or a quotation).
///
/// A heading in sentence case ("Preparing for another snap election") does
/// not read like one on its own, so it needs more: three to eight words,
/// starting with a capital letter, and between two stretches of body text,
/// the one before it a paragraph ending a sentence. An ordinary short paragraph ends
/// with a full stop, and a signature's lines sit together at the end of a
/// letter, so neither is taken for one.
pub(super) fn find_headings(blocks: Vec<Block>) -> Vec<Block> {
    let bare_line = |block: &Block| match block {
        Block::Paragraph(inlines) => match inlines.as_slice() {
            [Inline::Text(t)] => Some(t.clone()),
            _ => None,
        },
        _ => None,
    };
    let shaped: Vec<bool> = blocks
        .iter()
        .map(|block| match block {
            Block::Paragraph(inlines) => looks_like_heading(&plain_text(inlines), Evidence::Bare),
            _ => false,
        })
        .collect();
    let is_body = |i: usize| match blocks.get(i) {
        Some(Block::Paragraph(_)) => !shaped[i],
        Some(Block::List { .. } | Block::Quote(_)) => true,
        _ => false,
    };
    let ends_a_sentence = |i: usize| match blocks.get(i) {
        Some(Block::Paragraph(inlines)) if !shaped[i] => plain_text(inlines)
            .trim_end()
            .ends_with(['.', '!', '?', '…', '”', '"', ')']),
        _ => false,
    };
    let sentence_case = |i: usize, line: &str| {
        let words = line.split_whitespace().count();
        (3..=8).contains(&words)
            && line.chars().next().is_some_and(char::is_uppercase)
            && looks_like_heading(line, Evidence::MarkedUp)
            && i > 0
            && ends_a_sentence(i - 1)
    };
    let headings: Vec<bool> = (0..blocks.len())
        .map(|i| match bare_line(&blocks[i]) {
            Some(line) => is_body(i + 1) && (shaped[i] || sentence_case(i, &line)),
            None => false,
        })
        .collect();
    blocks
        .into_iter()
        .zip(headings)
        .map(|(block, heading)| match (heading, bare_line(&block)) {
            (true, Some(line)) => Block::Heading(line),
            _ => block,
        })
        .collect()
}

/// Writes blocks as the Markdown of a report body, ending with a newline.
/// Each line is written once, with the markers of the quotations and list
/// items it sits in, so the cost is linear in the Markdown; writing stops,
/// and the body is refused, once it grows past [`MAX_REPORT_BYTES`].
pub(super) fn to_markdown(blocks: &[Block]) -> Result<String, ReportImportError> {
    let mut writer = MarkdownWriter::default();
    writer.blocks(blocks, true);
    if writer.out.len() > MAX_REPORT_BYTES {
        return Err(ReportImportError::MarkdownTooLarge);
    }
    Ok(writer.out)
}

/// A quotation or list item that the lines being written sit in.
enum Container {
    Quote,
    Item {
        marker: String,
        /// Whether the item's first line, which takes the marker, is still to come.
        first: bool,
    },
}

#[derive(Default)]
struct MarkdownWriter {
    out: String,
    /// Outermost first.
    containers: Vec<Container>,
}

impl MarkdownWriter {
    fn full(&self) -> bool {
        self.out.len() > MAX_REPORT_BYTES
    }

    /// Blocks separated by blank lines.
    fn blocks(&mut self, blocks: &[Block], top_level: bool) {
        for (i, block) in blocks.iter().enumerate() {
            if self.full() {
                return;
            }
            if i > 0 {
                self.line("");
            }
            match block {
                Block::Heading(text) if top_level => {
                    self.lines(&format!("## {}", escape_heading(text)))
                }
                Block::Heading(text) => self.lines(&write_inlines(&[Inline::Text(text.clone())])),
                Block::Paragraph(inlines) => self.lines(&write_inlines(inlines)),
                Block::List { start, items } => {
                    for (n, item) in (start.unwrap_or(1)..).zip(items) {
                        let marker = match start {
                            Some(_) => format!("{n}. "),
                            None => "- ".to_owned(),
                        };
                        self.containers.push(Container::Item {
                            marker,
                            first: true,
                        });
                        self.blocks(item, false);
                        self.containers.pop();
                    }
                }
                Block::Quote(inner) => {
                    self.containers.push(Container::Quote);
                    self.blocks(inner, false);
                    self.containers.pop();
                }
                Block::Rule => self.line("---"),
            }
        }
    }

    fn lines(&mut self, text: &str) {
        for line in text.split('\n') {
            self.line(line);
        }
    }

    /// Writes a line after the markers of its containers: `> ` (`>` before
    /// an empty line) for a quotation; an item's marker on its first line,
    /// then as many spaces (none before an empty line).
    fn line(&mut self, line: &str) {
        let mut pieces: Vec<&str> = Vec::with_capacity(self.containers.len());
        let mut empty = line.is_empty();
        for container in self.containers.iter_mut().rev() {
            match container {
                Container::Quote => {
                    pieces.push(if empty { ">" } else { "> " });
                    empty = false;
                }
                Container::Item { marker, first } => {
                    if *first {
                        *first = false;
                        pieces.push(marker);
                        empty = false;
                    } else if !empty {
                        pieces.push(&INDENT[..marker.len().min(INDENT.len())]);
                    }
                }
            }
        }
        for piece in pieces.iter().rev() {
            self.out.push_str(piece);
        }
        self.out.push_str(line);
        self.out.push('\n');
    }
}

/// Spaces to indent a list item's continuation lines with.
const INDENT: &str = "                        ";

/// A paragraph's Markdown: each text escaped, lines joined by hard breaks.
fn write_inlines(inlines: &[Inline]) -> String {
    let mut out = String::new();
    let mut line_start = true;
    for inline in inlines {
        match inline {
            Inline::Text(t) => {
                out.push_str(&escape_text(t, line_start));
                line_start = false;
            }
            Inline::Link { text, url } => {
                out.push('[');
                out.push_str(&escape_text(text, false));
                out.push_str("](");
                out.push_str(url);
                out.push(')');
                line_start = false;
            }
            Inline::Break => {
                out.push_str("\\\n");
                line_start = true;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn para(text: &str) -> Block {
        Block::Paragraph(vec![Inline::Text(text.into())])
    }

    #[test]
    fn short_capitalised_lines_followed_by_text_become_headings() {
        let blocks = find_headings(vec![
            para("Leader’s Report"),
            para("The leader spoke about the 80 million leaflets."),
            para("European Parliamentary Labour Party and International Reports"),
            para("Members of the European Parliament reported."),
            para("Report from April’s Emergency NEC meeting"),
            para("The meeting was called at short notice."),
        ]);
        let headings: Vec<&Block> = blocks
            .iter()
            .filter(|b| matches!(b, Block::Heading(_)))
            .collect();
        assert_eq!(headings.len(), 3, "{blocks:#?}");
    }

    #[test]
    fn sentences_greetings_and_sign_offs_are_not_headings() {
        for line in [
            "The meeting closed early.",
            "Dear Colleague,",
            "Dear Colleague",
            "Best wishes",
            "Jeremy Corbyn opened the meeting",
            "The NEC agreed. Then it voted",
            "Which way now?",
            "a lower-case line",
        ] {
            let blocks = find_headings(vec![para(line), para("Body text that follows it here.")]);
            assert_eq!(blocks[0], para(line), "{line:?} was taken for a heading");
        }
    }

    #[test]
    fn a_heading_in_sentence_case_between_paragraphs_is_found() {
        let blocks = find_headings(vec![
            para("The NEC met on 18 July."),
            para("Preparing for another snap election"),
            para("The General Secretary set out the plans."),
        ]);
        assert_eq!(
            blocks[1],
            Block::Heading("Preparing for another snap election".into())
        );
    }

    #[test]
    fn short_paragraphs_and_signatures_in_sentence_case_stay_paragraphs() {
        for blocks in [
            vec![
                para("The NEC met on 18 July."),
                para("The report was agreed."),
                para("Members then discussed the timetable."),
            ],
            vec![
                para("Thank you for everything you are doing."),
                para("With all good wishes to you"),
                para("Jo Bloggs"),
            ],
            vec![
                Block::Quote(vec![para("Dear Colleague,")]),
                para("A line after a quotation"),
                para("The report was agreed."),
            ],
            vec![
                para("Preparing for another snap election"),
                para("The General Secretary set out the plans."),
            ],
        ] {
            let found = find_headings(blocks.clone());
            assert_eq!(found, blocks);
        }
    }

    #[test]
    fn a_heading_needs_body_text_after_it() {
        let blocks = find_headings(vec![
            para("Jane Smith"),
            para("General Secretary"),
            para("Party Membership"),
        ]);
        assert!(
            blocks.iter().all(|b| matches!(b, Block::Paragraph(_))),
            "{blocks:#?}"
        );
    }

    #[test]
    fn doubled_breaks_split_a_paragraph_and_line_ends_are_trimmed() {
        let paragraphs = tidy_paragraph(vec![
            Inline::Break,
            Inline::Text("  One ".into()),
            Inline::Text("line  ".into()),
            Inline::Break,
            Inline::Text(" two".into()),
            Inline::Break,
            Inline::Break,
            Inline::Text("three".into()),
            Inline::Break,
        ]);
        assert_eq!(
            paragraphs,
            vec![
                vec![
                    Inline::Text("One line".into()),
                    Inline::Break,
                    Inline::Text("two".into())
                ],
                vec![Inline::Text("three".into())],
            ]
        );
    }

    #[test]
    fn lists_and_quotations_are_written_as_markdown() {
        let markdown = to_markdown(&[
            Block::Heading("Party Membership".into()),
            Block::List {
                start: None,
                items: vec![
                    vec![para("575,000 members")],
                    vec![para("- 40% of them new")],
                ],
            },
            Block::List {
                start: Some(3),
                items: vec![vec![para("three")], vec![para("four")]],
            },
            Block::Quote(vec![para("Dear Colleague,"), para("# Thanks")]),
        ])
        .unwrap();
        assert_eq!(
            markdown,
            "## Party Membership\n\n- 575,000 members\n- \\- 40% of them new\n\n3. three\n4. four\n\n\
             > Dear Colleague,\n>\n> \\# Thanks\n"
        );
        let html = crate::render::to_html(&markdown);
        assert!(html.contains("<li>- 40% of them new</li>"), "{html}");
        assert!(html.contains("<ol start=\"3\">"), "{html}");
        assert!(html.contains("<p># Thanks</p>"), "{html}");
    }
}
