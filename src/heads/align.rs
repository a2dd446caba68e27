//! Cross-lingual alignment of a head's tuned encoder layers (multilingual knowledge distillation,
//! Reimers & Gurevych 2020): on parallel sentences, the layers learn to put a translation (the
//! student side, e.g. Chinese) where the English sentence lands through the layers as they were
//! (the teacher), while the English side keeps its own place. Only the top layers train; the
//! trunk's hidden states are computed once (and cached) as for fine-tuning.

use super::embed_cache::{progress, DatasetEncoder};
use super::finetune::length_batches;
use super::rng::Rng;
use crate::models::branch::Branch;
use crate::models::encoder::{pad_states, pool};
use anyhow::{ensure, Result};
use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct AlignOptions {
    pub max_epochs: usize,
    /// Pairs per step (each step runs both sides: twice as many sequences).
    pub batch_size: usize,
    pub lr: f64,
    /// Weight of the English side's loss (keeping the teacher's own outputs where they are).
    pub keep_weight: f32,
    pub seed: u64,
}

impl Default for AlignOptions {
    fn default() -> Self {
        AlignOptions {
            max_epochs: 2,
            batch_size: 64,
            lr: 5e-5,
            keep_weight: 1.0,
            seed: 42,
        }
    }
}

/// Mean cosine of the student's Chinese and English embeddings to the teacher's English ones.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct AlignScore {
    pub cross: f32,
    pub keep: f32,
}

/// Parallel text: (English, other language) per pair.
pub struct Pairs {
    pub source: Vec<String>,
    pub target: Vec<String>,
}

/// Pooled, L2-normalised embeddings of `states[idx]` through `branch`.
fn embed(
    enc: &DatasetEncoder,
    branch: &Branch,
    states: &[&Tensor],
    dev: &Device,
) -> Result<Tensor> {
    let (x, mask) = pad_states(states, dev)?;
    let bias = crate::models::bert::attention_bias(&mask, x.dtype())?;
    let x = enc
        .embedder()
        .model()
        .run_layers(&branch.layers, x, &bias)?;
    pool(&x, &mask)
}

/// Embeddings of every state through `branch` with the inference kernels, in length-sorted
/// chunks, as one [n, h] tensor in the original order.
fn embed_all(
    enc: &DatasetEncoder,
    branch: &mut Branch,
    states: &[Tensor],
    dev: &Device,
) -> Result<Tensor> {
    branch.set_train(false);
    let mut order: Vec<usize> = (0..states.len()).collect();
    order.sort_by_key(|&i| states[i].dim(0).unwrap_or(0));
    let mut rows: Vec<Option<Tensor>> = vec![None; states.len()];
    for idx in order.chunks(128) {
        let st: Vec<&Tensor> = idx.iter().map(|&i| &states[i]).collect();
        let e = embed(enc, branch, &st, dev)?.detach();
        for (j, &i) in idx.iter().enumerate() {
            rows[i] = Some(e.get(j)?);
        }
    }
    branch.set_train(true);
    let rows: Vec<Tensor> = rows.into_iter().flatten().collect();
    Ok(Tensor::stack(&rows, 0)?)
}

/// Mean cosine between rows of two unit-length [n, h] tensors.
fn mean_cos(a: &Tensor, b: &Tensor) -> Result<f32> {
    Ok((a * b)?.sum(1)?.mean(0)?.to_scalar::<f32>()?)
}

