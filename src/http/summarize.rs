//! `POST /v1/summarize`: a conversation's structured summary, extractive on the encoder (the
//! default) or abstractive with the configured T5-family model.

use super::embed::check_text_within;
use super::json::JsonBody;
use super::AppState;
use crate::error::{AppError, AppResult};
use crate::http::admission::Admitted;
use crate::http::openapi::{BadInput, Guarded};
use crate::seq2seq::GenerateOptions;
use crate::summarize::{self, Summary, Turn};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SummarizeRequest {
    pub conversation: Vec<Turn>,
    pub mode: Option<String>,
    pub max_words: Option<usize>,
}

/// Longest abstractive input in tokens (T5's trained length); the start of the conversation
/// is kept when it is longer.
const MAX_INPUT_TOKENS: usize = 512;

impl SummarizeRequest {
    /// The checks that run before any model (pure: the fuzz targets call it); the word budget.
    pub fn check(&self, cfg: &crate::config::Config) -> AppResult<usize> {
        let (turns, max_turns) = (&self.conversation, cfg.summarize.max_turns);
        if turns.is_empty() {
            return Err(AppError::invalid("conversation", "give at least one turn"));
        }
        if turns.len() > max_turns {
            return Err(AppError::too_large(
                "conversation",
                format!(
                    "{} turns, over the limit of {max_turns} (summarize.max_turns)",
                    turns.len()
                ),
            ));
        }
        for (i, t) in turns.iter().enumerate() {
            if !matches!(t.role.as_str(), "customer" | "agent" | "bot") {
                return Err(AppError::invalid(
                    format!("conversation[{i}].role"),
                    format!("unknown role `{}`: use customer, agent or bot", t.role),
                ));
            }
            check_text_within(&t.text, &cfg.limits, &format!("conversation[{i}].text"))?;
        }
        let max_words = self.max_words.unwrap_or(cfg.summarize.max_words);
        if !(5..=2000).contains(&max_words) {
            return Err(AppError::invalid("max_words", "must be within 5..=2000"));
        }
        Ok(max_words)
    }
}

#[utoipa::path(
    post, path = "/v1/summarize", tag = "generation", security(("bearer" = [])),
    request_body = SummarizeRequest,
    responses((status = 200, description = "The structured summary", body = Summary), BadInput, Guarded)
)]
pub async fn summarize(
    State(state): State<Arc<AppState>>,
    Admitted(admitted): Admitted,
    JsonBody(req): JsonBody<SummarizeRequest>,
) -> AppResult<Json<Summary>> {
    let max_words = req.check(&state.config)?;
    match req.mode.as_deref().unwrap_or("extractive") {
        "extractive" => Ok(Json(
            summarize::extractive_summary(&state.models, &req.conversation, max_words, admitted)
                .await,
        )),
        "abstractive" => abstractive(&state, req.conversation).await.map(Json),
        m => Err(AppError::invalid(
            "mode",
            format!("unknown mode `{m}`: use extractive or abstractive"),
        )),
    }
}

async fn abstractive(state: &Arc<AppState>, turns: Vec<Turn>) -> AppResult<Summary> {
    let cfg = state.config.summarize.clone();
    let Some(source) = cfg.model.clone() else {
        return Err(AppError::Unavailable {
            message: "no abstractive summarization model is configured: set summarize.model to \
                      a T5-family model (e.g. `hf:google/flan-t5-base` or a local folder), or use \
                      mode `extractive`"
                .into(),
        });
    };
    let model = state.seq2seq.get(&source, "summarization").await?;
    let dialogue: String = turns
        .iter()
        .map(|t| format!("{}: {}", label(&t.role), t.text.trim()))
        .collect::<Vec<_>>()
        .join("\n");
    let input = format!("{}{dialogue}", cfg.prefix);
    let opts = GenerateOptions {
        num_beams: cfg.num_beams,
        max_new_tokens: cfg.max_new_tokens,
        no_repeat_ngram_size: cfg.no_repeat_ngram_size,
        length_penalty: cfg.length_penalty,
        ..model.default_options()
    };
    let m = model.clone();
    let text = state
        .seq2seq
        .run(move || {
            let mut ids = m
                .encode_texts(&[input.as_str()], usize::MAX)?
                .pop()
                .unwrap_or_default();
            if ids.len() > MAX_INPUT_TOKENS {
                // Keep the start and the end-of-sequence token.
                let eos = ids.last().copied();
                ids.truncate(MAX_INPUT_TOKENS - 1);
                ids.extend(eos);
            }
            let out = m.generate_ids(&[ids], &opts)?;
            m.decode(out.first().map_or(&[][..], |v| v.as_slice()))
        })
        .await?;
    Ok(Summary {
        summary: text.trim().to_string(),
        key_turns: Vec::new(),
        open_question: summarize::extractive::open_question(&turns),
        entities: summarize::conversation_entities(&turns),
        mode: "abstractive",
    })
}

fn label(role: &str) -> &'static str {
    match role {
        "customer" => "Customer",
        "agent" => "Agent",
        _ => "Bot",
    }
}
