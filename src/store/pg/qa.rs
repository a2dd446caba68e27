//! PostgreSQL: appending a reply with its inspection, `qa` event (woken on every replica) and
//! fatal-finding webhooks in one transaction, and reading inspected replies back for the reports.

use super::turns::LOCK;
use super::Pg;
use crate::error::{AppError, AppResult};
use crate::store::qa::{
    qa_event, qa_key, qa_webhook_body, waiting_since_sql, NewReply, QaQuery, QaRecord,
    ReplyAppended,
};
use crate::store::signals::StoredSignals;
use crate::store::turns::turn_limit;
use crate::store::{now_ms, StoreConfig};
use postgres::Row;

const COLUMNS: &str =
    "conversation_id, turn, agent_id, at_ms, score, fatal, response_ms, abusive, findings";

fn record(r: &Row) -> QaRecord {
    let findings: String = r.get(8);
    QaRecord {
        conversation_id: r.get(0),
        turn: r.get::<_, i32>(1) as u32,
        agent_id: r.get(2),
        at_ms: r.get(3),
        score: r.get::<_, i32>(4) as u32,
        fatal: r.get(5),
        response_ms: r.get(6),
        abusive: r.get(7),
        findings: serde_json::from_str(&findings).unwrap_or_default(),
    }
}

impl Pg {
    pub fn append_reply(&self, config: &StoreConfig, r: NewReply) -> AppResult<ReplyAppended> {
        let now = now_ms();
        let id = r.conversation_id;
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        tx.execute(LOCK, &[&id])?;
        let turns = tx
            .query_opt("SELECT turns FROM conversations WHERE id = $1", &[&id])?
            .map(|r| r.get::<_, i32>(0) as u32)
            .ok_or_else(|| {
                AppError::not_found("conversation_id", "no conversation with this id")
            })?;
        turn_limit(turns, config.max_turns, "")?;
        let n = turns + 1;
        let since: Option<i64> = match r.role {
            "agent" => tx.query_one(&waiting_since_sql("$1"), &[&id])?.get(0),
            _ => None,
        };
        let response_ms = since.map(|s| (now - s).max(0));
        tx.execute(
            "INSERT INTO turns (conversation_id, turn, at_ms, role, text, signals, agent_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &id,
                &(n as i32),
                &now,
                &r.role,
                &r.text,
                &StoredSignals::default().to_row(),
                &r.agent_id,
            ],
        )?;
        tx.execute(
            "UPDATE conversations SET turns = $2, updated_ms = $3 WHERE id = $1",
            &[&id, &(n as i32), &now],
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
                &format!(
                    "INSERT INTO qa_replies ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ),
                &[
                    &id,
                    &(n as i32),
                    &rec.agent_id,
                    &now,
                    &(rec.score as i32),
                    &rec.fatal,
                    &response_ms,
                    &rec.abusive,
                    &rec.findings.to_string(),
                ],
            )?;
            if rec.findings.as_array().is_some_and(|a| !a.is_empty()) {
                // The event's id is this transaction's id: see pg/events.rs.
                let seq: i64 = tx
                    .query_one("SELECT pg_current_xact_id()::text::bigint", &[])?
                    .get(0);
                tx.execute(
                    "INSERT INTO events (seq, conversation_id, queue, at_ms, data) VALUES ($1, $2, $3, $4, $5)",
                    &[&seq, &id, &q.queue, &now, &qa_event(&rec, seq).to_string()],
                )?;
                tx.execute(
                    "SELECT pg_notify($1, $2)",
                    &[&super::listen::EVENTS_CHANNEL, &seq.to_string()],
                )?;
                out.event_seq = Some(seq);
            }
            if rec.fatal {
                for url in q.webhook_urls {
                    let key = qa_key(id, n, url);
                    out.webhooks += tx.execute(
                        "INSERT INTO outbox (key, url, conversation_id, turn, decision, body, created_ms, next_ms) \
                         VALUES ($1, $2, $3, $4, 'null', $5, $6, $6) ON CONFLICT (key) DO NOTHING",
                        &[&key, url, &id, &(n as i32), &qa_webhook_body(&rec, &key), &now],
                    )? as usize;
                }
            }
        }
        tx.commit()?;
        Ok(out)
    }

    pub fn qa_records(&self, q: &QaQuery) -> AppResult<Vec<QaRecord>> {
        let mut c = self.pool.get()?;
        let rows = c.query(
            &format!(
                "SELECT {COLUMNS} FROM qa_replies WHERE at_ms >= $1 AND at_ms < $2 \
                 AND ($3::TEXT IS NULL OR agent_id = $3) ORDER BY at_ms, conversation_id, turn LIMIT $4"
            ),
            &[&q.from_ms, &q.to_ms, &q.agent_id, &i64::from(q.limit)],
        )?;
        Ok(rows.iter().map(record).collect())
    }

    pub fn qa_conversation(&self, id: &str) -> AppResult<Vec<QaRecord>> {
        let mut c = self.pool.get()?;
        let rows = c.query(
            &format!("SELECT {COLUMNS} FROM qa_replies WHERE conversation_id = $1 ORDER BY turn"),
            &[&id],
        )?;
        Ok(rows.iter().map(record).collect())
    }

    pub fn qa_agent_known(&self, agent_id: &str) -> AppResult<bool> {
        let mut c = self.pool.get()?;
        Ok(c.query_one(
            "SELECT EXISTS (SELECT 1 FROM qa_replies WHERE agent_id = $1)",
            &[&agent_id],
        )?
        .get(0))
    }
}
