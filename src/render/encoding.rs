//! Transfer encodings for the message: quoted-printable bodies (RFC 2045)
//! and encoded words in headers (RFC 2047).

use base64::Engine;

/// Longest encoded line before a soft break (RFC 2045 allows 76 with the `=`).
const QP_LINE: usize = 75;

/// Quoted-printable encoder that can be fed a body in pieces.
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
        let b = bytes[i];
        if b == b'\n' || (b == b'\r' && bytes.get(i + 1) == Some(&b'\n')) {
            out.push_str("\r\n");
            col = 0;
            i += if b == b'\r' { 2 } else { 1 };
            continue;
        }
        let next_is_eol = matches!(bytes.get(i + 1), None | Some(b'\n') | Some(b'\r'));
        let literal =
            (b == b' ' || b == b'\t') && !next_is_eol || (33..=126).contains(&b) && b != b'=';
        let width = if literal { 1 } else { 3 };
        if col + width > QP_LINE {
            out.push_str("=\r\n");
            col = 0;
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

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// A header value: as it is when it is printable ASCII, otherwise as RFC
/// 2047 base64 encoded words of at most 75 characters, folded.
pub fn header_text(value: &str, out: &mut String) {
    if value.bytes().all(|b| (32..127).contains(&b)) {
        out.push_str(value);
        return;
    }
    encoded_words(value, out);
}

fn encoded_words(value: &str, out: &mut String) {
    // 45 bytes of UTF-8 encode to 60 characters; with "=?UTF-8?B?" and "?="
    // a word is 72. Words never split a character.
    let mut start = 0;
    let mut first = true;
    while start < value.len() {
        let mut end = (start + 45).min(value.len());
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        if !first {
            out.push_str("\r\n ");
        }
        out.push_str("=?UTF-8?B?");
        out.push_str(
            &base64::engine::general_purpose::STANDARD.encode(&value.as_bytes()[start..end]),
        );
        out.push_str("?=");
        start = end;
        first = false;
    }
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

/// A mailbox for `From:` or `To:`: `Name <address>`, with the name quoted or
/// encoded as it needs, or the bare address.
pub fn mailbox(name: Option<&str>, address: &str, out: &mut String) {
    match name.filter(|n| !n.is_empty()) {
        None => out.push_str(address),
        Some(name) => {
            let atom_safe = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ');
            if atom_safe {
                out.push_str(name);
            } else if name.bytes().all(|b| (32..127).contains(&b)) {
                out.push('"');
                for c in name.chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            } else {
                encoded_words(name, out);
            }
            out.push_str(" <");
            out.push_str(address);
            out.push('>');
        }
    }
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

    #[test]
    fn headers_encode_non_ascii_and_quote_specials() {
        let mut out = String::new();
        header_text("Labour NEC Report – March 2017", &mut out);
        assert!(
            out.starts_with("=?UTF-8?B?") && out.ends_with("?="),
            "{out}"
        );
        let mut plain = String::new();
        header_text("NEC Report", &mut plain);
        assert_eq!(plain, "NEC Report");

        let mut m = String::new();
        mailbox(Some("Bloggs, Jo \"JB\""), "jo@example.org", &mut m);
        assert_eq!(m, "\"Bloggs, Jo \\\"JB\\\"\" <jo@example.org>");
        let mut e = String::new();
        mailbox(Some("Siobhán"), "s@example.org", &mut e);
        assert!(
            e.starts_with("=?UTF-8?B?") && e.ends_with("?= <s@example.org>"),
            "{e}"
        );
    }
}
