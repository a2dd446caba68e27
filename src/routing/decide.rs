//! The routing decision: a pure function of the policy, this turn's signals and the
//! conversation's earlier turns (since its last resolution). Every decision names its rules.

use super::phrases;
use super::policy::{Policy, Target};
use crate::heads::emotion;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The intent signal of one turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentSignal {
    pub label: String,
    pub score: f32,
    pub out_of_scope: bool,
}

/// Everything the policy looks at in one turn.
#[derive(Debug, Clone)]
pub struct TurnSignals<'a> {
    pub text: &'a str,
    /// The language queues are chosen by (the customer's own when given, else detected).
    pub language: &'a str,
    pub intent: Option<&'a IntentSignal>,
    /// Emotion group scores (see `heads::emotion::GROUPS`).
    pub emotion: Option<&'a BTreeMap<String, f32>>,
    pub tier: Option<&'a str>,
    /// The abuse head's calibrated abusive score (0.5: detected), when one is served.
    pub abuse: Option<f32>,
    /// The escalation head's calibrated score, when one is served.
    pub escalation: Option<f32>,
    /// A screenshot sent with the message, as recognised.
    pub screenshot: Option<ScreenshotSignal<'a>>,
    /// What the knowledge base answered, when it was asked.
    pub kb: Option<KbSignal<'a>>,
}

/// The knowledge base's answer to the message.
#[derive(Debug, Clone, Copy)]
pub struct KbSignal<'a> {
    /// The article the bot answers from, or None when no hit cleared the threshold.
    pub answered: Option<&'a str>,
    /// The best hit's confidence.
    pub confidence: f32,
}

/// What `/v1/screenshot` made of an attached screenshot.
#[derive(Debug, Clone, Copy)]
pub struct ScreenshotSignal<'a> {
    /// The recognised fault, or `None` when no known fault matched.
    pub fault: Option<&'a str>,
    /// The catalog's hint for that fault: `bot` or `agent`.
    pub route_hint: &'a str,
}

