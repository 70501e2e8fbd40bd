//! Rendering tests: the parts of an email, their encoding, and snapshots.

use std::sync::Arc;

use chrono::{NaiveDate, TimeZone, Utc};

use super::*;
use crate::config::Sender;
use crate::reports::{Report, ReportSource};
use crate::subscribers::Attributes;
use crate::text::MAX_NESTING;

pub(crate) fn report(body: &str) -> Report {
    Report {
        id: 7,
        slug: "nec-report-march-2026".into(),
        title: "Labour NEC Report – March 2026".into(),
        meeting_date: NaiveDate::from_ymd_opt(2026, 3, 21),
        summary: Some("Membership passes 575,000; the NPF timetable is agreed.".into()),
        body_markdown: body.into(),
        source: ReportSource::Paste,
        content_hash: "h".into(),
        published_at: Utc.with_ymd_and_hms(2026, 3, 22, 9, 0, 0).unwrap(),
        created_at: Utc.with_ymd_and_hms(2026, 3, 22, 9, 0, 0).unwrap(),
        excerpt: false,
    }
}

pub(crate) fn site() -> Site {
    Site {
        sender: Sender::parse("NEC Report <reports@nec.example>").unwrap(),
        reply_to: None,
        archive_url: "https://nec.example/archive".into(),
        report_url_prefix: "https://nec.example/archive/".into(),
        subscribe_url: "https://nec.example/subscribe".into(),
        committee: "NEC".into(),
        sender_address: None,
        privacy_url: None,
        test: None,
        web_version: false,
    }
}

const BODY: &str = "Comrades, here is my report.\n\n## Leader’s Report\n\nThe Leader said 80 million \
    leaflets went out.\n\n## Local Government Report\n\nCouncillors: 8,000 people joined, up 40%.\n\n\
    ## Party Membership\n\nWe now have 575,000 members. <script>alert('x')</script>\n";

fn prepared(body: &str) -> Prepared {
    Prepared::new(
        Arc::new(Templates::load(None).unwrap()),
        &report(body),
        &site(),
    )
    .unwrap()
}

fn councillor() -> Attributes {
    ["role=councillor".parse().unwrap()].into_iter().collect()
}

fn recipient<'a>(
    name: Option<&'a str>,
    attributes: &'a Attributes,
    list: &'a ListInfo,
) -> Recipient<'a> {
    Recipient {
        email: "jo@example.org",
        name,
        attributes,
        list,
        also: &[],
        unsubscribe_url: "https://nec.example/u/TOKEN?a=1&b=2",
        preferences_url: "https://nec.example/p/PREFS",
    }
}

fn members() -> ListInfo {
    ListInfo {
        slug: "members".into(),
        name: "Party members".into(),
    }
}

#[test]
fn every_figure_survives_into_both_parts() {
    let p = prepared(BODY);
    let (attrs, list) = (Attributes::new(), members());
    let r = p.render(&recipient(Some("Jo"), &attrs, &list)).unwrap();
    for figure in ["80 million", "8,000 people", "40%", "575,000 members"] {
        assert!(r.html.contains(figure), "{figure} missing from HTML");
        assert!(r.text.contains(figure), "{figure} missing from text");
    }
}

#[test]
fn the_committee_is_named_as_configured_in_both_parts() {
    let site = Site {
        committee: "Scottish Executive".into(),
        ..site()
    };
    let templates = Arc::new(Templates::load(None).unwrap());
    let p = Prepared::new(templates, &report(BODY), &site).unwrap();
    let (attrs, list) = (Attributes::new(), members());
    let r = p.render(&recipient(None, &attrs, &list)).unwrap();
    for part in [&r.html, &r.text] {
        assert!(
            part.contains("Report of the Scottish Executive meeting of"),
            "{part}"
        );
        assert!(!part.contains("NEC meeting"), "{part}");
    }
}

#[test]
fn script_in_a_report_shows_as_text_in_the_html() {
    let p = prepared(BODY);
    let (attrs, list) = (Attributes::new(), members());
    let r = p.render(&recipient(None, &attrs, &list)).unwrap();
    assert!(!r.html.contains("<script"), "{}", r.html);
    assert!(r.html.contains("&lt;script&gt;"), "{}", r.html);
}

