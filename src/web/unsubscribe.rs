//! The unsubscribe link of every email, `/u/{token}`: a page with two
//! buttons, and RFC 8058 one-click for mail providers.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::pages::{PageError, page};
use super::protect::{csrf_ok, csrf_token, scope_of, token_hint};
use super::{FormData, Shared, id_of};
use crate::tokens::Purpose;

/// The body of an RFC 8058 one-click unsubscribe.
const ONE_CLICK: &[u8] = b"List-Unsubscribe=One-Click";

/// The subscriber and list an unsubscribe link names.
fn target(state: &Shared, token: &str) -> Result<(i64, i64), PageError> {
    let values = state
        .signer
        .verify(Purpose::Unsubscribe, token)
        .map_err(|e| {
            tracing::info!(token = token_hint(token), reason = %e, "a bad unsubscribe link");
            PageError::BrokenLink
        })?;
    match values[..] {
        [subscriber, list] => Ok((
            id_of(subscriber).ok_or(PageError::BrokenLink)?,
            id_of(list).ok_or(PageError::BrokenLink)?,
        )),
        _ => Err(PageError::BrokenLink),
    }
}

/// The name of list `id`, when it still exists.
async fn list_name(state: &Shared, id: i64) -> Result<Option<String>, PageError> {
    Ok(state
        .store
        .list_options()
        .await?
        .into_iter()
        .find(|l| l.id == id)
        .map(|l| l.name))
}

/// The page with the two buttons. It changes nothing.
#[tracing::instrument(name = "unsubscribe_page", skip_all)]
pub(super) async fn show(
    State(state): State<Shared>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let (state, token) = (&state, token.as_str());
    let (subscriber_id, list_id) = target(state, token)?;
    let subscriber = state.store.subscriber_by_id(subscriber_id).await?;
    Ok(page(
        state,
        StatusCode::OK,
        "unsubscribe",
        json!({
            "email": subscriber.email.as_str(),
            "list": list_name(state, list_id).await?,
            "action": format!("/u/{token}"),
            "csrf": csrf_token(&state.signer, scope_of(token)),
        }),
    ))
}

/// A button of the page, or RFC 8058 one-click: a body of exactly
/// `List-Unsubscribe=One-Click` leaves the list at once and answers 200
/// with a tiny body, no redirect (the mail provider does not follow one).
pub(super) async fn submit(
    State(state): State<Shared>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    if body.trim_ascii() == ONE_CLICK {
        return one_click(&state, &token).await;
    }
    leave(&state, &token, &FormData::parse(&body)).await
}

#[tracing::instrument(name = "one_click", skip_all)]
async fn one_click(state: &Shared, token: &str) -> Result<Response, PageError> {
    let (subscriber_id, list_id) = target(state, token)?;
    state
        .store
        .unsubscribe_by_id(subscriber_id, Some(list_id))
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Unsubscribed.\n",
    )
        .into_response())
}

#[tracing::instrument(name = "unsubscribe", skip_all)]
async fn leave(state: &Shared, token: &str, form: &FormData) -> Result<Response, PageError> {
    let (subscriber_id, list_id) = target(state, token)?;
    if !csrf_ok(&state.signer, scope_of(token), form.get("csrf")) {
        return Err(PageError::FormExpired);
    }
    let everything = match form.get("choice") {
        Some("list") => false,
        Some("all") => true,
        _ => {
            return Err(PageError::Invalid(
                "Please choose one of the buttons.".into(),
            ));
        }
    };
    let list = list_name(state, list_id).await?;
    let done = state
        .store
        .unsubscribe_by_id(subscriber_id, (!everything).then_some(list_id))
        .await?;
    if !done {
        return Err(PageError::SpentLink);
    }
    tracing::info!(subscriber_id, everything, "unsubscribed");
    let preferences = state.signer.sign(
        Purpose::Preferences,
        &[u64::try_from(subscriber_id).unwrap_or_default()],
    );
    Ok(page(
        state,
        StatusCode::OK,
        "notice",
        json!({
            "kind": if everything { "left-everything" } else { "left-list" },
            "list": list,
            "preferences": format!("/p/{preferences}"),
        }),
    ))
}
