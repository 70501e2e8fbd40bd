//! The delivery engine: sends one campaign's deliveries, each to its own
//! recipient, and records what happened to every one.
//!
//! One task claims deliveries under a lease (the claim is committed before
//! anything is sent), only as many as there are workers free to start them,
//! and hands them to as many workers as the transport has connections. Each
//! worker personalises and sends one message at a time, paced by
//! `NECMAIL_SEND_RATE`, and does not start its next until the outcome of
//! the last is committed. A recorder task commits outcomes as they come,
//! all that have arrived in one transaction (group commit). Another task
//! renews the leases of what the run holds, every third of a lease, so
//! that a slow relay or database never lets another worker claim them; nor
//! does the run claim them again itself when renewing falls behind (a
//! stalled machine or database): their outcomes are on their way.
//!
//! So a crash (even SIGKILL) can repeat only the transactions in flight: at
//! most one message per SMTP connection, whose reply had not yet been
//! committed. Their leases run out, or a restart on the same host takes
//! them back at once, and they are sent again. On a graceful stop, in-flight
//! sends finish, their outcomes are written, and deliveries claimed but not
//! started are given back: a restart neither loses nor repeats anything.
//! Store operations that fail because the database is briefly away are
//! tried again, for up to a lease, before the run gives up.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::{Addressing, Envelope, ListRef, Outgoing, Piece, SendError, Sending, Transport};
use crate::campaigns::{CampaignState, CampaignStore, ClaimFrom, Claimed, Outcome, Recorded};
use crate::config::{Config, RetryPolicy};
use crate::error::StoreError;
use crate::render::{ListInfo, Prepared, Site, Splice, Templates};
use crate::reports::{ReportRef, ReportStore};
use crate::tokens::Signer;

