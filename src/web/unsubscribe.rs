//! The unsubscribe link of every email, `/u/{token}`: a page with two
//! buttons, and RFC 8058 one-click for mail providers. The link names the
//! lists its message came through (someone on two lists of a campaign gets
//! one message through both): the page's first button and one-click leave
//! them all.
//!
//! A valid one-click is never lost and never answered 500: when the
//! database has not written it within [`ONE_CLICK_WAIT`] (locked, down), it
//! is kept in the [spool](super::spool), synced to disk, and answered 200;
//! the spool is applied as soon as the database takes it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::pages::{PageError, page};
use super::protect::{check_form, csrf_token, scope_of, token_hint};
use super::{FormData, Shared};
use crate::error::StoreError;
use crate::feedback::EventKind;
use crate::subscribers::SelfServiceStore;
use crate::text::joined;

/// The reason recorded with a one-click's leave, whether applied at once or
/// from the spool.
pub(super) const ONE_CLICK_REASON: &str = "one-click (RFC 8058)";

/// How long a one-click waits for the database before it is spooled.
const ONE_CLICK_WAIT: Duration = Duration::from_secs(5);

/// One-clicks written per transaction at most.
const ONE_CLICK_BATCH: usize = 256;

/// One one-click waiting to be written: the subscriber, the lists, and who
/// to tell whether the subscriber exists.
type OneClick = (i64, Vec<i64>, oneshot::Sender<Result<bool, StoreError>>);

/// Writes one-click unsubscribes with group commit: one task takes every
/// request that is waiting and writes them all in one transaction, so a
/// burst of one-clicks (a provider acting on a whole campaign's complaints
/// at once) costs one commit per batch instead of one per request. Each
/// request is answered only after its batch is committed, so the very next
/// claim of the delivery engine honours it.
pub(crate) struct OneClickWriter {
    queue: mpsc::Sender<OneClick>,
}

impl OneClickWriter {
    /// Starts the writer task in `tasks`; it ends when the writer is dropped.
    pub(crate) fn start(store: Arc<dyn SelfServiceStore>, tasks: &mut JoinSet<()>) -> Self {
        let (queue, mut waiting) = mpsc::channel::<OneClick>(ONE_CLICK_BATCH * 16);
        tasks.spawn(async move {
            let mut batch = Vec::with_capacity(ONE_CLICK_BATCH);
            while waiting.recv_many(&mut batch, ONE_CLICK_BATCH).await > 0 {
                let targets: Vec<(i64, i64)> = batch
                    .iter()
                    .flat_map(|(s, lists, _)| lists.iter().map(|l| (*s, *l)))
                    .collect();
                match store.unsubscribe_from_lists(&targets).await {
                    Ok(exists) => {
                        let mut exists = exists.into_iter();
                        for (_, lists, reply) in batch.drain(..) {
                            let known = exists.by_ref().take(lists.len()).fold(false, |a, b| a | b);
                            let _ = reply.send(Ok(known));
                        }
                    }
                    Err(e) => {
                        for (_, _, reply) in batch.drain(..) {
                            let _ = reply.send(Err(StoreError::Unavailable(e.to_string())));
                        }
                    }
                }
            }
        });
        OneClickWriter { queue }
    }