#[test]
fn the_css_is_inlined_and_no_external_resource_is_loaded() {
    let p = prepared(BODY);
    let (attrs, list) = (Attributes::new(), members());
    let html = p.render(&recipient(None, &attrs, &list)).unwrap().html;
    assert!(html.contains("<h2 id=\"leaders-report\" style="), "{html}");
    assert!(
        html.contains("<p style="),
        "body paragraphs are styled: {html}"
    );
    assert!(
        !html.contains("class=\"content\">"),
        "layout classes carry inline styles"
    );
    for external in ["<link", "<img", "<script", "src=\"http", "@import"] {
        assert!(!html.contains(external), "{external} in {html}");
    }
    assert!(
        html.contains("@media"),
        "the mobile rules are kept in a style block"
    );
}

#[test]
fn councillors_get_a_jump_link_to_local_government_and_members_do_not() {
    let p = prepared(BODY);
    let list = members();
    let councillor_attrs = councillor();
    let plain = Attributes::new();
    let c = p
        .render(&recipient(None, &councillor_attrs, &list))
        .unwrap()
        .html;
    let m = p.render(&recipient(None, &plain, &list)).unwrap().html;
    assert!(c.contains("As a councillor"), "{c}");
    assert!(c.contains("href=\"#local-government-report\""), "{c}");
    assert!(!m.contains("As a councillor"));
}

#[test]
fn personal_values_are_escaped_in_html_and_plain_in_text() {
    let p = prepared(BODY);
    let (attrs, list) = (Attributes::new(), members());
    let r = p
        .render(&recipient(Some("Jo <b>& Co"), &attrs, &list))
        .unwrap();
    assert!(r.html.contains("Dear Jo &lt;b&gt;&amp; Co,"), "{}", r.html);
    assert!(
        r.html
            .contains("href=\"https://nec.example/u/TOKEN?a=1&amp;b=2\""),
        "{}",
        r.html
    );
    assert!(r.text.contains("Dear Jo <b>& Co,"), "{}", r.text);
    assert!(
        r.text
            .trim_end()
            .ends_with("Unsubscribe: https://nec.example/u/TOKEN?a=1&b=2"),
        "{}",
        r.text
    );
}

#[test]
fn the_text_part_is_wrapped_with_underlined_headings() {
    let long = "word ".repeat(60);
    let p = prepared(&format!("## Party Membership\n\n{long}\n"));
    let (attrs, list) = (Attributes::new(), members());
    let text = p.render(&recipient(None, &attrs, &list)).unwrap().text;
    assert!(
        text.contains("Party Membership\n----------------\n"),
        "{text}"
    );
    assert!(text.lines().all(|l| l.chars().count() <= 78), "{text}");
}

#[test]
fn recipients_with_the_same_attributes_share_one_html_variant() {
    let p = prepared(BODY);
    let list = members();
    let (a, b) = (councillor(), Attributes::new());
    let before = p.html_variant_count();
    for name in ["Ann", "Bob", "Cat"] {
        p.render(&recipient(Some(name), &a, &list)).unwrap();
        p.render(&recipient(Some(name), &b, &list)).unwrap();
    }
    assert_eq!(p.html_variant_count() - before, 2);
}

/// What a campaign's message to a member of "members" is sent with.
fn campaign_meta() -> MessageMeta<'static> {
    MessageMeta {
        message_id: "d42.c3@nec.example",
        date: Utc.with_ymd_and_hms(2026, 3, 22, 9, 0, 0).unwrap(),
        list_unsubscribe: Some((
            "https://nec.example/u/TOKEN",
            "mailto:leave+TOKEN@nec.example",
        )),
        list_id: Some("members.nec.example"),
        feedback_id: Some("3:members:report:necmail"),
    }
}

