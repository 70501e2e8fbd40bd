//! Rendering once per campaign, personalising once per recipient.
//!
//! Per campaign, [`Prepared::new`] renders the report's Markdown to HTML and
//! text, inlines the CSS into the HTML and quoted-printable encodes both.
//! The templates are rendered with stand-ins (Unicode private-use
//! characters) in place of the personal values — the name, the address and
//! the two links — and of the report body. Everything else in the context
//! (attributes, list, whether there is a name) is real, so templates can
//! branch on it: that is all a render depends on, so it is the key of a
//! variant. A recipient's variant is found from those values alone, without
//! a render; a new one is rendered, CSS-inlined, split at the stand-ins and
//! encoded once (and shares its parts with any variant that renders the
//! same). Writing the message then only encodes the few personal values.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, RwLock};

use chrono::format::{Fixed, Item};
use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::encoding::{Header, escape_html, qp_piece};
use super::inline::inline_body;
use super::markdown::{TEXT_WIDTH, to_html, to_text, wrap};
use super::templates::{TemplateError, Templates};
use crate::config::{Config, Sender};
use crate::reports::Report;
use crate::subscribers::Attributes;

const HTML: &str = "email/report.html.tera";
const TEXT: &str = "email/report.txt.tera";
const SUBJECT: &str = "email/report.subject.tera";
/// The most variants (and distinct renders of each part) a campaign keeps:
/// past it, a recipient's variant is rendered afresh each time.
const MAX_VARIANTS: usize = 4096;

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template error in {0}")]
    Template(#[from] TemplateError),
    #[error("inlining the email's CSS failed: {0}")]
    Css(String),
}

/// The personal values a template may print, and the report body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Name,
    Email,
    Unsubscribe,
    Preferences,
    Body,
}

impl Slot {
    const ALL: [Slot; 5] = [
        Slot::Name,
        Slot::Email,
        Slot::Unsubscribe,
        Slot::Preferences,
        Slot::Body,
    ];

    fn code(self) -> char {
        match self {
            Slot::Name => 'N',
            Slot::Email => 'E',
            Slot::Unsubscribe => 'U',
            Slot::Preferences => 'P',
            Slot::Body => 'B',
        }
    }

    fn stand_in(self) -> String {
        format!("\u{E000}{}\u{E001}", self.code())
    }
}

/// A rendered variant, split at its slots.
#[derive(Debug)]
enum Piece {
    Text {
        raw: String,
        qp: String,
    },
    Slot(Slot),
    /// A line of the plain text holding personal values, which is wrapped
    /// at [`TEXT_WIDTH`] once they are put in, if it is then wider: a long
    /// address must not make a footer line run to 160 columns. `fixed` is
    /// how many characters the line has besides its personal values.
    Line {
        parts: Vec<Piece>,
        fixed: usize,
    },
}

/// Splits a rendered plain-text variant at its slots, each line holding a
/// personal value (the body excepted) as a [`Piece::Line`].
fn split_text_pieces(rendered: &str) -> Vec<Piece> {
    let personal = |line: &str| {
        Slot::ALL
            .iter()
            .filter(|s| **s != Slot::Body)
            .any(|s| line.contains(&s.stand_in()))
    };
    let mut pieces = Vec::new();
    let mut text = String::new();
    for line in rendered.split_inclusive('\n') {
        let content = line.strip_suffix('\n').unwrap_or(line);
        if !personal(content) {
            text.push_str(line);
            continue;
        }
        pieces.extend(split_pieces(&std::mem::take(&mut text)));
        let parts = split_pieces(content);
        let fixed = parts
            .iter()
            .map(|p| match p {
                Piece::Text { raw, .. } => raw.chars().count(),
                _ => 0,
            })
            .sum();
        pieces.push(Piece::Line { parts, fixed });
        if content.len() < line.len() {
            text.push('\n');
        }
    }
    pieces.extend(split_pieces(&text));
    pieces
}

