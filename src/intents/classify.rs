//! Answering `/v1/intent` for a set that has few-shot intents: cosine similarity of each text to
//! the intents' examples, alone (a pure few-shot set) or merged with a trained head's answer.
//!
//! Rules (see README "Few-shot intents"):
//! - a text's similarity to a few-shot intent is the larger of its cosine to the nearest example
//!   and its cosine to the intent's prototype (the normalised mean of the examples);
//! - it matches when that similarity is at least `fewshot.threshold`;
//! - in a pure few-shot set the best intent is the answer, out of scope when it does not match;
//! - in a trained set a matching few-shot intent wins when the head is unsure (out of scope, or
//!   its calibrated score is under `fewshot.low_confidence`) or when the match is strong
//!   (similarity >= `fewshot.strong_match`); otherwise the head's answer stands.

use super::sim::{for_each_row, normalize};
use super::store::Embedded;
use crate::heads::head::Head;
use crate::heads::predict::{IntentPrediction, Scored};
use anyhow::Result;
use std::sync::Arc;

/// One intent set as `/v1/intent` sees it: the trained head (if any) and the few-shot intents
/// embedded with the set's encoder.
pub struct SetView {
    pub name: String,
    pub head: Option<Arc<Head>>,
    pub encoder: String,
    pub prefix: String,
    pub intents: Vec<(String, Arc<Embedded>)>,
    pub threshold: f32,
    pub low_confidence: f32,
    /// A few-shot match at least this similar wins even over a confident head.
    pub strong: f32,
}

/// An answer, and whether it is one discovery should keep (out of scope or unsure).
#[derive(Debug, Clone)]
pub struct Answer {
    pub prediction: IntentPrediction,
    pub unsure: bool,
}

/// How a text's similarity to an intent is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    /// Cosine to the nearest example.
    Nearest,
    /// Cosine to the prototype (the normalised mean of the examples).
    Prototype,
    /// The larger of the two: what the server uses (measured best overall, and a text that is
    /// an example always matches its intent).
    Max,
}

/// Each text's similarity to each intent.
pub fn scores(xs: &[Vec<f32>], intents: &[Arc<Embedded>], how: Scoring) -> Result<Vec<Vec<f32>>> {
    let mut cols: Vec<Vec<f32>> = Vec::new();
    let mut spans = Vec::with_capacity(intents.len());
    for e in intents {
        let start = cols.len();
        if how != Scoring::Prototype {
            cols.extend(e.vectors.iter().cloned());
        }
        if how != Scoring::Nearest {
            cols.push(e.prototype.clone());
        }
        spans.push(start..cols.len());
    }
    let xs: Vec<Vec<f32>> = xs.iter().map(|x| normalize(x.clone())).collect();
    let mut out = Vec::with_capacity(xs.len());
    for_each_row(&xs, &cols, |_, row| {
        out.push(
            spans
                .iter()
                .map(|r| {
                    row[r.clone()]
                        .iter()
                        .copied()
                        .fold(f32::NEG_INFINITY, f32::max)
                })
                .collect(),
        );
    })?;
    Ok(out)
}

impl SetView {
    /// Labels a `top_k` may reach: the head's and the few-shot intents.
    pub fn label_count(&self) -> usize {
        self.head.as_ref().map_or(0, |h| h.meta.labels.len()) + self.intents.len()
    }

    /// Answer every text (embedded with this set's encoder).
    pub fn predict_all(&self, xs: &[Vec<f32>], top_k: usize) -> Result<Vec<Answer>> {
        self.predict_with(xs, xs, top_k, &[])
    }

    /// As `predict_all`, where the trained head reads `head_xs` (the embeddings through its
    /// fine-tuned layers) and the few-shot intents read the plain embeddings `xs`. `langs`: each
    /// text's detected language (the head's calibration for it applies), or empty.
    pub fn predict_with(
        &self,
        xs: &[Vec<f32>],
        head_xs: &[Vec<f32>],
        top_k: usize,
        langs: &[String],
    ) -> Result<Vec<Answer>> {
        anyhow::ensure!(xs.len() == head_xs.len(), "one head embedding per text");
        let emb: Vec<Arc<Embedded>> = self.intents.iter().map(|(_, e)| e.clone()).collect();
        let scores = if emb.is_empty() {
            vec![Vec::new(); xs.len()]
        } else {
            scores(xs, &emb, Scoring::Max)?
        };
        Ok(head_xs
            .iter()
            .zip(scores)
            .enumerate()
            .map(|(i, (x, s))| {
                let lang = langs.get(i).map(String::as_str);
                let trained = self.head.as_ref().map(|h| h.predict_intent(x, top_k, lang));
                self.combine(trained, &s, top_k)
            })
            .collect())
    }

    fn combine(&self, trained: Option<IntentPrediction>, sims: &[f32], top_k: usize) -> Answer {
        let mut ranked: Vec<Scored> = self
            .intents
            .iter()
            .zip(sims)
            .map(|((name, _), s)| Scored {
                label: name.clone(),
                score: *s,
            })
            .collect();
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.label.cmp(&b.label)));
        let matched = ranked
            .first()
            .filter(|b| b.score >= self.threshold)
            .cloned();
        match (trained, ranked.first().cloned()) {
            (Some(t), _) => {
                let unsure = t.out_of_scope || t.score < self.low_confidence;
                match matched {
                    Some(m) if unsure || m.score >= self.strong => {
                        let mut top: Vec<Scored> = ranked
                            .into_iter()
                            .take_while(|s| s.score >= self.threshold)
                            .collect();
                        top.extend(t.top);
                        top.truncate(top_k);
                        Answer {
                            prediction: IntentPrediction {
                                label: m.label,
                                score: m.score,
                                out_of_scope: false,
                                top,
                            },
                            unsure: false,
                        }
                    }
                    _ => Answer {
                        prediction: t,
                        unsure,
                    },
                }
            }
            (None, Some(best)) => {
                let out_of_scope = matched.is_none();
                ranked.truncate(top_k);
                Answer {
                    prediction: IntentPrediction {
                        label: best.label,
                        score: best.score,
                        out_of_scope,
                        top: ranked,
                    },
                    unsure: out_of_scope,
                }
            }
            (None, None) => Answer {
                prediction: IntentPrediction {
                    label: String::new(),
                    score: 0.0,
                    out_of_scope: true,
                    top: Vec::new(),
                },
                unsure: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(vectors: &[(&str, Vec<Vec<f32>>)]) -> SetView {
        SetView {
            name: "s".into(),
            head: None,
            encoder: "m".into(),
            prefix: String::new(),
            intents: vectors
                .iter()
                .map(|(n, v)| (n.to_string(), Arc::new(Embedded::new("m", "", v.clone()))))
                .collect(),
            threshold: 0.9,
            low_confidence: 0.5,
            strong: 2.0,
        }
    }

    #[test]
    fn nearest_example_wins_and_far_texts_are_out_of_scope() {
        let v = view(&[
            ("a", vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]]),
            ("b", vec![vec![0.0, 0.0, 1.0]]),
        ]);
        let xs = vec![
            vec![0.1, 2.0, 0.0],
            vec![0.0, 0.1, 1.0],
            vec![1.0, 1.0, 1.0],
        ];
        let r = v.predict_all(&xs, 2).unwrap();
        assert_eq!(r[0].prediction.label, "a");
        assert!(!r[0].prediction.out_of_scope);
        assert_eq!(r[1].prediction.label, "b");
        assert_eq!(r[1].prediction.top.len(), 2);
        assert!(r[2].prediction.out_of_scope && r[2].unsure);
    }
}
