//! CSV import: streams a file of any size in constant memory, batch by batch.
//!
//! A blocking thread parses the CSV into batches of [`BATCH_ROWS`] rows while
//! the async side writes the previous batch, so parsing and writing overlap.
//! A bad row never stops an import: it is counted and reported with its line.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;

use serde::Serialize;
use tokio::sync::mpsc;

use super::SubscriberStore;
use super::{
    AdminChannel, Attributes, Consent, SubscriberEmail, SubscriberName, SubscriptionStatus,
    initial_status, normalise_key, normalise_value, spreadsheet,
};
use crate::error::StoreError;
use crate::lists::{List, OptIn};

/// Rows per transaction.
pub const BATCH_ROWS: usize = 2000;
/// The most attribute columns (besides email and name) one file may have.
pub const MAX_ATTRIBUTE_COLUMNS: usize = 50;

/// Why a CSV import stopped: a file that cannot be read as CSV, or a failure.
#[derive(Debug, thiserror::Error)]
pub enum CsvImportError {
    /// The file as a whole cannot be imported; nothing was written.
    #[error("{0}")]
    BadFile(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading the CSV failed: {0}")]
    Io(#[from] std::io::Error),
}

/// One parsed, valid row.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: u64,
    pub email: SubscriberEmail,
    pub name: Option<SubscriberName>,
    pub attributes: Attributes,
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub line: u64,
    pub email: String,
    pub reason: String,
    /// The rows of the file this stands for: more than one when a quote
    /// left open swallowed the rows after it.
    pub rows: u64,
}

/// The rejected rows of an import as CSV (line, email, reason), each cell
/// safe from spreadsheets: the rejects file.
pub struct RejectsFile<W: std::io::Write> {
    out: csv::Writer<W>,
}

impl<W: std::io::Write> RejectsFile<W> {
    /// Writes the header row to `out`.
    pub fn new(out: W) -> Result<Self, csv::Error> {
        let mut out = csv::Writer::from_writer(out);
        out.write_record(["line", "email", "reason"])?;
        Ok(RejectsFile { out })
    }

    pub fn write(&mut self, reject: &Reject) -> Result<(), csv::Error> {
        let line = reject.line.to_string();
        self.out.write_record([
            line.as_str(),
            &spreadsheet::neutralise(&reject.email),
            &spreadsheet::neutralise(&reject.reason),
        ])
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// What one batch asks the store to do.
#[derive(Debug, Clone)]
pub struct ImportBatch {
    pub rows: Vec<ImportRow>,
    /// The target lists: id and opt-in policy.
    pub lists: Vec<(i64, OptIn)>,
    pub confirmed: bool,
    pub consent: Consent,
    /// For a recorded import: how far its row advances in the batch's
    /// transaction, so that a restart resumes after the last batch written.
    pub job: Option<BatchProgress>,
}

/// How a batch advances a recorded import ([`ImportJob`]).
#[derive(Debug, Clone)]
pub struct BatchProgress {
    pub token: String,
    /// The offset in the input that the batch's rows reach.
    pub bytes: u64,
    /// The rows the batch rejected, counted beside what the store counts.
    pub rejected: u64,
}

/// Where a recorded import's committed batches reach: the offset in its
/// input (its CRLF folded into LF, as the importer reads it) and the counts.
#[derive(Debug, Clone, Default)]
pub struct ImportCheckpoint {
    pub token: String,
    pub bytes: u64,
    pub counts: ImportCounts,
}

string_enum! {
    /// Where a recorded import stands: `Failed` stopped before the end, and
    /// the job's error says why.
    ImportState { Running = "running", Done = "done", Failed = "failed" }
}

/// An import of a spooled upload, recorded so that it survives a restart.
#[derive(Debug, Clone)]
pub struct ImportJob {
    pub token: String,
    pub state: ImportState,
    /// The target lists' slugs.
    pub lists: Vec<String>,
    /// Whether the admin asserted consent.
    pub confirmed: bool,
    /// Who started it: an admin account's name, and where from.
    pub actor: String,
    pub actor_ip: Option<String>,
    /// The process that runs it.
    pub worker: String,
    pub upload: String,
    pub rejects: String,
    /// The upload's size in bytes.
    pub size: u64,
    /// Where the committed batches reach.
    pub bytes: u64,
    pub counts: ImportCounts,
    pub error: Option<String>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl ImportJob {
    pub fn checkpoint(&self) -> ImportCheckpoint {
        ImportCheckpoint {
            token: self.token.clone(),
            bytes: self.bytes,
            counts: self.counts,
        }
    }
}

/// Tallies of an import, one per row read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    /// Rows that created a subscriber.
    pub imported: u64,
    /// Rows that changed an existing subscriber or their subscriptions.
    pub updated: u64,
    /// Rows that changed nothing.
    pub unchanged: u64,
    /// Rows whose address is suppressed.
    pub suppressed: u64,
    pub rejected: u64,
    /// Of the rows imported, updated or unchanged, the addresses (each once
    /// a batch) now unconfirmed on a target list: they get nothing there
    /// until they confirm. Not a tally of rows like the others.
    pub unconfirmed: u64,
}

impl ImportCounts {
    pub fn rows(&self) -> u64 {
        self.imported + self.updated + self.unchanged + self.suppressed + self.rejected
    }

    fn add(&mut self, other: ImportCounts) {
        self.imported += other.imported;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.suppressed += other.suppressed;
        self.rejected += other.rejected;
        self.unconfirmed += other.unconfirmed;
    }
}

impl std::fmt::Display for ImportCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "imported {}, updated {}, skipped {} suppressed, rejected {}, unchanged {}",
            self.imported, self.updated, self.suppressed, self.rejected, self.unchanged
        )
    }
}