/// A personal line as the recipient gets it: its values put in, and
/// wrapped if that makes it wider than [`TEXT_WIDTH`]; `None` when it fits
/// as it is, which is the usual case and costs no allocation.
fn wrapped_line(parts: &[Piece], fixed: usize, r: &Recipient<'_>) -> Option<String> {
    let personal: usize = parts
        .iter()
        .map(|p| match p {
            Piece::Slot(slot) => slot_text(*slot, r).chars().count(),
            _ => 0,
        })
        .sum();
    if fixed + personal <= TEXT_WIDTH {
        return None;
    }
    let mut line = String::with_capacity(2 * (fixed + personal));
    for part in parts {
        match part {
            Piece::Text { raw, .. } => line.push_str(raw),
            Piece::Slot(slot) => line.push_str(&slot_text(*slot, r)),
            Piece::Line { .. } => {}
        }
    }
    Some(wrap(&line, TEXT_WIDTH).join("\n"))
}

fn split_pieces(rendered: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut rest = rendered;
    let mut text = String::new();
    while let Some(start) = rest.find('\u{E000}') {
        let after = &rest[start + '\u{E000}'.len_utf8()..];
        let mut chars = after.chars();
        let slot = chars
            .next()
            .and_then(|c| Slot::ALL.into_iter().find(|s| s.code() == c))
            .filter(|_| chars.next() == Some('\u{E001}'));
        match slot {
            Some(slot) => {
                text.push_str(&rest[..start]);
                if !text.is_empty() {
                    pieces.push(static_piece(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Slot(slot));
                rest = chars.as_str();
            }
            None => {
                text.push_str(&rest[..start + '\u{E000}'.len_utf8()]);
                rest = after;
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(static_piece(text));
    }
    pieces
}

fn static_piece(raw: String) -> Piece {
    let mut qp = String::with_capacity(raw.len() + raw.len() / 8);
    qp_piece(&raw, &mut qp);
    Piece::Text { raw, qp }
}

/// Text in its two forms: as written, and quoted-printable encoded.
struct Encoded {
    raw: String,
    qp: String,
}

impl Encoded {
    fn new(raw: String) -> Self {
        let mut qp = String::with_capacity(raw.len() + raw.len() / 8);
        qp_piece(&raw, &mut qp);
        Encoded { raw, qp }
    }
}

/// A list a recipient gets the email through.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListInfo {
    pub slug: String,
    pub name: String,
}

/// One recipient's personal values.
#[derive(Debug, Clone, Copy)]
pub struct Recipient<'a> {
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub attributes: &'a Attributes,
    /// The list the email is sent through, which its List-Id names.
    pub list: &'a ListInfo,
    /// The other lists it comes through, for someone on several of a
    /// campaign's lists: the footer names them all. Mostly none.
    pub also: &'a [ListInfo],
    pub unsubscribe_url: &'a str,
    pub preferences_url: &'a str,
}

/// The headers that identify one message of a campaign.
#[derive(Debug, Clone, Copy)]
pub struct MessageMeta<'a> {
    /// The Message-ID, without angle brackets.
    pub message_id: &'a str,
    pub date: DateTime<Utc>,
    /// RFC 8058: the HTTPS one-click link and the mailto fallback. Bulk
    /// mail only; it also adds List-Archive, List-Subscribe, List-Help,
    /// List-Post, Precedence and Auto-Submitted.
    pub list_unsubscribe: Option<(&'a str, &'a str)>,
    /// The list's id, `slug.domain`; its name is the recipient's list's
    /// (RFC 2919 allows one: the first of the lists the email comes through).
    pub list_id: Option<&'a str>,
    pub feedback_id: Option<&'a str>,
}

/// The three parts of one recipient's email, decoded: what `preview` shows.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// The links of a test message (`send-test`), which goes to someone who may
/// not be a subscriber, of a report that may not have been sent: the web
/// version works whether or not the report was sent, and the personal links
/// lead to a page that says what they do in the real email.
#[derive(Debug, Clone)]
pub struct TestLinks {
    pub web_url: String,
    pub personal_url: String,
}

/// What a test message's subject starts with.
const TEST_SUBJECT_PREFIX: &str = "[TEST] ";

/// Where links point and who sends: the parts of the configuration a render needs.
#[derive(Debug, Clone)]
pub struct Site {
    pub sender: Sender,
    /// Where replies go (NECMAIL_REPLY_TO), when not to the sender.
    pub reply_to: Option<Sender>,
    pub archive_url: String,
    /// The web version of a report: `archive_url` + `/` + slug.
    pub report_url_prefix: String,
    pub subscribe_url: String,
    /// The committee whose meetings the reports are of (NECMAIL_COMMITTEE_NAME).
    pub committee: String,
    /// How to reach the sender, for the footer (NECMAIL_SENDER_ADDRESS).
    pub sender_address: Option<String>,
    /// The privacy notice the footer links to (NECMAIL_PRIVACY_URL).
    pub privacy_url: Option<String>,
    /// Set for a test message: its links, and the subject and footer say so.
    pub test: Option<TestLinks>,
    /// Rendering the archive's web version, read by anyone: the templates
    /// leave out what only a recipient should see.
    pub web_version: bool,
}

impl Site {
    /// The site of the emails.
    pub fn from_config(config: &Config) -> Self {
        Site {
            sender: config.from.clone(),
            reply_to: config.reply_to.clone(),
            archive_url: config.public_link("archive"),
            report_url_prefix: config.public_link("archive/"),
            subscribe_url: config.public_link("subscribe"),
            committee: config.committee.clone(),
            sender_address: config.sender_address.clone(),
            privacy_url: config.privacy_url.clone(),
            test: None,
            web_version: false,
        }
    }

    /// The site of the archive's web versions.
    pub fn web_version(config: &Config) -> Self {
        Site {
            web_version: true,
            ..Site::from_config(config)
        }
    }
}

/// A report made ready to personalise for each recipient.
pub struct Prepared {
    templates: Arc<Templates>,
    site: Site,
    report: serde_json::Value,
    body_html: Encoded,
    body_text: Encoded,
    boundary: String,
    /// Replaces the subject template's output (`campaign create --subject`).
    subject: Option<String>,
    /// The variants by what selects them, under the hash of that.
    variants: RwLock<HashMap<u64, Bucket>>,
    hasher: RandomState,
    html_variants: RwLock<HashMap<String, Arc<Vec<Piece>>>>,
    text_variants: RwLock<HashMap<String, Arc<Vec<Piece>>>>,
}

/// The variants whose keys share one hash.
type Bucket = Vec<(VariantKey, Arc<Variant>)>;

/// What the templates see of a recipient besides the personal values: all
/// that a variant depends on.
#[derive(Debug)]
struct VariantKey {
    named: bool,
    list: ListInfo,
    also: Vec<ListInfo>,
    attributes: Attributes,
}

impl VariantKey {
    fn matches(&self, named: bool, r: &Recipient<'_>) -> bool {
        self.named == named
            && self.list == *r.list
            && self.also == r.also
            && self.attributes == *r.attributes
    }
}

/// One variant of the email: its three parts, split at the personal values.
#[derive(Debug)]
struct Variant {
    subject: Subject,
    text: Arc<Vec<Piece>>,
    html: Arc<Vec<Piece>>,
}

/// A variant's subject: the same for all its recipients, or with personal
/// values in it.
#[derive(Debug)]
enum Subject {
    Fixed(String),
    Personal(Vec<Piece>),
}

impl Prepared {
    /// Renders the report's body once, inlines its CSS, and checks that every
    /// template renders for a recipient with and without a name and attributes.
    pub fn new(
        templates: Arc<Templates>,
        report: &Report,
        site: &Site,
    ) -> Result<Self, RenderError> {
        let sections = report.sections();
        let underline: String = "=".repeat(report.title.chars().count());
        let report_value = json!({
            "id": report.id,
            "slug": report.slug,
            "title": report.title,
            "title_underline": underline,
            "meeting_date": report.meeting_date.map(|d| d.format("%-d %B %Y").to_string()),
            "meeting_date_iso": report.meeting_date.map(|d| d.to_string()),
            "summary": report.summary,
            "opens_with_salutation": opens_with_salutation(&report.body_markdown),
            "sections": sections.sections.iter()
                .map(|s| json!({"heading": s.heading, "anchor": s.anchor}))
                .collect::<Vec<_>>(),
            "web_url": match &site.test {
                Some(test) => test.web_url.clone(),
                None => format!("{}{}", site.report_url_prefix, report.slug),
            },
            "body_html": Slot::Body.stand_in(),
            "body_text": Slot::Body.stand_in(),
        });
        let digest = Sha256::digest(format!(
            "{}:{}:{:?}",
            report.id,
            report.content_hash,
            std::time::SystemTime::now()
        ));
        let boundary = format!("=_necmail_{}", crate::text::hex(&digest[..12]));
        let mut prepared = Prepared {
            templates,
            site: site.clone(),
            report: report_value,
            body_html: Encoded::new(String::new()),
            body_text: Encoded::new(to_text(&report.body_markdown)),
            boundary,
            subject: None,
            variants: RwLock::new(HashMap::new()),
            hasher: RandomState::new(),
            html_variants: RwLock::new(HashMap::new()),
            text_variants: RwLock::new(HashMap::new()),
        };
        let samples = sample_recipients();
        let probe = prepared
            .templates
            .render(HTML, &prepared.context(&samples.0.recipient()))?;
        let css = style_blocks(&probe);
        let body = inline_body(&to_html(&report.body_markdown), &css)?;
        prepared.body_html = Encoded::new(body);
        for sample in [&samples.0, &samples.1] {
            prepared.render(&sample.recipient())?;
        }
        Ok(prepared)
    }

    fn context(&self, r: &Recipient<'_>) -> tera::Context {
        let mut ctx = tera::Context::new();
        ctx.insert("report", &self.report);
        let name = if r.name.is_some_and(|n| !n.is_empty()) {
            Slot::Name.stand_in()
        } else {
            String::new()
        };
        ctx.insert(
            "subscriber",
            &json!({
                "email": Slot::Email.stand_in(),
                "name": name,
                "attributes": r.attributes,
            }),
        );
        ctx.insert("list", r.list);
        let lists: Vec<&ListInfo> = std::iter::once(r.list).chain(r.also).collect();
        ctx.insert("lists", &lists);
        ctx.insert("unsubscribe_url", &Slot::Unsubscribe.stand_in());
        ctx.insert("preferences_url", &Slot::Preferences.stand_in());
        ctx.insert("archive_url", &self.site.archive_url);
        ctx.insert("subscribe_url", &self.site.subscribe_url);
        ctx.insert("web_version", &self.site.web_version);
        ctx.insert("committee", &self.site.committee);
        ctx.insert("test", &self.site.test.is_some());
        ctx.insert(
            "sender",
            &json!({"name": self.site.sender.name.as_deref().unwrap_or(&self.site.sender.address),
                    "address": self.site.sender.address,
                    "contact": self.site.sender_address}),
        );
        ctx.insert("privacy_url", &self.site.privacy_url);
        ctx
    }

    /// The pieces of a part rendered as `rendered`: those built before for
    /// the same render, or built now.
    fn part(
        cache: &RwLock<HashMap<String, Arc<Vec<Piece>>>>,
        rendered: String,
        build: impl FnOnce(&str) -> Result<Vec<Piece>, RenderError>,
    ) -> Result<Arc<Vec<Piece>>, RenderError> {
        if let Some(found) = cache.read().expect("variant cache lock").get(&rendered) {
            return Ok(Arc::clone(found));
        }
        let pieces = Arc::new(build(&rendered)?);
        let mut cache = cache.write().expect("variant cache lock");
        if cache.len() < MAX_VARIANTS {
            cache.insert(rendered, Arc::clone(&pieces));
        }
        Ok(pieces)
    }

    fn html_pieces(&self, ctx: &tera::Context) -> Result<Arc<Vec<Piece>>, RenderError> {
        let rendered = self.templates.render(HTML, ctx)?;
        Self::part(&self.html_variants, rendered, |html| {
            let inlined = css_inline::CSSInliner::options()
                .keep_style_tags(false)
                .keep_at_rules(true)
                .build()
                .inline(html)
                .map_err(|e| RenderError::Css(e.to_string()))?;
            Ok(split_pieces(&inlined))
        })
    }

    fn text_pieces(&self, ctx: &tera::Context) -> Result<Arc<Vec<Piece>>, RenderError> {
        let rendered = self.templates.render(TEXT, ctx)?;
        Self::part(&self.text_variants, rendered, |text| {
            Ok(split_text_pieces(text))
        })
    }

    /// Makes every message's subject `subject` instead of the template's.
    pub fn set_subject(&mut self, subject: Option<String>) {
        self.subject = subject;
        self.variants.get_mut().expect("variant cache lock").clear();
    }

    /// The template's subject (or the campaign's) for a variant, marked on
    /// a test message; its whitespace is made single spaces when written.
    fn subject_pieces(&self, ctx: &tera::Context) -> Result<Subject, RenderError> {
        let prefix = self.site.test.as_ref().map(|_| TEST_SUBJECT_PREFIX);
        if let Some(subject) = &self.subject {
            return Ok(Subject::Fixed(format!(
                "{}{subject}",
                prefix.unwrap_or_default()
            )));
        }
        let pieces = split_pieces(&self.templates.render(SUBJECT, ctx)?);
        if pieces.iter().any(|p| matches!(p, Piece::Slot(_))) {
            let mut personal = Vec::with_capacity(pieces.len() + 1);
            personal.extend(prefix.map(|p| static_piece(p.to_owned())));
            personal.extend(pieces);
            return Ok(Subject::Personal(personal));
        }
        let mut fixed = Words::default();
        fixed.push(prefix.unwrap_or_default());
        for piece in &pieces {
            if let Piece::Text { raw, .. } = piece {
                fixed.push(raw);
            }
        }
        Ok(Subject::Fixed(fixed.text))
    }

    /// The variant `r` gets: found from what selects it, or rendered.
    fn variant(&self, r: &Recipient<'_>) -> Result<Arc<Variant>, RenderError> {
        let named = r.name.is_some_and(|n| !n.is_empty());
        let mut hasher = self.hasher.build_hasher();
        named.hash(&mut hasher);
        r.list.slug.hash(&mut hasher);
        r.list.name.hash(&mut hasher);
        for list in r.also {
            list.slug.hash(&mut hasher);
            list.name.hash(&mut hasher);
        }
        for (key, value) in r.attributes.iter() {
            key.hash(&mut hasher);
            value.hash(&mut hasher);
        }
        let hash = hasher.finish();
        let found = self
            .variants
            .read()
            .expect("variant cache lock")
            .get(&hash)
            .and_then(|bucket| bucket.iter().find(|(key, _)| key.matches(named, r)))
            .map(|(_, variant)| Arc::clone(variant));
        if let Some(variant) = found {
            return Ok(variant);
        }
        let ctx = self.context(r);
        let variant = Arc::new(Variant {
            subject: self.subject_pieces(&ctx)?,
            text: self.text_pieces(&ctx)?,
            html: self.html_pieces(&ctx)?,
        });
        let mut variants = self.variants.write().expect("variant cache lock");
        if variants.len() < MAX_VARIANTS {
            let key = VariantKey {
                named,
                list: r.list.clone(),
                also: r.also.to_vec(),
                attributes: r.attributes.clone(),
            };
            let bucket = variants.entry(hash).or_default();
            if !bucket.iter().any(|(key, _)| key.matches(named, r)) {
                bucket.push((key, Arc::clone(&variant)));
            }
        }
        Ok(variant)
    }

    /// How many distinct HTML variants have been built so far.
    pub fn html_variant_count(&self) -> usize {
        self.html_variants.read().expect("variant cache lock").len()
    }

    /// The recipient's subject, HTML and text, decoded.
    pub fn render(&self, r: &Recipient<'_>) -> Result<Rendered, RenderError> {
        let variant = self.variant(r)?;
        let join = |pieces: &[Piece], html: bool| {
            let mut out = String::new();
            self.join(pieces, html, r, &mut out);
            out
        };
        let subject = match &variant.subject {
            Subject::Fixed(subject) => subject.clone(),
            Subject::Personal(pieces) => personal_subject(pieces, r),
        };
        Ok(Rendered {
            subject,
            html: join(&variant.html, true),
            text: join(&variant.text, false),
        })
    }

    /// Writes the decoded pieces of one part for `r`.
    fn join(&self, pieces: &[Piece], html: bool, r: &Recipient<'_>, out: &mut String) {
        for piece in pieces {
            match piece {
                Piece::Text { raw, .. } => out.push_str(raw),
                Piece::Slot(Slot::Body) => out.push_str(if html {
                    &self.body_html.raw
                } else {
                    &self.body_text.raw
                }),
                Piece::Slot(slot) if html => out.push_str(&escape_html(&slot_text(*slot, r))),
                Piece::Slot(slot) => out.push_str(&slot_text(*slot, r)),
                Piece::Line { parts, fixed } => match wrapped_line(parts, *fixed, r) {
                    Some(line) => out.push_str(&line),
                    None => self.join(parts, html, r, out),
                },
            }
        }
    }

    /// Writes the recipient's whole message (headers and a quoted-printable
    /// multipart/alternative body, text first) with CRLF line ends.
    pub fn write_message(
        &self,
        r: &Recipient<'_>,
        meta: &MessageMeta<'_>,
        out: &mut String,
    ) -> Result<(), RenderError> {
        out.reserve(self.body_html.qp.len() + self.body_text.qp.len() + 16 * 1024);
        self.write(r, meta, out, &mut Bodies::Inline)
    }

    /// Writes the recipient's message as [`Prepared::write_message`] does,
    /// except for the report's encoded bodies, the same in every message
    /// of the campaign: `splices` gets where each belongs in `out`, in
    /// order. [`Prepared::spliced`] gives the whole message.
    pub fn write_message_around(
        &self,
        r: &Recipient<'_>,
        meta: &MessageMeta<'_>,
        out: &mut String,
        splices: &mut Vec<Splice>,
    ) -> Result<(), RenderError> {
        splices.clear();
        out.reserve(16 * 1024);
        self.write(r, meta, out, &mut Bodies::Around(splices))
    }

    /// The report's body, quoted-printable encoded, as HTML or as text.
    pub fn encoded_body(&self, html: bool) -> &str {
        if html {
            &self.body_html.qp
        } else {
            &self.body_text.qp
        }
    }

    /// A message written by [`Prepared::write_message_around`], in the
    /// order of its bytes: pieces of `message` itself (`None`) and the
    /// report's encoded bodies at their splices (`Some(html)`).
    pub fn spliced<'a>(
        &'a self,
        message: &'a str,
        splices: &'a [Splice],
    ) -> impl Iterator<Item = (Option<bool>, &'a str)> + 'a {
        let end = splices.last().map_or(0, |s| s.at);
        let mut from = 0;
        splices
            .iter()
            .flat_map(move |s| {
                let own = &message[from..s.at];
                from = s.at;
                [(None, own), (Some(s.html), self.encoded_body(s.html))]
            })
            .chain(std::iter::once((None, &message[end..])))
    }

    fn write(
        &self,
        r: &Recipient<'_>,
        meta: &MessageMeta<'_>,
        out: &mut String,
        bodies: &mut Bodies<'_>,
    ) -> Result<(), RenderError> {
        let variant = self.variant(r)?;

        let mut from = Header::start(out, "From");
        from.mailbox(self.site.sender.name.as_deref(), &self.site.sender.address);
        from.end();
        if let Some(reply_to) = &self.site.reply_to {
            let mut header = Header::start(out, "Reply-To");
            header.mailbox(reply_to.name.as_deref(), &reply_to.address);
            header.end();
        }
        let mut to = Header::start(out, "To");
        to.mailbox(r.name, r.email);
        to.end();
        let mut header = Header::start(out, "Subject");
        match &variant.subject {
            Subject::Fixed(subject) => header.text(subject),
            Subject::Personal(pieces) => header.text(&personal_subject(pieces, r)),
        }
        header.end();
        out.push_str("Date: ");
        push_rfc2822(meta.date, out);
        out.push_str("\r\n");
        let mut header = Header::start(out, "Message-ID");
        header.word(&["<", meta.message_id, ">"]);
        header.end();
        if let Some(list_id) = meta.list_id {
            // RFC 2919: only the phrase is quoted or encoded.
            let mut header = Header::start(out, "List-Id");
            header.phrase(&r.list.name);
            header.word(&["<", list_id, ">"]);
            header.end();
        }
        if let Some((https, mailto)) = meta.list_unsubscribe {
            let mut header = Header::start(out, "List-Unsubscribe");
            header.word(&["<", https, ">,"]);
            header.word(&["<", mailto, ">"]);
            header.end();
            out.push_str("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
            // RFC 2369: where the archive is, how to join, where to manage
            // one's subscription, and that nobody posts to the list.
            for (name, url) in [
                ("List-Archive", self.site.archive_url.as_str()),
                ("List-Subscribe", &self.site.subscribe_url),
                ("List-Help", r.preferences_url),
            ] {
                let mut header = Header::start(out, name);
                header.word(&["<", url, ">"]);
                header.end();
            }
            out.push_str("List-Post: NO\r\n");
            out.push_str("Precedence: bulk\r\nAuto-Submitted: auto-generated\r\n");
        }
        if let Some(feedback_id) = meta.feedback_id {
            let mut header = Header::start(out, "Feedback-ID");
            header.word(&[feedback_id]);
            header.end();
        }
        out.push_str("MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary=\"");
        out.push_str(&self.boundary);
        out.push_str("\"\r\n\r\n");
        for (pieces, body, content_type) in [
            (&variant.text, &self.body_text, "text/plain"),
            (&variant.html, &self.body_html, "text/html"),
        ] {
            out.push_str("--");
            out.push_str(&self.boundary);
            out.push_str("\r\nContent-Type: ");
            out.push_str(content_type);
            out.push_str("; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
            let html = content_type == "text/html";
            write_qp(pieces, body, html, r, out, bodies);
            out.push_str("\r\n");
        }
        out.push_str("--");
        out.push_str(&self.boundary);
        out.push_str("--\r\n");
        Ok(())
    }
}

/// Where the report's encoded body goes in a message written by
/// [`Prepared::write_message_around`]: at byte `at` of its text, the body
/// as HTML or as text ([`Prepared::encoded_body`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Splice {
    pub at: usize,
    pub html: bool,
}

/// What [`write_qp`] does with the report's body: writes it, or notes where
/// it goes.
enum Bodies<'a> {
    Inline,
    Around(&'a mut Vec<Splice>),
}

/// Writes pieces quoted-printable encoded: the static ones as they were
/// encoded once, the personal values for `r`.
fn write_qp(
    pieces: &[Piece],
    body: &Encoded,
    html: bool,
    r: &Recipient<'_>,
    out: &mut String,
    bodies: &mut Bodies<'_>,
) {
    for piece in pieces {
        match piece {
            Piece::Text { qp, .. } => out.push_str(qp),
            Piece::Slot(Slot::Body) => match bodies {
                Bodies::Inline => out.push_str(&body.qp),
                Bodies::Around(splices) => splices.push(Splice {
                    at: out.len(),
                    html,
                }),
            },
            Piece::Slot(slot) => {
                let value = &slot_text(*slot, r);
                if html && value.contains(['&', '<', '>', '"', '\'']) {
                    qp_piece(&escape_html(value), out);
                } else {
                    qp_piece(value, out);
                }
            }
            Piece::Line { parts, fixed } => match wrapped_line(parts, *fixed, r) {
                Some(line) => qp_piece(&line, out),
                None => write_qp(parts, body, html, r, out, bodies),
            },
        }
    }
}

/// A subject with personal values put in, its whitespace single spaces.
fn personal_subject(pieces: &[Piece], r: &Recipient<'_>) -> String {
    let mut subject = Words::default();
    for piece in pieces {
        match piece {
            Piece::Text { raw, .. } => subject.push(raw),
            Piece::Slot(slot) => subject.push(&slot_text(*slot, r)),
            Piece::Line { .. } => {}
        }
    }
    subject.text
}

/// Text whose runs of whitespace are one space each, and none at either
/// end: `split_whitespace` and `join(" ")`, across pieces.
#[derive(Default)]
struct Words {
    text: String,
    space: bool,
}

impl Words {
    fn push(&mut self, piece: &str) {
        for word in piece.split_inclusive(char::is_whitespace) {
            let trimmed = word.trim_end_matches(char::is_whitespace);
            if !trimmed.is_empty() {
                if self.space && !self.text.is_empty() {
                    self.text.push(' ');
                }
                self.text.push_str(trimmed);
                self.space = false;
            }
            self.space |= trimmed.len() < word.len();
        }
    }
}

/// Writes `date` as `to_rfc2822` does (`Thu, 3 Dec 2026 09:32:46 +0000`),
/// without an allocation.
fn push_rfc2822(date: DateTime<Utc>, out: &mut String) {
    let rfc2822 = std::iter::once(Item::Fixed(Fixed::RFC2822));
    let _ = date.format_with_items(rfc2822).write_to(out);
}

/// A personal value; the body is not personal and is written by the caller.
fn slot_text<'a>(slot: Slot, r: &Recipient<'a>) -> Cow<'a, str> {
    match slot {
        Slot::Name => forename_first(r.name.unwrap_or("")),
        Slot::Email => Cow::Borrowed(r.email),
        Slot::Unsubscribe => Cow::Borrowed(r.unsubscribe_url),
        Slot::Preferences => Cow::Borrowed(r.preferences_url),
        Slot::Body => Cow::Borrowed(""),
    }
}

