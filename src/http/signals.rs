//! `POST /v1/intent` and `POST /v1/emotion`: trained heads over one shared encoder pass.

use super::embed::{check_texts, encode_for};
use super::json::JsonBody;
use super::AppState;
use crate::error::{AppError, AppResult};
use crate::heads::predict::IntentPrediction;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentRequest {
    pub texts: Vec<String>,
    #[serde(default)]
    pub intent_set: Option<String>,
    #[serde(default)]
    pub top_k: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct IntentResponse {
    pub intent_set: String,
    pub results: Vec<IntentPrediction>,
}

pub async fn intent(
    State(state): State<Arc<AppState>>,
    JsonBody(req): JsonBody<IntentRequest>,
) -> AppResult<Json<IntentResponse>> {
    check_texts(&req.texts, &state, "texts")?;
    let name = req
        .intent_set
        .unwrap_or_else(|| state.heads.default_intent.clone());
    // The trained head and the set's few-shot intents (404 when neither exists).
    let view = crate::intents::service::set_view(&state, &name).await?;
    let n = view.label_count();
    let top_k = req.top_k.unwrap_or(n.min(3));
    if top_k == 0 || top_k > n {
        return Err(AppError::invalid(
            "top_k",
            format!("must be between 1 and {n} (the labels of `{name}`)"),
        ));
    }
    let kept = state.intents.discovery.enabled.then(|| req.texts.clone());
    // One trunk pass: plain embeddings for the few-shot intents, and the head's own when it
    // fine-tuned the encoder's top layers.
    let key = view.head.as_ref().and_then(|h| h.branch_key());
    let branches: &[Option<&str>] = if key.is_some() { &[None, key] } else { &[None] };
    let (_, e, _) = encode_for(&state, Some(&view.encoder), req.texts, branches).await?;
    let x: Vec<Vec<f32>> = e.iter().map(|v| v[0].clone()).collect();
    let hx: Vec<Vec<f32>> = e
        .into_iter()
        .map(|mut v| v.pop().unwrap_or_default())
        .collect();
    let answers = view.predict_with(&x, &hx, top_k)?;
    crate::intents::service::keep_unmatched(&state, &view, kept, &x, &answers).await;
    let results = answers.into_iter().map(|a| a.prediction).collect();
    Ok(Json(IntentResponse {
        intent_set: name,
        results,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmotionRequest {
    pub texts: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct EmotionResult {
    /// Every emotion label's probability.
    pub emotions: BTreeMap<String, f32>,
    /// Labels at or over their tuned thresholds.
    pub labels: Vec<String>,
    /// Support-oriented groups (max of their labels).
    pub groups: BTreeMap<String, f32>,
    pub top_group: String,
    pub escalate: bool,
    pub reasons: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct EmotionResponse {
    pub results: Vec<EmotionResult>,
}

pub async fn emotion(
    State(state): State<Arc<AppState>>,
    JsonBody(req): JsonBody<EmotionRequest>,
) -> AppResult<Json<EmotionResponse>> {
    check_texts(&req.texts, &state, "texts")?;
    let head = state
        .heads
        .emotion
        .clone()
        .ok_or_else(|| AppError::Unavailable {
            message: "no emotion head is configured (emotion.head)".into(),
        })?;
    let (_, x, _) = encode_for(
        &state,
        Some(&head.meta.encoder),
        req.texts,
        &[head.branch_key()],
    )
    .await?;
    let results = x
        .iter()
        .map(|v| emotion_result(&head, &v[0], &state.heads.escalation))
        .collect();
    Ok(Json(EmotionResponse { results }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageRequest {
    pub texts: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct LanguageResponse {
    pub results: Vec<crate::lang::Detection>,
}

/// `POST /v1/language`: no model needed, answered on the blocking pool.
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

/// The emotion answer of one embedding.
pub fn emotion_result(
    head: &crate::heads::head::Head,
    x: &[f32],
    cfg: &crate::heads::emotion::EscalationConfig,
) -> EmotionResult {
    let (probs, labels) = head.predict_labels(x);
    let groups = crate::heads::emotion::group_scores(&head.meta.labels, &probs);
    let (escalate, reasons) = crate::heads::emotion::escalation(&groups, cfg);
    EmotionResult {
        emotions: head.meta.labels.iter().cloned().zip(probs).collect(),
        labels,
        top_group: crate::heads::emotion::top_group(&groups),
        groups,
        escalate,
        reasons,
    }
}
