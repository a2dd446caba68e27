//! Evaluation metrics: accuracy, macro-F1, per-label precision/recall/F1, out-of-scope recall,
//! the most confused pairs; printed as a table or serialised as JSON.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, Serialize)]
pub struct LabelScore {
    pub label: String,
    pub precision: f32,
    pub recall: f32,
    pub f1: f32,
    pub support: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub task: String,
    pub examples: usize,
    /// Exact-match accuracy (single-label: top label; multi-label: the whole label set).
    pub accuracy: f32,
    pub macro_f1: f32,
    /// Single-label with an out-of-scope label: accuracy on in-scope examples only
    /// (an in-scope example answered "out of scope" counts as wrong).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_scope_accuracy: Option<f32>,
    /// Share of out-of-scope examples answered "out of scope".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oos_recall: Option<f32>,
    /// Intent heads: accuracy of the top in-scope label on in-scope examples, before any
    /// out-of-scope rejection (the classifier alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top1_accuracy: Option<f32>,
    /// Intent heads: share of in-scope examples answered "out of scope".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected: Option<f32>,
    pub per_label: Vec<LabelScore>,
    /// (gold, predicted, count), most frequent first.
    pub confusions: Vec<(String, String, usize)>,
    /// The same figures per detected language, when the data holds more than one.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_language: BTreeMap<String, LangFigures>,
}

/// One language's share of an evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct LangFigures {
    pub examples: usize,
    pub accuracy: f32,
    pub macro_f1: f32,
    /// Intent heads: expected calibration error of the top score (10 bins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ece: Option<f32>,
}

fn f1(p: f32, r: f32) -> f32 {
    if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    }
}

/// Per-label scores from (gold set, predicted set) pairs.
fn per_label(pairs: &[(Vec<String>, Vec<String>)], labels: &[String]) -> Vec<LabelScore> {
    labels
        .iter()
        .map(|l| {
            let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
            for (g, p) in pairs {
                match (g.contains(l), p.contains(l)) {
                    (true, true) => tp += 1,
                    (false, true) => fp += 1,
                    (true, false) => fneg += 1,
                    _ => {}
                }
            }
            let precision = tp as f32 / (tp + fp).max(1) as f32;
            let recall = tp as f32 / (tp + fneg).max(1) as f32;
            LabelScore {
                label: l.clone(),
                precision,
                recall,
                f1: f1(precision, recall),
                support: tp + fneg,
            }
        })
        .collect()
}

/// Single-label evaluation. `oos` names the out-of-scope label (gold and predicted).
pub fn single_label(task: &str, gold: &[String], pred: &[String], oos: Option<&str>) -> Report {
    let mut labels: Vec<String> = gold.iter().chain(pred).cloned().collect();
    labels.sort();
    labels.dedup();
    let pairs: Vec<(Vec<String>, Vec<String>)> = gold
        .iter()
        .zip(pred)
        .map(|(g, p)| (vec![g.clone()], vec![p.clone()]))
        .collect();
    let scores = per_label(&pairs, &labels);
    // Macro-F1 over the gold labels (labels never in the gold set don't dilute it).
    let gold_scores: Vec<&LabelScore> = scores.iter().filter(|s| s.support > 0).collect();
    let macro_f1 = gold_scores.iter().map(|s| s.f1).sum::<f32>() / gold_scores.len().max(1) as f32;
    let correct = gold.iter().zip(pred).filter(|(g, p)| g == p).count();
    let (mut in_scope_accuracy, mut oos_recall) = (None, None);
    if let Some(o) = oos {
        let ins: Vec<_> = gold.iter().zip(pred).filter(|(g, _)| *g != o).collect();
        let outs: Vec<_> = gold.iter().zip(pred).filter(|(g, _)| *g == o).collect();
        if !ins.is_empty() {
            in_scope_accuracy =
                Some(ins.iter().filter(|(g, p)| g == p).count() as f32 / ins.len() as f32);
        }
        if !outs.is_empty() {
            oos_recall =
                Some(outs.iter().filter(|(_, p)| *p == o).count() as f32 / outs.len() as f32);
        }
    }
    let mut conf: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (g, p) in gold.iter().zip(pred).filter(|(g, p)| g != p) {
        *conf.entry((g.clone(), p.clone())).or_default() += 1;
    }
    let mut confusions: Vec<(String, String, usize)> =
        conf.into_iter().map(|((g, p), n)| (g, p, n)).collect();
    confusions.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    confusions.truncate(10);
    Report {
        task: task.into(),
        examples: gold.len(),
        accuracy: correct as f32 / gold.len().max(1) as f32,
        macro_f1,
        in_scope_accuracy,
        oos_recall,
        top1_accuracy: None,
        rejected: None,
        per_label: scores,
        confusions,
        by_language: BTreeMap::new(),
    }
}

