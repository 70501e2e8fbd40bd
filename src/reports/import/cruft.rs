//! Recognisers for what a scraped or pasted blog post carries besides the
//! report: image file names run into the text, alt text glued to the start
//! of a paragraph, `Continue reading` links, the comment section and the
//! comment form's boilerplate. Shared by the text and HTML importers.

/// What a line (or a whole paragraph) of a post is, as far as cruft goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineKind {
    /// Part of the report.
    Text,
    /// Boilerplate to drop, e.g. `Connecting to %s`.
    Boilerplate,
    /// A comment count or a `Leave a comment` link: in a post it comes
    /// after the text, on an archive page it sits beside each excerpt.
    CommentLink,
    /// The start of what follows the post: the comment section (`4 thoughts
    /// on “…”`), the reply form, the sharing buttons.
    EndOfPost,
}

/// Lines that begin the comment form or the widgets after a post.
const END_MARKERS: &[&str] = &["leave a reply", "share this:", "like this:", "related"];

/// Comment-form and theme boilerplate, matched on the whole line.
const BOILERPLATE: &[&str] = &[
    "fill in your details below or click an icon to log in:",
    "connecting to %s",
    "notify me of new comments via email.",
    "notify me of new posts via email.",
    "cancel reply",
    "( log out / change )",
    "like loading...",
    "loading...",
    "← older posts",
    "older posts",
    "newer posts →",
    "newer posts",
];

const NUMBER_WORDS: &[&str] = &[
    "no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve",
];

const COMMENT_NOUNS: &[&str] = &[
    "thought",
    "thoughts",
    "comment",
    "comments",
    "response",
    "responses",
    "reply",
    "replies",
];

/// Classifies one line of a post (or the plain text of one paragraph).
pub(super) fn classify(line: &str) -> LineKind {
    let cut_off = || strip_continue_reading(line).is_some_and(|rest| rest.trim().is_empty());
    // Every marker and piece of boilerplate is a short line.
    if line.len() > 200 {
        return if cut_off() {
            LineKind::Boilerplate
        } else {
            LineKind::Text
        };
    }
    let folded = fold(line);
    if folded.is_empty() {
        return LineKind::Text;
    }
    if END_MARKERS.contains(&folded.as_str()) || is_comments_heading(&folded) {
        return LineKind::EndOfPost;
    }
    if folded == "leave a comment" || is_comment_count(&folded) {
        return LineKind::CommentLink;
    }
    let boilerplate = BOILERPLATE.contains(&folded.as_str())
        || is_post_meta(&folded)
        || (folded.starts_with("you are commenting using your") && folded.contains("account"))
        || cut_off();
    if boilerplate {
        LineKind::Boilerplate
    } else {
        LineKind::Text
    }
}

/// Whether a line is the date line WordPress puts under each post's title:
/// `Posted on 21 March 2017 by jane`.
pub(super) fn is_post_date(line: &str) -> bool {
    let line = line.trim();
    line.len() <= 120 && {
        let folded = line.to_lowercase();
        folded.starts_with("posted on ") && folded.contains(" by ") && !folded.contains(". ")
    }
}

/// WordPress's lines about a post: `Posted on 21 March 2017 by jane`,
/// `Posted in NEC | Leave a comment`, `This entry was posted in NEC.
/// Bookmark the permalink.`
fn is_post_meta(folded: &str) -> bool {
    let short = folded.chars().count() <= 120;
    folded.starts_with("this entry was posted in")
        || folded.starts_with("bookmark the permalink")
        || is_post_date(folded)
        || (short
            && folded.starts_with("posted in ")
            && (folded.contains(" | ")
                || folded.ends_with("leave a comment")
                || folded.ends_with("comments")))
}

/// The line in lower case, its runs of white space made single spaces.
fn fold(line: &str) -> String {
    let lower = line.trim().to_lowercase();
    if lower.contains("  ") || lower.contains(|c: char| c.is_whitespace() && c != ' ') {
        lower.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        lower
    }
}

