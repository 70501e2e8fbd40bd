//! The delivery engine: sends one campaign's deliveries, each to its own
//! recipient, and records what happened to every one.
//!
//! One task claims batches of deliveries under a lease (the claim is
//! committed before anything is sent) and hands them to as many workers as
//! the transport has connections. Each worker personalises and sends one
//! message at a time, paced by `NECMAIL_SEND_RATE`. A recorder task writes
//! outcomes back in batches. So a message is at least once in flight: after a
//! crash, leases that expire are claimed again, and a message that was
//! in flight may be sent twice — never more than the deliveries that were in
//! `sending` at the crash. On a graceful stop, in-flight sends finish, their
//! outcomes are written, and deliveries claimed but not started are given
//! back: a restart neither loses nor repeats anything.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Addressing, Envelope, ListRef, SendError, Sending, Transport};
use crate::campaigns::{CampaignState, CampaignStore, Claimed, Outcome, Recorded};
use crate::config::{Config, RetryPolicy};
use crate::error::StoreError;
use crate::render::{ListInfo, Prepared, Site, Templates};
use crate::reports::{ReportRef, ReportStore};
use crate::tokens::Signer;

/// Outcomes written per batch, and how long one waits at most.
const RECORD_BATCH: usize = 256;
const RECORD_EVERY: Duration = Duration::from_millis(25);
/// How long the claimer sleeps when there is nothing to claim yet.
const IDLE: Duration = Duration::from_millis(250);
/// The longest a retry waits, whatever the attempt.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(4 * 3600);

/// How a run of the engine ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Every delivery is sent, failed or skipped.
    Done,
    /// Paused: by an admin, or by the engine after too many failures in a row.
    Paused(String),
    Cancelled,
    /// Asked to stop (SIGTERM/SIGINT); the campaign carries on at the next run.
    Stopped,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The campaign cannot be rendered: a template or report problem.
    #[error("campaign {campaign} cannot be rendered: {reason}")]
    Render { campaign: i64, reason: String },
}

/// Everything a run needs besides the campaign. Of the store it uses two
/// interfaces: campaigns and their deliveries, and reports to render.
pub struct Engine {
    campaigns: Arc<dyn CampaignStore>,
    reports: Arc<dyn ReportStore>,
    transport: Arc<dyn Transport>,
    config: Arc<Config>,
    templates: Arc<Templates>,
    signer: Signer,
    dkim: Option<Arc<super::dkim::DkimSigner>>,
    worker: String,
}

impl Engine {
    pub fn new(
        campaigns: Arc<dyn CampaignStore>,
        reports: Arc<dyn ReportStore>,
        sending: &Sending,
    ) -> Self {
        Engine {
            campaigns,
            reports,
            transport: Arc::clone(&sending.transport),
            config: Arc::clone(&sending.config),
            templates: Arc::clone(&sending.templates),
            signer: sending.config.signer(),
            dkim: sending.dkim.clone(),
            worker: worker_id(),
        }
    }

    /// Closes the transport's connections (SMTP QUIT); it reconnects if used again.
    pub async fn close(&self) {
        self.transport.close().await;
    }

    /// This process's name in `deliveries.worker`.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// Sends campaign `id` until it is done, paused, cancelled, or `stop`
    /// turns true. A run has three steps: `claim` hands batches of
    /// deliveries to the workers until the run ends, `drain` lets the
    /// workers finish the messages they are on, and `settle` writes back
    /// what the ending leaves behind.
    #[tracing::instrument(skip_all, fields(campaign = id, worker = %self.worker))]
    pub async fn run(&self, id: i64, stop: watch::Receiver<bool>) -> Result<Finish, EngineError> {
        let shared = self.prepare(id).await?;
        let run = Run::start(self, shared);
        tracing::info!(
            workers = run.workers.len(),
            transport = %self.transport.describe(),
            "sending"
        );
        let claimed = self.claim(&run, stop).await;
        let finish = match &claimed {
            Ok(finish) => finish.clone(),
            Err(_) => Finish::Stopped,
        };
        let left = run.drain(&finish).await;
        let settled = self.settle(id, &finish, left).await;
        let finish = claimed?;
        settled?;
        Ok(finish)
    }

