//! PostgreSQL: the webhook outbox shared by replicas. `outbox_due` claims rows with a lease
//! (`claimed_until`), picked with `FOR UPDATE SKIP LOCKED` under a short advisory lock, so two
//! replicas never deliver one row at once; a replica that dies mid-delivery leaves its rows to
//! another once the lease ends (at-least-once on the wire, same idempotency key). A row is not
//! claimed while an earlier row of its conversation is leased elsewhere, so one conversation's
//! deliveries go out in order, as with one process.

use super::Pg;
use crate::error::AppResult;
use crate::routing::Route;
use crate::store::outbox::{idempotency_key, OutboxRow};

/// Queue one delivery per URL inside the turn's transaction.
pub(crate) fn enqueue(
    tx: &mut postgres::Transaction,
    conversation_id: &str,
    turn: u32,
    route: &Route,
    urls: &[String],
    now: i64,
) -> Result<usize, postgres::Error> {
    let decision = serde_json::to_string(route).unwrap_or_default();
    let mut n = 0;
    for url in urls {
        n += tx.execute(
            "INSERT INTO outbox (key, url, conversation_id, turn, decision, created_ms, next_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (key) DO NOTHING",
            &[
                &idempotency_key(conversation_id, turn, url),
                url,
                &conversation_id,
                &(turn as i32),
                &decision,
                &now,
            ],
        )? as usize;
    }
    Ok(n)
}

impl Pg {
    pub fn outbox_due(&self, now: i64, limit: u32, lease_ms: i64) -> AppResult<Vec<OutboxRow>> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        // Claims are short: one at a time sees the others' committed leases.
        tx.execute("SELECT pg_advisory_xact_lock(7470103)", &[])?;
        let rows = tx.query(
            "WITH due AS (
               SELECT id FROM outbox o
               WHERE delivered_ms IS NULL AND NOT dead AND next_ms <= $1 AND claimed_until <= $1
                 AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.conversation_id = o.conversation_id
                   AND p.id < o.id AND p.delivered_ms IS NULL AND NOT p.dead AND p.claimed_until > $1)
               ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
             UPDATE outbox SET claimed_until = $3 FROM due WHERE outbox.id = due.id
             RETURNING outbox.id, key, url, conversation_id, turn, decision, body, attempts",
            &[&now, &i64::from(limit), &now.saturating_add(lease_ms)],
        )?;
        tx.commit()?;
        let mut out: Vec<OutboxRow> = rows
            .iter()
            .map(|r| OutboxRow {
                id: r.get(0),
                key: r.get(1),
                url: r.get(2),
                conversation_id: r.get(3),
                turn: r.get::<_, i32>(4) as u32,
                decision: r.get(5),
                body: r.get(6),
                attempts: r.get::<_, i32>(7) as u32,
            })
            .collect();
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    pub fn outbox_next_due(&self) -> AppResult<Option<i64>> {
        let mut c = self.pool.get()?;
        Ok(c.query_one(
            "SELECT MIN(GREATEST(next_ms, claimed_until)) FROM outbox \
             WHERE delivered_ms IS NULL AND NOT dead",
            &[],
        )?
        .get(0))
    }

    pub fn outbox_set_body(&self, id: i64, body: &str) -> AppResult<()> {
        self.pool.get()?.execute(
            "UPDATE outbox SET body = $2 WHERE id = $1 AND body IS NULL",
            &[&id, &body],
        )?;
        Ok(())
    }

    pub fn outbox_delivered(&self, id: i64, now: i64) -> AppResult<()> {
        self.pool.get()?.execute(
            "UPDATE outbox SET delivered_ms = $2, attempts = attempts + 1, last_error = NULL, \
             claimed_until = 0 WHERE id = $1",
            &[&id, &now],
        )?;
        Ok(())
    }

    pub fn outbox_failed(&self, id: i64, next_ms: i64, dead: bool, error: &str) -> AppResult<()> {
        self.pool.get()?.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_ms = $2, dead = $3, last_error = $4, \
             claimed_until = 0 WHERE id = $1",
            &[&id, &next_ms, &dead, &error],
        )?;
        Ok(())
    }

    pub fn outbox_counts(&self) -> AppResult<(i64, i64, i64)> {
        let r = self.pool.get()?.query_one(
            "SELECT COUNT(*) FILTER (WHERE delivered_ms IS NULL AND NOT dead), \
             COUNT(*) FILTER (WHERE delivered_ms IS NOT NULL), COUNT(*) FILTER (WHERE dead) \
             FROM outbox",
            &[],
        )?;
        Ok((r.get(0), r.get(1), r.get(2)))
    }
}
