//! `POST /v1/intent`, `POST /v1/emotion` and `POST /v1/language`: checked requests handed to
//! the signal service (`pipeline::signals`).

use super::embed::check_texts;
use super::json::JsonBody;
use super::AppState;
use crate::error::{AppError, AppResult};
use crate::heads::predict::IntentPrediction;
use crate::http::admission::Admitted;
use crate::http::error::ErrorBody;
use crate::http::openapi::{BadInput, Guarded};
use crate::pipeline::signals::{self, EmotionResult};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntentRequest {
    pub texts: Vec<String>,
    #[serde(default)]
    pub intent_set: Option<String>,
    #[serde(default)]
    pub top_k: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntentResponse {
    pub intent_set: String,
    pub results: Vec<IntentPrediction>,
}

#[utoipa::path(
    post, path = "/v1/intent", tag = "signals", security(("bearer" = [])),
    request_body = IntentRequest,
    responses((status = 200, description = "One prediction per text", body = IntentResponse),
        (status = 404, description = "Unknown intent set", body = ErrorBody), BadInput, Guarded)
)]
pub async fn intent(
    State(state): State<Arc<AppState>>,
    Admitted(admitted): Admitted,
    JsonBody(req): JsonBody<IntentRequest>,
) -> AppResult<Json<IntentResponse>> {
    check_texts(&req.texts, &state, "texts")?;
    let name = req
        .intent_set
        .unwrap_or_else(|| state.heads.default_intent.clone());
    let results = signals::classify(
        state.sets(admitted),
        &state.lang,
        req.texts,
        &name,
        req.top_k,
    )
    .await?;
    Ok(Json(IntentResponse {
        intent_set: name,
        results,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmotionRequest {
    pub texts: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EmotionResponse {
    pub results: Vec<EmotionResult>,
}

#[utoipa::path(
    post, path = "/v1/emotion", tag = "signals", security(("bearer" = [])),
    request_body = EmotionRequest,
    responses((status = 200, description = "One result per text", body = EmotionResponse), BadInput, Guarded)
)]
pub async fn emotion(
    State(state): State<Arc<AppState>>,
    Admitted(admitted): Admitted,
    JsonBody(req): JsonBody<EmotionRequest>,
) -> AppResult<Json<EmotionResponse>> {
    check_texts(&req.texts, &state, "texts")?;
    let results = signals::emotions(
        &state.models,
        &state.heads,
        &state.lang,
        req.texts,
        admitted,
    )
    .await?;
    Ok(Json(EmotionResponse { results }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguageRequest {
    pub texts: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LanguageResponse {
    pub results: Vec<crate::lang::Detection>,
}

/// `POST /v1/language`: no model needed, answered on the blocking pool.
#[utoipa::path(
    post, path = "/v1/language", tag = "signals", security(("bearer" = [])),
    request_body = LanguageRequest,
    responses((status = 200, description = "One detection per text", body = LanguageResponse), BadInput, Guarded)
)]
pub async fn language(
    State(state): State<Arc<AppState>>,
    JsonBody(req): JsonBody<LanguageRequest>,
) -> AppResult<Json<LanguageResponse>> {
    check_texts(&req.texts, &state, "texts")?;
    let lang = state.lang.clone();
    let results =
        tokio::task::spawn_blocking(move || req.texts.iter().map(|t| lang.detect(t)).collect())
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("language task: {e}")))?;
    Ok(Json(LanguageResponse { results }))
}
