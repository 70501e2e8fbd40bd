//! How sqlx's errors become [`StoreError`]s.

use crate::error::StoreError;

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        tracing::debug!(error = %err, "database error");
        let summary = match &err {
            sqlx::Error::Io(io) => {
                return StoreError::Unavailable(format!("cannot reach the database: {io}"));
            }
            sqlx::Error::Tls(tls) => {
                return StoreError::Unavailable(format!("TLS to the database failed: {tls}"));
            }
            sqlx::Error::PoolTimedOut => {
                return StoreError::Unavailable(
                    "timed out waiting for a database connection".into(),
                );
            }
            sqlx::Error::PoolClosed => {
                return StoreError::Unavailable("the database pool is closed".into());
            }
            sqlx::Error::Configuration(e) => {
                return StoreError::Unavailable(format!("bad database configuration: {e}"));
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
                format!("{kind}, {code}")
            }
            sqlx::Error::Migrate(m) => format!("migration failed: {m}"),
            sqlx::Error::ColumnDecode { index, .. } => format!("cannot decode column {index}"),
            sqlx::Error::RowNotFound => "no row".into(),
            sqlx::Error::ColumnNotFound(column) => format!("no column {column}"),
            _ => "driver error".into(),
        };
        StoreError::Unexpected {
            summary,
            source: Box::new(err),
        }
    }
}

/// True when `err` is a unique-constraint violation.
pub(super) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
