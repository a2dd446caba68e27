//! PostgreSQL cases of intents shared by replicas (`shared.rs`, `kept.rs`): two `Intents` on one
//! database, each told of the other's writes by its own store listener, as `AppState` wires
//! them. Skipped without a test database (`store/test_db.rs`).

use super::config::{DiscoveryConfig, FewShotConfig};
use super::store::{Embedded, Intent, Origin};
use super::unmatched::Item;
use super::Intents;
use crate::heads::registry::HeadRegistry;
use crate::store::test_db::PgDb;
use crate::store::StoreConfig;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A replica: its store, intents loaded from it, and a listener reloading them.
fn replica(db: &PgDb, home: &std::path::Path) -> Arc<Intents> {
    let store = Arc::new(db.open(StoreConfig::default()).unwrap());
    let discovery = DiscoveryConfig {
        enabled: true,
        ..DiscoveryConfig::default()
    };
    let intents = Arc::new(Intents::new(&FewShotConfig::default(), &discovery));
    intents.share(store.clone());
    intents.load(home, &HeadRegistry::default()).unwrap();
    let weak = Arc::downgrade(&intents);
    let alive = weak.clone();
    store
        .start_listener(crate::store::events::Wake {
            announce: Box::new(|_| {}),
            reload: Box::new(move |name| {
                if let Some(i) = weak.upgrade().filter(|_| name == "*" || name == "intents") {
                    i.reload_shared().unwrap();
                }
            }),
            alive: Box::new(move || alive.upgrade().is_some()),
        })
        .unwrap();
    intents
}

fn intent(name: &str, example: &str) -> Intent {
    Intent {
        name: name.into(),
        set: "s".into(),
        description: None,
        examples: vec![example.into()],
        origin: Origin::Api,
        updated_at: 1,
        embedded: Some(Arc::new(Embedded::new("m", "", vec![vec![1.0, 0.0]]))),
    }
}

/// Wait up to 5 s for `cond`.
fn within(cond: impl Fn() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

fn item(text: &str) -> Item {
    Item {
        id: 0,
        text: text.into(),
        set: "s".into(),
        encoder: "m".into(),
        prefix: String::new(),
        at: 1,
        vector: vec![0.0, 1.0],
    }
}

#[test]
fn a_change_on_one_replica_is_seen_on_the_other_and_none_is_lost() {
    let Some(db) = PgDb::new("intents_shared") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let a = replica(&db, home.path());
    let b = replica(&db, home.path());
    // Created on A, seen on B once its listener reloads.
    assert!(a.install(intent("refund", "money back"), true).unwrap());
    assert!(
        within(|| b.get("refund").is_some()),
        "B never saw A's intent"
    );
    let seen = b.get("refund").unwrap();
    assert_eq!(seen.examples, ["money back"]);
    assert!(seen.ready_for("m", "").is_some(), "embeddings travel along");
    // Replaced on B, seen on A.
    assert!(!b.install(intent("refund", "return it"), false).unwrap());
    assert!(within(|| a
        .get("refund")
        .is_some_and(|i| i.examples == ["return it"])));
    // Concurrent creations on both replicas: every one is kept (a stale write is redone).
    let writer = |r: Arc<Intents>, tag: &'static str| {
        std::thread::spawn(move || {
            for i in 0..10 {
                r.install(intent(&format!("{tag}{i}"), "x"), true).unwrap();
            }
        })
    };
    let (ta, tb) = (writer(a.clone(), "a"), writer(b.clone(), "b"));
    ta.join().unwrap();
    tb.join().unwrap();
    assert!(within(|| a.all().len() == 21 && b.all().len() == 21));
    // A name taken on the other replica is a 409 here.
    assert!(b.install(intent("a3", "y"), true).is_err());
    // Deleted on A, gone on B.
    a.delete("refund").unwrap();
    assert!(within(|| b.get("refund").is_none()));
    // A third replica starting now reads them all from the store, not from a file.
    let c = replica(&db, tempfile::tempdir().unwrap().path());
    assert_eq!(c.all().len(), 20);
}

#[test]
fn unmatched_texts_kept_on_any_replica_are_seen_by_every_one() {
    let Some(db) = PgDb::new("unmatched_shared") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let a = replica(&db, home.path());
    let b = replica(&db, home.path());
    let keep = |r: Arc<Intents>, tag: &'static str| {
        std::thread::spawn(move || {
            for i in 0..20 {
                r.keep(vec![item(&format!("{tag}{i}"))]);
            }
        })
    };
    let (ta, tb) = (keep(a.clone(), "a"), keep(b.clone(), "b"));
    ta.join().unwrap();
    tb.join().unwrap();
    assert_eq!(a.unmatched_count("s").unwrap(), 40);
    let on_b = b.unmatched.lock().of_set("s", "m", "").unwrap();
    assert_eq!(on_b.len(), 40);
    assert!(on_b.iter().any(|i| i.text == "a7") && on_b.iter().any(|i| i.text == "b19"));
    assert!(!home.path().join("intents/unmatched.jsonl").exists());
    assert_eq!(b.purge_unmatched(Some("s")).unwrap(), 40);
    assert_eq!(a.unmatched_count("s").unwrap(), 0);
}