#[test]
fn a_message_is_well_formed_mime_with_text_first() {
    let p = prepared(BODY);
    let (attrs, list) = (Attributes::new(), members());
    let meta = campaign_meta();
    let mut out = String::new();
    p.write_message(
        &recipient(Some("Siobhán O’Neill"), &attrs, &list),
        &meta,
        &mut out,
    )
    .unwrap();
    assert!(out.lines().all(|l| l.len() <= 998));
    assert!(
        !out.replace("\r\n", "").contains('\n'),
        "bare LF in the message"
    );
    assert!(out.is_ascii());
    let text_at = out.find("Content-Type: text/plain").unwrap();
    let html_at = out.find("Content-Type: text/html").unwrap();
    assert!(text_at < html_at);
    for header in [
        "Message-ID: <d42.c3@nec.example>\r\n",
        "List-Unsubscribe: <https://nec.example/u/TOKEN>,\r\n <mailto:leave+TOKEN@nec.example>\r\n",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
        "Precedence: bulk\r\n",
        "Auto-Submitted: auto-generated\r\n",
        "List-Id: Party members <members.nec.example>\r\n",
        "Feedback-ID: 3:members:report:necmail\r\n",
        "List-Archive: <https://nec.example/archive>\r\n",
        "List-Subscribe: <https://nec.example/subscribe>\r\n",
        "List-Post: NO\r\n",
        "List-Help: <https://nec.example/p/PREFS>\r\n",
        "From: NEC Report <reports@nec.example>\r\n",
        "MIME-Version: 1.0\r\n",
    ] {
        assert!(out.contains(header), "{header:?} missing in:\n{out}");
    }
    assert!(
        out.contains("To: =?UTF-8?B?"),
        "a non-ASCII name is encoded"
    );
}

#[test]
fn every_header_line_is_folded_within_78_characters_and_the_list_id_stays_literal() {
    let mut long = report(BODY);
    long.title = "Réunion du Comité Exécutif National – élection générale anticipée, budget \
        et calendrier"
        .into();
    let p = Prepared::new(Arc::new(Templates::load(None).unwrap()), &long, &site()).unwrap();
    let attrs = Attributes::new();
    let list = ListInfo {
        slug: "membres-idf".into(),
        name: "Membres du Comité – région Île-de-France, (tous) : \"actifs\"".into(),
    };
    let https = format!("https://reports.example.org/u/{}", "T".repeat(40));
    let meta = MessageMeta {
        message_id: "d42.c3@nec.example",
        date: Utc.with_ymd_and_hms(2026, 3, 22, 9, 0, 0).unwrap(),
        list_unsubscribe: Some((&https, "mailto:leave+TOKEN@nec.example")),
        list_id: Some("membres-idf.nec.example"),
        feedback_id: Some("3:membres-idf:report:necmail"),
    };
    let mut out = String::new();
    let name = "Siobhán O’Neill-Ó Súilleabháin, Councillor for Islington North and Highbury";
    p.write_message(&recipient(Some(name), &attrs, &list), &meta, &mut out)
        .unwrap();
    let head = &out[..out.find("\r\n\r\n").unwrap()];
    for line in head.split("\r\n") {
        assert!(line.len() <= 78, "{line:?} is {} long", line.len());
    }
    let list_id = head.split("\r\nList-Id:").nth(1).unwrap();
    let list_id = &list_id[..list_id.find("\r\nList-Unsubscribe").unwrap()];
    assert!(list_id.ends_with(" <membres-idf.nec.example>"), "{list_id}");
    assert!(list_id.trim_start().starts_with("=?UTF-8?B?"), "{list_id}");
}

#[test]
fn a_template_syntax_error_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("email")).unwrap();
    let file = dir.path().join("email/report.subject.tera");
    std::fs::write(&file, "{{ report.title }}\n{% if %}\n").unwrap();
    let err = Templates::load(Some(dir.path())).err().unwrap();
    assert_eq!(err.file, file.display().to_string());
    assert_eq!(err.line, Some(2), "{err}");
}

#[test]
fn an_unknown_variable_is_reported_with_file_and_line_before_any_send() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("email")).unwrap();
    let file = dir.path().join("email/report.txt.tera");
    std::fs::write(&file, "{{ report.title }}\n\n{{ report.titel }}\n").unwrap();
    let templates = Arc::new(Templates::load(Some(dir.path())).unwrap());
    let err = Prepared::new(templates, &report(BODY), &site())
        .err()
        .unwrap();
    let RenderError::Template(err) = err else {
        panic!("{err}")
    };
    assert_eq!(err.file, file.display().to_string());
    assert_eq!(err.line, Some(3), "{err}");
    assert!(err.reason.contains("report.titel"), "{err}");
}

