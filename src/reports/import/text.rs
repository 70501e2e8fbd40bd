//! Plain-text blog posts, as pasted from a browser: the title on the first
//! line, paragraphs separated by blank lines, section headings on lines of
//! their own, and the cruft of the page around them.
//!
//! An archive page (`Tag Archives: NEC`, or several posts each cut off with
//! `Continue reading`) is split into one draft per post, never merged.

use super::body::{self, Block, CommentLinks, Inline};
use super::cruft::{self, LineKind};
use super::{ReportImportError, draft};
use crate::reports::{Excerpt, ReportDraft};

/// Parses a pasted post, or each post of a pasted archive page.
pub(super) fn parse(text: &str) -> Result<Vec<ReportDraft>, ReportImportError> {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .take(10)
        .find(|(_, l)| is_archive_header(l))
        .map(|(i, _)| i);
    let cut_offs = lines
        .iter()
        .filter(|l| cruft::strip_continue_reading(l).is_some())
        .count();
    if header.is_some() || cut_offs >= 2 {
        let start = header.map_or(0, |i| i + 1);
        return parse_archive(&lines[start..]);
    }
    let (title, blocks, excerpt) =
        post(&lines, CommentLinks::EndThePost).ok_or(ReportImportError::NoTitle)?;
    Ok(vec![draft(title, blocks, excerpt)?])
}

/// `Tag Archives: NEC`, `Category Archives: Reports`, `Archives: 2017`.
fn is_archive_header(line: &str) -> bool {
    let line = line.trim();
    line.split_once(':').is_some_and(|(kind, name)| {
        let kind = kind.trim().to_lowercase();
        let kinds = [
            "tag archives",
            "category archives",
            "monthly archives",
            "yearly archives",
            "archives",
        ];
        kinds.contains(&kind.as_str()) && !name.trim().is_empty()
    })
}

/// Splits an archive page after each `Continue reading` and parses every
/// piece as a post.
///
/// What follows the last `Continue reading` is a post shown in full if it
/// holds a paragraph of body text, and the page's sidebar or footer if it
/// does not. The page is refused if it has no `Continue reading` at all,
/// if that last piece holds several posts (several `Posted on … by …`
/// lines), or if any piece lacks a title or text: nothing is ever merged.
fn parse_archive(lines: &[&str]) -> Result<Vec<ReportDraft>, ReportImportError> {
    let mut pieces: Vec<&[&str]> = Vec::new();
    let mut start = 0;
    for (i, line) in lines.iter().enumerate() {
        if cruft::strip_continue_reading(line).is_some() {
            pieces.push(&lines[start..=i]);
            start = i + 1;
        }
    }
    let cut_off = pieces.len();
    let tail = &lines[start..];
    let tail_dates = tail.iter().filter(|l| cruft::is_post_date(l)).count();
    let tail_has_text = tail
        .iter()
        .any(|l| l.trim().chars().count() >= 80 && cruft::classify(l) == LineKind::Text);
    let refuse = ReportImportError::Archive {
        posts: cut_off + if tail_has_text { tail_dates.max(1) } else { 0 },
    };
    if cut_off == 0 || tail_dates > 1 {
        return Err(refuse);
    }
    if tail_has_text {
        pieces.push(tail);
    }
    pieces
        .into_iter()
        .map(|piece| {
            let (title, blocks, excerpt) = post(piece, CommentLinks::Drop).ok_or(refuse.clone())?;
            draft(title, blocks, excerpt).map_err(|_| refuse.clone())
        })
        .collect()
}

/// The title and body blocks of one post, and whether it is an excerpt (a
/// paste has no link to the full post), or `None` when it has no title.
/// Cruft before the title (comment links of the post before it on an archive
/// page, stray image names) is skipped.
fn post(
    lines: &[&str],
    comment_links: CommentLinks,
) -> Option<(String, Vec<Block>, Option<Excerpt>)> {
    let mut rest = lines;
    let title = loop {
        let (line, tail) = rest.split_first()?;
        rest = tail;
        let line = cruft::strip_image_names(line);
        let line = line.trim();
        if !line.is_empty() && cruft::classify(line) == LineKind::Text {
            break line.to_owned();
        }
    };
    if !looks_like_title(&title) {
        return None;
    }
    let mut kept: Vec<&str> = Vec::with_capacity(rest.len());
    // Whether the last line of text so far is a `Continue reading` link.
    let mut cut_off = false;
    for line in rest {
        if cruft::strip_continue_reading(line).is_some() {
            cut_off = true;
        } else if !line.trim().is_empty() && cruft::classify(line) == LineKind::Text {
            cut_off = false;
        }
        match cruft::classify(line) {
            LineKind::EndOfPost => break,
            LineKind::CommentLink if comment_links == CommentLinks::EndThePost => break,
            LineKind::CommentLink | LineKind::Boilerplate => {}
            LineKind::Text => kept.push(line),
        }
    }
    let blocks = paragraphs(&kept);
    let excerpt = (cut_off || body::is_cut_off(&blocks)).then(Excerpt::default);
    let blocks = body::remove_cruft(blocks, comment_links);
    Some((title, body::find_headings(blocks), excerpt))
}

