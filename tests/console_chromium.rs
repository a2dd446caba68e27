//! The agent console (`GET /console`) in headless Chromium against a real `triage serve`: the page
//! deep-linked to one conversation connects to its SSE stream, shows a live angry message as a row
//! with an escalate flag, and its Handoff button renders the transcript; the message left the bot,
//! so the assist panel shows knowledge-base suggestions and a ticket draft, and "Use" on a
//! suggestion stores feedback that `GET .../assist` counts. Driven over the Chrome
//! DevTools Protocol (tungstenite); skipped without the model pack or Chromium.

mod common;
use common::chromium::{chromium_and_scratch, open_page, serve, Cdp};
use serde_json::json;
use std::time::Duration;

const CONV: &str = "console-test-1";
const ANGRY: &str =
    "This is outrageous! I have been charged twice and nobody helps me. I am absolutely furious!";

/// What the page shows, for failure messages: status, event rows, handoff panel, page errors.
fn dump(cdp: &mut Cdp) -> String {
    let status = cdp.text("document.getElementById('status')?.textContent ?? '(no #status)'");
    let rows = cdp.text(
        "JSON.stringify([...document.querySelectorAll('.event')].map(e => e.innerText.replace(/\\s+/g, ' ').trim()), null, 1)",
    );
    let handoff = cdp.text(
        "document.getElementById('handoff')?.innerText.replace(/\\s+/g, ' ') ?? '(no #handoff)'",
    );
    let assist = cdp.text(
        "document.getElementById('assist')?.innerText.replace(/\\s+/g, ' ') ?? '(no #assist)'",
    );
    format!(
        "status: {status}\n.event rows: {rows}\n#handoff: {handoff}\n#assist: {assist}\npage errors: {:#?}",
        cdp.page_errors
    )
}

#[test]
fn console_shows_live_escalation_and_handoff() {
    if common::pack_model("multilingual-e5-small").is_none() {
        return;
    }
    let Some((chromium, dir)) = chromium_and_scratch("console") else {
        return;
    };

    // 1. The server, with its store in the scratch folder.
    let store = dir.0.join("triage.sqlite");
    let (server, port) = serve(
        &dir.0,
        &format!("[store]\npath = {}\n", json!(store.to_str().unwrap())),
    );

    // 2. Headless Chromium on the console, deep-linked to the conversation.
    let url = format!("http://127.0.0.1:{port}/console?conversation={CONV}");
    let (browser, mut cdp) = open_page(&chromium, &dir.0, &url);
    let connected = "document.getElementById('status')?.textContent === 'connected'";
    if !cdp.wait_for(connected, Duration::from_secs(20)) {
        panic!(
            "console never connected to the conversation's event stream\n{}",
            dump(&mut cdp)
        );
    }

    // 3. An angry customer message, sent while the page listens, shows up live as an escalation.
    let body = json!({"conversation_id": CONV, "text": ANGRY}).to_string();
    let (status, answer) =
        common::http(port, "POST", "/v1/triage", &body).expect("POST /v1/triage");
    assert_eq!(status, 200, "POST /v1/triage: {answer}");
    let row = format!(".event[data-conversation=\"{CONV}\"]");
    let escalated = format!("document.querySelectorAll('{row} .flag-escalate').length > 0");
    if !cdp.wait_for(&escalated, Duration::from_secs(10)) {
        panic!("no {row} row with an escalate flag within 10 s of POST /v1/triage (answer: {answer})\n{}", dump(&mut cdp));
    }
    let row_text = cdp.text(&format!("document.querySelector('{row}').textContent"));
    assert!(
        row_text.contains("furious"),
        "event row lacks the message text: {row_text:?}\n{}",
        dump(&mut cdp)
    );

    // 4. The row's Handoff button opens the handoff panel with the transcript.
    let click = format!("(() => {{ const b = document.querySelector('{row} button.handoff'); if (b) b.click(); return !!b; }})()");
    assert_eq!(
        cdp.eval(&click),
        Ok(json!(true)),
        "no Handoff button on the event row\n{}",
        dump(&mut cdp)
    );
    let transcript =
        "document.querySelector('#handoff .transcript')?.textContent.includes('furious') === true";
    if !cdp.wait_for(transcript, Duration::from_secs(30)) {
        panic!(
            "#handoff shows no transcript with the message within 30 s\n{}",
            dump(&mut cdp)
        );
    }

    // 5. The message left the bot: the assist panel lists suggested replies and the ticket.
    let assist = "document.querySelectorAll('#assist .suggestion').length > 0 \
        && document.querySelector('#assist .ticket')?.textContent.includes('priority') === true";
    if !cdp.wait_for(assist, Duration::from_secs(30)) {
        panic!(
            "#assist shows no suggestions and ticket within 30 s\n{}",
            dump(&mut cdp)
        );
    }
    let ticket = cdp.text("document.querySelector('#assist .ticket').textContent");
    assert!(ticket.contains("P"), "ticket without a priority: {ticket}");
    // 6. "Use" on the first suggestion stores feedback; the API counts it.
    let key = cdp.text("document.querySelector('#assist .suggestion').dataset.key");
    let click = "(() => { const b = document.querySelector('#assist .suggestion button.use'); if (b) b.click(); return !!b; })()";
    assert_eq!(
        cdp.eval(click),
        Ok(json!(true)),
        "no Use button\n{}",
        dump(&mut cdp)
    );
    let used = "document.querySelector('#assist .suggestion')?.dataset.feedback === 'used'";
    if !cdp.wait_for(used, Duration::from_secs(10)) {
        panic!("the suggestion was not marked used\n{}", dump(&mut cdp));
    }
    let (status, body) = common::http(port, "GET", &format!("/v1/conversations/{CONV}/assist"), "")
        .expect("GET assist");
    assert_eq!(status, 200, "{body}");
    let a: serde_json::Value = serde_json::from_str(&body).unwrap();
    let counted = a["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["key"] == json!(key) && s["used"] == json!(1));
    assert!(counted, "feedback on {key} not counted: {body}");
    drop(cdp);
    drop(browser);
    drop(server);
}
