//! The images of reports, copied into necmail's own media store when a
//! report is imported, so that its emails and its archive page load nothing
//! from third parties and keep working if the blog disappears.
//!
//! Each image a draft's Markdown shows (`![alt](https://…)`) is fetched with
//! the feeds' [`Fetcher`] (its address policy and time limit) but at most
//! [`MAX_MEDIA_BYTES`], checked by its first bytes to be a JPEG, PNG, GIF or
//! WebP image, and stored in the database under the SHA-256 of its bytes
//! with its type's extension: the same image is stored once, and every
//! necmail instance sharing the database serves it. The Markdown then
//! points at `NECMAIL_PUBLIC_URL/media/<sha256>.<ext>`, which `serve`
//! answers with a year's caching (the name changes whenever the bytes do).
//!
//! An image written into the report as a `data:` address stays as it is.
//! An image that cannot be had (missing, too large, not an image, an
//! address refused) is left out of the report, with a warning that says
//! which and why; the import still succeeds. A report shows at most
//! [`MAX_IMAGES`] images from elsewhere: the rest are left out the same way.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pulldown_cmark::{Event, LinkType, Parser, Tag};
use sha2::{Digest, Sha256};
use url::Url;

use super::ReportDraft;
use super::feeds::{FetchError, Fetched, Fetcher, parse_url};
use crate::config::Config;
use crate::error::StoreError;
use crate::text::markdown_options;

/// The largest image necmail copies: 5 MiB.
pub const MAX_MEDIA_BYTES: u64 = 5 * 1024 * 1024;

/// How many images one report may copy from elsewhere.
pub const MAX_IMAGES: usize = 50;

/// The path under `NECMAIL_PUBLIC_URL` that media are served from.
pub const MEDIA_PATH: &str = "media/";

string_enum!(
    /// The image types necmail keeps, by their MIME type.
    MediaType {
        Jpeg = "image/jpeg",
        Png = "image/png",
        Gif = "image/gif",
        Webp = "image/webp",
    }
);

impl MediaType {
    /// The type of an image, from its first bytes; `None` when they are not
    /// those of a JPEG, PNG, GIF or WebP image.
    pub fn sniff(bytes: &[u8]) -> Option<MediaType> {
        match bytes {
            [0xff, 0xd8, 0xff, ..] => Some(MediaType::Jpeg),
            [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, ..] => Some(MediaType::Png),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(MediaType::Gif),
            [
                b'R',
                b'I',
                b'F',
                b'F',
                _,
                _,
                _,
                _,
                b'W',
                b'E',
                b'B',
                b'P',
                ..,
            ] => Some(MediaType::Webp),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            MediaType::Jpeg => "jpg",
            MediaType::Png => "png",
            MediaType::Gif => "gif",
            MediaType::Webp => "webp",
        }
    }

    /// The type a media file's name says: `<64 hex digits>.<extension>`.
    pub fn of_name(name: &str) -> Option<MediaType> {
        let (hash, extension) = name.split_once('.')?;
        let hex = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        MediaType::ALL
            .iter()
            .copied()
            .find(|t| hex && t.extension() == extension)
    }
}

/// An image to store.
#[derive(Debug, Clone)]
pub struct NewMedia {
    /// `<sha256 of the bytes>.<extension>`.
    pub name: String,
    pub media_type: MediaType,
    pub bytes: Vec<u8>,
    /// Where it was copied from.
    pub source_url: String,
}

impl NewMedia {
    /// An image of `media_type` copied from `source_url`.
    pub fn new(media_type: MediaType, bytes: Vec<u8>, source_url: &str) -> NewMedia {
        let hash = crate::text::hex(&Sha256::digest(&bytes));
        NewMedia {
            name: format!("{hash}.{}", media_type.extension()),
            media_type,
            bytes,
            source_url: source_url.to_owned(),
        }
    }
}

/// A stored image.
#[derive(Debug, Clone)]
pub struct Media {
    pub media_type: MediaType,
    pub bytes: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait MediaStore: Send + Sync {
    /// Stores an image; one of the same name is stored already and kept.
    async fn store_media(&self, media: &NewMedia) -> Result<(), StoreError>;
    /// The image named `name`, if there is one.
    async fn media(&self, name: &str) -> Result<Option<Media>, StoreError>;
}

/// Why an image was left out of a report.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{0} answered 304 Not Modified to a plain GET")]
    NotModified(Url),
    #[error("it is larger than the limit of 5 MiB ({MAX_MEDIA_BYTES} bytes)")]
    TooLarge,
    #[error("it is not a JPEG, PNG, GIF or WebP image")]
    NotAnImage,
    #[error("the report has more than {MAX_IMAGES} images")]
    TooMany,
}

