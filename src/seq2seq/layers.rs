//! Building blocks shared by the Marian and T5 models: multi-head attention with a KV cache,
//! padding-mask biases and Hugging Face activation names.

use super::dense::Dense;
use anyhow::{bail, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;

/// Decoder state carried across generation steps. Row `r` of every tensor belongs to the same
/// hypothesis (batch row, or batch row × beam).
pub struct KvCache {
    /// Per decoder layer: self-attention keys/values `(rows, heads, t, head_dim)`, grown each step.
    pub self_kv: Vec<Option<(Tensor, Tensor)>>,
    /// Per decoder layer: cross-attention keys/values `(rows, heads, src_len, head_dim)`, computed once.
    pub cross_kv: Vec<(Tensor, Tensor)>,
    /// Additive padding bias over the encoder positions, `(rows, 1, 1, src_len)`.
    pub enc_bias: Tensor,
    /// Decoder tokens fed so far (the position of the next one).
    pub len: usize,
    /// Rows of `self_kv` the next step keeps, in order (beam reordering, finished rows dropped):
    /// applied while the step appends its keys/values, so the cache is copied once per step.
    pub self_pick: Option<Vec<u32>>,
}

impl KvCache {
    /// A fresh cache for a decoder whose layers' cross-attention keys/values are `cross_kv`.
    pub fn new(cross_kv: Vec<(Tensor, Tensor)>, enc_bias: &Tensor) -> KvCache {
        KvCache {
            self_kv: vec![None; cross_kv.len()],
            cross_kv,
            enc_bias: enc_bias.clone(),
            len: 0,
            self_pick: None,
        }
    }

    pub fn rows(&self) -> Result<usize> {
        Ok(self.enc_bias.dim(0)?)
    }

    /// Keep/reorder rows: `self_rows` picks the self-attention rows (beam reordering) and
    /// `cross_rows` the encoder-side rows (dropping finished rows, expanding to beams).
    pub fn select(&mut self, self_rows: &[u32], cross_rows: Option<&[u32]>) -> Result<()> {
        let dev = self.enc_bias.device().clone();
        self.self_pick = Some(match &self.self_pick {
            Some(p) => self_rows.iter().map(|&r| p[r as usize]).collect(),
            None => self_rows.to_vec(),
        });
        if let Some(rows) = cross_rows {
            let idx = Tensor::new(rows, &dev)?;
            for kv in self.cross_kv.iter_mut() {
                *kv = (kv.0.index_select(&idx, 0)?, kv.1.index_select(&idx, 0)?);
            }
            self.enc_bias = self.enc_bias.index_select(&idx, 0)?;
        }
        Ok(())
    }
}

/// `(b, 1, 1, s)` additive bias: 0 where `mask` is 1, `f32::MIN` (as HF's eager path) where 0.
pub fn padding_bias(mask: &[Vec<u8>], device: &Device) -> Result<Tensor> {
    let b = mask.len();
    let s = mask.first().map_or(0, Vec::len);
    let v: Vec<f32> = mask
        .iter()
        .flat_map(|r| r.iter().map(|&m| if m == 0 { f32::MIN } else { 0.0 }))
        .collect();
    Ok(Tensor::from_vec(v, (b, 1, 1, s), device)?)
}

/// Activation functions by their Hugging Face (`ACT2FN`) names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    Relu,
    GeluErf,
    GeluTanh,
    Silu,
    QuickGelu,
    Tanh,
    Sigmoid,
}

impl Act {
    pub fn from_hf(name: &str) -> Result<Act> {
        Ok(match name {
            "relu" => Act::Relu,
            "gelu" => Act::GeluErf,
            "gelu_new" | "gelu_fast" | "gelu_pytorch_tanh" => Act::GeluTanh,
            "swish" | "silu" => Act::Silu,
            "quick_gelu" => Act::QuickGelu,
            "tanh" => Act::Tanh,
            "sigmoid" => Act::Sigmoid,
            other => bail!("unsupported activation function {other:?}"),
        })
    }

    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Act::Relu => x.relu()?,
            Act::GeluErf => x.gelu_erf()?,
            Act::GeluTanh => x.gelu()?,
            Act::Silu => x.silu()?,
            Act::QuickGelu => (x * candle_nn::ops::sigmoid(&(x * 1.702)?)?)?,
            Act::Tanh => x.tanh()?,
            Act::Sigmoid => candle_nn::ops::sigmoid(x)?,
        })
    }
}

/// Multi-head attention (`q`, `k`, `v`, `o` projections) as used by both models.
pub struct Attention {
    q: Dense,
    k: Dense,
    v: Dense,
    o: Dense,
    heads: usize,
    head_dim: usize,
    /// Multiplies `q·k` (Marian: head_dim^-0.5; T5: none).
    scale: Option<f64>,
}

pub struct AttentionNames<'a> {
    pub q: &'a str,
    pub k: &'a str,
    pub v: &'a str,
    pub o: &'a str,
}

