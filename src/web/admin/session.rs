//! Signing in and out, the one-time link that sets a password, and the
//! extractors every other admin page uses: [`SignedIn`], [`Owner`] and
//! [`CsrfForm`].
//!
//! The session cookie holds a 256-bit random id; the database keeps only
//! its SHA-256. It is `HttpOnly`, `SameSite=Strict`, limited to `/admin`,
//! and `Secure` when the admin's URL is https. Signing in always begins a
//! new session (an id planted before sign-in is worth nothing after it).
//! Each session has a CSRF token of its own, which every form carries.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::pages::{AdminPageError, render};
use crate::admin::{
    self, Account, Actor, NewSession, REQUIRE_TOTP, password, session_is_live, token_hash,
};
use crate::web::Shared;
use crate::web::protect::{client_ip, csrf_ok, csrf_token, scope_of};

/// The session cookie's name.
const COOKIE: &str = "necmail_admin";
/// A session's last use is written at most this often.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::minutes(1);
/// The CSRF scope of the sign-in form, which has no session yet.
const LOGIN_SCOPE: &str = "admin-login";

/// Someone signed in, with a live session.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    pub account: Account,
    /// The session's CSRF token, for the page's forms.
    pub csrf: String,
    id_hash: String,
    pub ip: IpAddr,
}

impl SignedIn {
    /// The audit log's name for this person and where they are.
    pub fn actor(&self) -> Actor {
        Actor {
            name: self.account.email.clone(),
            ip: Some(self.ip),
        }
    }
}

/// The client's address, from the connection and a trusted proxy's header.
fn ip_of(parts: &Parts, state: &Shared) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
    client_ip(peer, &parts.headers, &state.config.trusted_proxies)
}

/// The session id the request's cookie carries.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty() && v.len() <= 64)
}

/// The Set-Cookie of a session id, or of its removal when `id` is empty.
fn cookie(state: &Shared, id: &str) -> HeaderValue {
    let secure = if state.config.admin_base().scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    let age = if id.is_empty() {
        0
    } else {
        admin::SESSION_LIFETIME.num_seconds()
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/admin; Max-Age={age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .expect("a cookie of URL-safe characters")
}

impl FromRequestParts<Shared> for SignedIn {
    type Rejection = AdminPageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        if let Some(known) = parts.extensions.get::<SignedIn>() {
            return Ok(known.clone());
        }
        let id = session_cookie(&parts.headers).ok_or(AdminPageError::SignedOut)?;
        let id_hash = token_hash(id);
        let session = state
            .admin
            .session(&id_hash)
            .await?
            .ok_or(AdminPageError::SignedOut)?;
        let now = Utc::now();
        if !session_is_live(session.created_at, session.last_seen_at, now) {
            state.admin.end_session(&id_hash).await?;
            return Err(AdminPageError::SignedOut);
        }
        if now - session.last_seen_at >= TOUCH_EVERY {
            state.admin.touch_session(&id_hash, now).await?;
        }
        let path = parts.uri.path();
        let setting_up = path.starts_with("/admin/account") || path.starts_with("/admin/logout");
        if !session.account.totp
            && !setting_up
            && state.admin.setting(REQUIRE_TOTP).await?.as_deref() == Some("true")
        {
            return Err(AdminPageError::TotpFirst);
        }
        let who = SignedIn {
            account: session.account,
            csrf: session.csrf,
            id_hash,
            ip: ip_of(parts, state),
        };
        parts.extensions.insert(who.clone());
        Ok(who)
    }
}

/// An owner, signed in; an editor is refused with 403.
#[derive(Debug, Clone)]
pub(crate) struct Owner(pub SignedIn);

impl FromRequestParts<Shared> for Owner {
    type Rejection = AdminPageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let who = SignedIn::from_request_parts(parts, state).await?;
        if who.account.is_owner() {
            Ok(Owner(who))
        } else {
            Err(AdminPageError::OwnersOnly)
        }
    }
}

