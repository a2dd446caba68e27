//! PostgreSQL: knowledge-base articles (a whole batch in one transaction with one prepared
//! statement) and the agents' feedback on suggestions. Every article write sends
//! `NOTIFY triage_reload, 'kb:<kb>'` in its transaction, so each replica's listener re-reads
//! that knowledge base from the table (`listen.rs`). Ids and names sort bytewise (`COLLATE "C"`),
//! as in SQLite.

use super::docs::RELOAD_CHANNEL;
use super::Pg;
use crate::error::AppResult;
use crate::store::kb::{decode, Columns, Encoded, FeedbackAction, FeedbackCounts, KbRow};
use postgres::{Row, Transaction};
use std::collections::HashMap;

const SELECT: &str =
    "SELECT kb, id, article, model, dim, chunks, vectors, updated_ms FROM kb_articles";

fn columns(r: Row) -> Columns {
    Columns {
        kb: r.get(0),
        id: r.get(1),
        article: r.get(2),
        model: r.get(3),
        dim: r.get(4),
        chunks: r.get(5),
        vectors: r.get(6),
        updated_ms: r.get(7),
    }
}

/// Tell every replica's listener that articles `ids` of knowledge base `kb` changed (all of
/// them when `ids` is empty), sent at commit.
fn notify(tx: &mut Transaction, kb: &str, ids: &[&str]) -> Result<u64, postgres::Error> {
    let payload = crate::store::kb::reload_payload(kb, ids);
    tx.execute("SELECT pg_notify($1, $2)", &[&RELOAD_CHANNEL, &payload])
}

impl Pg {
    /// Write the checked `rows` (their columns in `encoded`): `(created, replaced)`.
    pub fn kb_put(
        &self,
        kb: &str,
        rows: &[KbRow],
        encoded: &[Encoded],
    ) -> AppResult<(usize, usize)> {
        let now = crate::store::now_ms();
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        // `xmax = 0` only on a freshly inserted row: tells created from replaced.
        let q = tx.prepare(
            "INSERT INTO kb_articles (kb, id, article, model, dim, chunks, vectors, updated_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (kb, id) DO UPDATE SET article = EXCLUDED.article, \
             model = EXCLUDED.model, dim = EXCLUDED.dim, chunks = EXCLUDED.chunks, \
             vectors = EXCLUDED.vectors, updated_ms = EXCLUDED.updated_ms \
             RETURNING (xmax = 0)",
        )?;
        let mut created = 0;
        for (r, e) in rows.iter().zip(encoded) {
            let inserted: bool = tx
                .query_one(
                    &q,
                    &[
                        &kb, &r.id, &r.article, &r.model, &e.dim, &e.chunks, &e.vectors, &now,
                    ],
                )?
                .get(0);
            created += usize::from(inserted);
        }
        if !rows.is_empty() {
            let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            notify(&mut tx, kb, &ids)?;
        }
        tx.commit()?;
        Ok((created, rows.len() - created))
    }

    pub fn kb_delete(&self, kb: &str, id: &str) -> AppResult<bool> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let n = tx.execute(
            "DELETE FROM kb_articles WHERE kb = $1 AND id = $2",
            &[&kb, &id],
        )?;
        if n > 0 {
            notify(&mut tx, kb, &[id])?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    pub fn kb_articles(&self, kb: &str) -> AppResult<Vec<KbRow>> {
        let mut c = self.pool.get()?;
        let rows = c.query(
            &format!("{SELECT} WHERE kb = $1 ORDER BY id COLLATE \"C\""),
            &[&kb],
        )?;
        rows.into_iter().map(|r| decode(columns(r))).collect()
    }

    pub fn kb_article(&self, kb: &str, id: &str) -> AppResult<Option<KbRow>> {
        let mut c = self.pool.get()?;
        let row = c.query_opt(&format!("{SELECT} WHERE kb = $1 AND id = $2"), &[&kb, &id])?;
        row.map(|r| decode(columns(r))).transpose()
    }

    pub fn kb_names(&self) -> AppResult<Vec<(String, usize)>> {
        let mut c = self.pool.get()?;
        let rows = c.query(
            "SELECT kb, COUNT(*) FROM kb_articles GROUP BY kb ORDER BY kb COLLATE \"C\"",
            &[],
        )?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as usize))
            .collect())
    }

    pub fn kb_drop(&self, kb: &str) -> AppResult<usize> {
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let n = tx.execute("DELETE FROM kb_articles WHERE kb = $1", &[&kb])?;
        if n > 0 {
            notify(&mut tx, kb, &[])?;
        }
        tx.commit()?;
        Ok(n as usize)
    }

    pub fn kb_feedback_add(
        &self,
        conversation_id: &str,
        suggestion: &str,
        action: FeedbackAction,
        text: Option<&str>,
        now: i64,
    ) -> AppResult<i64> {
        let mut c = self.pool.get()?;
        let r = c.query_one(
            "INSERT INTO kb_feedback (conversation_id, suggestion, action, text, at_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&conversation_id, &suggestion, &action.as_str(), &text, &now],
        )?;
        Ok(r.get(0))
    }

    pub fn kb_feedback_counts(&self, suggestions: &[String]) -> AppResult<Vec<FeedbackCounts>> {
        let mut c = self.pool.get()?;
        let rows = c.query(
            "SELECT suggestion, action, COUNT(*) FROM kb_feedback \
             WHERE suggestion = ANY($1) GROUP BY suggestion, action",
            &[&suggestions],
        )?;
        let mut by: HashMap<String, FeedbackCounts> = HashMap::new();
        for r in rows {
            by.entry(r.get(0))
                .or_default()
                .add(r.get::<_, &str>(1), r.get(2));
        }
        Ok(suggestions
            .iter()
            .map(|s| by.get(s).cloned().unwrap_or_default())
            .collect())
    }
}
