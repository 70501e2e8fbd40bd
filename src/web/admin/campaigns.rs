//! Campaigns: the list, a new one from a report, the status page with its
//! recipients, a test message, and approving, pausing, resuming, cancelling
//! and retrying. Everything goes through the same domain code and store as
//! `necmail campaign …`.
//!
//! An editor may prepare a campaign, which is then held until an owner
//! approves it, and send a test message to their own address; only an owner
//! may let a campaign go, steer it, or see its recipients (subscriber data).
//! Letting a campaign go to more than [`CONFIRM_ABOVE`] people, and
//! cancelling one, take a second step that says what will happen. While a
//! campaign sends, its page refreshes itself (a meta refresh, no script).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::pages::{AdminPageError, render};
use super::session::{CsrfForm, Owner, SignedIn};
use crate::admin;
use crate::campaigns::{
    self, Campaign, CampaignState, CreateError, DeliveryRecord, DeliveryState, NewCampaign,
    Progress, excerpt_refusal, human_duration, parse_at,
};
use crate::delivery::one_off::{OneOffError, TestSender};
use crate::lists::ListSlug;
use crate::reports::ReportRef;
use crate::subscribers::{AttributePair, Attributes, ROLES, SubscriberEmail};
use crate::web::Shared;

/// Letting a campaign go to more people than this needs a confirmation.
pub(super) const CONFIRM_ABOVE: i64 = 100;
/// Campaigns on a page of the list.
const PAGE: i64 = 50;
/// Recipients on a page of a campaign's status.
const RECIPIENTS_PAGE: i64 = 50;
/// The latest errors a campaign's page shows.
const LAST_ERRORS: i64 = 5;
/// Seconds between refreshes of a page while its campaign sends.
const REFRESH_SECS: u32 = 5;
/// The longest search a recipient table takes, in characters.
const MAX_SEARCH: usize = 254;
/// The most attribute values a campaign's filter may name.
const MAX_FILTER: usize = 20;
/// The prefix of the new-campaign form's list checkboxes: `list:SLUG`.
const LIST_FIELD: &str = "list:";

/// A posted form's fields by name (the CSRF token among them).
type Fields = BTreeMap<String, String>;

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.get(name).map_or("", String::as_str)
}

fn confirmed(fields: &Fields) -> bool {
    field(fields, "confirm") == "yes"
}

/// A moment in the office's time zone.
fn local(at: DateTime<Utc>, zone: Tz) -> String {
    at.with_timezone(&zone)
        .format("%a %-d %b %Y %H:%M")
        .to_string()
}

/// A campaign's progress as the pages show it: counts, percent, rate and
/// when it will be done. The dashboard shows the same.
pub(super) fn progress_json(c: &Campaign, p: &Progress, now: DateTime<Utc>, zone: Tz) -> Value {
    let d = &p.deliveries;
    json!({
        "id": c.id,
        "title": c.report_title,
        "queued": d.queued,
        "sending": d.sending,
        "sent": d.sent,
        "deferred": d.deferred,
        "failed": d.failed,
        "skipped": d.skipped,
        "ambiguous": d.ambiguous,
        "bounced": d.bounced,
        "complained": d.complained,
        "finished": d.finished(),
        "total": d.total(),
        "percent": p.percent(),
        "rate": format!("{:.1}", p.rate),
        "eta": p
            .eta_seconds
            .and_then(|s| chrono::Duration::try_seconds(i64::try_from(s).ok()?))
            .and_then(|left| now.checked_add_signed(left))
            .map(|done| local(done, zone)),
        "left": p.eta_seconds.map(human_duration),
    })
}

