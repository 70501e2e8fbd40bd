//! Importers: turn a Markdown file, a pasted blog post or a saved HTML page
//! into report drafts.
//!
//! Every importer produces the same Markdown body, in which each section
//! starts with a `## ` heading line (see [`crate::reports::split_sections`]).
//! Text from a paste or a page is escaped so that it renders exactly as it
//! was written: figures, curly quotes, dashes, ellipses and doubled spaces
//! included. A Markdown file's body is the author's Markdown, kept as is.
//!
//! Before parsing, every input loses its byte-order mark, its Unicode
//! private-use characters (U+E000 to U+F8FF, which the renderer uses as
//! placeholders) and its control characters other than tabs and line ends;
//! `\r\n` and lone `\r` line ends become `\n`.
//!
//! Every importer costs time and memory linear in its input, and refuses an
//! input over [`MAX_REPORT_BYTES`]. HTML nested deeper than
//! [`crate::text::MAX_NESTING`] is flattened (the text kept, the excess
//! structure dropped); a Markdown file nested deeper is refused.

mod body;
mod cruft;
mod dom;
mod escape;
mod flatten;
mod html;
mod markdown;
mod text;

use super::{Excerpt, Report, ReportDraft, ReportSource};

/// The format of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Text,
    Html,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Ok(Format::Markdown),
            "text" | "txt" => Ok(Format::Text),
            "html" | "htm" => Ok(Format::Html),
            other => Err(format!("{other:?} is not a format; use md, text or html")),
        }
    }
}

/// The largest report necmail imports: 1 MiB of source (a file, a page, a
/// paste or a feed item's HTML), and 1 MiB of Markdown once converted. An
/// NEC report is some 30 KB.
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;

/// Why an input cannot be imported. Every variant is the user's bad input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportImportError {
    #[error(
        "the input is not UTF-8 text: the byte at offset {offset} (line {line}) is not valid UTF-8; \
         save it as UTF-8 and try again"
    )]
    NotUtf8 { offset: usize, line: usize },
    #[error("the input is empty")]
    Empty,
    #[error(
        "the report is too large: {bytes} bytes, and a report may be at most 1 MiB ({max} bytes); \
         split it into smaller reports",
        max = MAX_REPORT_BYTES
    )]
    TooLarge { bytes: usize },
    #[error(
        "the report would be over 1 MiB ({max} bytes) of Markdown once converted; \
         split it into smaller reports",
        max = MAX_REPORT_BYTES
    )]
    MarkdownTooLarge,
    #[error(
        "the report nests quotations, lists or emphasis {depth} levels deep, and at most {max} are allowed",
        max = crate::text::MAX_NESTING
    )]
    TooDeep { depth: usize },
    #[error(
        "the report has no title: start a pasted post with its title on a line of its own, or give a \
         Markdown file a `title` in its front matter or a `# Title` first line"
    )]
    NoTitle,
    #[error("the report has a title but no text")]
    NoBody,
    #[error(
        "the front matter opened by `{fence}` on the first line is never closed by another `{fence}` line"
    )]
    UnclosedFrontMatter { fence: &'static str },
    #[error("the front matter is not valid {syntax}: {reason}")]
    FrontMatter {
        syntax: &'static str,
        reason: String,
    },
    #[error("the meeting date {value:?} is not a date written YYYY-MM-DD, such as 2017-03-21")]
    BadDate { value: String },
    #[error(
        "this is an archive page of {}, which cannot be split reliably into reports: import each post on its own",
        count_posts(*posts)
    )]
    Archive { posts: usize },
}

/// `no posts`, `1 post`, `3 posts`.
fn count_posts(posts: usize) -> String {
    match posts {
        0 => "no posts".into(),
        1 => "1 post".into(),
        n => format!("{n} posts"),
    }
}

