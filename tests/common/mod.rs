//! Shared helpers for the real-model tests: where the default pack is, fixtures, cosine.
#![allow(dead_code)]

pub mod bag;
pub mod chromium;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use std::io::{Read, Write};
use std::path::PathBuf;
use tower::ServiceExt;

/// A fresh, empty scratch folder of its own for each call: the tests of one binary run in
/// parallel in one process, so a folder named by the process id alone would be shared (two
/// stores on one SQLite file answered "database is locked" in CI).
pub fn scratch_dir(tag: &str) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("triage-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Send `body` to `app` with `method`; the status and the JSON answer (Null when not JSON).
pub async fn request(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: String,
) -> (StatusCode, serde_json::Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let s = resp.status();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    (
        s,
        serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
    )
}

/// POST a JSON body to `app`; the status and the JSON answer.
pub async fn post_json(
    app: &axum::Router,
    uri: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    request(app, "POST", uri, body.to_string()).await
}

/// `POST /v1/triage` of one chat message in conversation `conv`; the answer (must be 200).
pub async fn triage(app: &axum::Router, conv: &str, text: &str) -> serde_json::Value {
    let body = serde_json::json!({"conversation_id": conv, "text": text, "channel": "chat"});
    let (s, j) = post_json(app, "/v1/triage", body).await;
    assert_eq!(s, StatusCode::OK, "{text}: {j}");
    j
}

/// The codes of the rules that fired for a `/v1/triage` answer.
pub fn codes(j: &serde_json::Value) -> Vec<String> {
    j["route"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_string())
        .collect()
}

/// The installed pack model folder, or None (test skipped) when the pack is absent.
/// With TRIAGE_REQUIRE_MODELS=1 (set by scripts/test.sh) a missing pack fails the test.
pub fn pack_model(name: &str) -> Option<PathBuf> {
    let dir = triage::config::default_home().join("models").join(name);
    if dir.join("model.safetensors").exists() {
        return Some(dir);
    }
    if std::env::var("TRIAGE_REQUIRE_MODELS").is_ok_and(|v| v == "1") {
        panic!("{} missing: run `triage models setup`", dir.display());
    }
    eprintln!(
        "SKIPPED: {} not installed (run `triage models setup`)",
        dir.display()
    );
    None
}

pub fn fixture(name: &str) -> serde_json::Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub mod hooks;

/// One HTTP/1.1 request over a fresh TCP connection to a real server: (status, body).
pub fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .ok()?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}
