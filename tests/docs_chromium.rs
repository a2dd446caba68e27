//! The API docs page (`GET /docs`) in headless Chromium against the router served in-process (no
//! models needed): it loads /openapi.json, lists every operation by tag, and shows the
//! `POST /v1/triage` operation with its request schema ($refs resolved) and a curl line.
//! Driven over the Chrome DevTools Protocol (tungstenite) as tests/console_chromium.rs does;
//! skipped without Chromium (a failure with TRIAGE_REQUIRE_MODELS=1).

mod common;
use common::chromium::{chromium_and_scratch, open_page};
use serde_json::{json, Value};
use std::sync::Arc;
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
    let Some((chromium, dir)) = chromium_and_scratch("docs") else {
        return;
    };
    let port = serve();
    let url = format!("http://127.0.0.1:{port}/docs#post-v1-triage");
    let (browser, mut cdp) = open_page(&chromium, &dir.0, &url);

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
