//! The embedded backend: one SQLite file in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteSynchronous};

use super::error::is_passing;
use super::{Dialect, QueueWalks, SqlStore, Store, StoreError, WriteTx};
use crate::config::{Backend, PoolOptions};
use crate::health::HealthCheck;

/// The database the shared implementations are compiled for here.
type Db = Sqlite;

/// The domain's store traits, implemented for [`Db`].
#[path = "shared/mod.rs"]
mod shared;

pub type SqliteStore = SqlStore<Sqlite>;

impl SqliteStore {
    pub async fn connect(url: &str, options: &PoolOptions) -> Result<Self, StoreError> {
        let mut connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| {
                StoreError::Unavailable(format!("DATABASE_URL is not a valid SQLite URL: {e}"))
            })?
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if !url.contains("mode=") {
            connect = connect.create_if_missing(true);
        }
        let path = connect.get_filename().display().to_string();
        let cannot_open = |e: sqlx::Error| {
            tracing::debug!(error = %e, "cannot open SQLite database");
            StoreError::Unavailable(format!(
                "cannot open the SQLite database {path}: {}; check that its folder exists and is writable",
                sqlite_reason(&e)
            ))
        };
        in_wal_mode(&connect).await.map_err(cannot_open)?;
        // sqlx pings every connection it hands back to the pool, which also
        // rolls back a transaction left open; pinging it again before each use
        // (its default) costs every write a round trip to SQLite's thread,
        // and a file cannot hang up meanwhile as a server can.
        let pool_options = || {
            SqlitePoolOptions::new()
                .test_before_acquire(false)
                .acquire_timeout(options.acquire_timeout)
        };
        let pool = pool_options()
            .max_connections(options.max_connections)
            .connect_with(connect.clone())
            .await
            .map_err(cannot_open)?;
        // The writers take turns, so one connection serves them all: see
        // the store's module documentation.
        let write_pool = pool_options()
            .max_connections(1)
            .connect_with(connect)
            .await
            .map_err(cannot_open)?;
        Ok(Self {
            pool,
            write_pool,
            write_turn: Some(tokio::sync::Mutex::new(())),
            state_changes: tokio::sync::watch::Sender::new(0),
            queue_walks: QueueWalks::default(),
        })
    }

    /// Begins a write transaction in this process's turn, holding SQLite's
    /// write lock from the start, on the writers' own connection.
    async fn begin_write(&self) -> Result<WriteTx<'_, Sqlite>, sqlx::Error> {
        let turn = self.turn().await;
        let tx = self.write_pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    /// `PRAGMA wal_checkpoint(TRUNCATE)` without waiting for other
    /// connections; true when the whole log was copied and emptied.
    async fn checkpoint(&self) -> Result<bool, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        sqlx::query("PRAGMA busy_timeout = 0")
            .execute(&mut *conn)
            .await?;
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut *conn)
            .await?;
        Ok(busy == 0)
    }
}

/// Puts the database in WAL mode, once: WAL is a property of the file, and
/// a connection that asks for it finds it set. Asking on every new pooled
/// connection (sqlx's `journal_mode` option) takes a lock that SQLite's busy
/// timeout does not wait for, so a command opening the database while the
/// daemon checkpoints failed with `database is locked`. Switching a new file
/// to WAL can meet the same lock, so it is tried for up to 5 s.
async fn in_wal_mode(options: &SqliteConnectOptions) -> Result<(), sqlx::Error> {
    use sqlx::{ConnectOptions, Connection};
    let mut conn = options.connect().await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await?;
    if !mode.eq_ignore_ascii_case("wal") {
        let mut tries = 0;
        loop {
            match sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&mut conn)
                .await
            {
                Err(sqlx::Error::Database(e)) if is_passing(e.as_ref()) && tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                done => {
                    done?;
                    break;
                }
            }
        }
    }
    conn.close().await
}

fn sqlite_reason(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.message().to_owned(),
        other => other.to_string(),
    }
}

impl Dialect for Sqlite {
    const ATTRIBUTE_KEYS: &'static str =
        "SELECT DISTINCT j.key AS key FROM subscribers s, json_each(s.attributes) j ORDER BY 1";
    const BYTE_ORDER: &'static str = "";
    const CLAIM_LOCK: &'static str = "";
    const ADDRESS_LOCK: Option<&'static str> = None;
    const MEETINGS_LOCK: Option<&'static str> = None;
    const FOLD_DELIVERY_TALLIES: Option<&'static str> = None;
    const FOLD_SUBSCRIPTION_TALLIES: Option<&'static str> = None;
    const CLAIM_AND_READ: Option<&'static str> = None;
}

#[async_trait::async_trait]
impl HealthCheck for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn migrate(&self) -> Result<usize, StoreError> {
        super::run_migrations(sqlx::migrate!("./migrations/sqlite"), &self.pool).await
    }

    /// `VACUUM INTO` reads one snapshot (WAL lets writers go on meanwhile)
    /// and writes it out as a compact database file of its own.
    #[tracing::instrument(skip_all, fields(to = %to.display()))]
    async fn backup(&self, to: &std::path::Path) -> Result<(), StoreError> {
        let to = to
            .to_str()
            .ok_or_else(|| StoreError::Refused(format!("{} is not a UTF-8 path", to.display())))?;
        sqlx::query("VACUUM INTO ?")
            .bind(to)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Also checkpoints the write-ahead log into the database file and
    /// empties it, so that after a clean exit the `.db` file alone holds
    /// every write and can be copied. When another process is reading or
    /// writing at that moment the checkpoint does not wait for it: that
    /// process checkpoints when it closes in turn.
    #[tracing::instrument(level = "debug", skip_all)]
    async fn close(&self) {
        match self.checkpoint().await {
            Ok(true) => tracing::debug!("write-ahead log checkpointed"),
            Ok(false) => tracing::info!(
                "another process is using the database: the write-ahead log is left for it to checkpoint"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot checkpoint the write-ahead log"),
        }
        self.write_pool.close().await;
        self.pool.close().await;
    }
}
