//! Agent assist: `GET /v1/conversations/{id}/assist` (suggested replies, the next step of the
//! procedure, a ticket draft) and `POST /v1/conversations/{id}/assist/feedback` (what the agent
//! did with a suggestion: stored, and it re-ranks later suggestions).

use super::json::JsonBody;
use super::triage::check_conversation_id;
use super::AppState;
use crate::assist::Assist;
use crate::error::{AppError, AppResult};
use crate::http::admission::Admitted;
use crate::http::openapi::{BadInput, Guarded};
use crate::store::kb::FeedbackAction;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[utoipa::path(
    get, path = "/v1/conversations/{id}/assist", tag = "conversations", security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, description = "Suggested replies, the next step and a ticket draft", body = Assist), BadInput, Guarded)
)]
pub async fn assist(
    State(state): State<Arc<AppState>>,
    Admitted(admitted): Admitted,
    Path(id): Path<String>,
) -> AppResult<Json<Assist>> {
    check_conversation_id(&id)?;
    let (store, kb) = (state.store()?, state.kb()?);
    let max_words = state.config.summarize.max_words;
    let a = crate::assist::assist(&kb, &store, &state.models, max_words, &id, admitted).await?;
    Ok(Json(a))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    /// The suggestion's `key` from `/assist`.
    pub suggestion: String,
    /// `used`, `edited` or `dismissed`.
    pub action: String,
    /// What the agent sent instead (for `edited`).
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FeedbackStored {
    pub id: i64,
}

#[utoipa::path(
    post, path = "/v1/conversations/{id}/assist/feedback", tag = "conversations", security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id")),
    request_body = FeedbackRequest,
    responses((status = 201, description = "Stored", body = FeedbackStored), BadInput, Guarded)
)]
pub async fn feedback(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<FeedbackRequest>,
) -> AppResult<(StatusCode, Json<FeedbackStored>)> {
    check_conversation_id(&id)?;
    let key = req.suggestion.trim();
    if key.is_empty() || key.len() > 300 {
        return Err(AppError::invalid(
            "suggestion",
            "a suggestion key from /assist (1-300 bytes)",
        ));
    }
    let Some(action) = FeedbackAction::parse(&req.action) else {
        return Err(AppError::invalid(
            "action",
            "one of used, edited, dismissed",
        ));
    };
    if let Some(t) = &req.text {
        super::embed::check_text(t, &state, "text")?;
    }
    let store = state.store()?;
    let id = crate::assist::feedback(&store, &id, key, action, req.text).await?;
    Ok((StatusCode::CREATED, Json(FeedbackStored { id })))
}
