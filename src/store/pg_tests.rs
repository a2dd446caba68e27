//! PostgreSQL only (skipped with a message without `TRIAGE_TEST_DATABASE_URL`): a reader paging
//! by cursor does not skip an event whose transaction commits after a later one; two replicas
//! never claim one outbox row, and keep a conversation's order; migrations run once each, roll
//! back whole, and a newer database is refused.

use super::events::EventFilter;
use super::pg::migrations;
use super::test_db::PgDb;
use super::tests::add;
use super::turns::NewTurn;
use super::StoreConfig;
use crate::routing::{Decision, PastTurn, Route, Target};
use serde_json::json;
use std::sync::Barrier;

fn decide(_: &[PastTurn], n: u32) -> Decision {
    Decision {
        route: Route {
            target: Target::Bot,
            queue: "bot".into(),
            priority: 0,
            reasons: Vec::new(),
        },
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
fn an_event_committed_out_of_order_is_not_skipped() {
    let Some(db) = PgDb::new("out_of_order") else {
        return;
    };
    let s = db.open(StoreConfig::default()).unwrap();
    add(&s, "before", Target::Bot, "bot", &[]);
    let cursor = s.events_after(&EventFilter::All, 0, 100).unwrap()[0].seq;
    let gate = Barrier::new(2);
    std::thread::scope(|scope| {
        // Writer A: takes its event id, then holds its transaction open.
        let early = scope.spawn(|| {
            let hold = |c: &str, _: &super::turns::TurnRecord, _: Option<&Route>, seq: i64| {
                gate.wait(); // A has its id
                gate.wait(); // B has committed and the reader has looked
                json!({"conversation_id": c, "seq": seq})
            };
            let turn = NewTurn {
                conversation_id: "early".into(),
                text: "first".into(),
                channel: None,
                customer: None,
                signals: Default::default(),
            };
            s.append(turn, decide, &hold, &[]).unwrap().event_seq
        });
        gate.wait();
        // Writer B starts later and commits first.
        let late = NewTurn {
            conversation_id: "late".into(),
            text: "second".into(),
            channel: None,
            customer: None,
            signals: Default::default(),
        };
        s.append(late, decide, &|_, _, _, _| json!({}), &[])
            .unwrap();
        let committed: i64 = db
            .client()
            .query_one("SELECT COUNT(*) FROM events WHERE seq > $1", &[&cursor])
            .unwrap()
            .get(0);
        // A reader paging by cursor must not pass B while A may still commit below it.
        let passed = s.events_after(&EventFilter::All, cursor, 100).unwrap();
        let newest = s.last_event_seq().unwrap();
        gate.wait(); // let A commit before asserting: a failure must not leave A waiting
        let a = early.join().unwrap();
        assert_eq!(committed, 1, "B's row is committed while A's is open");
        assert!(passed.is_empty(), "B readable while A is open: {passed:?}");
        assert_eq!(newest, cursor);
        // Page by cursor as a stream does (other tests' transactions may delay visibility).
        let (mut seen, mut at) = (Vec::new(), cursor);
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while seen.len() < 2 && std::time::Instant::now() < until {
            for e in s.events_after(&EventFilter::All, at, 100).unwrap() {
                at = e.seq;
                seen.push(e.seq);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(seen.len(), 2, "both events, none skipped: {seen:?}");
        assert_eq!(seen[0], a, "A's event (the lower id) first");
        assert!(seen[1] > a);
    });
}

/// The outbox claims' lease in these tests.
const LEASE: i64 = 45_000;

#[test]
fn replicas_never_claim_one_outbox_row_and_keep_conversation_order() {
    let Some(db) = PgDb::new("outbox_claims") else {
        return;
    };
    let (r1, r2) = (
        db.open(StoreConfig::default()).unwrap(),
        db.open(StoreConfig::default()).unwrap(),
    );
    let urls = vec!["http://127.0.0.1:1/hook".to_string()];
    add(&r1, "a", Target::Agent, "agent-en", &urls); // row 1 (a)
    add(&r1, "a", Target::Agent, "agent-zh", &urls); // row 2 (a)
    add(&r2, "b", Target::Expert, "expert", &urls); // row 3 (b)
    let now = super::now_ms() + 1;
    let one = r1.outbox_due(now, 1, LEASE).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].conversation_id, "a");
    // Replica 2 skips the row replica 1 holds and a's later row (a's order), takes b's.
    let two = r2.outbox_due(now, 10, LEASE).unwrap();
    assert_eq!(two.len(), 1);
    assert_eq!(two[0].conversation_id, "b");
    assert!(r2.outbox_due(now, 10, LEASE).unwrap().is_empty());
    // Once a's first row is delivered, its second may go, to either replica.
    r1.outbox_delivered(one[0].id, now).unwrap();
    let next = r2.outbox_due(now, 10, LEASE).unwrap();
    assert_eq!(next.len(), 1);
    assert!(next[0].id > one[0].id && next[0].conversation_id == "a");
    // A replica that dies holding rows: another takes them after the lease.
    assert!(r1.outbox_due(now, 10, LEASE).unwrap().is_empty());
    let late = now + LEASE + 1;
    assert_eq!(r1.outbox_due(late, 10, LEASE).unwrap().len(), 2);
    assert_eq!(r1.outbox_counts().unwrap(), (2, 1, 0));
}

#[test]
fn migrations_run_once_roll_back_whole_and_refuse_newer() {
    let Some(db) = PgDb::new("migrations") else {
        return;
    };
    let mut c = db.client();
    let first = migrations::MIGRATIONS[0];
    let two = [first, "CREATE TABLE extra (x INTEGER)"];
    assert_eq!(migrations::apply(&mut c, "t", &two).unwrap(), 0);
    // Already at 2: migration 2 (no IF NOT EXISTS) is not run again.
    assert_eq!(migrations::apply(&mut c, "t", &two).unwrap(), 2);
    let failing = [
        two[0],
        two[1],
        "CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1)",
    ];
    let err = format!(
        "{:#}",
        migrations::apply(&mut c, "t", &failing).unwrap_err()
    );
    assert!(err.contains("migration 3 failed"), "{err}");
    let version = |c: &mut postgres::Client| -> i32 {
        c.query_one("SELECT MAX(version) FROM schema_migrations", &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(version(&mut c), 2);
    let half: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'half'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(half, 0);
    // A database newer than this binary is refused, naming both versions.
    let known = migrations::MIGRATIONS.len() as i32;
    c.execute(
        "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, 0)",
        &[&(known + 1)],
    )
    .unwrap();
    let err = format!("{:#}", db.open(StoreConfig::default()).err().unwrap());
    assert!(
        err.contains(&format!("schema version {}", known + 1)),
        "{err}"
    );
    assert!(err.contains(&format!("(version {known})")), "{err}");
}

/// Append one turn to `conv`; its event's id (not waiting for it to become readable).
fn append(s: &super::Store, conv: &str) -> i64 {
    let turn = NewTurn {
        conversation_id: conv.into(),
        text: "hello".into(),
        channel: None,
        customer: None,
        signals: Default::default(),
    };
    s.append(turn, decide, &|_, _, _, _| json!({}), &[])
        .unwrap()
        .event_seq
}

/// A listener on `s` whose announcements arrive on the returned channel; it stops when the
/// receiver is dropped.
fn listener(s: &super::Store) -> std::sync::mpsc::Receiver<i64> {
    let (tx, rx) = std::sync::mpsc::channel::<i64>();
    let alive = tx.clone();
    s.start_listener(super::events::Wake {
        announce: Box::new(move |seq| {
            let _ = tx.send(seq);
        }),
        reload: Box::new(|_| {}),
        // A probe value (-1) fails once the test has dropped the receiver.
        alive: Box::new(move || alive.send(-1).is_ok()),
    })
    .unwrap();
    rx
}

/// The first announcement of at least `seq` within `secs`, or None.
fn announced(rx: &std::sync::mpsc::Receiver<i64>, seq: i64, secs: f32) -> Option<i64> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs_f32(secs);
    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(v) if v >= seq => return Some(v),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn another_replicas_event_is_announced_once_readable_and_after_a_reconnect() {
    let Some(db) = PgDb::new("listen") else {
        return;
    };
    let (r1, r2) = (
        db.open(StoreConfig::default()).unwrap(),
        db.open(StoreConfig::default()).unwrap(),
    );
    let rx = listener(&r1);
    // Replica 2 commits; replica 1's listener announces it.
    let seq = append(&r2, "x");
    assert!(announced(&rx, seq, 30.0).is_some(), "event {seq} announced");

    // An older transaction still open: the later event is not announced until it ends.
    let mut holder = db.client();
    let mut tx = holder.transaction().unwrap();
    let held: i64 = tx
        .query_one("SELECT pg_current_xact_id()::text::bigint", &[])
        .unwrap()
        .get(0);
    let seq = append(&r2, "y");
    assert!(seq > held);
    assert_eq!(
        announced(&rx, seq, 0.7),
        None,
        "not readable while {held} is open"
    );
    tx.commit().unwrap();
    assert!(
        announced(&rx, seq, 30.0).is_some(),
        "announced once readable"
    );

    // The listening connection dies (server restart, network): it reconnects by itself.
    let killed: i64 = db
        .client()
        .query_one(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'triage-listen' AND datname = current_database()",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    let seq = append(&r2, "z");
    assert!(
        announced(&rx, seq, 30.0).is_some(),
        "announced after a reconnect"
    );
}

#[test]
fn a_lost_database_is_store_down_and_the_pool_recovers_by_itself() {
    let Some(db) = PgDb::new("down") else {
        return;
    };
    let s = db.open(StoreConfig::default()).unwrap();
    append(&s, "before");
    // The database goes away under the pool's open connection.
    db.drop_database();
    let turn = NewTurn {
        conversation_id: "during".into(),
        text: "hello".into(),
        channel: None,
        customer: None,
        signals: Default::default(),
    };
    let err = s
        .append(turn, decide, &|_, _, _, _| json!({}), &[])
        .err()
        .unwrap();
    assert!(
        matches!(err, crate::error::AppError::StoreDown { .. }),
        "{err:?}"
    );
    assert!(!s.ping());
    // Back (restored, here empty and migrated): the next call reconnects by itself.
    db.recreate();
    assert!(s.ping());
    let seq = append(&s, "after");
    assert!(seq > 0);
}
