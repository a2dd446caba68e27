//! Few-shot intents and discovery on the real encoder (multilingual-e5-small), through `app()`:
//! English and Chinese examples, held-out phrasings, unrelated text out of scope, intents that
//! extend the shipped `bitext` set, and discovery + accept on texts of three distinct intents.

mod common;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use triage::config::Config;
use triage::http::Slot;
use triage::metrics::Metrics;

/// The app on the real encoder, its intent store in a fresh folder (models from the pack).
fn real_app(discovery: bool) -> Option<(axum::Router, PathBuf)> {
    common::pack_model("multilingual-e5-small")?;
    let home = common::scratch_dir("intents-e2e");
    let mut cfg = Config::default();
    cfg.models.retain(|m| m.name == "multilingual-e5-small");
    cfg.server.home = Some(home.clone());
    cfg.discovery.enabled = discovery;
    let metrics = Arc::new(Metrics::default());
    let heads = triage::heads::registry::HeadRegistry::load(&cfg.intent, &cfg.emotion, &cfg.models)
        .unwrap();
    let state = triage::AppState::new(cfg.clone(), metrics.clone(), heads);
    state
        .intents
        .load(&state.config.home(), &state.heads)
        .unwrap();
    let pack = triage::config::default_home();
    let m = triage::engine::load_model(&cfg.models[0], &cfg.engine(), &pack, metrics, &state.heads)
        .unwrap();
    state.set_slot(&cfg.models[0].name, Slot::Ready(m));
    Some((triage::app(state), home))
}

async fn send(app: &axum::Router, method: &str, uri: &str, body: Value) -> Value {
    let (s, j) = common::request(app, method, uri, body.to_string()).await;
    assert!(s.is_success(), "{method} {uri}: {s} {j}");
    j
}

fn intents() -> Vec<(&'static str, Value)> {
    vec![
        (
            "gift_card_balance",
            json!([
                "How much money is left on my gift card?",
                "check my gift card balance",
                "is there any credit left on this gift card",
                "what's the remaining balance on my voucher card",
                "礼品卡余额是多少",
                "查询我的礼品卡余额"
            ]),
        ),
        (
            "store_hours",
            json!([
                "What time does your store open?",
                "what are your opening hours on weekends",
                "are you open on public holidays",
                "what time do you close tonight",
                "你们几点开门",
                "周末营业时间是几点到几点"
            ]),
        ),
        (
            "warranty_claim",
            json!([
                "my device broke, is it still under warranty",
                "how do I make a warranty claim",
                "does the guarantee cover repairs",
                "the product stopped working after two months, can it be repaired under warranty",
                "保修期内坏了怎么办",
                "我想申请保修维修"
            ]),
        ),
    ]
}

#[tokio::test]
async fn fewshot_intents_in_english_and_chinese() {
    let Some((app, home)) = real_app(false) else {
        return;
    };
    for (name, examples) in intents() {
        let j = send(
            &app,
            "PUT",
            &format!("/v1/intents/{name}"),
            json!({"intent_set": "care", "examples": examples}),
        )
        .await;
        assert_eq!(j["status"], "ready");
    }
    let held_out = [
        (
            "Can you tell me the balance of my gift card?",
            Some("gift_card_balance"),
        ),
        ("我的礼品卡里还有多少钱", Some("gift_card_balance")),
        (
            "What time does your store close on Saturdays?",
            Some("store_hours"),
        ),
        ("星期天你们几点关门", Some("store_hours")),
        (
            "The blender stopped working, can I get it repaired under warranty?",
            Some("warranty_claim"),
        ),
        ("保修怎么申请", Some("warranty_claim")),
        ("What is the capital of France?", None),
        ("给我讲个笑话吧", None),
        (
            "I love playing football with my friends on Sunday afternoons",
            None,
        ),
    ];
    let texts: Vec<&str> = held_out.iter().map(|h| h.0).collect();
    let j = send(
        &app,
        "POST",
        "/v1/intent",
        json!({"texts": texts, "intent_set": "care"}),
    )
    .await;
    for (i, (text, want)) in held_out.iter().enumerate() {
        let r = &j["results"][i];
        match want {
            Some(l) => {
                assert_eq!(r["label"], *l, "{text}: {r}");
                assert_eq!(r["out_of_scope"], false, "{text}: {r}");
            }
            None => assert_eq!(r["out_of_scope"], true, "{text}: {r}"),
        }
    }
    let _ = std::fs::remove_dir_all(home);
}