#[test]
fn an_override_replaces_only_its_own_template() {
    let p = prepared_with(
        "report.subject.tera",
        "[NEC] {{ report.title }}",
        &report(BODY),
    );
    let (attrs, list) = (Attributes::new(), members());
    let r = p.render(&recipient(None, &attrs, &list)).unwrap();
    assert_eq!(r.subject, "[NEC] Labour NEC Report – March 2026");
    assert!(
        r.html.contains("IN THIS REPORT"),
        "the built-in HTML template is still used"
    );
}

fn imported(fixture: &[u8], format: crate::reports::import::Format) -> Report {
    let draft = crate::reports::import::parse(fixture, format)
        .unwrap()
        .remove(0);
    Report {
        title: draft.title,
        meeting_date: draft.meeting_date,
        summary: draft.summary,
        body_markdown: draft.body_markdown,
        ..report("")
    }
}

fn render_for_a_councillor(report: &Report) -> Rendered {
    let p = Prepared::new(Arc::new(Templates::load(None).unwrap()), report, &site()).unwrap();
    let (attrs, list) = (councillor(), members());
    p.render(&recipient(Some("Jo Bloggs"), &attrs, &list))
        .unwrap()
}

#[test]
fn every_figure_of_the_fixtures_survives_into_both_parts() {
    use crate::reports::import::Format;
    let figures = include_str!("../../tests/fixtures/reports/figures.txt");
    for (name, fixture, format) in [
        (
            "clean.md",
            &include_bytes!("../../tests/fixtures/reports/clean.md")[..],
            Format::Markdown,
        ),
        (
            "pasted-with-cruft.txt",
            &include_bytes!("../../tests/fixtures/reports/pasted-with-cruft.txt")[..],
            Format::Text,
        ),
    ] {
        let r = render_for_a_councillor(&imported(fixture, format));
        for figure in figures.lines().map(str::trim).filter(|f| !f.is_empty()) {
            assert!(
                r.html.contains(figure),
                "{figure:?} from {name} is missing from the HTML"
            );
            assert!(
                r.text.contains(figure),
                "{figure:?} from {name} is missing from the text"
            );
        }
    }
}

#[test]
fn the_html_of_a_3000_word_report_stays_under_gmails_clipping_size() {
    let report = imported(
        include_bytes!("../../tests/fixtures/render/three-thousand-words.md"),
        crate::reports::import::Format::Markdown,
    );
    let words = report.body_markdown.split_whitespace().count();
    assert!(words >= 2900, "the fixture has {words} words");
    let html = render_for_a_councillor(&report).html;
    assert!(
        html.len() < 102 * 1024,
        "the HTML part is {} bytes",
        html.len()
    );
}

#[test]
fn the_clean_report_renders_as_its_snapshots() {
    let report = imported(
        include_bytes!("../../tests/fixtures/reports/clean.md"),
        crate::reports::import::Format::Markdown,
    );
    let r = render_for_a_councillor(&report);
    insta::assert_snapshot!("clean_report_subject", r.subject);
    insta::assert_snapshot!("clean_report_html", r.html);
    insta::assert_snapshot!("clean_report_text", r.text);
}

/// Runs `f` on a thread with a 2 MiB stack, as the daemon's workers have.
fn on_a_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn a_stored_report_nested_thousands_deep_renders_flattened_on_a_worker_stack() {
    let lists: String = (0..3_000)
        .map(|i| format!("{}- level {i}\n", "  ".repeat(i)))
        .collect();
    for body in [
        format!("{} deep text\n", ">".repeat(2_600)),
        format!("{} deep text\n", ">".repeat(50_000)),
        format!("{}deep text{}\n", "*".repeat(20_000), "*".repeat(20_000)),
        lists,
    ] {
        let (html, text) = on_a_worker_stack(move || {
            let prepared = prepared(&body);
            let rendered = prepared
                .render(&recipient(None, &Attributes::new(), &members()))
                .unwrap();
            (rendered.html, rendered.text)
        });
        assert!(html.contains("deep text") || html.contains("level 2999"));
        assert!(text.contains("deep text") || text.contains("level 2999"));
        assert!(html.matches("<blockquote").count() <= MAX_NESTING);
        assert!(html.matches("<li").count() <= 3_000);
    }
}