/// An image left out of a report, and why.
#[derive(Debug)]
pub struct LeftOut {
    pub url: String,
    pub error: ImageError,
}

impl fmt::Display for LeftOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the image {} is left out: {}", self.url, self.error)
    }
}

/// Copies the images of drafts into the media store: see the module's
/// documentation.
#[derive(Debug, Clone)]
pub struct ImageCopier {
    fetcher: Fetcher,
    /// `NECMAIL_PUBLIC_URL/media/`.
    media_url: Url,
}

impl ImageCopier {
    /// A copier that fetches with `fetcher`'s address policy and time limit,
    /// at most [`MAX_MEDIA_BYTES`], for the site at `public_url`.
    pub fn new(fetcher: &Fetcher, public_url: &Url) -> ImageCopier {
        let mut base = public_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        ImageCopier {
            fetcher: fetcher.with_max_bytes(MAX_MEDIA_BYTES),
            media_url: base.join(MEDIA_PATH).unwrap_or(base),
        }
    }

    /// A copier for the configured fetcher and public URL.
    pub fn from_config(config: &Config) -> Result<ImageCopier, FetchError> {
        Ok(ImageCopier::new(
            &Fetcher::from_config(config)?,
            &config.public_url,
        ))
    }

    /// `draft` with its images copied into `store` and pointing there, and
    /// the images left out. Only the store failing is an error.
    #[tracing::instrument(skip_all, fields(title = %draft.title))]
    pub async fn copy_images<S: MediaStore + ?Sized>(
        &self,
        store: &S,
        mut draft: ReportDraft,
    ) -> Result<(ReportDraft, Vec<LeftOut>), StoreError> {
        let images = images(&draft.body_markdown);
        let mut copied: HashMap<String, Option<String>> = HashMap::new();
        let mut left_out = Vec::new();
        let mut edits: Vec<(Range<usize>, Option<String>)> = Vec::new();
        for image in images {
            // Ours already, or written into the report itself (a `data:`
            // address loads nothing from anyone).
            if image.url.starts_with(self.media_url.as_str()) || image.url.starts_with("data:") {
                continue;
            }
            let ours = match copied.get(&image.url) {
                Some(ours) => ours.clone(),
                None => {
                    let ours = if copied.len() >= MAX_IMAGES {
                        Err(ImageError::TooMany)
                    } else {
                        self.copy(store, &image.url).await?
                    };
                    let ours = match ours {
                        Ok(name) => Some(format!("{}{name}", self.media_url)),
                        Err(error) => {
                            tracing::warn!(url = %image.url, %error, "an image is left out");
                            left_out.push(LeftOut {
                                url: image.url.clone(),
                                error,
                            });
                            None
                        }
                    };
                    copied.insert(image.url.clone(), ours.clone());
                    ours
                }
            };
            let body = &draft.body_markdown;
            match ours {
                Some(url) => edits.push((image.destination, Some(url))),
                None => {
                    edits.push((own_lines(body, image.written), None));
                    edits.extend(image.definition.map(|d| (own_lines(body, d), None)));
                }
            }
        }
        // Images by one reference share its definition: it is edited once.
        edits.sort_by_key(|(range, _)| (range.start, range.end));
        edits.dedup_by(|later, earlier| later.0.start < earlier.0.end);
        let body = &mut draft.body_markdown;
        for (range, ours) in edits.into_iter().rev() {
            body.replace_range(range, ours.as_deref().unwrap_or_default());
        }
        Ok((draft, left_out))
    }

    /// Fetches, checks and stores the image at `url`: its name, or why not.
    async fn copy<S: MediaStore + ?Sized>(
        &self,
        store: &S,
        url: &str,
    ) -> Result<Result<String, ImageError>, StoreError> {
        let page = match fetch(&self.fetcher, url).await {
            Ok(page) => page,
            Err(e) => return Ok(Err(e)),
        };
        let Some(media_type) = MediaType::sniff(&page) else {
            return Ok(Err(ImageError::NotAnImage));
        };
        let media = NewMedia::new(media_type, page, url);
        store.store_media(&media).await?;
        tracing::debug!(%url, name = %media.name, "copied an image");
        Ok(Ok(media.name))
    }
}

