//! Subscribers, subscriptions and suppressions, for both backends:
//! compiled into each (see [`crate::store`]).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use sqlx::types::Json;

use super::Db;
use crate::error::StoreError;
use crate::lists::ListSlug;
use crate::store::{Dialect, SqlStore};
use crate::subscribers::import::{Existing, ImportBatch, ImportCounts, plan};
use crate::subscribers::{
    Attributes, Consent, Membership, NewSubscriber, SearchCursor, StatusFilter, Subscriber,
    SubscriberEmail, SubscriberFilter, SubscriberStatus, SubscriberStore, SubscriberUpdate,
    SubscriptionStatus, Suppression, SuppressionReason, initial_status,
};

#[derive(sqlx::FromRow)]
pub(super) struct SubscriberRow {
    id: i64,
    email: String,
    name: Option<String>,
    attributes: Json<Attributes>,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    suppression_reason: Option<String>,
    suppressed_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct MembershipRow {
    subscriber_id: i64,
    slug: String,
    status: String,
    consent_at: DateTime<Utc>,
    consent_method: String,
    consent_ip: Option<String>,
    consent_wording: String,
    confirmed_at: Option<DateTime<Utc>>,
    unsubscribed_at: Option<DateTime<Utc>>,
}

pub(super) const SELECT_SUBSCRIBERS: &str = "
    SELECT s.id, s.email, s.name, s.attributes, s.status, s.created_at, s.updated_at,
           p.reason AS suppression_reason, p.created_at AS suppressed_at
      FROM subscribers s LEFT JOIN suppressions p ON p.email_hash = s.email_hash";

const SELECT_MEMBERSHIPS: &str = "
    SELECT x.subscriber_id, l.slug, x.status, x.consent_at, x.consent_method, x.consent_ip, x.consent_wording,
           x.confirmed_at, x.unsubscribed_at
      FROM subscriptions x JOIN lists l ON l.id = x.list_id
     WHERE x.subscriber_id IN (";

const INSERT_SUBSCRIPTION: &str = "INSERT INTO subscriptions
    (subscriber_id, list_id, status, consent_at, consent_method, consent_ip, consent_wording, confirmed_at) ";

/// An admin's add re-subscribes someone who left the list (they have given
/// consent again) and upgrades an unconfirmed subscription to confirmed.
const ON_CONFLICT_ADMIN: &str = " ON CONFLICT (subscriber_id, list_id) DO UPDATE
    SET status = excluded.status, consent_at = excluded.consent_at, consent_method = excluded.consent_method,
        consent_ip = excluded.consent_ip, consent_wording = excluded.consent_wording,
        confirmed_at = excluded.confirmed_at, unsubscribed_at = NULL
    WHERE subscriptions.status = 'unsubscribed'
       OR (subscriptions.status = 'unconfirmed' AND excluded.status = 'confirmed')";

/// An import never re-subscribes someone who left a list: a spreadsheet is
/// not fresh consent. It only upgrades unconfirmed to confirmed.
const ON_CONFLICT_IMPORT: &str = " ON CONFLICT (subscriber_id, list_id) DO UPDATE
    SET status = excluded.status, consent_at = excluded.consent_at, consent_method = excluded.consent_method,
        consent_wording = excluded.consent_wording, confirmed_at = excluded.confirmed_at
    WHERE subscriptions.status = 'unconfirmed' AND excluded.status = 'confirmed'";

pub(super) const UPSERT_SUBSCRIBERS: &str = "
    INSERT INTO subscribers
        (email, email_key, email_hash, name, attributes, status, created_at, updated_at) ";

const ON_CONFLICT_SUBSCRIBERS: &str = " ON CONFLICT (email_key) DO UPDATE
    SET name = excluded.name, attributes = excluded.attributes, updated_at = excluded.updated_at
    RETURNING id, email_key";

/// How many rows go into one multi-row statement; both backends' bind-parameter
/// limits allow this times eight.
const ROWS_PER_STATEMENT: usize = 1000;

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt("a stored subscriber", what)
}

fn membership(row: MembershipRow) -> Result<Membership, StoreError> {
    Ok(Membership {
        slug: ListSlug::parse(&row.slug).map_err(corrupt)?,
        status: row.status.parse().map_err(corrupt)?,
        consent: Consent {
            at: row.consent_at,
            method: row.consent_method.parse().map_err(corrupt)?,
            ip: row.consent_ip,
            wording: row.consent_wording,
        },
        confirmed_at: row.confirmed_at,
        unsubscribed_at: row.unsubscribed_at,
    })
}

/// Joins subscriber rows with their membership rows (both in subscriber id order).
fn assemble(
    rows: Vec<SubscriberRow>,
    memberships: Vec<MembershipRow>,
) -> Result<Vec<Subscriber>, StoreError> {
    let mut by_id: HashMap<i64, Vec<Membership>> = HashMap::new();
    for m in memberships {
        by_id
            .entry(m.subscriber_id)
            .or_default()
            .push(membership(m)?);
    }
    rows.into_iter()
        .map(|r| {
            let suppression = match (r.suppression_reason, r.suppressed_at) {
                (Some(reason), Some(at)) => Some(Suppression {
                    reason: reason.parse().map_err(corrupt)?,
                    at,
                }),
                _ => None,
            };
            Ok(Subscriber {
                id: r.id,
                email: SubscriberEmail::parse(&r.email).map_err(corrupt)?,
                name: r.name,
                status: r.status.parse().map_err(corrupt)?,
                attributes: r.attributes.0,
                created_at: r.created_at,
                updated_at: r.updated_at,
                lists: by_id.remove(&r.id).unwrap_or_default(),
                suppression,
            })
        })
        .collect()
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_pattern(search: &str) -> String {
    let mut p = String::with_capacity(search.len() + 2);
    p.push('%');
    for c in search.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The bounds of the strings that start with `prefix`, lower-cased, in
/// byte order: at least the prefix, below the prefix and the last code point.
pub(super) fn prefix_range(prefix: &str) -> (String, String) {
    let low = prefix.to_lowercase();
    let high = format!("{low}{}", char::MAX);
    (low, high)
}

/// Narrows a query of subscribers `s` (after its WHERE) by `filter`.
fn push_filter(qb: &mut sqlx::QueryBuilder<Db>, filter: &SubscriberFilter) {
    let subscription_status = match filter.status {
        Some(StatusFilter::Blocklisted) => {
            qb.push(" AND s.status = 'blocklisted'");
            None
        }
        Some(StatusFilter::Subscription(status)) => Some(status),
        None => None,
    };
    if filter.list.is_some() || subscription_status.is_some() {
        qb.push(
            " AND EXISTS (SELECT 1 FROM subscriptions x JOIN lists l ON l.id = x.list_id
               WHERE x.subscriber_id = s.id",
        );
        if let Some(slug) = &filter.list {
            qb.push(" AND l.slug = ").push_bind(slug.as_str());
        }
        if let Some(status) = subscription_status {
            qb.push(" AND x.status = ").push_bind(status.as_str());
        }
        qb.push(")");
    }
    for pair in &filter.attributes {
        qb.push(" AND s.attributes ->> ")
            .push_bind(pair.key.as_str());
        qb.push(" = ").push_bind(pair.value.as_str());
    }
    if let Some(search) = &filter.search {
        let pattern = like_pattern(search);
        qb.push(" AND (s.email_key LIKE ")
            .push_bind(pattern.clone());
        qb.push(" ESCAPE '\\' OR lower(coalesce(s.name, '')) LIKE ")
            .push_bind(pattern);
        qb.push(" ESCAPE '\\')");
    }
}

fn not_stored(email: &SubscriberEmail) -> StoreError {
    StoreError::not_found(format_args!("there is no subscriber {email}"))
}

impl SqlStore<Db> {
    pub(super) async fn load_subscribers(
        conn: &mut <Db as sqlx::Database>::Connection,
        rows: Vec<SubscriberRow>,
    ) -> Result<Vec<Subscriber>, StoreError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = sqlx::QueryBuilder::<Db>::new(SELECT_MEMBERSHIPS);
        let mut ids = qb.separated(", ");
        for r in &rows {
            ids.push_bind(r.id);
        }
        qb.push(") ORDER BY x.subscriber_id, l.slug");
        let memberships = qb
            .build_query_as::<MembershipRow>()
            .fetch_all(&mut *conn)
            .await?;
        assemble(rows, memberships)
    }

    pub(super) async fn load_subscriber(
        conn: &mut <Db as sqlx::Database>::Connection,
        email: &SubscriberEmail,
    ) -> Result<Subscriber, StoreError> {
        let sql = format!("{} WHERE s.email_key = $1", SELECT_SUBSCRIBERS);
        let row = sqlx::query_as::<Db, SubscriberRow>(AssertSqlSafe(sql))
            .bind(email.key())
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| not_stored(email))?;
        Ok(Self::load_subscribers(conn, vec![row]).await?.remove(0))
    }

    pub(super) async fn load_suppression(
        conn: &mut <Db as sqlx::Database>::Connection,
        email: &SubscriberEmail,
    ) -> Result<Option<Suppression>, StoreError> {
        let row: Option<(String, DateTime<Utc>)> = sqlx::query_as::<Db, _>(
            "SELECT reason, created_at FROM suppressions WHERE email_hash = $1",
        )
        .bind(email.suppression_hash())
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|(reason, at)| {
            Ok(Suppression {
                reason: reason.parse().map_err(corrupt)?,
                at,
            })
        })
        .transpose()
    }

