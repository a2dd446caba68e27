//! SQLite: the webhook outbox rows, queued inside the turn's transaction, read when due and
//! marked delivered or failed. One process owns the file, so no claim is needed.

use super::Sqlite;
use crate::error::AppResult;
use crate::routing::Route;
use crate::store::outbox::{idempotency_key, OutboxRow};
use rusqlite::{params, OptionalExtension};

/// Queue one delivery per URL inside the turn's transaction.
pub(crate) fn enqueue(
    tx: &rusqlite::Transaction,
    conversation_id: &str,
    turn: u32,
    route: &Route,
    urls: &[String],
    now: i64,
) -> rusqlite::Result<usize> {
    let decision = serde_json::to_string(route).unwrap_or_default();
    let mut n = 0;
    for url in urls {
        n += tx.execute(
            "INSERT OR IGNORE INTO outbox (key, url, conversation_id, turn, decision, created_ms, next_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            params![
                idempotency_key(conversation_id, turn, url),
                url,
                conversation_id,
                turn,
                decision,
                now
            ],
        )?;
    }
    Ok(n)
}

impl Sqlite {
    pub fn outbox_due(&self, now: i64, limit: u32) -> AppResult<Vec<OutboxRow>> {
        let c = self.read();
        let mut q = c.prepare_cached(
            "SELECT id, key, url, conversation_id, turn, decision, body, attempts FROM outbox \
             WHERE delivered_ms IS NULL AND dead = 0 AND next_ms <= ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = q.query_map(params![now, limit], |r| {
            Ok(OutboxRow {
                id: r.get(0)?,
                key: r.get(1)?,
                url: r.get(2)?,
                conversation_id: r.get(3)?,
                turn: r.get(4)?,
                decision: r.get(5)?,
                body: r.get(6)?,
                attempts: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn outbox_next_due(&self) -> AppResult<Option<i64>> {
        let c = self.read();
        Ok(c.query_row(
            "SELECT MIN(next_ms) FROM outbox WHERE delivered_ms IS NULL AND dead = 0",
            [],
            |r| r.get::<_, Option<i64>>(0),
        )
        .optional()?
        .flatten())
    }

    pub fn outbox_set_body(&self, id: i64, body: &str) -> AppResult<()> {
        self.write().execute(
            "UPDATE outbox SET body = ?2 WHERE id = ?1 AND body IS NULL",
            params![id, body],
        )?;
        Ok(())
    }

    pub fn outbox_delivered(&self, id: i64, now: i64) -> AppResult<()> {
        self.write().execute(
            "UPDATE outbox SET delivered_ms = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    pub fn outbox_failed(&self, id: i64, next_ms: i64, dead: bool, error: &str) -> AppResult<()> {
        self.write().execute(
            "UPDATE outbox SET attempts = attempts + 1, next_ms = ?2, dead = ?3, last_error = ?4 WHERE id = ?1",
            params![id, next_ms, dead, error],
        )?;
        Ok(())
    }

    pub fn outbox_counts(&self) -> AppResult<(i64, i64, i64)> {
        let c = self.read();
        Ok(c.query_row(
            "SELECT COALESCE(SUM(delivered_ms IS NULL AND dead = 0), 0), \
             COALESCE(SUM(delivered_ms IS NOT NULL), 0), COALESCE(SUM(dead), 0) FROM outbox",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?)
    }
}