async fn fetch(fetcher: &Fetcher, url: &str) -> Result<Vec<u8>, ImageError> {
    let url = parse_url(url)?;
    match fetcher.fetch(&url, &Default::default()).await {
        Ok(Fetched::Page(page)) => Ok(page.body),
        Ok(Fetched::NotModified) => Err(ImageError::NotModified(url)),
        Err(FetchError::TooLarge { .. }) => Err(ImageError::TooLarge),
        Err(e) => Err(e.into()),
    }
}

/// An image of a Markdown text: its address, where the address is written
/// (in the image, or in the definition of the reference it uses), and the
/// image as written.
struct Image {
    url: String,
    destination: Range<usize>,
    /// `![alt](address)` or `![alt][reference]`.
    written: Range<usize>,
    /// `[reference]: address`, for an image by a reference no link uses:
    /// left out with the image.
    definition: Option<Range<usize>>,
}

/// The images of `markdown`, written inline (`![alt](address)`) or by
/// reference (`![alt][ref]` and `[ref]: address`), in order.
fn images(markdown: &str) -> Vec<Image> {
    let mut events = Parser::new_ext(markdown, markdown_options()).into_offset_iter();
    let mut links = Vec::new();
    let mut found = Vec::new();
    for (event, written) in events.by_ref() {
        match event {
            Event::Start(Tag::Link { link_type, id, .. }) if by_reference(link_type) => {
                links.push(id);
            }
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                id,
                ..
            }) => found.push((by_reference(link_type).then_some(id), dest_url, written)),
            _ => {}
        }
    }
    let definitions = events.reference_definitions();
    let linked: Vec<&Range<usize>> = links
        .iter()
        .filter_map(|id| definitions.get(id).map(|d| &d.span))
        .collect();
    found
        .into_iter()
        .filter_map(|(reference, url, written)| match reference {
            Some(id) => {
                let definition = definitions.get(&id)?;
                Some(Image {
                    url: definition.dest.to_string(),
                    destination: defined_destination(markdown, &definition.span)?,
                    written,
                    definition: Some(definition.span.clone())
                        .filter(|span| !linked.contains(&span)),
                })
            }
            None => Some(Image {
                url: url.into_string(),
                destination: destination(markdown, written.clone())?,
                written,
                definition: None,
            }),
        })
        .collect()
}

/// Whether a link or image of `link_type` takes its address from a
/// reference definition.
fn by_reference(link_type: LinkType) -> bool {
    matches!(
        link_type,
        LinkType::Reference | LinkType::Collapsed | LinkType::Shortcut
    )
}

/// Where the address of the inline image written at `image` is: after its
/// last `](`, up to white space or its closing `)`, inside `<…>` if so
/// written. `None` for an image by reference.
fn destination(markdown: &str, image: Range<usize>) -> Option<Range<usize>> {
    let written = markdown.get(image.clone())?;
    if !written.ends_with(')') {
        return None;
    }
    let open = written.rfind("](")? + 2;
    let inside = &written[open..written.len() - 1];
    address_in(inside).map(|r| image.start + open + r.start..image.start + open + r.end)
}

/// Where the address of the reference definition written at `span` is:
/// after its `]:`, as in [`destination`].
fn defined_destination(markdown: &str, span: &Range<usize>) -> Option<Range<usize>> {
    let written = markdown.get(span.clone())?;
    let open = written.find("]:")? + 2;
    address_in(&written[open..]).map(|r| span.start + open + r.start..span.start + open + r.end)
}

/// Where an address is in `text`, which starts with it after any white
/// space: up to white space, or inside `<…>` if so written.
fn address_in(text: &str) -> Option<Range<usize>> {
    let start = text.len() - text.trim_start().len();
    let rest = &text[start..];
    let (start, len) = match rest.strip_prefix('<') {
        Some(bracketed) => (start + 1, bracketed.find('>')?),
        None => (start, rest.find(char::is_whitespace).unwrap_or(rest.len())),
    };
    Some(start..start + len)
}

