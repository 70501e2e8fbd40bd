//! The preferences link of every email, `/p/{token}`: the name, each public
//! list on or off, leaving everything, downloading one's data, and erasure.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;

use super::pages::{PageError, Renew, page};
use super::protect::{check_form, client_ip, csrf_token, scope_of, token_hint};
use super::{FormData, Shared, id_of, mail, role_answer};
use crate::feedback::EventKind;
use crate::subscribers::{
    Consent, ConsentMethod, PreferenceChange, ROLE, Subscriber, SubscriberName, SubscriptionStatus,
};
use crate::tokens::Purpose;

/// The subscriber a preferences link names and when it was issued (`None`
/// for a link made before links expired), whether or not it has expired.
fn link(state: &Shared, token: &str) -> Result<(i64, Option<i64>), PageError> {
    let values = state
        .signer
        .verify(Purpose::Preferences, token)
        .map_err(|e| {
            tracing::info!(token = token_hint(token), reason = %e, "a bad preferences link");
            PageError::BrokenLink
        })?;
    let (id, issued) = match values[..] {
        [id] => (id, None),
        [id, issued] => (id, Some(i64::try_from(issued).unwrap_or(i64::MAX))),
        _ => return Err(PageError::BrokenLink),
    };
    Ok((id_of(id).ok_or(PageError::BrokenLink)?, issued))
}

/// The subscriber a preferences link names, while the link is current.
/// An expired link is [`PageError::ExpiredLink`], whose page offers a fresh
/// one by email.
fn subscriber_id(state: &Shared, token: &str) -> Result<i64, PageError> {
    let (id, issued) = link(state, token)?;
    let lifetime = state.config.preferences_link_lifetime;
    let current = issued.is_some_and(|issued| {
        let age = Utc::now().timestamp().saturating_sub(issued);
        u64::try_from(age).is_ok_and(|age| age <= lifetime.as_secs())
    });
    if !current {
        return Err(PageError::ExpiredLink(Renew {
            action: format!("/p/{token}/renew"),
            csrf: csrf_token(&state.signer, scope_of(token)),
            days: lifetime.as_secs() / 86_400,
        }));
    }
    Ok(id)
}

/// The subscriber of a POST whose CSRF token is good.
fn checked(state: &Shared, token: &str, form: &FormData) -> Result<i64, PageError> {
    let id = subscriber_id(state, token)?;
    check_form(&state.signer, token, form)?;
    Ok(id)
}

/// The subscriber a preferences link names, as stored.
async fn linked_subscriber(state: &Shared, token: &str) -> Result<Subscriber, PageError> {
    let id = subscriber_id(state, token)?;
    Ok(state.people.subscriber_by_id(id).await?)
}

/// The subscriber of a POST whose CSRF token is good, as stored.
async fn checked_subscriber(
    state: &Shared,
    token: &str,
    form: &FormData,
) -> Result<Subscriber, PageError> {
    let id = checked(state, token, form)?;
    Ok(state.people.subscriber_by_id(id).await?)
}

/// Whether a subscription counts as "on" in the page's checkboxes.
fn is_on(status: SubscriptionStatus) -> bool {
    status != SubscriptionStatus::Unsubscribed
}

/// The preferences page.
async fn preferences_page(
    state: &Shared,
    token: &str,
    subscriber: &Subscriber,
    status: StatusCode,
    saved: bool,
    error: Option<&str>,
    name: Option<&str>,
) -> Result<Response, PageError> {
    let lists = state.lists.list_options().await?;
    let membership = |slug: &str| subscriber.lists.iter().find(|m| m.slug.as_str() == slug);
    let public: Vec<_> = lists
        .iter()
        .filter(|l| l.public)
        .map(|l| {
            let m = membership(l.slug.as_str());
            json!({
                "slug": l.slug.as_str(),
                "name": l.name,
                "description": l.description,
                "on": m.is_some_and(|m| is_on(m.status)),
                "unconfirmed": m.is_some_and(|m| m.status == SubscriptionStatus::Unconfirmed),
            })
        })
        .collect();
    let private: Vec<_> = lists
        .iter()
        .filter(|l| !l.public && membership(l.slug.as_str()).is_some_and(|m| is_on(m.status)))
        .map(|l| l.name.clone())
        .collect();
    Ok(page(
        state,
        status,
        "preferences",
        json!({
            "email": subscriber.email.as_str(),
            "name": name.or(subscriber.name.as_deref()).unwrap_or_default(),
            "role": subscriber.attributes.get(ROLE).unwrap_or_default(),
            "lists": public,
            "private_lists": private,
            "base": format!("/p/{token}"),
            "csrf": csrf_token(&state.signer, scope_of(token)),
            "saved": saved,
            "error": error,
        }),
    ))
}

#[tracing::instrument(name = "preferences_page", skip_all)]
pub(super) async fn show(
    State(state): State<Shared>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let subscriber = linked_subscriber(&state, &token).await?;
    preferences_page(
        &state,
        &token,
        &subscriber,
        StatusCode::OK,
        false,
        None,
        None,
    )
    .await
}

