//! Feed sources: RSS 2.0 and Atom, fetched politely and polled for new reports.
//!
//! [`parse_feed`] turns a feed into [`FeedItem`]s, [`Fetcher`] fetches it (a
//! time limit, a size limit, conditional GET), [`add_source`] adds a feed
//! with the items it has recorded as seen, and [`poll_source`] and
//! [`poll_all`] poll the stored sources and import each new item as a
//! report. An item that is only an excerpt gets its full post from its link
//! ([`with_full_post`]). Polling again is always safe: an item already stored is a
//! duplicate, not an error.

mod add;
mod addresses;
mod fetch;
mod full_post;
mod poll;

use chrono::{DateTime, Utc};

pub use add::{AddError, Added, Existing, add_source, parse_category};
pub use addresses::{AddressPolicy, Refused, is_globally_routable, non_global_range};
pub use fetch::{
    FetchError, Fetched, Fetcher, MAX_REDIRECTS, Page, Validators, parse_url, user_agent,
};
pub use full_post::{FullPostError, with_full_post};
pub use poll::{
    FailedItem, ItemsImported, POLL_CONCURRENCY, PollOutcome, ReadError, SourcePoll, poll_all,
    poll_source,
};

use super::{ReportDraft, ReportSource, import};

/// One item of a feed, as far as necmail cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedItem {
    /// The item's guid (Atom: id), or its link when it has none; empty when it has neither.
    pub guid: String,
    pub link: Option<String>,
    pub title: Option<String>,
    /// When it was published (Atom: else when it was last updated).
    pub published: Option<DateTime<Utc>>,
    pub categories: Vec<String>,
    /// The full post (`content:encoded`, Atom `content`), else its description
    /// or summary, as HTML.
    pub html: Option<String>,
    /// True when `html` is the description or summary: the item has no content.
    pub summary_only: bool,
}

/// A response that is not an RSS, Atom or JSON feed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("it is not an RSS or Atom feed ({0})")]
pub struct NotAFeed(pub String);

/// Why one item could not become a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    #[error("the item has neither a guid nor a link")]
    NoIdentity,
    #[error("the item has no title")]
    NoTitle,
    #[error("the item has no content")]
    NoContent,
    #[error("{0}")]
    Import(#[from] import::ReportImportError),
}

/// Parses a feed into its items, in the feed's order. `base` resolves
/// relative links.
pub fn parse_feed(content: &[u8], base: Option<&str>) -> Result<Vec<FeedItem>, NotAFeed> {
    let parser = feed_rs::parser::Builder::new()
        .base_uri(base)
        .sanitize_content(false)
        .id_generator(|links, _, _| links.first().map(|l| l.href.clone()).unwrap_or_default())
        .build();
    let feed = parser.parse(content).map_err(|e| NotAFeed(e.to_string()))?;
    Ok(feed.entries.into_iter().map(item).collect())
}

fn item(entry: feed_rs::model::Entry) -> FeedItem {
    let link = entry
        .links
        .iter()
        .find(|l| l.rel.as_deref().is_none_or(|rel| rel == "alternate"))
        .or(entry.links.first())
        .map(|l| l.href.clone());
    let content = entry
        .content
        .and_then(|c| Some((c.body?, c.content_type.essence().to_string())));
    let summary = entry
        .summary
        .map(|t| (t.content, t.content_type.essence().to_string()));
    let has_content = content
        .as_ref()
        .is_some_and(|(body, _)| !body.trim().is_empty());
    let html = content
        .into_iter()
        .chain(summary)
        .find(|(body, _)| !body.trim().is_empty())
        .map(|(body, kind)| {
            if kind == "text/plain" {
                text_to_html(&body)
            } else {
                body
            }
        });
    let mut categories = Vec::new();
    for c in entry.categories {
        categories.extend(c.label.filter(|l| l.trim() != c.term.trim()));
        categories.push(c.term);
    }
    FeedItem {
        guid: entry.id.trim().to_owned(),
        link,
        title: entry
            .title
            .map(|t| t.content.trim().to_owned())
            .filter(|t| !t.is_empty()),
        published: entry.published.or(entry.updated),
        categories,
        summary_only: html.is_some() && !has_content,
        html,
    }
}

