//! Storage of lists. The SQL is shared by both backends through
//! [`impl_list_store`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{List, ListCounts, ListOption, ListSlug, NewList};
use crate::store::StoreError;

#[async_trait]
pub trait ListStore: Send + Sync {
    /// Creates a list; a slug in use is a [`StoreError::Conflict`].
    async fn create_list(&self, list: &NewList) -> Result<List, StoreError>;
    /// Every list, by slug, with its counts.
    async fn lists(&self) -> Result<Vec<List>, StoreError>;
    async fn list(&self, slug: &ListSlug) -> Result<List, StoreError>;
    /// Every list, by slug, without counts: cheap enough for each page view.
    async fn list_options(&self) -> Result<Vec<ListOption>, StoreError>;
    async fn rename_list(&self, slug: &ListSlug, name: &str) -> Result<List, StoreError>;
    /// Deletes a list. While it has subscribers this is refused unless `force`,
    /// which also deletes their subscriptions to it (not the subscribers).
    async fn delete_list(&self, slug: &ListSlug, force: bool) -> Result<(), StoreError>;
}

/// A row of the list query, before its fields are parsed into domain types.
#[derive(sqlx::FromRow)]
pub(crate) struct ListRow {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub opt_in: String,
    pub public: bool,
    pub created_at: DateTime<Utc>,
    pub confirmed: i64,
    pub unconfirmed: i64,
    pub unsubscribed: i64,
    pub blocklisted: i64,
}

impl TryFrom<ListRow> for List {
    type Error = StoreError;

