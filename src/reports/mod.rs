//! Reports: what the NEC representative writes after each meeting, imported
//! from a Markdown file, a pasted post, a saved page or a feed item.
//!
//! A report's canonical form is its Markdown body, in which each section
//! starts with a level-2 heading (`## Leader's Report`). Sections are derived
//! from the body whenever they are needed, never stored beside it.

pub mod feeds;
pub mod import;
pub mod intake;
mod media;
mod sections;
mod store;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use crate::text::{anchor_for, slugify};
pub use media::{
    ImageCopier, ImageError, LeftOut, MAX_IMAGES, MAX_MEDIA_BYTES, MEDIA_PATH, Media, MediaStore,
    MediaType, NewMedia,
};
pub use sections::{Section, Sections, split_sections};
pub use store::{
    ArchiveEntry, ArchiveStore, FetchRecord, ImportOptions, NewSource, ReportHistory, ReportRef,
    ReportStore, Revised, SamePost, SentBy, Source, SourceStore, Stored,
};

use crate::text::{MAX_SLUG_LEN, shorten_slug};

/// A slug given for a report that it cannot have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a report slug: use at most {max} lower-case letters, digits and single \
     hyphens, with a letter among them, such as nec-report-march-2017",
    max = MAX_SLUG_LEN
)]
pub struct BadSlug(String);

/// Checks a slug given for a report: words of lower-case ASCII letters and
/// digits joined by single hyphens, at most [`MAX_SLUG_LEN`] characters,
/// and not digits alone, which would name a report by its id.
pub fn parse_slug(input: &str) -> Result<String, BadSlug> {
    let words_ok = input.split('-').all(|w| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    if words_ok && input.len() <= MAX_SLUG_LEN && input.bytes().any(|b| b.is_ascii_lowercase()) {
        Ok(input.to_owned())
    } else {
        Err(BadSlug(input.to_owned()))
    }
}

/// The slugs a new report titled `title` may have, best first: its title's
/// slug, then that slug numbered `-2`, `-3`…, each at most
/// [`MAX_SLUG_LEN`] characters. A title of digits alone gets a `report-`
/// prefix, so that its slug does not read as an id.
pub fn slug_candidates(title: &str) -> impl Iterator<Item = String> {
    let slug = slugify(title);
    let base = if slug.bytes().all(|b| b.is_ascii_digit()) {
        shorten_slug(&format!("report-{slug}"), MAX_SLUG_LEN).to_owned()
    } else {
        slug
    };
    let numbered = (2u64..).map({
        let base = base.clone();
        move |n| {
            let suffix = format!("-{n}");
            let room = MAX_SLUG_LEN.saturating_sub(suffix.len());
            format!("{}{suffix}", shorten_slug(&base, room))
        }
    });
    std::iter::once(base).chain(numbered)
}

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
    /// Set when the draft holds only the opening of its post.
    pub excerpt: Option<Excerpt>,
}

/// What an excerpt says of its post: the opening of a post that a tag
/// archive page or a summary-only feed item shows, cut off with "Continue
/// reading", "Read more" or `[…]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Excerpt {
    /// Where the full post is, when the excerpt links to it.
    pub full_post: Option<String>,
}

/// The fewest words an excerpt needs before it is taken for the opening of
/// a stored post: a title and a word or two match too much.
const MIN_OPENING_WORDS: usize = 8;

