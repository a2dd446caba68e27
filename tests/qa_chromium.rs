//! Quality inspection end to end against a real `triage serve` (issue 22): a scripted English
//! and Chinese conversation where an agent sends a rude reply with a leaked card number. Each
//! raises a `qa` event on the quality queue (timed from the post to its arrival on a plain SSE
//! connection), a signed `qa.fatal` webhook, and a failed scorecard; the report page (`/qa`) in
//! headless Chromium shows the live findings, the agents' table and charts, and the conversation's
//! scorecard on click. Skipped without the model pack or Chromium.

mod common;
use common::chromium::{chromium_and_scratch, open_page, serve, Cdp};
use common::hooks::{Receiver, ACCEPT, SECRET};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn dump(cdp: &mut Cdp) -> String {
    let page = cdp.text("document.querySelector('main')?.innerText ?? '(no main)'");
    let status = cdp.text("document.getElementById('status')?.textContent ?? ''");
    format!(
        "status: {status}\npage:\n{page}\npage errors: {:#?}",
        cdp.page_errors
    )
}

/// A plain SSE client on `/v1/events?queue=qa`: sends (arrival time, data) for each `qa` frame.
fn listen(port: u16) -> mpsc::Receiver<(Instant, Value)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /v1/events?queue=qa HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut qa = false;
        for line in BufReader::new(s).lines().map_while(Result::ok) {
            if line == "event: qa" {
                qa = true;
            } else if let (true, Some(d)) = (qa, line.strip_prefix("data: ")) {
                let at = Instant::now();
                let _ = tx.send((at, serde_json::from_str(d).unwrap_or(Value::Null)));
                qa = false;
            }
        }
    });
    rx
}

#[test]
fn rude_replies_raise_events_webhooks_and_show_on_the_report_page() {
    if common::pack_model("multilingual-e5-small").is_none() {
        return;
    }
    let Some((chromium, dir)) = chromium_and_scratch("qa-page") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hook = rt.block_on(Receiver::start(ACCEPT));
    let store = dir.0.join("triage.sqlite");
    let (server, port) = serve(
        &dir.0,
        &format!(
            "[store]\npath = {}\n\n[webhooks]\nurls = [{}]\nsecret = {}\ninitial_backoff_ms = 100\n",
            json!(store.to_str().unwrap()),
            json!(hook.url),
            json!(SECRET)
        ),
    );
    let events = listen(port);
    let (browser, mut cdp) = open_page(&chromium, &dir.0, &format!("http://127.0.0.1:{port}/qa"));
    let ready = "document.getElementById('status')?.textContent === 'connected' \
        && document.body.dataset.report === 'loaded'";
    if !cdp.wait_for(ready, Duration::from_secs(20)) {
        panic!(
            "the report page never loaded and connected\n{}",
            dump(&mut cdp)
        );
    }

    // The scripted conversations: a customer message, then the agent's rude reply.
    let script = [
        (
            "qa-page-en",
            "agent-en",
            "My parcel is a week late and nobody answers.",
            "Shut up, idiot. Your card 4111 1111 1111 1111 is charged, deal with it.",
        ),
        (
            "qa-page-zh",
            "agent-zh",
            "我的快递一个星期了还没到，怎么回事？",
            "你是不是傻逼？你的卡号 4111111111111111 已经扣款了，爱买不买。",
        ),
    ];
    for (conv, agent, asked, rude) in script {
        let body = json!({"conversation_id": conv, "text": asked}).to_string();
        let (s, a) = common::http(port, "POST", "/v1/triage", &body).expect("POST /v1/triage");
        assert_eq!(s, 200, "{a}");
        let body = json!({"role": "agent", "text": rude, "agent_id": agent}).to_string();
        let path = format!("/v1/conversations/{conv}/messages");
        let posted = Instant::now();
        let (s, r) = common::http(port, "POST", &path, &body).expect("POST reply");
        let answered = posted.elapsed();
        assert_eq!(s, 201, "{r}");
        let r: Value = serde_json::from_str(&r).unwrap();
        assert_eq!(
            (r["qa"]["score"].clone(), r["qa"]["fatal"].clone()),
            (json!(0), json!(true))
        );
        let (at, e) = events
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no qa event for {conv} within 10 s"));
        // Timed, not asserted (speed is measured in benchmarks): printed for the record.
        eprintln!(
            "{conv}: reply answered in {:.1} ms; qa event {:.1} ms after the post",
            answered.as_secs_f64() * 1000.0,
            at.duration_since(posted).as_secs_f64() * 1000.0
        );
        assert_eq!(
            (e["conversation_id"].as_str(), e["agent_id"].as_str()),
            (Some(conv), Some(agent)),
            "{e}"
        );
        let items: Vec<&str> = e["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["item"].as_str())
            .collect();
        assert!(
            items.contains(&"abusive_language") && items.contains(&"pii_leak"),
            "{e}"
        );
        assert!(
            !e.to_string().contains("4111 1111 1111 1111")
                && !e.to_string().contains("4111111111111111"),
            "{e}"
        );
    }

    // Each fatal reply reached the webhook, signed, once.
    let deadline = Instant::now() + Duration::from_secs(20);
    let fatal = loop {
        let d: Vec<_> = hook
            .deliveries()
            .into_iter()
            .filter(|d| d.body["event"] == "qa.fatal")
            .collect();
        if d.len() >= 2 || Instant::now() > deadline {
            break d;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(fatal.len(), 2, "{fatal:?}");
    assert!(
        fatal.iter().all(|d| d.signed && d.status == 200),
        "{fatal:?}"
    );

    // The page: both live findings, then the report with both agents and the charts.
    let live = "document.querySelectorAll('#live .qa-event.fatal').length === 2";
    if !cdp.wait_for(live, Duration::from_secs(10)) {
        panic!("the live findings did not show\n{}", dump(&mut cdp));
    }
    let zh = cdp.text(
        "document.querySelector('#live .qa-event[data-conversation=\"qa-page-zh\"]').textContent",
    );
    assert!(zh.contains("傻逼") && zh.contains("agent-zh"), "{zh}");
    cdp.eval("document.getElementById('load').click()").unwrap();
    let agents = "document.querySelectorAll('#agents tbody tr[data-agent]').length === 2 \
        && document.querySelectorAll('#violations rect').length >= 2 \
        && document.querySelectorAll('#trend circle').length >= 1";
    if !cdp.wait_for(agents, Duration::from_secs(10)) {
        panic!("the report shows no agents and charts\n{}", dump(&mut cdp));
    }
    let row = cdp.text("document.querySelector('#agents tr[data-agent=\"agent-en\"]').textContent");
    assert!(row.contains("0.0"), "mean score 0: {row}");
    let worst = cdp.text("document.querySelector('#dist rect[data-label=\"0-59\"]').dataset.value");
    assert_eq!(worst, "2");
    // A click on a live finding opens the conversation's scorecard.
    cdp.eval("document.querySelector('#live .qa-event[data-conversation=\"qa-page-en\"]').click()")
        .unwrap();
    let card =
        "document.querySelector('#scorecard .item.failed[data-item=\"pii_leak\"]') !== null \
        && document.querySelector('#scorecard .conv-score')?.textContent === '0'";
    if !cdp.wait_for(card, Duration::from_secs(10)) {
        panic!("the scorecard did not open\n{}", dump(&mut cdp));
    }
    let card = cdp.text("document.getElementById('scorecard').textContent");
    assert!(
        card.contains("**** **** **** 1111") && !card.contains("4111 1111 1111 1111"),
        "{card}"
    );
    drop(cdp);
    drop(browser);
    drop(server);
}
