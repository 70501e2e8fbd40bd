//! Editing text in the admin's editor: `$EDITOR`, else `$VISUAL`, else `vi`.
//!
//! The text goes to a new file in the temporary folder, readable only by
//! its owner. The editor is run by `sh`, so that a variable such as
//! `code --wait` may carry arguments, and necmail waits for it to exit.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// Why the editor gave nothing back.
#[derive(Debug, thiserror::Error)]
pub enum EditorError {
    #[error("cannot write a file to edit in {}: {source}", folder.display())]
    Write { folder: PathBuf, source: io::Error },
    #[error("cannot start the editor ({editor}): {source}")]
    Start { editor: String, source: io::Error },
    #[error("the editor ({editor}) failed: {status}")]
    Failed { editor: String, status: ExitStatus },
    #[error("cannot read the edited file {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
}

impl EditorError {
    /// True for the admin's editor failing, as opposed to the temporary
    /// folder refusing a new file.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, EditorError::Write { .. })
    }
}

/// A file that was edited: removed when dropped, unless kept.
pub struct Edited {
    path: PathBuf,
    /// What the editor left in it.
    pub text: Vec<u8>,
    kept: bool,
}

impl Edited {
    /// Keeps the file, so that the admin's editing is not lost; returns
    /// where it is.
    pub fn keep(mut self) -> PathBuf {
        self.kept = true;
        self.path.clone()
    }
}

impl Drop for Edited {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `text` to a new file `NAME-….md` in the temporary folder, opens
/// it in the editor and, once the editor exits successfully, returns what
/// it left in the file.
pub fn edit(name: &str, text: &str) -> Result<Edited, EditorError> {
    let folder = std::env::temp_dir();
    let write_error = |source| EditorError::Write {
        folder: folder.clone(),
        source,
    };
    let (path, mut file) = create(&folder, name).map_err(write_error)?;
    let mut edited = Edited {
        path,
        text: Vec::new(),
        kept: false,
    };
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(write_error)?;
    drop(file);
    let editor = editor();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$@\""))
        .arg(&editor)
        .arg(&edited.path)
        .status()
        .map_err(|source| EditorError::Start {
            editor: editor.clone(),
            source,
        })?;
    if !status.success() {
        return Err(EditorError::Failed { editor, status });
    }
    edited.text = fs::read(&edited.path).map_err(|source| EditorError::Read {
        path: edited.path.clone(),
        source,
    })?;
    Ok(edited)
}

/// `$EDITOR`, else `$VISUAL`, else `vi`; a variable set empty counts as unset.
fn editor() -> String {
    ["EDITOR", "VISUAL"]
        .into_iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned())
}

/// A new file `NAME-PID-N.md` in `folder`, with the first N free.
fn create(folder: &Path, name: &str) -> io::Result<(PathBuf, File)> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let pid = std::process::id();
    for n in 0..100 {
        let path = folder.join(format!("{name}-{pid}-{n}.md"));
        match options.open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{name}-{pid}-0.md to -99.md all exist"),
    ))
}
