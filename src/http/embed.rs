//! `POST /v1/embed`: texts in, unit-length sentence embeddings out.

use super::json::JsonBody;
use super::AppState;
use crate::config::LimitsConfig;
use crate::engine::EmbedModel;
use crate::error::{AppError, AppResult};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedRequest {
    pub texts: Vec<String>,
    #[serde(default)]
    pub model: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EmbedResponse {
    pub model: String,
    pub dim: usize,
    pub embeddings: Vec<Vec<f32>>,
    pub usage: Usage,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens fed to the model, special tokens included.
    pub tokens: usize,
    /// Indices of texts cut to the model's token limit.
    pub truncated: Vec<usize>,
}

/// Check the texts of a request against the configured limits; `field` names the list.
pub fn check_texts(texts: &[String], state: &AppState, field: &str) -> AppResult<()> {
    check_texts_within(texts, &state.config.limits, field)
}

/// [`check_texts`] against explicit limits (a pure function: the fuzz targets call it).
pub fn check_texts_within(texts: &[String], l: &LimitsConfig, field: &str) -> AppResult<()> {
    if texts.is_empty() {
        return Err(AppError::invalid(field, "must hold at least one text"));
    }
    if texts.len() > l.max_texts {
        return Err(AppError::too_large(
            field,
            format!(
                "{} texts, over the limit of {} (limits.max_texts)",
                texts.len(),
                l.max_texts
            ),
        ));
    }
    for (i, t) in texts.iter().enumerate() {
        check_text_within(t, l, &format!("{field}[{i}]"))?;
    }
    Ok(())
}

/// Check one text: not blank, not over `limits.max_text_chars`.
pub fn check_text(t: &str, state: &AppState, field: &str) -> AppResult<()> {
    check_text_within(t, &state.config.limits, field)
}

/// [`check_text`] against explicit limits (a pure function: the fuzz targets call it).
pub fn check_text_within(t: &str, l: &LimitsConfig, field: &str) -> AppResult<()> {
    if t.trim().is_empty() {
        return Err(AppError::invalid(field, "text is empty"));
    }
    let n = t.chars().count();
    let max = l.max_text_chars;
    if n > max {
        return Err(AppError::too_large(
            field,
            format!("text has {n} characters, over the limit of {max} (limits.max_text_chars)"),
        ));
    }
    Ok(())
}

/// One encoder pass over `texts` (already checked) with the named model (None: the default):
/// the embeddings every head reads, and what the pass cost.
pub async fn encode(
    state: &AppState,
    model: Option<&str>,
    texts: Vec<String>,
) -> AppResult<(Arc<EmbedModel>, Vec<Vec<f32>>, Usage)> {
    let (m, e, u) = encode_for(state, model, texts, &[None]).await?;
    Ok((m, e.into_iter().map(|mut v| v.remove(0)).collect(), u))
}

/// One trunk pass over `texts`, then per text one embedding for each head in `branches` (the
/// key of a head's fine-tuned top layers, or None for the plain encoder), in that order.
pub async fn encode_for(
    state: &AppState,
    model: Option<&str>,
    texts: Vec<String>,
    branches: &[Option<&str>],
) -> AppResult<(Arc<EmbedModel>, Vec<Vec<Vec<f32>>>, Usage)> {
    let model = state.model(model)?;
    let branches = branches
        .iter()
        .map(|k| model.branch(*k))
        .collect::<AppResult<Vec<_>>>()?;
    let prepared = model
        .prepare(texts, state.config.limits.overlong, "texts")
        .await?;
    let usage = Usage {
        tokens: prepared.iter().map(|p| p.ids.len()).sum(),
        truncated: prepared
            .iter()
            .enumerate()
            .filter(|(_, p)| p.truncated())
            .map(|(i, _)| i)
            .collect(),
    };
    let embeddings = model
        .embed_branches(prepared.into_iter().map(|p| p.ids).collect(), branches)
        .await?;
    Ok((model, embeddings, usage))
}

pub async fn embed(
    State(state): State<Arc<AppState>>,
    JsonBody(req): JsonBody<EmbedRequest>,
) -> AppResult<Json<EmbedResponse>> {
    check_texts(&req.texts, &state, "texts")?;
    let (model, embeddings, usage) = encode(&state, req.model.as_deref(), req.texts).await?;
    Ok(Json(EmbedResponse {
        model: model.info.name.clone(),
        dim: model.info.dim,
        embeddings,
        usage,
    }))
}
