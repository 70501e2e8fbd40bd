//! Storage of campaigns and deliveries, shared by both backends through
//! [`impl_campaign_store`]. Claiming differs: PostgreSQL locks the rows it
//! claims with `FOR UPDATE SKIP LOCKED`, so several necmail instances share a
//! campaign; SQLite's single writer makes the same statement atomic.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::{Campaign, CampaignState, DeliveryCounts, NewCampaign, RecentError};
use crate::lists::ListSlug;
use crate::store::StoreError;
use crate::subscribers::Attributes;

/// A delivery claimed for sending, with what the message needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub delivery_id: i64,
    pub subscriber_id: i64,
    pub list_id: i64,
    pub list_slug: String,
    pub list_name: String,
    /// Attempts so far, this one included.
    pub attempts: i32,
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub email: String,
    pub name: Option<String>,
    pub attributes: Json<Attributes>,
    /// False when, since the campaign started, the subscriber left the list,
    /// was blocklisted or suppressed: the delivery is then skipped.
    pub eligible: bool,
}

/// What happened to one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        reply: String,
    },
    Deferred {
        error: String,
        retry_at: DateTime<Utc>,
        ambiguous: bool,
    },
    /// `hard_bounce` also suppresses the address.
    Failed {
        error: String,
        hard_bounce: bool,
    },
    Skipped {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub delivery_id: i64,
    pub outcome: Outcome,
}

impl Outcome {
    /// The delivery columns an outcome sets: state, SMTP reply, last error,
    /// next attempt, and whether it adds an ambiguous attempt.
    pub(crate) fn columns(
        &self,
    ) -> (
        &'static str,
        Option<&str>,
        Option<&str>,
        Option<DateTime<Utc>>,
        i32,
    ) {
        match self {
            Outcome::Sent { reply } => ("sent", Some(reply), None, None, 0),
            Outcome::Deferred {
                error,
                retry_at,
                ambiguous,
            } => (
                "deferred",
                None,
                Some(error),
                Some(*retry_at),
                i32::from(*ambiguous),
            ),
            Outcome::Failed { error, .. } => ("failed", Some(error), Some(error), None, 0),
            Outcome::Skipped { reason } => ("skipped", None, Some(reason), None, 0),
        }
    }
}

#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// Creates a campaign: held when asked, else a draft, or scheduled when
    /// it has a start time.
    async fn create_campaign(&self, new: &NewCampaign) -> Result<Campaign, StoreError>;
    async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError>;
    async fn campaign(&self, id: i64) -> Result<Campaign, StoreError>;
    /// Starts a draft, scheduled or held campaign: fixes its recipients (one
    /// delivery per confirmed, active, unsuppressed subscriber of its lists
    /// that matches its filter) and moves it to sending. Returns how many
    /// recipients it has; starting a campaign that is already sending changes
    /// nothing.
    async fn start_campaign(&self, id: i64) -> Result<i64, StoreError>;
    /// Pauses, resumes, cancels or approves a campaign; a transition that
    /// makes no sense from its state is refused.
    async fn set_campaign_state(
        &self,
        id: i64,
        to: CampaignState,
        reason: Option<&str>,
    ) -> Result<Campaign, StoreError>;
    /// Approves a held campaign: it becomes scheduled, keeping its start time
    /// when that is after `now`, else starting at `now`. A campaign in any
    /// other state is refused.
    async fn approve_campaign(&self, id: i64, now: DateTime<Utc>) -> Result<Campaign, StoreError>;
    /// The scheduled campaigns whose start time is `now` or earlier, by start time.
    async fn due_campaigns(&self, now: DateTime<Utc>) -> Result<Vec<i64>, StoreError>;
    /// Re-queues deferred deliveries now, and failed ones too with `include_failed`.
    async fn retry_deliveries(&self, id: i64, include_failed: bool) -> Result<i64, StoreError>;
    async fn delivery_counts(&self, id: i64) -> Result<DeliveryCounts, StoreError>;
    async fn recent_errors(&self, id: i64, limit: i64) -> Result<Vec<RecentError>, StoreError>;
    /// Deliveries sent since `since`, for the current rate.
    async fn sent_since(&self, id: i64, since: DateTime<Utc>) -> Result<i64, StoreError>;
    /// Claims up to `limit` deliveries for `worker` under a lease: expired
    /// leases first (their outcome is unknown), then deferred ones that are
    /// due, then queued ones. The claim is committed before anything is sent.
    async fn claim(
        &self,
        id: i64,
        worker: &str,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError>;
    /// Records outcomes of deliveries `worker` still holds, in one transaction.
    async fn record(&self, worker: &str, outcomes: &[Recorded]) -> Result<(), StoreError>;
    /// Gives claimed but unsent deliveries back to the queue.
    async fn release(&self, worker: &str, ids: &[i64]) -> Result<(), StoreError>;
    /// Marks a sending campaign done when no delivery is left to send.
    async fn finish_if_complete(&self, id: i64) -> Result<bool, StoreError>;
    /// When the next deferred delivery or expired lease falls due.
    async fn next_due(&self, id: i64) -> Result<Option<DateTime<Utc>>, StoreError>;
}

