//! The one-click spool: RFC 8058 unsubscribes the database could not take
//! in time (locked, down), kept on disk so that none is lost.
//!
//! A request is appended as one line, `SUBSCRIBER LIST UNIX_SECONDS`, to
//! `one-click.spool` in NECMAIL_SPOOL_DIR and synced to disk before the
//! one-click is answered 200. [`Spool::run`] applies the file at start-up,
//! soon after each append, and every minute; applying is idempotent
//! (unsubscribing twice changes nothing), so a crash halfway through only
//! means applying some lines again. To apply, the file is first renamed to
//! `one-click.replaying`, so that appends go on into a fresh file meanwhile;
//! the renamed file is deleted once every line in it is written.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify, watch};

use super::Shared;
use super::unsubscribe::{ONE_CLICK_REASON, recorded_leave};
use crate::error::StoreError;

const APPENDING: &str = "one-click.spool";
const REPLAYING: &str = "one-click.replaying";
/// One-clicks applied per statement.
const BATCH: usize = 256;
/// How often the spool is looked at when nothing wakes the replayer.
const CHECK_EVERY: Duration = Duration::from_secs(60);
/// The first and the longest pause after the database refused a replay.
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Why the spool could not be written or applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpoolError {
    #[error("the one-click spool in {dir} cannot be used: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) struct Spool {
    dir: PathBuf,
    /// Appends take turns, and the replayer takes one to rename the file.
    turn: Mutex<()>,
    /// Wakes the replayer after an append.
    appended: Notify,
}

impl Spool {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Spool {
            dir,
            turn: Mutex::new(()),
            appended: Notify::new(),
        }
    }

    fn io_error(&self, source: std::io::Error) -> SpoolError {
        SpoolError::Io {
            dir: self.dir.clone(),
            source,
        }
    }

    /// Appends the unsubscribe of `subscriber_id` from `list_ids`, a line
    /// each, and returns once they are on disk.
    #[tracing::instrument(name = "spool_one_click", skip(self))]
    pub(crate) async fn keep(
        &self,
        subscriber_id: i64,
        list_ids: &[i64],
    ) -> Result<(), SpoolError> {
        let now = chrono::Utc::now().timestamp();
        let line: String = list_ids
            .iter()
            .map(|list_id| format!("{subscriber_id} {list_id} {now}\n"))
            .collect();
        let dir = self.dir.clone();
        let turn = self.turn.lock().await;
        tokio::task::spawn_blocking(move || append_synced(&dir, line.as_bytes()))
            .await
            .map_err(|e| self.io_error(std::io::Error::other(e)))?
            .map_err(|e| self.io_error(e))?;
        drop(turn);
        self.appended.notify_one();
        Ok(())
    }

    /// Applies every spooled one-click, recording each leave as a one-click
    /// applied at once records it; how many there were.
    #[tracing::instrument(name = "replay_one_click_spool", skip_all)]
    async fn replay(&self, state: &Shared) -> Result<usize, SpoolError> {
        let replaying = self.dir.join(REPLAYING);
        if !tokio::fs::try_exists(&replaying)
            .await
            .map_err(|e| self.io_error(e))?
        {
            let _turn = self.turn.lock().await;
            match tokio::fs::rename(self.dir.join(APPENDING), &replaying).await {
                Ok(()) => sync_dir(&self.dir).map_err(|e| self.io_error(e))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(self.io_error(e)),
            }
        }
        let text = tokio::fs::read_to_string(&replaying)
            .await
            .map_err(|e| self.io_error(e))?;
        let targets: Vec<(i64, i64)> = text.lines().filter_map(parse_line).collect();
        for batch in targets.chunks(BATCH) {
            let exists = state.people.unsubscribe_from_lists(batch).await?;
            for (&(subscriber_id, list_id), exists) in batch.iter().zip(exists) {
                if exists {
                    recorded_leave(state, subscriber_id, Some(&[list_id]), ONE_CLICK_REASON).await;
                }
            }
        }
        tokio::fs::remove_file(&replaying)
            .await
            .map_err(|e| self.io_error(e))?;
        Ok(targets.len())
    }

    /// Applies the spool now, after each append, and every minute, until
    /// `stop`; while the database refuses, retries with a growing pause.
    pub(crate) async fn run(self: Arc<Self>, state: Shared, mut stop: watch::Receiver<bool>) {
        let mut retry = RETRY_MIN;
        loop {
            let wait = match self.replay(&state).await {
                Ok(0) => {
                    retry = RETRY_MIN;
                    Some(CHECK_EVERY)
                }
                Ok(applied) => {
                    tracing::info!(applied, "one-click unsubscribes applied from the spool");
                    retry = RETRY_MIN;
                    None
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "the one-click spool cannot be applied yet; retrying",
                    );
                    let wait = retry;
                    retry = (retry * 2).min(RETRY_MAX);
                    Some(wait)
                }
            };
            let Some(wait) = wait else { continue };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.appended.notified() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }
}

/// The subscriber and list of a spooled line; `None` for a line torn by a
/// crash while it was written (it was never answered 200).
fn parse_line(line: &str) -> Option<(i64, i64)> {
    let mut fields = line.split_ascii_whitespace();
    let subscriber = fields.next()?.parse().ok()?;
    let list = fields.next()?.parse().ok()?;
    fields.next()?;
    fields.next().is_none().then_some((subscriber, list))
}

/// Appends `line` to the spool file in `dir`, creating both as needed, and
/// syncs it (and, for a new file, the folder's entry) to disk. A line torn
/// by a crash is ended first, so that it cannot run into this one.
fn append_synced(dir: &Path, line: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(APPENDING);
    let new = !path.exists();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&path)?;
    let len = file.metadata()?.len();
    let mut last = [b'\n'];
    if len > 0 {
        file.read_exact_at(&mut last, len - 1)?;
    }
    if last != [b'\n'] {
        file.write_all(b"\n")?;
    }
    file.write_all(line)?;
    file.sync_data()?;
    if new {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Makes a folder's entries (a new or renamed file) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_torn_by_a_crash_does_not_run_into_the_next() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(APPENDING), "1").unwrap();
        append_synced(dir.path(), b"2 3 1760000000\n").unwrap();
        let text = std::fs::read_to_string(dir.path().join(APPENDING)).unwrap();
        let lines: Vec<_> = text.lines().filter_map(parse_line).collect();
        assert_eq!(lines, [(2, 3)]);
    }

    #[test]
    fn a_spooled_line_reads_back_and_a_torn_one_is_skipped() {
        assert_eq!(parse_line("12 3 1760000000"), Some((12, 3)));
        assert_eq!(parse_line("12 3"), None, "torn before its end");
        assert_eq!(parse_line("12 x 1760000000"), None);
        assert_eq!(
            parse_line("12 34 5 1760000000"),
            None,
            "two lines run together"
        );
    }
}
