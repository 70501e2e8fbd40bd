//! The feed sources, for owners only (a poll makes campaigns): each with
//! when it was last checked and its last error, a new one, removing one,
//! and polling them all now. The same domain code and store as `necmail
//! source`: a new feed is read once through the fetcher and its address
//! policy, and "poll now" runs the scheduler's own poll.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use super::pages::{AdminPageError, list_choices, render};
use super::session::{CsrfForm, Owner, SignedIn};
use crate::admin;
use crate::campaigns::parse_at;
use crate::lists::ListSlug;
use crate::reports::NewSource;
use crate::reports::feeds::{
    Added, Existing, Fetcher, PollOutcome, SourcePoll, add_source, parse_category, parse_url,
};
use crate::scheduler::{Polled, TickError, poll_sources};
use crate::web::Shared;

fn time(state: &Shared, at: DateTime<Utc>) -> String {
    at.with_timezone(&state.config.timezone)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// The sources page, with what was just done or refused above the list.
async fn page(
    state: &Shared,
    who: &SignedIn,
    status: StatusCode,
    extra: Value,
) -> Result<Response, AdminPageError> {
    let sources: Vec<_> = state
        .feeds
        .sources()
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "id": s.id,
                "url": s.url,
                "category": s.category,
                "lists": s.lists.iter().map(ListSlug::as_str).collect::<Vec<_>>(),
                "checked": s.last_checked_at.map(|at| time(state, at)),
                "error": s.last_error,
            })
        })
        .collect();
    let lists = list_choices(state).await?;
    let mut values = json!({
        "sources": sources,
        "lists": lists,
        "default_lists": state.config.default_lists.iter().map(ListSlug::as_str)
            .collect::<Vec<_>>(),
    });
    if let (Value::Object(values), Value::Object(extra)) = (&mut values, extra) {
        values.extend(extra);
    }
    Ok(render(state, Some(who), status, "sources", values))
}

pub(super) async fn list(
    State(state): State<Shared>,
    Owner(who): Owner,
) -> Result<Response, AdminPageError> {
    page(&state, &who, StatusCode::OK, json!({})).await
}

/// A posted form's fields by name; a list's checkbox is `list:SLUG`.
type Fields = BTreeMap<String, String>;

/// The prefix of the new-source form's list checkboxes.
const LIST_FIELD: &str = "list:";

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.get(name).map_or("", String::as_str)
}

/// The source the form adds and what to do with the items its feed has
/// now, or why not, in a sentence.
fn read_form(fields: &Fields, state: &Shared) -> Result<(NewSource, Existing), String> {
    let url = parse_url(field(fields, "url")).map_err(|e| format!("{e}."))?;
    let category = match field(fields, "category").trim() {
        "" => None,
        typed => Some(parse_category(typed).map_err(|e| format!("The {e}."))?),
    };
    let lists = fields
        .keys()
        .filter_map(|k| k.strip_prefix(LIST_FIELD))
        .map(|slug| ListSlug::parse(slug).map_err(|e| format!("{e}.")))
        .collect::<Result<Vec<_>, _>>()?;
    let existing = match field(fields, "existing") {
        "new" => Existing::New,
        "since" => {
            let day = NaiveDate::parse_from_str(field(fields, "since").trim(), "%Y-%m-%d")
                .map_err(|_| "Give the day to take posts from, like 2026-03-21.")?;
            Existing::Since(parse_at(&format!("{day} 00:00"), state.config.timezone)?)
        }
        _ => Existing::Seen,
    };
    let new = NewSource {
        url: url.to_string(),
        category,
        lists,
    };
    Ok((new, existing))
}

/// What became of the feed's items when it was added.
fn baseline(added: &Added, existing: Existing) -> String {
    let url = &added.source.url;
    match existing {
        Existing::New => format!(
            "Added {url}. None of its {} items are recorded as seen: the next poll imports \
             them all and makes their campaign.",
            added.new
        ),
        Existing::Since(_) => format!(
            "Added {url}. Its {} older items are recorded as seen; the next poll imports the \
             {} others and makes their campaign.",
            added.seen, added.new
        ),
        Existing::Seen => format!(
            "Added {url}. Its {} items are recorded as seen and will not be mailed; the next \
             poll imports only what it publishes from now on.",
            added.seen
        ),
    }
}