#[tracing::instrument(name = "preferences_save", skip_all)]
pub(super) async fn save(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = FormData::parse(&body);
    let subscriber = checked_subscriber(&state, &token, &form).await?;
    let typed = form.get("name").unwrap_or_default();
    let parsed = SubscriberName::parse(typed)
        .map_err(|e| format!("That name cannot be used: {e}."))
        .and_then(|name| Ok((name, role_answer(form.get("role").unwrap_or_default())?)));
    let (name, role) = match parsed {
        Ok(both) => both,
        Err(error) => {
            return preferences_page(
                &state,
                &token,
                &subscriber,
                StatusCode::UNPROCESSABLE_ENTITY,
                false,
                Some(&error),
                Some(typed),
            )
            .await;
        }
    };
    let wanted = form.all("list");
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for list in state
        .lists
        .list_options()
        .await?
        .into_iter()
        .filter(|l| l.public)
    {
        let status = subscriber
            .lists
            .iter()
            .find(|m| m.slug == list.slug)
            .map(|m| m.status);
        let want = wanted.iter().any(|w| w == list.slug.as_str());
        if want && status != Some(SubscriptionStatus::Confirmed) {
            on.push(list.id);
        } else if !want && status.is_some_and(is_on) {
            off.push(list.id);
        }
    }
    let change = PreferenceChange {
        name: (name.as_ref().map(SubscriberName::as_str) != subscriber.name.as_deref())
            .then_some(name),
        role: (role != subscriber.attributes.get(ROLE)).then(|| role.map(str::to_owned)),
        on,
        off,
        consent: Consent {
            at: Utc::now(),
            method: ConsentMethod::Form,
            ip: Some(client_ip(peer, &headers, &state.config.trusted_proxies).to_string()),
            wording: state.config.consent_version.clone(),
        },
    };
    let updated = state
        .people
        .change_preferences(subscriber.id, &change)
        .await?;
    tracing::info!(subscriber_id = subscriber.id, "preferences saved");
    for (kind, lists) in [
        (EventKind::Join, &change.on),
        (EventKind::Leave, &change.off),
    ] {
        for list_id in lists {
            super::record_event(
                &state,
                kind,
                &updated.email,
                Some(*list_id),
                "preferences page",
            )
            .await;
        }
    }
    preferences_page(&state, &token, &updated, StatusCode::OK, true, None, None).await
}

#[tracing::instrument(name = "preferences_leave", skip_all)]
pub(super) async fn leave(
    State(state): State<Shared>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let id = checked(&state, &token, &FormData::parse(&body))?;
    if !state.people.unsubscribe_by_id(id, None).await? {
        return Err(PageError::SpentLink);
    }
    tracing::info!(subscriber_id = id, "unsubscribed from everything");
    super::unsubscribe::recorded_leave(&state, id, None, "preferences page").await;
    Ok(page(
        &state,
        StatusCode::OK,
        "notice",
        json!({"kind": "left-everything", "preferences": format!("/p/{token}")}),
    ))
}

/// Everything kept about the subscriber, as a JSON attachment.
#[tracing::instrument(name = "preferences_download", skip_all)]
pub(super) async fn download(
    State(state): State<Shared>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let subscriber = checked_subscriber(&state, &token, &FormData::parse(&body)).await?;
    let data = serde_json::to_vec_pretty(&subscriber).map_err(anyhow::Error::from)?;
    tracing::info!(subscriber_id = subscriber.id, "data downloaded");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"my-subscription-data.json\""),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        data,
    )
        .into_response())
}

/// The page that asks to confirm an erasure. It changes nothing.
#[tracing::instrument(name = "erase_page", skip_all)]
pub(super) async fn erase_page(
    State(state): State<Shared>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let subscriber = linked_subscriber(&state, &token).await?;
    Ok(page(
        &state,
        StatusCode::OK,
        "erase",
        json!({
            "email": subscriber.email.as_str(),
            "base": format!("/p/{token}"),
            "csrf": csrf_token(&state.signer, scope_of(&token)),
        }),
    ))
}

/// Deletes the subscriber, keeping only the suppression of the address so
/// that it is never added again.
#[tracing::instrument(name = "erase", skip_all)]
pub(super) async fn erase(
    State(state): State<Shared>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let subscriber = checked_subscriber(&state, &token, &FormData::parse(&body)).await?;
    state
        .subscribers
        .remove_subscriber(&subscriber.email, true)
        .await?;
    tracing::info!(
        subscriber_id = subscriber.id,
        "subscriber erased at their request"
    );
    Ok(page(
        &state,
        StatusCode::OK,
        "notice",
        json!({"kind": "erased"}),
    ))
}

/// Emails a fresh preferences link to the address on file, for someone
/// whose link expired. Only the subscriber's own address ever gets it, and
/// it shares the daily per-address allowance of confirmation emails, so the
/// button cannot be used to flood anyone.
#[tracing::instrument(name = "preferences_renew", skip_all)]
pub(super) async fn renew(
    State(state): State<Shared>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (id, _) = link(&state, &token)?;
    check_form(&state.signer, &token, &FormData::parse(&body))?;
    let subscriber = state.people.subscriber_by_id(id).await?;
    let days = state.config.preferences_link_lifetime.as_secs() / 86_400;
    let allowed = state
        .people
        .allow_confirmation_email(
            &subscriber.email,
            Utc::now() - chrono::Duration::hours(24),
            state.config.confirmations_per_address_per_day,
        )
        .await?;
    if allowed {
        let mut ctx = tera::Context::new();
        ctx.insert("email", subscriber.email.as_str());
        ctx.insert(
            "preferences_url",
            &state
                .config
                .public_link(&format!("p/{}", state.signer.preferences(id))),
        );
        ctx.insert("expires_days", &days);
        mail(&state, &subscriber.email, "preferences", ctx, None).await?;
        tracing::info!(subscriber_id = id, "a fresh preferences link was sent");
    } else {
        tracing::info!(
            subscriber_id = id,
            "no fresh preferences link: the address had its emails for today"
        );
    }
    Ok(page(
        &state,
        StatusCode::OK,
        "notice",
        json!({"kind": "link-sent", "expires_days": days}),
    ))
}
