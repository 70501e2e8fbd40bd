//! Markdown files written by the representative, with YAML (`---`) or TOML
//! (`+++`) front matter:
//!
//! ```text
//! ---
//! title: Labour NEC Report – March 2017
//! meeting_date: 2017-03-21
//! summary: Membership, the by-elections and the rule changes.
//! ---
//! ## Leader’s Report
//! …
//! ```
//!
//! `title` is required unless the body starts with a `# Title` line, which
//! is then used and removed; `meeting_date` (YYYY-MM-DD) and `summary` are
//! optional, other keys are ignored. The body is kept as written: only its
//! `## ` headings start sections.

use chrono::NaiveDate;

use super::ReportImportError;
use crate::reports::{ReportDraft, ReportSource};

/// The front matter's syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Yaml,
    Toml,
}

impl Syntax {
    fn fence(self) -> &'static str {
        match self {
            Syntax::Yaml => "---",
            Syntax::Toml => "+++",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Syntax::Yaml => "YAML",
            Syntax::Toml => "TOML",
        }
    }
}

/// The fields necmail reads from the front matter, as text.
#[derive(Debug, Default)]
struct FrontMatter {
    title: Option<String>,
    meeting_date: Option<String>,
    summary: Option<String>,
}

/// Parses a Markdown report.
pub(super) fn parse(text: &str) -> Result<ReportDraft, ReportImportError> {
    let (front, body) = split_front_matter(text)?;
    let mut title = front.title;
    let body = match heading_one(body) {
        Some((h1, rest)) if title.is_none() => {
            title = Some(h1);
            rest
        }
        Some((h1, rest)) if title.as_deref() == Some(h1.as_str()) => rest,
        _ => body,
    };
    let title = title.ok_or(ReportImportError::NoTitle)?;
    let meeting_date = front.meeting_date.map(|d| parse_date(&d)).transpose()?;
    let body = body.trim_matches('\n');
    if body.trim().is_empty() {
        return Err(ReportImportError::NoBody);
    }
    let depth = crate::text::nesting_depth(body);
    if depth > crate::text::MAX_NESTING {
        return Err(ReportImportError::TooDeep { depth });
    }
    Ok(ReportDraft {
        title,
        meeting_date,
        summary: front.summary,
        body_markdown: format!("{body}\n"),
        source: ReportSource::Paste,
        published_at: None,
        excerpt: None,
    })
}

/// A report as a Markdown file that [`parse`] reads back as the same title,
/// meeting date, summary and body: YAML front matter, a blank line, the body.
pub(super) fn file(
    title: &str,
    meeting_date: Option<NaiveDate>,
    summary: Option<&str>,
    body: &str,
) -> String {
    let mut out = format!("---\ntitle: {}\n", yaml_string(title));
    if let Some(date) = meeting_date {
        out.push_str(&format!("meeting_date: {date}\n"));
    }
    if let Some(summary) = summary {
        out.push_str(&format!("summary: {}\n", yaml_string(summary)));
    }
    out.push_str("---\n\n");
    out.push_str(body);
    out
}

/// `text` as a YAML double-quoted scalar.
fn yaml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Splits off the front matter, if the text starts with a fence line.
fn split_front_matter(text: &str) -> Result<(FrontMatter, &str), ReportImportError> {
    let first_line = text.lines().next().unwrap_or("").trim_end();
    let syntax = match first_line {
        "---" => Syntax::Yaml,
        "+++" => Syntax::Toml,
        _ => return Ok((FrontMatter::default(), text)),
    };
    let after_open = &text[text.find('\n').map_or(text.len(), |i| i + 1)..];
    let mut offset = 0;
    for line in after_open.split_inclusive('\n') {
        if line.trim_end() == syntax.fence() {
            let source = &after_open[..offset];
            let body = &after_open[offset + line.len()..];
            return Ok((read_front_matter(source, syntax)?, body));
        }
        offset += line.len();
    }
    Err(ReportImportError::UnclosedFrontMatter {
        fence: syntax.fence(),
    })
}

/// The longest front matter read: a title, a date and a summary fit in far
/// less. YAML and TOML parsers can take time quadratic in nested input, so
/// the front matter is bounded before either sees it.
const MAX_FRONT_MATTER_BYTES: usize = 16 * 1024;

/// How deep brackets (`[`, `{`) may nest in the front matter.
const MAX_FRONT_MATTER_NESTING: usize = 16;