#[derive(sqlx::FromRow)]
pub(crate) struct CampaignRow {
    pub id: i64,
    pub report_id: i64,
    pub report_slug: String,
    pub report_title: String,
    pub subject: Option<String>,
    pub filter: Json<Attributes>,
    pub state: String,
    pub send_at: Option<DateTime<Utc>>,
    pub pause_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub(crate) const SELECT_CAMPAIGNS: &str = "SELECT c.id, c.report_id, r.slug AS report_slug, r.title AS report_title,
    c.subject, c.filter, c.state, c.send_at, c.pause_reason, c.created_at, c.started_at, c.finished_at
    FROM campaigns c JOIN reports r ON r.id = c.report_id";

pub(crate) fn campaign(row: CampaignRow, lists: Vec<String>) -> Result<Campaign, StoreError> {
    let corrupt =
        |e: String| StoreError::Unavailable(format!("campaign {} is corrupt: {e}", row.id));
    Ok(Campaign {
        id: row.id,
        report_id: row.report_id,
        report_slug: row.report_slug.clone(),
        report_title: row.report_title.clone(),
        lists: lists
            .iter()
            .map(|l| ListSlug::parse(l).map_err(|e| corrupt(e.to_string())))
            .collect::<Result<_, _>>()?,
        filter: row.filter.0.clone(),
        subject: row.subject.clone(),
        state: row.state.parse().map_err(corrupt)?,
        send_at: row.send_at,
        pause_reason: row.pause_reason.clone(),
        created_at: row.created_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
    })
}

/// Which states a campaign may move to `to` from.
pub(crate) fn allowed_from(to: CampaignState) -> &'static [&'static str] {
    match to {
        CampaignState::Paused => &["scheduled", "held", "sending"],
        CampaignState::Cancelled => &["draft", "scheduled", "held", "sending", "paused"],
        CampaignState::Scheduled => &["held"],
        CampaignState::Sending => &["paused"],
        CampaignState::Draft | CampaignState::Held | CampaignState::Done => &[],
    }
}