/// `written`, and when it is a line of its own, that line, and the blank
/// line after it when one comes before it too.
fn own_lines(markdown: &str, written: Range<usize>) -> Range<usize> {
    let start = written.start;
    let end = written.end - usize::from(markdown[..written.end].ends_with('\n'));
    let before = &markdown[..start];
    let own_line = (start == 0 || before.ends_with('\n')) && markdown[end..].starts_with('\n');
    if !own_line {
        return start..end;
    }
    let blank_around =
        (start == 0 || before.ends_with("\n\n")) && markdown[end + 1..].starts_with('\n');
    start..end + 1 + usize::from(blank_around)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_known_by_their_first_bytes_not_their_names() {
        assert_eq!(
            MediaType::sniff(b"\xff\xd8\xff\xe0rest"),
            Some(MediaType::Jpeg)
        );
        assert_eq!(
            MediaType::sniff(b"\x89PNG\r\n\x1a\nrest"),
            Some(MediaType::Png)
        );
        assert_eq!(MediaType::sniff(b"GIF89a..."), Some(MediaType::Gif));
        assert_eq!(MediaType::sniff(b"GIF87a..."), Some(MediaType::Gif));
        assert_eq!(
            MediaType::sniff(b"RIFF\x10\0\0\0WEBPVP8 "),
            Some(MediaType::Webp)
        );
        for bad in [
            &b"<html>"[..],
            b"",
            b"\xff\xd8",
            b"RIFF\x10\0\0\0WAVEfmt ",
            b"%PDF-1.4",
        ] {
            assert_eq!(MediaType::sniff(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_media_name_is_a_sha256_and_a_known_extension() {
        let media = NewMedia::new(
            MediaType::Png,
            b"\x89PNG\r\n\x1a\n".to_vec(),
            "https://x.org/a",
        );
        assert_eq!(media.name.len(), 64 + 4);
        assert_eq!(MediaType::of_name(&media.name), Some(MediaType::Png));
        for bad in [
            "x.png",
            &format!("{}.exe", "a".repeat(64)),
            &format!("{}.png", "A".repeat(64)),
            &format!("../{}.png", "a".repeat(61)),
        ] {
            assert_eq!(MediaType::of_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn image_addresses_are_found_where_they_are_written_inline_or_by_reference() {
        let md = "Text ![a](https://x.org/a.png) and ![b ](<https://x.org/b c.png> \"t\")\n\n\
                  ![c][ref] ![C][Ref] ![d]\n\n[ref]: https://x.org/c.png\n\
                  [d]:\n  <https://x.org/d.png> \"D\"\n";
        let found: Vec<(String, &str, &str)> = images(md)
            .into_iter()
            .map(|i| (i.url, &md[i.destination], &md[i.written]))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "https://x.org/a.png".to_owned(),
                    "https://x.org/a.png",
                    "![a](https://x.org/a.png)"
                ),
                (
                    "https://x.org/b c.png".to_owned(),
                    "https://x.org/b c.png",
                    "![b ](<https://x.org/b c.png> \"t\")"
                ),
                (
                    "https://x.org/c.png".to_owned(),
                    "https://x.org/c.png",
                    "![c][ref]"
                ),
                (
                    "https://x.org/c.png".to_owned(),
                    "https://x.org/c.png",
                    "![C][Ref]"
                ),
                (
                    "https://x.org/d.png".to_owned(),
                    "https://x.org/d.png",
                    "![d]"
                ),
            ]
        );
        let alone = "One.\n\n![a](https://x.org/a.png)\n\nTwo.\n";
        let mut left = alone.to_owned();
        left.replace_range(own_lines(alone, 6..31), "");
        assert_eq!(left, "One.\n\nTwo.\n");
    }

    #[test]
    fn a_definition_a_link_also_uses_is_kept_when_its_image_is_left_out() {
        let md =
            "![a][x] and [the page][x]\n\n![b][y]\n\n[x]: https://x.org/a\n[y]: https://x.org/b\n";
        let definitions: Vec<Option<&str>> = images(md)
            .into_iter()
            .map(|i| i.definition.map(|d| &md[d]))
            .collect();
        assert_eq!(definitions.len(), 2);
        assert_eq!(definitions[0], None);
        assert!(definitions[1].is_some_and(|d| d.starts_with("[y]: https://x.org/b")));
    }
}
