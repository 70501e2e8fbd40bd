//! The archive: every report that has been sent, its web version, and an
//! Atom feed of them.
//!
//! The web version is the email's HTML rendered for a stand-in recipient:
//! no name, "your address" for the address, and the subscribe page where
//! the email has its personal unsubscribe and preferences links. The email
//! keeps its inlined styles, so that page alone allows inline styles in its
//! Content-Security-Policy (it still allows no scripts).
//!
//! A test message (`send-test`) links to a preview instead: the web version
//! of its report, sent or not, and a page in place of its personal links.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::NaiveDate;
use serde_json::json;

use super::pages::{PageError, page};
use super::protect::{CSP_ARCHIVED_REPORT, token_hint};
use super::{Shared, id_of};
use crate::render::encoding::escape_html;
use crate::render::{ListInfo, Prepared, Recipient, Site, to_html};
use crate::reports::{Report, ReportRef};
use crate::subscribers::Attributes;
use crate::tokens::Purpose;

/// Rendered web versions by slug, with what they were made from: a report
/// corrected after it was sent is rendered again.
#[derive(Default)]
pub(crate) struct WebVersions {
    rendered: Mutex<HashMap<String, (Rendered, Arc<String>)>>,
}

/// What a web version shows of its report: its title and body (by their
/// hash), its meeting date and its summary.
type Rendered = (String, Option<NaiveDate>, Option<String>);

fn rendered_from(report: &Report) -> Rendered {
    (
        report.content_hash.clone(),
        report.meeting_date,
        report.summary.clone(),
    )
}

impl WebVersions {
    fn get(&self, report: &Report) -> Option<Arc<String>> {
        let rendered = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        rendered
            .get(&report.slug)
            .filter(|(from, _)| *from == rendered_from(report))
            .map(|(_, html)| Arc::clone(html))
    }

    fn put(&self, report: &Report, html: Arc<String>) {
        let mut rendered = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        rendered.insert(report.slug.clone(), (rendered_from(report), html));
    }
}

#[tracing::instrument(name = "archive", skip_all)]
pub(super) async fn index(State(state): State<Shared>) -> Result<Response, PageError> {
    let reports: Vec<_> = state
        .archived
        .archive()
        .await?
        .into_iter()
        .map(|r| {
            json!({
                "slug": r.slug,
                "title": r.title,
                "meeting_date": r.meeting_date.map(|d| d.format("%-d %B %Y").to_string()),
                "summary": r.summary,
                "sent_at": r.sent_at.format("%-d %B %Y").to_string(),
                "sent_at_iso": r.sent_at.to_rfc3339(),
            })
        })
        .collect();
    Ok(page(
        &state,
        StatusCode::OK,
        "archive",
        json!({"reports": reports}),
    ))
}

#[tracing::instrument(name = "archived_report", skip_all)]
pub(super) async fn web_version(
    State(state): State<Shared>,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let report = state
        .archived
        .archived_report(&slug)
        .await?
        .ok_or(PageError::NotFound)?;
    let html = match state.archive.get(&report) {
        Some(html) => html,
        None => {
            let html = Arc::new(render(&state, &report)?);
            state.archive.put(&report, Arc::clone(&html));
            html
        }
    };
    Ok((
        [(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP_ARCHIVED_REPORT),
        )],
        Html(html.as_str().to_owned()),
    )
        .into_response())
}

/// The report a test message's link names, while the link is current
/// (NECMAIL_PREFERENCES_LINK_DAYS).
fn previewed(state: &Shared, token: &str) -> Result<i64, PageError> {
    let values = state.signer.verify(Purpose::Preview, token).map_err(|e| {
        tracing::info!(token = token_hint(token), reason = %e, "a bad preview link");
        PageError::BrokenLink
    })?;
    let [id, issued] = values[..] else {
        return Err(PageError::BrokenLink);
    };
    let age = chrono::Utc::now()
        .timestamp()
        .saturating_sub(i64::try_from(issued).unwrap_or(i64::MAX));
    if u64::try_from(age).is_ok_and(|age| age <= state.config.preferences_link_lifetime.as_secs()) {
        id_of(id).ok_or(PageError::BrokenLink)
    } else {
        Err(PageError::SpentLink)
    }
}

