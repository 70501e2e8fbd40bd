//! The daemon's delivery workers: the engine runs every campaign that is
//! sending — started by the scheduler, by `campaign send`, or resumed — and
//! keeps running it until it is done, paused or cancelled, retrying deferred
//! deliveries as they fall due. Several instances on one PostgreSQL database
//! each run every sending campaign; their claims never overlap.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::engine::{Engine, Finish};
use crate::campaigns::CampaignStore;

/// How often the supervisor looks for campaigns that started sending
/// elsewhere: `campaign send` or `campaign resume` from the command line,
/// or another instance's scheduler. This process's scheduler wakes it at
/// once through [`Supervisor::waker`].
const LOOK_EVERY: Duration = Duration::from_secs(5);
/// How long a campaign whose run failed (its template broke, the database
/// went away) waits before it is tried again.
const AFTER_FAILURE: Duration = Duration::from_secs(60);

pub struct Supervisor {
    campaigns: Arc<dyn CampaignStore>,
    engine: Arc<Engine>,
    wake: Arc<Notify>,
}

impl Supervisor {
    pub fn new(campaigns: Arc<dyn CampaignStore>, engine: Arc<Engine>) -> Self {
        Supervisor {
            campaigns,
            engine,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Notifying it makes the supervisor look for campaigns to send now.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Runs sending campaigns until `stop` turns true, then lets each run
    /// finish its in-flight messages and closes the transport. Once the
    /// sender of `stop` is gone, it looks for no more campaigns and waits
    /// for the runs it started, which nobody can stop now, to end.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut running: JoinSet<(i64, Option<Finish>)> = JoinSet::new();
        let mut active: HashSet<i64> = HashSet::new();
        let mut resting: HashMap<i64, Instant> = HashMap::new();
        // A sender gone can no longer say stop: then `changed` answers at
        // once, and looking again would spin.
        while !*stop.borrow() && stop.has_changed().is_ok() {
            match self.campaigns.sending_campaigns().await {
                Ok(sending) => {
                    resting.retain(|_, until| *until > Instant::now());
                    for id in sending {
                        if active.contains(&id) || resting.contains_key(&id) {
                            continue;
                        }
                        active.insert(id);
                        let engine = Arc::clone(&self.engine);
                        let stop = stop.clone();
                        running.spawn(async move {
                            match engine.run(id, stop).await {
                                Ok(finish) => (id, Some(finish)),
                                Err(e) => {
                                    tracing::error!(
                                        campaign = id,
                                        error = %e,
                                        "the campaign's run failed; trying again in a minute",
                                    );
                                    (id, None)
                                }
                            }
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot look for campaigns to send"),
            }
            let deadline = tokio::time::sleep(LOOK_EVERY);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => break,
                    _ = self.wake.notified() => break,
                    _ = stop.changed() => break,
                    Some(done) = running.join_next() => {
                        if let Ok((id, finish)) = done {
                            active.remove(&id);
                            report(id, finish, &mut resting);
                        }
                    }
                }
            }
        }
        while let Some(done) = running.join_next().await {
            if let Ok((id, finish)) = done {
                report(id, finish, &mut resting);
            }
        }
        self.engine.close().await;
    }
}

fn report(id: i64, finish: Option<Finish>, resting: &mut HashMap<i64, Instant>) {
    match finish {
        Some(Finish::Done) => tracing::info!(campaign = id, "campaign sent"),
        Some(Finish::Paused(reason)) => tracing::warn!(campaign = id, %reason, "campaign paused"),
        Some(Finish::Cancelled) => tracing::info!(campaign = id, "campaign cancelled"),
        Some(Finish::Stopped) => tracing::info!(
            campaign = id,
            "campaign stopped; it resumes at the next start"
        ),
        None => {
            resting.insert(id, Instant::now() + AFTER_FAILURE);
        }
    }
}
