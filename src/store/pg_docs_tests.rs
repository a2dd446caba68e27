//! PostgreSQL cases of the shared documents and unmatched texts (`docs.rs`): versions and
//! compare-and-set, the reload notification reaching another replica's listener, and
//! concurrent appends of unmatched texts from two replicas all kept. Skipped without a test
//! database (`test_db.rs`).

use super::test_db::PgDb;
use super::{Store, StoreConfig};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

/// A listener on `s` whose reload names arrive on the returned channel (`*` after connecting);
/// it stops when the receiver is dropped.
fn reloads(s: &Store) -> Receiver<String> {
    let (tx, rx) = channel::<String>();
    let alive = tx.clone();
    s.start_listener(super::events::Wake {
        announce: Box::new(|_| {}),
        reload: Box::new(move |name| {
            let _ = tx.send(name.to_string());
        }),
        alive: Box::new(move || alive.send(String::new()).is_ok()),
    })
    .unwrap();
    rx
}

/// The first reload of `name` within `secs`.
fn reloaded(rx: &Receiver<String>, name: &str, secs: u64) -> bool {
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(n) if n == name => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

#[test]
fn docs_are_versioned_compared_and_announced_to_other_replicas() {
    let Some(db) = PgDb::new("docs") else {
        return;
    };
    let a = db.open(StoreConfig::default()).unwrap();
    let b = db.open(StoreConfig::default()).unwrap();
    assert!(a.shared());
    let rx = reloads(&b);
    assert!(
        reloaded(&rx, "*", 5),
        "a reload of everything after connecting"
    );
    assert_eq!(a.get_doc("intents").unwrap(), None);
    assert_eq!(a.put_doc_if("intents", b"one", 0).unwrap(), Some(1));
    // B sees the write and is told of it.
    assert!(reloaded(&rx, "intents", 5));
    assert_eq!(b.get_doc("intents").unwrap(), Some((1, b"one".to_vec())));
    // A write from a stale version is refused and changes nothing.
    assert_eq!(b.put_doc_if("intents", b"stale", 0).unwrap(), None);
    assert_eq!(a.put_doc_if("intents", b"two", 1).unwrap(), Some(2));
    assert_eq!(b.put_doc_if("intents", b"late", 1).unwrap(), None);
    assert_eq!(b.get_doc("intents").unwrap(), Some((2, b"two".to_vec())));
    // Unconditional writes bump the version too.
    assert_eq!(b.put_doc("catalog", b"c1").unwrap(), 1);
    assert_eq!(a.put_doc("catalog", b"c2").unwrap(), 2);
    assert!(reloaded(&rx, "catalog", 5));
    assert_eq!(b.get_doc("catalog").unwrap(), Some((2, b"c2".to_vec())));
}

#[test]
fn unmatched_appends_from_two_replicas_are_all_kept_within_the_bound() {
    let Some(db) = PgDb::new("unmatched") else {
        return;
    };
    let a = std::sync::Arc::new(db.open(StoreConfig::default()).unwrap());
    let b = std::sync::Arc::new(db.open(StoreConfig::default()).unwrap());
    let write = |s: std::sync::Arc<Store>, tag: &'static str| {
        std::thread::spawn(move || {
            for i in 0..50 {
                let items = vec![("s".to_string(), format!("{tag}{i}"))];
                s.unmatched_push(&items, 1000).unwrap();
            }
        })
    };
    let (ta, tb) = (write(a.clone(), "a"), write(b.clone(), "b"));
    ta.join().unwrap();
    tb.join().unwrap();
    let all = b.unmatched_of_set("s").unwrap();
    assert_eq!(all.len(), 100);
    for tag in ["a", "b"] {
        for i in 0..50 {
            let t = format!("{tag}{i}");
            assert!(all.iter().any(|(_, body)| *body == t), "{t} lost");
        }
    }
    assert_eq!(a.unmatched_count("s").unwrap(), 100);
    // The bound keeps the newest; removal, lookup and purge by set.
    a.unmatched_push(&[("t".into(), "x".into()), ("t".into(), "y".into())], 101)
        .unwrap();
    assert_eq!(a.unmatched_count("s").unwrap(), 99);
    let t = a.unmatched_of_set("t").unwrap();
    assert_eq!(t.len(), 2);
    let ids: Vec<i64> = t.iter().map(|r| r.0).collect();
    assert_eq!(b.unmatched_by_ids(&ids[..1]).unwrap()[0].1, "x");
    assert_eq!(b.unmatched_remove(&ids[..1]).unwrap(), 1);
    assert_eq!(a.unmatched_purge(Some("t")).unwrap(), 1);
    assert_eq!(a.unmatched_purge(None).unwrap(), 99);
    assert_eq!(b.unmatched_count("s").unwrap(), 0);
}
