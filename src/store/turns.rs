//! Appending triaged turns (with their decision, live event and webhooks in one transaction),
//! and reading conversations back: the types, and `Store`'s methods dispatching to a backend.

use super::signals::StoredSignals;
use super::{Backend, Store};
use crate::error::{AppError, AppResult};
use crate::routing::{Decision, PastTurn, Route};
use serde::Serialize;
use serde_json::Value;

/// A customer message to append.
pub struct NewTurn {
    pub conversation_id: String,
    pub text: String,
    pub channel: Option<String>,
    pub customer: Option<Value>,
    /// The signals as answered.
    pub signals: StoredSignals,
}

/// One stored turn.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TurnRecord {
    pub turn: u32,
    pub at_ms: i64,
    pub role: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Who sent an agent reply, when the platform said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    pub signals: StoredSignals,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
    #[serde(skip)]
    pub memo: Option<PastTurn>,
}

/// A conversation's head row.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConversationInfo {
    pub id: String,
    pub created_ms: i64,
    pub updated_at_ms: i64,
    pub turns: u32,
    pub resolved_turn: u32,
    pub target: String,
    pub queue: String,
    pub priority: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<Value>,
}

/// What `append` did.
pub struct Appended {
    pub turn: TurnRecord,
    pub previous: Option<Route>,
    pub event_seq: i64,
    pub webhooks: usize,
}

/// Builds the live event of a turn: `(queue, data)`.
pub type EventFn<'a> = &'a dyn Fn(&str, &TurnRecord, Option<&Route>, i64) -> Value;

impl Store {
    /// Append a customer turn: `decide` sees the turns since the last resolution. The event
    /// and, when the route leaves the bot or changes, one outbox row per webhook URL are written
    /// in the same transaction.
    pub fn append(
        &self,
        t: NewTurn,
        decide: impl FnOnce(&[PastTurn], u32) -> Decision,
        event: EventFn,
        webhook_urls: &[String],
    ) -> AppResult<Appended> {
        match &self.backend {
            Backend::Sqlite(s) => s.append(&self.config, t, decide, event, webhook_urls),
            Backend::Postgres(p) => p.append(&self.config, t, decide, event, webhook_urls),
        }
    }

    /// The conversation's head row, or 404.
    pub fn conversation(&self, id: &str) -> AppResult<ConversationInfo> {
        match &self.backend {
            Backend::Sqlite(s) => s.conversation(id),
            Backend::Postgres(p) => p.conversation(id),
        }
    }

    /// Turns `1..=upto` (all when `None`), oldest first.
    pub fn turns(&self, id: &str, upto: Option<u32>) -> AppResult<Vec<TurnRecord>> {
        match &self.backend {
            Backend::Sqlite(s) => s.turns(id, upto),
            Backend::Postgres(p) => p.turns(id, upto),
        }
    }

    /// The most recently updated conversations, optionally in one queue.
    pub fn recent(&self, queue: Option<&str>, limit: u32) -> AppResult<Vec<ConversationInfo>> {
        match &self.backend {
            Backend::Sqlite(s) => s.recent(queue, limit),
            Backend::Postgres(p) => p.recent(queue, limit),
        }
    }

    /// Mark everything so far resolved: later decisions start afresh (no stickiness, no counts).
    pub fn resolve(&self, id: &str) -> AppResult<ConversationInfo> {
        match &self.backend {
            Backend::Sqlite(s) => s.resolve(id),
            Backend::Postgres(p) => p.resolve(id),
        }
    }
}

/// 409 when a conversation already has `max` turns (`hint` ends the message).
pub(crate) fn turn_limit(turns: u32, max: u32, hint: &str) -> AppResult<()> {
    if turns >= max {
        return Err(AppError::Invalid {
            kind: crate::error::InvalidKind::Conflict,
            field: "conversation_id".into(),
            message: format!("conversation has {turns} turns, the limit (store.max_turns){hint}"),
        });
    }
    Ok(())
}

/// Whether a decision queues webhooks: the first leaves the bot, or a later one changes the
/// target or queue.
pub(crate) fn route_changed(previous: Option<&Route>, route: &Route) -> bool {
    match previous {
        None => route.target != crate::routing::Target::Bot,
        Some(p) => p.target != route.target || p.queue != route.queue,
    }
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> String {
    // Plain data types: serialising cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}
