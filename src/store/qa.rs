//! Replies and their quality inspection: a bot or agent reply is appended as the next turn, and
//! an inspected agent reply's score and findings (`qa_replies`), its `qa` live event and, for a
//! fatal finding, one webhook row per URL are written in the same transaction. The reports read
//! the inspected replies back by period and agent.

use super::{Backend, Store};
use crate::error::AppResult;
use serde::Serialize;
use serde_json::{json, Value};

/// A reply to append.
pub struct NewReply<'a> {
    pub conversation_id: &'a str,
    /// `bot` or `agent`.
    pub role: &'a str,
    pub text: &'a str,
    pub agent_id: Option<&'a str>,
    /// The inspection of an agent reply (None: not inspected).
    pub qa: Option<QaWrite<'a>>,
}

/// What the inspection of one reply stores.
pub struct QaWrite<'a> {
    pub score: u32,
    pub fatal: bool,
    /// The abuse head's score of the reply, when it ran.
    pub abusive: Option<f32>,
    /// The findings (a JSON array).
    pub findings: Value,
    /// The supervisor queue its live event goes to; no event when there are no findings.
    pub queue: &'a str,
    /// Where a fatal finding is POSTed (empty: nowhere).
    pub webhook_urls: &'a [String],
}

impl QaWrite<'_> {
    /// The row this write stores for reply `turn` of `conversation_id`.
    pub(crate) fn record(
        &self,
        conversation_id: &str,
        turn: u32,
        agent_id: Option<&str>,
        at_ms: i64,
        response_ms: Option<i64>,
    ) -> QaRecord {
        QaRecord {
            conversation_id: conversation_id.to_string(),
            turn,
            agent_id: agent_id.map(str::to_string),
            at_ms,
            score: self.score,
            fatal: self.fatal,
            response_ms,
            abusive: self.abusive,
            findings: self.findings.clone(),
        }
    }
}

/// What appending a reply did.
#[derive(Debug, Clone)]
pub struct ReplyAppended {
    pub turn: u32,
    pub at_ms: i64,
    /// The wait since the oldest customer message this agent reply answers.
    pub response_ms: Option<i64>,
    /// The `qa` live event, when one was written.
    pub event_seq: Option<i64>,
    pub webhooks: usize,
}

/// One inspected agent reply, as the reports read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QaRecord {
    pub conversation_id: String,
    pub turn: u32,
    pub agent_id: Option<String>,
    pub at_ms: i64,
    pub score: u32,
    pub fatal: bool,
    pub response_ms: Option<i64>,
    pub abusive: Option<f32>,
    pub findings: Value,
}

/// Which inspected replies to read: `from_ms <= at_ms < to_ms`, optionally one agent's.
#[derive(Debug, Clone)]
pub struct QaQuery<'a> {
    pub agent_id: Option<&'a str>,
    pub from_ms: i64,
    pub to_ms: i64,
    /// At most this many (the oldest first).
    pub limit: u32,
}

/// The `qa` event's data (`event: qa` on the SSE streams).
pub fn qa_event(r: &QaRecord, seq: i64) -> Value {
    json!({
        "type": "qa",
        "seq": seq,
        "conversation_id": r.conversation_id,
        "turn": r.turn,
        "agent_id": r.agent_id,
        "at_ms": r.at_ms,
        "score": r.score,
        "fatal": r.fatal,
        "response_ms": r.response_ms,
        "findings": r.findings,
    })
}

/// The webhook body of a fatal finding (`X-Triage-Event: qa.fatal`).
pub fn qa_webhook_body(r: &QaRecord, key: &str) -> String {
    json!({
        "event": "qa.fatal",
        "idempotency_key": key,
        "conversation_id": r.conversation_id,
        "turn": r.turn,
        "agent_id": r.agent_id,
        "at_ms": r.at_ms,
        "score": r.score,
        "findings": r.findings,
    })
    .to_string()
}

/// The idempotency key of a fatal finding's delivery (never a route change's key).
pub fn qa_key(conversation_id: &str, turn: u32, url: &str) -> String {
    format!(
        "qa-{}",
        super::outbox::idempotency_key(conversation_id, turn, url)
    )
}

/// The SQL that finds how long the customer waited for this reply: the oldest customer turn
/// after the previous agent reply (the same on both backends; `$1`/`?1` the conversation).
pub(crate) fn waiting_since_sql(param: &str) -> String {
    format!(
        "SELECT MIN(at_ms) FROM turns WHERE conversation_id = {param} AND role = 'customer' \
         AND turn > COALESCE((SELECT MAX(turn) FROM turns WHERE conversation_id = {param} \
         AND role = 'agent'), 0)"
    )
}

impl Store {
    /// Append a reply by the bot or an agent to an existing conversation (404 otherwise), with
    /// its inspection, event and webhooks in the same transaction.
    pub fn append_reply(&self, r: NewReply) -> AppResult<ReplyAppended> {
        match &self.backend {
            Backend::Sqlite(s) => s.append_reply(&self.config, r),
            Backend::Postgres(p) => p.append_reply(&self.config, r),
        }
    }

    /// Inspected agent replies in a period, oldest first.
    pub fn qa_records(&self, q: &QaQuery) -> AppResult<Vec<QaRecord>> {
        match &self.backend {
            Backend::Sqlite(s) => s.qa_records(q),
            Backend::Postgres(p) => p.qa_records(q),
        }
    }

    /// The inspected replies of one conversation, by turn.
    pub fn qa_conversation(&self, id: &str) -> AppResult<Vec<QaRecord>> {
        match &self.backend {
            Backend::Sqlite(s) => s.qa_conversation(id),
            Backend::Postgres(p) => p.qa_conversation(id),
        }
    }

    /// Whether any inspected reply was ever sent by `agent_id`.
    pub fn qa_agent_known(&self, agent_id: &str) -> AppResult<bool> {
        match &self.backend {
            Backend::Sqlite(s) => s.qa_agent_known(agent_id),
            Backend::Postgres(p) => p.qa_agent_known(agent_id),
        }
    }
}
