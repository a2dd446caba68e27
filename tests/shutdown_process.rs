//! The real `triage serve` process under SIGTERM: mid-load it drains (every request gets a full
//! answer, a 503 or a refused connection, never a reset), parks a running batch job, exits 0,
//! and after a restart the store holds each acknowledged message once and the job completes.
//! Without a model: an open SSE stream does not hold shutdown, and shutdown past
//! `server.shutdown_timeout_secs` exits non-zero with a log line.

mod common;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("triage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The server, killed if the test fails; its log goes to `log`.
struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(config: &Path, port: u16, log: &Path) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--config")
        .arg(config)
        .env("TRIAGE_LOG", "info")
        .env_remove("TRIAGE_API_KEYS")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    Server(child)
}

fn wait_for(s: &mut Server, port: u16, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !matches!(common::http(port, "GET", path, ""), Some((200, _))) {
        assert!(s.0.try_wait().unwrap().is_none(), "server exited");
        assert!(Instant::now() < deadline, "server not up in time");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGTERM, then the exit status and how long it took.
fn term(s: &mut Server, limit: Duration) -> (ExitStatus, Duration) {
    let t = Instant::now();
    let ok = Command::new("kill")
        .args(["-TERM", &s.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    loop {
        if let Some(st) = s.0.try_wait().unwrap() {
            return (st, t.elapsed());
        }
        assert!(t.elapsed() < limit, "no exit {limit:?} after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How one request ended, as the client saw it.
#[derive(Debug, Clone)]
enum Outcome {
    Answer(u16, String),
    /// The connection was refused: the server had stopped listening.
    Refused,
    /// Anything else: a reset or a close without an answer.
    Broken(String),
}

fn send(port: u16, path: &str, body: &str) -> Outcome {
    let mut s = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Outcome::Refused,
        Err(e) => return Outcome::Broken(format!("connect: {e}")),
    };
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Err(e) = s.write_all(req.as_bytes()) {
        return Outcome::Broken(format!("write: {e}"));
    }
    let mut out = Vec::new();
    if let Err(e) = s.read_to_end(&mut out) {
        return Outcome::Broken(format!("read: {e} after {} bytes", out.len()));
    }
    let out = String::from_utf8_lossy(&out);
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok());
    match (status, out.split_once("\r\n\r\n")) {
        (Some(code), Some((_, b))) => Outcome::Answer(code, b.to_string()),
        _ => Outcome::Broken(format!("no answer: {out:?}")),
    }
}

/// Conversations in the batch job (small: debug builds run the model slowly).
/// Enough that the job is still running when SIGTERM comes (it starts once triages are acked).
const JOB_CONVERSATIONS: usize = 64;

const TEXTS: &[&str] = &[
    "Where is my order? It should have arrived by now.",
    "I was charged twice, please refund me.",
    "请问我的订单什么时候发货？",
    "This is outrageous, I am so angry!",
    "How do I change my delivery address?",
];

#[test]
fn sigterm_mid_load_drains_parks_batch_and_loses_nothing() {
    if common::pack_model("multilingual-e5-small").is_none() {
        return;
    }
    let t0 = Instant::now();
    let d = dir("sigterm");
    let cfg = d.join("triage.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nshutdown_timeout_secs = 60\n[limits]\nqueue_wait_ms = 60000\n\
             [batching]\nmax_batch_size = 8\n[store]\npath = {:?}\n[batch]\nbatch_size = 2\n",
            d.join("triage.sqlite")
        ),
    )
    .unwrap();
    let (port, log) = (free_port(), d.join("first.log"));
    let mut server = spawn(&cfg, port, &log);
    wait_for(&mut server, port, "/ready");

    // An SSE client that never reads.
    let mut sse = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sse.write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();

    // Six clients, one conversation each, messages numbered so that each is unique.
    let log_of: Arc<Mutex<Vec<(usize, String, Outcome)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|c| {
            let (log_of, stop) = (log_of.clone(), stop.clone());
            std::thread::spawn(move || {
                for i in 0..10_000 {
                    let text = format!("[{c}-{i}] {}", TEXTS[(c + i) % TEXTS.len()]);
                    let body =
                        serde_json::json!({"conversation_id": format!("sd{c}"), "text": text});
                    let o = send(port, "/v1/triage", &body.to_string());
                    let done = matches!(o, Outcome::Refused) || stop.load(Ordering::SeqCst);
                    log_of.lock().unwrap().push((c, text, o));
                    if done {
                        break;
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(240);
    while acked(&log_of.lock().unwrap()) < 12 {
        if Instant::now() > deadline {
            let last: Vec<_> = log_of
                .lock()
                .unwrap()
                .iter()
                .rev()
                .take(3)
                .cloned()
                .collect();
            stop.store(true, Ordering::SeqCst);
            panic!("too slow: {last:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A batch job, submitted now so that it is still running at SIGTERM.
    let mut input = Vec::new();
    triage::batch::synth::write(&mut input, JOB_CONVERSATIONS, 0, 7).unwrap();
    let job = submit_batch(port, &input);
    // SIGTERM once the job has written part of its output.
    let before = loop {
        let st = job_status(port, &job);
        if st["written"].as_u64().unwrap_or(0) > 0 {
            break st;
        }
        assert!(Instant::now() < deadline, "batch job too slow: {st}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(before["state"], "running", "{before}");
    eprintln!("[{:?}] SIGTERM; job at {before}", t0.elapsed());
    let (status, took) = term(&mut server, Duration::from_secs(70));
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    drop(sse);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "exit {status} after {took:?}:\n{text}");
    for needle in [
        "runner stopped at a resumable point",
        "store checkpointed",
        "stopped",
    ] {
        assert!(text.contains(needle), "no `{needle}` in the log:\n{text}");
    }

    // Every request: a full answer (200, or 503 while shedding/stopping) or a refusal.
    let outcomes = log_of.lock().unwrap().clone();
    for (c, t, o) in &outcomes {
        match o {
            Outcome::Answer(200, _) | Outcome::Refused => {}
            Outcome::Answer(503, b) => assert!(
                b.contains("shutting_down") || b.contains("queue_timeout"),
                "{c} {t}: {b}"
            ),
            Outcome::Broken(why) => panic!("client {c}, {t}: {why}"),
            Outcome::Answer(code, b) => panic!("client {c}, {t}: {code} {b}"),
        }
    }
    let n_acked = acked(&outcomes);
    eprintln!(
        "SIGTERM after {n_acked} acknowledged triages: exit 0 in {took:?}; {} requests in all",
        outcomes.len()
    );

    // After a restart: each acknowledged message stored once, at its turn; nothing else stored.
    let port = free_port();
    let mut server = spawn(&cfg, port, &d.join("second.log"));
    wait_for(&mut server, port, "/ready");
    for c in 0..6 {
        let (s, b) = common::http(port, "GET", &format!("/v1/conversations/sd{c}"), "").unwrap();
        assert_eq!(s, 200, "{b}");
        let conv: Value = serde_json::from_str(&b).unwrap();
        let stored: Vec<String> = conv["turns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["text"].as_str().unwrap_or("").to_string())
            .collect();
        let mut count: HashMap<&str, usize> = HashMap::new();
        for t in &stored {
            *count.entry(t.as_str()).or_default() += 1;
        }
        for (cc, t, o) in outcomes.iter().filter(|(cc, ..)| *cc == c) {
            let n = count.get(t.as_str()).copied().unwrap_or(0);
            match o {
                Outcome::Answer(200, b) => {
                    assert_eq!(n, 1, "client {cc}: `{t}` stored {n} times");
                    let j: Value = serde_json::from_str(b).unwrap();
                    let turn = j["conversation"]["turn"].as_u64().unwrap() as usize;
                    assert_eq!(stored[turn - 1], *t, "client {cc}: turn {turn}");
                }
                _ => assert_eq!(n, 0, "client {cc}: unacknowledged `{t}` was stored"),
            }
        }
    }
    eprintln!("[{:?}] restarted, store checked", t0.elapsed());
    // The parked job resumes and completes with every conversation once.
    let deadline = Instant::now() + Duration::from_secs(300);
    let done = loop {
        let st = job_status(port, &job);
        if st["state"] == "done" {
            break st;
        }
        assert_ne!(st["state"], "failed", "{st}");
        assert!(Instant::now() < deadline, "batch job not done: {st}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let (s, out) = common::http(port, "GET", &format!("/v1/batch/{job}/result"), "").unwrap();
    assert_eq!(s, 200);
    let mut ids: Vec<String> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].to_string())
        .collect();
    let lines = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (lines, ids.len()),
        (JOB_CONVERSATIONS, JOB_CONVERSATIONS),
        "{done}"
    );
    eprintln!("[{:?}] batch job done", t0.elapsed());
    let (status, _) = term(&mut server, Duration::from_secs(70));
    assert!(status.success());
    let _ = std::fs::remove_dir_all(d);
}

fn acked(log: &[(usize, String, Outcome)]) -> usize {
    log.iter()
        .filter(|(_, _, o)| matches!(o, Outcome::Answer(200, _)))
        .count()
}

fn submit_batch(port: u16, input: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "POST /v1/batch/summarize HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        input.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(input).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let body = out.split_once("\r\n\r\n").unwrap().1;
    assert!(out.starts_with("HTTP/1.1 202"), "{out}");
    let j: Value = serde_json::from_str(body).unwrap();
    j["job_id"].as_str().unwrap().to_string()
}

fn job_status(port: u16, job: &str) -> Value {
    let (s, b) = common::http(port, "GET", &format!("/v1/batch/{job}"), "").unwrap();
    assert_eq!(s, 200, "{b}");
    serde_json::from_str(&b).unwrap()
}

/// A config whose model never loads (no pack needed): the server still listens and stores.
fn no_model_config(d: &Path, timeout_secs: u64) -> PathBuf {
    let cfg = d.join("triage.toml");
    std::fs::write(
        &cfg,
        format!(
            "default_model = \"multilingual-e5-small\"\n[server]\nshutdown_timeout_secs = {timeout_secs}\n\
             [store]\npath = {:?}\n[[models]]\nname = \"multilingual-e5-small\"\nsource = {:?}\nprefix = \"query: \"\n",
            d.join("triage.sqlite"),
            d.join("no-model")
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn sse_does_not_hold_shutdown_and_a_stuck_request_hits_the_deadline() {
    let d = dir("deadline");
    let cfg = no_model_config(&d, 2);
    // An idle SSE stream: exit 0 at once.
    let (port, log) = (free_port(), d.join("sse.log"));
    let mut server = spawn(&cfg, port, &log);
    wait_for(&mut server, port, "/health");
    let mut sse = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sse.write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    sse.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let (status, took) = term(&mut server, Duration::from_secs(10));
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    // The stream ended cleanly (the chunked body's last chunk), not by a reset.
    let mut rest = Vec::new();
    sse.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sse.read_to_end(&mut rest).unwrap();
    assert!(
        rest.ends_with(b"0\r\n\r\n"),
        "{:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(matches!(send(port, "/v1/triage", "{}"), Outcome::Refused));

    // An upload that never finishes: past the deadline, exit non-zero with a log line.
    let (port, log) = (free_port(), d.join("stuck.log"));
    let mut server = spawn(&cfg, port, &log);
    wait_for(&mut server, port, "/health");
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"POST /v1/batch/summarize HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n{\"id\":")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (status, took) = term(&mut server, Duration::from_secs(15));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{text}");
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(text.contains("shutdown deadline passed"), "{text}");
    drop(slow);
    let _ = std::fs::remove_dir_all(d);
}
