use std::fmt;

/// What the storage layer reports to its callers.
///
/// `NotFound`, `Conflict` and `Refused` are the caller's bad input and carry
/// a sentence for the user. `Unavailable` and `Unexpected` are runtime
/// failures; their details go to the log, never raw SQL to the user.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("unexpected database error ({0}); run with NECMAIL_LOG=debug for details")]
    Unexpected(UnexpectedDb),
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
}

/// A summary of an unexpected database failure: its class and code, without
/// the SQL or the server's message (those are logged at debug level).
#[derive(Debug)]
pub struct UnexpectedDb(String);

impl fmt::Display for UnexpectedDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        tracing::debug!(error = %err, "database error");
        match &err {
            sqlx::Error::Io(io) => {
                StoreError::Unavailable(format!("cannot reach the database: {io}"))
            }
            sqlx::Error::Tls(tls) => {
                StoreError::Unavailable(format!("TLS to the database failed: {tls}"))
            }
            sqlx::Error::PoolTimedOut => {
                StoreError::Unavailable("timed out waiting for a database connection".into())
            }
            sqlx::Error::PoolClosed => {
                StoreError::Unavailable("the database pool is closed".into())
            }
            sqlx::Error::Configuration(e) => {
                StoreError::Unavailable(format!("bad database configuration: {e}"))
            }
            sqlx::Error::Database(db) => {
                let code = db
                    .code()
                    .map(|c| format!("code {c}"))
                    .unwrap_or_else(|| "no code".into());
                let kind = if db.is_unique_violation() {
                    "unique violation"
                } else if db.is_foreign_key_violation() {
                    "foreign key violation"
                } else if db.is_check_violation() {
                    "check violation"
                } else {
                    "database error"
                };
                StoreError::Unexpected(UnexpectedDb(format!("{kind}, {code}")))
            }
            sqlx::Error::Migrate(m) => {
                StoreError::Unexpected(UnexpectedDb(format!("migration failed: {m}")))
            }
            other => StoreError::Unexpected(UnexpectedDb(other.to_string())),
        }
    }
}

/// True when `err` is a unique-constraint violation.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
