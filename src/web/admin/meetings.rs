//! The NEC meetings, for editors and owners: the upcoming ones, the past
//! ones with the report that covers each or how overdue it is, a new one,
//! an iCalendar file uploaded, a report linked to a meeting by hand, and a
//! meeting removed.
//! The same domain code and store as `necmail meeting`: after each change,
//! reports are linked to meetings on evidence, as the scheduler's poll does.

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Days, NaiveDate, Utc};
use serde_json::{Value, json};

use super::import::{Refusal, receive_small};
use super::pages::{AdminPageError, render};
use super::session::{CsrfForm, SignedIn};
use crate::admin;
use crate::meetings::{MAX_CALENDAR_BYTES, Meeting, read_calendar};
use crate::reports::ReportRef;
use crate::web::Shared;

/// The most recent reports offered to link to a meeting.
const REPORTS_OFFERED: usize = 100;

/// The meetings page, with what was just done or refused above the lists.
async fn page(
    state: &Shared,
    who: &SignedIn,
    status: StatusCode,
    extra: Value,
) -> Result<Response, AdminPageError> {
    let today = Utc::now()
        .with_timezone(&state.config.timezone)
        .date_naive();
    let overdue_by = today - Days::new(u64::from(state.config.report_overdue_days));
    let meetings = state.meetings.meetings().await?;
    let row = |m: &Meeting| {
        json!({
            "date": m.held_on.to_string(),
            "title": m.title,
            "report": m.report.as_ref().map(|r| json!({
                "id": r.id,
                "title": r.title,
                "why": r.linked_by.reason(),
            })),
            "overdue": m.report.is_none() && m.held_on <= overdue_by,
        })
    };
    let mut upcoming: Vec<_> = meetings
        .iter()
        .filter(|m| m.held_on > today)
        .map(row)
        .collect();
    upcoming.reverse();
    let past: Vec<_> = meetings
        .iter()
        .filter(|m| m.held_on <= today)
        .map(row)
        .collect();
    let reports: Vec<_> = state
        .reports
        .reports()
        .await?
        .into_iter()
        .take(REPORTS_OFFERED)
        .map(|r| json!({"id": r.id, "title": r.title}))
        .collect();
    let mut values = json!({
        "upcoming": upcoming,
        "past": past,
        "reports": reports,
        "overdue_days": state.config.report_overdue_days,
        "max_kb": calendar_limit(state) / 1024,
    });
    if let (Value::Object(values), Value::Object(extra)) = (&mut values, extra) {
        values.extend(extra);
    }
    Ok(render(state, Some(who), status, "meetings", values))
}

/// The largest calendar taken: the importer's limit, or the uploads' when
/// that is smaller.
fn calendar_limit(state: &Shared) -> usize {
    MAX_CALENDAR_BYTES.min(state.config.admin_upload_max_bytes)
}

pub(super) async fn list(
    State(state): State<Shared>,
    who: SignedIn,
) -> Result<Response, AdminPageError> {
    page(&state, &who, StatusCode::OK, json!({})).await
}

/// Links reports to meetings on evidence, as `necmail meeting` does
/// after every change.
async fn link_on_evidence(state: &Shared) -> Result<(), AdminPageError> {
    state
        .meetings
        .link_reports(state.config.link_rules())
        .await?;
    Ok(())
}

#[derive(serde::Deserialize)]
pub(super) struct NewMeetingForm {
    #[serde(default)]
    date: String,
    #[serde(default)]
    title: String,
}

fn day(text: &str) -> Result<NaiveDate, AdminPageError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| AdminPageError::Invalid(format!("{text:?} is not a date like 2026-03-21.")))
}

/// Records a meeting, as `necmail meeting add` does.
pub(super) async fn add(
    State(state): State<Shared>,
    who: SignedIn,
    CsrfForm(form): CsrfForm<NewMeetingForm>,
) -> Result<Response, AdminPageError> {
    let held_on = day(&form.date)?;
    let title = Some(form.title.trim()).filter(|t| !t.is_empty());
    if title.is_some_and(|t| t.chars().any(char::is_control)) {
        return Err(AdminPageError::Invalid(
            "The title must be one line.".into(),
        ));
    }
    state.meetings.add_meeting(held_on, title).await?;
    let detail = format!("{held_on} {}", title.unwrap_or_default());
    admin::audit(
        &*state.admin,
        &who.actor(),
        "meeting.add",
        detail.trim_end(),
    )
    .await?;
    link_on_evidence(&state).await?;
    Ok(Redirect::to("/admin/meetings").into_response())
}

