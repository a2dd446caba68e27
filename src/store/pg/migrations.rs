//! The PostgreSQL schema as an ordered list of migrations, tracked in a `schema_migrations`
//! table (one row per version applied): the same idea as SQLite's `user_version`
//! (`sqlite/migrations.rs`). Each migration runs in its own transaction under an advisory lock,
//! so replicas starting together apply each one once; a database newer than this binary knows is
//! refused. Append, never edit, a migration that has shipped.
//!
//! `events.seq` is the writing transaction's id (`pg_current_xact_id()`), not a sequence: see
//! `pg/events.rs`. `outbox.claimed_until` is the delivery lease (`pg/outbox.rs`); `batch_leases` holds
//! the batch job leases (`pg/jobs.rs`); `shared_docs` and `unmatched` what replicas share
//! besides (`pg/docs.rs`); `kb_articles` and `kb_feedback` the knowledge bases (`pg/kb.rs`).

use anyhow::{bail, Context, Result};
use postgres::Client;

/// The migrations, in order: `MIGRATIONS[i]` takes the database to version `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: conversations, turns, live events, the webhook outbox.
    "
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    turns INTEGER NOT NULL,
    resolved_turn INTEGER NOT NULL DEFAULT 0,
    target TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    customer TEXT
);
CREATE INDEX conversations_updated ON conversations(updated_ms);
CREATE TABLE turns (
    conversation_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    at_ms BIGINT NOT NULL,
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    channel TEXT,
    signals TEXT NOT NULL,
    route TEXT,
    memo TEXT,
    PRIMARY KEY (conversation_id, turn)
);
CREATE TABLE events (
    seq BIGINT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX events_conversation ON events(conversation_id, seq);
CREATE INDEX events_queue ON events(queue, seq);
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    decision TEXT NOT NULL,
    body TEXT,
    created_ms BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_ms BIGINT NOT NULL,
    delivered_ms BIGINT,
    dead BOOLEAN NOT NULL DEFAULT FALSE,
    last_error TEXT,
    claimed_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox(next_ms) WHERE delivered_ms IS NULL AND NOT dead;
CREATE INDEX outbox_conversation ON outbox(conversation_id, id)
    WHERE delivered_ms IS NULL AND NOT dead;
",
    // 2: batch job leases: one runner per HTTP batch job cluster-wide (`pg/jobs.rs`).
    "
CREATE TABLE IF NOT EXISTS batch_leases (
    job_id TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
",
    // 3: documents every replica shares (few-shot intents, the fault catalog: `pg/docs.rs`)
    // and the unmatched texts kept for discovery, appended by any replica.
    "
CREATE TABLE IF NOT EXISTS shared_docs (
    name TEXT PRIMARY KEY,
    body BYTEA NOT NULL,
    version BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS unmatched (
    id BIGSERIAL PRIMARY KEY,
    intent_set TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS unmatched_set ON unmatched(intent_set, id);
",
    // 4: knowledge-base articles with their chunks and embeddings, and the agents' feedback on
    // suggestions (`pg/kb.rs`).
    "
CREATE TABLE kb_articles (
    kb TEXT NOT NULL,
    id TEXT NOT NULL,
    article TEXT NOT NULL,
    model TEXT NOT NULL,
    dim BIGINT NOT NULL,
    chunks TEXT NOT NULL,
    vectors BYTEA NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (kb, id)
);
CREATE TABLE kb_feedback (
    id BIGSERIAL PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    suggestion TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('used', 'edited', 'dismissed')),
    text TEXT,
    at_ms BIGINT NOT NULL
);
CREATE INDEX kb_feedback_suggestion ON kb_feedback(suggestion);
",
    // 5: who sent an agent reply, and each inspected agent reply's score and findings
    // (`pg/qa.rs`).
    "
ALTER TABLE turns ADD COLUMN agent_id TEXT;
CREATE TABLE qa_replies (
    conversation_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    agent_id TEXT,
    at_ms BIGINT NOT NULL,
    score INTEGER NOT NULL,
    fatal BOOLEAN NOT NULL,
    response_ms BIGINT,
    abusive REAL,
    findings TEXT NOT NULL,
    PRIMARY KEY (conversation_id, turn)
);
CREATE INDEX qa_replies_at ON qa_replies(at_ms);
CREATE INDEX qa_replies_agent ON qa_replies(agent_id, at_ms);
",
];

/// The version this binary brings a database to.
pub fn latest() -> u32 {
    MIGRATIONS.len() as u32
}

/// The version a migrated database is at.
pub fn version(c: &mut Client) -> Result<u32> {
    let v: i32 = c
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )?
        .get(0);
    Ok(v as u32)
}

/// Bring the database to `MIGRATIONS.len()`; returns the version it was at.
pub fn migrate(c: &mut Client, label: &str) -> Result<u32> {
    apply(c, label, MIGRATIONS)
}

/// `migrate` over the migrations `list` (tests run it over longer lists).
pub(crate) fn apply(c: &mut Client, label: &str, list: &[&str]) -> Result<u32> {
    let known = list.len() as u32;
    let mut first = None;
    loop {
        let mut tx = c.transaction()?;
        // One migrating process at a time, cluster-wide for this database.
        tx.execute("SELECT pg_advisory_xact_lock(7470101)", &[])?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations \
             (version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)",
        )?;
        let at: i32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )?
            .get(0);
        let at = at as u32;
        let found = *first.get_or_insert(at);
        if at > known {
            bail!(
                "store: {label} is at schema version {at}, newer than this binary knows \
                 (version {known}); run a newer triage on it, or point store.url at another database"
            );
        }
        if at == known {
            return Ok(found);
        }
        let to = at + 1;
        tx.batch_execute(list[at as usize])
            .and_then(|()| {
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
                    &[&(to as i32), &crate::store::now_ms()],
                )
            })
            .with_context(|| format!("store: migration {to} failed on {label}"))?;
        tx.commit()
            .with_context(|| format!("store: migration {to} failed on {label}"))?;
        tracing::info!(database = %label, version = to, "store: schema migrated");
    }
}
