//! Plain text made safe to embed in Markdown: the backslash escapes that make
//! pulldown-cmark render the original characters, and nothing else.
//!
//! Only ASCII punctuation is ever escaped, so curly quotes, dashes, ellipses,
//! doubled spaces and figures reach the reader exactly as written.

/// Escapes one line of text that sits inside a paragraph, a heading or a
/// link's text. `line_start` says whether the text begins a line of the
/// Markdown, where block markers (`#`, `>`, `-`, `+`, `=`, `1.`) take effect.
///
/// The caller trims the line first: leading spaces would start an indented
/// code block and trailing ones a hard break.
pub(super) fn escape_text(text: &str, line_start: bool) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let ordered_marker = if line_start {
        ordered_list_delimiter(text)
    } else {
        None
    };
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let escape = match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '|' | '~' => true,
            '&' => chars
                .peek()
                .is_some_and(|&(_, next)| next.is_ascii_alphanumeric() || next == '#'),
            '#' | '>' | '-' | '+' | '=' => line_start && i == 0,
            '.' | ')' => ordered_marker == Some(i),
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escapes the text of a `## ` heading line: as [`escape_text`], plus a `#`
/// at the end, which would otherwise be read as a closing sequence.
pub(super) fn escape_heading(text: &str) -> String {
    let mut out = escape_text(text, false);
    if out.ends_with('#') {
        out.insert(out.len() - 1, '\\');
    }
    out
}

/// The byte offset of the `.` or `)` in a line that would start an ordered
/// list: one to nine digits, the delimiter, then a space, a tab or the end.
fn ordered_list_delimiter(line: &str) -> Option<usize> {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let rest = &line.as_bytes()[digits..];
    match rest {
        [b'.' | b')'] | [b'.' | b')', b' ' | b'\t', ..] => Some(digits),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

    use super::*;

    /// The text pulldown-cmark finds in `markdown` if, and only if, it is a
    /// single paragraph of plain text and hard line breaks.
    fn paragraph_text(markdown: &str) -> Option<String> {
        let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES;
        let mut events = Parser::new_ext(markdown, options).peekable();
        if events.next() != Some(Event::Start(Tag::Paragraph)) {
            return None;
        }
        let mut text = String::new();
        for event in events {
            match event {
                Event::Text(t) => text.push_str(&t),
                Event::HardBreak => text.push('\n'),
                Event::End(TagEnd::Paragraph) => return Some(text),
                _ => return None,
            }
        }
        None
    }

    /// Escapes the lines of a paragraph and joins them with hard breaks, as
    /// the importers write them.
    fn escape_paragraph(lines: &[&str]) -> String {
        lines
            .iter()
            .map(|l| escape_text(l, true))
            .collect::<Vec<_>>()
            .join("\\\n")
    }

    #[test]
    fn tricky_paragraphs_render_as_the_original_text() {
        let tricky = [
            "1. This looks like a list item but is a sentence.",
            "2017) was the year it began.",
            "- a dash that is not a bullet",
            "+ and a plus",
            "# not a heading",
            "> not a quotation",
            "=====",
            "* * *",
            "___",
            "Use *stars*, _underscores_, `backticks` and ~~tildes~~ as written.",
            "[not a link](https://example.org) and <https://example.org> and <b>bold</b>",
            "AT&T and &amp; and &#8211; stay as typed, as does a lone & sign.",
            "A back\\slash, a pipe | and a final backslash \\",
            "“Curly quotes” – en dashes… ellipses.. doubled  spaces and 7million",
            "| a | b |",
            "[label]: https://example.org/definition",
            "![an image](x.png)",
        ];
        for text in tricky {
            let markdown = escape_text(text, true);
            assert_eq!(
                paragraph_text(&markdown).as_deref(),
                Some(text),
                "{markdown:?}"
            );
            let rendered = crate::render::to_text(&markdown);
            if text.contains("https://") {
                continue;
            }
            assert_eq!(rendered.trim_end_matches('\n'), text, "{markdown:?}");
        }
        let addresses = escape_text(tricky[10], true);
        assert_eq!(
            crate::render::to_text(&addresses),
            "[not a link](example.org [1]) and <example.org [1]> and <b>bold</b>\n\n\
             [1] https://example.org\n",
            "bare addresses are links in the text as in the HTML"
        );
    }

    #[test]
    fn lines_joined_by_hard_breaks_keep_their_markers_as_text() {
        let lines = ["Best wishes,", "- Jane", "1. Smith", "---", "=="];
        let markdown = escape_paragraph(&lines);
        assert_eq!(paragraph_text(&markdown), Some(lines.join("\n")));
        let html = crate::render::to_html(&markdown);
        assert!(
            !html.contains("<ol") && !html.contains("<ul") && !html.contains("<h"),
            "{html}"
        );
    }

    #[test]
    fn a_heading_keeps_a_final_hash_and_its_markers() {
        let markdown = format!("## {}\n", escape_heading("Motion #"));
        let html = crate::render::to_html(&markdown);
        assert!(html.contains(">Motion #</h2>"), "{html}");
        let markdown = format!("## {}\n", escape_heading("*Leader’s* Report_"));
        assert!(crate::render::to_html(&markdown).contains(">*Leader’s* Report_</h2>"));
    }

    #[test]
    fn only_ascii_punctuation_is_ever_escaped() {
        let text = "“Quoted” — 575,000 members… 40% ‘yes’ 2 million";
        assert_eq!(escape_text(text, true), text);
    }

    proptest! {
        #[test]
        fn any_paragraph_of_trimmed_lines_renders_as_written(
            lines in proptest::collection::vec(
                "[a-zA-Z0-9 .,;:!?()\\[\\]{}<>#*_`~|&+=\\-\\\\/'\"“”–…\u{a0}]{1,24}",
                1..4,
            )
        ) {
            let lines: Vec<&str> = lines
                .iter()
                .map(|l| l.trim_matches(|c: char| c.is_whitespace()))
                .filter(|l| !l.is_empty())
                .collect();
            prop_assume!(!lines.is_empty());
            let markdown = escape_paragraph(&lines);
            prop_assert_eq!(paragraph_text(&markdown), Some(lines.join("\n")), "{:?}", markdown);
        }
    }
}
