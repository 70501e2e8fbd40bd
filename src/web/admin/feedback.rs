//! Suppressions, bounces and events, for owners only, newest first and a
//! page at a time; suppressing an address and lifting a suppression. The
//! same domain code and store as `necmail suppression|bounces|events`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::pages::{AdminPageError, render};
use super::session::{CsrfForm, Owner, SignedIn};
use crate::admin;
use crate::feedback::{EventFilter, EventKind, EventSource};
use crate::subscribers::{SubscriberEmail, SuppressionReason};
use crate::web::Shared;

/// Lines per page.
const PAGE: i64 = 50;
/// The reasons an owner may suppress an address for; an erasure is done
/// from the person's page, with their data.
const REASONS: [SuppressionReason; 3] = [
    SuppressionReason::HardBounce,
    SuppressionReason::Complaint,
    SuppressionReason::Unsubscribed,
];

fn time(state: &Shared, at: DateTime<Utc>) -> String {
    at.with_timezone(&state.config.timezone)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// The page after a suppression: its time and address hash.
#[derive(serde::Deserialize)]
pub(super) struct SuppressionPage {
    at: Option<DateTime<Utc>>,
    #[serde(default)]
    hash: String,
}

pub(super) async fn suppressions(
    State(state): State<Shared>,
    Owner(who): Owner,
    Query(page): Query<SuppressionPage>,
) -> Result<Response, AdminPageError> {
    let before = page.at.map(|at| (at, page.hash.as_str()));
    let mut entries = state.feedback.suppressions(before, PAGE + 1).await?;
    let more = entries.len() as i64 > PAGE;
    entries.truncate(PAGE as usize);
    let next = entries.last().filter(|_| more).map(|last| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("at", &last.at.to_rfc3339())
            .append_pair("hash", &last.email_hash)
            .finish()
    });
    let rows: Vec<_> = entries
        .iter()
        .map(|e| {
            json!({
                "email": e.email,
                "hash": e.email_hash.get(..12).unwrap_or(&e.email_hash),
                "reason": e.reason.as_str(),
                "at": time(&state, e.at),
            })
        })
        .collect();
    Ok(render(
        &state,
        Some(&who),
        StatusCode::OK,
        "suppressions",
        json!({
            "rows": rows,
            "next": next,
            "newest": page.at.is_some(),
            "reasons": REASONS.map(SuppressionReason::as_str),
        }),
    ))
}

#[derive(serde::Deserialize)]
pub(super) struct SuppressionForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    note: String,
}

impl SuppressionForm {
    fn email(&self) -> Result<SubscriberEmail, AdminPageError> {
        SubscriberEmail::parse(self.email.trim())
            .map_err(|e| AdminPageError::Invalid(format!("That is not a usable address: {e}.")))
    }
}

/// The audit log's name for an address: the start of its hash, as the
/// suppressions page shows it once the person is gone.
fn hashed(email: &SubscriberEmail) -> String {
    let hash = email.suppression_hash();
    format!("hash {}", hash.get(..12).unwrap_or(&hash))
}

async fn log(
    state: &Shared,
    who: &SignedIn,
    action: &str,
    detail: &str,
) -> Result<Response, AdminPageError> {
    admin::audit(&*state.admin, &who.actor(), action, detail).await?;
    Ok(Redirect::to("/admin/suppressions").into_response())
}

/// Suppresses an address, as `necmail suppression add` does.
pub(super) async fn suppress(
    State(state): State<Shared>,
    Owner(who): Owner,
    CsrfForm(form): CsrfForm<SuppressionForm>,
) -> Result<Response, AdminPageError> {
    let email = form.email()?;
    let reason = REASONS
        .into_iter()
        .find(|r| r.as_str() == form.reason)
        .ok_or_else(|| AdminPageError::Invalid("Choose a reason.".into()))?;
    let note = form.note.trim();
    state
        .feedback
        .add_suppression(&email, reason, note, EventSource::Admin)
        .await?;
    let detail = format!("{} ({reason})", hashed(&email));
    log(&state, &who, "suppression.add", &detail).await
}

/// Lifts a suppression, as `necmail suppression rm` does: the reason is
/// required, and recorded.
pub(super) async fn unsuppress(
    State(state): State<Shared>,
    Owner(who): Owner,
    CsrfForm(form): CsrfForm<SuppressionForm>,
) -> Result<Response, AdminPageError> {
    let email = form.email()?;
    let note = form.note.trim();
    if note.is_empty() {
        return Err(AdminPageError::Invalid(
            "Say why the suppression is lifted.".into(),
        ));
    }
    let lifted = state
        .feedback
        .remove_suppression(&email, note, EventSource::Admin)
        .await?;
    if !lifted {
        return Err(AdminPageError::Invalid(format!(
            "{email} is not suppressed."
        )));
    }
    log(&state, &who, "suppression.remove", &hashed(&email)).await
}

/// The page before an event.
#[derive(serde::Deserialize)]
pub(super) struct EventPage {
    before: Option<i64>,
    #[serde(default)]
    kind: String,
}

async fn event_page(
    state: &Shared,
    who: &SignedIn,
    page: EventPage,
    kinds: Vec<EventKind>,
    path: &str,
    title: &str,
) -> Result<Response, AdminPageError> {
    let mut events = state
        .feedback
        .events(&EventFilter {
            kinds,
            before: page.before,
            limit: PAGE + 1,
            ..EventFilter::default()
        })
        .await?;
    let more = events.len() as i64 > PAGE;
    events.truncate(PAGE as usize);
    let next = events.last().filter(|_| more).map(|e| e.id);
    let rows: Vec<_> = events
        .iter()
        .map(|e| {
            json!({
                "at": time(state, e.at),
                "kind": e.kind.as_str(),
                "source": e.source.as_str(),
                "email": e.email,
                "subscriber": e.subscriber_id,
                "campaign": e.campaign_id,
                "status": e.status,
                "reason": e.reason,
            })
        })
        .collect();
    let kind = (!page.kind.is_empty()).then_some(page.kind.as_str());
    Ok(render(
        state,
        Some(who),
        StatusCode::OK,
        "events",
        json!({
            "title": title,
            "path": path,
            "rows": rows,
            "next": next,
            "newest": page.before.is_some(),
            "kind": kind,
            "kinds": (path == "/admin/events").then_some(EventKind::ALL),
        }),
    ))
}

pub(super) async fn bounces(
    State(state): State<Shared>,
    Owner(who): Owner,
    Query(page): Query<EventPage>,
) -> Result<Response, AdminPageError> {
    let kinds = vec![EventKind::Bounce, EventKind::SoftBounce];
    event_page(&state, &who, page, kinds, "/admin/bounces", "Bounces").await
}

pub(super) async fn events(
    State(state): State<Shared>,
    Owner(who): Owner,
    Query(page): Query<EventPage>,
) -> Result<Response, AdminPageError> {
    let kinds = match page.kind.as_str() {
        "" => Vec::new(),
        kind => vec![
            kind.parse()
                .map_err(|e: crate::error::UnknownName| AdminPageError::Invalid(e.to_string()))?,
        ],
    };
    event_page(&state, &who, page, kinds, "/admin/events", "Events").await
}
