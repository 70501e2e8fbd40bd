//! Bounces, complaints, events and suppressions, for both backends:
//! compiled into each (see [`crate::store`]).

use chrono::{DateTime, Utc};

use super::Db;
use super::self_service::UNSUBSCRIBE;
use crate::error::StoreError;
use crate::feedback::{
    Bounce, BounceOutcome, Complaint, DeliveryRef, Event, EventFilter, EventKind, EventSource,
    FeedbackStore, NewEvent, SuppressionEntry,
};
use crate::store::SqlStore;
use crate::subscribers::{SubscriberEmail, SuppressionReason};

/// An insert into `subscriber_events` of the values [`SqlStore::insert_event`]
/// binds, with `$6` the address's key, in the form `$values` gives them.
macro_rules! insert_event {
    ($values:literal) => {
        concat!(
            "INSERT INTO subscriber_events
            (at, kind, source, email, email_hash, subscriber_id, list_id, campaign_id,
             delivery_id, status, reason) ",
            $values
        )
    };
}

/// An event, with the id of the subscriber who has the address, if any.
const INSERT_EVENT: &str = insert_event!(
    "VALUES ($1, $2, $3, $4, $5, (SELECT id FROM subscribers WHERE email_key = $6), $7, $8,
             $9, $10, $11)"
);

/// An event only when a subscriber has the address: none is inserted otherwise.
const INSERT_SUBSCRIBER_EVENT: &str = insert_event!(
    "SELECT $1, $2, $3, $4, $5, id, $7, $8, $9, $10, $11 FROM subscribers WHERE email_key = $6"
);

/// A bounce's event and then its suppression's (kind `$12`, reason `$13`,
/// no status), only when a subscriber has the address, in one statement.
const INSERT_BOUNCE_AND_SUPPRESSION_EVENTS: &str = insert_event!(
    "SELECT $1, $2, $3, $4, $5, id, $7, $8, $9, $10, $11 FROM subscribers WHERE email_key = $6
     UNION ALL
     SELECT $1, $12, $3, $4, $5, id, $7, $8, $9, NULL, $13 FROM subscribers WHERE email_key = $6"
);

type EventRow = (
    i64,
    DateTime<Utc>,
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    String,
);

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt("a stored event", e)
}

fn event_from(row: EventRow) -> Result<Event, StoreError> {
    let (
        id,
        at,
        kind,
        source,
        email,
        subscriber_id,
        list_id,
        campaign_id,
        delivery_id,
        status,
        reason,
    ) = row;
    Ok(Event {
        id,
        at,
        kind: kind.parse().map_err(corrupt)?,
        source: source.parse().map_err(corrupt)?,
        email,
        subscriber_id,
        list_id,
        campaign_id,
        delivery_id,
        status,
        reason,
    })
}

impl SqlStore<Db> {
    async fn insert_event(
        conn: &mut <Db as sqlx::Database>::Connection,
        event: &NewEvent<'_>,
    ) -> Result<(), StoreError> {
        Self::insert_event_as(conn, INSERT_EVENT, event).await?;
        Ok(())
    }

    /// Inserts `event` with `sql`, one of the inserts above; how many rows.
    async fn insert_event_as(
        conn: &mut <Db as sqlx::Database>::Connection,
        sql: &'static str,
        event: &NewEvent<'_>,
    ) -> Result<u64, StoreError> {
        let inserted = Self::event_query(sql, event).execute(&mut *conn).await?;
        Ok(inserted.rows_affected())
    }

