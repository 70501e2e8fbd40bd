//! Subscribers, for owners only: the search, a person's page with all the
//! data kept about them, what an owner may do to them (add, edit,
//! subscribe, unsubscribe, block, erase), and the CSV export. The same
//! domain code and store as `necmail subscriber`.
//!
//! The search matches the start of an address or of a name, which an index
//! answers on both backends (migration 0015), and pages by subscriber id.
//! The audit log names a subscriber by id, never by address: it outlives
//! an erasure.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::StreamExt;
use serde_json::json;

use super::pages::{AdminPageError, csv_download, list_choices, render};
use super::session::{CsrfForm, Owner, SignedIn};
use crate::admin;
use crate::error::StoreError;
use crate::feedback::{EventFilter, EventSource, Office};
use crate::lists::ListSlug;
use crate::subscribers::{
    AdminChannel, AttributePair, Attributes, Consent, ConsentMethod, NewSubscriber, SearchCursor,
    StatusFilter, Subscriber, SubscriberEmail, SubscriberFilter, SubscriberName, SubscriberUpdate,
    SuppressionReason, spreadsheet,
};
use crate::web::{AppState, Shared};

/// Subscribers per page of the search.
const PAGE: i64 = 50;
/// Subscribers fetched at once by the export.
const EXPORT_PAGE: i64 = 1000;
/// The newest events shown on a person's page.
const EVENTS_SHOWN: i64 = 100;
/// The statuses the search filters by.
const STATUSES: [&str; 4] = ["confirmed", "unconfirmed", "unsubscribed", "blocklisted"];

fn invalid(e: impl std::fmt::Display) -> AdminPageError {
    AdminPageError::Invalid(e.to_string())
}

/// The search's and the export's filters, as the query string gives them.
#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
pub(super) struct SearchQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    list: String,
    #[serde(default)]
    status: String,
    /// One `key=value`.
    #[serde(default)]
    attr: String,
    /// The page after this subscriber.
    #[serde(default, skip_serializing)]
    after: Option<i64>,
    /// With `after`, in a search: the text that matched last.
    #[serde(default, skip_serializing)]
    from: Option<String>,
}

impl SearchQuery {
    fn filter(&self) -> Result<SubscriberFilter, AdminPageError> {
        let list = match self.list.trim() {
            "" => None,
            slug => Some(ListSlug::parse(slug).map_err(invalid)?),
        };
        let status = match self.status.trim() {
            "" => None,
            status => Some(status.parse::<StatusFilter>().map_err(invalid)?),
        };
        let attributes = match self.attr.trim() {
            "" => Vec::new(),
            pair => vec![pair.parse::<AttributePair>().map_err(invalid)?],
        };
        Ok(SubscriberFilter {
            list,
            status,
            attributes,
            search: None,
        })
    }

    /// The filters as a query string, without the page.
    fn query_string(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("q", self.q.trim()),
                ("list", self.list.trim()),
                ("status", self.status.trim()),
                ("attr", self.attr.trim()),
            ])
            .finish()
    }
}

fn lists_text(s: &Subscriber) -> String {
    s.lists
        .iter()
        .map(|m| format!("{} ({})", m.slug, m.status))
        .collect::<Vec<_>>()
        .join(", ")
}