/// A subscriber as stored before the batch.
#[derive(Debug, Clone)]
pub(crate) struct Existing {
    pub id: i64,
    pub name: Option<String>,
    pub attributes: Attributes,
}

/// A subscriber row to insert or update.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Planned {
    pub key: String,
    pub hash: String,
    pub email: SubscriberEmail,
    pub name: Option<String>,
    pub attributes: Attributes,
}

/// The writes one batch needs, worked out from what is stored.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub upserts: Vec<Planned>,
    /// (email key, list id, status) for subscriptions to insert or upgrade.
    pub subscriptions: Vec<(String, i64, SubscriptionStatus)>,
    pub counts: ImportCounts,
}

/// Decides, row by row, what a batch changes. A row seen twice is merged
/// into the first; a subscription someone left is never restored.
pub(crate) fn plan(
    batch: &ImportBatch,
    hashes: &[String],
    suppressed: &HashSet<String>,
    existing: &HashMap<String, Existing>,
    subscriptions: &HashMap<(i64, i64), SubscriptionStatus>,
) -> Plan {
    struct Pending {
        planned: Planned,
        dirty: bool,
    }
    let mut plan = Plan::default();
    let mut order: Vec<String> = Vec::new();
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut wanted: HashMap<(String, i64), SubscriptionStatus> = HashMap::new();
    let mut wanted_order: Vec<(String, i64)> = Vec::new();

    for (row, hash) in batch.rows.iter().zip(hashes) {
        if suppressed.contains(hash) {
            plan.counts.suppressed += 1;
            continue;
        }
        let key = row.email.key();
        let stored = existing.get(&key);
        let first_sight = !pending.contains_key(&key);
        let entry = pending.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            Pending {
                planned: Planned {
                    key: key.clone(),
                    hash: hash.clone(),
                    email: row.email.clone(),
                    name: stored.and_then(|e| e.name.clone()),
                    attributes: stored.map(|e| e.attributes.clone()).unwrap_or_default(),
                },
                dirty: stored.is_none(),
            }
        });
        let before = (entry.planned.name.clone(), entry.planned.attributes.clone());
        if let Some(name) = &row.name {
            entry.planned.name = Some(name.as_str().to_owned());
        }
        entry.planned.attributes.merge(&row.attributes);
        let data_changed = before != (entry.planned.name.clone(), entry.planned.attributes.clone());
        entry.dirty |= data_changed;

        let mut subscription_changed = false;
        let mut unconfirmed = false;
        for &(list_id, opt_in) in &batch.lists {
            let target = initial_status(opt_in, batch.confirmed);
            let slot = (key.clone(), list_id);
            let current = wanted
                .get(&slot)
                .copied()
                .or_else(|| stored.and_then(|e| subscriptions.get(&(e.id, list_id)).copied()));
            let change = match current {
                None => Some(target),
                Some(SubscriptionStatus::Unconfirmed)
                    if target == SubscriptionStatus::Confirmed =>
                {
                    Some(target)
                }
                Some(_) => None,
            };
            unconfirmed |= change.or(current) == Some(SubscriptionStatus::Unconfirmed);
            if let Some(status) = change {
                if wanted.insert(slot.clone(), status).is_none() {
                    wanted_order.push(slot);
                }
                subscription_changed = true;
            }
        }
        if unconfirmed && first_sight {
            plan.counts.unconfirmed += 1;
        }

        if stored.is_none() && first_sight {
            plan.counts.imported += 1;
        } else if data_changed || subscription_changed {
            plan.counts.updated += 1;
        } else {
            plan.counts.unchanged += 1;
        }
    }

    plan.upserts = order
        .into_iter()
        .filter_map(|k| pending.remove(&k).filter(|p| p.dirty).map(|p| p.planned))
        .collect();
    plan.subscriptions = wanted_order
        .into_iter()
        .map(|slot| {
            let status = wanted[&slot];
            (slot.0, slot.1, status)
        })
        .collect();
    plan
}

