//! The scheduler as `serve` runs it: the poll tick, the dispatch window, and
//! the start of every scheduled campaign whose time has come.
//!
//! - Each poll tick polls the feed sources and makes the new reports'
//!   campaigns, one per source per dispatch window (see
//!   [`poll_sources`](super::poll_sources), which `necmail source poll`
//!   runs too); links meetings to their reports on evidence (see
//!   [`crate::meetings`]), so that a report is never counted for a meeting
//!   it does not cover; and warns about meetings whose report is overdue,
//!   mailing `NECMAIL_ADMIN_EMAIL` once per meeting.
//! - Every second, every scheduled campaign whose time has come is started
//!   (the delivery supervisor then sends it). Each dispatch tick is logged.
//!   A campaign with nobody to send to is paused instead, with the reason
//!   (`campaign status` shows it) and a warning: paused is where necmail
//!   parks a campaign that needs the admin, it is neither done nor in the
//!   archive, it is not tried again every second, and `campaign resume`
//!   starts it as soon as it has recipients. A campaign of a report that is
//!   only an excerpt of its post is paused the same way, unless it was
//!   created with `--allow-excerpt`: necmail never mails an excerpt of its
//!   own accord.
//! - A layer above may add a job on a schedule of its own
//!   ([`Scheduler::with_job`]): `serve` polls the bounce mailbox so.
//! - Instances sharing a database claim each tick in the store, so each runs
//!   once. After downtime only the latest missed tick of each schedule runs;
//!   a schedule that never ticked waits for its next tick.
//!
//! Nothing stops the scheduler: a feed that fails is recorded on its source,
//! and a database failure is logged and tried again at the next check.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Days, Utc};
use tokio::sync::{Mutex, Notify, watch};

use super::new_reports::{Polled, TickError, Unsent, poll_sources};
use crate::campaigns::{Campaign, CampaignState, CampaignStore, Start};
use crate::config::Config;
use crate::delivery::notice::{Notice, send_notice};
use crate::delivery::{SendError, Sending, Transport};
use crate::meetings::{Meeting, MeetingStore};
use crate::render::{TemplateError, Templates};
use crate::reports::feeds::SourcePoll;
use crate::reports::{ReportStore, SourceStore};
use crate::schedule::{Schedule, ScheduleStore};
use crate::subscribers::SubscriberEmail;

/// The name the poll schedule's ticks are claimed under.
pub const POLL_TICK: &str = "poll";
/// The name the dispatch schedule's ticks are claimed under.
pub const DISPATCH_TICK: &str = "dispatch";

/// The longest the scheduler waits between checks: scheduled campaigns are
/// started within this of their time.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What one poll tick did.
#[derive(Debug, Default)]
pub struct PollReport {
    /// Each source's poll, in the order of their ids.
    pub sources: Vec<SourcePoll>,
    /// The campaigns made for the new reports.
    pub campaigns: Vec<Campaign>,
    /// The new reports that got no campaign: held, or with no list to go to.
    pub unsent: Vec<Unsent>,
    /// The meetings linked to a report by this tick.
    pub linked: Vec<Meeting>,
    /// The meetings whose report is overdue and whose warning this tick gave.
    pub overdue: Vec<Meeting>,
}

/// What [`Scheduler::run_due`] did.
#[derive(Debug, Default)]
pub struct Ran {
    /// The poll tick's work, when a tick was due and this instance claimed it
    /// (and the poll did not fail).
    pub poll: Option<PollReport>,
    /// The dispatch tick, when one was due and this instance claimed it.
    pub dispatch_window: Option<DateTime<Utc>>,
    /// The campaigns started because their time had come.
    pub started: Vec<i64>,
}

