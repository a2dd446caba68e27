//! Real-time inspection of a posted reply: the rule checks, plus the abuse head's score when
//! the scorecard has a `model` item (one encoder pass); then the reply, its inspection, its `qa`
//! live event and a fatal finding's webhook rows in one store transaction, after which the
//! event streams and the webhook worker are woken at once.

use super::{Inspection, Inspector, QaConfig, ReplyScores};
use crate::engine::Models;
use crate::error::{AppError, AppResult};
use crate::heads::registry::HeadRegistry;
use crate::lang::LangId;
use crate::store::qa::{NewReply, QaWrite};
use crate::store::Store;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{watch, Notify};

/// What posting a reply needs.
pub struct Live<'a> {
    /// None: inspection is off.
    pub inspector: Option<&'a Arc<Inspector>>,
    pub config: &'a QaConfig,
    pub models: &'a Models,
    pub heads: &'a HeadRegistry,
    pub lang: &'a Arc<LangId>,
    pub store: Arc<Store>,
    /// Set to the newest live event's sequence number.
    pub events: &'a watch::Sender<i64>,
    pub webhook_urls: &'a [String],
    pub webhook_wake: &'a Notify,
}

/// A reply to post (already checked).
pub struct Reply {
    pub conversation_id: String,
    /// `bot` or `agent`.
    pub role: String,
    pub text: String,
    pub agent_id: Option<String>,
}

/// What posting did.
pub struct Posted {
    pub turn: u32,
    /// An agent reply's inspection.
    pub qa: Option<Inspection>,
    /// How long the customer waited for this agent reply.
    pub response_ms: Option<i64>,
    /// The `qa` event's sequence number, when findings raised one.
    pub event_seq: Option<i64>,
}

/// The abuse head's score of `text`, when the scorecard asks for it and the head is served.
/// A model that cannot answer (still loading, overloaded) leaves the rule checks to decide.
async fn scores(l: &Live<'_>, qa: &Inspector, text: &str, admitted: Instant) -> ReplyScores {
    if !qa.needs_abuse() || l.heads.abuse.is_none() {
        return ReplyScores::default();
    }
    let r = crate::pipeline::signals::emotions(
        l.models,
        l.heads,
        l.lang,
        vec![text.to_string()],
        admitted,
    )
    .await;
    match r {
        Ok(mut v) => ReplyScores {
            abusive: v.pop().and_then(|e| e.abusive).map(|a| a.score),
        },
        Err(e) => {
            tracing::warn!(error = %e, "qa: the abuse head did not answer; rule checks only");
            ReplyScores::default()
        }
    }
}

/// Inspect (agent replies) and store a reply; 404 when the conversation does not exist.
pub async fn post_reply(l: Live<'_>, r: Reply, admitted: Instant) -> AppResult<Posted> {
    let inspection = match (l.inspector, r.role.as_str()) {
        (Some(qa), "agent") => {
            let s = scores(&l, qa, &r.text, admitted).await;
            Some(qa.inspect_scored(&r.text, s))
        }
        _ => None,
    };
    let store = l.store.clone();
    let (queue, urls) = (
        l.config.queue.clone(),
        match l.config.webhook_fatal {
            true => l.webhook_urls.to_vec(),
            false => Vec::new(),
        },
    );
    let ins = inspection.clone();
    let done = tokio::task::spawn_blocking(move || {
        let qa = ins.as_ref().map(|i| QaWrite {
            score: i.score,
            fatal: i.fatal,
            abusive: i.abusive,
            findings: serde_json::to_value(&i.findings).unwrap_or_default(),
            queue: &queue,
            webhook_urls: &urls,
        });
        store.append_reply(NewReply {
            conversation_id: &r.conversation_id,
            role: &r.role,
            text: &r.text,
            agent_id: r.agent_id.as_deref(),
            qa,
        })
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("reply task: {e}")))??;
    if let Some(seq) = done.event_seq {
        l.store.announce(seq, l.events);
    }
    if done.webhooks > 0 {
        l.webhook_wake.notify_one();
    }
    Ok(Posted {
        turn: done.turn,
        qa: inspection,
        response_ms: done.response_ms,
        event_seq: done.event_seq,
    })
}
