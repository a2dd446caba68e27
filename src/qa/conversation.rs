//! A whole conversation against the scorecard: every agent reply inspected (as when it was
//! posted), the `required` items (a greeting in the first agent reply, a closing in the last,
//! an apology after a complaint) and the `timing` items (first response, longest wait, handle
//! time) from the stored turns, with a pass or fail per item and the score.

use super::scorecard::{Check, Metric, Outcome, When};
use super::{Evidence, Inspection, Inspector, ReplyScores};
use crate::store::turns::TurnRecord;
use serde::Serialize;
use std::collections::HashMap;

/// Evidence in one turn.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TurnEvidence {
    pub turn: u32,
    #[serde(flatten)]
    pub evidence: Evidence,
}

/// One scorecard item over the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ItemResult {
    pub id: String,
    pub title: String,
    pub check: String,
    pub passed: bool,
    pub weight: u32,
    pub fatal: bool,
    /// Where it failed (reply checks), or where a required phrase was found.
    pub evidence: Vec<TurnEvidence>,
    /// Why, in words (e.g. `first_response_ms 93000 > 60000`, `no agent reply`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The conversation's timings in milliseconds (None when there is nothing to measure).
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Timings {
    pub first_response_ms: Option<i64>,
    pub max_response_ms: Option<i64>,
    pub mean_response_ms: Option<i64>,
    pub handle_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ConversationQa {
    pub conversation_id: String,
    /// 100 less the failed items' weights; 0 after a failed fatal item.
    pub score: u32,
    pub fatal: bool,
    pub agent_replies: usize,
    pub items: Vec<ItemResult>,
    pub timings: Timings,
    /// Each agent reply's own inspection, by turn.
    pub replies: Vec<ReplyQa>,
    /// Whether the conversation is resolved (no turn after its last resolution), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<bool>,
    /// Whether the customer wrote again after the last resolution, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reopened: Option<bool>,
    /// How the customer's negative emotion moved across the agent's turns, when it can be told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trajectory: Option<Trajectory>,
}

/// The customer's negative emotion (0-1: the escalation score, else the strongest of anger,
/// frustration, sadness and fear) before the first agent reply and at the last customer turn
/// after it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Trajectory {
    pub before: f32,
    pub after: f32,
    /// `improved`, `unchanged` or `worse` (a move of more than `TRAJECTORY_BAND`, or the
    /// item's threshold for `worse`).
    pub change: String,
}

/// A move of the negative emotion smaller than this is `unchanged`.
pub const TRAJECTORY_BAND: f32 = 0.2;

/// A customer turn's negative emotion, when it has an emotion answer.
fn negativity(t: &TurnRecord) -> Option<f32> {
    let e = t.signals.emotion.as_ref()?;
    Some(match e.escalation {
        Some(s) => s as f32,
        None => ["anger", "frustration", "sadness", "fear"]
            .iter()
            .filter_map(|g| e.groups.get(*g))
            .fold(0.0f64, |a, b| a.max(*b)) as f32,
    })
}

