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
use crate::campaigns::{self, CampaignState};
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
        let progress = campaigns::progress(&*state.campaigns, c, now).await?;
        sending.push(super::campaigns::progress_json(c, &progress, now, zone));
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
