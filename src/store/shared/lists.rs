//! Lists, for both backends: compiled into each (see [`crate::store`]).

use chrono::{DateTime, Utc};

use sqlx::AssertSqlSafe;

use super::Db;
use crate::error::{StoreError, UnknownName};
use crate::lists::{List, ListCounts, ListOption, ListSlug, ListStore, NewList, OptIn};
use crate::store::error::is_unique_violation;
use crate::store::{Dialect, SqlStore, TALLY_ROWS_BEFORE_FOLD};

/// A row of the list query, before its fields are parsed into domain types.
#[derive(sqlx::FromRow)]
struct ListRow {
    id: i64,
    slug: String,
    name: String,
    description: String,
    opt_in: String,
    public: bool,
    position: i32,
    created_at: DateTime<Utc>,
    confirmed: i64,
    unconfirmed: i64,
    unsubscribed: i64,
    blocklisted: i64,
}

impl TryFrom<ListRow> for List {
    type Error = StoreError;

    fn try_from(row: ListRow) -> Result<Self, StoreError> {
        let corrupt =
            |what: String| StoreError::corrupt(format_args!("the list {:?}", row.slug), what);
        Ok(List {
            id: row.id,
            slug: ListSlug::parse(&row.slug).map_err(|e| corrupt(e.to_string()))?,
            name: row.name.clone(),
            description: row.description.clone(),
            opt_in: row
                .opt_in
                .parse()
                .map_err(|e: UnknownName| corrupt(e.to_string()))?,
            public: row.public,
            position: row.position,
            created_at: row.created_at,
            subscribers: ListCounts {
                confirmed: row.confirmed,
                unconfirmed: row.unconfirmed,
                unsubscribed: row.unsubscribed,
                blocklisted: row.blocklisted,
            },
        })
    }
}

/// Each list with its counts: those of its subscriptions by status, from
/// the tallies the triggers keep (migration 0021), less those of
/// blocklisted subscribers, who are few and found by their partial index
/// (migration 0015); not a count of 600,000 subscriptions on every request.
const SELECT_LISTS: &str = "
    WITH blocked AS (
        SELECT x.list_id, x.status
          FROM subscribers s CROSS JOIN subscriptions x
         WHERE s.status = 'blocklisted' AND x.subscriber_id = s.id)
    SELECT l.id, l.slug, l.name, l.description, l.opt_in, l.public, l.position, l.created_at,
           (SELECT CAST(COALESCE(SUM(t.n), 0) AS BIGINT) FROM subscription_tallies t
             WHERE t.list_id = l.id AND t.status = 'confirmed')
         - (SELECT COUNT(*) FROM blocked b WHERE b.list_id = l.id AND b.status = 'confirmed')
             AS confirmed,
           (SELECT CAST(COALESCE(SUM(t.n), 0) AS BIGINT) FROM subscription_tallies t
             WHERE t.list_id = l.id AND t.status = 'unconfirmed')
         - (SELECT COUNT(*) FROM blocked b WHERE b.list_id = l.id AND b.status = 'unconfirmed')
             AS unconfirmed,
           (SELECT CAST(COALESCE(SUM(t.n), 0) AS BIGINT) FROM subscription_tallies t
             WHERE t.list_id = l.id AND t.status = 'unsubscribed')
         - (SELECT COUNT(*) FROM blocked b WHERE b.list_id = l.id AND b.status = 'unsubscribed')
             AS unsubscribed,
           (SELECT COUNT(*) FROM blocked b WHERE b.list_id = l.id) AS blocklisted
      FROM lists l";

impl SqlStore<Db> {
    /// Folds the lists' subscription tallies once they have grown well past
    /// one row per list and status (PostgreSQL appends rows: see
    /// [`Dialect::FOLD_SUBSCRIPTION_TALLIES`]); nothing on SQLite.
    async fn fold_subscription_tallies(&self) -> Result<(), StoreError> {
        let Some(fold) = <Db as Dialect>::FOLD_SUBSCRIPTION_TALLIES else {
            return Ok(());
        };
        let excess: i64 = sqlx::query_scalar::<Db, i64>(
            "SELECT (SELECT COUNT(*) FROM subscription_tallies) - 3 * (SELECT COUNT(*) FROM lists)",
        )
        .fetch_one(&self.pool)
        .await?;
        if excess > TALLY_ROWS_BEFORE_FOLD
            && let Err(e) = sqlx::query::<Db>(fold).execute(&self.pool).await
        {
            // The next reader folds them instead; the counts are right
            // either way.
            tracing::warn!(error = %e, "could not fold the subscription tallies");
        }
        Ok(())
    }

