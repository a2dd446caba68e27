//! Quality inspection of agent replies through the API on the real encoder and store (issue 22,
//! first slice): a rude reply with a leaked card number, in English and in Chinese, comes back
//! from `POST /v1/conversations/{id}/messages` with its findings (evidence where it was
//! written, the card masked) and a zero score; a clean reply scores 100; bot replies are not
//! inspected; a malformed scorecard stops the start naming its line.

mod common;
use axum::http::StatusCode;
use common::{post_json, triage};
use serde_json::{json, Value};
use triage::config::Config;

async fn start() -> Option<axum::Router> {
    common::pack_model("multilingual-e5-small")?;
    let dir = common::scratch_dir("qa-e2e");
    let mut cfg = Config::default();
    cfg.models.retain(|m| m.name == "multilingual-e5-small");
    cfg.store.path = Some(dir.join("triage.sqlite"));
    cfg.kb.seed_builtin = false;
    cfg.validate().unwrap();
    let state = triage::server::loaded(cfg, triage::state::Open::STORE).unwrap();
    Some(triage::app(state))
}

async fn reply(app: &axum::Router, conv: &str, role: &str, text: &str) -> Value {
    let path = format!("/v1/conversations/{conv}/messages");
    let (s, j) = post_json(app, &path, json!({"role": role, "text": text})).await;
    assert_eq!(s, StatusCode::CREATED, "{j}");
    j
}

fn finding<'a>(j: &'a Value, item: &str) -> &'a Value {
    j["qa"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["item"] == item)
        .unwrap_or_else(|| panic!("no {item} in {j}"))
}

#[tokio::test]
async fn rude_replies_and_leaked_numbers_are_flagged_as_they_are_posted() {
    let Some(app) = start().await else { return };
    let cases = [
        (
            "qa-en",
            "My order is three days late, where is it?",
            "Shut up, you I.D.I.O.T. Your card 4111 1111 1111 1111 was charged.",
            "card_number",
            "**** **** **** 1111",
        ),
        (
            "qa-zh",
            "我的订单三天了还没到，怎么回事？",
            "你是不是傻 逼？你的身份证号 11010519491231002X 我已经看到了",
            "chinese_id",
            "**************002X",
        ),
    ];
    for (conv, asked, rude, kind, masked) in cases {
        triage(&app, conv, asked).await;
        let j = reply(&app, conv, "agent", rude).await;
        assert_eq!(
            (j["qa"]["score"].clone(), j["qa"]["fatal"].clone()),
            (json!(0), json!(true)),
            "{j}"
        );
        let abuse = finding(&j, "abusive_language");
        let ev = &abuse["evidence"][0];
        let chars: Vec<char> = rude.chars().collect();
        let (s, e) = (
            ev["start"].as_u64().unwrap() as usize,
            ev["end"].as_u64().unwrap() as usize,
        );
        assert_eq!(
            chars[s..e].iter().collect::<String>(),
            ev["text"].as_str().unwrap(),
            "{j}"
        );
        let pii = finding(&j, "pii_leak");
        assert_eq!(pii["kind"], kind, "{j}");
        assert_eq!(pii["evidence"][0]["text"], masked, "{j}");
        // The number itself is not echoed anywhere in the answer.
        let digits: String = masked
            .chars()
            .rev()
            .take(4)
            .collect::<String>()
            .chars()
            .rev()
            .collect();
        let whole = rude
            .split_whitespace()
            .find(|w| w.ends_with(&digits))
            .unwrap_or("");
        assert!(whole.len() < 8 || !j.to_string().contains(whole), "{j}");
    }
    let j = reply(
        &app,
        "qa-en",
        "agent",
        "Sorry for the wait. Your parcel arrives tomorrow.",
    )
    .await;
    assert_eq!(j["qa"]["score"], 100, "{j}");
    assert!(j["qa"]["findings"].as_array().unwrap().is_empty());
    let j = reply(
        &app,
        "qa-zh",
        "agent",
        "非常抱歉让您久等了，我们保证给您退款",
    )
    .await;
    assert_eq!(
        finding(&j, "unauthorised_promise")["evidence"][0]["text"],
        "保证给您退款"
    );
    assert_eq!(j["qa"]["score"], 70, "{j}");
    let j = reply(&app, "qa-en", "bot", "you idiot").await;
    assert!(j.get("qa").is_none(), "bot replies are not inspected: {j}");

    // The conversation's scorecard: the failed items with the turn of their evidence, the
    // required items, the timings.
    let (s, q) = common::request(&app, "GET", "/v1/qa/conversations/qa-zh", String::new()).await;
    assert_eq!(s, StatusCode::OK, "{q}");
    let item = |id: &str| {
        q["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no item {id}: {q}"))
    };
    assert_eq!(
        (q["score"].clone(), q["fatal"].clone()),
        (json!(0), json!(true)),
        "{q}"
    );
    assert_eq!(q["agent_replies"], 2);
    let abuse = item("abusive_language");
    assert_eq!(
        (
            abuse["passed"].clone(),
            abuse["evidence"][0]["turn"].clone()
        ),
        (json!(false), json!(2)),
        "{q}"
    );
    assert_eq!(item("pii_leak")["passed"], false);
    assert_eq!(
        item("greeting")["passed"],
        false,
        "the first reply greets nobody: {q}"
    );
    assert_eq!(item("apology_after_complaint")["passed"], true, "{q}");
    assert!(
        q["timings"]["first_response_ms"]
            .as_i64()
            .is_some_and(|ms| ms >= 0),
        "{q}"
    );
    assert_eq!(q["replies"][1]["inspection"]["score"], 70, "{q}");
    let (s, e) = common::request(&app, "GET", "/v1/qa/conversations/nope", String::new()).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (s, e) = common::request(&app, "GET", "/v1/qa/conversations/bad%20id", String::new()).await;
    assert_eq!(
        (s, e["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("conversation_id")),
        "{e}"
    );
}

#[test]
fn a_malformed_scorecard_stops_the_start_naming_its_line() {
    let dir = common::scratch_dir("qa-card");
    std::fs::create_dir_all(&dir).unwrap();
    let card = dir.join("card.toml");
    std::fs::write(
        &card,
        "[[item]]\nid = \"x\"\ncheck = \"regex\"\npatterns = [\"(\"]\n",
    )
    .unwrap();
    let mut cfg = Config::default();
    cfg.qa.scorecard = Some(card.clone());
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("card.toml: line 2 (item `x`)"), "{e}");
    std::fs::write(
        &card,
        "[[item]]\nid = \"x\"\ncheck = \"lexicon\"\nfiles = [\"w.txt\"]\n",
    )
    .unwrap();
    std::fs::write(dir.join("w.txt"), b"fine\n\xff\n").unwrap();
    let e = format!("{:#}", cfg.validate().unwrap_err());
    assert!(e.contains("w.txt: line 2 is not UTF-8"), "{e}");
}
