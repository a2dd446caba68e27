//! Quality inspection: `GET /v1/qa/conversations/{id}`, a stored conversation against the
//! scorecard (each item passed or failed with its evidence, the timings and the score).

use super::triage::check_conversation_id;
use super::AppState;
use crate::error::{AppError, AppResult};
use crate::http::error::ErrorBody;
use crate::http::openapi::{BadInput, Guarded};
use crate::qa::conversation::ConversationQa;
use axum::extract::{Path, State};
use axum::Json;
use std::sync::Arc;

#[utoipa::path(
    get, path = "/v1/qa/conversations/{id}", tag = "conversations", security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, description = "The conversation against the scorecard", body = ConversationQa),
        (status = 404, description = "No such conversation", body = ErrorBody), BadInput, Guarded)
)]
pub async fn conversation(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> AppResult<Json<ConversationQa>> {
    check_conversation_id(&id)?;
    let qa = state.qa.clone().ok_or_else(|| AppError::Unavailable {
        message: "quality inspection is off (`[qa] enabled = false`)".into(),
    })?;
    let store = state.store()?;
    let cid = id.clone();
    let turns = tokio::task::spawn_blocking(move || {
        store.conversation(&cid)?;
        store.turns(&cid, None)
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("qa task: {e}")))??;
    Ok(Json(qa.conversation(&id, &turns)))
}
