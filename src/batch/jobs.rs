//! HTTP batch jobs, kept on disk: `<dir>/<job_id>/{input,output,rejects}.jsonl` and `job.json`
//! (its state). One runner thread takes queued jobs one at a time through the engine; queued and
//! running jobs found at start are run again (the engine resumes where the output stops).
//! With a PostgreSQL store `dir` is a folder shared by every replica and a job runs only under
//! its lease (`lease.rs`): each replica answers for every job from the files, and takes the
//! unfinished jobs whose lease is free or expired, at start and every few seconds.

mod runner;
mod scan;

use super::lease::Shared;
use super::run::Stats;
use super::{BatchConfig, Summarizer};
use crate::fsutil::write_atomic;
use anyhow::{Context, Result};
use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

/// `job.json`: written at every change of state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub state: JobState,
    pub created_ms: i64,
    #[serde(default)]
    pub finished_ms: Option<i64>,
    #[serde(default)]
    pub error: Option<String>,
    pub total_bytes: u64,
    /// Counts of the last run (final once done).
    #[serde(default)]
    pub stats: Stats,
}

/// What `GET /v1/batch/{job_id}` answers. `written` counts every line of the output, including
/// those written before a restart.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobStatus {
    pub job_id: String,
    pub state: JobState,
    pub read: u64,
    pub written: u64,
    pub rejected: u64,
    pub total_bytes: u64,
    pub bytes_done: u64,
    pub created_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub const INPUT: &str = "input.jsonl";
pub const OUTPUT: &str = "output.jsonl";
pub const REJECTS: &str = "rejects.jsonl";
const RECORD: &str = "job.json";

impl JobState {
    /// Done or failed: nothing more will happen to the job.
    pub fn finished(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed)
    }
}

/// The `job.json` of the job folder `job_dir`, if it has a readable one.
pub fn read_record(job_dir: &Path) -> Option<JobRecord> {
    let b = std::fs::read(job_dir.join(RECORD)).ok()?;
    serde_json::from_slice(&b).ok()
}

/// Whether the record-less job folder `p` may be an upload still in progress on another replica
/// (touched within `secs` and a minute).
fn maybe_uploading(p: &Path, secs: u64) -> bool {
    let age = std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    age.is_none_or(|a| a < Duration::from_secs(secs.saturating_add(60)))
}

