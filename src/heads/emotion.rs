//! Support-oriented emotion groups derived from the 28 GoEmotions labels, and the escalation flag.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// (group, GoEmotions labels whose scores it takes the maximum of).
pub const GROUPS: &[(&str, &[&str])] = &[
    ("anger", &["anger", "disgust"]),
    ("frustration", &["annoyance", "disapproval"]),
    (
        "sadness",
        &[
            "disappointment",
            "sadness",
            "grief",
            "remorse",
            "embarrassment",
        ],
    ),
    ("fear", &["fear", "nervousness"]),
    ("confusion", &["confusion"]),
    (
        "gratitude_joy",
        &[
            "gratitude",
            "joy",
            "admiration",
            "amusement",
            "approval",
            "caring",
            "excitement",
            "love",
            "optimism",
            "pride",
            "relief",
        ],
    ),
    (
        "neutral",
        &["neutral", "curiosity", "desire", "realization", "surprise"],
    ),
];

/// When a message is flagged for escalation (`[emotion]` in the config).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationConfig {
    /// Group score at or above which the group escalates, per group; groups not listed never do.
    /// Scores are calibrated so that 0.5 means "detected" (the label's tuned threshold).
    pub thresholds: BTreeMap<String, f32>,
    /// The escalation head's calibrated score at or above which a message escalates.
    pub head: f32,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        EscalationConfig {
            head: 0.5,
            thresholds: super::config::default_thresholds(),
        }
    }
}

impl EscalationConfig {
    pub fn check(&self) -> anyhow::Result<()> {
        for (g, t) in &self.thresholds {
            anyhow::ensure!(
                GROUPS.iter().any(|(n, _)| n == g),
                "emotion.thresholds: unknown group `{g}`"
            );
            anyhow::ensure!(
                (0.0..=1.0).contains(t),
                "emotion.thresholds.{g}: must be within 0..1"
            );
        }
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.head),
            "emotion.escalation_threshold: must be within 0..1"
        );
        Ok(())
    }
}

/// Group scores (max over member labels) from per-label probabilities.
pub fn group_scores(labels: &[String], probs: &[f32]) -> BTreeMap<String, f32> {
    GROUPS
        .iter()
        .map(|(g, members)| {
            let s = labels
                .iter()
                .zip(probs)
                .filter(|(l, _)| members.contains(&l.as_str()))
                .map(|(_, p)| *p)
                .fold(0.0, f32::max);
            (g.to_string(), s)
        })
        .collect()
}

/// Group scores shifted by per-group logit offsets (a language's escalation calibration).
pub fn apply_offsets(
    groups: &BTreeMap<String, f32>,
    offsets: &BTreeMap<String, f32>,
) -> BTreeMap<String, f32> {
    groups
        .iter()
        .map(|(g, s)| {
            let s = match offsets.get(g) {
                Some(o) => super::head::sigmoid(super::head::logit(*s) + o),
                None => *s,
            };
            (g.clone(), s)
        })
        .collect()
}

/// The group with the highest score.
pub fn top_group(groups: &BTreeMap<String, f32>) -> String {
    groups
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(g, _)| g.clone())
        .unwrap_or_else(|| "neutral".into())
}

/// Escalate, and why. With an escalation head's score (`head`), that score decides (trained on
/// support messages, calibrated per language) and the groups over their thresholds are named
/// beside it; without one, every group at or over its threshold escalates.
pub fn escalation(
    groups: &BTreeMap<String, f32>,
    head: Option<f32>,
    cfg: &EscalationConfig,
) -> (bool, Vec<String>) {
    let mut reasons: Vec<String> = Vec::new();
    if let Some(s) = head {
        if s < cfg.head {
            return (false, reasons);
        }
        reasons.push(format!("escalation {s:.2} >= {:.2}", cfg.head));
    }
    reasons.extend(cfg.thresholds.iter().filter_map(|(g, t)| {
        let s = groups.get(g)?;
        (s >= t).then(|| format!("{g} {s:.2} >= {t:.2}"))
    }));
    (!reasons.is_empty(), reasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_escalation() {
        let labels: Vec<String> = ["anger", "annoyance", "joy", "neutral"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let g = group_scores(&labels, &[0.7, 0.2, 0.1, 0.3]);
        assert_eq!(g["anger"], 0.7);
        assert_eq!(g["sadness"], 0.0);
        assert_eq!(top_group(&g), "anger");
        let (esc, why) = escalation(&g, None, &EscalationConfig::default());
        assert!(esc);
        assert!(why[0].starts_with("anger"), "{why:?}");
        let calm = group_scores(&labels, &[0.1, 0.1, 0.9, 0.3]);
        assert!(!escalation(&calm, None, &EscalationConfig::default()).0);
        // With an escalation head, its score decides; groups over their thresholds are named.
        assert!(!escalation(&g, Some(0.4), &EscalationConfig::default()).0);
        let (esc, why) = escalation(&calm, Some(0.7), &EscalationConfig::default());
        assert!(esc && why == ["escalation 0.70 >= 0.50"], "{why:?}");
        let (esc, why) = escalation(&g, Some(0.7), &EscalationConfig::default());
        assert!(
            esc && why.len() == 2 && why[1].starts_with("anger"),
            "{why:?}"
        );
        let every: Vec<&str> = GROUPS.iter().flat_map(|(_, m)| m.iter().copied()).collect();
        assert_eq!(
            every.len(),
            28,
            "each GoEmotions label in exactly one group"
        );
    }
}
