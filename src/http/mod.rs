//! HTTP layer: shared state, the router, request metrics and the JSON fallbacks.

pub mod admission;
pub mod assist;
pub mod auth;
pub mod batch;
pub mod conversations;
pub mod deadline;
pub mod embed;
pub mod error;
pub mod events;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod intents;
pub mod json;
pub mod kb;
pub mod meta;
pub mod openapi;
pub mod qa;
pub mod screenshot;
pub mod signals;
pub mod summarize;
pub mod translate;
pub mod triage;

use crate::error::AppError;
use crate::keys::Scope;
use crate::metrics::LATENCY_BUCKETS;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use std::sync::Arc;
use std::time::Instant;

pub use crate::engine::Slot;
pub use crate::state::AppState;

/// The whole HTTP API over `state`; tests drive it without a socket.
///
/// Routes live in sub-routers by the scope they need: `probes` are open; `inference` and
/// `admin` each carry their scope's auth layer, then admission, then the body deadline
/// (track -> auth -> admission -> deadline -> handler). A route is in exactly one of them, so
/// its scope is where it is declared. Unmatched paths and methods need a valid key too (401
/// before 404), so that routes cannot be probed without one.
pub fn router(state: Arc<AppState>) -> Router {
    let c = &state.config;
    let limit = c.limits.max_body_bytes;
    // Room for the multipart framing and the text fields around the largest image.
    let shot_limit = c.screenshot.max_bytes + (1 << 20);
    let import_limit = c.kb.max_import_bytes;
    let body = (c.limits.body_timeout_secs, "limits.body_timeout_secs");
    let upload = (c.batch.upload_timeout_secs, "batch.upload_timeout_secs");
    let gate = Arc::new(admission::Gate::new(&c.limits));
    let guard = Arc::new(auth::Guard::new(&c.auth, &c.limits));
    // Layers run outside in: the last one added runs first.
    let scoped = |r: Router<Arc<AppState>>, scope: Scope, deadline: (u64, &'static str)| {
        r.layer(middleware::from_fn_with_state(deadline, deadline::apply))
            .layer(middleware::from_fn_with_state(
                gate.clone(),
                admission::admit,
            ))
            .layer(middleware::from_fn_with_state(
                (guard.clone(), scope),
                auth::require,
            ))
    };
    let metrics = Router::new().route("/metrics", get(meta::metrics));
    let metrics = if c.auth.metrics_public {
        metrics
    } else {
        metrics.layer(middleware::from_fn_with_state(
            (guard.clone(), Scope::Inference),
            auth::require,
        ))
    };
    let probes = Router::new()
        .route("/health", get(meta::health))
        .route("/openapi.json", get(openapi::json))
        .route("/docs", get(openapi::docs))
        .route("/ready", get(meta::ready))
        .merge(metrics);
    let inference = Router::new()
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
        .route("/v1/conversations/{id}/assist", get(assist::assist))
        .route("/v1/qa/conversations/{id}", get(qa::conversation))
        .route("/v1/qa/report", get(qa::report))
        .route("/v1/qa/agents/{agent_id}", get(qa::agent))
        .route("/qa", get(qa::page))
        .route(
            "/v1/conversations/{id}/assist/feedback",
            post(assist::feedback),
        )
        .route("/v1/events", get(events::all))
        .route("/console", get(console))
        .route(
            "/v1/screenshot",
            post(screenshot::screenshot).layer(DefaultBodyLimit::max(shot_limit)),
        )
        .route("/v1/faults", get(screenshot::faults))
        .route("/v1/intents", get(intents::list))
        .route("/v1/intents/{name}", get(intents::get_one))
        .route("/v1/kb", get(kb::list))
        .route("/v1/kb/articles/{id}", get(kb::get_article))
        .route("/v1/kb/search", post(kb::search))
        .route("/v1/answer", post(kb::answer))
        .layer(DefaultBodyLimit::max(limit));
    let admin = Router::new()
        .route("/v1/faults/reload", post(screenshot::reload))
        .route(
            "/v1/intents/discover",
            post(intents::discover).delete(intents::purge),
        )
        .route("/v1/intents/discover/{id}/accept", post(intents::accept))
        .route(
            "/v1/intents/{name}",
            put(intents::put).delete(intents::delete),
        )
        .route(
            "/v1/kb/articles/{id}",
            put(kb::put_article).delete(kb::delete_article),
        )
        .route(
            "/v1/kb/import",
            post(kb::import).layer(DefaultBodyLimit::max(import_limit)),
        )
        .layer(DefaultBodyLimit::max(limit));
    let (g404, g405) = (guard.clone(), guard.clone());
    Router::new()
        .merge(probes)
        .merge(scoped(inference, Scope::Inference, body))
        .merge(scoped(admin, Scope::Admin, body))
        .merge(scoped(batch::routes(), Scope::Admin, upload))
        .fallback(move |h: HeaderMap| async move {
            g404.check(None, &h)
                .err()
                .unwrap_or_else(|| AppError::not_found("path", "no such endpoint"))
        })
        .method_not_allowed_fallback(move |h: HeaderMap| async move {
            g405.check(None, &h).err().unwrap_or(AppError::Invalid {
                kind: crate::error::InvalidKind::NotAllowed,
                field: "method".into(),
                message: "method not allowed on this endpoint".into(),
            })
        })
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// The agent console demo page (plain HTML/JS).
#[utoipa::path(get, path = "/console", tag = "meta", security(("bearer" = [])),
    responses((status = 200, description = "The agent console page", content_type = "text/html", body = String),
        openapi::Guarded))]
async fn console() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("console.html"))
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
        1,
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
