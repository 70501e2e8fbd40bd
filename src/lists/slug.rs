use std::fmt;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("a list slug must be 1 to 64 lower-case letters, digits or hyphens, got {0:?}")]
    BadSlug(String),
    #[error("a list name must be one line of 1 to 200 characters")]
    BadName,
}

/// A list's short name, as used in URLs, `List-Id` and the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ListSlug(String);

impl ListSlug {
    pub fn parse(input: &str) -> Result<Self, SlugError> {
        let valid = (1..=64).contains(&input.len())
            && input
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(Self(input.to_owned()))
        } else {
            Err(SlugError::BadSlug(input.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ListSlug {
    type Err = SlugError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ListSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_of_letters_digits_and_hyphens_parse() {
        for ok in ["members", "councillors", "nec-2026", "a", &"x".repeat(64)] {
            assert_eq!(ListSlug::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn other_slugs_are_rejected() {
        for bad in [
            "",
            "Members",
            "nec_2026",
            "nec 2026",
            "émigrés",
            &"x".repeat(65),
        ] {
            assert!(ListSlug::parse(bad).is_err(), "{bad:?}");
        }
    }
}
