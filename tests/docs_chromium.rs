//! The API docs page (`GET /docs`) in headless Chromium against the router served in-process (no
//! models needed): it loads /openapi.json, lists every operation by tag, and shows the
//! `POST /v1/triage` operation with its request schema ($refs resolved) and a curl line.
//! Driven over the Chrome DevTools Protocol (tungstenite) as tests/console_chromium.rs does;
//! skipped without Chromium (a failure with TRIAGE_REQUIRE_MODELS=1).

mod common;
use common::chromium::{find_chromium, Cdp, Proc, TempDir};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// The router on 127.0.0.1 (a mock-free state: no model is needed for these routes); the port.
fn serve() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let state = triage::AppState::new(
                triage::config::Config::default(),
                Arc::new(triage::metrics::Metrics::default()),
                triage::heads::registry::HeadRegistry::default(),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, triage::http::router(state))
                .await
                .unwrap();
        });
    });
    port
}

#[test]
fn docs_page_renders_the_operations() {
    let Some(chromium) = find_chromium() else {
        if std::env::var("TRIAGE_REQUIRE_MODELS").is_ok_and(|v| v == "1") {
            panic!("no chromium on PATH: install chromium (scripts/deps.sh)");
        }
        eprintln!("SKIPPED: no chromium, chromium-browser or google-chrome on PATH");
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir =
        TempDir(std::env::temp_dir().join(format!("triage-docs-{}-{nanos}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let port = serve();

    use std::os::unix::process::CommandExt;
    let mut browser = Proc(
        Command::new(&chromium)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
            ])
            .arg(format!(
                "--user-data-dir={}",
                dir.0.join("chromium").display()
            ))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn chromium"),
    );
    let (tx, rx) = mpsc::channel();
    let stderr = browser.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let ws_url = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => match line.split_once("DevTools listening on ") {
                Some((_, url)) => break url.trim().to_string(),
                None => seen.push(line),
            },
            Err(e) => panic!("no DevTools address ({e}); stderr:\n{}", seen.join("\n")),
        }
    };

    let mut cdp = Cdp::connect(&ws_url);
    let target = cdp.call("Target.createTarget", json!({"url": "about:blank"}));
    let attached = cdp.call(
        "Target.attachToTarget",
        json!({"targetId": target["targetId"], "flatten": true}),
    );
    cdp.session = attached["sessionId"].as_str().map(str::to_string);
    cdp.call("Runtime.enable", json!({}));
    let url = format!("http://127.0.0.1:{port}/docs#post-v1-triage");
    let nav = cdp.call("Page.navigate", json!({"url": url}));
    assert!(nav.get("errorText").is_none(), "navigate to {url}: {nav}");

    let loaded =
        "document.getElementById('status')?.textContent.startsWith('OpenAPI 3.1') === true";
    if !cdp.wait_for(loaded, Duration::from_secs(20)) {
        let status = cdp.eval("document.body?.innerText").unwrap_or(Value::Null);
        panic!(
            "the page never rendered /openapi.json: {status}\npage errors: {:?}",
            cdp.page_errors
        );
    }
    let doc = serde_json::to_value(triage::http::openapi::document()).unwrap();
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    let shown = cdp
        .eval("document.querySelectorAll('details.op').length")
        .unwrap_or(Value::Null);
    assert_eq!(shown, json!(operations), "operations shown");
    let tags = cdp
        .eval("[...document.querySelectorAll('section.tag h2')].map(h => h.textContent)")
        .unwrap_or(Value::Null);
    for t in ["meta", "triage", "conversations", "batch", "intents"] {
        assert!(
            tags.as_array().unwrap().contains(&json!(t)),
            "no {t} section: {tags}"
        );
    }

    // The deep link opened POST /v1/triage: its request schema and a curl line are shown.
    let op = "document.querySelector('details.op[data-method=\"POST\"][data-path=\"/v1/triage\"]')";
    assert_eq!(
        cdp.eval(&format!("{op}?.open")).unwrap_or(Value::Null),
        json!(true),
        "not opened"
    );
    let text = cdp.eval(&format!("{op}.innerText")).unwrap_or(Value::Null);
    let text = text.as_str().unwrap_or_default();
    for want in [
        "Request body",
        "conversation_id",
        "customer",
        "tier", // Customer's field: the $ref was resolved
        "200",
        "ErrorBody",
        "curl -s -X POST",
        "/v1/triage",
        "Authorization: Bearer",
    ] {
        assert!(
            text.contains(want),
            "POST /v1/triage lacks {want:?}:\n{text}"
        );
    }
    assert!(
        cdp.page_errors.is_empty(),
        "page errors: {:?}",
        cdp.page_errors
    );
    drop(cdp);
    drop(browser);
}
