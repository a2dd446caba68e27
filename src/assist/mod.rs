//! Agent assist for a conversation a person takes over: suggested replies from the knowledge
//! base and from agents' replies in similar resolved conversations (re-ranked by what agents did
//! with them before), the next step of the procedure for the conversation's intent (from the
//! flows file, else its knowledge-base article's steps), and a ticket draft from the handoff package (category, priority,
//! queue, customer, entities, summary).

pub mod replies;

use crate::engine::Models;
use crate::error::{AppError, AppResult};
use crate::handoff::Package;
use crate::kb::answer::answer_language;
use crate::kb::{Kb, Mode, Query};
use crate::store::kb::{FeedbackAction, FeedbackCounts};
use crate::store::turns::ConversationInfo;
use crate::store::Store;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// Suggestions offered at most from the knowledge base, and from agents' earlier replies.
const SUGGESTIONS: usize = 3;
const REPLY_SUGGESTIONS: usize = 2;

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
    /// `kb` (a knowledge-base answer) or `agent_reply` (what an agent sent in a similar
    /// resolved conversation; `title` is the customer message it answered).
    pub source: String,
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
    /// `flows` (the flows file's procedure for the intent) or `article` (the steps of the
    /// intent's knowledge-base article, for intents the flows do not cover).
    pub source: String,
    /// The flows' action id of this step (ABCD-style, e.g. `pull-up-account`) and its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub article_id: Option<String>,
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
    if let Some(line) = last {
        let query_language = language.as_deref().and_then(answer_language);
        let own = replies::id_prefix(id);
        let mut qvec: Option<Vec<f32>> = None;
        for (kb_name, source, n) in [
            (None, "kb", SUGGESTIONS),
            (Some(replies::REPLIES_KB), "agent_reply", REPLY_SUGGESTIONS),
        ] {
            let Ok((name, index)) = kb.index(kb_name, "kb") else {
                continue;
            };
            if qvec.is_none() {
                let v = kb.embed(models, vec![line.text.clone()]).await?;
                qvec = Some(v.into_iter().next().unwrap_or_default());
            }
            let q = Query {
                text: &line.text,
                vec: qvec.as_deref().unwrap_or_default(),
                top_k: n * 2,
                language: query_language,
                mode: Mode::Hybrid,
                intent: intent.as_deref(),
            };
            // The conversation's language, as detected on its turns: no detection per search.
            let mut found: Vec<Suggestion> = kb
                .search_in(&index, &q, language.as_deref())?
                .into_iter()
                // Not this conversation's own replies from an earlier resolution.
                .filter(|h| !h.id.starts_with(&own))
                .map(|h| Suggestion {
                    key: h.key(&name),
                    source: source.to_string(),
                    text: h.reply(),
                    article_id: h.id.clone(),
                    title: h.title.clone(),
                    confidence: h.confidence,
                    score: h.confidence,
                    used: 0,
                    edited: 0,
                    dismissed: 0,
                })
                .collect();
            rerank(store, &mut found, n).await?;
            suggestions.extend(found);
        }
        suggestions.sort_by(|a, b| b.score.total_cmp(&a.score));
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
async fn rerank(store: &Arc<Store>, s: &mut Vec<Suggestion>, keep: usize) -> AppResult<()> {
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
    s.truncate(keep);
    Ok(())
}

/// The procedure of `intent` from the flows, else the steps of the first article (by id) tagged
/// with it, in the conversation's language when there is one; the step after `done` agent
/// replies.
fn next_step(kb: &Kb, intent: &str, language: Option<&str>, done: usize) -> Option<NextStep> {
    if let Some(flow) = kb.flows.steps(intent) {
        let i = done.min(flow.len() - 1);
        return Some(NextStep {
            intent: intent.to_string(),
            source: "flows".into(),
            action: Some(flow[i].action.clone()),
            action_name: Some(flow[i].name_in(language).to_string()),
            article_id: None,
            step: i + 1,
            text: flow[i].text_in(language).to_string(),
            steps: flow
                .iter()
                .map(|s| s.text_in(language).to_string())
                .collect(),
        });
    }
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
        source: "article".into(),
        action: None,
        action_name: None,
        article_id: Some(e.article.id.clone()),
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

/// Resolve conversation `id`: first its agent replies since the last resolution become
/// suggestions for later conversations (when a knowledge base is served), then it is marked
/// resolved, so a failure leaves it unresolved and a retry learns the same replies once.
pub async fn resolve(
    kb: Option<&Kb>,
    store: &Arc<Store>,
    models: &Models,
    id: &str,
) -> AppResult<ConversationInfo> {
    let (st, cid) = (store.clone(), id.to_string());
    let before = blocking(move || st.conversation(&cid)).await?;
    if let Some(kb) = kb {
        replies::learn(kb, store, models, id, before.resolved_turn).await?;
    }
    let (st, cid) = (store.clone(), id.to_string());
    blocking(move || st.resolve(&cid)).await
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> AppResult<T> + Send + 'static,
) -> AppResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("assist task: {e}")))?
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
