//! Turning head probabilities into answers: an intent with calibrated confidence (or out of
//! scope), or the set of emotion labels over their thresholds.

use super::head::{Head, Kind};
use serde::Serialize;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Scored {
    pub label: String,
    pub score: f32,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IntentPrediction {
    /// The best in-scope label (even when out of scope, so a person sees the nearest guess).
    pub label: String,
    /// Its calibrated probability.
    pub score: f32,
    pub out_of_scope: bool,
    pub top: Vec<Scored>,
}

impl Head {
    /// Softmax heads: the top label, out of scope when the head's out-of-scope class wins or the
    /// calibrated score is under the tuned threshold.
    /// `lang`: the text's language (its own calibration applies when the head has one).
    pub fn predict_intent(&self, x: &[f32], top_k: usize, lang: Option<&str>) -> IntentPrediction {
        let p = self.probs(x, lang);
        let oos = self.meta.oos_label.as_deref();
        let mut ranked: Vec<(usize, f32)> = p.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let oos_wins = ranked
            .first()
            .is_some_and(|(i, _)| Some(self.meta.labels[*i].as_str()) == oos);
        let in_scope: Vec<&(usize, f32)> = ranked
            .iter()
            .filter(|(i, _)| Some(self.meta.labels[*i].as_str()) != oos)
            .collect();
        let (best, score) = in_scope.first().map(|(i, s)| (*i, *s)).unwrap_or((0, 0.0));
        let below = self.oos_threshold(lang).is_some_and(|t| score < t);
        IntentPrediction {
            label: self.meta.labels[best].clone(),
            score,
            out_of_scope: oos_wins || below || self.meta.kind != Kind::Softmax,
            top: in_scope
                .iter()
                .take(top_k.max(1))
                .map(|(i, s)| Scored {
                    label: self.meta.labels[*i].clone(),
                    score: *s,
                })
                .collect(),
        }
    }

    /// Sigmoid heads: the calibrated score of `label` (0 when the head has no such label).
    pub fn label_score(&self, x: &[f32], lang: Option<&str>, label: &str) -> f32 {
        let p = self.probs(x, lang);
        self.meta
            .labels
            .iter()
            .position(|l| l == label)
            .and_then(|i| p.get(i).copied())
            .unwrap_or(0.0)
    }

    /// Emotion heads: support-group scores (max of their labels), shifted by the language's
    /// escalation offsets when the head has them.
    pub fn groups(&self, x: &[f32], lang: Option<&str>) -> std::collections::BTreeMap<String, f32> {
        let g = super::emotion::group_scores(&self.meta.labels, &self.probs(x, lang));
        match self.calibration(lang) {
            Some(c) if !c.group_offsets.is_empty() => {
                super::emotion::apply_offsets(&g, &c.group_offsets)
            }
            _ => g,
        }
    }

    /// Sigmoid heads: every label's calibrated score, and the labels detected (score >= 0.5,
    /// i.e. at or over the label's tuned threshold).
    pub fn predict_labels(&self, x: &[f32], lang: Option<&str>) -> (Vec<f32>, Vec<String>) {
        let p = self.probs(x, lang);
        let on = p
            .iter()
            .zip(&self.meta.labels)
            .filter(|(p, _)| **p >= 0.5)
            .map(|(_, l)| l.clone())
            .collect();
        (p, on)
    }
}
