//! The routing policy: tiers, rule settings and queues, read from TOML and checked.

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Who takes a conversation, lowest tier first.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Bot,
    Agent,
    Expert,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Bot => "bot",
            Target::Agent => "agent",
            Target::Expert => "expert",
        }
    }

    pub fn parse(s: &str) -> Option<Target> {
        match s {
            "bot" => Some(Target::Bot),
            "agent" => Some(Target::Agent),
            "expert" => Some(Target::Expert),
            _ => None,
        }
    }
}

/// The policy (`[routing]` in the config; without one, `models/routing/default_policy.toml`).
/// A policy is given whole: the numbers, `emotion`, `human_request` and `queues` are required.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub low_confidence: f32,
    pub min_confidence: f32,
    pub repeated_low_turns: usize,
    pub window: usize,
    pub max_bot_turns: usize,
    pub sticky: bool,
    pub base_priority: BTreeMap<Target, i32>,
    #[serde(default)]
    pub intents: IntentRules,
    pub emotion: EmotionRules,
    pub human_request: HumanRequest,
    /// Abusive language (the abuse head's signal); without this section it routes nowhere.
    #[serde(default)]
    pub abuse: Option<AbuseRule>,
    /// Turns the knowledge base cannot answer; without this section they route nowhere.
    #[serde(default)]
    pub kb: Option<KbRule>,
    #[serde(default)]
    pub keywords: Vec<KeywordRule>,
    #[serde(default)]
    pub tiers: BTreeMap<String, TierRule>,
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    pub queues: Vec<QueueRule>,
}