/// The trajectory over `turns` (None without an agent reply and emotion on both sides).
pub fn trajectory(turns: &[TurnRecord], worse_at: f32) -> Option<Trajectory> {
    let first = turns.iter().position(|t| t.role == "agent")?;
    let customer = |ts: &[TurnRecord]| {
        ts.iter()
            .rev()
            .filter(|t| t.role == "customer")
            .find_map(negativity)
    };
    let before = customer(&turns[..first])?;
    let after = customer(&turns[first..])?;
    let d = after - before;
    let change = if d > worse_at {
        "worse"
    } else if d < -TRAJECTORY_BAND {
        "improved"
    } else {
        "unchanged"
    };
    Some(Trajectory {
        before,
        after,
        change: change.into(),
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReplyQa {
    pub turn: u32,
    pub inspection: Inspection,
}

/// Response times: for each agent reply, the wait since the oldest customer message it answers.
pub fn timings(turns: &[TurnRecord]) -> Timings {
    let mut waits = Vec::new();
    let mut waiting_since: Option<i64> = None;
    for t in turns {
        match t.role.as_str() {
            "customer" => {
                waiting_since.get_or_insert(t.at_ms);
            }
            "agent" => {
                if let Some(since) = waiting_since.take() {
                    waits.push((t.at_ms - since).max(0));
                }
            }
            _ => {}
        }
    }
    let first = turns.first().map(|t| t.at_ms);
    let last = turns.last().map(|t| t.at_ms);
    Timings {
        first_response_ms: waits.first().copied(),
        max_response_ms: waits.iter().max().copied(),
        mean_response_ms: (!waits.is_empty())
            .then(|| waits.iter().sum::<i64>() / waits.len() as i64),
        handle_ms: first.zip(last).map(|(a, b)| (b - a).max(0)),
    }
}

/// A customer turn that complains: the `complaint` intent, or an escalation.
fn complains(t: &TurnRecord) -> bool {
    t.role == "customer"
        && (t
            .signals
            .intent
            .as_ref()
            .is_some_and(|i| i.label == "complaint")
            || t.signals.emotion.as_ref().is_some_and(|e| e.escalate))
}

/// The reply sentence most similar to a `required` item's examples (`similar::required`).
#[derive(Debug, Clone, PartialEq)]
pub struct Similar {
    pub turn: u32,
    pub evidence: Evidence,
    pub cosine: f32,
}

/// The agent reply a `required` item looks at.
pub fn target_turn(when: When, turns: &[TurnRecord]) -> Option<&TurnRecord> {
    let mut agent = turns.iter().filter(|t| t.role == "agent");
    match when {
        When::FirstReply => agent.next(),
        When::LastReply => agent.next_back(),
        When::AfterComplaint => turns
            .iter()
            .position(complains)
            .and_then(|i| turns[i..].iter().find(|t| t.role == "agent")),
    }
}

/// What the store and the models add to a conversation's turns.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// The models' scores of agent replies, by turn, as they were when posted.
    pub scores: HashMap<u32, ReplyScores>,
    /// The sentence most like each `required` item's examples (`similar::required`).
    pub similar: HashMap<String, Similar>,
    /// The turn of the last resolution (0: never resolved); None: not known.
    pub resolved_turn: Option<u32>,
}

impl Inspector {
    /// The scorecard over conversation `id`'s `turns`, with the rule checks only.
    pub fn conversation(&self, id: &str, turns: &[TurnRecord]) -> ConversationQa {
        self.conversation_scored(id, turns, &Known::default())
    }

    /// The scorecard over conversation `id`'s `turns`, with what else is `known` of it.
    pub fn conversation_scored(
        &self,
        id: &str,
        turns: &[TurnRecord],
        known: &Known,
    ) -> ConversationQa {
        let (scores, similar) = (&known.scores, &known.similar);
        let last = turns.last().map_or(0, |t| t.turn);
        let resolved = known.resolved_turn.map(|r| r > 0 && r >= last);
        let reopened = known
            .resolved_turn
            .map(|r| r > 0 && turns.iter().any(|t| t.turn > r && t.role == "customer"));
        let agent: Vec<&TurnRecord> = turns.iter().filter(|t| t.role == "agent").collect();
        let replies: Vec<ReplyQa> = agent
            .iter()
            .map(|t| ReplyQa {
                turn: t.turn,
                inspection: self
                    .inspect_scored(&t.text, scores.get(&t.turn).copied().unwrap_or_default()),
            })
            .collect();
        let timings = timings(turns);
        let worse_at = self
            .scorecard()
            .items
            .iter()
            .find_map(|it| match it.check {
                Check::Trajectory(t) => Some(t),
                _ => None,
            })
            .unwrap_or(TRAJECTORY_BAND);
        let trajectory = trajectory(turns, worse_at);
        let mut items = Vec::new();
        for it in &self.scorecard().items {
            let mut evidence = Vec::new();
            let mut detail = None;
            let passed = match &it.check {
                Check::Outcome(o) => {
                    let (ok, text) = match (o, resolved, reopened, known.resolved_turn) {
                        (_, None, _, _) | (_, _, None, _) => (true, "not known".to_string()),
                        (Outcome::Resolved, Some(true), _, Some(r)) => {
                            (true, format!("resolved at turn {r}"))
                        }
                        (Outcome::Resolved, Some(false), _, Some(0)) => {
                            (false, "not resolved".into())
                        }
                        (Outcome::Resolved, Some(false), _, Some(r)) => {
                            (false, format!("turns after the resolution at turn {r}"))
                        }
                        (Outcome::NotReopened, _, Some(true), Some(r)) => (
                            false,
                            format!("the customer wrote again after the resolution at turn {r}"),
                        ),
                        (Outcome::NotReopened, _, Some(false), _) => (true, "not reopened".into()),
                        _ => (true, "not known".into()),
                    };
                    detail = Some(text);
                    ok
                }
                Check::Trajectory(_) => match &trajectory {
                    Some(t) => {
                        detail = Some(format!("{}: {:.2} -> {:.2}", t.change, t.before, t.after));
                        t.change != "worse"
                    }
                    None => {
                        detail = Some("no customer emotion on both sides of an agent reply".into());
                        true
                    }
                },
                Check::Lexicon | Check::Regex(_) | Check::Pii(_) | Check::Model(..) => {
                    for r in &replies {
                        for f in r.inspection.findings.iter().filter(|f| f.item == it.id) {
                            evidence.extend(f.evidence.iter().map(|e| TurnEvidence {
                                turn: r.turn,
                                evidence: e.clone(),
                            }));
                        }
                    }
                    evidence.is_empty()
                }
                Check::Required(when, phrases, examples) => {
                    let target = target_turn(*when, turns);
                    let applies = match when {
                        When::AfterComplaint => turns.iter().any(complains),
                        _ => !agent.is_empty(),
                    };
                    match target {
                        Some(t) => {
                            let chars: Vec<char> = t.text.chars().collect();
                            evidence.extend(phrases.find(&t.text).into_iter().take(1).map(|f| {
                                TurnEvidence {
                                    turn: t.turn,
                                    evidence: Evidence {
                                        text: chars[f.start..f.end].iter().collect(),
                                        start: f.start,
                                        end: f.end,
                                    },
                                }
                            }));
                            let like = examples.as_ref().zip(similar.get(&it.id));
                            if let (true, Some((ex, s))) = (evidence.is_empty(), like) {
                                if s.cosine >= ex.similarity {
                                    evidence.push(TurnEvidence {
                                        turn: s.turn,
                                        evidence: s.evidence.clone(),
                                    });
                                }
                                detail = Some(format!(
                                    "similarity to the examples {:.3} (needs {:.3})",
                                    s.cosine, ex.similarity
                                ));
                            } else if evidence.is_empty() {
                                detail = Some(format!("none of the phrases in turn {}", t.turn));
                            }
                            !evidence.is_empty()
                        }
                        None if applies => {
                            detail = Some("no agent reply to check".into());
                            false
                        }
                        None => {
                            detail = Some("does not apply".into());
                            true
                        }
                    }
                }
                Check::Timing(metric, max) => {
                    let v = match metric {
                        Metric::FirstResponse => timings.first_response_ms,
                        Metric::MaxResponse => timings.max_response_ms,
                        Metric::Handle => timings.handle_ms,
                    };
                    match v {
                        Some(v) if v > *max as i64 => {
                            detail = Some(format!("{} {v} > {max}", metric.as_str()));
                            false
                        }
                        Some(v) => {
                            detail = Some(format!("{} {v} <= {max}", metric.as_str()));
                            true
                        }
                        None => {
                            detail = Some(format!("no {} yet", metric.as_str()));
                            true
                        }
                    }
                }
            };
            items.push(ItemResult {
                id: it.id.clone(),
                title: it.title.clone(),
                check: it.check.name().to_string(),
                passed,
                weight: it.weight,
                fatal: it.fatal,
                evidence,
                detail,
            });
        }
        let fatal = items.iter().any(|i| !i.passed && i.fatal);
        let lost: u32 = items.iter().filter(|i| !i.passed).map(|i| i.weight).sum();
        ConversationQa {
            conversation_id: id.to_string(),
            score: if fatal {
                0
            } else {
                100u32.saturating_sub(lost)
            },
            fatal,
            agent_replies: agent.len(),
            items,
            timings,
            replies,
            resolved,
            reopened,
            trajectory,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qa::QaConfig;
    use crate::store::signals::StoredSignals;

    fn turn(turn: u32, at_s: i64, role: &str, text: &str) -> TurnRecord {
        TurnRecord {
            turn,
            at_ms: at_s * 1000,
            role: role.into(),
            text: text.into(),
            channel: None,
            agent_id: None,
            signals: StoredSignals::default(),
            route: None,
            memo: None,
        }
    }

    fn item<'a>(q: &'a ConversationQa, id: &str) -> &'a ItemResult {
        q.items.iter().find(|i| i.id == id).unwrap()
    }

    #[test]
    fn a_polite_quick_conversation_passes_everything() {
        let turns = [
            turn(1, 0, "customer", "我的快递三天没动了"),
            turn(2, 30, "agent", "您好，我马上为您查询。"),
            turn(3, 60, "customer", "好的"),
            turn(4, 90, "agent", "已为您催件，感谢您的耐心，祝您生活愉快！"),
        ];
        let q = Inspector::open(&QaConfig::default())
            .unwrap()
            .conversation("c", &turns);
        assert_eq!(q.score, 100, "{q:#?}");
        assert_eq!(q.timings.first_response_ms, Some(30_000));
        assert_eq!(q.timings.handle_ms, Some(90_000));
        assert_eq!(item(&q, "greeting").evidence[0].evidence.text, "您好");
        assert_eq!(
            item(&q, "apology_after_complaint").detail.as_deref(),
            Some("does not apply")
        );
    }

    #[test]
    fn missing_greeting_late_reply_and_no_apology_after_a_complaint_fail() {
        let mut complaint = turn(
            1,
            0,
            "customer",
            "I want to file a complaint, this is awful",
        );
        complaint.signals.intent = Some(crate::store::signals::Intent {
            intent_set: "bitext".into(),
            label: "complaint".into(),
            out_of_scope: false,
            score: 0.9,
            top: Vec::new(),
        });
        let turns = [
            complaint,
            turn(2, 900, "agent", "What is the order number?"),
            turn(3, 960, "customer", "123"),
            turn(4, 1000, "agent", "Done."),
        ];
        let q = Inspector::open(&QaConfig::default())
            .unwrap()
            .conversation("c", &turns);
        for id in [
            "greeting",
            "closing",
            "apology_after_complaint",
            "first_response",
        ] {
            assert!(!item(&q, id).passed, "{id}: {q:#?}");
        }
        assert_eq!(
            item(&q, "first_response").detail.as_deref(),
            Some("first_response_ms 900000 > 300000")
        );
        assert!(q.score < 100 && !q.fatal);
    }

    fn upset(mut t: TurnRecord, escalation: f64) -> TurnRecord {
        t.signals = serde_json::from_value(serde_json::json!({"emotion": {
            "emotions": {}, "escalate": escalation >= 0.5, "escalation": escalation,
            "groups": {"anger": escalation}, "labels": [], "reasons": [], "top_group": "anger"
        }}))
        .unwrap();
        t
    }

    #[test]
    fn the_customer_emotion_trajectory_across_the_agent_turns() {
        let qa = Inspector::open(&QaConfig::default()).unwrap();
        let conv = |after: f64| {
            vec![
                upset(turn(1, 0, "customer", "Where is my order?"), 0.3),
                turn(2, 10, "agent", "Hello, let me check that for you."),
                upset(turn(3, 20, "customer", "ok"), after),
            ]
        };
        let item = |q: &ConversationQa| {
            q.items
                .iter()
                .find(|i| i.id == "customer_emotion")
                .cloned()
                .unwrap()
        };
        let q = qa.conversation("c", &conv(0.9));
        let t = q.trajectory.clone().unwrap();
        assert_eq!((t.change.as_str(), t.before, t.after), ("worse", 0.3, 0.9));
        assert!(!item(&q).passed, "{q:?}");
        let q = qa.conversation("c", &conv(0.05));
        assert_eq!(q.trajectory.clone().unwrap().change, "improved");
        assert!(item(&q).passed);
        let q = qa.conversation("c", &conv(0.4));
        assert_eq!(q.trajectory.unwrap().change, "unchanged");
        // No emotion before the agent's reply: nothing to compare, the item passes.
        let mut c = conv(0.9);
        c[0].signals = StoredSignals::default();
        let q = qa.conversation("c", &c);
        assert!(q.trajectory.is_none() && item(&q).passed);
    }
}
