//! SQLite: knowledge-base articles (a whole batch in one transaction with one prepared
//! statement, so thousands of rows commit at once) and the agents' feedback on suggestions.

use super::Sqlite;
use crate::error::AppResult;
use crate::store::kb::{decode, Columns, Encoded, FeedbackAction, FeedbackCounts, KbRow};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

const SELECT: &str =
    "SELECT kb, id, article, model, dim, chunks, vectors, updated_ms FROM kb_articles";

fn columns(r: &rusqlite::Row) -> rusqlite::Result<Columns> {
    Ok(Columns {
        kb: r.get(0)?,
        id: r.get(1)?,
        article: r.get(2)?,
        model: r.get(3)?,
        dim: r.get(4)?,
        chunks: r.get(5)?,
        vectors: r.get(6)?,
        updated_ms: r.get(7)?,
    })
}

impl Sqlite {
    /// Write the checked `rows` (their columns in `encoded`): `(created, replaced)`.
    pub fn kb_put(
        &self,
        kb: &str,
        rows: &[KbRow],
        encoded: &[Encoded],
    ) -> AppResult<(usize, usize)> {
        let now = crate::store::now_ms();
        let mut c = self.write();
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let count = |tx: &rusqlite::Transaction| -> rusqlite::Result<i64> {
            tx.prepare_cached("SELECT COUNT(*) FROM kb_articles WHERE kb = ?1")?
                .query_row([kb], |r| r.get(0))
        };
        let before = count(&tx)?;
        {
            let mut q = tx.prepare_cached(
                "INSERT OR REPLACE INTO kb_articles \
                 (kb, id, article, model, dim, chunks, vectors, updated_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for (r, e) in rows.iter().zip(encoded) {
                q.execute(params![
                    kb, r.id, r.article, r.model, e.dim, e.chunks, e.vectors, now
                ])?;
            }
        }
        // Ids are distinct (checked), so the articles added are the created ones.
        let created = (count(&tx)? - before).max(0) as usize;
        tx.commit()?;
        Ok((created, rows.len() - created))
    }

    pub fn kb_delete(&self, kb: &str, id: &str) -> AppResult<bool> {
        let c = self.write();
        let n = c
            .prepare_cached("DELETE FROM kb_articles WHERE kb = ?1 AND id = ?2")?
            .execute([kb, id])?;
        Ok(n > 0)
    }

    pub fn kb_articles(&self, kb: &str) -> AppResult<Vec<KbRow>> {
        let c = self.read();
        let mut q = c.prepare_cached(&format!("{SELECT} WHERE kb = ?1 ORDER BY id"))?;
        let cols = q.query_map([kb], columns)?.collect::<Result<Vec<_>, _>>()?;
        cols.into_iter().map(decode).collect()
    }

    pub fn kb_article(&self, kb: &str, id: &str) -> AppResult<Option<KbRow>> {
        let c = self.read();
        let mut q = c.prepare_cached(&format!("{SELECT} WHERE kb = ?1 AND id = ?2"))?;
        let cols = q.query_row([kb, id], columns).optional()?;
        cols.map(decode).transpose()
    }

    pub fn kb_names(&self) -> AppResult<Vec<(String, usize)>> {
        let c = self.read();
        let mut q =
            c.prepare_cached("SELECT kb, COUNT(*) FROM kb_articles GROUP BY kb ORDER BY kb")?;
        let rows = q.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as usize))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn kb_drop(&self, kb: &str) -> AppResult<usize> {
        let c = self.write();
        let n = c
            .prepare_cached("DELETE FROM kb_articles WHERE kb = ?1")?
            .execute([kb])?;
        Ok(n)
    }

    pub fn kb_feedback_add(
        &self,
        conversation_id: &str,
        suggestion: &str,
        action: FeedbackAction,
        text: Option<&str>,
        now: i64,
    ) -> AppResult<i64> {
        let c = self.write();
        c.prepare_cached(
            "INSERT INTO kb_feedback (conversation_id, suggestion, action, text, at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            conversation_id,
            suggestion,
            action.as_str(),
            text,
            now
        ])?;
        Ok(c.last_insert_rowid())
    }

    pub fn kb_feedback_counts(&self, suggestions: &[String]) -> AppResult<Vec<FeedbackCounts>> {
        let c = self.read();
        let mut q = c.prepare_cached(
            "SELECT action, COUNT(*) FROM kb_feedback WHERE suggestion = ?1 GROUP BY action",
        )?;
        let mut out = Vec::with_capacity(suggestions.len());
        for s in suggestions {
            let mut counts = FeedbackCounts::default();
            for r in q.query_map([s], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                let (action, n) = r?;
                counts.add(&action, n);
            }
            out.push(counts);
        }
        Ok(out)
    }
}