/// `4 thoughts on “NEC Report – March 2017”`, `One thought on "…"`,
/// `2 Responses to “…”`: a count, a noun, `on` or `to`, then a quotation.
fn is_comments_heading(folded: &str) -> bool {
    let mut words = folded.splitn(4, ' ');
    let (Some(count), Some(noun), Some(on), Some(rest)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    is_count(count)
        && COMMENT_NOUNS.contains(&noun)
        && matches!(on, "on" | "to")
        && rest.starts_with(['“', '"', '‘', '\'', '«'])
}

/// `3 Comments`, `One Response`, optionally with a colon.
fn is_comment_count(folded: &str) -> bool {
    let folded = folded.trim_end_matches(':');
    match folded.split_once(' ') {
        Some((count, noun)) => is_count(count) && COMMENT_NOUNS.contains(&noun),
        None => false,
    }
}

fn is_count(word: &str) -> bool {
    (!word.is_empty() && word.bytes().all(|b| b.is_ascii_digit())) || NUMBER_WORDS.contains(&word)
}

/// The words of the link that ends an excerpt: `Continue reading`, found
/// wherever it ends the text, then others that a sentence may end with too,
/// found only on their own or followed by an arrow.
const CUT_OFF_LINKS: &[&str] = &[
    "continue reading",
    "read more",
    "keep reading",
    "read the full post",
    "read the rest of this entry",
];

/// The marks WordPress puts at the end of an excerpt it made itself.
const ELLIPSIS_MARKS: &[&str] = &["[…]", "[...]", "[&hellip;]"];

/// True when `text` ends as an excerpt made by WordPress does: with `[…]`.
pub(super) fn ends_with_ellipsis_mark(text: &str) -> bool {
    let text = text.trim_end();
    ELLIPSIS_MARKS.iter().any(|mark| text.ends_with(mark))
}

/// If `text` ends with a `Continue reading` link (`Continue reading →`,
/// `Continue reading “Title” →`, `Read more »`, after an optional `[…]`),
/// the text before it.
pub(super) fn strip_continue_reading(text: &str) -> Option<&str> {
    let mut rest = text.trim_end_matches(['→', '»', '>', '…', '.', ' ', '\t']);
    let arrow = text[rest.len()..].contains(['→', '»', '>']);
    let quotes = [('”', '“'), ('"', '"'), ('’', '‘'), ('\'', '\'')];
    if let Some(&(close, open)) = quotes.iter().find(|(close, _)| rest.ends_with(*close)) {
        let inside = &rest[..rest.len() - close.len_utf8()];
        let at = inside.rfind(open)?;
        if inside[at..].chars().count() > 200 {
            return None;
        }
        rest = inside[..at].trim_end();
    }
    let (first, at) = CUT_OFF_LINKS.iter().enumerate().find_map(|(i, link)| {
        let at = rest.len().checked_sub(link.len())?;
        (rest.is_char_boundary(at) && rest[at..].eq_ignore_ascii_case(link)).then_some((i == 0, at))
    })?;
    let before = &rest[..at];
    if before
        .chars()
        .next_back()
        .is_some_and(char::is_alphanumeric)
    {
        return None;
    }
    let before = before.trim_end();
    let marked = ELLIPSIS_MARKS
        .iter()
        .chain(&["…"])
        .find_map(|marker| before.strip_suffix(marker));
    if !(first || arrow || marked.is_some() || before.is_empty()) {
        return None;
    }
    Some(marked.unwrap_or(before).trim_end())
}

/// Image file extensions that mark a word as a file name.
const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "gif", "webp", "heic", "bmp", "tif", "tiff",
];

/// Camera and editor prefixes of image names without an extension (`img_9906`).
const IMAGE_PREFIXES: &[&str] = &["img", "dsc", "dscn", "dscf", "pict", "image", "photo"];

