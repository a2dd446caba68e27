//! Schema migrations and typed signals: a database from before migrations (no user_version, an
//! old-format signals row) opens, migrates and reads back typed; a newer database is refused;
//! every stored field round-trips; unreadable and future rows read tolerantly; a later migration
//! runs once, and a failing one rolls back whole. (PostgreSQL's migrations: `pg_tests.rs`.)

use super::migrations;
use super::signals::{
    Abusive, CodeHit, Emotion, Intent, Language, Scored, Screenshot, StoredSignals, SCHEMA,
};
use super::test_db::TestDb;
use super::turns::NewTurn;
use super::{Backend, Store, StoreConfig};
use crate::routing::{Decision, PastTurn, Route, Target};
use rusqlite::Connection;
use serde_json::{json, Value};
use std::path::PathBuf;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("triage-schema-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d.join("t.sqlite")
}

fn user_version(path: &std::path::Path) -> u32 {
    let c = Connection::open(path).unwrap();
    c.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// The schema `Store::open` ran before migrations existed (frozen here: migration 1 must keep
/// opening databases made with it).
const OLD_SCHEMA: &str = "
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
";

/// A customer turn's signals as the code before typed signals wrote them (a `Value`, keys sorted,
/// `f32` scores widened to `f64`, no `schema`).
const OLD_CUSTOMER_ROW: &str = r#"{"emotion":{"abusive":{"detected":false,"score":0.10000000149011612},"emotions":{"anger":0.8999999761581421,"joy":0.05000000074505806},"escalate":true,"escalation":0.699999988079071,"groups":{"anger_frustration":0.8999999761581421,"neutral":0.10000000149011612},"labels":["anger"],"reasons":["anger_frustration >= 0.5"],"top_group":"anger_frustration"},"intent":{"intent_set":"banking77","label":"card_arrival","out_of_scope":false,"score":0.8100000023841858,"top":[{"label":"card_arrival","score":0.8100000023841858},{"label":"card_delivery_estimate","score":0.10000000149011612}]},"language":{"customer_language":null,"language":"en","score":0.9900000095367432},"screenshot":null}"#;

#[test]
fn a_database_from_before_migrations_opens_and_reads_typed_signals() {
    let path = temp("old");
    {
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.execute_batch(OLD_SCHEMA).unwrap();
        c.execute_batch(&format!(
            "INSERT INTO conversations (id, created_ms, updated_ms, turns, target, queue, priority) \
             VALUES ('c', 1, 2, 2, 'agent', 'agent-en', 1);
             INSERT INTO turns (conversation_id, turn, at_ms, role, text, signals) \
             VALUES ('c', 1, 1, 'customer', 'where is my card', '{OLD_CUSTOMER_ROW}');
             INSERT INTO turns (conversation_id, turn, at_ms, role, text, signals) \
             VALUES ('c', 2, 2, 'agent', 'on its way', '{{}}');"
        ))
        .unwrap();
    }
    assert_eq!(user_version(&path), 0);
    let s = Store::open(&path, StoreConfig::default()).unwrap();
    assert_eq!(user_version(&path), migrations::latest());
    let turns = s.turns("c", None).unwrap();
    let t = &turns[0].signals;
    assert_eq!(t.schema, 1);
    assert_eq!(t.language.as_ref().unwrap().language, "en");
    let i = t.intent.as_ref().unwrap();
    assert_eq!((i.label.as_str(), i.out_of_scope), ("card_arrival", false));
    assert_eq!(i.intent_set, "banking77");
    let e = t.emotion.as_ref().unwrap();
    assert!(e.escalate && !e.abusive.unwrap().detected);
    assert_eq!(e.top_group, "anger_frustration");
    assert!(t.screenshot.is_none());
    // The API's JSON is byte-for-byte what the untyped `Value` gave.
    let old: Value = serde_json::from_str(OLD_CUSTOMER_ROW).unwrap();
    assert_eq!(
        serde_json::to_string(t).unwrap(),
        serde_json::to_string(&old).unwrap()
    );
    assert_eq!(turns[1].signals, StoredSignals::default());
    assert_eq!(serde_json::to_string(&turns[1].signals).unwrap(), "{}");
    // Nothing was re-created: the conversation is still there, and reopening changes nothing.
    assert_eq!(s.conversation("c").unwrap().turns, 2);
    drop(s);
    let s = Store::open(&path, StoreConfig::default()).unwrap();
    assert_eq!(s.turns("c", None).unwrap().len(), 2);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn a_newer_database_is_refused() {
    let path = temp("newer");
    drop(Store::open(&path, StoreConfig::default()).unwrap());
    let newer = migrations::latest() + 1;
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    let err = format!(
        "{:#}",
        Store::open(&path, StoreConfig::default()).err().unwrap()
    );
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains(&format!("schema version {newer}")), "{err}");
    assert!(
        err.contains(&format!("(version {})", migrations::latest())),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

fn every_field() -> StoredSignals {
    StoredSignals {
        schema: SCHEMA,
        emotion: Some(Emotion {
            abusive: Some(Abusive {
                detected: true,
                score: f64::from(0.75f32),
            }),
            emotions: [("anger".to_string(), f64::from(0.9f32))].into(),
            escalate: true,
            escalation: Some(f64::from(0.6f32)),
            groups: [("anger_frustration".to_string(), 0.9)].into(),
            labels: vec!["anger".into()],
            reasons: vec!["abusive".into()],
            top_group: "anger_frustration".into(),
        }),
        intent: Some(Intent {
            intent_set: "default".into(),
            label: "lost_card".into(),
            out_of_scope: true,
            score: 0.25,
            top: vec![Scored {
                label: "lost_card".into(),
                score: 0.25,
            }],
        }),
        language: Some(Language {
            customer_language: Some("de".into()),
            language: "en".into(),
            score: 0.5,
        }),
        screenshot: Some(Screenshot {
            error_codes: vec![CodeHit {
                fault: "account_locked".into(),
                text: "ERR-403".into(),
            }],
            fault: Some("account_locked".into()),
            route_hint: "agent".into(),
        }),
    }
}

fn decide(_: &[PastTurn], n: u32) -> Decision {
    let route = Route {
        target: Target::Bot,
        queue: "bot".into(),
        priority: 0,
        reasons: Vec::new(),
    };
    Decision {
        route,
        memo: PastTurn {
            turn: n,
            target: Target::Bot,
            low_confidence: false,
            negativity: 0.0,
            escalated: false,
            unanswered: false,
        },
    }
}

#[test]
fn every_stored_field_round_trips() {
    for db in TestDb::all("roundtrip") {
        every_stored_field_round_trips_on(&db);
    }
}

fn every_stored_field_round_trips_on(db: &TestDb) {
    let s = db.open(StoreConfig::default());
    let turn = NewTurn {
        conversation_id: "r".into(),
        text: "hi".into(),
        channel: None,
        customer: None,
        signals: every_field(),
    };
    s.append(turn, decide, &|_, _, _, _| json!({}), &[])
        .unwrap();
    super::tests::reply(&s, "r", "agent", "hello").unwrap();
    let turns = s.turns("r", None).unwrap();
    assert_eq!(turns[0].signals, every_field());
    assert_eq!(turns[1].signals, StoredSignals::default());
    // Rows carry the schema version; the API's JSON does not.
    let sql = "SELECT signals FROM turns WHERE turn = 1";
    let raw: String = match (&s.backend, db) {
        (Backend::Sqlite(q), _) => q.read().query_row(sql, [], |r| r.get(0)).unwrap(),
        (_, TestDb::Pg(p)) => p.client().query_one(sql, &[]).unwrap().get(0),
        _ => unreachable!(),
    };
    assert_eq!(
        serde_json::from_str::<Value>(&raw).unwrap()["schema"],
        SCHEMA
    );
    let api = serde_json::to_value(&turns[0].signals).unwrap();
    assert!(api.get("schema").is_none() && api["screenshot"]["fault"] == "account_locked");
}

#[test]
fn unreadable_and_future_rows_read_tolerantly() {
    let bad = StoredSignals::from_row(r#"{"intent": {"label": 3}}"#, "c", 1);
    assert_eq!(bad, StoredSignals::default());
    assert_eq!(
        StoredSignals::from_row("not json", "c", 1),
        StoredSignals::default()
    );
    let future = StoredSignals::from_row(
        r#"{"schema": 7, "mood": "calm", "language": {"language": "fr", "score": 1.0, "script": "Latn"}}"#,
        "c",
        1,
    );
    assert_eq!(future.schema, 7);
    assert_eq!(future.language.unwrap().language, "fr");
}

#[test]
fn later_migrations_run_once_each_in_its_own_transaction() {
    let path = temp("steps");
    let mut c = Connection::open(&path).unwrap();
    let first = migrations::MIGRATIONS[0];
    let two = [first, "CREATE TABLE extra (x INTEGER)"];
    assert_eq!(migrations::apply(&mut c, &path, &two).unwrap(), 0);
    // Already at 2: migration 2 (no IF NOT EXISTS) is not run again.
    assert_eq!(migrations::apply(&mut c, &path, &two).unwrap(), 2);
    let failing = [
        two[0],
        two[1],
        "CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1)",
    ];
    let err = format!(
        "{:#}",
        migrations::apply(&mut c, &path, &failing).unwrap_err()
    );
    assert!(err.contains("migration 3 failed"), "{err}");
    // Rolled back: still version 2, and the table the failed migration made is gone.
    assert_eq!(user_version(&path), 2);
    let half: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(half, 0);
    drop(c);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
