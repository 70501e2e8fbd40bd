//! Subscriber attributes: string key/value pairs such as `role=councillor`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

const MAX_KEY_CHARS: usize = 64;
const MAX_VALUE_CHARS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributeError {
    #[error("an attribute must be written key=value, got {0:?}")]
    MissingEquals(String),
    #[error("attribute key {0:?} must be 1 to 64 letters, digits or underscores")]
    BadKey(String),
    #[error("the value of attribute {0:?} is longer than 1024 characters")]
    ValueTooLong(String),
    #[error("the value of attribute {0:?} contains a control character")]
    BadValue(String),
}

/// Normalises an attribute key: trimmed, lower-cased, with spaces and hyphens
/// turned into underscores, so that a spreadsheet header "Local Council"
/// and a CLI flag `local_council` name the same attribute.
pub fn normalise_key(raw: &str) -> Result<String, AttributeError> {
    let key: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c == ' ' || c == '-' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let valid = !key.is_empty()
        && key.chars().count() <= MAX_KEY_CHARS
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(key)
    } else {
        Err(AttributeError::BadKey(raw.to_owned()))
    }
}

/// Checks and trims an attribute value.
pub fn normalise_value(key: &str, raw: &str) -> Result<String, AttributeError> {
    let value = raw.trim();
    if value.chars().any(char::is_control) {
        return Err(AttributeError::BadValue(key.to_owned()));
    }
    if value.chars().count() > MAX_VALUE_CHARS {
        return Err(AttributeError::ValueTooLong(key.to_owned()));
    }
    Ok(value.to_owned())
}

/// The attribute the web forms ask about: "I am a party member / a
/// councillor".
pub const ROLE: &str = "role";

/// The roles the web forms offer.
pub const ROLES: [&str; 2] = ["member", "councillor"];

/// A subscriber's attributes, ordered by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Attributes(BTreeMap<String, String>);

impl Attributes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a key; an empty value removes it.
    pub fn set(&mut self, key: String, value: String) {
        if value.is_empty() {
            self.0.remove(&key);
        } else {
            self.0.insert(key, value);
        }
    }

    pub fn remove(&mut self, key: &str) -> bool {
        self.0.remove(key).is_some()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Overlays `other` on `self`: its keys win, keys it lacks are kept.
    pub fn merge(&mut self, other: &Attributes) {
        for (k, v) in other.iter() {
            self.0.insert(k.to_owned(), v.to_owned());
        }
    }
}

/// One `key=value` pair, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributePair {
    pub key: String,
    pub value: String,
}

impl std::str::FromStr for AttributePair {
    type Err = AttributeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| AttributeError::MissingEquals(s.to_owned()))?;
        let key = normalise_key(k)?;
        let value = normalise_value(&key, v)?;
        Ok(Self { key, value })
    }
}

impl FromIterator<AttributePair> for Attributes {
    fn from_iter<I: IntoIterator<Item = AttributePair>>(iter: I) -> Self {
        let mut attrs = Attributes::new();
        for pair in iter {
            attrs.set(pair.key, pair.value);
        }
        attrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_parses_and_its_key_is_normalised() {
        let pair: AttributePair = "Local Council=Islington".parse().unwrap();
        assert_eq!(
            pair,
            AttributePair {
                key: "local_council".into(),
                value: "Islington".into()
            }
        );
    }

    #[test]
    fn a_value_may_contain_an_equals_sign() {
        let pair: AttributePair = "note=a=b".parse().unwrap();
        assert_eq!(pair.value, "a=b");
    }

    #[test]
    fn bad_pairs_are_rejected() {
        assert!(matches!(
            "role".parse::<AttributePair>(),
            Err(AttributeError::MissingEquals(_))
        ));
        assert!(matches!(
            "=x".parse::<AttributePair>(),
            Err(AttributeError::BadKey(_))
        ));
        assert!(matches!(
            "rôle=x".parse::<AttributePair>(),
            Err(AttributeError::BadKey(_))
        ));
        assert!(matches!(
            "role=a\nb".parse::<AttributePair>(),
            Err(AttributeError::BadValue(_))
        ));
    }

    #[test]
    fn merging_overlays_new_keys_and_keeps_the_rest() {
        let mut a: Attributes = [
            "role=member".parse().unwrap(),
            "ward=Canonbury".parse().unwrap(),
        ]
        .into_iter()
        .collect();
        let b: Attributes = ["role=councillor".parse().unwrap()].into_iter().collect();
        a.merge(&b);
        assert_eq!(a.get("role"), Some("councillor"));
        assert_eq!(a.get("ward"), Some("Canonbury"));
    }

    #[test]
    fn an_empty_value_removes_the_key() {
        let mut a = Attributes::new();
        a.set("role".into(), "member".into());
        a.set("role".into(), String::new());
        assert!(a.is_empty());
    }
}