/// When a campaign becoming scheduled at `now` starts: at its start time
/// `send_at` while that is still ahead, else at once.
pub(crate) fn start_time(send_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> DateTime<Utc> {
    send_at.filter(|at| *at > now).unwrap_or(now)
}

/// The claim statement for deliveries matching `condition`, locked as the
/// dialect allows.
pub(crate) fn claim_sql(condition: &str, lock: &str) -> String {
    format!(
        "UPDATE deliveries
            SET state = 'sending', worker = $1, lease_until = $2, attempts = attempts + 1,
                ambiguous = ambiguous + CASE WHEN state = 'sending' THEN 1 ELSE 0 END,
                first_attempt_at = COALESCE(first_attempt_at, $3), updated_at = $3
          WHERE id IN (SELECT id FROM deliveries WHERE campaign_id = $4 AND {condition} ORDER BY id LIMIT $5{lock})
          RETURNING id"
    )
}

pub(crate) const CLAIM_CONDITIONS: [&str; 3] = [
    "state = 'sending' AND lease_until < $3",
    "state = 'deferred' AND next_attempt_at <= $3",
    "state = 'queued'",
];

pub(crate) const SELECT_CLAIMED: &str = "SELECT d.id AS delivery_id, d.subscriber_id, d.list_id,
        l.slug AS list_slug, l.name AS list_name, d.attempts, d.first_attempt_at,
        s.email, s.name, s.attributes,
        COALESCE(x.status = 'confirmed' AND s.status = 'active'
                 AND NOT EXISTS (SELECT 1 FROM suppressions p WHERE p.email_hash = s.email_hash), FALSE) AS eligible
   FROM deliveries d
   JOIN subscribers s ON s.id = d.subscriber_id
   JOIN lists l ON l.id = d.list_id
   LEFT JOIN subscriptions x ON x.subscriber_id = d.subscriber_id AND x.list_id = d.list_id
  WHERE d.id IN (";

/// How many outcomes one `record` statement takes (six binds each).
pub(crate) const RECORD_CHUNK: usize = 500;

/// Implements [`CampaignStore`] for a store type whose `pool` field is a
/// `sqlx::Pool<$db>` and which implements [`crate::store::Dialect`].
macro_rules! impl_campaign_store {
    ($store:ty, $db:ty) => {
        impl $store {
            async fn load_campaign(
                conn: &mut <$db as sqlx::Database>::Connection,
                id: i64,
            ) -> Result<$crate::campaigns::Campaign, $crate::store::StoreError> {
                let row = sqlx::query_as::<$db, $crate::campaigns::store::CampaignRow>(&format!(
                    "{} WHERE c.id = $1",
                    $crate::campaigns::store::SELECT_CAMPAIGNS
                ))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
                .ok_or_else(|| $crate::store::StoreError::not_found(format_args!("there is no campaign {id}")))?;
                let lists = sqlx::query_scalar::<$db, String>(
                    "SELECT l.slug FROM campaign_lists cl JOIN lists l ON l.id = cl.list_id
                      WHERE cl.campaign_id = $1 ORDER BY cl.position",
                )
                .bind(id)
                .fetch_all(&mut *conn)
                .await?;
                $crate::campaigns::store::campaign(row, lists)
            }

            /// Commits `tx`, returning campaign `id` as it then stands.
            async fn commit_campaign(
                mut tx: $crate::store::WriteTx<'_, $db>,
                id: i64,
            ) -> Result<$crate::campaigns::Campaign, $crate::store::StoreError> {
                let campaign = Self::load_campaign(&mut tx, id).await?;
                tx.commit().await?;
                Ok(campaign)
            }
        }

        #[async_trait::async_trait]
        impl $crate::campaigns::CampaignStore for $store {
            #[tracing::instrument(level = "debug", skip_all, fields(report = %new.report))]
            async fn create_campaign(
                &self,
                new: &$crate::campaigns::NewCampaign,
            ) -> Result<$crate::campaigns::Campaign, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                let report = Self::find_report(&mut tx, &new.report).await?;
                let list_ids: Vec<i64> = Self::resolve_lists(&mut tx, &new.lists).await?.into_iter().map(|(id, _)| id).collect();
                let filter: $crate::subscribers::Attributes = new.filter.iter().cloned().collect();
                let state = match (new.hold, new.send_at) {
                    (true, _) => "held",
                    (false, Some(_)) => "scheduled",
                    (false, None) => "draft",
                };
                let id: i64 = sqlx::query_scalar::<$db, i64>(
                    "INSERT INTO campaigns (report_id, subject, filter, state, send_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(report.id)
                .bind(new.subject.as_deref())
                .bind(sqlx::types::Json(&filter))
                .bind(state)
                .bind(new.send_at)
                .bind(chrono::Utc::now())
                .fetch_one(&mut *tx)
                .await?;
                for (position, list_id) in list_ids.iter().enumerate() {
                    sqlx::query::<$db>("INSERT INTO campaign_lists (campaign_id, list_id, position) VALUES ($1, $2, $3)")
                        .bind(id)
                        .bind(*list_id)
                        .bind(i32::try_from(position).unwrap_or(i32::MAX))
                        .execute(&mut *tx)
                        .await?;
                }
                Self::commit_campaign(tx, id).await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn campaigns(&self) -> Result<Vec<$crate::campaigns::Campaign>, $crate::store::StoreError> {
                let mut conn = self.pool.acquire().await?;
                let ids = sqlx::query_scalar::<$db, i64>("SELECT id FROM campaigns ORDER BY id")
                    .fetch_all(&mut *conn)
                    .await?;
                let mut campaigns = Vec::with_capacity(ids.len());
                for id in ids {
                    campaigns.push(Self::load_campaign(&mut conn, id).await?);
                }
                Ok(campaigns)
            }

            #[tracing::instrument(level = "debug", skip_all, fields(campaign = id))]
            async fn campaign(&self, id: i64) -> Result<$crate::campaigns::Campaign, $crate::store::StoreError> {
                let mut conn = self.pool.acquire().await?;
                Self::load_campaign(&mut conn, id).await
            }

            #[tracing::instrument(level = "debug", skip_all, fields(campaign = id))]
            async fn start_campaign(&self, id: i64) -> Result<i64, $crate::store::StoreError> {
                use $crate::campaigns::CampaignState;
                let mut tx = self.begin_write().await?;
                let campaign = Self::load_campaign(&mut tx, id).await?;
                match campaign.state {
                    CampaignState::Draft | CampaignState::Scheduled | CampaignState::Held => {}
                    CampaignState::Sending | CampaignState::Paused => {
                        let n: i64 = sqlx::query_scalar::<$db, i64>("SELECT COUNT(*) FROM deliveries WHERE campaign_id = $1")
                            .bind(id)
                            .fetch_one(&mut *tx)
                            .await?;
                        return Ok(n);
                    }
                    CampaignState::Done | CampaignState::Cancelled => {
                        return Err($crate::store::StoreError::Refused(format!(
                            "campaign {id} is {} and cannot be sent again; create a new one",
                            campaign.state
                        )));
                    }
                }
                let now = chrono::Utc::now();
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO deliveries (campaign_id, subscriber_id, list_id, state, updated_at) SELECT ",
                );
                qb.push_bind(id).push(", x.subscriber_id, x.list_id, 'queued', ").push_bind(now);
                qb.push(
                    " FROM campaign_lists cl
                      JOIN subscriptions x ON x.list_id = cl.list_id AND x.status = 'confirmed'
                      JOIN subscribers s ON s.id = x.subscriber_id AND s.status = 'active'
                     WHERE NOT EXISTS (SELECT 1 FROM suppressions p WHERE p.email_hash = s.email_hash)
                       AND cl.campaign_id = ",
                );
                qb.push_bind(id);
                for (key, value) in campaign.filter.iter() {
                    qb.push(" AND s.attributes ->> ").push_bind(key.to_owned());
                    qb.push(" = ").push_bind(value.to_owned());
                }
                qb.push(" ORDER BY cl.position, x.subscriber_id ON CONFLICT (campaign_id, subscriber_id) DO NOTHING");
                let inserted = qb.build().execute(&mut *tx).await?.rows_affected();
                sqlx::query::<$db>("UPDATE campaigns SET state = 'sending', started_at = $1, pause_reason = NULL WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(i64::try_from(inserted).unwrap_or(i64::MAX))
            }

            #[tracing::instrument(level = "debug", skip_all, fields(campaign = id, to = %to))]
            async fn set_campaign_state(
                &self,
                id: i64,
                to: $crate::campaigns::CampaignState,
                reason: Option<&str>,
            ) -> Result<$crate::campaigns::Campaign, $crate::store::StoreError> {
                use $crate::campaigns::CampaignState;
                let mut tx = self.begin_write().await?;
                let campaign = Self::load_campaign(&mut tx, id).await?;
                if campaign.state == to {
                    return Ok(campaign);
                }
                if !$crate::campaigns::store::allowed_from(to).contains(&campaign.state.as_str()) {
                    return Err($crate::store::StoreError::Refused(format!(
                        "campaign {id} is {}, so it cannot become {to}",
                        campaign.state
                    )));
                }
                // A paused campaign that never started goes back to waiting for its time.
                let to = if campaign.state == CampaignState::Paused && to == CampaignState::Sending && campaign.started_at.is_none() {
                    CampaignState::Scheduled
                } else {
                    to
                };
                let now = chrono::Utc::now();
                // A campaign waiting for its time needs one, or it would never start.
                let send_at = if to == CampaignState::Scheduled {
                    Some($crate::campaigns::store::start_time(campaign.send_at, now))
                } else {
                    campaign.send_at
                };
                sqlx::query::<$db>("UPDATE campaigns SET state = $1, pause_reason = $2, finished_at = $3, send_at = $4 WHERE id = $5")
                    .bind(to.as_str())
                    .bind(reason)
                    .bind((to == CampaignState::Cancelled).then_some(now))
                    .bind(send_at)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                if to == CampaignState::Cancelled {
                    sqlx::query::<$db>(
                        "UPDATE deliveries SET state = 'skipped', last_error = 'the campaign was cancelled', updated_at = $1
                          WHERE campaign_id = $2 AND state IN ('queued', 'deferred')",
                    )
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                Self::commit_campaign(tx, id).await
            }

            #[tracing::instrument(level = "debug", skip_all, fields(campaign = id))]
            async fn approve_campaign(
                &self,
                id: i64,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::campaigns::Campaign, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                let campaign = Self::load_campaign(&mut tx, id).await?;
                if campaign.state != $crate::campaigns::CampaignState::Held {
                    return Err($crate::store::StoreError::Refused(format!(
                        "campaign {id} is {}, not held, so there is nothing to approve",
                        campaign.state
                    )));
                }
                let send_at = $crate::campaigns::store::start_time(campaign.send_at, now);
                sqlx::query::<$db>("UPDATE campaigns SET state = 'scheduled', send_at = $1 WHERE id = $2 AND state = 'held'")
                    .bind(send_at)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                Self::commit_campaign(tx, id).await
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn due_campaigns(
                &self,
                now: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<i64>, $crate::store::StoreError> {
                Ok(sqlx::query_scalar::<$db, i64>(
                    "SELECT id FROM campaigns WHERE state = 'scheduled' AND send_at <= $1 ORDER BY send_at, id",
                )
                .bind(now)
                .fetch_all(&self.pool)
                .await?)
            }

            #[tracing::instrument(level = "debug", skip_all, fields(campaign = id, include_failed))]
            async fn retry_deliveries(&self, id: i64, include_failed: bool) -> Result<i64, $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                Self::load_campaign(&mut tx, id).await?;
                let now = chrono::Utc::now();
                let mut n = sqlx::query::<$db>(
                    "UPDATE deliveries SET next_attempt_at = $1, updated_at = $1 WHERE campaign_id = $2 AND state = 'deferred'",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if include_failed {
                    n += sqlx::query::<$db>(
                        "UPDATE deliveries SET state = 'queued', attempts = 0, first_attempt_at = NULL, updated_at = $1
                          WHERE campaign_id = $2 AND state = 'failed'",
                    )
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    sqlx::query::<$db>(
                        "UPDATE campaigns SET state = 'sending', finished_at = NULL WHERE id = $1 AND state = 'done'",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(i64::try_from(n).unwrap_or(i64::MAX))
            }

            #[tracing::instrument(level = "debug", skip_all, fields(campaign = id))]
            async fn delivery_counts(&self, id: i64) -> Result<$crate::campaigns::DeliveryCounts, $crate::store::StoreError> {
                let rows: Vec<(String, i64, i64)> = sqlx::query_as::<$db, _>(
                    "SELECT state, COUNT(*), COUNT(*) FILTER (WHERE ambiguous > 0) FROM deliveries
                      WHERE campaign_id = $1 GROUP BY state",
                )
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
                let mut c = $crate::campaigns::DeliveryCounts::default();
                for (state, n, ambiguous) in rows {
                    c.ambiguous += ambiguous;
                    match state.as_str() {
                        "queued" => c.queued = n,
                        "sending" => c.sending = n,
                        "sent" => c.sent = n,
                        "deferred" => c.deferred = n,
                        "failed" => c.failed = n,
                        "skipped" => c.skipped = n,
                        _ => {}
                    }
                }
                Ok(c)
            }

            #[tracing::instrument(level = "debug", skip_all, fields(campaign = id))]
            async fn recent_errors(&self, id: i64, limit: i64) -> Result<Vec<$crate::campaigns::RecentError>, $crate::store::StoreError> {
                let rows: Vec<(String, String, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as::<$db, _>(
                    "SELECT s.email, d.state, d.last_error, d.updated_at FROM deliveries d
                       JOIN subscribers s ON s.id = d.subscriber_id
                      WHERE d.campaign_id = $1 AND d.state IN ('deferred', 'failed') AND d.last_error IS NOT NULL
                      ORDER BY d.updated_at DESC LIMIT $2",
                )
                .bind(id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(email, state, error, at)| {
                        Ok($crate::campaigns::RecentError {
                            email,
                            state: state.parse().map_err($crate::store::StoreError::Unavailable)?,
                            error,
                            at,
                        })
                    })
                    .collect()
            }

            async fn sent_since(&self, id: i64, since: chrono::DateTime<chrono::Utc>) -> Result<i64, $crate::store::StoreError> {
                Ok(sqlx::query_scalar::<$db, i64>(
                    "SELECT COUNT(*) FROM deliveries WHERE campaign_id = $1 AND state = 'sent' AND sent_at >= $2",
                )
                .bind(id)
                .bind(since)
                .fetch_one(&self.pool)
                .await?)
            }

            #[tracing::instrument(level = "debug", skip_all, fields(campaign = id, limit))]
            async fn claim(
                &self,
                id: i64,
                worker: &str,
                limit: i64,
                lease: std::time::Duration,
            ) -> Result<Vec<$crate::campaigns::Claimed>, $crate::store::StoreError> {
                let now = chrono::Utc::now();
                let lease_until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
                let mut ids: Vec<i64> = Vec::new();
                for condition in $crate::campaigns::store::CLAIM_CONDITIONS {
                    let want = limit - i64::try_from(ids.len()).unwrap_or(i64::MAX);
                    if want <= 0 {
                        break;
                    }
                    let sql = $crate::campaigns::store::claim_sql(condition, <$store as $crate::store::Dialect>::CLAIM_LOCK);
                    ids.extend(
                        sqlx::query_scalar::<$db, i64>(&sql)
                            .bind(worker)
                            .bind(lease_until)
                            .bind(now)
                            .bind(id)
                            .bind(want)
                            .fetch_all(&self.pool)
                            .await?,
                    );
                }
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new($crate::campaigns::store::SELECT_CLAIMED);
                let mut sep = qb.separated(", ");
                for d in &ids {
                    sep.push_bind(*d);
                }
                qb.push(") ORDER BY d.id");
                Ok(qb.build_query_as::<$crate::campaigns::Claimed>().fetch_all(&self.pool).await?)
            }

            #[tracing::instrument(level = "debug", skip_all, fields(outcomes = outcomes.len()))]
            async fn record(&self, worker: &str, outcomes: &[$crate::campaigns::Recorded]) -> Result<(), $crate::store::StoreError> {
                if outcomes.is_empty() {
                    return Ok(());
                }
                let now = chrono::Utc::now();
                let mut tx = self.begin_write().await?;
                for chunk in outcomes.chunks($crate::campaigns::store::RECORD_CHUNK) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("WITH v (id, state, reply, error, next_at, amb) AS (");
                    qb.push_values(chunk, |mut row, r| {
                        let (state, reply, error, next_at, amb) = r.outcome.columns();
                        row.push_bind(r.delivery_id)
                            .push_bind(state)
                            .push_bind(reply.map(str::to_owned))
                            .push_bind(error.map(str::to_owned))
                            .push_bind(next_at)
                            .push_bind(amb);
                    });
                    qb.push(
                        ") UPDATE deliveries SET state = v.state, smtp_reply = COALESCE(v.reply, deliveries.smtp_reply),
                            last_error = v.error, next_attempt_at = v.next_at, ambiguous = deliveries.ambiguous + v.amb,
                            lease_until = NULL, sent_at = CASE WHEN v.state = 'sent' THEN ",
                    );
                    qb.push_bind(now).push(" ELSE deliveries.sent_at END, updated_at = ").push_bind(now);
                    qb.push(" FROM v WHERE deliveries.id = v.id AND deliveries.state = 'sending' AND deliveries.worker = ");
                    qb.push_bind(worker);
                    qb.build().execute(&mut *tx).await?;
                }
                let bounced: Vec<i64> = outcomes
                    .iter()
                    .filter(|r| matches!(r.outcome, $crate::campaigns::Outcome::Failed { hard_bounce: true, .. }))
                    .map(|r| r.delivery_id)
                    .collect();
                if !bounced.is_empty() {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO suppressions (email_hash, reason, created_at) SELECT s.email_hash, 'hard-bounce', ",
                    );
                    qb.push_bind(now);
                    qb.push(" FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id WHERE d.id IN (");
                    let mut sep = qb.separated(", ");
                    for d in &bounced {
                        sep.push_bind(*d);
                    }
                    qb.push(") ON CONFLICT (email_hash) DO NOTHING");
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            #[tracing::instrument(level = "debug", skip_all, fields(deliveries = ids.len()))]
            async fn release(&self, worker: &str, ids: &[i64]) -> Result<(), $crate::store::StoreError> {
                if ids.is_empty() {
                    return Ok(());
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(
                    "UPDATE deliveries SET state = 'queued', attempts = attempts - 1, lease_until = NULL, worker = NULL
                      WHERE state = 'sending' AND worker = ",
                );
                qb.push_bind(worker).push(" AND id IN (");
                let mut sep = qb.separated(", ");
                for d in ids {
                    sep.push_bind(*d);
                }
                qb.push(")");
                qb.build().execute(&self.pool).await?;
                Ok(())
            }

            #[tracing::instrument(level = "debug", skip_all, fields(campaign = id))]
            async fn finish_if_complete(&self, id: i64) -> Result<bool, $crate::store::StoreError> {
                let done = sqlx::query::<$db>(
                    "UPDATE campaigns SET state = 'done', finished_at = $1
                      WHERE id = $2 AND state = 'sending'
                        AND NOT EXISTS (SELECT 1 FROM deliveries WHERE campaign_id = $2
                                           AND state IN ('queued', 'sending', 'deferred'))",
                )
                .bind(chrono::Utc::now())
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(done > 0)
            }

            async fn next_due(&self, id: i64) -> Result<Option<chrono::DateTime<chrono::Utc>>, $crate::store::StoreError> {
                Ok(sqlx::query_scalar::<$db, Option<chrono::DateTime<chrono::Utc>>>(
                    "SELECT MIN(CASE WHEN state = 'deferred' THEN next_attempt_at ELSE lease_until END)
                       FROM deliveries WHERE campaign_id = $1 AND state IN ('deferred', 'sending')",
                )
                .bind(id)
                .fetch_one(&self.pool)
                .await?)
            }
        }
    };
}

pub(crate) use impl_campaign_store;
