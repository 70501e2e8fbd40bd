//! The scale-out backend: PostgreSQL, shared by several necmail instances.

use std::str::FromStr;

use sqlx::Connection;
use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};

use super::{Dialect, QueueWalks, SqlStore, Store, StoreError, WriteTx};
use crate::config::{Backend, PoolOptions};
use crate::health::HealthCheck;

/// The database the shared implementations are compiled for here.
type Db = Postgres;

/// The domain's store traits, implemented for [`Db`].
#[path = "shared/mod.rs"]
mod shared;

pub type PgStore = SqlStore<Postgres>;

/// How long a connection may have been idle in the pool and still be used
/// without a ping first. sqlx pings every connection it takes back, which
/// also rolls back a transaction left open; its default, a second ping
/// before each use, was a third of a send's round trips to the server. A
/// connection idle for longer is pinged, so one the server dropped
/// meanwhile (a restart, an idle timeout) is replaced before use.
const PING_WHEN_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

impl PgStore {
    pub async fn connect(url: &str, options: &PoolOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Unavailable(format!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))
        })?;
        // "necmail" in pg_stat_activity, unless the URL names the instance
        // (`?application_name=necmail-2`), as one of several may.
        let connect = match connect.get_application_name() {
            Some(_) => connect,
            None => connect.application_name("necmail"),
        };
        Self::connect_with(connect, options).await
    }

    pub async fn connect_with(
        connect: PgConnectOptions,
        options: &PoolOptions,
    ) -> Result<Self, StoreError> {
        let target = format!(
            "{}:{}/{}",
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or("postgres")
        );
        // One direct connection first: the pool would retry a refused
        // connection until its timeout and then report only "timed out".
        let first = tokio::time::timeout(
            options.acquire_timeout,
            PgConnection::connect_with(&connect),
        )
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut));
        let pool = match first {
            Ok(conn) => {
                conn.close().await.ok();
                PgPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .test_before_acquire(false)
                    .before_acquire(|conn, meta| {
                        Box::pin(async move {
                            if meta.idle_for >= PING_WHEN_IDLE {
                                conn.ping().await?;
                            }
                            Ok(true)
                        })
                    })
                    .connect_with(connect)
                    .await
            }
            Err(e) => Err(e),
        }
        .map_err(|e| {
            tracing::debug!(error = %e, "cannot connect to PostgreSQL");
            let reason = match &e {
                sqlx::Error::Io(io) => io.to_string(),
                sqlx::Error::Database(db) => db.message().to_owned(),
                sqlx::Error::PoolTimedOut => "timed out".into(),
                other => other.to_string(),
            };
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {target}: {reason}"
            ))
        })?;
        Ok(Self {
            write_pool: pool.clone(),
            pool,
            write_turn: None,
            state_changes: tokio::sync::watch::Sender::new(0),
            queue_walks: QueueWalks::default(),
        })
    }
}

impl PgStore {
    /// Begins a write transaction; PostgreSQL's row locks need no turn.
    async fn begin_write(&self) -> Result<WriteTx<'_, Postgres>, sqlx::Error> {
        let tx = self.write_pool.begin().await?;
        Ok(WriteTx { tx, _turn: None })
    }
}

impl Dialect for Postgres {
    const ATTRIBUTE_KEYS: &'static str =
        "SELECT DISTINCT jsonb_object_keys(attributes) AS key FROM subscribers ORDER BY 1";
    const BYTE_ORDER: &'static str = " COLLATE \"C\"";
    const CLAIM_LOCK: &'static str = " FOR UPDATE SKIP LOCKED";
    /// The claim commits without waiting for the disk: a claim lost in a
    /// crash of the server leaves its deliveries queued, to be sent once,
    /// and the commit of any outcome flushes the claim before it.
    const CLAIM_AND_READ: Option<&'static str> =
        Some("no_flush AS (SELECT set_config('synchronous_commit', 'off', true))");
    const ADDRESS_LOCK: Option<&'static str> = Some("SELECT pg_advisory_xact_lock(hashtext($1))");
    const MEETINGS_LOCK: Option<&'static str> = Some("LOCK TABLE meetings IN EXCLUSIVE MODE");
    const FOLD_DELIVERY_TALLIES: Option<&'static str> = Some(
        "WITH folded AS (
             DELETE FROM delivery_tallies t
              USING (SELECT ctid FROM delivery_tallies WHERE campaign_id = $1
                        FOR UPDATE SKIP LOCKED) mine
              WHERE t.ctid = mine.ctid
             RETURNING t.state, t.n)
         INSERT INTO delivery_tallies (campaign_id, state, n)
             SELECT $1, state, SUM(n) FROM folded GROUP BY state HAVING SUM(n) <> 0",
    );
    const FOLD_SUBSCRIPTION_TALLIES: Option<&'static str> = Some(
        "WITH folded AS (
             DELETE FROM subscription_tallies t
              USING (SELECT ctid FROM subscription_tallies FOR UPDATE SKIP LOCKED) mine
              WHERE t.ctid = mine.ctid
             RETURNING t.list_id, t.status, t.n)
         INSERT INTO subscription_tallies (list_id, status, n)
             SELECT list_id, status, SUM(n) FROM folded
              GROUP BY list_id, status HAVING SUM(n) <> 0",
    );
}

#[async_trait::async_trait]
impl HealthCheck for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn migrate(&self) -> Result<usize, StoreError> {
        super::run_migrations(sqlx::migrate!("./migrations/postgres"), &self.pool).await
    }

    async fn backup(&self, _to: &std::path::Path) -> Result<(), StoreError> {
        Err(StoreError::Refused(
            "necmail backs up only SQLite; back up PostgreSQL with its own tool: \
             pg_dump --format=custom --file=necmail.dump \"$DATABASE_URL\" \
             (restore with pg_restore --dbname=… necmail.dump)"
                .into(),
        ))
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
