//! Calibrating a trained head on held-out data, globally and per language: softmax temperature
//! and out-of-scope threshold (intents), per-label thresholds and per-group escalation offsets
//! (emotions), with the expected calibration error before and after.

use super::data::Example;
use super::emotion;
use super::head::{logit, sigmoid, Head, LangCalibration};
use super::train::{self, Targets};
use std::collections::BTreeMap;

/// A language gets a calibration of its own from this many held-out examples that say it is
/// theirs (`lang` in the data); the global calibration is fitted on every other example.
pub const MIN_LANG_EXAMPLES: usize = 20;

/// Expected calibration error (10 equal-width bins) of (confidence, correct) pairs.
pub fn ece(points: &[(f32, bool)]) -> f32 {
    if points.is_empty() {
        return 0.0;
    }
    let mut bins = [(0f32, 0f32, 0usize); 10];
    for &(p, ok) in points {
        let b = ((p * 10.0) as usize).min(9);
        bins[b].0 += p;
        bins[b].1 += if ok { 1.0 } else { 0.0 };
        bins[b].2 += 1;
    }
    let n = points.len() as f32;
    bins.iter()
        .filter(|b| b.2 > 0)
        .map(|b| (b.0 - b.1).abs() / n)
        .sum()
}

/// Which held-out rows form a language of their own: (language, row indices); `rest` the others.
fn split_languages(rows: &[Example]) -> (BTreeMap<String, Vec<usize>>, Vec<usize>) {
    let mut by: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        if let Some(l) = &r.lang {
            by.entry(l.clone()).or_default().push(i);
        }
    }
    by.retain(|_, v| v.len() >= MIN_LANG_EXAMPLES);
    let rest = (0..rows.len())
        .filter(|i| !by.values().any(|v| v.contains(i)))
        .collect();
    (by, rest)
}

pub struct IntentTuning {
    pub reject_share: f32,
    pub min_oos_recall: f32,
    /// With out-of-scope examples too: the threshold still rejects at least this share of the
    /// in-scope ones (the least sure answers; an `oos` class alone misses near-domain questions).
    pub min_reject_share: f32,
}

/// Temperature and out-of-scope threshold of a softmax head from held-out (embedding, gold
/// class) rows; returns (temperature, threshold, ece before, ece after).
fn intent_fit(
    head: &mut Head,
    x: &[&Vec<f32>],
    gold: &[u32],
    t: &IntentTuning,
) -> (f32, f32, f32, f32) {
    let logits: Vec<Vec<f32>> = x.iter().map(|v| head.logits(v)).collect();
    let confidence = |temp: f32| -> Vec<(f32, bool)> {
        logits
            .iter()
            .zip(gold)
            .map(|(l, &g)| {
                let p = super::head::softmax(l, temp);
                let best = (0..p.len())
                    .max_by(|a, b| p[*a].total_cmp(&p[*b]))
                    .unwrap_or(0);
                (p[best], best as u32 == g)
            })
            .collect()
    };
    let before = ece(&confidence(head.meta.temperature));
    let temp = train::fit_temperature(&logits, gold);
    let after = ece(&confidence(temp));
    let saved = (head.meta.temperature, head.meta.oos_threshold);
    head.meta.temperature = temp;
    head.meta.oos_threshold = None;
    let oos = head.meta.oos_label.clone();
    let scores: Vec<(f32, bool, bool)> = x
        .iter()
        .zip(gold)
        .map(|(v, &g)| {
            // No threshold is set yet: out_of_scope here means the oos class won.
            let p = head.predict_intent(v, 1, None);
            let gold_label = &head.meta.labels[g as usize];
            let is_oos = Some(gold_label) == oos.as_ref();
            let score = if p.out_of_scope { 0.0 } else { p.score };
            (score, is_oos, &p.label == gold_label)
        })
        .collect();
    let mut threshold = train::tune_oos_threshold(&scores, t.reject_share, t.min_oos_recall);
    if t.min_reject_share > 0.0 {
        let mut ins: Vec<f32> = scores.iter().filter(|s| !s.1).map(|s| s.0).collect();
        ins.sort_by(|a, b| a.total_cmp(b));
        if let Some(q) = ins.get(
            ((ins.len() as f32 * t.min_reject_share) as usize).min(ins.len().saturating_sub(1)),
        ) {
            threshold = threshold.max(*q);
        }
    }
    (head.meta.temperature, head.meta.oos_threshold) = saved;
    (temp, threshold, before, after)
}

