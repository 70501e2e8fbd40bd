//! Storage: the domain modules' store traits, implemented for SQLite and
//! PostgreSQL. Every SQL statement in necmail is in this module.
//!
//! # How the SQL is shared
//! [`SqlStore<DB>`] holds a pool of either database. Its implementation of
//! each domain's trait is written once, in a file under `shared/`, against
//! the type name `Db`; `sqlite.rs` and `postgres.rs` each compile the
//! `shared` module as a module of their own (`#[path = "shared/mod.rs"]`)
//! with `Db` set to their database. So the statements and the Rust around
//! them are written once, each compilation is ordinary code checked by rustc,
//! clippy and rustfmt against a concrete database, and a backend that forgot
//! a trait fails to compile at the `Store` impl that needs it.
//!
//! The alternatives were weighed. A generic `impl<DB: Database> … for
//! SqlStore<DB>` must restate sqlx's bounds (an `Executor` for every
//! connection lifetime, `Type`, `Encode` and `Decode` for every column type,
//! `FromRow` for every row) on every function: Rust does not imply where
//! clauses from a trait that collects them, so one `Backend` trait cannot
//! carry them. Two hand-written copies per trait would drift apart. sqlx's
//! `Any` driver cannot decode timestamps, nor booleans on SQLite.
//!
//! Where the dialects differ, the shared code asks `Dialect`, which each
//! backend implements for its database: the differences are named there and
//! nowhere else.
//!
//! # Writes take turns on SQLite
//! SQLite lets one writer in at a time; a second connection that tries
//! meanwhile gets `SQLITE_BUSY` and sleeps in SQLite's busy handler (1, 2,
//! 5 … 100 ms), which under load costs far more than the writes themselves.
//! So every write waits for this process's write turn, an async mutex, first:
//! a transaction through each backend's `begin_write` (which also takes SQLite's
//! lock up front with `BEGIN IMMEDIATE`, as a deferred transaction that
//! upgrades from reading to writing would fail at once when another process
//! writes), a single statement through `turn`, and a claim, whose
//! statements each commit by themselves, through `begin_claim`. Reads never
//! wait: WAL lets them run beside the writer. PostgreSQL's row locks need no
//! turn, so there both are free.
//!
//! On SQLite `begin_write` and `begin_claim` also take their connection from
//! a pool of its own, of one connection: a connection whose cache holds
//! pages another connection has since written must read them again, so a
//! write on one of the readers' connections read most of the pages it
//! touched from the file again (25.5 pages a hard bounce, against 0.1 on
//! the writers' own). On PostgreSQL it is the same pool as the reads.

mod error;
#[expect(
    clippy::duplicate_mod,
    reason = "both backends compile the files under shared/, by design: see above"
)]
pub mod postgres;
pub mod sqlite;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

pub use crate::error::StoreError;

use crate::admin::AdminStore;
use crate::campaigns::{CampaignStore, TotalsStore};
use crate::config::{Backend, PoolOptions};
use crate::feedback::FeedbackStore;
use crate::health::HealthCheck;
use crate::lists::ListStore;
use crate::meetings::MeetingStore;
use crate::reports::{ArchiveStore, ReportStore, SourceStore};
use crate::schedule::ScheduleStore;
use crate::subscribers::{ImportJobStore, SelfServiceStore, SubscriberStore};

/// Everything necmail keeps, behind one object: what the daemon's wiring
/// holds. Each part of necmail takes only the traits it uses.
#[async_trait::async_trait]
pub trait Store:
    ListStore
    + SubscriberStore
    + ImportJobStore
    + SelfServiceStore
    + ReportStore
    + SourceStore
    + ArchiveStore
    + CampaignStore
    + TotalsStore
    + MeetingStore
    + ScheduleStore
    + AdminStore
    + FeedbackStore
    + HealthCheck
    + Send
    + Sync
{
    /// Which backend this is, for logs and `config check`.
    fn backend(&self) -> Backend;
    /// Applies the embedded migrations; returns how many were new.
    async fn migrate(&self) -> Result<usize, StoreError>;
    /// Writes a consistent copy of the whole database to `to`, a file that
    /// does not exist yet, while others go on reading and writing. Refused on
    /// PostgreSQL, whose own tool does it.
    async fn backup(&self, to: &std::path::Path) -> Result<(), StoreError>;
    /// Waits for open connections to finish and closes them.
    async fn close(&self);
}

/// A store on SQLite or PostgreSQL: see the module documentation.
pub struct SqlStore<DB: sqlx::Database> {
    pool: sqlx::Pool<DB>,
    /// Where `begin_write` takes its connection: a pool of one connection on
    /// SQLite, `pool` on PostgreSQL (see the module documentation).
    write_pool: sqlx::Pool<DB>,
    /// Writers take turns here first on SQLite; `None` on PostgreSQL.
    write_turn: Option<tokio::sync::Mutex<()>>,
    /// Counts the changes of a campaign's state made through this store:
    /// see [`CampaignStore::state_changes`].
    state_changes: tokio::sync::watch::Sender<u64>,
    /// How far each of this process's workers has walked each campaign's queue.
    queue_walks: QueueWalks,
}

