//! How sqlx's errors become [`StoreError`]s.

use sqlx::error::DatabaseError;
use sqlx::sqlite::SqliteError;

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
            sqlx::Error::Database(db) if is_passing(&**db) => {
                return StoreError::Unavailable(format!(
                    "the database is busy or restarting: {db}"
                ));
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

/// True for a database error that passes by itself, so that the same
/// statement may work when tried again: SQLite busy or locked (primary codes
/// 5 and 6, whatever the extended code), or on PostgreSQL a connection lost,
/// the server shutting down or starting up, a serialization failure, a
/// deadlock, a lock timeout or too many connections.
pub(super) fn is_passing(db: &dyn DatabaseError) -> bool {
    let Some(code) = db.code() else { return false };
    if db.try_downcast_ref::<SqliteError>().is_some() {
        return code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
    }
    code.starts_with("08")
        || matches!(
            &*code,
            "57P01" | "57P02" | "57P03" | "40001" | "40P01" | "55P03" | "53300"
        )
}

/// True when `err` is a unique-constraint violation.
pub(super) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}
