//! `/v1/triage` end to end on the real models and a real store: scripted Chinese and English
//! conversations routed bot -> agent on anger and bot -> expert on a configured intent (with the
//! rules named), conversations and handoff packages read back, live events over SSE (with
//! `Last-Event-ID` resume) and signed webhooks retried until a local receiver takes them.

mod common;
use axum::http::StatusCode;
use common::{codes, triage};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use triage::config::Config;

use common::hooks::{Receiver, REFUSE_FIRST, SECRET};

/// The real models, a fresh store, the policy with `delete_account` sent to experts, and the
/// app served on a loopback port.
async fn start(hook: &str) -> Option<(axum::Router, String, std::path::PathBuf)> {
    common::pack_model("multilingual-e5-small")?;
    // One folder per call: the tests of this file run in parallel, each with its own store.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("triage-e2e-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = Config::default();
    cfg.models.retain(|m| m.name == "multilingual-e5-small");
    cfg.store.path = Some(dir.join("triage.sqlite"));
    cfg.routing.intents.expert = vec!["delete_account".into()];
    cfg.webhooks.urls = vec![hook.to_string()];
    cfg.webhooks.secret = Some(SECRET.into());
    cfg.webhooks.initial_backoff_ms = 50;
    cfg.store.keepalive_secs = 1;
    // Webhook handoff summaries share the model; debug builds run it slowly: no shedding here.
    cfg.limits.queue_wait_ms = 60_000;
    cfg.validate().unwrap();
    let state = triage::server::loaded(cfg, triage::state::Open::STORE).unwrap();
    triage::server::start_store_workers(&state);
    let app = triage::app(state);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("127.0.0.1:{}", l.local_addr().unwrap().port());
    let served = app.clone();
    tokio::spawn(async move { axum::serve(l, served).await });
    Some((app, base, dir))
}

/// Open an SSE stream over TCP; returns a reader positioned after the response headers.
async fn sse(base: &str, path: &str, last_id: Option<i64>) -> BufReader<tokio::net::TcpStream> {
    let mut s = tokio::net::TcpStream::connect(base).await.unwrap();
    let extra = last_id.map_or(String::new(), |i| format!("Last-Event-ID: {i}\r\n"));
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    assert!(line.contains("200"), "{line}");
    loop {
        line.clear();
        r.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            return r;
        }
    }
}

