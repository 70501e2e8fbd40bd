//! `GET /media/{name}`: the images copied from reports at import (see
//! [`crate::reports::ImageCopier`]), from the database, so that every
//! instance sharing it serves them. A name is the SHA-256 of the image's
//! bytes, so its content never changes: it is cached for a year.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::pages::PageError;
use crate::reports::MediaType;

/// How long browsers and mail proxies may keep an image: a year, and
/// without asking again, as its name changes whenever its bytes would.
const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

pub(super) async fn image(
    State(state): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    if MediaType::of_name(&name).is_none() {
        return Err(PageError::NotFound);
    }
    let media = state
        .reports
        .media(&name)
        .await?
        .ok_or(PageError::NotFound)?;
    let etag = format!("\"{}\"", name.split('.').next().unwrap_or_default());
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(media.media_type.as_str()),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            ),
            (
                header::ETAG,
                HeaderValue::from_str(&etag).map_err(|_| PageError::NotFound)?,
            ),
        ],
        media.bytes,
    )
        .into_response())
}
