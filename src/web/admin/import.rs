//! The CSV import by upload, for owners only: the same importer as
//! `necmail subscriber import`.
//!
//! The upload is streamed to a file in NECMAIL_SPOOL_DIR/imports (never
//! the whole file in memory), up to NECMAIL_ADMIN_UPLOAD_MAX_BYTES; a
//! larger one, or one whose header an import cannot read, is refused and
//! nothing is imported. The import is recorded in the store and runs in
//! the background, in batches, each of which advances the record in its own
//! transaction; its page shows the record's counts and reloads itself
//! (from any instance); the rejected rows go to a rejects file to download.
//! One import runs at a time. One that a restart interrupted (a crash, or a
//! shutdown, which stops it between batches) is resumed when `serve` starts
//! again on the same host, after its last committed batch. The last
//! [`KEPT`] finished imports are kept, with their rejects files.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::pages::{AdminPageError, csv_download, list_choices, render};
use super::session::{Owner, SignedIn, is_csrf_of};
use crate::admin::{self, Actor};
use crate::delivery::engine::{has_stopped, worker_id};
use crate::lists::ListSlug;
use crate::subscribers::AdminChannel;
use crate::subscribers::import::{
    CsvImportError, ImportCounts, ImportJob, ImportOptions, ImportState, RejectsFile, check_header,
    import_csv,
};
use crate::web::Shared;

/// Finished imports kept, with their rejects files.
const KEPT: i64 = 8;
/// The bytes of a rejects file sent at once.
const CHUNK: usize = 64 * 1024;

/// This process's part in the imports: its name in their records, and the
/// signal that stops its running import at shutdown.
pub(crate) struct ImportJobs {
    worker: String,
    stop: watch::Sender<bool>,
}

impl Default for ImportJobs {
    fn default() -> Self {
        ImportJobs {
            worker: worker_id(),
            stop: watch::Sender::new(false),
        }
    }
}

/// Resumes the imports that a stopped process on this host left running,
/// then, once `stopped` resolves, stops this process's running import
/// between two batches (the next start resumes it) and waits for it.
pub(crate) async fn run_imports(state: Shared, stopped: impl Future<Output = ()>) {
    if let Err(e) = resume(&state).await {
        tracing::error!(error = %e, "the imports left running could not be resumed");
    }
    stopped.await;
    state.imports.stop.send_replace(true);
    state.imports.stop.closed().await;
}

async fn resume(state: &Shared) -> Result<(), crate::error::StoreError> {
    let me = &state.imports.worker;
    for mut job in state.import_jobs.running_imports().await? {
        // Another process on this host still runs it, or one elsewhere may.
        if job.worker == *me || !has_stopped(&job.worker, me) {
            continue;
        }
        if !state
            .import_jobs
            .take_over_import(&job.token, &job.worker, me)
            .await?
        {
            continue;
        }
        tracing::info!(
            token = %job.token,
            bytes = job.bytes,
            rows = job.counts.rows(),
            "resuming the import that a restart interrupted"
        );
        job.worker.clone_from(me);
        tokio::spawn(run(Arc::clone(state), job));
    }
    Ok(())
}

async fn upload_form(
    state: &Shared,
    who: &SignedIn,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, AdminPageError> {
    let lists = list_choices(state).await?;
    Ok(render(
        state,
        Some(who),
        status,
        "subscriber_import",
        json!({
            "lists": lists,
            "error": error,
            "max_mb": state.config.admin_upload_max_bytes / 1_000_000,
        }),
    ))
}

pub(super) async fn upload_page(
    State(state): State<Shared>,
    Owner(who): Owner,
) -> Result<Response, AdminPageError> {
    upload_form(&state, &who, StatusCode::OK, None).await
}

/// Why an upload was refused: the page says it, with the form again.
pub(super) enum Refusal {
    TooBig,
    Bad(String),
}

fn read_error(e: &MultipartError) -> Refusal {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Refusal::TooBig
    } else {
        Refusal::Bad("The upload could not be read; please try again.".into())
    }
}

/// Writes the file field to `path`, a chunk at a time.
async fn save(field: &mut Field<'_>, path: &std::path::Path) -> Result<u64, Refusal> {
    let failed = |e: std::io::Error| {
        tracing::error!(error = %e, "an uploaded CSV could not be written to the spool");
        Refusal::Bad("The upload could not be stored; please try again.".into())
    };
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(failed)?;
    }
    let mut out = tokio::fs::File::create(path).await.map_err(failed)?;
    let mut size = 0;
    while let Some(chunk) = field.chunk().await.map_err(|e| read_error(&e))? {
        out.write_all(&chunk).await.map_err(failed)?;
        size += chunk.len() as u64;
    }
    out.flush().await.map_err(failed)?;
    Ok(size)
}

