//! `POST /v1/embed`: texts in, unit-length sentence embeddings out.

use super::json::JsonBody;
use super::AppState;
use crate::config::LimitsConfig;
use crate::error::{AppError, AppResult};
use crate::http::admission::Admitted;
use crate::http::openapi::{BadInput, Guarded};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedRequest {
    pub texts: Vec<String>,
    #[serde(default)]
    pub model: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmbedResponse {
    pub model: String,
    pub dim: usize,
    pub embeddings: Vec<Vec<f32>>,
    pub usage: Usage,
}

pub use crate::engine::Usage;

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

#[utoipa::path(
    post, path = "/v1/embed", tag = "signals", security(("bearer" = [])),
    request_body = EmbedRequest,
    responses((status = 200, description = "Unit-length embeddings, in the order of the texts", body = EmbedResponse), BadInput, Guarded)
)]
pub async fn embed(
    State(state): State<Arc<AppState>>,
    Admitted(admitted): Admitted,
    JsonBody(req): JsonBody<EmbedRequest>,
) -> AppResult<Json<EmbedResponse>> {
    check_texts(&req.texts, &state, "texts")?;
    let (model, embeddings, usage) = state
        .models
        .encode(req.model.as_deref(), req.texts, admitted)
        .await?;
    Ok(Json(EmbedResponse {
        model: model.info.name.clone(),
        dim: model.info.dim,
        embeddings,
        usage,
    }))
}
