//! HTTP-layer tests through `app()` with a mock backend: validation, errors, 429, 503 queue
//! timeout, 408 for a stalled body, meta routes.
//! (Real-model tests live in tests/parity.rs and tests/embed_e2e.rs.)

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use triage::config::{Config, ModelConfig, Overlong};
use triage::engine::{EmbedModel, ModelInfo, Tokenize};
use triage::heads::head::{Head, HeadMeta, Kind, Weights};
use triage::heads::registry::HeadRegistry;
use triage::http::Slot;
use triage::metrics::Metrics;
use triage::models::encoder::{Backend, Prepared};

/// Bytes as token ids between two "special" ids.
struct ByteTok {
    max_len: usize,
}

impl Tokenize for ByteTok {
    fn prepare(&self, text: &str, policy: Overlong) -> anyhow::Result<Result<Prepared, usize>> {
        let mut ids = vec![0u32];
        ids.extend(text.bytes().map(u32::from));
        ids.push(2);
        let full_len = ids.len();
        if full_len > self.max_len {
            if policy == Overlong::Reject {
                return Ok(Err(full_len));
            }
            ids.truncate(self.max_len - 1);
            ids.push(2);
        }
        Ok(Ok(Prepared { ids, full_len }))
    }
}

/// Embeds a sequence as [len, first id], optionally slowly.
struct MockBackend {
    delay: Duration,
}

impl Backend for MockBackend {
    fn embed(&mut self, batch: &[&[u32]]) -> anyhow::Result<Vec<Vec<f32>>> {
        std::thread::sleep(self.delay);
        Ok(batch
            .iter()
            .map(|s| vec![s.len() as f32, s.get(1).copied().unwrap_or(0) as f32])
            .collect())
    }
}

fn config(max_concurrent: usize, overlong: Overlong) -> Config {
    let mut cfg = Config {
        models: vec![ModelConfig {
            name: "mock".into(),
            source: "pack:mock".into(),
            prefix: String::new(),
            max_length: Some(16),
        }],
        default_model: "mock".into(),
        ..Config::default()
    };
    cfg.limits.max_texts = 8;
    cfg.limits.max_text_chars = 100;
    cfg.limits.max_body_bytes = 256 * 1024;
    cfg.limits.overlong = overlong;
    cfg.limits.max_concurrent_requests = max_concurrent;
    cfg.validate().unwrap();
    cfg
}

/// A 2-label intent head and a 2-label emotion head over the mock's 2-dim "embeddings"
/// ([token count, first byte]): label `long` wins for long texts.
fn mock_heads() -> HeadRegistry {
    let meta = |task: &str, kind: Kind, labels: [&str; 2]| HeadMeta {
        name: "mockset".into(),
        task: task.into(),
        kind,
        labels: labels.iter().map(|l| l.to_string()).collect(),
        encoder: "mock".into(),
        prefix: String::new(),
        dim: 2,
        hidden: 0,
        temperature: 1.0,
        oos_threshold: Some(0.0),
        oos_label: None,
        thresholds: if kind == Kind::Sigmoid {
            vec![0.5, 0.5]
        } else {
            vec![]
        },
        training: serde_json::Value::Null,
        tuned_layers: None,
        languages: Default::default(),
    };
    let weights = || Weights {
        w1: vec![-1.0, 0.0, 1.0, 0.0],
        b1: vec![5.0, -5.0],
        w2: None,
    };
    let mut reg = HeadRegistry {
        default_intent: "mockset".into(),
        ..Default::default()
    };
    reg.intents.insert(
        "mockset".into(),
        Arc::new(Head {
            meta: meta("intent", Kind::Softmax, ["short", "long"]),
            weights: weights(),
            layers: None,
        }),
    );
    reg.emotion = Some(Arc::new(Head {
        meta: meta("emotion", Kind::Sigmoid, ["neutral", "anger"]),
        weights: weights(),
        layers: None,
    }));
    reg
}

fn app_with(cfg: Config, delay: Duration, ready: bool) -> axum::Router {
    let metrics = Arc::new(Metrics::default());
    let state = triage::AppState::new(cfg.clone(), metrics.clone(), mock_heads());
    if ready {
        let info = ModelInfo {
            name: "mock".into(),
            task: "embed".into(),
            source: "pack:mock".into(),
            dim: 2,
            device: "cpu".into(),
            dtype: "f32".into(),
            max_length: 16,
            prefix: String::new(),
        };
        let m = EmbedModel::start(
            info,
            Arc::new(ByteTok { max_len: 16 }),
            Box::new(MockBackend { delay }),
            &cfg.engine(),
            metrics,
        )
        .unwrap();
        state.set_slot("mock", Slot::Ready(m));
    }
    triage::app(state)
}

