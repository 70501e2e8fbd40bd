//! Signing up (the form, or JSON from an embedding blog) and confirming.
//!
//! The page after a sign-up is the same whatever happened — a new address,
//! one already subscribed, a suppressed one, or one over its daily limit of
//! confirmation emails — so the form cannot be used to learn who is on the
//! lists. The confirmation email is sent in the background for the same
//! reason: the answer takes as long whether or not one is sent. It is
//! queued in the database with the sign-up and sent by
//! [`send_confirmations`] within NECMAIL_CONFIRMATIONS_PER_HOUR, so a flood
//! from many addresses delays confirmations instead of dropping any.
//! Refused sign-ups (over the per-address limit) are logged as one summary
//! line a minute at most.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use super::pages::{PageError, page};
use super::protect::{check_form, client_ip, csrf_ok, csrf_token, scope_of, token_hint};
use super::{FormData, Shared, id_of, role_answer};
use crate::feedback::EventKind;
use crate::lists::ListOption;
use crate::subscribers::{
    Attributes, Consent, ConsentMethod, QueuedConfirmation, ROLE, Signup, SignupOutcome,
    SubscriberEmail, SubscriberName,
};
use crate::tokens::Purpose;

/// How long a confirmation link works.
pub(crate) const CONFIRM_LIFETIME_DAYS: i64 = 7;

/// What a sign-up asks for, from the form or JSON.
#[derive(Debug, Default, Deserialize)]
struct SignupInput {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    lists: Vec<String>,
    #[serde(default)]
    role: String,
    /// The honeypot: hidden from people, filled in by bots.
    #[serde(default)]
    website: String,
}

impl SignupInput {
    fn from_form(form: &FormData) -> Self {
        let field = |name: &str| form.get(name).unwrap_or_default().to_owned();
        SignupInput {
            email: field("email"),
            name: field("name"),
            lists: form.all("list"),
            role: field("role"),
            website: field("website"),
        }
    }
}

/// The lists offered on the form.
async fn public_lists(state: &Shared) -> Result<Vec<ListOption>, PageError> {
    Ok(state
        .lists
        .list_options()
        .await?
        .into_iter()
        .filter(|l| l.public)
        .collect())
}

/// The form, filled with `input` and showing `error` when a submission failed.
fn form_page(
    state: &Shared,
    status: StatusCode,
    lists: &[ListOption],
    input: &SignupInput,
    errors: &FieldErrors,
) -> Response {
    let lists: Vec<_> = lists
        .iter()
        .map(|l| {
            json!({
                "slug": l.slug.as_str(),
                "name": l.name,
                "description": l.description,
                "checked": input.lists.iter().any(|s| s == l.slug.as_str()),
            })
        })
        .collect();
    page(
        state,
        status,
        "subscribe",
        json!({
            "lists": lists,
            "csrf": csrf_token(&state.signer, 0),
            "email": input.email,
            "name": input.name,
            "role": input.role,
            "errors": errors.for_page(),
            "consent_version": state.config.consent_version,
        }),
    )
}

pub(super) async fn form(State(state): State<Shared>) -> Result<Response, PageError> {
    let lists = public_lists(&state).await?;
    Ok(form_page(
        &state,
        StatusCode::OK,
        &lists,
        &SignupInput::default(),
        &FieldErrors::default(),
    ))
}

/// A sign-up that passed validation.
struct Valid {
    email: SubscriberEmail,
    name: Option<SubscriberName>,
    attributes: Attributes,
    lists: Vec<crate::lists::ListSlug>,
}

