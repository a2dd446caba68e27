//! Fine-tuning an encoder's top layers for one head (candle autograd): the trunk's hidden states
//! are computed once (and cached), then only the top layers and a temporary classifier train.

use super::embed_cache::DatasetEncoder;
use super::head::Kind;
use super::rng::Rng;
use super::train::{loss, Targets};
use crate::models::branch::{pretrained_top, Branch};
use crate::models::encoder::{pad_states, pool};
use anyhow::{ensure, Result};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use std::collections::HashMap;

#[derive(Debug, Clone)]
pub struct TuneOptions {
    /// How many top layers to fine-tune.
    pub layers: usize,
    pub max_epochs: usize,
    pub batch_size: usize,
    /// Learning rate of the encoder layers, and of the temporary classifier.
    pub lr: f64,
    pub head_lr: f64,
    pub dropout: f32,
    pub seed: u64,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions {
            layers: 1,
            max_epochs: 4,
            batch_size: 32,
            lr: 1e-4,
            head_lr: 2e-3,
            dropout: 0.1,
            seed: 42,
        }
    }
}

/// Batches of similar length in a seeded random order.
pub(crate) fn length_batches(lens: &[usize], size: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut idx: Vec<usize> = (0..lens.len()).collect();
    rng.shuffle(&mut idx);
    let mut out = Vec::new();
    for chunk in idx.chunks(size * 32) {
        let mut c = chunk.to_vec();
        c.sort_by_key(|&i| lens[i]);
        out.extend(c.chunks(size).map(|b| b.to_vec()));
    }
    rng.shuffle(&mut out);
    out
}

struct Model {
    branch: Branch,
    vars: Vec<Var>,
    w: Var,
    b: Var,
}

impl Model {
    /// Pooled, L2-normalised embeddings and logits (cosine-style classifier, scale 16).
    fn forward(
        &self,
        enc: &DatasetEncoder,
        states: &[&Tensor],
        drop: Option<(&mut Rng, f32)>,
    ) -> Result<Tensor> {
        let dev = self.w.device();
        let (x, mask) = pad_states(states, dev)?;
        let bias = crate::models::bert::attention_bias(&mask, x.dtype())?;
        let bert = enc.embedder().model();
        let x = bert.run_layers(&self.branch.layers, x, &bias)?;
        let mut e = pool(&x, &mask)?;
        if let Some((rng, p)) = drop {
            let scale = 1.0 / (1.0 - p);
            let m: Vec<f32> = (0..e.elem_count())
                .map(|_| if rng.uniform() < p { 0.0 } else { scale })
                .collect();
            let m = Tensor::from_vec(m, e.shape(), dev)?;
            e = (e * m)?;
        }
        Ok((e.matmul(&self.w.t()?)? * 16.0)?.broadcast_add(&self.b)?)
    }
}

/// The pretrained layers `first..` of the encoder's checkpoint, QKV fused as `Branch` names them.
pub(crate) fn pretrained_fused(
    enc: &DatasetEncoder,
    first: usize,
) -> Result<HashMap<String, Tensor>> {
    let n_layers = enc.embedder().config().num_hidden_layers;
    let mut init = pretrained_top(&enc.weight_files()?, first, n_layers)?;
    for i in first..n_layers {
        let p = format!("encoder.layer.{i}.attention.self");
        for part in ["weight", "bias"] {
            let qkv = ["query", "key", "value"]
                .iter()
                .map(|n| {
                    init.remove(&format!("{p}.{n}.{part}"))
                        .ok_or_else(|| anyhow::anyhow!("missing {p}.{n}.{part}"))
                })
                .collect::<Result<Vec<_>>>()?;
            init.insert(format!("{p}.qkv.{part}"), Tensor::cat(&qkv, 0)?);
        }
    }
    Ok(init)
}