/// Removes image file names run into the text: `…in September.img_9906`,
/// `IMG_1234.jpg`, `DSC_0042`, `rochester-meeting.jpg`. The sentence's own
/// punctuation stays; a space left doubled by the removal goes.
pub(super) fn strip_image_names(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((start, end)) = find_image_name(rest) {
        let mut keep = &rest[..start];
        let mut after = &rest[end..];
        if keep.ends_with(' ') && (after.is_empty() || after.starts_with([' ', ',', '.', ';', ':']))
        {
            keep = &keep[..keep.len() - 1];
        } else if keep.is_empty() && out.is_empty() {
            after = after.trim_start();
        }
        out.push_str(keep);
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The byte range of the first image file name in `text`.
fn find_image_name(text: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let is_name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric() && bytes[i - 1] != b'_';
        if boundary && bytes[i].is_ascii_alphanumeric() {
            let name_end = i + bytes[i..].iter().take_while(|&&b| is_name_byte(b)).count();
            if let Some(end) = image_extension_end(bytes, name_end) {
                return Some((i, end));
            }
            if let Some(end) = camera_name_end(bytes, i) {
                let end = image_extension_end(bytes, end).unwrap_or(end);
                return Some((i, end));
            }
            i = name_end.max(i + 1);
        } else {
            i += 1;
        }
    }
    None
}

/// If `.jpg` (or another image extension) follows at `at`, where it ends.
fn image_extension_end(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'.') {
        return None;
    }
    let ext_len = bytes[at + 1..]
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    let ext = std::str::from_utf8(&bytes[at + 1..at + 1 + ext_len]).ok()?;
    IMAGE_EXTENSIONS
        .iter()
        .any(|e| e.eq_ignore_ascii_case(ext))
        .then_some(at + 1 + ext_len)
}

