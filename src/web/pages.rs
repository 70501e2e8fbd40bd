//! Rendering pages from the `pages/` templates, and the friendly error
//! pages that every failure becomes.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use super::Shared;
use crate::error::StoreError;

/// What every page template gets, besides its own values.
fn base_context(state: &Shared) -> tera::Context {
    let mut ctx = tera::Context::new();
    ctx.insert("site_name", &state.site_name);
    ctx.insert("committee", &state.config.committee);
    ctx
}

/// Renders the page template `pages/{name}.html.tera` with `values` (a JSON
/// object) under `status`.
pub(crate) fn page(
    state: &Shared,
    status: StatusCode,
    name: &str,
    values: serde_json::Value,
) -> Response {
    let mut ctx = base_context(state);
    if let serde_json::Value::Object(map) = values {
        for (k, v) in map {
            ctx.insert(k, &v);
        }
    }
    match state
        .templates
        .render(&format!("pages/{name}.html.tera"), &ctx)
    {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, page = name, "a page template failed");
            last_resort()
        }
    }
}

/// The page shown when even the error template fails.
fn last_resort() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sorry</title></head>\
             <body><h1>Sorry, something went wrong</h1><p>Please try again later.</p></body></html>",
        ),
    )
        .into_response()
}

/// Why a request failed, as the person who made it is told.
#[derive(Debug)]
pub(crate) enum PageError {
    /// The input cannot be used; the sentence says why.
    Invalid(String),
    /// The form's CSRF token is missing, forged or too old.
    FormExpired,
    /// A link token is damaged or not one of ours.
    BrokenLink,
    /// A link that worked once and no longer does: used, superseded,
    /// expired, or its subscriber erased.
    SpentLink,
    /// A preferences link past its lifetime: the page offers a fresh one.
    ExpiredLink(Renew),
    NotFound,
    /// Over the per-address limit of subscribe requests.
    TooMany,
    /// Our fault: logged in full, shown as a generic sentence.
    Internal(anyhow::Error),
}

/// The kind of an error page, carried from a handler to [`friendly_errors`]
/// in the response's extensions.
#[derive(Debug, Clone)]
struct ErrorNote {
    kind: &'static str,
    message: Option<String>,
    renew: Option<Renew>,
}

/// The form on an expired link's page that asks for a fresh link by email.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Renew {
    pub action: String,
    pub csrf: String,
    /// How long links work, for the page's explanation.
    pub days: u64,
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            PageError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            PageError::FormExpired => StatusCode::FORBIDDEN,
            PageError::BrokenLink => StatusCode::BAD_REQUEST,
            PageError::SpentLink | PageError::ExpiredLink(_) => StatusCode::GONE,
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::TooMany => StatusCode::TOO_MANY_REQUESTS,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            PageError::Invalid(_) => "invalid",
            PageError::FormExpired => "form-expired",
            PageError::BrokenLink => "broken-link",
            PageError::SpentLink => "spent-link",
            PageError::ExpiredLink(_) => "expired-link",
            PageError::NotFound => "not-found",
            PageError::TooMany => "rate-limited",
            PageError::Internal(_) => "internal",
        }
    }

    /// The error as the JSON answer of an embedded subscribe form.
    pub(crate) fn json(self) -> Response {
        let status = self.status();
        let error = match &self {
            PageError::Invalid(m) => m.clone(),
            PageError::TooMany => "Too many requests from your address; try again later.".into(),
            PageError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "subscribe failed");
                "Something went wrong on our side; please try again later.".into()
            }
            _ => "The request was refused.".into(),
        };
        let mut response =
            (status, axum::Json(json!({"ok": false, "error": error}))).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("3600"));
        }
        response
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => PageError::SpentLink,
            StoreError::Conflict(m) | StoreError::Refused(m) => {
                tracing::info!(reason = %m, "a request was refused by the store");
                PageError::Invalid("That change cannot be made.".into())
            }
            other => PageError::Internal(other.into()),
        }
    }
}

impl From<anyhow::Error> for PageError {
    fn from(e: anyhow::Error) -> Self {
        PageError::Internal(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.status();
        let kind = self.kind();
        let (message, renew) = match self {
            PageError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                (None, None)
            }
            PageError::Invalid(m) => (Some(m), None),
            PageError::ExpiredLink(renew) => (None, Some(renew)),
            _ => (None, None),
        };
        let mut response = status.into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("3600"));
        }
        response.extensions_mut().insert(ErrorNote {
            kind,
            message,
            renew,
        });
        response
    }
}

/// Turns every error response that is not already a page or JSON (a
/// [`PageError`], the router's 404 and 405, the body limit's 413) into the
/// friendly error page, keeping its status and headers.
pub(crate) async fn friendly_errors(
    State(state): State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let typed = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html") || v.starts_with("application/json"));
    if typed {
        return response;
    }
    let note = response.extensions().get::<ErrorNote>().cloned();
    let kind = note.as_ref().map_or_else(
        || match status {
            StatusCode::NOT_FOUND => "not-found",
            StatusCode::METHOD_NOT_ALLOWED => "method",
            StatusCode::PAYLOAD_TOO_LARGE => "too-large",
            StatusCode::TOO_MANY_REQUESTS => "rate-limited",
            s if s.is_server_error() => "internal",
            _ => "bad-request",
        },
        |n| n.kind,
    );
    let (message, renew) = note.map_or((None, None), |n| (n.message, n.renew));
    let (mut parts, _) = response.into_parts();
    let page = page(
        &state,
        status,
        "error",
        json!({"status": status.as_u16(), "kind": kind, "message": message, "renew": renew}),
    );
    let (page_parts, body) = page.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        page_parts
            .headers
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("text/html; charset=utf-8")),
    );
    Response::from_parts(parts, body)
}
