//! A report's input made into drafts ready to store, as `necmail report
//! import` and the web admin's new-report page share: a file's bytes
//! ([`read_content`]) or a page or feed fetched from a URL ([`read_url`])
//! through the importers; then each excerpt's full post and the report's
//! images copied into the media store ([`complete`]), with a warning for
//! what could not be had. An edited report's images are copied alike
//! ([`with_images`]), as `necmail report edit` and the admin's edit page share.

use url::Url;

use super::feeds::{FeedItem, FetchError, Fetched, Fetcher, ItemError, parse_feed, with_full_post};
use super::import::{self, Format, ReportImportError};
use super::{ImageCopier, MediaStore, ReportDraft, ReportSource};
use crate::error::StoreError;

/// Why an input gave no report to store; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{0} answered 304 Not Modified to a plain GET")]
    NotModified(Url),
    #[error("cannot import {input}: {error}")]
    Import {
        input: String,
        #[source]
        error: ReportImportError,
    },
    #[error("cannot import {0}: it holds no report")]
    Empty(String),
    #[error("cannot import {0}: the feed has no items")]
    EmptyFeed(String),
    #[error("cannot import {feed}: its item {item:?} {error}")]
    Item {
        feed: String,
        item: String,
        #[source]
        error: ItemError,
    },
}

impl IntakeError {
    /// True when the input is at fault, not the network or the server.
    pub fn is_bad_input(&self) -> bool {
        match self {
            IntakeError::Fetch(e) => e.is_bad_input(),
            IntakeError::NotModified(_) => false,
            IntakeError::Import { .. }
            | IntakeError::Empty(_)
            | IntakeError::EmptyFeed(_)
            | IntakeError::Item { .. } => true,
        }
    }
}

/// The drafts of `content`, from `source`, read as `format`, else as what
/// its file's `name` and content look like; `input` names it in errors.
pub fn read_content(
    input: &str,
    name: Option<&str>,
    content: &[u8],
    format: Option<Format>,
    source: &ReportSource,
) -> Result<Vec<ReportDraft>, IntakeError> {
    let format = format.unwrap_or_else(|| import::guess_format(name, content));
    let drafts = import::parse(content, format).map_err(|error| IntakeError::Import {
        input: input.to_owned(),
        error,
    })?;
    if drafts.is_empty() {
        return Err(IntakeError::Empty(input.to_owned()));
    }
    Ok(drafts
        .into_iter()
        .map(|d| ReportDraft {
            source: source.clone(),
            ..d
        })
        .collect())
}

/// The drafts of the page at `url`, fetched with `fetcher` and its address
/// policy; when no `format` is given and the page is an RSS or Atom feed,
/// one draft for each of its items.
pub async fn read_url(
    fetcher: &Fetcher,
    url: &Url,
    format: Option<Format>,
) -> Result<Vec<ReportDraft>, IntakeError> {
    let page = match fetcher.fetch(url, &Default::default()).await? {
        Fetched::Page(page) => page,
        Fetched::NotModified => return Err(IntakeError::NotModified(url.clone())),
    };
    let feed = match format {
        None => parse_feed(&page.body, Some(page.url.as_str())).ok(),
        Some(_) => None,
    };
    if let Some(items) = feed {
        return feed_drafts(url.as_str(), &items);
    }
    let name = page.url.path().rsplit('/').next().map(str::to_owned);
    let source = ReportSource::Url {
        url: url.to_string(),
    };
    read_content(url.as_str(), name.as_deref(), &page.body, format, &source)
}

/// Every item of a feed as a draft; the first item that cannot be imported
/// refuses the whole feed.
fn feed_drafts(feed_url: &str, items: &[FeedItem]) -> Result<Vec<ReportDraft>, IntakeError> {
    if items.is_empty() {
        return Err(IntakeError::EmptyFeed(feed_url.to_owned()));
    }
    items
        .iter()
        .map(|item| {
            item.to_draft(feed_url).map_err(|error| IntakeError::Item {
                feed: feed_url.to_owned(),
                item: item.name().to_owned(),
                error,
            })
        })
        .collect()
}

/// `drafts` ready to store, and a warning for each thing left as it was:
/// an excerpt gets its full post from its link, or stays an excerpt; each
/// image is copied into `store` for the site at `public_url`, or left out.
/// Only the store failing is an error.
pub async fn complete<S: MediaStore + ?Sized>(
    store: &S,
    fetcher: &Fetcher,
    public_url: &Url,
    drafts: Vec<ReportDraft>,
) -> Result<(Vec<ReportDraft>, Vec<String>), StoreError> {
    let images = ImageCopier::new(fetcher, public_url);
    let mut complete = Vec::with_capacity(drafts.len());
    let mut warnings = Vec::new();
    for draft in drafts {
        let (draft, failure) = with_full_post(fetcher, draft).await;
        if let Some(e) = failure {
            warnings.push(format!(
                "{:?} is only an excerpt of its post, and is kept marked as one: \
                 its full post cannot be had: {e}",
                draft.title
            ));
        }
        let (draft, left_out) = with_images(&images, store, draft).await?;
        warnings.extend(left_out);
        complete.push(draft);
    }
    Ok((complete, warnings))
}

/// `draft` with its images copied into `store` by `images`, and a warning
/// for each image left out. Only the store failing is an error.
pub async fn with_images<S: MediaStore + ?Sized>(
    images: &ImageCopier,
    store: &S,
    draft: ReportDraft,
) -> Result<(ReportDraft, Vec<String>), StoreError> {
    let (draft, left_out) = images.copy_images(store, draft).await?;
    let warnings = left_out
        .iter()
        .map(|image| format!("{:?}: {image}", draft.title))
        .collect();
    Ok((draft, warnings))
}
