//! Test helpers: a fresh database per test on each backend, and the real
//! binary run against it.

pub mod app;
pub mod cli;
pub mod dkim;
pub mod http;
pub mod imap;
pub mod smtp;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use necmail::config::PoolOptions;
use necmail::store::Store;
use sqlx::{AssertSqlSafe, Connection};
use tempfile::TempDir;
use tokio_rustls::rustls;

/// A client for the servers under test. reqwest is built without a crypto
/// provider of its own, so it is given one (ring), with no roots: the tests
/// speak plain HTTP.
pub fn http_client() -> reqwest::ClientBuilder {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring has the default TLS versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder().tls_backend_preconfigured(tls)
}

/// The variable that points the PostgreSQL half of the suite at a server.
pub const POSTGRES_VAR: &str = "NECMAIL_TEST_POSTGRES_URL";

/// A database of its own for one test: a SQLite file in a temporary folder,
/// or a fresh schema on the PostgreSQL server.
pub struct TestDb {
    pub url: String,
    pub dir: TempDir,
    schema: Option<(String, String)>,
}

impl TestDb {
    /// An empty database file (which SQLite takes as an empty database):
    /// necmail's commands other than `serve`, `migrate` and `list create`
    /// refuse to create one.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let file = dir.path().join("necmail.db");
        std::fs::File::create(&file).expect("an empty database file");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        TestDb {
            url,
            dir,
            schema: None,
        }
    }

    /// A fresh schema on the server NECMAIL_TEST_POSTGRES_URL names. The
    /// tests that call it are `#[ignore = "needs PostgreSQL …"]`, which
    /// `scripts/test` runs when the variable is set; run without it, they
    /// fail rather than pass without testing anything.
    pub async fn postgres() -> TestDb {
        let admin_url = std::env::var(POSTGRES_VAR)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| panic!("{POSTGRES_VAR} must point at a PostgreSQL server"));
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!(
            "t{}_{}_{}",
            std::process::id(),
            nanos,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect to the test PostgreSQL");
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .expect("create a test schema");
        conn.close().await.ok();
        let sep = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{sep}options[search_path]={schema}");
        TestDb {
            url,
            dir: tempfile::tempdir().expect("a temporary folder"),
            schema: Some((admin_url, schema)),
        }
    }

    /// A fresh database of its own on the same backend as this one.
    pub async fn another(&self) -> TestDb {
        match self.schema {
            Some(_) => TestDb::postgres().await,
            None => TestDb::sqlite(),
        }
    }

    pub async fn store(&self) -> Arc<dyn Store> {
        necmail::store::connect(&self.url, &PoolOptions::default())
            .await
            .expect("open the test database")
    }

    /// Runs one SQL statement on the database behind the store's back, as
    /// a damaged database or an operator's hand would.
    pub async fn execute(&self, sql: &str) {
        if self.schema.is_some() {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query(AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query(AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }

    /// Runs a query of (key, count) rows behind the store's back and
    /// returns them by key, as a check of what the store says.
    pub async fn counts(&self, sql: &str) -> BTreeMap<String, i64> {
        if self.schema.is_some() {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(sql))
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .into_iter()
                .collect()
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(sql))
                .fetch_all(&mut conn)
                .await
                .unwrap()
                .into_iter()
                .collect()
        }
    }

    /// Takes the lock every write of a delivery needs and holds it until
    /// [`Blocked::release`], as a long transaction elsewhere would: SQLite's
    /// write lock, or on PostgreSQL an exclusive lock on the deliveries.
    /// Reads go on.
    pub async fn block_writes(&self) -> Blocked {
        if self.schema.is_some() {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            for sql in ["BEGIN", "LOCK TABLE deliveries IN EXCLUSIVE MODE"] {
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
            Blocked::Postgres(conn)
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .unwrap();
            Blocked::Sqlite(conn)
        }
    }

    /// Drops the PostgreSQL schema of a test that passed.
    pub async fn finish(self) {
        if let Some((admin_url, schema)) = &self.schema {
            let mut conn = sqlx::PgConnection::connect(admin_url)
                .await
                .expect("connect to the test PostgreSQL");
            sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut conn)
                .await
                .expect("drop the schema");
        }
    }
}

/// A connection holding a lock that blocks writes: see [`TestDb::block_writes`].
pub enum Blocked {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Blocked {
    pub async fn release(self) {
        match self {
            Blocked::Sqlite(mut conn) => {
                sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
                conn.close().await.ok();
            }
            Blocked::Postgres(mut conn) => {
                sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
                conn.close().await.ok();
            }
        }
    }
}

/// Defines each test twice, `on_sqlite` and `on_postgres`, with `$db` a
/// fresh [`TestDb`], on two worker threads: a test that runs the binary and waits for it
/// (blocking its own thread) must not stop the application it spawned in
/// process, whose tasks may hold a write transaction the binary waits for.
macro_rules! on_both_backends {
    ($(async fn $name:ident($db:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($db: &$crate::support::TestDb) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let db = $crate::support::TestDb::sqlite();
                body(&db).await;
                db.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs PostgreSQL: scripts/test runs it when NECMAIL_TEST_POSTGRES_URL is set"]
            async fn on_postgres() {
                let db = $crate::support::TestDb::postgres().await;
                body(&db).await;
                db.finish().await;
            }
        }
    )*};
}
pub(crate) use on_both_backends;

/// [`on_both_backends`] for tests that need an outside tool too: both are
/// `#[ignore]`d, with the reasons given (the tool's, then the tool's and
/// PostgreSQL's), and `scripts/test` runs them when what they need is here.
macro_rules! on_both_backends_needing {
    ($sqlite:literal, $postgres:literal; $(async fn $name:ident($db:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($db: &$crate::support::TestDb) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = $sqlite]
            async fn on_sqlite() {
                let db = $crate::support::TestDb::sqlite();
                body(&db).await;
                db.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = $postgres]
            async fn on_postgres() {
                let db = $crate::support::TestDb::postgres().await;
                body(&db).await;
                db.finish().await;
            }
        }
    )*};
}
pub(crate) use on_both_backends_needing;