/// Records the meetings of an uploaded iCalendar file, as `necmail meeting
/// import FILE` does: days already recorded are left as they are.
pub(super) async fn import(
    State(state): State<Shared>,
    who: SignedIn,
    mut multipart: Multipart,
) -> Result<Response, AdminPageError> {
    let limit = calendar_limit(&state);
    let refuse = |status, error: String| {
        let (state, who) = (&state, &who);
        async move { page(state, who, status, json!({"error": error})).await }
    };
    let upload = match receive_small(&mut multipart, &who, limit).await? {
        Ok(upload) => upload,
        Err(Refusal::TooBig) => {
            let message = format!(
                "That file is larger than {} KB, more than a calendar of meetings needs. \
                 Nothing was recorded.",
                limit / 1024
            );
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, message).await;
        }
        Err(Refusal::Bad(message)) => {
            return refuse(StatusCode::UNPROCESSABLE_ENTITY, message).await;
        }
    };
    let name = upload.file_name.as_deref().unwrap_or("the uploaded file");
    let calendar = match read_calendar(&upload.bytes, state.config.timezone) {
        Ok(calendar) => calendar,
        Err(e) => {
            let message = format!("{name} cannot be imported: {e}. Nothing was recorded.");
            return refuse(StatusCode::UNPROCESSABLE_ENTITY, message).await;
        }
    };
    let imported = state.meetings.import_meetings(&calendar.meetings).await?;
    let detail = format!(
        "{name}: {} added, {} known, {} cancelled",
        imported.added, imported.known, calendar.cancelled
    );
    admin::audit(&*state.admin, &who.actor(), "meeting.import", &detail).await?;
    link_on_evidence(&state).await?;
    let cancelled = match calendar.cancelled {
        0 => String::new(),
        n => format!("; {n} left out as cancelled"),
    };
    let done = format!(
        "Imported {name}: {} new meetings, {} already known{cancelled}.",
        imported.added, imported.known
    );
    page(&state, &who, StatusCode::OK, json!({"done": done})).await
}

#[derive(serde::Deserialize)]
pub(super) struct LinkForm {
    #[serde(default)]
    report: String,
}

/// Links a report to a meeting by hand, as `necmail meeting link` does.
pub(super) async fn link(
    State(state): State<Shared>,
    who: SignedIn,
    Path(date): Path<String>,
    CsrfForm(form): CsrfForm<LinkForm>,
) -> Result<Response, AdminPageError> {
    let held_on = day(&date).map_err(|_| AdminPageError::NotFound)?;
    let id: i64 = form
        .report
        .trim()
        .parse()
        .map_err(|_| AdminPageError::Invalid("Choose a report.".into()))?;
    let report = state.reports.report(&ReportRef::Id(id)).await?;
    state.meetings.link_report(held_on, report.id).await?;
    let detail = format!("{held_on} to report {} {}", report.id, report.slug);
    admin::audit(&*state.admin, &who.actor(), "meeting.link", &detail).await?;
    link_on_evidence(&state).await?;
    Ok(Redirect::to("/admin/meetings").into_response())
}

/// Unlinks a meeting's report, as `necmail meeting unlink` does: it is
/// never linked to that meeting again on evidence.
pub(super) async fn unlink(
    State(state): State<Shared>,
    who: SignedIn,
    Path(date): Path<String>,
    CsrfForm(_): CsrfForm<Value>,
) -> Result<Response, AdminPageError> {
    let held_on = day(&date).map_err(|_| AdminPageError::NotFound)?;
    let was = state.meetings.unlink_report(held_on).await?;
    let report = was.report.map(|r| r.slug).unwrap_or_default();
    let detail = format!("{held_on} from report {report}");
    admin::audit(&*state.admin, &who.actor(), "meeting.unlink", &detail).await?;
    link_on_evidence(&state).await?;
    Ok(Redirect::to("/admin/meetings").into_response())
}

/// Removes a meeting, as `necmail meeting rm` does: its report is kept.
pub(super) async fn remove(
    State(state): State<Shared>,
    who: SignedIn,
    Path(date): Path<String>,
    CsrfForm(_): CsrfForm<Value>,
) -> Result<Response, AdminPageError> {
    let held_on = day(&date).map_err(|_| AdminPageError::NotFound)?;
    let removed = state.meetings.remove_meeting(held_on).await?;
    let detail = match removed.report {
        Some(report) => format!("{held_on}; its report {} is kept", report.slug),
        None => held_on.to_string(),
    };
    admin::audit(&*state.admin, &who.actor(), "meeting.remove", &detail).await?;
    link_on_evidence(&state).await?;
    Ok(Redirect::to("/admin/meetings").into_response())
}
