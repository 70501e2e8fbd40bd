//! What the benchmarks of a campaign's per-message work share: the
//! 3,000-word report and the list it goes to.

use chrono::Utc;
use necmail::delivery::ListRef;
use necmail::render::ListInfo;
use necmail::reports::import::{Format, parse};
use necmail::reports::{Report, ReportSource};

/// The 3,000-word report of `tests/fixtures/render`, as imported.
pub fn report() -> Report {
    let draft = parse(
        include_bytes!("../../tests/fixtures/render/three-thousand-words.md"),
        Format::Markdown,
    )
    .expect("the fixture parses")
    .remove(0);
    Report {
        id: 1,
        slug: "labour-nec-report-march-2026".into(),
        title: draft.title.clone(),
        meeting_date: draft.meeting_date,
        summary: draft.summary.clone(),
        content_hash: draft.content_hash(),
        body_markdown: draft.body_markdown,
        source: ReportSource::Paste,
        published_at: Utc::now(),
        created_at: Utc::now(),
        excerpt: false,
    }
}

/// The members' list, the one list of the campaign.
pub fn members() -> ListRef {
    ListRef::one(
        1,
        ListInfo {
            slug: "members".into(),
            name: "Party members".into(),
        },
    )
}
