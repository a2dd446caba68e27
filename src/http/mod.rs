//! HTTP layer: shared state, the router, request metrics and the JSON fallbacks.

pub mod admission;
pub mod auth;
pub mod batch;
pub mod conversations;
pub mod deadline;
pub mod embed;
pub mod events;
pub mod intents;
pub mod json;
pub mod meta;
pub mod screenshot;
pub mod signals;
pub mod summarize;
pub mod translate;
pub mod triage;

use crate::config::Config;
use crate::engine::EmbedModel;
use crate::error::{AppError, AppResult};
use crate::heads::registry::HeadRegistry;
use crate::metrics::{Metrics, LATENCY_BUCKETS};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Load state of a configured model.
#[derive(Clone)]
pub enum Slot {
    Loading,
    Ready(Arc<EmbedModel>),
    Failed(String),
}

/// Everything handlers share.
pub struct AppState {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub heads: Arc<HeadRegistry>,
    pub lang: Arc<crate::lang::LangId>,
    /// Few-shot intents and unmatched texts (persisted once `intents.load` has run).
    pub intents: crate::intents::Intents,
    slots: RwLock<BTreeMap<String, Slot>>,
    /// The conversation store, once opened (`serve` opens it before listening).
    store: std::sync::OnceLock<Arc<crate::store::Store>>,
    /// The newest live event's sequence number: SSE streams wake when it moves.
    pub events: tokio::sync::watch::Sender<i64>,
    /// Open SSE streams (bounded by `store.max_subscribers`).
    pub subscribers: Arc<std::sync::atomic::AtomicUsize>,
    /// OCR and the fault catalog, once started (`serve` starts them).
    vision: std::sync::OnceLock<Arc<crate::vision::Vision>>,
    /// Wakes the webhook worker when a delivery is queued.
    pub webhook_wake: tokio::sync::Notify,
    /// Translation and abstractive-summarization models (loaded on first use).
    pub seq2seq: Arc<crate::translate::Seq2SeqModels>,
    /// Turns true when graceful shutdown begins: SSE streams end, background workers stop.
    pub shutdown: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    /// A state in which every configured model is still loading.
    pub fn new(config: Config, metrics: Arc<Metrics>, heads: HeadRegistry) -> Arc<Self> {
        let slots = config
            .models
            .iter()
            .map(|m| (m.name.clone(), Slot::Loading))
            .collect();
        let device =
            crate::engine::device::open(config.server.device).map_err(|e| format!("{e:#}"));
        let seq2seq = Arc::new(crate::translate::Seq2SeqModels::new(
            config.home(),
            device,
            config.limits.retry_after_secs,
        ));
        Arc::new(AppState {
            seq2seq,
            intents: crate::intents::Intents::new(&config.fewshot, &config.discovery),
            config: Arc::new(config),
            metrics,
            heads: Arc::new(heads),
            lang: Arc::new(crate::lang::LangId::default()),
            slots: RwLock::new(slots),
            store: std::sync::OnceLock::new(),
            vision: std::sync::OnceLock::new(),
            events: tokio::sync::watch::channel(0).0,
            subscribers: Arc::default(),
            webhook_wake: tokio::sync::Notify::new(),
            shutdown: tokio::sync::watch::channel(false).0,
        })
    }

    /// Attach the conversation store (once); live streams start after its newest event.
    pub fn set_store(&self, store: Arc<crate::store::Store>) -> anyhow::Result<()> {
        let last = store.last_event_seq().map_err(|e| anyhow::anyhow!("{e}"))?;
        self.events.send_replace(last);
        self.store
            .set(store)
            .map_err(|_| anyhow::anyhow!("the store is already open"))
    }

