//! The heads' config sections (`[intent]`, `[emotion]`): plain serde types that import nothing of
//! the project; `HeadRegistry::load` takes them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A trained head: `builtin:NAME` (shipped in the binary) or a folder with head.json +
/// head.safetensors (`triage train --out`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSource {
    pub name: String,
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntentConfig {
    /// Intent set used when a request names none.
    pub default_set: String,
    /// Trained intent heads, by name.
    pub sets: Vec<HeadSource>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmotionConfig {
    /// The emotion head (multi-label, GoEmotions labels).
    pub head: String,
    /// Escalate when an emotion group's score reaches its threshold (groups: anger,
    /// frustration, sadness, fear, confusion, gratitude_joy, neutral).
    pub thresholds: BTreeMap<String, f32>,
    /// The abusive-language head (`abusive` score on `/v1/emotion` and `/v1/triage`; "" for none).
    pub abuse_head: String,
    /// The escalation head (`escalation` score; a message also escalates when it reaches
    /// `escalation_threshold`; "" for none).
    pub escalation_head: String,
    /// Calibrated escalation score (0.5: the head's tuned threshold for the language) at or
    /// above which a message escalates.
    pub escalation_threshold: f32,
}

/// Group scores (calibrated: 0.5 = the label's tuned threshold) at or above which a group
/// escalates by default; groups not listed never do.
pub fn default_thresholds() -> BTreeMap<String, f32> {
    [
        ("anger", 0.5),
        ("frustration", 0.5),
        ("fear", 0.6),
        ("sadness", 0.6),
    ]
    .into_iter()
    .map(|(g, t)| (g.to_string(), t))
    .collect()
}

impl Default for IntentConfig {
    fn default() -> Self {
        let set = |n: &str| HeadSource {
            name: n.into(),
            source: format!("builtin:{n}"),
        };
        IntentConfig {
            default_set: "bitext".into(),
            sets: vec![set("bitext"), set("banking77"), set("clinc150")],
        }
    }
}

impl Default for EmotionConfig {
    fn default() -> Self {
        EmotionConfig {
            head: "builtin:goemotions".into(),
            thresholds: default_thresholds(),
            abuse_head: "builtin:abuse".into(),
            escalation_head: "builtin:escalation".into(),
            escalation_threshold: 0.5,
        }
    }
}