/// The next SSE event's (id, data JSON), skipping keep-alives; chunked framing is skipped too.
async fn next_event(r: &mut BufReader<tokio::net::TcpStream>) -> (i64, Value) {
    let mut id = -1;
    let mut line = String::new();
    loop {
        line.clear();
        let n = tokio::time::timeout(Duration::from_secs(30), r.read_line(&mut line))
            .await
            .expect("an event within 30 s")
            .unwrap();
        assert!(n > 0, "stream closed");
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.trim().parse().unwrap();
        } else if let Some(d) = line.strip_prefix("data: ") {
            return (id, serde_json::from_str(d.trim()).unwrap());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_conversations_are_routed_stored_streamed_and_handed_off() {
    let rx = Receiver::start(REFUSE_FIRST).await;
    let hook = rx.url.clone();
    let Some((app, base, dir)) = start(&hook).await else {
        return;
    };
    // A live subscriber before the conversation exists.
    let mut live = sse(&base, "/v1/conversations/en-anger/events", None).await;

    // English: bot, then agent on anger.
    let j = triage(
        &app,
        "en-anger",
        "Hi, where is my order #A12-99812? It was supposed to arrive yesterday.",
    )
    .await;
    assert_eq!(j["route"]["target"], "bot", "{j}");
    assert_eq!(codes(&j), ["routine"], "{j}");
    let (id1, e1) = next_event(&mut live).await;
    assert_eq!(e1["turn"], 1);
    let angry = "This is outrageous! I am so angry, your company is a disgrace!";
    let j = triage(&app, "en-anger", angry).await;
    let answered = Instant::now();
    assert_eq!(j["route"]["target"], "agent", "{j}");
    assert!(codes(&j).contains(&"emotion.escalate".to_string()), "{j}");
    assert_eq!(j["route"]["queue"], "agent-en", "{j}");
    assert_eq!(j["conversation"]["previous_target"], "bot");
    assert_eq!(j["emotion"]["top_group"], "anger", "{j}");
    let (id2, e2) = next_event(&mut live).await;
    eprintln!(
        "event reached the subscriber {:?} after the response",
        answered.elapsed()
    );
    assert_eq!(e2["text"], angry);
    let flags: Vec<&str> = e2["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    for f in ["escalate", "anger", "route_changed", "left_bot"] {
        assert!(flags.contains(&f), "{f} missing: {e2}");
    }
    assert_eq!(id2, j["conversation"]["event_id"].as_i64().unwrap());
    // The turn left the bot: an `assist` frame follows, without an id of its own (no knowledge
    // base here, so no suggestions), saying where the agent's assist is.
    let (ida, a) = next_event(&mut live).await;
    assert_eq!((ida, a["seq"].as_i64()), (-1, Some(id2)), "{a}");
    assert_eq!(a["url"], "/v1/conversations/en-anger/assist", "{a}");
    assert_eq!(a["suggestions"], json!([]), "{a}");
    // Resume after the first event: the second comes again (with its assist), nothing else.
    let mut resumed = sse(&base, "/v1/conversations/en-anger/events", Some(id1)).await;
    assert_eq!(next_event(&mut resumed).await.0, id2);
    assert_eq!(next_event(&mut resumed).await.1["url"], a["url"]);
    // Then only keep-alive comments while nothing happens.
    let mut line = String::new();
    let keepalive = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            line.clear();
            resumed.read_line(&mut line).await.unwrap();
            assert!(!line.starts_with("data:"), "unexpected event: {line}");
            if line.starts_with(':') {
                break;
            }
        }
    });
    keepalive.await.expect("a keep-alive comment within 5 s");

    // Chinese: bot, then agent on anger, in the Chinese queue.
    let j = triage(&app, "zh-anger", "请问我的订单什么时候发货？").await;
    assert_eq!(j["route"]["target"], "bot", "{j}");
    let j = triage(
        &app,
        "zh-anger",
        "我非常生气，你们的服务太差了，简直是垃圾！",
    )
    .await;
    assert_eq!(j["route"]["target"], "agent", "{j}");
    assert!(codes(&j).contains(&"emotion.escalate".to_string()), "{j}");
    assert_eq!(j["route"]["queue"], "agent-zh", "{j}");

    // A configured intent goes to experts, in both languages.
    for (conv, first, second) in [
        (
            "en-expert",
            "I want to cancel my order",
            "Please delete my account and erase all my data.",
        ),
        ("zh-expert", "请问我的订单什么时候发货？", "请帮我删除账号"),
    ] {
        let j = triage(&app, conv, first).await;
        assert_eq!(j["route"]["target"], "bot", "{j}");
        let j = triage(&app, conv, second).await;
        assert_eq!(j["route"]["target"], "expert", "{j}");
        assert_eq!(codes(&j)[0], "intent.expert", "{j}");
        assert_eq!(j["route"]["queue"], "expert");
    }

    // The stored conversation and its handoff package.
    let (s, c) = common::request(&app, "GET", "/v1/conversations/en-anger", String::new()).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["turns"].as_array().unwrap().len(), 2);
    assert_eq!(c["target"], "agent");
    let reasons = c["turns"][1]["route"]["reasons"].as_array().unwrap();
    assert!(
        reasons.iter().any(|r| r["code"] == "emotion.escalate"),
        "{c}"
    );
    let (s, h) = common::request(
        &app,
        "GET",
        "/v1/conversations/en-anger/handoff",
        String::new(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{h}");
    assert_eq!(h["transcript"].as_array().unwrap().len(), 2);
    assert_eq!(h["summary"]["mode"], "extractive");
    assert!(
        h["summary"]["summary"]
            .as_str()
            .unwrap()
            .contains("A12-99812"),
        "{h}"
    );
    let order = h["entities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "order_number" && e["value"] == "A12-99812");
    assert!(order, "{h}");
    assert_eq!(h["intent"]["history"].as_array().unwrap().len(), 2);
    assert_eq!(h["emotion"]["trajectory"][1]["escalate"], true, "{h}");
    assert_eq!(h["route"]["target"], "agent");
    assert_eq!(h["languages"][0]["language"], "en");
    // An agent's reply joins the transcript.
    let reply =
        json!({"role": "agent", "text": "I am sorry, I am looking at order A12-99812 now."});
    let (s, r) = common::post_json(&app, "/v1/conversations/en-anger/messages", reply).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["turn"], 3);
    let (_, h) = common::request(
        &app,
        "GET",
        "/v1/conversations/en-anger/handoff",
        String::new(),
    )
    .await;
    assert_eq!(h["transcript"][2]["role"], "agent", "{h}");

    // Webhooks: one per route change (4), each refused once, then delivered exactly once.
    let deadline = Instant::now() + Duration::from_secs(60);
    let expected: Vec<String> = [
        ("en-anger", 2),
        ("zh-anger", 2),
        ("en-expert", 2),
        ("zh-expert", 2),
    ]
    .iter()
    .map(|(c, t)| triage::store::outbox::idempotency_key(c, *t, &hook))
    .collect();
    loop {
        let taken = rx.taken();
        if expected.iter().all(|k| taken.contains_key(k)) {
            let g = rx.deliveries();
            assert_eq!(
                taken.len(),
                expected.len(),
                "unexpected deliveries: {taken:?}"
            );
            assert!(taken.values().all(|n| *n == 1), "{taken:?}");
            assert!(g.iter().all(|d| d.signed), "a signature did not verify");
            let first: Vec<&Value> = g
                .iter()
                .filter(|d| d.key == expected[0])
                .map(|d| &d.body)
                .collect();
            let body = first[1];
            assert_eq!(body["decision"]["target"], "agent", "{body}");
            assert_eq!(body["handoff"]["transcript"][1]["text"], angry, "{body}");
            assert_eq!(body["handoff"]["as_of_turn"], 2);
            // The retry carried the same bytes as the refused first attempt.
            assert_eq!(first[0], first[1]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "webhooks not delivered: {:?}",
            rx.deliveries()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_named_errors() {
    let rx = Receiver::start(REFUSE_FIRST).await;
    let Some((app, _, dir)) = start(&rx.url).await else {
        return;
    };
    let long = "x".repeat(129);
    for (method, uri, body, status, field) in [
        (
            "GET",
            "/v1/conversations/nope".to_string(),
            "",
            404,
            "conversation_id",
        ),
        (
            "GET",
            "/v1/conversations/nope/handoff".to_string(),
            "",
            404,
            "conversation_id",
        ),
        (
            "POST",
            "/v1/conversations/nope/resolve".to_string(),
            "",
            404,
            "conversation_id",
        ),
        (
            "GET",
            format!("/v1/conversations/{long}"),
            "",
            422,
            "conversation_id",
        ),
        (
            "GET",
            "/v1/conversations/a%20b".to_string(),
            "",
            422,
            "conversation_id",
        ),
        ("GET", "/v1/events?queue=nope".to_string(), "", 404, "queue"),
        (
            "POST",
            "/v1/conversations/nope/messages".to_string(),
            r#"{"role": "bot", "text": "hi"}"#,
            404,
            "conversation_id",
        ),
        (
            "POST",
            "/v1/conversations/nope/messages".to_string(),
            r#"{"role": "customer", "text": "hi"}"#,
            422,
            "role",
        ),
        (
            "POST",
            "/v1/conversations/nope/messages".to_string(),
            r#"{"role": "bot", "text": ""}"#,
            422,
            "text",
        ),
        (
            "GET",
            "/v1/conversations?limit=0".to_string(),
            "",
            422,
            "limit",
        ),
        (
            "POST",
            "/v1/triage".to_string(),
            r#"{"text": ""}"#,
            422,
            "text",
        ),
        (
            "POST",
            "/v1/triage".to_string(),
            r#"{"text": "  "}"#,
            422,
            "text",
        ),
        (
            "POST",
            "/v1/triage".to_string(),
            r#"{"text": 3}"#,
            400,
            "text",
        ),
        (
            "POST",
            "/v1/triage".to_string(),
            r#"{"txt": "hi"}"#,
            400,
            "txt",
        ),
        (
            "POST",
            "/v1/triage".to_string(),
            r#"{"text": "hi", "customer": {"tier": ""}}"#,
            422,
            "customer.tier",
        ),
        (
            "POST",
            "/v1/triage".to_string(),
            r#"{"text": "hi", "intent_set": "nope"}"#,
            404,
            "intent_set",
        ),
    ] {
        let (s, j) = common::request(&app, method, &uri, body.to_string()).await;
        assert_eq!(s.as_u16(), status, "{uri} {body}: {j}");
        assert_eq!(j["field"], field, "{uri} {body}: {j}");
    }
    let huge = json!({"conversation_id": "y".repeat(100_000), "text": "hi"});
    let (s, j) = common::post_json(&app, "/v1/triage", huge).await;
    assert_eq!(s.as_u16(), 422, "{j}");
    assert_eq!(j["field"], "conversation_id");
    let _ = std::fs::remove_dir_all(dir);
}