impl<DB: sqlx::Database> SqlStore<DB> {
    /// Waits for this process's write turn, for a write of one statement.
    async fn turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.write_turn {
            Some(turn) => Some(turn.lock().await),
            None => None,
        }
    }

    /// A claim's connection, the writers' own, in this process's write
    /// turn, on which each statement commits by itself: a claim is one
    /// statement that claims and reads what its messages need, so one round
    /// trip to the server or to SQLite's thread, with no `BEGIN` or
    /// `COMMIT`. When a later statement of a claim fails, what the earlier
    /// ones took is claimed and goes to the workers.
    async fn begin_claim(&self) -> Result<Autocommit<'_, DB>, sqlx::Error> {
        let turn = self.turn().await;
        let conn = self.write_pool.acquire().await?;
        Ok(Autocommit { conn, _turn: turn })
    }
}

/// A pooled connection whose statements each commit by themselves, holding
/// the write turn on SQLite. It derefs to the connection.
struct Autocommit<'a, DB: sqlx::Database> {
    // Declared first so that it goes back to the pool before the turn ends.
    conn: sqlx::pool::PoolConnection<DB>,
    _turn: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl<DB: sqlx::Database> std::ops::Deref for Autocommit<'_, DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.conn
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for Autocommit<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }
}

/// How far a worker has walked a campaign's queue: the queued deliveries it
/// has yet to look at have ids in `after + 1 ..= last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct QueueWalk {
    after: i64,
    last: i64,
}

impl QueueWalk {
    fn is_over(&self) -> bool {
        self.after >= self.last
    }
}

/// Where each worker's claims stopped in each campaign's queue, so that the
/// next claim starts there and never reads again the rows earlier claims
/// took (which PostgreSQL keeps in its indexes as dead entries until a
/// vacuum). Bounded; a walk forgotten costs one look for the queue's ends.
#[derive(Debug, Default)]
struct QueueWalks(std::sync::Mutex<HashMap<(i64, String), QueueWalk>>);

impl QueueWalks {
    /// How many walks are remembered: a process sends few campaigns at once.
    const BOUND: usize = 64;

    fn get(&self, campaign: i64, worker: &str) -> Option<QueueWalk> {
        let walks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        walks.get(&(campaign, worker.to_owned())).copied()
    }

    fn put(&self, campaign: i64, worker: &str, walk: QueueWalk) {
        let mut walks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if walks.len() >= Self::BOUND && !walks.contains_key(&(campaign, worker.to_owned())) {
            walks.clear();
        }
        walks.insert((campaign, worker.to_owned()), walk);
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

/// How many rows a reader lets a key's tallies (migration 0021) grow to
/// before it folds them ([`Dialect::FOLD_DELIVERY_TALLIES`]): a count reads
/// at most this many, and a fold rewrites about this many.
const TALLY_ROWS_BEFORE_FOLD: i64 = 64;

/// The SQL that differs between the backends, implemented for each
/// database type.
trait Dialect {
    /// Every attribute key in use, one row each, column `key`.
    const ATTRIBUTE_KEYS: &'static str;
    /// Appended to a text column to compare it byte by byte, as the
    /// indexes of a prefix search do (migration 0015).
    const BYTE_ORDER: &'static str;
    /// Appended to the subquery that picks deliveries to claim.
    const CLAIM_LOCK: &'static str;
    /// The first entry, named `no_flush`, of the `WITH` of a claim, whose
    /// next entry is the claim's `UPDATE … RETURNING`, joined to the tables
    /// that give what its messages need: PostgreSQL's lets that statement
    /// commit without waiting for the disk. `None` on SQLite, which takes no
    /// `UPDATE` in a `WITH`: there the `UPDATE`'s own `RETURNING` reads
    /// through subqueries. Either way a claim is one statement.
    const CLAIM_AND_READ: Option<&'static str>;
    /// Run first in a write transaction about one address (its key bound as
    /// `$1`) to serialise concurrent ones: PostgreSQL takes a transaction-level
    /// advisory lock; SQLite needs nothing, as `BEGIN IMMEDIATE` serialises
    /// every writer.
    const ADDRESS_LOCK: Option<&'static str>;
    /// Run first in a transaction that links reports to meetings, so that
    /// two at once do not race for a report: PostgreSQL locks the meetings
    /// against other writers; SQLite needs nothing, as above.
    const MEETINGS_LOCK: Option<&'static str>;
    /// Folds campaign `$1`'s delivery tallies (migration 0021) into one row
    /// per state, taking only rows no one else is folding: PostgreSQL's
    /// triggers append rows; `None` on SQLite, whose triggers keep one row
    /// per state.
    const FOLD_DELIVERY_TALLIES: Option<&'static str>;
    /// Folds every list's subscription tallies into one row per list and
    /// status, in the same way.
    const FOLD_SUBSCRIPTION_TALLIES: Option<&'static str>;
}

/// A write transaction that, on SQLite, also holds the process's write turn
/// (see the module documentation). It derefs to the connection, like a
/// transaction.
struct WriteTx<'a, DB: sqlx::Database> {
    // Declared first so that it is dropped (rolled back) before the turn ends.
    tx: sqlx::Transaction<'static, DB>,
    _turn: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl<DB: sqlx::Database> WriteTx<'_, DB> {
    async fn commit(self) -> Result<(), sqlx::Error> {
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
    let table = &*migrator.table_name;
    conn.ensure_migrations_table(table)
        .await
        .map_err(sqlx::Error::from)?;
    let before = conn
        .list_applied_migrations(table)
        .await
        .map_err(sqlx::Error::from)?
        .len();
    drop(conn);
    migrator.run(pool).await.map_err(sqlx::Error::from)?;
    let mut conn = pool.acquire().await?;
    let after = conn
        .list_applied_migrations(table)
        .await
        .map_err(sqlx::Error::from)?
        .len();
    Ok(after.saturating_sub(before))
}