#[test]
fn thousands_of_headings_with_one_name_get_distinct_anchors() {
    let body = "## Update\n\nText.\n\n".repeat(20_000);
    let html = to_html(&body);
    assert!(html.contains("id=\"update\""));
    assert!(html.contains("id=\"update-20000\""));
    let sections = crate::reports::split_sections(&body);
    assert_eq!(sections.sections[19_999].anchor, "update-20000");
}

#[test]
fn councillors_get_the_local_government_note_in_the_text_part_too() {
    let p = prepared(BODY);
    let list = members();
    let (c, m) = (councillor(), Attributes::new());
    let text = p.render(&recipient(None, &c, &list)).unwrap().text;
    assert!(
        text.contains(
            "As a councillor, you may want to go straight to section 2, Local Government\nReport."
        ),
        "{text}"
    );
    let text = p.render(&recipient(None, &m, &list)).unwrap().text;
    assert!(!text.contains("As a councillor"), "{text}");
}

/// The text part of a message, decoded.
fn text_part(message: &str) -> String {
    let start = message.find("Content-Type: text/plain").unwrap();
    let body = &message[start..];
    let body = &body[body.find("\r\n\r\n").unwrap() + 4..];
    let body = &body[..body.find("\r\n--=_necmail").unwrap()];
    let decoded = quoted_printable::decode(body, quoted_printable::ParseMode::Strict).unwrap();
    String::from_utf8(decoded).unwrap().replace("\r\n", "\n")
}

#[test]
fn the_footer_is_wrapped_after_a_long_address_is_put_in() {
    let p = prepared(BODY);
    let (attrs, list) = (Attributes::new(), members());
    let email = "siobhan.oneill-mcallister.constituency-secretary@islington-north.example.org";
    let r = Recipient {
        email,
        ..recipient(Some("Siobhán"), &attrs, &list)
    };
    let text = p.render(&r).unwrap().text;
    let footer = &text[text.find("\n-- \n").expect("a `-- ` separator line")..];
    assert!(
        footer.contains(&format!(
            "You are getting this email because\n{email}\nis subscribed to"
        )),
        "{footer}"
    );
    assert!(
        footer.lines().all(|l| l.chars().count() <= TEXT_WIDTH),
        "{footer}"
    );
    let short = p.render(&recipient(None, &attrs, &list)).unwrap().text;
    assert!(
        short.contains(
            "\n-- \nYou are getting this email because jo@example.org\nis subscribed to Party \
             members: reports on each meeting of the NEC, from NEC\nReport.\n"
        ),
        "{short}"
    );
    let meta = MessageMeta {
        message_id: "d42.c3@nec.example",
        date: Utc.with_ymd_and_hms(2026, 3, 22, 9, 0, 0).unwrap(),
        list_unsubscribe: None,
        list_id: None,
        feedback_id: None,
    };
    let mut message = String::new();
    p.write_message(&r, &meta, &mut message).unwrap();
    assert_eq!(text_part(&message), text);
    assert!(
        message.contains("\r\n--=20\r\n"),
        "the separator's space is kept"
    );
}

#[test]
fn no_greeting_is_added_above_a_report_that_opens_with_its_own() {
    let (attrs, list) = (Attributes::new(), members());
    for body in [
        "Dear friends,\n\nThe NEC met on Tuesday.\n",
        "Comrades,\n\nThe NEC met.\n",
    ] {
        let r = prepared(body)
            .render(&recipient(Some("Jo"), &attrs, &list))
            .unwrap();
        for part in [&r.html, &r.text] {
            assert!(!part.contains("Dear Jo"), "{part}");
        }
    }
    let r = prepared(BODY)
        .render(&recipient(Some("Jo"), &attrs, &list))
        .unwrap();
    assert!(r.html.contains("Dear Jo,") && r.text.contains("Dear Jo,"));
}

#[test]
fn a_name_written_surname_first_is_greeted_forename_first() {
    let p = prepared(BODY);
    let (attrs, list) = (Attributes::new(), members());
    for (name, greeting) in [
        ("Bloggs, Jo", "Dear Jo Bloggs,"),
        ("Van der Berg, Anna Maria", "Dear Anna Maria Van der Berg,"),
        ("Jo Bloggs, MP", "Dear Jo Bloggs, MP,"),
        ("Jo Bloggs", "Dear Jo Bloggs,"),
    ] {
        let r = p.render(&recipient(Some(name), &attrs, &list)).unwrap();
        assert!(r.html.contains(greeting), "{name}: {}", r.html);
        assert!(r.text.contains(greeting), "{name}: {}", r.text);
    }
}

