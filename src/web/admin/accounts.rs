//! The owner's pages: the accounts, the settings and the audit log.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use super::pages::{AdminPageError, render};
use super::session::{CsrfForm, Owner};
use crate::admin::{self, REQUIRE_TOTP, Role};
use crate::web::Shared;

/// Lines of the audit log per page.
const AUDIT_PAGE: i64 = 50;

async fn page(
    state: &Shared,
    Owner(who): &Owner,
    status: StatusCode,
    new_link: Option<(String, String)>,
) -> Result<Response, AdminPageError> {
    let zone = state.config.timezone;
    let accounts: Vec<_> = state
        .admin
        .accounts()
        .await?
        .into_iter()
        .map(|a| {
            let signed_in = a
                .signed_in_at
                .map(|at| at.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string());
            json!({
                "id": a.id,
                "email": a.email,
                "role": a.role,
                "has_password": a.has_password,
                "totp": a.totp,
                "signed_in": signed_in,
            })
        })
        .collect();
    let required = state.admin.setting(REQUIRE_TOTP).await?.as_deref() == Some("true");
    Ok(render(
        state,
        Some(who),
        status,
        "accounts",
        json!({
            "accounts": accounts,
            "roles": Role::ALL,
            "totp_required": required,
            "new_link": new_link.map(|(email, url)| json!({"email": email, "url": url})),
            "hours": admin::SETUP_LINK_HOURS,
        }),
    ))
}

pub(super) async fn list(
    State(state): State<Shared>,
    owner: Owner,
) -> Result<Response, AdminPageError> {
    page(&state, &owner, StatusCode::OK, None).await
}

#[derive(serde::Deserialize)]
pub(super) struct NewAccount {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// Adds an account and shows its one-time link.
pub(super) async fn add(
    State(state): State<Shared>,
    owner: Owner,
    CsrfForm(form): CsrfForm<NewAccount>,
) -> Result<Response, AdminPageError> {
    let role: Role = form
        .role
        .parse()
        .map_err(|_| AdminPageError::Invalid("Choose owner or editor.".into()))?;
    let (account, token) =
        admin::add_account(&*state.admin, &form.email, role, &owner.0.actor()).await?;
    let url = state
        .config
        .admin_link(&format!("/admin/set-password/{token}"));
    page(&state, &owner, StatusCode::OK, Some((account.email, url))).await
}

/// Account `id`'s address.
async fn email_of(state: &Shared, id: i64) -> Result<String, AdminPageError> {
    Ok(state.admin.credentials_by_id(id).await?.account.email)
}

/// Takes away an account's password and two-factor, and shows a new link.
pub(super) async fn reset(
    State(state): State<Shared>,
    owner: Owner,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<serde_json::Value>,
) -> Result<Response, AdminPageError> {
    let email = email_of(&state, id).await?;
    let (account, token) = admin::reset_account(&*state.admin, &email, &owner.0.actor()).await?;
    let url = state
        .config
        .admin_link(&format!("/admin/set-password/{token}"));
    page(&state, &owner, StatusCode::OK, Some((account.email, url))).await
}

/// Removes an account; one's own is refused, as is the last owner.
pub(super) async fn remove(
    State(state): State<Shared>,
    owner: Owner,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<serde_json::Value>,
) -> Result<Response, AdminPageError> {
    if id == owner.0.account.id {
        return Err(AdminPageError::Invalid(
            "You cannot remove your own account; ask another owner.".into(),
        ));
    }
    let email = email_of(&state, id).await?;
    admin::remove_account(&*state.admin, &email, &owner.0.actor()).await?;
    Ok(Redirect::to("/admin/accounts").into_response())
}

#[derive(serde::Deserialize)]
pub(super) struct Settings {
    #[serde(default)]
    require_totp: Option<String>,
}

pub(super) async fn settings(
    State(state): State<Shared>,
    Owner(who): Owner,
    CsrfForm(form): CsrfForm<Settings>,
) -> Result<Response, AdminPageError> {
    let require = form.require_totp.is_some();
    if require && !who.account.totp {
        return Err(AdminPageError::Invalid(
            "Turn on two-factor sign-in for your own account first, on the account page.".into(),
        ));
    }
    state
        .admin
        .set_setting(REQUIRE_TOTP, if require { "true" } else { "false" })
        .await?;
    admin::audit(
        &*state.admin,
        &who.actor(),
        "settings.change",
        &format!("require two-factor: {require}"),
    )
    .await?;
    Ok(Redirect::to("/admin/accounts").into_response())
}

#[derive(serde::Deserialize)]
pub(super) struct AuditQuery {
    before: Option<i64>,
}

/// The audit log, newest first, a page at a time (keyset: older than a line).
pub(super) async fn audit_log(
    State(state): State<Shared>,
    Owner(who): Owner,
    Query(query): Query<AuditQuery>,
) -> Result<Response, AdminPageError> {
    let entries = state.admin.audit_log(query.before, AUDIT_PAGE + 1).await?;
    let more = entries.len() as i64 > AUDIT_PAGE;
    let entries: Vec<_> = entries.into_iter().take(AUDIT_PAGE as usize).collect();
    let older = more.then(|| entries.last().map(|e| e.id)).flatten();
    let zone = state.config.timezone;
    let rows: Vec<_> = entries
        .iter()
        .map(|e| {
            json!({
                "at": e.at.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S").to_string(),
                "actor": e.actor,
                "action": e.action,
                "detail": e.detail,
                "ip": e.ip,
            })
        })
        .collect();
    Ok(render(
        &state,
        Some(&who),
        StatusCode::OK,
        "audit",
        json!({"entries": rows, "older": older, "newest": query.before.is_some()}),
    ))
}
