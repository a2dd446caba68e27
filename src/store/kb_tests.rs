//! Knowledge-base storage (`kb.rs`) against every backend (`test_db.rs`): articles read back
//! bit-exact, created versus replaced, delete, drop, names with counts, isolation between
//! knowledge bases, a rejected batch writing nothing, a large batch, a corrupt blob refused,
//! feedback counts, the schema version, and (PostgreSQL) the `kb:<kb>` reload notification.

use super::kb::{FeedbackAction, FeedbackCounts, KbRow};
use super::test_db::{PgDb, TestDb};
use super::StoreConfig;
use crate::error::AppError;
use std::time::Duration;

fn row(kb: &str, id: &str, chunks: usize, dim: usize) -> KbRow {
    KbRow {
        kb: kb.into(),
        id: id.into(),
        article: format!(r#"{{"id":"{id}","title":"T {id}","body":"línea\n\"quoted\""}}"#),
        model: "bge-small".into(),
        chunks: (0..chunks).map(|i| format!("{id} chunk {i} ✓")).collect(),
        vectors: (0..chunks)
            .map(|i| {
                (0..dim)
                    .map(|j| (i * dim + j) as f32 * 0.1 - 1.0 / 3.0)
                    .collect()
            })
            .collect(),
        updated_ms: 0,
    }
}

fn bits(v: &[Vec<f32>]) -> Vec<Vec<u32>> {
    v.iter()
        .map(|x| x.iter().map(|f| f.to_bits()).collect())
        .collect()
}

/// `got` equals `want` but for the time the store set.
fn same(got: &KbRow, want: &KbRow) {
    assert!(got.updated_ms > 0, "{got:?}");
    assert_eq!(bits(&got.vectors), bits(&want.vectors));
    let mut g = got.clone();
    g.updated_ms = want.updated_ms;
    assert_eq!(&g, want);
}

#[test]
fn articles_are_written_read_replaced_deleted_and_dropped() {
    for db in TestDb::all("kb_rw") {
        let s = db.open(StoreConfig::default());
        // Awkward floats survive bit for bit.
        let mut a = row("help", "a", 3, 4);
        a.vectors[0] = vec![f32::MIN_POSITIVE, -0.0, f32::MAX, 1e-42];
        let b = row("help", "b", 0, 0);
        let c = row("help", "c", 2, 384);
        assert_eq!(
            s.kb_put("help", &[c.clone(), a.clone(), b.clone()])
                .unwrap(),
            (3, 0)
        );
        let all = s.kb_articles("help").unwrap();
        assert_eq!(all.len(), 3);
        for (got, want) in all.iter().zip([&a, &b, &c]) {
            same(got, want);
        }
        same(&s.kb_article("help", "c").unwrap().unwrap(), &c);
        assert_eq!(s.kb_article("help", "zz").unwrap(), None);
        assert_eq!(s.kb_article("other", "a").unwrap(), None);

        // Replacing: one existing id, one new.
        let mut a2 = row("help", "a", 1, 8);
        a2.article = "{}".into();
        a2.model = "e5".into();
        let d = row("help", "d", 1, 8);
        assert_eq!(s.kb_put("help", &[a2.clone(), d.clone()]).unwrap(), (1, 1));
        same(&s.kb_article("help", "a").unwrap().unwrap(), &a2);
        assert_eq!(s.kb_put("help", &[]).unwrap(), (0, 0));

        assert!(s.kb_delete("help", "b").unwrap());
        assert!(!s.kb_delete("help", "b").unwrap());
        let ids: Vec<String> = s
            .kb_articles("help")
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["a", "c", "d"]);

        assert_eq!(s.kb_drop("help").unwrap(), 3);
        assert_eq!(s.kb_drop("help").unwrap(), 0);
        assert!(s.kb_articles("help").unwrap().is_empty());
        assert!(s.kb_names().unwrap().is_empty());
    }
}

