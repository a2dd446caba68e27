//! Building the handoff package of a conversation from the store (as of a turn).

use super::entities::{self, Entity};
use crate::engine::Models;
use crate::error::{AppError, AppResult};
use crate::routing::Route;
use crate::store::signals::Emotion;
use crate::store::turns::TurnRecord;
use crate::store::Store;
use crate::summarize::{self, Summary};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Package {
    pub conversation_id: String,
    pub generated_at_ms: i64,
    pub as_of_turn: u32,
    pub customer: Option<Value>,
    pub summary: Summary,
    pub intent: IntentPart,
    pub emotion: EmotionPart,
    pub entities: Vec<Found>,
    pub languages: Vec<LanguageCount>,
    pub route: Option<Route>,
    pub routing_history: Vec<RouteStep>,
    pub transcript: Vec<Line>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IntentPart {
    pub current: Option<Value>,
    pub history: Vec<Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EmotionPart {
    /// The latest turn's emotion (null when that turn is a reply).
    pub current: Option<Emotion>,
    pub trajectory: Vec<Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Found {
    #[serde(flatten)]
    pub entity: Entity,
    /// The turn it was first seen in.
    pub turn: u32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LanguageCount {
    pub language: String,
    pub turns: u32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RouteStep {
    pub turn: u32,
    pub target: String,
    pub queue: String,
    pub priority: i32,
    pub codes: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = TranscriptLine)]
pub struct Line {
    pub turn: u32,
    pub role: String,
    pub text: String,
    pub at_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// The package of conversation `id` as of turn `upto` (the latest when `None`), its summary at
/// most `max_words` words (`summarize.max_words`); its model call's queue wait counts from
/// `admitted`.
pub async fn build(
    store: &Arc<Store>,
    models: &Models,
    max_words: usize,
    id: &str,
    upto: Option<u32>,
    admitted: std::time::Instant,
) -> AppResult<Package> {
    let (info, turns) = {
        let (store, id) = (store.clone(), id.to_string());
        tokio::task::spawn_blocking(move || -> AppResult<_> {
            Ok((store.conversation(&id)?, store.turns(&id, upto)?))
        })
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("handoff task: {e}")))??
    };
    // The summary uses the encoder when it is ready; a lead summary otherwise.
    let summary =
        summarize::extractive_summary(models, &summary_turns(&turns), max_words, admitted).await;
    Ok(assemble(&info.id, info.customer, &turns, summary))
}

fn summary_turns(turns: &[TurnRecord]) -> Vec<summarize::Turn> {
    turns
        .iter()
        .map(|t| summarize::Turn {
            role: t.role.clone(),
            text: t.text.clone(),
        })
        .collect()
}

/// The package from stored turns and their summary: pure, for tests.
pub fn assemble(
    id: &str,
    customer: Option<Value>,
    turns: &[TurnRecord],
    mut summary: Summary,
) -> Package {
    // Key turns by their number in the conversation, not their place in this window.
    for k in &mut summary.key_turns {
        if let Some(t) = turns.get(k.turn.wrapping_sub(1)) {
            k.turn = t.turn as usize;
        }
    }
    let mut entities: Vec<Found> = Vec::new();
    let mut languages: Vec<LanguageCount> = Vec::new();
    let (mut intents, mut emotions) = (Vec::new(), Vec::new());
    for t in turns {
        for e in entities::extract(&t.text) {
            if !entities
                .iter()
                .any(|f| f.entity.kind == e.kind && f.entity.value == e.value)
            {
                entities.push(Found {
                    entity: e,
                    turn: t.turn,
                });
            }
        }
        if let Some(l) = t.signals.language.as_ref().map(|l| l.language.as_str()) {
            match languages.iter_mut().find(|c| c.language == l) {
                Some(c) => c.turns += 1,
                None => languages.push(LanguageCount {
                    language: l.to_string(),
                    turns: 1,
                }),
            }
        }
        if let Some(i) = &t.signals.intent {
            intents.push(serde_json::json!({
                "turn": t.turn, "label": i.label, "score": i.score,
                "out_of_scope": i.out_of_scope,
            }));
        }
        if let Some(e) = &t.signals.emotion {
            emotions.push(serde_json::json!({
                "turn": t.turn, "top_group": e.top_group, "escalate": e.escalate,
                "negativity": t.memo.map(|m| m.negativity),
            }));
        }
    }
    let routing_history = turns
        .iter()
        .filter_map(|t| {
            let r = t.route.as_ref()?;
            Some(RouteStep {
                turn: t.turn,
                target: r.target.as_str().into(),
                queue: r.queue.clone(),
                priority: r.priority,
                codes: r.reasons.iter().map(|x| x.code.clone()).collect(),
            })
        })
        .collect();
    let last = turns.last();
    Package {
        conversation_id: id.to_string(),
        generated_at_ms: crate::store::now_ms(),
        as_of_turn: last.map_or(0, |t| t.turn),
        customer,
        summary,
        intent: IntentPart {
            current: intents.last().cloned(),
            history: intents,
        },
        emotion: EmotionPart {
            current: last.and_then(|t| t.signals.emotion.clone()),
            trajectory: emotions,
        },
        entities,
        languages,
        route: turns.iter().rev().find_map(|t| t.route.clone()),
        routing_history,
        transcript: turns
            .iter()
            .map(|t| Line {
                turn: t.turn,
                role: t.role.clone(),
                text: t.text.clone(),
                at_ms: t.at_ms,
                channel: t.channel.clone(),
            })
            .collect(),
    }
}