/// What the policy remembers of a turn, stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PastTurn {
    pub turn: u32,
    pub target: Target,
    pub low_confidence: bool,
    pub negativity: f32,
    pub escalated: bool,
    /// The knowledge base was asked and had no answer.
    #[serde(default)]
    pub unanswered: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reason {
    pub code: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Route {
    pub target: Target,
    pub queue: String,
    pub priority: i32,
    pub reasons: Vec<Reason>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub route: Route,
    /// This turn as later decisions will see it.
    pub memo: PastTurn,
}

struct Fired {
    target: Target,
    priority: i32,
    reason: Reason,
}

fn fire(out: &mut Vec<Fired>, target: Target, priority: i32, code: &str, detail: String) {
    out.push(Fired {
        target,
        priority,
        reason: Reason {
            code: code.into(),
            detail,
        },
    });
}

/// Decide the route of turn number `turn`. `history` holds the earlier turns since the last
/// resolution, oldest first; `esc` holds the emotion escalation thresholds.
pub fn decide(
    policy: &Policy,
    esc: &emotion::EscalationConfig,
    signals: &TurnSignals,
    history: &[PastTurn],
    turn: u32,
) -> Decision {
    let mut fired = Vec::new();
    let tier = signals
        .tier
        .and_then(|t| policy.tiers.get(t).map(|r| (t, r)));

    for k in &policy.keywords {
        if let Some(p) = phrases::find(signals.text, &k.phrases) {
            let code = format!("keyword.{}", k.code);
            fire(
                &mut fired,
                k.target,
                k.priority,
                &code,
                format!("the message says `{p}`"),
            );
        }
    }
    let h = &policy.human_request;
    if let Some(p) = phrases::find(signals.text, &h.phrases) {
        let detail = format!("the customer asks for a person: `{p}`");
        fire(&mut fired, h.target, h.priority, "request.human", detail);
    }

    // Intent and confidence.
    let low = match signals.intent {
        Some(i) => i.out_of_scope || i.score < policy.low_confidence,
        None => false,
    };
    if let Some(i) = signals.intent {
        let (l, s) = (&i.label, i.score);
        if i.out_of_scope {
            let detail = format!("out of scope (nearest intent {l} at {s:.2})");
            fire(&mut fired, Target::Agent, 0, "intent.out_of_scope", detail);
        } else {
            if policy.intents.expert.contains(l) {
                let detail = format!("intent {l} ({s:.2}) goes to experts");
                fire(&mut fired, Target::Expert, 0, "intent.expert", detail);
            } else if policy.intents.agent.contains(l) {
                let detail = format!("intent {l} ({s:.2}) goes to a person");
                fire(&mut fired, Target::Agent, 0, "intent.agent", detail);
            }
            if s < policy.min_confidence {
                let detail = format!("intent {l} at {s:.2} < {:.2}", policy.min_confidence);
                fire(&mut fired, Target::Agent, 0, "confidence.low", detail);
            }
        }
    }
    let recent = &history[history
        .len()
        .saturating_sub(policy.window.saturating_sub(1))..];
    let lows = recent.iter().filter(|t| t.low_confidence).count() + usize::from(low);
    if low && lows >= policy.repeated_low_turns && policy.repeated_low_turns > 0 {
        let detail = format!(
            "{lows} low-confidence turns (< {:.2}) in the last {}",
            policy.low_confidence, policy.window
        );
        fire(
            &mut fired,
            Target::Agent,
            0,
            "confidence.repeated_low",
            detail,
        );
    }

    // Emotion: the escalation flag (tier-scaled thresholds), the trend, repeats.
    let e = &policy.emotion;
    let (mut escalated, mut negativity) = (false, 0.0f32);
    if let Some(groups) = signals.emotion {
        let scale = tier.map_or(1.0, |(_, r)| r.escalate_scale);
        let cfg = emotion::EscalationConfig {
            thresholds: esc
                .thresholds
                .iter()
                .map(|(g, t)| (g.clone(), (t * scale).min(1.0)))
                .collect(),
            head: (esc.head * scale).min(1.0),
        };
        let (esc, why) = emotion::escalation(groups, signals.escalation, &cfg);
        escalated = esc;
        negativity = e
            .negative_groups
            .iter()
            .filter_map(|g| groups.get(g))
            .fold(0.0, |a, b| a.max(*b));
        if esc {
            let detail = why.join(", ");
            fire(
                &mut fired,
                e.escalate,
                e.escalate_priority,
                "emotion.escalate",
                detail,
            );
        }
        let n = e.worsening_turns;
        if n >= 2 && history.len() + 1 >= n {
            let mut seq: Vec<f32> = history[history.len() + 1 - n..]
                .iter()
                .map(|t| t.negativity)
                .collect();
            seq.push(negativity);
            let rising = seq.windows(2).all(|w| w[1] >= w[0] - 0.02);
            let rise = seq[n - 1] - seq[0];
            if rising && rise >= e.worsening_delta {
                let detail = format!(
                    "negativity rose from {:.2} to {:.2} over {n} turns",
                    seq[0],
                    seq[n - 1]
                );
                fire(
                    &mut fired,
                    e.worsening_target,
                    0,
                    "emotion.worsening",
                    detail,
                );
            }
        }
        let escs = recent.iter().filter(|t| t.escalated).count() + usize::from(esc);
        if esc && e.repeated_escalations > 0 && escs >= e.repeated_escalations {
            let detail = format!("{escs} escalated turns in the last {}", policy.window);
            let t = e.repeated_escalations_target;
            fire(&mut fired, t, 0, "emotion.repeated_escalation", detail);
        }
    }

    if let (Some(rule), Some(score)) = (&policy.abuse, signals.abuse) {
        if score >= rule.threshold {
            let detail = format!("abusive language ({score:.2} >= {:.2})", rule.threshold);
            fire(&mut fired, rule.target, rule.priority, "abuse", detail);
        }
    }

    match signals.screenshot {
        Some(ScreenshotSignal {
            fault: Some(f),
            route_hint,
        }) => {
            let (target, why) = if route_hint == "agent" {
                (Target::Agent, "a person must act")
            } else {
                (Target::Bot, "the bot can offer the catalog's solution")
            };
            let detail = format!("the screenshot shows {f}: {why}");
            fire(&mut fired, target, 0, "screenshot.fault", detail);
        }
        Some(_) => {
            let detail = "the screenshot matches no known fault: a person looks".to_string();
            fire(
                &mut fired,
                Target::Agent,
                0,
                "screenshot.unrecognised",
                detail,
            );
        }
        None => {}
    }

    let unanswered = signals.kb.is_some_and(|k| k.answered.is_none());
    match (signals.kb, &policy.kb) {
        (
            Some(KbSignal {
                answered: Some(id),
                confidence,
            }),
            _,
        ) => {
            let detail = format!("answered from article {id} ({confidence:.2})");
            fire(&mut fired, Target::Bot, 0, "kb.answered", detail);
        }
        (Some(k), Some(rule)) if rule.no_answer_turns > 0 => {
            let misses = history.iter().rev().take_while(|t| t.unanswered).count() + 1;
            if misses >= rule.no_answer_turns {
                let detail = format!(
                    "{misses} turns the knowledge base could not answer (best {:.2})",
                    k.confidence
                );
                fire(
                    &mut fired,
                    rule.target,
                    rule.priority,
                    "kb.no_answer",
                    detail,
                );
            }
        }
        _ => {}
    }

    if let Some((name, r)) = tier {
        let target = r.min_target.unwrap_or(Target::Bot);
        let detail = format!("{name} customer: priority {:+}", r.priority);
        fire(&mut fired, target, r.priority, "customer.tier", detail);
    }

    let mut target = fired.iter().map(|f| f.target).max().unwrap_or(Target::Bot);
    if target == Target::Bot {
        let bot_turns = history
            .iter()
            .rev()
            .take_while(|t| t.target == Target::Bot)
            .count()
            + 1;
        if bot_turns >= policy.max_bot_turns {
            let detail = format!("{bot_turns} bot turns without resolution");
            fire(&mut fired, Target::Agent, 0, "bot.max_turns", detail);
            target = Target::Agent;
        }
    }
    if policy.sticky {
        if let Some(prev) = history.last().filter(|p| p.target > target) {
            let since = history
                .iter()
                .rev()
                .take_while(|t| t.target >= prev.target)
                .last()
                .map_or(prev.turn, |t| t.turn);
            let detail = format!("stays with {} since turn {since}", prev.target.as_str());
            fire(&mut fired, prev.target, 0, "route.sticky", detail);
            target = prev.target;
        }
    }
    let answered = fired.iter().any(|f| f.reason.code == "kb.answered");
    if !fired.iter().any(|f| f.target > Target::Bot) && target == Target::Bot && !answered {
        let detail = match signals.intent {
            Some(i) => format!("routine question (intent {} at {:.2})", i.label, i.score),
            None => "no rule fired".to_string(),
        };
        fire(&mut fired, Target::Bot, 0, "routine", detail);
    }

    let base = policy.base_priority.get(&target).copied().unwrap_or(0);
    // Summed wide: the policy's priorities are any i32, and their sum must not overflow.
    let sum = fired.iter().map(|f| i64::from(f.priority)).sum::<i64>();
    let priority = (i64::from(base) + sum).clamp(0, 9) as i32;
    let group = signals
        .intent
        .filter(|i| !i.out_of_scope)
        .and_then(|i| policy.group_of(&i.label));
    let queue = choose_queue(policy, target, signals.language, group);
    Decision {
        route: Route {
            target,
            queue,
            priority,
            reasons: fired.into_iter().map(|f| f.reason).collect(),
        },
        memo: PastTurn {
            turn,
            target,
            low_confidence: low,
            negativity,
            escalated,
            unanswered,
        },
    }
}

/// The first queue whose targets, languages and groups all match (empty lists match any).
fn choose_queue(policy: &Policy, target: Target, language: &str, group: Option<&str>) -> String {
    let lang = language
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_lowercase();
    policy
        .queues
        .iter()
        .find(|q| {
            (q.targets.is_empty() || q.targets.contains(&target))
                && (q.languages.is_empty() || q.languages.iter().any(|l| l.to_lowercase() == lang))
                && (q.groups.is_empty() || group.is_some_and(|g| q.groups.iter().any(|x| x == g)))
        })
        .map(|q| q.name.clone())
        // `Policy::check` guarantees a catch-all queue per target.
        .unwrap_or_else(|| target.as_str().to_string())
}
