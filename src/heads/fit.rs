//! Fitting a head end to end (split, embed, train, calibrate) and evaluating one on a dataset.

use super::calibrate;
use super::data::{label_set, Example};
use super::embed_cache::DatasetEncoder;
use super::emotion;
use super::head::{sigmoid, Head, HeadMeta, Kind};
use super::metrics::{self, Report};
use super::train::{self, Targets, TrainOptions};
use anyhow::{ensure, Result};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Intent,
    Emotion,
    /// Abusive language: a multi-label (sigmoid) head whose `abusive` label is the signal.
    Abuse,
    /// Escalation: `escalate` or `calm`, from the `escalate` field of emotion data.
    Escalation,
}

impl Task {
    pub fn parse(s: &str) -> Result<Task> {
        match s {
            "intent" => Ok(Task::Intent),
            "emotion" => Ok(Task::Emotion),
            "abuse" => Ok(Task::Abuse),
            "escalation" => Ok(Task::Escalation),
            _ => anyhow::bail!("unknown task `{s}`: expected intent, emotion, abuse or escalation"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Task::Intent => "intent",
            Task::Emotion => "emotion",
            Task::Abuse => "abuse",
            Task::Escalation => "escalation",
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Task::Intent => Kind::Softmax,
            Task::Emotion | Task::Abuse | Task::Escalation => Kind::Sigmoid,
        }
    }
}

pub struct FitOptions {
    pub task: Task,
    /// Sigmoid heads: fit the thresholds on out-of-fold scores over the first `oof_rows`
    /// training rows (this many folds by a hash of the text) instead of on the tuning rows
    /// (0: tuning rows). More rows per language, so a steadier threshold.
    pub threshold_folds: usize,
    /// How many leading training rows the out-of-fold scores cover (the rest always train).
    pub oof_rows: usize,
    /// Escalation heads: the recall the `escalate` threshold must reach on the fitting rows
    /// (None: recall minus `calibrate::FALSE_FLAG_COST` times the false-flag share).
    pub recall_target: Option<f32>,
    pub name: String,
    /// The label that marks out-of-scope examples (trained as a class, and used to tune the
    /// threshold). Without such examples the threshold rejects `reject_share` of in-scope ones.
    pub oos_label: Option<String>,
    pub reject_share: f32,
    /// With out-of-scope examples: the out-of-scope recall the threshold must keep.
    pub min_oos_recall: f32,
    /// With out-of-scope examples: reject at least this share of in-scope ones all the same.
    pub min_reject_share: f32,
    pub train: TrainOptions,
    /// Parallel sentences (English, translation) the head must answer alike, and the weight of
    /// that consistency loss.
    pub pairs: Option<(Vec<String>, Vec<String>, f32)>,
}

/// Deterministic 90/10 split by a hash of the text (used when no tuning file is given).
pub fn split_tune(rows: Vec<Example>) -> (Vec<Example>, Vec<Example>) {
    rows.into_iter().partition(|r| {
        let h = Sha256::digest(format!("tune:{}", r.text.trim()).as_bytes());
        h[0] % 10 != 0
    })
}

pub(crate) fn targets(task: Task, rows: &[Example], labels: &[String]) -> Result<Targets> {
    let index = |l: &String| labels.iter().position(|x| x == l);
    Ok(match task {
        Task::Intent => Targets::Class(
            rows.iter()
                .map(|r| {
                    index(&r.labels[0]).map(|i| i as u32).ok_or_else(|| {
                        anyhow::anyhow!("label `{}` not in training labels", r.labels[0])
                    })
                })
                .collect::<Result<_>>()?,
        ),
        Task::Emotion | Task::Abuse | Task::Escalation => Targets::Multi(
            rows.iter()
                .map(|r| {
                    labels
                        .iter()
                        .map(|l| if r.labels.contains(l) { 1.0 } else { 0.0 })
                        .collect()
                })
                .collect(),
        ),
    })
}

/// Per-dimension mean and standard deviation (floored) of `x`.
fn moments(x: &[Vec<f32>]) -> (Vec<f32>, Vec<f32>) {
    let (n, d) = (x.len() as f32, x[0].len());
    let mut mu = vec![0f32; d];
    for r in x {
        for (m, v) in mu.iter_mut().zip(r) {
            *m += v / n;
        }
    }
    let mut var = vec![0f32; d];
    for r in x {
        for ((s, v), m) in var.iter_mut().zip(r).zip(&mu) {
            *s += (v - m) * (v - m) / n;
        }
    }
    (mu, var.into_iter().map(|v| v.sqrt().max(1e-6)).collect())
}

/// Fold standardisation into the first layer: W(x - mu)/sd + b = (W/sd)x + (b - W(mu/sd)).
fn fold(mut w: super::head::Weights, mu: &[f32], sd: &[f32]) -> super::head::Weights {
    let d = mu.len();
    for (o, b) in w.b1.iter_mut().enumerate() {
        let row = &mut w.w1[o * d..(o + 1) * d];
        for i in 0..d {
            row[i] /= sd[i];
            *b -= row[i] * mu[i];
        }
    }
    w
}

/// Tuning examples whose labels are all among `labels` (the others cannot be scored).
pub(crate) fn scorable(rows: &[Example], labels: &[String]) -> Vec<Example> {
    rows.iter()
        .filter(|r| r.labels.iter().all(|l| labels.contains(l)))
        .cloned()
        .collect()
}

/// Train a head on `train_rows`; early stopping and calibration use `tune_rows`.
pub fn fit(
    enc: &DatasetEncoder,
    train_rows: &[Example],
    tune_rows: &[Example],
    o: &FitOptions,
) -> Result<Head> {
    let labels = label_set(train_rows);
    ensure!(labels.len() >= 2, "training data needs at least two labels");
    let tune = scorable(tune_rows, &labels);
    ensure!(
        !tune.is_empty(),
        "no tuning examples share the training labels"
    );
    let texts = |rows: &[Example]| rows.iter().map(|r| r.text.clone()).collect::<Vec<_>>();
    let raw_x = enc.embed_all(&texts(train_rows), "training set")?;
    let raw_hx = enc.embed_all(&texts(&tune), "tuning set")?;
    // Train on standardised features (per-dimension mean/std of the training set); the scaling
    // is folded into the first layer afterwards, so the head still reads raw embeddings.
    let (mu, sd) = moments(&raw_x);
    let std = |rows: &[Vec<f32>]| -> Vec<Vec<f32>> {
        rows.iter()
            .map(|r| {
                r.iter()
                    .zip(&mu)
                    .zip(&sd)
                    .map(|((v, m), s)| (v - m) / s)
                    .collect()
            })
            .collect()
    };
    let (x, hx) = (std(&raw_x), std(&raw_hx));
    let mut opts = o.train.clone();
    if let Some((a, b, weight)) = &o.pairs {
        let ea = enc.embed_all(a, "parallel text (English side)")?;
        let eb = enc.embed_all(b, "parallel text (translated side)")?;
        opts.consistency = Some(std::sync::Arc::new(train::Consistency {
            a: std(&ea),
            b: std(&eb),
            weight: *weight,
        }));
    }
    let (y, hy) = (
        targets(o.task, train_rows, &labels)?,
        targets(o.task, &tune, &labels)?,
    );
    opts.kind = o.task.kind();
    let trained = train::train(
        &x,
        &y,
        &hx,
        &hy,
        labels.len(),
        &opts,
        &mut |e, tl, hl, acc| {
            eprintln!(
                "epoch {e:>3}  train loss {tl:.4}  held-out loss {hl:.4}  held-out acc {acc:.4}"
            );
        },
    )?;
    let oos_label = o.oos_label.clone().filter(|l| labels.contains(l));
    let mut head = Head {
        meta: HeadMeta {
            name: o.name.clone(),
            task: o.task.name().into(),
            kind: opts.kind,
            labels: labels.clone(),
            encoder: enc.name.clone(),
            prefix: enc.prefix.clone(),
            dim: enc.dim(),
            hidden: opts.hidden,
            temperature: 1.0,
            oos_threshold: None,
            oos_label: oos_label.clone(),
            thresholds: Vec::new(),
            training: serde_json::json!({
                "examples": train_rows.len(), "tuning_examples": tune.len(), "seed": opts.seed,
                "hidden": opts.hidden, "best_epoch": trained.best_epoch, "epochs_run": trained.history.len(),
                "lr": opts.lr, "weight_decay": opts.weight_decay, "dropout": opts.dropout,
                "consistency_pairs": o.pairs.as_ref().map(|p| p.0.len()),
                "consistency_weight": o.pairs.as_ref().map(|p| p.2),
                "recall_target": o.recall_target,
            }),
            tuned_layers: None,
            languages: Default::default(),
        },
        weights: fold(trained.weights, &mu, &sd),
        layers: None,
    };
    match (o.task, &hy) {
        (Task::Intent, Targets::Class(gold)) => {
            let t = calibrate::IntentTuning {
                reject_share: o.reject_share,
                min_oos_recall: o.min_oos_recall,
                min_reject_share: o.min_reject_share,
            };
            calibrate::intents(&mut head, &raw_hx, &tune, gold, &t);
        }
        (_, Targets::Multi(gold)) if o.threshold_folds > 1 => {
            let Targets::Multi(all) = &y else {
                unreachable!("targets follow the task")
            };
            let n = o.oof_rows.min(train_rows.len());
            let fold_of = |r: &Example| -> usize {
                let h = Sha256::digest(format!("fold:{}", r.text.trim()).as_bytes());
                u64::from_le_bytes(h[..8].try_into().unwrap_or_default()) as usize
                    % o.threshold_folds
            };
            let folds: Vec<usize> = train_rows[..n].iter().map(fold_of).collect();
            let mut raw = vec![Vec::new(); n];
            for k in 0..o.threshold_folds {
                let keep: Vec<usize> = (0..train_rows.len())
                    .filter(|&i| i >= n || folds[i] != k)
                    .collect();
                let xk: Vec<Vec<f32>> = keep.iter().map(|&i| x[i].clone()).collect();
                let yk = Targets::Multi(keep.iter().map(|&i| all[i].clone()).collect());
                let tk = train::train(
                    &xk,
                    &yk,
                    &hx,
                    &hy,
                    labels.len(),
                    &opts,
                    &mut |_, _, _, _| {},
                )?;
                let mut hk = head.clone();
                hk.weights = fold(tk.weights, &mu, &sd);
                for i in (0..n).filter(|&i| folds[i] == k) {
                    raw[i] = hk.logits(&raw_x[i]).into_iter().map(sigmoid).collect();
                }
                let scored = folds.iter().filter(|&&f| f == k).count();
                eprintln!(
                    "threshold fold {}/{}: {scored} rows scored",
                    k + 1,
                    o.threshold_folds
                );
            }
            calibrate::labels_from(&mut head, raw, &train_rows[..n], &all[..n], o.recall_target);
            head.meta.training["threshold_folds"] = serde_json::json!(o.threshold_folds);
        }
        (_, Targets::Multi(gold)) => {
            calibrate::labels(&mut head, &raw_hx, &tune, gold, o.recall_target)
        }
        _ => unreachable!("targets follow the task"),
    }
    head.check()?;
    Ok(head)
}

/// Evaluate `head` on labelled rows. Intent rows whose gold label is `oos_label` (or unknown to
/// the head) count as out-of-scope examples. `groups`: emotion rows carry one emotion *group*.
pub fn evaluate(
    head: &Head,
    enc: &DatasetEncoder,
    rows: &[Example],
    oos_label: &str,
    groups: bool,
) -> Result<Report> {
    let texts: Vec<String> = rows.iter().map(|r| r.text.clone()).collect();
    let x = enc.embed_all(&texts, "evaluation set")?;
    // Each text is calibrated for the language the server would detect.
    let langs = super::data::detect_languages(rows);
    if head.meta.kind == Kind::Softmax {
        let known =
            |l: &String| head.meta.labels.contains(l) && Some(l) != head.meta.oos_label.as_ref();
        let gold: Vec<String> = rows
            .iter()
            .map(|r| {
                if known(&r.labels[0]) {
                    r.labels[0].clone()
                } else {
                    oos_label.to_string()
                }
            })
            .collect();
        let preds: Vec<_> = x
            .iter()
            .zip(&langs)
            .map(|(v, l)| head.predict_intent(v, 1, Some(l)))
            .collect();
        let pred: Vec<String> = preds
            .iter()
            .map(|p| {
                if p.out_of_scope {
                    oos_label.to_string()
                } else {
                    p.label.clone()
                }
            })
            .collect();
        let has_oos = gold.iter().any(|g| g == oos_label);
        let mut r = metrics::single_label("intent", &gold, &pred, has_oos.then_some(oos_label));
        r.by_language = by_language(&langs, |idx| {
            let g: Vec<String> = idx.iter().map(|&i| gold[i].clone()).collect();
            let p: Vec<String> = idx.iter().map(|&i| pred[i].clone()).collect();
            let sub = metrics::single_label("intent", &g, &p, has_oos.then_some(oos_label));
            let conf: Vec<(f32, bool)> = idx
                .iter()
                .map(|&i| (preds[i].score, preds[i].label == gold[i]))
                .collect();
            (sub, Some(calibrate::ece(&conf)))
        });
        let ins: Vec<usize> = (0..gold.len()).filter(|&i| gold[i] != oos_label).collect();
        if !ins.is_empty() {
            let n = ins.len() as f32;
            r.top1_accuracy =
                Some(ins.iter().filter(|&&i| preds[i].label == gold[i]).count() as f32 / n);
            r.rejected = Some(ins.iter().filter(|&&i| preds[i].out_of_scope).count() as f32 / n);
        }
        return Ok(r);
    }
    if groups {
        let gold: Vec<String> = rows.iter().map(|r| r.labels[0].clone()).collect();
        let pred: Vec<String> = x
            .iter()
            .zip(&langs)
            .map(|(v, l)| emotion::top_group(&head.groups(v, Some(l))))
            .collect();
        let mut r = metrics::single_label("emotion-groups", &gold, &pred, None);
        r.by_language = by_language(&langs, |idx| {
            let g: Vec<String> = idx.iter().map(|&i| gold[i].clone()).collect();
            let p: Vec<String> = idx.iter().map(|&i| pred[i].clone()).collect();
            (metrics::single_label("emotion-groups", &g, &p, None), None)
        });
        return Ok(r);
    }
    let gold: Vec<Vec<String>> = rows.iter().map(|r| r.labels.clone()).collect();
    let pred: Vec<Vec<String>> = x
        .iter()
        .zip(&langs)
        .map(|(v, l)| head.predict_labels(v, Some(l)).1)
        .collect();
    let mut r = metrics::multi_label("emotion", &gold, &pred, &head.meta.labels);
    r.by_language = by_language(&langs, |idx| {
        let g: Vec<Vec<String>> = idx.iter().map(|&i| gold[i].clone()).collect();
        let p: Vec<Vec<String>> = idx.iter().map(|&i| pred[i].clone()).collect();
        (
            metrics::multi_label("emotion", &g, &p, &head.meta.labels),
            None,
        )
    });
    Ok(r)
}

/// Figures per detected language (empty when the data holds one language).
fn by_language(
    langs: &[String],
    mut report: impl FnMut(&[usize]) -> (Report, Option<f32>),
) -> std::collections::BTreeMap<String, metrics::LangFigures> {
    let mut idx: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    for (i, l) in langs.iter().enumerate() {
        idx.entry(l.clone()).or_default().push(i);
    }
    if idx.len() < 2 {
        return Default::default();
    }
    idx.into_iter()
        .map(|(l, rows)| {
            let (r, ece) = report(&rows);
            (
                l,
                metrics::LangFigures {
                    examples: rows.len(),
                    accuracy: r.accuracy,
                    macro_f1: r.macro_f1,
                    ece,
                },
            )
        })
        .collect()
}
