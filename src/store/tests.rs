//! The store without models, against every backend (SQLite, and PostgreSQL when
//! `TRIAGE_TEST_DATABASE_URL` is set: `test_db`): turn numbering, history since resolution,
//! events by filter, outbox rows only on route changes, retention, and reopening after a drop.

use super::events::EventFilter;
use super::signals::{Language, StoredSignals};
use super::test_db::TestDb;
use super::turns::NewTurn;
use super::{Store, StoreConfig};
use crate::error::AppResult;
use crate::routing::{Decision, PastTurn, Reason, Route, Target};
use serde_json::json;

/// Wait until the event `seq` is readable. On PostgreSQL an event is readable only once every
/// older transaction in the cluster has ended (`pg/events.rs`), and other tests run transactions
/// beside this one (one may hold one open on purpose); after this, reads see every event up to it.
fn visible(s: &Store, seq: i64) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while s.last_event_seq().unwrap() < seq && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn temp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("triage-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d.join("t.sqlite")
}

pub(super) fn add(
    s: &Store,
    conv: &str,
    target: Target,
    queue: &str,
    urls: &[String],
) -> (u32, usize, usize) {
    let mut seen = 0;
    let turn = NewTurn {
        conversation_id: conv.into(),
        text: format!("hello from {conv}"),
        channel: None,
        customer: None,
        signals: StoredSignals {
            language: Some(Language {
                customer_language: None,
                language: "en".into(),
                score: 1.0,
            }),
            ..StoredSignals::default()
        },
    };
    let decide = |h: &[PastTurn], n: u32| {
        seen = h.len();
        Decision {
            route: Route {
                target,
                queue: queue.into(),
                priority: 0,
                reasons: vec![Reason {
                    code: "test".into(),
                    detail: String::new(),
                }],
            },
            memo: PastTurn {
                turn: n,
                target,
                low_confidence: false,
                negativity: 0.0,
                escalated: false,
                unanswered: false,
            },
        }
    };
    let ev = |c: &str, _: &super::turns::TurnRecord, _: Option<&Route>, seq: i64| json!({"conversation_id": c, "seq": seq});
    let a = s.append(turn, decide, &ev, urls).unwrap();
    visible(s, a.event_seq);
    (a.turn.turn, a.webhooks, seen)
}

#[test]
fn turns_history_events_and_outbox() {
    for db in TestDb::all("basic") {
        turns_history_events_and_outbox_on(&db);
    }
}