/// Fine-tune the top `o.layers` layers on (texts, targets); early stopping on the held-out loss.
/// Returns the best epoch's layers.
#[allow(clippy::too_many_arguments)]
pub fn tune(
    enc: &DatasetEncoder,
    kind: Kind,
    n_labels: usize,
    texts: &[String],
    targets: &Targets,
    held_texts: &[String],
    held_targets: &Targets,
    o: &TuneOptions,
) -> Result<Branch> {
    let cfg = enc.embedder().config().clone();
    let n_layers = cfg.num_hidden_layers;
    ensure!(
        o.layers >= 1 && o.layers < n_layers,
        "--tune-layers must be between 1 and {}",
        n_layers - 1
    );
    ensure!(targets.len() == texts.len() && held_targets.len() == held_texts.len());
    let first = n_layers - o.layers;
    let dev = Device::Cpu;
    let train_states = enc.trunk_states(texts, first, "training set")?;
    let held_states = enc.trunk_states(held_texts, first, "tuning set")?;

    // Trainable copies of the pretrained top layers (QKV fused, so one Var holds all three).
    let init = pretrained_fused(enc, first)?;
    let mut vars = Vec::new();
    let mut tensors = HashMap::new();
    for (k, t) in init {
        let v = Var::from_tensor(&t)?;
        tensors.insert(k, v.as_tensor().clone());
        vars.push(v);
    }
    let mut branch = Branch::from_tensors(tensors, &cfg, first, o.layers, &dev)?;
    branch.set_train(true);
    let h = cfg.hidden_size;
    let mut rng = Rng::new(o.seed);
    let w0 = Tensor::from_vec(rng.uniform_vec(n_labels * h, 0.05), (n_labels, h), &dev)?;
    let mut m = Model {
        branch,
        vars,
        w: Var::from_tensor(&w0)?,
        b: Var::zeros(n_labels, DType::F32, &dev)?,
    };
    let mut enc_opt = AdamW::new(
        m.vars.clone(),
        ParamsAdamW {
            lr: o.lr,
            weight_decay: 0.01,
            ..Default::default()
        },
    )?;
    let mut head_opt = AdamW::new(
        vec![m.w.clone(), m.b.clone()],
        ParamsAdamW {
            lr: o.head_lr,
            weight_decay: 1e-4,
            ..Default::default()
        },
    )?;
    let lens: Vec<usize> = train_states.iter().map(|t| t.dim(0).unwrap_or(0)).collect();
    let held_lens: Vec<usize> = held_states.iter().map(|t| t.dim(0).unwrap_or(0)).collect();
    let mut best: Option<(f32, Vec<(String, Tensor)>)> = None;
    for epoch in 1..=o.max_epochs {
        let order = length_batches(&lens, o.batch_size, &mut rng);
        let bar = super::embed_cache::progress(order.len(), &format!("fine-tuning epoch {epoch}"));
        let (mut sum, mut count) = (0f32, 0usize);
        for idx in &order {
            let st: Vec<&Tensor> = idx.iter().map(|&i| &train_states[i]).collect();
            let logits = m.forward(enc, &st, Some((&mut rng, o.dropout)))?;
            let l = loss(kind, &logits, &targets.tensor(idx, &dev)?)?;
            let grads = l.backward()?;
            enc_opt.step(&grads)?;
            head_opt.step(&grads)?;
            sum += l.to_scalar::<f32>()? * idx.len() as f32;
            count += idx.len();
            bar.inc(1);
        }
        bar.finish();
        // Held-out loss with the fast inference kernels (same values, no backward needed).
        m.branch.set_train(false);
        let (mut hsum, mut correct) = (0f32, 0usize);
        let mut hidx: Vec<usize> = (0..held_states.len()).collect();
        hidx.sort_by_key(|&i| held_lens[i]);
        for idx in hidx.chunks(64) {
            let st: Vec<&Tensor> = idx.iter().map(|&i| &held_states[i]).collect();
            let logits = m.forward(enc, &st, None)?.detach();
            let t = held_targets.tensor(idx, &dev)?;
            hsum += loss(kind, &logits, &t)?.to_scalar::<f32>()? * idx.len() as f32;
            if let Targets::Class(c) = held_targets {
                let am: Vec<u32> = logits.argmax(1)?.to_vec1()?;
                correct += idx.iter().zip(am).filter(|(&i, p)| c[i] == *p).count();
            }
        }
        m.branch.set_train(true);
        let held = hsum / held_states.len().max(1) as f32;
        eprintln!(
            "epoch {epoch}: train loss {:.4}, held-out loss {held:.4}{}",
            sum / count.max(1) as f32,
            if kind == Kind::Softmax {
                format!(
                    ", accuracy {:.4}",
                    correct as f32 / held_states.len().max(1) as f32
                )
            } else {
                String::new()
            }
        );
        if best.as_ref().is_some_and(|(b, _)| held >= *b) {
            break;
        }
        let snap = m
            .branch
            .tensors()
            .into_iter()
            .map(|(k, t)| Ok((k, t.detach().copy()?)))
            .collect::<Result<Vec<_>>>()?;
        best = Some((held, snap));
    }
    let (_, snap) = best.ok_or_else(|| anyhow::anyhow!("no epoch ran"))?;
    Branch::from_tensors(snap.into_iter().collect(), &cfg, first, o.layers, &dev)
}
