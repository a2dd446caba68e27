//! The durable webhook outbox: rows written with the turn that caused them, delivered and
//! retried by `webhook::worker`, each with a stable idempotency key. On PostgreSQL `outbox_due`
//! claims its rows (`pg/outbox.rs`), so several replicas never deliver one row at once.

use super::{Backend, Store};
use crate::error::AppResult;
use sha2::{Digest, Sha256};

/// One pending delivery.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub key: String,
    pub url: String,
    pub conversation_id: String,
    pub turn: u32,
    pub decision: String,
    pub body: Option<String>,
    pub attempts: u32,
}

/// The idempotency key of the delivery of (conversation, turn) to `url`.
pub fn idempotency_key(conversation_id: &str, turn: u32, url: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        conversation_id.as_bytes(),
        &turn.to_le_bytes(),
        url.as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    hex::encode(&h.finalize()[..16])
}

impl Store {
    /// Deliveries due at `now`, oldest first. PostgreSQL claims them for this replica (a lease,
    /// released by `outbox_delivered` / `outbox_failed`), and skips rows of a conversation whose
    /// earlier row another replica holds. `lease_ms` must outlast delivering all `limit` rows:
    /// a replica that dies holding them leaves them to another when it ends.
    pub fn outbox_due(&self, now: i64, limit: u32, lease_ms: i64) -> AppResult<Vec<OutboxRow>> {
        match &self.backend {
            Backend::Sqlite(s) => s.outbox_due(now, limit),
            Backend::Postgres(p) => p.outbox_due(now, limit, lease_ms),
        }
    }

    /// When the next undelivered row falls due (None when nothing is pending).
    pub fn outbox_next_due(&self) -> AppResult<Option<i64>> {
        match &self.backend {
            Backend::Sqlite(s) => s.outbox_next_due(),
            Backend::Postgres(p) => p.outbox_next_due(),
        }
    }

    /// Fix the body of a delivery before its first attempt, so retries send the same bytes.
    pub fn outbox_set_body(&self, id: i64, body: &str) -> AppResult<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.outbox_set_body(id, body),
            Backend::Postgres(p) => p.outbox_set_body(id, body),
        }
    }

    pub fn outbox_delivered(&self, id: i64, now: i64) -> AppResult<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.outbox_delivered(id, now),
            Backend::Postgres(p) => p.outbox_delivered(id, now),
        }
    }

    /// Record a failed attempt: retry at `next_ms`, or give up (`dead`).
    pub fn outbox_failed(&self, id: i64, next_ms: i64, dead: bool, error: &str) -> AppResult<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.outbox_failed(id, next_ms, dead, error),
            Backend::Postgres(p) => p.outbox_failed(id, next_ms, dead, error),
        }
    }

    /// (pending, delivered, dead) counts.
    pub fn outbox_counts(&self) -> AppResult<(i64, i64, i64)> {
        match &self.backend {
            Backend::Sqlite(s) => s.outbox_counts(),
            Backend::Postgres(p) => p.outbox_counts(),
        }
    }
}
