//! Sentence embedder: tokenizer prep (prefix, truncation) and the BERT forward with mean pooling + L2.

use super::bert::{Bert, BertConfig};
use super::branch::Branch;
use super::config::Overlong;
use super::fast::{FastEncoder, Precision};
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use std::path::Path;
use tokenizers::Tokenizer;

/// Something that turns batches of token ids into unit-length embeddings. The real one is
/// `Embedder`; HTTP-layer tests plug in a mock.
pub trait Backend: Send + 'static {
    /// One embedding (L2-normalised) per sequence, in order.
    fn embed(&mut self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>>;

    /// Per sequence, one embedding for each branch it wants (0: the encoder as it is; `i`: the
    /// `i`-th fine-tuned branch), in the order asked. Backends without branches serve only 0.
    fn embed_branches(
        &mut self,
        batch: &[&[u32]],
        wants: &[&[usize]],
    ) -> Result<Vec<Vec<Vec<f32>>>> {
        anyhow::ensure!(
            wants.iter().all(|w| w.iter().all(|&b| b == 0)),
            "this backend has no fine-tuned branches"
        );
        let base = self.embed(batch)?;
        Ok(base
            .into_iter()
            .zip(wants)
            .map(|(v, w)| vec![v; w.len()])
            .collect())
    }
}

/// A BERT-family encoder with mean pooling and L2 normalisation.
pub struct Embedder {
    model: Bert,
    /// The fast CPU path (None: candle only, e.g. on a GPU or as the reference).
    fast: Option<FastEncoder>,
    pad_id: u32,
    /// Fine-tuned top layers of heads; branch `i` is `branches[i - 1]`.
    branches: Vec<Branch>,
}

