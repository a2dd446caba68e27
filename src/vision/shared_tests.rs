//! PostgreSQL cases of the shared fault catalog (`shared.rs`): a reload on one replica applies
//! on another; a malformed shared text keeps the running catalog. Skipped without a test
//! database (`store/test_db.rs`).

use super::{ScreenshotConfig, Vision};
use crate::store::test_db::PgDb;
use crate::store::StoreConfig;
use std::sync::Arc;

fn catalog(id: &str) -> String {
    format!(
        "[[faults]]\nid = \"{id}\"\ntitle_en = \"X\"\ntitle_zh = \"X\"\nexamples = [\"x\"]\n\
         solution_en = \"s\"\nsolution_zh = \"s\"\nroute_hint = \"bot\"\n"
    )
}

fn vision(db: &PgDb, file: &std::path::Path) -> Vision {
    let cfg = ScreenshotConfig {
        catalog: Some(file.to_path_buf()),
        ocr_workers: 1,
        ..ScreenshotConfig::default()
    };
    let models = Arc::new(crate::engine::Models::new(
        &[],
        "m",
        crate::models::config::Overlong::Truncate,
    ));
    let v = Vision::start(&cfg, models, Arc::default(), 1).unwrap();
    v.share(Arc::new(db.open(StoreConfig::default()).unwrap()));
    v
}

fn ids(v: &Vision) -> Vec<String> {
    let l = v.current();
    l.catalog.faults.iter().map(|f| f.spec.id.clone()).collect()
}

#[test]
fn a_reload_on_one_replica_applies_on_the_other_and_a_bad_text_keeps_the_old() {
    let Some(db) = PgDb::new("catalog_shared") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (fa, fb) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    std::fs::write(&fa, catalog("one")).unwrap();
    std::fs::write(&fb, catalog("one")).unwrap();
    let (a, b) = (vision(&db, &fa), vision(&db, &fb));
    // Nothing published yet: each serves its file.
    assert!(!b.reload_shared().unwrap());
    std::fs::write(&fa, catalog("two")).unwrap();
    a.reload().unwrap();
    assert_eq!(ids(&a), ["two"]);
    assert!(b.reload_shared().unwrap());
    assert_eq!(ids(&b), ["two"]);
    assert!(b.current().catalog.origin.ends_with("(shared)"));
    // Already loaded: nothing to do.
    assert!(!b.reload_shared().unwrap());
    // A malformed file on A: its reload fails and nothing is published.
    std::fs::write(&fa, "[[faults]]\nid = 1").unwrap();
    assert!(a.reload().is_err());
    assert!(!b.reload_shared().unwrap());
    assert_eq!(ids(&a), ["two"]);
    // A malformed shared text (written past the checks): B keeps its catalog.
    let store = db.open(StoreConfig::default()).unwrap();
    let bad = serde_json::json!({"origin": "x", "text": catalog("bad id!")});
    store
        .put_doc(super::shared::DOC, bad.to_string().as_bytes())
        .unwrap();
    assert!(!b.reload_shared().unwrap());
    assert_eq!(ids(&b), ["two"]);
    // A replica starting now serves its file while the shared text is malformed, then the
    // next good one published.
    let c = vision(&db, &fb);
    assert_eq!(ids(&c), ["one"]);
    std::fs::write(&fb, catalog("three")).unwrap();
    b.reload().unwrap();
    assert!(c.reload_shared().unwrap());
    assert_eq!(ids(&c), ["three"]);
}
