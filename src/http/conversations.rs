//! Conversations: `GET /v1/conversations[/{id}]`, `/handoff`, `/resolve`, and `GET /v1/queues`.

use super::triage::check_conversation_id;
use super::AppState;
use crate::error::{AppError, AppResult};
use crate::http::admission::Admitted;
use crate::http::error::ErrorBody;
use crate::http::openapi::{BadInput, Guarded};
use crate::store::turns::{ConversationInfo, TurnRecord};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> AppResult<T> + Send + 'static,
) -> AppResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("store task: {e}")))?
}

/// One conversation: its head row, with `turns` the turns themselves (the list endpoint's
/// turn count would be a second `turns` key; it is the array's length here).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Conversation {
    pub id: String,
    pub created_ms: i64,
    pub updated_at_ms: i64,
    pub resolved_turn: u32,
    pub target: String,
    pub queue: String,
    pub priority: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<serde_json::Value>,
    pub turns: Vec<TurnRecord>,
}

impl Conversation {
    fn new(info: ConversationInfo, turns: Vec<TurnRecord>) -> Self {
        Conversation {
            id: info.id,
            created_ms: info.created_ms,
            updated_at_ms: info.updated_at_ms,
            resolved_turn: info.resolved_turn,
            target: info.target,
            queue: info.queue,
            priority: info.priority,
            customer: info.customer,
            turns,
        }
    }
}

#[utoipa::path(
    get, path = "/v1/conversations/{id}", tag = "conversations", security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, description = "The conversation and its turns", body = Conversation),
        (status = 404, description = "No such conversation", body = ErrorBody), BadInput, Guarded)
)]
pub async fn get_one(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> AppResult<Json<Conversation>> {
    check_conversation_id(&id)?;
    let store = state.store()?;
    let c = blocking(move || {
        Ok(Conversation::new(
            store.conversation(&id)?,
            store.turns(&id, None)?,
        ))
    })
    .await?;
    Ok(Json(c))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationList {
    pub conversations: Vec<ConversationInfo>,
}

#[utoipa::path(
    get, path = "/v1/conversations", tag = "conversations", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, description = "The most recently updated conversations", body = ConversationList), BadInput, Guarded)
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Json<ConversationList>> {
    let Query(q) = q.map_err(|e| AppError::bad_request("query", e.body_text()))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(AppError::invalid("limit", "must be 1..=500"));
    }
    if q.queue.as_ref().is_some_and(|s| s.len() > 128) {
        return Err(AppError::invalid("queue", "must be at most 128 bytes"));
    }
    let store = state.store()?;
    let conversations = blocking(move || store.recent(q.queue.as_deref(), limit)).await?;
    Ok(Json(ConversationList { conversations }))
}