impl Embedder {
    /// Load `config.json` + the weights (`model.safetensors`, or `pytorch_model.bin`) from a
    /// Hugging Face folder onto `device`; on the CPU, batches run on the fast path in f32.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Self::load_with(dir, device, Some(Precision::F32))
    }

    /// As `load`, choosing the CPU fast path's precision (None: candle's own ops only).
    pub fn load_with(dir: &Path, device: &Device, fast: Option<Precision>) -> Result<Self> {
        let cfg = read_config(dir)?;
        let vb = super::weights::Weights::find(dir)?
            .var_builder(DType::F32, device)
            .with_context(|| format!("weights of {}", dir.display()))?;
        let model = Bert::load(vb, &cfg).with_context(|| format!("loading {}", dir.display()))?;
        let fast = match (fast, device) {
            (Some(p), Device::Cpu) => Some(FastEncoder::new(&model, p)?),
            _ => None,
        };
        Ok(Embedder {
            model,
            fast,
            pad_id: cfg.pad_token_id.unwrap_or(0),
            branches: Vec::new(),
        })
    }

    pub fn config(&self) -> &BertConfig {
        &self.model.config
    }

    pub fn model(&self) -> &Bert {
        &self.model
    }

    /// Add a fine-tuned branch; returns its index for `embed_branches`.
    pub fn add_branch(&mut self, b: Branch) -> Result<usize> {
        if let Some(f) = &mut self.fast {
            f.add_branch(&b, self.model.config.num_attention_heads)?;
        }
        self.branches.push(b);
        Ok(self.branches.len())
    }

    /// The arithmetic batches run in: `f32`/`bf16` on the fast CPU path, else the tensor dtype.
    pub fn precision(&self) -> &'static str {
        self.fast.as_ref().map_or("f32", |f| f.precision.name())
    }

    /// Right-padded ids and mask tensors [b, s] for `batch`.
    pub fn pad(&self, batch: &[&[u32]]) -> Result<(Tensor, Tensor)> {
        let b = batch.len();
        let s = batch.iter().map(|x| x.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![self.pad_id; b * s];
        let mut mask = vec![0f32; b * s];
        for (i, seq) in batch.iter().enumerate() {
            ids[i * s..i * s + seq.len()].copy_from_slice(seq);
            mask[i * s..i * s + seq.len()].fill(1.0);
        }
        let dev = &self.model.device;
        Ok((
            Tensor::from_vec(ids, (b, s), dev)?,
            Tensor::from_vec(mask, (b, s), dev)?,
        ))
    }

    /// Pad `batch` on the right, run the encoder, mean-pool over real tokens, L2-normalise.
    pub fn embed_batch(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(f) = &self.fast {
            let wants = vec![&[0usize][..]; batch.len()];
            let out = f.embed_branches(&self.model, batch, &wants)?;
            return Ok(out.into_iter().map(|mut v| v.remove(0)).collect());
        }
        let (ids, mask) = self.pad(batch)?;
        let hidden = self.model.forward(&ids, &mask)?;
        Ok(pool(&hidden, &mask)?
            .to_dtype(DType::F32)?
            .to_vec2::<f32>()?)
    }

    /// The trunk runs once up to the lowest layer any wanted branch replaces; each branch then
    /// runs its own layers over the rows that want it.
    pub fn branches_batch(
        &self,
        batch: &[&[u32]],
        wants: &[&[usize]],
    ) -> Result<Vec<Vec<Vec<f32>>>> {
        if let Some(f) = &self.fast {
            return f.embed_branches(&self.model, batch, wants);
        }
        let n_layers = self.model.config.num_hidden_layers;
        let first_of = |b: usize| -> Result<usize> {
            match b {
                0 => Ok(n_layers),
                i => Ok(self
                    .branches
                    .get(i - 1)
                    .with_context(|| format!("no branch {i}"))?
                    .first),
            }
        };
        let mut used: Vec<usize> = wants.iter().flat_map(|w| w.iter().copied()).collect();
        used.sort_unstable();
        used.dedup();
        let mut out: Vec<Vec<Vec<f32>>> = wants.iter().map(|w| vec![Vec::new(); w.len()]).collect();
        if batch.is_empty() || used.is_empty() {
            return Ok(out);
        }
        let split = used
            .iter()
            .map(|&b| first_of(b))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .min()
            .unwrap_or(n_layers);
        let (ids, mask) = self.pad(batch)?;
        let (trunk, bias) = self.model.forward_until(&ids, &mask, split)?;
        for &b in &used {
            let rows: Vec<u32> = (0..batch.len())
                .filter(|&r| wants[r].contains(&b))
                .map(|r| r as u32)
                .collect();
            let (mut x, bias, mask) = if rows.len() == batch.len() {
                (trunk.clone(), bias.clone(), mask.clone())
            } else {
                let idx = Tensor::new(rows.as_slice(), trunk.device())?;
                (
                    trunk.index_select(&idx, 0)?,
                    bias.index_select(&idx, 0)?,
                    mask.index_select(&idx, 0)?,
                )
            };
            let first = first_of(b)?;
            let base = self.model.top_layers(split);
            x = self.model.run_layers(&base[..first - split], x, &bias)?;
            x = match b {
                0 => x,
                i => self
                    .model
                    .run_layers(&self.branches[i - 1].layers, x, &bias)?,
            };
            let vecs = pool(&x, &mask)?.to_dtype(DType::F32)?.to_vec2::<f32>()?;
            for (r, v) in rows.iter().zip(vecs) {
                let r = *r as usize;
                for (slot, &w) in out[r].iter_mut().zip(wants[r]) {
                    if w == b {
                        *slot = v.clone();
                    }
                }
            }
        }
        Ok(out)
    }
}

impl Embedder {
    /// Run branch `b`'s layers over trunk hidden states ([tokens, h] each, from `forward_until`
    /// at the branch's first layer): pooled unit embeddings.
    pub fn branch_from_states(&self, states: &[&Tensor], b: usize) -> Result<Vec<Vec<f32>>> {
        let branch = self
            .branches
            .get(b.wrapping_sub(1))
            .with_context(|| format!("no branch {b}"))?;
        let (x, mask) = pad_states(states, &self.model.device)?;
        let bias = super::bert::attention_bias(&mask, x.dtype())?;
        let x = self.model.run_layers(&branch.layers, x, &bias)?;
        Ok(pool(&x, &mask)?.to_dtype(DType::F32)?.to_vec2::<f32>()?)
    }
}

