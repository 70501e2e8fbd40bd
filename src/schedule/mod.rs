//! Cron schedules (for polling the feed sources and for the dispatch
//! window), and the record of their ticks that every necmail instance on one
//! database shares. The [`crate::scheduler`] runs them.

mod line;
mod store;

pub use line::{Schedule, ScheduleError};
pub use store::ScheduleStore;
