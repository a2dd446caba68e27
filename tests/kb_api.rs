//! The knowledge-base endpoints through `app()` with a mock encoder (bag of hashed words) and a
//! real SQLite store: articles written, read, searched, answered from and deleted; imports in
//! every format, all or nothing; every bad input a 4xx naming its field; and the index rebuilt
//! from the store after a restart.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use tower::ServiceExt;
use triage::config::Config;
use triage::heads::registry::HeadRegistry;
use triage::http::{AppState, Slot};
use triage::metrics::Metrics;

use common::bag::{bag_model, mock_config};

fn config(home: &Path) -> Config {
    let mut cfg = mock_config(home);
    cfg.store.path = Some(home.join("triage.sqlite"));
    cfg.kb.max_article_bytes = 2_000;
    cfg.kb.max_import_articles = 5;
    cfg.kb.max_query_chars = 100;
    cfg.kb.answer_threshold = 0.0;
    cfg.kb.answer_thresholds.clear();
    cfg.validate().unwrap();
    cfg
}

/// The app over a store in `home` (opened blocking, as `serve` does) with the mock model ready.
/// The state is dropped on a plain thread (the store must not be dropped on a runtime thread).
struct App(Option<(axum::Router, Arc<AppState>)>);

impl Drop for App {
    fn drop(&mut self) {
        let parts = self.0.take();
        let _ = std::thread::spawn(move || drop(parts)).join();
    }
}

async fn app(cfg: Config) -> App {
    let engine = cfg.engine();
    let metrics = Arc::new(Metrics::default());
    let m2 = metrics.clone();
    let state = tokio::task::spawn_blocking(move || {
        AppState::open(cfg, m2, HeadRegistry::default(), triage::state::Open::STORE).unwrap()
    })
    .await
    .unwrap();
    let m = bag_model(&engine, metrics);
    state.set_slot("mock", Slot::Ready(m));
    App(Some((triage::app(state.clone()), state)))
}

impl App {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        ctype: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let router = &self.0.as_ref().expect("app").0;
        let mut req = Request::builder().method(method).uri(uri);
        if !ctype.is_empty() {
            req = req.header("content-type", ctype);
        }
        let resp = router
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let s = resp.status();
        let b = resp.into_body().collect().await.unwrap().to_bytes();
        (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
    }

    async fn json(&self, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        let b = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        self.call(method, uri, "application/json", b).await
    }

    async fn search(&self, query: &str) -> Vec<String> {
        let (s, j) = self
            .json("POST", "/v1/kb/search", json!({"query": query}))
            .await;
        assert_eq!(s, StatusCode::OK, "{j}");
        ids(&j["hits"])
    }

