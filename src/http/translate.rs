//! `POST /v1/translate`: texts from a source language (or `auto`) to a target language through
//! the configured Marian models, pivoting through English when needed.

use super::embed::check_texts_within;
use super::json::JsonBody;
use super::AppState;
use crate::error::{AppError, AppResult};
use crate::http::openapi::{BadInput, Guarded};
use crate::seq2seq::GenerateOptions;
use crate::translate::models::translate_with;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TranslateRequest {
    pub texts: Vec<String>,
    #[serde(default = "auto")]
    pub source: String,
    pub target: String,
}

fn auto() -> String {
    "auto".into()
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Translated {
    pub text: String,
    /// The source language (detected when the request said `auto`).
    pub source: String,
    /// The model(s) used, in order; empty when source and target are the same.
    pub model: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TranslateResponse {
    pub results: Vec<Translated>,
}

/// `zh-CN` → `zh`; lowercase.
fn base(code: &str) -> String {
    code.trim()
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_lowercase()
}

impl TranslateRequest {
    /// The checks that run before any model (pure: the fuzz targets call it).
    pub fn check(&self, cfg: &crate::config::Config) -> AppResult<()> {
        if self.texts.is_empty() {
            return Err(AppError::invalid("texts", "give at least one text"));
        }
        if self.texts.len() > cfg.translate.max_texts {
            return Err(AppError::too_large(
                "texts",
                format!(
                    "{} texts, over the limit of {} (translate.max_texts)",
                    self.texts.len(),
                    cfg.translate.max_texts
                ),
            ));
        }
        check_texts_within(&self.texts, &cfg.limits, "texts")
    }
}

#[utoipa::path(
    post, path = "/v1/translate", tag = "generation", security(("bearer" = [])),
    request_body = TranslateRequest,
    responses((status = 200, description = "One translation per text, in order", body = TranslateResponse), BadInput, Guarded)
)]
pub async fn translate(
    State(state): State<Arc<AppState>>,
    JsonBody(req): JsonBody<TranslateRequest>,
) -> AppResult<Json<TranslateResponse>> {
    let cfg = &state.config.translate;
    req.check(&state.config)?;
    let target = base(&req.target);
    // The supported-pairs list is built only for the error.
    let unsupported = |s: &str, field: &str| {
        AppError::invalid(
            field,
            format!(
                "no model translates {s} to {target}; supported pairs: {}",
                cfg.supported().join(", ")
            ),
        )
    };
    // Source per text: given, or detected.
    let sources: Vec<String> = if req.source.trim().eq_ignore_ascii_case("auto") {
        req.texts
            .iter()
            .map(|t| base(&state.lang.detect(t).language))
            .collect()
    } else {
        vec![base(&req.source); req.texts.len()]
    };
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in sources.iter().enumerate() {
        if cfg.plan(s, &target).is_none() {
            let field = if req.source.eq_ignore_ascii_case("auto") {
                format!("texts[{i}]")
            } else {
                "source".to_string()
            };
            if s == "und" || s.is_empty() {
                return Err(AppError::invalid(
                    field,
                    "cannot tell the language of this text: give `source`",
                ));
            }
            let reachable = cfg.pairs.iter().any(|p| p.target == target);
            return Err(unsupported(s, if reachable { &field } else { "target" }));
        }
        groups.entry(s.as_str()).or_default().push(i);
    }
    let mut results: Vec<Option<Translated>> = (0..req.texts.len()).map(|_| None).collect();
    for (source, idx) in groups {
        let plan = cfg.plan(source, &target).unwrap_or_default();
        let mut texts: Vec<String> = idx.iter().map(|&i| req.texts[i].clone()).collect();
        let mut used = Vec::new();
        for pair in plan {
            let model = state.seq2seq.get(&pair.model, "translation").await?;
            // The model's own settings (generation_config.json), beams and length capped by ours.
            let mut opts = GenerateOptions {
                num_beams: cfg.num_beams,
                ..model.default_options()
            };
            opts.max_new_tokens = opts.max_new_tokens.min(cfg.max_new_tokens);
            let (batch, max_tokens) = (cfg.batch_size, cfg.max_input_tokens);
            let input = std::mem::take(&mut texts);
            texts = state
                .seq2seq
                .run(move || Ok(translate_with(&model, &input, &opts, batch, max_tokens)))
                .await?
                .map_err(|(k, e)| match k.and_then(|k| idx.get(k)) {
                    Some(i) => AppError::invalid(format!("texts[{i}]"), format!("{e:#}")),
                    None => AppError::Internal(e),
                })?;
            used.push(pair.model.clone());
        }
        for (k, &i) in idx.iter().enumerate() {
            results[i] = Some(Translated {
                text: texts.get(k).cloned().unwrap_or_default(),
                source: source.to_string(),
                model: used.clone(),
            });
        }
    }
    Ok(Json(TranslateResponse {
        results: results.into_iter().flatten().collect(),
    }))
}
