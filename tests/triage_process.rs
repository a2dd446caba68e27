//! The real `triage serve` process under `kill -9`: every acknowledged triage is in the store
//! after a restart and every pending webhook is delivered exactly once by idempotency key;
//! SSE clients that never read do not grow server memory; a malformed policy stops the start
//! with an error naming the file and line.

mod common;
use common::hooks::{Receiver, ACCEPT, REFUSE_ALL, SECRET};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn spawn(config: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--config")
        .arg(config)
        .env_remove("TRIAGE_WEBHOOK_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_ready(child: &mut Child, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !matches!(common::http(port, "GET", "/ready", ""), Some((200, _))) {
        assert!(child.try_wait().unwrap().is_none(), "server exited");
        assert!(Instant::now() < deadline, "server not ready in time");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// An acknowledged triage: (conversation, turn, text, webhooks queued).
type Acked = (String, u32, String, usize);

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("triage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const TEXTS: &[&str] = &[
    "Where is my order? It should have arrived by now.",
    "This is outrageous! I am so angry, your company is a disgrace!",
    "请问我的订单什么时候发货？",
    "我非常生气，你们的服务太差了，简直是垃圾！",
    "Thanks, that solved it.",
    "I will take legal action and contact my lawyer.",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_nothing_acknowledged_and_webhooks_arrive_once() {
    if common::pack_model("multilingual-e5-small").is_none() {
        return;
    }
    let t0 = Instant::now();
    let rx = Receiver::start(REFUSE_ALL).await;
    let d = dir("kill9");
    let cfg = d.join("triage.toml");
    std::fs::write(
        &cfg,
        format!(
            "[limits]\nqueue_wait_ms = 60000\n\n[store]\npath = {:?}\nmax_subscribers = 40\n\n[webhooks]\nurls = [{:?}]\nsecret = {SECRET:?}\ninitial_backoff_ms = 100\nmax_backoff_secs = 1\n",
            d.join("triage.sqlite"),
            rx.url
        ),
    )
    .unwrap();
    let port = free_port();
    let mut first = Kill(spawn(&cfg, port));
    wait_ready(&mut first.0, port);

    // Two clients stream triage calls over 12 conversations; kill -9 lands mid-stream.
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..2)
        .map(|c| {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let conv = format!("k{}", (i * 2 + c) % 12);
                    let text = TEXTS[(i / 6 + c + i) % TEXTS.len()];
                    let body = serde_json::json!({"conversation_id": conv, "text": text});
                    match common::http(port, "POST", "/v1/triage", &body.to_string()) {
                        Some((200, b)) => {
                            let j: serde_json::Value = serde_json::from_str(&b).unwrap();
                            let turn = j["conversation"]["turn"].as_u64().unwrap() as u32;
                            let hooks = j["conversation"]["webhooks_queued"].as_u64().unwrap();
                            acked
                                .lock()
                                .unwrap()
                                .push((conv, turn, text.into(), hooks as usize));
                        }
                        Some((s, b)) => panic!("status {s}: {b}"),
                        None => break, // the server is gone
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < 40 {
        assert!(Instant::now() < deadline, "too slow");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = Command::new("kill")
        .args(["-9", &first.0.id().to_string()])
        .status();
    let _ = first.0.wait();
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let expected: HashSet<String> = acked
        .iter()
        .filter(|a| a.3 > 0)
        .map(|a| triage::store::outbox::idempotency_key(&a.0, a.1, &rx.url))
        .collect();
    assert!(
        !expected.is_empty(),
        "the stream should have changed some routes"
    );
    assert!(
        rx.taken().is_empty(),
        "nothing may be taken while the receiver refuses"
    );

    eprintln!("[{:?}] killed", t0.elapsed());
    let port = free_port();
    let mut second = Kill(spawn(&cfg, port));
    wait_ready(&mut second.0, port);
    // Every acknowledged turn is stored, with its text.
    let mut convs: HashMap<String, serde_json::Value> = HashMap::new();
    for (conv, turn, text, _) in &acked {
        let c = convs.entry(conv.clone()).or_insert_with(|| {
            let (s, b) =
                common::http(port, "GET", &format!("/v1/conversations/{conv}"), "").unwrap();
            assert_eq!(s, 200, "{b}");
            serde_json::from_str(&b).unwrap()
        });
        let t = &c["turns"][(*turn - 1) as usize];
        assert_eq!(t["turn"], *turn, "{conv}: {t}");
        assert_eq!(t["text"], text.as_str(), "{conv} turn {turn}");
    }
    eprintln!("[{:?}] restarted and checked", t0.elapsed());
    // The receiver now takes deliveries: each pending key arrives, once.
    rx.mode.store(ACCEPT, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let taken = rx.taken();
        if expected.iter().all(|k| taken.contains_key(k)) {
            break;
        }
        assert!(Instant::now() < deadline, "pending webhooks not delivered");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let taken = rx.taken();
    assert!(
        taken.values().all(|n| *n == 1),
        "a key was taken twice: {taken:?}"
    );
    assert!(rx.deliveries().iter().all(|d| d.signed));
    eprintln!(
        "acknowledged {} turns before kill -9; {} webhooks pending, all delivered once after restart ({} taken in all)",
        acked.len(),
        expected.len(),
        taken.len()
    );

    eprintln!("[{:?}] delivered", t0.elapsed());
    // SSE clients that never read: memory stays bounded while events pile up.
    let pid = second.0.id();
    let mut idle: Vec<std::net::TcpStream> = (0..30)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET /v1/events?last_event_id=0 HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib(pid);
    let long = format!("{} ", TEXTS[1]).repeat(5);
    for i in 0..60 {
        let body = serde_json::json!({"conversation_id": format!("flood{}", i % 5), "text": long});
        let (s, b) = common::http(port, "POST", "/v1/triage", &body.to_string()).unwrap();
        assert!(s == 200 || s == 409, "{s} {b}");
    }
    let after = rss_kib(pid);
    eprintln!(
        "RSS with 30 SSE clients that never read: {before} KiB before 60 events, {after} KiB after"
    );
    assert!(
        after < before + 150 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    // Past store.max_subscribers: 503, while the server keeps answering.
    for _ in 0..10 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        idle.push(s);
    }
    std::thread::sleep(Duration::from_millis(300));
    let (s, b) = common::http(port, "GET", "/v1/events", "").unwrap();
    assert_eq!(s, 503, "{b}");
    assert_eq!(common::http(port, "GET", "/health", "").unwrap().0, 200);
    drop(idle);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_malformed_policy_stops_the_start_naming_the_line() {
    let d = dir("policy");
    let policy = d.join("policy.toml");
    let text = include_str!("../models/routing/default_policy.toml").replacen(
        "max_bot_turns = 6",
        "max_bot_turns = \"six\"",
        1,
    );
    std::fs::write(&policy, text).unwrap();
    let cfg = d.join("triage.toml");
    std::fs::write(&cfg, "routing_file = \"policy.toml\"\n").unwrap();
    let inline = d.join("inline.toml");
    std::fs::write(&inline, "[routing]\nlow_confidence = 0.5\nwindow = [\n").unwrap();
    for (config, needle) in [(&cfg, "policy.toml"), (&inline, "inline.toml")] {
        let out = Command::new(env!("CARGO_BIN_EXE_triage"))
            .args(["serve", "--bind", "127.0.0.1:0", "--config"])
            .arg(config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains(needle) && err.contains("line"), "{err}");
    }
    let _ = std::fs::remove_dir_all(d);
}
