//! The scheduler: cron schedules for polling the feed sources and for the
//! dispatch window, evaluated in `NECMAIL_TIMEZONE`, the [`Scheduler`] that
//! `serve` runs on them, and [`poll_sources`], the poll's work on the feeds
//! that `necmail source poll` shares.

mod new_reports;
mod runner;

pub use new_reports::{NoCampaign, Polled, TickError, Unsent, poll_sources};
pub use runner::{
    DISPATCH_TICK, POLL_TICK, PollReport, Ran, ScheduledJob, Scheduler, SchedulerStore,
};
