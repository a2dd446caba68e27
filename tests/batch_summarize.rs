//! Batch summarization: the engine (batching, rejects, duplicates, resume after a torn line or a
//! failed batch, no duplicate lines on rerun) with a deterministic test summarizer; the real
//! `EncoderSummarizer` on Chinese and English conversations; the HTTP job endpoints (states,
//! restart, 404/409/413/415/422), with a gated test summarizer and with the real model.

mod common;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tower::ServiceExt;
use triage::batch::{run, Conversation, RunOptions, Stats, Summarizer};

/// Echoes the first turn; records batch sizes; fails from call `fail_at` on; waits at `gate`.
#[derive(Default)]
struct Echo {
    calls: Mutex<Vec<usize>>,
    fail_at: Option<usize>,
    gate: Option<Arc<Gate>>,
}

#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
    fn wait(&self) {
        let mut g = self.open.lock().unwrap();
        while !*g {
            g = self.cv.wait(g).unwrap();
        }
    }
}

impl Summarizer for Echo {
    fn summarize_batch(&self, convs: &[Conversation]) -> anyhow::Result<Vec<Value>> {
        if let Some(g) = &self.gate {
            g.wait();
        }
        let mut calls = self.calls.lock().unwrap();
        if self.fail_at.is_some_and(|n| calls.len() >= n) {
            anyhow::bail!("summarizer down");
        }
        calls.push(convs.len());
        Ok(convs
            .iter()
            .map(|c| json!({"summary": c.turns[0].text, "turns": c.turns.len()}))
            .collect())
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("triage-batch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn conv(id: &str, n: usize) -> String {
    let turns: Vec<Value> = (0..n)
        .map(|i| {
            let role = if i % 2 == 0 { "customer" } else { "agent" };
            json!({"role": role, "text": format!("{id} turn {i}")})
        })
        .collect();
    json!({"id": id, "turns": turns}).to_string()
}

fn opts(dir: &Path, batch_size: usize) -> RunOptions {
    RunOptions {
        input: dir.join("in.jsonl"),
        output: dir.join("out.jsonl"),
        rejects: dir.join("rejects.jsonl"),
        batch_size,
        max_line_bytes: 4096,
    }
}

fn go(o: &RunOptions, s: &dyn Summarizer) -> anyhow::Result<Stats> {
    run(o, s, &AtomicBool::new(false), &mut |_| {})
}

fn read_jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ids(p: &Path) -> Vec<String> {
    read_jsonl(p)
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

/// 25 good conversations (c01..c25) with one bad line of each kind among them.
fn mixed_input() -> Vec<u8> {
    let mut b = Vec::new();
    for i in 1..=25 {
        b.extend(conv(&format!("c{i:02}"), 1 + i % 5).into_bytes());
        b.push(b'\n');
        let bad: &[u8] = match i {
            3 => b"{not json",
            6 => br#"{"turns": [{"role": "customer", "text": "x"}]}"#,
            9 => br#"{"id": "e", "turns": []}"#,
            12 => br#"{"id": "r", "turns": [{"role": "robot", "text": "x"}]}"#,
            15 => br#"{"id": "t", "turns": [{"role": "customer", "text": " "}]}"#,
            18 => br#"{"id": "c02", "turns": [{"role": "customer", "text": "dup"}]}"#,
            21 => b"{\"id\": \"u\", \"turns\": [{\"role\": \"customer\", \"text\": \"\xff\"}]}",
            24 => b"   ",
            _ => continue,
        };
        b.extend_from_slice(bad);
        b.push(b'\n');
    }
    b.extend(format!("{{\"id\": \"long\", \"x\": \"{}\"}}\n", "y".repeat(5000)).into_bytes());
    b
}

#[test]
fn batches_rejects_and_duplicates() {
    let d = tmp("mixed");
    let o = opts(&d, 4);
    std::fs::write(&o.input, mixed_input()).unwrap();
    let s = Echo::default();
    let st = go(&o, &s).unwrap();
    let got = ids(&o.output);
    let want: Vec<String> = (1..=25).map(|i| format!("c{i:02}")).collect();
    assert_eq!(got, want);
    let calls = s.calls.lock().unwrap().clone();
    assert!(
        calls.iter().all(|&n| n <= 4) && calls.len() == 7,
        "{calls:?}"
    );
    let rej = read_jsonl(&o.rejects);
    let reasons: Vec<(u64, String)> = rej
        .iter()
        .map(|r| {
            let reason = r["reason"].as_str().unwrap().to_string();
            (r["line"].as_u64().unwrap(), reason)
        })
        .collect();
    assert_eq!(reasons.len(), 8, "{reasons:?}");
    assert!(reasons[0].1.starts_with("invalid JSON"), "{reasons:?}");
    assert_eq!(reasons[1].1, "missing id");
    assert_eq!(reasons[2].1, "no turns");
    assert!(reasons[3].1.starts_with("unknown role `robot`"));
    assert_eq!(reasons[4].1, "empty text in turns[0]");
    assert_eq!(reasons[5].1, "duplicate id");
    assert_eq!(rej[5]["id"], "c02");
    assert!(reasons[6].1.starts_with("invalid UTF-8"));
    assert!(reasons[7].1.starts_with("line too long"), "{reasons:?}");
    // Line numbers are physical lines: c01 c02 c03 {not json ...
    assert_eq!(reasons[0].0, 4);
    assert_eq!(st.read, 33);
    assert_eq!(
        (st.written, st.skipped, st.rejected, st.rejected_new),
        (25, 0, 8, 8)
    );
    assert_eq!(st.bytes_done, st.total_bytes);
    let first: Value = read_jsonl(&o.output)[0].clone();
    assert_eq!(
        first,
        json!({"id": "c01", "summary": "c01 turn 0", "turns": 2})
    );

    // A rerun writes nothing: every id is done, every reject already recorded.
    let before = (
        std::fs::read(&o.output).unwrap(),
        std::fs::read(&o.rejects).unwrap(),
    );
    let st = go(&o, &Echo::default()).unwrap();
    assert_eq!(
        (st.written, st.skipped, st.rejected, st.rejected_new),
        (0, 25, 8, 0)
    );
    assert_eq!(std::fs::read(&o.output).unwrap(), before.0);
    assert_eq!(std::fs::read(&o.rejects).unwrap(), before.1);
}

#[test]
fn resumes_after_a_failure_and_a_torn_line() {
    let d = tmp("resume");
    let o = opts(&d, 3);
    let lines: Vec<String> = (0..20).map(|i| conv(&format!("id-{i}"), 3)).collect();
    std::fs::write(&o.input, lines.join("\n")).unwrap(); // no final newline
                                                         // The summarizer dies at its third batch: two batches (6 lines) are written.
    let err = go(
        &o,
        &Echo {
            fail_at: Some(2),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("summarizer down"));
    assert_eq!(ids(&o.output).len(), 6);
    // A kill -9 in the middle of a write leaves a torn last line.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&o.output)
        .unwrap();
    std::io::Write::write_all(&mut f, br#"{"id":"id-6","summ"#).unwrap();
    drop(f);
    let st = go(&o, &Echo::default()).unwrap();
    assert_eq!((st.written, st.skipped), (14, 6));
    let got = ids(&o.output);
    let want: Vec<String> = (0..20).map(|i| format!("id-{i}")).collect();
    assert_eq!(got, want, "each id exactly once, in input order");
    assert!(std::fs::read(&o.output).unwrap().ends_with(b"\n"));
}

#[test]
fn stop_flag_ends_between_batches_and_the_rerun_finishes() {
    let d = tmp("stop");
    let o = opts(&d, 2);
    let lines: Vec<String> = (0..9).map(|i| conv(&format!("s{i}"), 2)).collect();
    std::fs::write(&o.input, lines.join("\n") + "\n").unwrap();
    let stop = AtomicBool::new(false);
    let mut seen = 0;
    let st = run(&o, &Echo::default(), &stop, &mut |s| {
        seen += 1;
        if s.written >= 4 {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    })
    .unwrap();
    assert!(st.stopped && st.written == 4 && seen >= 2, "{st:?}");
    let st = go(&o, &Echo::default()).unwrap();
    assert_eq!((st.written, st.skipped, st.stopped), (5, 4, false));
    assert_eq!(ids(&o.output).len(), 9);
}

#[test]
fn refuses_foreign_or_clashing_files() {
    let d = tmp("foreign");
    let o = opts(&d, 2);
    std::fs::write(&o.input, conv("a", 1) + "\n").unwrap();
    std::fs::write(&o.output, "name,age\nbob,3\n").unwrap();
    let err = format!("{:#}", go(&o, &Echo::default()).unwrap_err());
    assert!(
        err.contains("line 1") && err.contains("not a file"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&o.output).unwrap(),
        "name,age\nbob,3\n"
    );
    let same = RunOptions {
        output: o.input.clone(),
        ..o.clone()
    };
    assert!(go(&same, &Echo::default()).is_err());
    let clash = RunOptions {
        rejects: d.join("out.jsonl"),
        output: d.join("./out.jsonl"),
        ..o.clone()
    };
    assert!(go(&clash, &Echo::default()).is_err());
}

// ---------------------------------------------------------------- the real summarizer

fn real_state(dir: &Path) -> Option<Arc<triage::AppState>> {
    common::pack_model("multilingual-e5-small")?;
    let mut cfg = triage::config::Config::default();
    cfg.models.retain(|m| m.name == "multilingual-e5-small");
    cfg.intent.sets.clear();
    cfg.emotion.head.clear();
    cfg.store.path = Some(dir.join("triage.sqlite"));
    cfg.batch.dir = Some(dir.join("jobs"));
    cfg.summarize.max_words = 80;
    Some(triage::server::loaded_state(cfg).unwrap())
}

fn real_conversations() -> Vec<String> {
    let zh = json!({"id": "zh-1", "turns": [
        {"role": "bot", "text": "您好，我是智能客服，请问有什么可以帮您？"},
        {"role": "customer", "text": "我的订单A1234已经五天了还没到。"},
        {"role": "agent", "text": "抱歉，我帮您查一下物流。"},
        {"role": "customer", "text": "快递员说已经签收了，但我根本没收到包裹。"},
        {"role": "customer", "text": "今天天气不错。"},
        {"role": "agent", "text": "已经为您提交了调查。"},
        {"role": "customer", "text": "那什么时候能给我退款？"}]});
    let en = json!({"id": "en-1", "conversation": [
        {"role": "customer", "text": "I was charged twice for my subscription this month."},
        {"role": "agent", "text": "Sorry about that, let me check."},
        {"role": "customer", "text": "Both charges are $19.99 on my card statement."},
        {"role": "customer", "text": "When will I get the duplicate payment back?"}]});
    let one =
        json!({"id": "one", "turns": [{"role": "customer", "text": "App crashes on start."}]});
    vec![zh.to_string(), en.to_string(), one.to_string()]
}

#[test]
fn encoder_summarizer_on_real_conversations() {
    let d = tmp("real");
    let Some(state) = real_state(&d) else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = triage::batch::EncoderSummarizer::new(
        state.models.clone(),
        state.config.summarize.max_words,
        rt.handle().clone(),
    );
    std::fs::write(d.join("in.jsonl"), real_conversations().join("\n")).unwrap();
    let batched = opts(&d, 8);
    let st = go(&batched, &s).unwrap();
    assert_eq!((st.written, st.turns), (3, 12));
    let out = read_jsonl(&batched.output);
    let zh = &out[0];
    assert_eq!(zh["id"], "zh-1");
    assert_eq!(zh["mode"], "extractive");
    assert_eq!(zh["key_turns"][0]["why"], "problem");
    assert_eq!(zh["key_turns"][0]["turn"], 2);
    assert_eq!(zh["open_question"], "那什么时候能给我退款？");
    assert!(zh["summary"]
        .as_str()
        .unwrap()
        .starts_with("Customer: 我的订单A1234"));
    let picked: Vec<u64> = zh["key_turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["turn"].as_u64().unwrap())
        .collect();
    assert!(picked.contains(&4), "the on-topic turn is kept: {picked:?}");
    assert_eq!(
        out[1]["open_question"],
        "When will I get the duplicate payment back?"
    );
    assert_eq!(out[2]["open_question"], Value::Null);
    // One conversation per encoder call gives the same summaries: nothing mixes across them.
    let single = RunOptions {
        output: d.join("single.jsonl"),
        rejects: d.join("single-rejects.jsonl"),
        ..opts(&d, 1)
    };
    go(&single, &s).unwrap();
    let alone = read_jsonl(&single.output);
    for (a, b) in out.iter().zip(&alone) {
        assert_eq!(a["key_turns"], b["key_turns"]);
    }
}

// ---------------------------------------------------------------- HTTP jobs

fn http_state(dir: &Path, max_upload: u64) -> Arc<triage::AppState> {
    let mut cfg = triage::config::Config::default();
    cfg.store.path = Some(dir.join("triage.sqlite"));
    cfg.batch.dir = Some(dir.join("jobs"));
    cfg.batch.max_upload_bytes = max_upload;
    cfg.batch.batch_size = 2;
    let heads = triage::heads::registry::HeadRegistry::default();
    triage::AppState::new(cfg, Arc::default(), heads)
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    ct: Option<&str>,
    body: Body,
) -> (StatusCode, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let s = resp.status();
    (
        s,
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

async fn get_json(app: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let (s, b) = call(app, "GET", uri, None, Body::empty()).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

async fn submit(app: &axum::Router, body: String) -> String {
    let (s, b) = call(
        app,
        "POST",
        "/v1/batch/summarize",
        Some("application/x-ndjson"),
        Body::from(body),
    )
    .await;
    let j: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(s, StatusCode::ACCEPTED, "{j}");
    j["job_id"].as_str().unwrap().to_string()
}

async fn wait_state(app: &axum::Router, id: &str, want: &str) -> Value {
    let t = Instant::now();
    loop {
        let (s, j) = get_json(app, &format!("/v1/batch/{id}")).await;
        assert_eq!(s, StatusCode::OK, "{j}");
        if j["state"] == want {
            return j;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "still {j}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn lines(n: usize, prefix: &str) -> String {
    (0..n)
        .map(|i| conv(&format!("{prefix}{i}"), 3) + "\n")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_states_files_and_errors() {
    let d = tmp("http");
    let state = http_state(&d, 64 << 10);
    let gate = Arc::new(Gate::default());
    let echo = Echo {
        gate: Some(gate.clone()),
        ..Default::default()
    };
    state.start_jobs_with(Arc::new(echo)).unwrap();
    let app = triage::http::batch::routes().with_state(state.clone());

    let body = lines(5, "h") + "{broken\n";
    let id = submit(&app, body.clone()).await;
    let j = wait_state(&app, &id, "running").await;
    assert_eq!(j["total_bytes"], body.len());
    for path in ["result", "rejects"] {
        let (s, j) = get_json(&app, &format!("/v1/batch/{id}/{path}")).await;
        assert_eq!(s, StatusCode::CONFLICT, "{j}");
        assert_eq!(j["field"], "job_id");
    }
    // A second job waits for the first.
    let id2 = submit(&app, lines(2, "k")).await;
    assert_eq!(
        get_json(&app, &format!("/v1/batch/{id2}")).await.1["state"],
        "queued"
    );
    gate.open();
    let j = wait_state(&app, &id, "done").await;
    assert_eq!(
        (
            j["read"].as_u64(),
            j["written"].as_u64(),
            j["rejected"].as_u64()
        ),
        (Some(6), Some(5), Some(1))
    );
    assert_eq!(j["bytes_done"], j["total_bytes"]);
    let (s, out) = call(
        &app,
        "GET",
        &format!("/v1/batch/{id}/result"),
        None,
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let out = String::from_utf8(out).unwrap();
    let got: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 5);
    assert_eq!(got[4]["id"], "h4");
    let (_, rej) = call(
        &app,
        "GET",
        &format!("/v1/batch/{id}/rejects"),
        None,
        Body::empty(),
    )
    .await;
    let rej: Value = serde_json::from_slice(&rej).unwrap();
    assert_eq!(rej["line"], 6);
    wait_state(&app, &id2, "done").await;

    // Errors name what is at fault.
    let (s, j) = get_json(&app, "/v1/batch/0123abcd").await;
    assert_eq!(
        (s, j["field"].as_str()),
        (StatusCode::NOT_FOUND, Some("job_id"))
    );
    let (s, j) = get_json(&app, "/v1/batch/..%2Fetc").await;
    assert_eq!(
        (s, j["field"].as_str()),
        (StatusCode::NOT_FOUND, Some("job_id"))
    );
    let (s, b) = call(
        &app,
        "POST",
        "/v1/batch/summarize",
        Some("application/json"),
        Body::from(lines(1, "x")),
    )
    .await;
    let j: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        (s, j["field"].as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("content-type"))
    );
    let (s, _) = call(
        &app,
        "POST",
        "/v1/batch/summarize",
        None,
        Body::from(lines(1, "x")),
    )
    .await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    for bad in ["", "  \n", "id,text\n1,hello\n"] {
        let (s, b) = call(
            &app,
            "POST",
            "/v1/batch/summarize",
            Some("application/jsonl"),
            Body::from(bad),
        )
        .await;
        let j: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(
            (s, j["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("body")),
            "{bad:?}"
        );
    }
    // Over the limit: by Content-Length, and streamed without one.
    let big = lines(2000, "big");
    let (s, b) = call(
        &app,
        "POST",
        "/v1/batch/summarize",
        Some("application/x-ndjson"),
        Body::from(big.clone()),
    )
    .await;
    let j: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        (s, j["field"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body"))
    );
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("batch.max_upload_bytes"),
        "{j}"
    );
    let chunks: Vec<Result<String, std::io::Error>> =
        big.lines().map(|l| Ok(format!("{l}\n"))).collect();
    let streamed = Body::from_stream(futures_util::stream::iter(chunks));
    let (s, _) = call(
        &app,
        "POST",
        "/v1/batch/summarize",
        Some("application/x-ndjson"),
        streamed,
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    // Refused uploads leave nothing behind: only the two accepted jobs.
    let n = std::fs::read_dir(d.join("jobs")).unwrap().count();
    assert_eq!(n, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_restart_and_failures_are_reported() {
    let d = tmp("restart");
    let state = http_state(&d, 1 << 20);
    let gate = Arc::new(Gate::default());
    let first = Arc::new(Echo {
        gate: Some(gate.clone()),
        ..Default::default()
    });
    let jobs = state.start_jobs_with(first.clone()).unwrap();
    let app = triage::http::batch::routes().with_state(state.clone());
    let id = submit(&app, lines(9, "r")).await;
    wait_state(&app, &id, "running").await;
    // Shut down while a batch is in flight: it completes, the job stays `running` on disk.
    jobs.shutdown();
    gate.open();
    // "Restart": a new runner on the same folder resumes the job.
    let second = Arc::new(Echo::default());
    state.start_jobs_with(second.clone()).unwrap();
    let j = wait_state(&app, &id, "done").await;
    assert_eq!(j["written"], 9, "{j}");
    assert_eq!(first.calls.lock().unwrap().iter().sum::<usize>(), 2);
    assert_eq!(second.calls.lock().unwrap().iter().sum::<usize>(), 7);
    let out = std::fs::read_to_string(d.join("jobs").join(&id).join("output.jsonl")).unwrap();
    let unique: HashSet<&str> = out.lines().collect();
    assert_eq!((out.lines().count(), unique.len()), (9, 9));

    let failing = Arc::new(Echo {
        fail_at: Some(0),
        ..Default::default()
    });
    state.start_jobs_with(failing).unwrap();
    let id = submit(&app, lines(3, "f")).await;
    let j = wait_state(&app, &id, "failed").await;
    assert!(
        j["error"].as_str().unwrap().contains("summarizer down"),
        "{j}"
    );
    let (s, _) = get_json(&app, &format!("/v1/batch/{id}/result")).await;
    assert_eq!(s, StatusCode::CONFLICT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_job_with_the_real_model() {
    let d = tmp("http-real");
    let Some(state) = real_state(&d) else { return };
    triage::http::batch::start(&state).unwrap();
    let app = triage::http::batch::routes().with_state(state.clone());
    let id = submit(&app, real_conversations().join("\n")).await;
    let j = wait_state(&app, &id, "done").await;
    assert_eq!(
        (j["written"].as_u64(), j["rejected"].as_u64()),
        (Some(3), Some(0))
    );
    let (s, out) = call(
        &app,
        "GET",
        &format!("/v1/batch/{id}/result"),
        None,
        Body::empty(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let out: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(out.len(), 3);
    assert!(out
        .iter()
        .all(|o| o["mode"] == "extractive" && o["summary"].is_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_bounded_by_the_batch_limit_not_the_json_body_limit() {
    let d = tmp("limit");
    let state = http_state(&d, 1 << 20);
    state.start_jobs_with(Arc::new(Echo::default())).unwrap();
    // As merged into the app's router, under its `limits.max_body_bytes` layer.
    let app = axum::Router::new()
        .merge(triage::http::batch::routes())
        .layer(axum::extract::DefaultBodyLimit::max(1024))
        .with_state(state);
    let body = lines(100, "l");
    assert!(body.len() > 1024);
    let id = submit(&app, body).await;
    assert_eq!(wait_state(&app, &id, "done").await["written"], 100);
}