#[tokio::test]
async fn fewshot_intents_extend_the_bitext_set() {
    let Some((app, home)) = real_app(false) else {
        return;
    };
    let (name, examples) = intents().remove(0);
    send(
        &app,
        "PUT",
        &format!("/v1/intents/{name}"),
        json!({"examples": examples}),
    )
    .await;
    let j = send(
        &app,
        "POST",
        "/v1/intent",
        json!({"texts": [
        "how much is still on my gift card", "I want to cancel my order", "我想取消我的订单"]}),
    )
    .await;
    assert_eq!(j["intent_set"], "bitext");
    let r = &j["results"];
    assert_eq!(
        (r[0]["label"].as_str(), r[0]["out_of_scope"].as_bool()),
        (Some(name), Some(false)),
        "{r}"
    );
    assert_eq!(
        r[1]["label"], "cancel_order",
        "the trained labels still answer: {r}"
    );
    assert_eq!(r[2]["label"], "cancel_order", "{r}");
    let _ = std::fs::remove_dir_all(home);
}

/// Customer questions of three intents the shipped `bitext` set does not cover.
fn unmatched_texts() -> Vec<(&'static str, &'static str)> {
    let g = "gift card";
    let s = "store hours";
    let w = "warranty";
    vec![
        (g, "How much money is left on my gift card?"),
        (s, "What time does your store open on Saturday?"),
        (w, "Is my laptop still covered by the warranty?"),
        (g, "What is the balance on my gift card?"),
        (s, "What are your store opening hours?"),
        (w, "Does the warranty cover a broken laptop screen?"),
        (g, "Can you check the balance of my gift card?"),
        (s, "When does your store close today?"),
        (w, "How long is the warranty on this laptop?"),
        (g, "I want to know my gift card balance"),
        (s, "Is your store open on Sunday?"),
        (w, "Can I get my laptop repaired under warranty?"),
        (g, "how do I check how much is on my gift card"),
        (s, "what time does the store open tomorrow"),
        (w, "my laptop broke, is the repair covered by the warranty"),
    ]
}

#[tokio::test]
async fn discovery_recovers_intents_and_accepting_one_makes_it_match() {
    let Some((app, home)) = real_app(true) else {
        return;
    };
    let items = unmatched_texts();
    let texts: Vec<&str> = items.iter().map(|t| t.1).collect();
    let j = send(&app, "POST", "/v1/intent", json!({ "texts": texts })).await;
    let missed: Vec<usize> = (0..texts.len())
        .filter(|&i| j["results"][i]["out_of_scope"] == true)
        .collect();
    assert!(missed.len() >= 9, "most of these are outside bitext: {j}");

    let d = send(&app, "POST", "/v1/intents/discover", json!({"min_size": 3})).await;
    let cands = d["candidates"].as_array().unwrap();
    let intent_of: BTreeMap<&str, &str> = items.iter().map(|(i, t)| (*t, *i)).collect();
    let (mut clustered, mut majority) = (0, 0);
    let mut recovered = std::collections::BTreeSet::new();
    for c in cands {
        // Up to 5 distinct texts per cluster: here (5 texts per intent) every member.
        let reps: Vec<&str> = c["representatives"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for r in &reps {
            *counts.entry(intent_of[r]).or_insert(0) += 1;
        }
        let (best, n) = counts
            .iter()
            .max_by_key(|c| *c.1)
            .map(|(k, v)| (*k, *v))
            .unwrap();
        clustered += reps.len();
        majority += n;
        recovered.insert(best);
    }
    let purity = majority as f32 / clustered.max(1) as f32;
    assert!(purity >= 0.9, "purity {purity}: {d}");
    assert_eq!(recovered.len(), 3, "intents recovered {recovered:?}: {d}");

    // Accept the largest candidate; its first representative was unmatched, now it matches.
    let c = &cands[0];
    let question = c["representatives"][0].as_str().unwrap().to_string();
    let a = send(
        &app,
        "POST",
        &format!("/v1/intents/discover/{}/accept", c["id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    let name = a["intent"]["name"].as_str().unwrap().to_string();
    let j = send(&app, "POST", "/v1/intent", json!({ "texts": [question] })).await;
    let r = &j["results"][0];
    assert_eq!(
        (r["label"].as_str(), r["out_of_scope"].as_bool()),
        (Some(name.as_str()), Some(false)),
        "{question}: {r}"
    );
    let _ = std::fs::remove_dir_all(home);
}
