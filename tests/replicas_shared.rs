//! Two replicas (`AppState`s opened on one PostgreSQL database, as `serve` opens them) over
//! `app()` with a mock encoder: a few-shot intent put or deleted on one is answered by the
//! other within a second, unmatched texts kept on one are discovered on the other (and the
//! accepted candidate is an intent on both), and a fault catalog reload on one applies on the
//! other. Runs when `TRIAGE_TEST_DATABASE_URL` is set (`scripts/pg_test.sh`), skipped otherwise.

mod common;

use axum::http::StatusCode;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use triage::config::Config;
use triage::heads::registry::HeadRegistry;
use triage::http::{AppState, Slot};
use triage::metrics::Metrics;
use triage::state::Open;

use common::bag::{bag_model, mock_config};

/// A new database on the test server: its connection string, or None (skipped).
fn database() -> Option<String> {
    let Ok(admin) = std::env::var("TRIAGE_TEST_DATABASE_URL") else {
        assert!(
            std::env::var("TRIAGE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "TRIAGE_REQUIRE_POSTGRES=1 but TRIAGE_TEST_DATABASE_URL is unset"
        );
        eprintln!("replicas_shared: skipped: no PostgreSQL (TRIAGE_TEST_DATABASE_URL unset)");
        return None;
    };
    let name = format!("triage_r_{}", rand::random::<u64>());
    let mut c = postgres::Client::connect(&admin, postgres::NoTls).expect("connect");
    c.batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    // Key-value form (as scripts/pg_test.sh gives): a later dbname wins; a URL: its path.
    Some(if admin.contains("://") {
        let (base, query) = admin.split_once('?').unwrap_or((&admin, ""));
        let root = base.rsplit_once('/').map_or(base, |(r, _)| r);
        format!("{root}/{name}?{query}")
    } else {
        format!("{admin} dbname={name}")
    })
}

fn config(home: &Path, url: &str, catalog: &Path) -> Config {
    let mut cfg = mock_config(home);
    cfg.intent.default_set = "faq".into();
    cfg.store.backend = triage::store::BackendKind::Postgres;
    cfg.store.url = Some(triage::store::config::DatabaseUrl(url.to_string()));
    cfg.screenshot.catalog = Some(catalog.to_path_buf());
    cfg.fewshot.threshold = 0.5;
    cfg.discovery.enabled = true;
    cfg.discovery.cluster_threshold = 0.6;
    cfg.discovery.min_size = 2;
    cfg.validate().unwrap();
    cfg
}

/// A replica's app and state, dropped on a thread of its own: the store's synchronous clients
/// must not be dropped on a runtime thread (also when an assertion fails).
struct Replica(Option<(axum::Router, Arc<AppState>)>);

impl Replica {
    fn app(&self) -> &axum::Router {
        &self.0.as_ref().expect("replica").0
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let parts = self.0.take();
        let _ = std::thread::spawn(move || drop(parts)).join();
    }
}

/// A replica as `serve` starts one: store and vision opened (blocking), intents loaded, the
/// mock model ready.
async fn replica(cfg: Config) -> Replica {
    let metrics = Arc::new(Metrics::default());
    let m2 = metrics.clone();
    let engine = cfg.engine();
    let state = tokio::task::spawn_blocking(move || {
        let heads = HeadRegistry {
            default_intent: "faq".into(),
            ..Default::default()
        };
        let open = Open {
            store: true,
            vision: true,
        };
        let s = AppState::open(cfg, m2, heads, open).unwrap();
        s.intents.load(&s.config.home(), &s.heads).unwrap();
        s
    })
    .await
    .unwrap();
    let m = bag_model(&engine, metrics);
    state.set_slot("mock", Slot::Ready(m));
    Replica(Some((triage::app(state.clone()), state)))
}

async fn call(app: &axum::Router, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    common::request(app, method, uri, text).await
}

/// Poll `uri` on `app` for up to `secs` until `ok` holds of its answer; the last answer.
async fn eventually(
    app: &axum::Router,
    uri: &str,
    secs: f32,
    ok: impl Fn(StatusCode, &Value) -> bool,
) -> (StatusCode, Value) {
    let until = Instant::now() + Duration::from_secs_f32(secs);
    loop {
        let (s, j) = call(app, "GET", uri, Value::Null).await;
        if ok(s, &j) || Instant::now() > until {
            return (s, j);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn catalog(id: &str) -> String {
    format!(
        "[[faults]]\nid = \"{id}\"\ntitle_en = \"X\"\ntitle_zh = \"X\"\nexamples = [\"x\"]\n\
         solution_en = \"s\"\nsolution_zh = \"s\"\nroute_hint = \"bot\"\n"
    )
}

/// Two replicas on a new database, each with its fault catalog file (`a.toml`, `b.toml` in the
/// scratch folder); None without PostgreSQL.
async fn two_replicas(tag: &str) -> Option<(std::path::PathBuf, Replica, Replica)> {
    let url = tokio::task::spawn_blocking(database).await.unwrap()?;
    let dir = common::scratch_dir(tag);
    let (ca, cb) = (dir.join("a.toml"), dir.join("b.toml"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&ca, catalog("one")).unwrap();
    std::fs::write(&cb, catalog("one")).unwrap();
    let ra = replica(config(&dir.join("a"), &url, &ca)).await;
    let rb = replica(config(&dir.join("b"), &url, &cb)).await;
    Some((dir, ra, rb))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn intents_unmatched_texts_and_catalog_reloads_are_shared_by_replicas() {
    let Some((dir, ra, rb)) = two_replicas("replicas-shared").await else {
        return;
    };
    let ca = dir.join("a.toml");
    let (a, b) = (ra.app(), rb.app());

    // PUT on A: B answers it within a second, and classifies with it.
    let refund = json!({"examples": ["refund my money", "i want a refund", "money back please"]});
    let (s, j) = call(a, "PUT", "/v1/intents/refund", refund).await;
    assert_eq!(s, StatusCode::CREATED, "{j}");
    let (s, j) = eventually(b, "/v1/intents/refund", 1.0, |s, _| s == StatusCode::OK).await;
    assert_eq!(s, StatusCode::OK, "B never saw A's intent: {j}");
    assert_eq!(j["examples"][1], "i want a refund");
    let (s, j) = call(
        b,
        "POST",
        "/v1/intent",
        json!({"texts": ["a refund please"]}),
    )
    .await;
    assert_eq!(
        (s, j["results"][0]["label"].as_str()),
        (StatusCode::OK, Some("refund")),
        "{j}"
    );

    // Unmatched on A, discovered and accepted on B, answered on A.
    let texts = [
        "store opening hours",
        "when are the store opening hours",
        "store opening hours on sunday",
    ];

    let (s, j) = call(a, "POST", "/v1/intent", json!({ "texts": texts })).await;
    assert_eq!(s, StatusCode::OK, "{j}");
    let (s, d) = call(b, "POST", "/v1/intents/discover", json!({})).await;
    assert_eq!(
        (s, d["unmatched"].as_u64()),
        (StatusCode::OK, Some(3)),
        "{d}"
    );
    let id = d["candidates"][0]["id"].as_str().unwrap().to_string();
    let uri = format!("/v1/intents/discover/{id}/accept");
    let (s, j) = call(b, "POST", &uri, json!({"name": "store_hours"})).await;
    assert_eq!(s, StatusCode::CREATED, "{j}");
    let (s, _) = eventually(a, "/v1/intents/store_hours", 1.0, |s, _| {
        s == StatusCode::OK
    })
    .await;
    assert_eq!(s, StatusCode::OK, "A never saw B's accepted candidate");
    let (_, d) = call(a, "POST", "/v1/intents/discover", json!({})).await;
    assert_eq!(
        d["unmatched"].as_u64(),
        Some(0),
        "accepted texts left the shared store: {d}"
    );

    // DELETE on B: gone on A.
    let (s, _) = call(b, "DELETE", "/v1/intents/refund", Value::Null).await;
    assert!(s.is_success());
    let (s, _) = eventually(a, "/v1/intents/refund", 1.0, |s, _| {
        s == StatusCode::NOT_FOUND
    })
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "A still answers a deleted intent");

    // A catalog reload on A applies on B; a malformed file on A keeps both as they are.
    std::fs::write(&ca, catalog("two")).unwrap();
    let (s, j) = call(a, "POST", "/v1/faults/reload", Value::Null).await;
    assert_eq!(s, StatusCode::OK, "{j}");
    let (_, j) = eventually(b, "/v1/faults", 1.0, |_, j| j["faults"][0]["id"] == "two").await;
    assert_eq!(j["faults"][0]["id"], "two", "{j}");
    std::fs::write(&ca, "[[faults]]\nid = 1\n").unwrap();
    let (s, _) = call(a, "POST", "/v1/faults/reload", Value::Null).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, j) = call(b, "GET", "/v1/faults", Value::Null).await;
    assert_eq!(j["faults"][0]["id"], "two", "{j}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn knowledge_base_writes_on_one_replica_are_searched_on_the_other() {
    let Some((_dir, ra, rb)) = two_replicas("replicas-kb").await else {
        return;
    };
    let (a, b) = (ra.app(), rb.app());
    let article = |title: &str| json!({"title": title, "body": format!("{title}: open the app and follow the steps.")});

    // A bulk import on A (the notice names both ids): B holds both within a second.
    let body = json!({"articles": [
        {"id": "r1", "title": "refund policy", "body": "refunds take five days"},
        {"id": "r2", "title": "shipping times", "body": "parcels arrive in two days"}
    ]});
    let (s, j) = call(a, "POST", "/v1/kb/import?kb=shared", body).await;
    assert_eq!(s, StatusCode::OK, "{j}");
    for id in ["r1", "r2"] {
        let uri = format!("/v1/kb/articles/{id}?kb=shared");
        let (s, j) = eventually(b, &uri, 1.0, |s, _| s == StatusCode::OK).await;
        assert_eq!(s, StatusCode::OK, "B never saw {id}: {j}");
    }
    // A change on A replaces B's copy; B's search finds the new text.
    let (s, j) = call(
        a,
        "PUT",
        "/v1/kb/articles/r1?kb=shared",
        article("money back rules"),
    )
    .await;
    assert!(s.is_success(), "{j}");
    let (_, j) = eventually(b, "/v1/kb/articles/r1?kb=shared", 1.0, |_, j| {
        j["title"] == "money back rules"
    })
    .await;
    assert_eq!(j["title"], "money back rules", "{j}");
    let (s, j) = call(
        b,
        "POST",
        "/v1/kb/search",
        json!({"query": "money back rules", "kb": "shared"}),
    )
    .await;
    assert_eq!(
        (s, j["hits"][0]["id"].as_str()),
        (StatusCode::OK, Some("r1")),
        "{j}"
    );
    // A delete on A: gone on B, the other article stays; the last delete drops the base.
    let (s, _) = call(a, "DELETE", "/v1/kb/articles/r1?kb=shared", Value::Null).await;
    assert!(s.is_success());
    let (s, j) = eventually(b, "/v1/kb/articles/r1?kb=shared", 1.0, |s, _| {
        s == StatusCode::NOT_FOUND
    })
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{j}");
    let (s, _) = call(b, "GET", "/v1/kb/articles/r2?kb=shared", Value::Null).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(a, "DELETE", "/v1/kb/articles/r2?kb=shared", Value::Null).await;
    assert!(s.is_success());
    let (_, j) = eventually(b, "/v1/kb", 1.0, |_, j| {
        !j["knowledge_bases"]
            .as_array()
            .is_some_and(|k| k.iter().any(|x| x["name"] == "shared"))
    })
    .await;
    let names: Vec<&Value> = j["knowledge_bases"].as_array().unwrap().iter().collect();
    assert!(names.iter().all(|x| x["name"] != "shared"), "{j}");
}