/// What the upload's form gave, its file saved.
struct Upload {
    lists: Vec<ListSlug>,
    confirmed: bool,
    size: u64,
}

/// Reads the form's first field, which must be the session's CSRF token.
async fn csrf_first(
    multipart: &mut Multipart,
    who: &SignedIn,
) -> Result<Result<(), Refusal>, AdminPageError> {
    let first = match multipart.next_field().await {
        Ok(Some(field)) => field,
        Ok(None) => return Err(AdminPageError::FormExpired),
        Err(e) => match read_error(&e) {
            Refusal::TooBig => return Ok(Err(Refusal::TooBig)),
            Refusal::Bad(_) => return Err(AdminPageError::FormExpired),
        },
    };
    let token = if first.name() == Some("csrf") {
        first.text().await.unwrap_or_default()
    } else {
        String::new()
    };
    if !is_csrf_of(who, &token) {
        return Err(AdminPageError::FormExpired);
    }
    Ok(Ok(()))
}

/// A small upload, read into memory: its text fields and its file.
pub(super) struct SmallUpload {
    /// The fields before the file, by name.
    pub(super) fields: Vec<(String, String)>,
    /// The file's name as the browser gave it, without any folder.
    pub(super) file_name: Option<String>,
    pub(super) bytes: Vec<u8>,
}

impl SmallUpload {
    /// The value of the text field `name`, if given.
    pub(super) fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a form whose fields come in order, the CSRF token first and the
/// file, named `file`, last, keeping at most `limit` bytes of the file: a
/// larger one is [`Refusal::TooBig`] as soon as it passes the limit.
pub(super) async fn receive_small(
    multipart: &mut Multipart,
    who: &SignedIn,
    limit: usize,
) -> Result<Result<SmallUpload, Refusal>, AdminPageError> {
    if let Err(refusal) = csrf_first(multipart, who).await? {
        return Ok(Err(refusal));
    }
    let mut fields = Vec::new();
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(Err(Refusal::Bad("Choose a file.".into()))),
            Err(e) => return Ok(Err(read_error(&e))),
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name != "file" {
            let value = field.text().await.unwrap_or_default();
            fields.push((name, value));
            continue;
        }
        let file_name = field
            .file_name()
            .and_then(|n| n.rsplit(['/', '\\']).next())
            .map(|n| {
                n.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
            .filter(|n| !n.is_empty());
        let mut bytes = Vec::new();
        loop {
            let chunk = match field.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Ok(Err(read_error(&e))),
            };
            if bytes.len() + chunk.len() > limit {
                return Ok(Err(Refusal::TooBig));
            }
            bytes.extend_from_slice(&chunk);
        }
        return Ok(Ok(SmallUpload {
            fields,
            file_name,
            bytes,
        }));
    }
}

/// Reads the form's fields in order (the CSRF token first, then the lists
/// and whether consent is asserted, the file last) and saves the file to
/// `path`.
async fn receive(
    multipart: &mut Multipart,
    who: &SignedIn,
    path: &std::path::Path,
) -> Result<Result<Upload, Refusal>, AdminPageError> {
    if let Err(refusal) = csrf_first(multipart, who).await? {
        return Ok(Err(refusal));
    }
    let mut upload = Upload {
        lists: Vec::new(),
        confirmed: false,
        size: 0,
    };
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(Err(Refusal::Bad("Choose a CSV file.".into()))),
            Err(e) => return Ok(Err(read_error(&e))),
        };
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "list" => {
                let slug = field.text().await.unwrap_or_default();
                match ListSlug::parse(slug.trim()) {
                    Ok(slug) => upload.lists.push(slug),
                    Err(e) => return Ok(Err(Refusal::Bad(e.to_string()))),
                }
            }
            "confirmed" => upload.confirmed = true,
            "file" => {
                upload.size = match save(&mut field, path).await {
                    Ok(size) => size,
                    Err(refusal) => return Ok(Err(refusal)),
                };
                return Ok(Ok(upload));
            }
            _ => {}
        }
    }
}

