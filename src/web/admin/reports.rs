//! Reports: the list, a new one from pasted text (Markdown, plain text or
//! HTML, through the same importers as `necmail report import`), editing its
//! Markdown with a preview on each save, and deleting it. Editors and
//! owners both may.
//!
//! The preview is the email itself, as a member and as a councillor gets
//! it, each in a sandboxed iframe (no scripts, no forms, an origin of its
//! own), beside its subject and plain-text part.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::json;

use super::pages::{AdminPageError, render};
use super::session::{CsrfForm, SignedIn};
use crate::admin;
use crate::delivery::{Addressing, ListRef};
use crate::render::{ListInfo, Prepared, Rendered, Site};
use crate::reports::import::{self, Format};
use crate::reports::{ImportOptions, Report, ReportRef, ReportSource, Revised, SamePost, Stored};
use crate::subscribers::{Attributes, ROLE, ROLES};
use crate::web::Shared;

/// The policy of a report page with preview frames: the admin's, and
/// frames from the admin itself.
const CSP_WITH_PREVIEWS: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
    frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The policy of a previewed email: its inline styles and remote images, in
/// a sandbox, framed only by the admin.
const CSP_PREVIEW: &str = "default-src 'none'; style-src 'unsafe-inline'; \
    img-src https: data:; frame-ancestors 'self'; base-uri 'none'; sandbox";

pub(super) async fn list(
    State(state): State<Shared>,
    who: SignedIn,
) -> Result<Response, AdminPageError> {
    let reports = state.reports.reports().await?;
    let campaigns = state.campaigns.campaigns().await?;
    let zone = state.config.timezone;
    let rows: Vec<_> = reports
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "title": r.title,
                "meeting": r.meeting_date.map(|d| d.to_string()),
                "published": r.published_at.with_timezone(&zone).format("%Y-%m-%d").to_string(),
                "campaigns": campaigns.iter().filter(|c| c.report_id == r.id).count(),
            })
        })
        .collect();
    Ok(render(
        &state,
        Some(&who),
        StatusCode::OK,
        "reports",
        json!({"reports": rows}),
    ))
}

fn new_form(
    state: &Shared,
    who: &SignedIn,
    status: StatusCode,
    text: &str,
    error: Option<&str>,
) -> Response {
    render(
        state,
        Some(who),
        status,
        "report_new",
        json!({"text": text, "error": error}),
    )
}

pub(super) async fn new_page(State(state): State<Shared>, who: SignedIn) -> Response {
    new_form(&state, &who, StatusCode::OK, "", None)
}

#[derive(serde::Deserialize)]
pub(super) struct Pasted {
    #[serde(default)]
    text: String,
    #[serde(default)]
    format: String,
}

/// Imports pasted text as one or more reports.
pub(super) async fn create(
    State(state): State<Shared>,
    who: SignedIn,
    CsrfForm(form): CsrfForm<Pasted>,
) -> Result<Response, AdminPageError> {
    let content = form.text.as_bytes();
    let format = match form.format.as_str() {
        "md" => Format::Markdown,
        "text" => Format::Text,
        "html" => Format::Html,
        _ => import::guess_format(None, content),
    };
    let refuse = |error: String| {
        new_form(
            &state,
            &who,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form.text,
            Some(&error),
        )
    };
    if form.text.trim().is_empty() {
        return Ok(refuse("Paste the report's text first.".into()));
    }
    let drafts = match import::parse(content, format) {
        Ok(drafts) if !drafts.is_empty() => drafts,
        Ok(_) => return Ok(refuse("No report was found in that text.".into())),
        Err(e) => return Ok(refuse(format!("That text cannot be imported: {e}."))),
    };
    let options = ImportOptions {
        slug: None,
        same_post: SamePost::Keep,
    };
    let mut last = None;
    for draft in &drafts {
        let draft = crate::reports::ReportDraft {
            source: ReportSource::Paste,
            ..draft.clone()
        };
        let (verb, report) = match state.reports.insert_report(&draft, &options).await {
            Ok(Stored::New(r)) => ("report.import", r),
            Ok(Stored::Updated(r)) => ("report.update", r),
            Ok(Stored::Duplicate(r)) => ("report.duplicate", r),
            Err(e) if e.is_bad_input() => return Ok(refuse(e.to_string())),
            Err(e) => return Err(e.into()),
        };
        let detail = format!("{} {}", report.id, report.title);
        admin::audit(&*state.admin, &who.actor(), verb, &detail).await?;
        last = Some(report.id);
    }
    Ok(match (drafts.len(), last) {
        (1, Some(id)) => Redirect::to(&format!("/admin/reports/{id}")).into_response(),
        _ => Redirect::to("/admin/reports").into_response(),
    })
}