fn read_front_matter(source: &str, syntax: Syntax) -> Result<FrontMatter, ReportImportError> {
    const KEYS: [&str; 3] = ["title", "meeting_date", "summary"];
    let invalid = |reason: String| ReportImportError::FrontMatter {
        syntax: syntax.name(),
        reason,
    };
    if source.len() > MAX_FRONT_MATTER_BYTES {
        return Err(invalid(format!(
            "it is {} bytes long, and front matter may be at most {MAX_FRONT_MATTER_BYTES} bytes",
            source.len()
        )));
    }
    let depth = bracket_depth(source);
    if depth > MAX_FRONT_MATTER_NESTING {
        return Err(invalid(format!(
            "its brackets nest {depth} levels deep, and at most {MAX_FRONT_MATTER_NESTING} are allowed"
        )));
    }
    let values = match syntax {
        Syntax::Yaml => {
            let map = match serde_norway::from_str(source).map_err(|e| invalid(e.to_string()))? {
                serde_norway::Value::Null => serde_norway::Mapping::new(),
                serde_norway::Value::Mapping(map) => map,
                _ => return Err(invalid("it must be a set of `key: value` lines".into())),
            };
            KEYS.map(|key| match map.get(key) {
                None | Some(serde_norway::Value::Null) => Field::Missing,
                Some(serde_norway::Value::String(s)) => Field::Text(s.clone()),
                Some(serde_norway::Value::Number(n)) => Field::Text(n.to_string()),
                Some(_) => Field::NotText,
            })
        }
        Syntax::Toml => {
            let table: toml::Table =
                toml::from_str(source).map_err(|e| invalid(e.message().to_owned()))?;
            KEYS.map(|key| match table.get(key) {
                None => Field::Missing,
                Some(toml::Value::String(s)) => Field::Text(s.clone()),
                Some(toml::Value::Datetime(d)) => Field::Text(d.to_string()),
                Some(toml::Value::Integer(n)) => Field::Text(n.to_string()),
                Some(_) => Field::NotText,
            })
        }
    };
    let mut texts: [Option<String>; 3] = Default::default();
    for ((key, value), text) in KEYS.into_iter().zip(values).zip(&mut texts) {
        *text = match value {
            Field::Missing => None,
            Field::Text(t) => {
                Some(t.split_whitespace().collect::<Vec<_>>().join(" ")).filter(|t| !t.is_empty())
            }
            Field::NotText => return Err(invalid(format!("`{key}` must be text"))),
        };
    }
    let [title, meeting_date, summary] = texts;
    Ok(FrontMatter {
        title,
        meeting_date,
        summary,
    })
}

/// How deep `[` and `{` nest in `source`, quoted or not.
fn bracket_depth(source: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0);
    for b in source.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A front-matter value as necmail reads it.
enum Field {
    Missing,
    Text(String),
    NotText,
}

/// A meeting date written as YYYY-MM-DD.
fn parse_date(value: &str) -> Result<NaiveDate, ReportImportError> {
    let bad = || ReportImportError::BadDate {
        value: value.to_owned(),
    };
    let b = value.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(bad());
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| bad())
}