    /// Unsubscribes `subscriber_id` from `list_ids` once its batch is
    /// committed; whether the subscriber exists.
    async fn unsubscribe(&self, subscriber_id: i64, list_ids: &[i64]) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the one-click writer has stopped".into());
        self.queue
            .send((subscriber_id, list_ids.to_vec(), reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Records that `subscriber_id` left the lists `list_ids` (or everything,
/// with `None`) on the pages: an event for each list.
pub(super) async fn recorded_leave(
    state: &Shared,
    subscriber_id: i64,
    list_ids: Option<&[i64]>,
    reason: &str,
) {
    let subscriber = match state.people.subscriber_by_id(subscriber_id).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(subscriber_id, error = %e, "the leave was not recorded");
            return;
        }
    };
    let email = &subscriber.email;
    match list_ids {
        Some(ids) => {
            for id in ids {
                super::record_event(state, EventKind::Leave, email, Some(*id), reason).await;
            }
        }
        None => super::record_event(state, EventKind::Leave, email, None, reason).await,
    }
}

/// The subscriber and the lists an unsubscribe link names.
fn target(state: &Shared, token: &str) -> Result<(i64, Vec<i64>), PageError> {
    state.signer.unsubscribe(token).map_err(|e| {
        tracing::info!(token = token_hint(token), reason = %e, "a bad unsubscribe link");
        PageError::BrokenLink
    })
}

/// The names of the lists `ids` that still exist, as a phrase ("A, B and
/// C"); `None` when none does.
async fn list_names(state: &Shared, ids: &[i64]) -> Result<Option<String>, PageError> {
    let options = state.lists.list_options().await?;
    let names: Vec<&str> = ids
        .iter()
        .filter_map(|id| options.iter().find(|l| l.id == *id))
        .map(|l| l.name.as_str())
        .collect();
    Ok((!names.is_empty()).then(|| joined(&names)))
}

/// The page with the two buttons. It changes nothing.
#[tracing::instrument(name = "unsubscribe_page", skip_all)]
pub(super) async fn show(
    State(state): State<Shared>,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let (state, token) = (&state, token.as_str());
    let (subscriber_id, list_ids) = target(state, token)?;
    let subscriber = state.people.subscriber_by_id(subscriber_id).await?;
    Ok(page(
        state,
        StatusCode::OK,
        "unsubscribe",
        json!({
            "email": subscriber.email.as_str(),
            "list": list_names(state, &list_ids).await?,
            "action": format!("/u/{token}"),
            "csrf": csrf_token(&state.signer, scope_of(token)),
        }),
    ))
}

/// A button of the page, or RFC 8058 one-click: a form, urlencoded or
/// `multipart/form-data`, with the field `List-Unsubscribe=One-Click`,
/// leaves the list at once and answers 200 with a tiny body, no redirect
/// (the mail provider does not follow one).
pub(super) async fn submit(
    State(state): State<Shared>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = FormData::from_body(&headers, &body);
    if form.get("List-Unsubscribe").map(str::trim) == Some("One-Click") {
        return one_click(&state, &token).await;
    }
    leave(&state, &token, &form).await
}

#[tracing::instrument(name = "one_click", skip_all)]
async fn one_click(state: &Shared, token: &str) -> Result<Response, PageError> {
    let (subscriber_id, list_ids) = target(state, token)?;
    let written = tokio::time::timeout(
        ONE_CLICK_WAIT,
        state.one_click.unsubscribe(subscriber_id, &list_ids),
    )
    .await;
    let reason = match written {
        Ok(Ok(exists)) => {
            if exists {
                recorded_leave(state, subscriber_id, Some(&list_ids), ONE_CLICK_REASON).await;
            }
            None
        }
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some(format!(
            "the database did not answer within {ONE_CLICK_WAIT:?}"
        )),
    };
    if let Some(reason) = reason {
        tracing::warn!(subscriber_id, %reason, "a one-click unsubscribe goes to the spool");
        if let Err(e) = state.spool.keep(subscriber_id, &list_ids).await {
            // Neither the database nor the disk can keep it: ask the mail
            // provider to try again rather than claim it was done.
            tracing::error!(subscriber_id, error = %e, "a one-click unsubscribe cannot be kept");
            let mut busy = StatusCode::SERVICE_UNAVAILABLE.into_response();
            busy.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            return Ok(busy);
        }
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Unsubscribed.\n",
    )
        .into_response())
}

#[tracing::instrument(name = "unsubscribe", skip_all)]
async fn leave(state: &Shared, token: &str, form: &FormData) -> Result<Response, PageError> {
    let (subscriber_id, list_ids) = target(state, token)?;
    check_form(&state.signer, token, form)?;
    let everything = match form.get("choice") {
        Some("list") => false,
        Some("all") => true,
        _ => {
            return Err(PageError::Invalid(
                "Please choose one of the buttons.".into(),
            ));
        }
    };
    let list = list_names(state, &list_ids).await?;
    let done = state
        .people
        .unsubscribe_by_id(subscriber_id, (!everything).then_some(&list_ids[..]))
        .await?;
    if !done {
        return Err(PageError::SpentLink);
    }
    tracing::info!(subscriber_id, everything, "unsubscribed");
    recorded_leave(
        state,
        subscriber_id,
        (!everything).then_some(&list_ids[..]),
        "unsubscribe link",
    )
    .await;
    let preferences = state.signer.preferences(subscriber_id);
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
