//! Errors shared across the crate's layers: the one every storage trait
//! returns, and the one for a name that is none of a fixed set. They live at
//! the bottom of the crate, beneath the domain modules that declare those
//! traits and the storage layer that implements them, and depend on nothing
//! in the crate.

use std::fmt;

/// A text that is none of the names a value may have, such as a state or
/// a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not one of: {expected}")]
pub struct UnknownName {
    pub given: String,
    /// The names allowed, separated by spaces.
    pub expected: &'static str,
}

/// What the storage layer reports to its callers.
///
/// `NotFound`, `Conflict` and `Refused` are the caller's bad input and carry
/// a sentence for the user. `Unavailable`, `Corrupt` and `Unexpected` are
/// failures: their details go to the log, never raw SQL to the user.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Refused(String),
    /// The database cannot be reached or used right now; trying again later
    /// may work.
    #[error("{0}")]
    Unavailable(String),
    /// A stored row no longer parses into its domain type. Retrying cannot
    /// help; the row needs repair.
    #[error("{0}")]
    Corrupt(String),
    #[error("unexpected database error ({summary}); run with NECMAIL_LOG=debug for details")]
    Unexpected {
        /// The failure's class and code, without SQL or the server's message.
        summary: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// True when the caller asked for something that cannot be done, as
    /// opposed to the database failing.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            StoreError::NotFound(_) | StoreError::Conflict(_) | StoreError::Refused(_)
        )
    }

    pub fn not_found(what: impl fmt::Display) -> Self {
        StoreError::NotFound(what.to_string())
    }

    /// A stored value of `what` that no longer parses.
    pub fn corrupt(what: impl fmt::Display, problem: impl fmt::Display) -> Self {
        StoreError::Corrupt(format!("{what} is corrupt: {problem}"))
    }
}