/// If the body's first non-blank line is a `# Title` heading: its text and
/// the body after it.
fn heading_one(body: &str) -> Option<(String, &str)> {
    let start = body.len() - body.trim_start_matches(['\n', ' ']).len();
    let rest = &body[start..];
    let line_end = rest.find('\n').unwrap_or(rest.len());
    let line = rest[..line_end].trim_end();
    let heading = line.strip_prefix("# ")?;
    let title = crate::text::inline_text(heading.trim().trim_end_matches('#').trim());
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    (!title.is_empty()).then(|| (title, &rest[line_end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::split_sections;

    #[test]
    fn yaml_front_matter_gives_the_title_date_and_summary() {
        let draft = parse(
            "---\ntitle: Labour NEC Report – March 2017\nmeeting_date: 2017-03-21\nsummary: >\n  Membership and\n  \
             the by-elections.\nlayout: post\n---\n\n## Leader’s Report\n\nText.\n",
        )
        .unwrap();
        assert_eq!(draft.title, "Labour NEC Report – March 2017");
        assert_eq!(draft.meeting_date, NaiveDate::from_ymd_opt(2017, 3, 21));
        assert_eq!(
            draft.summary.as_deref(),
            Some("Membership and the by-elections.")
        );
        assert_eq!(draft.body_markdown, "## Leader’s Report\n\nText.\n");
    }

    #[test]
    fn toml_front_matter_accepts_a_bare_date() {
        let draft =
            parse("+++\ntitle = \"NEC Report\"\nmeeting_date = 2017-03-21\n+++\nText.\n").unwrap();
        assert_eq!(draft.title, "NEC Report");
        assert_eq!(draft.meeting_date, NaiveDate::from_ymd_opt(2017, 3, 21));
        assert_eq!(draft.summary, None);
    }

    #[test]
    fn a_first_level_heading_is_the_title_when_the_front_matter_has_none() {
        let draft =
            parse("---\nmeeting_date: 2017-03-21\n---\n\n# NEC Report – *March* 2017\n\nIntro.\n")
                .unwrap();
        assert_eq!(draft.title, "NEC Report – March 2017");
        assert_eq!(draft.body_markdown, "Intro.\n");
        let draft = parse("# NEC Report\n\n## Party Membership\n\n575,000 members.\n").unwrap();
        assert_eq!(draft.title, "NEC Report");
        assert_eq!(
            draft.body_markdown,
            "## Party Membership\n\n575,000 members.\n"
        );
    }

    #[test]
    fn a_first_level_heading_repeating_the_title_is_removed_and_another_is_kept() {
        let draft = parse("---\ntitle: NEC Report\n---\n# NEC Report\n\nText.\n").unwrap();
        assert_eq!(draft.body_markdown, "Text.\n");
        let draft = parse("---\ntitle: NEC Report\n---\n# Something else\n\nText.\n").unwrap();
        assert_eq!(draft.body_markdown, "# Something else\n\nText.\n");
    }

    #[test]
    fn only_second_level_headings_start_sections() {
        let draft = parse(
            "---\ntitle: T\n---\nIntro\n\n## One\n\n### Detail\n\n#### Finer\n\n## Two\n\nText\n",
        )
        .unwrap();
        let sections = split_sections(&draft.body_markdown);
        let headings: Vec<&str> = sections
            .sections
            .iter()
            .map(|s| s.heading.as_str())
            .collect();
        assert_eq!(headings, ["One", "Two"]);
        assert_eq!(sections.sections[0].markdown, "### Detail\n\n#### Finer");
    }

    #[test]
    fn a_bad_meeting_date_is_named_in_the_error() {
        for date in ["21/03/2017", "2017-02-30", "2017-3-21", "March 2017"] {
            let err = parse(&format!(
                "---\ntitle: T\nmeeting_date: {date}\n---\nText.\n"
            ))
            .unwrap_err();
            assert_eq!(err, ReportImportError::BadDate { value: date.into() });
            assert!(err.to_string().contains("YYYY-MM-DD"), "{err}");
        }
    }

    #[test]
    fn broken_front_matter_is_refused_with_a_reason() {
        assert_eq!(
            parse("---\ntitle: T\nText.\n"),
            Err(ReportImportError::UnclosedFrontMatter { fence: "---" })
        );
        let err = parse("---\ntitle: [unclosed\n---\nText.\n").unwrap_err();
        assert!(
            matches!(err, ReportImportError::FrontMatter { syntax: "YAML", .. }),
            "{err:?}"
        );
        let err = parse("+++\ntitle = \n+++\nText.\n").unwrap_err();
        assert!(
            matches!(err, ReportImportError::FrontMatter { syntax: "TOML", .. }),
            "{err:?}"
        );
        let err = parse("---\ntitle:\n  - a\n  - b\n---\nText.\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the front matter is not valid YAML: `title` must be text"
        );
        let err = parse("---\n- a list\n---\nText.\n").unwrap_err();
        assert!(err.to_string().contains("key: value"), "{err}");
    }

    #[test]
    fn a_report_written_as_a_file_parses_back_as_itself() {
        let body = "Intro.\n\n## Leader’s Report\n\n> Quoted: \"yes\"\n";
        for (title, date, summary) in [
            (
                "Labour NEC Report – March 2017",
                NaiveDate::from_ymd_opt(2017, 3, 21),
                None,
            ),
            (
                "Title: with \"quotes\", a # hash & a back\\slash",
                None,
                Some("yes"),
            ),
            ("123", None, Some("- not a list: [1, 2] {a: b} 'single'")),
            (
                "true",
                NaiveDate::from_ymd_opt(2026, 1, 2),
                Some("Tab\there."),
            ),
        ] {
            let file = file(title, date, summary, body);
            let draft = parse(&file).unwrap_or_else(|e| panic!("{e}:\n{file}"));
            assert_eq!(draft.title, title, "{file}");
            assert_eq!(draft.meeting_date, date, "{file}");
            assert_eq!(
                draft.summary.as_deref(),
                summary.map(|s| s.replace('\t', " ")).as_deref(),
                "{file}"
            );
            assert_eq!(draft.body_markdown, body, "{file}");
        }
    }

    #[test]
    fn a_report_without_a_title_or_a_body_is_refused() {
        assert_eq!(
            parse("---\nsummary: S\n---\nText.\n"),
            Err(ReportImportError::NoTitle)
        );
        assert_eq!(parse("Just text.\n"), Err(ReportImportError::NoTitle));
        assert_eq!(
            parse("---\ntitle: T\n---\n\n   \n"),
            Err(ReportImportError::NoBody)
        );
        assert_eq!(parse("# Title only\n"), Err(ReportImportError::NoBody));
    }
}