    /// The campaign, rendered once, and what every worker shares.
    async fn prepare(&self, id: i64) -> Result<Arc<Shared>, EngineError> {
        let campaign = self.campaigns.campaign(id).await?;
        let report = self
            .reports
            .report(&ReportRef::Id(campaign.report_id))
            .await?;
        let mut prepared = Prepared::new(
            Arc::clone(&self.templates),
            &report,
            &Site::from_config(&self.config),
        )
        .map_err(|e| EngineError::Render {
            campaign: id,
            reason: e.to_string(),
        })?;
        prepared.set_subject(campaign.subject.clone());
        Ok(Arc::new(Shared {
            campaign: id,
            prepared,
            transport: Arc::clone(&self.transport),
            config: Arc::clone(&self.config),
            signer: self.signer.clone(),
            dkim: self.dkim.clone(),
            pace: Pace::new(self.config.send_rate),
            failures: AtomicU32::new(0),
            ending: watch::Sender::new(None),
            unstarted: Mutex::new(Vec::new()),
        }))
    }

    /// Claims batches of deliveries and hands them to the workers until the
    /// campaign is done or the run ends for another reason, which it returns.
    async fn claim(
        &self,
        run: &Run,
        mut stop: watch::Receiver<bool>,
    ) -> Result<Finish, EngineError> {
        let id = run.shared.campaign;
        let mut ending = run.shared.ending.subscribe();
        let batch = i64::try_from(run.workers.len() * 4).unwrap_or(64);
        loop {
            if *stop.borrow() {
                run.shared.end(Ending::Finished(Finish::Stopped));
            }
            let ended = ending.borrow_and_update().clone();
            match ended {
                Some(Ending::PausedItself(reason)) => {
                    self.campaigns
                        .set_campaign_state(id, CampaignState::Paused, Some(&reason))
                        .await?;
                    tracing::warn!(%reason, "campaign paused itself");
                    return Ok(Finish::Paused(reason));
                }
                Some(Ending::Finished(finish)) => return Ok(finish),
                None => {}
            }
            let claimed = self
                .campaigns
                .claim(id, &self.worker, batch, self.config.lease)
                .await?;
            if claimed.is_empty() {
                if self.campaigns.finish_if_complete(id).await? {
                    return Ok(Finish::Done);
                }
                let wait = match self.campaigns.next_due(id).await? {
                    Some(due) => (due - Utc::now())
                        .to_std()
                        .unwrap_or_default()
                        .clamp(Duration::from_millis(20), IDLE),
                    None => IDLE,
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                    _ = ending.changed() => {}
                }
                continue;
            }
            run.hand_out(claimed, &mut stop).await;
        }
    }

    /// Writes back what the ending leaves: a cancelled campaign's unsent
    /// claims are skipped, anyone else's go back to the queue, and a run
    /// that stopped early checks whether the campaign is complete anyway.
    async fn settle(&self, id: i64, finish: &Finish, left: Left) -> Result<(), EngineError> {
        let Left {
            unstarted,
            outcomes,
            recorder,
        } = left;
        if *finish == Finish::Cancelled {
            for delivery_id in &unstarted {
                let skipped = Outcome::Skipped {
                    reason: "the campaign was cancelled".into(),
                };
                let _ = outcomes
                    .send(Recorded {
                        delivery_id: *delivery_id,
                        outcome: skipped,
                    })
                    .await;
            }
        }
        drop(outcomes);
        let _ = recorder.await;
        if !unstarted.is_empty() && *finish != Finish::Cancelled {
            tracing::info!(
                deliveries = unstarted.len(),
                "giving unsent claims back to the queue"
            );
            self.campaigns.release(&self.worker, &unstarted).await?;
        }
        if matches!(finish, Finish::Stopped | Finish::Paused(_)) {
            // A pause found while idle may still have left the campaign complete.
            self.campaigns.finish_if_complete(id).await?;
        }
        Ok(())
    }
}

/// Why a run ends, set once by whoever sees it first: the claimer (a stop),
/// a worker (too many failures in a row) or the watcher (an admin paused or
/// cancelled the campaign). Workers take no new message once it is set.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    /// Too many failures in a row: the engine pauses the campaign itself.
    PausedItself(String),
    Finished(Finish),
}

/// What the workers share for one run.
struct Shared {
    campaign: i64,
    prepared: Prepared,
    transport: Arc<dyn Transport>,
    config: Arc<Config>,
    signer: Signer,
    dkim: Option<Arc<super::dkim::DkimSigner>>,
    pace: Pace,
    failures: AtomicU32,
    ending: watch::Sender<Option<Ending>>,
    /// Claimed deliveries that were never started because the run ended.
    unstarted: Mutex<Vec<i64>>,
}

impl Shared {
    /// Ends the run for `why`, unless it is already ending.
    fn end(&self, why: Ending) {
        self.ending.send_if_modified(|ending| {
            let first = ending.is_none();
            if first {
                *ending = Some(why);
            }
            first
        });
    }

    fn is_ending(&self) -> bool {
        self.ending.borrow().is_some()
    }

