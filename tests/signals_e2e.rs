//! The shipped heads on the real encoder, through `app()`: intents and emotions in English and
//! Chinese (cross-lingual: the heads were trained on English data only).

mod common;
use axum::http::StatusCode;
use triage::config::Config;

fn real_app() -> Option<axum::Router> {
    common::pack_model("multilingual-e5-small")?;
    let mut cfg = Config::default();
    cfg.models.retain(|m| m.name == "multilingual-e5-small");
    Some(triage::app(triage::server::loaded_state(cfg).unwrap()))
}

async fn post(app: &axum::Router, uri: &str, body: serde_json::Value) -> serde_json::Value {
    let (s, j) = common::post_json(app, uri, body).await;
    assert_eq!(s, StatusCode::OK, "{j}");
    j
}

#[tokio::test]
async fn intents_in_english_and_chinese() {
    let Some(app) = real_app() else { return };
    let cases = [
        ("I want to cancel my order", "cancel_order"),
        ("我想取消我的订单", "cancel_order"),
        ("how do I get my money back", "get_refund"),
        ("I forgot my password and can't log in", "recover_password"),
    ];
    let texts: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let j = post(
        &app,
        "/v1/intent",
        serde_json::json!({ "texts": texts, "intent_set": "bitext" }),
    )
    .await;
    for (i, (text, want)) in cases.iter().enumerate() {
        let r = &j["results"][i];
        assert_eq!(r["label"], *want, "{text}: {r}");
        assert!(r["score"].as_f64().unwrap() > 0.3, "{text}: {r}");
    }
    let j = post(
        &app,
        "/v1/intent",
        serde_json::json!({ "texts": ["My card hasn't arrived yet"], "intent_set": "banking77" }),
    )
    .await;
    assert_eq!(j["results"][0]["label"], "card_arrival", "{j}");
}

#[tokio::test]
async fn emotions_escalate_on_anger_not_on_thanks() {
    let Some(app) = real_app() else { return };
    let texts = [
        "This is absolutely ridiculous! I have been waiting for three weeks and nobody helps me. I am furious.",
        "Thank you so much, that fixed it!",
        "你们的服务太差了，我非常生气！",
    ];
    let j = post(&app, "/v1/emotion", serde_json::json!({ "texts": texts })).await;
    let r = &j["results"];
    assert_eq!(r[0]["escalate"], true, "{}", r[0]);
    assert!(
        ["anger", "frustration", "sadness"].contains(&r[0]["top_group"].as_str().unwrap()),
        "{}",
        r[0]
    );
    assert_eq!(r[1]["escalate"], false, "{}", r[1]);
    assert_eq!(r[1]["top_group"], "gratitude_joy", "{}", r[1]);
    assert_eq!(r[2]["escalate"], true, "{}", r[2]);
    assert_eq!(r[0]["emotions"].as_object().unwrap().len(), 28);
    assert!(
        r[0]["labels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "anger" || l == "annoyance"),
        "{}",
        r[0]
    );
}

#[tokio::test]
async fn tuned_heads_are_served_through_their_own_layers() {
    // banking77 fine-tuned the encoder's top layers: the server must answer with embeddings
    // through those layers (computed here offline), not with the plain encoder's.
    use candle_core::Device::Cpu;
    use triage::models::encoder::{Embedder, TextPrep};
    let Some(app) = real_app() else { return };
    let dir = common::pack_model("multilingual-e5-small").unwrap();
    let head = triage::heads::registry::load_head("builtin:banking77").unwrap();
    let t = head
        .meta
        .tuned_layers
        .clone()
        .expect("banking77 has tuned layers");
    let mut emb = Embedder::load(&dir, &Cpu).unwrap();
    let layers = head.layers.as_ref().unwrap();
    let branch =
        triage::models::branch::Branch::from_bytes(layers, emb.model(), t.first, t.count, &Cpu)
            .unwrap();
    let bi = emb.add_branch(branch).unwrap();
    let prefix = Config::default().models[0].prefix.clone();
    let prep = TextPrep::load(&dir, &prefix, 512).unwrap();
    let texts = [
        "I still haven't received my new card",
        "Why was I charged a fee for withdrawing cash?",
        "How do I change my PIN?",
    ];
    let j = post(
        &app,
        "/v1/intent",
        serde_json::json!({ "texts": texts, "intent_set": "banking77" }),
    )
    .await;
    let mut differs = false;
    for (i, text) in texts.iter().enumerate() {
        let ids = prep
            .prepare(text, triage::config::Overlong::Truncate)
            .unwrap()
            .unwrap()
            .ids;
        let v = emb.branches_batch(&[&ids], &[&[0, bi]]).unwrap().remove(0);
        let tuned = head.predict_intent(&v[1], 1, None);
        let plain = head.predict_intent(&v[0], 1, None);
        let r = &j["results"][i];
        assert_eq!(r["label"], tuned.label.as_str(), "{text}: {r}");
        let got = r["score"].as_f64().unwrap() as f32;
        assert!(
            (got - tuned.score).abs() < 1e-3,
            "{text}: {got} vs {}",
            tuned.score
        );
        differs |= (plain.score - tuned.score).abs() > 1e-3;
    }
    assert!(
        differs,
        "tuned layers made no difference: are they applied?"
    );
}
