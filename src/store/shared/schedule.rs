//! Schedule ticks, for both backends: compiled into each (see [`crate::store`]).

use chrono::{DateTime, Utc};

use super::Db;
use crate::error::StoreError;
use crate::schedule::ScheduleStore;
use crate::store::SqlStore;

#[async_trait::async_trait]
impl ScheduleStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all, fields(schedule = name, %due))]
    async fn claim_tick(&self, name: &str, due: DateTime<Utc>) -> Result<bool, StoreError> {
        let _turn = self.turn().await;
        // One statement, so that of several instances claiming the
        // same tick exactly one changes the row.
        let claimed = sqlx::query::<Db>(
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
    async fn ticks(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        Ok(sqlx::query_as::<Db, (String, DateTime<Utc>)>(
            "SELECT name, last_tick FROM schedule_ticks ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