    fn not_started(&self, ids: impl IntoIterator<Item = i64>) {
        self.unstarted.lock().expect("unstarted lock").extend(ids);
    }
}

/// The tasks of one run: its workers, the recorder of their outcomes, and
/// the watcher of the campaign's state.
struct Run {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Claimed>,
    outcomes: mpsc::Sender<Recorded>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    recorder: tokio::task::JoinHandle<()>,
    watcher: tokio::task::JoinHandle<()>,
}

/// What a drained run leaves for `Engine::settle`.
struct Left {
    unstarted: Vec<i64>,
    outcomes: mpsc::Sender<Recorded>,
    recorder: tokio::task::JoinHandle<()>,
}

impl Run {
    fn start(engine: &Engine, shared: Arc<Shared>) -> Run {
        let workers = engine.config.smtp_connections.max(1);
        let (jobs, job_rx) = mpsc::channel::<Claimed>(workers * 2);
        let job_rx = Arc::new(tokio::sync::Mutex::new(job_rx));
        let (outcomes, out_rx) = mpsc::channel::<Recorded>(RECORD_BATCH * 4);
        let recorder = tokio::spawn(record(
            Arc::clone(&engine.campaigns),
            engine.worker.clone(),
            out_rx,
        ));
        let workers = (0..workers)
            .map(|_| {
                tokio::spawn(work(
                    Arc::clone(&shared),
                    Arc::clone(&job_rx),
                    outcomes.clone(),
                ))
            })
            .collect();
        let watcher = tokio::spawn(watch_state(
            Arc::clone(&engine.campaigns),
            Arc::clone(&shared),
        ));
        Run {
            shared,
            jobs,
            outcomes,
            workers,
            recorder,
            watcher,
        }
    }

    /// Hands `claimed` to the workers, recording the ineligible as skipped;
    /// what a stop leaves unhanded is noted as never started.
    async fn hand_out(&self, claimed: Vec<Claimed>, stop: &mut watch::Receiver<bool>) {
        let mut claimed = claimed.into_iter();
        for job in claimed.by_ref() {
            if !job.eligible {
                let skipped = Outcome::Skipped {
                    reason: "no longer subscribed".into(),
                };
                let recorded = Recorded {
                    delivery_id: job.delivery_id,
                    outcome: skipped,
                };
                if self.outcomes.send(recorded).await.is_err() {
                    break;
                }
                continue;
            }
            let id = job.delivery_id;
            tokio::select! {
                sent = self.jobs.send(job) => if sent.is_err() { break },
                _ = stop.changed() => {
                    self.shared.not_started([id]);
                    break;
                }
            }
        }
        // Whatever a stop left of the batch was never handed to a worker.
        self.shared.not_started(claimed.map(|job| job.delivery_id));
    }

    /// Lets the workers finish the messages they are on (and, unless the
    /// campaign is done, take no more), and waits for them.
    async fn drain(self, finish: &Finish) -> Left {
        self.watcher.abort();
        if *finish != Finish::Done {
            self.shared.end(Ending::Finished(finish.clone()));
        }
        drop(self.jobs);
        for worker in self.workers {
            let _ = worker.await;
        }
        let unstarted = std::mem::take(&mut *self.shared.unstarted.lock().expect("unstarted lock"));
        Left {
            unstarted,
            outcomes: self.outcomes,
            recorder: self.recorder,
        }
    }
}

/// Watches the campaign's state, so that a pause or cancel made elsewhere
/// (the CLI, another process) stops this run within a fraction of a second:
/// workers finish the message they are on and take no more.
async fn watch_state(store: Arc<dyn CampaignStore>, shared: Arc<Shared>) {
    const EVERY: Duration = Duration::from_millis(200);
    loop {
        tokio::time::sleep(EVERY).await;
        let halted = match store.campaign(shared.campaign).await.map(|c| c.state) {
            Ok(CampaignState::Sending) | Err(_) => continue,
            Ok(CampaignState::Paused) => Finish::Paused("paused by an admin".into()),
            Ok(CampaignState::Cancelled) => Finish::Cancelled,
            Ok(CampaignState::Done) => Finish::Done,
            Ok(other) => Finish::Paused(format!("the campaign is {other}")),
        };
        shared.end(Ending::Finished(halted));
        return;
    }
}