/// Takes an uploaded CSV: refuses it, changing nothing, when it is too big
/// or its header cannot be read; otherwise starts importing it and sends
/// the browser to the import's page.
pub(super) async fn upload(
    State(state): State<Shared>,
    Owner(who): Owner,
    mut multipart: Multipart,
) -> Result<Response, AdminPageError> {
    let token = admin::random_token();
    let dir = state.config.spool_dir.join("imports");
    let path = dir.join(format!("{token}.csv"));
    let received = receive(&mut multipart, &who, &path).await;
    let refused = |status: StatusCode, message: String| {
        let (state, who, path) = (&state, &who, &path);
        async move {
            let _ = tokio::fs::remove_file(path).await;
            upload_form(state, who, status, Some(&message)).await
        }
    };
    let upload = match received {
        Ok(Ok(upload)) => upload,
        Ok(Err(Refusal::TooBig)) => {
            let max = state.config.admin_upload_max_bytes / 1_000_000;
            let message = format!(
                "That file is larger than {max} MB; split it, or ask the \
                operator to raise NECMAIL_ADMIN_UPLOAD_MAX_BYTES. Nothing was imported."
            );
            return refused(StatusCode::PAYLOAD_TOO_LARGE, message).await;
        }
        Ok(Err(Refusal::Bad(message))) => {
            return refused(StatusCode::UNPROCESSABLE_ENTITY, message).await;
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
    };
    let unprocessable = |m: String| refused(StatusCode::UNPROCESSABLE_ENTITY, m);
    if upload.lists.is_empty() {
        return unprocessable("Choose at least one list.".into()).await;
    }
    let mut lists = Vec::with_capacity(upload.lists.len());
    for slug in &upload.lists {
        match state.lists.list(slug).await {
            Ok(list) => lists.push(list),
            Err(e) if e.is_bad_input() => return unprocessable(format!("{e}.")).await,
            Err(e) => return Err(e.into()),
        }
    }
    let header = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || check_header(std::fs::File::open(path)?))
            .await
            .map_err(|e| AdminPageError::Internal(e.into()))?
    };
    match header {
        Ok(()) => {}
        Err(CsvImportError::BadFile(m)) => {
            let message = format!("That file cannot be imported: {m}. Nothing was imported.");
            return unprocessable(message).await;
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(AdminPageError::Internal(e.into()));
        }
    }
    let slugs: Vec<String> = lists.iter().map(|l| l.slug.to_string()).collect();
    let actor = who.actor();
    let job = ImportJob {
        rejects: dir
            .join(format!("{token}.rejects.csv"))
            .to_string_lossy()
            .into_owned(),
        upload: path.to_string_lossy().into_owned(),
        token,
        state: ImportState::Running,
        lists: slugs.clone(),
        confirmed: upload.confirmed,
        actor: actor.name.clone(),
        actor_ip: actor.ip.map(|ip| ip.to_string()),
        worker: state.imports.worker.clone(),
        size: upload.size,
        bytes: 0,
        counts: ImportCounts::default(),
        error: None,
        started_at: Utc::now(),
        finished_at: None,
    };
    match state.import_jobs.start_import(&job).await {
        Ok(true) => {}
        Ok(false) => {
            let message = "Another import is running; wait until it is done.";
            return unprocessable(message.into()).await;
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e.into());
        }
    }
    let consent = if upload.confirmed {
        ", consent asserted"
    } else {
        ""
    };
    let detail = format!("{} bytes to {}{consent}", upload.size, slugs.join(", "));
    admin::audit(&*state.admin, &actor, "subscriber.import", &detail).await?;
    let page = format!("/admin/subscribers/import/{}", job.token);
    tokio::spawn(run(Arc::clone(&state), job));
    Ok(Redirect::to(&page).into_response())
}

