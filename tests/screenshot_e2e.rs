//! `/v1/screenshot` on the real encoder and real Tesseract OCR, over screenshots rendered by
//! `scripts/render_screenshots.py --seed 3 --n-per-fault 2` (committed in
//! tests/fixtures/screenshots): known faults in English and Chinese with their evidence and
//! solution, and unrelated images (a chat, a photo) answered `null` with route `agent`.

mod common;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;
use triage::config::Config;

fn real_app() -> Option<axum::Router> {
    common::pack_model("multilingual-e5-small")?;
    let mut cfg = Config::default();
    cfg.models.retain(|m| m.name == "multilingual-e5-small");
    let dir = common::scratch_dir("shot-e2e");
    cfg.store.path = Some(dir.join("triage.sqlite"));
    // Both tests run a model and Tesseract at once on a CI machine's 2 cores, where a batch of
    // catalog examples in a debug build can outlast the 2 s default: correctness here, no shedding.
    cfg.limits.queue_wait_ms = 60_000;
    let state = triage::server::loaded(cfg, triage::state::Open::ALL).unwrap();
    triage::server::start_store_workers(&state);
    Some(triage::app(state))
}

async fn shot(app: &axum::Router, file: &str, ctype: &str) -> serde_json::Value {
    shot_to(app, "/v1/screenshot", file, ctype).await
}

async fn shot_to(app: &axum::Router, uri: &str, file: &str, ctype: &str) -> serde_json::Value {
    let path = format!(
        "{}/tests/fixtures/screenshots/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    send_to(app, uri, file, ctype, std::fs::read(path).unwrap()).await
}

async fn send(app: &axum::Router, file: &str, ctype: &str, bytes: Vec<u8>) -> serde_json::Value {
    send_to(app, "/v1/screenshot", file, ctype, bytes).await
}

async fn send_to(
    app: &axum::Router,
    uri: &str,
    file: &str,
    ctype: &str,
    bytes: Vec<u8>,
) -> serde_json::Value {
    let req = Request::post(uri)
        .header("content-type", ctype)
        .body(Body::from(bytes))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let s = resp.status();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    let j: serde_json::Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(s.as_u16(), 200, "{file}: {j}");
    j
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_faults_are_recognised_and_unrelated_images_are_not() {
    let Some(app) = real_app() else { return };
    for (file, ctype, want, lang) in [
        (
            "payment_failed_001.jpg",
            "image/jpeg",
            "payment_failed",
            "en",
        ),
        (
            "account_locked_001.png",
            "image/png",
            "account_locked",
            "zh",
        ),
        ("update_failed_000.png", "image/png", "update_failed", "zh"),
    ] {
        let j = shot(&app, file, ctype).await;
        assert_eq!(j["fault"]["id"], want, "{file}: {j}");
        assert_eq!(j["solution"]["language"], lang, "{file}: {j}");
        assert!(!j["solution"]["text"].as_str().unwrap().is_empty());
        assert!(
            !j["ocr"]["lines"].as_array().unwrap().is_empty(),
            "{file}: {j}"
        );
        let line = &j["ocr"]["lines"][0];
        assert!(
            line["confidence"].as_f64().unwrap() > 0.0 && line["bbox"][2].as_u64().unwrap() > 0
        );
    }
    // The dark-mode dialog was inverted before OCR, and its error code is evidence.
    let j = shot(&app, "update_failed_000.png", "image/png").await;
    assert_eq!(j["ocr"]["preprocessing"]["inverted"], true, "{j}");
    let codes = j["evidence"]["error_codes"].as_array().unwrap();
    assert!(
        codes
            .iter()
            .any(|c| c["text"].as_str().unwrap().contains("0x80070002")),
        "{j}"
    );
    for (file, ctype) in [
        ("negative_000.png", "image/png"),
        ("negative_003.jpg", "image/jpeg"),
    ] {
        let j = shot(&app, file, ctype).await;
        assert!(j["fault"].is_null(), "{file}: {j}");
        assert_eq!(j["route_hint"], "agent", "{file}");
        assert!(j["solution"].is_null());
    }
    // A photo of pure noise: read with Tesseract's one-block layout this took 15-30 s of LSTM
    // on hundreds of garbage "lines" (and timed out); with the auto layout it is quick and empty.
    let mut x: u32 = 12345;
    let noise = image::GrayImage::from_fn(1600, 1200, |_, _| {
        x = x.wrapping_mul(1664525).wrapping_add(1013904223);
        image::Luma([(x >> 24) as u8])
    });
    let mut png = Vec::new();
    noise
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let j = send(&app, "noise", "image/png", png).await;
    assert!(j["fault"].is_null(), "noise: {j}");
    assert_eq!(j["route_hint"], "agent");
    assert_eq!(j["ocr"]["layout"], "auto");
}

/// An English-writing customer's screenshot is read with `eng` alone; a Chinese screen read
/// unsure that way is read again with `eng+chi_sim`, and its fault is still found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn english_customers_screens_are_read_with_english_first() {
    let Some(app) = real_app() else { return };
    for (uri, file, ctype, want, tesseract) in [
        (
            "/v1/screenshot?language=en",
            "payment_failed_001.jpg",
            "image/jpeg",
            "payment_failed",
            "eng",
        ),
        (
            "/v1/screenshot?text=my%20card%20payment%20did%20not%20go%20through",
            "payment_failed_001.jpg",
            "image/jpeg",
            "payment_failed",
            "eng",
        ),
        (
            "/v1/screenshot?language=en",
            "account_locked_001.png",
            "image/png",
            "account_locked",
            "eng+chi_sim",
        ),
        (
            "/v1/screenshot",
            "payment_failed_001.jpg",
            "image/jpeg",
            "payment_failed",
            "eng+chi_sim",
        ),
    ] {
        let j = shot_to(&app, uri, file, ctype).await;
        assert_eq!(j["fault"]["id"], want, "{uri} {file}: {j}");
        assert_eq!(j["ocr"]["tesseract"], tesseract, "{uri} {file}: {j}");
        let c = j["ocr"]["confidence"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&c), "{j}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screenshot_attached_to_a_message_routes_it() {
    use base64::Engine;
    let Some(app) = real_app() else { return };
    let path = format!(
        "{}/tests/fixtures/screenshots/account_locked_001.png",
        env!("CARGO_MANIFEST_DIR")
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap());
    let body = serde_json::json!({"conversation_id": "shot-1", "text": "我登录不了了，看截图", "screenshot": b64});
    let (s, j) = common::post_json(&app, "/v1/triage", body).await;
    assert_eq!(s.as_u16(), 200, "{j}");
    assert_eq!(j["screenshot"]["fault"]["id"], "account_locked", "{j}");
    assert_eq!(j["route"]["target"], "agent", "{j}");
    let codes: Vec<&str> = j["route"]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["code"].as_str())
        .collect();
    assert!(codes.contains(&"screenshot.fault"), "{codes:?}");
    let (_, c) = common::request(&app, "GET", "/v1/conversations/shot-1", String::new()).await;
    assert_eq!(
        c["turns"][0]["signals"]["screenshot"]["fault"], "account_locked",
        "{c}"
    );
    for (shot, field) in [
        ("%%%not base64", "screenshot"),
        ("aGVsbG8gd29ybGQ=", "screenshot"),
    ] {
        let body =
            serde_json::json!({"conversation_id": "shot-2", "text": "see", "screenshot": shot});
        let (s, j) = common::post_json(&app, "/v1/triage", body).await;
        assert!((400..500).contains(&s.as_u16()), "{j}");
        assert_eq!(j["field"], field, "{j}");
    }
}
