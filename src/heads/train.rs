//! Training a head on frozen embeddings with candle autograd (AdamW, early stopping, seeded),
//! then calibration: softmax temperature, out-of-scope threshold, per-label sigmoid thresholds.

use super::head::{Kind, Weights};
use super::rng::Rng;
use anyhow::{ensure, Result};
use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};

/// Targets: a class index per example (softmax) or a multi-hot row (sigmoid).
#[derive(Debug, Clone)]
pub enum Targets {
    Class(Vec<u32>),
    Multi(Vec<Vec<f32>>),
}

impl Targets {
    pub(crate) fn len(&self) -> usize {
        match self {
            Targets::Class(v) => v.len(),
            Targets::Multi(v) => v.len(),
        }
    }

    pub(crate) fn tensor(&self, idx: &[usize], dev: &Device) -> Result<Tensor> {
        Ok(match self {
            Targets::Class(v) => Tensor::from_vec(
                idx.iter().map(|&i| v[i]).collect::<Vec<_>>(),
                idx.len(),
                dev,
            )?,
            Targets::Multi(v) => {
                let n = v[0].len();
                let flat: Vec<f32> = idx.iter().flat_map(|&i| v[i].iter().copied()).collect();
                Tensor::from_vec(flat, (idx.len(), n), dev)?
            }
        })
    }
}

#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub kind: Kind,
    pub hidden: usize,
    pub max_epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub dropout: f32,
    pub patience: usize,
    pub seed: u64,
    /// Cross-lingual consistency: parallel embeddings whose answers should agree.
    pub consistency: Option<std::sync::Arc<Consistency>>,
}

/// Parallel sentence embeddings (e.g. English and Chinese), unlabelled: each training step also
/// pulls the head's answer on one side towards its (fixed) answer on the other, both ways, with
/// `weight` against the labelled loss. Parallel text has no intent labels, but it says that a
/// sentence and its translation must get the same one.
#[derive(Debug)]
pub struct Consistency {
    pub a: Vec<Vec<f32>>,
    pub b: Vec<Vec<f32>>,
    pub weight: f32,
}

/// The loss of `logits` against soft targets `target` (probabilities, no gradient).
fn soft_loss(kind: Kind, logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    Ok(match kind {
        Kind::Softmax => {
            let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
            (target * logp)?.sum(D::Minus1)?.mean(0)?.neg()?
        }
        Kind::Sigmoid => candle_nn::loss::binary_cross_entropy_with_logit(logits, target)?,
    })
}

fn probs(kind: Kind, logits: &Tensor) -> Result<Tensor> {
    Ok(match kind {
        Kind::Softmax => candle_nn::ops::softmax(logits, D::Minus1)?,
        Kind::Sigmoid => candle_nn::ops::sigmoid(logits)?,
    })
}

impl TrainOptions {
    pub fn new(kind: Kind) -> Self {
        TrainOptions {
            kind,
            hidden: 0,
            max_epochs: 200,
            batch_size: 64,
            lr: 1e-3,
            weight_decay: 1e-4,
            dropout: 0.1,
            patience: 8,
            seed: 42,
            consistency: None,
        }
    }
}

pub struct Trained {
    pub weights: Weights,
    pub best_epoch: usize,
    /// Per epoch: (train loss, held-out loss, held-out accuracy for softmax heads).
    pub history: Vec<(f32, f32, f32)>,
}

struct Params {
    w1: Var,
    b1: Var,
    w2: Option<(Var, Var)>,
}

impl Params {
    fn init(dim: usize, n: usize, hidden: usize, rng: &mut Rng, dev: &Device) -> Result<Self> {
        let layer = |inp: usize, out: usize, rng: &mut Rng| -> Result<(Var, Var)> {
            let bound = 1.0 / (inp as f32).sqrt();
            let w = Tensor::from_vec(rng.uniform_vec(inp * out, bound), (out, inp), dev)?;
            Ok((Var::from_tensor(&w)?, Var::zeros(out, DType::F32, dev)?))
        };
        let first = if hidden > 0 { hidden } else { n };
        let (w1, b1) = layer(dim, first, rng)?;
        let w2 = if hidden > 0 {
            Some(layer(hidden, n, rng)?)
        } else {
            None
        };
        Ok(Params { w1, b1, w2 })
    }

