//! Splitting a report's Markdown body into its sections.

use serde::Serialize;

use crate::text::{Anchors, inline_text};

/// One section: a heading and the Markdown beneath it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    pub heading: String,
    /// The id the HTML gives the section, for the table of contents.
    pub anchor: String,
    pub markdown: String,
}

/// A body split at its level-2 headings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sections {
    /// What comes before the first heading.
    pub intro: String,
    pub sections: Vec<Section>,
}

/// A heading without its optional closing `#`s, which CommonMark only
/// recognises after a space (`## Motion \#` keeps its escaped `#`).
fn closing_hashes_removed(heading: &str) -> &str {
    let without = heading.trim_end_matches('#');
    if without.len() < heading.len() && (without.is_empty() || without.ends_with(' ')) {
        without.trim_end()
    } else {
        heading
    }
}

/// Splits Markdown at `## ` headings (outside fenced code blocks).
pub fn split_sections(markdown: &str) -> Sections {
    let mut intro = String::new();
    let mut sections: Vec<Section> = Vec::new();
    let mut in_fence = false;
    let mut anchors = Anchors::default();
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
        }
        let heading = (!in_fence).then(|| line.strip_prefix("## ")).flatten();
        match heading {
            Some(h) => {
                let heading = inline_text(closing_hashes_removed(h.trim()));
                let anchor = anchors.unique(&heading);
                sections.push(Section {
                    heading,
                    anchor,
                    markdown: String::new(),
                });
            }
            None => {
                let target = match sections.last_mut() {
                    Some(s) => &mut s.markdown,
                    None => &mut intro,
                };
                target.push_str(line);
                target.push('\n');
            }
        }
    }
    let tidy = |s: &mut String| *s = s.trim_matches('\n').to_owned();
    tidy(&mut intro);
    for s in &mut sections {
        tidy(&mut s.markdown);
    }
    Sections { intro, sections }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_splits_at_its_level_two_headings() {
        let s = split_sections(
            "Intro.\n\n## Leader’s Report\n\nOne.\n\nTwo.\n\n## Party Membership\n\n575,000 members.\n",
        );
        assert_eq!(s.intro, "Intro.");
        assert_eq!(s.sections.len(), 2);
        assert_eq!(s.sections[0].heading, "Leader’s Report");
        assert_eq!(s.sections[0].anchor, "leaders-report");
        assert_eq!(s.sections[0].markdown, "One.\n\nTwo.");
        assert_eq!(s.sections[1].markdown, "575,000 members.");
    }

    #[test]
    fn closing_hashes_are_dropped_but_an_escaped_one_is_kept() {
        let s = split_sections("## Update ##\n\n## Motion \\#\n");
        assert_eq!(s.sections[0].heading, "Update");
        assert_eq!(s.sections[1].heading, "Motion #");
    }

    #[test]
    fn repeated_headings_get_distinct_anchors_and_fenced_hashes_are_not_headings() {
        let s = split_sections("## Update\na\n## Update\n```\n## not a heading\n```\n");
        let anchors: Vec<&str> = s.sections.iter().map(|s| s.anchor.as_str()).collect();
        assert_eq!(anchors, ["update", "update-2"]);
        assert!(s.sections[1].markdown.contains("## not a heading"));
    }
}