    /// True once graceful shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Resolves when graceful shutdown begins (at once if it has).
    pub async fn stopping(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Attach the screenshot service (once).
    pub fn set_vision(&self, v: Arc<crate::vision::Vision>) {
        let _ = self.vision.set(v);
    }

    /// The screenshot service, or 503.
    pub fn vision(&self) -> AppResult<Arc<crate::vision::Vision>> {
        self.vision
            .get()
            .cloned()
            .ok_or_else(|| AppError::Unavailable {
                message: "screenshot recognition is not started".into(),
            })
    }

    /// The conversation store, or 503 when this server runs without one.
    pub fn store(&self) -> AppResult<Arc<crate::store::Store>> {
        self.store
            .get()
            .cloned()
            .ok_or_else(|| AppError::Unavailable {
                message: "the conversation store is not open".into(),
            })
    }

    pub fn set_slot(&self, name: &str, slot: Slot) {
        let mut g = self.slots.write().unwrap_or_else(|p| p.into_inner());
        g.insert(name.to_string(), slot);
    }

    pub fn slots(&self) -> BTreeMap<String, Slot> {
        self.slots.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The named model (or the default), ready to serve.
    pub fn model(&self, name: Option<&str>) -> AppResult<Arc<EmbedModel>> {
        let name = name.unwrap_or(&self.config.default_model);
        let slots = self.slots.read().unwrap_or_else(|p| p.into_inner());
        match slots.get(name) {
            Some(Slot::Ready(m)) => Ok(m.clone()),
            Some(Slot::Loading) => Err(AppError::Unavailable {
                message: format!("model `{name}` is still loading: see GET /ready"),
            }),
            Some(Slot::Failed(e)) => Err(AppError::Unavailable {
                message: format!("model `{name}` failed to load: {e}"),
            }),
            None => Err(AppError::not_found(
                "model",
                format!(
                    "unknown model `{}`; available: {}",
                    name.chars().take(100).collect::<String>(),
                    slots.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
}

/// The whole HTTP API over `state`; tests drive it without a socket.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.limits.max_body_bytes;
    // Room for the multipart framing and the text fields around the largest image.
    let shot_limit = state.config.screenshot.max_bytes + (1 << 20);
    let body_secs = state.config.limits.body_timeout_secs;
    let upload_secs = state.config.batch.upload_timeout_secs;
    let gate = Arc::new(admission::Gate::new(&state.config.limits));
    let guard = Arc::new(auth::Guard::new(&state.config.auth, &state.config.limits));
    Router::new()
        .route("/health", get(meta::health))
        .route("/ready", get(meta::ready))
        .route("/metrics", get(meta::metrics))
        .route("/v1/models", get(meta::models))
        .route("/v1/embed", post(embed::embed))
        .route("/v1/intent", post(signals::intent))
        .route("/v1/emotion", post(signals::emotion))
        .route("/v1/language", post(signals::language))
        .route("/v1/triage", post(triage::triage))
        .route("/v1/translate", post(translate::translate))
        .route("/v1/summarize", post(summarize::summarize))
        .route("/v1/queues", get(conversations::queues))
        .route("/v1/conversations", get(conversations::list))
        .route("/v1/conversations/{id}", get(conversations::get_one))
        .route(
            "/v1/conversations/{id}/resolve",
            post(conversations::resolve),
        )
        .route(
            "/v1/conversations/{id}/messages",
            post(conversations::reply),
        )
        .route(
            "/v1/conversations/{id}/handoff",
            get(conversations::handoff),
        )
        .route("/v1/conversations/{id}/events", get(events::conversation))
        .route("/v1/events", get(events::all))
        .route("/console", get(console))
        .route(
            "/v1/screenshot",
            post(screenshot::screenshot).layer(DefaultBodyLimit::max(shot_limit)),
        )
        .route("/v1/faults", get(screenshot::faults))
        .route("/v1/faults/reload", post(screenshot::reload))
        .route("/v1/intents", get(intents::list))
        .route(
            "/v1/intents/discover",
            post(intents::discover).delete(intents::purge),
        )
        .route("/v1/intents/discover/{id}/accept", post(intents::accept))
        .route(
            "/v1/intents/{name}",
            put(intents::put)
                .get(intents::get_one)
                .delete(intents::delete),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            (body_secs, "limits.body_timeout_secs"),
            deadline::apply,
        ))
        .merge(batch::routes().layer(middleware::from_fn_with_state(
            (upload_secs, "batch.upload_timeout_secs"),
            deadline::apply,
        )))
        .layer(middleware::from_fn_with_state(gate, admission::admit))
        .layer(middleware::from_fn_with_state(guard, auth::require))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// The agent console demo page (plain HTML/JS).
async fn console() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("console.html"))
}

async fn not_found() -> AppError {
    AppError::not_found("path", "no such endpoint")
}

async fn method_not_allowed() -> AppError {
    AppError::Invalid {
        status: axum::http::StatusCode::METHOD_NOT_ALLOWED,
        field: "method".into(),
        message: "method not allowed on this endpoint".into(),
    }
}

/// Count every request and time it, by route template (never by raw path).
async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let m = &state.metrics;
    m.inc(
        "triage_http_requests_total",
        "HTTP requests by route, method and status.",
        &[("route", &route), ("method", &method), ("status", &status)],
        1.0,
    );
    m.observe(
        "triage_http_request_seconds",
        "HTTP request latency by route.",
        LATENCY_BUCKETS,
        &[("route", &route)],
        started.elapsed().as_secs_f64(),
    );
    resp
}
