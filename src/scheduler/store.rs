//! When each schedule last ticked, shared by every necmail instance on the
//! same database so that each tick runs once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::store::StoreError;

#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Records that the tick of schedule `name` due at `due` is being run,
    /// unless that tick (or a later one) already was: true when the caller
    /// should run it. Instances sharing a database run each tick once.
    async fn claim_tick(&self, name: &str, due: DateTime<Utc>) -> Result<bool, StoreError>;
    /// The last tick of every schedule that ever ticked, by name.
    async fn ticks(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError>;
}

/// Implements [`ScheduleStore`] for a store type whose `pool` field is a
/// `sqlx::Pool<$db>`.
macro_rules! impl_schedule_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::scheduler::ScheduleStore for $store {
            #[tracing::instrument(level = "debug", skip_all, fields(schedule = name, %due))]
            async fn claim_tick(
                &self,
                name: &str,
                due: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                // One statement, so that of several instances claiming the
                // same tick exactly one changes the row.
                let claimed = sqlx::query::<$db>(
                    "INSERT INTO schedule_ticks (name, last_tick) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET last_tick = excluded.last_tick
                      WHERE schedule_ticks.last_tick < excluded.last_tick",
                )
                .bind(name)
                .bind(due)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(claimed > 0)
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn ticks(
                &self,
            ) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, $crate::store::StoreError>
            {
                Ok(
                    sqlx::query_as::<$db, (String, chrono::DateTime<chrono::Utc>)>(
                        "SELECT name, last_tick FROM schedule_ticks ORDER BY name",
                    )
                    .fetch_all(&self.pool)
                    .await?,
                )
            }
        }
    };
}

pub(crate) use impl_schedule_store;