async fn work(
    shared: Arc<Shared>,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Claimed>>>,
    out: mpsc::Sender<Recorded>,
) {
    let mut buf = String::new();
    loop {
        let job = jobs.lock().await.recv().await;
        let Some(job) = job else { break };
        if shared.is_ending() {
            shared.not_started([job.delivery_id]);
            continue;
        }
        shared.pace.wait().await;
        let outcome = deliver(&shared, &job, &mut buf).await;
        match &outcome {
            Outcome::Sent { .. } => shared.failures.store(0, Ordering::Relaxed),
            Outcome::Deferred { error, .. } | Outcome::Failed { error, .. } => {
                let n = shared.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if n >= shared.config.max_consecutive_failures {
                    let reason = format!("{n} deliveries failed in a row; the last: {error}");
                    shared.end(Ending::PausedItself(reason));
                }
            }
            Outcome::Skipped { .. } => {}
        }
        if out
            .send(Recorded {
                delivery_id: job.delivery_id,
                outcome,
            })
            .await
            .is_err()
        {
            break;
        }
    }
}

/// Builds, signs and sends one message, and says what happened.
#[tracing::instrument(
    level = "debug",
    skip_all,
    fields(delivery = job.delivery_id, attempt = job.attempts)
)]
async fn deliver(shared: &Shared, job: &Claimed, buf: &mut String) -> Outcome {
    let list = ListRef {
        id: job.list_id,
        info: ListInfo {
            slug: job.list_slug.clone(),
            name: job.list_name.clone(),
        },
    };
    let addressing = Addressing::new(
        &shared.config,
        &shared.signer,
        job.subscriber_id,
        &list,
        shared.campaign,
        job.delivery_id,
    );
    buf.clear();
    let recipient = addressing.recipient(
        job.email.as_str(),
        job.name.as_deref(),
        &job.attributes,
        &list,
    );
    if let Err(e) = shared
        .prepared
        .write_message(&recipient, &addressing.meta(), buf)
    {
        return Outcome::Failed {
            error: format!("the message could not be rendered: {e}"),
            hard_bounce: false,
        };
    }
    let signed;
    let message: &[u8] = match &shared.dkim {
        Some(dkim) => match dkim.sign(buf.as_bytes()) {
            Ok(header) => {
                signed = [header.as_bytes(), buf.as_bytes()].concat();
                &signed
            }
            Err(e) => {
                return Outcome::Failed {
                    error: format!("DKIM signing failed: {e}"),
                    hard_bounce: false,
                };
            }
        },
        None => buf.as_bytes(),
    };
    let id = format!("d{}", job.delivery_id);
    let envelope = Envelope {
        id: &id,
        mail_from: &addressing.return_path,
        rcpt_to: &job.email,
    };
    match shared.transport.send(&envelope, message).await {
        Ok(accepted) => Outcome::Sent {
            reply: accepted.reply,
        },
        Err(SendError::Permanent(reply)) => {
            let hard_bounce = is_hard_bounce(&reply);
            Outcome::Failed {
                error: reply,
                hard_bounce,
            }
        }
        Err(e @ SendError::Ambiguous(_)) => retry(&shared.config.retry(), job, e.to_string(), true),
        Err(e) => retry(&shared.config.retry(), job, e.to_string(), false),
    }
}

/// Defers a delivery with exponential backoff and jitter, or gives it up
/// once it has had its attempts or is too old.
fn retry(policy: &RetryPolicy, job: &Claimed, error: String, ambiguous: bool) -> Outcome {
    let now = Utc::now();
    let age = job.first_attempt_at.map_or(Duration::ZERO, |first| {
        (now - first).to_std().unwrap_or_default()
    });
    let attempts = u32::try_from(job.attempts.max(1)).unwrap_or(u32::MAX);
    if attempts >= policy.max_attempts || age >= policy.give_up_after {
        return Outcome::Failed {
            error: format!("gave up after {attempts} attempts: {error}"),
            hard_bounce: false,
        };
    }
    let delay = backoff(policy.base, attempts, job.delivery_id);
    let retry_at = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
    Outcome::Deferred {
        error,
        retry_at,
        ambiguous,
    }
}

/// `base × 2^(attempt-1)`, capped, times a jitter in [0.75, 1.25) that
/// spreads a failed batch's retries out.
fn backoff(base: Duration, attempt: u32, seed: i64) -> Duration {
    let exp = base
        .saturating_mul(1u32 << (attempt - 1).min(16))
        .min(MAX_RETRY_DELAY.max(base));
    let nanos = u64::from(Utc::now().timestamp_subsec_nanos());
    let mix = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ nanos.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let jitter = 0.75 + (mix % 1000) as f64 / 2000.0;
    exp.mul_f64(jitter)
}

/// A 5.1.x enhanced status code (RFC 3463: bad destination mailbox address).
fn is_hard_bounce(reply: &str) -> bool {
    reply.split_whitespace().take(5).any(|word| {
        let mut parts = word.trim_end_matches(['.', ',', ':']).split('.');
        parts.next() == Some("5")
            && parts.next() == Some("1")
            && parts
                .next()
                .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
            && parts.next().is_none()
    })
}

