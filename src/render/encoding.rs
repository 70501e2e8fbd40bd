//! Transfer encodings for the message: quoted-printable bodies (RFC 2045)
//! and encoded words in headers (RFC 2047).

use base64::Engine;

/// Longest encoded line before a soft break (RFC 2045 allows 76 with the `=`).
const QP_LINE: usize = 75;

/// Quoted-printable encoder that can be fed a body in pieces.
///
/// No encoded line starts with `From ` or `.`: their first character is
/// encoded (`=46`, `=2E`), so that an mbox or SMTP hop cannot change them.
///
/// Each piece is encoded on its own and, unless it ends a line, closed with
/// a soft line break, so that pieces encoded once (a campaign's static text)
/// and pieces encoded per recipient (a name, a link) can be concatenated in
/// any order and every line still stays within 76 characters.
pub fn qp_piece(text: &str, out: &mut String) {
    let mut col = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Away from a line's start, a run that needs no escape goes out
        // whole, as far as the line has room.
        let run = if col > 0 {
            literal_run(&bytes[i..], QP_LINE - col)
        } else {
            0
        };
        if run > 0 {
            out.push_str(&text[i..i + run]);
            col += run;
            i += run;
            continue;
        }
        let b = bytes[i];
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) == Some(&b'\n')) {
            out.push_str("\r\n");
            col = 0;
            i += if b == b'\r' { 2 } else { 1 };
            continue;
        }
        let next_is_eol = matches!(bytes.get(i + 1), None | Some(b'\n') | Some(b'\r'));
        // A hop that escapes mbox `From ` lines or dot-stuffs carelessly
        // changes a line that starts so, and with it the DKIM body hash.
        let unsafe_first = b == b'.' || bytes[i..].starts_with(b"From ");
        let mut literal = ((b == b' ' || b == b'\t') && !next_is_eol
            || (33..=126).contains(&b) && b != b'=')
            && !(col == 0 && unsafe_first);
        let mut width = if literal { 1 } else { 3 };
        if col + width > QP_LINE {
            out.push_str("=\r\n");
            col = 0;
            if unsafe_first {
                literal = false;
                width = 3;
            }
        }
        if literal {
            out.push(b as char);
        } else {
            out.push('=');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
        col += width;
        i += 1;
    }
    if col > 0 {
        out.push_str("=\r\n");
    }
}

/// How many bytes at the start of `bytes`, at most `room`, quoted-printable
/// writes as they are: printable ASCII other than `=`, and spaces and tabs
/// that do not end a line. Each is ASCII, so the run ends on a character
/// boundary.
fn literal_run(bytes: &[u8], room: usize) -> usize {
    let room = room.min(bytes.len());
    let mut n = 0;
    while n < room {
        let literal = match bytes[n] {
            b' ' | b'\t' => !matches!(bytes.get(n + 1), None | Some(b'\n' | b'\r')),
            b'=' => false,
            b => (33..=126).contains(&b),
        };
        if !literal {
            break;
        }
        n += 1;
    }
    n
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The longest header line, its CRLF left out (RFC 5322 §2.1.1).
pub const HEADER_LINE: usize = 78;

/// The longest encoded word (RFC 2047 §2).
const ENCODED_WORD: usize = 75;

/// What an encoded word adds around the base64 of its text.
const ENCODED_WORD_FRAME: usize = "=?UTF-8?B??=".len();

/// A header field being written into a message: `Name:`, then its value
/// piece by piece, each after a space, or after a fold (CRLF and a space)
/// when it would take the line past [`HEADER_LINE`] characters, the name
/// counted. A fold may come right after the colon. A piece longer than a
/// line is not broken: it gets a line of its own.
pub struct Header<'a> {
    out: &'a mut String,
    column: usize,
}