/// Imports the job's upload, then deletes it; the outcome goes to the
/// job's record and to the audit log, and the oldest finished imports
/// beyond [`KEPT`] are forgotten with their files. At shutdown it stops
/// between two batches, leaving the job running for the next start.
async fn run(state: Shared, job: ImportJob) {
    let mut stop = state.imports.stop.subscribe();
    let outcome = tokio::select! {
        outcome = import(&state, &job) => outcome,
        _ = stop.wait_for(|stop| *stop) => return,
    };
    let _ = tokio::fs::remove_file(&job.upload).await;
    let error = outcome.as_ref().err().map(String::as_str);
    if let Err(e) = state.import_jobs.finish_import(&job.token, error).await {
        tracing::error!(error = %e, token = %job.token, "an import's end could not be recorded");
    }
    let detail = match &outcome {
        Ok(counts) => counts.to_string(),
        Err(e) => format!("stopped: {e}"),
    };
    let by = Actor {
        name: job.actor.clone(),
        ip: job.actor_ip.as_deref().and_then(|ip| ip.parse().ok()),
    };
    if let Err(e) = admin::audit(&*state.admin, &by, "subscriber.import.done", &detail).await {
        tracing::error!(error = %e, "the end of an import could not be written to the audit log");
    }
    match state.import_jobs.forget_imports(KEPT).await {
        Ok(forgotten) => {
            for old in forgotten {
                let _ = tokio::fs::remove_file(&old.upload).await;
                let _ = tokio::fs::remove_file(&old.rejects).await;
            }
        }
        Err(e) => tracing::error!(error = %e, "old imports could not be forgotten"),
    }
}

async fn import(state: &Shared, job: &ImportJob) -> Result<ImportCounts, String> {
    let failed = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "an uploaded CSV could not be imported");
        "the server failed; the rows before stay imported".to_owned()
    };
    let mut lists = Vec::with_capacity(job.lists.len());
    for slug in &job.lists {
        let found = match ListSlug::parse(slug) {
            Ok(slug) => state.lists.list(&slug).await,
            Err(e) => return Err(e.to_string()),
        };
        match found {
            Ok(list) => lists.push(list),
            Err(e) if e.is_bad_input() => return Err(e.to_string()),
            Err(e) => return Err(failed(&e)),
        }
    }
    let options = ImportOptions {
        lists,
        confirmed: job.confirmed,
        channel: AdminChannel::Web,
        job: Some(job.checkpoint()),
    };
    let file = std::fs::File::open(&job.upload).map_err(|e| failed(&e))?;
    // Written again from the start when resumed: the rows before the
    // checkpoint are read again for their rejects.
    let rejects_file = std::fs::File::create(&job.rejects).map_err(|e| failed(&e))?;
    let mut rejects = RejectsFile::new(rejects_file).map_err(|e| failed(&e))?;
    let mut write_error = None;
    let counts = import_csv(
        &*state.subscribers,
        file,
        &options,
        |reject| {
            if let Err(e) = rejects.write(reject) {
                write_error.get_or_insert(e);
            }
        },
        |_, _| {},
    )
    .await
    .map_err(|e| match e {
        CsvImportError::BadFile(m) => m,
        other => failed(&other),
    })?;
    rejects.flush().map_err(|e| failed(&e))?;
    if let Some(e) = write_error {
        return Err(failed(&e));
    }
    Ok(counts)
}

/// An import's page: its counts so far, reloading itself until it is done;
/// then the link to its rejects file.
pub(super) async fn job_page(
    State(state): State<Shared>,
    Owner(who): Owner,
    Path(token): Path<String>,
) -> Result<Response, AdminPageError> {
    let job = state
        .import_jobs
        .import_job(&token)
        .await?
        .ok_or(AdminPageError::NotFound)?;
    let percent = (job.bytes * 100)
        .checked_div(job.size)
        .unwrap_or(0)
        .min(100);
    Ok(render(
        &state,
        Some(&who),
        StatusCode::OK,
        "subscriber_import",
        json!({
            "job": {
                "token": job.token,
                "lists": job.lists,
                "started": job.started_at
                    .with_timezone(&state.config.timezone)
                    .format("%Y-%m-%d %H:%M")
                    .to_string(),
                "running": job.state == ImportState::Running,
                "error": job.error,
                "counts": job.counts,
                "percent": percent,
            },
        }),
    ))
}

/// A finished import's rejects file, streamed.
pub(super) async fn rejects(
    State(state): State<Shared>,
    Owner(_who): Owner,
    Path(token): Path<String>,
) -> Result<Response, AdminPageError> {
    let job = state
        .import_jobs
        .import_job(&token)
        .await?
        .filter(|j| j.state != ImportState::Running)
        .ok_or(AdminPageError::NotFound)?;
    let file = tokio::fs::File::open(&job.rejects)
        .await
        .map_err(|_| AdminPageError::NotFound)?;
    let chunks = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buffer = vec![0; CHUNK];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(n) => {
                buffer.truncate(n);
                Some((Ok(Bytes::from(buffer)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Ok(csv_download(
        Body::from_stream(chunks),
        "attachment; filename=\"rejects.csv\"",
    ))
}
