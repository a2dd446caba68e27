//! Batch jobs shared by several replicas (the "shared folder" option of issue 20): every
//! replica on one PostgreSQL store is configured with the same `batch.dir`, a folder on a shared
//! file system, which holds every job's input, output, rejects and `job.json` as files; the
//! database holds only who runs which job, as a lease (`store::jobs`). A runner takes a job only
//! by claiming its lease, renews it from a side thread every third of the lease while it works,
//! and renews and checks it again before each write to the job's files (the fence of
//! `run_fenced`): once another replica has taken the job over, the old holder writes nothing
//! more. A replica that dies leaves its lease to expire, and another resumes the job where its
//! output stops. With SQLite (one process owns the store) there is no `Shared` and no lease.

use crate::store::Store;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a lease lasts unrenewed: the longest a dead replica's job waits for another.
pub const LEASE_MS: i64 = 30_000;
/// How often a replica looks in the folder for unfinished jobs it may take.
pub const SCAN_EVERY: Duration = Duration::from_secs(5);

/// The leases of one replica.
pub struct Shared {
    pub store: Arc<Store>,
    /// This replica's name in the lease table: random per process.
    pub holder: String,
    pub lease_ms: i64,
    pub scan_every: Duration,
}

impl Shared {
    /// Leases on `store` when it is shared by replicas (PostgreSQL); None for SQLite.
    pub fn new(store: Arc<Store>) -> Option<Shared> {
        store.shares_jobs().then(|| Shared {
            store,
            holder: format!("{}-{:016x}", std::process::id(), rand::random::<u64>()),
            lease_ms: LEASE_MS,
            scan_every: SCAN_EVERY,
        })
    }

    /// Take `id`'s lease; false when another replica holds it or the database fails.
    pub fn claim(&self, id: &str) -> bool {
        self.store
            .claim_job(id, &self.holder, self.lease_ms)
            .unwrap_or_else(|e| {
                tracing::warn!(job = id, error = %e, "batch: cannot claim the job's lease");
                false
            })
    }

    /// Extend `id`'s lease; false when it was lost or cannot be checked.
    pub fn renew(&self, id: &str) -> bool {
        self.store
            .renew_job(id, &self.holder, self.lease_ms)
            .unwrap_or_else(|e| {
                tracing::warn!(job = id, error = %e, "batch: cannot renew the job's lease");
                false
            })
    }

    pub fn release(&self, id: &str) {
        if let Err(e) = self.store.release_job(id, &self.holder) {
            tracing::warn!(job = id, error = %e, "batch: cannot release the job's lease");
        }
    }
}

/// A job held by this replica: a heartbeat thread renews its lease until dropped.
pub struct Held {
    shared: Arc<Shared>,
    id: String,
    lost: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    heartbeat: Option<JoinHandle<()>>,
}

impl Held {
    pub fn start(shared: Arc<Shared>, id: &str) -> Held {
        let lost = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<()>();
        let every = Duration::from_millis((shared.lease_ms / 3).max(1) as u64);
        let (sh, job, l) = (shared.clone(), id.to_string(), lost.clone());
        let heartbeat = std::thread::Builder::new()
            .name("batch-lease".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                    if let Ok(false) = sh.store.renew_job(&job, &sh.holder, sh.lease_ms) {
                        l.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            })
            .map_err(|e| tracing::warn!(error = %e, "batch: no lease heartbeat thread"))
            .ok();
        Held {
            shared,
            id: id.to_string(),
            lost,
            stop: Some(tx),
            heartbeat,
        }
    }

    /// Before a write: renew the lease and say whether it is still ours (once lost, never again).
    pub fn fence(&self) -> bool {
        if self.lost() {
            return false;
        }
        let ok = self.shared.renew(&self.id);
        if !ok {
            self.lost.store(true, Ordering::Relaxed);
        }
        ok
    }

    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Stop the heartbeat and give the lease back (the job's state is written).
    pub fn release(mut self) {
        self.stop_heartbeat();
        if !self.lost() {
            self.shared.release(&self.id);
        }
    }

    fn stop_heartbeat(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Held {
    /// Stop renewing; the lease stays until it expires (or this replica claims it again).
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}