/// If a camera name (`img_9906`, `DSC_0042`, `IMG-1234`) starts at `at`,
/// where it ends: a known prefix, an optional `_` or `-`, three or more digits.
fn camera_name_end(bytes: &[u8], at: usize) -> Option<usize> {
    let letters = bytes[at..]
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    let prefix = std::str::from_utf8(&bytes[at..at + letters]).ok()?;
    if !IMAGE_PREFIXES
        .iter()
        .any(|p| p.eq_ignore_ascii_case(prefix))
    {
        return None;
    }
    let mut end = at + letters;
    if matches!(bytes.get(end), Some(b'_' | b'-')) {
        end += 1;
    }
    let digits = bytes[end..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    (digits >= 3).then_some(end + digits)
}

/// Removes an image's alt text glued to the start of a paragraph, such as
/// `rochester` in `rochesterIain McNicol reported…` or `Islington city road`
/// in `Islington city roadThe following letter…`.
///
/// The glue is a lower-case letter followed at once by a capital within the
/// paragraph's first few words, with nothing but letters, digits, spaces and
/// hyphens before it. To spare names such as `McNicol` or `MacDonald`, the
/// glued text must start with a lower-case letter or run to several words
/// whose later words are all lower-case, and at least two lower-case
/// letters must come right before the capital.
pub(super) fn strip_glued_alt_text(text: &str) -> &str {
    let mut prev: Option<char> = None;
    let mut lower_run = 0;
    for (i, c) in text.char_indices() {
        if i > 60 {
            return text;
        }
        if !(c.is_alphanumeric() || c == ' ' || c == '-' || c == '_') {
            return text;
        }
        if c.is_uppercase() && prev.is_some_and(char::is_lowercase) && lower_run >= 2 {
            let (alt, rest) = text.split_at(i);
            return if is_alt_text(alt) && starts_a_word(rest) {
                rest
            } else {
                text
            };
        }
        lower_run = if c.is_lowercase() { lower_run + 1 } else { 0 };
        prev = Some(c);
    }
    text
}

fn is_alt_text(alt: &str) -> bool {
    let words: Vec<&str> = alt.split(' ').filter(|w| !w.is_empty()).collect();
    let starts_lower = alt.chars().next().is_some_and(char::is_lowercase);
    let later_words_lower = words.len() > 1
        && words[1..]
            .iter()
            .all(|w| w.chars().next().is_some_and(|c| !c.is_uppercase()));
    words.len() <= 6 && (starts_lower || later_words_lower)
}

/// `Iain …`, `The …`, `NEC …`, `I …`: a capitalised or upper-case word.
fn starts_a_word(rest: &str) -> bool {
    let mut chars = rest.chars();
    chars.next();
    match chars.next() {
        Some(c) => c.is_lowercase() || c.is_uppercase() || c == ' ' || c == '’' || c == '\'',
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_run_into_the_text_are_removed() {
        assert_eq!(
            strip_image_names("The campaign starts in September.img_9906"),
            "The campaign starts in September."
        );
        assert_eq!(
            strip_image_names("IMG_1234.jpg The photo shows the count."),
            "The photo shows the count."
        );
        assert_eq!(
            strip_image_names("Members met in Leeds DSC_0042, then Hull."),
            "Members met in Leeds, then Hull."
        );
        assert_eq!(
            strip_image_names("See medway-count.jpeg and IMG-20170321 above"),
            "See and above"
        );
        assert_eq!(strip_image_names("img_9906"), "");
    }

    #[test]
    fn words_that_only_resemble_image_names_stay() {
        for text in [
            "The image 2017 report",
            "A photo of 80 million leaflets",
            "imagery",
            "The file report.pdf is attached.",
            "Pictures of 2,000 members",
            "DSC is the Disputes Committee",
        ] {
            assert_eq!(strip_image_names(text), text);
        }
    }

    #[test]
    fn alt_text_glued_to_the_start_of_a_paragraph_is_removed() {
        assert_eq!(
            strip_glued_alt_text("rochesterIain McNicol reported on the by-election."),
            "Iain McNicol reported on the by-election."
        );
        assert_eq!(
            strip_glued_alt_text("Islington city roadThe following letter was read out."),
            "The following letter was read out."
        );
        assert_eq!(
            strip_glued_alt_text("medway townNEC members agreed."),
            "NEC members agreed."
        );
    }

    #[test]
    fn names_with_inner_capitals_are_not_taken_for_alt_text() {
        for text in [
            "McNicol reported on the by-election.",
            "MacDonald and DeVito spoke.",
            "eBay and iPhone are brands.",
            "The Labour Party agreed.",
            "Mr LaGuardia spoke.",
            "The NEC met, and JoAnne spoke.",
        ] {
            assert_eq!(strip_glued_alt_text(text), text);
        }
    }

    #[test]
    fn continue_reading_links_are_found_with_or_without_an_arrow() {
        assert_eq!(
            strip_continue_reading("The NEC then discussed [&hellip;] Continue reading →"),
            Some("The NEC then discussed")
        );
        assert_eq!(strip_continue_reading("Continue reading"), Some(""));
        assert_eq!(
            strip_continue_reading("Continue reading “Labour NEC Report – May 2017” →"),
            Some("")
        );
        assert_eq!(
            strip_continue_reading("We will continue reading the rule book with care."),
            None
        );
        assert_eq!(strip_continue_reading("Read more »"), Some(""));
        assert_eq!(
            strip_continue_reading("The NEC met. […] Read more"),
            Some("The NEC met.")
        );
        assert_eq!(
            strip_continue_reading("The NEC met. Keep reading →"),
            Some("The NEC met.")
        );
        assert_eq!(strip_continue_reading("We should all read more."), None);
        assert!(ends_with_ellipsis_mark(
            "The NEC met on 18 July and [&hellip;] "
        ));
        assert!(!ends_with_ellipsis_mark("The NEC met…"));
    }

    #[test]
    fn comment_sections_and_forms_are_recognised() {
        for line in [
            "4 thoughts on “Labour NEC Report – March 2017”",
            "One thought on \"NEC Report\"",
            "2 Responses to “NEC Report – May 2017”",
            "Leave a Reply",
            "Share this:",
        ] {
            assert_eq!(classify(line), LineKind::EndOfPost, "{line}");
        }
        for line in ["3 Comments", "One Response", "Leave a comment"] {
            assert_eq!(classify(line), LineKind::CommentLink, "{line}");
        }
        for line in [
            "Fill in your details below or click an icon to log in:",
            "You are commenting using your WordPress.com account. ( Log Out /  Change )",
            "Connecting to %s",
            "Notify me of new comments via email.",
            "Continue reading →",
            "Posted on 21 March 2017 by jsmith",
            "Posted in NEC | Tagged Labour, NEC | Leave a comment",
            "This entry was posted in NEC Reports. Bookmark the permalink.",
        ] {
            assert_eq!(classify(line), LineKind::Boilerplate, "{line}");
        }
    }

    #[test]
    fn report_sentences_about_comments_are_text() {
        for line in [
            "2 responses to the consultation were received.",
            "The NEC had four thoughts on the matter.",
            "Related issues were discussed.",
            "Leave a reply on the form by Friday.",
            "Posted in March, the letter set out the timetable agreed by the NEC.",
        ] {
            assert_eq!(classify(line), LineKind::Text, "{line}");
        }
    }
}
