//! CSV cells that a spreadsheet cannot mistake for formulas (OWASP's "CSV
//! injection"), and back.
//!
//! A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return
//! runs as a formula when the file is opened in Excel or LibreOffice. An
//! export puts a `'` before such a cell, which spreadsheets read as "this
//! is text", and before a cell that already starts with `'`, so that the
//! mapping can be undone exactly: an import drops one leading `'` when a
//! formula character or another `'` follows it.

use std::borrow::Cow;

/// The characters that make a spreadsheet cell a formula.
const FORMULA_START: &[char] = &['=', '+', '-', '@', '\t', '\r'];

fn needs_quote(cell: &str) -> bool {
    cell.starts_with(FORMULA_START) || cell.starts_with('\'')
}

/// The cell as an export writes it.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if needs_quote(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The value of a cell that [`neutralise`] may have written.
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_quote(rest) => rest,
        _ => cell,
    }
}

/// The header row of an export whose attribute columns are `keys`: the
/// layout an import reads.
pub fn export_header(keys: &[String]) -> impl Iterator<Item = &str> {
    ["email", "name"]
        .into_iter()
        .chain(keys.iter().map(String::as_str))
}

/// A subscriber's row of an export, each cell safe from spreadsheets.
pub fn export_row<'a>(
    s: &'a super::Subscriber,
    keys: &'a [String],
) -> impl Iterator<Item = Cow<'a, str>> {
    [s.email.as_str(), s.name.as_deref().unwrap_or("")]
        .into_iter()
        .chain(keys.iter().map(|k| s.attributes.get(k).unwrap_or("")))
        .map(neutralise)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formulas_are_written_as_text() {
        assert_eq!(
            neutralise("=HYPERLINK(\"http://evil\",\"x\")"),
            "'=HYPERLINK(\"http://evil\",\"x\")"
        );
        for cell in [
            "+44 20 7946 0000",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "'quoted",
        ] {
            assert!(neutralise(cell).starts_with('\''), "{cell:?}");
        }
        assert_eq!(neutralise("Jo Bloggs"), "Jo Bloggs");
        assert_eq!(neutralise("jo@example.org"), "jo@example.org");
    }

    #[test]
    fn an_apostrophe_typed_by_hand_is_kept() {
        assert_eq!(restore("'hello"), "'hello");
        assert_eq!(restore("O'Neill"), "O'Neill");
    }

    proptest! {
        #[test]
        fn every_cell_comes_back_as_it_was(cell in "['=+@\\t\\r-]{0,3}.{0,12}") {
            let written = neutralise(&cell);
            prop_assert_eq!(restore(&written), cell.as_str());
            prop_assert!(!written.starts_with(FORMULA_START));
        }
    }
}
