//! `/health`, `/ready`, `/metrics` and `/v1/models`.

use super::{AppState, Slot};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 once every configured model is loaded; 503 with each model's state before that.
pub async fn ready(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let slots = state.slots();
    let mut all = true;
    let models: serde_json::Map<String, Value> = slots
        .iter()
        .map(|(name, s)| {
            let v = match s {
                Slot::Ready(_) => json!("ready"),
                Slot::Loading => {
                    all = false;
                    json!("loading")
                }
                Slot::Failed(e) => {
                    all = false;
                    json!(format!("failed: {e}"))
                }
            };
            (name.clone(), v)
        })
        .collect();
    let mut body = json!({ "ready": all, "models": models });
    // A shared database is reported (and must answer); an embedded SQLite file always does.
    if let Ok(store) = state.store() {
        if store.kind() == crate::store::BackendKind::Postgres {
            let ping = tokio::task::spawn_blocking(move || store.ping());
            let up = matches!(
                tokio::time::timeout(std::time::Duration::from_secs(3), ping).await,
                Ok(Ok(true))
            );
            all &= up;
            body["ready"] = json!(all);
            body["database"] = json!(if up { "up" } else { "down" });
        }
    }
    let code = if all {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

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
