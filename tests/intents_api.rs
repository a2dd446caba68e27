//! Few-shot intents and discovery through `app()` with a mock encoder (bag of hashed words):
//! CRUD, classification alone and extending a trained set, persistence across a restart, the
//! intents file, every bad input, and the discover + accept flow.

mod common;

use axum::http::StatusCode;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use triage::config::Config;
use triage::heads::head::{Head, HeadMeta, Kind, Weights};
use triage::heads::registry::HeadRegistry;
use triage::http::{AppState, Slot};
use triage::metrics::Metrics;

use common::bag::{bag_model, bucket, mock_config, DIM};

/// A trained set `shop` over the mock: `cancel_order` when "cancel" is in the text,
/// `track_order` when "track" is, else out of scope (0.5 / 0.5 is under its threshold).
fn heads() -> HeadRegistry {
    assert_ne!(bucket("cancel"), bucket("track"));
    let mut w1 = vec![0f32; 2 * DIM];
    w1[bucket("cancel")] = 12.0;
    w1[DIM + bucket("track")] = 12.0;
    let meta = HeadMeta {
        name: "shop".into(),
        task: "intent".into(),
        kind: Kind::Softmax,
        labels: vec!["cancel_order".into(), "track_order".into()],
        encoder: "mock".into(),
        prefix: String::new(),
        dim: DIM,
        hidden: 0,
        temperature: 1.0,
        oos_threshold: Some(0.9),
        oos_label: None,
        thresholds: vec![],
        training: Value::Null,
        tuned_layers: None,
        languages: Default::default(),
    };
    let mut reg = HeadRegistry {
        default_intent: "shop".into(),
        ..Default::default()
    };
    let weights = Weights {
        w1,
        b1: vec![0.0, 0.0],
        w2: None,
    };
    reg.intents.insert(
        "shop".into(),
        Arc::new(Head {
            meta,
            weights,
            layers: None,
        }),
    );
    reg
}

fn temp_home() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "triage-intents-api-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn config(home: &Path) -> Config {
    let mut cfg = mock_config(home);
    cfg.intent.default_set = "shop".into();
    cfg.fewshot.threshold = 0.5;
    cfg.fewshot.max_examples = 5;
    cfg.fewshot.max_example_chars = 50;
    cfg.fewshot.max_intents = 4;
    cfg.discovery.cluster_threshold = 0.6;
    cfg.discovery.min_size = 2;
    cfg.validate().unwrap();
    cfg
}

/// A server state over `cfg` with the store loaded from disk; the model ready or loading.
fn start(cfg: &Config, ready: bool) -> (axum::Router, Arc<AppState>) {
    let metrics = Arc::new(Metrics::default());
    let h = heads();
    let state = AppState::new(cfg.clone(), metrics.clone(), h);
    state
        .intents
        .load(&state.config.home(), &state.heads)
        .unwrap();
    if ready {
        let m = bag_model(&cfg.engine(), metrics);
        state.set_slot("mock", Slot::Ready(m));
    }
    (triage::app(state.clone()), state)
}

async fn call(app: &axum::Router, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    common::request(app, method, uri, body.to_string()).await
}

/// A successful call's answer; a `Value::Null` body is sent empty.
async fn ok(app: &axum::Router, method: &str, uri: &str, body: Value) -> Value {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (s, j) = call(app, method, uri, &text).await;
    assert!(s.is_success(), "{method} {uri} {body}: {s} {j}");
    j
}

async fn intent(app: &axum::Router, body: Value) -> Value {
    ok(app, "POST", "/v1/intent", body).await
}

fn gift() -> Value {
    json!({"examples": ["gift card balance", "how much money is on my gift card", "check gift card"]})
}