/// The report's email as a member or a councillor gets it.
pub(super) fn rendered(
    state: &Shared,
    report: &Report,
    role: &str,
) -> Result<Rendered, AdminPageError> {
    let invalid = |e: crate::render::RenderError| AdminPageError::Invalid(e.to_string());
    let prepared = Prepared::new(
        Arc::clone(&state.templates),
        report,
        &Site::from_config(&state.config),
    )
    .map_err(invalid)?;
    let list = ListRef::one(
        0,
        ListInfo {
            slug: format!("{role}s"),
            name: format!("{}s", capitalised(role)),
        },
    );
    let addressing = Addressing::one_off(&state.config, &state.signer, 0, &list);
    let mut attributes = Attributes::new();
    attributes.set(ROLE.into(), role.into());
    let recipient = addressing.recipient("preview@example.org", None, &attributes, &list);
    prepared.render(&recipient).map_err(invalid)
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

async fn edit_form(
    state: &Shared,
    who: &SignedIn,
    status: StatusCode,
    id: i64,
    text: Option<&str>,
    error: Option<&str>,
) -> Result<Response, AdminPageError> {
    let report = state.reports.report(&ReportRef::Id(id)).await?;
    let member = rendered(state, &report, ROLES[0])?;
    let text = text.map_or_else(|| import::markdown_file(&report), str::to_owned);
    let mut response = render(
        state,
        Some(who),
        status,
        "report_edit",
        json!({
            "report": {"id": report.id, "title": report.title, "slug": report.slug},
            "text": text,
            "subject": member.subject,
            "plain": member.text,
            "roles": ROLES,
            "error": error,
        }),
    );
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP_WITH_PREVIEWS),
    );
    Ok(response)
}

pub(super) async fn edit_page(
    State(state): State<Shared>,
    who: SignedIn,
    Path(id): Path<i64>,
) -> Result<Response, AdminPageError> {
    edit_form(&state, &who, StatusCode::OK, id, None, None).await
}

#[derive(serde::Deserialize)]
pub(super) struct Edited {
    #[serde(default)]
    text: String,
}

/// Stores the edited Markdown (the old text is kept as an earlier version)
/// and shows the preview of the new one.
pub(super) async fn save(
    State(state): State<Shared>,
    who: SignedIn,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<Edited>,
) -> Result<Response, AdminPageError> {
    let refuse = |error: String| {
        let (state, who, text) = (&state, &who, &form.text);
        async move {
            edit_form(
                state,
                who,
                StatusCode::UNPROCESSABLE_ENTITY,
                id,
                Some(text),
                Some(&error),
            )
            .await
        }
    };
    let draft = match import::parse_markdown(form.text.as_bytes()) {
        Ok(draft) => draft,
        Err(e) => return refuse(format!("That text cannot be stored: {e}.")).await,
    };
    match state
        .reports
        .revise_report(&ReportRef::Id(id), &draft, false)
        .await
    {
        Ok(Revised::Updated(report)) => {
            let detail = format!("{} {}", report.id, report.title);
            admin::audit(&*state.admin, &who.actor(), "report.edit", &detail).await?;
        }
        Ok(Revised::Unchanged(_)) => {}
        Err(e) if e.is_bad_input() => return refuse(e.to_string()).await,
        Err(e) => return Err(e.into()),
    }
    Ok(Redirect::to(&format!("/admin/reports/{id}")).into_response())
}

/// The email's HTML, for a preview frame.
pub(super) async fn preview(
    State(state): State<Shared>,
    _who: SignedIn,
    Path((id, role)): Path<(i64, String)>,
) -> Result<Response, AdminPageError> {
    let role = ROLES
        .into_iter()
        .find(|r| *r == role)
        .ok_or(AdminPageError::NotFound)?;
    let report = state.reports.report(&ReportRef::Id(id)).await?;
    let email = rendered(&state, &report, role)?;
    let mut response = Html(email.html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP_PREVIEW),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Deletes a report no campaign has sent.
pub(super) async fn delete(
    State(state): State<Shared>,
    who: SignedIn,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<serde_json::Value>,
) -> Result<Response, AdminPageError> {
    let report = state
        .reports
        .delete_report(&ReportRef::Id(id), false)
        .await?;
    let detail = format!("{} {}", report.id, report.title);
    admin::audit(&*state.admin, &who.actor(), "report.delete", &detail).await?;
    Ok(Redirect::to("/admin/reports").into_response())
}