/// Multi-label evaluation over `labels`.
pub fn multi_label(
    task: &str,
    gold: &[Vec<String>],
    pred: &[Vec<String>],
    labels: &[String],
) -> Report {
    let pairs: Vec<(Vec<String>, Vec<String>)> =
        gold.iter().cloned().zip(pred.iter().cloned()).collect();
    let scores = per_label(&pairs, labels);
    let macro_f1 = scores.iter().map(|s| s.f1).sum::<f32>() / scores.len().max(1) as f32;
    let exact = gold
        .iter()
        .zip(pred)
        .filter(|(g, p)| {
            let (mut g, mut p) = ((*g).clone(), (*p).clone());
            g.sort();
            p.sort();
            g == p
        })
        .count();
    Report {
        task: task.into(),
        examples: gold.len(),
        accuracy: exact as f32 / gold.len().max(1) as f32,
        macro_f1,
        in_scope_accuracy: None,
        oos_recall: None,
        top1_accuracy: None,
        rejected: None,
        per_label: scores,
        confusions: Vec::new(),
        by_language: BTreeMap::new(),
    }
}

impl Report {
    /// A plain-text table for the terminal.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "task {}  examples {}", self.task, self.examples);
        let _ = writeln!(s, "accuracy   {:.4}", self.accuracy);
        let _ = writeln!(s, "macro-F1   {:.4}", self.macro_f1);
        if let Some(a) = self.in_scope_accuracy {
            let _ = writeln!(s, "in-scope accuracy   {a:.4}");
        }
        if let Some(r) = self.oos_recall {
            let _ = writeln!(s, "out-of-scope recall {r:.4}");
        }
        if let Some(a) = self.top1_accuracy {
            let _ = writeln!(s, "top-1 accuracy (in-scope, before rejection) {a:.4}");
        }
        if let Some(r) = self.rejected {
            let _ = writeln!(s, "in-scope examples rejected as out of scope {r:.4}");
        }
        let _ = writeln!(
            s,
            "\n{:<36}{:>10}{:>10}{:>10}{:>9}",
            "label", "precision", "recall", "f1", "support"
        );
        for l in &self.per_label {
            let _ = writeln!(
                s,
                "{:<36}{:>10.3}{:>10.3}{:>10.3}{:>9}",
                l.label, l.precision, l.recall, l.f1, l.support
            );
        }
        if !self.by_language.is_empty() {
            let _ = writeln!(
                s,
                "\n{:<10}{:>10}{:>10}{:>10}{:>8}",
                "language", "examples", "accuracy", "macro-F1", "ECE"
            );
            for (l, f) in &self.by_language {
                let ece = f.ece.map_or("-".to_string(), |e| format!("{e:.4}"));
                let _ = writeln!(
                    s,
                    "{l:<10}{:>10}{:>10.4}{:>10.4}{ece:>8}",
                    f.examples, f.accuracy, f.macro_f1
                );
            }
        }
        if !self.confusions.is_empty() {
            let _ = writeln!(s, "\nmost confused (gold -> predicted: count)");
            for (g, p, n) in &self.confusions {
                let _ = writeln!(s, "  {g} -> {p}: {n}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn single_label_scores() {
        let r = single_label(
            "intent",
            &v(&["a", "a", "b", "oos"]),
            &v(&["a", "b", "b", "oos"]),
            Some("oos"),
        );
        assert_eq!(r.accuracy, 0.75);
        assert_eq!(r.in_scope_accuracy, Some(2.0 / 3.0));
        assert_eq!(r.oos_recall, Some(1.0));
        let a = r.per_label.iter().find(|l| l.label == "a").unwrap();
        assert_eq!((a.precision, a.recall), (1.0, 0.5));
        assert_eq!(r.confusions, vec![("a".into(), "b".into(), 1)]);
    }

    #[test]
    fn multi_label_scores() {
        let gold = vec![v(&["x", "y"]), v(&["y"])];
        let pred = vec![v(&["x"]), v(&["y"])];
        let r = multi_label("emotion", &gold, &pred, &v(&["x", "y"]));
        assert_eq!(r.accuracy, 0.5);
        // x: p=1 r=1 f=1; y: p=1 r=.5 f=.667
        assert!((r.macro_f1 - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-6);
    }
}
