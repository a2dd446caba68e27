//! SQLite: appending a reply with its inspection, `qa` event and fatal-finding webhooks in one
//! transaction, and reading inspected replies back for the reports.

use super::Sqlite;
use crate::error::{AppError, AppResult};
use crate::store::qa::{
    qa_event, qa_key, qa_webhook_body, waiting_since_sql, NewReply, QaQuery, QaRecord,
    ReplyAppended,
};
use crate::store::signals::StoredSignals;
use crate::store::turns::turn_limit;
use crate::store::{now_ms, StoreConfig};
use rusqlite::{params, OptionalExtension, Row};

const COLUMNS: &str =
    "conversation_id, turn, agent_id, at_ms, score, fatal, response_ms, abusive, findings";

fn record(r: &Row) -> rusqlite::Result<QaRecord> {
    let findings: String = r.get(8)?;
    Ok(QaRecord {
        conversation_id: r.get(0)?,
        turn: r.get(1)?,
        agent_id: r.get(2)?,
        at_ms: r.get(3)?,
        score: r.get(4)?,
        fatal: r.get(5)?,
        response_ms: r.get(6)?,
        abusive: r.get::<_, Option<f64>>(7)?.map(|v| v as f32),
        findings: serde_json::from_str(&findings).unwrap_or_default(),
    })
}

impl Sqlite {
    pub fn append_reply(&self, config: &StoreConfig, r: NewReply) -> AppResult<ReplyAppended> {
        let now = now_ms();
        let id = r.conversation_id;
        let mut c = self.write();
        let tx = c.transaction()?;
        let turns: Option<u32> = tx
            .query_row("SELECT turns FROM conversations WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        let turns = turns.ok_or_else(|| {
            AppError::not_found("conversation_id", "no conversation with this id")
        })?;
        turn_limit(turns, config.max_turns, "")?;
        let n = turns + 1;
        let since: Option<i64> = match r.role {
            "agent" => tx.query_row(&waiting_since_sql("?1"), [id], |r| r.get(0))?,
            _ => None,
        };
        let response_ms = since.map(|s| (now - s).max(0));
        tx.execute(
            "INSERT INTO turns (conversation_id, turn, at_ms, role, text, signals, agent_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                n,
                now,
                r.role,
                r.text,
                StoredSignals::default().to_row(),
                r.agent_id
            ],
        )?;
        tx.execute(
            "UPDATE conversations SET turns = ?2, updated_ms = ?3 WHERE id = ?1",
            params![id, n, now],
        )?;
        let mut out = ReplyAppended {
            turn: n,
            at_ms: now,
            response_ms,
            event_seq: None,
            webhooks: 0,
        };
        if let Some(q) = r.qa {
            let rec = q.record(id, n, r.agent_id, now, response_ms);
            tx.execute(
                &format!("INSERT INTO qa_replies ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    id,
                    n,
                    rec.agent_id,
                    now,
                    rec.score,
                    rec.fatal,
                    response_ms,
                    rec.abusive.map(f64::from),
                    rec.findings.to_string()
                ],
            )?;
            let found = rec.findings.as_array().is_some_and(|a| !a.is_empty());
            if found {
                let seq: i64 = tx.query_row(
                    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) + 1",
                    [],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "INSERT INTO events (seq, conversation_id, queue, at_ms, data) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![seq, id, q.queue, now, qa_event(&rec, seq).to_string()],
                )?;
                out.event_seq = Some(seq);
            }
            if rec.fatal {
                for url in q.webhook_urls {
                    let key = qa_key(id, n, url);
                    out.webhooks += tx.execute(
                        "INSERT OR IGNORE INTO outbox (key, url, conversation_id, turn, decision, body, created_ms, next_ms) \
                         VALUES (?1, ?2, ?3, ?4, 'null', ?5, ?6, ?6)",
                        params![key, url, id, n, qa_webhook_body(&rec, &key), now],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(out)
    }

    pub fn qa_records(&self, q: &QaQuery) -> AppResult<Vec<QaRecord>> {
        let c = self.read();
        let mut s = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM qa_replies WHERE at_ms >= ?1 AND at_ms < ?2 \
             AND (?3 IS NULL OR agent_id = ?3) ORDER BY at_ms, conversation_id, turn LIMIT ?4"
        ))?;
        let rows = s.query_map(params![q.from_ms, q.to_ms, q.agent_id, q.limit], record)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn qa_conversation(&self, id: &str) -> AppResult<Vec<QaRecord>> {
        let c = self.read();
        let mut s = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM qa_replies WHERE conversation_id = ?1 ORDER BY turn"
        ))?;
        let rows = s.query_map([id], record)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn qa_agent_known(&self, agent_id: &str) -> AppResult<bool> {
        let c = self.read();
        Ok(c.query_row(
            "SELECT EXISTS (SELECT 1 FROM qa_replies WHERE agent_id = ?1)",
            [agent_id],
            |r| r.get(0),
        )?)
    }
}