/// A name as a letter addresses its reader: "Bloggs, Jo" (as a membership
/// list writes it) is "Jo Bloggs". A name with one comma is turned round
/// when both sides are one to three words and what follows the comma is
/// not a suffix in capitals ("Jo Bloggs, MP", "Jo Bloggs, OBE"). Any other
/// name is as written, and costs no allocation.
fn forename_first(name: &str) -> Cow<'_, str> {
    let Some((surname, forename)) = name.split_once(',') else {
        return Cow::Borrowed(name);
    };
    let (surname, forename) = (surname.trim(), forename.trim());
    let words = |s: &str| s.split_whitespace().count();
    let suffix = forename
        .chars()
        .filter(|c| c.is_alphabetic())
        .all(char::is_uppercase);
    if forename.contains(',') || suffix || !(1..=3).contains(&words(surname)) {
        return Cow::Borrowed(name);
    }
    if !(1..=3).contains(&words(forename)) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(format!("{forename} {surname}"))
}

/// Whether a report's first line greets its readers itself ("Dear friends,",
/// "Comrades,"), so that the email adds no "Dear NAME," above it: a line
/// starting with "Dear", or of at most four words ending in a comma.
fn opens_with_salutation(markdown: &str) -> bool {
    let Some(first) = markdown.lines().find(|l| !l.trim().is_empty()) else {
        return false;
    };
    let line = crate::text::inline_text(first);
    let line = line.trim();
    let dear = line
        .get(..5)
        .is_some_and(|d| d.eq_ignore_ascii_case("dear "));
    let short_greeting = line.ends_with(',') && line.split_whitespace().count() <= 4;
    line.chars().count() <= 60 && (dear || short_greeting)
}

