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
    let body = match role {
        "agent" => json!({"role": role, "text": text, "agent_id": format!("agent-{conv}")}),
        _ => json!({"role": role, "text": text}),
    };
    let (s, j) = post_json(app, &path, body).await;
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

    // A greeting in words no list holds passes by its similarity to the examples.
    triage(&app, "qa-sim", "我的订单还没发货").await;
    reply(
        &app,
        "qa-sim",
        "agent",
        "欢迎咨询，我是客服小周，很高兴为您服务。",
    )
    .await;
    let (_, q) = common::request(&app, "GET", "/v1/qa/conversations/qa-sim", String::new()).await;
    let greeting = q["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "greeting")
        .unwrap();
    assert_eq!(greeting["passed"], true, "{q}");
    assert!(
        greeting["detail"]
            .as_str()
            .unwrap()
            .starts_with("similarity to the examples"),
        "{q}"
    );
    assert_eq!(greeting["evidence"][0]["turn"], 2, "{q}");

    // Resolved, then the customer writes again: reopened, and `not_reopened` fails.
    let (s, _) = post_json(&app, "/v1/conversations/qa-sim/resolve", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let (_, q) = common::request(&app, "GET", "/v1/qa/conversations/qa-sim", String::new()).await;
    assert_eq!(
        (q["resolved"].clone(), q["reopened"].clone()),
        (json!(true), json!(false)),
        "{q}"
    );
    triage(&app, "qa-sim", "还是没收到货").await;
    let (_, q) = common::request(&app, "GET", "/v1/qa/conversations/qa-sim", String::new()).await;
    assert_eq!(
        (q["resolved"].clone(), q["reopened"].clone()),
        (json!(false), json!(true)),
        "{q}"
    );
    let reopened = q["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "not_reopened")
        .unwrap();
    assert_eq!(reopened["passed"], false, "{q}");
    assert!(
        reopened["detail"]
            .as_str()
            .unwrap()
            .contains("after the resolution at turn 2"),
        "{q}"
    );

    // The agent id is on the transcript, and the reports count the stored inspections.
    let (_, c) = common::request(&app, "GET", "/v1/conversations/qa-zh", String::new()).await;
    assert_eq!(c["turns"][1]["agent_id"], "agent-qa-zh", "{c}");
    assert!(c["turns"][0].get("agent_id").is_none(), "{c}");
    let (s, r) = common::request(&app, "GET", "/v1/qa/report", String::new()).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["replies"], 5, "{r}");
    let agents = r["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 3, "{r}");
    let zh = agents
        .iter()
        .find(|a| a["agent_id"] == "agent-qa-zh")
        .unwrap();
    assert_eq!(
        (zh["replies"].clone(), zh["fatal"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(zh["mean_score"], 35.0, "{zh}");
    let top: Vec<&str> = zh["top_violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["item"].as_str().unwrap())
        .collect();
    assert!(
        top.contains(&"pii_leak") && top.contains(&"unauthorised_promise"),
        "{zh}"
    );
    assert_eq!(
        zh["response"]["measured"], 1,
        "one reply answered a waiting customer: {zh}"
    );
    assert_eq!(zh["trend"].as_array().unwrap().len(), 1, "{zh}");
    let (s, a) = common::request(
        &app,
        "GET",
        "/v1/qa/agents/agent-qa-en?from=2020-01-01",
        String::new(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(
        (a["replies"].clone(), a["mean_score"].clone()),
        (json!(2), json!(50.0)),
        "{a}"
    );
    // CSV: one row per agent (report), one per day (agent).
    let csv = |uri: &str| {
        let req = axum::http::Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap();
        let app = app.clone();
        async move {
            use http_body_util::BodyExt;
            use tower::ServiceExt;
            let resp = app.oneshot(req).await.unwrap();
            let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
            let b = resp.into_body().collect().await.unwrap().to_bytes();
            (ct, String::from_utf8(b.to_vec()).unwrap())
        }
    };
    let (ct, body) = csv("/v1/qa/report?format=csv").await;
    assert!(ct.starts_with("text/csv"), "{ct}");
    assert_eq!(body.lines().count(), 4, "{body}");
    assert!(body.starts_with("agent_id,replies,"), "{body}");
    assert!(body.contains("\nagent-qa-zh,2,1,35.0,2,1,"), "{body}");
    let (_, body) = csv("/v1/qa/agents/agent-qa-zh?format=csv").await;
    assert_eq!(body.lines().count(), 2, "{body}");
    // Bad input: each a 4xx naming the field.
    for (uri, status, field) in [
        ("/v1/qa/agents/nobody", StatusCode::NOT_FOUND, "agent_id"),
        (
            "/v1/qa/report?from=2026-12-08&to=2026-12-01",
            StatusCode::UNPROCESSABLE_ENTITY,
            "from",
        ),
        (
            "/v1/qa/report?to=yesterday",
            StatusCode::UNPROCESSABLE_ENTITY,
            "to",
        ),
        (
            "/v1/qa/report?format=xml",
            StatusCode::UNPROCESSABLE_ENTITY,
            "format",
        ),
        ("/v1/qa/report?limit=5", StatusCode::BAD_REQUEST, "query"),
    ] {
        let (s, e) = common::request(&app, "GET", uri, String::new()).await;
        assert_eq!(
            (s, e["field"].as_str()),
            (status, Some(field)),
            "{uri}: {e}"
        );
    }
    let path = "/v1/conversations/qa-zh/messages";
    for body in [
        json!({"role": "bot", "text": "hi", "agent_id": "a1"}),
        json!({"role": "agent", "text": "hi", "agent_id": ""}),
        json!({"role": "agent", "text": "hi", "agent_id": "a\u{0007}"}),
    ] {
        let (s, e) = post_json(&app, path, body.clone()).await;
        assert_eq!(
            (s, e["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("agent_id")),
            "{body}: {e}"
        );
    }
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