    fn vars(&self) -> Vec<Var> {
        let mut v = vec![self.w1.clone(), self.b1.clone()];
        if let Some((w, b)) = &self.w2 {
            v.extend([w.clone(), b.clone()]);
        }
        v
    }

    /// Logits [b, n]; `drop` = Some(rng, p) applies dropout to the hidden layer (training).
    fn forward(&self, x: &Tensor, drop: Option<(&mut Rng, f32)>) -> Result<Tensor> {
        let h = x.matmul(&self.w1.t()?)?.broadcast_add(&self.b1)?;
        let Some((w2, b2)) = &self.w2 else {
            return Ok(h);
        };
        let mut h = h.gelu()?;
        if let Some((rng, p)) = drop {
            if p > 0.0 {
                let scale = 1.0 / (1.0 - p);
                let mask: Vec<f32> = (0..h.elem_count())
                    .map(|_| if rng.uniform() < p { 0.0 } else { scale })
                    .collect();
                let mask = Tensor::from_vec(mask, h.shape(), h.device())?;
                h = (h * mask)?;
            }
        }
        Ok(h.matmul(&w2.t()?)?.broadcast_add(b2)?)
    }

    fn snapshot(&self) -> Result<Weights> {
        let v = |t: &Var| -> Result<Vec<f32>> { Ok(t.as_tensor().flatten_all()?.to_vec1()?) };
        Ok(Weights {
            w1: v(&self.w1)?,
            b1: v(&self.b1)?,
            w2: match &self.w2 {
                Some((w, b)) => Some((v(w)?, v(b)?)),
                None => None,
            },
        })
    }
}

pub(crate) fn loss(kind: Kind, logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    Ok(match kind {
        Kind::Softmax => candle_nn::loss::cross_entropy(logits, target)?,
        Kind::Sigmoid => candle_nn::loss::binary_cross_entropy_with_logit(logits, target)?,
    })
}

fn matrix(x: &[Vec<f32>], dev: &Device) -> Result<Tensor> {
    let dim = x[0].len();
    Ok(Tensor::from_vec(
        x.iter().flatten().copied().collect::<Vec<_>>(),
        (x.len(), dim),
        dev,
    )?)
}