    fn try_from(row: ListRow) -> Result<Self, StoreError> {
        let corrupt = |what: String| {
            StoreError::Unavailable(format!("the stored list {:?} is corrupt: {what}", row.slug))
        };
        Ok(List {
            id: row.id,
            slug: ListSlug::parse(&row.slug).map_err(|e| corrupt(e.to_string()))?,
            name: row.name.clone(),
            description: row.description.clone(),
            opt_in: row.opt_in.parse().map_err(corrupt)?,
            public: row.public,
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

pub(crate) const SELECT_LISTS: &str = "
    SELECT l.id, l.slug, l.name, l.description, l.opt_in, l.public, l.created_at,
           COUNT(x.subscriber_id) FILTER (WHERE x.status = 'confirmed' AND s.status = 'active') AS confirmed,
           COUNT(x.subscriber_id) FILTER (WHERE x.status = 'unconfirmed' AND s.status = 'active') AS unconfirmed,
           COUNT(x.subscriber_id) FILTER (WHERE x.status = 'unsubscribed' AND s.status = 'active') AS unsubscribed,
           COUNT(x.subscriber_id) FILTER (WHERE s.status = 'blocklisted') AS blocklisted
      FROM lists l
      LEFT JOIN subscriptions x ON x.list_id = l.id
      LEFT JOIN subscribers s ON s.id = x.subscriber_id";

/// Implements [`ListStore`] for a store type whose `pool` field is a
/// `sqlx::Pool<$db>`.
macro_rules! impl_list_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// The id and opt-in policy of each named list, each once, in the
            /// order given; an unknown slug is [`StoreError::NotFound`].
            async fn resolve_lists(
                conn: &mut <$db as sqlx::Database>::Connection,
                slugs: &[$crate::lists::ListSlug],
            ) -> Result<Vec<(i64, $crate::lists::OptIn)>, $crate::store::StoreError> {
                use $crate::store::StoreError;
                let mut lists: Vec<(i64, $crate::lists::OptIn)> = Vec::with_capacity(slugs.len());
                for slug in slugs {
                    let row: Option<(i64, String)> =
                        sqlx::query_as::<$db, _>("SELECT id, opt_in FROM lists WHERE slug = $1")
                            .bind(slug.as_str())
                            .fetch_optional(&mut *conn)
                            .await?;
                    let (id, opt_in) =
                        row.ok_or_else(|| StoreError::not_found(format_args!("there is no list {:?}", slug.as_str())))?;
                    if !lists.iter().any(|(known, _)| *known == id) {
                        lists.push((id, opt_in.parse().map_err(StoreError::Unavailable)?));
                    }
                }
                Ok(lists)
            }
        }

        #[async_trait::async_trait]
        impl $crate::lists::ListStore for $store {
            #[tracing::instrument(level = "debug", skip_all, fields(list = %new.slug))]
            async fn create_list(
                &self,
                new: &$crate::lists::NewList,
            ) -> Result<$crate::lists::List, $crate::store::StoreError> {
                let inserted = sqlx::query::<$db>(
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
                match inserted {
                    Err(e) if $crate::store::error::is_unique_violation(&e) => {
                        Err($crate::store::StoreError::Conflict(format!("a list with slug {:?} already exists", new.slug.as_str())))
                    }
                    Err(e) => Err(e.into()),
                    Ok(_) => self.list(&new.slug).await,
                }
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn lists(&self) -> Result<Vec<$crate::lists::List>, $crate::store::StoreError> {
                let sql = format!("{} GROUP BY l.id ORDER BY l.slug", $crate::lists::store::SELECT_LISTS);
                sqlx::query_as::<$db, $crate::lists::store::ListRow>(&sql)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(TryInto::try_into)
                    .collect()
            }

            #[tracing::instrument(level = "debug", skip_all)]
            async fn list_options(&self) -> Result<Vec<$crate::lists::ListOption>, $crate::store::StoreError> {
                let rows: Vec<(i64, String, String, String, String, bool)> = sqlx::query_as::<$db, _>(
                    "SELECT id, slug, name, description, opt_in, public FROM lists ORDER BY slug",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(id, slug, name, description, opt_in, public)| {
                        let corrupt = |what: String| {
                            $crate::store::StoreError::Unavailable(format!("the stored list {slug:?} is corrupt: {what}"))
                        };
                        Ok($crate::lists::ListOption {
                            id,
                            slug: $crate::lists::ListSlug::parse(&slug).map_err(|e| corrupt(e.to_string()))?,
                            opt_in: opt_in.parse().map_err(corrupt)?,
                            name,
                            description,
                            public,
                        })
                    })
                    .collect()
            }

            #[tracing::instrument(level = "debug", skip_all, fields(list = %slug))]
            async fn list(
                &self,
                slug: &$crate::lists::ListSlug,
            ) -> Result<$crate::lists::List, $crate::store::StoreError> {
                let sql = format!("{} WHERE l.slug = $1 GROUP BY l.id", $crate::lists::store::SELECT_LISTS);
                sqlx::query_as::<$db, $crate::lists::store::ListRow>(&sql)
                    .bind(slug.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| $crate::store::StoreError::not_found(format_args!("there is no list {:?}", slug.as_str())))?
                    .try_into()
            }

            #[tracing::instrument(level = "debug", skip_all, fields(list = %slug))]
            async fn rename_list(
                &self,
                slug: &$crate::lists::ListSlug,
                name: &str,
            ) -> Result<$crate::lists::List, $crate::store::StoreError> {
                let done = sqlx::query::<$db>("UPDATE lists SET name = $1 WHERE slug = $2")
                    .bind(name)
                    .bind(slug.as_str())
                    .execute(&self.pool)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::store::StoreError::not_found(format_args!("there is no list {:?}", slug.as_str())));
                }
                self.list(slug).await
            }

            #[tracing::instrument(level = "debug", skip_all, fields(list = %slug, force))]
            async fn delete_list(
                &self,
                slug: &$crate::lists::ListSlug,
                force: bool,
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.begin_write().await?;
                let id: Option<i64> = sqlx::query_scalar::<$db, i64>("SELECT id FROM lists WHERE slug = $1")
                    .bind(slug.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
                let id = id.ok_or_else(|| $crate::store::StoreError::not_found(format_args!("there is no list {:?}", slug.as_str())))?;
                let members: i64 = sqlx::query_scalar::<$db, i64>("SELECT COUNT(*) FROM subscriptions WHERE list_id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                if members > 0 && !force {
                    return Err($crate::store::StoreError::Refused(format!(
                        "list {:?} still has {members} subscriber(s); use --force to delete it with their subscriptions",
                        slug.as_str()
                    )));
                }
                sqlx::query::<$db>("DELETE FROM subscriptions WHERE list_id = $1").bind(id).execute(&mut *tx).await?;
                sqlx::query::<$db>("DELETE FROM lists WHERE id = $1").bind(id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_list_store;
