//! The dashboard: what is sending, what waits for approval, what went
//! wrong, and the audience's last week. It refreshes itself (a meta
//! refresh, no script) while a campaign is sending.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Days, Utc};
use serde_json::json;

use super::pages::{AdminPageError, render};
use super::session::SignedIn;
use crate::campaigns::CampaignState;
use crate::web::Shared;

/// Seconds between refreshes while something is sending.
const REFRESH_SECS: u32 = 15;
/// Days of sign-ups, unsubscribes, bounces and complaints shown.
const ACTIVITY_DAYS: u64 = 7;

pub(super) async fn show(
    State(state): State<Shared>,
    who: SignedIn,
) -> Result<Response, AdminPageError> {
    let now = Utc::now();
    let zone = state.config.timezone;
    let local = |at: chrono::DateTime<Utc>| {
        at.with_timezone(&zone)
            .format("%a %-d %b %H:%M")
            .to_string()
    };
    let campaigns = state.campaigns.campaigns().await?;
    let mut sending = Vec::new();
    for c in campaigns
        .iter()
        .filter(|c| c.state == CampaignState::Sending)
    {
        let counts = state.campaigns.delivery_counts(c.id).await?;
        let recent = state
            .campaigns
            .sent_since(c.id, now - chrono::Duration::seconds(60))
            .await?;
        let rate = recent.rate(Some(now)).unwrap_or(0.0);
        let total = counts.total();
        let finished = counts.sent + counts.failed + counts.skipped;
        let left = counts.queued + counts.sending + counts.deferred;
        let eta = (rate > 0.0 && left > 0).then(|| {
            let seconds = (left as f64 / rate).ceil() as i64;
            local(now + chrono::Duration::seconds(seconds))
        });
        sending.push(json!({
            "id": c.id,
            "title": c.report_title,
            "sent": counts.sent,
            "failed": counts.failed,
            "finished": finished,
            "total": total,
            "percent": if total > 0 { finished * 100 / total } else { 100 },
            "rate": format!("{rate:.1}"),
            "eta": eta,
        }));
    }
    let waiting: Vec<_> = campaigns
        .iter()
        .filter(|c| matches!(c.state, CampaignState::Held | CampaignState::Paused))
        .map(|c| {
            json!({
                "id": c.id,
                "title": c.report_title,
                "state": c.state,
                "reason": c.pause_reason,
                "lists": c.lists,
            })
        })
        .collect();
    let today = now.with_timezone(&zone).date_naive();
    let held_by = today - Days::new(u64::from(state.config.report_overdue_days));
    let overdue: Vec<_> = state
        .meetings
        .overdue_meetings(held_by)
        .await?
        .into_iter()
        .map(|m| json!({"held_on": m.held_on.to_string(), "title": m.title}))
        .collect();
    let feed_errors: Vec<_> = state
        .sources
        .sources()
        .await?
        .into_iter()
        .filter_map(|s| {
            let error = s.last_error?;
            Some(json!({"url": s.url, "error": error, "checked": s.last_checked_at.map(local)}))
        })
        .collect();
    let activity = state
        .admin
        .activity(now - chrono::Duration::days(ACTIVITY_DAYS as i64))
        .await?;
    let next_window = state.config.dispatch_schedule.next_after(now).map(local);
    Ok(render(
        &state,
        Some(&who),
        StatusCode::OK,
        "dashboard",
        json!({
            "refresh": (!sending.is_empty()).then_some(REFRESH_SECS),
            "sending": sending,
            "waiting": waiting,
            "overdue": overdue,
            "feed_errors": feed_errors,
            "activity": activity,
            "days": ACTIVITY_DAYS,
            "next_window": next_window,
        }),
    ))
}