/// Writes outcomes back in batches: every [`RECORD_BATCH`] outcomes or
/// [`RECORD_EVERY`], whichever comes first, and whatever is left at the end.
async fn record(store: Arc<dyn CampaignStore>, worker: String, mut rx: mpsc::Receiver<Recorded>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    loop {
        let first = rx.recv().await;
        let Some(first) = first else { break };
        batch.push(first);
        let deadline = Instant::now() + RECORD_EVERY;
        while batch.len() < RECORD_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => batch.push(r),
                Ok(None) | Err(_) => break,
            }
        }
        flush(&*store, &worker, &mut batch).await;
    }
    flush(&*store, &worker, &mut batch).await;
}

async fn flush(store: &dyn CampaignStore, worker: &str, batch: &mut Vec<Recorded>) {
    if batch.is_empty() {
        return;
    }
    // Outcomes must not be lost to a passing database error: retry until it
    // works. Their deliveries stay claimed meanwhile, so nothing else sends them.
    let mut delay = Duration::from_millis(100);
    while let Err(e) = store.record(worker, batch).await {
        tracing::error!(error = %e, outcomes = batch.len(), "recording outcomes failed; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    batch.clear();
}

/// Smooth pacing: one message every `1/rate` seconds, shared by all workers.
struct Pace {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pace {
    fn new(rate: u32) -> Self {
        Pace {
            interval: (rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(rate))),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = self.next.lock().expect("pace lock");
            let slot = (*next).max(Instant::now());
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// A name for this process that no other process shares.
fn worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "necmail".into());
    let started: DateTime<Utc> = Utc::now();
    format!(
        "{host}-{}-{}",
        std::process::id(),
        started.timestamp_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscribers::SubscriberEmail;

    #[test]
    fn hard_bounces_are_5_1_x_enhanced_codes() {
        assert!(is_hard_bounce(
            "550 5.1.1 <jo@example.org>: Recipient address rejected: no such user"
        ));
        assert!(is_hard_bounce("permanent failure: 550 5.1.10 null MX"));
        assert!(!is_hard_bounce("550 5.7.1 message rejected as spam"));
        assert!(!is_hard_bounce("552 5.2.2 mailbox full"));
        assert!(!is_hard_bounce("550 mailbox unavailable"));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_secs(60);
        for attempt in 1..=4 {
            let d = backoff(base, attempt, 7).as_secs_f64();
            let exact = 60.0 * f64::from(1u32 << (attempt - 1));
            assert!(
                d >= exact * 0.75 && d < exact * 1.25,
                "attempt {attempt}: {d}"
            );
        }
        assert!(backoff(base, 30, 7) <= MAX_RETRY_DELAY.mul_f64(1.25));
    }

    fn job(attempts: i32, first: Option<DateTime<Utc>>) -> Claimed {
        Claimed {
            delivery_id: 1,
            subscriber_id: 1,
            list_id: 1,
            list_slug: "members".into(),
            list_name: "Members".into(),
            attempts,
            first_attempt_at: first,
            email: SubscriberEmail::parse("jo@example.org").unwrap(),
            name: None,
            attributes: Default::default(),
            eligible: true,
        }
    }

    #[test]
    fn a_delivery_is_deferred_until_it_runs_out_of_attempts_or_time() {
        let policy = RetryPolicy {
            base: Duration::from_secs(60),
            max_attempts: 3,
            give_up_after: Duration::from_secs(3600),
        };
        assert!(matches!(
            retry(&policy, &job(1, Some(Utc::now())), "451".into(), false),
            Outcome::Deferred { .. }
        ));
        assert!(matches!(
            retry(&policy, &job(3, Some(Utc::now())), "451".into(), false),
            Outcome::Failed { .. }
        ));
        let old = Utc::now() - chrono::Duration::hours(2);
        assert!(matches!(
            retry(&policy, &job(1, Some(old)), "451".into(), false),
            Outcome::Failed { .. }
        ));
        let Outcome::Deferred { ambiguous, .. } =
            retry(&policy, &job(1, None), "lost".into(), true)
        else {
            panic!()
        };
        assert!(ambiguous);
    }

    #[tokio::test(start_paused = true)]
    async fn pacing_spaces_messages_evenly() {
        let pace = Pace::new(10);
        let start = Instant::now();
        for _ in 0..5 {
            pace.wait().await;
        }
        assert_eq!(Instant::now() - start, Duration::from_millis(400));
    }
}
