//! The queries behind the archive and the metrics, shared by both backends
//! through [`impl_site_store`].

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::reports::Report;
use crate::store::StoreError;

/// A report in the archive: one that has been sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct ArchiveEntry {
    pub slug: String,
    pub title: String,
    pub meeting_date: Option<NaiveDate>,
    pub summary: Option<String>,
    /// When its first campaign started.
    pub sent_at: DateTime<Utc>,
}

/// Counts for `/metrics`, each as (label, count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteCounts {
    /// Deliveries of every campaign, by state.
    pub deliveries: Vec<(String, i64)>,
    /// Suppressed addresses, by reason.
    pub suppressions: Vec<(String, i64)>,
}

#[async_trait]
pub trait SiteStore: Send + Sync {
    /// The reports that have been sent (a campaign of theirs is sending or
    /// done), newest first.
    async fn archive(&self) -> Result<Vec<ArchiveEntry>, StoreError>;
    /// The report `slug`, when it has been sent.
    async fn archived_report(&self, slug: &str) -> Result<Option<Report>, StoreError>;
    /// Deliveries by state and suppressions by reason.
    async fn site_counts(&self) -> Result<SiteCounts, StoreError>;
}

/// Sent reports, each with the start of its first campaign.
pub(crate) const SELECT_ARCHIVE: &str = "
    SELECT r.slug, r.title, r.meeting_date, r.summary, MIN(c.started_at) AS sent_at
      FROM reports r JOIN campaigns c ON c.report_id = r.id
     WHERE c.state IN ('sending', 'done') AND c.started_at IS NOT NULL
     GROUP BY r.id, r.slug, r.title, r.meeting_date, r.summary
     ORDER BY sent_at DESC, r.id DESC";

/// The condition that a report (of `SELECT_REPORTS`) has been sent.
pub(crate) const WHERE_SENT: &str = " WHERE slug = $1 AND id IN
    (SELECT report_id FROM campaigns WHERE state IN ('sending', 'done') AND started_at IS NOT NULL)";

/// Implements [`SiteStore`] for a store type whose `pool` field is a
/// `sqlx::Pool<$db>`.
macro_rules! impl_site_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl $crate::web::SiteStore for $store {
            #[tracing::instrument(level = "debug", skip_all)]
            async fn archive(
                &self,
            ) -> Result<Vec<$crate::web::ArchiveEntry>, $crate::store::StoreError> {
                Ok(sqlx::query_as::<$db, $crate::web::ArchiveEntry>(
                    $crate::web::store::SELECT_ARCHIVE,
                )
                .fetch_all(&self.pool)
                .await?)
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn archived_report(
                &self,
                slug: &str,
            ) -> Result<Option<$crate::reports::Report>, $crate::store::StoreError> {
                let sql = format!(
                    "{}{}",
                    $crate::reports::store::SELECT_REPORTS,
                    $crate::web::store::WHERE_SENT
                );
                sqlx::query_as::<$db, $crate::reports::store::ReportRow>(&sql)
                    .bind(slug)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(TryInto::try_into)
                    .transpose()
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn site_counts(
                &self,
            ) -> Result<$crate::web::SiteCounts, $crate::store::StoreError> {
                let deliveries: Vec<(String, i64)> = sqlx::query_as::<$db, (String, i64)>(
                    "SELECT state, COUNT(*) FROM deliveries GROUP BY state ORDER BY state",
                )
                .fetch_all(&self.pool)
                .await?;
                let suppressions: Vec<(String, i64)> = sqlx::query_as::<$db, (String, i64)>(
                    "SELECT reason, COUNT(*) FROM suppressions GROUP BY reason ORDER BY reason",
                )
                .fetch_all(&self.pool)
                .await?;
                Ok($crate::web::SiteCounts {
                    deliveries,
                    suppressions,
                })
            }
        }
    };
}

pub(crate) use impl_site_store;
