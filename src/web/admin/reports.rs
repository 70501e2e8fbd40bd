//! Reports: the list, a new one from pasted text (Markdown, plain text or
//! HTML), an uploaded file or a page's or feed's URL, through the same
//! importers as `necmail report import` (an excerpt's full post fetched and
//! the images copied, with a warning for what could not be), editing its
//! Markdown with a preview on each save (images it adds copied as
//! `necmail report edit` copies them), and deleting it. Editors and owners
//! both may.
//!
//! The preview is the email itself, as a member and as a councillor gets
//! it, each in a sandboxed iframe (no scripts, no forms, an origin of its
//! own), beside its subject and plain-text part.

use std::sync::Arc;

use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::json;

use super::import::{Refusal, receive_small};
use super::pages::{AdminPageError, render};
use super::session::{CsrfForm, SignedIn};
use crate::admin;
use crate::delivery::{Addressing, ListRef};
use crate::render::{ListInfo, Prepared, Rendered, Site};
use crate::reports::feeds::{Fetcher, parse_url};
use crate::reports::import::{self, Format, MAX_REPORT_BYTES};
use crate::reports::intake::{self, IntakeError};
use crate::reports::{
    ImageCopier, ImportOptions, Report, ReportDraft, ReportRef, ReportSource, Revised, SamePost,
    Stored,
};
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

/// What the new-report page's forms held when one was refused.
#[derive(Default)]
struct Typed<'a> {
    text: &'a str,
    url: &'a str,
}

fn new_form(
    state: &Shared,
    who: &SignedIn,
    status: StatusCode,
    typed: &Typed<'_>,
    error: Option<&str>,
) -> Response {
    render(
        state,
        Some(who),
        status,
        "report_new",
        json!({
            "text": typed.text,
            "url": typed.url,
            "error": error,
            "max_kb": report_limit(state) / 1024,
        }),
    )
}

/// The largest report file taken: the importer's limit, or the uploads'
/// when that is smaller.
fn report_limit(state: &Shared) -> usize {
    MAX_REPORT_BYTES.min(state.config.admin_upload_max_bytes)
}

pub(super) async fn new_page(State(state): State<Shared>, who: SignedIn) -> Response {
    new_form(&state, &who, StatusCode::OK, &Typed::default(), None)
}

/// The format a form names, or `None` to guess it.
fn format_named(name: &str) -> Option<Format> {
    match name {
        "md" => Some(Format::Markdown),
        "text" => Some(Format::Text),
        "html" => Some(Format::Html),
        _ => None,
    }
}

/// What an input that gave no report is answered with: 422 for the
/// input's fault, 502 for the network's or the other server's.
fn intake_status(e: &IntakeError) -> StatusCode {
    if e.is_bad_input() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::BAD_GATEWAY
    }
}

/// "Cannot import …: …. Nothing was stored."
fn intake_message(e: &IntakeError) -> String {
    format!("{}. Nothing was stored.", capitalised(&e.to_string()))
}

/// Stores the drafts of one input, after their full posts and images, as
/// `necmail report import` does, writing each to the audit log with
/// `origin`; then shows the one report (with any warnings), or the list.
async fn store_drafts(
    state: &Shared,
    who: &SignedIn,
    drafts: Vec<ReportDraft>,
    same_post: SamePost,
    origin: &str,
) -> Result<Result<Response, (StatusCode, String)>, AdminPageError> {
    let fetcher =
        Fetcher::from_config(&state.config).map_err(|e| AdminPageError::Internal(e.into()))?;
    let (drafts, warnings) =
        intake::complete(&*state.reports, &fetcher, &state.config.public_url, drafts).await?;
    let options = ImportOptions {
        slug: None,
        same_post,
    };
    let mut last = None;
    for draft in &drafts {
        let (verb, report) = match state.reports.insert_report(draft, &options).await {
            Ok(Stored::New(r)) => ("report.import", r),
            Ok(Stored::Updated(r)) => ("report.update", r),
            Ok(Stored::Duplicate(r)) => ("report.duplicate", r),
            Err(e) if e.is_bad_input() => {
                return Ok(Err((StatusCode::UNPROCESSABLE_ENTITY, e.to_string())));
            }
            Err(e) => return Err(e.into()),
        };
        let detail = format!("{} {} from {origin}", report.id, report.title);
        admin::audit(&*state.admin, &who.actor(), verb, &detail).await?;
        last = Some(report.id);
    }
    Ok(Ok(match (drafts.len(), last) {
        (1, Some(id)) if !warnings.is_empty() => {
            edit_form(state, who, StatusCode::OK, id, None, None, &warnings).await?
        }
        (1, Some(id)) => Redirect::to(&format!("/admin/reports/{id}")).into_response(),
        _ => Redirect::to("/admin/reports").into_response(),
    }))
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
    let typed = Typed {
        text: &form.text,
        ..Typed::default()
    };
    let refuse = |status, error: String| new_form(&state, &who, status, &typed, Some(&error));
    if form.text.trim().is_empty() {
        return Ok(refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Paste the report's text first.".into(),
        ));
    }
    let format = format_named(&form.format);
    let read = intake::read_content(
        "the pasted text",
        None,
        form.text.as_bytes(),
        format,
        &ReportSource::Paste,
    );
    let drafts = match read {
        Ok(drafts) => drafts,
        Err(e) => return Ok(refuse(intake_status(&e), intake_message(&e))),
    };
    let stored = store_drafts(&state, &who, drafts, SamePost::Keep, "pasted text").await?;
    Ok(stored.unwrap_or_else(|(status, error)| refuse(status, error)))
}

