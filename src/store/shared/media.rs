//! The media store: images copied from reports, for both backends (see
//! [`crate::store`]).

use chrono::{DateTime, Utc};

use super::Db;
use crate::error::StoreError;
use crate::reports::{Media, MediaStore, MediaType, NewMedia};
use crate::store::SqlStore;

#[async_trait::async_trait]
impl MediaStore for SqlStore<Db> {
    #[tracing::instrument(level = "debug", skip_all, fields(name = %media.name))]
    async fn store_media(&self, media: &NewMedia) -> Result<(), StoreError> {
        let _turn = self.turn().await;
        sqlx::query::<Db>(
            "INSERT INTO media (name, media_type, bytes, source_url, created_at)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&media.name)
        .bind(media.media_type.as_str())
        .bind(&media.bytes)
        .bind(&media.source_url)
        .bind(Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%name))]
    async fn media(&self, name: &str) -> Result<Option<Media>, StoreError> {
        let row = sqlx::query_as::<Db, (String, Vec<u8>, DateTime<Utc>)>(
            "SELECT media_type, bytes, created_at FROM media WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(media_type, bytes, created_at)| {
            let media_type: MediaType = media_type.parse().map_err(|e| {
                StoreError::corrupt(format_args!("the type of the image {name}"), e)
            })?;
            Ok(Media {
                media_type,
                bytes,
                created_at,
            })
        })
        .transpose()
    }
}