    /// Lifts the address's suppression if it is an unsubscribe from
    /// everything: the person asked to come back. A hard bounce, a
    /// complaint or an erasure stays.
    pub(super) async fn lift_unsubscribe(
        conn: &mut <Db as sqlx::Database>::Connection,
        email: &SubscriberEmail,
    ) -> Result<(), StoreError> {
        sqlx::query::<Db>(
            "DELETE FROM suppressions WHERE email_hash = $1 AND reason = 'unsubscribed'",
        )
        .bind(email.suppression_hash())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Suppresses the address; an unsubscribe never weakens a stronger
    /// reason (a hard bounce, a complaint, an erasure) already recorded.
    pub(super) async fn suppress(
        conn: &mut <Db as sqlx::Database>::Connection,
        email: &SubscriberEmail,
        reason: SuppressionReason,
    ) -> Result<(), StoreError> {
        sqlx::query::<Db>(
            "INSERT INTO suppressions (email_hash, reason, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (email_hash) DO UPDATE SET reason = excluded.reason, created_at = excluded.created_at
             WHERE excluded.reason <> 'unsubscribed' OR suppressions.reason = 'unsubscribed'",
        )
        .bind(email.suppression_hash())
        .bind(reason.as_str())
        .bind(Utc::now())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Suppresses the address for a bounce, when a subscriber has it, unless
    /// it is suppressed already for a reason stronger than an unsubscribe;
    /// true when it did.
    pub(super) async fn suppress_subscriber_over_unsubscribe(
        conn: &mut <Db as sqlx::Database>::Connection,
        email: &SubscriberEmail,
    ) -> Result<bool, StoreError> {
        let written = sqlx::query::<Db>(
            "INSERT INTO suppressions (email_hash, reason, created_at)
             SELECT $1, $2, $3 FROM subscribers WHERE email_key = $4
             ON CONFLICT (email_hash) DO UPDATE
                SET reason = excluded.reason, created_at = excluded.created_at
              WHERE suppressions.reason = 'unsubscribed'",
        )
        .bind(email.suppression_hash())
        .bind(SuppressionReason::HardBounce.as_str())
        .bind(Utc::now())
        .bind(email.key())
        .execute(&mut *conn)
        .await?;
        Ok(written.rows_affected() > 0)
    }
}

#[async_trait::async_trait]
impl SubscriberStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all, fields(lists = new.lists.len()))]
    async fn add_subscriber(&self, new: &NewSubscriber) -> Result<Subscriber, StoreError> {
        let mut tx = self.begin_write().await?;
        Self::lock_address(&mut tx, &new.email).await?;
        if new.resubscribe {
            Self::lift_unsubscribe(&mut tx, &new.email).await?;
        }
        if let Some(s) = Self::load_suppression(&mut tx, &new.email).await? {
            return Err(StoreError::Refused(s.refusal(&new.email)));
        }
        let lists = Self::resolve_lists(&mut tx, &new.lists).await?;
        let now = Utc::now();
        let existing: Option<(i64, Option<String>, Json<Attributes>)> = sqlx::query_as::<Db, _>(
            "SELECT id, name, attributes FROM subscribers WHERE email_key = $1",
        )
        .bind(new.email.key())
        .fetch_optional(&mut *tx)
        .await?;
        let id = match existing {
            None => {
                sqlx::query_scalar::<Db, i64>(AssertSqlSafe(format!(
                    "{} VALUES ($1, $2, $3, $4, $5, 'active', $6, $6) RETURNING id",
                    UPSERT_SUBSCRIBERS
                )))
                .bind(new.email.as_str())
                .bind(new.email.key())
                .bind(new.email.suppression_hash())
                .bind(new.name.as_ref().map(|n| n.as_str()))
                .bind(Json(&new.attributes))
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
            }
            Some((id, name, Json(mut attributes))) => {
                attributes.merge(&new.attributes);
                let name = new.name.as_ref().map(|n| n.as_str().to_owned()).or(name);
                sqlx::query::<Db>(
                    "UPDATE subscribers SET name = $1, attributes = $2, updated_at = $3
                      WHERE id = $4",
                )
                .bind(name)
                .bind(Json(&attributes))
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                id
            }
        };
        for (list_id, opt_in) in lists {
            let status = initial_status(opt_in, new.confirmed);
            let confirmed_at = (status == SubscriptionStatus::Confirmed).then_some(now);
            sqlx::query::<Db>(AssertSqlSafe(format!(
                "{} VALUES ($1, $2, $3, $4, $5, $6, $7, $8) {}",
                INSERT_SUBSCRIPTION, ON_CONFLICT_ADMIN
            )))
            .bind(id)
            .bind(list_id)
            .bind(status.as_str())
            .bind(new.consent.at)
            .bind(new.consent.method.as_str())
            .bind(new.consent.ip.as_deref())
            .bind(&new.consent.wording)
            .bind(confirmed_at)
            .execute(&mut *tx)
            .await?;
        }
        let subscriber = Self::load_subscriber(&mut tx, &new.email).await?;
        tx.commit().await?;
        Ok(subscriber)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn subscriber(&self, email: &SubscriberEmail) -> Result<Subscriber, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Self::load_subscriber(&mut conn, email).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(after_id, limit))]
    async fn subscribers(
        &self,
        filter: &SubscriberFilter,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<Subscriber>, StoreError> {
        let mut qb = sqlx::QueryBuilder::<Db>::new(SELECT_SUBSCRIBERS);
        qb.push(" WHERE s.id > ").push_bind(after_id);
        push_filter(&mut qb, filter);
        qb.push(" ORDER BY s.id LIMIT ").push_bind(limit);
        let mut conn = self.pool.acquire().await?;
        let rows = qb
            .build_query_as::<SubscriberRow>()
            .fetch_all(&mut *conn)
            .await?;
        Self::load_subscribers(&mut conn, rows).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(limit))]
    async fn search_subscribers(
        &self,
        prefix: &str,
        filter: &SubscriberFilter,
        after: Option<&SearchCursor>,
        limit: i64,
    ) -> Result<Vec<(SearchCursor, Subscriber)>, StoreError> {
        let (low, high) = prefix_range(prefix);
        let from = match after {
            Some(c) if c.key > low => c.key.clone(),
            _ => low,
        };
        let bytes = <Db as Dialect>::BYTE_ORDER;
        // Each of the two ordered index ranges gives a page; the page is
        // the first of both.
        let mut qb = sqlx::QueryBuilder::<Db>::new("SELECT m.k, m.id FROM (");
        for (i, column) in ["s.email_key", "lower(s.name)"].into_iter().enumerate() {
            if i > 0 {
                qb.push(" UNION ALL ");
            }
            let key = format!("{column}{bytes}");
            qb.push(format_args!(
                "SELECT * FROM (SELECT {column} AS k, s.id FROM subscribers s WHERE {key} >= "
            ))
            .push_bind(from.clone());
            qb.push(format_args!(" AND {key} < "))
                .push_bind(high.clone());
            if let Some(c) = after {
                qb.push(format_args!(" AND NOT ({key} = "))
                    .push_bind(c.key.clone());
                qb.push(" AND s.id <= ").push_bind(c.id).push(")");
            }
            push_filter(&mut qb, filter);
            qb.push(format_args!(" ORDER BY {key}, s.id LIMIT "))
                .push_bind(limit);
            qb.push(format_args!(") AS m{i}"));
        }
        qb.push(format_args!(") AS m ORDER BY m.k{bytes}, m.id LIMIT "))
            .push_bind(limit);
        let mut conn = self.pool.acquire().await?;
        let found: Vec<(String, i64)> = qb.build_query_as().fetch_all(&mut *conn).await?;
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = sqlx::QueryBuilder::<Db>::new(SELECT_SUBSCRIBERS);
        qb.push(" WHERE s.id IN (");
        let mut ids = qb.separated(", ");
        for (_, id) in &found {
            ids.push_bind(*id);
        }
        qb.push(")");
        let rows = qb
            .build_query_as::<SubscriberRow>()
            .fetch_all(&mut *conn)
            .await?;
        let by_id: HashMap<i64, Subscriber> = Self::load_subscribers(&mut conn, rows)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        Ok(found
            .into_iter()
            .filter_map(|(key, id)| {
                let subscriber = by_id.get(&id)?.clone();
                Some((SearchCursor { key, id }, subscriber))
            })
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn update_subscriber(
        &self,
        email: &SubscriberEmail,
        update: &SubscriberUpdate,
    ) -> Result<Subscriber, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut current = Self::load_subscriber(&mut tx, email).await?;
        if let Some(name) = &update.name {
            current.name = name.as_ref().map(|n| n.as_str().to_owned());
        }
        current.attributes.merge(&update.set);
        for key in &update.unset {
            current.attributes.remove(key);
        }
        sqlx::query::<Db>(
            "UPDATE subscribers SET name = $1, attributes = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(current.name.as_deref())
        .bind(Json(&current.attributes))
        .bind(Utc::now())
        .bind(current.id)
        .execute(&mut *tx)
        .await?;
        let subscriber = Self::load_subscriber(&mut tx, email).await?;
        tx.commit().await?;
        Ok(subscriber)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn unsubscribe(
        &self,
        email: &SubscriberEmail,
        list: Option<&ListSlug>,
    ) -> Result<Subscriber, StoreError> {
        let mut tx = self.begin_write().await?;
        let subscriber = Self::load_subscriber(&mut tx, email).await?;
        let mut qb = sqlx::QueryBuilder::<Db>::new(
            "UPDATE subscriptions SET status = 'unsubscribed', unsubscribed_at = ",
        );
        qb.push_bind(Utc::now());
        qb.push(" WHERE status <> 'unsubscribed' AND subscriber_id = ")
            .push_bind(subscriber.id);
        match list {
            Some(slug) => {
                if !subscriber.lists.iter().any(|m| &m.slug == slug) {
                    return Err(StoreError::not_found(format_args!(
                        "{email} is not on list {:?}",
                        slug.as_str()
                    )));
                }
                qb.push(" AND list_id = (SELECT id FROM lists WHERE slug = ")
                    .push_bind(slug.as_str())
                    .push(")");
            }
            None => {
                Self::suppress(&mut tx, email, SuppressionReason::Unsubscribed).await?;
            }
        }
        qb.build().execute(&mut *tx).await?;
        let subscriber = Self::load_subscriber(&mut tx, email).await?;
        tx.commit().await?;
        Ok(subscriber)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(blocklisted))]
    async fn set_blocklisted(
        &self,
        email: &SubscriberEmail,
        blocklisted: bool,
    ) -> Result<Subscriber, StoreError> {
        let status = if blocklisted {
            SubscriberStatus::Blocklisted
        } else {
            SubscriberStatus::Active
        };
        let turn = self.turn().await;
        let done = sqlx::query::<Db>(
            "UPDATE subscribers SET status = $1, updated_at = $2 WHERE email_key = $3",
        )
        .bind(status.as_str())
        .bind(Utc::now())
        .bind(email.key())
        .execute(&self.pool)
        .await?;
        drop(turn);
        if done.rows_affected() == 0 {
            return Err(not_stored(email));
        }
        self.subscriber(email).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(erase))]
    async fn remove_subscriber(
        &self,
        email: &SubscriberEmail,
        erase: bool,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query::<Db>("DELETE FROM subscribers WHERE email_key = $1")
            .bind(email.key())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        // The events keep what happened, by the address's hash, but not the address.
        sqlx::query::<Db>("UPDATE subscriber_events SET email = NULL WHERE email_hash = $1")
            .bind(email.suppression_hash())
            .execute(&mut *tx)
            .await?;
        if erase {
            Self::suppress(&mut tx, email, SuppressionReason::Erased).await?;
        } else if !deleted {
            return Err(not_stored(email));
        }
        tx.commit().await?;
        Ok(deleted)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn suppression(
        &self,
        email: &SubscriberEmail,
    ) -> Result<Option<Suppression>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Self::load_suppression(&mut conn, email).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn attribute_keys(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar::<Db, String>(<Db as Dialect>::ATTRIBUTE_KEYS)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    #[tracing::instrument(level = "debug", skip_all, fields(rows = batch.rows.len()))]
    async fn import_batch(&self, batch: &ImportBatch) -> Result<ImportCounts, StoreError> {
        let keys: Vec<String> = batch.rows.iter().map(|r| r.email.key()).collect();
        let hashes: Vec<String> = batch
            .rows
            .iter()
            .map(|r| r.email.suppression_hash())
            .collect();
        let mut tx = self.begin_write().await?;

        let mut suppressed = HashSet::new();
        let mut existing = HashMap::new();
        let mut subscriptions = HashMap::new();
        for chunk in hashes.chunks(ROWS_PER_STATEMENT) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "SELECT email_hash FROM suppressions WHERE email_hash IN (",
            );
            let mut sep = qb.separated(", ");
            for h in chunk {
                sep.push_bind(h.as_str());
            }
            qb.push(")");
            suppressed.extend(
                qb.build_query_scalar::<String>()
                    .fetch_all(&mut *tx)
                    .await?,
            );
        }
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "SELECT id, email_key, name, attributes FROM subscribers WHERE email_key IN (",
            );
            let mut sep = qb.separated(", ");
            for k in chunk {
                sep.push_bind(k.as_str());
            }
            qb.push(")");
            let rows: Vec<(i64, String, Option<String>, Json<Attributes>)> =
                qb.build_query_as().fetch_all(&mut *tx).await?;
            for (id, key, name, attributes) in rows {
                existing.insert(
                    key,
                    Existing {
                        id,
                        name,
                        attributes: attributes.0,
                    },
                );
            }
        }
        let ids: Vec<i64> = existing.values().map(|e| e.id).collect();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "SELECT subscriber_id, list_id, status FROM subscriptions WHERE subscriber_id IN (",
            );
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(*id);
            }
            qb.push(")");
            let rows: Vec<(i64, i64, String)> = qb.build_query_as().fetch_all(&mut *tx).await?;
            for (subscriber, list, status) in rows {
                let status = status.parse().map_err(corrupt)?;
                subscriptions.insert((subscriber, list), status);
            }
        }

        // The domain decides what the rows change, given what is stored.
        let plan = plan(batch, &hashes, &suppressed, &existing, &subscriptions);
        let now = Utc::now();
        let mut ids_by_key: HashMap<String, i64> =
            existing.iter().map(|(k, e)| (k.clone(), e.id)).collect();
        for chunk in plan.upserts.chunks(ROWS_PER_STATEMENT) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(UPSERT_SUBSCRIBERS);
            qb.push_values(chunk, |mut row, s| {
                row.push_bind(s.email.as_str())
                    .push_bind(s.key.as_str())
                    .push_bind(s.hash.as_str())
                    .push_bind(s.name.as_deref())
                    .push_bind(Json(&s.attributes))
                    .push_bind("active")
                    .push_bind(now)
                    .push_bind(now);
            });
            qb.push(ON_CONFLICT_SUBSCRIBERS);
            let rows: Vec<(i64, String)> = qb.build_query_as().fetch_all(&mut *tx).await?;
            ids_by_key.extend(rows.into_iter().map(|(id, key)| (key, id)));
        }
        for chunk in plan.subscriptions.chunks(ROWS_PER_STATEMENT) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(INSERT_SUBSCRIPTION);
            let mut missing = None;
            qb.push_values(chunk, |mut row, (key, list_id, status)| {
                let id = ids_by_key.get(key).copied();
                if id.is_none() {
                    missing = Some(key.clone());
                }
                let confirmed_at = (*status == SubscriptionStatus::Confirmed).then_some(now);
                row.push_bind(id.unwrap_or_default())
                    .push_bind(*list_id)
                    .push_bind(status.as_str())
                    .push_bind(batch.consent.at)
                    .push_bind(batch.consent.method.as_str())
                    .push_bind(batch.consent.ip.as_deref())
                    .push_bind(batch.consent.wording.as_str())
                    .push_bind(confirmed_at);
            });
            if let Some(key) = missing {
                return Err(StoreError::Unavailable(format!(
                    "the import lost track of subscriber {key}"
                )));
            }
            qb.push(ON_CONFLICT_IMPORT);
            qb.build().execute(&mut *tx).await?;
        }
        if let Some(job) = &batch.job {
            Self::advance_import(&mut tx, job, &plan.counts).await?;
        }
        tx.commit().await?;
        Ok(plan.counts)
    }
}
