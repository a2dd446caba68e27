//! SQLite: appending triaged turns (the turn, its decision, live event and webhooks in one
//! transaction), replies, and reading conversations back.

use super::Sqlite;
use crate::error::{AppError, AppResult};
use crate::routing::{Decision, PastTurn, Route};
use crate::store::signals::StoredSignals;
use crate::store::turns::{
    route_changed, to_json, turn_limit, Appended, ConversationInfo, EventFn, NewTurn, TurnRecord,
};
use crate::store::{now_ms, StoreConfig};
use rusqlite::{params, OptionalExtension};

impl Sqlite {
    pub fn append(
        &self,
        config: &StoreConfig,
        t: NewTurn,
        decide: impl FnOnce(&[PastTurn], u32) -> Decision,
        event: EventFn,
        webhook_urls: &[String],
    ) -> AppResult<Appended> {
        let now = now_ms();
        let mut c = self.write();
        let tx = c.transaction()?;
        // The conversation, and the route of its latest triaged turn after the last resolution.
        let head: Option<(u32, u32, Option<String>)> = tx
            .query_row(
                "SELECT turns, resolved_turn, (SELECT route FROM turns t WHERE t.conversation_id = c.id \
                 AND t.route IS NOT NULL AND t.turn > c.resolved_turn ORDER BY t.turn DESC LIMIT 1) \
                 FROM conversations c WHERE c.id = ?1",
                [&t.conversation_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (turns, resolved) = head.as_ref().map_or((0, 0), |h| (h.0, h.1));
        turn_limit(turns, config.max_turns, "; start a new one")?;
        let previous: Option<Route> = head
            .as_ref()
            .and_then(|h| h.2.as_deref())
            .and_then(|s| serde_json::from_str(s).ok());
        let history = memos_since(&tx, &t.conversation_id, resolved)?;
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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                t.conversation_id,
                n,
                now,
                rec.role,
                rec.text,
                rec.channel,
                rec.signals.to_row(),
                to_json(&d.route),
                to_json(&d.memo),
            ],
        )?;
        let customer = t.customer.as_ref().map(|c| c.to_string());
        tx.execute(
            "INSERT INTO conversations (id, created_ms, updated_ms, turns, target, queue, priority, customer) \
             VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT(id) DO UPDATE SET updated_ms = ?2, turns = ?3, target = ?4, queue = ?5, \
             priority = ?6, customer = COALESCE(?7, customer)",
            params![
                t.conversation_id,
                now,
                n,
                d.route.target.as_str(),
                d.route.queue,
                d.route.priority,
                customer
            ],
        )?;
        let seq: i64 = tx.query_row(
            // The AUTOINCREMENT counter: never reused, even after retention deletes rows.
            "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) + 1",
            [],
            |r| r.get(0),
        )?;
        let data = event(&t.conversation_id, &rec, previous.as_ref(), seq);
        tx.execute(
            "INSERT INTO events (seq, conversation_id, queue, at_ms, data) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![seq, t.conversation_id, d.route.queue, now, data.to_string()],
        )?;
        let mut webhooks = 0;
        if route_changed(previous.as_ref(), &d.route) {
            webhooks = super::enqueue(&tx, &t.conversation_id, n, &d.route, webhook_urls, now)?;
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
        let c = self.read();
        c.query_row(
            "SELECT id, created_ms, updated_ms, turns, resolved_turn, target, queue, priority, customer \
             FROM conversations WHERE id = ?1",
            [id],
            info_row,
        )
        .optional()?
        .ok_or_else(|| AppError::not_found("conversation_id", "no conversation with this id"))
    }

    pub fn turns(&self, id: &str, upto: Option<u32>) -> AppResult<Vec<TurnRecord>> {
        let c = self.read();
        let mut q = c.prepare(
            "SELECT turn, at_ms, role, text, channel, signals, route, memo, agent_id FROM turns \
             WHERE conversation_id = ?1 AND turn <= ?2 ORDER BY turn",
        )?;
        let rows = q.query_map(params![id, upto.unwrap_or(u32::MAX)], |r| {
            let signals: String = r.get(5)?;
            let route: Option<String> = r.get(6)?;
            let memo: Option<String> = r.get(7)?;
            let turn = r.get(0)?;
            Ok(TurnRecord {
                turn,
                at_ms: r.get(1)?,
                role: r.get(2)?,
                text: r.get(3)?,
                channel: r.get(4)?,
                agent_id: r.get(8)?,
                signals: StoredSignals::from_row(&signals, id, turn),
                route: route.and_then(|s| serde_json::from_str(&s).ok()),
                memo: memo.and_then(|s| serde_json::from_str(&s).ok()),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn recent(&self, queue: Option<&str>, limit: u32) -> AppResult<Vec<ConversationInfo>> {
        let c = self.read();
        let mut q = c.prepare(
            "SELECT id, created_ms, updated_ms, turns, resolved_turn, target, queue, priority, customer \
             FROM conversations WHERE (?1 IS NULL OR queue = ?1) ORDER BY updated_ms DESC LIMIT ?2",
        )?;
        let rows = q.query_map(params![queue, limit], info_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn resolve(&self, id: &str) -> AppResult<ConversationInfo> {
        let n = {
            let c = self.write();
            c.execute(
                "UPDATE conversations SET resolved_turn = turns, updated_ms = ?2 WHERE id = ?1",
                params![id, now_ms()],
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

fn info_row(r: &rusqlite::Row) -> rusqlite::Result<ConversationInfo> {
    let customer: Option<String> = r.get(8)?;
    Ok(ConversationInfo {
        id: r.get(0)?,
        created_ms: r.get(1)?,
        updated_at_ms: r.get(2)?,
        turns: r.get(3)?,
        resolved_turn: r.get(4)?,
        target: r.get(5)?,
        queue: r.get(6)?,
        priority: r.get(7)?,
        customer: customer.and_then(|s| serde_json::from_str(&s).ok()),
    })
}

fn memos_since(
    tx: &rusqlite::Transaction,
    id: &str,
    resolved: u32,
) -> rusqlite::Result<Vec<PastTurn>> {
    let mut q = tx.prepare(
        "SELECT memo FROM turns WHERE conversation_id = ?1 AND turn > ?2 AND memo IS NOT NULL \
         ORDER BY turn",
    )?;
    let rows = q.query_map(params![id, resolved], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for m in rows {
        if let Ok(p) = serde_json::from_str(&m?) {
            out.push(p);
        }
    }
    Ok(out)
}