/// Which column holds what.
#[derive(Debug)]
struct Columns {
    email: usize,
    name: Option<usize>,
    attributes: Vec<(usize, String)>,
    delimiter: u8,
}

const EMAIL_HEADERS: &[&str] = &["email", "email_address", "e_mail", "mail"];
const NAME_HEADERS: &[&str] = &["name", "full_name"];

impl Columns {
    fn from_headers(headers: &csv::ByteRecord, delimiter: u8) -> Result<Self, CsvImportError> {
        let mut email = None;
        let mut name = None;
        let mut attributes = Vec::new();
        let mut seen = HashSet::new();
        for (i, raw) in headers.iter().enumerate() {
            let raw = std::str::from_utf8(raw).map_err(|_| {
                CsvImportError::BadFile(format!(
                    "the header of column {} is not valid UTF-8",
                    i + 1
                ))
            })?;
            if raw.trim().is_empty() {
                continue;
            }
            let key = normalise_key(raw).map_err(|_| {
                let shown: String = raw.chars().take(80).collect();
                CsvImportError::BadFile(format!(
                    "column {} is headed {shown:?}; headers must be 1 to 64 letters, digits, spaces, \
                     hyphens or underscores",
                    i + 1
                ))
            })?;
            if !seen.insert(key.clone()) {
                return Err(CsvImportError::BadFile(format!(
                    "the header {raw:?} appears twice"
                )));
            }
            if EMAIL_HEADERS.contains(&key.as_str()) && email.is_none() {
                email = Some(i);
            } else if NAME_HEADERS.contains(&key.as_str()) && name.is_none() {
                name = Some(i);
            } else {
                attributes.push((i, key));
                if attributes.len() > MAX_ATTRIBUTE_COLUMNS {
                    return Err(CsvImportError::BadFile(format!(
                        "the CSV has more than {MAX_ATTRIBUTE_COLUMNS} attribute columns besides email \
                         and name; keep only the ones necmail needs"
                    )));
                }
            }
        }
        let email = email.ok_or_else(|| {
            let found: Vec<String> = headers
                .iter()
                .map(|h| String::from_utf8_lossy(h).into_owned())
                .collect();
            CsvImportError::BadFile(format!(
                "the CSV has no email column (its header row is: {})",
                found.join(", ")
            ))
        })?;
        Ok(Columns {
            email,
            name,
            attributes,
            delimiter,
        })
    }

