//! One's own account: the password, and two-factor sign-in.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::pages::{AdminPageError, render};
use super::session::{CsrfForm, SignedIn, hash_password, is_password_of, session_of};
use crate::admin::{self, REQUIRE_TOTP, password, totp};
use crate::web::Shared;

/// The account page, with `message` after a change or `error` after a refusal.
async fn page(
    state: &Shared,
    who: &SignedIn,
    status: StatusCode,
    message: Option<&str>,
    error: Option<&str>,
) -> Result<Response, AdminPageError> {
    let required = state.admin.setting(REQUIRE_TOTP).await?.as_deref() == Some("true");
    let secret = totp::new_secret();
    let setup_url = totp::setup_url(&secret, &who.account.email);
    Ok(render(
        state,
        Some(who),
        status,
        "account",
        json!({
            "account": who.account,
            "totp_required": required,
            "new_secret": secret,
            "setup_url": setup_url,
            "min_chars": password::MIN_CHARS,
            "message": message,
            "error": error,
        }),
    ))
}

pub(super) async fn show(
    State(state): State<Shared>,
    who: SignedIn,
) -> Result<Response, AdminPageError> {
    page(&state, &who, StatusCode::OK, None, None).await
}

#[derive(serde::Deserialize)]
pub(super) struct PasswordChange {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    again: String,
}

/// Changes the password; every other session of the account ends.
pub(super) async fn change_password(
    State(state): State<Shared>,
    who: SignedIn,
    CsrfForm(form): CsrfForm<PasswordChange>,
) -> Result<Response, AdminPageError> {
    if !is_password_of(&state, &who, form.current).await? {
        let error = "Your current password is not right.";
        return page(
            &state,
            &who,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(error),
        )
        .await;
    }
    if let Err(e) = password::check_new(&form.password, &form.again) {
        let error = e.to_string();
        return page(
            &state,
            &who,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(&error),
        )
        .await;
    }
    let hash = hash_password(form.password).await?;
    state
        .admin
        .set_password(who.account.id, &hash, session_of(&who))
        .await?;
    admin::audit(&*state.admin, &who.actor(), "password.change", "").await?;
    let done = "Your password is changed; you were signed out everywhere else.";
    page(&state, &who, StatusCode::OK, Some(done), None).await
}

#[derive(serde::Deserialize)]
pub(super) struct TotpOn {
    #[serde(default)]
    secret: String,
    #[serde(default)]
    code: String,
}

/// Turns two-factor on, once a code from the app shows it was set up right.
pub(super) async fn totp_on(
    State(state): State<Shared>,
    who: SignedIn,
    CsrfForm(form): CsrfForm<TotpOn>,
) -> Result<Response, AdminPageError> {
    if !totp::check(&form.secret, &form.code) {
        let error = "That code is not right: check the key in your app, and try the next code.";
        return page(
            &state,
            &who,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(error),
        )
        .await;
    }
    state
        .admin
        .set_totp(who.account.id, Some(&form.secret))
        .await?;
    admin::audit(&*state.admin, &who.actor(), "totp.on", "").await?;
    let mut who = who;
    who.account.totp = true;
    let done = "Two-factor sign-in is on: you will be asked for a code each time.";
    page(&state, &who, StatusCode::OK, Some(done), None).await
}

#[derive(serde::Deserialize)]
pub(super) struct TotpOff {
    #[serde(default)]
    password: String,
}

/// Turns two-factor off, with the password, unless an owner requires it.
pub(super) async fn totp_off(
    State(state): State<Shared>,
    who: SignedIn,
    CsrfForm(form): CsrfForm<TotpOff>,
) -> Result<Response, AdminPageError> {
    if state.admin.setting(REQUIRE_TOTP).await?.as_deref() == Some("true") {
        return Err(AdminPageError::Invalid(
            "Two-factor sign-in is required for every account.".into(),
        ));
    }
    if !is_password_of(&state, &who, form.password).await? {
        let error = "Your password is not right.";
        return page(
            &state,
            &who,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(error),
        )
        .await;
    }
    state.admin.set_totp(who.account.id, None).await?;
    admin::audit(&*state.admin, &who.actor(), "totp.off", "").await?;
    let mut who = who;
    who.account.totp = false;
    page(
        &state,
        &who,
        StatusCode::OK,
        Some("Two-factor sign-in is off."),
        None,
    )
    .await
}