#[test]
fn knowledge_bases_are_isolated_and_named_with_counts() {
    for db in TestDb::all("kb_iso") {
        let s = db.open(StoreConfig::default());
        let en = row("en", "x", 1, 2);
        let zh = row("zh", "x", 2, 3);
        assert_eq!(
            s.kb_put("zh", &[zh.clone(), row("zh", "y", 1, 3)]).unwrap(),
            (2, 0)
        );
        assert_eq!(s.kb_put("en", std::slice::from_ref(&en)).unwrap(), (1, 0));
        same(&s.kb_article("en", "x").unwrap().unwrap(), &en);
        same(&s.kb_article("zh", "x").unwrap().unwrap(), &zh);
        assert_eq!(
            s.kb_names().unwrap(),
            [("en".to_string(), 1), ("zh".to_string(), 2)]
        );
        assert!(s.kb_delete("en", "x").unwrap());
        assert!(s.kb_article("zh", "x").unwrap().is_some());
        assert_eq!(s.kb_drop("zh").unwrap(), 2);
        assert!(s.kb_names().unwrap().is_empty());
    }
}

#[test]
fn a_bad_batch_writes_nothing() {
    for db in TestDb::all("kb_bad") {
        let s = db.open(StoreConfig::default());
        s.kb_put("k", &[row("k", "keep", 1, 2)]).unwrap();
        let before = s.kb_articles("k").unwrap();
        let bad_batches = [
            vec![
                row("k", "n1", 1, 2),
                row("k", "n2", 1, 2),
                row("k", "n1", 1, 2),
            ],
            vec![row("k", "n1", 1, 2), row("other", "n2", 1, 2)],
            vec![row("k", "n1", 1, 2), {
                let mut r = row("k", "n2", 2, 2);
                r.vectors[1].push(0.5);
                r
            }],
            vec![row("k", "n1", 1, 2), {
                let mut r = row("k", "n2", 2, 2);
                r.vectors.pop();
                r
            }],
        ];
        for batch in bad_batches {
            let err = s.kb_put("k", &batch).unwrap_err();
            assert!(matches!(err, AppError::Internal(_)), "{err}");
        }
        assert_eq!(s.kb_articles("k").unwrap(), before);
        assert!(s.kb_articles("other").unwrap().is_empty());
        assert_eq!(s.kb_names().unwrap(), [("k".to_string(), 1)]);
    }
}

#[test]
fn thousands_of_rows_go_in_one_call() {
    for db in TestDb::all("kb_many") {
        let s = db.open(StoreConfig::default());
        let rows: Vec<KbRow> = (0..2000)
            .map(|i| row("big", &format!("a{i:05}"), 2, 16))
            .collect();
        let t = std::time::Instant::now();
        assert_eq!(s.kb_put("big", &rows).unwrap(), (2000, 0));
        let took = t.elapsed();
        assert!(took < Duration::from_secs(30), "{took:?}");
        let back = s.kb_articles("big").unwrap();
        assert_eq!(back.len(), 2000);
        same(&back[1234], &rows[1234]);
        assert_eq!(s.kb_put("big", &rows[..10]).unwrap(), (0, 10));
        assert_eq!(s.kb_names().unwrap(), [("big".to_string(), 2000)]);
    }
}

#[test]
fn a_corrupt_vector_blob_is_an_error_naming_the_article() {
    for db in TestDb::all("kb_corrupt") {
        let s = db.open(StoreConfig::default());
        s.kb_put("k", &[row("k", "ok", 1, 4), row("k", "torn", 2, 4)])
            .unwrap();
        match &db {
            TestDb::Sqlite(p) => rusqlite::Connection::open(p)
                .unwrap()
                .execute(
                    "UPDATE kb_articles SET vectors = substr(vectors, 1, 30) WHERE id = 'torn'",
                    [],
                )
                .map(drop)
                .unwrap(),
            TestDb::Pg(pg) => pg
                .client()
                .execute(
                    "UPDATE kb_articles SET vectors = substring(vectors from 1 for 30) \
                     WHERE id = 'torn'",
                    &[],
                )
                .map(drop)
                .unwrap(),
        }
        for err in [
            s.kb_article("k", "torn").unwrap_err(),
            s.kb_articles("k").unwrap_err(),
        ] {
            assert!(matches!(err, AppError::Internal(_)), "{err}");
            let msg = format!("{err:#}");
            assert!(msg.contains("\"k\"") && msg.contains("\"torn\""), "{msg}");
        }
        assert!(s.kb_article("k", "ok").unwrap().is_some());
    }
}

