//! The knowledge base's part of triage: search the default knowledge base with the message's
//! embedding from the signals pass (no second encoder pass when the encoders match), in the
//! customer's language, and keep the best hit's answer when it clears the threshold.

use crate::engine::Models;
use crate::error::AppResult;
use crate::kb::answer::{answer_language, pick, BotAnswer};
use crate::kb::{Kb, Mode, Query};

/// What the knowledge base made of one message.
pub struct KbOutcome {
    /// The reply, when the best hit cleared the threshold for the language.
    pub answer: Option<BotAnswer>,
    /// The best hit's confidence (0 without hits).
    pub best: f32,
    /// The best hits, as agent-assist suggestions for the live event when the route leaves the
    /// bot.
    pub suggestions: Vec<serde_json::Value>,
}

/// The embeddings of a message from the signals pass, and its detected language.
pub struct Embedded<'a> {
    /// The plain encoder's, and the encoder's name.
    pub vector: &'a [f32],
    pub encoder: &'a str,
    /// The intent head's fine-tuned layers' (their key), when it has them.
    pub tuned: Option<(&'a str, &'a [f32])>,
    pub language: &'a str,
    /// The message's intent, when in scope: articles tagged with it rank higher.
    pub intent: Option<&'a str>,
}

/// Ask the default knowledge base (None when it has no articles).
pub async fn from_kb(
    kb: &Kb,
    models: &Models,
    text: &str,
    sig: Embedded<'_>,
) -> AppResult<Option<KbOutcome>> {
    let Ok((name, index)) = kb.index(None, "kb") else {
        return Ok(None);
    };
    let own;
    let same_model = sig.encoder == models.default_name();
    let shared = match (kb.branch(), sig.tuned) {
        (None, _) => Some(sig.vector),
        (Some(k), Some((key, v))) if k == key => Some(v),
        _ => None,
    };
    let qvec: &[f32] = match shared.filter(|v| same_model && !v.is_empty()) {
        Some(v) => v,
        None => {
            own = kb.embed(models, vec![text.to_string()]).await?;
            own.first().map_or(&[][..], Vec::as_slice)
        }
    };
    let q = Query {
        text,
        vec: qvec,
        top_k: 3,
        language: answer_language(sig.language),
        mode: Mode::Hybrid,
        intent: sig.intent,
    };
    // The signals pass detected the language: no second detection.
    let hits = kb.search_in(&index, &q, Some(sig.language))?;
    let suggestions = hits
        .iter()
        .map(|h| {
            serde_json::json!({
                "key": h.key(&name),
                "article_id": h.id,
                "title": h.title,
                "text": h.reply(),
                "confidence": h.confidence,
            })
        })
        .collect();
    Ok(Some(KbOutcome {
        answer: pick(&name, &hits, kb.cfg.threshold(q.language)),
        best: hits.first().map_or(0.0, |h| h.confidence),
        suggestions,
    }))
}
