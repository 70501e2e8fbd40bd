//! Writing results: aligned tables for people, JSON arrays for programs.

use std::io::{self, BufWriter, Stdout, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Buffered stdout. Write errors (a closed pipe) surface as `io::Error`.
pub fn stdout() -> BufWriter<Stdout> {
    BufWriter::new(io::stdout())
}

/// Streams a JSON array one element at a time, in constant memory.
pub struct JsonArray<W: Write> {
    out: W,
    empty: bool,
}

impl<W: Write> JsonArray<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(b"[")?;
        Ok(Self { out, empty: true })
    }

    pub fn push<T: Serialize>(&mut self, item: &T) -> io::Result<()> {
        self.out
            .write_all(if self.empty { b"\n" } else { b",\n" })?;
        self.empty = false;
        serde_json::to_writer(&mut self.out, item).map_err(io::Error::other)
    }

    pub fn finish(mut self) -> io::Result<()> {
        self.out
            .write_all(if self.empty { b"]\n" } else { b"\n]\n" })?;
        self.out.flush()
    }
}

/// Writes `items` as one JSON array.
pub fn json<T: Serialize>(items: &[T]) -> io::Result<()> {
    let mut array = JsonArray::new(stdout())?;
    for item in items {
        array.push(item)?;
    }
    array.finish()
}

/// Writes rows under headers, each column as wide as its widest cell.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = stdout();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        let mut text = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < widths.len() {
                text.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(&mut headers.iter().copied())?;
    for row in rows {
        line(&mut row.iter().map(String::as_str))?;
    }
    out.flush()
}

/// A failure to write CSV: a closed pipe is the reader leaving, as for
/// any output; anything else is a runtime failure.
pub fn csv_error(e: csv::Error) -> super::CliError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io.into(),
        other => super::CliError::Runtime(format!("writing CSV failed: {other:?}")),
    }
}

/// A time as people here read it: minutes, in NECMAIL_TIMEZONE.
pub fn local_time(at: DateTime<Utc>, zone: chrono_tz::Tz) -> String {
    at.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string()
}
