//! `/v1/translate` and `/v1/summarize` through `app()` with real model code: the tiny
//! random-weight Marian and T5 fixtures (made by scripts/make_seq2seq_fixtures.py) stand in
//! for opus-mt / flan-t5 weights, which no registry carries; the extractive summary runs on the
//! real multilingual encoder when the pack is installed.

mod common;
use common::post_json;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use triage::config::Config;
use triage::seq2seq::Seq2Seq;
use triage::translate::Pair;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/seq2seq")
        .join(name)
        .display()
        .to_string()
}

fn pair(s: &str, t: &str, model: &str) -> Pair {
    Pair {
        source: s.into(),
        target: t.into(),
        model: model.into(),
    }
}

/// An app without encoder models (translation and abstractive summaries need none).
fn app(cfg: Config) -> axum::Router {
    // Nothing may come from the network here: an uninstalled hub model must be a 503.
    let hub = std::env::temp_dir().join(format!("triage-empty-hub-{}", std::process::id()));
    std::env::set_var("HF_HUB_OFFLINE", "1");
    std::env::set_var("HF_HOME", &hub);
    cfg.validate().unwrap();
    let metrics = Arc::new(triage::metrics::Metrics::default());
    let heads = triage::heads::registry::HeadRegistry::load(&cfg.intent, &cfg.emotion, &cfg.models)
        .unwrap();
    triage::app(triage::AppState::new(cfg, metrics, heads))
}

fn translate_config() -> Config {
    let mut cfg = Config::default();
    cfg.models.retain(|m| m.name == "multilingual-e5-small");
    cfg.translate.pairs = vec![
        pair("en", "de", &fixture("marian")),
        pair("de", "en", &fixture("marian")),
        pair("fr", "en", &fixture("marian")),
        pair("en", "es", "hf:Helsinki-NLP/opus-mt-en-es"),
    ];
    cfg.translate.num_beams = 2;
    cfg.translate.max_new_tokens = 12;
    cfg
}