impl Attention {
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        vb: VarBuilder,
        names: &AttentionNames,
        d_model: usize,
        heads: usize,
        head_dim: usize,
        bias: bool,
        scale: Option<f64>,
    ) -> Result<Attention> {
        let inner = heads * head_dim;
        let lin = |name: &str, i: usize, o: usize| Dense::load(i, o, bias, vb.pp(name));
        Ok(Attention {
            q: lin(names.q, d_model, inner)?,
            k: lin(names.k, d_model, inner)?,
            v: lin(names.v, d_model, inner)?,
            o: lin(names.o, inner, d_model)?,
            heads,
            head_dim,
            scale,
        })
    }

    /// `(b, t, d)` -> `(b, heads, t, head_dim)`.
    fn split(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?)
    }

    /// Keys and values of `x` (encoder output for cross-attention, or new decoder positions).
    pub fn project_kv(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            self.split(&self.k.forward(x)?)?,
            self.split(&self.v.forward(x)?)?,
        ))
    }

    /// Attention of queries from `x` over `k`/`v`; `bias` broadcasts onto `(b, heads, tq, tk)`.
    pub fn attend(&self, x: &Tensor, k: &Tensor, v: &Tensor, bias: &[&Tensor]) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let q = self.split(&self.q.forward(x)?)?;
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(s) = self.scale {
            scores = (scores * s)?;
        }
        for bias in bias {
            scores = scores.broadcast_add(bias)?;
        }
        let p = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = p
            .matmul(v)?
            .transpose(1, 2)?
            .reshape((b, t, self.heads * self.head_dim))?;
        self.o.forward(&out)
    }

    /// Self-attention over the whole sequence (encoder).
    pub fn full(&self, x: &Tensor, bias: &[&Tensor]) -> Result<Tensor> {
        let (k, v) = self.project_kv(x)?;
        self.attend(x, &k, &v, bias)
    }

    /// One decoder step of self-attention: keeps the `pick` rows of `cache` (all when `None`)
    /// and appends this position's keys/values.
    pub fn step(
        &self,
        x: &Tensor,
        cache: &mut Option<(Tensor, Tensor)>,
        pick: Option<&[u32]>,
        bias: &[&Tensor],
    ) -> Result<Tensor> {
        let (k, v) = self.project_kv(x)?;
        let (k, v) = match cache.take() {
            Some((pk, pv)) => (grow(&pk, pick, &k)?, grow(&pv, pick, &v)?),
            None => (k, v),
        };
        let out = self.attend(x, &k, &v, bias)?;
        *cache = Some((k, v));
        Ok(out)
    }
}

/// `old` `(rows_old, h, t, d)` with its rows picked by `pick` (all when `None`), then `new`
/// `(rows, h, 1, d)` appended along `t`: one copy on the CPU in f32 (index_select + cat elsewhere).
fn grow(old: &Tensor, pick: Option<&[u32]>, new: &Tensor) -> Result<Tensor> {
    let (rows_old, h, t, d) = old.dims4()?;
    let rows = new.dim(0)?;
    let cpu_f32 = old.device().is_cpu() && old.dtype() == candle_core::DType::F32;
    if !cpu_f32 || old.dtype() != new.dtype() {
        let old = match pick {
            Some(p) => old.index_select(&Tensor::new(p, old.device())?, 0)?,
            None => old.clone(),
        };
        return Ok(Tensor::cat(&[&old, new], 2)?);
    }
    if pick.map_or(rows_old, <[u32]>::len) != rows || new.dims() != [rows, h, 1, d] {
        bail!("KV cache of {rows_old} rows and step of {:?}", new.dims());
    }
    let mut out = Vec::with_capacity(rows * h * (t + 1) * d);
    with_cpu_f32(old, |old_v| {
        with_cpu_f32(new, |new_v| {
            for r in 0..rows {
                let src = match pick {
                    Some(p) => p[r] as usize,
                    None => r,
                };
                if src >= rows_old {
                    bail!("KV cache row {src} of {rows_old}");
                }
                for head in 0..h {
                    let from = (src * h + head) * t * d;
                    out.extend_from_slice(&old_v[from..from + t * d]);
                    let from = (r * h + head) * d;
                    out.extend_from_slice(&new_v[from..from + d]);
                }
            }
            Ok(())
        })?
    })??;
    Ok(Tensor::from_vec(out, (rows, h, t + 1, d), old.device())?)
}

/// `f` over the f32 elements of a CPU tensor, in row-major order, without copying them (unless
/// the tensor is not contiguous).
fn with_cpu_f32<R>(x: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let x = x.contiguous()?;
    let (storage, layout) = x.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        bail!("not a CPU tensor");
    };
    let from = layout.start_offset();
    Ok(f(&cpu.as_slice::<f32>()?[from..from + x.elem_count()]))
}

/// Last-position logits `(b, 1, v)` or `(b, v)` as `(b, v)` f32.
pub fn last_logits(x: &Tensor) -> Result<Tensor> {
    let x = if x.rank() == 3 {
        x.narrow(1, x.dim(1)? - 1, 1)?.squeeze(1)?
    } else {
        x.clone()
    };
    Ok(x.to_dtype(candle_core::DType::F32)?)
}

/// Row-wise maximum index (first one on ties, like `torch.argmax`).
pub fn argmax(v: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// `log_softmax` of one row in f32, computed like torch: `(x - max) - ln(sum(exp(x - max)))`.
pub fn log_softmax(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = v.iter().map(|&x| (x - max).exp()).sum();
    let lse = sum.ln();
    for x in v.iter_mut() {
        *x = (*x - max) - lse;
    }
}