/// True when the text of `excerpt` (Markdown) is the opening of the text of
/// `full`: its words, in lower case and ignoring punctuation, markup, images
/// and their captions (which an excerpt leaves out), begin `full`'s words,
/// the last possibly cut short. Excerpts of fewer than
/// [`MIN_OPENING_WORDS`] words match nothing.
pub fn is_opening_of(excerpt: &str, full: &str) -> bool {
    let words = |text: &str| {
        text.lines()
            .map(str::trim)
            .filter(|l| {
                !(l.starts_with("![") || l.len() > 1 && l.starts_with('*') && l.ends_with('*'))
            })
            .flat_map(|l| l.split(|c: char| !c.is_alphanumeric()))
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
    };
    let (excerpt, full) = (words(excerpt), words(full));
    let Some((last, opening)) = excerpt.split_last() else {
        return false;
    };
    excerpt.len() >= MIN_OPENING_WORDS
        && excerpt.len() <= full.len()
        && full.starts_with(opening)
        && full[opening.len()].starts_with(last.as_str())
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
        crate::text::hex(&hasher.finalize())
    }

    /// This draft with `report`'s meeting date and summary where it has
    /// none: a paste or a page, which carry neither, replaces a report's
    /// text without losing them.
    pub fn keeping_details_of(self, report: &Report) -> ReportDraft {
        ReportDraft {
            meeting_date: self.meeting_date.or(report.meeting_date),
            summary: self.summary.or_else(|| report.summary.clone()),
            ..self
        }
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
    /// True when it holds only the opening of its post (see [`Excerpt`]).
    pub excerpt: bool,
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
    fn a_long_title_is_slugged_to_its_last_whole_word_within_60_characters() {
        let title = "Report of the National Executive Committee meeting held in London on 21 March";
        assert_eq!(
            slugify(title),
            "report-of-the-national-executive-committee-meeting-held-in"
        );
        let sixty = format!("{} end", "a".repeat(56));
        assert_eq!(slugify(&format!("{sixty} more")), slugify(&sixty));
        assert_eq!(slugify(&sixty).len(), 60);
        assert_eq!(slugify(&"x".repeat(100)), "x".repeat(60));
        assert_eq!(
            anchor_for(title),
            "report-of-the-national-executive-committee-meeting-held-in-london-on-21-march",
            "anchors keep their length"
        );
    }

    #[test]
    fn numbered_slugs_stay_within_60_characters_and_digits_get_a_word() {
        let title = "Report of the National Executive Committee meeting held in London on 21 March";
        let slugs: Vec<String> = slug_candidates(title).take(12).collect();
        assert_eq!(
            slugs[1],
            "report-of-the-national-executive-committee-meeting-held-in-2"
        );
        assert_eq!(
            slugs[11],
            "report-of-the-national-executive-committee-meeting-held-12"
        );
        assert!(slugs.iter().all(|s| s.len() <= MAX_SLUG_LEN), "{slugs:?}");
        let short: Vec<String> = slug_candidates("2017").take(2).collect();
        assert_eq!(short, ["report-2017", "report-2017-2"]);
    }

    #[test]
    fn a_given_slug_is_words_of_lower_case_letters_and_digits() {
        for ok in ["march-report", "nec-2017", "a", &"a".repeat(60)] {
            assert_eq!(parse_slug(ok).as_deref(), Ok(ok));
        }
        for bad in [
            "",
            "2017",
            "March",
            "-march",
            "march-",
            "march--report",
            "march report",
            "émigré",
            "nec_2017",
            &"a".repeat(61),
        ] {
            assert_eq!(parse_slug(bad), Err(BadSlug(bad.to_owned())));
        }
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
            excerpt: None,
        };
        assert_eq!(
            draft("a  \r\nb\n").content_hash(),
            draft("a\nb").content_hash()
        );
        assert_ne!(draft("a\nb").content_hash(), draft("a\nc").content_hash());
    }
}

#[cfg(test)]
mod opening_tests {
    use super::is_opening_of;

    const FULL: &str = "The NEC met on 18 July for the first time since the election.\n\n\
                        ## Leader’s Report\n\nAlex Morgan thanked every member who campaigned.\n";

    #[test]
    fn an_excerpt_is_the_opening_of_its_post_whatever_its_markup() {
        assert!(is_opening_of(
            "The NEC met on 18 July for the first time since the election. Leader’s Report \
             Alex Morgan thanked",
            FULL
        ));
        assert!(is_opening_of(
            "The NEC met on 18 July for the first time since the elec",
            FULL
        ));
        assert!(is_opening_of(FULL, FULL));
    }

    #[test]
    fn images_and_captions_of_the_full_post_are_not_part_of_its_text() {
        let illustrated = FULL.replacen(
            "\n\n",
            "\n\n![The NEC](https://x.org/a.png)\n\n*The NEC in July*\n\n",
            1,
        );
        assert!(is_opening_of(FULL, &illustrated));
    }

    #[test]
    fn other_text_or_a_few_words_are_not_an_opening() {
        assert!(!is_opening_of(
            "The NEC met on 19 July for the first time",
            FULL
        ));
        assert!(!is_opening_of("The NEC met on 18 July", FULL));
        assert!(!is_opening_of(&format!("{FULL} And more."), FULL));
        assert!(!is_opening_of("", FULL));
    }
}
