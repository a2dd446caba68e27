//! `POST /v1/triage`: the request checked, then one customer message through the triage
//! pipeline (`pipeline::triage`); the turn is stored before the answer is sent.

use super::json::JsonBody;
use super::AppState;
use crate::error::{AppError, AppResult};
use crate::http::admission::Admitted;
use crate::http::error::ErrorBody;
use crate::http::openapi::{BadInput, Guarded};
use crate::pipeline::{
    self,
    triage::{Customer, Message, TriageResponse},
};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriageRequest {
    #[serde(default)]
    pub conversation_id: Option<String>,
    pub text: String,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub customer: Option<Customer>,
    /// Intent set (default: `intent.default_set`).
    #[serde(default)]
    pub intent_set: Option<String>,
    /// An attached screenshot, base64 (standard alphabet); read as by `/v1/screenshot`, within
    /// `limits.max_body_bytes` for the whole request.
    #[serde(default)]
    pub screenshot: Option<String>,
}

/// A conversation id: 1..=128 characters of `A-Z a-z 0-9 . _ : @ -`.
pub fn check_conversation_id(id: &str) -> AppResult<()> {
    let field = "conversation_id";
    if id.is_empty() || id.len() > 128 {
        return Err(AppError::invalid(field, "must be 1 to 128 characters"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-_:@".contains(&b))
    {
        return Err(AppError::invalid(
            field,
            "may hold only letters, digits and . _ : @ -",
        ));
    }
    Ok(())
}

fn check_short(field: &str, v: &Option<String>, max: usize) -> AppResult<()> {
    match v {
        Some(s) if s.is_empty() || s.chars().count() > max || s.chars().any(char::is_control) => {
            Err(AppError::invalid(
                field,
                format!("must be 1 to {max} printable characters"),
            ))
        }
        _ => Ok(()),
    }
}

impl TriageRequest {
    /// Every check that runs before the store and the models (pure: the fuzz targets call it).
    pub fn check(&self, limits: &crate::config::LimitsConfig) -> AppResult<()> {
        super::embed::check_text_within(&self.text, limits, "text")?;
        if let Some(id) = &self.conversation_id {
            check_conversation_id(id)?;
        }
        check_short("channel", &self.channel, 64)?;
        if let Some(c) = &self.customer {
            check_short("customer.id", &c.id, 128)?;
            check_short("customer.tier", &c.tier, 32)?;
            check_short("customer.language", &c.language, 16)?;
        }
        Ok(())
    }
}

fn new_conversation_id() -> String {
    use rand::Rng;
    let n: u128 = rand::rng().random();
    format!("c-{n:032x}")
}

#[utoipa::path(
    post, path = "/v1/triage", tag = "triage", security(("bearer" = [])),
    request_body = TriageRequest,
    responses((status = 200, description = "The signals and the routing decision; the turn is stored", body = TriageResponse),
        (status = 404, description = "Unknown intent set", body = ErrorBody), BadInput, Guarded)
)]
pub async fn triage(
    State(state): State<Arc<AppState>>,
    Admitted(admitted): Admitted,
    JsonBody(req): JsonBody<TriageRequest>,
) -> AppResult<Json<TriageResponse>> {
    req.check(&state.config.limits)?;
    let screenshot = req
        .screenshot
        .as_deref()
        .map(screenshot_bytes)
        .transpose()?;
    let msg = Message {
        conversation_id: req.conversation_id.unwrap_or_else(new_conversation_id),
        text: req.text,
        channel: req.channel,
        customer: req.customer,
        intent_set: req.intent_set,
        screenshot,
    };
    Ok(Json(
        pipeline::triage::triage(&state.pipeline(admitted)?, msg).await?,
    ))
}

/// The bytes of an attached screenshot (standard base64); errors name the `screenshot` field.
pub fn screenshot_bytes(b64: &str) -> AppResult<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| AppError::invalid("screenshot", format!("not valid base64: {e}")))
}