/// Calibrate a softmax head: globally on the rows without a language of their own, then each
/// language with enough held-out rows on its own.
pub fn intents(head: &mut Head, hx: &[Vec<f32>], rows: &[Example], gold: &[u32], t: &IntentTuning) {
    let (langs, rest) = split_languages(rows);
    let pick = |idx: &[usize]| -> (Vec<&Vec<f32>>, Vec<u32>) {
        (
            idx.iter().map(|&i| &hx[i]).collect(),
            idx.iter().map(|&i| gold[i]).collect(),
        )
    };
    let rest = if rest.is_empty() {
        (0..rows.len()).collect()
    } else {
        rest
    };
    let (x, g) = pick(&rest);
    let (temp, threshold, _, _) = intent_fit(head, &x, &g, t);
    head.meta.temperature = temp;
    head.meta.oos_threshold = Some(threshold);
    head.meta.languages.clear();
    for (lang, idx) in langs {
        let (x, g) = pick(&idx);
        let (temp, threshold, before, after) = intent_fit(head, &x, &g, t);
        head.meta.languages.insert(
            lang,
            LangCalibration {
                temperature: Some(temp),
                oos_threshold: Some(threshold),
                examples: idx.len(),
                ece_before: Some(before),
                ece_after: Some(after),
                ..Default::default()
            },
        );
    }
}

/// Multi-label calibration error: every (label, row) probability against its gold bit.
fn label_ece(probs: &[Vec<f32>], gold: &[Vec<f32>]) -> f32 {
    let pts: Vec<(f32, bool)> = probs
        .iter()
        .zip(gold)
        .flat_map(|(p, g)| p.iter().zip(g).map(|(a, b)| (*a, *b > 0.5)))
        .collect();
    ece(&pts)
}

/// Calibrate a sigmoid head: per-label thresholds globally (rows without a language of their own)
/// and per language (labels with at least 5 positives there; the others keep the global one).
/// Emotion heads also get per-group logit offsets per language (each group's detection F1 on
/// that language); escalation heads put the `escalate` threshold at the fewest flags that reach
/// `recall_target` on these rows, or without one where recall minus `FALSE_FLAG_COST` times the
/// false-flag share is highest.
pub fn labels(
    head: &mut Head,
    hx: &[Vec<f32>],
    rows: &[Example],
    gold: &[Vec<f32>],
    recall_target: Option<f32>,
) {
    let raw: Vec<Vec<f32>> = hx
        .iter()
        .map(|v| head.logits(v).into_iter().map(sigmoid).collect())
        .collect();
    labels_from(head, raw, rows, gold, recall_target);
}

/// `labels` on per-label probabilities already computed (e.g. out-of-fold scores).
pub fn labels_from(
    head: &mut Head,
    raw: Vec<Vec<f32>>,
    rows: &[Example],
    gold: &[Vec<f32>],
    recall_target: Option<f32>,
) {
    let (langs, rest) = split_languages(rows);
    let rest = if rest.is_empty() {
        (0..rows.len()).collect()
    } else {
        rest
    };
    let pick = |idx: &[usize]| -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        (
            idx.iter().map(|&i| raw[i].clone()).collect(),
            idx.iter().map(|&i| gold[i].clone()).collect(),
        )
    };
    let escalate = head.meta.labels.iter().position(|l| l == ESCALATE);
    let fit = |p: &[Vec<f32>], g: &[Vec<f32>]| -> Vec<f32> {
        let mut t = train::tune_label_thresholds(p, g);
        if let (Some(j), "escalation") = (escalate, head.meta.task.as_str()) {
            t[j] = match recall_target {
                Some(r) => target_threshold(p, g, j, r),
                None => recall_threshold(p, g, j, FALSE_FLAG_COST),
            };
        }
        t
    };
    let (p, g) = pick(&rest);
    head.meta.thresholds = fit(&p, &g);
    head.meta.languages.clear();
    let emotion = head.meta.task == "emotion";
    for (lang, idx) in langs {
        let (p, g) = pick(&idx);
        let own = fit(&p, &g);
        let thresholds: Vec<f32> = (0..head.meta.labels.len())
            .map(|j| {
                let positives = g.iter().filter(|r| r[j] > 0.5).count();
                if positives >= 5 {
                    own[j]
                } else {
                    head.meta.thresholds[j]
                }
            })
            .collect();
        let shifted = |th: &[f32]| -> Vec<Vec<f32>> {
            p.iter()
                .map(|r| {
                    r.iter()
                        .zip(th)
                        .map(|(q, t)| sigmoid(logit(*q) - logit(*t)))
                        .collect()
                })
                .collect()
        };
        let before = label_ece(&shifted(&head.meta.thresholds), &g);
        let after = label_ece(&shifted(&thresholds), &g);
        let mut cal = LangCalibration {
            thresholds,
            examples: idx.len(),
            ece_before: Some(before),
            ece_after: Some(after),
            ..Default::default()
        };
        if emotion {
            let probs = shifted(&cal.thresholds);
            cal.group_offsets = group_offsets(&head.meta.labels, &probs, &g);
        }
        head.meta.languages.insert(lang, cal);
    }
}