/// A title is a line of at most 150 characters that does not end like a
/// sentence or a greeting.
fn looks_like_title(line: &str) -> bool {
    line.chars().count() <= 150
        && !line.ends_with(['.', ',', ';', ':'])
        && line.chars().any(char::is_alphabetic)
}

/// Groups lines into paragraphs at blank lines; each line of a paragraph
/// keeps its own line. A paste with no blank line at all has one
/// paragraph per line.
fn paragraphs(lines: &[&str]) -> Vec<Block> {
    let blank = |l: &&str| l.trim().is_empty();
    let one_per_line = match (
        lines.iter().position(|l| !blank(l)),
        lines.iter().rposition(|l| !blank(l)),
    ) {
        (Some(first), Some(last)) => !lines[first..=last].iter().any(blank),
        _ => false,
    };
    let mut blocks = Vec::new();
    let mut current: Vec<Inline> = Vec::new();
    let mut flush = |current: &mut Vec<Inline>| {
        if !current.is_empty() {
            blocks.push(Block::Paragraph(std::mem::take(current)));
        }
    };
    for line in lines {
        if blank(line) {
            flush(&mut current);
            continue;
        }
        if !current.is_empty() {
            current.push(Inline::Break);
        }
        current.push(Inline::Text(line.trim().to_owned()));
        if one_per_line {
            flush(&mut current);
        }
    }
    flush(&mut current);
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::split_sections;

    fn one(text: &str) -> ReportDraft {
        let mut drafts = parse(text).unwrap();
        assert_eq!(drafts.len(), 1, "{drafts:#?}");
        drafts.remove(0)
    }

    const POST: &str = "NEC Report – June 2017\n\n\
        The NEC met on Tuesday.\n\n\
        Leader’s Report\n\n\
        The leader reported on 80 million leaflets.\n\n\
        The report was agreed.\n\n\
        Party Membership\n\n\
        We have 575,000 members.\n";

    #[test]
    fn a_pasted_post_gives_its_title_intro_and_sections() {
        let draft = one(POST);
        assert_eq!(draft.title, "NEC Report – June 2017");
        let sections = split_sections(&draft.body_markdown);
        assert_eq!(sections.intro, "The NEC met on Tuesday.");
        let headings: Vec<&str> = sections
            .sections
            .iter()
            .map(|s| s.heading.as_str())
            .collect();
        assert_eq!(headings, ["Leader’s Report", "Party Membership"]);
        assert_eq!(
            sections.sections[0].markdown,
            "The leader reported on 80 million leaflets.\n\nThe report was agreed."
        );
    }

    #[test]
    fn a_quoted_letter_stays_in_its_section_as_paragraphs() {
        let draft = one(
            "NEC Report – June 2017\n\nGeneral Secretary’s Report\n\nHe read this letter:\n\n\
             Dear Colleague,\n\nMotions must arrive by Friday.\n\nBest wishes\n\nChris Rowe\nGeneral Secretary\n",
        );
        let sections = split_sections(&draft.body_markdown);
        assert_eq!(sections.sections.len(), 1, "{}", draft.body_markdown);
        assert_eq!(
            sections.sections[0].markdown,
            "He read this letter:\n\nDear Colleague,\n\nMotions must arrive by Friday.\n\nBest wishes\n\n\
             Chris Rowe\\\nGeneral Secretary"
        );
    }

    #[test]
    fn the_comment_section_and_the_reply_form_are_removed() {
        let draft = one(&format!(
            "{POST}\n2 thoughts on “NEC Report – June 2017”\n\n1.\nPat\nGreat report.\n\n2\nSam\nThanks!\n\n\
             Leave a Reply\nConnecting to %s\n"
        ));
        assert!(
            draft.body_markdown.ends_with("We have 575,000 members.\n"),
            "{}",
            draft.body_markdown
        );
    }

    #[test]
    fn a_post_cut_off_with_continue_reading_is_an_excerpt_and_a_whole_post_is_not() {
        assert_eq!(one(POST).excerpt, None);
        let cut = one(&format!(
            "{POST}\nContinue reading →\n\nPosted in NEC | 3 Comments\n"
        ));
        assert_eq!(cut.excerpt, Some(Excerpt::default()));
        assert!(
            cut.body_markdown.ends_with("575,000 members.\n"),
            "{}",
            cut.body_markdown
        );
        let drafts = parse(
            "Tag Archives: NEC\n\nNEC Report – June 2017\n\nThe NEC met. Continue reading →\n\n\
             NEC Report – May 2017\n\nThe NEC met again. […] Read more\n",
        )
        .unwrap();
        assert!(drafts.iter().all(|d| d.excerpt.is_some()), "{drafts:#?}");
    }

    #[test]
    fn a_paste_with_no_blank_lines_has_one_paragraph_per_line() {
        let draft = one("NEC Report – June 2017\nFirst paragraph.\nSecond paragraph.\n");
        assert_eq!(
            draft.body_markdown,
            "First paragraph.\n\nSecond paragraph.\n"
        );
    }

    #[test]
    fn a_paste_that_starts_with_a_sentence_has_no_title() {
        let text =
            "At this month’s meeting the NEC agreed the budget.\n\nIt also agreed the timetable.\n";
        assert_eq!(parse(text), Err(ReportImportError::NoTitle));
    }

    #[test]
    fn a_post_cut_off_once_is_a_single_report() {
        let draft =
            one("NEC Report – June 2017\n\nThe NEC met on Tuesday and … Continue reading →\n");
        assert_eq!(draft.body_markdown, "The NEC met on Tuesday and\n");
    }

    #[test]
    fn an_archive_page_is_split_into_one_draft_per_post() {
        let drafts = parse(
            "Category Archives: Reports\n\nNEC Report – June 2017\n\nThe NEC met. Continue reading →\n\n\
             3 Comments\n\nNEC Report – May 2017\n\nThe NEC met again.\n\nContinue reading\n",
        )
        .unwrap();
        let titles: Vec<&str> = drafts.iter().map(|d| d.title.as_str()).collect();
        assert_eq!(titles, ["NEC Report – June 2017", "NEC Report – May 2017"]);
        assert_eq!(drafts[0].body_markdown, "The NEC met.\n");
        assert_eq!(drafts[1].body_markdown, "The NEC met again.\n");
    }

    #[test]
    fn posts_cut_off_without_a_header_are_still_an_archive() {
        let drafts = parse(
            "NEC Report – June 2017\n\nThe NEC met. Continue reading →\n\n\
             NEC Report – May 2017\n\nThe NEC met again. Continue reading →\n",
        )
        .unwrap();
        assert_eq!(drafts.len(), 2);
    }

    #[test]
    fn an_archive_page_that_cannot_be_split_is_refused() {
        let text = "Tag Archives: NEC\n\nNEC Report – June 2017\n\nThe NEC met. Continue reading →\n\n\
                    The next excerpt has lost its title, so it starts with a sentence.\n\n\
                    More text. Continue reading\n";
        assert_eq!(parse(text), Err(ReportImportError::Archive { posts: 2 }));
        let message = ReportImportError::Archive { posts: 2 }.to_string();
        assert!(message.contains("archive page of 2 posts"), "{message}");
        assert!(message.contains("import each post on its own"), "{message}");
    }

    #[test]
    fn an_archive_page_of_whole_posts_is_refused() {
        let long =
            "The NEC met and discussed the timetable for this year’s conference at some length.";
        let text = format!(
            "Tag Archives: NEC\n\nNEC Report – June 2017\n\nPosted on 20 June 2017 by jane\n\n{long}\n\n\
             NEC Report – May 2017\n\nPosted on 20 May 2017 by jane\n\n{long}\n"
        );
        assert_eq!(parse(&text), Err(ReportImportError::Archive { posts: 2 }));
        let first_cut_off = text.replacen(
            &format!("{long}\n"),
            &format!("{long} Continue reading →\n"),
            1,
        );
        let two_whole_after_it = format!(
            "{first_cut_off}\nNEC Report – April 2017\n\nPosted on 20 April 2017 by jane\n\n{long}\n"
        );
        assert_eq!(
            parse(&two_whole_after_it),
            Err(ReportImportError::Archive { posts: 3 })
        );
    }

    #[test]
    fn the_last_post_of_an_archive_page_may_be_whole_but_its_sidebar_is_not_a_post() {
        let long =
            "The NEC met and discussed the timetable for this year’s conference at some length.";
        let text = format!(
            "Tag Archives: NEC\n\nNEC Report – June 2017\n\nThe NEC met. Continue reading →\n\n\
             NEC Report – May 2017\n\nPosted on 20 May 2017 by jane\n\n{long}\n"
        );
        let titles: Vec<String> = parse(&text).unwrap().into_iter().map(|d| d.title).collect();
        assert_eq!(titles, ["NEC Report – June 2017", "NEC Report – May 2017"]);
        let sidebar = "Tag Archives: NEC\n\nNEC Report – June 2017\n\nThe NEC met. Continue reading →\n\n\
                       Recent Posts\nNEC Report – May 2017\nArchives\nMay 2017\n";
        let drafts = parse(sidebar).unwrap();
        assert_eq!(drafts.len(), 1);
        assert_eq!(drafts[0].body_markdown, "The NEC met.\n");
    }

    #[test]
    fn archive_headers_are_recognised() {
        assert!(is_archive_header("Tag Archives: NEC"));
        assert!(is_archive_header("Category Archives: NEC Reports"));
        assert!(!is_archive_header("Archives"));
        assert!(!is_archive_header("The archives: a history"));
    }
}