    async fn count(&self, kb: &str) -> u64 {
        let (_, j) = self.json("GET", "/v1/kb", Value::Null).await;
        j["knowledge_bases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == kb)
            .map_or(0, |k| k["articles"].as_u64().unwrap())
    }
}

fn ids(hits: &Value) -> Vec<String> {
    hits.as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect()
}

/// The status and the field the error names.
fn err(r: (StatusCode, Value)) -> (u16, String) {
    (
        r.0.as_u16(),
        r.1["field"].as_str().unwrap_or("").to_string(),
    )
}

fn article(title: &str, body: &str) -> Value {
    json!({"title": title, "body": body, "tags": ["t"], "steps": ["one", "two"]})
}

#[tokio::test]
async fn articles_are_written_searched_answered_and_deleted() {
    let home = common::scratch_dir("kb-crud");
    let a = app(config(&home)).await;
    let (s, j) = a
        .json(
            "PUT",
            "/v1/kb/articles/cancel",
            article("Cancel an order", "Open orders and press cancel."),
        )
        .await;
    assert_eq!(
        (s, j["created"].as_u64(), j["chunks"].as_u64()),
        (StatusCode::OK, Some(1), Some(1)),
        "{j}"
    );
    let mut track = article("Track a parcel", "Tracking shows where the parcel is.");
    track["answer"] = json!("Open Orders and press Track.");
    a.json("PUT", "/v1/kb/articles/track", track).await;
    let zh =
        json!({"id": "zh-1", "title": "怎么退款", "body": "在订单页申请退款。", "language": "zh"});
    assert_eq!(
        a.json("PUT", "/v1/kb/articles/zh-1", zh).await.0,
        StatusCode::OK
    );
    // Replacing keeps one copy.
    let (_, j) = a
        .json(
            "PUT",
            "/v1/kb/articles/cancel",
            article("Cancel an order", "Orders page: press cancel."),
        )
        .await;
    assert_eq!(
        (j["created"].as_u64(), j["replaced"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(a.count("default").await, 3);

    let (s, j) = a.json("GET", "/v1/kb/articles/cancel", Value::Null).await;
    assert_eq!(
        (s, j["body"].as_str()),
        (StatusCode::OK, Some("Orders page: press cancel."))
    );
    assert_eq!(j["language"], "en", "detected: {j}");
    assert_eq!(a.search("how do I cancel my order").await[0], "cancel");
    assert_eq!(a.search("track parcel").await[0], "track");
    let (_, j) = a
        .json(
            "POST",
            "/v1/kb/search",
            json!({"query": "track parcel", "top_k": 1}),
        )
        .await;
    let hit = &j["hits"][0];
    assert_eq!(j["hits"].as_array().unwrap().len(), 1);
    assert!(hit["bm25_rank"] == 1 && hit["dense_rank"] == 1, "{hit}");
    assert!(
        hit["passage"]
            .as_str()
            .unwrap()
            .starts_with("Track a parcel"),
        "{hit}"
    );
    let c = hit["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&c), "{hit}");
    // A language filter keeps only that language's articles.
    let (_, j) = a
        .json(
            "POST",
            "/v1/kb/search",
            json!({"query": "track parcel", "language": "zh"}),
        )
        .await;
    assert!(ids(&j["hits"]).iter().all(|i| i == "zh-1"), "{j}");

    // Answers: the article's answer, with the citation (threshold 0 in this config).
    let (s, j) = a
        .json("POST", "/v1/answer", json!({"text": "track my parcel"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(j["answer"]["text"], "Open Orders and press Track.", "{j}");
    assert_eq!(
        (
            j["answer"]["article_id"].as_str(),
            j["answer"]["kb"].as_str()
        ),
        (Some("track"), Some("default"))
    );

    assert_eq!(
        a.json("DELETE", "/v1/kb/articles/track", Value::Null)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        err(a.json("GET", "/v1/kb/articles/track", Value::Null).await),
        (404, "id".into())
    );
    assert_eq!(
        err(a.json("DELETE", "/v1/kb/articles/track", Value::Null).await),
        (404, "id".into())
    );
    assert!(!a
        .search("track parcel")
        .await
        .contains(&"track".to_string()));

    // Several knowledge bases by name, each searched alone.
    let other = article("Opening hours", "We open at nine.");
    assert_eq!(
        a.json("PUT", "/v1/kb/articles/hours?kb=store-2", other)
            .await
            .0,
        StatusCode::OK
    );
    let (_, j) = a
        .json(
            "POST",
            "/v1/kb/search",
            json!({"query": "cancel order", "kb": "store-2"}),
        )
        .await;
    assert_eq!(ids(&j["hits"]), ["hours"]);
}

#[tokio::test]
async fn imports_in_every_format_are_all_or_nothing() {
    let home = common::scratch_dir("kb-import");
    let a = app(config(&home)).await;
    let body = json!({"articles": [
        {"id": "a", "title": "Alpha", "body": "Alpha body."},
        {"id": "b", "title": "Beta", "body": "Beta body."}
    ]});
    let (s, j) = a.json("POST", "/v1/kb/import", body).await;
    assert_eq!((s, j["created"].as_u64()), (StatusCode::OK, Some(2)), "{j}");
    let jsonl = "{\"id\":\"c\",\"title\":\"Gamma\",\"body\":\"Gamma body.\"}\n";
    let (s, j) = a
        .call(
            "POST",
            "/v1/kb/import",
            "application/x-ndjson",
            jsonl.into(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    let csv = "id,title,body,tags,steps\nd,Delta,\"Delta, body.\",x|y,one|two\n";
    assert_eq!(
        a.call("POST", "/v1/kb/import?kb=default", "text/csv", csv.into())
            .await
            .0,
        StatusCode::OK
    );
    let md = "# Epsilon\nEpsilon body.\n## Steps\n1. first\n2. second\n";
    let (s, j) = a
        .call("POST", "/v1/kb/import?id=e", "text/markdown", md.into())
        .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    let (_, j) = a.json("GET", "/v1/kb/articles/e", Value::Null).await;
    assert_eq!(j["steps"], json!(["first", "second"]));
    let (_, j) = a.json("GET", "/v1/kb/articles/d", Value::Null).await;
    assert_eq!(
        (j["tags"].clone(), j["body"].as_str()),
        (json!(["x", "y"]), Some("Delta, body."))
    );
    assert_eq!(a.count("default").await, 5);

    // Each bad import names its field (the line for files) and writes nothing.
    let bad_csv = "id,title,body\nf,Phi,Phi body.\ng,Gamma only\n";
    assert_eq!(
        err(a
            .call("POST", "/v1/kb/import", "text/csv", bad_csv.into())
            .await),
        (422, "line 3".into())
    );
    let bad_jsonl = "{\"id\":\"f\",\"title\":\"Phi\",\"body\":\"x\"}\n{\"id\":\"g\",\"title\":\"\",\"body\":\"x\"}\n";
    assert_eq!(
        err(a
            .call(
                "POST",
                "/v1/kb/import",
                "application/x-ndjson",
                bad_jsonl.into()
            )
            .await),
        (422, "line 2.title".into())
    );
    let bad_md = "Epsilon body without a title\n";
    assert_eq!(
        err(a
            .call("POST", "/v1/kb/import?id=f", "text/markdown", bad_md.into())
            .await),
        (422, "line 1".into())
    );
    let dup = json!({"articles": [
        {"id": "f", "title": "Phi", "body": "x"}, {"id": "f", "title": "Phi 2", "body": "y"}
    ]});
    assert_eq!(
        err(a.json("POST", "/v1/kb/import", dup).await),
        (422, "articles[1].id".into())
    );
    let big = json!({"articles": [
        {"id": "f", "title": "Phi", "body": "x"}, {"id": "g", "title": "Big", "body": "x".repeat(3000)}
    ]});
    assert_eq!(
        err(a.json("POST", "/v1/kb/import", big).await),
        (413, "articles[1].body".into())
    );
    let many: Vec<Value> = (0..6)
        .map(|i| json!({"id": format!("m{i}"), "title": "M", "body": "m"}))
        .collect();
    assert_eq!(
        err(a
            .json("POST", "/v1/kb/import", json!({"articles": many}))
            .await),
        (413, "articles".into())
    );
    let bad_id = json!({"articles": [{"id": "has space", "title": "T", "body": "B"}]});
    assert_eq!(
        err(a.json("POST", "/v1/kb/import", bad_id).await),
        (422, "articles[0].id".into())
    );
    assert_eq!(
        err(a
            .call("POST", "/v1/kb/import", "text/csv", b"\xff\xfe,\n".to_vec())
            .await),
        (400, "body".into())
    );
    assert_eq!(
        err(a
            .call("POST", "/v1/kb/import", "text/csv", Vec::new())
            .await),
        (400, "body".into())
    );
    assert_eq!(
        err(a
            .call("POST", "/v1/kb/import", "text/html", b"<p>".to_vec())
            .await),
        (415, "content-type".into())
    );
    assert_eq!(
        err(a
            .json("POST", "/v1/kb/import", json!({"articles": []}))
            .await),
        (422, "articles".into())
    );
    assert_eq!(
        err(a
            .json(
                "POST",
                "/v1/kb/import?kb=bad%20name",
                json!({"articles": []})
            )
            .await)
        .0,
        422
    );
    assert_eq!(a.count("default").await, 5, "nothing half-imported");
    for id in ["f", "g", "m0"] {
        assert_eq!(
            a.json("GET", &format!("/v1/kb/articles/{id}"), Value::Null)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn bad_searches_and_writes_name_their_field() {
    let home = common::scratch_dir("kb-bad");
    let a = app(config(&home)).await;
    // No knowledge base yet: 404 naming `kb`.
    assert_eq!(
        err(a.json("POST", "/v1/kb/search", json!({"query": "x"})).await),
        (404, "kb".into())
    );
    a.json("PUT", "/v1/kb/articles/a", article("Alpha", "Alpha body."))
        .await;
    let cases = [
        (json!({"query": ""}), 422, "query"),
        (json!({"query": "x".repeat(101)}), 413, "query"),
        (json!({"query": "x", "top_k": 0}), 422, "top_k"),
        (json!({"query": "x", "top_k": 51}), 422, "top_k"),
        (json!({"query": "x", "kb": "nope"}), 404, "kb"),
        (json!({"query": "x", "kb": "no/pe"}), 422, "kb"),
        (
            json!({"query": "x", "language": "english"}),
            422,
            "language",
        ),
        (json!({"query": "x", "extra": 1}), 400, "extra"),
        (json!({"top_k": 3}), 400, "query"),
        (json!({"query": "x", "intent": " "}), 422, "intent"),
        (
            json!({"query": "x", "intent": "i".repeat(65)}),
            422,
            "intent",
        ),
        (json!({"query": "x", "intent": 7}), 400, "intent"),
    ];
    for (body, status, field) in cases {
        assert_eq!(
            err(a.json("POST", "/v1/kb/search", body.clone()).await),
            (status, field.into()),
            "{body}"
        );
    }
    assert_eq!(
        err(a.json("POST", "/v1/answer", json!({"text": " "})).await),
        (422, "text".into())
    );
    assert_eq!(
        err(a
            .json("POST", "/v1/answer", json!({"text": "x", "intent": ""}))
            .await),
        (422, "intent".into())
    );
    let r = a
        .call(
            "POST",
            "/v1/kb/search",
            "application/json",
            b"{\"query\": \"\xff\"}".to_vec(),
        )
        .await;
    assert_eq!(err(r), (400, "body".into()));
    assert_eq!(
        err(a
            .json(
                "PUT",
                "/v1/kb/articles/a",
                json!({"id": "b", "title": "T", "body": "B"})
            )
            .await),
        (422, "id".into())
    );
    assert_eq!(
        err(a
            .json("PUT", "/v1/kb/articles/a", json!({"title": "T"}))
            .await),
        (400, "body".into())
    );
    assert_eq!(
        err(a
            .json(
                "PUT",
                "/v1/kb/articles/a",
                json!({"title": "T", "body": " "})
            )
            .await),
        (422, "body".into())
    );
    let huge = json!({"title": "T", "body": "y".repeat(2_500)});
    assert_eq!(
        err(a.json("PUT", "/v1/kb/articles/a", huge).await),
        (413, "body".into())
    );
    assert_eq!(
        err(a
            .json("PUT", "/v1/kb/articles/a?kbx=1", article("T", "B"))
            .await),
        (400, "kbx".into())
    );
    assert_eq!(
        err(a.json("GET", "/v1/kb/articles/a?kb=zzz", Value::Null).await),
        (404, "kb".into())
    );
    assert_eq!(
        a.json("GET", "/v1/kb/articles/a", Value::Null).await.1["body"],
        "Alpha body."
    );
}

#[tokio::test]
async fn the_index_is_rebuilt_from_the_store_after_a_restart() {
    let home = common::scratch_dir("kb-restart");
    {
        let a = app(config(&home)).await;
        let body = json!({"articles": [
            {"id": "a", "title": "Cancel an order", "body": "Press cancel."},
            {"id": "b", "title": "Track a parcel", "body": "Press track."}
        ]});
        assert_eq!(
            a.json("POST", "/v1/kb/import?kb=shop", body).await.0,
            StatusCode::OK
        );
        a.json("DELETE", "/v1/kb/articles/a?kb=shop", Value::Null)
            .await;
    }
    let a = app(config(&home)).await;
    assert_eq!(a.count("shop").await, 1);
    let (_, j) = a
        .json(
            "POST",
            "/v1/kb/search",
            json!({"query": "track parcel", "kb": "shop"}),
        )
        .await;
    assert_eq!(ids(&j["hits"]), ["b"], "{j}");
}