#[tokio::test]
async fn translate_splits_batches_reassembles_and_pivots() {
    let app = app(translate_config());
    let texts = ["Hello world. How are you?\nI am fine", "The order is late."];
    let (s, v) = post_json(
        &app,
        "/v1/translate",
        json!({"texts": texts, "source": "en", "target": "de"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["source"], "en");
    assert_eq!(r[0]["model"], json!([fixture("marian")]));
    // The same as the library on each sentence, put back with the original separators.
    let m = Seq2Seq::load(
        std::path::Path::new(&fixture("marian")),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let mut opts = m.default_options();
    opts.num_beams = 2;
    opts.max_new_tokens = opts.max_new_tokens.min(12);
    let one = |s: &str| m.generate(&[s], &opts).unwrap()[0].trim().to_string();
    let want = format!(
        "{} {}\n{}",
        one("Hello world."),
        one("How are you?"),
        one("I am fine")
    );
    assert_eq!(r[0]["text"], want);
    assert_eq!(r[1]["text"], one("The order is late."));

    // fr -> de has no direct model: through English, two models.
    let (s, v) = post_json(
        &app,
        "/v1/translate",
        json!({"texts": ["Bonjour."], "source": "fr", "target": "de"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"][0]["model"].as_array().unwrap().len(), 2);
    // Same language: returned as is, no model.
    let (s, v) = post_json(
        &app,
        "/v1/translate",
        json!({"texts": ["Hallo."], "source": "de-DE", "target": "de"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["results"][0]["text"], "Hallo.");
    assert_eq!(v["results"][0]["model"], json!([]));
}

#[tokio::test]
async fn translate_bad_requests_name_the_field() {
    let app = app(translate_config());
    let cases = [
        (
            json!({"texts": ["x"], "source": "en", "target": "ja"}),
            422,
            "target",
        ),
        (
            json!({"texts": ["x"], "source": "ko", "target": "de"}),
            422,
            "source",
        ),
        (json!({"texts": [], "target": "de"}), 422, "texts"),
        (
            json!({"texts": [""], "source": "en", "target": "de"}),
            422,
            "texts[0]",
        ),
        (
            json!({"texts": vec!["x"; 65], "source": "en", "target": "de"}),
            413,
            "texts",
        ),
        (json!({"texts": "x", "target": "de"}), 400, "texts"),
        (
            json!({"texts": ["x"], "target": "de", "extra": 1}),
            400,
            "extra",
        ),
    ];
    for (body, status, field) in cases {
        let (s, v) = post_json(&app, "/v1/translate", body.clone()).await;
        assert_eq!(s.as_u16(), status, "{body} -> {v}");
        assert!(
            v["field"].as_str().unwrap_or("").contains(field),
            "{body} -> {v}"
        );
    }
    let (_, v) = post_json(
        &app,
        "/v1/translate",
        json!({"texts": ["x"], "source": "en", "target": "ja"}),
    )
    .await;
    assert!(v["error"].as_str().unwrap().contains("en->de"), "{v}");
    // A configured model that is not installed: 503 saying how to install it.
    let (s, v) = post_json(
        &app,
        "/v1/translate",
        json!({"texts": ["Hello."], "source": "en", "target": "es"}),
    )
    .await;
    assert_eq!(s, 503, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("triage models fetch"),
        "{v}"
    );
    // A sentence longer than translate.max_input_tokens names its text.
    let mut cfg = translate_config();
    cfg.translate.max_input_tokens = 8;
    let app = self::app(cfg);
    let (s, v) = post_json(
        &app,
        "/v1/translate",
        json!({"texts": ["ok.", "this sentence has far too many words for the limit"], "source": "en", "target": "de"}),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["field"], "texts[1]");
}

fn conversation() -> serde_json::Value {
    json!([
        {"role": "customer", "text": "Hi. I was charged twice for order A12-99812 and I want a refund."},
        {"role": "agent", "text": "Sorry about that! Which card was charged?"},
        {"role": "customer", "text": "My visa card. When will I get the money back?"}
    ])
}

#[tokio::test]
async fn abstractive_summary_with_t5_and_bad_requests() {
    let mut cfg = Config::default();
    cfg.models.retain(|m| m.name == "multilingual-e5-small");
    cfg.summarize.model = Some(fixture("t5_v1_1"));
    cfg.summarize.num_beams = 2;
    cfg.summarize.max_new_tokens = 10;
    let app = app(cfg);
    let (s, v) = post_json(
        &app,
        "/v1/summarize",
        json!({"conversation": conversation(), "mode": "abstractive"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["mode"], "abstractive");
    assert!(v["open_question"].as_str().unwrap().contains("money back"));
    assert!(v["entities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["value"] == "A12-99812"));
    let m = Seq2Seq::load(
        std::path::Path::new(&fixture("t5_v1_1")),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let input = "summarize: Customer: Hi. I was charged twice for order A12-99812 and I want a refund.\nAgent: Sorry about that! Which card was charged?\nCustomer: My visa card. When will I get the money back?";
    let opts = triage::seq2seq::GenerateOptions {
        num_beams: 2,
        max_new_tokens: 10,
        no_repeat_ngram_size: 3,
        length_penalty: 1.0,
        ..m.default_options()
    };
    assert_eq!(v["summary"], m.generate(&[input], &opts).unwrap()[0].trim());

    let bad = [
        (json!({"conversation": []}), 422, "conversation"),
        (
            json!({"conversation": [{"role": "robot", "text": "x"}]}),
            422,
            "conversation[0].role",
        ),
        (
            json!({"conversation": [{"role": "customer", "text": " "}]}),
            422,
            "conversation[0].text",
        ),
        (
            json!({"conversation": conversation(), "mode": "poem"}),
            422,
            "mode",
        ),
        (
            json!({"conversation": conversation(), "max_words": 1}),
            422,
            "max_words",
        ),
        (
            json!({"conversation": vec![json!({"role": "customer", "text": "x"}); 501]}),
            413,
            "conversation",
        ),
    ];
    for (body, status, field) in bad {
        let (s, v) = post_json(&app, "/v1/summarize", body.clone()).await;
        assert_eq!(s.as_u16(), status, "{v}");
        assert_eq!(v["field"], field, "{v}");
    }
    // No abstractive model configured: 503 saying what to set.
    let mut cfg = Config::default();
    cfg.models.retain(|m| m.name == "multilingual-e5-small");
    let (s, v) = post_json(
        &self::app(cfg),
        "/v1/summarize",
        json!({"conversation": conversation(), "mode": "abstractive"}),
    )
    .await;
    assert_eq!(s, 503, "{v}");
    assert!(v["error"].as_str().unwrap().contains("summarize.model"));
}

#[tokio::test]
async fn extractive_summary_on_the_real_encoder() {
    if common::pack_model("multilingual-e5-small").is_none() {
        return;
    }
    let mut cfg = Config::default();
    cfg.models.retain(|m| m.name == "multilingual-e5-small");
    let state = triage::server::loaded_state(cfg).unwrap();
    let app = triage::app(state);
    let (s, v) = post_json(
        &app,
        "/v1/summarize",
        json!({"conversation": conversation()}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["mode"], "extractive");
    let text = v["summary"].as_str().unwrap();
    assert!(text.starts_with("Customer: I was charged twice"), "{text}");
    assert!(text.contains("Agent: "), "{text}");
    assert_eq!(v["key_turns"][0]["why"], "problem");
    let zh = json!([
        {"role": "customer", "text": "你好。我的订单12345一直没有发货，已经等了一个星期了。"},
        {"role": "agent", "text": "抱歉！我帮您查一下物流信息。"},
        {"role": "customer", "text": "什么时候能到？"}
    ]);
    let (s, v) = post_json(
        &app,
        "/v1/summarize",
        json!({"conversation": zh, "max_words": 30}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["summary"].as_str().unwrap().contains("没有发货"), "{v}");
    assert_eq!(v["open_question"], "什么时候能到？");
}