/// Imports an uploaded Markdown, text or HTML file, up to the importer's
/// limit and NECMAIL_ADMIN_UPLOAD_MAX_BYTES, as `necmail report import
/// FILE` does.
pub(super) async fn upload(
    State(state): State<Shared>,
    who: SignedIn,
    mut multipart: Multipart,
) -> Result<Response, AdminPageError> {
    let limit = report_limit(&state);
    let refuse =
        |status, error: String| new_form(&state, &who, status, &Typed::default(), Some(&error));
    let upload = match receive_small(&mut multipart, &who, limit).await? {
        Ok(upload) => upload,
        Err(Refusal::TooBig) => {
            let message = format!(
                "That file is larger than {} KB, the most a report may be. Nothing was stored.",
                limit / 1024
            );
            return Ok(refuse(StatusCode::PAYLOAD_TOO_LARGE, message));
        }
        Err(Refusal::Bad(message)) => return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, message)),
    };
    let name = upload.file_name.as_deref().unwrap_or("the uploaded file");
    if upload.bytes.iter().all(u8::is_ascii_whitespace) {
        let message = format!("{name} is empty. Nothing was stored.");
        return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, message));
    }
    let format = format_named(upload.field("format").unwrap_or_default());
    let source = ReportSource::File {
        path: name.to_owned(),
    };
    let read = intake::read_content(
        name,
        upload.file_name.as_deref(),
        &upload.bytes,
        format,
        &source,
    );
    let drafts = match read {
        Ok(drafts) => drafts,
        Err(e) => return Ok(refuse(intake_status(&e), intake_message(&e))),
    };
    let same_post = SamePost::Update { after_send: false };
    let origin = format!("the file {name}");
    let stored = store_drafts(&state, &who, drafts, same_post, &origin).await?;
    Ok(stored.unwrap_or_else(|(status, error)| refuse(status, error)))
}

#[derive(serde::Deserialize)]
pub(super) struct FromUrl {
    #[serde(default)]
    url: String,
    #[serde(default)]
    format: String,
}

/// Imports the page at a URL, or every item of a feed, through the
/// fetcher and its address policy, as `necmail report import URL` does.
pub(super) async fn fetch(
    State(state): State<Shared>,
    who: SignedIn,
    CsrfForm(form): CsrfForm<FromUrl>,
) -> Result<Response, AdminPageError> {
    let typed = Typed {
        url: &form.url,
        ..Typed::default()
    };
    let refuse = |status, error: String| new_form(&state, &who, status, &typed, Some(&error));
    let url = match parse_url(&form.url) {
        Ok(url) => url,
        Err(e) => {
            let message = format!("{}. Nothing was stored.", capitalised(&e.to_string()));
            return Ok(refuse(StatusCode::UNPROCESSABLE_ENTITY, message));
        }
    };
    let fetcher =
        Fetcher::from_config(&state.config).map_err(|e| AdminPageError::Internal(e.into()))?;
    let drafts = match intake::read_url(&fetcher, &url, format_named(&form.format)).await {
        Ok(drafts) => drafts,
        Err(e) => return Ok(refuse(intake_status(&e), intake_message(&e))),
    };
    let same_post = SamePost::Update { after_send: false };
    let stored = store_drafts(&state, &who, drafts, same_post, url.as_str()).await?;
    Ok(stored.unwrap_or_else(|(status, error)| refuse(status, error)))
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
    warnings: &[String],
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
            "warnings": warnings,
            "excerpt": report.excerpt,
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
    edit_form(&state, &who, StatusCode::OK, id, None, None, &[]).await
}

#[derive(serde::Deserialize)]
pub(super) struct Edited {
    #[serde(default)]
    text: String,
}

/// Stores the edited Markdown (the old text is kept as an earlier version),
/// its images copied into the media store as `necmail report edit` copies
/// them, and shows the preview of the new one, below a warning for each
/// image left out.
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
                &[],
            )
            .await
        }
    };
    let draft = match import::parse_markdown(form.text.as_bytes()) {
        Ok(draft) => draft,
        Err(e) => return refuse(format!("That text cannot be stored: {e}.")).await,
    };
    let images =
        ImageCopier::from_config(&state.config).map_err(|e| AdminPageError::Internal(e.into()))?;
    let (draft, warnings) = intake::with_images(&images, &*state.reports, draft).await?;
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
    if warnings.is_empty() {
        Ok(Redirect::to(&format!("/admin/reports/{id}")).into_response())
    } else {
        edit_form(&state, &who, StatusCode::OK, id, None, None, &warnings).await
    }
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