/// Adds a source as `necmail source add` does: its feed is read once, and
/// a feed that cannot be read, or an address the policy refuses, is not
/// added.
pub(super) async fn add(
    State(state): State<Shared>,
    Owner(who): Owner,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, AdminPageError> {
    let typed = json!({
        "typed": {"url": field(&fields, "url"), "category": field(&fields, "category")},
    });
    let refuse = |status, error: String| {
        let mut values = typed.clone();
        values["error"] = json!(error);
        page(&state, &who, status, values)
    };
    let (new, existing) = match read_form(&fields, &state) {
        Ok(read) => read,
        Err(error) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, error).await,
    };
    let fetcher =
        Fetcher::from_config(&state.config).map_err(|e| AdminPageError::Internal(e.into()))?;
    let added = match add_source(&*state.feeds, &fetcher, &new, existing).await {
        Ok(added) => added,
        Err(e) => {
            let status = if e.is_bad_input() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::BAD_GATEWAY
            };
            return refuse(status, format!("Not added: {e}.")).await;
        }
    };
    let detail = format!("{} {}", added.source.id, added.source.url);
    admin::audit(&*state.admin, &who.actor(), "source.add", &detail).await?;
    let done = baseline(&added, existing);
    page(&state, &who, StatusCode::OK, json!({"done": done})).await
}

/// Stops polling a source, as `necmail source rm` does; its reports stay.
pub(super) async fn remove(
    State(state): State<Shared>,
    Owner(who): Owner,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<Value>,
) -> Result<Response, AdminPageError> {
    let source = state.feeds.remove_source(id).await?;
    let detail = format!("{} {}", source.id, source.url);
    admin::audit(&*state.admin, &who.actor(), "source.remove", &detail).await?;
    Ok(Redirect::to("/admin/sources").into_response())
}

/// One source's poll, for the page.
fn polled_source(poll: &SourcePoll, polled: &Polled) -> Value {
    let source = &poll.source;
    let mut row = json!({"id": source.id, "url": source.url});
    match &poll.outcome {
        PollOutcome::NotModified => row["outcome"] = json!("not-modified"),
        PollOutcome::Failed(error) => {
            row["outcome"] = json!("failed");
            row["error"] = json!(error);
        }
        PollOutcome::Fetched(items) => {
            let new: Vec<_> = items
                .new
                .iter()
                .map(|report| {
                    let campaign = polled
                        .campaigns
                        .iter()
                        .find(|c| c.report_id == report.id)
                        .map(|c| json!({"id": c.id, "state": c.state.as_str()}));
                    let unsent = polled
                        .unsent
                        .iter()
                        .find(|u| u.report.id == report.id)
                        .map(|u| u.why.to_string());
                    json!({
                        "id": report.id,
                        "title": report.title,
                        "campaign": campaign,
                        "unsent": unsent,
                    })
                })
                .collect();
            let failed: Vec<_> = items
                .failed
                .iter()
                .map(|item| {
                    json!({
                        "name": item.title.as_deref().unwrap_or(&item.guid),
                        "reason": item.reason,
                    })
                })
                .collect();
            row["outcome"] = json!("fetched");
            row["new"] = json!(new);
            row["duplicates"] = json!(items.duplicates.len());
            row["failed"] = json!(failed);
        }
    }
    row
}

/// Polls every source now, as the scheduler's poll tick and `necmail
/// source poll` do: new reports are imported and get their campaigns, then
/// meetings are linked to reports. The page says what each source gave.
pub(super) async fn poll(
    State(state): State<Shared>,
    Owner(who): Owner,
    CsrfForm(_): CsrfForm<Value>,
) -> Result<Response, AdminPageError> {
    let polled = poll_sources(&*state.feeds, &state.config, Utc::now())
        .await
        .map_err(|e| match e {
            TickError::Store(e) => AdminPageError::from(e),
            TickError::Fetcher(e) => AdminPageError::Internal(e.into()),
        })?;
    state.feeds.link_reports(state.config.link_rules()).await?;
    let new: usize = polled
        .sources
        .iter()
        .map(|p| match &p.outcome {
            PollOutcome::Fetched(items) => items.new.len(),
            _ => 0,
        })
        .sum();
    let failed = polled
        .sources
        .iter()
        .filter(|p| matches!(p.outcome, PollOutcome::Failed(_)))
        .count();
    let detail = format!(
        "{} sources: {new} new reports, {failed} failed",
        polled.sources.len()
    );
    admin::audit(&*state.admin, &who.actor(), "source.poll", &detail).await?;
    let rows: Vec<_> = polled
        .sources
        .iter()
        .map(|p| polled_source(p, &polled))
        .collect();
    let extra = json!({"polled": {"sources": rows, "new": new, "failed": failed}});
    page(&state, &who, StatusCode::OK, extra).await
}