fn attributes_lines(attributes: &Attributes) -> String {
    attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A page of the search, and the query string of the next page if there
/// is one: by the start of the address or name when `q` is given (one who
/// matches by both is shown once a page), else in id order.
async fn page(
    state: &Shared,
    query: &SearchQuery,
) -> Result<(Vec<Subscriber>, Option<String>), AdminPageError> {
    let filter = query.filter()?;
    let filters = query.query_string();
    let q = query.q.trim();
    if q.is_empty() {
        let mut page = state
            .subscribers
            .subscribers(&filter, query.after.unwrap_or(0), PAGE + 1)
            .await?;
        let more = page.len() as i64 > PAGE;
        page.truncate(PAGE as usize);
        let next = page.last().filter(|_| more).map(|s| s.id);
        return Ok((page, next.map(|id| format!("{filters}&after={id}"))));
    }
    let after = match (&query.from, query.after) {
        (Some(key), Some(id)) => Some(SearchCursor {
            key: key.clone(),
            id,
        }),
        _ => None,
    };
    let mut found = state
        .subscribers
        .search_subscribers(q, &filter, after.as_ref(), PAGE + 1)
        .await?;
    let more = found.len() as i64 > PAGE;
    found.truncate(PAGE as usize);
    let next = found.last().filter(|_| more).map(|(c, _)| {
        url::form_urlencoded::Serializer::new(filters.clone())
            .append_pair("from", &c.key)
            .append_pair("after", &c.id.to_string())
            .finish()
    });
    let q = q.to_lowercase();
    let page = found
        .into_iter()
        .filter(|(c, s)| !seen_by_address(&q, c, s))
        .map(|(_, s)| s)
        .collect();
    Ok((page, next))
}

/// Whether a search's entry is the second of a subscriber whose address
/// and name both start with `q` (lower-cased): the one by the name, while
/// the one by the address, in its own place, shows them.
fn seen_by_address(q: &str, found: &SearchCursor, s: &Subscriber) -> bool {
    let key = s.email.key();
    found.key != key && key.starts_with(q)
}

/// Where the export has got to.
enum Next {
    /// In id order, after this id.
    Id(i64),
    /// A search by prefix, after this entry.
    Search(Option<SearchCursor>),
    Done,
}

/// The next page of the export, and where the one after it starts.
async fn export_page(
    state: &Shared,
    q: &str,
    filter: &SubscriberFilter,
    next: Next,
) -> Result<(Vec<Subscriber>, Next), StoreError> {
    let full = |n: usize| n as i64 >= EXPORT_PAGE;
    Ok(match next {
        Next::Done => (Vec::new(), Next::Done),
        Next::Id(after) => {
            let page = state
                .subscribers
                .subscribers(filter, after, EXPORT_PAGE)
                .await?;
            let next = match page.last() {
                Some(last) if full(page.len()) => Next::Id(last.id),
                _ => Next::Done,
            };
            (page, next)
        }
        Next::Search(after) => {
            let found = state
                .subscribers
                .search_subscribers(q, filter, after.as_ref(), EXPORT_PAGE)
                .await?;
            let next = match found.last() {
                Some((last, _)) if full(found.len()) => Next::Search(Some(last.clone())),
                _ => Next::Done,
            };
            let q = q.to_lowercase();
            let page = found
                .into_iter()
                .filter(|(c, s)| !seen_by_address(&q, c, s))
                .map(|(_, s)| s)
                .collect();
            (page, next)
        }
    })
}

/// The search: a page of the subscribers that match, and the form to add one.
pub(super) async fn search(
    State(state): State<Shared>,
    Owner(who): Owner,
    Query(query): Query<SearchQuery>,
) -> Result<Response, AdminPageError> {
    let (page, next) = page(&state, &query).await?;
    let rows: Vec<_> = page
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "email": s.email.as_str(),
                "name": s.name,
                "status": s.status.as_str(),
                "lists": lists_text(s),
                "suppressed": s.suppression.as_ref().map(|p| p.reason.as_str()),
            })
        })
        .collect();
    let filters = query.query_string();
    Ok(render(
        &state,
        Some(&who),
        StatusCode::OK,
        "subscribers",
        json!({
            "rows": rows,
            "query": query,
            "lists": list_choices(&state).await?,
            "statuses": STATUSES,
            "next": next,
            "first": query.after.is_some().then_some(filters.clone()),
            "filters": filters,
        }),
    ))
}

/// What the add form and a person's forms post; each action reads the
/// fields it needs.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct PersonForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    /// `key=value` lines.
    #[serde(default)]
    attributes: String,
    #[serde(default)]
    list: String,
    #[serde(default)]
    confirmed: String,
    /// The person, who unsubscribed from everything, asked to come back.
    #[serde(default)]
    resubscribe: String,
    /// Set by the confirmation step of an erasure or an unsubscribe from
    /// every list.
    #[serde(default)]
    sure: String,
}

