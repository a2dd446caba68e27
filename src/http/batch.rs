//! Batch summarization jobs over HTTP: `POST /v1/batch/summarize` (a JSONL body, spooled to disk
//! before 202), `GET /v1/batch/{job_id}` (state and counts), `.../result` and `.../rejects` (the
//! JSONL files, once done). Jobs run one at a time through the batch engine and survive restarts.

use crate::batch::jobs::{self, JobState, JobStatus, Jobs, INPUT, OUTPUT, REJECTS};
use crate::batch::spool::Spool;
use crate::error::{AppError, AppResult};
use crate::http::error::ErrorBody;
use crate::http::openapi::{BadInput, Guarded};
use crate::http::AppState;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

/// Media types accepted for the JSONL body.
pub const JSONL_TYPES: [&str; 6] = [
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonl",
    "application/jsonlines",
    "application/x-jsonlines",
];

/// The batch endpoints, to merge into the app's router.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/batch/summarize", post(submit))
        .route("/v1/batch/{job_id}", get(status))
        .route("/v1/batch/{job_id}/result", get(result))
        .route("/v1/batch/{job_id}/rejects", get(rejects))
}

/// Start the job runner now, resuming unfinished jobs (call once the server's runtime runs).
pub fn start(state: &Arc<AppState>) -> anyhow::Result<()> {
    state.jobs().map(|_| ())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> AppResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("batch task: {e}")))?
        .map_err(AppError::Internal)
}

fn check_content_type(h: &HeaderMap) -> AppResult<()> {
    let ct = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match ct {
        Some(t) if JSONL_TYPES.contains(&t.as_str()) => Ok(()),
        other => Err(AppError::Invalid {
            kind: crate::error::InvalidKind::UnsupportedMedia,
            field: "content-type".into(),
            message: format!(
                "expected application/x-ndjson or application/jsonl (one JSON conversation a line), got {}",
                other.map_or("none".to_string(), |t| format!("`{}`", t.chars().take(80).collect::<String>()))
            ),
        }),
    }
}

fn too_large(max: u64) -> AppError {
    AppError::too_large(
        "body",
        format!("request body is over {max} bytes (batch.max_upload_bytes)"),
    )
}

#[utoipa::path(
    post, path = "/v1/batch/summarize", tag = "batch", security(("bearer" = [])),
    request_body(description = "JSON lines: one conversation (`{\"id\": .., \"conversation\": [{\"role\", \"text\"}]}`) a line",
        content(("application/x-ndjson"), ("application/jsonl"))),
    responses((status = 202, description = "The job is spooled and queued", body = Submitted),
        (status = 415, description = "Not a JSON lines media type", body = ErrorBody), BadInput, Guarded)
)]
pub async fn submit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<(StatusCode, Json<Submitted>)> {
    check_content_type(&headers)?;
    let max = state.config.batch.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let jobs = state.jobs().map_err(AppError::Internal)?;
    let j = jobs.clone();
    let (id, dir) = blocking(move || j.new_job_dir()).await?;
    let accepted = async {
        let total = spool(body, dir.join(INPUT), max).await?;
        let (j, id) = (jobs.clone(), id.clone());
        blocking(move || j.enqueue(&id, total)).await?;
        Ok::<u64, AppError>(total)
    }
    .await;
    match accepted {
        Ok(total) => Ok((
            StatusCode::ACCEPTED,
            Json(Submitted {
                job_id: id,
                state: JobState::Queued,
                total_bytes: total,
            }),
        )),
        Err(e) => {
            let _ = blocking(move || Ok(std::fs::remove_dir_all(dir)?)).await;
            Err(e)
        }
    }
}

/// The answer of `POST /v1/batch/summarize` (202).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Submitted {
    pub job_id: String,
    /// `queued`.
    pub state: JobState,
    /// Bytes of JSON lines spooled.
    pub total_bytes: u64,
}