/// Guesses the format from a file name (if any) and the content: by the
/// extension when there is a known one (`.md`, `.markdown`, `.txt`,
/// `.html`, `.htm`), else by sniffing. Front matter or a `# Title` first
/// line means Markdown; a doctype, an `<html>` tag or content that is
/// mostly tags means HTML; anything else is a text paste.
pub fn guess_format(name: Option<&str>, content: &[u8]) -> Format {
    let extension = name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    match extension.as_deref() {
        Some("md" | "markdown" | "mdown" | "mkd") => return Format::Markdown,
        Some("txt" | "text") => return Format::Text,
        Some("html" | "htm" | "xhtml") => return Format::Html,
        _ => {}
    }
    let head = &content[..content.len().min(64 * 1024)];
    let head = String::from_utf8_lossy(head);
    let head = head.trim_start_matches('\u{feff}').trim_start();
    let first_line = head.lines().next().unwrap_or("").trim_end();
    if first_line == "---" || first_line == "+++" || first_line.starts_with("# ") {
        return Format::Markdown;
    }
    let lower = head
        .get(..head.len().min(16))
        .unwrap_or(head)
        .to_ascii_lowercase();
    if lower.starts_with("<!doctype") || lower.starts_with("<html") {
        return Format::Html;
    }
    if mostly_tags(head) {
        Format::Html
    } else {
        Format::Text
    }
}

