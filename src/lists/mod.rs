//! Mailing lists: `members`, `councillors`, … Each has an opt-in policy and
//! counts of its subscribers by status.

mod slug;
mod store;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::UnknownName;

pub use slug::{ListSlug, SlugError};
pub use store::ListStore;

/// How people join a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OptIn {
    /// A subscription stays unconfirmed until the address confirms it.
    Double,
    /// A subscription is confirmed at once.
    Single,
}

impl OptIn {
    pub fn as_str(self) -> &'static str {
        match self {
            OptIn::Double => "double",
            OptIn::Single => "single",
        }
    }
}

impl std::str::FromStr for OptIn {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "double" => Ok(OptIn::Double),
            "single" => Ok(OptIn::Single),
            other => Err(UnknownName {
                given: other.to_owned(),
                expected: "double single",
            }),
        }
    }
}

/// What an admin gives to create a list.
#[derive(Debug, Clone)]
pub struct NewList {
    pub slug: ListSlug,
    pub name: String,
    pub description: String,
    pub opt_in: OptIn,
    /// Whether the list is offered on the public subscribe form.
    pub public: bool,
}

/// Subscriptions of a list, counted by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ListCounts {
    pub confirmed: i64,
    pub unconfirmed: i64,
    pub unsubscribed: i64,
    /// Subscribers on the list who are blocklisted, whatever their subscription says.
    pub blocklisted: i64,
}

/// A list as stored, with its counts.
#[derive(Debug, Clone, Serialize)]
pub struct List {
    #[serde(skip)]
    pub id: i64,
    pub slug: ListSlug,
    pub name: String,
    pub description: String,
    pub opt_in: OptIn,
    pub public: bool,
    /// Lists are shown lowest first, then by slug.
    pub position: i32,
    pub created_at: DateTime<Utc>,
    pub subscribers: ListCounts,
}

/// A list as offered to people on the web pages: no counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListOption {
    pub id: i64,
    pub slug: ListSlug,
    pub name: String,
    pub description: String,
    pub opt_in: OptIn,
    pub public: bool,
}

/// Checks a list's display name: one line, 1 to 200 characters.
pub fn parse_list_name(input: &str) -> Result<String, SlugError> {
    let name = input.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(SlugError::BadName);
    }
    Ok(name.to_owned())
}