#[test]
fn feedback_is_counted_per_suggestion() {
    for db in TestDb::all("kb_feedback") {
        let s = db.open(StoreConfig::default());
        let mut ids = Vec::new();
        for (sug, action, text) in [
            ("s1", FeedbackAction::Used, None),
            ("s1", FeedbackAction::Used, None),
            ("s1", FeedbackAction::Edited, Some("better words")),
            ("s2", FeedbackAction::Dismissed, None),
        ] {
            ids.push(s.kb_feedback_add("conv", sug, action, text).unwrap());
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let asked: Vec<String> = ["s2", "none", "s1"].map(String::from).into();
        assert_eq!(
            s.kb_feedback_counts(&asked).unwrap(),
            [
                FeedbackCounts {
                    used: 0,
                    edited: 0,
                    dismissed: 1
                },
                FeedbackCounts::default(),
                FeedbackCounts {
                    used: 2,
                    edited: 1,
                    dismissed: 0
                },
            ]
        );
        assert!(s.kb_feedback_counts(&[]).unwrap().is_empty());
    }
    for a in [
        FeedbackAction::Used,
        FeedbackAction::Edited,
        FeedbackAction::Dismissed,
    ] {
        assert_eq!(FeedbackAction::parse(a.as_str()), Some(a));
        assert_eq!(a.as_str().parse::<FeedbackAction>(), Ok(a));
    }
    assert_eq!(FeedbackAction::parse("liked"), None);
}

#[test]
fn the_schema_has_the_kb_and_qa_migrations() {
    for db in TestDb::all("kb_schema") {
        let s = db.open(StoreConfig::default());
        let want = if db.is_sqlite() { 3 } else { 5 };
        assert_eq!(s.schema_version().unwrap(), (want, want));
    }
}

/// PostgreSQL: every article write tells the other replicas `kb:<kb>`.
#[test]
fn kb_writes_are_announced_to_other_replicas() {
    let Some(db) = PgDb::new("kb_notify") else {
        return;
    };
    let a = db.open(StoreConfig::default()).unwrap();
    let b = db.open(StoreConfig::default()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let alive = tx.clone();
    b.start_listener(super::events::Wake {
        announce: Box::new(|_| {}),
        reload: Box::new(move |name| {
            let _ = tx.send(name.to_string());
        }),
        alive: Box::new(move || alive.send(String::new()).is_ok()),
    })
    .unwrap();
    let next = |want: &str| -> bool {
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(n) if n == want => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    };
    assert!(next("*"), "a reload of everything after connecting");
    assert_eq!(a.kb_put("help", &[row("help", "a", 1, 2)]).unwrap(), (1, 0));
    // Writes name their ids, so replicas re-read only those rows; a drop names none (all).
    assert!(next("kb:help\na"), "kb_put not announced with its id");
    assert!(a.kb_delete("help", "a").unwrap());
    assert!(next("kb:help\na"), "kb_delete not announced with its id");
    a.kb_put("zh", &[row("zh", "a", 1, 2), row("zh", "b", 1, 2)])
        .unwrap();
    assert!(next("kb:zh\na\nb"), "kb_put not announced with its ids");
    assert_eq!(a.kb_drop("zh").unwrap(), 2);
    assert!(next("kb:zh"), "kb_drop not announced");
}