fn turns_history_events_and_outbox_on(db: &TestDb) {
    let s = db.open(StoreConfig::default());
    let urls = vec!["http://127.0.0.1:1/hook".to_string()];
    assert_eq!(add(&s, "a", Target::Bot, "bot", &urls), (1, 0, 0));
    assert_eq!(add(&s, "a", Target::Bot, "bot", &urls), (2, 0, 1));
    // Leaving the bot queues a webhook; staying does not; a queue change does.
    assert_eq!(add(&s, "a", Target::Agent, "agent-en", &urls), (3, 1, 2));
    assert_eq!(add(&s, "a", Target::Agent, "agent-en", &urls), (4, 0, 3));
    assert_eq!(add(&s, "a", Target::Agent, "agent-zh", &urls), (5, 1, 4));
    // A first turn that is not for the bot queues one too.
    assert_eq!(add(&s, "b", Target::Expert, "expert", &urls), (1, 1, 0));
    assert_eq!(s.outbox_counts().unwrap(), (3, 0, 0));
    // A bot reply between triaged turns changes neither the history nor the previous route.
    assert_eq!(reply(&s, "a", "bot", "Let me check.").unwrap(), 6);
    assert_eq!(add(&s, "a", Target::Agent, "agent-zh", &urls), (7, 0, 5));
    assert!(reply(&s, "nope", "bot", "x").is_err());
    // Resolution: later decisions see no history and no previous route.
    s.resolve("a").unwrap();
    assert_eq!(add(&s, "a", Target::Agent, "agent-zh", &urls), (8, 1, 0));
    assert_eq!(s.turns("a", None).unwrap().len(), 8);
    assert_eq!(s.turns("a", None).unwrap()[5].role, "bot");
    assert_eq!(s.turns("a", Some(2)).unwrap().len(), 2);
    let info = s.conversation("a").unwrap();
    assert_eq!(
        (info.turns, info.resolved_turn, info.queue.as_str()),
        (8, 7, "agent-zh")
    );
    assert!(s.conversation("zzz").is_err());
    // Events: by conversation, by queue, all; after a position.
    let conv = s
        .events_after(&EventFilter::Conversation("a".into()), 0, 100)
        .unwrap();
    assert_eq!(conv.len(), 7);
    let after = s
        .events_after(&EventFilter::Conversation("a".into()), conv[2].seq, 100)
        .unwrap();
    assert_eq!(after.len(), 4);
    let q = s
        .events_after(&EventFilter::Queue("expert".into()), 0, 100)
        .unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(s.events_after(&EventFilter::All, 0, 4).unwrap().len(), 4);
    let all = s.events_after(&EventFilter::All, 0, 100).unwrap();
    assert_eq!(all.len(), 8);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(s.last_event_seq().unwrap(), all[7].seq);
    if db.is_sqlite() {
        assert_eq!(s.last_event_seq().unwrap(), 8);
    }
    // Outbox: due rows, a failure pushes one back, delivery takes it out. (PostgreSQL leases
    // the rows it hands out until `now` + the lease, so the second read is far later.)
    let due = s.outbox_due(1 << 50, 10, 1000).unwrap();
    assert_eq!(due.len(), 4);
    assert_ne!(due[0].key, due[1].key);
    s.outbox_failed(due[0].id, i64::MAX, false, "HTTP 503")
        .unwrap();
    s.outbox_delivered(due[1].id, 1).unwrap();
    s.outbox_failed(due[2].id, 0, true, "gave up").unwrap();
    assert_eq!(s.outbox_due(i64::MAX - 1, 10, 1000).unwrap().len(), 1);
    assert_eq!(s.outbox_counts().unwrap(), (2, 1, 1));
    // Everything survives closing and reopening.
    drop(s);
    let s = db.open(StoreConfig::default());
    assert_eq!(s.turns("a", None).unwrap().len(), 8);
    assert_eq!(s.outbox_counts().unwrap(), (2, 1, 1));
}

#[test]
fn retention_and_turn_limits() {
    for db in TestDb::all("retention") {
        retention_and_turn_limits_on(&db);
    }
}

