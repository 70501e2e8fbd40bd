//! Importers: turn a Markdown file, a pasted blog post or a saved HTML page
//! into report drafts.
//!
//! PLACEHOLDER: being written (issue 3); the signatures are the contract.

use super::ReportDraft;

/// The format of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Text,
    Html,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Ok(Format::Markdown),
            "text" | "txt" => Ok(Format::Text),
            "html" | "htm" => Ok(Format::Html),
            other => Err(format!("{other:?} is not a format; use md, text or html")),
        }
    }
}

/// Why an input cannot be imported. Every variant is the user's bad input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    BadInput(String),
}

/// Guesses the format from a file name (if any) and the content.
pub fn guess_format(_name: Option<&str>, _content: &[u8]) -> Format {
    todo!("issue 3: importers")
}

/// Parses `content` into one draft per report it holds. Drafts come back
/// with `source: ReportSource::Paste` and no `published_at`; the caller sets both.
pub fn parse(_content: &[u8], _format: Format) -> Result<Vec<ReportDraft>, ImportError> {
    todo!("issue 3: importers")
}
