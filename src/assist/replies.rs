//! Replies agents sent in resolved conversations, kept as suggestions for later ones: when a
//! conversation is resolved, each agent reply is stored with the customer message it answered
//! as an article of the knowledge base `_agent_replies` (body: the customer's words, what
//! search matches; answer: the agent's reply), so it is durable, replicated and searched like
//! any article. Ids are a hash of the conversation and the reply's turn: resolving twice, or
//! a retried resolve, writes each reply once.

use crate::engine::Models;
use crate::error::AppResult;
use crate::kb::{Article, Kb};
use crate::store::turns::TurnRecord;
use crate::store::Store;
use std::sync::Arc;

/// The knowledge base that holds agents' replies from resolved conversations.
pub const REPLIES_KB: &str = "_agent_replies";

/// Customer text kept per reply (the messages since the agent's previous reply), in characters.
const MAX_QUESTION_CHARS: usize = 1000;
/// Reply text kept, in characters.
const MAX_REPLY_CHARS: usize = 4000;

/// The article id prefix of conversation `id`'s replies: `r-<16 hex>-`.
pub fn id_prefix(conversation: &str) -> String {
    // FNV-1a: stable across builds and machines (the ids are stored).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in conversation.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    format!("r-{h:016x}-")
}

/// One article per agent reply in `turns` after turn `after` that answers customer text: the
/// customer messages since the previous reply (the last ones first when they are long).
pub fn articles(conversation: &str, turns: &[TurnRecord], after: u32) -> Vec<Article> {
    let prefix = id_prefix(conversation);
    let mut asked: Vec<&TurnRecord> = Vec::new();
    let mut out = Vec::new();
    for t in turns.iter().filter(|t| t.turn > after) {
        match t.role.as_str() {
            "customer" => asked.push(t),
            "agent" if !asked.is_empty() && !t.text.trim().is_empty() => {
                let question = joined_tail(&asked, MAX_QUESTION_CHARS);
                let last = asked.last().map(|c| &c.signals);
                let language = last
                    .and_then(|s| s.language.as_ref())
                    .map(|l| l.language.clone())
                    .filter(|l| l != "und");
                let tags = last
                    .and_then(|s| s.intent.as_ref())
                    .filter(|i| !i.out_of_scope)
                    .map(|i| vec![i.label.clone()])
                    .unwrap_or_default();
                out.push(Article {
                    id: format!("{prefix}{}", t.turn),
                    title: question.chars().take(120).collect(),
                    body: question,
                    answer: Some(t.text.trim().chars().take(MAX_REPLY_CHARS).collect()),
                    language,
                    tags,
                    steps: Vec::new(),
                });
                asked.clear();
            }
            _ => {}
        }
    }
    out
}

/// The last customer messages, newest kept whole, joined by newlines, at most `max` characters.
fn joined_tail(asked: &[&TurnRecord], max: usize) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut left = max;
    for t in asked.iter().rev() {
        let text = t.text.trim();
        let n = text.chars().count();
        if n == 0 {
            continue;
        }
        if n > left {
            if parts.is_empty() {
                parts.push(text.chars().take(left).collect());
            }
            break;
        }
        left -= n;
        parts.push(text.to_string());
    }
    parts.reverse();
    parts.join("\n")
}

/// Store the agent replies of conversation `id` since its last resolution (turns after
/// `after`) as suggestions; the number written. Runs before the conversation is marked
/// resolved, so a failure leaves it unresolved and a retry writes the same ids.
pub async fn learn(
    kb: &Kb,
    store: &Arc<Store>,
    models: &Models,
    id: &str,
    after: u32,
) -> AppResult<usize> {
    let (st, cid) = (store.clone(), id.to_string());
    let turns = tokio::task::spawn_blocking(move || st.turns(&cid, None))
        .await
        .map_err(|e| crate::error::AppError::Internal(anyhow::anyhow!("assist task: {e}")))??;
    let mut checked = Vec::new();
    for a in articles(id, &turns, after) {
        // A reply that fails the article checks (e.g. over the size limit) is not a suggestion.
        if let Ok(a) = a.checked("", &kb.cfg) {
            checked.push(a);
        }
    }
    if checked.is_empty() {
        return Ok(0);
    }
    let n = checked.len();
    kb.put(models, REPLIES_KB, checked, "replies").await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::signals::StoredSignals;

    fn turn(turn: u32, role: &str, text: &str) -> TurnRecord {
        TurnRecord {
            turn,
            at_ms: 0,
            role: role.to_string(),
            text: text.to_string(),
            channel: None,
            agent_id: None,
            signals: StoredSignals::default(),
            route: None,
            memo: None,
        }
    }

    #[test]
    fn each_reply_answers_the_messages_since_the_last_one() {
        let turns = vec![
            turn(1, "customer", "hi"),
            turn(2, "customer", "my parcel is late"),
            turn(3, "agent", "I have re-sent it."),
            turn(4, "agent", "Anything else?"),
            turn(5, "customer", "no thanks"),
            turn(6, "bot", "bye"),
            turn(7, "customer", "wait, where is my refund?"),
            turn(8, "agent", "  Refunds take 5 days.  "),
        ];
        let a = articles("c@1", &turns, 0);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].body, "hi\nmy parcel is late");
        assert_eq!(a[0].answer.as_deref(), Some("I have re-sent it."));
        assert_eq!(a[1].body, "no thanks\nwait, where is my refund?");
        assert_eq!(a[1].answer.as_deref(), Some("Refunds take 5 days."));
        assert_eq!(a[1].id, format!("{}8", id_prefix("c@1")));
        // Only turns after the last resolution.
        let later = articles("c@1", &turns, 5);
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].body, "wait, where is my refund?");
        // Ids are stable, distinct per conversation and valid article ids.
        assert_ne!(id_prefix("c@1"), id_prefix("c@2"));
        assert!(crate::kb::check_id("id", &a[0].id).is_ok());
    }

    #[test]
    fn long_questions_keep_the_newest_message() {
        let long = "x".repeat(1500);
        let turns = vec![
            turn(1, "customer", "old"),
            turn(2, "customer", &long),
            turn(3, "agent", "ok"),
        ];
        let a = articles("c", &turns, 0);
        assert_eq!(a[0].body.chars().count(), MAX_QUESTION_CHARS);
    }
}