    /// `sql`, one of the inserts above, with `event` bound as `$1` to `$11`.
    fn event_query(
        sql: &'static str,
        event: &NewEvent<'_>,
    ) -> sqlx::query::Query<'static, Db, <Db as sqlx::Database>::Arguments> {
        sqlx::query::<Db>(sql)
            .bind(Utc::now())
            .bind(event.kind.as_str())
            .bind(event.source.as_str())
            .bind(event.email.as_str())
            .bind(event.email.suppression_hash())
            .bind(event.email.key())
            .bind(event.list_id.or(event.delivery.map(|d| d.list_id)))
            .bind(event.delivery.map(|d| d.campaign_id))
            .bind(event.delivery.map(|d| d.id))
            .bind(event.status)
            .bind(event.reason)
    }

    async fn mark_delivery(
        conn: &mut <Db as sqlx::Database>::Connection,
        delivery: Option<&DeliveryRef>,
        feedback: &str,
    ) -> Result<(), StoreError> {
        if let Some(delivery) = delivery {
            // A complaint outranks a bounce, and a bounce a soft one.
            sqlx::query::<Db>(
                "UPDATE deliveries SET feedback = $1 WHERE id = $2
                   AND (feedback IS NULL OR feedback = 'soft-bounce'
                        OR (feedback = 'bounced' AND $1 = 'complained'))",
            )
            .bind(feedback)
            .bind(delivery.id)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl FeedbackStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all, fields(delivery = id))]
    async fn delivery_ref(&self, id: i64) -> Result<Option<DeliveryRef>, StoreError> {
        let row: Option<(i64, i64, i64, i64, String)> = sqlx::query_as::<Db, _>(
            "SELECT d.id, d.campaign_id, d.list_id, d.subscriber_id, s.email
               FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
              WHERE d.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(id, campaign_id, list_id, subscriber_id, email)| {
            Ok(DeliveryRef {
                id,
                campaign_id,
                list_id,
                subscriber_id,
                email: SubscriberEmail::parse(&email)
                    .map_err(|e| StoreError::corrupt("a stored subscriber", e))?,
            })
        })
        .transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(kind = %event.kind))]
    async fn record_event(&self, event: &NewEvent<'_>) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        Self::insert_event(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(hard = bounce.hard))]
    async fn record_bounce(&self, bounce: &Bounce<'_>) -> Result<BounceOutcome, StoreError> {
        // One transaction of as few statements as the outcome needs: the
        // listener answers a bounce only once it is committed.
        let mut tx = self.begin_write().await?;
        Self::lock_address(&mut tx, bounce.email).await?;
        let event = |kind, status, reason| NewEvent {
            kind,
            source: bounce.source,
            email: bounce.email,
            list_id: None,
            delivery: bounce.delivery,
            status,
            reason,
        };
        if bounce.hard {
            // Two statements: the suppression, only if a subscriber has the
            // address, then the bounce's event and the suppression's at once.
            let bounced = event(EventKind::Bounce, Some(bounce.status), bounce.reason);
            let suppressed =
                Self::suppress_subscriber_over_unsubscribe(&mut tx, bounce.email).await?;
            let inserted = if suppressed {
                Self::event_query(INSERT_BOUNCE_AND_SUPPRESSION_EVENTS, &bounced)
                    .bind(EventKind::Suppress.as_str())
                    .bind("a hard bounce")
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            } else {
                Self::insert_event_as(&mut tx, INSERT_SUBSCRIBER_EVENT, &bounced).await?
            };
            if inserted == 0 {
                return Ok(BounceOutcome::Unknown);
            }
            Self::mark_delivery(&mut tx, bounce.delivery, "bounced").await?;
            tx.commit().await?;
            return Ok(BounceOutcome::Suppressed);
        }
        let bounced = event(EventKind::SoftBounce, Some(bounce.status), bounce.reason);
        if Self::insert_event_as(&mut tx, INSERT_SUBSCRIBER_EVENT, &bounced).await? == 0 {
            return Ok(BounceOutcome::Unknown);
        }
        Self::mark_delivery(&mut tx, bounce.delivery, "soft-bounce").await?;
        let soft: i64 = sqlx::query_scalar::<Db, i64>(
            "SELECT COUNT(*) FROM subscriber_events
              WHERE email_hash = $1 AND kind = 'soft-bounce' AND at >= $2",
        )
        .bind(bounce.email.suppression_hash())
        .bind(bounce.soft_since)
        .fetch_one(&mut *tx)
        .await?;
        let outcome = if soft >= i64::from(bounce.soft_limit) {
            if Self::suppress_subscriber_over_unsubscribe(&mut tx, bounce.email).await? {
                let why = format!("{soft} soft bounces");
                Self::insert_event(&mut tx, &event(EventKind::Suppress, None, &why)).await?;
            }
            BounceOutcome::Suppressed
        } else {
            BounceOutcome::Counted
        };
        tx.commit().await?;
        Ok(outcome)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(subscriber = complaint.subscriber_id))]
    async fn record_complaint(&self, complaint: &Complaint<'_>) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let Some(email) = Self::subscriber_email_by_id(&mut tx, complaint.subscriber_id).await?
        else {
            return Ok(false);
        };
        Self::lock_address(&mut tx, &email).await?;
        sqlx::query::<Db>(UNSUBSCRIBE)
            .bind(Utc::now())
            .bind(complaint.subscriber_id)
            .execute(&mut *tx)
            .await?;
        Self::suppress(&mut tx, &email, SuppressionReason::Complaint).await?;
        Self::mark_delivery(&mut tx, complaint.delivery, "complained").await?;
        Self::insert_event(
            &mut tx,
            &NewEvent {
                kind: EventKind::Complaint,
                source: complaint.source,
                email: &email,
                list_id: None,
                delivery: complaint.delivery,
                status: None,
                reason: complaint.reason,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
        let mut qb = sqlx::QueryBuilder::<Db>::new(
            "SELECT id, at, kind, source, email, subscriber_id, list_id, campaign_id, delivery_id,
                    status, reason
               FROM subscriber_events WHERE 1 = 1",
        );
        if let Some(email) = &filter.email {
            qb.push(" AND email_hash = ")
                .push_bind(email.suppression_hash());
        }
        if !filter.kinds.is_empty() {
            qb.push(" AND kind IN (");
            let mut kinds = qb.separated(", ");
            for kind in &filter.kinds {
                kinds.push_bind(kind.as_str());
            }
            qb.push(")");
        }
        if let Some(since) = filter.since {
            qb.push(" AND at >= ").push_bind(since);
        }
        if let Some(campaign) = filter.campaign_id {
            qb.push(" AND campaign_id = ").push_bind(campaign);
        }
        if let Some(before) = filter.before {
            qb.push(" AND id < ").push_bind(before);
        }
        qb.push(" ORDER BY id DESC LIMIT ").push_bind(filter.limit);
        qb.build_query_as::<EventRow>()
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(event_from)
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn suppressions(
        &self,
        before: Option<(DateTime<Utc>, &str)>,
        limit: i64,
    ) -> Result<Vec<SuppressionEntry>, StoreError> {
        let mut qb = sqlx::QueryBuilder::<Db>::new(
            "SELECT s.email, p.email_hash, p.reason, p.created_at
               FROM suppressions p LEFT JOIN subscribers s ON s.email_hash = p.email_hash",
        );
        if let Some((at, hash)) = before {
            qb.push(" WHERE (p.created_at, p.email_hash) < (")
                .push_bind(at);
            qb.push(", ").push_bind(hash).push(")");
        }
        qb.push(" ORDER BY p.created_at DESC, p.email_hash DESC LIMIT ")
            .push_bind(limit);
        let rows: Vec<(Option<String>, String, String, DateTime<Utc>)> =
            qb.build_query_as().fetch_all(&self.pool).await?;
        rows.into_iter()
            .map(|(email, email_hash, reason, at)| {
                Ok(SuppressionEntry {
                    email,
                    email_hash,
                    reason: reason
                        .parse()
                        .map_err(|e| StoreError::corrupt("a stored suppression", e))?,
                    at,
                })
            })
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(reason = %reason))]
    async fn add_suppression(
        &self,
        email: &SubscriberEmail,
        reason: SuppressionReason,
        note: &str,
        source: EventSource,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        Self::lock_address(&mut tx, email).await?;
        Self::suppress(&mut tx, email, reason).await?;
        let why = if note.is_empty() {
            reason.as_str().to_owned()
        } else {
            format!("{reason}: {note}")
        };
        Self::insert_event(
            &mut tx,
            &NewEvent::about(EventKind::Suppress, source, email, None, &why),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn remove_suppression(
        &self,
        email: &SubscriberEmail,
        note: &str,
        source: EventSource,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        Self::lock_address(&mut tx, email).await?;
        let removed = sqlx::query::<Db>("DELETE FROM suppressions WHERE email_hash = $1")
            .bind(email.suppression_hash())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if removed {
            Self::insert_event(
                &mut tx,
                &NewEvent::about(EventKind::Unsuppress, source, email, None, note),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }
}