/// Plain text as HTML paragraphs, split at blank lines.
fn text_to_html(text: &str) -> String {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let escaped = p
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            format!("<p>{escaped}</p>\n")
        })
        .collect()
}

impl FeedItem {
    /// True when one of the item's categories is `category`, ignoring case
    /// and surrounding spaces.
    pub fn has_category(&self, category: &str) -> bool {
        let wanted = category.trim().to_lowercase();
        self.categories
            .iter()
            .any(|c| c.trim().to_lowercase() == wanted)
    }

    /// The item as a report draft from the feed at `feed_url`: its title, its
    /// HTML through the importer, its guid, link and publication date.
    ///
    /// It is an excerpt when the importer finds its HTML cut off (`Continue
    /// reading`, `[…]`), or when the item has only a summary that ends with
    /// an ellipsis; the full post is then where its `Continue reading` link
    /// goes, else the item's link.
    pub fn to_draft(&self, feed_url: &str) -> Result<ReportDraft, ItemError> {
        if self.guid.is_empty() {
            return Err(ItemError::NoIdentity);
        }
        let title = self.title.as_deref().ok_or(ItemError::NoTitle)?;
        let html = self.html.as_deref().ok_or(ItemError::NoContent)?;
        let mut draft = import::parse_html_fragment(html, title)?;
        let trailing_ellipsis = {
            let end = draft.body_markdown.trim_end();
            end.ends_with('…') || end.ends_with("...")
        };
        if self.summary_only && trailing_ellipsis {
            draft.excerpt.get_or_insert_default();
        }
        if let Some(excerpt) = &mut draft.excerpt {
            excerpt.full_post = excerpt.full_post.take().or_else(|| self.link.clone());
        }
        draft.source = ReportSource::Feed {
            feed_url: feed_url.to_owned(),
            guid: self.guid.clone(),
            link: self.link.clone(),
        };
        draft.published_at = self.published;
        Ok(draft)
    }