/// The label of an escalation head whose score is the escalation signal.
pub const ESCALATE: &str = "escalate";

/// How much a false flag on a calm message costs against a missed escalating one when an
/// escalation head's threshold is chosen (a person's time is cheaper than a lost customer,
/// but a queue full of calm messages hides the angry ones).
pub const FALSE_FLAG_COST: f32 = 3.0;

/// The threshold on label `j` that maximises recall - `cost` x false-positive share on held-out
/// rows (the highest such threshold: the fewest flags).
pub fn recall_threshold(p: &[Vec<f32>], g: &[Vec<f32>], j: usize, cost: f32) -> f32 {
    let (pos, neg) = split_scores(p, g, j);
    (1..100)
        .rev()
        .map(|i| i as f32 / 100.0)
        .fold((0.99, f32::NEG_INFINITY), |best, t| {
            let v = share_at(&pos, t) - cost * share_at(&neg, t);
            if v > best.1 + 1e-6 {
                (t, v)
            } else {
                best
            }
        })
        .0
}

/// Label `j`'s scores of the rows where it is gold, and of the others.
fn split_scores(p: &[Vec<f32>], g: &[Vec<f32>], j: usize) -> (Vec<f32>, Vec<f32>) {
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    for (q, y) in p.iter().zip(g) {
        match y[j] > 0.5 {
            true => pos.push(q[j]),
            false => neg.push(q[j]),
        }
    }
    (pos, neg)
}

/// How many of `scores` are at or above `t`.
fn count_at(scores: &[f32], t: f32) -> usize {
    scores.iter().filter(|q| **q >= t).count()
}

/// The share of `scores` at or above `t` (0 when there are none).
fn share_at(scores: &[f32], t: f32) -> f32 {
    count_at(scores, t) as f32 / scores.len().max(1) as f32
}

/// The highest threshold on label `j` (a grid of 0.01) whose recall on these rows reaches `r`:
/// the fewest flags that catch the share of escalating messages the product asks for.
pub fn target_threshold(p: &[Vec<f32>], g: &[Vec<f32>], j: usize, r: f32) -> f32 {
    let (pos, neg) = split_scores(p, g, j);
    let t = (1..100)
        .rev()
        .map(|i| i as f32 / 100.0)
        .find(|t| count_at(&pos, *t) as f32 >= r * pos.len() as f32)
        .unwrap_or(0.01);
    eprintln!(
        "recall target {r}: threshold {t} (recall {:.3} of {} escalating, false flags {:.3} of {} calm)",
        share_at(&pos, t),
        pos.len(),
        share_at(&neg, t),
        neg.len()
    );
    t
}