    /// The id and opt-in policy of each named list, each once, in the
    /// order given; an unknown slug is [`StoreError::NotFound`].
    pub(super) async fn resolve_lists(
        conn: &mut <Db as sqlx::Database>::Connection,
        slugs: &[ListSlug],
    ) -> Result<Vec<(i64, OptIn)>, StoreError> {
        let mut lists: Vec<(i64, OptIn)> = Vec::with_capacity(slugs.len());
        for slug in slugs {
            let row: Option<(i64, String)> =
                sqlx::query_as::<Db, _>("SELECT id, opt_in FROM lists WHERE slug = $1")
                    .bind(slug.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
            let (id, opt_in) = row.ok_or_else(|| {
                StoreError::not_found(format_args!("there is no list {:?}", slug.as_str()))
            })?;
            if !lists.iter().any(|(known, _)| *known == id) {
                let opt_in = opt_in.parse().map_err(|e| {
                    StoreError::corrupt(format_args!("the list {:?}", slug.as_str()), e)
                })?;
                lists.push((id, opt_in));
            }
        }
        Ok(lists)
    }

    /// Runs `sql` (`UPDATE lists SET … = $1 WHERE slug = $2`) for list
    /// `slug`, in the write turn, and returns the list as it now is.
    async fn update_list<'a, T>(
        &self,
        slug: &ListSlug,
        sql: &'static str,
        value: T,
    ) -> Result<List, StoreError>
    where
        T: 'a + sqlx::Encode<'a, Db> + sqlx::Type<Db> + Send,
    {
        let turn = self.turn().await;
        let done = sqlx::query::<Db>(sql)
            .bind(value)
            .bind(slug.as_str())
            .execute(&self.pool)
            .await?;
        drop(turn);
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(format_args!(
                "there is no list {:?}",
                slug.as_str()
            )));
        }
        self.list(slug).await
    }
}

#[async_trait::async_trait]
impl ListStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all, fields(list = %new.slug))]
    async fn create_list(&self, new: &NewList) -> Result<List, StoreError> {
        let turn = self.turn().await;
        let inserted = sqlx::query::<Db>(
            "INSERT INTO lists (slug, name, description, opt_in, public, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(new.slug.as_str())
        .bind(&new.name)
        .bind(&new.description)
        .bind(new.opt_in.as_str())
        .bind(new.public)
        .bind(chrono::Utc::now())
        .execute(&self.pool)
        .await;
        drop(turn);
        match inserted {
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "a list with slug {:?} already exists",
                new.slug.as_str()
            ))),
            Err(e) => Err(e.into()),
            Ok(_) => self.list(&new.slug).await,
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn lists(&self) -> Result<Vec<List>, StoreError> {
        self.fold_subscription_tallies().await?;
        let sql = format!("{} ORDER BY l.position, l.slug", SELECT_LISTS);
        sqlx::query_as::<Db, ListRow>(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(TryInto::try_into)
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_options(&self) -> Result<Vec<ListOption>, StoreError> {
        let rows: Vec<(i64, String, String, String, String, bool)> = sqlx::query_as::<Db, _>(
            "SELECT id, slug, name, description, opt_in, public FROM lists ORDER BY position, slug",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, slug, name, description, opt_in, public)| {
                let corrupt =
                    |what: String| StoreError::corrupt(format_args!("the list {slug:?}"), what);
                Ok(ListOption {
                    id,
                    slug: ListSlug::parse(&slug).map_err(|e| corrupt(e.to_string()))?,
                    opt_in: opt_in
                        .parse()
                        .map_err(|e: UnknownName| corrupt(e.to_string()))?,
                    name,
                    description,
                    public,
                })
            })
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(list = %slug))]
    async fn list(&self, slug: &ListSlug) -> Result<List, StoreError> {
        self.fold_subscription_tallies().await?;
        let sql = format!("{} WHERE l.slug = $1", SELECT_LISTS);
        sqlx::query_as::<Db, ListRow>(AssertSqlSafe(sql))
            .bind(slug.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| {
                StoreError::not_found(format_args!("there is no list {:?}", slug.as_str()))
            })?
            .try_into()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(list = %slug))]
    async fn rename_list(&self, slug: &ListSlug, name: &str) -> Result<List, StoreError> {
        self.update_list(slug, "UPDATE lists SET name = $1 WHERE slug = $2", name)
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(list = %slug, position))]
    async fn set_list_position(&self, slug: &ListSlug, position: i32) -> Result<List, StoreError> {
        self.update_list(
            slug,
            "UPDATE lists SET position = $1 WHERE slug = $2",
            position,
        )
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(list = %slug, force))]
    async fn delete_list(&self, slug: &ListSlug, force: bool) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let id: Option<i64> = sqlx::query_scalar::<Db, i64>("SELECT id FROM lists WHERE slug = $1")
            .bind(slug.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let id = id.ok_or_else(|| {
            StoreError::not_found(format_args!("there is no list {:?}", slug.as_str()))
        })?;
        let members: i64 =
            sqlx::query_scalar::<Db, i64>("SELECT COUNT(*) FROM subscriptions WHERE list_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        if members > 0 && !force {
            return Err(StoreError::Refused(format!(
                "list {:?} still has {members} subscriber(s); use --force to delete it with their subscriptions",
                slug.as_str()
            )));
        }
        sqlx::query::<Db>("DELETE FROM subscriptions WHERE list_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query::<Db>("DELETE FROM lists WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