/// Train on (x, y); stop when the held-out loss has not improved for `patience` epochs and keep
/// the best epoch's weights. `progress(epoch, train_loss, held_out_loss, held_out_acc)`.
pub fn train(
    x: &[Vec<f32>],
    y: &Targets,
    hx: &[Vec<f32>],
    hy: &Targets,
    n_labels: usize,
    o: &TrainOptions,
    progress: &mut dyn FnMut(usize, f32, f32, f32),
) -> Result<Trained> {
    ensure!(
        !x.is_empty() && x.len() == y.len(),
        "training data is empty or misaligned"
    );
    ensure!(
        !hx.is_empty() && hx.len() == hy.len(),
        "held-out data is empty or misaligned"
    );
    let dev = Device::Cpu;
    let mut rng = Rng::new(o.seed);
    let params = Params::init(x[0].len(), n_labels, o.hidden, &mut rng, &dev)?;
    let mut opt = AdamW::new(
        params.vars(),
        ParamsAdamW {
            lr: o.lr,
            weight_decay: o.weight_decay,
            ..Default::default()
        },
    )?;
    let (xt, hxt) = (matrix(x, &dev)?, matrix(hx, &dev)?);
    let pairs = match &o.consistency {
        Some(c) if !c.a.is_empty() && c.a.len() == c.b.len() => {
            Some((c.clone(), matrix(&c.a, &dev)?, matrix(&c.b, &dev)?))
        }
        _ => None,
    };
    let hidx: Vec<usize> = (0..hx.len()).collect();
    let hyt = hy.tensor(&hidx, &dev)?;
    let mut order: Vec<usize> = (0..x.len()).collect();
    let (mut best, mut best_loss, mut since, mut history) = (None, f32::INFINITY, 0, Vec::new());
    for epoch in 1..=o.max_epochs {
        rng.shuffle(&mut order);
        let mut total = 0f32;
        for chunk in order.chunks(o.batch_size) {
            let idx = Tensor::from_vec(
                chunk.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                chunk.len(),
                &dev,
            )?;
            let logits = params.forward(&xt.index_select(&idx, 0)?, Some((&mut rng, o.dropout)))?;
            let mut l = loss(o.kind, &logits, &y.tensor(chunk, &dev)?)?;
            if let Some((c, at, bt)) = &pairs {
                let n = c.a.len();
                let pick: Vec<u32> = (0..chunk.len())
                    .map(|_| ((rng.uniform() * n as f32) as usize).min(n - 1) as u32)
                    .collect();
                let pi = Tensor::from_vec(pick, chunk.len(), &dev)?;
                let la = params.forward(&at.index_select(&pi, 0)?, None)?;
                let lb = params.forward(&bt.index_select(&pi, 0)?, None)?;
                let (pa, pb) = (probs(o.kind, &la)?.detach(), probs(o.kind, &lb)?.detach());
                let c_loss = (soft_loss(o.kind, &lb, &pa)? + soft_loss(o.kind, &la, &pb)?)?;
                l = (l + (c_loss * c.weight as f64)?)?;
            }
            opt.backward_step(&l)?;
            total += l.to_scalar::<f32>()? * chunk.len() as f32;
        }
        let hl = params.forward(&hxt, None)?;
        let held_loss = loss(o.kind, &hl, &hyt)?.to_scalar::<f32>()?;
        let acc = match hy {
            Targets::Class(v) => {
                let pred: Vec<u32> = hl.argmax(D::Minus1)?.to_vec1()?;
                pred.iter().zip(v).filter(|(a, b)| a == b).count() as f32 / v.len() as f32
            }
            Targets::Multi(_) => f32::NAN,
        };
        let train_loss = total / x.len() as f32;
        history.push((train_loss, held_loss, acc));
        progress(epoch, train_loss, held_loss, acc);
        if held_loss < best_loss - 1e-5 {
            best_loss = held_loss;
            best = Some((epoch, params.snapshot()?));
            since = 0;
        } else {
            since += 1;
            if since >= o.patience {
                break;
            }
        }
    }
    let (best_epoch, weights) = match best {
        Some(b) => b,
        None => (history.len(), params.snapshot()?),
    };
    Ok(Trained {
        weights,
        best_epoch,
        history,
    })
}

/// The softmax temperature that minimises the negative log-likelihood of `logits` (grid search).
pub fn fit_temperature(logits: &[Vec<f32>], target: &[u32]) -> f32 {
    let nll = |t: f32| -> f32 {
        logits
            .iter()
            .zip(target)
            .map(|(l, &y)| -super::head::softmax(l, t)[y as usize].max(1e-12).ln())
            .sum()
    };
    (0..=60)
        .map(|i| 0.25 * 10f32.powf(i as f32 / 40.0 * 1.5)) // 0.25 .. ~7.9, log-spaced
        .min_by(|a, b| nll(*a).total_cmp(&nll(*b)))
        .unwrap_or(1.0)
}

/// Out-of-scope threshold on the calibrated top score, from (score, is out of scope, top label
/// correct) per held-out example. With out-of-scope examples: the threshold with the best
/// in-scope accuracy among those that keep out-of-scope recall >= `min_recall` (or, if none
/// does, the best sum of the two). Without: reject at most `reject` of the in-scope examples.
pub fn tune_oos_threshold(scores: &[(f32, bool, bool)], reject: f32, min_recall: f32) -> f32 {
    let n_oos = scores.iter().filter(|s| s.1).count();
    if n_oos == 0 {
        let mut s: Vec<f32> = scores.iter().map(|s| s.0).collect();
        s.sort_by(|a, b| a.total_cmp(b));
        return s[((s.len() as f32 * reject) as usize).min(s.len() - 1)];
    }
    let n_in = (scores.len() - n_oos).max(1) as f32;
    let rates = |t: f32| -> (f32, f32) {
        let in_ok = scores.iter().filter(|s| !s.1 && s.2 && s.0 >= t).count() as f32 / n_in;
        let oos_ok = scores.iter().filter(|s| s.1 && s.0 < t).count() as f32 / n_oos as f32;
        (in_ok, oos_ok)
    };
    let grid: Vec<f32> = (1..200).map(|i| i as f32 / 200.0).collect();
    let meeting = grid
        .iter()
        .filter(|&&t| rates(t).1 >= min_recall)
        .max_by(|a, b| rates(**a).0.total_cmp(&rates(**b).0).then(b.total_cmp(a)));
    match meeting {
        Some(t) => *t,
        None => grid
            .into_iter()
            .max_by(|a, b| {
                let (x, y) = (rates(*a), rates(*b));
                (x.0 + x.1).total_cmp(&(y.0 + y.1))
            })
            .unwrap_or(0.5),
    }
}