    fn parse(&self, record: &csv::ByteRecord) -> Result<ImportRow, Reject> {
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| {
            std::str::from_utf8(record.get(i).unwrap_or_default()).map(spreadsheet::restore)
        };
        let raw_email = field(self.email);
        let reject = |reason: String| Reject {
            line,
            email: String::from_utf8_lossy(record.get(self.email).unwrap_or_default()).into_owned(),
            reason,
            rows: 1,
        };
        let raw_email = raw_email.map_err(|_| reject("the email is not valid UTF-8".into()))?;
        let email = SubscriberEmail::parse(raw_email).map_err(|e| reject(e.to_string()))?;
        let name = match self.name {
            Some(i) => {
                let raw = field(i).map_err(|_| reject("the name is not valid UTF-8".into()))?;
                SubscriberName::parse(raw).map_err(|e| reject(e.to_string()))?
            }
            None => None,
        };
        let mut attributes = Attributes::new();
        for (i, key) in &self.attributes {
            let raw =
                field(*i).map_err(|_| reject(format!("the {key} column is not valid UTF-8")))?;
            let value = normalise_value(key, raw).map_err(|e| reject(e.to_string()))?;
            attributes.set(key.clone(), value);
        }
        Ok(ImportRow {
            line,
            email,
            name,
            attributes,
        })
    }
}

/// Picks the delimiter of a header line: a comma, or the semicolon or tab
/// that spreadsheets in many locales export.
fn sniff_delimiter(first_line: &[u8]) -> u8 {
    let mut in_quotes = false;
    let mut counts = [0usize; 3];
    for &b in first_line {
        match b {
            b'"' => in_quotes = !in_quotes,
            b',' if !in_quotes => counts[0] += 1,
            b';' if !in_quotes => counts[1] += 1,
            b'\t' if !in_quotes => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    [b',', b';', b'\t'][best]
}

/// Turns CRLF line ends into LF as the bytes stream past. The csv crate
/// numbers a record that follows a CRLF as if it were still on the line
/// before; with LF only, every reported line number is the true one. (A CR
/// inside a quoted field is lost too, but no field may hold a line break.)
struct CrlfToLf<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    pending_cr: bool,
}

impl<R: Read> CrlfToLf<R> {
    fn new(inner: R) -> Self {
        CrlfToLf {
            inner,
            buf: vec![0; 1 << 16].into_boxed_slice(),
            pos: 0,
            len: 0,
            pending_cr: false,
        }
    }
}

impl<R: Read> Read for CrlfToLf<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let mut written = 0;
        while written == 0 && !out.is_empty() {
            if self.pos == self.len {
                self.len = self.inner.read(&mut self.buf)?;
                self.pos = 0;
                if self.len == 0 {
                    if std::mem::take(&mut self.pending_cr) {
                        out[0] = b'\r';
                        return Ok(1);
                    }
                    return Ok(0);
                }
            }
            while self.pos < self.len && written < out.len() {
                let b = self.buf[self.pos];
                if std::mem::take(&mut self.pending_cr) && b != b'\n' {
                    out[written] = b'\r';
                    written += 1;
                    continue;
                }
                self.pos += 1;
                if b == b'\r' {
                    self.pending_cr = true;
                } else {
                    out[written] = b;
                    written += 1;
                }
            }
        }
        Ok(written)
    }
}

/// The CSV reader an import reads through.
type CsvReader<R> = csv::Reader<BufReader<CrlfToLf<R>>>;

/// A parsed stretch of the file.
struct Chunk {
    rows: Vec<ImportRow>,
    rejects: Vec<Reject>,
    /// How far into the input the reader was at the end of this chunk.
    bytes: u64,
}