impl PersonForm {
    fn name(&self) -> Result<Option<SubscriberName>, AdminPageError> {
        SubscriberName::parse(&self.name).map_err(invalid)
    }

    fn attributes(&self) -> Result<Attributes, AdminPageError> {
        self.attributes
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| line.parse::<AttributePair>().map_err(invalid))
            .collect()
    }

    fn list(&self) -> Result<ListSlug, AdminPageError> {
        ListSlug::parse(self.list.trim())
            .map_err(|_| AdminPageError::Invalid("Choose a list.".into()))
    }
}

/// The web admin's hand in a person's record: its events say `admin`.
fn office(state: &AppState) -> Office<'_> {
    Office {
        subscribers: &*state.subscribers,
        lists: &*state.lists,
        feedback: &*state.feedback,
        source: EventSource::Admin,
    }
}

/// Subscribes `new` and writes the audit log, or says why the store
/// refused, with the way back for someone who unsubscribed from everything.
async fn subscribe(
    state: &Shared,
    who: &SignedIn,
    new: &NewSubscriber,
) -> Result<Subscriber, AdminPageError> {
    let subscriber = match state.subscribers.add_subscriber(new).await {
        Err(StoreError::Refused(refusal)) => {
            let way_back = match state.subscribers.suppression(&new.email).await? {
                Some(s) if s.reason == SuppressionReason::Unsubscribed && !new.resubscribe => {
                    " If they have asked you to add them again, tick “They asked to be added \
                     again”, which records their request."
                }
                _ => "",
            };
            return Err(AdminPageError::Invalid(format!("{refusal}.{way_back}")));
        }
        added => added?,
    };
    let action = if new.resubscribe {
        office(state).resubscribed(&subscriber, &new.lists).await?;
        "subscriber.resubscribe"
    } else {
        "subscriber.subscribe"
    };
    let lists: Vec<&str> = new.lists.iter().map(ListSlug::as_str).collect();
    let detail = format!("subscriber {} to {}", subscriber.id, lists.join(", "));
    admin::audit(&*state.admin, &who.actor(), action, &detail).await?;
    Ok(subscriber)
}

fn new_subscriber(
    form: &PersonForm,
    email: SubscriberEmail,
    name: Option<SubscriberName>,
    attributes: Attributes,
) -> Result<NewSubscriber, AdminPageError> {
    let resubscribe = !form.resubscribe.is_empty();
    Ok(NewSubscriber {
        email,
        name,
        attributes,
        lists: vec![form.list()?],
        // Someone who asked to come back has consented again.
        confirmed: !form.confirmed.is_empty() || resubscribe,
        resubscribe,
        consent: if resubscribe {
            Consent::resubscribed_by_admin(AdminChannel::Web)
        } else {
            Consent::by_admin(AdminChannel::Web, ConsentMethod::Admin)
        },
    })
}

/// Adds someone to a list, or an existing subscriber to one more.
pub(super) async fn add(
    State(state): State<Shared>,
    Owner(who): Owner,
    CsrfForm(form): CsrfForm<PersonForm>,
) -> Result<Response, AdminPageError> {
    let email = SubscriberEmail::parse(form.email.trim())
        .map_err(|e| invalid(format!("That is not a usable address: {e}.")))?;
    let new = new_subscriber(&form, email, form.name()?, form.attributes()?)?;
    let subscriber = subscribe(&state, &who, &new).await?;
    Ok(Redirect::to(&format!("/admin/subscribers/{}", subscriber.id)).into_response())
}