impl<'a> Header<'a> {
    /// Starts the field `name` at the end of `out`.
    pub fn start(out: &'a mut String, name: &str) -> Header<'a> {
        out.push_str(name);
        out.push(':');
        Header {
            out,
            column: name.len() + 1,
        }
    }

    /// Ends the field with its CRLF.
    pub fn end(self) {
        self.out.push_str("\r\n");
    }

    /// Room for a piece after a space on the current line.
    fn room(&self) -> usize {
        HEADER_LINE.saturating_sub(self.column + 1)
    }

    /// True when nothing but the fold's space is on the current line.
    fn at_line_start(&self) -> bool {
        self.column == 1
    }

    fn fold(&mut self) {
        self.out.push_str("\r\n ");
        self.column = 1;
    }

    /// Begins a piece `len` long: after a space, or a fold when it does not fit.
    fn space_for(&mut self, len: usize) {
        if len > self.room() && !self.at_line_start() {
            self.fold();
        } else if !self.at_line_start() {
            self.out.push(' ');
            self.column += 1;
        }
    }

    /// One piece that may not be broken, given in parts.
    pub fn word(&mut self, parts: &[&str]) {
        self.space_for(parts.iter().map(|p| p.len()).sum());
        for part in parts {
            self.out.push_str(part);
            self.column += part.len();
        }
    }

    /// Unstructured text (a Subject): its words as they are where they are
    /// printable ASCII, and RFC 2047 encoded words for each run of words
    /// that are not, folded between words. White space becomes one space.
    pub fn text(&mut self, value: &str) {
        let mut words = value.split_whitespace().peekable();
        let mut run = String::new();
        while let Some(word) = words.next() {
            if !needs_encoding(word) {
                self.word(&[word]);
                continue;
            }
            run.clear();
            run.push_str(word);
            while let Some(next) = words.next_if(|w| needs_encoding(w)) {
                run.push(' ');
                run.push_str(next);
            }
            self.encoded(&run);
        }
    }

    /// A display name (a phrase, RFC 5322 §3.2.5): as it is when it is
    /// made of atoms, quoted when it is printable ASCII with specials in it,
    /// and encoded words otherwise.
    pub fn phrase(&mut self, name: &str) {
        let words = || name.split_whitespace();
        if words().all(|w| w.bytes().all(is_atext)) {
            for word in words() {
                self.word(&[word]);
            }
        } else if name.bytes().all(|b| (32..127).contains(&b)) {
            let mut quoted = String::with_capacity(name.len() + 8);
            let last = words().count().saturating_sub(1);
            for (i, word) in words().enumerate() {
                quoted.clear();
                if i == 0 {
                    quoted.push('"');
                }
                for c in word.chars() {
                    if c == '"' || c == '\\' {
                        quoted.push('\\');
                    }
                    quoted.push(c);
                }
                if i == last {
                    quoted.push('"');
                }
                self.word(&[&quoted]);
            }
        } else {
            self.encoded(&words().collect::<Vec<_>>().join(" "));
        }
    }

    /// A mailbox: `Name <address>`, or the bare address.
    pub fn mailbox(&mut self, name: Option<&str>, address: &str) {
        match name.filter(|n| !n.trim().is_empty()) {
            None => self.word(&[address]),
            Some(name) => {
                self.phrase(name);
                self.word(&["<", address, ">"]);
            }
        }
    }

    /// `text` as base64 encoded words, each as long as the line allows and
    /// at most 75 characters. Words of the text are split between encoded
    /// words only when one alone is longer than a line; a space between
    /// them goes inside the next encoded word, since white space between
    /// encoded words is not part of the text.
    fn encoded(&mut self, text: &str) {
        let mut rest = text;
        while !rest.is_empty() {
            let fits_here = max_encoded_text(self.room().min(ENCODED_WORD));
            let mut take = whole_words(rest, fits_here);
            if take == 0 && !self.at_line_start() {
                self.fold();
                take = whole_words(rest, max_encoded_text(self.room().min(ENCODED_WORD)));
            }
            if take == 0 {
                // One word longer than a line: split between its characters.
                take = max_encoded_text(self.room().min(ENCODED_WORD)).min(rest.len());
                while !rest.is_char_boundary(take) {
                    take -= 1;
                }
            }
            let (chunk, later) = rest.split_at(take);
            self.space_for(encoded_len(chunk.len()));
            let before = self.out.len();
            self.out.push_str("=?UTF-8?B?");
            base64::engine::general_purpose::STANDARD.encode_string(chunk, self.out);
            self.out.push_str("?=");
            self.column += self.out.len() - before;
            rest = later;
        }
    }
}

/// The length of the encoded word of `bytes` bytes of text.
fn encoded_len(bytes: usize) -> usize {
    ENCODED_WORD_FRAME + bytes.div_ceil(3) * 4
}

/// The most bytes of text an encoded word of at most `width` characters holds.
fn max_encoded_text(width: usize) -> usize {
    width.saturating_sub(ENCODED_WORD_FRAME) / 4 * 3
}

/// The length of the longest run of whole words at the start of `text`
/// (each word with the space before it) that is at most `limit` bytes; 0
/// when the first word alone is longer.
fn whole_words(text: &str, limit: usize) -> usize {
    if text.len() <= limit {
        return text.len();
    }
    let mut end = 0;
    for (i, _) in text.match_indices(' ').filter(|&(i, _)| i > 0) {
        if i > limit {
            break;
        }
        end = i;
    }
    end
}

/// True for a word that cannot appear in a header as it is: it is not
/// printable ASCII, or it could be read as an encoded word.
fn needs_encoding(word: &str) -> bool {
    !word.bytes().all(|b| (33..127).contains(&b)) || word.contains("=?")
}

/// `atext` (RFC 5322 §3.2.3): what an atom is made of.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// Escapes text for HTML content and attribute values: `& < > " '`. Unlike
/// Tera's default it leaves `/` alone, so URLs stay readable.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qp(text: &str) -> String {
        let mut out = String::new();
        qp_piece(text, &mut out);
        out
    }

    #[test]
    fn quoted_printable_round_trips_through_an_independent_decoder() {
        let text = "Over 575,000 members – “a record”… = 40%\nTrailing space \nand a very long line that goes on and on \
            well past the seventy-six character limit of quoted-printable lines, twice over, and then some more.\n";
        let encoded = qp(text);
        assert!(encoded.split("\r\n").all(|l| l.len() <= 76), "{encoded}");
        let decoded =
            quoted_printable::decode(encoded.as_bytes(), quoted_printable::ParseMode::Strict)
                .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap().replace("\r\n", "\n"),
            text
        );
    }

    #[test]
    fn no_encoded_line_starts_with_from_and_a_space_or_with_a_dot() {
        let text = format!(
            "From here\n.dot\nx.From y\nFromage\n{a}.after a soft break\n{a}From there\n",
            a = "a".repeat(75)
        );
        let encoded = qp(&text);
        for line in encoded.split("\r\n") {
            assert!(
                !line.starts_with("From ") && !line.starts_with('.'),
                "{line:?}"
            );
        }
        assert!(encoded.starts_with("=46rom here\r\n=2Edot\r\nx.From y\r\nFromage\r\n"));
        let decoded =
            quoted_printable::decode(encoded.as_bytes(), quoted_printable::ParseMode::Strict)
                .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap().replace("\r\n", "\n"),
            text
        );
    }

    #[test]
    fn pieces_encoded_apart_decode_as_one() {
        let mut out = String::new();
        for piece in [
            "Dear ",
            "Siobhán",
            ",\nyour link: ",
            "https://example.org/u/abc=def",
            "\nBye\n",
        ] {
            qp_piece(piece, &mut out);
        }
        assert!(out.split("\r\n").all(|l| l.len() <= 76));
        let decoded =
            quoted_printable::decode(out.as_bytes(), quoted_printable::ParseMode::Strict).unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap().replace("\r\n", "\n"),
            "Dear Siobhán,\nyour link: https://example.org/u/abc=def\nBye\n"
        );
    }

    fn field(name: &str, write: impl FnOnce(&mut Header<'_>)) -> String {
        let mut out = String::new();
        let mut header = Header::start(&mut out, name);
        write(&mut header);
        header.end();
        out
    }

    fn parsed(headers: &str) -> mail_parser::Message<'static> {
        let message = format!("{headers}\r\nbody\r\n");
        mail_parser::MessageParser::default()
            .parse(message.as_bytes())
            .expect("a message")
            .into_owned()
    }

    /// Asserts the rules every header line keeps: at most 78 characters,
    /// the name counted, and every line after the first a continuation.
    #[track_caller]
    fn assert_folded(field: &str) {
        let lines: Vec<&str> = field.strip_suffix("\r\n").unwrap().split("\r\n").collect();
        for (i, line) in lines.iter().enumerate() {
            assert!(line.len() <= HEADER_LINE, "{line:?} is {} long", line.len());
            assert_eq!(i > 0, line.starts_with(' '), "{field:?}");
            assert!(
                !line.trim().is_empty(),
                "a line of only white space: {field:?}"
            );
        }
    }

    /// The text of each encoded word of a field, decoded.
    fn encoded_texts(field: &str) -> Vec<String> {
        use base64::Engine as _;
        field
            .split("=?UTF-8?B?")
            .skip(1)
            .map(|rest| {
                let b64 = rest.split("?=").next().unwrap();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap();
                String::from_utf8(bytes).expect("whole characters in every encoded word")
            })
            .collect()
    }

    #[test]
    fn a_subject_encodes_only_the_words_that_need_it() {
        let subject = field("Subject", |h| h.text("Labour NEC Report – March 2017"));
        assert_eq!(
            subject,
            "Subject: Labour NEC Report =?UTF-8?B?4oCT?= March 2017\r\n"
        );
        assert_eq!(
            field("Subject", |h| h.text("NEC Report")),
            "Subject: NEC Report\r\n"
        );
        let looks_encoded = field("Subject", |h| h.text("a =?x?= b"));
        assert_eq!(parsed(&looks_encoded).subject(), Some("a =?x?= b"));
        let runs = field("Subject", |h| h.text("Réunion du Comité Exécutif"));
        assert_eq!(parsed(&runs).subject(), Some("Réunion du Comité Exécutif"));
    }

    #[test]
    fn long_subjects_fold_at_78_between_words_and_decode_unchanged() {
        for text in [
            "Labour NEC Report – the National Executive Committee meeting of 21 March 2026, in full",
            "Réunion du Comité Exécutif National – élection générale anticipée, préparation, \
             budget et calendrier des conférences régionales",
            "Zażółć gęślą jaźń – ćma żółta i żółw łódź ćwierć",
            "NEC Report: the National Executive Committee meeting of 21 March 2026 and its decisions",
        ] {
            let subject = field("Subject", |h| h.text(text));
            assert_folded(&subject);
            assert_eq!(parsed(&subject).subject(), Some(text), "{subject}");
            let tokens: Vec<&str> = subject.split_whitespace().collect();
            for pair in tokens.windows(2) {
                if pair.iter().all(|t| t.starts_with("=?")) {
                    let next = &encoded_texts(pair[1])[0];
                    assert!(
                        next.starts_with(' '),
                        "an encoded word splits a word: {pair:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_word_longer_than_a_line_is_split_only_between_characters() {
        let word = "Zażółćgęśląjaźń".repeat(6);
        let subject = field("Subject", |h| h.text(&word));
        assert_folded(&subject);
        assert_eq!(parsed(&subject).subject(), Some(word.as_str()));
    }

    #[test]
    fn a_long_field_folds_right_after_the_colon_when_its_first_piece_does_not_fit() {
        let url = format!("https://reports.example.org/u/{}", "A".repeat(40));
        let header = field("List-Unsubscribe", |h| {
            h.word(&["<", &url, ">,"]);
            h.word(&["<", "mailto:leave+TOKEN@example.org", ">"]);
        });
        assert_eq!(
            header,
            format!("List-Unsubscribe:\r\n <{url}>,\r\n <mailto:leave+TOKEN@example.org>\r\n")
        );
        assert_folded(&header);
        let short = field("List-Unsubscribe", |h| {
            h.word(&["<", "https://x.example/u/T", ">,"]);
            h.word(&["<", "mailto:leave+T@x.example", ">"]);
        });
        assert_eq!(
            short,
            "List-Unsubscribe: <https://x.example/u/T>, <mailto:leave+T@x.example>\r\n"
        );
    }

    #[test]
    fn display_names_are_atoms_quoted_strings_or_encoded_words() {
        let to = |name: &str| field("To", |h| h.mailbox(Some(name), "jo@example.org"));
        assert_eq!(to("Jo Bloggs"), "To: Jo Bloggs <jo@example.org>\r\n");
        assert_eq!(to("Labour-NEC"), "To: Labour-NEC <jo@example.org>\r\n");
        assert_eq!(
            to("Bloggs, Jo \"JB\""),
            "To: \"Bloggs, Jo \\\"JB\\\"\" <jo@example.org>\r\n"
        );
        for name in [
            "Bloggs, Jo \"JB\"",
            "NEC: reports (members)",
            "Siobhán O’Neill",
            "Réunion – Comité",
            "A \\ back",
        ] {
            let header = to(name);
            assert_folded(&header);
            let message = parsed(&header);
            let mailbox = message.to().and_then(|a| a.first()).expect("a mailbox");
            assert_eq!(mailbox.name(), Some(name), "{header}");
            assert_eq!(mailbox.address(), Some("jo@example.org"), "{header}");
        }
        assert_eq!(
            field("To", |h| h.mailbox(None, "jo@example.org")),
            "To: jo@example.org\r\n"
        );
        assert_eq!(
            field("To", |h| h.mailbox(Some(" "), "jo@example.org")),
            "To: jo@example.org\r\n"
        );
    }

    #[test]
    fn a_list_id_encodes_or_quotes_only_its_phrase() {
        let list_id = |name: &str| {
            field("List-Id", |h| {
                h.phrase(name);
                h.word(&["<", "members.nec.example", ">"]);
            })
        };
        assert_eq!(
            list_id("Party members"),
            "List-Id: Party members <members.nec.example>\r\n"
        );
        assert_eq!(
            list_id("NEC: reports, (members) \"all\""),
            "List-Id: \"NEC: reports, (members) \\\"all\\\"\" <members.nec.example>\r\n"
        );
        let accents = list_id("Membres du Comité – région Île-de-France");
        assert!(accents.ends_with(" <members.nec.example>\r\n"), "{accents}");
        assert!(accents.starts_with("List-Id: =?UTF-8?B?"), "{accents}");
        assert!(
            !encoded_texts(&accents).concat().contains("members.nec"),
            "{accents}"
        );
        assert_eq!(
            encoded_texts(&accents).concat(),
            "Membres du Comité – région Île-de-France"
        );
        let long = list_id(&"Comité Exécutif National ".repeat(4));
        assert_folded(&long);
        assert!(long.ends_with("<members.nec.example>\r\n"), "{long}");
    }

    proptest::proptest! {
        #[test]
        fn any_text_encodes_to_short_safe_lines_that_decode_to_itself(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "From ", "From", ".", "..", "=", " ", "\t", "  ", "\n", "\r\n", "\r", "a",
                    "word", "é", "–", "Łódź", "\u{1F600}", "~", "x.y", "=3D", "\u{7f}", "\0",
                    "https://nec.example/u/AbC-123_x?y=z", "0123456789012345678901234567890123456789",
                ]),
                0..120,
            )
        ) {
            // A body ends its last line (the decoder refuses a soft break at the very end).
            let text = pieces.concat() + "\n";
            let encoded = qp(&text);
            for line in encoded.split("\r\n") {
                proptest::prop_assert!(line.len() <= 76, "{:?}", line);
                proptest::prop_assert!(
                    !line.starts_with('.') && !line.starts_with("From "),
                    "{:?}",
                    line
                );
                proptest::prop_assert!(line.bytes().all(|b| b == b'\t' || (32..=126).contains(&b)));
            }
            let decoded =
                quoted_printable::decode(encoded.as_bytes(), quoted_printable::ParseMode::Strict)
                    .unwrap();
            let expected = text.replace("\r\n", "\n").replace('\n', "\r\n");
            proptest::prop_assert_eq!(String::from_utf8(decoded).unwrap(), expected);
        }

        #[test]
        fn any_text_folds_within_78_and_decodes_to_itself(
            words in proptest::collection::vec(
                proptest::sample::select(vec![
                    "NEC", "Report", "–", "Comité", "é", "Łódź", "a", ":", "\"q\"", "(x)",
                    "meeting", "2026", "résumé", "…", "Zażółćgęśląjaźń",
                ]),
                1..30,
            )
        ) {
            let text = words.join(" ");
            let subject = field("Subject", |h| h.text(&text));
            assert_folded(&subject);
            let parsed = parsed(&subject);
            proptest::prop_assert_eq!(parsed.subject(), Some(text.as_str()));
        }
    }
}