#[tokio::test]
async fn crud_and_a_pure_fewshot_set() {
    let home = temp_home();
    let (app, _) = start(&config(&home), true);
    let mut body = gift();
    body["intent_set"] = json!("faq");
    body["description"] = json!("Gift card questions");
    let (s, j) = call(&app, "PUT", "/v1/intents/gift_card", &body.to_string()).await;
    assert_eq!(s, StatusCode::CREATED, "{j}");
    assert_eq!(
        (j["intent_set"].as_str(), j["status"].as_str()),
        (Some("faq"), Some("ready"))
    );
    assert_eq!(j["origin"], "api");
    let (s, _) = call(&app, "PUT", "/v1/intents/gift_card", &body.to_string()).await;
    assert_eq!(s, StatusCode::OK, "a second PUT replaces");
    let hours = json!({"intent_set": "faq", "examples": ["store opening hours", "when does the store open", "are you open on sunday"]});
    ok(&app, "PUT", "/v1/intents/store_hours", hours).await;

    let j = ok(&app, "GET", "/v1/intents/gift_card", Value::Null).await;
    assert_eq!(j["examples"][1], "how much money is on my gift card");
    assert_eq!(j["description"], "Gift card questions");
    let j = ok(&app, "GET", "/v1/intents", Value::Null).await;
    let sets = j["intent_sets"].as_array().unwrap();
    let faq = sets.iter().find(|s| s["name"] == "faq").unwrap();
    assert_eq!(faq["trained"], false);
    assert_eq!(faq["intents"].as_array().unwrap().len(), 2);
    let shop = sets.iter().find(|s| s["name"] == "shop").unwrap();
    assert_eq!(
        (shop["trained"].as_bool(), shop["trained_labels"].as_u64()),
        (Some(true), Some(2))
    );

    let j = intent(
        &app,
        json!({"intent_set": "faq", "top_k": 2, "texts": [
        "what is the balance of my gift card", "when are you open", "the weather is sunny"]}),
    )
    .await;
    assert_eq!(j["intent_set"], "faq");
    let r = &j["results"];
    assert_eq!(
        (r[0]["label"].as_str(), r[0]["out_of_scope"].as_bool()),
        (Some("gift_card"), Some(false)),
        "{r}"
    );
    assert_eq!(r[1]["label"], "store_hours", "{r}");
    assert_eq!(r[0]["top"].as_array().unwrap().len(), 2);
    assert_eq!(r[2]["out_of_scope"], true, "{r}");
    let (s, j) = call(
        &app,
        "POST",
        "/v1/intent",
        r#"{"intent_set": "faq", "texts": ["x"], "top_k": 3}"#,
    )
    .await;
    assert_eq!(
        (s, j["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("top_k"))
    );

    let j = ok(&app, "DELETE", "/v1/intents/store_hours", Value::Null).await;
    assert_eq!(
        (j["deleted"].as_str(), j["intent_set"].as_str()),
        (Some("store_hours"), Some("faq"))
    );
    for m in ["DELETE", "GET"] {
        let (s, j) = call(&app, m, "/v1/intents/store_hours", "").await;
        assert_eq!(
            (s, j["field"].as_str()),
            (StatusCode::NOT_FOUND, Some("name")),
            "{m}"
        );
    }
    std::fs::remove_dir_all(&home).unwrap();
}

#[tokio::test]
async fn fewshot_intents_extend_a_trained_set() {
    let home = temp_home();
    let (app, _) = start(&config(&home), true);
    ok(&app, "PUT", "/v1/intents/gift_card", gift()).await;
    let j = intent(&app, json!({"texts": ["please cancel my order", "gift card balance please", "the weather is sunny"], "top_k": 3})).await;
    assert_eq!(j["intent_set"], "shop");
    let r = &j["results"];
    assert_eq!(
        (r[0]["label"].as_str(), r[0]["out_of_scope"].as_bool()),
        (Some("cancel_order"), Some(false)),
        "{r}"
    );
    assert_eq!(
        (r[1]["label"].as_str(), r[1]["out_of_scope"].as_bool()),
        (Some("gift_card"), Some(false)),
        "{r}"
    );
    assert_eq!(
        r[1]["top"][0]["label"], "gift_card",
        "few-shot matches come first: {r}"
    );
    assert_eq!(
        r[1]["top"].as_array().unwrap().len(),
        3,
        "then the head's labels: {r}"
    );
    assert_eq!(r[2]["out_of_scope"], true, "{r}");
    std::fs::remove_dir_all(&home).unwrap();
}

#[tokio::test]
async fn every_bad_input_is_a_4xx_naming_the_field() {
    let home = temp_home();
    let (app, _) = start(&config(&home), true);
    let long = "x".repeat(51);
    let name65 = "n".repeat(65);
    let cases: Vec<(&str, String, String, StatusCode, &str)> = vec![
        (
            "PUT",
            "/v1/intents/a".into(),
            r#"{"examples": []}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "examples",
        ),
        (
            "PUT",
            "/v1/intents/a".into(),
            r#"{"examples": ["ok", "  "]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "examples[1]",
        ),
        (
            "PUT",
            "/v1/intents/a".into(),
            format!(r#"{{"examples": ["{long}"]}}"#),
            StatusCode::PAYLOAD_TOO_LARGE,
            "examples[0]",
        ),
        (
            "PUT",
            "/v1/intents/a".into(),
            r#"{"examples": ["a","b","c","d","e","f"]}"#.into(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "examples",
        ),
        (
            "PUT",
            "/v1/intents/a".into(),
            r#"{"examples": ["Gift card", "gift  CARD"]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "examples[1]",
        ),
        (
            "PUT",
            "/v1/intents/a".into(),
            r#"{"examples": "a"}"#.into(),
            StatusCode::BAD_REQUEST,
            "examples",
        ),
        (
            "PUT",
            "/v1/intents/a".into(),
            r#"{"examples": ["a", 3]}"#.into(),
            StatusCode::BAD_REQUEST,
            "examples[1]",
        ),
        (
            "PUT",
            "/v1/intents/a".into(),
            r#"{"exampels": ["a"]}"#.into(),
            StatusCode::BAD_REQUEST,
            "exampels",
        ),
        (
            "PUT",
            "/v1/intents/a".into(),
            r#"{"examples": ["a"]"#.into(),
            StatusCode::BAD_REQUEST,
            "body",
        ),
        (
            "PUT",
            "/v1/intents/a".into(),
            "".into(),
            StatusCode::BAD_REQUEST,
            "body",
        ),
        (
            "PUT",
            "/v1/intents/a".into(),
            format!(
                r#"{{"examples": ["a"], "description": "{}"}}"#,
                "d".repeat(1001)
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
            "description",
        ),
        (
            "PUT",
            "/v1/intents/a".into(),
            r#"{"examples": ["a"], "intent_set": "a b"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "intent_set",
        ),
        (
            "PUT",
            "/v1/intents/a%20b".into(),
            r#"{"examples": ["a"]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            "PUT",
            "/v1/intents/_a".into(),
            r#"{"examples": ["a"]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            "PUT",
            format!("/v1/intents/{name65}"),
            r#"{"examples": ["a"]}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            "PUT",
            "/v1/intents/%FF".into(),
            r#"{"examples": ["a"]}"#.into(),
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            "PUT",
            "/v1/intents/cancel_order".into(),
            r#"{"examples": ["a"]}"#.into(),
            StatusCode::CONFLICT,
            "name",
        ),
        (
            "PUT",
            "/v1/intents/discover".into(),
            r#"{"examples": ["a"]}"#.into(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method",
        ),
        (
            "GET",
            "/v1/intents/nope".into(),
            "".into(),
            StatusCode::NOT_FOUND,
            "name",
        ),
        (
            "DELETE",
            "/v1/intents/nope".into(),
            "".into(),
            StatusCode::NOT_FOUND,
            "name",
        ),
        (
            "POST",
            "/v1/intent".into(),
            r#"{"texts": ["a"], "intent_set": "nope"}"#.into(),
            StatusCode::NOT_FOUND,
            "intent_set",
        ),
        (
            "POST",
            "/v1/intents/discover".into(),
            "".into(),
            StatusCode::NOT_FOUND,
            "discovery",
        ),
        (
            "DELETE",
            "/v1/intents/discover".into(),
            "".into(),
            StatusCode::NOT_FOUND,
            "discovery",
        ),
        (
            "POST",
            "/v1/intents/discover/abc/accept".into(),
            "".into(),
            StatusCode::NOT_FOUND,
            "discovery",
        ),
    ];
    for (m, uri, body, status, field) in cases {
        let (s, j) = call(&app, m, &uri, &body).await;
        assert_eq!(s, status, "{m} {uri} {body}: {j}");
        assert_eq!(j["field"], field, "{m} {uri} {body}: {j}");
        assert!(j["error"].as_str().is_some_and(|e| !e.is_empty()), "{j}");
    }
    // fewshot.max_intents = 4: a fifth intent is refused, replacing one is not.
    for i in 0..4 {
        ok(
            &app,
            "PUT",
            &format!("/v1/intents/i{i}"),
            json!({"examples": [format!("text {i}")]}),
        )
        .await;
    }
    let (s, j) = call(&app, "PUT", "/v1/intents/i4", r#"{"examples": ["more"]}"#).await;
    assert_eq!(
        (s, j["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name")),
        "{j}"
    );
    ok(
        &app,
        "PUT",
        "/v1/intents/i3",
        json!({"examples": ["again"]}),
    )
    .await;
    std::fs::remove_dir_all(&home).unwrap();
}

#[tokio::test]
async fn intents_persist_across_a_restart_without_the_model() {
    let home = temp_home();
    let cfg = config(&home);
    let (app, _) = start(&cfg, true);
    ok(&app, "PUT", "/v1/intents/gift_card", gift()).await;
    ok(
        &app,
        "PUT",
        "/v1/intents/hours",
        json!({"examples": ["store opening hours"], "intent_set": "faq"}),
    )
    .await;
    ok(&app, "DELETE", "/v1/intents/hours", Value::Null).await;
    ok(
        &app,
        "PUT",
        "/v1/intents/refund_zh",
        json!({"examples": ["退款 多久 到账"], "intent_set": "faq"}),
    )
    .await;
    let files: Vec<String> = std::fs::read_dir(home.join("intents"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["intents.json"], "one file, no temporary left");

    // A new process: the store loads from disk while the model is still loading.
    let (app, state) = start(&cfg, false);
    let j = ok(&app, "GET", "/v1/intents/gift_card", Value::Null).await;
    assert_eq!(
        (j["status"].as_str(), j["intent_set"].as_str()),
        (Some("ready"), Some("shop"))
    );
    assert_eq!(
        ok(&app, "GET", "/v1/intents/refund_zh", Value::Null).await["examples"][0],
        "退款 多久 到账"
    );
    let (s, _) = call(&app, "GET", "/v1/intents/hours", "").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &app,
        "POST",
        "/v1/intent",
        r#"{"texts": ["gift card balance"]}"#,
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    drop((app, state));
    let (app, _) = start(&cfg, true);
    let j = intent(&app, json!({"texts": ["my gift card balance"]})).await;
    assert_eq!(j["results"][0]["label"], "gift_card", "{j}");
    std::fs::remove_dir_all(&home).unwrap();
}

#[tokio::test]
async fn the_intents_file_is_loaded_and_embedded_on_first_use() {
    let home = temp_home();
    let toml = home.join("intents.toml");
    std::fs::write(
        &toml,
        r#"
[[intents]]
name = "gift_card"
intent_set = "faq"
description = "Gift cards"
examples = ["gift card balance", "check my gift card"]

[[intents]]
name = "store_hours"
intent_set = "faq"
examples = ["store opening hours", "when do you open"]
"#,
    )
    .unwrap();
    let mut cfg = config(&home);
    cfg.fewshot.file = Some(toml.clone());
    let (app, _) = start(&cfg, true);
    let j = ok(&app, "GET", "/v1/intents/gift_card", Value::Null).await;
    assert_eq!(
        (j["status"].as_str(), j["origin"].as_str()),
        (Some("pending"), Some("file"))
    );
    let j = intent(
        &app,
        json!({"intent_set": "faq", "texts": ["when do you open the store"]}),
    )
    .await;
    assert_eq!(j["results"][0]["label"], "store_hours", "{j}");
    assert_eq!(
        ok(&app, "GET", "/v1/intents/gift_card", Value::Null).await["status"],
        "ready"
    );
    for (m, body) in [("PUT", r#"{"examples": ["x"]}"#), ("DELETE", "")] {
        let (s, j) = call(&app, m, "/v1/intents/gift_card", body).await;
        assert_eq!(
            (s, j["field"].as_str()),
            (StatusCode::CONFLICT, Some("name")),
            "{m} {j}"
        );
    }

    let json_file = home.join("intents.json5.json");
    std::fs::write(
        &json_file,
        r#"{"intents": [{"name": "a", "examples": ["x"]}, {"name": "b", "examples": ["y", " "]}]}"#,
    )
    .unwrap();
    cfg.fewshot.file = Some(json_file.clone());
    let state = AppState::new(cfg.clone(), Arc::new(Metrics::default()), heads());
    let e = format!(
        "{:#}",
        state
            .intents
            .load(&state.config.home(), &state.heads)
            .unwrap_err()
    );
    assert!(e.contains("intents[1].examples[1]"), "{e}");
    std::fs::write(
        &json_file,
        r#"{"intents": [{"name": "cancel_order", "examples": ["x"]}]}"#,
    )
    .unwrap();
    let e = format!(
        "{:#}",
        state
            .intents
            .load(&state.config.home(), &state.heads)
            .unwrap_err()
    );
    assert!(e.contains("trained label"), "{e}");
    std::fs::remove_dir_all(&home).unwrap();
}

#[tokio::test]
async fn discovery_finds_accepts_and_then_matches() {
    let home = temp_home();
    let mut cfg = config(&home);
    cfg.discovery.enabled = true;
    let (app, _) = start(&cfg, true);
    let texts = [
        "gift card balance",
        "please cancel my order",
        "what is my gift card balance",
        "store opening hours",
        "gift card balance check",
        "when are the store opening hours",
        "the weather is sunny",
        "store opening hours on sunday",
    ];
    let j = intent(&app, json!({ "texts": texts })).await;
    assert_eq!(j["results"][0]["out_of_scope"], true);
    assert_eq!(j["results"][1]["label"], "cancel_order");

    let d = ok(&app, "POST", "/v1/intents/discover", json!({})).await;
    assert_eq!(
        (d["intent_set"].as_str(), d["unmatched"].as_u64()),
        (Some("shop"), Some(7)),
        "{d}"
    );
    let c = d["candidates"].as_array().unwrap();
    assert_eq!(c.len(), 2, "{d}");
    assert_eq!(
        c.iter().map(|c| c["size"].as_u64().unwrap()).sum::<u64>(),
        6,
        "{d}"
    );
    let gift = c
        .iter()
        .find(|c| c["representatives"][0].as_str().unwrap().contains("gift"))
        .unwrap();
    let terms: Vec<&str> = gift["key_terms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        terms.contains(&"gift") && terms.contains(&"balance"),
        "{terms:?}"
    );
    let name = gift["suggested_name"].as_str().unwrap().to_string();
    assert!(name.contains("gift"), "{name}");
    let id = gift["id"].as_str().unwrap().to_string();
    let again = ok(&app, "POST", "/v1/intents/discover", Value::Null).await;
    assert!(
        again["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id.as_str()),
        "ids are stable"
    );

    for (uri, body, status, field) in [
        (
            "/v1/intents/discover",
            r#"{"min_size": 1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "min_size",
        ),
        (
            "/v1/intents/discover",
            r#"{"max_candidates": 0}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "max_candidates",
        ),
        (
            "/v1/intents/discover",
            r#"{"intent_set": "nope"}"#,
            StatusCode::NOT_FOUND,
            "intent_set",
        ),
        (
            "/v1/intents/discover",
            r#"{"min_sise": 3}"#,
            StatusCode::BAD_REQUEST,
            "min_sise",
        ),
        (
            "/v1/intents/discover/0123456789abcdef/accept",
            "",
            StatusCode::NOT_FOUND,
            "id",
        ),
    ] {
        let (s, j) = call(&app, "POST", uri, body).await;
        assert_eq!(
            (s, j["field"].as_str()),
            (status, Some(field)),
            "{uri} {body}: {j}"
        );
    }
    let accept = format!("/v1/intents/discover/{id}/accept");
    for (body, status) in [
        (r#"{"name": "cancel_order"}"#, StatusCode::CONFLICT),
        (r#"{"name": "a b"}"#, StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let (s, j) = call(&app, "POST", &accept, body).await;
        assert_eq!(
            (s, j["field"].as_str()),
            (status, Some("name")),
            "{body}: {j}"
        );
    }
    let (s, j) = call(&app, "POST", &accept, "").await;
    assert_eq!(s, StatusCode::CREATED, "{j}");
    assert_eq!(
        (j["intent"]["name"].as_str(), j["removed"].as_u64()),
        (Some(name.as_str()), Some(3)),
        "{j}"
    );
    assert_eq!(j["intent"]["origin"], "discovery");
    let (s, _) = call(&app, "POST", &accept, "").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a candidate is accepted once");

    // The question that missed now matches, through the same call.
    let j = intent(&app, json!({"texts": ["gift card balance"]})).await;
    assert_eq!(
        (
            j["results"][0]["label"].as_str(),
            j["results"][0]["out_of_scope"].as_bool()
        ),
        (Some(name.as_str()), Some(false)),
        "{j}"
    );

    // A restart keeps the remaining unmatched texts and the accepted intent.
    let (app, _) = start(&cfg, true);
    let d = ok(
        &app,
        "POST",
        "/v1/intents/discover",
        json!({"intent_set": "shop", "min_size": 3}),
    )
    .await;
    assert_eq!(d["unmatched"], 4, "{d}");
    assert_eq!(d["candidates"].as_array().unwrap().len(), 1, "{d}");
    assert!(
        d["candidates"][0]["key_terms"]
            .as_array()
            .unwrap()
            .contains(&json!("hours")),
        "{d}"
    );
    ok(&app, "GET", &format!("/v1/intents/{name}"), Value::Null).await;

    // The store is bounded: the oldest texts go first.
    cfg.discovery.max_items = 5;
    let (app, _) = start(&cfg, true);
    intent(
        &app,
        json!({"texts": ["one sunny day", "two sunny days", "three rainy days"]}),
    )
    .await;
    let d = ok(&app, "POST", "/v1/intents/discover", Value::Null).await;
    assert_eq!(d["unmatched"], 5, "{d}");
    let (s, j) = call(
        &app,
        "DELETE",
        "/v1/intents/discover",
        r#"{"intent_set": "faq"}"#,
    )
    .await;
    assert_eq!((s, j["removed"].as_u64()), (StatusCode::OK, Some(0)), "{j}");
    let j = ok(&app, "DELETE", "/v1/intents/discover", Value::Null).await;
    assert_eq!(j["removed"], 5, "{j}");
    let (app, _) = start(&cfg, true);
    let d = ok(&app, "POST", "/v1/intents/discover", Value::Null).await;
    assert_eq!(d["unmatched"], 0, "purged for good: {d}");
    let text = std::fs::read_to_string(home.join("intents/unmatched.jsonl")).unwrap();
    assert!(text.is_empty(), "{text}");
    std::fs::remove_dir_all(&home).unwrap();
}