/// "Read it on the web" in a test message: the report's web version,
/// whether or not it was sent. Kept out of search engines.
#[tracing::instrument(name = "preview", skip_all)]
pub(super) async fn preview(
    State(state): State<Shared>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let id = previewed(&state, &token)?;
    let report = state.reports.report(&ReportRef::Id(id)).await?;
    Ok((
        [
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP_ARCHIVED_REPORT),
            ),
            (
                header::HeaderName::from_static("x-robots-tag"),
                HeaderValue::from_static("noindex"),
            ),
        ],
        Html(render(&state, &report)?),
    )
        .into_response())
}

/// A test message's unsubscribe and preferences links (and its one-click
/// POST): a page that says what they do in the real email, changing nothing.
pub(super) async fn preview_link(
    State(state): State<Shared>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    previewed(&state, &token)?;
    Ok(page(
        &state,
        StatusCode::OK,
        "notice",
        json!({"kind": "test-link"}),
    ))
}

/// The email's HTML as the templates render it for the web version: for a
/// stand-in recipient, with nothing personal in it.
fn render(state: &Shared, report: &Report) -> Result<String, PageError> {
    let site = Site::web_version(&state.config);
    let prepared = Prepared::new(Arc::clone(&state.templates), report, &site)
        .map_err(|e| PageError::Internal(anyhow::anyhow!("the web version of a report: {e}")))?;
    let subscribe = state.config.public_link("subscribe");
    let attributes = Attributes::new();
    let list = ListInfo {
        slug: "archive".into(),
        name: state.site_name.clone(),
    };
    let recipient = Recipient {
        email: "your address",
        name: None,
        attributes: &attributes,
        list: &list,
        also: &[],
        unsubscribe_url: &subscribe,
        preferences_url: &subscribe,
    };
    prepared
        .render(&recipient)
        .map(|r| r.html)
        .map_err(|e| PageError::Internal(anyhow::anyhow!("the web version of a report: {e}")))
}

/// Text made safe for XML: escaped, without the control characters XML 1.0 forbids.
fn xml(text: &str) -> String {
    let allowed: String = text
        .chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r')
                || !(c.is_control() || ('\u{FFFE}'..='\u{FFFF}').contains(&c))
        })
        .collect();
    escape_html(&allowed)
}

/// How many of the newest reports the feed carries, each in full.
const FEED_ENTRIES: usize = 20;

/// The archive as an Atom feed (RFC 4287): the newest reports, each with
/// its whole text as HTML, so that a feed reader shows the report itself.
#[tracing::instrument(name = "archive_feed", skip_all)]
pub(super) async fn feed(State(state): State<Shared>) -> Result<Response, PageError> {
    let mut reports = state.archived.archive().await?;
    reports.truncate(FEED_ENTRIES);
    let archive_url = state.config.public_link("archive");
    // With nothing sent yet, the feed is as of now, not of 1970.
    let updated = reports
        .iter()
        .map(|r| r.sent_at)
        .max()
        .unwrap_or_else(chrono::Utc::now)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut out = String::with_capacity(1024 + reports.len() * 512);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    out.push_str(&format!(
        "  <title>{}</title>\n  <id>{}</id>\n  <link rel=\"self\" type=\"application/atom+xml\" href=\"{}/feed.xml\"/>\n  \
         <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n  <updated>{updated}</updated>\n  \
         <author><name>{}</name></author>\n",
        xml(&state.site_name),
        xml(&archive_url),
        xml(&archive_url),
        xml(&archive_url),
        xml(&state.site_name),
    ));
    for r in &reports {
        let url = xml(&format!("{archive_url}/{}", r.slug));
        let at = r.sent_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        out.push_str(&format!(
            "  <entry>\n    <title>{}</title>\n    <id>{url}</id>\n    \
             <link rel=\"alternate\" type=\"text/html\" href=\"{url}\"/>\n    \
             <published>{at}</published>\n    <updated>{at}</updated>\n",
            xml(&r.title)
        ));
        if let Some(summary) = &r.summary {
            out.push_str(&format!("    <summary>{}</summary>\n", xml(summary)));
        }
        if let Some(report) = state.archived.archived_report(&r.slug).await? {
            out.push_str(&format!(
                "    <content type=\"html\">{}</content>\n",
                xml(&to_html(&report.body_markdown))
            ));
        }
        out.push_str("  </entry>\n");
    }
    out.push_str("</feed>\n");
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/atom+xml; charset=utf-8"),
        )],
        out,
    )
        .into_response())
}
