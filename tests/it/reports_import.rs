//! The report importers on the fixtures in `tests/fixtures/reports/`: a
//! clean Markdown report, a pasted post full of cruft, a pasted post with a
//! sub-heading in sentence case, an archive page of three posts and a saved
//! WordPress page.

use std::path::PathBuf;

use necmail::reports::import::{Format, ReportImportError, guess_format, parse};
use necmail::reports::{ReportDraft, split_sections};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/reports")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Imports a fixture in the format its name gives, expecting one report.
fn import(name: &str) -> ReportDraft {
    let content = fixture(name);
    let mut drafts = parse(&content, guess_format(Some(name), &content)).unwrap();
    assert_eq!(drafts.len(), 1, "{drafts:#?}");
    drafts.remove(0)
}

fn figures() -> Vec<String> {
    let figures = String::from_utf8(fixture("figures.txt")).unwrap();
    figures
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn headings(draft: &ReportDraft) -> Vec<String> {
    split_sections(&draft.body_markdown)
        .sections
        .into_iter()
        .map(|s| s.heading)
        .collect()
}

/// The section whose heading starts with `prefix`.
fn section(draft: &ReportDraft, prefix: &str) -> String {
    split_sections(&draft.body_markdown)
        .sections
        .into_iter()
        .find(|s| s.heading.starts_with(prefix))
        .unwrap_or_else(|| panic!("no section {prefix:?} in {}", draft.body_markdown))
        .markdown
}

#[track_caller]
fn assert_figures_survive(draft: &ReportDraft) {
    let html = necmail::render::to_html(&draft.body_markdown);
    let text = necmail::render::to_text(&draft.body_markdown);
    for figure in figures() {
        assert!(
            draft.body_markdown.contains(&figure),
            "{figure:?} is not in the Markdown"
        );
        assert!(html.contains(&figure), "{figure:?} is not in the HTML");
        assert!(text.contains(&figure), "{figure:?} is not in the text");
    }
}

#[test]
fn the_figures_file_lists_figures_found_in_both_fixtures() {
    let clean = String::from_utf8(fixture("clean.md")).unwrap();
    let pasted = String::from_utf8(fixture("pasted-with-cruft.txt")).unwrap();
    let figures = figures();
    assert!(figures.len() >= 6, "{figures:?}");
    for figure in &figures {
        assert!(
            clean.contains(figure.as_str()),
            "{figure:?} is not in clean.md"
        );
        assert!(
            pasted.contains(figure.as_str()),
            "{figure:?} is not in pasted-with-cruft.txt"
        );
    }
}

#[test]
fn each_fixture_format_is_guessed_from_its_name_and_from_its_content() {
    for (name, format) in [
        ("clean.md", Format::Markdown),
        ("pasted-with-cruft.txt", Format::Text),
        ("archive-three-posts.txt", Format::Text),
        ("post.html", Format::Html),
    ] {
        let content = fixture(name);
        assert_eq!(guess_format(Some(name), &content), format, "{name}");
        assert_eq!(guess_format(None, &content), format, "{name}");
    }
}

#[test]
fn a_markdown_report_keeps_its_front_matter_sections_and_text() {
    let draft = import("clean.md");
    assert_eq!(draft.title, "Labour NEC Report – March 2017");
    assert_eq!(
        draft.meeting_date,
        chrono::NaiveDate::from_ymd_opt(2017, 3, 21)
    );
    assert_eq!(
        draft.summary.as_deref(),
        Some(
            "Membership passes 575,000, the by-election campaigns, and a letter on the conference timetable."
        )
    );
    assert_eq!(
        headings(&draft),
        [
            "Leader’s Report",
            "Deputy Leader’s Report",
            "General Secretary’s Report",
            "Local Government Report",
            "European Parliamentary Labour Party and International Reports",
            "National Policy Forum Update",
            "Party Membership",
            "Party Conference",
            "Remembering Joan Whitfield",
        ]
    );
    assert!(
        !draft.body_markdown.starts_with("---"),
        "{}",
        draft.body_markdown
    );
    let letter = section(&draft, "General Secretary");
    assert!(letter.contains("> Dear Colleague,"), "{letter}");
    assert!(letter.contains("> With best wishes,"), "{letter}");
    assert!(
        letter.contains("a simple typo in an email address.."),
        "{letter}"
    );
    assert!(
        draft
            .body_markdown
            .contains("“a snapshot, not a prediction”")
    );
    assert_figures_survive(&draft);
}

/// Every piece of cruft in `pasted-with-cruft.txt`.
const PASTED_CRUFT: &[&str] = &[
    "img_4417",
    "IMG_1234",
    ".jpg",
    "DSC_0042",
    "medway",
    "Camden high street",
    "Continue reading",
    "→",
    "Posted on",
    "Share this",
    "Twitter",
    "Like this",
    "Loading",
    "Related",
    "thoughts on",
    "Pat Jones",
    "Dev Sharma",
    "Morgan Price",
    "Reply",
    "Fill in your details",
    "You are commenting",
    "Log Out",
    "Connecting to %s",
    "Notify me",
    "Email (required)",
    "Cancel",
];

#[test]
fn a_pasted_post_loses_all_its_cruft() {
    let draft = import("pasted-with-cruft.txt");
    for cruft in PASTED_CRUFT {
        assert!(
            !draft.body_markdown.contains(cruft),
            "{cruft:?} survived:\n{}",
            draft.body_markdown
        );
    }
}

#[test]
fn a_pasted_post_keeps_its_title_sections_letter_and_figures() {
    let draft = import("pasted-with-cruft.txt");
    assert_eq!(draft.title, "Labour NEC Report – May 2017");
    assert_eq!(
        headings(&draft),
        [
            "Leader’s Report",
            "Deputy Leader’s Report",
            "General Secretary’s Report",
            "Local Government Report",
            "National Policy Forum Update",
            "Party Membership",
            "In Memory of Joan Whitfield",
        ]
    );
    let leader = section(&draft, "Leader");
    assert!(leader.starts_with("Alex Morgan reported"), "{leader}");
    assert!(leader.contains("given up their evenings.\n"), "{leader}");
    let letter = section(&draft, "General Secretary");
    assert!(letter.starts_with("The following letter went"), "{letter}");
    for paragraph in [
        "Dear Colleague,",
        "Thank you for everything you are doing.",
        "Best wishes,\\\nChris Rowe\\\nGeneral Secretary",
        "The report was agreed.",
        "I know that this timetable is tight..",
    ] {
        assert!(
            letter.contains(paragraph),
            "{paragraph:?} is not in {letter}"
        );
    }
    assert_figures_survive(&draft);
}

#[test]
fn a_sub_heading_in_sentence_case_is_found_and_short_paragraphs_are_not_headings() {
    let draft = import("july-2017.txt");
    assert_eq!(
        headings(&draft),
        [
            "Leader’s Report",
            "Preparing for another snap election",
            "General Secretary’s Report",
            "Party Membership",
        ]
    );
    let snap = section(&draft, "Preparing");
    assert!(
        snap.contains("\n\nTarget seats will be announced in September."),
        "{snap}"
    );
    let letter = section(&draft, "General Secretary");
    assert!(
        letter.contains("Best wishes,\\\nChris Rowe\\\nGeneral Secretary"),
        "{letter}"
    );
    assert!(section(&draft, "Leader").ends_with("The report was agreed."));
}

#[test]
fn an_archive_page_gives_one_draft_per_post() {
    let content = fixture("archive-three-posts.txt");
    let drafts = parse(&content, Format::Text).unwrap();
    let titles: Vec<&str> = drafts.iter().map(|d| d.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Labour NEC Report – July 2017",
            "NEC Report- March 2017",
            "Report from April’s Emergency NEC meeting",
        ]
    );
    assert_eq!(headings(&drafts[0]), ["Leader’s Report"]);
    assert!(drafts[1].body_markdown.contains("8,000 people"));
    assert!(
        drafts[2]
            .body_markdown
            .ends_with("interviewed over the weekend.\n")
    );
    for draft in &drafts {
        for cruft in [
            "Continue reading",
            "Tag Archives",
            "Posted",
            "Comments",
            "Leave a comment",
            "Older posts",
        ] {
            assert!(
                !draft.body_markdown.contains(cruft),
                "{cruft:?} in {}",
                draft.body_markdown
            );
        }
        assert!(
            !draft.body_markdown.contains("NEC Report"),
            "another post leaked in: {draft:#?}"
        );
    }
}