fn app() -> axum::Router {
    app_with(config(4, Overlong::Truncate), Duration::ZERO, true)
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Vec<u8>,
) -> (StatusCode, serde_json::Value, axum::http::HeaderMap) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::String(
        String::from_utf8_lossy(&bytes).into(),
    ));
    (status, json, headers)
}

async fn embed(app: &axum::Router, body: impl Into<Vec<u8>>) -> (StatusCode, serde_json::Value) {
    let (s, j, _) = call(app, "POST", "/v1/embed", body.into()).await;
    (s, j)
}

/// The error names `field` and is JSON with `error` and `kind`.
fn assert_field(j: &serde_json::Value, field: &str) {
    assert_eq!(j["field"], field, "{j}");
    assert!(j["error"].as_str().is_some_and(|e| !e.is_empty()), "{j}");
    assert!(j["kind"].is_string(), "{j}");
}

#[tokio::test]
async fn embeds_in_order() {
    let app = app();
    let (s, j) = embed(&app, r#"{"texts": ["a", "bbbb", "cc"]}"#).await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(j["model"], "mock");
    assert_eq!(j["dim"], 2);
    let lens: Vec<f64> = j["embeddings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[0].as_f64().unwrap())
        .collect();
    assert_eq!(lens, vec![3.0, 6.0, 4.0]);
    assert_eq!(j["usage"]["tokens"], 13);
}

#[tokio::test]
async fn bad_inputs_are_4xx_naming_the_field() {
    let app = app();
    let cases: Vec<(Vec<u8>, StatusCode, &str)> = vec![
        (
            br#"{"texts": []}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "texts",
        ),
        (
            br#"{"texts": ["ok", "  "]}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "texts[1]",
        ),
        (
            br#"{"texts": ["ok", ""]}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "texts[1]",
        ),
        (
            format!(r#"{{"texts": ["{}"]}}"#, "x".repeat(101)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "texts[0]",
        ),
        (
            br#"{"texts": ["a","a","a","a","a","a","a","a","a"]}"#.to_vec(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "texts",
        ),
        (
            br#"{"texts": ["a"], "model": "nope"}"#.to_vec(),
            StatusCode::NOT_FOUND,
            "model",
        ),
        (
            br#"{"texts": "a"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "texts",
        ),
        (
            br#"{"texts": ["a", 7]}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "texts[1]",
        ),
        (
            br#"{"text": ["a"]}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "text",
        ),
        (br#"{}"#.to_vec(), StatusCode::BAD_REQUEST, "texts"),
        (
            br#"{"texts": ["a"]"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "body",
        ),
        (b"not json".to_vec(), StatusCode::BAD_REQUEST, "body"),
        (b"".to_vec(), StatusCode::BAD_REQUEST, "body"),
        (
            b"{\"texts\": [\"caf\xe9\"]}".to_vec(),
            StatusCode::BAD_REQUEST,
            "body",
        ),
        (
            format!(r#"{{"texts": ["{}"]}}"#, "x".repeat(10 * 1024 * 1024)).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body",
        ),
    ];
    for (body, status, field) in cases {
        let preview = String::from_utf8_lossy(&body[..body.len().min(60)]).to_string();
        let (s, j) = embed(&app, body).await;
        assert_eq!(s, status, "{preview}: {j}");
        assert_field(&j, field);
    }
}

#[tokio::test]
async fn ten_thousand_texts_are_refused() {
    let texts: Vec<String> = (0..10_000).map(|i| format!("t{i}")).collect();
    let body = serde_json::to_vec(&serde_json::json!({ "texts": texts })).unwrap();
    let (s, j) = embed(&app(), body).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{j}");
    assert_field(&j, "texts");
    assert!(j["error"].as_str().unwrap().contains("10000"), "{j}");
}

#[tokio::test]
async fn overlong_text_truncated_or_rejected_as_configured() {
    let long = "y".repeat(40); // 42 tokens, limit 16
    let body = format!(r#"{{"texts": ["short", "{long}"]}}"#);
    let (s, j) = embed(&app(), body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(j["usage"]["truncated"], serde_json::json!([1]));
    assert_eq!(j["embeddings"][1][0], 16.0);

    let strict = app_with(config(4, Overlong::Reject), Duration::ZERO, true);
    let (s, j) = embed(&strict, body).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{j}");
    assert_field(&j, "texts[1]");
}

#[tokio::test]
async fn full_queue_gives_429_with_retry_after() {
    let app = app_with(
        config(1, Overlong::Truncate),
        Duration::from_millis(400),
        true,
    );
    let slow = {
        let app = app.clone();
        tokio::spawn(async move { embed(&app, r#"{"texts": ["first"]}"#).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (s, j, h) = call(
        &app,
        "POST",
        "/v1/embed",
        br#"{"texts": ["second"]}"#.to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{j}");
    assert_eq!(h.get("retry-after").map(|v| v.to_str().unwrap()), Some("1"));
    assert_eq!(j["kind"], "overloaded");
    let (s, _) = slow.await.unwrap();
    assert_eq!(s, StatusCode::OK);
    // Capacity comes back once the first request is answered.
    let (s, _) = embed(&app, r#"{"texts": ["third"]}"#).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn waiting_past_the_queue_wait_gives_503_with_retry_after() {
    let mut cfg = config(8, Overlong::Truncate);
    cfg.limits.queue_wait_ms = 100;
    let app = app_with(cfg, Duration::from_millis(400), true);
    let slow = {
        let app = app.clone();
        tokio::spawn(async move { embed(&app, r#"{"texts": ["first"]}"#).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Admitted, but the model is busy past the queue wait: shed without running.
    let (s, j, h) = call(
        &app,
        "POST",
        "/v1/embed",
        br#"{"texts": ["second"]}"#.to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{j}");
    assert_eq!(h.get("retry-after").map(|v| v.to_str().unwrap()), Some("1"));
    assert_eq!(j["kind"], "queue_timeout");
    assert_eq!(slow.await.unwrap().0, StatusCode::OK);
    let (s, _) = embed(&app, r#"{"texts": ["third"]}"#).await;
    assert_eq!(s, StatusCode::OK);
}

/// A request whose body stalls after `first`, sent to `uri` with `ctype`.
fn stalled(uri: &str, ctype: &str, first: &'static [u8]) -> Request<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let stream = futures_util::stream::unfold((rx, tx), |(mut rx, tx)| async move {
        rx.recv().await.map(|c| (c, (rx, tx))) // `tx` lives on: the body never ends
    });
    let stream = futures_util::StreamExt::chain(
        futures_util::stream::iter([Ok::<_, std::io::Error>(first.to_vec())]),
        stream,
    );
    Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", ctype)
        .body(Body::from_stream(stream))
        .unwrap()
}

#[tokio::test]
async fn a_stalled_body_gets_408_and_frees_its_permit() {
    let mut cfg = config(1, Overlong::Truncate);
    cfg.limits.body_timeout_secs = 1;
    let app = app_with(cfg, Duration::ZERO, true);
    let slow = {
        let app = app.clone();
        let req = stalled("/v1/embed", "application/json", b"{\"texts\": [\"fir");
        tokio::spawn(async move { app.oneshot(req).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The stalled upload holds the only permit ...
    let (s, j) = embed(&app, r#"{"texts": ["second"]}"#).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{j}");
    // ... until its deadline: 408 naming the body and the config key.
    let resp = tokio::time::timeout(Duration::from_secs(20), slow)
        .await
        .expect("the stalled request is answered")
        .unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let j: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_field(&j, "body");
    assert_eq!(j["kind"], "timeout");
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("limits.body_timeout_secs"),
        "{j}"
    );
    let (s, j) = embed(&app, r#"{"texts": ["third"]}"#).await;
    assert_eq!(s, StatusCode::OK, "{j}");
    // The multipart and raw-image screenshot uploads read their bodies under the same deadline.
    for ctype in ["multipart/form-data; boundary=XyZ", "image/png"] {
        let req = stalled(
            "/v1/screenshot",
            ctype,
            b"--XyZ\r\nContent-Disposition: form-d",
        );
        let resp = tokio::time::timeout(Duration::from_secs(20), app.clone().oneshot(req))
            .await
            .expect("the stalled upload is answered")
            .unwrap();
        assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT, "{ctype}");
    }
}

#[tokio::test]
async fn concurrent_requests_are_batched_and_answered_correctly() {
    let app = app_with(
        config(64, Overlong::Truncate),
        Duration::from_millis(20),
        true,
    );
    let mut tasks = Vec::new();
    for i in 0..32usize {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let text = "z".repeat(1 + i % 10);
            let (s, j) = embed(&app, format!(r#"{{"texts": ["{text}"]}}"#)).await;
            (i, s, j)
        }));
    }
    for t in tasks {
        let (i, s, j) = t.await.unwrap();
        assert_eq!(s, StatusCode::OK);
        assert_eq!(j["embeddings"][0][0].as_f64().unwrap() as usize, 3 + i % 10);
    }
}

#[tokio::test]
async fn health_ready_models_metrics() {
    let loading = app_with(config(4, Overlong::Truncate), Duration::ZERO, false);
    let (s, _, _) = call(&loading, "GET", "/health", vec![]).await;
    assert_eq!(s, StatusCode::OK);
    let (s, j, _) = call(&loading, "GET", "/ready", vec![]).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(j["models"]["mock"], "loading");
    let (s, j) = embed(&loading, r#"{"texts": ["a"]}"#).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{j}");

    let app = app();
    let (s, j, _) = call(&app, "GET", "/ready", vec![]).await;
    assert_eq!(s, StatusCode::OK, "{j}");
    let (s, j, _) = call(&app, "GET", "/v1/models", vec![]).await;
    assert_eq!(s, StatusCode::OK);
    let m = &j["models"][0];
    for key in [
        "name",
        "task",
        "source",
        "dim",
        "device",
        "dtype",
        "max_length",
    ] {
        assert!(!m[key].is_null(), "{key} missing in {m}");
    }
    embed(&app, r#"{"texts": ["a"]}"#).await;
    embed(&app, r#"{"texts": []}"#).await;
    let (s, j, _) = call(&app, "GET", "/metrics", vec![]).await;
    assert_eq!(s, StatusCode::OK);
    let text = j.as_str().unwrap();
    for needle in [
        "triage_http_requests_total{route=\"/v1/embed\",method=\"POST\",status=\"200\"} 1",
        "triage_http_requests_total{route=\"/v1/embed\",method=\"POST\",status=\"422\"} 1",
        "triage_http_request_seconds_bucket",
        "triage_batch_size_bucket",
        "triage_batch_tokens_bucket",
        "triage_tokens_total{model=\"mock\"}",
        "triage_queue_depth{model=\"mock\"}",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[tokio::test]
async fn unknown_route_and_method_are_json() {
    let app = app();
    let (s, j, _) = call(&app, "GET", "/v1/nope", vec![]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_field(&j, "path");
    let (s, j, _) = call(&app, "GET", "/v1/embed", vec![]).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_field(&j, "method");
}

async fn post(app: &axum::Router, uri: &str, body: &str) -> (StatusCode, serde_json::Value) {
    let (s, j, _) = call(app, "POST", uri, body.as_bytes().to_vec()).await;
    (s, j)
}

#[tokio::test]
async fn intent_emotion_language_shapes_and_errors() {
    let app = app();
    let (s, j) = post(
        &app,
        "/v1/intent",
        r#"{"texts": ["hi", "a much longer text here"], "top_k": 2}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(j["intent_set"], "mockset");
    assert_eq!(j["results"][0]["label"], "short");
    assert_eq!(j["results"][1]["label"], "long");
    assert_eq!(j["results"][1]["top"].as_array().unwrap().len(), 2);
    assert_eq!(j["results"][0]["out_of_scope"], false);

    let (s, j) = post(
        &app,
        "/v1/emotion",
        r#"{"texts": ["a much longer text here"]}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    let r = &j["results"][0];
    assert_eq!(r["labels"], serde_json::json!(["anger"]));
    assert!(r["groups"]["anger"].as_f64().unwrap() > 0.5);
    assert_eq!(r["escalate"], true, "{r}");
    assert!(
        r["reasons"][0].as_str().unwrap().starts_with("anger"),
        "{r}"
    );

    let (s, j) = post(
        &app,
        "/v1/language",
        r#"{"texts": ["我要退款", "Where is my order?"]}"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(j["results"][0]["language"], "zh");
    assert_eq!(j["results"][1]["language"], "en");

    for (uri, body, status, field) in [
        (
            "/v1/intent",
            r#"{"texts": ["x"], "intent_set": "nope"}"#,
            StatusCode::NOT_FOUND,
            "intent_set",
        ),
        (
            "/v1/intent",
            r#"{"texts": ["x"], "top_k": 0}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "top_k",
        ),
        (
            "/v1/intent",
            r#"{"texts": ["x"], "top_k": 3}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "top_k",
        ),
        (
            "/v1/intent",
            r#"{"texts": ["x"], "top_k": -1}"#,
            StatusCode::BAD_REQUEST,
            "top_k",
        ),
        (
            "/v1/intent",
            r#"{"texts": []}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "texts",
        ),
        (
            "/v1/emotion",
            r#"{"texts": [""]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "texts[0]",
        ),
        (
            "/v1/emotion",
            r#"{"texts": ["x"], "model": "m"}"#,
            StatusCode::BAD_REQUEST,
            "model",
        ),
        (
            "/v1/language",
            r#"{"texts": "x"}"#,
            StatusCode::BAD_REQUEST,
            "texts",
        ),
        (
            "/v1/language",
            r#"{"texts": ["a","a","a","a","a","a","a","a","a"]}"#,
            StatusCode::PAYLOAD_TOO_LARGE,
            "texts",
        ),
    ] {
        let (s, j) = post(&app, uri, body).await;
        assert_eq!(s, status, "{uri} {body}: {j}");
        assert_field(&j, field);
    }
}
