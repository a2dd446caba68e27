//! The folder scan of replicas sharing the jobs folder: which unfinished jobs to try to claim.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// When to look in the folder for unfinished jobs, and which jobs are known to be finished.
pub struct Scanner {
    every: Duration,
    last: Option<Instant>,
    finished: HashSet<String>,
}

impl Scanner {
    pub fn new(every: Duration) -> Scanner {
        Scanner {
            every,
            last: None,
            finished: HashSet::new(),
        }
    }

    /// When a scan is due: the queued and running jobs in `dir`, oldest first; else nothing.
    pub fn due(&mut self, dir: &Path) -> Vec<String> {
        if self.last.is_some_and(|t| t.elapsed() < self.every) {
            return Vec::new();
        }
        self.last = Some(Instant::now());
        let mut ids = Vec::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return ids;
        };
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().to_string();
            if !super::valid_id(&id) || self.finished.contains(&id) {
                continue;
            }
            match super::read_record(&dir.join(&id)) {
                Some(r) if r.state.finished() => {
                    self.finished.insert(id);
                }
                Some(_) => ids.push(id),
                None => {}
            }
        }
        ids.sort();
        ids
    }

    /// How long until the next scan is due.
    pub fn wait(&self) -> Duration {
        self.last
            .map_or(Duration::ZERO, |t| self.every.saturating_sub(t.elapsed()))
    }
}