fn time(state: &Shared, at: chrono::DateTime<chrono::Utc>) -> String {
    at.with_timezone(&state.config.timezone)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// A person's page: every field, subscription and consent record kept
/// about them, their newest events, and the forms to change them.
pub(super) async fn person(
    State(state): State<Shared>,
    Owner(who): Owner,
    Path(id): Path<i64>,
) -> Result<Response, AdminPageError> {
    let s = state.people.subscriber_by_id(id).await?;
    let events = state
        .feedback
        .events(&EventFilter {
            email: Some(s.email.clone()),
            limit: EVENTS_SHOWN,
            ..EventFilter::default()
        })
        .await?;
    let memberships: Vec<_> = s
        .lists
        .iter()
        .map(|m| {
            json!({
                "slug": m.slug.as_str(),
                "status": m.status.as_str(),
                "consent_at": time(&state, m.consent.at),
                "consent_method": m.consent.method.as_str(),
                "consent_ip": m.consent.ip,
                "consent_wording": m.consent.wording,
                "confirmed_at": m.confirmed_at.map(|at| time(&state, at)),
                "unsubscribed_at": m.unsubscribed_at.map(|at| time(&state, at)),
            })
        })
        .collect();
    let events: Vec<_> = events
        .iter()
        .map(|e| {
            json!({
                "at": time(&state, e.at),
                "kind": e.kind.as_str(),
                "source": e.source.as_str(),
                "campaign": e.campaign_id,
                "status": e.status,
                "reason": e.reason,
            })
        })
        .collect();
    Ok(render(
        &state,
        Some(&who),
        StatusCode::OK,
        "subscriber",
        json!({
            "s": {
                "id": s.id,
                "email": s.email.as_str(),
                "name": s.name,
                "status": s.status.as_str(),
                "blocklisted": s.status == crate::subscribers::SubscriberStatus::Blocklisted,
                "attributes": attributes_lines(&s.attributes),
                "created": time(&state, s.created_at),
                "updated": time(&state, s.updated_at),
                "suppression": s.suppression.as_ref().map(|p| json!({
                    "reason": p.reason.as_str(),
                    "at": time(&state, p.at),
                })),
            },
            "memberships": memberships,
            "events": events,
            "lists": list_choices(&state).await?,
        }),
    ))
}

/// The confirmation step of an action that cannot be undone.
fn confirm(state: &Shared, who: &SignedIn, s: &Subscriber, action: &str) -> Response {
    let (title, text, button) = match action {
        "erase" => (
            "Erase this person?",
            "Every field, subscription and consent record is deleted, and the address is \
             removed from their events. Only a hash of the address is kept, so that no import \
             or sign-up adds it again. This cannot be undone.",
            "Erase everything",
        ),
        _ => (
            "Unsubscribe from every list?",
            "They leave every list, and the address is suppressed: no import adds it again. \
             Only they can come back, by asking you.",
            "Unsubscribe from every list",
        ),
    };
    render(
        state,
        Some(who),
        StatusCode::OK,
        "subscriber_confirm",
        json!({
            "id": s.id,
            "email": s.email.as_str(),
            "title": title,
            "text": text,
            "button": button,
            "action": action,
        }),
    )
}

/// One of a person's forms: `edit`, `subscribe`, `unsubscribe`, `block`,
/// `unblock` or `erase`. Unsubscribing from every list and erasing first
/// show a confirmation step.
pub(super) async fn act(
    State(state): State<Shared>,
    Owner(who): Owner,
    Path((id, action)): Path<(i64, String)>,
    CsrfForm(form): CsrfForm<PersonForm>,
) -> Result<Response, AdminPageError> {
    let s = state.people.subscriber_by_id(id).await?;
    let sure = form.sure == "yes";
    let here = format!("/admin/subscribers/{id}");
    let detail = format!("subscriber {id}");
    let log = |action: &'static str, detail: String| {
        let (state, actor) = (&state, who.actor());
        async move { admin::audit(&*state.admin, &actor, action, &detail).await }
    };
    match action.as_str() {
        "edit" => {
            let attributes = form.attributes()?;
            let unset = s
                .attributes
                .iter()
                .filter(|(k, _)| attributes.get(k).is_none())
                .map(|(k, _)| k.to_owned())
                .collect();
            let update = SubscriberUpdate {
                name: Some(form.name()?),
                set: attributes,
                unset,
            };
            state
                .subscribers
                .update_subscriber(&s.email, &update)
                .await?;
            log("subscriber.edit", detail).await?;
        }
        "subscribe" => {
            let new = new_subscriber(&form, s.email.clone(), None, Attributes::new())?;
            subscribe(&state, &who, &new).await?;
        }
        "unsubscribe" => {
            let list = match form.list.trim() {
                "" if !sure => return Ok(confirm(&state, &who, &s, "unsubscribe")),
                "" => None,
                _ => Some(form.list()?),
            };
            office(&state).unsubscribe(&s.email, list.as_ref()).await?;
            let from = list.as_ref().map_or("every list", ListSlug::as_str);
            log("subscriber.unsubscribe", format!("{detail} from {from}")).await?;
        }
        "block" | "unblock" => {
            let block = action == "block";
            state.subscribers.set_blocklisted(&s.email, block).await?;
            let verb = if block {
                "subscriber.block"
            } else {
                "subscriber.unblock"
            };
            log(verb, detail).await?;
        }
        "erase" if !sure => return Ok(confirm(&state, &who, &s, "erase")),
        "erase" => {
            state.subscribers.remove_subscriber(&s.email, true).await?;
            log("subscriber.erase", detail).await?;
            return Ok(Redirect::to("/admin/subscribers").into_response());
        }
        _ => return Err(AdminPageError::NotFound),
    }
    Ok(Redirect::to(&here).into_response())
}

