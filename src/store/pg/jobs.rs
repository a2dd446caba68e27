//! PostgreSQL: batch job leases in `batch_leases`, one row per job being run somewhere. A claim
//! takes a job whose lease is free, expired, or already this holder's (`INSERT .. ON CONFLICT
//! DO UPDATE .. WHERE`, which PostgreSQL serialises per row), so two replicas never hold one job
//! at once. Times come from the database clock, so replicas with skewed clocks still agree.

use super::Pg;
use crate::error::AppResult;

/// The database's now, in milliseconds since the Unix epoch.
const NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

impl Pg {
    pub fn claim_job(&self, job_id: &str, holder: &str, lease_ms: i64) -> AppResult<bool> {
        let mut c = self.pool.get()?;
        let rows = c.query(
            &format!(
                "INSERT INTO batch_leases (job_id, holder, until_ms) VALUES ($1, $2, {NOW_MS} + $3)
                 ON CONFLICT (job_id) DO UPDATE
                   SET holder = EXCLUDED.holder, until_ms = EXCLUDED.until_ms
                   WHERE batch_leases.until_ms < {NOW_MS} OR batch_leases.holder = EXCLUDED.holder
                 RETURNING holder"
            ),
            &[&job_id, &holder, &lease_ms],
        )?;
        Ok(!rows.is_empty())
    }

    pub fn renew_job(&self, job_id: &str, holder: &str, lease_ms: i64) -> AppResult<bool> {
        let mut c = self.pool.get()?;
        let n = c.execute(
            &format!(
                "UPDATE batch_leases SET until_ms = {NOW_MS} + $3 WHERE job_id = $1 AND holder = $2"
            ),
            &[&job_id, &holder, &lease_ms],
        )?;
        Ok(n == 1)
    }

    pub fn release_job(&self, job_id: &str, holder: &str) -> AppResult<()> {
        let mut c = self.pool.get()?;
        c.execute(
            "DELETE FROM batch_leases WHERE job_id = $1 AND holder = $2",
            &[&job_id, &holder],
        )?;
        Ok(())
    }
}
