//! The scheduler: cron schedules for polling the feed sources and for the
//! dispatch window, evaluated in `NECMAIL_TIMEZONE`, and the [`Scheduler`]
//! that `serve` runs on them.

mod runner;

pub use runner::{DISPATCH_TICK, POLL_TICK, PollReport, Ran, Scheduler, SchedulerStore, TickError};
