//! When each schedule last ticked, shared by every necmail instance on the
//! same database so that each tick runs once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreError;

#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Records that the tick of schedule `name` due at `due` is being run,
    /// unless that tick (or a later one) already was: true when the caller
    /// should run it. Instances sharing a database run each tick once.
    async fn claim_tick(&self, name: &str, due: DateTime<Utc>) -> Result<bool, StoreError>;
    /// The last tick of every schedule that ever ticked, by name.
    async fn ticks(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError>;
}