/// Align `start` (the head's tuned layers, or the pretrained top layers) on `train` pairs; early
/// stopping on the held-out pairs' loss. Returns the best epoch's layers and the held-out scores
/// before and after.
pub fn align(
    enc: &DatasetEncoder,
    start: &Branch,
    train: &Pairs,
    held: &Pairs,
    o: &AlignOptions,
) -> Result<(Branch, AlignScore, AlignScore)> {
    ensure!(
        train.source.len() == train.target.len() && held.source.len() == held.target.len(),
        "pairs are misaligned"
    );
    ensure!(
        !train.source.is_empty() && !held.source.is_empty(),
        "no pairs"
    );
    let dev = Device::Cpu;
    let cfg = enc.embedder().config().clone();
    let first = start.first;
    let count = cfg.num_hidden_layers - first;
    let src = enc.trunk_states(&train.source, first, "English side")?;
    let tgt = enc.trunk_states(&train.target, first, "translated side")?;
    let hsrc = enc.trunk_states(&held.source, first, "held-out English side")?;
    let htgt = enc.trunk_states(&held.target, first, "held-out translated side")?;

    // The teacher: the starting layers, frozen (their English embeddings, computed once).
    let snapshot = |b: &Branch| -> Result<HashMap<String, Tensor>> {
        b.tensors()
            .into_iter()
            .map(|(k, t)| Ok((k, t.detach().copy()?)))
            .collect()
    };
    let mut teacher = Branch::from_tensors(snapshot(start)?, &cfg, first, count, &dev)?;
    let teach = embed_all(enc, &mut teacher, &src, &dev)?;
    let held_teach = embed_all(enc, &mut teacher, &hsrc, &dev)?;
    drop(teacher);

    let mut vars = Vec::new();
    let mut tensors = HashMap::new();
    for (k, t) in snapshot(start)? {
        let v = Var::from_tensor(&t)?;
        tensors.insert(k, v.as_tensor().clone());
        vars.push(v);
    }
    let mut student = Branch::from_tensors(tensors, &cfg, first, count, &dev)?;
    student.set_train(true);
    let score = |s: &mut Branch| -> Result<AlignScore> {
        Ok(AlignScore {
            cross: mean_cos(&embed_all(enc, s, &htgt, &dev)?, &held_teach)?,
            keep: mean_cos(&embed_all(enc, s, &hsrc, &dev)?, &held_teach)?,
        })
    };
    let before = score(&mut student)?;
    eprintln!(
        "held-out before: cosine(translation, teacher) {:.4}, cosine(English, teacher) {:.4}",
        before.cross, before.keep
    );
    let mut opt = AdamW::new(
        vars,
        ParamsAdamW {
            lr: o.lr,
            weight_decay: 0.01,
            ..Default::default()
        },
    )?;
    let mut rng = Rng::new(o.seed);
    // Batches by the longer side's length, so both sides pad little.
    let lens: Vec<usize> = src
        .iter()
        .zip(&tgt)
        .map(|(a, b)| a.dim(0).unwrap_or(0).max(b.dim(0).unwrap_or(0)))
        .collect();
    let loss_of = |before: AlignScore| (1.0 - before.cross) + o.keep_weight * (1.0 - before.keep);
    let mut best: Option<(f32, AlignScore, HashMap<String, Tensor>)> = None;
    for epoch in 1..=o.max_epochs {
        let order = length_batches(&lens, o.batch_size, &mut rng);
        let bar = progress(order.len(), &format!("aligning epoch {epoch}"));
        let (mut sum, mut n) = (0f32, 0usize);
        for idx in &order {
            let t = Tensor::stack(
                &idx.iter()
                    .map(|&i| teach.get(i))
                    .collect::<candle_core::Result<Vec<_>>>()?,
                0,
            )?;
            let both: Vec<&Tensor> = idx
                .iter()
                .map(|&i| &tgt[i])
                .chain(idx.iter().map(|&i| &src[i]))
                .collect();
            let e = embed(enc, &student, &both, &dev)?;
            let k = idx.len();
            // Squared distance of unit vectors = 2 - 2 cos.
            let cross = (e.narrow(0, 0, k)? - &t)?.sqr()?.sum(1)?.mean(0)?;
            let keep = (e.narrow(0, k, k)? - &t)?.sqr()?.sum(1)?.mean(0)?;
            let l = (cross + (keep * o.keep_weight as f64)?)?;
            opt.backward_step(&l)?;
            sum += l.to_scalar::<f32>()? * k as f32;
            n += k;
            bar.inc(1);
        }
        bar.finish();
        let s = score(&mut student)?;
        let held = loss_of(s);
        eprintln!(
            "epoch {epoch}: train loss {:.5}; held-out cosine(translation, teacher) {:.4}, cosine(English, teacher) {:.4}",
            sum / n.max(1) as f32,
            s.cross,
            s.keep
        );
        if best.as_ref().is_some_and(|(b, _, _)| held >= *b) {
            break;
        }
        best = Some((held, s, snapshot(&student)?));
    }
    let (_, after, t) = best.ok_or_else(|| anyhow::anyhow!("no epoch ran"))?;
    Ok((
        Branch::from_tensors(t, &cfg, first, count, &dev)?,
        before,
        after,
    ))
}

/// Tab-separated parallel text (`English<TAB>other`), split deterministically into training and
/// held-out pairs by a hash (sha256) of the English side (`held_every`: one in N held out).
pub fn read_pairs(path: &std::path::Path, held_every: u8) -> Result<(Pairs, Pairs)> {
    use sha2::{Digest, Sha256};
    let text = std::fs::read_to_string(path)?;
    let mut train = Pairs {
        source: Vec::new(),
        target: Vec::new(),
    };
    let mut held = Pairs {
        source: Vec::new(),
        target: Vec::new(),
    };
    for line in text.lines() {
        let mut it = line.split('\t');
        let (Some(a), Some(b)) = (it.next(), it.next()) else {
            continue;
        };
        let (a, b) = (a.trim(), b.trim());
        if a.is_empty() || b.is_empty() {
            continue;
        }
        let h = Sha256::digest(format!("align:{a}").as_bytes());
        let to = if h[0] % held_every == 0 {
            &mut held
        } else {
            &mut train
        };
        to.source.push(a.to_string());
        to.target.push(b.to_string());
    }
    Ok((train, held))
}
