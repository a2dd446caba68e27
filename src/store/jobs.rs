//! Batch job leases: one runner per HTTP batch job across replicas (`batch::jobs`). With
//! PostgreSQL a job runs only under a lease row (`pg/jobs.rs`) that its runner renews while it
//! works and that another replica may take once it expires, so a dead holder's job resumes
//! elsewhere. With SQLite the store belongs to one process, which runs its jobs one at a time:
//! every claim and renewal succeeds and nothing is recorded.

use super::{Backend, Store};
use crate::error::AppResult;

impl Store {
    /// Whether batch jobs are shared between replicas (PostgreSQL) and need leases.
    pub fn shares_jobs(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Take the lease of `job_id` for `lease_ms` when it is free, expired or already
    /// `holder`'s; false when another holder has it.
    pub fn claim_job(&self, job_id: &str, holder: &str, lease_ms: i64) -> AppResult<bool> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(true),
            Backend::Postgres(p) => p.claim_job(job_id, holder, lease_ms),
        }
    }

    /// Extend `holder`'s lease of `job_id` to `lease_ms` from now; false when it is no longer
    /// `holder`'s (another replica took it over): the holder must then stop writing.
    pub fn renew_job(&self, job_id: &str, holder: &str, lease_ms: i64) -> AppResult<bool> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(true),
            Backend::Postgres(p) => p.renew_job(job_id, holder, lease_ms),
        }
    }

    /// Give up `holder`'s lease of `job_id` (a no-op when it is not `holder`'s).
    pub fn release_job(&self, job_id: &str, holder: &str) -> AppResult<()> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(p) => p.release_job(job_id, holder),
        }
    }
}
