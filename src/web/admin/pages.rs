//! Rendering the admin pages from the `admin/` templates, and what a
//! refused or failed request becomes.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::json;

use super::session::SignedIn;
use crate::error::StoreError;
use crate::web::Shared;

/// The admin's stylesheet, built in.
const STYLESHEET: &str = include_str!("../../../templates/admin/admin.css");

pub(super) async fn stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=3600"),
            ),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// The lists, as the forms offer them: slug and name.
pub(super) async fn list_choices(state: &Shared) -> Result<Vec<serde_json::Value>, AdminPageError> {
    Ok(state
        .lists
        .list_options()
        .await?
        .into_iter()
        .map(|l| json!({"slug": l.slug.as_str(), "name": l.name}))
        .collect())
}

/// `body` as a CSV file to download under the name `disposition` gives
/// (`attachment; filename="…"`), never cached.
pub(super) fn csv_download(body: Body, disposition: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// Renders `admin/{name}.html.tera` with `values` (a JSON object), for
/// `who` when someone is signed in: the layout then shows the menu and the
/// sign-out button, with the session's CSRF token.
pub(super) fn render(
    state: &Shared,
    who: Option<&SignedIn>,
    status: StatusCode,
    name: &str,
    values: serde_json::Value,
) -> Response {
    let mut ctx = tera::Context::new();
    ctx.insert("site_name", &state.site_name);
    if let Some(who) = who {
        ctx.insert(
            "me",
            &json!({
                "email": who.account.email,
                "role": who.account.role,
                "owner": who.account.is_owner(),
            }),
        );
        ctx.insert("csrf", &who.csrf);
    }
    if let serde_json::Value::Object(map) = values {
        for (k, v) in map {
            ctx.insert(k, &v);
        }
    }
    let mut response = match state
        .templates
        .render(&format!("admin/{name}.html.tera"), &ctx)
    {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, page = name, "an admin template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!DOCTYPE html><title>Error</title><h1>Something went wrong</h1>"),
            )
                .into_response()
        }
    };
    // Admin pages show data that must not outlive the session in a cache.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Why an admin request was refused or failed.
#[derive(Debug)]
pub(crate) enum AdminPageError {
    /// Nobody is signed in, or the session ended: to the sign-in page.
    SignedOut,
    /// Two-factor is required and this account has not set it up yet.
    TotpFirst,
    /// An editor asked for an owner's page.
    OwnersOnly,
    /// The form's CSRF token is missing or not this session's.
    FormExpired,
    /// The input cannot be used; the sentence says why.
    Invalid(String),
    NotFound,
    /// Too many failed sign-ins: wait this long.
    Wait(Duration),
    Internal(anyhow::Error),
}

impl From<StoreError> for AdminPageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => AdminPageError::NotFound,
            StoreError::Conflict(m) | StoreError::Refused(m) => AdminPageError::Invalid(m),
            other => AdminPageError::Internal(other.into()),
        }
    }
}

impl From<crate::admin::AdminError> for AdminPageError {
    fn from(e: crate::admin::AdminError) -> Self {
        match e {
            crate::admin::AdminError::Invalid(m) => AdminPageError::Invalid(m),
            crate::admin::AdminError::Store(e) => e.into(),
            other => AdminPageError::Internal(other.into()),
        }
    }
}

/// What an error response carries to [`admin_errors`], which renders it.
#[derive(Debug, Clone)]
struct ErrorNote {
    kind: &'static str,
    message: Option<String>,
    wait: Option<u64>,
}

impl IntoResponse for AdminPageError {
    fn into_response(self) -> Response {
        let (status, kind, message, wait) = match self {
            AdminPageError::SignedOut => return Redirect::to("/admin/login").into_response(),
            AdminPageError::TotpFirst => return Redirect::to("/admin/account").into_response(),
            AdminPageError::OwnersOnly => (StatusCode::FORBIDDEN, "owners-only", None, None),
            AdminPageError::FormExpired => (StatusCode::FORBIDDEN, "form-expired", None, None),
            AdminPageError::Invalid(m) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid", Some(m), None)
            }
            AdminPageError::NotFound => (StatusCode::NOT_FOUND, "not-found", None, None),
            AdminPageError::Wait(wait) => (
                StatusCode::TOO_MANY_REQUESTS,
                "wait",
                None,
                Some(wait.as_secs_f64().ceil().max(1.0) as u64),
            ),
            AdminPageError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "an admin request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", None, None)
            }
        };
        let mut response = status.into_response();
        if let Some(wait) = wait {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        }
        response.extensions_mut().insert(ErrorNote {
            kind,
            message,
            wait,
        });
        response
    }
}

/// Renders the admin's error page for every [`AdminPageError`], keeping
/// its status and headers.
pub(super) async fn admin_errors(
    State(state): State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let Some(note) = response.extensions().get::<ErrorNote>().cloned() else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    let page = render(
        &state,
        None,
        parts.status,
        "error",
        json!({"kind": note.kind, "message": note.message, "seconds": note.wait}),
    );
    let (page_parts, body) = page.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for name in [header::CONTENT_TYPE, header::CACHE_CONTROL] {
        if let Some(value) = page_parts.headers.get(&name) {
            parts.headers.insert(name, value.clone());
        }
    }
    Response::from_parts(parts, body)
}
