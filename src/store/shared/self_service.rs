//! Self-service (sign-ups, confirmations, unsubscribes and preferences),
//! for both backends: compiled into each (see [`crate::store`]).

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use sqlx::AssertSqlSafe;

use super::Db;
use super::subscribers::{SELECT_SUBSCRIBERS, SubscriberRow, UPSERT_SUBSCRIBERS};
use crate::error::StoreError;
use crate::lists::OptIn;
use crate::store::{Dialect, SqlStore};
use crate::subscribers::{
    AskToConfirm, Asked, ConfirmationTurn, Consent, Pending, PreferenceChange, QueuedConfirmation,
    ROLE, SelfServiceStore, Signup, SignupOutcome, Subscriber, SubscriberEmail, SubscriberStatus,
    SubscriptionStatus, SuppressionReason,
};

/// Stores a subscription from the subscribe form or the preferences page:
/// inserts it, or overwrites one that is not confirmed. A confirmed one is
/// left alone and keeps the consent it was confirmed with.
const UPSERT_SELF_SERVICE: &str = "INSERT INTO subscriptions
    (subscriber_id, list_id, status, consent_at, consent_method, consent_ip, consent_wording,
     confirmed_at, confirm_issued_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (subscriber_id, list_id) DO UPDATE
    SET status = excluded.status, consent_at = excluded.consent_at, consent_method = excluded.consent_method,
        consent_ip = excluded.consent_ip, consent_wording = excluded.consent_wording,
        confirmed_at = excluded.confirmed_at, unsubscribed_at = NULL,
        confirm_issued_at = excluded.confirm_issued_at
    WHERE subscriptions.status <> 'confirmed'";

/// The subscriptions of a subscriber awaiting one confirmation: list id,
/// address and list name, in list name order.
const SELECT_AWAITING: &str = "SELECT x.list_id, s.email, l.name
     FROM subscriptions x
     JOIN subscribers s ON s.id = x.subscriber_id
     JOIN lists l ON l.id = x.list_id
    WHERE x.subscriber_id = $1 AND x.status = 'unconfirmed' AND x.confirm_issued_at = $2
    ORDER BY l.name";

/// The unconfirmed members of list `$1` to ask to confirm, with an id above
/// `$2` and at most `$6`, in id order, at most `$4`: those who can be mailed
/// and hold no confirmation link issued at or after `$3`. Their id, address,
/// hash and the confirmation emails sent to the address since `$5`.
const UNCONFIRMED_TO_ASK: &str = "SELECT s.id, s.email, s.email_hash,
        (SELECT COUNT(*) FROM confirmation_emails e
          WHERE e.email_hash = s.email_hash AND e.sent_at >= $5)
   FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id
  WHERE x.list_id = $1 AND s.id > $2 AND s.id <= $6
    AND x.status = 'unconfirmed' AND s.status = 'active'
    AND (x.confirm_issued_at IS NULL OR x.confirm_issued_at < $3)
    AND NOT EXISTS (SELECT 1 FROM suppressions p WHERE p.email_hash = s.email_hash)
  ORDER BY s.id LIMIT $4";

/// How many members [`SelfServiceStore::ask_to_confirm`] asks per
/// transaction: on PostgreSQL each holds one lock per address.
const ASKED_PER_TRANSACTION: i64 = 500;

/// Unsubscribes subscriber `$2` at `$1` from every list.
pub(super) const UNSUBSCRIBE: &str = "UPDATE subscriptions
    SET status = 'unsubscribed', unsubscribed_at = $1, confirm_issued_at = NULL
    WHERE subscriber_id = $2 AND status <> 'unsubscribed'";

/// Parses an address read back from the database.
fn stored_email(email: &str) -> Result<SubscriberEmail, StoreError> {
    SubscriberEmail::parse(email).map_err(|e| StoreError::corrupt("a stored subscriber", e))
}

/// The [`Pending`] for rows of [`SELECT_AWAITING`], or `None` when there are none.
fn pending_from(rows: Vec<(i64, String, String)>) -> Result<Option<Pending>, StoreError> {
    let Some((_, email, _)) = rows.first() else {
        return Ok(None);
    };
    let email = stored_email(email)?;
    Ok(Some(Pending {
        email,
        lists: rows.into_iter().map(|(_, _, name)| name).collect(),
    }))
}

fn no_subscriber(id: i64) -> StoreError {
    StoreError::not_found(format_args!("there is no subscriber with id {id}"))
}

impl SqlStore<Db> {
    /// Serialises write transactions about one address.
    pub(super) async fn lock_address(
        conn: &mut <Db as sqlx::Database>::Connection,
        email: &SubscriberEmail,
    ) -> Result<(), StoreError> {
        if let Some(sql) = <Db as Dialect>::ADDRESS_LOCK {
            sqlx::query::<Db>(sql)
                .bind(email.key())
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// The address of subscriber `id`, if there is one.
    pub(super) async fn subscriber_email_by_id(
        conn: &mut <Db as sqlx::Database>::Connection,
        id: i64,
    ) -> Result<Option<SubscriberEmail>, StoreError> {
        let email: Option<String> =
            sqlx::query_scalar::<Db, String>("SELECT email FROM subscribers WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        email.as_deref().map(stored_email).transpose()
    }

    /// Writes one subscription with [`UPSERT_SELF_SERVICE`](UPSERT_SELF_SERVICE).
    pub(super) async fn upsert_self_service(
        conn: &mut <Db as sqlx::Database>::Connection,
        subscriber_id: i64,
        list_id: i64,
        status: SubscriptionStatus,
        consent: &Consent,
        issued_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let confirmed_at = (status == SubscriptionStatus::Confirmed).then(chrono::Utc::now);
        sqlx::query::<Db>(UPSERT_SELF_SERVICE)
            .bind(subscriber_id)
            .bind(list_id)
            .bind(status.as_str())
            .bind(consent.at)
            .bind(consent.method.as_str())
            .bind(consent.ip.as_deref())
            .bind(&consent.wording)
            .bind(confirmed_at)
            .bind(issued_at)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl SelfServiceStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all, fields(lists = signup.lists.len()))]
    async fn sign_up(&self, signup: &Signup) -> Result<SignupOutcome, StoreError> {
        if signup.lists.is_empty() {
            return Err(StoreError::Refused(
                "choose at least one list to subscribe to".into(),
            ));
        }
        let mut tx = self.begin_write().await?;
        Self::lock_address(&mut tx, &signup.email).await?;
        // Someone who unsubscribed from everything may come back, through
        // a confirmation: that proves the address and lifts the suppression.
        let returning = match Self::load_suppression(&mut tx, &signup.email).await? {
            None => false,
            Some(s) if s.reason == SuppressionReason::Unsubscribed => true,
            Some(_) => return Ok(SignupOutcome::Suppressed),
        };
        let existing: Option<(i64, String)> =
            sqlx::query_as::<Db, _>("SELECT id, status FROM subscribers WHERE email_key = $1")
                .bind(signup.email.key())
                .fetch_optional(&mut *tx)
                .await?;
        let lists = Self::resolve_lists(&mut tx, &signup.lists).await?;
        let subscriber_id = match existing {
            Some((_, status)) if status == SubscriberStatus::Blocklisted.as_str() => {
                return Ok(SignupOutcome::Suppressed);
            }
            Some((id, _)) => id,
            None => {
                let now = Utc::now();
                sqlx::query_scalar::<Db, i64>(AssertSqlSafe(format!(
                    "{} VALUES ($1, $2, $3, $4, $5, 'active', $6, $6) RETURNING id",
                    UPSERT_SUBSCRIBERS
                )))
                .bind(signup.email.as_str())
                .bind(signup.email.key())
                .bind(signup.email.suppression_hash())
                .bind(signup.name.as_ref().map(|n| n.as_str()))
                .bind(sqlx::types::Json(&signup.attributes))
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        let mut qb = sqlx::QueryBuilder::<Db>::new(
            "SELECT l.id, l.name, x.status FROM lists l
               LEFT JOIN subscriptions x ON x.list_id = l.id AND x.subscriber_id = ",
        );
        qb.push_bind(subscriber_id).push(" WHERE l.id IN (");
        let mut ids = qb.separated(", ");
        for (id, _) in &lists {
            ids.push_bind(*id);
        }
        qb.push(")");
        let current: std::collections::HashMap<i64, (String, Option<String>)> = qb
            .build_query_as::<(i64, String, Option<String>)>()
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(id, name, status)| (id, (name, status)))
            .collect();
        let (mut pending, mut joined, mut already) = (Vec::new(), Vec::new(), Vec::new());
        for (list_id, opt_in) in lists {
            let (name, status) = current.get(&list_id).cloned().ok_or_else(|| {
                StoreError::Unavailable(format!("list {list_id} vanished during a sign-up"))
            })?;
            if status.as_deref() == Some(SubscriptionStatus::Confirmed.as_str()) {
                already.push(name);
                continue;
            }
            let (status, issued_at) = match opt_in {
                OptIn::Single if !returning => {
                    joined.push(name);
                    (SubscriptionStatus::Confirmed, None)
                }
                _ => {
                    pending.push(name);
                    (SubscriptionStatus::Unconfirmed, Some(signup.issued_at))
                }
            };
            Self::upsert_self_service(
                &mut tx,
                subscriber_id,
                list_id,
                status,
                &signup.consent,
                issued_at,
            )
            .await?;
        }
        if !pending.is_empty() {
            sqlx::query::<Db>(
                "INSERT INTO confirmation_queue (subscriber_id, issued_at, queued_at) VALUES ($1, $2, $3)",
            )
            .bind(subscriber_id)
            .bind(signup.issued_at)
            .bind(Utc::now())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(SignupOutcome::Stored {
            subscriber_id,
            pending,
            joined,
            already,
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(subscriber = subscriber_id))]
    async fn pending(
        &self,
        subscriber_id: i64,
        issued_at: i64,
    ) -> Result<Option<Pending>, StoreError> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as::<Db, _>(SELECT_AWAITING)
            .bind(subscriber_id)
            .bind(issued_at)
            .fetch_all(&self.pool)
            .await?;
        pending_from(rows)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(subscriber = subscriber_id))]
    async fn confirm(
        &self,
        subscriber_id: i64,
        issued_at: i64,
    ) -> Result<Option<Pending>, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut rows: Vec<(i64, String, String)> = sqlx::query_as::<Db, _>(SELECT_AWAITING)
            .bind(subscriber_id)
            .bind(issued_at)
            .fetch_all(&mut *tx)
            .await?;
        let Some((_, email, _)) = rows.first() else {
            return Ok(None);
        };
        let email = stored_email(email)?;
        Self::lock_address(&mut tx, &email).await?;
        // The same condition again, so that of two concurrent
        // confirmations only one confirms each subscription.
        let confirmed: Vec<i64> = sqlx::query_scalar::<Db, i64>(
            "UPDATE subscriptions SET status = 'confirmed', confirmed_at = $1, confirm_issued_at = NULL
              WHERE subscriber_id = $2 AND status = 'unconfirmed' AND confirm_issued_at = $3
              RETURNING list_id",
        )
        .bind(Utc::now())
        .bind(subscriber_id)
        .bind(issued_at)
        .fetch_all(&mut *tx)
        .await?;
        if !confirmed.is_empty() {
            Self::lift_unsubscribe(&mut tx, &email).await?;
        }
        tx.commit().await?;
        rows.retain(|(list_id, _, _)| confirmed.contains(list_id));
        pending_from(rows)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(limit))]
    async fn allow_confirmation_email(
        &self,
        email: &SubscriberEmail,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let hash = email.suppression_hash();
        let mut tx = self.begin_write().await?;
        Self::lock_address(&mut tx, email).await?;
        sqlx::query::<Db>("DELETE FROM confirmation_emails WHERE sent_at < $1")
            .bind(since)
            .execute(&mut *tx)
            .await?;
        let sent: i64 = sqlx::query_scalar::<Db, i64>(
            "SELECT COUNT(*) FROM confirmation_emails WHERE email_hash = $1 AND sent_at >= $2",
        )
        .bind(&hash)
        .bind(since)
        .fetch_one(&mut *tx)
        .await?;
        let allowed = sent < i64::from(limit);
        if allowed {
            sqlx::query::<Db>(
                "INSERT INTO confirmation_emails (email_hash, sent_at) VALUES ($1, $2)",
            )
            .bind(&hash)
            .bind(Utc::now())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(allowed)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(limit))]
    async fn take_confirmations(
        &self,
        since: DateTime<Utc>,
        limit: u32,
    ) -> Result<ConfirmationTurn, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query::<Db>("DELETE FROM confirmation_queue WHERE sent_at < $1")
            .bind(since)
            .execute(&mut *tx)
            .await?;
        let (taken, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as::<Db, _>(
            "SELECT COUNT(*), MIN(sent_at) FROM confirmation_queue WHERE sent_at IS NOT NULL",
        )
        .fetch_one(&mut *tx)
        .await?;
        let room = (i64::from(limit) - taken).max(0);
        let now = Utc::now();
        let mut rows: Vec<(i64, i64, i64)> = sqlx::query_as::<Db, _>(AssertSqlSafe(format!(
            "UPDATE confirmation_queue SET sent_at = $1 WHERE id IN
               (SELECT id FROM confirmation_queue WHERE sent_at IS NULL ORDER BY id LIMIT $2{})
             RETURNING id, subscriber_id, issued_at",
            <Db as Dialect>::CLAIM_LOCK
        )))
        .bind(now)
        .bind(room)
        .fetch_all(&mut *tx)
        .await?;
        let waiting: i64 = sqlx::query_scalar::<Db, i64>(
            "SELECT COUNT(*) FROM confirmation_queue WHERE sent_at IS NULL",
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.sort_unstable();
        let due = rows
            .into_iter()
            .map(|(_, subscriber_id, issued_at)| QueuedConfirmation {
                subscriber_id,
                issued_at,
            })
            .collect();
        // A slot frees when the oldest one taken is a window old.
        let next_slot = (waiting > 0).then(|| oldest.unwrap_or(now) + (now - since));
        Ok(ConfirmationTurn { due, next_slot })
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn confirmations_waiting(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar::<Db, i64>(
            "SELECT COUNT(*) FROM confirmation_queue WHERE sent_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(list = %ask.list))]
    async fn ask_to_confirm(&self, ask: &AskToConfirm) -> Result<Asked, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let (list_id, _) = Self::resolve_lists(&mut conn, std::slice::from_ref(&ask.list))
            .await?
            .remove(0);
        let awaiting: i64 = sqlx::query_scalar::<Db, i64>(
            "SELECT COUNT(*) FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id
              WHERE x.list_id = $1 AND x.status = 'unconfirmed' AND s.status = 'active'
                AND x.confirm_issued_at >= $2
                AND NOT EXISTS (SELECT 1 FROM suppressions p WHERE p.email_hash = s.email_hash)",
        )
        .bind(list_id)
        .bind(ask.live_since)
        .fetch_one(&mut *conn)
        .await?;
        drop(conn);
        let mut asked = Asked {
            awaiting: u64::try_from(awaiting).unwrap_or_default(),
            ..Asked::default()
        };
        let mut after = 0;
        loop {
            let mut tx = self.begin_write().await?;
            let page = |after: i64, upto: i64| {
                sqlx::query_as::<Db, (i64, String, String, i64)>(UNCONFIRMED_TO_ASK)
                    .bind(list_id)
                    .bind(after)
                    .bind(ask.live_since)
                    .bind(ASKED_PER_TRANSACTION)
                    .bind(ask.since)
                    .bind(upto)
            };
            let found = page(after, i64::MAX).fetch_all(&mut *tx).await?;
            let Some(&(last, ..)) = found.last() else {
                break;
            };
            // Each address's lock, then the same rows again: a sign-up of
            // one of them meanwhile is counted, not raced.
            for (_, email, _, _) in &found {
                Self::lock_address(&mut tx, &stored_email(email)?).await?;
            }
            let found = page(after, last).fetch_all(&mut *tx).await?;
            let (allowed, over): (Vec<_>, Vec<_>) = found
                .into_iter()
                .partition(|(.., sent)| *sent < i64::from(ask.per_address));
            asked.over_limit += over.len() as u64;
            if !allowed.is_empty() {
                let mut stamp =
                    sqlx::QueryBuilder::<Db>::new("UPDATE subscriptions SET confirm_issued_at = ");
                stamp
                    .push_bind(ask.issued_at)
                    .push(" WHERE list_id = ")
                    .push_bind(list_id)
                    .push(" AND status = 'unconfirmed' AND subscriber_id IN (");
                let mut ids = stamp.separated(", ");
                for (id, ..) in &allowed {
                    ids.push_bind(*id);
                }
                stamp.push(")");
                stamp.build().execute(&mut *tx).await?;
                let now = Utc::now();
                let mut sent = sqlx::QueryBuilder::<Db>::new(
                    "INSERT INTO confirmation_emails (email_hash, sent_at) ",
                );
                sent.push_values(&allowed, |mut row, (_, _, hash, _)| {
                    row.push_bind(hash.as_str()).push_bind(now);
                });
                sent.build().execute(&mut *tx).await?;
                let mut queue = sqlx::QueryBuilder::<Db>::new(
                    "INSERT INTO confirmation_queue (subscriber_id, issued_at, queued_at) ",
                );
                queue.push_values(&allowed, |mut row, (id, ..)| {
                    row.push_bind(*id).push_bind(ask.issued_at).push_bind(now);
                });
                queue.build().execute(&mut *tx).await?;
                asked.queued += allowed.len() as u64;
            }
            tx.commit().await?;
            after = last;
        }
        Ok(asked)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(subscriber = id))]
    async fn subscriber_by_id(&self, id: i64) -> Result<Subscriber, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let sql = format!("{} WHERE s.id = $1", SELECT_SUBSCRIBERS);
        let row = sqlx::query_as::<Db, SubscriberRow>(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| no_subscriber(id))?;
        Ok(Self::load_subscribers(&mut conn, vec![row])
            .await?
            .remove(0))
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(subscriber = subscriber_id, lists = ?list_ids)
    )]
    async fn unsubscribe_by_id(
        &self,
        subscriber_id: i64,
        list_ids: Option<&[i64]>,
    ) -> Result<bool, StoreError> {
        let Some(list_ids) = list_ids else {
            let mut tx = self.begin_write().await?;
            let Some(email) = Self::subscriber_email_by_id(&mut tx, subscriber_id).await? else {
                return Ok(false);
            };
            sqlx::query::<Db>(UNSUBSCRIBE)
                .bind(Utc::now())
                .bind(subscriber_id)
                .execute(&mut *tx)
                .await?;
            Self::suppress(&mut tx, &email, SuppressionReason::Unsubscribed).await?;
            tx.commit().await?;
            return Ok(true);
        };
        let targets: Vec<(i64, i64)> = list_ids.iter().map(|l| (subscriber_id, *l)).collect();
        Ok(self
            .unsubscribe_from_lists(&targets)
            .await?
            .first()
            .is_some_and(|exists| *exists))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(targets = targets.len()))]
    async fn unsubscribe_from_lists(
        &self,
        targets: &[(i64, i64)],
    ) -> Result<Vec<bool>, StoreError> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        // UPDATE … FROM (VALUES …) finds each row through the primary key
        // on both backends; a row-value IN (VALUES …) scans the table.
        let mut update = sqlx::QueryBuilder::<Db>::new(
            "UPDATE subscriptions SET status = 'unsubscribed', confirm_issued_at = NULL, unsubscribed_at = ",
        );
        update.push_bind(Utc::now());
        update.push(" FROM (VALUES ");
        let mut rows = update.separated(", ");
        for &(subscriber_id, list_id) in targets {
            rows.push("(");
            rows.push_bind_unseparated(subscriber_id);
            rows.push_unseparated(", ");
            rows.push_bind_unseparated(list_id);
            rows.push_unseparated(")");
        }
        update.push(
            ") AS t WHERE subscriptions.subscriber_id = t.column1 AND subscriptions.list_id = t.column2
               AND subscriptions.status <> 'unsubscribed' RETURNING subscriber_id",
        );
        // One statement, committed on its own: the common case is a
        // single round trip to the database. Only subscribers it
        // changed nothing for are looked up, to tell who exists.
        let turn = self.turn().await;
        let mut exists: HashSet<i64> = update
            .build_query_scalar::<i64>()
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .collect();
        drop(turn);
        let unchanged: Vec<i64> = targets
            .iter()
            .map(|(s, _)| *s)
            .filter(|s| !exists.contains(s))
            .collect();
        if !unchanged.is_empty() {
            let mut known =
                sqlx::QueryBuilder::<Db>::new("SELECT id FROM subscribers WHERE id IN (");
            let mut ids = known.separated(", ");
            for subscriber_id in unchanged {
                ids.push_bind(subscriber_id);
            }
            known.push(")");
            exists.extend(
                known
                    .build_query_scalar::<i64>()
                    .fetch_all(&self.pool)
                    .await?,
            );
        }
        Ok(targets.iter().map(|(s, _)| exists.contains(s)).collect())
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(subscriber = subscriber_id, on = change.on.len(), off = change.off.len())
    )]
    async fn change_preferences(
        &self,
        subscriber_id: i64,
        change: &PreferenceChange,
    ) -> Result<Subscriber, StoreError> {
        if let Some(both) = change.on.iter().find(|id| change.off.contains(id)) {
            return Err(StoreError::Refused(format!(
                "list {both} cannot be both joined and left"
            )));
        }
        let mut tx = self.begin_write().await?;
        let email = Self::subscriber_email_by_id(&mut tx, subscriber_id)
            .await?
            .ok_or_else(|| no_subscriber(subscriber_id))?;
        Self::lock_address(&mut tx, &email).await?;
        let now = Utc::now();
        if let Some(name) = &change.name {
            sqlx::query::<Db>("UPDATE subscribers SET name = $1, updated_at = $2 WHERE id = $3")
                .bind(name.as_ref().map(|n| n.as_str()))
                .bind(now)
                .bind(subscriber_id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(role) = &change.role {
            let mut attributes = Self::load_subscriber(&mut tx, &email).await?.attributes;
            attributes.set(ROLE.into(), role.clone().unwrap_or_default());
            sqlx::query::<Db>(
                "UPDATE subscribers SET attributes = $1, updated_at = $2 WHERE id = $3",
            )
            .bind(sqlx::types::Json(&attributes))
            .bind(now)
            .bind(subscriber_id)
            .execute(&mut *tx)
            .await?;
        }
        if !change.on.is_empty() {
            Self::lift_unsubscribe(&mut tx, &email).await?;
            if let Some(s) = Self::load_suppression(&mut tx, &email).await? {
                return Err(StoreError::Refused(format!(
                    "{}, so it cannot join a list again",
                    s.refusal(&email)
                )));
            }
            let mut qb = sqlx::QueryBuilder::<Db>::new("SELECT id FROM lists WHERE id IN (");
            let mut ids = qb.separated(", ");
            for id in &change.on {
                ids.push_bind(*id);
            }
            qb.push(")");
            let known: Vec<i64> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
            if let Some(missing) = change.on.iter().find(|id| !known.contains(id)) {
                return Err(StoreError::not_found(format_args!(
                    "there is no list with id {missing}"
                )));
            }
            for list_id in &change.on {
                Self::upsert_self_service(
                    &mut tx,
                    subscriber_id,
                    *list_id,
                    SubscriptionStatus::Confirmed,
                    &change.consent,
                    None,
                )
                .await?;
            }
        }
        if !change.off.is_empty() {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "UPDATE subscriptions SET status = 'unsubscribed', confirm_issued_at = NULL, unsubscribed_at = ",
            );
            qb.push_bind(now);
            qb.push(" WHERE status <> 'unsubscribed' AND subscriber_id = ")
                .push_bind(subscriber_id);
            qb.push(" AND list_id IN (");
            let mut ids = qb.separated(", ");
            for id in &change.off {
                ids.push_bind(*id);
            }
            qb.push(")");
            qb.build().execute(&mut *tx).await?;
        }
        let subscriber = Self::load_subscriber(&mut tx, &email).await?;
        tx.commit().await?;
        Ok(subscriber)
    }
}