#[test]
fn an_archive_page_that_cannot_be_split_is_refused_not_merged() {
    let content = String::from_utf8(fixture("archive-three-posts.txt")).unwrap();
    let untitled = content.replace("NEC Report- March 2017\n", "");
    let err = parse(untitled.as_bytes(), Format::Text).unwrap_err();
    assert_eq!(err, ReportImportError::Archive { posts: 3 });
    assert!(err.to_string().contains("archive page of 3 posts"), "{err}");
}

#[test]
fn a_saved_wordpress_page_becomes_a_clean_report() {
    let draft = import("post.html");
    assert_eq!(draft.title, "Labour NEC Report – September 2017");
    assert_eq!(
        headings(&draft),
        [
            "Leader’s Report",
            "Local Government Report",
            "General Secretary’s Report"
        ]
    );
    let (images, text): (Vec<&str>, Vec<&str>) = draft
        .body_markdown
        .lines()
        .partition(|l| l.starts_with("!["));
    assert_eq!(
        images,
        ["![brighton](https://janedoe.example.org/wp-content/uploads/2017/09/img_9906.jpg)"]
    );
    let body = &text.join("\n");
    for kept in [
        "Here is my summary – as always",
        "575,000 members",
        "80 million times",
        "[support the by-election fund](https://janedoe.example.org/donate)",
        "and to read the briefing.",
        "[office@example.org](mailto:office@example.org)",
        "40% rise in requests for help with housing.\\\nThe group asked for:",
        "- fair funding for social care & children’s services;",
        "- an end to the 2 million pound cap",
        "> Dear Colleague,",
        "> With best wishes,\\\n> Chris Rowe",
        "1\\. This line starts with a number",
        "7million residents",
        "\\<script>alert(\"typed as text\")\\</script> stays as text, and so does a \\*starred\\* word.",
        "The meeting closed at 5pm… more on that next time.",
    ] {
        assert!(body.contains(kept), "{kept:?} is not in:\n{body}");
    }
    for cruft in [
        "injected",
        "evil.example.org",
        "javascript",
        "onclick",
        "onerror",
        "onmouseover",
        "alert(1)",
        "alert(2)",
        "img_9906",
        "brighton",
        "wp-content",
        "Jane Doe",
        "Reports from the National Executive Committee",
        "Home",
        "4 Replies",
        "Share this",
        "Twitter",
        "This entry was posted",
        "Post navigation",
        "July 2017",
        "thoughts on",
        "Pat Jones",
        "Leave a Reply",
        "Fill in your details",
        "You are commenting",
        "Connecting to %s",
        "Notify me",
        "Recent Posts",
        "Proudly powered",
        "emoji",
        "font-family",
    ] {
        assert!(!body.contains(cruft), "{cruft:?} survived:\n{body}");
    }
    let html = necmail::render::to_html(body);
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(\"typed as text\")&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        html.contains("<ul>") && html.contains("<blockquote>"),
        "{html}"
    );
}

#[test]
fn a_feed_item_is_imported_with_the_feed_title() {
    let draft = necmail::reports::import::parse_html_fragment(
        "<p>The NEC met.</p><h2>Party Membership</h2><p>We have 575,000 members.</p>\
         <div class=\"sharedaddy\"><h3>Share this:</h3></div><script>alert(1)</script>",
        "NEC Report – June 2017",
    )
    .unwrap();
    assert_eq!(draft.title, "NEC Report – June 2017");
    assert_eq!(
        draft.body_markdown,
        "The NEC met.\n\n## Party Membership\n\nWe have 575,000 members.\n"
    );
}