/// Writes one CSV record to `out`.
fn csv_record(
    cells: impl IntoIterator<Item = impl AsRef<[u8]>>,
    out: &mut csv::Writer<Vec<u8>>,
) -> Result<(), AdminPageError> {
    out.write_record(cells)
        .map_err(|e| AdminPageError::Internal(e.into()))
}

/// The subscribers that match the search's filters, as CSV in the layout
/// an import reads, streamed a page at a time.
pub(super) async fn export(
    State(state): State<Shared>,
    Owner(who): Owner,
    Query(query): Query<SearchQuery>,
) -> Result<Response, AdminPageError> {
    let filter = query.filter()?;
    let keys = Arc::new(state.subscribers.attribute_keys().await?);
    let mut header = csv::Writer::from_writer(Vec::new());
    csv_record(spreadsheet::export_header(&keys), &mut header)?;
    let header = header
        .into_inner()
        .map_err(|e| AdminPageError::Internal(anyhow::anyhow!("{e}")))?;
    admin::audit(
        &*state.admin,
        &who.actor(),
        "subscriber.export",
        &query.query_string(),
    )
    .await?;
    let q = query.q.trim().to_owned();
    let start = if q.is_empty() {
        Next::Id(0)
    } else {
        Next::Search(None)
    };
    let pages = futures_util::stream::unfold(start, move |next| {
        let (state, keys, filter, q) = (
            Arc::clone(&state),
            Arc::clone(&keys),
            filter.clone(),
            q.clone(),
        );
        async move {
            if matches!(next, Next::Done) {
                return None;
            }
            let (page, next) = match export_page(&state, &q, &filter, next).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::error!(error = %e, "an export of subscribers failed");
                    return Some((Err(std::io::Error::other("the export failed")), Next::Done));
                }
            };
            let mut out = csv::Writer::from_writer(Vec::new());
            for s in &page {
                let row: Vec<_> = spreadsheet::export_row(s, &keys).collect();
                if let Err(e) = out.write_record(row.iter().map(|cell| cell.as_bytes())) {
                    return Some((Err(std::io::Error::other(e)), Next::Done));
                }
            }
            let bytes = out
                .into_inner()
                .map_err(|e| std::io::Error::other(e.to_string()));
            Some((bytes.map(Bytes::from), next))
        }
    });
    let body = futures_util::stream::once(async move { Ok(Bytes::from(header)) }).chain(pages);
    Ok(csv_download(
        Body::from_stream(body),
        "attachment; filename=\"subscribers.csv\"",
    ))
}
