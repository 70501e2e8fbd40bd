//! The web admin's recorded CSV imports, for both backends: compiled into
//! each (see [`crate::store`]). A batch advances its import's row in the
//! batch's own transaction (`SubscriberStore::import_batch`).

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::Db;
use crate::error::StoreError;
use crate::store::SqlStore;
use crate::subscribers::ImportJobStore;
use crate::subscribers::import::{BatchProgress, ImportCounts, ImportJob};

#[derive(sqlx::FromRow)]
struct ImportJobRow {
    token: String,
    state: String,
    lists: Json<Vec<String>>,
    confirmed: bool,
    actor: String,
    actor_ip: Option<String>,
    worker: String,
    upload: String,
    rejects: String,
    size: i64,
    bytes: i64,
    imported: i64,
    updated: i64,
    unchanged: i64,
    suppressed: i64,
    rejected: i64,
    unconfirmed: i64,
    error: Option<String>,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

const SELECT_IMPORT_JOBS: &str = "SELECT token, state, lists, confirmed, actor, actor_ip, worker,
        upload, rejects, size, bytes, imported, updated, unchanged, suppressed, rejected,
        unconfirmed, error, started_at, finished_at
   FROM import_jobs";

/// A count from the database, which keeps it signed.
fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or_default()
}

/// A count for the database.
fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl TryFrom<ImportJobRow> for ImportJob {
    type Error = StoreError;

    fn try_from(row: ImportJobRow) -> Result<Self, StoreError> {
        Ok(ImportJob {
            token: row.token,
            state: row
                .state
                .parse()
                .map_err(|e| StoreError::corrupt("an import's state", e))?,
            lists: row.lists.0,
            confirmed: row.confirmed,
            actor: row.actor,
            actor_ip: row.actor_ip,
            worker: row.worker,
            upload: row.upload,
            rejects: row.rejects,
            size: unsigned(row.size),
            bytes: unsigned(row.bytes),
            counts: ImportCounts {
                imported: unsigned(row.imported),
                updated: unsigned(row.updated),
                unchanged: unsigned(row.unchanged),
                suppressed: unsigned(row.suppressed),
                rejected: unsigned(row.rejected),
                unconfirmed: unsigned(row.unconfirmed),
            },
            error: row.error,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

fn jobs(rows: Vec<ImportJobRow>) -> Result<Vec<ImportJob>, StoreError> {
    rows.into_iter().map(ImportJob::try_from).collect()
}

impl SqlStore<Db> {
    /// Advances a recorded import by one batch, in the batch's transaction.
    pub(super) async fn advance_import(
        conn: &mut <Db as sqlx::Database>::Connection,
        job: &BatchProgress,
        counts: &ImportCounts,
    ) -> Result<(), StoreError> {
        sqlx::query::<Db>(
            "UPDATE import_jobs
                SET bytes = $2, imported = imported + $3, updated = updated + $4,
                    unchanged = unchanged + $5, suppressed = suppressed + $6,
                    rejected = rejected + $7, unconfirmed = unconfirmed + $8
              WHERE token = $1",
        )
        .bind(job.token.as_str())
        .bind(signed(job.bytes))
        .bind(signed(counts.imported))
        .bind(signed(counts.updated))
        .bind(signed(counts.unchanged))
        .bind(signed(counts.suppressed))
        .bind(signed(counts.rejected + job.rejected))
        .bind(signed(counts.unconfirmed))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ImportJobStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn start_import(&self, job: &ImportJob) -> Result<bool, StoreError> {
        let _turn = self.turn().await;
        // The unique index on the running one refuses a second at once.
        let inserted = sqlx::query::<Db>(
            "INSERT INTO import_jobs (token, state, lists, confirmed, actor, actor_ip, worker,
                                      upload, rejects, size, started_at)
             VALUES ($1, 'running', $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT DO NOTHING",
        )
        .bind(job.token.as_str())
        .bind(Json(&job.lists))
        .bind(job.confirmed)
        .bind(job.actor.as_str())
        .bind(job.actor_ip.as_deref())
        .bind(job.worker.as_str())
        .bind(job.upload.as_str())
        .bind(job.rejects.as_str())
        .bind(signed(job.size))
        .bind(job.started_at)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    async fn import_job(&self, token: &str) -> Result<Option<ImportJob>, StoreError> {
        sqlx::query_as::<Db, ImportJobRow>(sqlx::AssertSqlSafe(format!(
            "{SELECT_IMPORT_JOBS} WHERE token = $1"
        )))
        .bind(token)
        .fetch_optional(&self.pool)
        .await?
        .map(ImportJob::try_from)
        .transpose()
    }

    async fn running_imports(&self) -> Result<Vec<ImportJob>, StoreError> {
        let rows = sqlx::query_as::<Db, ImportJobRow>(sqlx::AssertSqlSafe(format!(
            "{SELECT_IMPORT_JOBS} WHERE state = 'running'"
        )))
        .fetch_all(&self.pool)
        .await?;
        jobs(rows)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(token))]
    async fn take_over_import(
        &self,
        token: &str,
        from: &str,
        to: &str,
    ) -> Result<bool, StoreError> {
        let _turn = self.turn().await;
        let taken = sqlx::query::<Db>(
            "UPDATE import_jobs SET worker = $3
              WHERE token = $1 AND worker = $2 AND state = 'running'",
        )
        .bind(token)
        .bind(from)
        .bind(to)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(token))]
    async fn finish_import(&self, token: &str, error: Option<&str>) -> Result<(), StoreError> {
        let _turn = self.turn().await;
        sqlx::query::<Db>(
            "UPDATE import_jobs SET state = $2, error = $3, finished_at = $4
              WHERE token = $1 AND state = 'running'",
        )
        .bind(token)
        .bind(if error.is_some() { "failed" } else { "done" })
        .bind(error)
        .bind(Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(keep))]
    async fn forget_imports(&self, keep: i64) -> Result<Vec<ImportJob>, StoreError> {
        let mut tx = self.begin_write().await?;
        // Few: each import's end forgets those beyond `keep`.
        let rows = sqlx::query_as::<Db, ImportJobRow>(sqlx::AssertSqlSafe(format!(
            "{SELECT_IMPORT_JOBS} WHERE state <> 'running' ORDER BY started_at DESC, token"
        )))
        .fetch_all(&mut *tx)
        .await?;
        let kept = usize::try_from(keep).unwrap_or_default();
        let forgotten = jobs(rows.into_iter().skip(kept).collect())?;
        for job in &forgotten {
            sqlx::query::<Db>("DELETE FROM import_jobs WHERE token = $1")
                .bind(job.token.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(forgotten)
    }
}