fn slugs(lists: &[ListSlug]) -> String {
    lists
        .iter()
        .map(ListSlug::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn filter_text(filter: &Attributes) -> String {
    filter
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The campaign's line in the audit log.
fn detail(c: &Campaign) -> String {
    format!("{} {}", c.id, c.report_title)
}

fn to_campaign(id: i64) -> Response {
    Redirect::to(&format!("/admin/campaigns/{id}")).into_response()
}

#[derive(serde::Deserialize)]
pub(super) struct ListQuery {
    before: Option<i64>,
}

/// The campaigns, newest first, a page at a time (keyset: older than one).
pub(super) async fn list(
    State(state): State<Shared>,
    who: SignedIn,
    Query(query): Query<ListQuery>,
) -> Result<Response, AdminPageError> {
    let page = state
        .campaigns
        .campaigns_page(query.before, PAGE + 1)
        .await?;
    let more = page.len() as i64 > PAGE;
    let zone = state.config.timezone;
    let mut rows = Vec::new();
    for c in page.iter().take(PAGE as usize) {
        let tally = state.campaigns.tally(c.id).await?;
        let when = c.started_at.or(c.send_at).map(|t| local(t, zone));
        rows.push(json!({
            "id": c.id,
            "title": c.report_title,
            "state": c.state,
            "lists": slugs(&c.lists),
            "sent": tally.sent,
            "failed": tally.failed,
            "total": tally.total,
            "when": when,
        }));
    }
    let older = more
        .then(|| page.get(PAGE as usize - 1).map(|c| c.id))
        .flatten();
    Ok(render(
        &state,
        Some(&who),
        StatusCode::OK,
        "campaigns",
        json!({"campaigns": rows, "older": older, "newest": query.before.is_some()}),
    ))
}

#[derive(serde::Deserialize)]
pub(super) struct NewQuery {
    report: Option<i64>,
}

/// The form of a new campaign, filled in with `fields`.
async fn new_form(
    state: &Shared,
    who: &SignedIn,
    status: StatusCode,
    fields: &Fields,
    error: Option<&str>,
) -> Result<Response, AdminPageError> {
    let zone = state.config.timezone;
    let reports: Vec<Value> = state
        .reports
        .reports()
        .await?
        .iter()
        .rev()
        .map(|r| json!({"id": r.id.to_string(), "title": r.title}))
        .collect();
    let lists: Vec<Value> = state
        .lists
        .lists()
        .await?
        .iter()
        .map(|l| {
            let name = format!("{LIST_FIELD}{}", l.slug);
            json!({
                "field": name,
                "slug": l.slug,
                "name": l.name,
                "confirmed": l.subscribers.confirmed,
                "checked": fields.contains_key(&name),
            })
        })
        .collect();
    let when = match field(fields, "when") {
        "" => "now",
        other => other,
    };
    let next_window = state
        .config
        .dispatch_schedule
        .next_after(Utc::now())
        .map(|t| local(t, zone));
    Ok(render(
        state,
        Some(who),
        status,
        "campaign_new",
        json!({
            "reports": reports,
            "report": field(fields, "report"),
            "lists": lists,
            "filter": field(fields, "where"),
            "when": when,
            "at": field(fields, "at"),
            "subject": field(fields, "subject"),
            "max_subject": campaigns::MAX_SUBJECT,
            "again": fields.contains_key("again"),
            "allow_excerpt": fields.contains_key("allow_excerpt"),
            "next_window": next_window,
            "zone": zone.name(),
            "error": error,
        }),
    ))
}

pub(super) async fn new_page(
    State(state): State<Shared>,
    who: SignedIn,
    Query(query): Query<NewQuery>,
) -> Result<Response, AdminPageError> {
    let mut fields = Fields::new();
    if let Some(report) = query.report {
        fields.insert("report".into(), report.to_string());
    }
    new_form(&state, &who, StatusCode::OK, &fields, None).await
}

/// What the new-campaign form asks for.
struct Asked {
    new: NewCampaign,
    report_id: i64,
    again: bool,
}

/// What the new-campaign form asks for, or why it cannot be used.
fn read_new(state: &Shared, fields: &Fields, hold: bool) -> Result<Asked, String> {
    let report_id: i64 = field(fields, "report")
        .parse()
        .map_err(|_| "Choose a report.".to_owned())?;
    let lists = fields
        .keys()
        .filter_map(|k| k.strip_prefix(LIST_FIELD))
        .map(|slug| ListSlug::parse(slug).map_err(|e| format!("That list cannot be used: {e}.")))
        .collect::<Result<Vec<_>, _>>()?;
    if lists.is_empty() {
        return Err("Choose at least one list.".into());
    }
    let filter = field(fields, "where")
        .split([' ', ',', '\n', '\r', '\t'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<AttributePair>()
                .map_err(|e| format!("The filter {p:?} cannot be used: {e}."))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if filter.len() > MAX_FILTER {
        return Err(format!(
            "A filter has at most {MAX_FILTER} attribute values."
        ));
    }
    let now = Utc::now();
    let send_at = match field(fields, "when") {
        "now" | "" => now,
        "window" => state
            .config
            .dispatch_schedule
            .next_after(now)
            .ok_or_else(|| "There is no dispatch window to wait for.".to_owned())?,
        "at" => {
            let at = parse_at(field(fields, "at"), state.config.timezone)
                .map_err(|e| format!("The start time cannot be used: {e}."))?;
            if at < now - chrono::Duration::minutes(1) {
                return Err("That start time has passed.".into());
            }
            at
        }
        _ => return Err("Choose when to send it.".into()),
    };
    let subject = field(fields, "subject").to_owned();
    let new = NewCampaign {
        report: ReportRef::Id(report_id),
        lists,
        filter,
        send_at: Some(send_at),
        subject: (!subject.trim().is_empty()).then_some(subject),
        hold,
        allow_excerpt: fields.contains_key("allow_excerpt"),
    };
    Ok(Asked {
        new,
        report_id,
        again: fields.contains_key("again"),
    })
}

/// The subject a campaign's email has: its own, or the template's.
async fn subject_of(
    state: &Shared,
    report_id: i64,
    own: Option<&str>,
) -> Result<String, AdminPageError> {
    if let Some(own) = own {
        return Ok(own.to_owned());
    }
    let report = state.reports.report(&ReportRef::Id(report_id)).await?;
    Ok(super::reports::rendered(state, &report, ROLES[0])?.subject)
}

/// The second step before something happens: what it is, and a form that
/// posts `fields` again to `action` with `confirm=yes`.
struct Confirmation<'a> {
    title: String,
    text: String,
    /// How many people it goes to, and the subject they see.
    count: Option<i64>,
    subject: Option<String>,
    action: String,
    fields: Vec<(&'a str, &'a str)>,
    button: &'a str,
    danger: bool,
    back: String,
}

fn confirm_page(state: &Shared, who: &SignedIn, c: Confirmation<'_>) -> Response {
    let fields: Vec<Value> = c
        .fields
        .iter()
        .filter(|(name, _)| !matches!(*name, "csrf" | "confirm"))
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    render(
        state,
        Some(who),
        StatusCode::OK,
        "campaign_confirm",
        json!({
            "title": c.title,
            "text": c.text,
            "count": c.count,
            "subject": c.subject,
            "action": c.action,
            "fields": fields,
            "button": c.button,
            "danger": c.danger,
            "back": c.back,
        }),
    )
}

/// Creates a campaign: scheduled when an owner asks (after a confirmation
/// when it goes to more than [`CONFIRM_ABOVE`] people), held for an owner's
/// approval when an editor does.
pub(super) async fn create(
    State(state): State<Shared>,
    who: SignedIn,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, AdminPageError> {
    let owner = who.account.is_owner();
    let refuse = |error: String| {
        let (state, who, fields) = (&state, &who, &fields);
        async move {
            new_form(
                state,
                who,
                StatusCode::UNPROCESSABLE_ENTITY,
                fields,
                Some(&error),
            )
            .await
        }
    };
    let Asked {
        new,
        report_id,
        again,
    } = match read_new(&state, &fields, !owner) {
        Ok(asked) => asked,
        Err(error) => return refuse(error).await,
    };
    let filter: Attributes = new.filter.iter().cloned().collect();
    let audience = match state.campaigns.audience(&new.lists, &filter).await {
        Ok(n) => n,
        Err(e) if e.is_bad_input() => return refuse(format!("{e}.")).await,
        Err(e) => return Err(e.into()),
    };
    if audience == 0 {
        return refuse(
            "Nobody would get it: no confirmed subscriber of those lists matches the filter \
             (blocked and suppressed addresses never do)."
                .into(),
        )
        .await;
    }
    if owner && audience > CONFIRM_ABOVE && !confirmed(&fields) {
        let report = state.reports.report(&new.report).await?;
        let subject = subject_of(&state, report_id, new.subject.as_deref()).await?;
        let starts = new
            .send_at
            .filter(|at| *at > Utc::now() + chrono::Duration::minutes(1));
        let text = match starts {
            Some(at) => format!(
                "“{}” will be sent to {} from {}.",
                report.title,
                slugs(&new.lists),
                local(at, state.config.timezone)
            ),
            None => format!(
                "“{}” will be sent to {} at once.",
                report.title,
                slugs(&new.lists)
            ),
        };
        return Ok(confirm_page(
            &state,
            &who,
            Confirmation {
                title: "Send this campaign?".into(),
                text,
                count: Some(audience),
                subject: Some(subject),
                action: "/admin/campaigns/new".into(),
                fields: fields
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
                button: "Yes, send it",
                danger: false,
                back: format!("/admin/campaigns/new?report={report_id}"),
            },
        ));
    }
    let lists = slugs(&new.lists);
    let campaign = match campaigns::create(&*state.reports, &*state.campaigns, new, again).await {
        Ok(campaign) => campaign,
        Err(e @ CreateError::Repeat { .. }) => {
            return refuse(format!(
                "{e}: tick “Send again” to send it to those lists once more."
            ))
            .await;
        }
        Err(CreateError::Excerpt(slug)) => {
            let how = "tick “Send the excerpt as it is”";
            return refuse(excerpt_refusal(&slug, how)).await;
        }
        Err(e @ CreateError::Subject) => {
            return refuse(format!("{}.", capital(&e.to_string()))).await;
        }
        Err(CreateError::Store(e)) if e.is_bad_input() => return refuse(format!("{e}.")).await,
        Err(CreateError::Store(e)) => return Err(e.into()),
    };
    let held = if owner { "" } else { ", held for approval" };
    admin::audit(
        &*state.admin,
        &who.actor(),
        "campaign.create",
        &format!("{} to {lists} ({audience} people){held}", detail(&campaign)),
    )
    .await?;
    Ok(to_campaign(campaign.id))
}

fn capital(sentence: &str) -> String {
    let mut chars = sentence.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[derive(serde::Deserialize)]
pub(super) struct StatusQuery {
    state: Option<String>,
    q: Option<String>,
    /// The page after this delivery, in id order.
    after: Option<i64>,
    /// In a search, the page after the address with this key.
    from: Option<String>,
}

/// A campaign's page: where it stands, its progress, what an owner may do,
/// and for an owner its last errors and its recipients, a page at a time.
pub(super) async fn show(
    State(state): State<Shared>,
    who: SignedIn,
    Path(id): Path<i64>,
    Query(query): Query<StatusQuery>,
) -> Result<Response, AdminPageError> {
    let campaign = state.campaigns.campaign(id).await?;
    let now = Utc::now();
    let zone = state.config.timezone;
    let progress = campaigns::progress(&*state.campaigns, &campaign, now).await?;
    let owner = who.account.is_owner();
    let wanted = match query.state.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(
            s.parse::<DeliveryState>()
                .map_err(|_| AdminPageError::NotFound)?,
        ),
        None => None,
    };
    let search: Option<String> = query
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(|q| q.chars().take(MAX_SEARCH).collect());
    let (errors, recipients, next) = if owner {
        let errors: Vec<Value> = state
            .campaigns
            .recent_errors(id, LAST_ERRORS)
            .await?
            .iter()
            .map(|e| {
                json!({
                    "email": e.email,
                    "state": e.state,
                    "error": e.error,
                    "at": local(e.at, zone),
                })
            })
            .collect();
        let limit = RECIPIENTS_PAGE + 1;
        let page: Vec<(String, DeliveryRecord)> = match &search {
            Some(q) => {
                let from = query.from.as_deref();
                state
                    .campaigns
                    .search_deliveries(id, wanted, q, from, limit)
                    .await?
            }
            None => {
                let after = query.after.unwrap_or(0);
                let page = state.campaigns.deliveries(id, wanted, after, limit).await?;
                page.into_iter().map(|d| (d.id.to_string(), d)).collect()
            }
        };
        let more = page.len() as i64 > RECIPIENTS_PAGE;
        let rows: Vec<Value> = page
            .iter()
            .take(RECIPIENTS_PAGE as usize)
            .map(|(_, d)| {
                json!({
                    "email": d.email,
                    "list": d.list,
                    "state": d.state,
                    "attempts": d.attempts,
                    "reply": d.last_reply,
                    "at": local(d.sent_at.unwrap_or(d.updated_at), zone),
                })
            })
            .collect();
        let next = more
            .then(|| page.get(RECIPIENTS_PAGE as usize - 1))
            .flatten()
            .map(|(last, _)| recipients_link(id, wanted, search.as_deref(), Some(last)));
        (errors, rows, next)
    } else {
        (Vec::new(), Vec::new(), None)
    };
    let s = campaign.state;
    let soon = campaign
        .send_at
        .is_some_and(|at| at <= now + chrono::Duration::minutes(1));
    let live = s == CampaignState::Sending || (s == CampaignState::Scheduled && soon);
    let states: Vec<&str> = DeliveryState::ALL.iter().map(|s| s.as_str()).collect();
    Ok(render(
        &state,
        Some(&who),
        StatusCode::OK,
        "campaign",
        json!({
            "campaign": {
                "id": campaign.id,
                "report_id": campaign.report_id,
                "title": campaign.report_title,
                "state": s,
                "reason": campaign.pause_reason,
                "lists": slugs(&campaign.lists),
                "filter": filter_text(&campaign.filter),
                "subject": campaign.subject,
                "send_at": campaign.send_at.map(|t| local(t, zone)),
                "created": local(campaign.created_at, zone),
                "started": campaign.started_at.map(|t| local(t, zone)),
                "finished": campaign.finished_at.map(|t| local(t, zone)),
            },
            "progress": progress_json(&campaign, &progress, now, zone),
            "refresh": live.then_some(REFRESH_SECS),
            "can": {
                "approve": owner && s == CampaignState::Held,
                "pause": owner && matches!(s, CampaignState::Scheduled | CampaignState::Held
                    | CampaignState::Sending),
                "resume": owner && s == CampaignState::Paused,
                "cancel": owner && !matches!(s, CampaignState::Done | CampaignState::Cancelled),
                "retry": owner && progress.deliveries.failed + progress.deliveries.deferred > 0,
            },
            "errors": errors,
            "recipients": recipients,
            "states": states,
            "wanted": wanted,
            "search": search,
            "first": (query.after.is_some() || query.from.is_some())
                .then(|| recipients_link(id, wanted, search.as_deref(), None)),
            "next": next,
            "test_to": who.account.email,
        }),
    ))
}

/// The link to a page of a campaign's recipients: the one after `after`,
/// a delivery's id, or in a search an address's key.
fn recipients_link(
    id: i64,
    state: Option<DeliveryState>,
    search: Option<&str>,
    after: Option<&str>,
) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(state) = state {
        query.append_pair("state", state.as_str());
    }
    if let Some(search) = search {
        query.append_pair("q", search);
    }
    if let Some(after) = after {
        query.append_pair(if search.is_some() { "from" } else { "after" }, after);
    }
    format!("/admin/campaigns/{id}?{}#recipients", query.finish())
}

/// Sends the campaign's email as a test message: an owner to any address,
/// an editor to their own.
pub(super) async fn test(
    State(state): State<Shared>,
    who: SignedIn,
    Path(id): Path<i64>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, AdminPageError> {
    let campaign = state.campaigns.campaign(id).await?;
    let asked = match field(&fields, "to").trim() {
        typed if who.account.is_owner() && !typed.is_empty() => typed.to_owned(),
        _ => who.account.email.clone(),
    };
    let to = SubscriberEmail::parse(&asked)
        .map_err(|e| AdminPageError::Invalid(format!("That address cannot be used: {e}.")))?;
    let report = state
        .reports
        .report(&ReportRef::Id(campaign.report_id))
        .await?;
    let sender = TestSender {
        config: &state.config,
        templates: std::sync::Arc::clone(&state.templates),
        transport: &*state.transport,
        people: &*state.subscribers,
        lists: &*state.lists,
    };
    match sender.send(&report, campaign.subject.clone(), &to).await {
        Ok(_) => {}
        Err(OneOffError::Invalid(m) | OneOffError::NotSent(m)) => {
            return Err(AdminPageError::Invalid(format!("{}.", capital(&m))));
        }
        Err(OneOffError::Store(e)) => return Err(e.into()),
    }
    admin::audit(
        &*state.admin,
        &who.actor(),
        "campaign.test",
        &format!("{} to {to}", detail(&campaign)),
    )
    .await?;
    Ok(render(
        &state,
        Some(&who),
        StatusCode::OK,
        "notice",
        json!({
            "title": "Test message sent",
            "text": format!("“{}” went to {to} as a test message.", campaign.report_title),
            "link": format!("/admin/campaigns/{id}"),
            "link_text": "Back to the campaign",
        }),
    ))
}

/// Asks first when letting `campaign` go would send it to more than
/// [`CONFIRM_ABOVE`] people: the confirmation page, or `None` to go ahead.
async fn confirm_sending(
    state: &Shared,
    who: &SignedIn,
    campaign: &Campaign,
    fields: &Fields,
    verb: &str,
) -> Result<Option<Response>, AdminPageError> {
    if confirmed(fields) {
        return Ok(None);
    }
    let audience = state
        .campaigns
        .audience(&campaign.lists, &campaign.filter)
        .await?;
    if audience <= CONFIRM_ABOVE {
        return Ok(None);
    }
    let subject = subject_of(state, campaign.report_id, campaign.subject.as_deref()).await?;
    let starts = campaign
        .send_at
        .filter(|at| *at > Utc::now() + chrono::Duration::minutes(1))
        .map_or_else(
            || "at once".to_owned(),
            |at| format!("from {}", local(at, state.config.timezone)),
        );
    Ok(Some(confirm_page(
        state,
        who,
        Confirmation {
            title: format!("{} this campaign?", capital(verb)),
            text: format!(
                "“{}” will be sent to {} {starts}.",
                campaign.report_title,
                slugs(&campaign.lists)
            ),
            count: Some(audience),
            subject: Some(subject),
            action: format!("/admin/campaigns/{}/{verb}", campaign.id),
            fields: Vec::new(),
            button: "Yes, send it",
            danger: false,
            back: format!("/admin/campaigns/{}", campaign.id),
        },
    )))
}

/// Approves a held campaign: it starts at its time, or at once.
pub(super) async fn approve(
    State(state): State<Shared>,
    Owner(who): Owner,
    Path(id): Path<i64>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, AdminPageError> {
    let campaign = state.campaigns.campaign(id).await?;
    if campaign.state == CampaignState::Held
        && let Some(page) = confirm_sending(&state, &who, &campaign, &fields, "approve").await?
    {
        return Ok(page);
    }
    let campaign = state.campaigns.approve_campaign(id, Utc::now()).await?;
    admin::audit(
        &*state.admin,
        &who.actor(),
        "campaign.approve",
        &detail(&campaign),
    )
    .await?;
    Ok(to_campaign(id))
}

/// Moves a campaign to `to` and logs it as `action`.
async fn steer(
    state: &Shared,
    who: &SignedIn,
    id: i64,
    to: CampaignState,
    reason: Option<&str>,
    action: &str,
) -> Result<Response, AdminPageError> {
    let campaign = state.campaigns.set_campaign_state(id, to, reason).await?;
    admin::audit(&*state.admin, &who.actor(), action, &detail(&campaign)).await?;
    Ok(to_campaign(id))
}

pub(super) async fn pause(
    State(state): State<Shared>,
    Owner(who): Owner,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<Fields>,
) -> Result<Response, AdminPageError> {
    let reason = format!("paused by {}", who.account.email);
    steer(
        &state,
        &who,
        id,
        CampaignState::Paused,
        Some(&reason),
        "campaign.pause",
    )
    .await
}

/// Resumes a paused campaign; one that never started waits for its time
/// again, after a confirmation when it goes to many.
pub(super) async fn resume(
    State(state): State<Shared>,
    Owner(who): Owner,
    Path(id): Path<i64>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, AdminPageError> {
    let campaign = state.campaigns.campaign(id).await?;
    if campaign.state == CampaignState::Paused
        && campaign.started_at.is_none()
        && let Some(page) = confirm_sending(&state, &who, &campaign, &fields, "resume").await?
    {
        return Ok(page);
    }
    steer(
        &state,
        &who,
        id,
        CampaignState::Sending,
        None,
        "campaign.resume",
    )
    .await
}

/// Cancels a campaign, after a confirmation: what is not sent yet never is.
pub(super) async fn cancel(
    State(state): State<Shared>,
    Owner(who): Owner,
    Path(id): Path<i64>,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, AdminPageError> {
    let campaign = state.campaigns.campaign(id).await?;
    if !confirmed(&fields) {
        let progress = campaigns::progress(&*state.campaigns, &campaign, Utc::now()).await?;
        let text = match campaign.started_at {
            Some(_) => format!(
                "“{}” has gone to {} of {} recipients; the {} not sent yet never will be. \
                 This cannot be undone.",
                campaign.report_title,
                progress.deliveries.sent,
                progress.deliveries.total(),
                progress.left(),
            ),
            None => format!(
                "“{}” will not be sent. This cannot be undone.",
                campaign.report_title
            ),
        };
        return Ok(confirm_page(
            &state,
            &who,
            Confirmation {
                title: "Cancel this campaign?".into(),
                text,
                count: None,
                subject: None,
                action: format!("/admin/campaigns/{id}/cancel"),
                fields: Vec::new(),
                button: "Yes, cancel it",
                danger: true,
                back: format!("/admin/campaigns/{id}"),
            },
        ));
    }
    steer(
        &state,
        &who,
        id,
        CampaignState::Cancelled,
        None,
        "campaign.cancel",
    )
    .await
}

/// Tries deferred deliveries now and failed ones again.
pub(super) async fn retry(
    State(state): State<Shared>,
    Owner(who): Owner,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<Fields>,
) -> Result<Response, AdminPageError> {
    let campaign = state.campaigns.campaign(id).await?;
    let n = state.campaigns.retry_deliveries(id, true).await?;
    admin::audit(
        &*state.admin,
        &who.actor(),
        "campaign.retry",
        &format!("{}: {n} deliveries", detail(&campaign)),
    )
    .await?;
    Ok(to_campaign(id))
}