/// Starts with a tag and has a closing tag, or most of its lines start with
/// a tag.
fn mostly_tags(text: &str) -> bool {
    let starts_with_tag = |s: &str| {
        let mut chars = s.trim_start().chars();
        chars.next() == Some('<') && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
    };
    if starts_with_tag(text) && text.contains("</") {
        return true;
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tagged = lines.iter().filter(|l| starts_with_tag(l)).count();
    !lines.is_empty() && tagged * 2 > lines.len()
}

/// Parses `content` into one draft per report it holds. Drafts come back
/// with `source: ReportSource::Paste` and no `published_at`; the caller sets both.
pub fn parse(content: &[u8], format: Format) -> Result<Vec<ReportDraft>, ReportImportError> {
    match format {
        Format::Markdown => parse_markdown(content).map(|draft| vec![draft]),
        Format::Text => text::parse(&decode(content)?),
        Format::Html => html::parse(&decode(content)?),
    }
}

/// Parses a Markdown file, which holds one report, as [`parse`] does.
pub fn parse_markdown(content: &[u8]) -> Result<ReportDraft, ReportImportError> {
    markdown::parse(&decode(content)?)
}

/// A report as a Markdown file that [`parse`] reads as [`Format::Markdown`]:
/// its title, meeting date and summary as YAML front matter, then its body.
/// Parsed again, it gives the same report.
pub fn markdown_file(report: &Report) -> String {
    markdown::file(
        &report.title,
        report.meeting_date,
        report.summary.as_deref(),
        &report.body_markdown,
    )
}

/// Parses the HTML of a feed item (its `content:encoded`), whose title comes
/// from the feed. The HTML is sanitised and converted as a page's would be.
pub fn parse_html_fragment(html: &str, title: &str) -> Result<ReportDraft, ReportImportError> {
    within_limit(html.len() + title.len())?;
    let html = clean_characters(html);
    if html.trim().is_empty() {
        return Err(ReportImportError::Empty);
    }
    html::parse_fragment(&html, &clean_characters(title))
}

/// Refuses a report of more than [`MAX_REPORT_BYTES`].
fn within_limit(bytes: usize) -> Result<(), ReportImportError> {
    if bytes > MAX_REPORT_BYTES {
        return Err(ReportImportError::TooLarge { bytes });
    }
    Ok(())
}

/// The input as text: within [`MAX_REPORT_BYTES`], UTF-8 checked, then
/// cleaned by [`clean_characters`].
fn decode(content: &[u8]) -> Result<String, ReportImportError> {
    within_limit(content.len())?;
    let text = std::str::from_utf8(content).map_err(|e| {
        let offset = e.valid_up_to();
        let line = content[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
        ReportImportError::NotUtf8 { offset, line }
    })?;
    let text = clean_characters(text);
    if text.trim().is_empty() {
        return Err(ReportImportError::Empty);
    }
    Ok(text)
}

/// Drops a leading byte-order mark, private-use characters (U+E000 to
/// U+F8FF) and control characters other than tabs and line ends, and turns
/// `\r\n` and `\r` into `\n`.
fn clean_characters(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push('\n');
                }
            }
            '\u{e000}'..='\u{f8ff}' => {}
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// A draft of a pasted post or page from its title and body blocks, and
/// whether it is an excerpt.
fn draft(
    title: String,
    blocks: Vec<body::Block>,
    excerpt: Option<Excerpt>,
) -> Result<ReportDraft, ReportImportError> {
    if blocks.is_empty() {
        return Err(ReportImportError::NoBody);
    }
    let body_markdown = body::to_markdown(&blocks)?;
    Ok(ReportDraft {
        title,
        meeting_date: None,
        summary: None,
        body_markdown,
        source: ReportSource::Paste,
        published_at: None,
        excerpt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMATS: [Format; 3] = [Format::Markdown, Format::Text, Format::Html];

    /// A small report in each format.
    fn sample(format: Format, body: &str) -> String {
        match format {
            Format::Markdown => format!("---\ntitle: NEC Report – June 2017\n---\n{body}\n"),
            Format::Text => format!("NEC Report – June 2017\n\n{body}\n"),
            Format::Html => format!("<h1>NEC Report – June 2017</h1><p>{body}</p>"),
        }
    }

    fn only(content: &[u8], format: Format) -> ReportDraft {
        let mut drafts = parse(content, format).unwrap();
        assert_eq!(drafts.len(), 1, "{drafts:#?}");
        drafts.remove(0)
    }

    #[test]
    fn the_format_comes_from_the_extension_when_there_is_one() {
        assert_eq!(guess_format(Some("report.MD"), b"<html>"), Format::Markdown);
        assert_eq!(guess_format(Some("notes.markdown"), b""), Format::Markdown);
        assert_eq!(guess_format(Some("post.txt"), b"---\n"), Format::Text);
        assert_eq!(guess_format(Some("saved.htm"), b"Title"), Format::Html);
        assert_eq!(guess_format(Some("page.html"), b"Title"), Format::Html);
    }

    #[test]
    fn without_an_extension_the_content_is_sniffed() {
        assert_eq!(
            guess_format(None, b"---\ntitle: T\n---\n"),
            Format::Markdown
        );
        assert_eq!(
            guess_format(Some("-"), b"\xef\xbb\xbf+++\ntitle = 'T'\n+++\n"),
            Format::Markdown
        );
        assert_eq!(
            guess_format(None, b"# NEC Report\n\nText"),
            Format::Markdown
        );
        assert_eq!(
            guess_format(Some("paste"), b"\n  <!DOCTYPE html><html>"),
            Format::Html
        );
        assert_eq!(guess_format(None, b"<HTML><body>"), Format::Html);
        assert_eq!(guess_format(None, b"<p>One</p>\n<p>Two</p>"), Format::Html);
        assert_eq!(
            guess_format(None, b"<div>\n<p>One\n<p>Two\n</div>"),
            Format::Html
        );
        assert_eq!(
            guess_format(None, b"NEC Report\n\nIt used <b> tags once.\n"),
            Format::Text
        );
        assert_eq!(guess_format(None, b"NEC Report\n---\nText"), Format::Text);
        assert_eq!(guess_format(None, b"\xff\xfe"), Format::Text);
    }

    #[test]
    fn invalid_utf8_is_refused_naming_the_byte_offset() {
        let mut content = sample(Format::Text, "Fine so far.").into_bytes();
        let offset = content.len();
        content.extend_from_slice(b"\x93quoted\x94\n");
        for format in FORMATS {
            let err = parse(&content, format).unwrap_err();
            assert_eq!(err, ReportImportError::NotUtf8 { offset, line: 4 });
            assert!(
                err.to_string()
                    .contains(&format!("offset {offset} (line 4)")),
                "{err}"
            );
        }
    }

    #[test]
    fn an_empty_or_blank_input_is_refused() {
        for format in FORMATS {
            for content in ["", " \n\t\r\n  ", "\u{feff}", "\u{e000}\u{f8ff}"] {
                assert_eq!(
                    parse(content.as_bytes(), format),
                    Err(ReportImportError::Empty),
                    "{content:?}"
                );
            }
        }
        assert_eq!(
            parse_html_fragment(" \n ", "T"),
            Err(ReportImportError::Empty)
        );
        assert_eq!(
            parse_html_fragment("<p>x</p>", " "),
            Err(ReportImportError::NoTitle)
        );
    }

    #[test]
    fn a_title_without_text_is_refused() {
        for format in FORMATS {
            let content = sample(format, "");
            assert_eq!(
                parse(content.as_bytes(), format),
                Err(ReportImportError::NoBody),
                "{format:?}"
            );
        }
    }

    #[test]
    fn private_use_characters_are_stripped_from_every_input() {
        for format in FORMATS {
            let content = sample(format, "575,000\u{e000} members\u{f8ff} and \u{e123}40%");
            let draft = only(content.as_bytes(), format);
            assert_eq!(
                draft.body_markdown, "575,000 members and 40%\n",
                "{format:?}"
            );
        }
        let draft = parse_html_fragment("<p>a\u{e001}b</p>", "T\u{e002}itle").unwrap();
        assert_eq!(
            (draft.title.as_str(), draft.body_markdown.as_str()),
            ("Title", "ab\n")
        );
    }

    #[test]
    fn line_ends_and_control_characters_are_normalised() {
        let draft = only(
            b"NEC Report\r\n\r\nOne\x00 line\rTwo\x07\r\n\r\nThree\r\n",
            Format::Text,
        );
        assert_eq!(draft.body_markdown, "One line\\\nTwo\n\nThree\n");
    }

    #[test]
    fn drafts_come_back_as_pastes_without_a_publication_date() {
        for format in FORMATS {
            let draft = only(sample(format, "Text.").as_bytes(), format);
            assert_eq!(draft.source, ReportSource::Paste);
            assert_eq!(draft.published_at, None);
        }
    }

    #[test]
    fn a_one_megabyte_body_imports_in_every_format() {
        let paragraph = "The NEC noted 575,000 members, “80 million” leaflets – and 40% growth… ";
        for format in FORMATS {
            let mut body = String::new();
            for n in 1.. {
                if body.len() > 1_010_000 {
                    break;
                }
                body.push_str(paragraph);
                if format != Format::Html && n % 7 == 0 {
                    body.push_str("\n\n");
                }
            }
            let draft = only(sample(format, &body).as_bytes(), format);
            assert!(draft.body_markdown.len() > 1_000_000, "{format:?}");
            assert_eq!(
                draft.body_markdown.matches("80 million").count(),
                body.matches("80 million").count()
            );
        }
    }

    #[test]
    fn a_report_over_the_size_limit_is_refused_naming_the_limit() {
        let big = "a".repeat(MAX_REPORT_BYTES + 1);
        for format in FORMATS {
            let content = sample(format, &big);
            let err = parse(content.as_bytes(), format).unwrap_err();
            assert_eq!(
                err,
                ReportImportError::TooLarge {
                    bytes: content.len()
                },
                "{format:?}"
            );
            assert!(
                err.to_string().contains("at most 1 MiB (1048576 bytes)"),
                "{err}"
            );
        }
        let err = parse_html_fragment(&format!("<p>{big}</p>"), "T").unwrap_err();
        assert!(matches!(err, ReportImportError::TooLarge { .. }), "{err:?}");
    }

    #[test]
    fn markdown_that_grows_past_the_limit_when_converted_is_refused() {
        let stars = "*".repeat(MAX_REPORT_BYTES - 100);
        let err = parse(sample(Format::Html, &stars).as_bytes(), Format::Html).unwrap_err();
        assert_eq!(err, ReportImportError::MarkdownTooLarge);
        let quoted_lines = nested(
            "<blockquote>",
            "</blockquote>",
            60,
            &"a<br>".repeat(200_000),
        );
        let err = parse_html_fragment(&quoted_lines, "T").unwrap_err();
        assert_eq!(err, ReportImportError::MarkdownTooLarge);
    }

    /// `open` × `depth`, then `text`, then `close` × `depth`.
    fn nested(open: &str, close: &str, depth: usize, text: &str) -> String {
        format!("{}{text}{}", open.repeat(depth), close.repeat(depth))
    }

    #[test]
    fn html_nested_thousands_deep_is_flattened_keeping_its_text() {
        for html in [
            nested("<blockquote>", "</blockquote>", 4_000, "deep text"),
            nested("<div>", "</div>", 10_000, "deep text"),
            nested("<div>", "</div>", 90_000, "deep text"),
            nested("<ul><li>", "</li></ul>", 5_000, "deep text"),
            nested("<span><em>", "</em></span>", 20_000, "deep text"),
        ] {
            let draft = parse_html_fragment(&html, "Deep").unwrap();
            assert!(
                draft.body_markdown.contains("deep text"),
                "{}",
                draft.body_markdown
            );
            assert!(
                crate::text::nesting_depth(&draft.body_markdown) <= crate::text::MAX_NESTING + 1,
                "{}",
                &html[..30]
            );
            let page = parse(format!("<h1>Deep</h1>{html}").as_bytes(), Format::Html).unwrap();
            assert!(page[0].body_markdown.contains("deep text"));
            crate::render::to_html(&draft.body_markdown);
            crate::render::to_text(&draft.body_markdown);
        }
    }

    #[test]
    fn markdown_nested_deeper_than_the_limit_is_refused_with_its_depth() {
        let limit = crate::text::MAX_NESTING;
        for (depth, quotes) in [(2_601, ">".repeat(2_600)), (10_001, ">".repeat(10_000))] {
            let content = format!("# Deep\n\n{quotes} text\n");
            let err = parse(content.as_bytes(), Format::Markdown).unwrap_err();
            assert_eq!(err, ReportImportError::TooDeep { depth });
            assert!(
                err.to_string().contains(&format!("at most {limit}")),
                "{err}"
            );
        }
        let fine = format!("# Deep\n\n{} text\n", ">".repeat(limit - 1));
        assert!(parse(fine.as_bytes(), Format::Markdown).is_ok());
        let lists = format!(
            "# Deep\n\n{}\n",
            (0..200)
                .map(|i| format!("{}- x\n", "  ".repeat(i)))
                .collect::<String>()
        );
        assert!(matches!(
            parse(lists.as_bytes(), Format::Markdown),
            Err(ReportImportError::TooDeep { .. })
        ));
    }

    #[test]
    fn nested_front_matter_is_refused_before_it_is_parsed() {
        let flow = format!(
            "---\ntitle: {}{}\n---\nText.\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let block: String = (1..600).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
        let block = format!("---\ntitle: T\nx:\n{block}---\nText.\n");
        let toml = format!(
            "+++\ntitle = {}{}\n+++\nText.\n",
            "[".repeat(50_000),
            "]".repeat(50_000)
        );
        for content in [flow, block, toml] {
            let err = parse(content.as_bytes(), Format::Markdown).unwrap_err();
            assert!(
                matches!(err, ReportImportError::FrontMatter { .. }),
                "{err:?}"
            );
        }
        let shallow = "---\ntitle: T\ntags: [[a, b], {c: d}]\n---\nText.\n";
        assert!(parse(shallow.as_bytes(), Format::Markdown).is_ok());
    }

    #[test]
    fn injected_html_never_reaches_the_rendered_report() {
        let attack = "<script>alert(1)</script><img src=x onerror=alert(2)><iframe src=https://x.org></iframe>";
        for format in FORMATS {
            let draft = only(
                sample(format, &format!("Text. {attack}")).as_bytes(),
                format,
            );
            let html = crate::render::to_html(&draft.body_markdown);
            let tags: Vec<&str> = html
                .split('<')
                .skip(1)
                .map(|t| t.split('>').next().unwrap_or(t))
                .collect();
            assert!(
                tags.iter().all(|t| matches!(*t, "p" | "/p")),
                "{format:?}: {html}"
            );
            if format != Format::Html {
                assert!(
                    html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                    "{format:?}: {html}"
                );
            }
        }
        let draft = parse_html_fragment(&format!("<p>Text.</p>{attack}"), "T").unwrap();
        assert_eq!(draft.body_markdown, "Text.\n");
    }
}
