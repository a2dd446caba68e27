//! `/v1/screenshot` bad input through `app()` (no model needed: every case is refused before
//! OCR): fake and truncated images, decompression bombs, 0x0, animated GIFs, huge uploads,
//! wrong content types and multipart fields; and catalog reload keeping the old catalog when
//! the new file is malformed.

mod common;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use std::io::Cursor;
use std::sync::Arc;
use tower::ServiceExt;
use triage::config::Config;

fn app(cfg: Config) -> axum::Router {
    let metrics = Arc::new(triage::metrics::Metrics::default());
    let heads = triage::heads::registry::HeadRegistry::load(&cfg.intent, &cfg.emotion, &cfg.models)
        .unwrap();
    let vision = triage::state::Open {
        store: false,
        vision: true,
    };
    let state = triage::AppState::open(cfg, metrics, heads, vision).unwrap();
    triage::app(state)
}

async fn send(app: &axum::Router, ctype: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let req = Request::post("/v1/screenshot")
        .header("content-type", ctype)
        .body(Body::from(body))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let s = resp.status().as_u16();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    (
        s,
        serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
    )
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::GrayImage::from_pixel(w, h, image::Luma([200]));
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &x in data {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A valid small PNG whose header claims `w`x`h`.
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut b = png(2, 2);
    b[16..20].copy_from_slice(&w.to_be_bytes());
    b[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&b[12..29]);
    b[29..33].copy_from_slice(&crc.to_be_bytes());
    b
}

fn animated_gif() -> Vec<u8> {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, RgbaImage};
    let mut out = Vec::new();
    {
        let mut e = GifEncoder::new(&mut out);
        for _ in 0..3 {
            let f = Frame::from_parts(
                RgbaImage::new(16, 16),
                0,
                0,
                Delay::from_numer_denom_ms(80, 1),
            );
            e.encode_frame(f).unwrap();
        }
    }
    out
}

fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let b = "XtriageBoundary42";
    let mut body = Vec::new();
    for (name, data) in parts {
        body.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"x.png\"\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

#[tokio::test]
async fn bad_screenshots_get_named_4xx() {
    let app = app(Config::default());
    let p = png(64, 48);
    // (case, content type, body, status, field, words in the error)
    type Case = (
        &'static str,
        String,
        Vec<u8>,
        u16,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "text named .png",
            "image/png".into(),
            b"just some text, named shot.png".to_vec(),
            415,
            "image",
            "by its content",
        ),
        (
            "truncated PNG",
            "image/png".into(),
            p[..p.len() - 16].to_vec(),
            422,
            "image",
            "truncated",
        ),
        (
            "20000x20000 PNG bomb",
            "image/png".into(),
            png_claiming(20_000, 20_000),
            413,
            "image",
            "screenshot.max_width",
        ),
        (
            "7000x7000 pixels",
            "image/png".into(),
            png_claiming(7000, 7000),
            413,
            "image",
            "screenshot.max_pixels",
        ),
        (
            "0x0 image",
            "image/png".into(),
            png_claiming(0, 0),
            422,
            "image",
            "dimensions",
        ),
        (
            "animated GIF",
            "image/gif".into(),
            animated_gif(),
            422,
            "image",
            "animated",
        ),
        (
            "empty body",
            "image/png".into(),
            Vec::new(),
            422,
            "image",
            "empty",
        ),
        (
            "50 MB upload",
            "image/png".into(),
            vec![0u8; 50 << 20],
            413,
            "image",
            "screenshot.max_bytes",
        ),
        (
            "JSON body",
            "application/json".into(),
            b"{}".to_vec(),
            415,
            "content-type",
            "multipart",
        ),
    ];
    for (name, ctype, body, status, field, needle) in cases {
        let (s, j) = send(&app, &ctype, body).await;
        assert_eq!(s, status, "{name}: {j}");
        assert_eq!(j["field"], field, "{name}: {j}");
        assert!(
            j["error"].as_str().unwrap_or("").contains(needle),
            "{name}: {j}"
        );
    }
    let (ct, body) = multipart(&[("text", b"my payment failed")]);
    let (s, j) = send(&app, &ct, body).await;
    assert_eq!((s, j["field"].as_str()), (422, Some("image")), "{j}");
    let (ct, body) = multipart(&[("image", &p), ("colour", b"red")]);
    let (s, j) = send(&app, &ct, body).await;
    assert_eq!((s, j["field"].as_str()), (400, Some("colour")), "{j}");
    let (ct, body) = multipart(&[("image", &vec![7u8; 50 << 20])]);
    let (s, j) = send(&app, &ct, body).await;
    assert_eq!((s, j["field"].as_str()), (413, Some("image")), "{j}");
    // A GIF signature over garbage: its "header" claims absurd dimensions.
    let (ct, body) = multipart(&[("image", b"GIF89a-but-not-really")]);
    let (s, j) = send(&app, &ct, body).await;
    assert!((400..500).contains(&s) && j["field"] == "image", "{j}");
    let (ct, body) = multipart(&[("image", &p), ("language", b"not a code!")]);
    let (s, j) = send(&app, &ct, body).await;
    assert_eq!((s, j["field"].as_str()), (422, Some("language")), "{j}");
}

#[tokio::test]
async fn catalog_reloads_without_restart_and_keeps_the_old_one_on_error() {
    let dir = std::env::temp_dir().join(format!("triage-catalog-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("faults.toml");
    std::fs::write(&path, triage::vision::catalog::BUILTIN).unwrap();
    let mut cfg = Config::default();
    cfg.screenshot.catalog = Some(path.clone());
    let app = app(cfg);
    let (s, j) = common::request(&app, "GET", "/v1/faults", String::new()).await;
    assert_eq!(s, StatusCode::OK);
    let n = j["faults"].as_array().unwrap().len();
    assert!(n >= 12, "{j}");
    let extra = "\n[[faults]]\nid = \"printer_jam\"\ntitle_en = \"Printer jam\"\ntitle_zh = \"卡纸\"\nexamples = [\"Paper jam in tray 2\"]\nsolution_en = \"Open tray 2.\"\nsolution_zh = \"打开纸盒2。\"\nroute_hint = \"bot\"\n";
    std::fs::write(
        &path,
        format!("{}{extra}", triage::vision::catalog::BUILTIN),
    )
    .unwrap();
    let (s, j) = common::request(&app, "POST", "/v1/faults/reload", String::new()).await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(j["faults"].as_array().unwrap().len(), n + 1);
    std::fs::write(&path, "[[faults]]\nid = \"broken\"\ncodes = ['(']\n").unwrap();
    let (s, j) = common::request(&app, "POST", "/v1/faults/reload", String::new()).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{j}");
    assert_eq!(j["field"], "catalog");
    let (_, j) = common::request(&app, "GET", "/v1/faults", String::new()).await;
    assert_eq!(
        j["faults"].as_array().unwrap().len(),
        n + 1,
        "the old catalog stays"
    );
    let _ = std::fs::remove_dir_all(dir);
}