impl Chunk {
    fn new() -> Self {
        Chunk {
            rows: Vec::with_capacity(BATCH_ROWS),
            rejects: Vec::new(),
            bytes: 0,
        }
    }
}

/// Opens a CSV: skips a UTF-8 BOM, sniffs the delimiter and reads the header.
fn open_csv<R: Read>(input: R) -> Result<(CsvReader<R>, Columns), CsvImportError> {
    let mut reader = BufReader::with_capacity(1 << 16, CrlfToLf::new(input));
    let buf = reader.fill_buf()?;
    if buf.is_empty() {
        return Err(CsvImportError::BadFile("the file is empty".into()));
    }
    let bom = buf.starts_with(b"\xEF\xBB\xBF");
    let start = if bom { 3 } else { 0 };
    let first_line = buf[start..]
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    let delimiter = sniff_delimiter(first_line);
    if bom {
        reader.consume(3);
    }
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(reader);
    let headers = csv
        .byte_headers()
        .map_err(|e| CsvImportError::BadFile(format!("the header row is unreadable: {e}")))?;
    if headers
        .iter()
        .all(|h| h.iter().all(u8::is_ascii_whitespace))
    {
        return Err(CsvImportError::BadFile("the file has no header row".into()));
    }
    let columns = Columns::from_headers(headers, delimiter)?;
    Ok((csv, columns))
}

/// The reject for a record that a quote left open has run on over the rows
/// after it: a field that spans lines which themselves hold the delimiter.
/// (A field may not hold a line break at all, so a multi-line record is
/// refused anyway; this tells how much of the file went with it.)
fn unclosed_quote(record: &csv::ByteRecord, delimiter: u8) -> Option<Reject> {
    let field = record.iter().find(|f| f.contains(&b'\n'))?;
    let swallowed = field
        .split(|&b| b == b'\n')
        .skip(1)
        .filter(|line| line.contains(&delimiter))
        .count() as u64;
    if swallowed == 0 {
        return None;
    }
    let line = record.position().map_or(0, |p| p.line());
    let spanned = record.as_slice().trim_ascii_end();
    let last = line + spanned.iter().filter(|&&b| b == b'\n').count() as u64;
    Some(Reject {
        line,
        email: String::new(),
        reason: format!(
            "the quote opened on line {line} is never closed, so lines {line}–{last} were read as one \
             field and {} rows were not imported; close the quote and import the file again",
            swallowed + 1
        ),
        rows: swallowed + 1,
    })
}

/// Reads the rows after the header in file order, handing `each` every
/// valid row or the reason a row cannot be imported, with how far into the
/// input the reader has got. `each` may stop the reading early.
fn for_each_row<R: Read>(
    csv: &mut CsvReader<R>,
    columns: &Columns,
    mut each: impl FnMut(Result<ImportRow, Reject>, u64) -> ControlFlow<()>,
) -> Result<(), CsvImportError> {
    let mut record = csv::ByteRecord::new();
    loop {
        let row = match csv.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) => continue,
            Ok(true) => match unclosed_quote(&record, columns.delimiter) {
                Some(reject) => Err(reject),
                None => columns.parse(&record),
            },
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                return Err(CsvImportError::Io(std::io::Error::other(e.to_string())));
            }
            Err(e) => Err(Reject {
                line: e.position().map_or(0, |p| p.line()),
                email: String::new(),
                reason: format!("unreadable CSV: {e}"),
                rows: 1,
            }),
        };
        if each(row, csv.position().byte()).is_break() {
            return Ok(());
        }
    }
}

/// Reads a CSV as an import does, storing nothing: `each` gets every valid
/// row or the reason a row cannot be imported, in file order. `Err` when the
/// file as a whole cannot be imported.
pub fn read_rows<R: Read>(
    input: R,
    mut each: impl FnMut(Result<ImportRow, Reject>),
) -> Result<(), CsvImportError> {
    let (mut csv, columns) = open_csv(input)?;
    for_each_row(&mut csv, &columns, |row, _| {
        each(row);
        ControlFlow::Continue(())
    })
}