/// Rows of hidden states ([len, h] each) padded into [b, s, h] with their mask [b, s].
pub fn pad_states(states: &[&Tensor], dev: &Device) -> Result<(Tensor, Tensor)> {
    let s = states
        .iter()
        .map(|t| t.dim(0).unwrap_or(0))
        .max()
        .unwrap_or(1);
    let mut rows = Vec::with_capacity(states.len());
    let mut mask = Vec::with_capacity(states.len() * s);
    for t in states {
        let n = t.dim(0)?;
        rows.push(if n < s {
            t.pad_with_zeros(0, 0, s - n)?
        } else {
            (*t).clone()
        });
        mask.extend((0..s).map(|i| if i < n { 1f32 } else { 0.0 }));
    }
    Ok((
        Tensor::stack(&rows, 0)?.to_device(dev)?,
        Tensor::from_vec(mask, (states.len(), s), dev)?,
    ))
}

/// Mean over real tokens, then L2 normalisation: `hidden` [b, s, h], `mask` [b, s] -> [b, h].
pub fn pool(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let m = mask.unsqueeze(2)?.to_dtype(hidden.dtype())?;
    let summed = hidden.broadcast_mul(&m)?.sum(1)?;
    let counts = m.sum(1)?.clamp(1.0, f64::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    Ok(mean.broadcast_div(&norm)?)
}

impl Backend for Embedder {
    fn embed(&mut self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        self.embed_batch(batch)
    }

    fn embed_branches(
        &mut self,
        batch: &[&[u32]],
        wants: &[&[usize]],
    ) -> Result<Vec<Vec<Vec<f32>>>> {
        self.branches_batch(batch, wants)
    }
}

/// Read and check `config.json`.
pub fn read_config(dir: &Path) -> Result<BertConfig> {
    let p = dir.join("config.json");
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    let cfg: BertConfig =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
    cfg.check()?;
    Ok(cfg)
}

/// Text -> token ids for one model: prefix, special tokens, the token limit.
pub struct TextPrep {
    tokenizer: Tokenizer,
    prefix: String,
    max_len: usize,
}

/// What became of one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub ids: Vec<u32>,
    /// Tokens the text had before truncation (special tokens included).
    pub full_len: usize,
}

impl Prepared {
    pub fn truncated(&self) -> bool {
        self.full_len > self.ids.len()
    }
}

impl TextPrep {
    pub fn load(dir: &Path, prefix: &str, max_len: usize) -> Result<Self> {
        let p = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&p)
            .map_err(|e| anyhow::anyhow!("loading {}: {e}", p.display()))?;
        tokenizer
            .with_truncation(None)
            .map_err(anyhow::Error::msg)?;
        tokenizer.with_padding(None);
        Ok(TextPrep {
            tokenizer,
            prefix: prefix.to_string(),
            max_len,
        })
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Tokenize one text. Over-long input is cut to `max_len` keeping the final special token,
    /// or refused (`Err(full_len)`) when the policy is `reject`.
    /// Traditional Chinese is read as Simplified (`lang::simplified`).
    pub fn prepare(&self, text: &str, policy: Overlong) -> Result<Result<Prepared, usize>> {
        let text = crate::lang::simplified(text);
        let input = if self.prefix.is_empty() {
            text.to_string()
        } else {
            format!("{}{}", self.prefix, text)
        };
        let enc = self
            .tokenizer
            .encode(input, true)
            .map_err(|e| anyhow::anyhow!("tokenizer: {e}"))?;
        let mut ids = enc.get_ids().to_vec();
        let full_len = ids.len();
        if full_len > self.max_len {
            if policy == Overlong::Reject {
                return Ok(Err(full_len));
            }
            // Keep the closing special token ([SEP], </s>) when the tokenizer adds one.
            let ends_special = enc.get_special_tokens_mask().last() == Some(&1);
            let last = ids[full_len - 1];
            if ends_special {
                ids.truncate(self.max_len - 1);
                ids.push(last);
            } else {
                ids.truncate(self.max_len);
            }
        }
        Ok(Ok(Prepared { ids, full_len }))
    }
}
