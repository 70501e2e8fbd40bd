//! The scheduler: cron schedules for polling the feed sources and for the
//! dispatch window, evaluated in `NECMAIL_TIMEZONE`.

mod schedule;
pub(crate) mod store;

pub use schedule::Schedule;
pub use store::ScheduleStore;
pub(crate) use store::impl_schedule_store;