/// A form posted by someone signed in, with their session's CSRF token in
/// its `csrf` field; its other fields (each a string) make a `T`. A missing
/// or foreign token is refused with 403 before anything is read further.
pub(crate) struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Shared> for CsrfForm<T> {
    type Rejection = AdminPageError;

    async fn from_request(request: Request, state: &Shared) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let who = SignedIn::from_request_parts(&mut parts, state).await?;
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(|_| AdminPageError::Invalid("The form could not be read.".into()))?;
        let fields = form_fields(&body);
        let token = fields
            .get("csrf")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        if !constant_time_eq(token.as_bytes(), who.csrf.as_bytes()) {
            tracing::info!(
                account = %who.account.email,
                "an admin form without its session's CSRF token was refused"
            );
            return Err(AdminPageError::FormExpired);
        }
        serde_json::from_value(serde_json::Value::Object(fields))
            .map(CsrfForm)
            .map_err(|_| AdminPageError::Invalid("The form is incomplete.".into()))
    }
}

/// A form-urlencoded body's fields as a JSON object of strings; of a
/// repeated name, the last value.
fn form_fields(body: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
        .collect()
}

/// Whether `token` is `who`'s session's CSRF token: for a form that
/// [`CsrfForm`] cannot read, such as an upload.
pub(super) fn is_csrf_of(who: &SignedIn, token: &str) -> bool {
    constant_time_eq(token.as_bytes(), who.csrf.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The sign-in page, with a message and the address typed when it was
/// refused.
fn login_form(state: &Shared, status: StatusCode, error: Option<&str>, email: &str) -> Response {
    render(
        state,
        None,
        status,
        "login",
        json!({
            "form_csrf": csrf_token(&state.signer, scope_of(LOGIN_SCOPE)),
            "error": error,
            "email": email,
        }),
    )
}

pub(super) async fn login_page(State(state): State<Shared>) -> Response {
    login_form(&state, StatusCode::OK, None, "")
}

#[derive(serde::Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

/// Signs in: the same answer, in the same time, for an unknown address, a
/// wrong password and a wrong code; growing delays after failures.
#[tracing::instrument(name = "admin_login", skip_all)]
pub(super) async fn login(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Result<Response, AdminPageError> {
    if !csrf_ok(&state.signer, scope_of(LOGIN_SCOPE), Some(&form.csrf)) {
        return Err(AdminPageError::FormExpired);
    }
    let ip = client_ip(peer, &headers, &state.config.trusted_proxies);
    let name = form.email.trim().to_lowercase();
    if let Some(wait) = state.throttle.wait(ip, &name) {
        return Err(AdminPageError::Wait(wait));
    }
    let credentials = state.admin.credentials(&name).await?;
    let stored = credentials.as_ref().and_then(|c| c.password_hash.clone());
    let typed = form.password;
    let password_ok =
        tokio::task::spawn_blocking(move || password::verify(&typed, stored.as_deref()))
            .await
            .map_err(|e| AdminPageError::Internal(e.into()))?;
    let account = credentials.filter(|c| {
        password_ok
            && c.totp_secret
                .as_deref()
                .is_none_or(|secret| admin::totp::check(secret, &form.code))
    });
    let Some(credentials) = account else {
        state.throttle.failed(ip, &name);
        let actor = Actor {
            name: name.chars().take(254).collect(),
            ip: Some(ip),
        };
        admin::audit(&*state.admin, &actor, "sign-in.failed", "").await?;
        return Ok(login_form(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("That address, password or code is not right."),
            &form.email,
        ));
    };
    state.throttle.succeeded(ip, &name);
    if let Some(planted) = session_cookie(&headers) {
        state.admin.end_session(&token_hash(planted)).await?;
    }
    let id = admin::random_token();
    state
        .admin
        .create_session(&NewSession {
            id_hash: token_hash(&id),
            account_id: credentials.account.id,
            csrf: admin::random_token(),
            ip: Some(ip.to_string()),
            now: Utc::now(),
        })
        .await?;
    let actor = Actor {
        name: credentials.account.email.clone(),
        ip: Some(ip),
    };
    admin::audit(&*state.admin, &actor, "sign-in", "").await?;
    let mut response = Redirect::to("/admin").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&state, &id));
    Ok(response)
}

#[derive(serde::Deserialize)]
pub(super) struct Nothing {}

fn signed_out(state: &Shared) -> Response {
    let mut response = Redirect::to("/admin/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(state, ""));
    response
}

/// Ends this session.
pub(super) async fn logout(
    State(state): State<Shared>,
    who: SignedIn,
    CsrfForm(Nothing {}): CsrfForm<Nothing>,
) -> Result<Response, AdminPageError> {
    state.admin.end_session(&who.id_hash).await?;
    admin::audit(&*state.admin, &who.actor(), "sign-out", "").await?;
    Ok(signed_out(&state))
}

/// Ends every session of this account, on every device.
pub(super) async fn logout_everywhere(
    State(state): State<Shared>,
    who: SignedIn,
    CsrfForm(Nothing {}): CsrfForm<Nothing>,
) -> Result<Response, AdminPageError> {
    let ended = state.admin.end_sessions(who.account.id).await?;
    admin::audit(
        &*state.admin,
        &who.actor(),
        "sign-out.everywhere",
        &format!("{ended} sessions"),
    )
    .await?;
    Ok(signed_out(&state))
}

/// The page a one-time link opens: a form to choose a password.
pub(super) async fn set_password_page(
    State(state): State<Shared>,
    Path(token): Path<String>,
) -> Result<Response, AdminPageError> {
    let account = state
        .admin
        .setup_link(&token_hash(&token), Utc::now())
        .await?;
    Ok(match account {
        Some(account) => password_form(&state, &token, &account, StatusCode::OK, None),
        None => spent_link(&state),
    })
}

fn password_form(
    state: &Shared,
    token: &str,
    account: &Account,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    render(
        state,
        None,
        status,
        "set_password",
        json!({
            "form_csrf": csrf_token(&state.signer, scope_of(token)),
            "email": account.email,
            "error": error,
            "min_chars": password::MIN_CHARS,
        }),
    )
}

fn spent_link(state: &Shared) -> Response {
    render(
        state,
        None,
        StatusCode::GONE,
        "notice",
        json!({
            "title": "This link no longer works",
            "text": "A link to set a password works once, for 24 hours. Ask an owner for a new one.",
        }),
    )
}

#[derive(serde::Deserialize)]
pub(super) struct NewPassword {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    again: String,
}

/// Sets the password from a one-time link, which then no longer works;
/// every session of the account ends.
#[tracing::instrument(name = "admin_set_password", skip_all)]
pub(super) async fn set_password(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
    axum::Form(form): axum::Form<NewPassword>,
) -> Result<Response, AdminPageError> {
    if !csrf_ok(&state.signer, scope_of(&token), Some(&form.csrf)) {
        return Err(AdminPageError::FormExpired);
    }
    let hash = token_hash(&token);
    let Some(account) = state.admin.setup_link(&hash, Utc::now()).await? else {
        return Ok(spent_link(&state));
    };
    if let Err(e) = password::check_new(&form.password, &form.again) {
        return Ok(password_form(
            &state,
            &token,
            &account,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&e.to_string()),
        ));
    }
    let password_hash = hash_password(form.password).await?;
    let Some(account) = state
        .admin
        .use_setup_link(&hash, &password_hash, Utc::now())
        .await?
    else {
        return Ok(spent_link(&state));
    };
    let actor = Actor {
        name: account.email.clone(),
        ip: Some(client_ip(peer, &headers, &state.config.trusted_proxies)),
    };
    admin::audit(
        &*state.admin,
        &actor,
        "password.set",
        "from a one-time link",
    )
    .await?;
    Ok(render(
        &state,
        None,
        StatusCode::OK,
        "notice",
        json!({
            "title": "Your password is set",
            "text": "You can sign in now.",
            "link": "/admin/login",
            "link_text": "Sign in",
        }),
    ))
}

/// Hashes a password off the async threads (argon2 takes tens of ms).
pub(super) async fn hash_password(password: String) -> Result<String, AdminPageError> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|e| AdminPageError::Internal(e.into()))?
        .map_err(AdminPageError::from)
}

/// Whether `password` is `who`'s, checked off the async threads.
pub(super) async fn is_password_of(
    state: &Shared,
    who: &SignedIn,
    password: String,
) -> Result<bool, AdminPageError> {
    let stored = state
        .admin
        .credentials_by_id(who.account.id)
        .await?
        .password_hash;
    tokio::task::spawn_blocking(move || password::verify(&password, stored.as_deref()))
        .await
        .map_err(|e| AdminPageError::Internal(e.into()))
}

/// The session id hash of `who`, to keep it when the password changes.
pub(super) fn session_of(who: &SignedIn) -> &str {
    &who.id_hash
}
