//! Storage: one [`Store`] trait, implemented for SQLite and PostgreSQL.
//!
//! Each domain (lists, subscribers, …) owns a narrow trait and writes its
//! SQL once, in a macro that both backends instantiate: the SQL text they
//! share is written once, and each backend file holds only what differs
//! (connection set-up, migrations and the few dialect-specific statements
//! in [`Dialect`]). sqlx's `Any` driver is deliberately not used: it cannot
//! decode timestamps, nor booleans on SQLite.

pub(crate) mod error;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;
use std::time::Duration;

pub use error::StoreError;

use crate::campaigns::CampaignStore;
use crate::lists::ListStore;
use crate::meetings::MeetingStore;
use crate::reports::{ReportStore, SourceStore};
use crate::scheduler::ScheduleStore;
use crate::subscribers::{SelfServiceStore, SubscriberStore};
use crate::web::SiteStore;

/// Everything necmail keeps, behind one object.
#[async_trait::async_trait]
pub trait Store:
    ListStore
    + SubscriberStore
    + SelfServiceStore
    + ReportStore
    + SourceStore
    + CampaignStore
    + MeetingStore
    + ScheduleStore
    + SiteStore
    + Send
    + Sync
{
    /// Which backend this is, for logs and `config check`.
    fn backend(&self) -> Backend;
    /// Applies the embedded migrations; returns how many were new.
    async fn migrate(&self) -> Result<usize, StoreError>;
    /// A round trip to the database, for health checks.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Waits for open connections to finish and closes them.
    async fn close(&self);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Picks the backend from a `DATABASE_URL`'s scheme.
    pub fn from_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':')?.0;
        match scheme {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// Pool settings shared by both backends.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 5,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// Opens the database named by `url`, runs the migrations and returns the store.
#[tracing::instrument(skip_all, fields(db.url = %crate::config::redact_url(url)))]
pub async fn connect(url: &str, options: &PoolOptions) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = match Backend::from_url(url) {
        Some(Backend::Sqlite) => Arc::new(sqlite::SqliteStore::connect(url, options).await?),
        Some(Backend::Postgres) => Arc::new(postgres::PgStore::connect(url, options).await?),
        None => {
            return Err(StoreError::Unavailable(
                "DATABASE_URL must start with sqlite:// or postgres://".into(),
            ));
        }
    };
    let applied = store.migrate().await?;
    if applied > 0 {
        tracing::info!(
            applied,
            backend = store.backend().name(),
            "applied database migrations"
        );
    }
    Ok(store)
}

/// The SQL that differs between the backends. The domain macros call these
/// through the store type, so each dialect difference is named in one place.
pub(crate) trait Dialect {
    /// Every attribute key in use, one row each, column `key`.
    const ATTRIBUTE_KEYS: &'static str;
    /// Appended to the subquery that picks deliveries to claim.
    const CLAIM_LOCK: &'static str;
    /// Run first in a write transaction about one address (its key bound as
    /// `$1`) to serialise concurrent ones: PostgreSQL takes a transaction-level
    /// advisory lock; SQLite needs nothing, as `BEGIN IMMEDIATE` serialises
    /// every writer.
    const ADDRESS_LOCK: Option<&'static str>;
}

/// A write transaction, as every domain macro begins one with
/// `self.begin_write()`. It derefs to the connection, like a transaction.
///
/// On SQLite it also holds the process's write turn. SQLite lets one writer
/// in at a time; a second connection that tries meanwhile gets SQLITE_BUSY
/// and sleeps in SQLite's busy handler (1, 2, 5 … 100 ms), which under load
/// costs far more than the writes themselves. Taking turns on an async mutex
/// first queues writers in order instead, and `BEGIN IMMEDIATE` then takes
/// SQLite's lock up front (a deferred transaction that upgrades from reading
/// to writing would fail at once when another process writes).
pub(crate) struct WriteTx<'a, DB: sqlx::Database> {
    // Declared first so that it is dropped (rolled back) before the turn ends.
    tx: sqlx::Transaction<'static, DB>,
    _turn: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl<'a, DB: sqlx::Database> WriteTx<'a, DB> {
    pub(crate) fn new(
        tx: sqlx::Transaction<'static, DB>,
        turn: Option<tokio::sync::MutexGuard<'a, ()>>,
    ) -> Self {
        WriteTx { tx, _turn: turn }
    }

    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl<DB: sqlx::Database> std::ops::Deref for WriteTx<'_, DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for WriteTx<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}

/// Runs `migrator` and returns how many migrations were new.
async fn run_migrations<DB>(
    migrator: sqlx::migrate::Migrator,
    pool: &sqlx::Pool<DB>,
) -> Result<usize, StoreError>
where
    DB: sqlx::Database,
    <DB as sqlx::Database>::Connection: sqlx::migrate::Migrate,
{
    use sqlx::migrate::Migrate;
    let mut conn = pool.acquire().await?;
    conn.ensure_migrations_table()
        .await
        .map_err(sqlx::Error::from)?;
    let before = conn
        .list_applied_migrations()
        .await
        .map_err(sqlx::Error::from)?
        .len();
    drop(conn);
    migrator.run(pool).await.map_err(sqlx::Error::from)?;
    let mut conn = pool.acquire().await?;
    let after = conn
        .list_applied_migrations()
        .await
        .map_err(sqlx::Error::from)?
        .len();
    Ok(after.saturating_sub(before))
}
