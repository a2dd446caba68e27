//! End to end through `app()` with the real default pack: English and Chinese embeddings,
//! cross-lingual closeness, the second model, truncation with the real tokenizer.

mod common;
use axum::http::StatusCode;
use common::*;
use std::sync::Arc;
use triage::config::Config;
use triage::http::Slot;
use triage::metrics::Metrics;

fn real_app() -> Option<axum::Router> {
    pack_model("multilingual-e5-small")?;
    pack_model("all-MiniLM-L6-v2")?;
    let cfg = Config::default();
    let metrics = Arc::new(Metrics::default());
    let heads = triage::heads::registry::HeadRegistry::load(&cfg.intent, &cfg.emotion, &cfg.models)
        .unwrap();
    let state = triage::AppState::new(cfg.clone(), metrics.clone(), heads);
    for mc in &cfg.models {
        let m = triage::engine::load_model(
            mc,
            &cfg.engine(),
            &cfg.home(),
            metrics.clone(),
            &Default::default(),
        )
        .unwrap();
        state.set_slot(&mc.name, Slot::Ready(m));
    }
    Some(triage::app(state))
}

async fn embed(app: &axum::Router, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    post_json(app, "/v1/embed", body).await
}

#[tokio::test]
async fn english_and_chinese_with_cross_lingual_closeness() {
    let Some(app) = real_app() else { return };
    let texts = [
        "I want a refund for my broken headphones.",
        "我想要为我坏掉的耳机退款。",
        "The weather is lovely today in the mountains.",
        "我的订单还没有到，已经等了两周了。",
        "My order still hasn't arrived after two weeks.",
    ];
    let (s, j) = embed(&app, serde_json::json!({ "texts": texts })).await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(j["model"], "multilingual-e5-small");
    assert_eq!(j["dim"], 384);
    let e: Vec<Vec<f32>> = (0..texts.len())
        .map(|i| floats(&j["embeddings"][i]))
        .collect();
    for v in &e {
        assert_eq!(v.len(), 384);
        let n: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-4, "norm {n}");
    }
    let pair = cosine(&e[0], &e[1]);
    let unrelated = cosine(&e[0], &e[2]).max(cosine(&e[1], &e[2]));
    eprintln!("en/zh translation {pair:.4}, unrelated {unrelated:.4}");
    assert!(
        pair > unrelated + 0.05,
        "translation {pair} vs unrelated {unrelated}"
    );
    // And the other pair (zh order delay / en order delay) beats the cross pairs.
    let pair2 = cosine(&e[3], &e[4]);
    assert!(
        pair2 > cosine(&e[3], &e[0]) && pair2 > cosine(&e[4], &e[1]),
        "{pair2}"
    );
}

#[tokio::test]
async fn second_model_and_truncation() {
    let Some(app) = real_app() else { return };
    let long = "please help me with my order ".repeat(400);
    let (s, j) = embed(
        &app,
        serde_json::json!({ "texts": ["hello there", long], "model": "all-minilm-l6-v2" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(j["model"], "all-minilm-l6-v2");
    assert_eq!(j["usage"]["truncated"], serde_json::json!([1]));
    // 4 tokens for "hello there" with [CLS]/[SEP]; the long one is cut at 256, the
    // sentence-transformers max_seq_length of this model (sentence_bert_config.json).
    assert_eq!(j["usage"]["tokens"], 4 + 256);
    let (s, j) = embed(
        &app,
        serde_json::json!({ "texts": ["x"], "model": "bert-large" }),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(j["field"], "model");
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("multilingual-e5-small"),
        "{j}"
    );
}
