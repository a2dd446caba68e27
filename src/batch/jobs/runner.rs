//! The runner of `Jobs`: takes jobs one at a time (from this replica's queue, or, with replicas,
//! by claiming the leases of unfinished jobs found in the shared folder) and runs each through
//! the engine, fenced by its lease.

use super::scan::Scanner;
use super::{read_record, JobState, Jobs, INPUT, OUTPUT, REJECTS};
use crate::batch::lease::Held;
use crate::batch::run::{run_fenced, RunOptions, Stats, FENCED};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl Jobs {
    /// Whether this runner may run `id` now: always when it owns `dir`; with replicas, once it
    /// holds the lease of a job still unfinished on disk (its record is then loaded here).
    fn take(&self, id: &str) -> bool {
        let Some(sh) = &self.shared else { return true };
        if !sh.claim(id) {
            return false;
        }
        match read_record(&self.dir.join(id)) {
            Some(r) if !r.state.finished() => {
                self.records.lock().insert(id.to_string(), r);
                true
            }
            // Finished by another replica meanwhile (or gone).
            _ => {
                sh.release(id);
                false
            }
        }
    }

    /// The next job to run, taken (`take`): queued here, or found by a scan of the shared folder.
    fn next(&self, scan: &mut Option<Scanner>) -> Option<String> {
        loop {
            if self.stopped() {
                return None;
            }
            let queued = self.queue.lock().pop_front();
            if let Some(id) = queued {
                if self.take(&id) {
                    return Some(id);
                }
                continue;
            }
            if let Some(sc) = scan.as_mut() {
                for id in sc.due(&self.dir) {
                    if self.stopped() {
                        return None;
                    }
                    if self.take(&id) {
                        return Some(id);
                    }
                }
            }
            let wait = scan.as_ref().map_or(Duration::from_millis(500), |sc| {
                sc.wait()
                    .clamp(Duration::from_millis(1), Duration::from_millis(500))
            });
            let mut q = self.queue.lock();
            if q.is_empty() && !self.stopped() {
                self.wake.wait_for(&mut q, wait);
            }
        }
    }

    pub(super) fn runner(&self) {
        let mut scan = self.shared.as_ref().map(|sh| Scanner::new(sh.scan_every));
        while let Some(id) = self.next(&mut scan) {
            self.run_job(&id);
        }
    }

    /// Run one taken job through the engine and record how it ended. With replicas the lease is
    /// renewed throughout and checked before every write; a job whose lease was lost is left
    /// to its new holder untouched.
    fn run_job(&self, id: &str) {
        let held = self.shared.as_ref().map(|sh| Held::start(sh.clone(), id));
        let fence = || held.as_ref().is_none_or(Held::fence);
        self.update(id, |r| {
            r.state = JobState::Running;
            r.stats = Stats::default();
        });
        *self.current.lock() = Some(id.to_string());
        let opts = RunOptions {
            input: self.file(id, INPUT),
            output: self.file(id, OUTPUT),
            rejects: self.file(id, REJECTS),
            batch_size: self.cfg.batch_size,
            max_line_bytes: self.cfg.max_line_bytes,
        };
        tracing::info!(job = %id, "batch: job started");
        let mut saved = Instant::now();
        let mut live = |s: &Stats| {
            if let Some(r) = self.records.lock().get_mut(id) {
                r.stats = s.clone();
            }
            // Other replicas read the progress from disk (written right after a fenced write).
            if self.shared.is_some() && saved.elapsed() >= Duration::from_secs(2) {
                saved = Instant::now();
                self.update(id, |_| {});
            }
        };
        let res = run_fenced(
            &opts,
            self.summarizer.as_ref(),
            &self.stop,
            &mut live,
            &mut || fence(),
        );
        *self.current.lock() = None;
        if held.as_ref().is_some_and(Held::lost) {
            tracing::warn!(job = %id, "batch: the job's lease was lost; another replica runs it");
            return;
        }
        if self.stopped() {
            // Shutting down: left `running`, resumed at the next start (or by another replica).
            if let Some(h) = held.filter(|_| !self.keep_lease.load(Ordering::Relaxed)) {
                h.release();
            }
            return;
        }
        if !fence() {
            tracing::warn!(job = %id, "batch: the job's lease was lost before its end was recorded");
            return;
        }
        let now = crate::store::now_ms();
        match res {
            Ok(s) => {
                tracing::info!(job = %id, written = s.written, rejected = s.rejected, secs = s.elapsed_secs, "batch: job done");
                self.update(id, |r| {
                    r.state = JobState::Done;
                    r.stats = s;
                    r.finished_ms = Some(now);
                })
            }
            Err(e) => {
                let msg = format!("{e:#}");
                debug_assert!(!msg.contains(FENCED), "a fenced run is handled above");
                tracing::error!(job = %id, error = %msg, "batch: job failed");
                self.update(id, |r| {
                    r.state = JobState::Failed;
                    r.error = Some(msg);
                    r.finished_ms = Some(now);
                })
            }
        }
        if let Some(h) = held {
            h.release();
        }
    }
}
