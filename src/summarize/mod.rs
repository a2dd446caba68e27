//! Conversation summaries: extractive on the multilingual encoder (works with the default
//! pack), abstractive with a T5-family model when one is configured; ROUGE evaluation.

pub mod config;
pub mod entities;
pub mod extractive;
pub mod rouge;
pub mod sentences;

pub use config::SummarizeConfig;

use crate::engine::Models;
use entities::Entity;
use serde::{Deserialize, Serialize};

/// One turn of a conversation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Turn {
    pub role: String,
    pub text: String,
}

/// The structured summary for a person taking over.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub summary: String,
    pub key_turns: Vec<extractive::KeyTurn>,
    pub open_question: Option<String>,
    pub entities: Vec<Entity>,
    /// `extractive`, `abstractive`, or `lead` (the encoder was not ready: first sentences).
    pub mode: &'static str,
}

/// Entities of the whole conversation, each value once.
pub fn conversation_entities(turns: &[Turn]) -> Vec<Entity> {
    let mut out: Vec<Entity> = Vec::new();
    for t in turns {
        for e in entities::extract(&t.text) {
            if !out.iter().any(|f| f.kind == e.kind && f.value == e.value) {
                out.push(e);
            }
        }
    }
    out
}

/// The summary from sentence embeddings (`None`: the lead fallback). Pure: for tests and batch.
pub fn assemble(turns: &[Turn], emb: Option<&[Vec<f32>]>, max_words: usize) -> Summary {
    let units = extractive::units(turns);
    let (chosen, mode) = match emb {
        Some(e) if e.len() == units.len() => (
            extractive::choose(turns, &units, e, max_words),
            "extractive",
        ),
        _ => (extractive::lead(&units, 3), "lead"),
    };
    Summary {
        summary: extractive::render(turns, &units, &chosen),
        key_turns: extractive::key_turns(turns, &units, &chosen),
        open_question: extractive::open_question(turns),
        entities: conversation_entities(turns),
        mode,
    }
}

/// The texts to embed for `turns` (one per sentence, in `assemble`'s order).
pub fn sentence_texts(turns: &[Turn]) -> Vec<String> {
    extractive::units(turns)
        .into_iter()
        .map(|u| u.text)
        .collect()
}

/// Extractive summary with the default encoder (one batched pass over all sentences); the lead
/// fallback when the encoder is not ready. The queue wait counts from `admitted`.
pub async fn extractive_summary(
    models: &Models,
    turns: &[Turn],
    max_words: usize,
    admitted: std::time::Instant,
) -> Summary {
    let texts = sentence_texts(turns);
    let emb = if texts.is_empty() {
        None
    } else {
        models.encode(None, texts, admitted).await.ok().map(|r| r.1)
    };
    assemble(turns, emb.as_deref(), max_words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_fallback_and_entities() {
        let t = vec![
            Turn {
                role: "customer".into(),
                text: "我的订单A12-99812还没到。已经等了一周了！".into(),
            },
            Turn {
                role: "agent".into(),
                text: "我帮您查一下。".into(),
            },
        ];
        let s = assemble(&t, None, 60);
        assert_eq!(s.mode, "lead");
        assert!(
            s.summary.starts_with("Customer: 我的订单A12-99812还没到。"),
            "{}",
            s.summary
        );
        assert!(s.entities.iter().any(|e| e.kind == "order_number"));
        assert_eq!(sentence_texts(&t).len(), 3);
    }
}
