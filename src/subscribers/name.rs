//! `SubscriberName`: a display name that can never break a header.

use std::fmt;

const MAX_NAME_CHARS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name contains a line break, which could forge mail headers")]
    LineBreak,
    #[error("the name contains a control character")]
    Control,
    #[error("the name is longer than {MAX_NAME_CHARS} characters")]
    TooLong,
}

/// A subscriber's display name: trimmed, at most 256 characters and free of
/// control characters, so it is safe inside a `To:` header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SubscriberName(String);

impl SubscriberName {
    /// Parses a name; an empty or all-space input means "no name".
    pub fn parse(input: &str) -> Result<Option<Self>, NameError> {
        if input.contains(['\r', '\n', '\u{2028}', '\u{2029}', '\u{85}']) {
            return Err(NameError::LineBreak);
        }
        if input.chars().any(char::is_control) {
            return Err(NameError::Control);
        }
        let name = input.trim();
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(NameError::TooLong);
        }
        Ok((!name.is_empty()).then(|| Self(name.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubscriberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_trimmed() {
        assert_eq!(
            SubscriberName::parse("  Cllr Jo Bloggs ")
                .unwrap()
                .unwrap()
                .as_str(),
            "Cllr Jo Bloggs"
        );
    }

    #[test]
    fn an_empty_name_means_no_name() {
        assert_eq!(SubscriberName::parse("   ").unwrap(), None);
    }

    #[test]
    fn a_header_injection_attempt_is_rejected() {
        assert_eq!(
            SubscriberName::parse("Jo\r\nBcc: everyone@example.org"),
            Err(NameError::LineBreak)
        );
        assert_eq!(
            SubscriberName::parse("Jo\nBloggs"),
            Err(NameError::LineBreak)
        );
        assert_eq!(
            SubscriberName::parse("Jo\u{2028}Bloggs"),
            Err(NameError::LineBreak)
        );
    }

    #[test]
    fn control_characters_are_rejected() {
        assert_eq!(SubscriberName::parse("Jo\u{7}"), Err(NameError::Control));
        assert_eq!(SubscriberName::parse("Jo\tBloggs"), Err(NameError::Control));
    }

    #[test]
    fn names_are_limited_to_256_characters_not_bytes() {
        assert!(SubscriberName::parse(&"é".repeat(256)).is_ok());
        assert_eq!(
            SubscriberName::parse(&"é".repeat(257)),
            Err(NameError::TooLong)
        );
    }

    #[test]
    fn curly_quotes_and_accents_are_kept() {
        let name = SubscriberName::parse("Siobhán O’Neill").unwrap().unwrap();
        assert_eq!(name.as_str(), "Siobhán O’Neill");
    }
}