/// The text of every `<style>` block of a document that css-inline inlines
/// (not those kept as they are, `data-css-inline="keep"`).
fn style_blocks(html: &str) -> String {
    let mut css = String::new();
    let mut rest = html;
    while let Some(start) = rest.find("<style") {
        let Some(open_end) = rest[start..].find('>') else {
            break;
        };
        let ignored = rest[start..start + open_end].contains("data-css-inline=\"keep\"");
        let body = &rest[start + open_end + 1..];
        let Some(end) = body.find("</style>") else {
            break;
        };
        if !ignored {
            css.push_str(&body[..end]);
            css.push('\n');
        }
        rest = &body[end..];
    }
    css
}

/// Two made-up recipients that every template must render for: one on
/// one list, one on two.
struct Sample {
    name: Option<&'static str>,
    attributes: Attributes,
    list: ListInfo,
    also: Vec<ListInfo>,
}

impl Sample {
    fn recipient(&self) -> Recipient<'_> {
        Recipient {
            email: "sample@example.org",
            name: self.name,
            attributes: &self.attributes,
            list: &self.list,
            also: &self.also,
            unsubscribe_url: "https://example.org/u/sample",
            preferences_url: "https://example.org/p/sample",
        }
    }
}

fn sample_recipients() -> (Sample, Sample) {
    let list = ListInfo {
        slug: "members".into(),
        name: "Members".into(),
    };
    let mut councillor = Attributes::new();
    councillor.set("role".into(), "councillor".into());
    councillor.set("council".into(), "Islington".into());
    (
        Sample {
            name: Some("Sam Sample"),
            attributes: councillor,
            list: list.clone(),
            also: Vec::new(),
        },
        Sample {
            name: None,
            attributes: Attributes::new(),
            list,
            also: vec![ListInfo {
                slug: "councillors".into(),
                name: "Councillors".into(),
            }],
        },
    )
}