#[test]
fn the_footer_says_who_sends_how_to_reach_them_and_links_the_privacy_notice() {
    let (attrs, list) = (Attributes::new(), members());
    let r = prepared(BODY)
        .render(&recipient(None, &attrs, &list))
        .unwrap();
    assert!(
        r.html.contains("Sent by NEC Report, reports@nec.example."),
        "{}",
        r.html
    );
    assert!(
        r.text
            .contains("\nSent by NEC Report, reports@nec.example.\n"),
        "{}",
        r.text
    );
    assert!(!r.html.contains("Privacy notice") && !r.text.contains("Privacy notice"));
    let site = Site {
        sender_address: Some("Jane Doe, 1 High Street, Anytown AB1 2CD".into()),
        privacy_url: Some("https://nec.example/privacy".into()),
        ..site()
    };
    for site in [
        site.clone(),
        Site {
            web_version: true,
            ..site
        },
    ] {
        let templates = Arc::new(Templates::load(None).unwrap());
        let p = Prepared::new(templates, &report(BODY), &site).unwrap();
        let r = p.render(&recipient(None, &attrs, &list)).unwrap();
        assert!(
            r.html
                .contains("NEC Report, Jane Doe, 1 High Street, Anytown AB1 2CD."),
            "{}",
            r.html
        );
        assert!(
            r.html.contains("<a href=\"https://nec.example/privacy\""),
            "{}",
            r.html
        );
        if !site.web_version {
            assert!(
                r.text
                    .contains("\nSent by NEC Report, Jane Doe, 1 High Street, Anytown AB1 2CD.\n"),
                "{}",
                r.text
            );
            assert!(
                r.text
                    .ends_with("\nPrivacy notice: https://nec.example/privacy\n"),
                "{}",
                r.text
            );
        }
    }
}

#[test]
fn outlook_gets_a_600_px_table_and_named_anchors_for_the_contents() {
    let p = prepared(BODY);
    let (attrs, list) = (councillor(), members());
    let html = p.render(&recipient(None, &attrs, &list)).unwrap().html;
    assert!(
        html.contains("<!--[if mso]><table role=\"presentation\" width=\"600\""),
        "{html}"
    );
    assert!(
        html.contains("<!--[if mso]></td></tr></table><![endif]-->"),
        "{html}"
    );
    for anchor in [
        "leaders-report",
        "local-government-report",
        "party-membership",
    ] {
        assert!(
            html.contains(&format!("<a name=\"{anchor}\"")),
            "{anchor}: {html}"
        );
        assert!(
            html.contains(&format!("href=\"#{anchor}\"")),
            "{anchor}: {html}"
        );
    }
    assert!(
        !html.contains("<p class=\"callout\""),
        "Outlook ignores a paragraph's padding: the note is a table cell"
    );
}

#[test]
fn the_email_has_a_dark_palette_and_the_summary_as_hidden_preview_text() {
    let p = prepared(BODY);
    let (attrs, list) = (Attributes::new(), members());
    let html = p.render(&recipient(None, &attrs, &list)).unwrap().html;
    assert!(
        html.contains("<meta name=\"color-scheme\" content=\"light dark\">"),
        "{html}"
    );
    assert!(
        html.contains("@media (prefers-color-scheme: dark)"),
        "{html}"
    );
    assert!(
        html.contains("[data-ogsc] h2"),
        "the Outlook.com rules are kept: {html}"
    );
    assert!(
        !html.contains("#ff9494;\""),
        "the dark palette is never inlined: {html}"
    );
    let body = &html[html.find("<body").unwrap()..];
    let preheader = body.find("Membership passes 575,000").unwrap();
    assert!(preheader < body.find("<h1").unwrap(), "{body}");
    assert!(
        body[..preheader].contains("<span style=\"display:none;"),
        "{body}"
    );
    assert_eq!(
        html.matches("@media (prefers-color-scheme: dark)").count(),
        1
    );
}