    /// How the item is named in messages: its title, else its guid.
    pub fn name(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.guid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Rep</title><link>https://rep.example.org/</link><description>d</description>
<item>
  <title>NEC Report &#8211; May 2017</title>
  <link>https://rep.example.org/2017/05/nec-report/</link>
  <guid isPermaLink="false">https://rep.example.org/?p=101</guid>
  <pubDate>Wed, 24 May 2017 08:30:00 +0000</pubDate>
  <category><![CDATA[NEC]]></category>
  <category><![CDATA[Party business]]></category>
  <description><![CDATA[<p>A short excerpt</p>]]></description>
  <content:encoded><![CDATA[<h2>Leader’s Report</h2><p>575,000 members.</p>]]></content:encoded>
</item>
<item>
  <title>Plain</title>
  <link>https://rep.example.org/plain/</link>
  <description><![CDATA[<p>An excerpt only.</p>]]></description>
</item>
<item><title>  </title></item>
</channel></rss>"#;

    #[test]
    fn an_rss_item_gives_its_guid_link_title_date_categories_and_full_content() {
        let items = parse_feed(RSS.as_bytes(), None).unwrap();
        assert_eq!(items.len(), 3);
        let first = &items[0];
        assert_eq!(first.guid, "https://rep.example.org/?p=101");
        assert_eq!(
            first.link.as_deref(),
            Some("https://rep.example.org/2017/05/nec-report/")
        );
        assert_eq!(first.title.as_deref(), Some("NEC Report – May 2017"));
        assert_eq!(
            first.published.unwrap().to_rfc3339(),
            "2017-05-24T08:30:00+00:00"
        );
        assert_eq!(first.categories, ["NEC", "Party business"]);
        assert_eq!(
            first.html.as_deref(),
            Some("<h2>Leader’s Report</h2><p>575,000 members.</p>")
        );
        assert!(first.has_category(" nec ") && first.has_category("PARTY BUSINESS"));
        assert!(!first.has_category("Campaigns"));
    }

    #[test]
    fn an_item_without_a_guid_is_known_by_its_link_and_without_either_cannot_be_a_report() {
        let items = parse_feed(RSS.as_bytes(), None).unwrap();
        assert_eq!(items[1].guid, "https://rep.example.org/plain/");
        assert_eq!(items[2].guid, "");
        assert_eq!(items[2].title, None);
        assert_eq!(
            items[2].to_draft("https://rep.example.org/feed/"),
            Err(ItemError::NoIdentity)
        );
    }

    #[test]
    fn without_full_content_the_description_is_used() {
        let items = parse_feed(RSS.as_bytes(), None).unwrap();
        assert_eq!(items[1].html.as_deref(), Some("<p>An excerpt only.</p>"));
        assert!(items[1].summary_only && !items[0].summary_only);
        let whole = items[1].to_draft("https://rep.example.org/feed/").unwrap();
        assert_eq!(
            whole.excerpt, None,
            "a summary that ends as a sentence is the whole post"
        );
    }

    #[test]
    fn a_summary_cut_off_with_an_ellipsis_is_an_excerpt_of_the_post_at_the_items_link() {
        let mut item = parse_feed(RSS.as_bytes(), None).unwrap().remove(1);
        item.html = Some("<p>The NEC met on 18 July for the first time since the…</p>".into());
        let draft = item.to_draft("https://rep.example.org/feed/").unwrap();
        assert_eq!(
            draft.excerpt.unwrap().full_post.as_deref(),
            Some("https://rep.example.org/plain/")
        );
        item.summary_only = false;
        let content = item.to_draft("https://rep.example.org/feed/").unwrap();
        assert_eq!(
            content.excerpt, None,
            "full content may end with an ellipsis"
        );
        item.html = Some(
            "<p>The NEC met. <a href=\"https://rep.example.org/more/\">Continue reading</a></p>"
                .into(),
        );
        let draft = item.to_draft("https://rep.example.org/feed/").unwrap();
        assert_eq!(draft.body_markdown, "The NEC met.\n");
        assert_eq!(
            draft.excerpt.unwrap().full_post.as_deref(),
            Some("https://rep.example.org/more/")
        );
    }

    #[test]
    fn a_plain_text_atom_summary_is_escaped_into_paragraphs() {
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:rep</id><title>Rep</title>
            <updated>2017-06-01T10:00:00Z</updated>
            <entry><id>urn:rep:1</id><title>T</title><updated>2017-06-01T10:00:00Z</updated>
            <category term="nec" label="NEC"/>
            <summary type="text">Tom &amp; Jerry said 2 &lt; 3.

Second paragraph.</summary></entry></feed>"#;
        let items = parse_feed(atom.as_bytes(), None).unwrap();
        assert_eq!(items[0].guid, "urn:rep:1");
        assert_eq!(
            items[0].published.unwrap().to_rfc3339(),
            "2017-06-01T10:00:00+00:00"
        );
        assert_eq!(items[0].categories, ["NEC", "nec"]);
        let html = items[0].html.as_deref().unwrap();
        assert!(html.starts_with("<p>"), "{html}");
        assert!(
            html.contains("Tom &amp; Jerry said 2 &lt; 3.</p>"),
            "{html}"
        );
        assert!(html.contains("<p>Second paragraph.</p>"), "{html}");
    }

    #[test]
    fn html_or_an_empty_document_is_not_a_feed() {
        assert!(parse_feed(b"<!DOCTYPE html><html><body><p>Hi</p></body></html>", None).is_err());
        assert!(parse_feed(b"", None).is_err());
        assert!(parse_feed(b"not xml at all", None).is_err());
    }
}