/// What is wrong with a sign-up, field by field, in the form's order: each
/// is shown by its field, and all of them above the form.
#[derive(Debug, Default)]
struct FieldErrors(Vec<(&'static str, String)>);

impl FieldErrors {
    fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.push((field, message.into()));
    }

    /// Every message, as one text (for a JSON client).
    fn sentence(&self) -> String {
        self.0
            .iter()
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `{field: message}`, and the list of messages, for the page.
    fn for_page(&self) -> serde_json::Value {
        let by_field: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .map(|(field, message)| ((*field).to_owned(), json!(message)))
            .collect();
        json!({
            "by_field": by_field,
            "all": self.0.iter().map(|(field, m)| json!({"field": field, "message": m}))
                .collect::<Vec<_>>(),
        })
    }
}

fn validate(input: &SignupInput, public: &[ListOption]) -> Result<Valid, FieldErrors> {
    let mut errors = FieldErrors::default();
    let email = SubscriberEmail::parse(&input.email)
        .map_err(|e| errors.add("email", format!("That email address cannot be used: {e}.")))
        .ok();
    let name = SubscriberName::parse(&input.name)
        .map_err(|e| errors.add("name", format!("That name cannot be used: {e}.")))
        .ok();
    let chosen: Option<Vec<_>> = input
        .lists
        .iter()
        .map(|slug| public.iter().find(|l| l.slug.as_str() == slug))
        .map(|found| found.map(|l| l.slug.clone()))
        .collect();
    let lists = match (chosen, public) {
        (None, _) => {
            errors.add("lists", "Please choose from the lists shown.");
            Vec::new()
        }
        (Some(lists), _) if !lists.is_empty() => lists,
        (Some(_), [only]) => vec![only.slug.clone()],
        (Some(_), _) => {
            errors.add("lists", "Please choose at least one list.");
            Vec::new()
        }
    };
    let mut attributes = Attributes::new();
    match role_answer(&input.role) {
        Ok(role) => attributes.set(ROLE.into(), role.unwrap_or_default().into()),
        Err(e) => errors.add("role", e),
    }
    match (email, name) {
        (Some(email), Some(name)) if errors.0.is_empty() => Ok(Valid {
            email,
            name,
            attributes,
            lists,
        }),
        _ => Err(errors),
    }
}

/// The origin of the public site, as browsers send it in `Origin`.
fn own_origin(state: &Shared) -> String {
    state.config.public_url.origin().ascii_serialization()
}

/// The request's `Origin` when it is one of NECMAIL_ALLOWED_ORIGINS.
fn allowed_origin<'h>(state: &Shared, headers: &'h HeaderMap) -> Option<&'h str> {
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    state
        .config
        .allowed_origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(origin))
        .then_some(origin)
}