/// Reads a CSV's header as an import does: `Err` when the file as a whole
/// cannot be imported.
pub fn check_header<R: Read>(input: R) -> Result<(), CsvImportError> {
    open_csv(input).map(|_| ())
}

/// Reads the rows into chunks of [`BATCH_ROWS`] for the writer.
fn read_chunks<R: Read>(
    mut csv: CsvReader<R>,
    columns: &Columns,
    tx: &mpsc::Sender<Result<Chunk, CsvImportError>>,
) {
    let mut chunk = Chunk::new();
    let read = for_each_row(&mut csv, columns, |row, bytes| {
        match row {
            Ok(row) => chunk.rows.push(row),
            Err(reject) => chunk.rejects.push(reject),
        }
        if chunk.rows.len() >= BATCH_ROWS {
            chunk.bytes = bytes;
            let full = std::mem::replace(&mut chunk, Chunk::new());
            if tx.blocking_send(Ok(full)).is_err() {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    chunk.bytes = csv.position().byte();
    let _ = tx.blocking_send(read.map(|()| chunk));
}

/// What an import is told to do.
pub struct ImportOptions {
    pub lists: Vec<List>,
    pub confirmed: bool,
    /// Where the admin who imports asserts the consent.
    pub channel: AdminChannel,
    /// A recorded import, from where its committed batches reach: the rows
    /// before are read again for their rejects but not written, and each
    /// batch written advances the record in its own transaction.
    pub job: Option<ImportCheckpoint>,
}

/// Imports a CSV from `input` into the store. `on_reject` sees every rejected
/// row (again, for a recorded import resumed, those before its checkpoint);
/// `on_progress` the running counts and the bytes read after each batch.
pub async fn import_csv<R: Read + Send + 'static>(
    store: &dyn SubscriberStore,
    input: R,
    options: &ImportOptions,
    mut on_reject: impl FnMut(&Reject),
    mut on_progress: impl FnMut(&ImportCounts, u64),
) -> Result<ImportCounts, CsvImportError> {
    let (csv, columns) = tokio::task::spawn_blocking(move || open_csv(input))
        .await
        .map_err(|e| CsvImportError::Io(std::io::Error::other(e)))??;
    let (tx, mut rx) = mpsc::channel(2);
    let reader = tokio::task::spawn_blocking(move || read_chunks(csv, &columns, &tx));
    let lists: Vec<(i64, OptIn)> = options.lists.iter().map(|l| (l.id, l.opt_in)).collect();
    let (mut counts, committed) = options
        .job
        .as_ref()
        .map_or((ImportCounts::default(), 0), |job| (job.counts, job.bytes));
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        let chunk_bytes = chunk.bytes;
        for reject in &chunk.rejects {
            on_reject(reject);
        }
        // The chunks are the same on every reading of the file, so a
        // checkpoint is the end of one of them.
        if chunk_bytes <= committed {
            continue;
        }
        let rejected = chunk.rejects.iter().map(|r| r.rows).sum::<u64>();
        let job = options.job.as_ref().map(|job| BatchProgress {
            token: job.token.clone(),
            bytes: chunk_bytes,
            rejected,
        });
        if !chunk.rows.is_empty() || job.is_some() {
            let batch = ImportBatch {
                rows: chunk.rows,
                lists: lists.clone(),
                confirmed: options.confirmed,
                consent: Consent::by_admin(options.channel, super::ConsentMethod::Import),
                job,
            };
            counts.add(store.import_batch(&batch).await?);
        }
        counts.rejected += rejected;
        on_progress(&counts, chunk_bytes);
    }
    reader
        .await
        .map_err(|e| CsvImportError::Io(std::io::Error::other(e)))?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(email: &str, name: Option<&str>, attrs: &[&str]) -> ImportRow {
        ImportRow {
            line: 2,
            email: SubscriberEmail::parse(email).unwrap(),
            name: name.map(|n| SubscriberName::parse(n).unwrap().unwrap()),
            attributes: attrs.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    fn batch(rows: Vec<ImportRow>, confirmed: bool) -> ImportBatch {
        ImportBatch {
            rows,
            lists: vec![(1, OptIn::Double)],
            confirmed,
            consent: Consent::by_admin(
                super::super::AdminChannel::Cli,
                super::super::ConsentMethod::Import,
            ),
            job: None,
        }
    }

    fn plan_for(
        b: &ImportBatch,
        existing: &HashMap<String, Existing>,
        subs: &HashMap<(i64, i64), SubscriptionStatus>,
    ) -> Plan {
        let hashes: Vec<String> = b.rows.iter().map(|r| r.email.suppression_hash()).collect();
        plan(b, &hashes, &HashSet::new(), existing, subs)
    }

    #[test]
    fn new_addresses_are_imported_with_a_subscription_each() {
        let b = batch(
            vec![
                row("a@example.org", Some("A"), &[]),
                row("b@example.org", None, &["role=councillor"]),
            ],
            false,
        );
        let p = plan_for(&b, &HashMap::new(), &HashMap::new());
        assert_eq!(
            p.counts,
            ImportCounts {
                imported: 2,
                unconfirmed: 2,
                ..Default::default()
            }
        );
        assert_eq!(p.upserts.len(), 2);
        assert_eq!(
            p.subscriptions,
            vec![
                ("a@example.org".into(), 1, SubscriptionStatus::Unconfirmed),
                ("b@example.org".into(), 1, SubscriptionStatus::Unconfirmed),
            ]
        );
    }

    #[test]
    fn a_row_seen_twice_in_a_batch_is_merged_into_one_subscriber() {
        let b = batch(
            vec![
                row("a@example.org", Some("A"), &["role=member"]),
                row("A@Example.org", None, &["ward=Canonbury"]),
            ],
            true,
        );
        let p = plan_for(&b, &HashMap::new(), &HashMap::new());
        assert_eq!(
            p.counts,
            ImportCounts {
                imported: 1,
                updated: 1,
                ..Default::default()
            }
        );
        assert_eq!(p.upserts.len(), 1);
        assert_eq!(p.upserts[0].name.as_deref(), Some("A"));
        assert_eq!(p.upserts[0].attributes.get("ward"), Some("Canonbury"));
        assert_eq!(p.subscriptions.len(), 1);
    }

    #[test]
    fn a_stored_identical_row_changes_nothing() {
        let b = batch(
            vec![row("a@example.org", Some("A"), &["role=member"])],
            true,
        );
        let existing = HashMap::from([(
            "a@example.org".to_string(),
            Existing {
                id: 7,
                name: Some("A".into()),
                attributes: ["role=member".parse().unwrap()].into_iter().collect(),
            },
        )]);
        let subs = HashMap::from([((7, 1), SubscriptionStatus::Confirmed)]);
        let p = plan_for(&b, &existing, &subs);
        assert_eq!(
            p.counts,
            ImportCounts {
                unchanged: 1,
                ..Default::default()
            }
        );
        assert!(p.upserts.is_empty());
        assert!(p.subscriptions.is_empty());
    }

    #[test]
    fn an_import_never_resubscribes_someone_who_left() {
        let b = batch(vec![row("a@example.org", None, &[])], true);
        let existing = HashMap::from([(
            "a@example.org".to_string(),
            Existing {
                id: 7,
                name: None,
                attributes: Attributes::new(),
            },
        )]);
        let subs = HashMap::from([((7, 1), SubscriptionStatus::Unsubscribed)]);
        let p = plan_for(&b, &existing, &subs);
        assert!(p.subscriptions.is_empty());
        assert_eq!(p.counts.unchanged, 1);
    }

    #[test]
    fn a_confirmed_import_upgrades_an_unconfirmed_subscription() {
        let b = batch(vec![row("a@example.org", None, &[])], true);
        let existing = HashMap::from([(
            "a@example.org".to_string(),
            Existing {
                id: 7,
                name: None,
                attributes: Attributes::new(),
            },
        )]);
        let subs = HashMap::from([((7, 1), SubscriptionStatus::Unconfirmed)]);
        let p = plan_for(&b, &existing, &subs);
        assert_eq!(
            p.subscriptions,
            vec![("a@example.org".into(), 1, SubscriptionStatus::Confirmed)]
        );
        assert_eq!(p.counts.updated, 1);
    }

    #[test]
    fn suppressed_addresses_are_skipped_and_counted() {
        let b = batch(vec![row("gone@example.org", None, &[])], true);
        let hashes: Vec<String> = b.rows.iter().map(|r| r.email.suppression_hash()).collect();
        let suppressed: HashSet<String> = hashes.iter().cloned().collect();
        let p = plan(&b, &hashes, &suppressed, &HashMap::new(), &HashMap::new());
        assert_eq!(
            p.counts,
            ImportCounts {
                suppressed: 1,
                ..Default::default()
            }
        );
        assert!(p.upserts.is_empty() && p.subscriptions.is_empty());
    }

    #[test]
    fn crlf_becomes_lf_and_lone_crs_are_kept_even_across_reads() {
        let input = b"a\r\nb\rc\r\r\nd\r".to_vec();
        for chunk in [1, 2, 3, 64] {
            struct Trickle(Vec<u8>, usize, usize);
            impl Read for Trickle {
                fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                    let n = self.2.min(out.len()).min(self.0.len() - self.1);
                    out[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                    self.1 += n;
                    Ok(n)
                }
            }
            let mut converted = Vec::new();
            CrlfToLf::new(Trickle(input.clone(), 0, chunk))
                .read_to_end(&mut converted)
                .unwrap();
            assert_eq!(converted, b"a\nb\rc\r\nd\r", "reads of {chunk} bytes");
        }
    }

    #[test]
    fn the_delimiter_is_sniffed_from_the_header() {
        assert_eq!(sniff_delimiter(b"email,name,role"), b',');
        assert_eq!(sniff_delimiter(b"email;name;role"), b';');
        assert_eq!(sniff_delimiter(b"email\tname"), b'\t');
        assert_eq!(sniff_delimiter(b"\"a;b\",email"), b',');
        assert_eq!(sniff_delimiter(b"email"), b',');
    }

    #[test]
    fn a_header_without_an_email_column_is_refused() {
        let err = open_csv("name,role\nJo,member\n".as_bytes()).err().unwrap();
        assert!(err.to_string().contains("no email column"), "{err}");
    }

    #[test]
    fn an_empty_file_is_refused() {
        let err = open_csv(&b""[..]).err().unwrap();
        assert_eq!(err.to_string(), "the file is empty");
    }

    #[test]
    fn rows_keep_their_line_numbers_across_quoted_newlines() {
        let data = "\u{feff}Email Address,Name,Council\r\na@example.org,\"Bloggs, Jo\",Islington\r\nb@example.org,\"Two\r\nLines\",Camden\r\nnot-an-address,X,Y\r\n";
        let (csv, columns) = open_csv(data.as_bytes()).unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        read_chunks(csv, &columns, &tx);
        let chunk = rx.try_recv().unwrap().unwrap();
        assert_eq!(chunk.rows.len(), 1);
        assert_eq!(chunk.rows[0].name.as_ref().unwrap().as_str(), "Bloggs, Jo");
        assert_eq!(chunk.rows[0].attributes.get("council"), Some("Islington"));
        let lines: Vec<u64> = chunk.rejects.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 5]);
        assert!(chunk.rejects[0].reason.contains("line break"));
    }
}
