//! PostgreSQL: documents shared by every replica (`shared_docs`: a name, a body, a version
//! bumped by every write) and the unmatched texts kept for discovery (`unmatched`: rows appended
//! by any replica, so concurrent appends never overwrite each other). A document write sends
//! `NOTIFY triage_reload, '<name>'` in its transaction; every replica's listener then re-reads
//! it (`listen.rs`).

use super::Pg;
use crate::error::AppResult;

/// The notification channel of shared document changes.
pub(crate) const RELOAD_CHANNEL: &str = "triage_reload";

impl Pg {
    /// The document `name`: its version and body, or None when it was never written.
    pub fn get_doc(&self, name: &str) -> AppResult<Option<(i64, Vec<u8>)>> {
        let mut c = self.pool.get()?;
        let row = c.query_opt(
            "SELECT version, body FROM shared_docs WHERE name = $1",
            &[&name],
        )?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Write `name` when its version is still `expected` (0: absent); the new version, or None
    /// when another write came first (re-read it and try again).
    pub fn put_doc_if(&self, name: &str, body: &[u8], expected: i64) -> AppResult<Option<i64>> {
        let now = crate::store::now_ms();
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let n = if expected == 0 {
            tx.execute(
                "INSERT INTO shared_docs (name, body, version, updated_ms) VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &body, &now],
            )?
        } else {
            tx.execute(
                "UPDATE shared_docs SET body = $2, version = version + 1, updated_ms = $3 \
                 WHERE name = $1 AND version = $4",
                &[&name, &body, &now, &expected],
            )?
        };
        if n == 0 {
            return Ok(None);
        }
        tx.execute("SELECT pg_notify($1, $2)", &[&RELOAD_CHANNEL, &name])?;
        tx.commit()?;
        Ok(Some(expected + 1))
    }

    /// Write `name` whatever its version; the new version.
    pub fn put_doc(&self, name: &str, body: &[u8]) -> AppResult<i64> {
        let now = crate::store::now_ms();
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let v: i64 = tx
            .query_one(
                "INSERT INTO shared_docs (name, body, version, updated_ms) VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (name) DO UPDATE \
                 SET body = $2, version = shared_docs.version + 1, updated_ms = $3 \
                 RETURNING version",
                &[&name, &body, &now],
            )?
            .get(0);
        tx.execute("SELECT pg_notify($1, $2)", &[&RELOAD_CHANNEL, &name])?;
        tx.commit()?;
        Ok(v)
    }

    /// Append unmatched texts (`(set, body)`), keeping the newest `max`; their ids, in order.
    pub fn unmatched_push(&self, items: &[(String, String)], max: usize) -> AppResult<Vec<i64>> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let mut ids = Vec::with_capacity(items.len());
        for (set, body) in items {
            let r = tx.query_one(
                "INSERT INTO unmatched (intent_set, body) VALUES ($1, $2) RETURNING id",
                &[&set.as_str(), &body.as_str()],
            )?;
            ids.push(r.get(0));
        }
        tx.execute(
            "DELETE FROM unmatched WHERE id <= \
             (SELECT id FROM unmatched ORDER BY id DESC OFFSET $1 LIMIT 1)",
            &[&(max as i64)],
        )?;
        tx.commit()?;
        Ok(ids)
    }

    /// The unmatched texts of `set`, oldest first: `(id, body)`.
    pub fn unmatched_of_set(&self, set: &str) -> AppResult<Vec<(i64, String)>> {
        let mut c = self.pool.get()?;
        let rows = c.query(
            "SELECT id, body FROM unmatched WHERE intent_set = $1 ORDER BY id",
            &[&set],
        )?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The unmatched texts with these ids: `(id, body)`.
    pub fn unmatched_by_ids(&self, ids: &[i64]) -> AppResult<Vec<(i64, String)>> {
        let mut c = self.pool.get()?;
        let rows = c.query(
            "SELECT id, body FROM unmatched WHERE id = ANY($1) ORDER BY id",
            &[&ids],
        )?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Take out the unmatched texts with these ids; how many there were.
    pub fn unmatched_remove(&self, ids: &[i64]) -> AppResult<usize> {
        let mut c = self.pool.get()?;
        Ok(c.execute("DELETE FROM unmatched WHERE id = ANY($1)", &[&ids])? as usize)
    }

    /// Forget the unmatched texts of `set` (every set when None); how many there were.
    pub fn unmatched_purge(&self, set: Option<&str>) -> AppResult<usize> {
        let mut c = self.pool.get()?;
        let n = match set {
            Some(s) => c.execute("DELETE FROM unmatched WHERE intent_set = $1", &[&s])?,
            None => c.execute("DELETE FROM unmatched", &[])?,
        };
        Ok(n as usize)
    }

    /// How many unmatched texts of `set` are kept.
    pub fn unmatched_count(&self, set: &str) -> AppResult<usize> {
        let mut c = self.pool.get()?;
        let n: i64 = c
            .query_one(
                "SELECT COUNT(*) FROM unmatched WHERE intent_set = $1",
                &[&set],
            )?
            .get(0);
        Ok(n as usize)
    }
}
