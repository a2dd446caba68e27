//! The store's schema as an ordered list of migrations, tracked in the database's
//! `PRAGMA user_version` (the number of migrations applied). `Store::open` applies the missing
//! ones in order, each in its own transaction with the version it reaches, so a crash leaves the
//! database at one version or the next. A database newer than this binary knows is refused.
//!
//! Migration 1 is the schema from before migrations existed; its `IF NOT EXISTS` lets it run
//! over such a database (user_version 0, tables present) without re-creating anything, which
//! only stamps it as version 1. Later migrations run exactly once: write them plainly, and
//! append, never edit, one that has shipped.

use anyhow::{bail, Context, Result};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

/// The migrations, in order: `MIGRATIONS[i]` takes the database to version `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: conversations, turns, live events, the webhook outbox.
    "
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    turns INTEGER NOT NULL,
    resolved_turn INTEGER NOT NULL DEFAULT 0,
    target TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    customer TEXT
);
CREATE INDEX IF NOT EXISTS conversations_updated ON conversations(updated_ms);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    channel TEXT,
    signals TEXT NOT NULL,
    route TEXT,
    memo TEXT,
    PRIMARY KEY (conversation_id, turn)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_conversation ON events(conversation_id, seq);
CREATE INDEX IF NOT EXISTS events_queue ON events(queue, seq);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    decision TEXT NOT NULL,
    body TEXT,
    created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_ms INTEGER NOT NULL,
    delivered_ms INTEGER,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(delivered_ms, dead, next_ms);
",
    // 2: knowledge-base articles with their chunks and embeddings, and the agents' feedback on
    // suggestions (`sqlite/kb.rs`).
    "
CREATE TABLE kb_articles (
    kb TEXT NOT NULL,
    id TEXT NOT NULL,
    article TEXT NOT NULL,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    chunks TEXT NOT NULL,
    vectors BLOB NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (kb, id)
);
CREATE TABLE kb_feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    suggestion TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('used', 'edited', 'dismissed')),
    text TEXT,
    at_ms INTEGER NOT NULL
);
CREATE INDEX kb_feedback_suggestion ON kb_feedback(suggestion);
",
    // 3: who sent an agent reply, and each inspected agent reply's score and findings
    // (`sqlite/qa.rs`).
    "
ALTER TABLE turns ADD COLUMN agent_id TEXT;
CREATE TABLE qa_replies (
    conversation_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    agent_id TEXT,
    at_ms INTEGER NOT NULL,
    score INTEGER NOT NULL,
    fatal INTEGER NOT NULL,
    response_ms INTEGER,
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

/// Bring the database at `path` (open as `c`) to `latest()`; refuses one that is newer.
/// Returns the version it was at.
pub fn migrate(c: &mut Connection, path: &Path) -> Result<u32> {
    apply(c, path, MIGRATIONS)
}

/// `migrate` over the migrations `list` (tests run it over longer lists).
pub(crate) fn apply(c: &mut Connection, path: &Path, list: &[&str]) -> Result<u32> {
    let known = list.len() as u32;
    let found = version(c, path)?;
    refuse_newer(found, known, path)?;
    for (i, sql) in list.iter().enumerate().skip(found as usize) {
        let to = i as u32 + 1;
        // IMMEDIATE: a second process opening the same file waits here, then sees the version
        // this one reached and skips what is done.
        let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let at: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        refuse_newer(at, known, path)?;
        if at >= to {
            continue;
        }
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", to))
            .and_then(|()| tx.commit())
            .with_context(|| format!("store: migration {to} failed on {}", path.display()))?;
        tracing::info!(path = %path.display(), version = to, "store: schema migrated");
    }
    Ok(found)
}

fn version(c: &Connection, path: &Path) -> Result<u32> {
    c.query_row("PRAGMA user_version", [], |r| r.get(0))
        .with_context(|| {
            format!(
                "store: cannot read the schema version of {}",
                path.display()
            )
        })
}

fn refuse_newer(found: u32, known: u32, path: &Path) -> Result<()> {
    if found > known {
        bail!(
            "store: {} is at schema version {found}, newer than this binary knows (version {}); \
             run a newer triage on it, or point store.path at another file",
            path.display(),
            known
        );
    }
    Ok(())
}
