//! Agent assist for a conversation a person takes over: suggested replies from the knowledge
//! base (re-ranked by what agents did with them before), the next step of the procedure for the
//! conversation's intent (the steps of its knowledge-base article), and a ticket draft from the
//! handoff package (category, priority, queue, customer, entities, summary).

use crate::engine::Models;
use crate::error::{AppError, AppResult};
use crate::handoff::Package;
use crate::kb::answer::answer_language;
use crate::kb::{Kb, Mode, Query};
use crate::store::kb::{FeedbackAction, FeedbackCounts};
use crate::store::Store;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// Suggestions offered at most.
const SUGGESTIONS: usize = 3;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Assist {
    pub conversation_id: String,
    /// The customer message the suggestions answer.
    pub for_turn: Option<u32>,
    pub suggestions: Vec<Suggestion>,
    pub next_step: Option<NextStep>,
    pub ticket: Ticket,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    /// What feedback names: `kb:<knowledge base>/<article id>`.
    pub key: String,
    pub text: String,
    pub article_id: String,
    pub title: String,
    /// The search's calibrated confidence.
    pub confidence: f32,
    /// The order: confidence weighted by earlier feedback on this suggestion.
    pub score: f32,
    pub used: u64,
    pub edited: u64,
    pub dismissed: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NextStep {
    pub intent: String,
    pub article_id: String,
    /// The step to do now (from 1): one past the agent replies sent so far.
    pub step: usize,
    pub text: String,
    pub steps: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ticket {
    pub title: String,
    /// The current intent (null when out of scope or unknown).
    pub category: Option<String>,
    pub priority: i32,
    pub queue: Option<String>,
    pub target: Option<String>,
    pub language: Option<String>,
    pub customer: Option<Value>,
    pub entities: Vec<Value>,
    pub summary: String,
    pub open_question: Option<String>,
}

/// Assist for conversation `id` (404 when there is none); the summary is at most `max_words`.
pub async fn assist(
    kb: &Kb,
    store: &Arc<Store>,
    models: &Models,
    max_words: usize,
    id: &str,
    admitted: Instant,
) -> AppResult<Assist> {
    let pkg = crate::handoff::build(store, models, max_words, id, None, admitted).await?;
    let last = pkg.transcript.iter().rev().find(|l| l.role == "customer");
    let language = pkg
        .languages
        .iter()
        .max_by_key(|l| l.turns)
        .map(|l| l.language.clone());
    let intent = pkg
        .intent
        .current
        .as_ref()
        .filter(|i| i["out_of_scope"] != Value::Bool(true))
        .and_then(|i| i["label"].as_str())
        .map(str::to_string);
    let mut suggestions = Vec::new();
    if let (Some(line), Ok((name, index))) = (last, kb.index(None, "kb")) {
        let qvec = kb.embed(models, vec![line.text.clone()]).await?;
        let q = Query {
            text: &line.text,
            vec: qvec.first().map_or(&[][..], Vec::as_slice),
            top_k: SUGGESTIONS * 2,
            language: language.as_deref().and_then(answer_language),
            mode: Mode::Hybrid,
        };
        for h in kb.search_embedded(&index, &q)? {
            suggestions.push(Suggestion {
                key: h.key(&name),
                text: h.reply(),
                article_id: h.id,
                title: h.title,
                confidence: h.confidence,
                score: h.confidence,
                used: 0,
                edited: 0,
                dismissed: 0,
            });
        }
        rerank(store, &mut suggestions).await?;
    }
    let agent_replies = pkg.transcript.iter().filter(|l| l.role == "agent").count();
    let next_step = intent
        .as_deref()
        .and_then(|i| next_step(kb, i, language.as_deref(), agent_replies));
    Ok(Assist {
        conversation_id: pkg.conversation_id.clone(),
        for_turn: last.map(|l| l.turn),
        suggestions,
        next_step,
        ticket: ticket(&pkg, intent, language, last.map(|l| l.text.as_str())),
    })
}

/// Order by confidence x (1 + used + edited / 2) / (1 + dismissed), keep the best few.
async fn rerank(store: &Arc<Store>, s: &mut Vec<Suggestion>) -> AppResult<()> {
    let keys: Vec<String> = s.iter().map(|x| x.key.clone()).collect();
    let st = store.clone();
    let counts: Vec<FeedbackCounts> =
        tokio::task::spawn_blocking(move || st.kb_feedback_counts(&keys))
            .await
            .map_err(|e| AppError::Internal(anyhow::anyhow!("assist task: {e}")))??;
    for (x, c) in s.iter_mut().zip(counts) {
        (x.used, x.edited, x.dismissed) = (c.used, c.edited, c.dismissed);
        let up = 1.0 + c.used as f32 + c.edited as f32 / 2.0;
        x.score = x.confidence * up / (1.0 + c.dismissed as f32);
    }
    s.sort_by(|a, b| b.score.total_cmp(&a.score));
    s.truncate(SUGGESTIONS);
    Ok(())
}

/// The procedure of `intent`: the steps of the first article (by id) tagged with it, in the
/// conversation's language when one is; the step after `done` agent replies.
fn next_step(kb: &Kb, intent: &str, language: Option<&str>, done: usize) -> Option<NextStep> {
    let (_, index) = kb.index(None, "kb").ok()?;
    let entries = index.entries();
    let tagged = |lang_ok: &dyn Fn(&Option<String>) -> bool| {
        entries
            .iter()
            .find(|e| {
                e.article.tags.first().map(String::as_str) == Some(intent)
                    && !e.article.steps.is_empty()
                    && lang_ok(&e.article.language)
            })
            .cloned()
    };
    let e = tagged(&|l| language.is_none() || l.as_deref() == language)
        .or_else(|| tagged(&|_| true))?;
    let steps = e.article.steps.clone();
    let i = done.min(steps.len() - 1);
    Some(NextStep {
        intent: intent.to_string(),
        article_id: e.article.id.clone(),
        step: i + 1,
        text: steps[i].clone(),
        steps,
    })
}

fn ticket(
    pkg: &Package,
    category: Option<String>,
    language: Option<String>,
    last: Option<&str>,
) -> Ticket {
    let summary = pkg.summary.summary.clone();
    let first = summary
        .split(['。', '.', '!', '?', '！', '？', '\n'])
        .map(str::trim)
        .find(|s| !s.is_empty())
        .or(last)
        .unwrap_or("");
    let title: String = first.chars().take(80).collect();
    Ticket {
        title,
        category,
        priority: pkg.route.as_ref().map_or(0, |r| r.priority),
        queue: pkg.route.as_ref().map(|r| r.queue.clone()),
        target: pkg.route.as_ref().map(|r| r.target.as_str().to_string()),
        language,
        customer: pkg.customer.clone(),
        entities: pkg
            .entities
            .iter()
            .filter_map(|e| serde_json::to_value(e).ok())
            .collect(),
        summary,
        open_question: pkg.summary.open_question.clone(),
    }
}

/// Record what an agent did with suggestion `key` in conversation `id` (404 when there is no
/// such conversation): the feedback row's id.
pub async fn feedback(
    store: &Arc<Store>,
    id: &str,
    key: &str,
    action: FeedbackAction,
    text: Option<String>,
) -> AppResult<i64> {
    let (st, id, key) = (store.clone(), id.to_string(), key.to_string());
    tokio::task::spawn_blocking(move || {
        st.conversation(&id)?;
        st.kb_feedback_add(&id, &key, action, text.as_deref())
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("assist task: {e}")))?
}