fn add_cors(response: &mut Response, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// The CORS preflight of a JSON sign-up from an allowed origin.
pub(super) async fn preflight(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let Some(origin) = allowed_origin(&state, &headers) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    add_cors(&mut response, origin);
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Accept"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

fn has_json(headers: &HeaderMap, name: header::HeaderName) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

pub(super) async fn submit(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json_in = has_json(&headers, header::CONTENT_TYPE);
    let json_out = json_in || has_json(&headers, header::ACCEPT);
    let cors = allowed_origin(&state, &headers);
    let mut response = match sign_up(&state, peer, &headers, &body, json_in).await {
        Ok(_) if json_out => axum::Json(json!({
            "ok": true,
            "message": "Thank you. If this address can join, we have sent it an email: \
                        follow the link in it to confirm.",
        }))
        .into_response(),
        Ok(email) => page(
            &state,
            StatusCode::OK,
            "notice",
            json!({"kind": "check-inbox", "email": email}),
        ),
        Err(Refusal::Page(e)) if json_out => e.json(),
        Err(Refusal::Page(e)) => e.into_response(),
        Err(Refusal::Form {
            lists,
            input,
            errors,
        }) if !json_out => form_page(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            &lists,
            &input,
            &errors,
        ),
        Err(Refusal::Form { errors, .. }) => PageError::Invalid(errors.sentence()).json(),
    };
    if let Some(origin) = cors {
        add_cors(&mut response, origin);
    }
    response
}

/// Why a sign-up was refused: an error page, or the form again with a
/// sentence on what to fix.
enum Refusal {
    Page(PageError),
    Form {
        lists: Vec<ListOption>,
        input: SignupInput,
        errors: FieldErrors,
    },
}

impl From<PageError> for Refusal {
    fn from(e: PageError) -> Self {
        Refusal::Page(e)
    }
}

impl From<crate::error::StoreError> for Refusal {
    fn from(e: crate::error::StoreError) -> Self {
        Refusal::Page(e.into())
    }
}

#[tracing::instrument(name = "subscribe", skip_all)]
async fn sign_up(
    state: &Shared,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
    json: bool,
) -> Result<String, Refusal> {
    if json {
        // A browser sends JSON cross-site only after a preflight, which
        // only the allowed origins pass; refuse any other origin outright.
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        if origin
            .is_some_and(|o| o != own_origin(state) && allowed_origin(state, headers).is_none())
        {
            return Err(PageError::FormExpired.into());
        }
    }
    let ip = client_ip(peer, headers, &state.config.trusted_proxies);
    if !state.subscribe_limit.allow(ip) {
        if let Some(refused) = state.subscribe_refusals.count() {
            tracing::info!(
                last_ip = %ip,
                refused,
                "subscribe refused: over the per-address rate limit \
                 (one line a minute at most; `refused` counts since the last)"
            );
        }
        return Err(PageError::TooMany.into());
    }
    let input = if json {
        serde_json::from_slice::<SignupInput>(body).map_err(|_| {
            PageError::Invalid("The request is not the JSON object this form expects.".into())
        })?
    } else {
        let form = FormData::parse(body);
        if !csrf_ok(&state.signer, 0, form.get("csrf")) {
            return Err(PageError::FormExpired.into());
        }
        SignupInput::from_form(&form)
    };
    if !input.website.is_empty() {
        tracing::info!(%ip, "subscribe ignored: the honeypot was filled in");
        return Ok(input.email.trim().to_owned());
    }
    let lists = public_lists(state).await?;
    let valid = match validate(&input, &lists) {
        Ok(valid) => valid,
        Err(errors) => {
            return Err(Refusal::Form {
                lists,
                input,
                errors,
            });
        }
    };
    let email = valid.email.to_string();
    store_sign_up(state, valid, ip).await?;
    Ok(email)
}

async fn store_sign_up(state: &Shared, valid: Valid, ip: IpAddr) -> Result<(), PageError> {
    let now = Utc::now();
    let allowed = state
        .people
        .allow_confirmation_email(
            &valid.email,
            now - chrono::Duration::hours(24),
            state.config.confirmations_per_address_per_day,
        )
        .await?;
    if !allowed {
        tracing::info!("subscribe ignored: the address had its confirmation emails for today");
        return Ok(());
    }
    let signup = Signup {
        email: valid.email,
        name: valid.name,
        attributes: valid.attributes,
        lists: valid.lists,
        consent: Consent {
            at: now,
            method: ConsentMethod::Form,
            ip: Some(ip.to_string()),
            wording: state.config.consent_version.clone(),
        },
        issued_at: now.timestamp(),
    };
    match state.people.sign_up(&signup).await? {
        SignupOutcome::Suppressed => {
            tracing::info!("subscribe ignored: the address is suppressed");
        }
        SignupOutcome::Stored {
            subscriber_id,
            pending,
            joined,
            ..
        } => {
            tracing::info!(
                subscriber_id,
                pending = pending.len(),
                joined = joined.len(),
                "sign-up stored"
            );
            let lists: Vec<String> = pending
                .iter()
                .map(|name| format!("{name} (to confirm)"))
                .chain(joined.iter().cloned())
                .collect();
            if !lists.is_empty() {
                let reason = format!("sign-up form: {}", lists.join(", "));
                super::record_event(state, EventKind::Join, &signup.email, None, &reason).await;
            }
            if !pending.is_empty() {
                state.confirmations_queued.notify_one();
            }
        }
    }
    Ok(())
}

/// How long the confirmation sender waits at most before it looks at the
/// queue again while confirmations wait for the hourly limit, or after the
/// database failed; and, while none waits, how often it looks for those
/// queued by another process (`necmail list confirm-pending`, another
/// instance).
const CONFIRMATIONS_RECHECK: Duration = Duration::from_secs(5);

/// Sends the queued confirmation emails, oldest first, at most
/// NECMAIL_CONFIRMATIONS_PER_HOUR an hour, until `stop`. Past the limit they
/// wait in the database (so a restart loses none) and go out as the hour
/// allows. Woken by each sign-up; the queue is also read at start-up, and
/// every [`CONFIRMATIONS_RECHECK`] while idle. A wake-up goes before `stop`:
/// the confirmations of the sign-ups answered before the stop are sent, as
/// the limit allows, before the sender ends.
pub(super) async fn send_confirmations(state: Shared, mut stop: watch::Receiver<bool>) {
    let mut limited = false;
    loop {
        let since = Utc::now() - chrono::Duration::hours(1);
        let wait = match state
            .people
            .take_confirmations(since, state.config.confirmations_per_hour)
            .await
        {
            Ok(turn) => {
                for queued in turn.due {
                    send_queued(&state, queued).await;
                }
                if turn.next_slot.is_some() && !limited {
                    tracing::warn!(
                        limit = state.config.confirmations_per_hour,
                        "confirmation emails wait: over NECMAIL_CONFIRMATIONS_PER_HOUR"
                    );
                }
                limited = turn.next_slot.is_some();
                turn.next_slot.map(|at| {
                    (at - Utc::now())
                        .to_std()
                        .unwrap_or_default()
                        .min(CONFIRMATIONS_RECHECK)
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "the confirmation queue cannot be read; retrying");
                Some(CONFIRMATIONS_RECHECK)
            }
        };
        tokio::select! {
            biased;
            () = async {
                match wait {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => until_queued(&state).await,
                }
            } => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// Waits until a sign-up queues a confirmation email, or one queued
/// elsewhere is found waiting.
async fn until_queued(state: &Shared) {
    loop {
        tokio::select! {
            () = state.confirmations_queued.notified() => return,
            () = tokio::time::sleep(CONFIRMATIONS_RECHECK) => {
                if state.people.confirmations_waiting().await.is_ok_and(|n| n > 0) {
                    return;
                }
            }
        }
    }
}

/// Sends one queued confirmation, unless a later sign-up superseded it or
/// it was confirmed meanwhile.
async fn send_queued(state: &Shared, queued: QueuedConfirmation) {
    let QueuedConfirmation {
        subscriber_id,
        issued_at,
    } = queued;
    let pending = match state.people.pending(subscriber_id, issued_at).await {
        Ok(Some(pending)) => pending,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(subscriber_id, error = %e, "the confirmation email was not sent");
            return;
        }
    };
    if let Err(e) = send_confirmation(
        state,
        &pending.email,
        subscriber_id,
        issued_at,
        &pending.lists,
    )
    .await
    {
        tracing::error!(
            subscriber_id,
            error = format!("{e:#}"),
            "the confirmation email was not sent"
        );
    }
}

/// Sends the confirmation email. The only text from the sign-up in it is
/// the address itself.
async fn send_confirmation(
    state: &Shared,
    email: &SubscriberEmail,
    subscriber_id: i64,
    issued_at: i64,
    lists: &[String],
) -> anyhow::Result<()> {
    let token = state.signer.sign(
        Purpose::Confirm,
        &[u64::try_from(subscriber_id)?, u64::try_from(issued_at)?],
    );
    let mut ctx = tera::Context::new();
    ctx.insert("email", email.as_str());
    ctx.insert(
        "confirm_url",
        &state.config.public_link(&format!("confirm/{token}")),
    );
    ctx.insert("lists", lists);
    ctx.insert("expires_days", &CONFIRM_LIFETIME_DAYS);
    // Replying confirms too, when `serve` takes inbound mail.
    let reply_to = state
        .config
        .inbound_addr
        .map(|_| format!("confirm+{token}@{}", state.config.from.domain()));
    ctx.insert("reply_confirms", &reply_to.is_some());
    super::mail(state, email, "confirm", ctx, reply_to.as_deref()).await?;
    tracing::info!(subscriber_id, "confirmation email sent");
    Ok(())
}

/// The subscriber id and issue time of a confirmation link that is still
/// within its lifetime.
fn confirmation(state: &Shared, token: &str) -> Result<(i64, i64), PageError> {
    let values = state.signer.verify(Purpose::Confirm, token).map_err(|e| {
        tracing::info!(token = token_hint(token), reason = %e, "a bad confirmation link");
        PageError::BrokenLink
    })?;
    let [id, issued] = values[..] else {
        return Err(PageError::BrokenLink);
    };
    let id = id_of(id).ok_or(PageError::BrokenLink)?;
    let issued = i64::try_from(issued).map_err(|_| PageError::BrokenLink)?;
    let age = Utc::now().timestamp().saturating_sub(issued);
    if age > CONFIRM_LIFETIME_DAYS * 24 * 60 * 60 {
        return Err(PageError::SpentLink);
    }
    Ok((id, issued))
}

/// The confirmation page: what the link is for and one button. It changes
/// nothing, since mail scanners fetch links.
#[tracing::instrument(name = "confirm_page", skip_all)]
pub(super) async fn confirm_page(
    State(state): State<Shared>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let (id, issued) = confirmation(&state, &token)?;
    let pending = state
        .people
        .pending(id, issued)
        .await?
        .ok_or(PageError::SpentLink)?;
    Ok(page(
        &state,
        StatusCode::OK,
        "confirm",
        json!({
            "email": pending.email.as_str(),
            "lists": pending.lists,
            "action": format!("/confirm/{token}"),
            "csrf": csrf_token(&state.signer, scope_of(&token)),
        }),
    ))
}

#[tracing::instrument(name = "confirm", skip_all)]
pub(super) async fn confirm(
    State(state): State<Shared>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (id, issued) = confirmation(&state, &token)?;
    check_form(&state.signer, &token, &FormData::parse(&body))?;
    let confirmed = state
        .people
        .confirm(id, issued)
        .await?
        .ok_or(PageError::SpentLink)?;
    tracing::info!(subscriber_id = id, "subscription confirmed");
    super::record_event(
        &state,
        EventKind::Confirm,
        &confirmed.email,
        None,
        "confirmation link",
    )
    .await;
    Ok(page(
        &state,
        StatusCode::OK,
        "notice",
        json!({"kind": "confirmed", "lists": confirmed.lists}),
    ))
}
