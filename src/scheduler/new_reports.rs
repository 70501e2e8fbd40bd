//! The poll's work on the feeds, which the daemon's poll tick and
//! `necmail source poll` share: poll every source, then make a campaign for
//! the new reports, to the source's lists (else `NECMAIL_DEFAULT_LISTS`),
//! starting at the next dispatch window, or held when
//! `NECMAIL_AUTO_DISPATCH=hold`.
//!
//! A source gets at most one campaign per dispatch window, so that a feed
//! that publishes several posts at once mails each subscriber once: of a
//! poll's new reports, the newest gets the campaign, and the others are
//! held: stored, with no campaign, logged at warn and reported. When a
//! campaign from the source already starts at that window (made by an
//! earlier poll), every new report of the source is held.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::campaigns::{Campaign, CampaignStore, NewCampaign};
use crate::config::{AutoDispatch, Config};
use crate::error::StoreError;
use crate::reports::feeds::{FetchError, Fetcher, PollOutcome, SourcePoll, poll_all};
use crate::reports::{Report, ReportRef, ReportStore, SourceStore};

/// Why the sources could not be polled at all.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Fetcher(#[from] FetchError),
}

/// What polling the sources did.
#[derive(Debug, Default)]
pub struct Polled {
    /// Each source's poll, in the order of their ids.
    pub sources: Vec<SourcePoll>,
    /// The campaigns made for new reports.
    pub campaigns: Vec<Campaign>,
    /// The new reports that got no campaign, oldest first within each source.
    pub unsent: Vec<Unsent>,
}

/// A new report that got no campaign.
#[derive(Debug, Clone)]
pub struct Unsent {
    pub report: Report,
    pub why: NoCampaign,
}

/// Why a new report got no campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoCampaign {
    /// Held: the source's newer report `newest`, new in the same poll, has
    /// the campaign.
    Newer { newest: i64 },
    /// Held: `campaign`, of the same source, already starts at the window.
    WindowTaken { campaign: i64 },
    /// The source names no list and `NECMAIL_DEFAULT_LISTS` is unset.
    NoLists,
    /// The store failed.
    Failed(String),
}

impl NoCampaign {
    /// True when the report was held by the one-campaign-per-window rule.
    pub fn is_held(&self) -> bool {
        matches!(
            self,
            NoCampaign::Newer { .. } | NoCampaign::WindowTaken { .. }
        )
    }
}

impl fmt::Display for NoCampaign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoCampaign::Newer { newest } => write!(
                f,
                "held: report {newest} is newer, and a source gets one campaign per dispatch window"
            ),
            NoCampaign::WindowTaken { campaign } => write!(
                f,
                "held: campaign {campaign} already sends a report of this source \
                 in that dispatch window"
            ),
            NoCampaign::NoLists => f.write_str(
                "no campaign: the source names no list and NECMAIL_DEFAULT_LISTS is unset",
            ),
            NoCampaign::Failed(error) => write!(
                f,
                "no campaign: {error}; create it with `necmail campaign create`"
            ),
        }
    }
}

/// Polls every source at `now` and makes the new reports' campaigns: see
/// the module's documentation. Only a failure to poll at all is an error; a
/// campaign that cannot be made is logged and reported as unsent.
#[tracing::instrument(skip_all, fields(%now))]
pub async fn poll_sources<S>(
    store: &S,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Polled, TickError>
where
    S: ReportStore + SourceStore + CampaignStore + ?Sized,
{
    let fetcher = Fetcher::from_config(config)?;
    let sources = poll_all(store, &fetcher).await?;
    let mut polled = Polled::default();
    let send_at = config.dispatch_schedule.next_after(now);
    for poll in &sources {
        make_campaign(store, config, poll, send_at, &mut polled).await;
    }
    polled.sources = sources;
    Ok(polled)
}

/// Makes the campaign of one source's new reports, if any, starting at
/// `send_at`, and records it and the reports held in `polled`.
async fn make_campaign<S>(
    store: &S,
    config: &Config,
    poll: &SourcePoll,
    send_at: Option<DateTime<Utc>>,
    polled: &mut Polled,
) where
    S: ReportStore + SourceStore + CampaignStore + ?Sized,
{
    let PollOutcome::Fetched(items) = &poll.outcome else {
        return;
    };
    let Some((newest, older)) = items.new.split_last() else {
        return;
    };
    let source = &poll.source.url;
    let mut unsent = |report: &Report, why: NoCampaign| {
        log_unsent(report, source, &why);
        polled.unsent.push(Unsent {
            report: report.clone(),
            why,
        });
    };
    let lists = if poll.source.lists.is_empty() {
        &config.default_lists
    } else {
        &poll.source.lists
    };
    let taken = match send_at {
        _ if lists.is_empty() => Err(NoCampaign::NoLists),
        Some(at) => match store.feed_campaign_at(source, at).await {
            Ok(Some(campaign)) => Err(NoCampaign::WindowTaken { campaign }),
            Ok(None) => Ok(()),
            Err(e) => Err(NoCampaign::Failed(e.to_string())),
        },
        None => Ok(()),
    };
    if let Err(why) = taken {
        for report in &items.new {
            unsent(report, why.clone());
        }
        return;
    }
    for report in older {
        unsent(report, NoCampaign::Newer { newest: newest.id });
    }
    let campaign = NewCampaign {
        report: ReportRef::Id(newest.id),
        lists: lists.clone(),
        filter: Vec::new(),
        send_at,
        subject: None,
        hold: config.auto_dispatch == AutoDispatch::Hold,
        allow_excerpt: false,
    };
    match store.create_campaign(&campaign).await {
        Ok(c) => {
            tracing::info!(
                campaign = c.id,
                report = %newest.slug,
                state = %c.state,
                send_at = ?c.send_at,
                "made a campaign for a new report"
            );
            polled.campaigns.push(c);
        }
        Err(e) => unsent(newest, NoCampaign::Failed(e.to_string())),
    }
}

/// Logs a new report of the feed at `source` that got no campaign: at warn,
/// or at error when the store failed.
fn log_unsent(report: &Report, source: &str, why: &NoCampaign) {
    let slug = &report.slug;
    match why {
        NoCampaign::Failed(_) => {
            tracing::error!(report = %slug, source, %why, "a new report has no campaign");
        }
        held if held.is_held() => {
            tracing::warn!(report = %slug, source, %why, "a new report is held");
        }
        _ => tracing::warn!(report = %slug, source, %why, "a new report has no campaign"),
    }
}
