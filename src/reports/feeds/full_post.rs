//! The full post of an excerpt: fetched from the link the excerpt gives
//! (its `Continue reading` link, a feed item's link, an archive page's post
//! title), through the same [`Fetcher`] as feeds (address policy, time and
//! size limits), and imported with the HTML importer and its sanitiser,
//! which takes the page's `<article>`.
//!
//! The page counts as the full post only when it holds one post, not an
//! excerpt, whose text begins with the excerpt's (see
//! [`is_opening_of`](crate::reports::is_opening_of)). Otherwise the excerpt
//! is kept, marked as such, and the reason is given as a warning.

use url::Url;

use super::{FetchError, Fetched, Fetcher, parse_url};
use crate::reports::import::{self, Format, ReportImportError};
use crate::reports::{ReportDraft, is_opening_of};

/// Why an excerpt's full post could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FullPostError {
    #[error("it does not link to its full post")]
    NoLink,
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{0} answered 304 Not Modified to a plain GET")]
    NotModified(Url),
    #[error("{url} is not an HTML page (it is {content_type})")]
    NotHtml { url: Url, content_type: String },
    #[error("the page {url} cannot be imported: {error}")]
    Import {
        url: Url,
        #[source]
        error: ReportImportError,
    },
    #[error("the page {url} holds {posts} posts, not the one post")]
    NotOnePost { url: Url, posts: usize },
    #[error("the page {url} holds an excerpt too")]
    AnExcerptToo { url: Url },
    #[error("the post at {url} does not begin with the excerpt's text")]
    OtherText { url: Url },
}

/// `draft` with its full post's text when it is an excerpt whose full post
/// can be had, else `draft` as it is, with why not.
pub async fn with_full_post(
    fetcher: &Fetcher,
    draft: ReportDraft,
) -> (ReportDraft, Option<FullPostError>) {
    if draft.excerpt.is_none() {
        return (draft, None);
    }
    match full_post(fetcher, &draft).await {
        Ok(full) => (full, None),
        Err(e) => {
            tracing::warn!(title = %draft.title, error = %e, "an excerpt is kept as it is");
            (draft, Some(e))
        }
    }
}

/// The full post of the excerpt `excerpt`: see the module's documentation.
#[tracing::instrument(skip_all, fields(title = %excerpt.title))]
async fn full_post(fetcher: &Fetcher, excerpt: &ReportDraft) -> Result<ReportDraft, FullPostError> {
    let link = excerpt
        .excerpt
        .as_ref()
        .and_then(|e| e.full_post.as_deref())
        .ok_or(FullPostError::NoLink)?;
    let url = parse_url(link)?;
    let page = match fetcher.fetch(&url, &Default::default()).await? {
        Fetched::Page(page) => page,
        Fetched::NotModified => return Err(FullPostError::NotModified(url)),
    };
    if let Some(content_type) = page.content_type.filter(|t| !t.contains("html")) {
        return Err(FullPostError::NotHtml { url, content_type });
    }
    let mut drafts =
        import::parse(&page.body, Format::Html).map_err(|error| FullPostError::Import {
            url: url.clone(),
            error,
        })?;
    let full = match drafts.len() {
        1 => drafts.remove(0),
        posts => return Err(FullPostError::NotOnePost { url, posts }),
    };
    if full.excerpt.is_some() {
        return Err(FullPostError::AnExcerptToo { url });
    }
    if !is_opening_of(&excerpt.body_markdown, &full.body_markdown) {
        return Err(FullPostError::OtherText { url });
    }
    tracing::info!(%url, "fetched the full post of an excerpt");
    Ok(ReportDraft {
        body_markdown: full.body_markdown,
        excerpt: None,
        ..excerpt.clone()
    })
}
