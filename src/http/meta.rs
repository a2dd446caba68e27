//! `/health`, `/ready`, `/metrics` and `/v1/models`.

use super::openapi::Guarded;
use super::{AppState, Slot};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The answer of `GET /health`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`: the process answers.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: 200 while the process answers.
#[utoipa::path(get, path = "/health", tag = "meta", security(()),
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The answer of `GET /ready`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// Every configured model is loaded.
    pub ready: bool,
    /// Each model's state: `ready`, `loading` or `failed: <why>`.
    pub models: BTreeMap<String, String>,
    /// With `store.backend = "postgres"`: `up` or `down` (then not ready). Absent with SQLite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
    /// `seeding` while the shipped articles are loaded into the default knowledge base (then
    /// not ready), else `ready`. Absent without a store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knowledge_base: Option<&'static str>,
}

/// 200 once every configured model is loaded; 503 with each model's state before that.
#[utoipa::path(get, path = "/ready", tag = "meta", security(()),
    responses(
        (status = 200, description = "Every model is loaded", body = Ready),
        (status = 503, description = "A model is loading or failed", body = Ready),
    ))]
pub async fn ready(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let slots = state.slots();
    let mut all = true;
    let models = slots
        .iter()
        .map(|(name, s)| {
            let v = match s {
                Slot::Ready(_) => "ready".to_string(),
                Slot::Loading => {
                    all = false;
                    "loading".to_string()
                }
                Slot::Failed(e) => {
                    all = false;
                    format!("failed: {e}")
                }
            };
            (name.clone(), v)
        })
        .collect();
    let mut database = None;
    // A shared database is reported (and must answer); an embedded SQLite file always does.
    if let Ok(store) = state.store() {
        if store.kind() == crate::store::BackendKind::Postgres {
            let ping = tokio::task::spawn_blocking(move || store.ping());
            let up = matches!(
                tokio::time::timeout(std::time::Duration::from_secs(3), ping).await,
                Ok(Ok(true))
            );
            all &= up;
            database = Some(if up { "up" } else { "down" });
        }
    }
    let knowledge_base = state.kb().ok().map(|k| {
        if k.seeding() {
            all = false;
            "seeding"
        } else {
            "ready"
        }
    });
    let code = if all {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(Ready {
            ready: all,
            models,
            database,
            knowledge_base,
        }),
    )
}

/// Prometheus text format (open when `auth.metrics_public`, else scope `inference`).
#[utoipa::path(get, path = "/metrics", tag = "meta", security(("bearer" = []), ()),
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String),
        Guarded,
    ))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// The answer of `GET /v1/models` (documentation only: `models` builds it as JSON).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ModelList {
    pub models: Vec<ModelEntry>,
}

/// One configured model: a loaded model's `ModelInfo` fields with `status` `ready` and
/// `default`; `{name, status: "loading"}` while it loads; `{name, status: "failed", error}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ModelEntry {
    pub name: String,
    /// `ready`, `loading` or `failed`.
    pub status: String,
    /// The default model (`default_model`); loaded models only.
    pub default: Option<bool>,
    /// Why it failed to load; failed models only.
    pub error: Option<String>,
    pub task: Option<String>,
    pub source: Option<String>,
    pub dim: Option<usize>,
    pub device: Option<String>,
    pub dtype: Option<String>,
    pub max_length: Option<usize>,
    pub prefix: Option<String>,
}

/// The configured encoder models and their state.
#[utoipa::path(get, path = "/v1/models", tag = "meta", security(("bearer" = [])),
    responses((status = 200, description = "Every configured model", body = ModelList), Guarded))]
pub async fn models(State(state): State<Arc<AppState>>) -> Json<Value> {
    let list: Vec<Value> = state
        .slots()
        .into_iter()
        .map(|(name, s)| match s {
            Slot::Ready(m) => {
                let mut v = json!(m.info);
                v["status"] = json!("ready");
                v["default"] = json!(name == state.config.default_model);
                v
            }
            Slot::Loading => json!({ "name": name, "status": "loading" }),
            Slot::Failed(e) => json!({ "name": name, "status": "failed", "error": e }),
        })
        .collect();
    Json(json!({ "models": list }))
}