/// A job id: lowercase hex, as `new_id` makes them (time first, so they sort by age).
pub fn valid_id(id: &str) -> bool {
    (1..=40).contains(&id.len()) && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn new_id() -> String {
    format!(
        "{:012x}{:08x}",
        crate::store::now_ms(),
        rand::random::<u32>()
    )
}

pub struct Jobs {
    dir: PathBuf,
    cfg: BatchConfig,
    records: Mutex<HashMap<String, JobRecord>>,
    queue: Mutex<VecDeque<String>>,
    wake: Condvar,
    stop: Arc<AtomicBool>,
    summarizer: Arc<dyn Summarizer>,
    runner: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The leases, when replicas share `dir` (PostgreSQL); None: this process owns `dir`.
    shared: Option<Arc<Shared>>,
    /// The job this runner works on now.
    current: Mutex<Option<String>>,
    /// Stop without releasing the lease, as a crash would (tests).
    keep_lease: AtomicBool,
}

/// Sets the flag when dropped: a task holding it dies with its runtime.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Jobs {
    /// Load the jobs in `dir` (dropping unfinished uploads), queue the unfinished ones, start
    /// the runner. The runner stops when the current tokio runtime shuts down. With `shared`,
    /// `dir` is shared by replicas: nothing is queued or rewritten here, the runner takes
    /// unfinished jobs by their leases.
    pub fn open(
        dir: PathBuf,
        cfg: BatchConfig,
        summarizer: Arc<dyn Summarizer>,
        shared: Option<Shared>,
    ) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut records = HashMap::new();
        let mut todo = Vec::new();
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let id = e.file_name().to_string_lossy().to_string();
            if !valid_id(&id) || !e.path().is_dir() {
                continue;
            }
            if shared.is_some() {
                // Another replica's upload may be in progress: only stale ones are dropped.
                if !e.path().join(RECORD).exists()
                    && !maybe_uploading(&e.path(), cfg.upload_timeout_secs)
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
                continue;
            }
            match std::fs::read(e.path().join(RECORD)) {
                Ok(b) => {
                    let mut r: JobRecord = serde_json::from_slice(&b)
                        .with_context(|| format!("{}", e.path().join(RECORD).display()))?;
                    if matches!(r.state, JobState::Queued | JobState::Running) {
                        // Waits for the runner again (its output so far is kept).
                        r.state = JobState::Queued;
                        todo.push(id.clone());
                    }
                    records.insert(id, r);
                }
                // No record: an upload that never finished (nothing was accepted).
                Err(_) => std::fs::remove_dir_all(e.path())?,
            }
        }
        todo.sort();
        if !todo.is_empty() {
            tracing::info!(jobs = todo.len(), "batch: resuming unfinished jobs");
        }
        if let Some(sh) = &shared {
            tracing::info!(dir = %dir.display(), holder = %sh.holder,
                "batch: jobs shared by replicas (every replica must use this folder as batch.dir)");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let guard = StopOnDrop(stop.clone());
        let rt =
            tokio::runtime::Handle::try_current().context("batch jobs need a tokio runtime")?;
        rt.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        });
        let jobs = Arc::new(Jobs {
            dir,
            cfg,
            records: Mutex::new(records),
            queue: Mutex::new(todo.into()),
            wake: Condvar::new(),
            stop,
            summarizer,
            runner: Mutex::new(None),
            shared: shared.map(Arc::new),
            current: Mutex::new(None),
            keep_lease: AtomicBool::new(false),
        });
        let j = jobs.clone();
        let h = std::thread::Builder::new()
            .name("batch-jobs".into())
            .spawn(move || j.runner())
            .context("spawning the batch runner")?;
        *jobs.runner.lock() = Some(h);
        Ok(jobs)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &BatchConfig {
        &self.cfg
    }

    /// Stop the runner after its current batch; a running job stays `running` on disk and
    /// resumes at the next start.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify_all();
    }

    /// `shutdown`, then wait until the runner has finished its current batch.
    pub fn shutdown_and_wait(&self) {
        self.shutdown();
        if let Some(h) = self.runner.lock().take() {
            let _ = h.join();
        }
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// `shutdown_and_wait`, but keep the lease of the running job, as a replica that dies does:
    /// another replica takes the job once the lease expires (tests).
    #[cfg(test)]
    pub(crate) fn abandon_and_wait(&self) {
        self.keep_lease.store(true, Ordering::Relaxed);
        self.shutdown_and_wait();
    }

    /// A fresh job folder (no record yet: it is not a job until `enqueue`).
    pub fn new_job_dir(&self) -> Result<(String, PathBuf)> {
        let id = new_id();
        let d = self.dir.join(&id);
        std::fs::create_dir(&d).with_context(|| format!("creating {}", d.display()))?;
        Ok((id, d))
    }

    /// Accept an uploaded job (its input is already durable): record it, queue it.
    pub fn enqueue(&self, id: &str, total_bytes: u64) -> Result<()> {
        let r = JobRecord {
            state: JobState::Queued,
            created_ms: crate::store::now_ms(),
            finished_ms: None,
            error: None,
            total_bytes,
            stats: Stats::default(),
        };
        self.save(id, &r)?;
        self.records.lock().insert(id.to_string(), r);
        self.queue.lock().push_back(id.to_string());
        self.wake.notify_all();
        Ok(())
    }

    /// A job's state: from memory when it runs here or replicas do not share jobs, else from
    /// its `job.json` (another replica may run it, or have created it).
    pub fn status(&self, id: &str) -> Option<JobStatus> {
        let here = self.shared.is_none() || self.current.lock().as_deref() == Some(id);
        let mem = || self.records.lock().get(id).cloned();
        let r = if here {
            mem()?
        } else {
            read_record(&self.dir.join(id)).or_else(mem)?
        };
        let s = &r.stats;
        Some(JobStatus {
            job_id: id.to_string(),
            state: r.state,
            read: s.read,
            written: s.written + s.skipped,
            rejected: s.rejected,
            total_bytes: r.total_bytes,
            bytes_done: if r.state == JobState::Done {
                r.total_bytes
            } else {
                s.bytes_done
            },
            created_ms: r.created_ms,
            finished_ms: r.finished_ms,
            error: r.error,
        })
    }

    /// The path of one of a job's files.
    pub fn file(&self, id: &str, name: &str) -> PathBuf {
        self.dir.join(id).join(name)
    }

    fn save(&self, id: &str, r: &JobRecord) -> Result<()> {
        write_atomic(&self.file(id, RECORD), &serde_json::to_vec_pretty(r)?)
    }

    /// Change a job's record in memory and on disk.
    fn update(&self, id: &str, f: impl FnOnce(&mut JobRecord)) {
        let r = {
            let mut recs = self.records.lock();
            let Some(r) = recs.get_mut(id) else { return };
            f(r);
            r.clone()
        };
        if let Err(e) = self.save(id, &r) {
            tracing::error!(job = id, error = %format!("{e:#}"), "batch: cannot save the job state");
        }
    }
}