/// Where a conversation goes when the knowledge base keeps having no answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KbRule {
    /// Consecutive unanswered turns (this one included) that hand the conversation over.
    pub no_answer_turns: usize,
    pub target: Target,
    #[serde(default)]
    pub priority: i32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntentRules {
    pub agent: Vec<String>,
    pub expert: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmotionRules {
    pub escalate: Target,
    #[serde(default)]
    pub escalate_priority: i32,
    pub negative_groups: Vec<String>,
    pub worsening_turns: usize,
    pub worsening_delta: f32,
    pub worsening_target: Target,
    pub repeated_escalations: usize,
    pub repeated_escalations_target: Target,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HumanRequest {
    pub target: Target,
    #[serde(default)]
    pub priority: i32,
    /// Matched case-insensitively; Latin phrases on word boundaries, CJK anywhere.
    pub phrases: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbuseRule {
    pub target: Target,
    #[serde(default)]
    pub priority: i32,
    /// Abusive score (calibrated: 0.5 means detected) at or above which the rule fires.
    pub threshold: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeywordRule {
    /// Reason code suffix: the rule fires as `keyword.CODE`.
    pub code: String,
    pub target: Target,
    #[serde(default)]
    pub priority: i32,
    pub phrases: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierRule {
    /// Added to the priority of every turn of such a customer.
    #[serde(default)]
    pub priority: i32,
    /// Emotion thresholds are multiplied by this for such customers (< 1 escalates sooner).
    #[serde(default = "one")]
    pub escalate_scale: f32,
    /// Lowest tier such a customer is routed to.
    #[serde(default)]
    pub min_target: Option<Target>,
}

fn one() -> f32 {
    1.0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueRule {
    pub name: String,
    #[serde(default)]
    pub targets: Vec<Target>,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

const DEFAULT_POLICY: &str = include_str!("../../models/routing/default_policy.toml");

impl Default for Policy {
    fn default() -> Self {
        // A constant checked by `tests::shipped_policy_is_valid`.
        toml::from_str(DEFAULT_POLICY).expect("models/routing/default_policy.toml parses")
    }
}

impl Policy {
    /// Parse a policy file; errors name the line.
    pub fn from_toml(text: &str) -> Result<Policy> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Read and check a policy file (`routing_file` in the config); errors name the file and line.
    pub fn from_file(path: &std::path::Path) -> Result<Policy> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("routing_file: cannot read {}", path.display()))?;
        let p = Policy::from_toml(&text)
            .with_context(|| format!("routing policy {}", path.display()))?;
        p.check()
            .with_context(|| format!("routing policy {}", path.display()))?;
        Ok(p)
    }

    /// Check every value; the error names the key.
    pub fn check(&self) -> Result<()> {
        for (k, v) in [
            ("low_confidence", self.low_confidence),
            ("min_confidence", self.min_confidence),
            ("emotion.worsening_delta", self.emotion.worsening_delta),
            (
                "abuse.threshold",
                self.abuse.as_ref().map_or(0.5, |a| a.threshold),
            ),
        ] {
            ensure!((0.0..=1.0).contains(&v), "routing.{k}: must be within 0..1");
        }
        ensure!(
            self.min_confidence <= self.low_confidence,
            "routing.min_confidence: must not exceed routing.low_confidence"
        );
        ensure!(
            (1..=100).contains(&self.window),
            "routing.window: must be 1..=100"
        );
        for (k, v) in [
            ("repeated_low_turns", self.repeated_low_turns),
            ("emotion.worsening_turns", self.emotion.worsening_turns),
            (
                "emotion.repeated_escalations",
                self.emotion.repeated_escalations,
            ),
        ] {
            ensure!(
                v <= self.window,
                "routing.{k}: {v} is more than routing.window ({})",
                self.window
            );
        }
        ensure!(
            self.max_bot_turns >= 1,
            "routing.max_bot_turns: must be at least 1"
        );
        for g in &self.emotion.negative_groups {
            ensure!(
                crate::heads::emotion::GROUPS.iter().any(|(n, _)| n == g),
                "routing.emotion.negative_groups: unknown emotion group `{g}`"
            );
        }
        for (i, k) in self.keywords.iter().enumerate() {
            ensure!(
                !k.code.trim().is_empty() && !k.phrases.is_empty(),
                "routing.keywords[{i}]: needs a code and at least one phrase"
            );
        }
        for (name, t) in &self.tiers {
            ensure!(
                t.escalate_scale > 0.0 && t.escalate_scale <= 4.0,
                "routing.tiers.{name}.escalate_scale: must be within (0, 4]"
            );
        }
        for (i, q) in self.queues.iter().enumerate() {
            ensure!(
                !q.name.trim().is_empty(),
                "routing.queues[{i}].name is empty"
            );
            for g in &q.groups {
                ensure!(
                    self.groups.contains_key(g),
                    "routing.queues[{i}].groups: unknown group `{g}` (not in routing.groups)"
                );
            }
        }
        for t in [Target::Bot, Target::Agent, Target::Expert] {
            let catch_all = self.queues.iter().any(|q| {
                (q.targets.is_empty() || q.targets.contains(&t))
                    && q.languages.is_empty()
                    && q.groups.is_empty()
            });
            if !catch_all {
                bail!(
                    "routing.queues: no queue takes every `{}` conversation (add one with no languages or groups)",
                    t.as_str()
                );
            }
        }
        Ok(())
    }

    /// Every queue name, in policy order, once.
    pub fn queue_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for q in &self.queues {
            if !out.contains(&q.name) {
                out.push(q.name.clone());
            }
        }
        out
    }

    /// The intent group (skill) `intent` belongs to.
    pub fn group_of(&self, intent: &str) -> Option<&str> {
        self.groups
            .iter()
            .find(|(_, v)| v.iter().any(|i| i == intent))
            .map(|(g, _)| g.as_str())
    }

    /// Intent names the policy mentions that `known` does not have (for a startup warning).
    pub fn unknown_intents(&self, known: &dyn Fn(&str) -> bool) -> Vec<String> {
        let mut names: Vec<&String> = self.intents.agent.iter().collect();
        names.extend(&self.intents.expert);
        names.extend(self.groups.values().flatten());
        let mut out: Vec<String> = names.into_iter().filter(|n| !known(n)).cloned().collect();
        out.sort();
        out.dedup();
        out
    }
}