/// `report` prepared with the built-in templates but for `email/{file}`,
/// which is `template`.
fn prepared_with(file: &str, template: &str, report: &Report) -> Prepared {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("email")).unwrap();
    std::fs::write(dir.path().join("email").join(file), template).unwrap();
    Prepared::new(
        Arc::new(Templates::load(Some(dir.path())).unwrap()),
        report,
        &site(),
    )
    .unwrap()
}

#[test]
fn a_subject_with_personal_values_is_each_recipients_own_with_single_spaces() {
    let p = prepared_with(
        "report.subject.tera",
        "  {% if subscriber.attributes.role %}[{{ subscriber.attributes.role }}]{% endif %}\n\
         Report   for {{ subscriber.name }}{% if subscriber.name %},{% endif %}  {{ list.name }} ",
        &report(BODY),
    );
    let list = members();
    let (councillor, member) = (councillor(), Attributes::new());
    let subject = |name, attributes| {
        let r = p.render(&recipient(name, attributes, &list)).unwrap();
        let mut message = String::new();
        let meta = MessageMeta {
            message_id: "d1.c1@nec.example",
            date: Utc::now(),
            list_unsubscribe: None,
            list_id: None,
            feedback_id: None,
        };
        p.write_message(&recipient(name, attributes, &list), &meta, &mut message)
            .unwrap();
        let header = message
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap()
            .to_owned();
        (r.subject, header)
    };
    let (rendered, header) = subject(Some("Bloggs, Jo"), &councillor);
    assert_eq!(rendered, "[councillor] Report for Jo Bloggs, Party members");
    assert_eq!(header, rendered);
    assert_eq!(
        subject(Some("Al"), &member).0,
        "Report for Al, Party members"
    );
    assert_eq!(subject(None, &member).0, "Report for Party members");
    assert_eq!(subject(Some("Bloggs, Jo"), &councillor).0, rendered);
}

#[test]
fn each_recipient_gets_the_variant_of_their_own_attributes_list_and_name() {
    let p = prepared(BODY);
    let (members, others) = (
        members(),
        ListInfo {
            slug: "others".into(),
            name: "Other people".into(),
        },
    );
    let (councillor, member) = (councillor(), Attributes::new());
    for _ in 0..2 {
        for (attributes, list, name) in [
            (&councillor, &members, Some("Jo")),
            (&member, &members, Some("Jo")),
            (&member, &others, None),
            (&councillor, &others, Some("")),
        ] {
            let r = p.render(&recipient(name, attributes, list)).unwrap();
            let jump = r.html.contains("As a councillor");
            assert_eq!(jump, attributes == &councillor, "{attributes:?}");
            assert!(r.html.contains(&list.name), "{}", list.name);
            assert_eq!(r.text.contains("Dear Jo,"), name == Some("Jo"));
        }
    }
}

#[test]
fn a_message_written_around_the_body_is_the_whole_message_once_the_bodies_go_in() {
    let body = ".A line with a dot first\n\nThe NEC met on Tuesday. Résumé, with “quotes”.\n";
    let report = report(body);
    let built_in = Prepared::new(Arc::new(Templates::load(None).unwrap()), &report, &site());
    let custom = prepared_with(
        "report.txt.tera",
        "Dear {{ subscriber.name }}\n\n{{ report.body_text }}\n\nAgain:\n{{ report.body_text }}",
        &report,
    );
    let list = members();
    let meta = campaign_meta();
    let (mut around, mut splices) = (String::new(), Vec::new());
    for (p, bodies) in [(built_in.unwrap(), 2), (custom, 3)] {
        for (name, attrs) in [
            (Some("Jo <Bloggs>"), councillor()),
            (None, Attributes::new()),
        ] {
            let r = recipient(name, &attrs, &list);
            let mut whole = String::new();
            p.write_message(&r, &meta, &mut whole).unwrap();
            around.clear();
            p.write_message_around(&r, &meta, &mut around, &mut splices)
                .unwrap();
            assert_eq!(splices.len(), bodies, "{splices:?}");
            assert_eq!(splices.iter().filter(|s| s.html).count(), 1);
            assert!(!around.contains("The NEC met on Tuesday"), "{around}");
            let spliced: String = p.spliced(&around, &splices).map(|(_, s)| s).collect();
            assert_eq!(spliced, whole);
        }
    }
}