/// Outcomes written per transaction at most.
const RECORD_BATCH: usize = 256;
/// The longest the claimer waits when there is nothing to claim: work that
/// appears without a time (a `campaign retry`) is seen within this.
const IDLE: Duration = Duration::from_secs(5);
/// How often the claimer looks beyond the queue, at expired leases and
/// deferred deliveries that are due: they fall due rarely, and looking
/// costs two statements per claim.
const LOOK_BEYOND_QUEUE_EVERY: Duration = Duration::from_secs(1);
/// How long the claimer waits for more workers to be free before it
/// claims for those that are.
const GATHER_FREE: Duration = Duration::from_millis(2);
/// How long the recorder waits, after an outcome, for more to commit with
/// it. Each of those workers waits for the commit before its next message,
/// so this is short; but each transaction it saves is a write to the
/// database and, on SQLite, two hand-offs to and from its thread.
const GATHER_OUTCOMES: Duration = Duration::from_millis(2);
/// How often a run reads its campaign's state, for a pause or cancel made
/// by another process; one made through this process's store reaches the
/// run at once.
const WATCH_EVERY: Duration = Duration::from_secs(5);
/// The longest a retry waits, whatever the attempt.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(4 * 3600);
/// The least time a run keeps trying a store that is away, whatever the lease.
const MIN_OUTAGE: Duration = Duration::from_secs(10);

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
    /// turns true. A run has three steps: `claim` hands deliveries to the
    /// workers until the run ends, `drain` lets the workers finish the
    /// messages they are on, and `settle` writes back what the ending
    /// leaves behind.
    #[tracing::instrument(skip_all, fields(campaign = id, worker = %self.worker))]
    pub async fn run(&self, id: i64, stop: watch::Receiver<bool>) -> Result<Finish, EngineError> {
        let shared = self.prepare(id).await?;
        self.take_back_from_stopped(id).await?;
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
        let campaign = self.persist(|| self.campaigns.campaign(id)).await?;
        let report = ReportRef::Id(campaign.report_id);
        let report = self.persist(|| self.reports.report(&report)).await?;
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
        let safe_bodies =
            [false, true].map(|html| Piece::is_data_safe(prepared.encoded_body(html).as_bytes()));
        Ok(Arc::new(Shared {
            campaign: id,
            prepared,
            safe_bodies,
            transport: Arc::clone(&self.transport),
            config: Arc::clone(&self.config),
            signer: self.signer.clone(),
            pace: Pace::new(self.config.send_rate),
            relay_failures: AtomicU32::new(0),
            ending: watch::Sender::new(None),
            unstarted: Mutex::new(Vec::new()),
            held: Mutex::new(HashSet::new()),
            sending: AtomicUsize::new(0),
            free: Semaphore::new(self.config.smtp_connections.max(1)),
            progress: Notify::new(),
        }))
    }

    /// Ends at once the leases of earlier processes on this host that have
    /// stopped (a crash, a SIGKILL), so that a restart resumes their
    /// deliveries without waiting for the leases to run out; and those an
    /// earlier run of this engine left (a run that failed), which no other
    /// run of it holds: the supervisor runs a campaign once at a time.
    async fn take_back_from_stopped(&self, id: i64) -> Result<(), StoreError> {
        let holders = self.persist(|| self.campaigns.lease_holders(id)).await?;
        for holder in holders {
            if holder != self.worker && !has_stopped(&holder, &self.worker) {
                continue;
            }
            let n = self
                .persist(|| self.campaigns.take_back(id, &holder))
                .await?;
            tracing::info!(
                stopped = %holder,
                deliveries = n,
                "taking back the deliveries of a process that stopped mid-send"
            );
        }
        Ok(())
    }

    /// Claims deliveries for the workers that are free and hands them out
    /// until the campaign is done or the run ends for another reason, which
    /// it returns.
    async fn claim(
        &self,
        run: &Run,
        mut stop: watch::Receiver<bool>,
    ) -> Result<Finish, EngineError> {
        let shared = &run.shared;
        let id = shared.campaign;
        let mut ending = shared.ending.subscribe();
        let mut looked_beyond_queue: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                shared.end(Ending::Finished(Finish::Stopped));
            }
            let ended = ending.borrow_and_update().clone();
            match ended {
                Some(Ending::PausedItself(reason)) => {
                    self.persist(|| {
                        self.campaigns
                            .set_campaign_state(id, CampaignState::Paused, Some(&reason))
                    })
                    .await?;
                    tracing::warn!(%reason, "campaign paused itself");
                    return Ok(Finish::Paused(reason));
                }
                Some(Ending::Finished(finish)) => return Ok(finish),
                None => {}
            }
            let free = tokio::select! {
                free = shared.take_free() => free,
                _ = stop_asked(&mut stop) => continue,
                _ = ending.changed() => continue,
            };
            let claimed = match self.claim_for(id, free, &mut looked_beyond_queue).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    shared.give_free(free);
                    return Err(e.into());
                }
            };
            shared.give_free(free - claimed.len());
            if !claimed.is_empty() {
                shared.hold(claimed.iter().map(|job| job.delivery_id));
                run.hand_out(claimed, &mut stop).await;
                continue;
            }
            if self
                .persist(|| self.campaigns.finish_if_complete(id))
                .await?
            {
                return Ok(Finish::Done);
            }
            let wait = match self
                .persist(|| self.campaigns.next_due(id, &self.worker))
                .await?
            {
                Some(due) => (due - Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .clamp(Duration::from_millis(20), IDLE),
                None => IDLE,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shared.progress.notified() => {}
                _ = stop_asked(&mut stop) => {}
                _ = ending.changed() => {}
            }
        }
    }

    /// Claims up to `free` deliveries: from the queue alone, unless it runs
    /// short or [`LOOK_BEYOND_QUEUE_EVERY`] has passed since `looked`, when
    /// expired leases and due deferrals are claimed first.
    async fn claim_for(
        &self,
        id: i64,
        free: usize,
        looked: &mut Option<Instant>,
    ) -> Result<Vec<Claimed>, StoreError> {
        let (worker, lease) = (&self.worker, self.config.lease);
        let limit = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let mut claimed = Vec::new();
        if looked.is_some_and(|at| at.elapsed() < LOOK_BEYOND_QUEUE_EVERY) {
            claimed = self
                .persist(|| {
                    let from = ClaimFrom::Queue;
                    self.campaigns.claim(id, worker, limit(free), lease, from)
                })
                .await?;
        }
        if claimed.len() < free {
            *looked = Some(Instant::now());
            let want = limit(free - claimed.len());
            match self
                .persist(|| {
                    let from = ClaimFrom::Anywhere;
                    self.campaigns.claim(id, worker, want, lease, from)
                })
                .await
            {
                Ok(more) => claimed.extend(more),
                // What the queue gave is sent; the error comes back next time.
                Err(e) if !claimed.is_empty() => {
                    tracing::warn!(error = %e, "cannot claim beyond the queue");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(claimed)
    }

    /// Writes back what the ending leaves: a cancelled campaign's unsent
    /// claims are skipped, anyone else's go back to the queue, and a run
    /// that stopped early checks whether the campaign is complete anyway.
    async fn settle(&self, id: i64, finish: &Finish, left: Left) -> Result<(), EngineError> {
        let Left {
            unstarted,
            outcomes,
            recorder,
            renewer,
        } = left;
        if *finish == Finish::Cancelled {
            for delivery_id in &unstarted {
                let skipped = Outcome::Skipped {
                    reason: "the campaign was cancelled".into(),
                };
                let recorded = Recorded {
                    delivery_id: *delivery_id,
                    outcome: skipped,
                };
                let _ = outcomes.send(Pending::noted(recorded)).await;
            }
        }
        drop(outcomes);
        let _ = recorder.await;
        let released = if !unstarted.is_empty() && *finish != Finish::Cancelled {
            tracing::info!(
                deliveries = unstarted.len(),
                "giving unsent claims back to the queue"
            );
            self.persist(|| self.campaigns.release(&self.worker, &unstarted))
                .await
        } else {
            Ok(())
        };
        renewer.abort();
        released?;
        if matches!(finish, Finish::Stopped | Finish::Paused(_)) {
            // A pause found while idle may still have left the campaign complete.
            self.persist(|| self.campaigns.finish_if_complete(id))
                .await?;
        }
        Ok(())
    }

    /// Runs a store operation, trying it again with backoff while the
    /// database is away (a connection killed, a failover, SQLite busy), for
    /// as long as a lease lasts: within that, nobody else takes over what
    /// this run holds, so waiting costs no duplicate.
    async fn persist<T, F, Fut>(&self, mut operation: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let give_up = Instant::now() + self.config.lease.max(MIN_OUTAGE);
        let mut delay = Duration::from_millis(50);
        loop {
            match operation().await {
                Err(StoreError::Unavailable(why)) if Instant::now() + delay < give_up => {
                    tracing::warn!(error = %why, "the database is away; trying again");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                done => return done,
            }
        }
    }
}

/// Why a run ends, set once by whoever sees it first: the claimer (a stop),
/// a worker (the relay failed too often in a row) or the watcher (an admin
/// paused or cancelled the campaign). Workers take no new message once it
/// is set.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    /// The relay failed too often in a row: the engine pauses the campaign itself.
    PausedItself(String),
    Finished(Finish),
}

/// What the workers share for one run.
struct Shared {
    campaign: i64,
    prepared: Prepared,
    /// Whether the report's encoded body, as text and as HTML, is safe in
    /// SMTP DATA as it is ([`Piece::is_data_safe`]): checked once here
    /// rather than in every message.
    safe_bodies: [bool; 2],
    transport: Arc<dyn Transport>,
    config: Arc<Config>,
    signer: Signer,
    pace: Pace,
    /// Relay failures in a row, across all workers.
    relay_failures: AtomicU32,
    ending: watch::Sender<Option<Ending>>,
    /// Claimed deliveries that were never started because the run ended.
    unstarted: Mutex<Vec<i64>>,
    /// The deliveries this run has claimed and not yet recorded or given
    /// back: the ones whose leases it renews.
    held: Mutex<HashSet<i64>>,
    /// Workers on a message whose outcome they have not yet handed in.
    sending: AtomicUsize,
    /// Workers free to start a message: the claimer claims no more.
    free: Semaphore,
    /// Notified after each commit of outcomes.
    progress: Notify,
}

impl Shared {
    /// The pieces of a message written around the report's body
    /// ([`Prepared::write_message_around`]).
    fn pieces<'a>(&'a self, message: &'a str, splices: &'a [Splice]) -> Vec<Piece<'a>> {
        let spliced = self.prepared.spliced(message, splices);
        spliced
            .map(|(body, bytes)| match body {
                Some(html) if self.safe_bodies[usize::from(html)] => {
                    Piece::checked(bytes.as_bytes())
                }
                _ => Piece::new(bytes.as_bytes()),
            })
            .collect()
    }

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

    fn hold(&self, ids: impl IntoIterator<Item = i64>) {
        self.held.lock().expect("held lock").extend(ids);
    }

    fn let_go(&self, ids: impl IntoIterator<Item = i64>) {
        let mut held = self.held.lock().expect("held lock");
        for id in ids {
            held.remove(&id);
        }
    }

    /// Waits until at least one worker is free, then up to [`GATHER_FREE`]
    /// for half of them, and takes every free one: a worker frees
    /// itself while its outcome commits, so the wait costs it nothing, and
    /// claiming for several at once saves the database work.
    async fn take_free(&self) -> usize {
        let first = self
            .free
            .acquire()
            .await
            .expect("the semaphore is never closed");
        first.forget();
        let mut taken = 1;
        let enough = self.half_of_workers();
        let deadline = Instant::now() + GATHER_FREE;
        while taken < enough {
            match tokio::time::timeout_at(deadline, self.free.acquire()).await {
                Ok(Ok(permit)) => {
                    permit.forget();
                    taken += 1;
                }
                _ => break,
            }
        }
        while let Ok(permit) = self.free.try_acquire() {
            permit.forget();
            taken += 1;
        }
        taken
    }

    fn give_free(&self, n: usize) {
        self.free.add_permits(n);
    }

    /// How many workers the claimer and the recorder wait for, briefly, to
    /// do their database work for several at once.
    fn half_of_workers(&self) -> usize {
        (self.config.smtp_connections / 2).max(1)
    }

    /// Counts a failure of the relay, or clears the count when the relay
    /// answered; pauses the run when the count reaches the limit.
    fn note(&self, relay: RelayHealth) {
        match relay {
            RelayHealth::Answered => self.relay_failures.store(0, Ordering::Relaxed),
            RelayHealth::Failed(error) => {
                let n = self.relay_failures.fetch_add(1, Ordering::Relaxed) + 1;
                if n >= self.config.max_consecutive_failures {
                    let reason = format!("the relay failed {n} times in a row; the last: {error}");
                    self.end(Ending::PausedItself(reason));
                }
            }
            RelayHealth::Unknown => {}
        }
    }
}