/// Work that a layer above the scheduler runs on a schedule of its own,
/// claimed like the poll tick so that one instance runs each tick: the
/// bounce mailbox's poll.
pub trait ScheduledJob: Send + Sync {
    /// What the tick does; failures are the job's to log.
    fn run(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// One schedule and the last tick of it this instance knows of.
struct Ticker {
    name: &'static str,
    schedule: Schedule,
    /// `None` until read from the store at the first check.
    last: Mutex<Option<DateTime<Utc>>>,
}

/// The scheduler of `necmail serve`. Make one with [`Scheduler::new`] and
/// run it with [`Scheduler::run`] until the stop signal.
pub struct Scheduler<S: SchedulerStore + ?Sized> {
    store: Arc<S>,
    config: Arc<Config>,
    templates: Arc<Templates>,
    transport: Arc<dyn Transport>,
    poll: Ticker,
    dispatch: Ticker,
    /// Told whenever the scheduler starts a campaign: the delivery supervisor.
    started: Option<Arc<Notify>>,
    /// A job of a layer above, on its own schedule.
    job: Option<(Ticker, Box<dyn ScheduledJob>)>,
}

/// What the scheduler needs from the store: its ticks, campaigns to make
/// and start, feeds to poll into reports, and meetings.
pub trait SchedulerStore:
    ScheduleStore + CampaignStore + ReportStore + SourceStore + MeetingStore
{
}

impl<T> SchedulerStore for T where
    T: ScheduleStore + CampaignStore + ReportStore + SourceStore + MeetingStore + ?Sized
{
}

/// Why the admin could not be mailed about an overdue report.
#[derive(Debug, thiserror::Error)]
enum OverdueMailError {
    #[error("the warning cannot be rendered: {0}")]
    Render(#[source] TemplateError),
    #[error("the warning cannot be sent: {0}")]
    Send(#[source] SendError),
}

impl<S: SchedulerStore + ?Sized> Scheduler<S> {
    /// A scheduler for the configuration's poll and dispatch schedules; the
    /// admin's overdue warnings go out through `sending`.
    pub fn new(store: Arc<S>, sending: &Sending) -> Self {
        let ticker = |name, schedule: &Schedule| Ticker {
            name,
            schedule: schedule.clone(),
            last: Mutex::new(None),
        };
        let config = Arc::clone(&sending.config);
        Scheduler {
            poll: ticker(POLL_TICK, &config.poll_schedule),
            dispatch: ticker(DISPATCH_TICK, &config.dispatch_schedule),
            store,
            config,
            templates: Arc::clone(&sending.templates),
            transport: Arc::clone(&sending.transport),
            started: None,
            job: None,
        }
    }

    /// Also runs `job` at each tick of `schedule`, claimed under `name`.
    pub fn with_job(
        self,
        name: &'static str,
        schedule: &Schedule,
        job: Box<dyn ScheduledJob>,
    ) -> Self {
        let ticker = Ticker {
            name,
            schedule: schedule.clone(),
            last: Mutex::new(None),
        };
        Scheduler {
            job: Some((ticker, job)),
            ..self
        }
    }

    /// Notifies `waker` whenever a campaign is started, so that whoever
    /// sends campaigns begins at once.
    pub fn wake_on_start(self, waker: Arc<Notify>) -> Self {
        Scheduler {
            started: Some(waker),
            ..self
        }
    }

    /// Both schedules, for the start-up log: "poll */15 * * * *
    /// (Europe/London), dispatch 0 9 * * * (Europe/London)".
    pub fn describe(&self) -> String {
        let mut described = format!(
            "poll {}, dispatch {}",
            self.poll.schedule, self.dispatch.schedule
        );
        if let Some((ticker, _)) = &self.job {
            described.push_str(&format!(", {} {}", ticker.name, ticker.schedule));
        }
        described
    }

    /// Runs until `stop` holds true (or its sender is dropped): the poll
    /// ticks on one side, the dispatch checks every second on the other, so
    /// that a slow poll never delays a campaign's start. A poll in progress
    /// when told to stop is finished first, so that no new report is left
    /// without its campaign.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let this = &self;
        let job = async {
            if let Some((ticker, job)) = &this.job {
                this.every_check(stop.clone(), |now| async move {
                    if this.claim_due(ticker, now).await.is_some() {
                        job.run().await;
                    }
                })
                .await;
            }
        };
        tokio::join!(
            this.every_check(stop.clone(), |now| async move {
                this.poll_due(now).await;
            }),
            this.every_check(stop.clone(), |now| async move {
                this.dispatch_due(now).await;
            }),
            job,
        );
        tracing::info!("the scheduler stopped");
    }

    /// Calls `check` with the time, then again after each pause, until told to stop.
    async fn every_check<F, Fut>(&self, mut stop: watch::Receiver<bool>, check: F)
    where
        F: Fn(DateTime<Utc>) -> Fut,
        Fut: Future<Output = ()>,
    {
        loop {
            if *stop.borrow() {
                return;
            }
            check(Utc::now()).await;
            let wait = self.until_next_tick(Utc::now()).min(CHECK_EVERY);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                changed = stop.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// How long until the earliest next tick of either schedule.
    fn until_next_tick(&self, now: DateTime<Utc>) -> Duration {
        [&self.poll, &self.dispatch]
            .into_iter()
            .chain(self.job.as_ref().map(|(ticker, _)| ticker))
            .filter_map(|t| t.schedule.next_after(now))
            .min()
            .and_then(|next| (next - now).to_std().ok())
            .unwrap_or(CHECK_EVERY)
    }

    /// Does whatever is due at `now`: the poll tick when one is due (claimed
    /// first, so that one instance runs it), then the dispatch check. The
    /// first call also runs the latest tick missed while necmail was down.
    pub async fn run_due(&self, now: DateTime<Utc>) -> Ran {
        let poll = self.poll_due(now).await;
        let (dispatch_window, started) = self.dispatch_due(now).await;
        Ran {
            poll,
            dispatch_window,
            started,
        }
    }

    /// Runs the poll tick if one is due at `now` and this instance claims it.
    async fn poll_due(&self, now: DateTime<Utc>) -> Option<PollReport> {
        let due = self.claim_due(&self.poll, now).await?;
        match self.poll(now).await {
            Ok(report) => Some(report),
            Err(e) => {
                tracing::error!(
                    tick = %due,
                    error = %e,
                    "the poll failed; it runs again at the next tick",
                );
                None
            }
        }
    }

    /// Starts the campaigns due at `now`, and logs the dispatch window when
    /// one opens (claimed, so that one instance logs it).
    async fn dispatch_due(&self, now: DateTime<Utc>) -> (Option<DateTime<Utc>>, Vec<i64>) {
        let started = self.start_due_campaigns(now).await;
        let window = self.claim_due(&self.dispatch, now).await;
        if let Some(window) = window {
            tracing::info!(
                window = %window,
                started = started.len(),
                "the dispatch window opened"
            );
        }
        (window, started)
    }

    /// The tick of `ticker` due at `now`, when there is one and this
    /// instance claimed it. The first call reads the last tick from the
    /// store; a schedule that never ticked has no tick due until its next.
    async fn claim_due(&self, ticker: &Ticker, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut last = ticker.last.lock().await;
        let since = match *last {
            Some(since) => since,
            None => match self.store.ticks().await {
                Ok(ticks) => ticks
                    .into_iter()
                    .find(|(name, _)| name == ticker.name)
                    .map_or(now, |(_, at)| at),
                Err(e) => {
                    tracing::error!(
                        schedule = ticker.name,
                        error = %e,
                        "cannot read the last ticks; trying again shortly",
                    );
                    return None;
                }
            },
        };
        *last = Some(since);
        let due = ticker.schedule.latest_between(since, now)?;
        match self.store.claim_tick(ticker.name, due).await {
            Ok(claimed) => {
                *last = Some(due);
                if !claimed {
                    tracing::debug!(
                        schedule = ticker.name,
                        tick = %due,
                        "another instance ran this tick",
                    );
                }
                claimed.then_some(due)
            }
            Err(e) => {
                tracing::error!(
                    schedule = ticker.name,
                    tick = %due,
                    error = %e,
                    "cannot claim a tick; trying again shortly",
                );
                None
            }
        }
    }

    /// Starts every scheduled campaign whose time is `now` or earlier, and
    /// pauses those with nobody to send to; returns the ids of those
    /// started. Starting is idempotent, so two instances racing for a
    /// campaign start it once.
    #[tracing::instrument(level = "debug", skip_all, fields(%now))]
    pub async fn start_due_campaigns(&self, now: DateTime<Utc>) -> Vec<i64> {
        let due = match self.store.due_campaigns(now).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(
                    error = %e,
                    "cannot look for campaigns to start; trying again shortly",
                );
                return Vec::new();
            }
        };
        let mut started = Vec::new();
        for id in due {
            match self.store.campaign(id).await.map(|c| c.excerpt_refusal()) {
                Ok(None) => {}
                Ok(Some(why)) => {
                    self.pause_unstarted(id, &why).await;
                    continue;
                }
                Err(e) => {
                    tracing::error!(campaign = id, error = %e, "cannot start a scheduled campaign");
                    continue;
                }
            }
            match self.store.start_campaign(id).await {
                Ok(Start::Sending(recipients)) => {
                    tracing::info!(campaign = id, recipients, "started a scheduled campaign");
                    started.push(id);
                }
                Ok(Start::NoRecipients(why)) => {
                    self.pause_unstarted(id, &format!("it has no recipients: {why}"))
                        .await
                }
                Err(e) => {
                    tracing::error!(campaign = id, error = %e, "cannot start a scheduled campaign")
                }
            }
        }
        if let Some(waker) = self.started.as_ref().filter(|_| !started.is_empty()) {
            waker.notify_one();
        }
        started
    }

    /// Pauses scheduled campaign `id`, which cannot start (it has nobody to
    /// send to, or its report is an excerpt), with `reason`, and warns.
    async fn pause_unstarted(&self, id: i64, reason: &str) {
        match self
            .store
            .set_campaign_state(id, CampaignState::Paused, Some(reason))
            .await
        {
            Ok(_) => tracing::warn!(
                campaign = id,
                %reason,
                "a scheduled campaign was paused, not sent: `necmail campaign resume {id}` \
                 starts it once the reason is dealt with"
            ),
            Err(e) => tracing::error!(
                campaign = id,
                %reason,
                error = %e,
                "cannot pause a scheduled campaign that cannot start"
            ),
        }
    }

    /// The work of one poll tick at `now`, whether or not a tick is due:
    /// poll every source, make the new reports' campaigns, link meetings to
    /// reports and warn about overdue ones. Only a failure to poll at all is
    /// an error; the later steps log their failures and are retried at the
    /// next tick.
    #[tracing::instrument(skip_all, fields(%now))]
    pub async fn poll(&self, now: DateTime<Utc>) -> Result<PollReport, TickError> {
        let Polled {
            sources,
            campaigns,
            unsent,
        } = poll_sources(self.store.as_ref(), &self.config, now).await?;
        let mut report = PollReport {
            sources,
            campaigns,
            unsent,
            ..PollReport::default()
        };
        match self.store.link_reports(self.config.link_rules()).await {
            Ok(linked) => {
                for m in &linked {
                    if let Some(r) = &m.report {
                        tracing::info!(
                            meeting = %m.held_on,
                            report = %r.slug,
                            "linked a meeting to its report",
                        );
                    }
                }
                report.linked = linked;
                report.overdue = self.warn_overdue(now).await;
            }
            Err(e) => {
                tracing::error!(
                    error = %e,
                    "cannot link meetings to reports; trying again at the next poll",
                )
            }
        }
        Ok(report)
    }

    /// Warns about each meeting held `NECMAIL_REPORT_OVERDUE_DAYS` or more
    /// days before `now` that has no report, mailing the admin when there is
    /// one. A meeting is marked warned only once the mail went, so a failed
    /// send is retried at the next poll.
    async fn warn_overdue(&self, now: DateTime<Utc>) -> Vec<Meeting> {
        let today = now.with_timezone(&self.config.timezone).date_naive();
        let held_by = today - Days::new(u64::from(self.config.report_overdue_days));
        let overdue = match self.store.overdue_meetings(held_by).await {
            Ok(overdue) => overdue,
            Err(e) => {
                tracing::error!(
                    error = %e,
                    "cannot look for overdue reports; trying again at the next poll",
                );
                return Vec::new();
            }
        };
        let mut warned = Vec::new();
        for meeting in overdue {
            let days = (today - meeting.held_on).num_days();
            tracing::warn!(
                meeting = %meeting.held_on,
                days,
                committee = %self.config.committee,
                "there is no report of a meeting yet",
            );
            if let Some(admin) = &self.config.admin_email
                && let Err(e) = self.mail_overdue(admin, &meeting, days).await
            {
                tracing::error!(
                    meeting = %meeting.held_on,
                    error = %e,
                    "cannot mail the admin about an overdue report; trying again at the next poll"
                );
                continue;
            }
            match self.store.mark_overdue_notified(meeting.id).await {
                Ok(()) => warned.push(meeting),
                Err(e) => {
                    tracing::error!(
                        meeting = %meeting.held_on,
                        error = %e,
                        "cannot record the overdue warning",
                    )
                }
            }
        }
        warned
    }

    /// Mails `to` that `meeting`'s report is `days` days overdue.
    #[tracing::instrument(skip_all, fields(meeting = %meeting.held_on))]
    async fn mail_overdue(
        &self,
        to: &SubscriberEmail,
        meeting: &Meeting,
        days: i64,
    ) -> Result<(), OverdueMailError> {
        let mut context = tera::Context::new();
        context.insert(
            "meeting",
            &serde_json::json!({
                "held_on": meeting.held_on.format("%-d %B %Y").to_string(),
                "held_on_iso": meeting.held_on.to_string(),
                "title": meeting.title,
            }),
        );
        context.insert("days", &days);
        context.insert("public_url", self.config.public_url.as_str());
        context.insert("committee", &self.config.committee);
        let subject = self
            .templates
            .render("email/overdue.subject.tera", &context)
            .map_err(OverdueMailError::Render)?;
        let text = self
            .templates
            .render("email/overdue.txt.tera", &context)
            .map_err(OverdueMailError::Render)?;
        let notice = Notice {
            to,
            to_name: None,
            subject: subject.trim(),
            text: &text,
            html: None,
            reply_to: None,
        };
        send_notice(self.transport.as_ref(), &self.config, &notice)
            .await
            .map_err(OverdueMailError::Send)?;
        tracing::info!(%to, "mailed the admin about an overdue report");
        Ok(())
    }
}
