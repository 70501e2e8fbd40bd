//! `necmail backup FILE`: a consistent copy of the SQLite database, taken
//! while `serve` runs.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{CliError, CliResult};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The new file to write the copy to. Restore by stopping necmail and
    /// putting the copy in place of the database file (and removing its
    /// -wal and -shm files).
    file: PathBuf,
}

pub async fn run(args: BackupArgs, store: &dyn Store) -> CliResult {
    let file = args.file;
    if file.exists() {
        return Err(CliError::BadInput(format!(
            "{} already exists; name a new file",
            file.display()
        )));
    }
    // Written under another name and renamed once complete and on disk, so
    // that FILE is never a half-written copy.
    let mut partial = file.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    remove_if_there(&partial)?;
    let copied = match store.backup(&partial).await {
        Ok(()) => finish(&partial, &file),
        Err(e) => Err(e.into()),
    };
    if copied.is_err() {
        remove_if_there(&partial)?;
    }
    copied?;
    let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    println!(
        "backed up the database to {} ({bytes} bytes)",
        file.display()
    );
    Ok(())
}

/// Syncs the finished copy to disk and renames it to `file`.
fn finish(partial: &Path, file: &Path) -> CliResult {
    let failed = |e: std::io::Error| {
        CliError::Runtime(format!("cannot write the backup {}: {e}", file.display()))
    };
    std::fs::File::open(partial)
        .and_then(|f| f.sync_all())
        .map_err(failed)?;
    std::fs::rename(partial, file).map_err(failed)?;
    if let Some(folder) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(folder)
            .and_then(|f| f.sync_all())
            .map_err(failed)?;
    }
    Ok(())
}

fn remove_if_there(path: &Path) -> CliResult {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CliError::Runtime(format!(
            "cannot remove {}: {e}",
            path.display()
        ))),
        _ => Ok(()),
    }
}