/// Per-group logit offsets (a grid over -4..4) that maximise each group's detection F1 (group
/// score >= 0.5 against "one of the group's labels is gold") on held-out rows of one language;
/// groups with fewer than 5 positives keep no offset.
pub fn group_offsets(
    labels: &[String],
    probs: &[Vec<f32>],
    gold: &[Vec<f32>],
) -> BTreeMap<String, f32> {
    let mut out = BTreeMap::new();
    for (g, members) in emotion::GROUPS {
        let member: Vec<bool> = labels
            .iter()
            .map(|l| members.contains(&l.as_str()))
            .collect();
        let truth: Vec<bool> = gold
            .iter()
            .map(|r| r.iter().zip(&member).any(|(y, m)| *m && *y > 0.5))
            .collect();
        if truth.iter().filter(|t| **t).count() < 5 {
            continue;
        }
        let score: Vec<f32> = probs
            .iter()
            .map(|r| {
                r.iter()
                    .zip(&member)
                    .filter(|(_, m)| **m)
                    .fold(0f32, |a, (p, _)| a.max(*p))
            })
            .collect();
        let f1 = |o: f32| -> f32 {
            let (mut tp, mut fp, mut fneg) = (0f32, 0f32, 0f32);
            for (s, t) in score.iter().zip(&truth) {
                match (sigmoid(logit(*s) + o) >= 0.5, *t) {
                    (true, true) => tp += 1.0,
                    (true, false) => fp += 1.0,
                    (false, true) => fneg += 1.0,
                    _ => {}
                }
            }
            2.0 * tp / (2.0 * tp + fp + fneg).max(1.0)
        };
        // The best F1; among equal ones the smallest change.
        let best = (-16..=16)
            .map(|i| i as f32 * 0.25)
            .fold((0.0f32, f1(0.0)), |b, o| {
                let v = f1(o);
                if v > b.1 + 1e-6 || (v >= b.1 - 1e-6 && o.abs() < b.0.abs()) {
                    (o, v)
                } else {
                    b
                }
            });
        if best.0 != 0.0 {
            out.insert(g.to_string(), best.0);
        }
    }
    out
}

/// The targets as class indices (softmax heads).
pub fn classes(t: &Targets) -> Option<&[u32]> {
    match t {
        Targets::Class(c) => Some(c),
        Targets::Multi(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_of_perfect_and_overconfident() {
        assert_eq!(ece(&[(1.0, true), (0.0, false)]), 0.0);
        let e = ece(&[(0.95, false), (0.95, true)]);
        assert!((e - 0.45).abs() < 1e-6, "{e}");
    }

    #[test]
    fn group_offsets_lift_a_group_that_scores_low() {
        let labels = vec!["anger".to_string(), "joy".to_string()];
        // Angry rows score 0.3 on anger (under 0.5), calm rows 0.05.
        let mut probs = vec![vec![0.3, 0.1]; 20];
        probs.extend(vec![vec![0.05, 0.6]; 20]);
        let gold: Vec<Vec<f32>> = (0..40)
            .map(|i| {
                if i < 20 {
                    vec![1.0, 0.0]
                } else {
                    vec![0.0, 1.0]
                }
            })
            .collect();
        let off = group_offsets(&labels, &probs, &gold);
        let o = off["anger"];
        assert!(
            sigmoid(logit(0.3) + o) >= 0.5 && sigmoid(logit(0.05) + o) < 0.5,
            "{off:?}"
        );
        assert!(!off.contains_key("gratitude_joy"), "already right: {off:?}");
    }

    #[test]
    fn target_threshold_is_the_fewest_flags_reaching_the_recall() {
        // Escalating rows score 0.9, 0.8, 0.6, 0.3; calm ones 0.7 and 0.2.
        let p: Vec<Vec<f32>> = [0.9, 0.8, 0.6, 0.3, 0.7, 0.2]
            .iter()
            .map(|v| vec![*v])
            .collect();
        let g: Vec<Vec<f32>> = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
            .iter()
            .map(|v| vec![*v])
            .collect();
        assert_eq!(target_threshold(&p, &g, 0, 0.5), 0.8);
        assert_eq!(target_threshold(&p, &g, 0, 0.75), 0.6);
        assert_eq!(target_threshold(&p, &g, 0, 1.0), 0.3);
    }

    #[test]
    fn recall_threshold_weighs_false_flags() {
        // 10 positives at 0.2..0.65, 20 negatives at 0.1 and one at 0.6.
        let mut p: Vec<Vec<f32>> = (0..10).map(|i| vec![0.2 + i as f32 * 0.05]).collect();
        let mut g: Vec<Vec<f32>> = vec![vec![1.0]; 10];
        p.extend(vec![vec![0.1]; 20]);
        g.extend(vec![vec![0.0]; 20]);
        p.push(vec![0.6]);
        g.push(vec![0.0]);
        // A false flag costs more than all the recall above 0.6: keep under the 0.6 negative.
        let t = recall_threshold(&p, &g, 0, 100.0);
        assert!(t > 0.6 && t <= 0.65, "{t}");
        // Cheap false flags: take every positive (one false flag of 21 costs 0.1).
        let t = recall_threshold(&p, &g, 0, 2.0);
        assert!(t > 0.1 && t <= 0.2, "{t}");
    }
}
