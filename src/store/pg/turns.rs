//! PostgreSQL: appending triaged turns (the turn, its decision, live event and webhooks in one
//! transaction, committed before the answer), replies, and reading conversations back. Writers
//! of one conversation are serialised by a transaction-scoped advisory lock on its id, so two
//! replicas never number the same turn.

use super::Pg;
use crate::error::{AppError, AppResult};
use crate::routing::{Decision, PastTurn, Route};
use crate::store::signals::StoredSignals;
use crate::store::turns::{
    route_changed, to_json, turn_limit, Appended, ConversationInfo, EventFn, NewTurn, TurnRecord,
};
use crate::store::{now_ms, StoreConfig};
use postgres::Row;

pub(super) const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 7470102))";
const INFO: &str = "SELECT id, created_ms, updated_ms, turns, resolved_turn, target, queue, \
                    priority, customer FROM conversations";

impl Pg {
    pub fn append(
        &self,
        config: &StoreConfig,
        t: NewTurn,
        decide: impl FnOnce(&[PastTurn], u32) -> Decision,
        event: EventFn,
        webhook_urls: &[String],
    ) -> AppResult<Appended> {
        let now = now_ms();
        let mut c = self.pool.get()?;
        let mut tx = c.transaction()?;
        let id = &t.conversation_id;
        tx.execute(LOCK, &[id])?;
        let head = tx.query_opt(
            "SELECT turns, resolved_turn, (SELECT route FROM turns t WHERE t.conversation_id = c.id \
             AND t.route IS NOT NULL AND t.turn > c.resolved_turn ORDER BY t.turn DESC LIMIT 1) \
             FROM conversations c WHERE c.id = $1",
            &[id],
        )?;
        let head: Option<(u32, u32, Option<String>)> = head.map(|r| {
            (
                r.get::<_, i32>(0) as u32,
                r.get::<_, i32>(1) as u32,
                r.get(2),
            )
        });
        let (turns, resolved) = head.as_ref().map_or((0, 0), |h| (h.0, h.1));
        turn_limit(turns, config.max_turns, "; start a new one")?;
        let previous: Option<Route> = head
            .as_ref()
            .and_then(|h| h.2.as_deref())
            .and_then(|s| serde_json::from_str(s).ok());
        let mut history = Vec::new();
        for r in tx.query(
            "SELECT memo FROM turns WHERE conversation_id = $1 AND turn > $2 \
             AND memo IS NOT NULL ORDER BY turn",
            &[id, &(resolved as i32)],
        )? {
            if let Ok(p) = serde_json::from_str(r.get::<_, &str>(0)) {
                history.push(p);
            }
        }
        let n = turns + 1;
        let d = decide(&history, n);
        let rec = TurnRecord {
            turn: n,
            at_ms: now,
            role: "customer".into(),
            text: t.text,
            channel: t.channel,
            agent_id: None,
            signals: t.signals,
            route: Some(d.route.clone()),
            memo: Some(d.memo),
        };
        tx.execute(
            "INSERT INTO turns (conversation_id, turn, at_ms, role, text, channel, signals, route, memo) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                id,
                &(n as i32),
                &now,
                &rec.role,
                &rec.text,
                &rec.channel,
                &rec.signals.to_row(),
                &to_json(&d.route),
                &to_json(&d.memo),
            ],
        )?;
        let customer = t.customer.as_ref().map(|c| c.to_string());
        tx.execute(
            "INSERT INTO conversations (id, created_ms, updated_ms, turns, target, queue, priority, customer) \
             VALUES ($1, $2, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET updated_ms = $2, turns = $3, target = $4, queue = $5, \
             priority = $6, customer = COALESCE($7, conversations.customer)",
            &[
                id,
                &now,
                &(n as i32),
                &d.route.target.as_str(),
                &d.route.queue,
                &d.route.priority,
                &customer,
            ],
        )?;
        // The event's id is this transaction's id: see pg/events.rs.
        let seq: i64 = tx
            .query_one("SELECT pg_current_xact_id()::text::bigint", &[])?
            .get(0);
        let data = event(id, &rec, previous.as_ref(), seq);
        tx.execute(
            "INSERT INTO events (seq, conversation_id, queue, at_ms, data) VALUES ($1, $2, $3, $4, $5)",
            &[&seq, id, &d.route.queue, &now, &data.to_string()],
        )?;
        // Wakes every replica's streams at commit (pg/listen.rs); ids only in the payload.
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&super::listen::EVENTS_CHANNEL, &seq.to_string()],
        )?;
        let mut webhooks = 0;
        if route_changed(previous.as_ref(), &d.route) {
            webhooks = super::outbox::enqueue(&mut tx, id, n, &d.route, webhook_urls, now)?;
        }
        tx.commit()?;
        Ok(Appended {
            turn: rec,
            previous,
            event_seq: seq,
            webhooks,
        })
    }

    pub fn conversation(&self, id: &str) -> AppResult<ConversationInfo> {
        let mut c = self.pool.get()?;
        c.query_opt(&format!("{INFO} WHERE id = $1"), &[&id])?
            .map(|r| info_row(&r))
            .ok_or_else(|| AppError::not_found("conversation_id", "no conversation with this id"))
    }

    pub fn turns(&self, id: &str, upto: Option<u32>) -> AppResult<Vec<TurnRecord>> {
        let mut c = self.pool.get()?;
        let rows = c.query(
            "SELECT turn, at_ms, role, text, channel, signals, route, memo, agent_id FROM turns \
             WHERE conversation_id = $1 AND turn <= $2::BIGINT ORDER BY turn",
            &[&id, &i64::from(upto.unwrap_or(u32::MAX))],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                let turn = r.get::<_, i32>(0) as u32;
                let route: Option<String> = r.get(6);
                let memo: Option<String> = r.get(7);
                TurnRecord {
                    turn,
                    at_ms: r.get(1),
                    role: r.get(2),
                    text: r.get(3),
                    channel: r.get(4),
                    agent_id: r.get(8),
                    signals: StoredSignals::from_row(r.get(5), id, turn),
                    route: route.and_then(|s| serde_json::from_str(&s).ok()),
                    memo: memo.and_then(|s| serde_json::from_str(&s).ok()),
                }
            })
            .collect())
    }

    pub fn recent(&self, queue: Option<&str>, limit: u32) -> AppResult<Vec<ConversationInfo>> {
        let mut c = self.pool.get()?;
        let rows = c.query(
            &format!(
                "{INFO} WHERE ($1::TEXT IS NULL OR queue = $1) ORDER BY updated_ms DESC LIMIT $2"
            ),
            &[&queue, &i64::from(limit)],
        )?;
        Ok(rows.iter().map(info_row).collect())
    }

    pub fn resolve(&self, id: &str) -> AppResult<ConversationInfo> {
        let n = {
            let mut c = self.pool.get()?;
            c.execute(
                "UPDATE conversations SET resolved_turn = turns, updated_ms = $2 WHERE id = $1",
                &[&id, &now_ms()],
            )?
        };
        if n == 0 {
            return Err(AppError::not_found(
                "conversation_id",
                "no conversation with this id",
            ));
        }
        self.conversation(id)
    }
}

fn info_row(r: &Row) -> ConversationInfo {
    let customer: Option<String> = r.get(8);
    ConversationInfo {
        id: r.get(0),
        created_ms: r.get(1),
        updated_at_ms: r.get(2),
        turns: r.get::<_, i32>(3) as u32,
        resolved_turn: r.get::<_, i32>(4) as u32,
        target: r.get(5),
        queue: r.get(6),
        priority: r.get(7),
        customer: customer.and_then(|s| serde_json::from_str(&s).ok()),
    }
}