#[utoipa::path(
    post, path = "/v1/conversations/{id}/resolve", tag = "conversations", security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, description = "The conversation, resolved", body = ConversationInfo),
        (status = 404, description = "No such conversation", body = ErrorBody), BadInput, Guarded)
)]
pub async fn resolve(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> AppResult<Json<ConversationInfo>> {
    check_conversation_id(&id)?;
    let store = state.store()?;
    let kb = state.kb().ok();
    let info = crate::assist::resolve(kb.as_deref(), &store, &state.models, &id).await?;
    Ok(Json(info))
}

#[utoipa::path(
    get, path = "/v1/conversations/{id}/handoff", tag = "conversations", security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, description = "The handoff package for a person taking over", body = crate::handoff::Package),
        (status = 404, description = "No such conversation", body = ErrorBody), BadInput, Guarded)
)]
pub async fn handoff(
    State(state): State<Arc<AppState>>,
    Admitted(admitted): Admitted,
    Path(id): Path<String>,
) -> AppResult<Json<crate::handoff::Package>> {
    check_conversation_id(&id)?;
    let store = state.store()?;
    let max_words = state.config.summarize.max_words;
    Ok(Json(
        crate::handoff::build(&store, &state.models, max_words, &id, None, admitted).await?,
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Queues {
    pub queues: Vec<String>,
}

#[utoipa::path(
    get, path = "/v1/queues", tag = "conversations", security(("bearer" = [])),
    responses((status = 200, description = "The routing policy's queue names", body = Queues), Guarded)
)]
pub async fn queues(State(state): State<Arc<AppState>>) -> Json<Queues> {
    Json(Queues {
        queues: state.config.routing.queue_names(),
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// `bot` or `agent`.
    pub role: String,
    pub text: String,
    /// The agent who sent it (for the quality reports); only with `role = agent`.
    #[serde(default)]
    pub agent_id: Option<String>,
}

impl Reply {
    /// The checks that run before the store (pure: the fuzz targets call it).
    pub fn check(&self, limits: &crate::config::LimitsConfig) -> AppResult<()> {
        if self.role != "bot" && self.role != "agent" {
            return Err(AppError::invalid("role", "must be `bot` or `agent`"));
        }
        if let Some(a) = &self.agent_id {
            if self.role != "agent" {
                return Err(AppError::invalid("agent_id", "only an agent reply has one"));
            }
            super::qa::check_agent_id(a)?;
        }
        super::embed::check_text_within(&self.text, limits, "text")
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplyStored {
    pub conversation_id: String,
    pub turn: u32,
    /// An agent reply's quality inspection against the scorecard (`[qa]`); when it found
    /// anything, a `qa` event went to the supervisor queue (`qa.queue`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qa: Option<crate::qa::Inspection>,
    /// How long the customer waited for this agent reply, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_ms: Option<i64>,
}

/// `POST /v1/conversations/{id}/messages`: record what the bot or an agent answered, so the
/// transcript and the handoff package show it; an agent reply comes back with its quality
/// inspection.
#[utoipa::path(
    post, path = "/v1/conversations/{id}/messages", tag = "conversations", security(("bearer" = [])),
    params(("id" = String, Path, description = "Conversation id")),
    request_body = Reply,
    responses((status = 201, description = "The reply is stored as the next turn", body = ReplyStored),
        (status = 404, description = "No such conversation", body = ErrorBody), BadInput, Guarded)
)]
pub async fn reply(
    State(state): State<Arc<AppState>>,
    Admitted(admitted): Admitted,
    Path(id): Path<String>,
    super::json::JsonBody(r): super::json::JsonBody<Reply>,
) -> AppResult<(axum::http::StatusCode, Json<ReplyStored>)> {
    check_conversation_id(&id)?;
    r.check(&state.config.limits)?;
    let live = crate::qa::live::Live {
        inspector: state.qa.as_ref(),
        config: &state.config.qa,
        models: &state.models,
        heads: &state.heads,
        lang: &state.lang,
        store: state.store()?,
        events: &state.events,
        webhook_urls: &state.config.webhooks.urls,
        webhook_wake: &state.webhook_wake,
    };
    let reply = crate::qa::live::Reply {
        conversation_id: id.clone(),
        role: r.role,
        text: r.text,
        agent_id: r.agent_id,
    };
    let posted = crate::qa::live::post_reply(live, reply, admitted).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(ReplyStored {
            conversation_id: id,
            turn: posted.turn,
            qa: posted.qa,
            response_ms: posted.response_ms,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_turns_key() {
        let info = ConversationInfo {
            id: "c1".into(),
            created_ms: 1,
            updated_at_ms: 2,
            turns: 0,
            resolved_turn: 0,
            target: "bot".into(),
            queue: "general".into(),
            priority: 0,
            customer: None,
        };
        let s = serde_json::to_string(&Conversation::new(info, Vec::new())).unwrap_or_default();
        assert_eq!(s.matches("\"turns\"").count(), 1, "{s}");
        assert!(
            s.contains("\"turns\":[]") && s.contains("\"id\":\"c1\""),
            "{s}"
        );
    }
}