fn retention_and_turn_limits_on(db: &TestDb) {
    let cfg = StoreConfig {
        max_conversations: 2,
        max_turns: 3,
        ..StoreConfig::default()
    };
    let s = db.open(cfg);
    for c in ["old", "mid", "new"] {
        add(&s, c, Target::Bot, "bot", &[]);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(s.enforce_retention(super::now_ms()).unwrap(), 1);
    assert!(s.conversation("old").is_err());
    assert!(s
        .events_after(&EventFilter::Conversation("old".into()), 0, 10)
        .unwrap()
        .is_empty());
    assert_eq!(s.recent(None, 10).unwrap().len(), 2);
    // 30 days later everything is gone; sequence numbers are never reused.
    let last = s.last_event_seq().unwrap();
    assert_eq!(
        s.enforce_retention(super::now_ms() + 31 * 86_400_000)
            .unwrap(),
        2
    );
    add(&s, "again", Target::Bot, "bot", &[]);
    let first = s.events_after(&EventFilter::All, 0, 10).unwrap()[0].seq;
    assert!(first > last);
    if db.is_sqlite() {
        assert_eq!(first, last + 1);
    }
    // The turn limit answers 409.
    add(&s, "again", Target::Bot, "bot", &[]);
    add(&s, "again", Target::Bot, "bot", &[]);
    let turn = NewTurn {
        conversation_id: "again".into(),
        text: "x".into(),
        channel: None,
        customer: None,
        signals: StoredSignals::default(),
    };
    let err = s
        .append(turn, |_, _| unreachable!(), &|_, _, _, _| json!({}), &[])
        .err()
        .unwrap();
    assert_eq!(err.status(), axum::http::StatusCode::CONFLICT);
}

#[test]
fn checkpoint_empties_the_wal() {
    let p = temp("checkpoint");
    let s = Store::open(&p, StoreConfig::default()).unwrap();
    add(&s, "c1", Target::Bot, "bot", &[]);
    let wal = std::path::PathBuf::from(format!("{}-wal", p.display()));
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    assert!(s.checkpoint().unwrap() > 0);
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    drop(s);
    let s = Store::open(&p, StoreConfig::default()).unwrap();
    assert_eq!(s.last_event_seq().unwrap(), 1);
}

/// Append a reply without inspection; its turn number.
pub(crate) fn reply(s: &Store, id: &str, role: &str, text: &str) -> AppResult<u32> {
    s.append_reply(crate::store::qa::NewReply {
        conversation_id: id,
        role,
        text,
        agent_id: None,
        qa: None,
    })
    .map(|r| r.turn)
}

#[test]
fn inspected_replies_with_their_event_and_fatal_webhook() {
    for db in TestDb::all("qa") {
        inspected_replies_on(&db);
    }
}

fn inspected_replies_on(db: &TestDb) {
    use super::qa::{NewReply, QaQuery, QaWrite};
    let s = db.open(StoreConfig::default());
    let urls = vec!["http://127.0.0.1:1/hook".to_string()];
    add(&s, "q", Target::Agent, "agent-en", &[]);
    let before = s
        .events_after(&EventFilter::Queue("qa".into()), 0, 10)
        .unwrap();
    assert!(before.is_empty());
    let qa = |score: u32, findings: serde_json::Value| QaWrite {
        score,
        fatal: score == 0,
        abusive: Some(0.25),
        findings,
        queue: "qa",
        webhook_urls: &urls,
    };
    fn reply<'a>(text: &'a str, w: QaWrite<'a>) -> NewReply<'a> {
        NewReply {
            conversation_id: "q",
            role: "agent",
            text,
            agent_id: Some("a7"),
            qa: Some(w),
        }
    }
    // A clean reply: stored with its response time, no event, no webhook.
    let r = s.append_reply(reply("Hello", qa(100, json!([])))).unwrap();
    assert_eq!((r.turn, r.event_seq, r.webhooks), (2, None, 0));
    assert!(r.response_ms.is_some_and(|ms| ms >= 0));
    // A fatal one: its `qa` event on the quality queue and one webhook row with its body.
    let f = json!([{"item": "pii_leak", "title": "PII", "evidence": []}]);
    let r = s.append_reply(reply("card", qa(0, f.clone()))).unwrap();
    assert_eq!(r.webhooks, 1);
    assert_eq!(r.response_ms, None, "no customer turn waited for it");
    let seq = r.event_seq.expect("an event");
    visible(&s, seq);
    let ev = s
        .events_after(&EventFilter::Queue("qa".into()), 0, 10)
        .unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].seq, seq);
    let data: serde_json::Value = serde_json::from_str(&ev[0].data).unwrap();
    assert_eq!(
        (data["type"].as_str(), data["turn"].as_u64()),
        (Some("qa"), Some(3))
    );
    assert_eq!(data["findings"], f);
    let due = s.outbox_due(i64::MAX - 1, 10, 1000).unwrap();
    assert_eq!(due.len(), 1);
    let body: serde_json::Value = serde_json::from_str(due[0].body.as_deref().unwrap()).unwrap();
    assert_eq!(
        (body["event"].as_str(), body["agent_id"].as_str()),
        (Some("qa.fatal"), Some("a7"))
    );
    assert!(due[0].key.starts_with("qa-"));
    // Read back by period and agent, and by conversation; the turn carries the agent id.
    let all = |agent: Option<&'static str>| {
        s.qa_records(&QaQuery {
            agent_id: agent,
            from_ms: 0,
            to_ms: i64::MAX,
            limit: 100,
        })
        .unwrap()
    };
    assert_eq!(all(None).len(), 2);
    assert_eq!(all(Some("a7"))[1].findings, f);
    assert_eq!(all(Some("a7"))[0].abusive, Some(0.25));
    assert!(all(Some("other")).is_empty());
    assert!(s.qa_agent_known("a7").unwrap() && !s.qa_agent_known("a8").unwrap());
    assert_eq!(s.qa_conversation("q").unwrap().len(), 2);
    assert_eq!(
        s.turns("q", None).unwrap()[1].agent_id.as_deref(),
        Some("a7")
    );
    // An unknown conversation: 404, nothing stored.
    assert!(s
        .append_reply(NewReply {
            conversation_id: "none",
            ..reply("x", qa(100, json!([])))
        })
        .is_err());
    assert_eq!(all(None).len(), 2);
}