/// Per-label sigmoid thresholds that maximise each label's F1 on held-out data.
pub fn tune_label_thresholds(probs: &[Vec<f32>], gold: &[Vec<f32>]) -> Vec<f32> {
    let n = probs[0].len();
    (0..n)
        .map(|j| {
            let f1 = |t: f32| {
                let (mut tp, mut fp, mut fneg) = (0f32, 0f32, 0f32);
                for (p, g) in probs.iter().zip(gold) {
                    match (p[j] >= t, g[j] > 0.5) {
                        (true, true) => tp += 1.0,
                        (true, false) => fp += 1.0,
                        (false, true) => fneg += 1.0,
                        _ => {}
                    }
                }
                2.0 * tp / (2.0 * tp + fp + fneg).max(1.0)
            };
            (1..20)
                .map(|i| i as f32 / 20.0)
                .max_by(|a, b| f1(*a).total_cmp(&f1(*b)))
                .unwrap_or(0.5)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two separable clusters: the head learns them, deterministically for a seed.
    #[test]
    fn learns_a_separable_problem_deterministically() {
        let mut rng = Rng::new(1);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..200 {
            let c = (i % 2) as u32;
            let centre = if c == 0 { 1.0 } else { -1.0 };
            x.push(
                (0..8)
                    .map(|_| centre + rng.uniform() - 0.5)
                    .collect::<Vec<f32>>(),
            );
            y.push(c);
        }
        let t = Targets::Class(y.clone());
        let mut o = TrainOptions::new(Kind::Softmax);
        o.max_epochs = 30;
        for hidden in [0, 16] {
            o.hidden = hidden;
            let held = Targets::Class(y[..40].to_vec());
            let run = || train(&x, &t, &x[..40], &held, 2, &o, &mut |_, _, _, _| {}).unwrap();
            let (a, b) = (run(), run());
            assert_eq!(a.weights.w1, b.weights.w1, "same seed, same weights");
            let last = a.history[a.best_epoch - 1];
            assert!(last.2 > 0.99, "held-out accuracy {}", last.2);
        }
    }

    #[test]
    fn temperature_and_thresholds() {
        // Over-confident logits: the fitted temperature is above 1.
        let logits: Vec<Vec<f32>> = (0..100)
            .map(|i| {
                if i % 4 == 0 {
                    vec![0.0, 10.0]
                } else {
                    vec![10.0, 0.0]
                }
            })
            .collect();
        let target: Vec<u32> = (0..100).map(|i| if i % 2 == 0 { 0 } else { 1 }).collect();
        assert!(fit_temperature(&logits, &target) > 1.0);
        let scores: Vec<(f32, bool, bool)> = (0..100)
            .map(|i| {
                if i < 50 {
                    (0.9, false, true)
                } else {
                    (0.3, true, false)
                }
            })
            .collect();
        let t = tune_oos_threshold(&scores, 0.02, 0.85);
        assert!(t > 0.3 && t <= 0.9, "{t}");
        let th = tune_label_thresholds(
            &[vec![0.8], vec![0.2], vec![0.7]],
            &[vec![1.0], vec![0.0], vec![1.0]],
        );
        assert!(th[0] > 0.2 && th[0] <= 0.7);
    }
}
