//! A local webhook receiver for the tests: records every delivery and answers by mode.

use axum::http::StatusCode;
use serde_json::Value;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

pub const SECRET: &str = "test-secret";
/// Refuse (503) each key's first delivery, take the next.
pub const REFUSE_FIRST: u8 = 0;
/// Refuse everything.
pub const REFUSE_ALL: u8 = 1;
/// Take everything.
pub const ACCEPT: u8 = 2;

/// One delivery: idempotency key, signature valid, body, status answered.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub key: String,
    pub signed: bool,
    pub body: Value,
    pub status: u16,
}

#[derive(Clone, Default)]
pub struct Receiver {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Delivery>>>,
    pub mode: Arc<AtomicU8>,
}

impl Receiver {
    /// Start on a loopback port (inside a tokio runtime).
    pub async fn start(mode: u8) -> Receiver {
        let r = Receiver {
            mode: Arc::new(AtomicU8::new(mode)),
            ..Receiver::default()
        };
        let (seen, m) = (r.seen.clone(), r.mode.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let (seen, m) = (seen.clone(), m.clone());
                async move {
                    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
                    let key = h("idempotency-key").to_string();
                    let signed =
                        triage::webhook::sign::verify(SECRET, h("x-triage-signature"), &body);
                    let mut g = seen.lock().unwrap();
                    let status = match m.load(Ordering::SeqCst) {
                        REFUSE_FIRST if !g.iter().any(|d| d.key == key) => 503,
                        REFUSE_ALL => 503,
                        _ => 200,
                    };
                    let body = serde_json::from_str(&body).unwrap_or(Value::Null);
                    g.push(Delivery {
                        key,
                        signed,
                        body,
                        status,
                    });
                    StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await });
        Receiver { url, ..r }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.seen.lock().unwrap().clone()
    }

    /// How many times each key was taken (answered 200).
    pub fn taken(&self) -> std::collections::HashMap<String, usize> {
        let mut m = std::collections::HashMap::new();
        for d in self.deliveries().into_iter().filter(|d| d.status == 200) {
            *m.entry(d.key).or_default() += 1;
        }
        m
    }
}