/// Stream `body` into `path` (through a blocking writer), at most `max` bytes; the file is
/// durable under its name when this returns Ok.
async fn spool(body: Body, path: PathBuf, max: u64) -> AppResult<u64> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let writer = tokio::task::spawn_blocking(move || -> anyhow::Result<Spool> {
        let mut sp = Spool::create(&path)?;
        while let Some(b) = rx.blocking_recv() {
            sp.write(&b)?;
        }
        Ok(sp)
    });
    let mut stream = body.into_data_stream();
    let mut n = 0u64;
    let read = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                AppError::bad_request("body", format!("cannot read the request body: {e}"))
            })?;
            n += chunk.len() as u64;
            if n > max {
                return Err(too_large(max));
            }
            if tx.send(chunk).await.is_err() {
                break; // the writer failed: its error is reported below
            }
        }
        Ok(())
    }
    .await;
    drop(tx);
    let sp = writer
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("spool task: {e}")))?;
    read?;
    let sp = sp.map_err(AppError::Internal)?;
    match sp.first_byte() {
        None => {
            return Err(AppError::invalid(
                "body",
                "request body is empty: expected JSON lines",
            ))
        }
        Some(b'{') => {}
        Some(_) => {
            return Err(AppError::invalid(
                "body",
                "request body is not JSON lines: each line must be a JSON object (a conversation)",
            ))
        }
    }
    blocking(move || sp.finish()).await
}

/// The jobs and a well-formed job id, or 404 naming `job_id`.
fn lookup(
    state: &Arc<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> AppResult<(Arc<Jobs>, String, JobStatus)> {
    let id = path.map(|p| p.0).unwrap_or_default();
    let unknown = || {
        AppError::not_found(
            "job_id",
            format!("no batch job `{}`", id.chars().take(64).collect::<String>()),
        )
    };
    if !jobs::valid_id(&id) {
        return Err(unknown());
    }
    let jobs = state.jobs().map_err(AppError::Internal)?;
    let st = jobs.status(&id).ok_or_else(unknown)?;
    Ok((jobs, id, st))
}

#[utoipa::path(
    get, path = "/v1/batch/{job_id}", tag = "batch", security(("bearer" = [])),
    params(("job_id" = String, Path, description = "Job id")),
    responses((status = 200, description = "The job's state and counts", body = JobStatus),
        (status = 404, description = "No such job", body = ErrorBody), Guarded)
)]
pub async fn status(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
) -> AppResult<Json<JobStatus>> {
    lookup(&state, path).map(|(_, _, st)| Json(st))
}

#[utoipa::path(
    get, path = "/v1/batch/{job_id}/result", tag = "batch", security(("bearer" = [])),
    params(("job_id" = String, Path, description = "Job id")),
    responses((status = 200, description = "One summary a line (JSON lines)", content_type = "application/x-ndjson", body = String),
        (status = 404, description = "No such job", body = ErrorBody), (status = 409, description = "The job is not done", body = ErrorBody), Guarded)
)]
pub async fn result(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
) -> AppResult<Response> {
    file_response(&state, path, OUTPUT).await
}

#[utoipa::path(
    get, path = "/v1/batch/{job_id}/rejects", tag = "batch", security(("bearer" = [])),
    params(("job_id" = String, Path, description = "Job id")),
    responses((status = 200, description = "One rejected line and why, a line (JSON lines)", content_type = "application/x-ndjson", body = String),
        (status = 404, description = "No such job", body = ErrorBody), (status = 409, description = "The job is not done", body = ErrorBody), Guarded)
)]
pub async fn rejects(
    State(state): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
) -> AppResult<Response> {
    file_response(&state, path, REJECTS).await
}

/// A done job's file as `application/x-ndjson`, streamed from disk; 409 before it is done.
async fn file_response(
    state: &Arc<AppState>,
    path: Result<Path<String>, PathRejection>,
    name: &'static str,
) -> AppResult<Response> {
    let (jobs, id, st) = lookup(state, path)?;
    if st.state != JobState::Done {
        let state = serde_json::to_value(st.state).unwrap_or(Value::Null);
        return Err(AppError::Invalid {
            kind: crate::error::InvalidKind::Conflict,
            field: "job_id".into(),
            message: format!(
                "batch job `{id}` is {state}: its files are ready when it is \"done\""
            ),
        });
    }
    let p = jobs.file(&id, name);
    let (file, len) = blocking(move || {
        let f = std::fs::File::open(&p)?;
        let len = f.metadata()?.len();
        Ok((f, len))
    })
    .await?;
    let mut resp = Body::from_stream(read_chunks(file)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(resp)
}

/// The file's bytes in 64 KiB chunks, read on the blocking pool.
fn read_chunks(
    mut f: std::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || loop {
        let mut buf = vec![0u8; 64 << 10];
        let item = match f.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                Ok(Bytes::from(buf))
            }
            Err(e) => Err(e),
        };
        let failed = item.is_err();
        if tx.blocking_send(item).is_err() || failed {
            return;
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
}
