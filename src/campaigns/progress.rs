//! How far a campaign has got: its deliveries by state, the rate of the
//! last minute and, at that rate, how long it has left. `campaign status`,
//! the web admin's campaign pages and its dashboard all show this.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Campaign, CampaignState, CampaignStore, DeliveryCounts};
use crate::error::StoreError;

/// The rate is measured over the messages sent in this last stretch.
const RATE_WINDOW: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Progress {
    pub deliveries: DeliveryCounts,
    /// Messages sent per second over the last minute, counted over the time
    /// they were being sent (0 when there were none).
    pub rate: f64,
    /// Seconds until the queue is empty at that rate.
    pub eta_seconds: Option<u64>,
}

impl Progress {
    /// Deliveries still to send: queued, being sent, or to be tried again.
    pub fn left(&self) -> i64 {
        let d = &self.deliveries;
        d.queued + d.sending + d.deferred
    }

    /// The share of deliveries finished, in whole percent; 100 of none.
    pub fn percent(&self) -> i64 {
        let total = self.deliveries.total();
        if total > 0 {
            self.deliveries.finished() * 100 / total
        } else {
            100
        }
    }
}

/// How far `campaign` has got at `now`.
pub async fn progress(
    store: &dyn CampaignStore,
    campaign: &Campaign,
    now: DateTime<Utc>,
) -> Result<Progress, StoreError> {
    let deliveries = store.delivery_counts(campaign.id).await?;
    let recent = store.sent_since(campaign.id, now - RATE_WINDOW).await?;
    // While it sends, the time since the last message counts too.
    let until = (campaign.state == CampaignState::Sending).then_some(now);
    let rate = recent.rate(until).unwrap_or(0.0);
    let mut progress = Progress {
        deliveries,
        rate,
        eta_seconds: None,
    };
    let left = progress.left();
    progress.eta_seconds = (rate > 0.0 && left > 0).then(|| (left as f64 / rate).ceil() as u64);
    Ok(progress)
}

/// A duration in words for people: `42s`, `3m05s`, `2h10m`.
pub fn human_duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}
