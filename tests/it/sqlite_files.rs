//! SQLite's files once necmail has exited cleanly: the write-ahead log is
//! checkpointed into the database file, so a plain copy of `necmail.db`
//! alone holds every write.

use std::path::{Path, PathBuf};

use sqlx::{AssertSqlSafe, Connection};

use crate::support::TestDb;
use crate::support::cli::run;

/// The SQLite file of `db`.
pub fn db_file(db: &TestDb) -> PathBuf {
    db.dir.path().join("necmail.db")
}

/// Asserts that `necmail.db-wal` next to `file` is empty or gone.
#[track_caller]
pub fn assert_wal_is_empty(file: &Path) {
    let wal = file.with_extension("db-wal");
    let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(size, 0, "{} holds {size} bytes", wal.display());
}

/// Copies `file` alone (no -wal, no -shm) to a new folder and counts the
/// rows of `table` in the copy.
pub async fn rows_in_a_copy(file: &Path, table: &str) -> i64 {
    let folder = tempfile::tempdir().unwrap();
    let copy = folder.path().join("copy.db");
    std::fs::copy(file, &copy).unwrap();
    let url = format!("sqlite://{}?mode=ro", copy.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let (rows,): (i64,) = sqlx::query_as(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    rows
}

/// Whether the write-ahead log was left behind depended on a race at exit,
/// so five imports in a row each get the check.
#[tokio::test]
async fn after_each_subscriber_import_a_copy_of_the_db_file_alone_holds_the_imported_rows() {
    let db = TestDb::sqlite();
    run(&db, &["list", "create", "members", "--name", "Members"]).ok();
    for batch in 1..=5 {
        let csv = db.dir.path().join(format!("batch-{batch}.csv"));
        let rows: String = (0..100)
            .map(|i| format!("member{batch}-{i}@example.org,Member {i}\n"))
            .collect();
        std::fs::write(&csv, format!("email,name\n{rows}")).unwrap();
        let imported = run(
            &db,
            &[
                "subscriber",
                "import",
                csv.to_str().unwrap(),
                "--list",
                "members",
            ],
        )
        .ok()
        .to_owned();
        assert!(imported.starts_with("imported 100,"), "{imported}");

        assert_wal_is_empty(&db_file(&db));
        let expected = 100 * batch;
        assert_eq!(rows_in_a_copy(&db_file(&db), "subscribers").await, expected);
        assert_eq!(
            rows_in_a_copy(&db_file(&db), "subscriptions").await,
            expected
        );
    }
}
