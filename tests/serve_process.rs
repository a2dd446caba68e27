//! The real `triage serve` process: starts with no config, turns ready, embeds English and
//! Chinese over TCP, rejects bad input, and exits 0 on SIGTERM.

mod common;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn serve_embed_and_sigterm() {
    if common::pack_model("multilingual-e5-small").is_none()
        || common::pack_model("all-MiniLM-L6-v2").is_none()
    {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env_remove("TRIAGE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match common::http(port, "GET", "/ready", "") {
            Some((200, _)) => break,
            _ if Instant::now() > deadline => {
                let _ = child.kill();
                panic!("server not ready in time");
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    let (s, body) = common::http(
        port,
        "POST",
        "/v1/embed",
        r#"{"texts": ["Where is my parcel?", "我的包裹在哪里？"]}"#,
    )
    .unwrap();
    assert_eq!(s, 200, "{body}");
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["embeddings"].as_array().unwrap().len(), 2);
    let (s, body) = common::http(port, "POST", "/v1/embed", "{\"texts\": [").unwrap();
    assert_eq!(s, 400, "{body}");
    let (s, _) = common::http(port, "GET", "/metrics", "").unwrap();
    assert_eq!(s, 200);

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "exit status {status}");
}
