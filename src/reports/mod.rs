//! Reports: what the NEC representative writes after each meeting, imported
//! from a Markdown file, a pasted post, a saved page or a feed item.
//!
//! A report's canonical form is its Markdown body, in which each section
//! starts with a level-2 heading (`## Leader's Report`). Sections are derived
//! from the body whenever they are needed, never stored beside it.

pub mod feeds;
pub mod import;
mod sections;
mod store;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use crate::text::{anchor_for, slugify};
pub use sections::{Section, Sections, split_sections};
pub use store::{
    ArchiveEntry, ArchiveStore, FetchRecord, NewSource, ReportRef, ReportStore, Source,
    SourceStore, Stored,
};

/// Where a report came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ReportSource {
    /// A file given to `report import`.
    File { path: String },
    /// Text on standard input.
    Paste,
    /// A page fetched from a URL.
    Url { url: String },
    /// An item of a polled feed.
    Feed {
        feed_url: String,
        guid: String,
        link: Option<String>,
    },
}

impl ReportSource {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ReportSource::File { .. } => "file",
            ReportSource::Paste => "paste",
            ReportSource::Url { .. } => "url",
            ReportSource::Feed { .. } => "feed",
        }
    }
}

/// A report as an importer produces it, before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportDraft {
    pub title: String,
    pub meeting_date: Option<NaiveDate>,
    pub summary: Option<String>,
    /// Markdown; sections start with `## `.
    pub body_markdown: String,
    pub source: ReportSource,
    /// When the post was published, if the source says.
    pub published_at: Option<DateTime<Utc>>,
}

impl ReportDraft {
    /// A hash of the title and body, with line ends and trailing spaces
    /// normalised, so the same report pasted twice is recognised.
    pub fn content_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.title.trim().as_bytes());
        hasher.update([0]);
        for line in self.body_markdown.lines() {
            hasher.update(line.trim_end().as_bytes());
            hasher.update(b"\n");
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A stored report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub meeting_date: Option<NaiveDate>,
    pub summary: Option<String>,
    pub body_markdown: String,
    pub source: ReportSource,
    pub content_hash: String,
    pub published_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl Report {
    pub fn sections(&self) -> Sections {
        split_sections(&self.body_markdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_made_of_lower_case_words_and_hyphens() {
        assert_eq!(
            slugify("Labour NEC Report – March 2017"),
            "labour-nec-report-march-2017"
        );
        assert_eq!(slugify("NEC Report- March 2017"), "nec-report-march-2017");
        assert_eq!(
            slugify("Report from April’s Emergency NEC meeting"),
            "report-from-aprils-emergency-nec-meeting"
        );
        assert_eq!(slugify("–––"), "report");
    }

    #[test]
    fn the_content_hash_ignores_line_ends_and_trailing_spaces() {
        let draft = |body: &str| ReportDraft {
            title: "T".into(),
            meeting_date: None,
            summary: None,
            body_markdown: body.into(),
            source: ReportSource::Paste,
            published_at: None,
        };
        assert_eq!(
            draft("a  \r\nb\n").content_hash(),
            draft("a\nb").content_hash()
        );
        assert_ne!(draft("a\nb").content_hash(), draft("a\nc").content_hash());
    }
}