/// What one attempt says about the relay, as opposed to the recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RelayHealth {
    /// It took the message, or answered for this recipient or message.
    Answered,
    /// It could not be reached, or refused to take mail at all.
    Failed(String),
    /// The attempt never reached it.
    Unknown,
}

/// An outcome on its way to the recorder, with whom to tell once it is
/// committed.
struct Pending {
    recorded: Recorded,
    durable: Option<oneshot::Sender<()>>,
}

impl Pending {
    /// An outcome nobody waits for.
    fn noted(recorded: Recorded) -> Pending {
        Pending {
            recorded,
            durable: None,
        }
    }
}

/// The tasks of one run: its workers, the recorder of their outcomes, the
/// renewer of its leases and the watcher of the campaign's state.
struct Run {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Claimed>,
    outcomes: mpsc::Sender<Pending>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    recorder: tokio::task::JoinHandle<()>,
    renewer: tokio::task::JoinHandle<()>,
    watcher: tokio::task::JoinHandle<()>,
}

/// What a drained run leaves for `Engine::settle`.
struct Left {
    unstarted: Vec<i64>,
    outcomes: mpsc::Sender<Pending>,
    recorder: tokio::task::JoinHandle<()>,
    renewer: tokio::task::JoinHandle<()>,
}

impl Run {
    fn start(engine: &Engine, shared: Arc<Shared>) -> Run {
        let workers = engine.config.smtp_connections.max(1);
        let (jobs, job_rx) = mpsc::channel::<Claimed>(workers);
        let job_rx = Arc::new(tokio::sync::Mutex::new(job_rx));
        let (outcomes, out_rx) = mpsc::channel::<Pending>(RECORD_BATCH);
        let recorder = tokio::spawn(record(
            Arc::clone(&engine.campaigns),
            engine.worker.clone(),
            Arc::clone(&shared),
            out_rx,
        ));
        let renewer = tokio::spawn(renew(
            Arc::clone(&engine.campaigns),
            engine.worker.clone(),
            Arc::clone(&shared),
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
            renewer,
            watcher,
        }
    }

    /// Hands `claimed` to the workers, recording the ineligible as skipped;
    /// what a stop leaves unhanded is noted as never started.
    async fn hand_out(&self, claimed: Vec<Claimed>, stop: &mut watch::Receiver<bool>) {
        let mut claimed = claimed.into_iter();
        for job in claimed.by_ref() {
            if !job.eligible {
                self.shared.give_free(1);
                let skipped = Outcome::Skipped {
                    reason: "no longer subscribed".into(),
                };
                let recorded = Recorded {
                    delivery_id: job.delivery_id,
                    outcome: skipped,
                };
                if self.outcomes.send(Pending::noted(recorded)).await.is_err() {
                    break;
                }
                continue;
            }
            let id = job.delivery_id;
            tokio::select! {
                sent = self.jobs.send(job) => if sent.is_err() { break },
                _ = stop_asked(stop) => {
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
            renewer: self.renewer,
        }
    }
}

/// Resolves once `stop` turns true; never, when nobody can stop the run.
async fn stop_asked(stop: &mut watch::Receiver<bool>) {
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Watches the campaign's state, so that a pause or cancel stops this run:
/// at once when it is made in this process (the store says so), within
/// [`WATCH_EVERY`] when made elsewhere (the CLI, another instance). Workers
/// finish the message they are on and take no more.
async fn watch_state(store: Arc<dyn CampaignStore>, shared: Arc<Shared>) {
    let mut changes = store.state_changes();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(WATCH_EVERY) => {}
            Ok(()) = changes.changed() => {}
        }
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

/// Renews the leases of the deliveries the run holds, every third of a
/// lease, for as long as the run lasts: while this process lives, nobody
/// else claims them.
async fn renew(store: Arc<dyn CampaignStore>, worker: String, shared: Arc<Shared>) {
    let lease = shared.config.lease;
    loop {
        tokio::time::sleep(lease / 3).await;
        let held: Vec<i64> = shared
            .held
            .lock()
            .expect("held lock")
            .iter()
            .copied()
            .collect();
        if let Err(e) = store.renew(&worker, &held, lease).await {
            tracing::warn!(error = %e, deliveries = held.len(), "cannot renew leases");
        }
    }
}

async fn work(
    shared: Arc<Shared>,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Claimed>>>,
    out: mpsc::Sender<Pending>,
) {
    let mut scratch = Scratch::default();
    loop {
        let job = jobs.lock().await.recv().await;
        let Some(job) = job else { break };
        if shared.is_ending() {
            shared.not_started([job.delivery_id]);
            shared.give_free(1);
            continue;
        }
        shared.pace.wait().await;
        shared.sending.fetch_add(1, Ordering::Relaxed);
        let (outcome, relay) = deliver(&shared, &job, &mut scratch).await;
        shared.sending.fetch_sub(1, Ordering::Relaxed);
        shared.note(relay);
        let (durable, committed) = oneshot::channel();
        let pending = Pending {
            recorded: Recorded {
                delivery_id: job.delivery_id,
                outcome,
            },
            durable: Some(durable),
        };
        if out.send(pending).await.is_err() {
            break;
        }
        // The claimer may claim this worker's next delivery while the
        // outcome commits, but the worker starts it only after.
        shared.give_free(1);
        if committed.await.is_err() {
            break;
        }
    }
}

/// What a worker reuses from one message to the next, so that a message
/// costs few allocations.
#[derive(Default)]
struct Scratch {
    /// The message but for the report's body, which goes in at `splices`.
    message: String,
    splices: Vec<Splice>,
    addressing: Addressing,
    id: String,
    /// The lists of the messages so far, and which of them together: a
    /// campaign's are few.
    lists: Vec<ListRef>,
}

/// The most lists a worker keeps in its [`Scratch`].
const SCRATCH_LISTS: usize = 64;

/// The lists of `job`, from those kept in `lists`, or added to them.
fn list_of<'a>(lists: &'a mut Vec<ListRef>, job: &Claimed) -> &'a ListRef {
    let known = lists.iter().position(|list| {
        list.id == job.list_id
            && list.info.slug == job.list_slug
            && list.info.name == job.list_name
            && list.also_ids.len() == job.also.len()
            && (job.also.iter().zip(list.also_ids.iter().zip(&list.also)))
                .all(|(a, (id, info))| a.id == *id && a.slug == info.slug && a.name == info.name)
    });
    let at = known.unwrap_or_else(|| {
        if lists.len() >= SCRATCH_LISTS {
            lists.clear();
        }
        let info = |slug: &str, name: &str| ListInfo {
            slug: slug.to_owned(),
            name: name.to_owned(),
        };
        lists.push(ListRef {
            also_ids: job.also.iter().map(|a| a.id).collect(),
            also: job.also.iter().map(|a| info(&a.slug, &a.name)).collect(),
            ..ListRef::one(job.list_id, info(&job.list_slug, &job.list_name))
        });
        lists.len() - 1
    });
    &lists[at]
}

/// Builds and sends one message (signed by the transport), and says what happened to it and
/// what that says about the relay.
#[tracing::instrument(
    level = "debug",
    skip_all,
    fields(delivery = job.delivery_id, attempt = job.attempts)
)]
async fn deliver(shared: &Shared, job: &Claimed, scratch: &mut Scratch) -> (Outcome, RelayHealth) {
    let Scratch {
        message,
        splices,
        addressing,
        id,
        lists,
    } = scratch;
    let list = list_of(lists, job);
    addressing.fill(
        &shared.config,
        &shared.signer,
        job.subscriber_id,
        list,
        shared.campaign,
        job.delivery_id,
    );
    message.clear();
    let recipient = addressing.recipient(
        job.email.as_str(),
        job.name.as_deref(),
        &job.attributes,
        list,
    );
    if let Err(e) =
        shared
            .prepared
            .write_message_around(&recipient, &addressing.meta(), message, splices)
    {
        let error = format!("the message could not be rendered: {e}");
        return (
            Outcome::Failed {
                error,
                hard_bounce: false,
            },
            RelayHealth::Unknown,
        );
    }
    id.clear();
    let _ = write!(id, "d{}", job.delivery_id);
    let envelope = Envelope {
        id,
        mail_from: &addressing.return_path,
        rcpt_to: &job.email,
    };
    let policy = shared.config.retry();
    let pieces = shared.pieces(message, splices);
    match shared
        .transport
        .send(&envelope, Outgoing::in_pieces(&pieces))
        .await
    {
        Ok(accepted) => (
            Outcome::Sent {
                reply: accepted.reply,
            },
            RelayHealth::Answered,
        ),
        Err(SendError::Permanent(reply)) => {
            let hard_bounce = is_hard_bounce(&reply);
            let failed = Outcome::Failed {
                error: reply,
                hard_bounce,
            };
            (failed, RelayHealth::Answered)
        }
        Err(SendError::Unsignable(why)) => (
            Outcome::Failed {
                error: format!("DKIM signing failed: {why}"),
                hard_bounce: false,
            },
            RelayHealth::Unknown,
        ),
        Err(e @ SendError::Transient(_)) => (
            retry(&policy, job, e.to_string(), false),
            RelayHealth::Answered,
        ),
        // The relay, the network or this machine failed: nothing says the
        // recipient is at fault, so the delivery is tried again.
        Err(e) => {
            let ambiguous = matches!(e, SendError::Ambiguous(_));
            let error = e.to_string();
            (
                retry(&policy, job, error.clone(), ambiguous),
                RelayHealth::Failed(error),
            )
        }
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

/// Commits outcomes in groups ([`gather`]) of up to [`RECORD_BATCH`], one
/// transaction each, and tells their workers and the claimer. Outcomes that
/// arrive during a commit wait for the next one.
async fn record(
    store: Arc<dyn CampaignStore>,
    worker: String,
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Pending>,
) {
    let enough = shared.half_of_workers();
    let more_to_come = || shared.sending.load(Ordering::Relaxed) > 0;
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while gather(&mut rx, &mut batch, enough, more_to_come).await > 0 {
        let (recorded, waiting): (Vec<Recorded>, Vec<_>) =
            batch.drain(..).map(|p| (p.recorded, p.durable)).unzip();
        write(&*store, &worker, &recorded).await;
        shared.let_go(recorded.iter().map(|r| r.delivery_id));
        for durable in waiting.into_iter().flatten() {
            let _ = durable.send(());
        }
        shared.progress.notify_one();
    }
}

/// Waits for what `rx` brings into the empty `batch`, then up to
/// [`GATHER_OUTCOMES`] for more, while `batch` holds fewer than `enough` and
/// `more_to_come` says more can come; takes all that have arrived, up to
/// [`RECORD_BATCH`]. Returns how many it took: none once `rx` is closed and
/// empty.
async fn gather<T>(
    rx: &mut mpsc::Receiver<T>,
    batch: &mut Vec<T>,
    enough: usize,
    more_to_come: impl Fn() -> bool,
) -> usize {
    if rx.recv_many(batch, RECORD_BATCH).await == 0 {
        return 0;
    }
    let deadline = Instant::now() + GATHER_OUTCOMES;
    while batch.len() < enough && more_to_come() {
        let room = RECORD_BATCH - batch.len();
        match tokio::time::timeout_at(deadline, rx.recv_many(batch, room)).await {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
    batch.len()
}

/// Writes `outcomes`, trying until it works: an outcome must not be lost to
/// a passing database error. Their deliveries stay leased meanwhile (the
/// renewer keeps them), so nothing else sends them.
async fn write(store: &dyn CampaignStore, worker: &str, outcomes: &[Recorded]) {
    let mut delay = Duration::from_millis(50);
    while let Err(e) = store.record(worker, outcomes).await {
        let n = outcomes.len();
        tracing::error!(error = %e, outcomes = n, "recording outcomes failed; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
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

/// True when `holder`, a name from [`worker_id`], is a process on this
/// host that has stopped: no process has its id, or it is this process's
/// own id (a restart in a container, where ids start again).
pub fn has_stopped(holder: &str, me: &str) -> bool {
    let (Some((host, pid)), Some((my_host, my_pid))) = (host_and_pid(holder), host_and_pid(me))
    else {
        return false;
    };
    host == my_host && (pid == my_pid || !process_exists(pid))
}

/// The host and process id in a name from [`worker_id`].
fn host_and_pid(worker: &str) -> Option<(&str, u32)> {
    let mut parts = worker.rsplitn(3, '-');
    parts.next()?.parse::<i64>().ok()?;
    let pid = parts.next()?.parse().ok()?;
    Some((parts.next()?, pid))
}

/// True unless the system says no process has this id. A process of
/// another user counts as running.
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 only checks whether the process exists.
    let checked = unsafe { libc::kill(pid, 0) };
    checked == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// A name for this process that no other process shares: host, process id
/// and start time.
pub fn worker_id() -> String {
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
            also: Vec::new(),
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

    #[test]
    fn a_process_on_this_host_has_stopped_when_no_process_has_its_id_or_this_one_does() {
        let me = worker_id();
        let (host, pid) = host_and_pid(&me).unwrap();
        assert_eq!(pid, std::process::id());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        assert!(has_stopped(&format!("{host}-{gone}-1"), &me));
        assert!(
            has_stopped(&format!("{host}-{pid}-1"), &me),
            "an earlier run with our id"
        );
        let parent = std::os::unix::process::parent_id();
        assert!(
            !has_stopped(&format!("{host}-{parent}-1"), &me),
            "a running process"
        );
        assert!(
            !has_stopped(&format!("elsewhere-{gone}-1"), &me),
            "another host"
        );
        assert!(!has_stopped("not-a-worker-name", &me));
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

    /// Sends `1, 2, …` on `tx`, each `delays_ms` after the one before (at
    /// once for 0; tokio's timers count whole milliseconds).
    fn send_after(tx: mpsc::Sender<u32>, delays_ms: &[u64]) {
        let delays = delays_ms.to_vec();
        tokio::spawn(async move {
            for (n, delay) in (1..).zip(delays) {
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                tx.send(n).await.expect("gathering");
            }
        });
    }

    #[tokio::test(start_paused = true)]
    async fn outcomes_that_follow_the_first_within_the_gathering_time_commit_with_it() {
        let (tx, mut rx) = mpsc::channel(RECORD_BATCH);
        send_after(tx, &[0, 1, 0, 0, 5]);
        let mut batch = Vec::new();
        let start = Instant::now();
        assert_eq!(gather(&mut rx, &mut batch, 4, || true).await, 4);
        assert_eq!(batch, [1, 2, 3, 4], "enough came: the fifth is for later");
        assert_eq!(Instant::now() - start, Duration::from_millis(1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_gathering_ends_at_its_time_with_what_came() {
        let (tx, mut rx) = mpsc::channel(RECORD_BATCH);
        send_after(tx, &[0, 1, 2]);
        let mut batch = Vec::new();
        let start = Instant::now();
        assert_eq!(gather(&mut rx, &mut batch, 4, || true).await, 2);
        assert_eq!(Instant::now() - start, GATHER_OUTCOMES);
        batch.clear();
        assert_eq!(gather(&mut rx, &mut batch, 4, || true).await, 1);
        assert_eq!(
            gather(&mut rx, &mut Vec::new(), 4, || true).await,
            0,
            "closed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_recorder_waits_for_nothing_when_no_other_message_is_out() {
        let (tx, mut rx) = mpsc::channel(RECORD_BATCH);
        send_after(tx, &[0, 1]);
        let mut batch = Vec::new();
        let start = Instant::now();
        assert_eq!(gather(&mut rx, &mut batch, 4, || false).await, 1);
        assert_eq!(Instant::now(), start);
    }
}
